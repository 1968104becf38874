//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`): the `k8s\0`
//! envelope around a `runtime.Unknown`, the wire format of the messages in it, and
//! transcoding of whole objects to and from their JSON form.

pub mod schema;
pub mod transcode;

use serde_json::{Map, Value};

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// What every encoded object starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// One field of a message on the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed64(u64),
    Fixed32(u32),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message in wire order; None if the bytes are not a valid message.
pub fn fields(buf: &[u8]) -> Option<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let tag = u32::try_from(key >> 3).ok()?;
        let field = match key & 7 {
            0 => Field::Varint(varint(buf, &mut pos)?),
            1 => {
                let b = buf.get(pos..pos + 8)?;
                pos += 8;
                Field::Fixed64(u64::from_le_bytes(b.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let b = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Field::Bytes(b)
            }
            5 => {
                let b = buf.get(pos..pos + 4)?;
                pos += 4;
                Field::Fixed32(u32::from_le_bytes(b.try_into().ok()?))
            }
            _ => return None,
        };
        out.push((tag, field));
    }
    Some(out)
}

/// The first length-delimited field with this tag.
pub fn bytes_field<'a>(fields: &[(u32, Field<'a>)], tag: u32) -> Option<&'a [u8]> {
    fields.iter().find_map(|(t, f)| match f {
        Field::Bytes(b) if *t == tag => Some(*b),
        _ => None,
    })
}

/// The first string field with this tag.
pub fn string_field(fields: &[(u32, Field<'_>)], tag: u32) -> Option<String> {
    bytes_field(fields, tag).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Every string of a repeated field with this tag.
pub fn repeated_strings(fields: &[(u32, Field<'_>)], tag: u32) -> Vec<String> {
    fields
        .iter()
        .filter_map(|(t, f)| match f {
            Field::Bytes(b) if *t == tag => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

/// The encoded object inside the `k8s\0` + `runtime.Unknown` envelope.
pub fn unwrap_envelope(body: &[u8]) -> Option<&[u8]> {
    let unknown = body.strip_prefix(MAGIC)?;
    bytes_field(&fields(unknown)?, 2)
}

/// Why an enveloped object could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The kind has no protobuf form here (a custom resource, or an unserved version).
    UnknownKind(String),
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownKind(m) | DecodeError::Invalid(m) => f.write_str(m),
        }
    }
}

impl From<String> for DecodeError {
    fn from(m: String) -> Self {
        DecodeError::Invalid(m)
    }
}

impl From<&str> for DecodeError {
    fn from(m: &str) -> Self {
        DecodeError::Invalid(m.to_string())
    }
}

/// The JSON form of an enveloped object, `apiVersion` and `kind` first as JSON clients
/// write them.
pub fn decode_object(body: &[u8]) -> Result<Value, DecodeError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
    )?;
    let unknown = fields(unknown).ok_or("invalid protobuf envelope")?;
    let type_meta =
        fields(bytes_field(&unknown, 1).unwrap_or_default()).ok_or("invalid protobuf envelope")?;
    let api_version = string_field(&type_meta, 1).unwrap_or_default();
    let kind = string_field(&type_meta, 2).unwrap_or_default();
    if string_field(&unknown, 3).is_some_and(|e| !e.is_empty()) {
        return Err("protobuf content encodings are not supported".into());
    }
    let idx = schema::Schema::get()
        .by_kind(&api_version, &kind)
        .ok_or_else(|| {
            DecodeError::UnknownKind(format!(
                "no kind \"{kind}\" is registered for version \"{api_version}\""
            ))
        })?;
    let obj = transcode::decode(idx, bytes_field(&unknown, 2).unwrap_or_default())?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::from(kind));
    out.insert("apiVersion".into(), Value::from(api_version));
    if let Value::Object(o) = obj {
        out.extend(o);
    }
    Ok(Value::Object(out))
}

/// Whether an object's kind has a protobuf form (built-in types do; custom resources not).
pub fn can_encode(v: &Value) -> bool {
    message_of(v).is_some()
}

fn message_of(v: &Value) -> Option<usize> {
    let (api_version, kind) = (v["apiVersion"].as_str()?, v["kind"].as_str()?);
    schema::Schema::get().by_kind(api_version, kind)
}

/// An object in its envelope, as the apiserver answers protobuf clients.
pub fn encode_object(v: &Value) -> Result<Vec<u8>, String> {
    let idx = message_of(v).ok_or_else(|| {
        format!(
            "object {}/{} has no protobuf form",
            v["apiVersion"], v["kind"]
        )
    })?;
    let raw = transcode::encode(idx, v)?;
    Ok(envelope(
        v["apiVersion"].as_str().unwrap_or_default(),
        v["kind"].as_str().unwrap_or_default(),
        &raw,
    ))
}

/// An encoded message in its `k8s\0` + `runtime.Unknown` envelope.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    transcode::put_bytes(&mut type_meta, 1, api_version.as_bytes());
    transcode::put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(MAGIC);
    transcode::put_bytes(&mut out, 1, &type_meta);
    transcode::put_bytes(&mut out, 2, raw);
    // Go writes the empty contentEncoding and contentType too.
    transcode::put_bytes(&mut out, 3, b"");
    transcode::put_bytes(&mut out, 4, b"");
    out
}

/// A list in its envelope from its metadata (JSON ListMeta) and its items' encoded
/// messages.
pub fn encode_list<'a>(
    api_version: &str,
    kind: &str,
    list_meta: &Value,
    items: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, String> {
    let meta_idx = schema::Schema::get()
        .by_name("apimachinery.pkg.apis.meta.v1.ListMeta")
        .ok_or("no ListMeta message")?;
    let mut raw = Vec::new();
    transcode::put_bytes(&mut raw, 1, &transcode::encode(meta_idx, list_meta)?);
    for item in items {
        transcode::put_bytes(&mut raw, 2, item);
    }
    Ok(envelope(api_version, kind, &raw))
}

/// One frame of a protobuf watch stream: a big-endian length, then a `metav1.WatchEvent`
/// whose object is the enveloped object.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, String> {
    Ok(watch_frame(event_type, &encode_object(object)?))
}

/// A watch frame around an already enveloped object.
pub fn watch_frame(event_type: &str, enveloped: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    transcode::put_bytes(&mut raw, 1, enveloped);
    let mut event = Vec::new();
    transcode::put_bytes(&mut event, 1, event_type.as_bytes());
    transcode::put_bytes(&mut event, 2, &raw);
    let mut frame = (event.len() as u32).to_be_bytes().to_vec();
    frame.extend(event);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_fields() {
        // Unknown{typeMeta{apiVersion:"v1"}, raw: msg{1: "ns", 2: varint 150}}
        let msg = [0x0a, 2, b'n', b's', 0x10, 0x96, 0x01];
        let mut unknown = vec![0x0a, 4, 0x0a, 2, b'v', b'1', 0x12, msg.len() as u8];
        unknown.extend(msg);
        let mut body = b"k8s\0".to_vec();
        body.extend(&unknown);
        let raw = unwrap_envelope(&body).unwrap();
        let f = fields(raw).unwrap();
        assert_eq!(string_field(&f, 1).as_deref(), Some("ns"));
        assert_eq!(f[1], (2, Field::Varint(150)));
        assert!(fields(&[0x0a, 5, 1]).is_none(), "truncated");
        assert!(unwrap_envelope(b"{}").is_none());
    }
}
