//! `kubectl create -f` and the generators (`create namespace|configmap|secret
//! generic|tls|docker-registry|deployment|serviceaccount|service|job|cronjob|rolebinding|
//! clusterrolebinding|quota|priorityclass|poddisruptionbudget`; `role`, `clusterrole`,
//! `token` and `job --from` are in their own files, as they read the cluster). Upstream twin: `kubectl/pkg/cmd/create`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Filename, directory, or URL to files to use to create the resource
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Process the kustomization directory. This flag can't be used together with -f or -R.
    #[arg(short = 'k', long)]
    pub kustomize: Option<String>,
    #[command(flatten)]
    pub field_manager: super::flags::FieldManager,
    /// Output format. One of: (json, yaml, name, jsonpath, custom-columns).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "unchanged", default_value = "none")]
    pub dry_run: String,
    /// A generator: namespace NAME, configmap NAME --from-literal=k=v, secret generic NAME, deployment NAME --image=I, serviceaccount NAME
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub generator: Vec<String>,
}

/// Takes `create`'s own flags (`-o`, `--dry-run`) out of a generator's arguments, where
/// clap's trailing capture leaves them (`create deployment x --image=i -o yaml`).
fn take_create_flags(a: &mut CreateArgs) {
    let mut rest = Vec::with_capacity(a.generator.len());
    let mut it = std::mem::take(&mut a.generator).into_iter();
    while let Some(w) = it.next() {
        if w == "--" {
            rest.push(w);
            rest.extend(it.by_ref());
            break;
        }
        if w == "-o" || w == "--output" {
            a.output = it.next();
        } else if let Some(v) = w.strip_prefix("--output=") {
            a.output = Some(v.to_string());
        } else if let Some(v) = w.strip_prefix("-o").filter(|v| !v.is_empty()) {
            a.output = Some(v.trim_start_matches('=').to_string());
        } else if let Some(v) = w.strip_prefix("--field-manager=") {
            a.field_manager.field_manager = Some(v.to_string());
        } else if w == "--field-manager" {
            a.field_manager.field_manager = it.next();
        } else if w == "--dry-run" {
            a.dry_run = "unchanged".into();
        } else if let Some(v) = w.strip_prefix("--dry-run=") {
            a.dry_run = v.to_string();
        } else {
            rest.push(w);
        }
    }
    a.generator = rest;
}

pub async fn run(f: &mut Factory, mut a: CreateArgs) -> CmdResult {
    take_create_flags(&mut a);
    let dry = super::apply::dry_run_mode(&a.dry_run)?;
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let typed = !a.generator.is_empty();
    let objects: Vec<(String, Value)> = if typed {
        let kind = a.generator[0].as_str();
        let rest = &a.generator[1..];
        let from = GeneratorArgs::parse(rest).one("from").is_some();
        let obj = match kind {
            "token" => return super::create_token::token(f, rest, format).await,
            "role" | "clusterrole" => super::create_role::generate(f, kind, rest).await?,
            "ingress" | "ing" => super::create_ingress::generate(kind, rest)?,
            "job" if from => super::create_token::job_from(f, rest).await?,
            _ => generate(&a.generator)?,
        };
        vec![("".to_string(), obj)]
    } else if !a.filenames.is_empty() || a.kustomize.is_some() {
        cli_runtime::resource::read_sources(&a.filenames, a.recursive, a.kustomize.as_deref())
            .await
            .map_err(CmdError::msg)?
            .into_iter()
            .map(|o| (o.source, o.object))
            .collect()
    } else {
        return Err(CmdError::plain(
            "error: must specify one of -f and -k\n\nSee 'kubectl create -h' for help and examples",
        ));
    };
    let client = f.client().await?;
    let (namespace, explicit) = f.namespace().await?;
    let mut errors = Vec::new();
    for (source, mut obj) in objects {
        let r = f.mapping_for_object(&obj).await?;
        util::check_object_namespace(&obj, r.namespaced, explicit, &namespace)?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace)
            .to_string();
        // The builder gives file objects their namespace; generators name one only when
        // `--namespace` asked for it (what a client dry run prints).
        if r.namespaced && obj["metadata"]["namespace"].is_null() && (!typed || explicit) {
            obj["metadata"]["namespace"] = json!(ns);
        }
        let mut path = format!(
            "{}?fieldManager={}",
            r.collection_path(Some(&ns)),
            a.field_manager.query("kubectl-create")
        );
        if dry == super::apply::DryRun::Server {
            path.push_str("&dryRun=All");
        }
        let created = if dry == super::apply::DryRun::Client {
            Ok(obj.clone())
        } else if typed {
            // Generators create through client-go's typed clientsets (protobuf); files go
            // through the resource builder (JSON).
            client.typed_send(http::Method::POST, &path, &obj).await
        } else {
            client
                .send_json(http::Method::POST, &path, client::JSON, &obj)
                .await
        };
        match created {
            Ok(v) => match &format {
                Some(fmt) => util::print_object(&v, fmt, false)?,
                None => output::print(&format!(
                    "{} created{}\n",
                    cli_runtime::printers::name_line(&v),
                    dry.suffix()
                )),
            },
            Err(e) => {
                // Each generator words its failure its own way upstream.
                let msg = if source.is_empty() {
                    match r.kind.as_str() {
                        "Namespace" => e.message(),
                        "Secret" => {
                            format!("error: failed to create secret {}", e.server_message())
                        }
                        kind => format!(
                            "error: failed to create {}: {}",
                            kind.to_lowercase(),
                            e.server_message()
                        ),
                    }
                } else {
                    match &e {
                        client::Error::Status {
                            reason, message, ..
                        } => {
                            format!(
                                "Error from server ({reason}): error when creating \"{source}\": {message}"
                            )
                        }
                        other => other.message(),
                    }
                };
                errors.push(msg);
            }
        }
    }
    crate::error::from_messages(errors)
}

/// A generator's command line: positional arguments, `--flag[=]value` pairs in order,
/// and what follows `--`.
pub(super) struct GeneratorArgs {
    pub positional: Vec<String>,
    pub flags: Vec<(String, String)>,
    pub command: Vec<String>,
}

impl GeneratorArgs {
    pub fn parse(args: &[String]) -> GeneratorArgs {
        let mut g = GeneratorArgs {
            positional: Vec::new(),
            flags: Vec::new(),
            command: Vec::new(),
        };
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            if a == "--" {
                g.command = it.by_ref().cloned().collect();
                break;
            }
            if let Some(flag) = a.strip_prefix("--") {
                match flag.split_once('=') {
                    Some((k, v)) => g.flags.push((k.to_string(), v.to_string())),
                    None => {
                        let v = it.next().cloned().unwrap_or_default();
                        g.flags.push((flag.to_string(), v));
                    }
                }
            } else {
                g.positional.push(a.clone());
            }
        }
        g
    }

    /// Every value of `--k`.
    pub fn all(&self, k: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every value of `--k`, each split at commas (a string-slice flag).
    pub fn list(&self, k: &str) -> Vec<String> {
        self.all(k)
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The last value of `--k`.
    pub fn one(&self, k: &str) -> Option<String> {
        self.all(k).pop()
    }

    /// cobra's refusal of a flag the generator does not have.
    pub fn known(&self, kind: &str, allowed: &[&str]) -> Result<(), CmdError> {
        match self
            .flags
            .iter()
            .find(|(f, _)| !allowed.contains(&f.as_str()))
        {
            Some((f, _)) => Err(CmdError::plain(format!(
                "error: unknown flag: --{f}\nSee 'kubectl create {kind} --help' for usage."
            ))),
            None => Ok(()),
        }
    }
}

/// The one NAME a generator takes (upstream `NameFromCommandArgs`), else a usage error
/// naming the generator's full command.
pub(super) fn name_arg(command: &str, positional: &[String]) -> Result<String, CmdError> {
    match positional {
        [name] => Ok(name.clone()),
        other => Err(CmdError::plain(format!(
            "error: exactly one NAME is required, got {}\nSee 'kubectl create {command} -h' for help and examples",
            other.len()
        ))),
    }
}

/// `tls.X509KeyPair`'s PEM checks, in its words: a certificate block in the
/// certificate input and a private key block in the key input.
fn check_key_pair(cert: &[u8], key: &[u8]) -> Result<(), CmdError> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (cert, key) = (text(cert), text(key));
    let is_key = |t: &str| t.contains("PRIVATE KEY-----");
    if !cert.contains("-----BEGIN CERTIFICATE-----") {
        return Err(CmdError::msg(if is_key(&cert) {
            "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"
        } else {
            "tls: failed to find any PEM data in certificate input"
        }));
    }
    if !is_key(&key) {
        return Err(CmdError::msg(
            if key.contains("-----BEGIN CERTIFICATE-----") {
                "tls: found a certificate rather than a key in the PEM for the private key"
            } else {
                "tls: failed to find any PEM data in key input"
            },
        ));
    }
    Ok(())
}

// The imperative generators kubectl users type most.
fn generate(args: &[String]) -> Result<Value, CmdError> {
    let kind = args[0].as_str();
    let g = GeneratorArgs::parse(&args[1..]);
    let positional = g.positional.clone();
    let command = g.command.clone();
    let flag_all = |k: &str| g.all(k);
    let literals = |k: &str| -> Result<serde_json::Map<String, Value>, CmdError> {
        let mut m = serde_json::Map::new();
        for l in flag_all(k) {
            let (key, v) = l.split_once('=').ok_or_else(|| {
                CmdError::msg(format!("invalid literal source {l}, expected key=value"))
            })?;
            m.insert(key.to_string(), json!(v));
        }
        Ok(m)
    };
    let known = |allowed: &[&str]| g.known(kind, allowed);
    let one = |k: &str| flag_all(k).pop();
    let (sub, name) = if matches!(kind, "secret" | "service" | "svc") {
        (
            positional.first().cloned().unwrap_or_default(),
            positional.get(1).cloned(),
        )
    } else {
        (String::new(), positional.first().cloned())
    };
    let _ = name;
    let skip = usize::from(matches!(kind, "secret" | "service" | "svc"));
    let canonical = match (kind, sub.as_str()) {
        ("ns", _) => "namespace".to_string(),
        ("cm", _) => "configmap".to_string(),
        ("sa", _) => "serviceaccount".to_string(),
        ("deploy", _) => "deployment".to_string(),
        ("cj", _) => "cronjob".to_string(),
        ("pc", _) => "priorityclass".to_string(),
        ("pdb", _) => "poddisruptionbudget".to_string(),
        ("resourcequota", _) => "quota".to_string(),
        ("svc" | "service", s) => format!("service {s}"),
        ("secret", s) => format!("secret {s}"),
        (k, _) => k.to_string(),
    };
    let name = name_arg(&canonical, &positional[skip.min(positional.len())..])?;
    Ok(match (kind, sub.as_str()) {
        ("namespace" | "ns", _) => {
            known(&[])?;
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        }
        ("serviceaccount" | "sa", _) => {
            known(&[])?;
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        }
        ("configmap" | "cm", _) => {
            known(&["from-literal"])?;
            let mut cm =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            let data = literals("from-literal")?;
            if !data.is_empty() {
                cm["data"] = Value::Object(data);
            }
            cm
        }
        ("secret", "generic") => {
            known(&["from-literal", "type"])?;
            use base64::Engine;
            let data: serde_json::Map<String, Value> = literals("from-literal")?
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        json!(
                            base64::engine::general_purpose::STANDARD
                                .encode(v.as_str().unwrap_or_default())
                        ),
                    )
                })
                .collect();
            let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}});
            if !data.is_empty() {
                s["data"] = Value::Object(data);
            }
            if let Some(t) = flag_all("type").pop() {
                s["type"] = json!(t);
            }
            s
        }
        ("secret", "tls") => {
            known(&["cert", "key"])?;
            let (cert, key) = (
                one("cert").unwrap_or_default(),
                one("key").unwrap_or_default(),
            );
            if cert.is_empty() || key.is_empty() {
                return Err(CmdError::msg("key and cert must be specified"));
            }
            let read = |p: &str| {
                std::fs::read(p).map_err(|e| {
                    CmdError::msg(format!(
                        "Cannot read file {p}, open {p}: {}",
                        util::go_io_error(&e)
                    ))
                })
            };
            let (cert_pem, key_pem) = (read(&cert)?, read(&key)?);
            check_key_pair(&cert_pem, &key_pem)?;
            use base64::Engine;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                   "type": "kubernetes.io/tls",
                   "data": {"tls.crt": b64(&cert_pem), "tls.key": b64(&key_pem)}})
        }
        ("secret", "docker-registry") => {
            known(&[
                "docker-server",
                "docker-username",
                "docker-password",
                "docker-email",
                "from-file",
            ])?;
            use base64::Engine;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            let files = flag_all("from-file");
            let data = if files.is_empty() {
                let user = one("docker-username").unwrap_or_default();
                let password = one("docker-password").unwrap_or_default();
                let server =
                    one("docker-server").unwrap_or_else(|| "https://index.docker.io/v1/".into());
                if user.is_empty() || password.is_empty() || server.is_empty() {
                    return Err(CmdError::msg(
                        "either --from-file or the combination of --docker-username, --docker-password and --docker-server is required",
                    ));
                }
                // Go's struct order: username, password, email (omitted when empty), auth.
                let q = |v: &str| serde_json::to_string(v).expect("json");
                let email = one("docker-email")
                    .filter(|e| !e.is_empty())
                    .map(|e| format!(",\"email\":{}", q(&e)))
                    .unwrap_or_default();
                let config = format!(
                    "{{\"auths\":{{{}:{{\"username\":{},\"password\":{}{email},\"auth\":{}}}}}}}",
                    q(&server),
                    q(&user),
                    q(&password),
                    q(&b64(format!("{user}:{password}").as_bytes()))
                );
                json!({".dockerconfigjson": b64(config.as_bytes())})
            } else {
                let mut m = serde_json::Map::new();
                for spec in &files {
                    let (key, path) = spec.split_once('=').unwrap_or((".dockerconfigjson", spec));
                    let bytes = std::fs::read(path).map_err(|e| {
                        CmdError::msg(format!("error reading {path}: {}", util::go_io_error(&e)))
                    })?;
                    m.insert(key.to_string(), json!(b64(&bytes)));
                }
                Value::Object(m)
            };
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                   "type": "kubernetes.io/dockerconfigjson", "data": data})
        }
        ("deployment" | "deploy", _) => {
            known(&["image", "replicas", "port"])?;
            let images = flag_all("image");
            if images.is_empty() {
                return Err(CmdError::plain("error: required flag(s) \"image\" not set"));
            }
            let replicas: i64 = flag_all("replicas")
                .pop()
                .and_then(|r| r.parse().ok())
                .unwrap_or(1);
            let containers: Vec<Value> = images
                .iter()
                .map(|img| {
                    let base = img.rsplit('/').next().unwrap_or(img);
                    let cname = base.split([':', '@']).next().unwrap_or(base);
                    let mut c = json!({"name": cname, "image": img, "resources": {}});
                    if let Some(p) = flag_all("port").pop().and_then(|p| p.parse::<i64>().ok()) {
                        c["ports"] = json!([{"containerPort": p}]);
                    }
                    c
                })
                .collect();
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": name, "labels": {"app": name}},
                   "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                            "strategy": {},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": containers}}},
                   "status": {}})
        }
        ("service" | "svc", ty @ ("clusterip" | "nodeport" | "loadbalancer" | "externalname")) => {
            known(&["tcp", "clusterip", "node-port", "external-name"])?;
            let service_type = match ty {
                "clusterip" => "ClusterIP",
                "nodeport" => "NodePort",
                "loadbalancer" => "LoadBalancer",
                _ => "ExternalName",
            };
            let mut ports = Vec::new();
            for spec in flag_all("tcp")
                .iter()
                .flat_map(|t| t.split(','))
                .filter(|t| !t.is_empty())
            {
                let (port, target) = spec.split_once(':').unwrap_or((spec, spec));
                let port_n: i64 = port.parse().map_err(|_| {
                    CmdError::msg(format!("strconv.Atoi: parsing {port:?}: invalid syntax"))
                })?;
                let target_v = target
                    .parse::<i64>()
                    .map(|t| json!(t))
                    .unwrap_or_else(|_| json!(target));
                let mut p = json!({"name": spec.replace(':', "-"), "port": port_n, "protocol": "TCP", "targetPort": target_v});
                if ty == "nodeport"
                    && let Some(n) = one("node-port")
                        .and_then(|n| n.parse::<i64>().ok())
                        .filter(|n| *n > 0)
                {
                    p["nodePort"] = json!(n);
                }
                ports.push(p);
            }
            if ty != "externalname"
                && ports.is_empty()
                && one("clusterip").as_deref() != Some("None")
            {
                return Err(CmdError::msg(
                    "at least one tcp port specifier must be provided",
                ));
            }
            let mut spec = json!({"type": service_type});
            if !ports.is_empty() {
                spec["ports"] = json!(ports);
            }
            if ty == "externalname" {
                let ext = one("external-name").unwrap_or_default();
                if ext.is_empty() {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"external-name\" not set",
                    ));
                }
                spec["externalName"] = json!(ext);
            }
            spec["selector"] = json!({"app": name});
            if let Some(ip) = one("clusterip").filter(|ip| !ip.is_empty()) {
                spec["clusterIP"] = json!(ip);
            }
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "labels": {"app": name}},
                   "spec": spec, "status": {"loadBalancer": {}}})
        }
        ("job", _) | ("cronjob" | "cj", _) => {
            let cron = kind != "job";
            if cron {
                known(&["image", "schedule", "restart"])?;
            } else {
                known(&["image", "restart", "from"])?;
            }
            let image = one("image").unwrap_or_default();
            if image.is_empty() && cron {
                return Err(CmdError::plain("error: required flag(s) \"image\" not set"));
            }
            if image.is_empty() {
                return Err(CmdError::msg("either --image or --from must be specified"));
            }
            let restart = one("restart").unwrap_or_else(|| {
                if cron {
                    "OnFailure".into()
                } else {
                    "Never".into()
                }
            });
            if restart != "OnFailure" && restart != "Never" {
                return Err(CmdError::msg(format!("restart {restart} not supported")));
            }
            let mut container = json!({"name": name, "image": image, "resources": {}});
            if !command.is_empty() {
                container["command"] = json!(command);
            }
            let job_spec = json!({"template": {"metadata": {}, "spec": {"containers": [container], "restartPolicy": restart}}});
            if cron {
                let schedule = one("schedule").unwrap_or_default();
                if schedule.is_empty() {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"schedule\" not set",
                    ));
                }
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                       "spec": {"jobTemplate": {"metadata": {"name": name}, "spec": job_spec}, "schedule": schedule},
                       "status": {}})
            } else {
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": job_spec, "status": {}})
            }
        }
        ("rolebinding" | "clusterrolebinding", _) => {
            let cluster = kind == "clusterrolebinding";
            if cluster {
                known(&["clusterrole", "user", "group", "serviceaccount"])?;
            } else {
                known(&["clusterrole", "role", "user", "group", "serviceaccount"])?;
            }
            let (ref_kind, role) = match (one("role"), one("clusterrole")) {
                (Some(_), Some(_)) => {
                    return Err(CmdError::msg(
                        "exactly one of clusterrole or role must be specified",
                    ));
                }
                (Some(r), None) => ("Role", r),
                (None, Some(r)) => ("ClusterRole", r),
                (None, None) if cluster => {
                    return Err(CmdError::plain(
                        "error: required flag(s) \"clusterrole\" not set",
                    ));
                }
                (None, None) => {
                    return Err(CmdError::msg(
                        "exactly one of clusterrole or role must be specified",
                    ));
                }
            };
            let group = "rbac.authorization.k8s.io";
            let mut subjects = Vec::new();
            for u in flag_all("user") {
                subjects.push(json!({"apiGroup": group, "kind": "User", "name": u}));
            }
            for g in flag_all("group") {
                subjects.push(json!({"apiGroup": group, "kind": "Group", "name": g}));
            }
            for sa in flag_all("serviceaccount") {
                let Some((ns, n)) = sa
                    .split_once(':')
                    .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
                else {
                    return Err(CmdError::msg("serviceaccount must be <namespace>:<name>"));
                };
                subjects.push(json!({"kind": "ServiceAccount", "namespace": ns, "name": n}));
            }
            let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": if cluster { "ClusterRoleBinding" } else { "RoleBinding" },
                "metadata": {"name": name}, "roleRef": {"apiGroup": group, "kind": ref_kind, "name": role}});
            if !subjects.is_empty() {
                b["subjects"] = json!(subjects);
            }
            b
        }
        ("quota" | "resourcequota", _) => {
            known(&["hard", "scopes"])?;
            let mut spec = json!({});
            let hard: serde_json::Map<String, Value> = flag_all("hard")
                .iter()
                .flat_map(|h| h.split(','))
                .filter(|h| !h.is_empty())
                .map(|h| {
                    h.split_once('=')
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .ok_or_else(|| {
                            CmdError::msg(format!("invalid resource quota hard entry {h:?}"))
                        })
                })
                .collect::<Result<_, _>>()?;
            if !hard.is_empty() {
                spec["hard"] = Value::Object(hard);
            }
            let scopes: Vec<String> = flag_all("scopes")
                .iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !scopes.is_empty() {
                spec["scopes"] = json!(scopes);
            }
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": spec, "status": {}})
        }
        ("priorityclass" | "pc", _) => {
            known(&[
                "value",
                "global-default",
                "description",
                "preemption-policy",
            ])?;
            let value: i64 = one("value")
                .unwrap_or_else(|| "0".into())
                .parse()
                .map_err(|_| CmdError::msg("invalid argument for --value"))?;
            let mut pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value, "preemptionPolicy": one("preemption-policy").unwrap_or_else(|| "PreemptLowerPriority".into())});
            if let Some(d) = one("description").filter(|d| !d.is_empty()) {
                pc["description"] = json!(d);
            }
            pc["globalDefault"] =
                json!(one("global-default").is_some_and(|g| g == "true" || g.is_empty()));
            pc
        }
        ("poddisruptionbudget" | "pdb", _) => {
            known(&["selector", "min-available", "max-unavailable"])?;
            let sel = one("selector").unwrap_or_default();
            if sel.is_empty() {
                return Err(CmdError::msg("a selector must be specified"));
            }
            let (min, max) = (one("min-available"), one("max-unavailable"));
            if min.is_some() == max.is_some() {
                return Err(CmdError::msg(
                    "one of min-available or max-unavailable must be specified",
                ));
            }
            let int_or_string = |v: &str| {
                v.parse::<i64>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(v))
            };
            let labels: serde_json::Map<String, Value> = sel
                .split(',')
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.trim_end_matches('=').to_string(), json!(v)))
                })
                .collect();
            let mut spec = json!({"selector": {"matchLabels": labels}});
            if let Some(m) = min {
                spec["minAvailable"] = int_or_string(&m);
            }
            if let Some(m) = max {
                spec["maxUnavailable"] = int_or_string(&m);
            }
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}, "spec": spec,
                   "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}})
        }
        _ => {
            return Err(CmdError::plain(format!(
                "error: unknown command \"{kind}\" for \"kubectl create\""
            )));
        }
    })
}
