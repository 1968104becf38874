//! `-k DIR` and `kubectl kustomize DIR`: the plain kustomizations (upstream kubectl
//! embeds `sigs.k8s.io/kustomize`). What is built: `resources` (files and nested
//! kustomization directories), `namespace`, `namePrefix`/`nameSuffix`, `commonLabels`
//! (metadata, selectors and pod templates), `labels`, `commonAnnotations`, `images`,
//! `replicas`, `configMapGenerator`/`secretGenerator` (literals, files, env files) with
//! kustomize's content hash suffix and `generatorOptions`, and the renamed ConfigMaps,
//! Secrets and ServiceAccounts updated where pods refer to them. Any other field is
//! refused by name rather than ignored.

use crate::resource::FileObject;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const SUPPORTED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
];

/// The objects `dir`'s kustomization builds, in kustomize's legacy order.
pub fn build(dir: &str) -> Result<Vec<FileObject>, String> {
    if !Path::new(dir).is_dir() {
        let abs = std::env::current_dir()
            .map(|c| c.join(dir))
            .unwrap_or_else(|_| dir.into());
        return Err(format!(
            "must build at directory: not a valid directory: evalsymlink failure on '{dir}' : lstat {}: no such file or directory",
            abs.display()
        ));
    }
    let mut objects = build_dir(Path::new(dir))?;
    objects.sort_by_key(|o| legacy_rank(o["kind"].as_str().unwrap_or_default()));
    Ok(objects
        .into_iter()
        .map(|object| FileObject {
            source: dir.to_string(),
            object,
        })
        .collect())
}

fn kustomization_file(dir: &Path) -> Result<PathBuf, String> {
    FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
                absolute(dir)
            )
        })
}

fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn build_dir(dir: &Path) -> Result<Vec<Value>, String> {
    let file = kustomization_file(dir)?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let k = crate::resource::parse_yaml_values(&text)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let Some(fields) = k.as_object() else {
        return Err(format!("{}: not a kustomization", file.display()));
    };
    if let Some(other) = fields.keys().find(|f| !SUPPORTED.contains(&f.as_str())) {
        return Err(format!(
            "kustomization field {other:?} in {} is not supported by this kubectl's -k (it builds {}); use the kustomize binary and pipe its output to kubectl apply -f -",
            file.display(),
            SUPPORTED[3..].join(", ")
        ));
    }
    if fields.contains_key("commonLabels") {
        eprintln!(
            "# Warning: 'commonLabels' is deprecated. Please use 'labels' instead. Run 'kustomize edit fix' to update your Kustomization automatically."
        );
    }
    refuse_unknown_keys(&k, &file)?;
    let mut objects = Vec::new();
    for r in k["resources"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap_or_default();
        if r.contains("://") || r.starts_with("github.com/") {
            return Err(format!(
                "remote resource {r:?} is not supported by this kubectl's -k"
            ));
        }
        let path = dir.join(r);
        if path.is_dir() {
            objects.extend(build_dir(&path)?);
        } else {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "accumulating resources: accumulation err='accumulating resources from '{r}': open {}: {e}'",
                    absolute(&path)
                )
            })?;
            for v in crate::resource::parse_yaml_values(&text)? {
                if v.is_object() {
                    objects.push(v);
                }
            }
        }
    }
    // Generated objects, with their hash suffix unless disabled.
    let options = &k["generatorOptions"];
    let mut renamed: BTreeMap<(String, String), String> = BTreeMap::new();
    for (field, kind) in [
        ("configMapGenerator", "ConfigMap"),
        ("secretGenerator", "Secret"),
    ] {
        for g in k[field].as_array().into_iter().flatten() {
            let (obj, base) = generate(dir, kind, g, options)?;
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            renamed.insert((kind.to_string(), base), name);
            objects.push(obj);
        }
    }
    let prefix = k["namePrefix"].as_str().unwrap_or_default();
    let suffix = k["nameSuffix"].as_str().unwrap_or_default();
    for o in &mut objects {
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        if (!prefix.is_empty() || !suffix.is_empty())
            && kind != "Namespace"
            && kind != "CustomResourceDefinition"
        {
            let old = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let new = format!("{prefix}{old}{suffix}");
            o["metadata"]["name"] = json!(new);
            let key = (
                kind.clone(),
                renamed_base(&renamed, &kind, &old).unwrap_or(old),
            );
            renamed.insert(key, new);
        }
        if let Some(ns) = k["namespace"].as_str().filter(|n| !n.is_empty())
            && !cluster_scoped(&kind)
        {
            o["metadata"]["namespace"] = json!(ns);
        }
    }
    // commonLabels: metadata, selectors and templates; labels: as each entry says.
    let mut label_sets: Vec<(Map<String, Value>, bool, bool)> = Vec::new();
    if let Some(m) = k["commonLabels"].as_object() {
        label_sets.push((m.clone(), true, true));
    }
    for l in k["labels"].as_array().into_iter().flatten() {
        let pairs = l["pairs"].as_object().cloned().unwrap_or_default();
        let selectors = l["includeSelectors"].as_bool().unwrap_or(false);
        let templates = selectors || l["includeTemplates"].as_bool().unwrap_or(false);
        label_sets.push((pairs, selectors, templates));
    }
    for (pairs, selectors, templates) in &label_sets {
        for o in &mut objects {
            add_labels(o, pairs, *selectors, *templates);
        }
    }
    if let Some(ann) = k["commonAnnotations"].as_object() {
        for o in &mut objects {
            merge_map(&mut o["metadata"]["annotations"], ann);
            if o["spec"]["template"]["metadata"].is_object() || o["spec"]["template"].is_object() {
                merge_map(&mut o["spec"]["template"]["metadata"]["annotations"], ann);
            }
        }
    }
    for o in &mut objects {
        for_each_pod_spec(o, &mut |spec| {
            rename_refs(spec, &renamed);
            for img in k["images"].as_array().into_iter().flatten() {
                set_image(spec, img);
            }
        });
    }
    for r in k["replicas"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or_default();
        for o in &mut objects {
            let current = o["metadata"]["name"].as_str().unwrap_or_default();
            let scalable = matches!(
                o["kind"].as_str(),
                Some("Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController")
            );
            if scalable && (current == name || current == format!("{prefix}{name}{suffix}")) {
                o["spec"]["replicas"] = r["count"].clone();
            }
        }
    }
    Ok(objects)
}

/// The keys this build reads inside list entries and options; any other is refused by
/// name rather than ignored.
fn refuse_unknown_keys(k: &Value, file: &Path) -> Result<(), String> {
    const OPTIONS: &[&str] = &["labels", "annotations", "disableNameSuffixHash"];
    let lists: [(&str, &[&str]); 5] = [
        (
            "configMapGenerator",
            &[
                "name", "literals", "files", "envs", "env", "behavior", "options",
            ],
        ),
        (
            "secretGenerator",
            &[
                "name", "literals", "files", "envs", "env", "type", "behavior", "options",
            ],
        ),
        ("labels", &["pairs", "includeSelectors", "includeTemplates"]),
        ("images", &["name", "newName", "newTag", "digest"]),
        ("replicas", &["name", "count"]),
    ];
    let check = |what: &str, v: &Value, allowed: &[&str]| -> Result<(), String> {
        match v
            .as_object()
            .and_then(|m| m.keys().find(|f| !allowed.contains(&f.as_str())))
        {
            Some(f) => Err(format!(
                "{what} field {f:?} in {} is not supported by this kubectl's -k",
                file.display()
            )),
            None => Ok(()),
        }
    };
    for (field, allowed) in lists {
        for entry in k[field].as_array().into_iter().flatten() {
            check(field, entry, allowed)?;
            check(&format!("{field} options"), &entry["options"], OPTIONS)?;
        }
    }
    check("generatorOptions", &k["generatorOptions"], OPTIONS)
}

fn renamed_base(
    renamed: &BTreeMap<(String, String), String>,
    kind: &str,
    current: &str,
) -> Option<String> {
    renamed
        .iter()
        .find(|((k, _), v)| k == kind && v.as_str() == current)
        .map(|((_, base), _)| base.clone())
}

fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "IngressClass"
            | "Node"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "APIService"
            | "CSIDriver"
            | "RuntimeClass"
    )
}

fn merge_map(target: &mut Value, add: &Map<String, Value>) {
    if !target.is_object() {
        *target = json!({});
    }
    let m = target.as_object_mut().expect("an object");
    for (k, v) in add {
        m.insert(k.clone(), v.clone());
    }
}

fn add_labels(o: &mut Value, pairs: &Map<String, Value>, selectors: bool, templates: bool) {
    merge_map(&mut o["metadata"]["labels"], pairs);
    let kind = o["kind"].as_str().unwrap_or_default().to_string();
    let workload = matches!(
        kind.as_str(),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job"
    );
    if selectors {
        match kind.as_str() {
            "Service" => merge_map(&mut o["spec"]["selector"], pairs),
            "ReplicationController" => merge_map(&mut o["spec"]["selector"], pairs),
            "PodDisruptionBudget" | "NetworkPolicy" => {
                let field = if kind == "NetworkPolicy" {
                    "podSelector"
                } else {
                    "selector"
                };
                merge_map(&mut o["spec"][field]["matchLabels"], pairs);
            }
            _ if workload => merge_map(&mut o["spec"]["selector"]["matchLabels"], pairs),
            _ => {}
        }
    }
    if templates {
        if workload || kind == "ReplicationController" {
            merge_map(&mut o["spec"]["template"]["metadata"]["labels"], pairs);
        }
        if kind == "CronJob" {
            merge_map(&mut o["spec"]["jobTemplate"]["metadata"]["labels"], pairs);
            merge_map(
                &mut o["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
                pairs,
            );
        }
    }
}

fn for_each_pod_spec(o: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let kind = o["kind"].as_str().unwrap_or_default().to_string();
    match kind.as_str() {
        "Pod" => {
            if let Some(spec) = o.get_mut("spec") {
                f(spec);
            }
        }
        "CronJob" => {
            if let Some(spec) = o.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                f(spec);
            }
        }
        _ => {
            if let Some(spec) = o.pointer_mut("/spec/template/spec") {
                f(spec);
            }
        }
    }
}

/// Pods' references to ConfigMaps, Secrets and ServiceAccounts that were renamed.
fn rename_refs(spec: &mut Value, renamed: &BTreeMap<(String, String), String>) {
    let rename = |v: &mut Value, kind: &str| {
        if let Some(n) = v.as_str()
            && let Some(new) = renamed.get(&(kind.to_string(), n.to_string()))
        {
            *v = json!(new);
        }
    };
    if let Some(sa) = spec.get_mut("serviceAccountName") {
        rename(sa, "ServiceAccount");
    }
    if let Some(list) = spec
        .get_mut("imagePullSecrets")
        .and_then(Value::as_array_mut)
    {
        for s in list {
            rename(&mut s["name"], "Secret");
        }
    }
    if let Some(list) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in list {
            if v["configMap"].is_object() {
                rename(&mut v["configMap"]["name"], "ConfigMap");
            }
            if v["secret"].is_object() {
                rename(&mut v["secret"]["secretName"], "Secret");
            }
            if let Some(sources) = v
                .pointer_mut("/projected/sources")
                .and_then(Value::as_array_mut)
            {
                for s in sources {
                    if s["configMap"].is_object() {
                        rename(&mut s["configMap"]["name"], "ConfigMap");
                    }
                    if s["secret"].is_object() {
                        rename(&mut s["secret"]["name"], "Secret");
                    }
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                for e in env {
                    if e["valueFrom"]["configMapKeyRef"].is_object() {
                        rename(&mut e["valueFrom"]["configMapKeyRef"]["name"], "ConfigMap");
                    }
                    if e["valueFrom"]["secretKeyRef"].is_object() {
                        rename(&mut e["valueFrom"]["secretKeyRef"]["name"], "Secret");
                    }
                }
            }
            if let Some(from) = c.get_mut("envFrom").and_then(Value::as_array_mut) {
                for e in from {
                    if e["configMapRef"].is_object() {
                        rename(&mut e["configMapRef"]["name"], "ConfigMap");
                    }
                    if e["secretRef"].is_object() {
                        rename(&mut e["secretRef"]["name"], "Secret");
                    }
                }
            }
        }
    }
}

/// `images:` entries: `name` matched against the image without its tag or digest.
fn set_image(spec: &mut Value, img: &Value) {
    let name = img["name"].as_str().unwrap_or_default();
    for list in ["containers", "initContainers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            let Some(current) = c["image"].as_str().map(str::to_string) else {
                continue;
            };
            let (repo, tag) = split_image(&current);
            if repo != name {
                continue;
            }
            let repo = img["newName"].as_str().unwrap_or(repo).to_string();
            let image = if let Some(d) = img["digest"].as_str() {
                format!("{repo}@{d}")
            } else if let Some(t) = img["newTag"].as_str() {
                format!("{repo}:{t}")
            } else {
                format!("{repo}{tag}")
            };
            c["image"] = json!(image);
        }
    }
}

/// `registry:5000/app:1.0` → (`registry:5000/app`, `:1.0`); digests likewise.
fn split_image(image: &str) -> (&str, &str) {
    if let Some(i) = image.find('@') {
        return (&image[..i], &image[i..]);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i..]),
        None => (image, ""),
    }
}

/// A `configMapGenerator`/`secretGenerator` entry as its object and its base name.
fn generate(dir: &Path, kind: &str, g: &Value, options: &Value) -> Result<(Value, String), String> {
    let name = g["name"].as_str().unwrap_or_default().to_string();
    if g["behavior"].as_str().is_some_and(|b| b != "create") {
        return Err(format!(
            "generator behavior {:?} is not supported by this kubectl's -k",
            g["behavior"].as_str().unwrap_or_default()
        ));
    }
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    for l in g["literals"].as_array().into_iter().flatten() {
        let l = l.as_str().unwrap_or_default();
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("invalid literal source {l}, expected key=value"))?;
        data.insert(k.to_string(), v.trim_matches('"').to_string());
    }
    for f in g["files"].as_array().into_iter().flatten() {
        let f = f.as_str().unwrap_or_default();
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p),
            None => (
                Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                f,
            ),
        };
        let text = std::fs::read_to_string(dir.join(path)).map_err(|e| format!("{path}: {e}"))?;
        data.insert(key, text);
    }
    for e in g["envs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(g["env"].as_str().map(|_| &g["env"]))
    {
        let path = e.as_str().unwrap_or_default();
        let text = std::fs::read_to_string(dir.join(path)).map_err(|e| format!("{path}: {e}"))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            data.insert(k.to_string(), v.to_string());
        }
    }
    let mut obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
    if kind == "Secret" {
        use base64::Engine;
        let encoded: Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        obj["data"] = Value::Object(encoded);
        obj["type"] = json!(g["type"].as_str().unwrap_or("Opaque"));
    } else {
        obj["data"] = json!(data);
    }
    for (field, source) in [
        ("labels", options),
        ("annotations", options),
        ("labels", &g["options"]),
        ("annotations", &g["options"]),
    ] {
        if let Some(m) = source[field].as_object() {
            merge_map(&mut obj["metadata"][field], m);
        }
    }
    let disabled = g["options"]["disableNameSuffixHash"]
        .as_bool()
        .or(options["disableNameSuffixHash"].as_bool())
        .unwrap_or(false);
    if !disabled {
        let suffixed = format!("{name}-{}", content_hash(&obj));
        obj["metadata"]["name"] = json!(suffixed);
    }
    Ok((obj, name))
}

/// kustomize's name suffix: SHA-256 of the object's kind and data (and a Secret's type)
/// as Go encodes that map (sorted keys), the first ten hex digits with 0,1,3,a,e swapped
/// for letters. The encoded name is always empty: kustomize's hasher looks it up as one
/// field called `metadata/name`, which no object has.
pub fn content_hash(obj: &Value) -> String {
    let data = if obj["data"].is_object() {
        obj["data"].clone()
    } else {
        json!("")
    };
    let mut m = json!({"kind": obj["kind"], "name": "", "data": data});
    if obj["kind"] == "Secret" {
        m["type"] = obj["type"].clone();
    }
    let encoded = serde_json::to_string(&m).expect("json");
    let digest = ring::digest::digest(&ring::digest::SHA256, encoded.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// kustomize's legacy resource order: what others depend on first.
fn legacy_rank(kind: &str) -> usize {
    const FIRST: &[&str] = &[
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "CustomResourceDefinition",
        "ServiceAccount",
        "PodSecurityPolicy",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Endpoints",
        "Service",
        "LimitRange",
        "PriorityClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "PodDisruptionBudget",
    ];
    const LAST: &[&str] = &[
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    if let Some(i) = FIRST.iter().position(|k| *k == kind) {
        return i;
    }
    match LAST.iter().position(|k| *k == kind) {
        Some(i) => FIRST.len() + 1 + i,
        None => FIRST.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_kustomize() {
        // What kustomize v5.5 names `literals: [mode=fast, level=3]` and a secret.
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast", "level": "3"}});
        assert_eq!(content_hash(&cm), "8mf449b2gf");
        let secret = json!({"kind": "Secret", "type": "Opaque", "metadata": {"name": "creds"}, "data": {"password": "aHVudGVyMg=="}});
        assert_eq!(content_hash(&secret), "cf85kd65mm");
    }

    #[test]
    fn images_keep_or_replace_tags() {
        let mut spec =
            json!({"containers": [{"image": "nginx:1.25"}, {"image": "registry:5000/app"}]});
        set_image(&mut spec, &json!({"name": "nginx", "newTag": "1.27"}));
        set_image(
            &mut spec,
            &json!({"name": "registry:5000/app", "newName": "other/app"}),
        );
        assert_eq!(spec["containers"][0]["image"], "nginx:1.27");
        assert_eq!(spec["containers"][1]["image"], "other/app");
    }
}
