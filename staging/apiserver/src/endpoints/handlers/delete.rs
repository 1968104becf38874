//! Delete and deletecollection (upstream `endpoints/handlers/delete.go`).

use super::{ApiResource, ApiServer, Ctx, ns_of, read_delete_options, render_object};
use crate::admission::Operation;
use crate::endpoints::negotiation::{Body, encode};
use crate::registry::meta;
use crate::registry::options::ListOptions;
use apimachinery::StatusError;
use apimachinery::errors::success_status;
use hyper::{Request, Response};
use serde_json::json;
use std::sync::Arc;

impl ApiServer {
    /// DELETE of one object (202 while a foreground deletion waits).
    pub(super) async fn delete(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let opts = read_delete_options(req, ctx.query).await?;
        let adm = self.admission(Operation::Delete, info, res, None, opts.dry_run);
        let deleted = reg
            .delete_validated(ns, &info.name, &opts, Some(&adm))
            .await;
        ctx.warnings.extend(adm.take_warnings());
        let (obj, gone) = deleted?;
        let code = if !gone && opts.propagation_policy.as_deref() == Some("Foreground") {
            202
        } else {
            200
        };
        if gone && !reg.strategy.return_deleted_object() {
            let ri = res.info();
            let mut details =
                json!({"name": info.name, "kind": ri.resource, "uid": meta::uid(&obj)});
            if !ri.gvk.group.is_empty() {
                details["group"] = json!(ri.gvk.group);
            }
            return Ok(encode(code, &success_status(details), &ctx.format));
        }
        Ok(render_object(res, code, &obj, &ctx.format))
    }

    /// DELETE of a collection, each item through admission.
    pub(super) async fn deletecollection(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let opts = read_delete_options(req, ctx.query).await?;
        let mut lopts = ListOptions::from_query(ctx.query)?;
        lopts.limit = 0;
        lopts.continue_token = None;
        let list = reg.list(ns, &lopts).await?;
        let mut deleted = Vec::new();
        for item in &list.items {
            let (ins, name) = (meta::namespace(&item.value), meta::name(&item.value));
            let ins = (!ins.is_empty()).then_some(ins);
            let mut adm = self.admission(Operation::Delete, info, res, None, opts.dry_run);
            adm.name = name.to_string();
            let outcome = reg.delete_validated(ins, name, &opts, Some(&adm)).await;
            ctx.warnings.extend(adm.take_warnings());
            match outcome {
                Ok((obj, _)) => deleted.push(res.out(&obj)?.into_owned()),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let ri = res.info();
        let out = json!({"kind": ri.list_kind(), "apiVersion": ri.gvk.api_version(), "metadata": {"resourceVersion": list.resource_version.to_string()}, "items": deleted});
        Ok(encode(200, &out, &ctx.format))
    }
}
