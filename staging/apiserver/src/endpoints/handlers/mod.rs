//! Resource request handlers (upstream `endpoints/handlers`): the resource types, the
//! request context and the dispatch by verb; each verb lives in its own file (`get.rs`,
//! `create.rs`, `update.rs`, `apply.rs`, `delete.rs`, `subresource.rs`), with upstream's
//! status codes, warnings and `metav1.Status` errors.

mod apply;
mod create;
mod delete;
mod get;
mod render;
mod subresource;
mod update;

pub use render::{render_list, render_object};

use crate::admission::{self, Operation};
use crate::authentication::UserInfo;
use crate::endpoints::admit::Admission;
use crate::endpoints::fieldmanager;
use crate::endpoints::negotiation::{
    self, Body, Format, decode_body, error_response, read_request,
};
use crate::endpoints::openapi::{OpenApiCache, SchemaSet};
use crate::endpoints::request::RequestInfo;
use crate::endpoints::shape::Shape;
use crate::endpoints::table;
use crate::endpoints::view::VersionView;
use crate::registry::generic::{Part, Registry};
use crate::registry::options::{DeleteOptions, ListOptions};
use crate::registry::strategy::ResourceInfo;
use apimachinery::StatusError;
use async_trait::async_trait;
use hyper::{Request, Response};
use serde_json::Value;
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
    pub fn out<'a>(&self, obj: &'a Value) -> Result<Cow<'a, Value>, StatusError> {
        Ok(match &self.view {
            Some(v) => Cow::Owned(v.to_served(obj)?),
            None if self.registry.strategy.defaults_on_read() => {
                let mut o = obj.clone();
                self.registry.strategy.read_defaults(&mut o);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(obj),
        })
    }

    /// Stored objects in the served version, converted together.
    pub fn out_list<'a>(&self, objs: &[&'a Value]) -> Result<Vec<Cow<'a, Value>>, StatusError> {
        match &self.view {
            Some(v) => Ok(v
                .to_served_list(objs)?
                .into_iter()
                .map(Cow::Owned)
                .collect()),
            None => objs.iter().map(|o| self.out(o)).collect(),
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
    ) -> Result<Value, StatusError> {
        Ok(match &self.view {
            // A version with printer columns of its own reads the served form.
            Some(v) if v.prints() => {
                let row = |o: &Value| v.table_row(o);
                let stored: Vec<&Value> = objs.collect();
                let objs = v.to_served_list(&stored)?;
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
                // Views without printer columns of their own convert infallibly.
                let served = |o: &Value| self.out(o).map_or_else(|_| o.clone(), Cow::into_owned);
                table::render(s.table_columns(), &row, objs, &served, list_meta, include)
            }
        })
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
    /// Bumped whenever resources come or go (the aggregator registers their versions).
    resources_changed: tokio::sync::watch::Sender<u64>,
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
            resources_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Wakes on every change of the served resources.
    pub fn watch_resources(&self) -> tokio::sync::watch::Receiver<u64> {
        self.resources_changed.subscribe()
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
        self.resources_changed.send_modify(|g| *g += 1);
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
        if res.virtual_rest.is_some() {
            return self.serve_virtual(req, res, ctx).await;
        }
        match ctx.info.verb.as_str() {
            "get" => self.get(res, ctx).await,
            "list" => self.list(res, ctx).await,
            "watch" => self.watch(res, ctx).await,
            "create" => self.create(req, res, ctx).await,
            "update" => self.update(req, res, ctx).await,
            "patch" => self.patch_verb(req, res, ctx).await,
            "delete" => self.delete(req, res, ctx).await,
            "deletecollection" if !res.info().delete_collection => Err(
                StatusError::method_not_supported(&res.info().group_resource(), &ctx.info.verb),
            ),
            "deletecollection" => self.deletecollection(req, res, ctx).await,
            verb => Err(StatusError::method_not_supported(
                &res.registry.strategy.info().group_resource(),
                verb,
            )),
        }
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
