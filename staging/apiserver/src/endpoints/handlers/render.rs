//! Rendering objects and lists in the negotiated format (tables included).

use super::*;
use crate::endpoints::negotiation::{Body, Format, encode, error_response, response};
use crate::endpoints::table;
use crate::registry::generic::ListResult;
use bytes::{BufMut, Bytes, BytesMut};
use hyper::Response;
use serde_json::{Value, json};
use std::borrow::Cow;

/// One (stored) object in the negotiated format and the served version.
pub fn render_object(res: &ApiResource, code: u16, obj: &Value, format: &Format) -> Response<Body> {
    match format {
        Format::Table { include_object } => {
            let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
            match res.table(std::iter::once(obj), meta, include_object) {
                Ok(t) => encode(code, &t, &Format::Json),
                Err(e) => error_response(&e),
            }
        }
        Format::PartialObjectMetadata { .. } => {
            encode(code, &table::partial_object_metadata(obj), &format.plain())
        }
        _ => match res.out(obj) {
            Ok(o) => encode(code, &o, format),
            Err(e) => error_response(&e),
        },
    }
}

/// A list in the negotiated format; JSON lists are assembled from each item's cached
/// encoding without re-serializing (when the served version is the stored one).
pub fn render_list(res: &ApiResource, list: ListResult, format: &Format) -> Response<Body> {
    let ri = res.info();
    let mut lm = json!({"resourceVersion": list.resource_version.to_string()});
    if let Some(c) = &list.continue_token {
        lm["continue"] = json!(c);
    }
    if let Some(r) = list.remaining {
        lm["remainingItemCount"] = json!(r);
    }
    match format {
        Format::Table { include_object } => {
            match res.table(list.items.iter().map(|o| &o.value), lm, include_object) {
                Ok(t) => encode(200, &t, &Format::Json),
                Err(e) => error_response(&e),
            }
        }
        Format::PartialObjectMetadata { .. } => {
            let items: Vec<Value> = list
                .items
                .iter()
                .map(|o| table::partial_object_metadata(&o.value))
                .collect();
            encode(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": lm, "items": items}),
                &format.plain(),
            )
        }
        // Protobuf lists are assembled from each item's cached message.
        Format::Protobuf
            if res.passthrough()
                && apimachinery::protobuf::schema::Schema::get()
                    .by_kind(&ri.gvk.api_version(), &ri.list_kind())
                    .is_some()
                && list.items.iter().all(|o| o.protobuf().is_some()) =>
        {
            let items = list
                .items
                .iter()
                .filter_map(|o| o.protobuf())
                .map(|b| &b[..]);
            match apimachinery::protobuf::encode_list(
                &ri.gvk.api_version(),
                &ri.list_kind(),
                &lm,
                items,
            ) {
                Ok(b) => response(200, apimachinery::protobuf::MEDIA_TYPE, b),
                Err(_) => render_list(res, list, &Format::Json),
            }
        }
        Format::Json if res.passthrough() => {
            let total: usize = list.items.iter().map(|o| o.bytes.len() + 1).sum();
            let mut buf = BytesMut::with_capacity(total + 256);
            let head =
                json!({"kind": ri.list_kind(), "apiVersion": ri.gvk.api_version(), "metadata": lm});
            let head = serde_json::to_string(&head).unwrap_or_default();
            buf.put_slice(&head.as_bytes()[..head.len() - 1]);
            buf.put_slice(b",\"items\":[");
            for (i, o) in list.items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                buf.put_slice(&o.bytes);
            }
            buf.put_slice(b"]}");
            response(200, "application/json", Bytes::from(buf))
        }
        _ => {
            let stored: Vec<&Value> = list.items.iter().map(|o| &o.value).collect();
            let items: Vec<Cow<Value>> = match res.out_list(&stored) {
                Ok(items) => items,
                Err(e) => return error_response(&e),
            };
            encode(
                200,
                &json!({"kind": ri.list_kind(), "apiVersion": ri.gvk.api_version(), "metadata": lm, "items": items}),
                format,
            )
        }
    }
}
