//! Reading Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`): the
//! `k8s\0` envelope around a `runtime.Unknown`, and the wire format of the messages in it.
//! Used where a handler needs a few fields of a small request (the access reviews
//! kubectl sends as protobuf); full transcoding of every type is not here yet.

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
    let unknown = body.strip_prefix(b"k8s\0")?;
    bytes_field(&fields(unknown)?, 2)
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
