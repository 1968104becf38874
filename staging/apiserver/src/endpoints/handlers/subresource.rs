//! Subresources (status, scale, binding, connect …) on their own verbs.

use super::*;
use crate::admission::Operation;
use crate::endpoints::fieldmanager;
use crate::endpoints::negotiation::{Body, decode_body, encode, read_request};
use crate::endpoints::patch::{self, PatchType};
use crate::endpoints::shape::Shape;
use crate::registry::generic::Part;
use crate::registry::meta;
use apimachinery::StatusError;
use hyper::{Request, Response};
use std::sync::Arc;

impl ApiServer {
    pub(super) async fn serve_subresource(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(info);
        if info.subresource == "status" && res.info().subresources.iter().any(|s| s == "status") {
            return match info.verb.as_str() {
                "get" => Ok(render_object(
                    res,
                    200,
                    &reg.get(ns, &info.name).await?,
                    &ctx.format,
                )),
                "update" => {
                    let (obj, dry) = self.read_update(req, res, ctx).await?;
                    let av = res.info().gvk.api_version();
                    let sc = scope(res, Part::Status, &av);
                    let adm = self.admission(Operation::Update, info, res, None, dry);
                    let out = reg
                        .guaranteed_update_validated(
                            ns,
                            &info.name,
                            Part::Status,
                            dry,
                            &mut |cur| {
                                let mut o = obj.clone();
                                if let Some(c) = cur {
                                    // Status writes never change anything else.
                                    o["metadata"]["managedFields"] =
                                        c["metadata"]["managedFields"].clone();
                                }
                                fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                                Ok(o)
                            },
                            Some(&adm),
                        )
                        .await;
                    ctx.warnings.extend(adm.take_warnings());
                    let (out, _) = out?;
                    Ok(render_object(res, 200, &out, &ctx.format))
                }
                "patch" => {
                    let (out, _) = self.patch(req, res, ctx, Part::Status).await?;
                    Ok(render_object(res, 200, &out, &ctx.format))
                }
                _ => Err(StatusError::method_not_supported(
                    &reg.strategy.info().group_resource(),
                    &info.verb,
                )),
            };
        }
        if let Some(h) = res.connect.get(&info.subresource).cloned() {
            return h.connect(req, ns, &info.name, info, ctx.query).await;
        }
        let Some(sub) = res.subresources.get(&info.subresource).cloned() else {
            return Err(StatusError::path_not_found());
        };
        let dry = dry_run(ctx.query)?;
        match info.verb.as_str() {
            "get" => Ok(encode(200, &sub.get(ns, &info.name).await?, &ctx.format)),
            "update" => {
                let ct = content_type(&req);
                let mut body = decode_body(&ct, &read_request(req).await?)?;
                let old = sub.get(ns, &info.name).await.ok();
                self.admission(Operation::Update, info, res, Some(&body), dry)
                    .run(Some(&mut body), old.as_ref(), &mut ctx.warnings)
                    .await?;
                Ok(encode(
                    200,
                    &sub.update(ns, &info.name, body, dry, &ctx.manager).await?,
                    &ctx.format,
                ))
            }
            "create" => {
                let ct = content_type(&req);
                let mut body = decode_body(&ct, &read_request(req).await?)?;
                self.admission(Operation::Create, info, res, Some(&body), dry)
                    .run(Some(&mut body), None, &mut ctx.warnings)
                    .await?;
                let (code, out) = sub.create(ns, &info.name, body, dry).await?;
                Ok(encode(code, &out, &ctx.format))
            }
            "patch" => {
                let kind = PatchType::from_content_type(&content_type(&req))?;
                let body = read_request(req).await?;
                let current = sub.get(ns, &info.name).await?;
                let mut patched = patch::apply(kind, &current, &body, Shape::unknown())?;
                if patched["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
                {
                    meta::meta_mut(&mut patched).remove("resourceVersion");
                }
                self.admission(Operation::Update, info, res, Some(&patched), dry)
                    .run(Some(&mut patched), Some(&current), &mut ctx.warnings)
                    .await?;
                Ok(encode(
                    200,
                    &sub.update(ns, &info.name, patched, dry, &ctx.manager)
                        .await?,
                    &ctx.format,
                ))
            }
            _ => Err(StatusError::method_not_supported(
                &reg.strategy.info().group_resource(),
                &info.verb,
            )),
        }
    }
}
