//! The generic registry store (upstream `registry/generic/registry/store.go`): one
//! resource's create/get/list/update/delete on top of storage and the watch cache, with
//! upstream's metadata handling, preconditions, finalizers and graceful deletion.

use super::meta::{self, meta_mut};
use super::options::{DeleteOptions, ListOptions};
use super::strategy::{StatusMetadata, Strategy};
use crate::storage::cacher::{
    CacheWatch, CachedObject, Cacher, FieldsFn, Filter, WatchItem, WatchType,
};
use crate::storage::store::{
    ReadAt, ResourceStore, decode, encode_continue, parse_rv, set_resource_version,
};
use apimachinery::{Cause, StatusError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Which part of the object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` (when the resource has a status subresource).
    Main,
    /// The `status` subresource: only `status`.
    Status,
    /// Internal writes (subresources such as binding/scale): the transform decides, and
    /// only create-time validation applies.
    Whole,
}

/// What a write starts from: the object, the mod revision it was read at, and whether it
/// was read from storage just now (rather than taken from the watch cache).
struct Current {
    obj: Value,
    rev: i64,
    fresh: bool,
}

impl Current {
    fn read(kv: &crate::storage::interface::KeyValue) -> Result<Self, StatusError> {
        Ok(Self {
            obj: decode(kv)?,
            rev: kv.mod_revision,
            fresh: true,
        })
    }
}

/// What a delete does to the object it read.
enum DeletePlan {
    Unchanged(Value),
    Pending(Value),
    Remove(Value),
}

pub struct ListResult {
    pub items: Vec<Arc<CachedObject>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

pub struct Registry {
    pub strategy: Arc<dyn Strategy>,
    pub store: ResourceStore,
    pub cacher: Option<Arc<Cacher>>,
    pub fields: FieldsFn,
}

/// Validating admission of one write, run by the store after the strategy's validation and
/// before storage (upstream's `rest.ValidateObjectFunc` / `ValidateObjectUpdateFunc`), so
/// validating webhooks, policies and quota see the named, prepared, valid object.
#[async_trait::async_trait]
pub trait ValidateObject: Send + Sync {
    /// `old` is the stored object an update replaces (None on create).
    async fn validate(&self, obj: &Value, old: Option<&Value>) -> Result<(), StatusError>;
}

/// Validating admission of a deletion, run on the object each attempt would delete (as
/// upstream's `deleteValidation` inside the store's Delete).
#[async_trait::async_trait]
pub trait ValidateDeletion: Send + Sync {
    async fn validate_deletion(&self, old: &Value) -> Result<(), StatusError>;
}

/// The names upstream generates for `generateName`: 5 characters without vowels
/// (so no words) and without look-alike characters.
pub fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let base = if base.len() > 58 { &base[..58] } else { base };
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Builds the field-selector attributes function of a strategy.
pub fn fields_fn(strategy: Arc<dyn Strategy>) -> FieldsFn {
    let namespaced = strategy.info().namespaced;
    Arc::new(move |obj: &Value| {
        let mut f: BTreeMap<String, String> = strategy.fields(obj);
        f.insert("metadata.name".into(), meta::name(obj).to_string());
        if namespaced {
            f.insert(
                "metadata.namespace".into(),
                meta::namespace(obj).to_string(),
            );
        }
        f
    })
}

impl Registry {
    pub fn new(
        strategy: Arc<dyn Strategy>,
        store: ResourceStore,
        cacher: Option<Arc<Cacher>>,
    ) -> Self {
        let fields = fields_fn(strategy.clone());
        Self {
            strategy,
            store,
            cacher,
            fields,
        }
    }

    fn gr(&self) -> apimachinery::GroupResource {
        self.strategy.info().group_resource()
    }

    pub fn key(&self, ns: Option<&str>, name: &str) -> String {
        self.store
            .key(ns.filter(|_| self.strategy.info().namespaced), name)
    }

    fn invalid(&self, name: &str, causes: Vec<Cause>) -> StatusError {
        let info = self.strategy.info();
        StatusError::invalid(&info.gvk.group, &info.gvk.kind, name, causes)
    }

    /// Upstream `ValidateObjectMeta` plus the strategy's own validation.
    fn validate_meta(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let m = meta::meta(obj);
        let name = meta::name(obj);
        if name.is_empty() {
            if m["generateName"].as_str().unwrap_or_default().is_empty() {
                causes.push(Cause::required(
                    "metadata.name",
                    "name or generateName is required",
                ));
            }
        } else {
            for e in self.strategy.validate_name(name) {
                causes.push(Cause::invalid("metadata.name", &json!(name), &e));
            }
        }
        let ns = meta::namespace(obj);
        if self.strategy.info().namespaced {
            if ns.is_empty() {
                causes.push(Cause::required("metadata.namespace", ""));
            } else {
                for e in apimachinery::validation::dns1123_label(ns) {
                    causes.push(Cause::invalid("metadata.namespace", &json!(ns), &e));
                }
            }
        } else if !ns.is_empty() {
            causes.push(Cause::forbidden(
                "metadata.namespace",
                "not allowed on this type",
            ));
        }
        if let Some(labels) = m["labels"].as_object() {
            for (k, v) in labels {
                for e in apimachinery::validation::qualified_name(k) {
                    causes.push(Cause::invalid("metadata.labels", &json!(k), &e));
                }
                for e in apimachinery::validation::label_value(v.as_str().unwrap_or_default()) {
                    causes.push(Cause::invalid("metadata.labels", v, &e));
                }
            }
        }
        if let Some(ann) = m["annotations"].as_object() {
            let mut total = 0;
            for (k, v) in ann {
                total += k.len() + v.as_str().map(str::len).unwrap_or(0);
                for e in apimachinery::validation::qualified_name(&k.to_lowercase()) {
                    causes.push(Cause::invalid("metadata.annotations", &json!(k), &e));
                }
            }
            if total > 256 * 1024 {
                causes.push(Cause::too_long("metadata.annotations", 256 * 1024));
            }
        }
        for (i, f) in meta::finalizers(obj).iter().enumerate() {
            for e in apimachinery::validation::qualified_name(f) {
                causes.push(Cause::invalid(
                    &format!("metadata.finalizers[{i}]"),
                    &json!(f),
                    &e,
                ));
            }
        }
        causes
    }

    /// Creates an object that the handler already decoded and admitted (the apiserver's
    /// own writes, which no admission sees).
    pub async fn create(
        &self,
        ns: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, StatusError> {
        self.create_validated(ns, obj, dry_run, None).await
    }

    /// Creates in upstream's order: metadata and `generateName`, the strategy's
    /// preparation and validation, then validating admission, then storage.
    pub async fn create_validated(
        &self,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        admission: Option<&dyn ValidateObject>,
    ) -> Result<Value, StatusError> {
        let info = self.strategy.info();
        {
            let m = meta_mut(&mut obj);
            if info.namespaced {
                let url_ns = ns.unwrap_or_default();
                match m.get("namespace").and_then(Value::as_str) {
                    Some(n) if !n.is_empty() && n != url_ns => {
                        return Err(StatusError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        m.insert("namespace".into(), json!(url_ns));
                    }
                }
            }
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let generate = m
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if name.is_empty() && !generate.is_empty() {
                m.insert("name".into(), json!(generate_name(&generate)));
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if self.strategy.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        self.strategy.prepare_for_create(&mut obj);
        let name = meta::name(&obj).to_string();
        let mut causes = self.validate_meta(&obj);
        causes.extend(self.strategy.validate(&obj));
        if !causes.is_empty() {
            return Err(self.invalid(&name, causes));
        }
        if let Some(a) = admission {
            a.validate(&obj, None).await?;
        }
        if dry_run {
            return Ok(obj);
        }
        self.strategy.before_create(&mut obj).await?;
        let key = self.key(ns, &name);
        match self.store.create(&key, &obj).await {
            Ok(rev) => {
                set_resource_version(&mut obj, rev);
                Ok(obj)
            }
            Err(e) => {
                self.strategy.create_failed(&obj).await;
                Err(e)
            }
        }
    }

    /// The watch cache's copy when it has one, else storage's: a starting point for a
    /// write that will be refused as stale if it was not current.
    pub async fn get_cached_or_stored(
        &self,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, StatusError> {
        match self.cached_current(&self.key(ns, name)) {
            Some(c) => Ok(c.obj),
            None => self.get(ns, name).await,
        }
    }

    pub async fn get(&self, ns: Option<&str>, name: &str) -> Result<Value, StatusError> {
        let key = self.key(ns, name);
        match self.store.get(&key).await? {
            Some(kv) => decode(&kv),
            None => Err(StatusError::not_found(&self.gr(), name)),
        }
    }

    /// What a list or watch selects: key range (namespace / pinned name) and selectors;
    /// 400 for fields the resource cannot filter on.
    pub fn filter(&self, ns: Option<&str>, opts: &ListOptions) -> Result<Filter, StatusError> {
        let strategy = self.strategy.clone();
        let namespaced = self.strategy.info().namespaced;
        opts.field_selector
            .check_supported(&|f| {
                strategy.supports_field(f) && (namespaced || f != "metadata.namespace")
            })
            .map_err(StatusError::bad_request)?;
        // A field selector on the name or namespace narrows the key range, as upstream does.
        let ns = ns
            .or_else(|| opts.field_selector.exact("metadata.namespace"))
            .filter(|_| namespaced);
        let prefix = match (ns, opts.field_selector.exact("metadata.name")) {
            (ns, Some(name)) if ns.is_some() || !namespaced => self.key(ns, name),
            (ns, _) => self.store.list_prefix(ns),
        };
        Ok(Filter {
            prefix,
            labels: opts.label_selector.clone(),
            fields: opts.field_selector.clone(),
        })
    }

    /// Lists per upstream's resourceVersion semantics: `0` and `>=N` from the watch cache,
    /// unset / exact / paged reads from storage.
    /// Starts a watch from the watch cache, or from storage when there is none.
    pub async fn watch(
        &self,
        filter: Filter,
        from: Option<i64>,
        initial_events: bool,
    ) -> Result<CacheWatch, StatusError> {
        match &self.cacher {
            Some(c) => c.watch(filter, from, initial_events).await,
            None => self.storage_watch(filter, from, initial_events).await,
        }
    }

    /// A watch served from storage (`--watch-cache=false`): list for the starting state
    /// when needed, then storage events classified against the filter.
    async fn storage_watch(
        &self,
        filter: Filter,
        from: Option<i64>,
        initial_events: bool,
    ) -> Result<CacheWatch, StatusError> {
        let mut initial = Vec::new();
        let start = match from {
            Some(n) if n > 0 && !initial_events => n,
            _ => {
                let keep = self.kv_filter(&filter);
                let page = self
                    .store
                    .list(&filter.prefix, ReadAt::Latest, 0, None, &keep, true)
                    .await?;
                for kv in &page.items {
                    let obj = CachedObject::new(
                        kv.key.clone(),
                        kv.mod_revision,
                        decode(kv)?,
                        &self.fields,
                    );
                    initial.push(WatchItem {
                        kind: WatchType::Added,
                        obj: Arc::new(obj),
                    });
                }
                page.revision
            }
        };
        let mut events = self.store.watch(&filter.prefix, start).await?;
        let (tx, rx) = mpsc::channel(1000);
        let fields = self.fields.clone();
        tokio::spawn(async move {
            while let Some(batch) = events.recv().await {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for ev in batch.events {
                    let d = match ev.decode() {
                        Ok(Some(d)) => d,
                        Ok(None) => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let convert = |v: Value| {
                        Arc::new(CachedObject::new(
                            ev.kv.key.clone(),
                            ev.kv.mod_revision,
                            v,
                            &fields,
                        ))
                    };
                    let (obj, prev, created) = (convert(d.obj), d.prev.map(convert), d.created);
                    if let Some(kind) = filter.classify(ev.kind, created, &obj, prev.as_deref())
                        && tx.send(Ok(WatchItem { kind, obj })).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(CacheWatch {
            initial,
            rx,
            rv: start,
        })
    }

    pub async fn list(
        &self,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, StatusError> {
        let filter = self.filter(ns, opts)?;
        let rv = opts.resource_version.as_deref().map(parse_rv).transpose()?;
        let exact = opts.resource_version_match.as_deref() == Some("Exact");
        let from_cache = match (&self.cacher, rv) {
            (Some(_), Some(0)) => true,
            (Some(_), Some(_)) => !exact && opts.continue_token.is_none() && opts.limit == 0,
            // A consistent list's first page too (upstream v1.35 serves it from the cache);
            // its continuation reads storage at the page's revision.
            (Some(_), None) => opts.continue_token.is_none(),
            (None, _) => false,
        };
        if from_cache {
            let cacher = self.cacher.as_ref().unwrap();
            let (mut items, at) = cacher.list(&filter, rv).await?;
            let (mut continue_token, mut remaining) = (None, None);
            if rv.is_none() && opts.limit > 0 && items.len() > opts.limit {
                let more = items.len() - opts.limit;
                items.truncate(opts.limit);
                let next = format!("{}\0", items[opts.limit - 1].key);
                continue_token = Some(encode_continue(at, &next, &filter.prefix));
                remaining = (!filter.is_filtering()).then_some(more as i64);
            }
            return Ok(ListResult {
                items,
                resource_version: at,
                continue_token,
                remaining,
            });
        }
        let at = match rv {
            Some(n) if exact => ReadAt::Exact(n),
            _ => ReadAt::Latest,
        };
        let keep = self.kv_filter(&filter);
        let page = self
            .store
            .list(
                &filter.prefix,
                at,
                opts.limit,
                opts.continue_token.as_deref(),
                &keep,
                filter.is_filtering(),
            )
            .await?;
        if let Some(min) = rv.filter(|_| !exact)
            && page.revision < min
        {
            return Err(StatusError::timeout(
                format!(
                    "Too large resource version: {min}, current: {}",
                    page.revision
                ),
                1,
            ));
        }
        let mut items = Vec::with_capacity(page.items.len());
        for kv in &page.items {
            items.push(Arc::new(CachedObject::new(
                kv.key.clone(),
                kv.mod_revision,
                decode(kv)?,
                &self.fields,
            )));
        }
        Ok(ListResult {
            items,
            resource_version: page.revision,
            continue_token: page.continue_token,
            remaining: page.remaining,
        })
    }

    /// Decides, for raw storage items, whether they pass a list/watch filter.
    pub fn kv_filter(
        &self,
        filter: &Filter,
    ) -> impl Fn(&crate::storage::interface::KeyValue) -> bool + Sync + use<> {
        let (f, fields) = (filter.clone(), self.fields.clone());
        move |kv| {
            !f.is_filtering()
                || decode(kv)
                    .map(|v| {
                        f.matches(&CachedObject::new(
                            kv.key.clone(),
                            kv.mod_revision,
                            v,
                            &fields,
                        ))
                    })
                    .unwrap_or(false)
        }
    }

    /// Read-modify-write with compare-and-swap, retried on conflicts unless the caller
    /// pinned a resourceVersion. `transform` gets the current object (None if missing)
    /// and returns the desired one. Returns the stored object and whether it was created.
    pub async fn guaranteed_update(
        &self,
        ns: Option<&str>,
        name: &str,
        part: Part,
        dry_run: bool,
        transform: &mut (dyn FnMut(Option<&Value>) -> Result<Value, StatusError> + Send),
    ) -> Result<(Value, bool), StatusError> {
        self.guaranteed_update_validated(ns, name, part, dry_run, transform, None)
            .await
    }

    /// The same, with validating admission run on each attempt's prepared and validated
    /// object against the stored one, before it is written.
    pub async fn guaranteed_update_validated(
        &self,
        ns: Option<&str>,
        name: &str,
        part: Part,
        dry_run: bool,
        transform: &mut (dyn FnMut(Option<&Value>) -> Result<Value, StatusError> + Send),
        admission: Option<&dyn ValidateObject>,
    ) -> Result<(Value, bool), StatusError> {
        let key = self.key(ns, name);
        let mut hint = self.cached_current(&key);
        loop {
            let Some(Current {
                obj: old,
                rev,
                fresh,
            }) = self.current(&key, &mut hint).await?
            else {
                if !self.strategy.allow_create_on_update() || part != Part::Main {
                    return Err(StatusError::not_found(&self.gr(), name));
                }
                let obj = transform(None)?;
                if !meta::resource_version(&obj).is_empty() {
                    return Err(StatusError::not_found(&self.gr(), name));
                }
                return self
                    .create_validated(ns, obj, dry_run, admission)
                    .await
                    .map(|o| (o, true));
            };
            let prepared = self
                .prepare_update(&old, part, name, ns, transform, admission)
                .await;
            // As upstream's etcd3 GuaranteedUpdate: an error or a no-op decided on the
            // cache's copy is confirmed against storage before it is final.
            let mut new = match prepared {
                Err(_) if !fresh => continue,
                Err(e) => return Err(e),
                Ok(_) if !fresh && dry_run => continue,
                Ok(None) if !fresh => continue,
                Ok(None) => return Ok((old, false)),
                Ok(Some(new)) if dry_run => return Ok((new, false)),
                Ok(Some(new)) => new,
            };
            self.strategy.before_update(&mut new, &old).await?;
            match self.store.update_or_current(&key, &new, rev).await? {
                Ok(rev) => {
                    set_resource_version(&mut new, rev);
                    if meta::deletion_timestamp(&new).is_some()
                        && meta::finalizers(&new).is_empty()
                        && new["metadata"]["deletionGracePeriodSeconds"]
                            .as_i64()
                            .unwrap_or(0)
                            == 0
                        // Upstream's ShouldDeleteDuringUpdate, which namespaces extend:
                        // nothing else (spec.finalizers) holds the deletion.
                        && !self.strategy.holds_deletion(&new)
                    {
                        // The last finalizer is gone: the deletion completes now.
                        if let Ok((_, _)) = self.store.delete(&key, rev).await {
                            self.strategy.after_delete(&new).await;
                        }
                    }
                    return Ok((new, false));
                }
                // Someone wrote first: retry on what is stored now (a resourceVersion the
                // caller pinned then fails as stale).
                Err(now) => hint = now.map(|kv| Current::read(&kv)).transpose()?,
            }
        }
    }

    /// One attempt's desired object from the current one: the caller's transform,
    /// upstream's update rules, validating admission. None: nothing would change.
    async fn prepare_update(
        &self,
        old: &Value,
        part: Part,
        name: &str,
        ns: Option<&str>,
        transform: &mut (dyn FnMut(Option<&Value>) -> Result<Value, StatusError> + Send),
        admission: Option<&dyn ValidateObject>,
    ) -> Result<Option<Value>, StatusError> {
        let mut new = transform(Some(old))?;
        let pinned = !meta::resource_version(&new).is_empty();
        if pinned && meta::resource_version(&new) != meta::resource_version(old) {
            return Err(StatusError::stale(&self.gr(), name));
        }
        self.merge_update(&mut new, old, part, name, ns)?;
        if let Some(a) = admission {
            a.validate(&new, Some(old)).await?;
        }
        // Upstream skips no-op writes: the resourceVersion does not move.
        Ok((new != *old).then_some(new))
    }

    /// The watch cache's copy of an object, as upstream's cacher hands storage a
    /// `cachedExistingObject`: a write attempted on it costs no read when the cache is
    /// current, and a conflict brings back the stored object for the retry.
    fn cached_current(&self, key: &str) -> Option<Current> {
        let o = self.cacher.as_ref()?.get(key)?;
        Some(Current {
            obj: o.value.clone(),
            rev: o.rv,
            fresh: false,
        })
    }

    /// What an attempt starts from: the hint (the cache's copy, or what a conflict
    /// returned) when there is one, else storage.
    async fn current(
        &self,
        key: &str,
        hint: &mut Option<Current>,
    ) -> Result<Option<Current>, StatusError> {
        match hint.take() {
            Some(c) => Ok(Some(c)),
            None => self.read_current(key).await,
        }
    }

    /// The object as storage holds it now.
    async fn read_current(&self, key: &str) -> Result<Option<Current>, StatusError> {
        self.store
            .get(key)
            .await?
            .map(|kv| Current::read(&kv))
            .transpose()
    }

    /// Applies upstream's update rules to a desired object: identity and system metadata
    /// from the stored object, status/spec split, generation, validation.
    fn merge_update(
        &self,
        new: &mut Value,
        old: &Value,
        part: Part,
        name: &str,
        ns: Option<&str>,
    ) -> Result<(), StatusError> {
        let info = self.strategy.info();
        let new_name = meta::name(new);
        if !new_name.is_empty() && new_name != name {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({new_name}) does not match the name on the URL ({name})"
            )));
        }
        if info.namespaced {
            let new_ns = meta::namespace(new);
            if !new_ns.is_empty() && Some(new_ns) != ns {
                return Err(StatusError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let new_uid = meta::uid(new);
        if !new_uid.is_empty() && new_uid != meta::uid(old) {
            return Err(StatusError::conflict(
                &self.gr(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {new_uid}, UID in object meta: {}",
                    meta::uid(old)
                ),
            ));
        }
        match part {
            Part::Status => {
                // Status changes through the status subresource, and the metadata the
                // type lets it change.
                let status = new.get("status").cloned();
                let kept: Vec<&str> = match self.strategy.status_metadata() {
                    StatusMetadata::LabelsAndAnnotations => vec!["labels", "annotations"],
                    StatusMetadata::Annotations => vec!["annotations"],
                    StatusMetadata::Nothing => Vec::new(),
                };
                let new_meta = meta::meta(new).clone();
                *new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        new.as_object_mut().unwrap().remove("status");
                    }
                }
                let m = meta_mut(new);
                for k in kept {
                    match new_meta.get(k) {
                        Some(v) if !v.is_null() => m.insert(k.into(), v.clone()),
                        _ => m.remove(k),
                    };
                }
            }
            Part::Main if info.subresources.iter().any(|s| s == "status") => {
                let obj = new.as_object_mut().unwrap();
                match old.get("status") {
                    Some(s) => obj.insert("status".into(), s.clone()),
                    None => obj.remove("status"),
                };
            }
            _ => {}
        }
        {
            let old_m = meta::meta(old).clone();
            let m = meta_mut(new);
            m.insert("name".into(), json!(name));
            if info.namespaced {
                m.insert("namespace".into(), old_m["namespace"].clone());
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_m.get(k) {
                    Some(v) if !v.is_null() => m.insert(k.into(), v.clone()),
                    _ => m.remove(k),
                };
            }
            m.insert("resourceVersion".into(), old_m["resourceVersion"].clone());
            m.remove("selfLink");
        }
        if meta::deletion_timestamp(old).is_some() {
            let old_f = meta::finalizers(old);
            if meta::finalizers(new).iter().any(|f| !old_f.contains(f)) {
                return Err(self.invalid(
                    name,
                    vec![Cause::forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    )],
                ));
            }
        }
        // Subresource writers (Whole) decide the object themselves: namespaces'
        // `finalize` changes the spec that a main-resource update may not.
        if part == Part::Main {
            self.strategy.prepare_for_update(new, old);
        }
        if self.strategy.tracks_generation() && !meta::spec_equal(new, old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
            meta_mut(new).insert("generation".into(), json!(g + 1));
        }
        let mut causes = self.validate_meta(new);
        // Subresource writers (binding, scale, finalize) own their rules; the object must
        // still be valid, but the user-facing update restrictions do not apply.
        causes.extend(if part == Part::Whole {
            self.strategy.validate(new)
        } else {
            self.strategy.validate_update(new, old)
        });
        if !causes.is_empty() {
            return Err(self.invalid(name, causes));
        }
        Ok(())
    }

    /// Deletes per upstream: preconditions, graceful deletion (sets `deletionTimestamp`),
    /// finalizers (object stays until they are gone), propagation finalizers.
    /// Returns the object as last seen and whether it left storage.
    pub async fn delete(
        &self,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), StatusError> {
        self.delete_validated(ns, name, opts, None).await
    }

    /// The same, with validating admission run on the object each attempt deletes.
    pub async fn delete_validated(
        &self,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
        admission: Option<&dyn ValidateDeletion>,
    ) -> Result<(Value, bool), StatusError> {
        let key = self.key(ns, name);
        let mut hint = self.cached_current(&key);
        loop {
            let Some(Current {
                obj: old,
                rev,
                fresh,
            }) = self.current(&key, &mut hint).await?
            else {
                return Err(StatusError::not_found(&self.gr(), name));
            };
            // As for updates: what is decided on the cache's copy without a write (an
            // error, nothing to do, a dry run) is confirmed against storage first.
            if let Some(a) = admission {
                match a.validate_deletion(&old).await {
                    Err(_) if !fresh => continue,
                    other => other?,
                }
            }
            let plan = match self.plan_delete(name, old, opts) {
                Err(_) if !fresh => continue,
                Ok(_) if !fresh && opts.dry_run => continue,
                Ok(DeletePlan::Unchanged(_)) if !fresh => continue,
                other => other?,
            };
            let written = match plan {
                DeletePlan::Unchanged(old) => return Ok((old, false)),
                DeletePlan::Pending(new) if opts.dry_run => return Ok((new, false)),
                DeletePlan::Remove(old) if opts.dry_run => return Ok((old, true)),
                DeletePlan::Pending(mut new) => {
                    match self.store.update_or_current(&key, &new, rev).await? {
                        Ok(rev) => {
                            set_resource_version(&mut new, rev);
                            return Ok((new, false));
                        }
                        Err(now) => now,
                    }
                }
                DeletePlan::Remove(old) => match self.store.delete_or_current(&key, rev).await? {
                    Ok(rev) => {
                        self.strategy.after_delete(&old).await;
                        let mut gone = old;
                        set_resource_version(&mut gone, rev);
                        return Ok((gone, true));
                    }
                    Err(now) => now,
                },
            };
            // Someone wrote first: decide again on what is stored now.
            hint = written.map(|kv| Current::read(&kv)).transpose()?;
        }
    }

    /// What deleting `old` means: nothing to do, a pending deletion (deletionTimestamp and
    /// finalizers set, the object stays), or removal from storage.
    fn plan_delete(
        &self,
        name: &str,
        old: Value,
        opts: &DeleteOptions,
    ) -> Result<DeletePlan, StatusError> {
        self.strategy.check_delete(&old)?;
        // Upstream's preconditions, each with its message.
        let checks = [
            ("UID", opts.precondition_uid.as_deref(), meta::uid(&old)),
            (
                "ResourceVersion",
                opts.precondition_rv.as_deref(),
                meta::resource_version(&old),
            ),
        ];
        for (what, want, got) in checks {
            if let Some(want) = want
                && want != got
            {
                return Err(StatusError::conflict(
                    &self.gr(),
                    name,
                    &format!(
                        "Precondition failed: {what} in precondition: {want}, {what} in object meta: {got}"
                    ),
                ));
            }
        }
        let grace = self.strategy.grace_period(&old, opts.grace_period_seconds);
        let mut finalizers = meta::finalizers(&old);
        let wanted = match opts.propagation_policy.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if meta::deletion_timestamp(&old).is_none()
            && let Some(f) = wanted
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(f.to_string());
        }
        let already = meta::deletion_timestamp(&old).is_some();
        let old_grace = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
        let mut pending = old.clone();
        let waits = self.strategy.begin_delete(&mut pending);
        // Finalizers the strategy adds at deletion (CRD cleanup) join the others.
        if !already {
            for f in meta::finalizers(&pending) {
                if !finalizers.contains(&f) {
                    finalizers.push(f);
                }
            }
        }
        if grace > 0 || !finalizers.is_empty() || waits {
            if already
                && old_grace.is_some_and(|g| g <= grace)
                && finalizers == meta::finalizers(&old)
            {
                // Deletion already pending with an equal or shorter grace period.
                return Ok(DeletePlan::Unchanged(old));
            }
            let mut new = pending;
            let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            {
                let m = meta_mut(&mut new);
                if !already || grace < old_grace.unwrap_or(i64::MAX) {
                    m.insert("deletionTimestamp".into(), json!(meta::rfc3339(when)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                if let Some(g) = m
                    .get("generation")
                    .and_then(Value::as_i64)
                    .filter(|_| !already)
                {
                    m.insert("generation".into(), json!(g + 1));
                }
            }
            meta::set_finalizers(&mut new, finalizers);
            return Ok(DeletePlan::Pending(new));
        }
        Ok(DeletePlan::Remove(old))
    }
}
