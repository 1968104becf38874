//! Reads (upstream `endpoints/handlers/get.go` and `watch.go`): get, list, watch, and
//! the computed resources.

use super::*;
use crate::authentication::UserInfo;
use crate::endpoints::negotiation::{Body, decode_body, encode, read_request};
use crate::registry::generic::ListResult;
use crate::registry::meta;
use crate::registry::options::ListOptions;
use crate::storage::cacher::CachedObject;
use apimachinery::StatusError;
use hyper::{Request, Response};
use std::sync::Arc;

impl ApiServer {
    /// GET of one object.
    pub(super) async fn get(
        &self,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let obj = reg.get(ns, &info.name).await?;
        Ok(render_object(res, 200, &obj, &ctx.format))
    }

    /// GET of a collection.
    pub(super) async fn list(
        &self,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let mut opts = ListOptions::from_query(ctx.query)?;
        stored_field_labels(res, &mut opts);
        let list = reg.list(ns, &opts).await?;
        Ok(render_list(res, list, &ctx.format))
    }

    /// A watch: of a collection, or of one object by name.
    pub(super) async fn watch(
        &self,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let ns = ns_of(ctx.info);
        let mut opts = ListOptions::from_query(ctx.query)?;
        stored_field_labels(res, &mut opts);
        if !info.name.is_empty() {
            // `/watch/.../<name>` watches one object, as a name field selector.
            opts.field_selector
                .requirements
                .push(apimachinery::fields::FieldRequirement {
                    field: "metadata.name".into(),
                    value: info.name.clone(),
                    negate: false,
                });
        }
        crate::endpoints::watch::serve(res.clone(), ns, opts, ctx.format.clone()).await
    }

    /// A resource computed on request (`VirtualRest`): its verbs only.
    pub(super) async fn serve_virtual(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let Some(ro) = &res.virtual_rest else {
            return Err(StatusError::method_not_supported(
                &res.info().group_resource(),
                &info.verb,
            ));
        };
        ctx.warnings.extend(ro.warning());
        if !ro.verbs().contains(&info.verb.as_str()) {
            return Err(StatusError::method_not_supported(
                &res.info().group_resource(),
                &info.verb,
            ));
        }
        if info.verb == "create" {
            let user = req
                .extensions()
                .get::<UserInfo>()
                .cloned()
                .unwrap_or_default();
            let ct = content_type(&req);
            let raw = read_request(req).await?;
            let body = decode_body(&ct, &raw)?;
            let out = ro.create(ns, body, &user).await?;
            return Ok(encode(201, &out, &ctx.format));
        }
        let items = ro.list().await;
        match info.verb.as_str() {
            "get" => match items.iter().find(|o| meta::name(o) == info.name) {
                Some(o) => Ok(render_object(res, 200, o, &ctx.format)),
                None => Err(StatusError::not_found(
                    &res.info().group_resource(),
                    &info.name,
                )),
            },
            "list" => {
                let items = items
                    .into_iter()
                    .map(|o| Arc::new(CachedObject::new(String::new(), 0, o, &reg.fields)))
                    .collect();
                let list = ListResult {
                    items,
                    resource_version: 0,
                    continue_token: None,
                    remaining: None,
                };
                Ok(render_list(res, list, &ctx.format))
            }
            verb => Err(StatusError::method_not_supported(
                &res.info().group_resource(),
                verb,
            )),
        }
    }
}
