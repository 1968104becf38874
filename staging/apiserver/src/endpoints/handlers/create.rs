//! Create (upstream `endpoints/handlers/create.go`), and decoding a request body with
//! `fieldValidation`.

use super::*;
use crate::admission::Operation;
use crate::endpoints::fieldmanager;
use crate::endpoints::negotiation::{self, Body, decode_body, read_request};
use crate::registry::generic::Part;
use apimachinery::StatusError;
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::sync::Arc;

impl ApiServer {
    /// POST: create.
    pub(super) async fn create(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(ctx.info);
        let ct = content_type(&req);
        let dry = dry_run(ctx.query)?;
        let strict = field_validation(ctx.query)?;
        let body = read_request(req).await?;
        let mut obj = self.decode_object(res, &ct, &body, strict, &mut ctx.warnings)?;
        let adm = self.admission(Operation::Create, info, res, None, dry);
        adm.mutate(&mut obj, None).await?;
        if let Some(u) = info.user.as_ref() {
            reg.strategy.record_requester(&mut obj, u);
        }
        let av = res.info().gvk.api_version();
        fieldmanager::update(None, &mut obj, &ctx.manager, scope(res, Part::Main, &av));
        let created = reg.create_validated(ns, obj, dry, Some(&adm)).await;
        ctx.warnings.extend(adm.take_warnings());
        Ok(render_object(res, 201, &created?, &ctx.format))
    }

    /// Decodes a create/update body: media type, apiVersion/kind against the URL,
    /// typed decoding with unknown-field handling per `fieldValidation`.
    pub(super) fn decode_object(
        &self,
        res: &ApiResource,
        ct: &str,
        body: &[u8],
        validation: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Value, StatusError> {
        let (decoded, unknown) = self.decode_with_unknown(res, ct, body)?;
        let ri = res.info();
        // Upstream's strict decoding: every unknown field, then every field named twice.
        let mut strict = Vec::new();
        if matches!(validation, "Strict" | "Warn") {
            strict.extend(unknown.iter().map(|f| format!("unknown field {f:?}")));
            strict.extend(negotiation::duplicate_field_errors(ct, body));
        }
        match validation {
            "Strict" if !strict.is_empty() => Err(StatusError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                ri.gvk.kind,
                ri.gvk.version,
                ri.gvk.kind,
                strict.join(", ")
            ))),
            _ => {
                warnings.extend(strict);
                Ok(decoded)
            }
        }
    }

    /// A body decoded as the resource's kind, with the paths of the fields it does not know.
    pub(super) fn decode_with_unknown(
        &self,
        res: &ApiResource,
        ct: &str,
        body: &[u8],
    ) -> Result<(Value, Vec<String>), StatusError> {
        let mut v = decode_body(ct, body)?;
        let reg = &res.registry;
        let ri = res.info();
        let Some(obj) = v.as_object_mut() else {
            return Err(StatusError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: the body must be a JSON object",
                ri.gvk.kind, ri.gvk.version, ri.gvk.kind
            )));
        };
        let expected_av = ri.gvk.api_version();
        match obj.get("apiVersion").and_then(Value::as_str) {
            Some(av) if !av.is_empty() && av != expected_av => {
                return Err(StatusError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({expected_av})"
                )));
            }
            _ => {
                obj.insert("apiVersion".into(), json!(expected_av));
            }
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != ri.gvk.kind => {
                return Err(StatusError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    ri.gvk.kind
                )));
            }
            _ => {
                obj.insert("kind".into(), json!(ri.gvk.kind));
            }
        }
        if let Some(view) = &res.view {
            v = view.to_storage(v)?;
        }
        reg.strategy.decode(v)
    }
}
