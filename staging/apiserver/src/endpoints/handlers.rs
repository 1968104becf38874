//! Resource request handlers (upstream `endpoints/handlers`): get, list, create, update,
//! patch, delete, deletecollection and subresources, with upstream's status codes,
//! warnings and `metav1.Status` errors.

use super::admit::Admission;
use super::fieldmanager;
use super::negotiation::{
    self, Body, Format, decode_body, encode, error_response, read_request, response,
};
use super::openapi::{OpenApiCache, SchemaSet};
use super::patch::{self, PatchType};
use super::request::RequestInfo;
use super::shape::Shape;
use super::table;
use super::view::VersionView;
use crate::admission::{self, Operation};
use crate::authentication::UserInfo;
use crate::registry::generic::{ListResult, Part, Registry};
use crate::registry::meta;
use crate::registry::options::{DeleteOptions, ListOptions};
use crate::registry::strategy::ResourceInfo;
use crate::storage::cacher::CachedObject;
use apimachinery::StatusError;
use apimachinery::errors::success_status;
use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A subresource with its own semantics (scale, binding, finalize, ...). `status` is
/// generic and needs none.
#[async_trait]
pub trait SubresourceHandler: Send + Sync {
    async fn get(&self, _ns: Option<&str>, _name: &str) -> Result<Value, StatusError> {
        Err(StatusError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ))
    }
    /// PUT (and the write half of PATCH).
    async fn update(
        &self,
        _ns: Option<&str>,
        _name: &str,
        _body: Value,
        _dry_run: bool,
        _manager: &str,
    ) -> Result<Value, StatusError> {
        Err(StatusError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ))
    }
    /// POST; returns the HTTP code and body.
    async fn create(
        &self,
        _ns: Option<&str>,
        _name: &str,
        _body: Value,
        _dry_run: bool,
    ) -> Result<(u16, Value), StatusError> {
        Err(StatusError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ))
    }
}

/// A subresource that answers with a stream or a protocol switch rather than an object
/// (`pods/log`, `exec`, `attach`, `portforward`, `proxy`): upstream's `rest.Connecter`.
#[async_trait]
pub trait ConnectHandler: Send + Sync {
    async fn connect(
        &self,
        req: Request<hyper::body::Incoming>,
        ns: Option<&str>,
        name: &str,
        info: &RequestInfo,
        query: &HashMap<String, String>,
    ) -> Result<Response<Body>, StatusError>;
}

/// A resource computed on request rather than stored: `componentstatuses` (get, list),
/// the review resources (`selfsubjectreviews`, `tokenreviews`: create only).
#[async_trait]
pub trait VirtualRest: Send + Sync {
    /// The verbs discovery lists.
    fn verbs(&self) -> &'static [&'static str];
    async fn list(&self) -> Vec<Value> {
        Vec::new()
    }
    /// Answers a create (the body as sent; the caller as authenticated).
    async fn create(
        &self,
        _ns: Option<&str>,
        _body: Value,
        _user: &UserInfo,
    ) -> Result<Value, StatusError> {
        Err(StatusError::new(
            405,
            "MethodNotAllowed",
            "create is not supported",
        ))
    }
    /// A deprecation warning for every request.
    fn warning(&self) -> Option<String> {
        None
    }
}

pub struct ApiResource {
    pub registry: Arc<Registry>,
    pub virtual_rest: Option<Arc<dyn VirtualRest>>,
    pub subresources: HashMap<String, Arc<dyn SubresourceHandler>>,
    pub connect: HashMap<String, Arc<dyn ConnectHandler>>,
    schemas: std::sync::OnceLock<Option<SchemaSet>>,
    /// Set when this version is served from another version's storage.
    pub view: Option<Arc<dyn VersionView>>,
}

impl ApiResource {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            virtual_rest: None,
            subresources: HashMap::new(),
            connect: HashMap::new(),
            schemas: std::sync::OnceLock::new(),
            view: None,
        }
    }

    /// The served identity.
    pub fn info(&self) -> &ResourceInfo {
        match &self.view {
            Some(v) => v.info(),
            None => self.registry.strategy.info(),
        }
    }

    /// The served object's schema, for merging its lists and maps (computed once).
    pub fn shape(&self) -> Shape<'_> {
        let set = self.schemas.get_or_init(|| self.openapi_schemas());
        match set {
            Some(s) => Shape::root(&s.definitions, &s.root),
            None => Shape::unknown(),
        }
    }

    /// The served version's schemas.
    pub fn openapi_schemas(&self) -> Option<SchemaSet> {
        match &self.view {
            Some(v) => v.openapi_schemas(),
            None => self.registry.strategy.openapi_schemas(),
        }
    }

    /// A stored object in the served version.
    pub fn out<'a>(&self, obj: &'a Value) -> Cow<'a, Value> {
        match &self.view {
            Some(v) => Cow::Owned(v.to_served(obj)),
            None if self.registry.strategy.defaults_on_read() => {
                let mut o = obj.clone();
                self.registry.strategy.read_defaults(&mut o);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(obj),
        }
    }

    /// Whether stored objects are served as they are (their cached encodings reusable).
    pub fn passthrough(&self) -> bool {
        self.view.is_none() && !self.registry.strategy.defaults_on_read()
    }

    /// Renders (stored) objects as a Table with this version's printer columns.
    pub fn table<'a>(
        &self,
        objs: impl Iterator<Item = &'a Value>,
        list_meta: Value,
        include: &str,
    ) -> Value {
        match &self.view {
            // A version with printer columns of its own reads the served form.
            Some(v) if v.prints() => {
                let row = |o: &Value| v.table_row(o);
                let objs: Vec<Value> = objs.map(|o| v.to_served(o)).collect();
                let same = |o: &Value| o.clone();
                table::render(
                    v.table_columns(),
                    &row,
                    objs.iter(),
                    &same,
                    list_meta,
                    include,
                )
            }
            // Otherwise the stored form is printed (as upstream prints the internal
            // version) and the rows carry the served form.
            _ => {
                let s = self.registry.strategy.as_ref();
                let row = |o: &Value| s.table_row(o);
                let served = |o: &Value| self.out(o).into_owned();
                table::render(s.table_columns(), &row, objs, &served, list_meta, include)
            }
        }
    }
}

/// Served resources by (group, version, plural).
pub type Resources = HashMap<(String, String, String), Arc<ApiResource>>;

/// The served API: every resource by group/version/plural, plus admission.
pub struct ApiServer {
    /// Replaced whole when resources come and go (CustomResourceDefinitions).
    pub resources: RwLock<Arc<Resources>>,
    pub admission: admission::Chain,
    /// Order in which groups appear in discovery (core first, as upstream).
    pub group_order: Vec<String>,
    pub version: Value,
    pub openapi: OpenApiCache,
}

pub struct Ctx<'a> {
    pub info: &'a RequestInfo,
    pub query: &'a HashMap<String, String>,
    pub format: Format,
    pub warnings: Vec<String>,
    /// The field manager of this write (`fieldManager`, else the user agent).
    pub manager: String,
}

/// Where field ownership of a write is recorded.
fn scope<'a>(res: &'a ApiResource, part: Part, api_version: &'a str) -> fieldmanager::Scope<'a> {
    fieldmanager::Scope {
        status_split: res.info().subresources.iter().any(|s| s == "status"),
        subresource: if part == Part::Status { "status" } else { "" },
        api_version,
        shape: res.shape(),
    }
}

/// Field selectors name the served version's fields; the storage indexes the stored ones.
fn stored_field_labels(res: &ApiResource, opts: &mut ListOptions) {
    if let Some(view) = &res.view {
        for r in &mut opts.field_selector.requirements {
            r.field = view.field_label(&r.field);
        }
    }
}

fn ns_of(info: &RequestInfo) -> Option<&str> {
    (!info.namespace.is_empty()).then_some(info.namespace.as_str())
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, StatusError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(StatusError::bad_request(format!(
            "Invalid dry run value: {other:?}; the only valid value is \"All\""
        ))),
    }
}

/// `fieldValidation`: Ignore, Warn (default) or Strict.
fn field_validation(q: &HashMap<String, String>) -> Result<&str, StatusError> {
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok("Warn"),
        Some("Ignore") => Ok("Ignore"),
        Some("Strict") => Ok("Strict"),
        Some(other) => Err(StatusError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}, must be one of Ignore, Warn, or Strict"
        ))),
    }
}

impl ApiServer {
    pub fn new(
        resources: Resources,
        admission: admission::Chain,
        group_order: Vec<String>,
        version: Value,
    ) -> Self {
        Self {
            resources: RwLock::new(Arc::new(resources)),
            admission,
            group_order,
            version,
            openapi: OpenApiCache::default(),
        }
    }

    /// A snapshot of the served resources.
    pub fn resources(&self) -> Arc<Resources> {
        self.resources.read().unwrap().clone()
    }

    /// Installs or removes resources (CRDs) and drops the documents that list them.
    pub fn update_resources(&self, f: impl FnOnce(&mut Resources)) {
        let mut guard = self.resources.write().unwrap();
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
        drop(guard);
        self.openapi.invalidate();
    }

    pub fn resource(&self, info: &RequestInfo) -> Option<Arc<ApiResource>> {
        self.resources()
            .get(&(
                info.api_group.clone(),
                info.api_version.clone(),
                info.resource.clone(),
            ))
            .cloned()
    }

    fn admission<'a>(
        &'a self,
        op: Operation,
        info: &'a RequestInfo,
        res: &'a ApiResource,
        obj: Option<&Value>,
        dry: bool,
    ) -> Admission<'a> {
        Admission::new(&self.admission, op, info, res, obj, dry)
    }

    /// Serves one resource request.
    pub async fn serve_resource(
        &self,
        req: Request<hyper::body::Incoming>,
        info: &RequestInfo,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let Some(res) = self.resource(info) else {
            // A custom resource POSTed before its CRD is served gets its 404 after its body.
            negotiation::discard_body(req.into_body(), negotiation::MAX_REQUEST_BODY_BYTES).await;
            return error_response(&StatusError::path_not_found());
        };
        let accept = req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let tables = !matches!(info.subresource.as_str(), "binding" | "eviction" | "token")
            && res
                .virtual_rest
                .as_ref()
                .is_none_or(|v| v.verbs().contains(&"list"));
        let format = match negotiation::negotiate(
            accept.as_deref(),
            query.get("includeObject").map(String::as_str),
            tables,
        ) {
            Ok(f) => f,
            Err(e) => {
                negotiation::discard_body(req.into_body(), negotiation::MAX_REQUEST_BODY_BYTES)
                    .await;
                return error_response(&e);
            }
        };
        let namespaced = res.info().namespaced;
        if !namespaced && !info.namespace.is_empty() {
            return error_response(&StatusError::path_not_found());
        }
        let user_agent = req
            .headers()
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let manager =
            fieldmanager::manager_name(query.get("fieldManager").map(String::as_str), user_agent);
        let mut ctx = Ctx {
            info,
            query,
            format,
            warnings: Vec::new(),
            manager,
        };
        let result = if info.subresource.is_empty() {
            self.serve_main(req, &res, &mut ctx).await
        } else {
            self.serve_subresource(req, &res, &mut ctx).await
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
        for w in ctx.warnings {
            if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {:?}", w)) {
                resp.headers_mut().append("Warning", v);
            }
        }
        resp
    }

    async fn serve_main(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(info);
        if let Some(ro) = &res.virtual_rest {
            ctx.warnings.extend(ro.warning());
            if !ro.verbs().contains(&info.verb.as_str()) {
                return Err(StatusError::method_not_supported(
                    &res.info().group_resource(),
                    &info.verb,
                ));
            }
            if info.verb == "create" {
                let user = req
                    .extensions()
                    .get::<UserInfo>()
                    .cloned()
                    .unwrap_or_default();
                let ct = content_type(&req);
                let raw = read_request(req).await?;
                let body = decode_body(&ct, &raw)?;
                let out = ro.create(ns, body, &user).await?;
                return Ok(encode(201, &out, &ctx.format));
            }
            let items = ro.list().await;
            return match info.verb.as_str() {
                "get" => match items.iter().find(|o| meta::name(o) == info.name) {
                    Some(o) => Ok(render_object(res, 200, o, &ctx.format)),
                    None => Err(StatusError::not_found(
                        &res.info().group_resource(),
                        &info.name,
                    )),
                },
                "list" => {
                    let items = items
                        .into_iter()
                        .map(|o| Arc::new(CachedObject::new(String::new(), 0, o, &reg.fields)))
                        .collect();
                    let list = ListResult {
                        items,
                        resource_version: 0,
                        continue_token: None,
                        remaining: None,
                    };
                    Ok(render_list(res, list, &ctx.format))
                }
                verb => Err(StatusError::method_not_supported(
                    &res.info().group_resource(),
                    verb,
                )),
            };
        }
        match info.verb.as_str() {
            "get" => {
                let obj = reg.get(ns, &info.name).await?;
                Ok(render_object(res, 200, &obj, &ctx.format))
            }
            "list" => {
                let mut opts = ListOptions::from_query(ctx.query)?;
                stored_field_labels(res, &mut opts);
                let list = reg.list(ns, &opts).await?;
                Ok(render_list(res, list, &ctx.format))
            }
            "watch" => {
                let mut opts = ListOptions::from_query(ctx.query)?;
                stored_field_labels(res, &mut opts);
                if !info.name.is_empty() {
                    // `/watch/.../<name>` watches one object, as a name field selector.
                    opts.field_selector
                        .requirements
                        .push(apimachinery::fields::FieldRequirement {
                            field: "metadata.name".into(),
                            value: info.name.clone(),
                            negate: false,
                        });
                }
                super::watch::serve(res.clone(), ns, opts, ctx.format.clone()).await
            }
            "create" => {
                let ct = content_type(&req);
                let dry = dry_run(ctx.query)?;
                let strict = field_validation(ctx.query)?;
                let body = read_request(req).await?;
                let mut obj = self.decode_object(res, &ct, &body, strict, &mut ctx.warnings)?;
                let adm = self.admission(Operation::Create, info, res, None, dry);
                adm.mutate(&mut obj, None).await?;
                if let Some(u) = info.user.as_ref() {
                    reg.strategy.record_requester(&mut obj, u);
                }
                let av = res.info().gvk.api_version();
                fieldmanager::update(None, &mut obj, &ctx.manager, scope(res, Part::Main, &av));
                let created = reg.create_validated(ns, obj, dry, Some(&adm)).await;
                ctx.warnings.extend(adm.take_warnings());
                Ok(render_object(res, 201, &created?, &ctx.format))
            }
            "update" => {
                let (obj, dry) = self.read_update(req, res, ctx).await?;
                let av = res.info().gvk.api_version();
                let sc = scope(res, Part::Main, &av);
                let adm = self.admission(Operation::Update, info, res, None, dry);
                let out = reg
                    .guaranteed_update_validated(
                        ns,
                        &info.name,
                        Part::Main,
                        dry,
                        &mut |cur| {
                            let mut o = obj.clone();
                            fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                            Ok(o)
                        },
                        Some(&adm),
                    )
                    .await;
                ctx.warnings.extend(adm.take_warnings());
                let (out, created) = out?;
                Ok(render_object(
                    res,
                    if created { 201 } else { 200 },
                    &out,
                    &ctx.format,
                ))
            }
            "patch" => {
                // An apply that creates the object answers 201, as upstream.
                let (out, created) = self.patch(req, res, ctx, Part::Main).await?;
                let code = if created { 201 } else { 200 };
                Ok(render_object(res, code, &out, &ctx.format))
            }
            "delete" => {
                let opts = read_delete_options(req, ctx.query).await?;
                let adm = self.admission(Operation::Delete, info, res, None, opts.dry_run);
                let deleted = reg
                    .delete_validated(ns, &info.name, &opts, Some(&adm))
                    .await;
                ctx.warnings.extend(adm.take_warnings());
                let (obj, gone) = deleted?;
                let code = if !gone && opts.propagation_policy.as_deref() == Some("Foreground") {
                    202
                } else {
                    200
                };
                if gone && !reg.strategy.return_deleted_object() {
                    let ri = res.info();
                    let mut details =
                        json!({"name": info.name, "kind": ri.resource, "uid": meta::uid(&obj)});
                    if !ri.gvk.group.is_empty() {
                        details["group"] = json!(ri.gvk.group);
                    }
                    return Ok(encode(code, &success_status(details), &ctx.format));
                }
                Ok(render_object(res, code, &obj, &ctx.format))
            }
            "deletecollection" if !res.info().delete_collection => Err(
                StatusError::method_not_supported(&res.info().group_resource(), &info.verb),
            ),
            "deletecollection" => {
                let opts = read_delete_options(req, ctx.query).await?;
                let mut lopts = ListOptions::from_query(ctx.query)?;
                lopts.limit = 0;
                lopts.continue_token = None;
                let list = reg.list(ns, &lopts).await?;
                let mut deleted = Vec::new();
                for item in &list.items {
                    let (ins, name) = (meta::namespace(&item.value), meta::name(&item.value));
                    let ins = (!ins.is_empty()).then_some(ins);
                    let mut adm = self.admission(Operation::Delete, info, res, None, opts.dry_run);
                    adm.name = name.to_string();
                    let outcome = reg.delete_validated(ins, name, &opts, Some(&adm)).await;
                    ctx.warnings.extend(adm.take_warnings());
                    match outcome {
                        Ok((obj, _)) => deleted.push(res.out(&obj).into_owned()),
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                let ri = res.info();
                let out = json!({"kind": ri.list_kind(), "apiVersion": ri.gvk.api_version(), "metadata": {"resourceVersion": list.resource_version.to_string()}, "items": deleted});
                Ok(encode(200, &out, &ctx.format))
            }
            _ => Err(StatusError::method_not_supported(
                &reg.strategy.info().group_resource(),
                &info.verb,
            )),
        }
    }

    async fn serve_subresource(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<Response<Body>, StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(info);
        if info.subresource == "status" && res.info().subresources.iter().any(|s| s == "status") {
            return match info.verb.as_str() {
                "get" => Ok(render_object(
                    res,
                    200,
                    &reg.get(ns, &info.name).await?,
                    &ctx.format,
                )),
                "update" => {
                    let (obj, dry) = self.read_update(req, res, ctx).await?;
                    let av = res.info().gvk.api_version();
                    let sc = scope(res, Part::Status, &av);
                    let adm = self.admission(Operation::Update, info, res, None, dry);
                    let out = reg
                        .guaranteed_update_validated(
                            ns,
                            &info.name,
                            Part::Status,
                            dry,
                            &mut |cur| {
                                let mut o = obj.clone();
                                if let Some(c) = cur {
                                    // Status writes never change anything else.
                                    o["metadata"]["managedFields"] =
                                        c["metadata"]["managedFields"].clone();
                                }
                                fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                                Ok(o)
                            },
                            Some(&adm),
                        )
                        .await;
                    ctx.warnings.extend(adm.take_warnings());
                    let (out, _) = out?;
                    Ok(render_object(res, 200, &out, &ctx.format))
                }
                "patch" => {
                    let (out, _) = self.patch(req, res, ctx, Part::Status).await?;
                    Ok(render_object(res, 200, &out, &ctx.format))
                }
                _ => Err(StatusError::method_not_supported(
                    &reg.strategy.info().group_resource(),
                    &info.verb,
                )),
            };
        }
        if let Some(h) = res.connect.get(&info.subresource).cloned() {
            return h.connect(req, ns, &info.name, info, ctx.query).await;
        }
        let Some(sub) = res.subresources.get(&info.subresource).cloned() else {
            return Err(StatusError::path_not_found());
        };
        let dry = dry_run(ctx.query)?;
        match info.verb.as_str() {
            "get" => Ok(encode(200, &sub.get(ns, &info.name).await?, &ctx.format)),
            "update" => {
                let ct = content_type(&req);
                let mut body = decode_body(&ct, &read_request(req).await?)?;
                let old = sub.get(ns, &info.name).await.ok();
                self.admission(Operation::Update, info, res, Some(&body), dry)
                    .run(Some(&mut body), old.as_ref(), &mut ctx.warnings)
                    .await?;
                Ok(encode(
                    200,
                    &sub.update(ns, &info.name, body, dry, &ctx.manager).await?,
                    &ctx.format,
                ))
            }
            "create" => {
                let ct = content_type(&req);
                let mut body = decode_body(&ct, &read_request(req).await?)?;
                self.admission(Operation::Create, info, res, Some(&body), dry)
                    .run(Some(&mut body), None, &mut ctx.warnings)
                    .await?;
                let (code, out) = sub.create(ns, &info.name, body, dry).await?;
                Ok(encode(code, &out, &ctx.format))
            }
            "patch" => {
                let kind = PatchType::from_content_type(&content_type(&req))?;
                let body = read_request(req).await?;
                let current = sub.get(ns, &info.name).await?;
                let mut patched = patch::apply(kind, &current, &body, Shape::unknown())?;
                if patched["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
                {
                    meta::meta_mut(&mut patched).remove("resourceVersion");
                }
                self.admission(Operation::Update, info, res, Some(&patched), dry)
                    .run(Some(&mut patched), Some(&current), &mut ctx.warnings)
                    .await?;
                Ok(encode(
                    200,
                    &sub.update(ns, &info.name, patched, dry, &ctx.manager)
                        .await?,
                    &ctx.format,
                ))
            }
            _ => Err(StatusError::method_not_supported(
                &reg.strategy.info().group_resource(),
                &info.verb,
            )),
        }
    }

    /// The body of a PUT: decoded, checked against the URL's kind, admitted as an update.
    async fn read_update(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(Value, bool), StatusError> {
        let ct = content_type(&req);
        let dry = dry_run(ctx.query)?;
        let strict = field_validation(ctx.query)?;
        let body = read_request(req).await?;
        let mut obj = self.decode_object(res, &ct, &body, strict, &mut ctx.warnings)?;
        let old = match res.registry.get(ns_of(ctx.info), &ctx.info.name).await {
            Ok(o) => Some(o),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        self.admission(Operation::Update, ctx.info, res, None, dry)
            .mutate(&mut obj, old.as_ref())
            .await?;
        Ok((obj, dry))
    }

    async fn patch(
        &self,
        req: Request<hyper::body::Incoming>,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
        part: Part,
    ) -> Result<(Value, bool), StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let kind = PatchType::from_content_type(&content_type(&req))?;
        let dry = dry_run(ctx.query)?;
        let strict = field_validation(ctx.query)?;
        let body = read_request(req).await?;
        let ns = ns_of(info);
        let av = res.info().gvk.api_version();
        let sc = scope(res, part, &av);
        if kind == PatchType::Apply {
            return self.apply(res, ctx, part, &body, dry, strict, sc).await;
        }
        if kind == PatchType::Strategic && !reg.strategy.supports_strategic_merge_patch() {
            return Err(StatusError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        // As upstream's patcher: apply the patch to what is stored, admit the result, and
        // write it only if nothing changed meanwhile; otherwise start over on fresh data.
        // A resourceVersion set by the patch itself pins the write (a conflict then is final).
        let mut first = true;
        loop {
            // The first attempt patches the watch cache's copy (the write then fails as
            // stale if storage moved on); retries read storage.
            let stored = match std::mem::take(&mut first) {
                true => reg.get_cached_or_stored(ns, &info.name).await?,
                false => reg.get(ns, &info.name).await?,
            };
            let current = res.out(&stored);
            let patched = patch::apply(kind, &current, &body, res.shape())?;
            let pinned =
                patched["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"];
            let bytes = serde_json::to_vec(&patched).unwrap_or_default();
            let mut warnings = Vec::new();
            let mut obj =
                self.decode_object(res, "application/json", &bytes, strict, &mut warnings)?;
            let adm = self.admission(Operation::Update, info, res, None, dry);
            adm.mutate(&mut obj, Some(&stored)).await?;
            let out = reg
                .guaranteed_update_validated(
                    ns,
                    &info.name,
                    part,
                    dry,
                    &mut |cur| {
                        let mut o = obj.clone();
                        fieldmanager::update(cur, &mut o, &ctx.manager, sc);
                        Ok(o)
                    },
                    Some(&adm),
                )
                .await;
            warnings.extend(adm.take_warnings());
            match out {
                Err(e) if e.is_stale() && !pinned => continue,
                other => {
                    ctx.warnings.extend(warnings);
                    return other;
                }
            }
        }
    }

    /// Server-side apply: the configuration merged into the live object (created when
    /// absent), ownership recorded, conflicts refused unless `force=true`.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        res: &Arc<ApiResource>,
        ctx: &mut Ctx<'_>,
        part: Part,
        body: &[u8],
        dry: bool,
        strict: &str,
        sc: fieldmanager::Scope<'_>,
    ) -> Result<(Value, bool), StatusError> {
        let info = ctx.info;
        let reg = &res.registry;
        let ns = ns_of(info);
        let Some(manager) = ctx.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(StatusError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set",
            ));
        };
        let force = match ctx.query.get("force").map(String::as_str) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(StatusError::bad_request(format!(
                    "invalid force value {other:?}"
                )));
            }
        };
        // Strict decoding of the configuration as upstream's apply patcher does it.
        if matches!(strict, "Strict" | "Warn")
            && let Some(dup) = negotiation::yaml_duplicate_key(body)
        {
            let msg = format!(
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {dup}"
            );
            if strict == "Strict" {
                return Err(StatusError::bad_request(msg));
            }
            ctx.warnings.push(msg);
        }
        let config = decode_body("application/yaml", body)?;
        if !config.is_object() {
            return Err(StatusError::bad_request(
                "error decoding YAML: the apply configuration must be an object",
            ));
        }
        let ri = res.info();
        if config["apiVersion"].as_str() != Some(ri.gvk.api_version().as_str())
            || config["kind"].as_str() != Some(ri.gvk.kind.as_str())
        {
            return Err(StatusError::bad_request(format!(
                "the apply configuration must set apiVersion {:?} and kind {:?}",
                ri.gvk.api_version(),
                ri.gvk.kind
            )));
        }
        let cfg_name = meta::name(&config);
        if cfg_name != info.name {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({})",
                info.name
            )));
        }
        // A configuration naming fields the schema does not have cannot be applied (the
        // typed conversion of upstream's structured-merge-diff refuses it).
        let bytes = serde_json::to_vec(&config).unwrap_or_default();
        let (_, unknown) = self.decode_with_unknown(res, "application/json", &bytes)?;
        if !unknown.is_empty() && matches!(strict, "Strict" | "Warn") {
            let errors: Vec<String> = unknown
                .iter()
                .map(|f| format!(".{f}: field not declared in schema"))
                .collect();
            let errors = match errors.as_slice() {
                [one] => one.clone(),
                many => format!("errors:\n  {}", many.join("\n  ")),
            };
            let ns_name = match ns {
                Some(ns) => format!("{ns}/{}", info.name),
                None => format!("/{}", info.name),
            };
            let msg = format!(
                "failed to create typed patch object ({ns_name}; {}/{}, Kind={}): {errors}",
                ri.gvk.group, ri.gvk.version, ri.gvk.kind
            );
            if strict == "Strict" {
                return Err(StatusError::bad_request(msg));
            }
            ctx.warnings.push(msg);
        }
        loop {
            let current = match reg.get(ns, &info.name).await {
                Ok(stored) => Some(res.out(&stored).into_owned()),
                Err(e) if e.code == 404 && part == Part::Main => None,
                Err(e) => return Err(e),
            };
            let merged = fieldmanager::apply(current.as_ref(), &config, manager, force, sc)?;
            let bytes = serde_json::to_vec(&merged).unwrap_or_default();
            let mut obj =
                self.decode_object(res, "application/json", &bytes, "Ignore", &mut Vec::new())?;
            let adm = self.admission(Operation::Update, info, res, None, dry);
            adm.mutate(&mut obj, current.as_ref()).await?;
            let Some(cur) = current else {
                if let Some(u) = info.user.as_ref() {
                    reg.strategy.record_requester(&mut obj, u);
                }
                let out = reg.create_validated(ns, obj, dry, Some(&adm)).await;
                ctx.warnings.extend(adm.take_warnings());
                match out {
                    Err(e) if e.code == 409 => continue,
                    other => return other.map(|o| (o, true)),
                }
            };
            let rv = cur["metadata"]["resourceVersion"].clone();
            let out = reg
                .guaranteed_update_validated(
                    ns,
                    &info.name,
                    part,
                    dry,
                    &mut |_| {
                        let mut o = obj.clone();
                        o["metadata"]["resourceVersion"] = rv.clone();
                        Ok(o)
                    },
                    Some(&adm),
                )
                .await;
            ctx.warnings.extend(adm.take_warnings());
            match out {
                Err(e) if e.is_stale() => continue,
                other => return other,
            }
        }
    }

    /// Decodes a create/update body: media type, apiVersion/kind against the URL,
    /// typed decoding with unknown-field handling per `fieldValidation`.
    fn decode_object(
        &self,
        res: &ApiResource,
        ct: &str,
        body: &[u8],
        validation: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Value, StatusError> {
        let (decoded, unknown) = self.decode_with_unknown(res, ct, body)?;
        let ri = res.info();
        // Upstream's strict decoding: every unknown field, then every field named twice.
        let mut strict = Vec::new();
        if matches!(validation, "Strict" | "Warn") {
            strict.extend(unknown.iter().map(|f| format!("unknown field {f:?}")));
            strict.extend(negotiation::duplicate_field_errors(ct, body));
        }
        match validation {
            "Strict" if !strict.is_empty() => Err(StatusError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                ri.gvk.kind,
                ri.gvk.version,
                ri.gvk.kind,
                strict.join(", ")
            ))),
            _ => {
                warnings.extend(strict);
                Ok(decoded)
            }
        }
    }

    /// A body decoded as the resource's kind, with the paths of the fields it does not know.
    fn decode_with_unknown(
        &self,
        res: &ApiResource,
        ct: &str,
        body: &[u8],
    ) -> Result<(Value, Vec<String>), StatusError> {
        let mut v = decode_body(ct, body)?;
        let reg = &res.registry;
        let ri = res.info();
        let Some(obj) = v.as_object_mut() else {
            return Err(StatusError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: the body must be a JSON object",
                ri.gvk.kind, ri.gvk.version, ri.gvk.kind
            )));
        };
        let expected_av = ri.gvk.api_version();
        match obj.get("apiVersion").and_then(Value::as_str) {
            Some(av) if !av.is_empty() && av != expected_av => {
                return Err(StatusError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({expected_av})"
                )));
            }
            _ => {
                obj.insert("apiVersion".into(), json!(expected_av));
            }
        }
        match obj.get("kind").and_then(Value::as_str) {
            Some(k) if !k.is_empty() && k != ri.gvk.kind => {
                return Err(StatusError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    ri.gvk.kind
                )));
            }
            _ => {
                obj.insert("kind".into(), json!(ri.gvk.kind));
            }
        }
        if let Some(view) = &res.view {
            v = view.to_storage(v)?;
        }
        reg.strategy.decode(v)
    }
}

/// The options of a delete or deletecollection: the query, then a `DeleteOptions` body in
/// any content type a client may send it (client-go sends protobuf).
async fn read_delete_options(
    req: Request<hyper::body::Incoming>,
    query: &HashMap<String, String>,
) -> Result<DeleteOptions, StatusError> {
    let dry = dry_run(query)?;
    let ct = content_type(&req);
    let body = read_request(req).await?;
    let body = if body.is_empty() {
        None
    } else {
        Some(decode_body(&ct, &body)?)
    };
    let mut opts = DeleteOptions::parse(query, body.as_ref())?;
    opts.dry_run |= dry;
    Ok(opts)
}

fn content_type(req: &Request<hyper::body::Incoming>) -> String {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// One (stored) object in the negotiated format and the served version.
pub fn render_object(res: &ApiResource, code: u16, obj: &Value, format: &Format) -> Response<Body> {
    match format {
        Format::Table { include_object } => {
            let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
            encode(
                code,
                &res.table(std::iter::once(obj), meta, include_object),
                &Format::Json,
            )
        }
        Format::PartialObjectMetadata { .. } => {
            encode(code, &table::partial_object_metadata(obj), &format.plain())
        }
        _ => encode(code, &res.out(obj), format),
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
            let t = res.table(list.items.iter().map(|o| &o.value), lm, include_object);
            encode(200, &t, &Format::Json)
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
            let items: Vec<Cow<Value>> = list.items.iter().map(|o| res.out(&o.value)).collect();
            encode(
                200,
                &json!({"kind": ri.list_kind(), "apiVersion": ri.gvk.api_version(), "metadata": lm, "items": items}),
                format,
            )
        }
    }
}
