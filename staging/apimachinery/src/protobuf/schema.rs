//! The Kubernetes 1.35 protobuf messages: field numbers, wire kinds and JSON names, read once
//! from the table `hack/gen-protobuf-schema.py` generates, and the handful of messages whose
//! JSON form is not a plain object (times, quantities, int-or-string, raw JSON, ...).

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("k8s-1.35.pbschema");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    Message(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Optional,
    Repeated,
    /// `map<string, kind>`: repeated entries {1: key, 2: value}.
    Map,
    /// A Go struct embedded without a JSON name: its fields sit in the parent's object.
    Inline,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub kind: Kind,
    pub label: Label,
}

/// Messages whose JSON is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// metav1.Time: RFC 3339 seconds.
    Time,
    /// metav1.MicroTime: RFC 3339 microseconds.
    MicroTime,
    /// metav1.Duration: a Go duration string.
    Duration,
    /// resource.Quantity: its string.
    Quantity,
    IntOrString,
    /// RawExtension, FieldsV1, apiextensions JSON: JSON bytes embedded as they are.
    RawJson,
    /// JSONSchemaPropsOrArray: a schema or a list of schemas.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: a schema or a bool.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: a schema or a list of strings.
    SchemaOrStringArray,
    /// Verbs and the ExtraValues: a bare list of strings.
    StringList,
}

#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: Vec<Field>,
    pub special: Special,
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

#[derive(Debug, Default)]
pub struct Schema {
    pub messages: Vec<Message>,
    by_name: HashMap<&'static str, usize>,
    by_kind: HashMap<(&'static str, &'static str), usize>,
}

fn special(name: &str) -> Special {
    let short = name.rsplit('.').next().unwrap_or_default();
    match (name, short) {
        ("apimachinery.pkg.apis.meta.v1.Time", _) => Special::Time,
        ("apimachinery.pkg.apis.meta.v1.MicroTime", _) => Special::MicroTime,
        ("apimachinery.pkg.apis.meta.v1.Duration", _) => Special::Duration,
        ("apimachinery.pkg.api.resource.Quantity", _) => Special::Quantity,
        ("apimachinery.pkg.util.intstr.IntOrString", _) => Special::IntOrString,
        ("apimachinery.pkg.runtime.RawExtension", _)
        | ("apimachinery.pkg.apis.meta.v1.FieldsV1", _) => Special::RawJson,
        (n, "Json") if n.starts_with("apiextensions_apiserver.") => Special::RawJson,
        (_, "JsonSchemaPropsOrArray") => Special::SchemaOrArray,
        (_, "JsonSchemaPropsOrBool") => Special::SchemaOrBool,
        (_, "JsonSchemaPropsOrStringArray") => Special::SchemaOrStringArray,
        (_, "Verbs" | "ExtraValue") => Special::StringList,
        _ => Special::None,
    }
}

fn scalar(kind: &str) -> Option<Kind> {
    Some(match kind {
        "string" => Kind::String,
        "bytes" => Kind::Bytes,
        "bool" => Kind::Bool,
        "int32" => Kind::Int32,
        "int64" => Kind::Int64,
        "double" => Kind::Double,
        _ => return None,
    })
}

impl Schema {
    fn parse(table: &'static str) -> Schema {
        let mut s = Schema::default();
        // Message references are resolved once every message has its index.
        let mut pending: Vec<(usize, usize, &'static str)> = Vec::new();
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut words = line.split(' ');
            let first = words.next().unwrap_or_default();
            if first == "M" {
                let name = words.next().unwrap_or_default();
                let idx = s.messages.len();
                s.messages.push(Message {
                    name,
                    fields: Vec::new(),
                    special: special(name),
                });
                s.by_name.insert(name, idx);
                if let (Some(api_version), Some(kind)) = (words.next(), words.next()) {
                    s.by_kind.insert((api_version, kind), idx);
                }
                continue;
            }
            let (Ok(tag), Some(json), Some(kind), Some(label)) =
                (first.parse(), words.next(), words.next(), words.next())
            else {
                continue;
            };
            let label = match label {
                "repeated" => Label::Repeated,
                "map" => Label::Map,
                "inline" => Label::Inline,
                _ => Label::Optional,
            };
            let msg = s.messages.len() - 1;
            let kind = match scalar(kind) {
                Some(k) => k,
                None => {
                    pending.push((
                        msg,
                        s.messages[msg].fields.len(),
                        words.next().unwrap_or(""),
                    ));
                    Kind::Message(usize::MAX)
                }
            };
            s.messages[msg].fields.push(Field {
                tag,
                json,
                kind,
                label,
            });
        }
        for (msg, field, name) in pending {
            let idx = s.by_name.get(name).copied().unwrap_or(usize::MAX);
            s.messages[msg].fields[field].kind = Kind::Message(idx);
        }
        s
    }

    /// The table, parsed on first use.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::parse(TABLE))
    }

    pub fn message(&self, idx: usize) -> Option<&Message> {
        self.messages.get(idx)
    }

    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The message of a kind as a client names it. The option and status kinds every group
    /// version carries (DeleteOptions, Status, ...) are meta/v1's.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.by_kind
            .get(&(api_version, kind))
            .copied()
            .or_else(|| self.by_name(&format!("apimachinery.pkg.apis.meta.v1.{kind}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_resolves() {
        let s = Schema::get();
        assert!(s.messages.len() > 1000);
        for m in &s.messages {
            for f in &m.fields {
                assert_ne!(f.kind, Kind::Message(usize::MAX), "{}.{}", m.name, f.json);
            }
            assert!(
                m.fields.windows(2).all(|w| w[0].tag < w[1].tag),
                "{}",
                m.name
            );
        }
        let d = s
            .message(s.by_kind("apps/v1", "Deployment").unwrap())
            .unwrap();
        assert_eq!(d.name, "api.apps.v1.Deployment");
        assert_eq!(d.field(2).unwrap().json, "spec");
        let list = s.by_kind("apps/v1", "DeploymentList").unwrap();
        assert_eq!(s.messages[list].name, "api.apps.v1.DeploymentList");
        let opts = s.by_kind("apps/v1", "DeleteOptions").unwrap();
        assert_eq!(
            s.messages[opts].name,
            "apimachinery.pkg.apis.meta.v1.DeleteOptions"
        );
        let probe = s.message(s.by_name("api.core.v1.Probe").unwrap()).unwrap();
        assert_eq!(probe.field(1).unwrap().label, Label::Inline);
        let node = s
            .message(s.by_name("api.core.v1.NodeSpec").unwrap())
            .unwrap();
        assert_eq!(node.field(1).unwrap().json, "podCIDR");
    }
}
