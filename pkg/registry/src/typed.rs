//! A strategy over a k8s-openapi type: decoding reports unknown fields (dropped, as upstream
//! does), defaulting and validation run on the typed object, everything else on JSON.

use apimachinery::{Cause, StatusError};
use apiserver::endpoints::openapi::SchemaSet;
use apiserver::registry::strategy::{Column, ResourceInfo, Strategy};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// Side effects around storage writes (allocations), for resources that need them.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    async fn before_create(&self, _obj: &mut Value) -> Result<(), StatusError> {
        Ok(())
    }
    async fn create_failed(&self, _obj: &Value) {}
    async fn before_update(&self, _new: &mut Value, _old: &Value) -> Result<(), StatusError> {
        Ok(())
    }
    async fn after_delete(&self, _obj: &Value) {}
}

pub struct Typed<K> {
    pub info: ResourceInfo,
    pub default: fn(&mut K),
    pub validate: fn(&K) -> Vec<Cause>,
    /// Update validation; the create rules are checked as well.
    pub validate_update: fn(&K, &K) -> Vec<Cause>,
    pub prepare_for_create: fn(&mut Value),
    pub record_requester: fn(&mut Value, &apiserver::authentication::UserInfo),
    pub prepare_for_update: fn(&mut Value, &Value),
    pub name_rule: fn(&str) -> Vec<String>,
    pub fields: fn(&Value) -> BTreeMap<String, String>,
    pub supported_fields: &'static [&'static str],
    pub tracks_generation: bool,
    pub allow_create_on_update: bool,
    pub return_deleted_object: bool,
    /// What a status update may change besides status (upstream's status strategy).
    pub status_metadata: apiserver::registry::strategy::StatusMetadata,
    pub grace_period: fn(&Value, Option<i64>) -> i64,
    pub columns: Option<fn() -> Vec<Column>>,
    pub row: fn(&Value) -> Vec<Value>,
    pub begin_delete: fn(&mut Value) -> bool,
    pub holds_deletion: fn(&Value) -> bool,
    pub check_delete: fn(&Value) -> Result<(), StatusError>,
    pub lifecycle: Option<Arc<dyn Lifecycle>>,
    _k: PhantomData<fn() -> K>,
}

impl<K> Typed<K> {
    /// A strategy with upstream's defaults for everything but the resource's identity.
    pub fn new(info: ResourceInfo) -> Self {
        Self {
            info,
            default: |_| {},
            validate: |_| Vec::new(),
            validate_update: |_, _| Vec::new(),
            prepare_for_create: |_| {},
            record_requester: |_, _| {},
            prepare_for_update: |_, _| {},
            name_rule: apimachinery::validation::dns1123_subdomain,
            fields: |_| BTreeMap::new(),
            supported_fields: &[],
            tracks_generation: false,
            allow_create_on_update: false,
            return_deleted_object: false,
            status_metadata: apiserver::registry::strategy::StatusMetadata::LabelsAndAnnotations,
            // Only kinds with a graceful-delete strategy (pods) honour gracePeriodSeconds;
            // every other object goes at once, whatever the client asked.
            grace_period: |_, _| 0,
            columns: None,
            row: |_| Vec::new(),
            begin_delete: |_| false,
            holds_deletion: |_| false,
            check_delete: |_| Ok(()),
            lifecycle: None,
            _k: PhantomData,
        }
    }
}

/// Formats a serde_ignored path as upstream prints field paths: `spec.containers[0].foo`.
fn path_string(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_string(parent)),
        Path::Map { parent, key } => {
            let base = path_string(parent);
            if base.is_empty() {
                key.to_string()
            } else {
                format!("{base}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_string(parent),
    }
}

/// Typed decode of a JSON object, collecting the paths of ignored (unknown) fields.
pub fn from_value<K: DeserializeOwned>(
    v: &Value,
    kind: &str,
    version: &str,
) -> Result<(K, Vec<String>), StatusError> {
    let mut unknown = Vec::new();
    let out: Result<K, _> = serde_ignored::deserialize(v, |p| unknown.push(path_string(&p)));
    match out {
        Ok(k) => Ok((
            k,
            unknown
                .into_iter()
                .filter(|p| p != "apiVersion" && p != "kind")
                .collect(),
        )),
        Err(e) => Err(StatusError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {e}"
        ))),
    }
}

pub fn to_value<K: Serialize>(k: &K) -> Value {
    serde_json::to_value(k).expect("API types serialize")
}

/// The OpenAPI v3 schemas of a k8s-openapi type: the type's own schema under its
/// upstream definition name and every schema it references.
pub fn schema_set<K: schemars::JsonSchema>() -> SchemaSet {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let root = K::schema_name().to_string();
    generator.subschema_for::<K>();
    let mut definitions = generator.take_definitions(true);
    apiserver::endpoints::shape::annotate_definitions(&mut definitions);
    // Types that hold arbitrary JSON are published by upstream as a description only.
    for (name, def) in definitions.iter_mut() {
        let any_json = name.ends_with(".v1.JSON") || name.contains(".v1.JSONSchemaPropsOr");
        if any_json && let Some(m) = def.as_object_mut() {
            m.retain(|k, _| k == "description");
        }
    }
    SchemaSet { root, definitions }
}

impl<K> Typed<K>
where
    K: DeserializeOwned + Serialize + Send + 'static,
{
    fn parse(&self, v: &Value) -> Option<K> {
        serde_json::from_value(v.clone()).ok()
    }
}

#[async_trait]
impl<K> Strategy for Typed<K>
where
    K: DeserializeOwned + Serialize + schemars::JsonSchema + Send + 'static,
{
    fn openapi_schemas(&self) -> Option<SchemaSet> {
        Some(schema_set::<K>())
    }

    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), StatusError> {
        let (mut k, unknown) = from_value::<K>(&obj, &self.info.gvk.kind, &self.info.gvk.version)?;
        (self.default)(&mut k);
        let mut out = to_value(&k);
        // k8s-openapi always writes apiVersion/kind; keep them exactly as the resource's.
        out["apiVersion"] = Value::from(self.info.gvk.api_version());
        out["kind"] = Value::from(self.info.gvk.kind.clone());
        Ok((out, unknown))
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        (self.prepare_for_create)(obj)
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        (self.prepare_for_update)(new, old)
    }

    fn record_requester(&self, obj: &mut Value, user: &apiserver::authentication::UserInfo) {
        (self.record_requester)(obj, user)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        match self.parse(obj) {
            Some(k) => (self.validate)(&k),
            None => vec![Cause::invalid(
                "",
                &Value::Null,
                "object does not match its schema",
            )],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        match (self.parse(new), self.parse(old)) {
            (Some(n), Some(o)) => {
                let mut c = (self.validate)(&n);
                c.extend((self.validate_update)(&n, &o));
                c
            }
            _ => vec![Cause::invalid(
                "",
                &Value::Null,
                "object does not match its schema",
            )],
        }
    }

    fn validate_name(&self, name: &str) -> Vec<String> {
        (self.name_rule)(name)
    }

    fn fields(&self, obj: &Value) -> BTreeMap<String, String> {
        (self.fields)(obj)
    }

    fn supports_field(&self, field: &str) -> bool {
        matches!(field, "metadata.name" | "metadata.namespace")
            || self.supported_fields.contains(&field)
    }

    fn status_metadata(&self) -> apiserver::registry::strategy::StatusMetadata {
        self.status_metadata
    }

    fn tracks_generation(&self) -> bool {
        self.tracks_generation
    }

    fn allow_create_on_update(&self) -> bool {
        self.allow_create_on_update
    }

    fn return_deleted_object(&self) -> bool {
        self.return_deleted_object
    }

    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> i64 {
        (self.grace_period)(obj, requested)
    }

    fn table_columns(&self) -> Option<Vec<Column>> {
        self.columns.map(|c| c())
    }

    fn check_delete(&self, obj: &Value) -> Result<(), StatusError> {
        (self.check_delete)(obj)
    }

    fn begin_delete(&self, obj: &mut Value) -> bool {
        (self.begin_delete)(obj)
    }

    fn holds_deletion(&self, obj: &Value) -> bool {
        (self.holds_deletion)(obj)
    }

    fn table_row(&self, obj: &Value) -> Vec<Value> {
        (self.row)(obj)
    }

    async fn before_create(&self, obj: &mut Value) -> Result<(), StatusError> {
        match &self.lifecycle {
            Some(l) => l.before_create(obj).await,
            None => Ok(()),
        }
    }

    async fn create_failed(&self, obj: &Value) {
        if let Some(l) = &self.lifecycle {
            l.create_failed(obj).await
        }
    }

    async fn before_update(&self, new: &mut Value, old: &Value) -> Result<(), StatusError> {
        match &self.lifecycle {
            Some(l) => l.before_update(new, old).await,
            None => Ok(()),
        }
    }

    async fn after_delete(&self, obj: &Value) {
        if let Some(l) = &self.lifecycle {
            l.after_delete(obj).await
        }
    }
}

/// Builds a `ResourceInfo`.
pub fn info(
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    namespaced: bool,
    storage_path: &str,
) -> ResourceInfo {
    ResourceInfo {
        gvk: apimachinery::GroupVersionKind::new(group, version, kind),
        resource: resource.into(),
        singular: kind.to_lowercase(),
        short_names: Vec::new(),
        categories: Vec::new(),
        namespaced,
        subresources: Vec::new(),
        storage_path: storage_path.into(),
        delete_collection: true,
    }
}

/// Common printer column shapes.
pub fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name: name.into(),
        type_: type_.into(),
        format: "".into(),
        description: description.into(),
        priority,
    }
}

pub fn age_cell(obj: &Value) -> Value {
    Value::from(apiserver::endpoints::table::age(
        obj["metadata"]["creationTimestamp"].as_str(),
    ))
}

/// `field: Invalid value: ...: field is immutable` when a field changed.
pub fn immutable(field: &str, new: &Value, old: &Value) -> Option<Cause> {
    (new != old).then(|| Cause::invalid(field, new, "field is immutable"))
}

/// A strategy for a resource stored under its plural, with short names.
pub fn simple<K>(
    group: &str,
    version: &str,
    kind: &str,
    resource: &str,
    namespaced: bool,
    short_names: &[&str],
) -> Typed<K> {
    let mut i = info(group, version, kind, resource, namespaced, resource);
    i.short_names = short_names.iter().map(|s| s.to_string()).collect();
    Typed::new(i)
}
