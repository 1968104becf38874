//! The serving side of auditing: the final stages of a request's record, written when its
//! response is ready (or, for watches and other long-running requests, once the stream
//! has been handed over and again when it ends).

use crate::audit::{Auditor, Record};
use crate::endpoints::negotiation::{Body, full};
use crate::endpoints::request::RequestInfo;
use http_body_util::BodyExt;
use hyper::Response;
use serde_json::Value;
use std::sync::Arc;

/// The audit ID of a response, turned into the `Audit-Id` header.
#[derive(Clone)]
pub struct AuditId(pub String);

/// Emits ResponseComplete when a long-running response's body is dropped.
struct CompleteOnDrop {
    auditor: Arc<Auditor>,
    record: Record,
    code: u16,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        self.auditor.emit(
            &self.record,
            "ResponseComplete",
            Some((self.code, None)),
            None,
        );
    }
}

pub async fn finish(
    auditor: Arc<Auditor>,
    record: Record,
    info: &RequestInfo,
    resp: Response<Body>,
) -> Response<Body> {
    let code = resp.status().as_u16();
    let id = AuditId(record.id.clone());
    let long_running = info.verb == "watch"
        || code == 101
        || matches!(
            info.subresource.as_str(),
            "log" | "exec" | "attach" | "portforward" | "proxy"
        );
    if long_running {
        auditor.emit(&record, "ResponseStarted", Some((code, None)), None);
        let guard = CompleteOnDrop {
            auditor,
            record,
            code,
        };
        let (mut parts, body) = resp.into_parts();
        parts.extensions.insert(id);
        let body = body
            .map_frame(move |f| {
                let _keep = &guard;
                f
            })
            .boxed_unsync();
        return Response::from_parts(parts, body);
    }
    // Small, complete responses: read the body for the response object or the failure.
    let (mut parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let obj: Option<Value> = serde_json::from_slice(&bytes).ok();
    let failure = obj
        .as_ref()
        .filter(|o| code >= 400 && o["kind"] == "Status");
    let response = obj.as_ref().filter(|_| code < 400).cloned();
    auditor.emit(&record, "ResponseComplete", Some((code, failure)), response);
    parts.extensions.insert(id);
    Response::from_parts(parts, full(bytes))
}
