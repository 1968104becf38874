//! Patch and server-side apply (upstream `endpoints/handlers/patch.go`).

use super::*;
use crate::admission::Operation;
use crate::endpoints::fieldmanager;
use crate::endpoints::negotiation::{self, Body, decode_body, read_request};
use crate::endpoints::patch::{self, PatchType};
use crate::registry::generic::Part;
use crate::registry::meta;
use apimachinery::StatusError;
use hyper::{Request, Response};
use serde_json::Value;
use std::sync::Arc;

impl ApiServer {
    /// PATCH (an apply that creates answers 201, as upstream).
    pub(super) async fn patch_verb(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        // An apply that creates the object answers 201, as upstream.
        let (out, created) = self.patch(req, res, ctx, Part::Main).await?;
        let code = if created { 201 } else { 200 };
        Ok(render_object(res, code, &out, &ctx.format))
    }

    pub(super) async fn patch(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
        part: Part,
    ) -> Result<(Value, bool), StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let kind = PatchType::from_content_type(&content_type(&req))?;
        let dry = dry_run(ctx.query)?;
        let strict = field_validation(ctx.query)?;
        let body = read_request(req).await?;
        let ns = ns_of(info);
        let av = res.info().gvk.api_version();
        let sc = scope(res, part, &av);
        if kind == PatchType::Apply {
            return self.apply(res, ctx, part, &body, dry, strict, sc).await;
        }
        if kind == PatchType::Strategic && !reg.strategy.supports_strategic_merge_patch() {
            return Err(StatusError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        // As upstream's patcher: apply the patch to what is stored, admit the result, and
        // write it only if nothing changed meanwhile; otherwise start over on fresh data.
        // A resourceVersion set by the patch itself pins the write (a conflict then is final).
        let mut first = true;
        loop {
            // The first attempt patches the watch cache's copy (the write then fails as
            // stale if storage moved on); retries read storage.
            let stored = match std::mem::take(&mut first) {
                true => reg.get_cached_or_stored(ns, &info.name).await?,
                false => reg.get(ns, &info.name).await?,
            };
            let current = res.out(&stored)?;
            let patched = patch::apply(kind, &current, &body, res.shape())?;
            let pinned =
                patched["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"];
            let bytes = serde_json::to_vec(&patched).unwrap_or_default();
            let mut warnings = Vec::new();
            let mut obj =
                self.decode_object(res, "application/json", &bytes, strict, &mut warnings)?;
            let adm = self.admission(Operation::Update, info, res, None, dry);
            adm.mutate(&mut obj, Some(&stored)).await?;
            let out = reg
                .guaranteed_update_validated(
                    ns,
                    &info.name,
                    part,
                    dry,
                    &mut |cur| {
                        let mut o = obj.clone();
                        fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                        Ok(o)
                    },
                    Some(&adm),
                )
                .await;
            warnings.extend(adm.take_warnings());
            match out {
                Err(e) if e.is_stale() && !pinned => continue,
                other => {
                    ctx.warnings.extend(warnings);
                    return other;
                }
            }
        }
    }

    /// Server-side apply: the configuration merged into the live object (created when
    /// absent), ownership recorded, conflicts refused unless `force=true`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply(
        &self,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
        part: Part,
        body: &[u8],
        dry: bool,
        strict: &str,
        sc: fieldmanager::Scope<'_>,
    ) -> Result<(Value, bool), StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(info);
        let Some(manager) = ctx.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(StatusError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set",
            ));
        };
        let force = match ctx.query.get("force").map(String::as_str) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(StatusError::bad_request(format!(
                    "invalid force value {other:?}"
                )));
            }
        };
        // Strict decoding of the configuration as upstream's apply patcher does it.
        if matches!(strict, "Strict" | "Warn")
            && let Some(dup) = negotiation::yaml_duplicate_key(body)
        {
            let msg = format!(
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {dup}"
            );
            if strict == "Strict" {
                return Err(StatusError::bad_request(msg));
            }
            ctx.warnings.push(msg);
        }
        let config = decode_body("application/yaml", body)?;
        if !config.is_object() {
            return Err(StatusError::bad_request(
                "error decoding YAML: the apply configuration must be an object",
            ));
        }
        let ri = res.info();
        if config["apiVersion"].as_str() != Some(ri.gvk.api_version().as_str())
            || config["kind"].as_str() != Some(ri.gvk.kind.as_str())
        {
            return Err(StatusError::bad_request(format!(
                "the apply configuration must set apiVersion {:?} and kind {:?}",
                ri.gvk.api_version(),
                ri.gvk.kind
            )));
        }
        let cfg_name = meta::name(&config);
        if cfg_name != info.name {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({})",
                info.name
            )));
        }
        // A configuration naming fields the schema does not have cannot be applied (the
        // typed conversion of upstream's structured-merge-diff refuses it).
        let bytes = serde_json::to_vec(&config).unwrap_or_default();
        let (_, unknown) = self.decode_with_unknown(res, "application/json", &bytes)?;
        if !unknown.is_empty() && matches!(strict, "Strict" | "Warn") {
            let errors: Vec<String> = unknown
                .iter()
                .map(|f| format!(".{f}: field not declared in schema"))
                .collect();
            let errors = match errors.as_slice() {
                [one] => one.clone(),
                many => format!("errors:\n  {}", many.join("\n  ")),
            };
            let ns_name = match ns {
                Some(ns) => format!("{ns}/{}", info.name),
                None => format!("/{}", info.name),
            };
            let msg = format!(
                "failed to create typed patch object ({ns_name}; {}/{}, Kind={}): {errors}",
                ri.gvk.group, ri.gvk.version, ri.gvk.kind
            );
            if strict == "Strict" {
                return Err(StatusError::bad_request(msg));
            }
            ctx.warnings.push(msg);
        }
        loop {
            let current = match reg.get(ns, &info.name).await {
                Ok(stored) => Some(res.out(&stored)?.into_owned()),
                Err(e) if e.code == 404 && part == Part::Main => None,
                Err(e) => return Err(e),
            };
            let merged = fieldmanager::apply(current.as_ref(), &config, manager, force, sc)?;
            let bytes = serde_json::to_vec(&merged).unwrap_or_default();
            let mut obj =
                self.decode_object(res, "application/json", &bytes, "Ignore", &mut Vec::new())?;
            let adm = self.admission(Operation::Update, info, res, None, dry);
            adm.mutate(&mut obj, current.as_ref()).await?;
            let Some(cur) = current else {
                if let Some(u) = info.user.as_ref() {
                    reg.strategy.record_requester(&mut obj, u);
                }
                let out = reg.create_validated(ns, obj, dry, Some(&adm)).await;
                ctx.warnings.extend(adm.take_warnings());
                match out {
                    Err(e) if e.code == 409 => continue,
                    other => return other.map(|o| (o, true)),
                }
            };
            let rv = cur["metadata"]["resourceVersion"].clone();
            let out = reg
                .guaranteed_update_validated(
                    ns,
                    &info.name,
                    part,
                    dry,
                    &mut |_| {
                        let mut o = obj.clone();
                        o["metadata"]["resourceVersion"] = rv.clone();
                        Ok(o)
                    },
                    Some(&adm),
                )
                .await;
            ctx.warnings.extend(adm.take_warnings());
            match out {
                Err(e) if e.is_stale() => continue,
                other => return other,
            }
        }
    }
}
