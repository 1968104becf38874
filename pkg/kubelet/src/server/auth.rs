//! Authentication and authorization of kubelet API requests (upstream
//! `pkg/kubelet/server/auth.go`): client certificates, webhook TokenReview, anonymous,
//! then SubjectAccessReview on the `nodes/<subresource>` attributes.

use super::*;

impl Kubelet {
    pub(super) async fn authorize(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: Option<(String, Vec<String>)>,
    ) -> Result<(), Response<Body>> {
        let token = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let auth = &self.cfg.authentication;
        let (user, groups) = match (peer, token) {
            // A client certificate verified against clientCAFile names the user.
            (Some(u), _) => u,
            (None, Some(t)) if auth.webhook.enabled => {
                let review = TokenReview {
                    spec: TokenReviewSpec {
                        token: Some(t.to_string()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let api: Api<TokenReview> = Api::all(self.client.clone());
                let r = api
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| status(401, "Unauthorized", &format!("Unauthorized: {e}")))?;
                let st = r.status.unwrap_or_default();
                if st.authenticated != Some(true) {
                    return Err(status(401, "Unauthorized", "Unauthorized"));
                }
                let u = st.user.unwrap_or_default();
                (u.username.unwrap_or_default(), u.groups.unwrap_or_default())
            }
            (None, _) if auth.anonymous.enabled => (
                "system:anonymous".to_string(),
                vec!["system:unauthenticated".to_string()],
            ),
            (None, _) => return Err(status(401, "Unauthorized", "Unauthorized")),
        };
        if self.cfg.authorization.mode == "AlwaysAllow" {
            return Ok(());
        }
        let verb = match *req.method() {
            hyper::Method::POST => "create",
            hyper::Method::PUT => "update",
            hyper::Method::PATCH => "patch",
            hyper::Method::DELETE => "delete",
            _ => "get",
        };
        let sub = subresource(req.uri().path());
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.clone()),
                groups: Some(groups),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    resource: Some("nodes".into()),
                    subresource: Some(sub.into()),
                    name: Some(self.node_name.clone()),
                    version: Some("v1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let r = api
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| status(500, "InternalError", &format!("Authorization error: {e}")))?;
        if r.status.is_some_and(|s| s.allowed) {
            Ok(())
        } else {
            Err(status(
                403,
                "Forbidden",
                &format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource={sub})"),
            ))
        }
    }
}
