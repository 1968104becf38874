//! The kubelet's pods as it sees them (`/pods`, `/runningpods`).

use super::*;

impl Kubelet {
    pub(super) fn pods_list(&self, running_only: bool) -> Response<Body> {
        let mut items = Vec::new();
        for uid in self.desired_uids() {
            if let Some(p) = self.pod(&uid) {
                if running_only
                    && self
                        .api_pod(&p)
                        .and_then(|a| a.status.clone())
                        .and_then(|s| s.phase)
                        != Some("Running".into())
                {
                    continue;
                }
                let mut v = serde_json::to_value(&p).unwrap_or_default();
                if let Some(api_pod) = self.api_pod(&p) {
                    v["status"] = serde_json::to_value(&api_pod.status).unwrap_or_default();
                }
                items.push(v);
            }
        }
        text(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                .to_string(),
            "application/json",
        )
    }

    /// The pod (by namespace/name) the kubelet runs.
    pub(super) fn find_pod(&self, ns: &str, name: &str) -> Option<k8s_openapi::api::core::v1::Pod> {
        self.desired_uids()
            .into_iter()
            .filter_map(|u| self.pod(&u))
            .find(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.metadata.name.as_deref() == Some(name)
            })
    }
}
