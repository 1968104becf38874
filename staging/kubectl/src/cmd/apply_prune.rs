//! `kubectl apply --prune`: deleting what an earlier apply made and this one no longer
//! has. Two ways, as upstream: the allowlist pruner (`-l` or `--all`, objects carrying
//! `last-applied-configuration` of the allowlisted kinds in the visited namespaces), and
//! ApplySets (`--applyset`, alpha behind `KUBECTL_APPLYSET=true`: a parent object records
//! the member kinds and namespaces, members carry `applyset.kubernetes.io/part-of`).
//! Upstream twins: `kubectl/pkg/cmd/apply/prune.go`, `applyset.go`, `applyset_pruner.go`,
//! `kubectl/pkg/util/prune/prune.go`.

use super::apply::{DryRun, LAST_APPLIED};
use super::util::{self, OutputFormat};
use crate::error::CmdError;
use crate::output;
use base64::Engine;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::{ApiResource, Discovery, query_escape};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
pub const ADDITIONAL_NAMESPACES_ANNOTATION: &str = "applyset.kubernetes.io/additional-namespaces";
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const DEPRECATED_GROUP_RESOURCES_ANNOTATION: &str =
    "applyset.kubernetes.io/contains-group-resources";
pub const PARENT_ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const PARENT_CRD_LABEL: &str = "applyset.kubernetes.io/is-parent-type";
const TOOLING_NAME: &str = "kubectl";

/// Whether the ApplySet alpha is on (`cmdutil.ApplySet`: `KUBECTL_APPLYSET=true`).
pub fn applyset_enabled() -> bool {
    std::env::var("KUBECTL_APPLYSET").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The kinds the allowlist pruner visits when `--prune-allowlist` names none.
const DEFAULT_NAMESPACED: &[(&str, &str, &str)] = &[
    ("", "v1", "ConfigMap"),
    ("", "v1", "Endpoints"),
    ("", "v1", "PersistentVolumeClaim"),
    ("", "v1", "Pod"),
    ("", "v1", "ReplicationController"),
    ("", "v1", "Secret"),
    ("", "v1", "Service"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("networking.k8s.io", "v1", "Ingress"),
    ("apps", "v1", "DaemonSet"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "ReplicaSet"),
    ("apps", "v1", "StatefulSet"),
];
const DEFAULT_CLUSTER: &[(&str, &str, &str)] =
    &[("", "v1", "Namespace"), ("", "v1", "PersistentVolume")];

/// What was applied, for the pruners: the objects' UIDs and namespaces.
#[derive(Default)]
pub struct Visited {
    pub uids: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
}

/// How pruned objects are deleted and reported.
pub struct DeleteHow<'a> {
    /// `--cascade` as a propagation policy.
    pub propagation: &'static str,
    pub grace_period: i64,
    pub dry: DryRun,
    pub format: &'a Option<OutputFormat>,
}

/// `prune.ParseResources`: `group/version/kind` entries (`core` for the core group).
pub fn parse_allowlist(
    discovery: &Discovery,
    entries: &[String],
) -> Result<Vec<ApiResource>, CmdError> {
    entries
        .iter()
        .map(|e| {
            let parts: Vec<&str> = e.split('/').collect();
            let [group, version, kind] = parts[..] else {
                return Err(CmdError::msg(format!(
                    "invalid GroupVersionKind format: {e}, please follow <group/version/kind>"
                )));
            };
            let group = if group == "core" { "" } else { group };
            mapping(discovery, group, kind, Some(version))
        })
        .collect()
}

/// `RESTMapper.RESTMapping(GroupKind, versions...)`: the preferred version unless one is named.
fn mapping(
    discovery: &Discovery,
    group: &str,
    kind: &str,
    version: Option<&str>,
) -> Result<ApiResource, CmdError> {
    discovery
        .resource_for_group_kind(group, kind, version)
        .cloned()
        .ok_or_else(|| {
            // apimachinery's NoKindMatchError.
            CmdError::msg(match version {
                Some(v) if group.is_empty() => {
                    format!("no matches for kind {kind:?} in version {v:?}")
                }
                Some(v) => format!("no matches for kind {kind:?} in version \"{group}/{v}\""),
                None => format!("no matches for kind {kind:?} in group {group:?}"),
            })
        })
}

/// The allowlist pruner (`pruner.pruneAll`).
pub async fn prune_allowlisted(
    client: &RestClient,
    discovery: &Discovery,
    allowlist: &[ApiResource],
    selector: Option<&str>,
    visited: &Visited,
    how: &DeleteHow<'_>,
) -> Result<(), CmdError> {
    let resources: Vec<ApiResource> = if allowlist.is_empty() {
        // Upstream tests `o.Namespace != ""`, which the defaulted namespace always is.
        output::flush();
        cli_runtime::klog::line(
            'W',
            "prune.go:71",
            "Deprecated: kubectl apply will no longer prune non-namespaced resources by default when used with the --namespace flag in a future release. To preserve the current behaviour, list the resources you want to target explicitly in the --prune-allowlist flag.",
        );
        DEFAULT_NAMESPACED
            .iter()
            .chain(DEFAULT_CLUSTER)
            .map(|(g, v, k)| {
                mapping(discovery, g, k, Some(v)).map_err(|e| {
                    CmdError::msg(format!(
                        "error retrieving RESTMappings to prune: invalid resource {g}/{v}, Kind={k}: {}",
                        e.text.trim_start_matches("error: ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        allowlist.to_vec()
    };
    let (namespaced, cluster): (Vec<&ApiResource>, Vec<&ApiResource>) =
        resources.iter().partition(|r| r.namespaced);
    let mut lists: Vec<(Option<&str>, &ApiResource)> = Vec::new();
    for ns in &visited.namespaces {
        lists.extend(namespaced.iter().map(|r| (Some(ns.as_str()), *r)));
    }
    lists.extend(cluster.iter().map(|r| (None, *r)));
    for (ns, r) in lists {
        let scope = if ns.is_some() {
            "namespaced"
        } else {
            "nonNamespaced"
        };
        let failed = |e: String| {
            CmdError::msg(format!(
                "error pruning {scope} object {}, Kind={}: {e}",
                r.api_version(),
                r.kind
            ))
        };
        let mut path = r.collection_path(ns);
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            path.push_str(&format!("?labelSelector={}", query_escape(s)));
        }
        let list = client
            .get_json(&path, client::JSON)
            .await
            .map_err(|e| failed(e.server_message()))?;
        for obj in list["items"].as_array().into_iter().flatten() {
            let meta = &obj["metadata"];
            if meta["annotations"].get(LAST_APPLIED).is_none()
                || meta["uid"]
                    .as_str()
                    .is_some_and(|u| visited.uids.contains(u))
            {
                continue;
            }
            let name = meta["name"].as_str().unwrap_or_default();
            delete_and_report(client, r, ns, name, obj, how)
                .await
                .map_err(failed)?;
        }
    }
    Ok(())
}

/// `runDelete` and the `pruned` printer.
async fn delete_and_report(
    client: &RestClient,
    r: &ApiResource,
    ns: Option<&str>,
    name: &str,
    obj: &Value,
    how: &DeleteHow<'_>,
) -> Result<(), String> {
    if how.dry != DryRun::Client {
        let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if how.grace_period >= 0 {
            options["gracePeriodSeconds"] = json!(how.grace_period);
        }
        options["propagationPolicy"] = json!(how.propagation);
        if how.dry == DryRun::Server {
            options["dryRun"] = json!(["All"]);
        }
        client
            .send_json(
                http::Method::DELETE,
                &r.object_path(ns, name),
                client::JSON,
                &options,
            )
            .await
            .map_err(|e| e.server_message())?;
    }
    let mut shown = obj.clone();
    shown["kind"] = json!(r.kind);
    shown["apiVersion"] = json!(r.api_version());
    match how.format {
        Some(fmt) => util::print_object(&shown, fmt, false).map_err(|e| e.text)?,
        None => output::print(&format!(
            "{} pruned{}\n",
            cli_runtime::printers::name_line(&shown),
            how.dry.suffix()
        )),
    }
    Ok(())
}

/// An ApplySet: its parent object and the kinds and namespaces its members span.
pub struct ApplySet {
    pub parent: ApiResource,
    pub name: String,
    /// Empty for a cluster-scoped parent.
    pub namespace: String,
    /// What the parent recorded before this apply (`currentResources`/`Namespaces`).
    current_kinds: BTreeMap<String, ApiResource>,
    current_namespaces: BTreeSet<String>,
    /// What this apply has (`updatedResources`/`Namespaces`).
    updated_kinds: BTreeMap<String, ApiResource>,
    updated_namespaces: BTreeSet<String>,
}

/// `schema.GroupKind.String()`: `Kind.group`, or `Kind` in the core group.
fn group_kind(r: &ApiResource) -> String {
    if r.group.is_empty() {
        r.kind.clone()
    } else {
        format!("{}.{}", r.kind, r.group)
    }
}

impl ApplySet {
    /// `ParseApplySetParentRef`: `[RESOURCE][.GROUP]/NAME`, a Secret when no type is
    /// given. The namespace is `-n`'s only, never the kubeconfig's.
    pub fn parse(
        discovery: &Discovery,
        reference: &str,
        flag_namespace: Option<&str>,
    ) -> Result<ApplySet, CmdError> {
        let invalid =
            |e: String| CmdError::msg(format!("invalid parent reference {reference:?}: {e}"));
        let (resource, name) = reference.split_once('/').unwrap_or(("secrets", reference));
        if name.is_empty() {
            return Err(invalid("name cannot be blank".into()));
        }
        let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
        let parent = discovery
            .resources
            .iter()
            .find(|r| {
                r.group == group
                    && !r.resource.contains('/')
                    && (r.resource == res.to_lowercase()
                        || r.singular == res.to_lowercase()
                        || r.short_names.iter().any(|s| s == res))
            })
            .and_then(|r| discovery.resource_for_group_kind(&r.group, &r.kind, None))
            .cloned()
            .ok_or_else(|| invalid(format!("no matches for {group}/, Resource={res}")))?;
        let namespace = match flag_namespace {
            Some(ns) if parent.namespaced => ns.to_string(),
            _ => String::new(),
        };
        Ok(ApplySet {
            parent,
            name: name.to_string(),
            namespace,
            current_kinds: BTreeMap::new(),
            current_namespaces: BTreeSet::new(),
            updated_kinds: BTreeMap::new(),
            updated_namespaces: BTreeSet::new(),
        })
    }

    /// `applyset-<base64url(sha256(name.namespace.Kind.group))>-v1`.
    pub fn id(&self) -> String {
        let unencoded = [
            self.name.as_str(),
            &self.namespace,
            &self.parent.kind,
            &self.parent.group,
        ]
        .join(".");
        let hashed = ring::digest::digest(&ring::digest::SHA256, unencoded.as_bytes());
        format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hashed.as_ref())
        )
    }

    fn is_builtin_parent(&self) -> bool {
        self.parent.group.is_empty()
            && self.parent.version == "v1"
            && matches!(self.parent.resource.as_str(), "secrets" | "configmaps")
    }

    /// `ApplySet.Validate`: a namespace for a namespaced parent, and a permitted type.
    pub async fn validate(&self, client: &RestClient) -> Result<(), CmdError> {
        let mut errors = Vec::new();
        if self.parent.namespaced && self.namespace.is_empty() {
            errors.push("namespace is required to use namespace-scoped ApplySet".to_string());
        }
        if !self.is_builtin_parent() {
            let path = format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?labelSelector={}",
                query_escape(PARENT_CRD_LABEL)
            );
            match client.get_json(&path, client::JSON).await {
                Err(e) => errors.push(format!(
                    "identifying allowed custom resource parent types: {}",
                    e.server_message()
                )),
                Ok(list) => {
                    let wanted = self.parent.resource_group();
                    let permitted = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|crd| crd["metadata"]["name"] == wanted.as_str());
                    if !permitted {
                        errors.push(format!(
                            "resource \"{}/{}, Resource={}\" is not permitted as an ApplySet parent",
                            self.parent.group, self.parent.version, self.parent.resource
                        ));
                    }
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(CmdError::msg(errors.remove(0))),
            _ => Err(CmdError::msg(format!("[{}]", errors.join(", ")))),
        }
    }

    /// `AddLabels`: every member carries `part-of`, which the input may not set itself.
    pub fn label_member(&self, obj: &mut Value) -> Result<(), CmdError> {
        if obj["metadata"]["labels"].get(PART_OF_LABEL).is_some() {
            return Err(CmdError::msg(format!(
                "ApplySet label {PART_OF_LABEL:?} already set in input data"
            )));
        }
        if !obj["metadata"]["labels"].is_object() {
            obj["metadata"]["labels"] = json!({});
        }
        obj["metadata"]["labels"][PART_OF_LABEL] = json!(self.id());
        Ok(())
    }

    /// `addResource`: a member's kind, and its namespace when it is namespaced.
    pub fn add_member(&mut self, r: &ApiResource, namespace: &str) {
        self.updated_kinds
            .entry(group_kind(r))
            .or_insert_with(|| r.clone());
        if r.namespaced && !namespace.is_empty() {
            self.updated_namespaces.insert(namespace.to_string());
        }
    }

    fn display(&self) -> String {
        format!(
            "{}.{}/{}",
            self.parent.resource, self.parent.group, self.name
        )
    }

    /// `fetchParent`: what the existing parent recorded, after checking it is ours.
    async fn fetch_parent(
        &mut self,
        client: &RestClient,
        discovery: &Discovery,
    ) -> Result<(), CmdError> {
        let ns = Some(self.namespace.as_str()).filter(|n| !n.is_empty());
        let parent = match client
            .get_json(&self.parent.object_path(ns, &self.name), client::JSON)
            .await
        {
            Ok(p) => p,
            Err(e) if e.is_not_found() => {
                if !self.is_builtin_parent() {
                    return Err(CmdError::msg(
                        "custom resource ApplySet parents cannot be created automatically",
                    ));
                }
                return Ok(());
            }
            Err(e) => {
                return Err(CmdError::msg(format!(
                    "failed to fetch ApplySet parent object {:?}: {}",
                    self.display(),
                    e.server_message()
                )));
            }
        };
        let who = self.display();
        let annotations = &parent["metadata"]["annotations"];
        let Some(tooling) = annotations[TOOLING_ANNOTATION].as_str() else {
            return Err(CmdError::msg(format!(
                "ApplySet parent object {who:?} already exists and is missing required annotation {TOOLING_ANNOTATION:?}"
            )));
        };
        let managed_by = match tooling.rsplit_once('/') {
            Some((base, _)) => base,
            None => tooling,
        };
        if managed_by != TOOLING_NAME {
            return Err(CmdError::msg(format!(
                "ApplySet parent object {who:?} already exists and is managed by tooling {managed_by:?} instead of {TOOLING_NAME:?}"
            )));
        }
        let Some(id) = parent["metadata"]["labels"][PARENT_ID_LABEL].as_str() else {
            return Err(CmdError::msg(format!(
                "ApplySet parent object {who:?} exists and does not have required label {PARENT_ID_LABEL}"
            )));
        };
        if id != self.id() {
            return Err(CmdError::msg(format!(
                "ApplySet parent object {who:?} exists and has incorrect value for label {PARENT_ID_LABEL:?} (got: {id}, want: {})",
                self.id()
            )));
        }
        self.current_kinds = parse_kinds(annotations, discovery)
            .map_err(|e| CmdError::msg(format!("parsing ApplySet annotation on {who:?}: {e}")))?;
        self.current_namespaces = annotations[ADDITIONAL_NAMESPACES_ANNOTATION]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        if self.parent.namespaced {
            self.current_namespaces.insert(self.namespace.clone());
        }
        Ok(())
    }

    /// `BeforeApply`: check the parent, then record the union of the old and new kinds
    /// and namespaces, so an interrupted apply still prunes everything next time.
    pub async fn before_apply(
        &mut self,
        client: &RestClient,
        discovery: &Discovery,
        dry: DryRun,
    ) -> Result<(), CmdError> {
        self.fetch_parent(client, discovery).await?;
        let kinds: BTreeSet<String> = self
            .current_kinds
            .keys()
            .chain(self.updated_kinds.keys())
            .cloned()
            .collect();
        let namespaces: BTreeSet<String> = self
            .current_namespaces
            .union(&self.updated_namespaces)
            .cloned()
            .collect();
        self.update_parent(client, &kinds, &namespaces, dry).await
    }

    /// `Prune`: delete the members no longer applied, then record exactly this apply's
    /// kinds and namespaces.
    pub async fn prune(
        &self,
        client: &RestClient,
        visited: &Visited,
        how: &DeleteHow<'_>,
    ) -> Result<(), CmdError> {
        let selector = format!("{PART_OF_LABEL}={}", self.id());
        let mut lists: Vec<(Option<&str>, &ApiResource)> = Vec::new();
        for r in self.current_kinds.values() {
            if r.namespaced {
                lists.extend(
                    self.current_namespaces
                        .iter()
                        .map(|ns| (Some(ns.as_str()), r)),
                );
            } else {
                lists.push((None, r));
            }
        }
        let mut doomed = Vec::new();
        for (ns, r) in lists {
            let path = format!(
                "{}?labelSelector={}",
                r.collection_path(ns),
                query_escape(&selector)
            );
            let list = client.get_json(&path, client::JSON).await.map_err(|e| {
                CmdError::msg(format!(
                    "listing {}, Kind={} objects for pruning: {}",
                    r.api_version(),
                    r.kind,
                    e.server_message()
                ))
            })?;
            for obj in list["items"].as_array().cloned().unwrap_or_default() {
                if obj["metadata"]["uid"]
                    .as_str()
                    .is_some_and(|u| visited.uids.contains(u))
                {
                    continue;
                }
                doomed.push((ns, r, obj));
            }
        }
        for (ns, r, obj) in doomed {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            delete_and_report(client, r, ns, name, &obj, how)
                .await
                .map_err(|e| {
                    let at = match ns {
                        Some(ns) => format!("{ns}/{name}"),
                        None => name.to_string(),
                    };
                    CmdError::msg(format!("pruning {} {at}: {e}", group_kind(r)))
                })?;
        }
        let kinds: BTreeSet<String> = self.updated_kinds.keys().cloned().collect();
        self.update_parent(client, &kinds, &self.updated_namespaces, how.dry)
            .await
            .map_err(|e| {
                CmdError::msg(format!(
                    "apply and prune succeeded, but ApplySet update failed: {}",
                    e.text.trim_start_matches("error: ")
                ))
            })
    }

    /// `updateParent`: a server-side apply of the parent's label and annotations as
    /// `kubectl-applyset`, forced after a conflict (with upstream's warning).
    async fn update_parent(
        &self,
        client: &RestClient,
        kinds: &BTreeSet<String>,
        namespaces: &BTreeSet<String>,
        dry: DryRun,
    ) -> Result<(), CmdError> {
        if dry == DryRun::Client {
            return Ok(());
        }
        let additional: Vec<&str> = namespaces
            .iter()
            .map(String::as_str)
            .filter(|ns| *ns != self.namespace)
            .collect();
        let mut metadata = json!({
            "name": self.name,
            "creationTimestamp": null,
            "labels": {PARENT_ID_LABEL: self.id()},
            "annotations": {
                TOOLING_ANNOTATION: format!("{TOOLING_NAME}/{}", cli_runtime::KUBECTL_VERSION),
                GROUP_KINDS_ANNOTATION: kinds.iter().cloned().collect::<Vec<_>>().join(","),
                ADDITIONAL_NAMESPACES_ANNOTATION: additional.join(","),
            },
        });
        if !self.namespace.is_empty() {
            metadata["namespace"] = json!(self.namespace);
        }
        let body = json!({
            "kind": self.parent.kind,
            "apiVersion": self.parent.api_version(),
            "metadata": metadata,
        });
        let ns = Some(self.namespace.as_str()).filter(|n| !n.is_empty());
        let path = self.parent.object_path(ns, &self.name);
        let send = |force: bool| {
            let mut q = format!(
                "{path}?fieldManager={TOOLING_NAME}-applyset&fieldValidation=Strict&force={force}"
            );
            if dry == DryRun::Server {
                q.push_str("&dryRun=All");
            }
            let body = serde_json::to_vec(&body).unwrap_or_default();
            async move {
                client
                    .request(
                        http::Method::PATCH,
                        &q,
                        client::JSON,
                        Some(("application/apply-patch+yaml", body)),
                    )
                    .await
            }
        };
        let result = match send(false).await {
            Err(e) if e.is_conflict() => {
                output::flush();
                cli_runtime::klog::line(
                    'W',
                    "applyset.go:447",
                    &format!(
                        "WARNING: failed to update ApplySet: {}\nApplySet field manager {TOOLING_NAME}-applyset should own these fields. Retrying with conflicts forced.",
                        e.server_message()
                    ),
                );
                send(true).await
            }
            other => other,
        };
        result.map(|_| ()).map_err(|e| {
            CmdError::msg(format!("failed to update ApplySet: {}", e.server_message()))
        })
    }
}

/// `parseKindAnnotation`: the parent's `contains-group-kinds` (or the deprecated
/// `contains-group-resources`) as mappings.
fn parse_kinds(
    annotations: &Value,
    discovery: &Discovery,
) -> Result<BTreeMap<String, ApiResource>, String> {
    let mut out = BTreeMap::new();
    let Some(kinds) = annotations[GROUP_KINDS_ANNOTATION].as_str() else {
        if let Some(grs) = annotations[DEPRECATED_GROUP_RESOURCES_ANNOTATION]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            for gr in grs.split(',') {
                let r = discovery.resource_for(gr).ok_or_else(|| {
                    format!(
                        "invalid group resource in {DEPRECATED_GROUP_RESOURCES_ANNOTATION:?} annotation: no matches for {gr}"
                    )
                })?;
                out.insert(group_kind(r), r.clone());
            }
            return Ok(out);
        }
        return Err(format!(
            "kubectl requires the {GROUP_KINDS_ANNOTATION:?} annotation to be set on all ApplySet parent objects"
        ));
    };
    for gk in kinds.split(',').filter(|s| !s.is_empty()) {
        let (kind, group) = gk.split_once('.').unwrap_or((gk, ""));
        let r = discovery
            .resource_for_group_kind(group, kind, None)
            .ok_or_else(|| {
                format!(
                    "could not find mapping for kind in {GROUP_KINDS_ANNOTATION:?} annotation: no matches for kind {kind:?} in group {group:?}"
                )
            })?;
        out.insert(gk.to_string(), r.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_parent(name: &str, ns: &str) -> ApplySet {
        ApplySet {
            parent: ApiResource {
                group: String::new(),
                version: "v1".into(),
                resource: "secrets".into(),
                singular: "secret".into(),
                kind: "Secret".into(),
                namespaced: true,
                verbs: vec![],
                short_names: vec![],
                categories: vec![],
            },
            name: name.into(),
            namespace: ns.into(),
            current_kinds: BTreeMap::new(),
            current_namespaces: BTreeSet::new(),
            updated_kinds: BTreeMap::new(),
            updated_namespaces: BTreeSet::new(),
        }
    }

    #[test]
    fn id_is_upstreams_hash() {
        // sha256("set1.ns1.Secret.") in unpadded base64url, as upstream's ApplySet.ID().
        let digest = ring::digest::digest(&ring::digest::SHA256, b"set1.ns1.Secret.");
        let want = format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
        assert_eq!(secret_parent("set1", "ns1").id(), want);
        assert!(!want.contains('=') && !want.contains('+') && !want.contains('/'));
    }

    #[test]
    fn members_are_labelled_once() {
        let set = secret_parent("s", "n");
        let mut obj = json!({"metadata": {"name": "a"}});
        set.label_member(&mut obj).unwrap();
        assert_eq!(obj["metadata"]["labels"][PART_OF_LABEL], json!(set.id()));
        let err = set.label_member(&mut obj).unwrap_err();
        assert!(err.text.contains("already set in input data"));
    }
}
