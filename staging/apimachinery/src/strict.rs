//! Duplicate fields of a JSON document, for strict decoding (upstream's
//! `sigs.k8s.io/json` strict mode, `runtime/serializer/json`): a JSON object that names a
//! field twice decodes as the last value, and `fieldValidation=Strict` refuses it as
//! `duplicate field "spec.replicas"`.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The paths (`spec.replicas`, `spec.containers[0].name`) of every field named twice in
/// its object, in document order. Empty for valid JSON without duplicates and for text
/// that is not JSON (the decoder reports that).
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    // Deep documents are refused by the decoder itself (serde_json's recursion limit).
    let _ = Scan {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

struct Scan<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.out.push(path.clone());
            }
            map.next_value_seed(Scan {
                path,
                out: self.out,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Scan {
                path: format!("{}[{i}]", self.path),
                out: self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_with_their_paths_in_document_order() {
        let doc = br#"{"spec": {"unknownField": "foo", "replicas": 2, "replicas": 3,
            "template": {"spec": {"containers": [{"name": "a", "name": "b"}]}}},
            "spec": {}}"#;
        assert_eq!(
            duplicate_fields(doc),
            vec![
                "spec.replicas",
                "spec.template.spec.containers[0].name",
                "spec"
            ]
        );
    }

    #[test]
    fn none_in_valid_or_broken_json() {
        assert!(duplicate_fields(br#"{"a": [1, {"b": 2}], "c": null}"#).is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
        assert!(duplicate_fields(b"").is_empty());
    }
}
