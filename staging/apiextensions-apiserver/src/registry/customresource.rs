//! The strategy of one served version of a CustomResourceDefinition (upstream
//! `registry/customresource`): pruning and defaulting on decode, schema validation,
//! generation tracking, `additionalPrinterColumns` tables.

use crate::jsonpath;
use crate::schema;
use apimachinery::{Cause, GroupVersionKind, StatusError};
use apiserver::registry::strategy::{Column, ResourceInfo, Strategy};
use async_trait::async_trait;
use serde_json::{Value, json};

/// `additionalPrinterColumns[]` of the version.
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub column: Column,
    pub json_path: String,
}

/// `subresources.scale` paths.
#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

pub struct CustomResourceStrategy {
    pub info: ResourceInfo,
    pub schema: Value,
    /// The schema declares a `default` somewhere: objects read back are defaulted.
    pub has_defaults: bool,
    pub columns: Vec<PrinterColumn>,
    pub scale: Option<ScalePaths>,
}

impl CustomResourceStrategy {
    /// The strategy of `version` of a CRD (as stored JSON); None if that version is absent.
    pub fn from_crd(crd: &Value, version: &str) -> Option<Self> {
        let spec = &crd["spec"];
        let v = spec["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == version)?;
        let names = &spec["names"];
        let group = spec["group"].as_str().unwrap_or_default();
        let plural = names["plural"].as_str().unwrap_or_default();
        let kind = names["kind"].as_str().unwrap_or_default();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        };
        let mut subresources = Vec::new();
        if v["subresources"]["scale"].is_object() {
            subresources.push("scale".to_string());
        }
        if v["subresources"]["status"].is_object() {
            subresources.push("status".to_string());
        }
        let info = ResourceInfo {
            gvk: GroupVersionKind::new(group, version, kind),
            resource: plural.into(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            namespaced: spec["scope"] != "Cluster",
            subresources,
            storage_path: format!("{group}/{plural}"),
            delete_collection: true,
        };
        let columns = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                column: Column {
                    name: c["name"].as_str().unwrap_or_default().to_string().into(),
                    type_: c["type"].as_str().unwrap_or("string").to_string().into(),
                    format: c["format"].as_str().unwrap_or_default().to_string().into(),
                    description: c["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                        .into(),
                    priority: c["priority"].as_i64().unwrap_or(0) as i32,
                },
                json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let scale = v["subresources"]["scale"].as_object().map(|s| ScalePaths {
            spec_replicas: s["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .into(),
            status_replicas: s["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .into(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        let schema = v["schema"]["openAPIV3Schema"].clone();
        Some(Self {
            info,
            has_defaults: schema::has_defaults(&schema),
            schema,
            columns,
            scale,
        })
    }

    /// Pruning then defaulting, as upstream's decoder does; returns the pruned paths.
    pub fn normalize(&self, obj: &mut Value) -> Vec<String> {
        if self.schema.is_null() {
            return Vec::new();
        }
        let pruned = schema::prune(obj, &self.schema);
        schema::default(obj, &self.schema);
        pruned
    }
}

/// A cell of a printer column: the first value the path selects, rendered by type.
fn cell(obj: &Value, col: &PrinterColumn) -> Value {
    let found = jsonpath::find(obj, &col.json_path);
    let Some(v) = found.first() else {
        return json!("<none>");
    };
    match col.column.type_.as_ref() {
        "date" => json!(apiserver::endpoints::table::age(v.as_str())),
        "integer" | "number" | "boolean" => v.clone(),
        _ => match v {
            Value::String(s) => json!(s),
            _ if found.len() > 1 => json!(
                found
                    .iter()
                    .map(|x| x
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => json!(other.to_string()),
        },
    }
}

#[async_trait]
impl Strategy for CustomResourceStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, mut obj: Value) -> Result<(Value, Vec<String>), StatusError> {
        let unknown = self.normalize(&mut obj);
        obj["apiVersion"] = json!(self.info.gvk.api_version());
        obj["kind"] = json!(self.info.gvk.kind);
        Ok((obj, unknown))
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        if !self.schema.is_null() {
            schema::validation::validate(&self.schema, obj, "", &mut causes);
            // CEL rules run on values that passed the schema, as upstream.
            if causes.is_empty() {
                schema::cel::validate(&self.schema, obj, None, "", &mut causes);
            }
        }
        causes
    }

    /// The create-time rules, then the transition rules (`oldSelf`).
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        if !self.schema.is_null() && causes.is_empty() {
            schema::cel::validate(&self.schema, new, Some(old), "", &mut causes);
        }
        causes
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn supports_strategic_merge_patch(&self) -> bool {
        false
    }

    /// Upstream's custom resource status strategy keeps nothing but status.
    fn status_metadata(&self) -> apiserver::registry::strategy::StatusMetadata {
        apiserver::registry::strategy::StatusMetadata::Nothing
    }

    fn defaults_on_read(&self) -> bool {
        self.has_defaults
    }

    fn read_defaults(&self, obj: &mut Value) {
        schema::default(obj, &self.schema);
    }

    fn table_columns(&self) -> Option<Vec<Column>> {
        let mut cols: Vec<Column> = self.columns.iter().map(|c| c.column.clone()).collect();
        if cols.is_empty() {
            cols.push(Column {
                name: "Age".into(),
                type_: "date".into(),
                format: "".into(),
                description: "".into(),
                priority: 0,
            });
        }
        Some(cols)
    }

    fn table_row(&self, obj: &Value) -> Vec<Value> {
        if self.columns.is_empty() {
            return vec![json!(apiserver::endpoints::table::age(
                obj["metadata"]["creationTimestamp"].as_str()
            ))];
        }
        self.columns.iter().map(|c| cell(obj, c)).collect()
    }

    fn openapi_schemas(&self) -> Option<apiserver::endpoints::openapi::SchemaSet> {
        if self.schema.is_null() {
            return None;
        }
        let ri = &self.info;
        let root = format!(
            "{}.{}.{}",
            ri.gvk.group.split('.').rev().collect::<Vec<_>>().join("."),
            ri.gvk.version,
            ri.gvk.kind
        );
        let mut s = self.schema.clone();
        let props = s["properties"].as_object_mut();
        if let Some(p) = props {
            p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            p.insert(
                "metadata".into(),
                json!({"type": "object", "description": "Standard object's metadata."}),
            );
        }
        let mut definitions = serde_json::Map::new();
        definitions.insert(root.clone(), s);
        Some(apiserver::endpoints::openapi::SchemaSet { root, definitions })
    }
}
