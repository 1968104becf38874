//! How a value's lists and maps merge, read from its OpenAPI schema (upstream's
//! `x-kubernetes-list-type`, `-list-map-keys`, `-patch-merge-key`, `-patch-strategy`,
//! `-map-type` extensions): strategic merge patch and server-side apply walk objects with
//! a `Shape` beside them. The built-in types carry the extensions from
//! `api/openapi-spec/list-metadata.json`; custom resources from their CRD schema. Where no
//! schema is known, well-known field names decide.

use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The generated markers of the built-in types: definition -> normalized field -> markers.
static LIST_METADATA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../../../api/openapi-spec/list-metadata.json"
    ))
    .expect("generated list metadata is JSON")
});

/// Adds the list/map extensions of the built-in types to their schema definitions.
pub fn annotate_definitions(defs: &mut Map<String, Value>) {
    for (name, def) in defs.iter_mut() {
        let Some(meta) = LIST_METADATA.get(name).and_then(Value::as_object) else {
            continue;
        };
        if meta.get(".").is_some_and(|s| s["structType"] == "atomic") {
            def["x-kubernetes-map-type"] = json!("atomic");
        }
        let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let Some(m) = meta.get(&field.replace('_', "").to_lowercase()) else {
                continue;
            };
            for (marker, ext) in [
                ("listType", "x-kubernetes-list-type"),
                ("listMapKey", "x-kubernetes-list-map-keys"),
                ("patchMergeKey", "x-kubernetes-patch-merge-key"),
                ("patchStrategy", "x-kubernetes-patch-strategy"),
                ("mapType", "x-kubernetes-map-type"),
            ] {
                if let Some(v) = m.get(marker) {
                    prop[ext] = v.clone();
                }
            }
        }
    }
}

/// How strategic merge patch treats a list.
#[derive(Debug, PartialEq, Eq)]
pub enum PatchList {
    /// Items merged by this key.
    Keyed(String),
    /// Scalars merged as a set.
    Primitive,
    Replace,
}

/// How server-side apply identifies a list's items.
#[derive(Debug, PartialEq, Eq)]
pub enum ApplyList {
    Map(Vec<String>),
    Set,
    Atomic,
}

/// The schema of one value, with the definitions its references point into.
#[derive(Clone, Copy, Debug)]
pub struct Shape<'a> {
    defs: Option<&'a Map<String, Value>>,
    /// The (unresolved) schema node: a property carries its list extensions itself.
    node: Option<&'a Value>,
    /// The field holding the value (for the fallback when no schema is known).
    pub field: &'a str,
}

const REF_PREFIXES: [&str; 2] = ["#/components/schemas/", "#/definitions/"];

impl<'a> Shape<'a> {
    /// No schema: well-known field names decide.
    pub const fn unknown() -> Shape<'static> {
        Shape {
            defs: None,
            node: None,
            field: "",
        }
    }

    pub fn root(defs: &'a Map<String, Value>, root: &'a str) -> Shape<'a> {
        Shape {
            defs: Some(defs),
            node: defs.get(root),
            field: "",
        }
    }

    /// A schema given inline (a CRD version's openAPIV3Schema).
    pub fn inline(schema: &'a Value) -> Shape<'a> {
        Shape {
            defs: None,
            node: (!schema.is_null()).then_some(schema),
            field: "",
        }
    }

    fn known(&self) -> bool {
        self.node.is_some()
    }

    /// The node with references followed.
    fn resolved(&self) -> Option<&'a Value> {
        let mut n = self.node?;
        for _ in 0..8 {
            let r = n
                .get("$ref")
                .or_else(|| {
                    n.get("allOf")
                        .and_then(|a| a.get(0))
                        .and_then(|a| a.get("$ref"))
                })
                .and_then(Value::as_str);
            let Some(r) = r else { return Some(n) };
            let name = REF_PREFIXES
                .iter()
                .find_map(|p| r.strip_prefix(p))
                .unwrap_or(r);
            n = self.defs?.get(name)?;
        }
        Some(n)
    }

    fn at(&self, node: Option<&'a Value>, field: &'a str) -> Shape<'a> {
        Shape {
            defs: self.defs,
            node,
            field,
        }
    }

    /// The shape of an object's field (or of a map's values).
    pub fn child(&self, field: &'a str) -> Shape<'a> {
        let r = self.resolved();
        let node = r.and_then(|r| {
            r.get("properties")
                .and_then(|p| p.get(field))
                .or_else(|| r.get("additionalProperties").filter(|a| a.is_object()))
        });
        self.at(node, field)
    }

    /// The shape of a list's items.
    pub fn item(&self) -> Shape<'a> {
        let node = self
            .resolved()
            .and_then(|r| r.get("items"))
            .filter(|i| i.is_object());
        self.at(node, "")
    }

    fn ext(&self, name: &str) -> Option<&'a Value> {
        self.node.and_then(|n| n.get(name))
    }

    /// Strategic merge patch semantics of the list this shape describes.
    pub fn patch_list(&self) -> PatchList {
        if !self.known() {
            return match merge_keys(self.field).first() {
                Some(k) => PatchList::Keyed((*k).to_string()),
                None if self.field == "finalizers" => PatchList::Primitive,
                None => PatchList::Replace,
            };
        }
        let strategy = self
            .ext("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !strategy.split(',').any(|s| s == "merge") {
            return PatchList::Replace;
        }
        match self
            .ext("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
        {
            Some(k) => PatchList::Keyed(k.to_string()),
            None => PatchList::Primitive,
        }
    }

    /// Whether a strategic merge patch of this object honours `$retainKeys`.
    pub fn retains_keys(&self) -> bool {
        self.ext("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .is_some_and(|s| s.split(',').any(|s| s == "retainKeys"))
    }

    /// Server-side apply semantics of the list this shape describes.
    pub fn apply_list(&self) -> ApplyList {
        if !self.known() {
            let keys = merge_keys(self.field);
            return if !keys.is_empty() {
                ApplyList::Map(vec![keys[0].to_string()])
            } else if self.field == "finalizers" {
                ApplyList::Set
            } else {
                ApplyList::Atomic
            };
        }
        match self.ext("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys: Vec<String> = self
                    .ext("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect();
                if keys.is_empty() {
                    ApplyList::Atomic
                } else {
                    ApplyList::Map(keys)
                }
            }
            Some("set") => ApplyList::Set,
            Some(_) => ApplyList::Atomic,
            // Lists without markers: a merge strategy still identifies items.
            None => match self.patch_list() {
                PatchList::Keyed(k) => ApplyList::Map(vec![k]),
                PatchList::Primitive => ApplyList::Set,
                PatchList::Replace => ApplyList::Atomic,
            },
        }
    }

    /// An object or map owned as a whole (`x-kubernetes-map-type: atomic`).
    pub fn is_atomic_object(&self) -> bool {
        self.ext("x-kubernetes-map-type") == Some(&json!("atomic"))
            || self.resolved().and_then(|r| r.get("x-kubernetes-map-type"))
                == Some(&json!("atomic"))
    }
}

/// Merge keys by field name, for values without a known schema.
fn merge_keys(field: &str) -> &'static [&'static str] {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => &["name"],
        "readinessGates" => &["conditionType"],
        "ports" => &["containerPort", "port"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" => &["type"],
        "ownerReferences" => &["uid"],
        "hostAliases" => &["ip"],
        "topologySpreadConstraints" => &["topologyKey"],
        "taints" => &["key"],
        "podIPs" | "hostIPs" => &["ip"],
        _ => &[],
    }
}

/// Defaults of key fields an item may omit (ports' `protocol`), so that a configuration
/// without them still names the stored item.
pub fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| json!("TCP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Map<String, Value> {
        let mut d = json!({
            "io.k8s.api.core.v1.PodSpec": {"properties": {"containers": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}}}},
            "io.k8s.api.core.v1.Container": {"properties": {"ports": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.ContainerPort"}}, "args": {"type": "array"}}},
            "io.k8s.api.core.v1.ContainerPort": {"properties": {}},
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {"properties": {}}
        });
        let mut m = d.as_object_mut().unwrap().clone();
        annotate_definitions(&mut m);
        m
    }

    #[test]
    fn generated_markers_drive_list_semantics() {
        let d = defs();
        let spec = Shape::root(&d, "io.k8s.api.core.v1.PodSpec");
        let containers = spec.child("containers");
        assert_eq!(containers.patch_list(), PatchList::Keyed("name".into()));
        assert_eq!(containers.apply_list(), ApplyList::Map(vec!["name".into()]));
        let ports = containers.item().child("ports");
        assert_eq!(
            ports.apply_list(),
            ApplyList::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(
            containers.item().child("args").patch_list(),
            PatchList::Replace
        );
        assert_eq!(
            containers.item().child("args").apply_list(),
            ApplyList::Atomic
        );
        assert_eq!(
            d["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
    }

    #[test]
    fn unknown_shapes_fall_back_to_field_names() {
        let s = Shape::unknown().child("containers");
        assert_eq!(s.patch_list(), PatchList::Keyed("name".into()));
        assert_eq!(
            Shape::unknown().child("finalizers").apply_list(),
            ApplyList::Set
        );
    }
}
