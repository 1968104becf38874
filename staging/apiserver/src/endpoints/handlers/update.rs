//! Update (upstream `endpoints/handlers/update.go`).

use super::*;
use crate::admission::Operation;
use crate::endpoints::fieldmanager;
use crate::endpoints::negotiation::{Body, read_request};
use crate::registry::generic::Part;
use apimachinery::StatusError;
use hyper::{Request, Response};
use serde_json::Value;
use std::sync::Arc;

impl ApiServer {
    /// PUT: update (or create, where the strategy allows it).
    pub(super) async fn update(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let (obj, dry) = self.read_update(req, res, ctx).await?;
        let av = res.info().gvk.api_version();
        let sc = scope(res, Part::Main, &av);
        let adm = self.admission(Operation::Update, info, res, None, dry);
        let out = reg
            .guaranteed_update_validated(
                ns,
                &info.name,
                Part::Main,
                dry,
                &mut |cur| {
                    let mut o = obj.clone();
                    fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                    Ok(o)
                },
                Some(&adm),
            )
            .await;
        ctx.warnings.extend(adm.take_warnings());
        let (out, created) = out?;
        Ok(render_object(
            res,
            if created { 201 } else { 200 },
            &out,
            &ctx.format,
        ))
    }

    /// The body of a PUT: decoded, checked against the URL's kind, admitted as an update.
    pub(super) async fn read_update(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(Value, bool), StatusError> {
        let ct = content_type(&req);
        let dry = dry_run(ctx.query)?;
        let strict = field_validation(ctx.query)?;
        let body = read_request(req).await?;
        let mut obj = self.decode_object(res, &ct, &body, strict, &mut ctx.warnings)?;
        let old = match res.registry.get(ns_of(ctx.info), &ctx.info.name).await {
            Ok(o) => Some(o),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        self.admission(Operation::Update, ctx.info, res, None, dry)
            .mutate(&mut obj, old.as_ref())
            .await?;
        Ok((obj, dry))
    }
}
