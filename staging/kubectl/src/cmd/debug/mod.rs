//! `kubectl debug`: an ephemeral container in a running pod, a copy of a pod with a
//! debugging container (or changed images), or a pod in a node's host namespaces; then,
//! with `-i`/`--attach`, attaching to it. Upstream twin: `kubectl/pkg/cmd/debug/debug.go`.

pub mod profiles;

use crate::cmd::exec::attach_to;
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::{percent_encode, query_escape};
use profiles::{KeepFlags, Style};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(about = "Create debugging sessions for troubleshooting workloads and nodes")]
pub struct DebugArgs {
    /// (POD | TYPE[[.VERSION].GROUP]/NAME)
    pub targets: Vec<String>,
    /// [ -- COMMAND [args...] ]
    #[arg(last = true)]
    pub args: Vec<String>,
    /// identifying the resource to debug
    #[arg(short = 'f', long = "filename")]
    pub filename: Vec<String>,
    /// If specified, everything after -- will be passed to the new container as Args instead of Command.
    #[arg(long = "arguments-only")]
    pub arguments_only: bool,
    /// If true, wait for the container to start running, and then attach as if 'kubectl attach ...' were called.  Default false, unless '-i/--stdin' is set, in which case the default is true.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub attach: Option<bool>,
    /// Container name to use for debug container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Create a copy of the target Pod with this name.
    #[arg(long = "copy-to")]
    pub copy_to: Option<String>,
    /// When used with '--copy-to', delete the original Pod.
    #[arg(long)]
    pub replace: bool,
    /// Environment variables to set in the container.
    #[arg(long, value_delimiter = ',')]
    pub env: Vec<String>,
    /// Container image to use for debug container.
    #[arg(long)]
    pub image: Option<String>,
    /// If true, keep the original pod labels.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-labels")]
    pub keep_labels: bool,
    /// If true, keep the original pod annotations.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-annotations")]
    pub keep_annotations: bool,
    /// If true, keep the original pod liveness probes.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-liveness")]
    pub keep_liveness: bool,
    /// If true, keep the original pod readiness probes.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-readiness")]
    pub keep_readiness: bool,
    /// If true, keep the original startup probes.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-startup")]
    pub keep_startup: bool,
    /// Run the init containers for the pod. Defaults to true.(This flag only works when used with '--copy-to')
    #[arg(long = "keep-init-containers", num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pub keep_init_containers: bool,
    /// When used with '--copy-to', a list of name=image pairs for changing container images, similar to how 'kubectl set image' works.
    #[arg(long = "set-image", value_delimiter = ',')]
    pub set_image: Vec<String>,
    /// The image pull policy for the container. If left empty, this value will not be specified by the client and defaulted by the server.
    #[arg(long = "image-pull-policy", default_value = "")]
    pub image_pull_policy: String,
    /// Keep stdin open on the container(s) in the pod, even if nothing is attached.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// If true, suppress informational messages.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// When used with '--copy-to', schedule the copy of target Pod on the same node.
    #[arg(long = "same-node")]
    pub same_node: bool,
    /// When used with '--copy-to', enable process namespace sharing in the copy.
    #[arg(long = "share-processes", num_args = 0..=1, default_missing_value = "true")]
    pub share_processes: Option<bool>,
    /// When using an ephemeral container, target processes in this container name.
    #[arg(long)]
    pub target: Option<String>,
    /// Allocate a TTY for the debugging container.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Options are "legacy", "general", "baseline", "netadmin", "restricted" or "sysadmin".
    #[arg(long, default_value = "legacy")]
    pub profile: String,
    /// Path to a JSON or YAML file containing a partial container spec to customize built-in debug profiles.
    #[arg(long)]
    pub custom: Option<String>,
}

/// What the command line asks for, validated.
struct Plan {
    a: DebugArgs,
    env: Vec<Value>,
    set_images: BTreeMap<String, String>,
    custom: Option<Value>,
    attach: bool,
    keep: KeepFlags,
}

pub async fn run(f: &mut Factory, a: DebugArgs) -> CmdResult {
    let plan = validate(a)?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let mut targets: Vec<(String, String, String)> = Vec::new(); // kind, namespace, name
    for t in &plan.a.targets {
        let (ty, name) = t.split_once('/').unwrap_or(("pods", t));
        let r = cli_runtime::resource::mapping(f.discovery().await?, ty).map_err(CmdError::msg)?;
        if r.kind != "Pod" && r.kind != "Node" {
            // Upstream reads the object before it finds it cannot debug it.
            client
                .get_json(&r.object_path(Some(&namespace), name), client::JSON)
                .await?;
            return Err(CmdError::msg(format!(
                "\"{}/{}, Kind={}\" not supported by debug",
                r.group, r.version, r.kind
            )));
        }
        targets.push((r.kind.clone(), namespace.clone(), name.to_string()));
    }
    for o in cli_runtime::resource::read_files(&plan.a.filename, false)
        .await
        .map_err(CmdError::msg)?
    {
        let meta = &o.object["metadata"];
        targets.push((
            o.object["kind"].as_str().unwrap_or_default().to_string(),
            meta["namespace"].as_str().unwrap_or(&namespace).to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (kind, ns, name) in targets {
        let (pod, container) = match kind.as_str() {
            "Node" => {
                let node = client
                    .get_json(
                        &format!("/api/v1/nodes/{}", percent_encode(&name)),
                        client::JSON,
                    )
                    .await?;
                debug_node(&plan, &client, &namespace, &node).await?
            }
            "Pod" => {
                let pod = client.get_json(&pod_path(&ns, &name), client::JSON).await?;
                match &plan.a.copy_to {
                    Some(_) => debug_by_copy(&plan, &client, &pod).await?,
                    None => debug_by_ephemeral_container(&plan, &client, &pod).await?,
                }
            }
            other => {
                return Err(CmdError::msg(format!("{other:?} not supported by debug")));
            }
        };
        if plan.attach && !container.is_empty() {
            attach(&plan, &client, &pod, &container).await?;
        }
    }
    Ok(())
}

fn pod_path(ns: &str, name: &str) -> String {
    format!(
        "/api/v1/namespaces/{}/pods/{}",
        percent_encode(ns),
        percent_encode(name)
    )
}

/// Upstream's `Complete` and `Validate`, in their order and with their messages.
fn validate(a: DebugArgs) -> Result<Plan, CmdError> {
    let keep = KeepFlags {
        labels: a.keep_labels,
        annotations: a.keep_annotations,
        liveness: a.keep_liveness,
        readiness: a.keep_readiness,
        startup: a.keep_startup,
        init_containers: a.keep_init_containers,
    };
    if !profiles::PROFILES.contains(&a.profile.as_str()) {
        return Err(CmdError::msg(format!("unknown profile: {}", a.profile)));
    }
    let custom = match &a.custom {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CmdError::msg(format!(
                    "must pass a container spec json file for custom profile: open {path}: {}",
                    crate::cmd::util::go_io_error(&e)
                ))
            })?;
            let v: Value = serde_json::from_str(&text)
                .ok()
                .or_else(|| {
                    cli_runtime::resource::parse_yaml_values(&text)
                        .ok()
                        .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
                })
                .filter(Value::is_object)
                .ok_or_else(|| {
                    CmdError::msg(format!("{path} does not contain a valid container spec"))
                })?;
            Some(v)
        }
    };
    let mut env = Vec::new();
    for e in &a.env {
        let (k, v) = e.split_once('=').ok_or_else(|| {
            CmdError::msg(format!(
                "invalid argument \"{e}\" for \"--env\" flag: {e} must be formatted as key=value"
            ))
        })?;
        env.push(json!({"name": k, "value": v}));
    }
    let mut set_images = BTreeMap::new();
    for s in &a.set_image {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            CmdError::msg(format!(
                "invalid argument \"{s}\" for \"--set-image\" flag: {s} must be formatted as key=value"
            ))
        })?;
        set_images.insert(k.to_string(), v.to_string());
    }
    let attach = a.attach.unwrap_or(a.stdin);
    let image = a.image.as_deref().unwrap_or_default();
    if a.attach == Some(true) && image.is_empty() && a.container.is_none() {
        return Err(CmdError::msg(
            "you must specify --container or create a new container using --image in order to attach.",
        ));
    }
    if a.copy_to.is_some() {
        if image.is_empty() && set_images.is_empty() && a.args.is_empty() {
            return Err(CmdError::msg(
                "you must specify --image, --set-image or command arguments.",
            ));
        }
        if !a.args.is_empty() && a.container.is_none() && image.is_empty() {
            return Err(CmdError::msg(
                "you must specify an existing container or a new image when specifying args.",
            ));
        }
    } else if a.replace {
        return Err(CmdError::msg("--replace may only be used with --copy-to."));
    } else if a.same_node {
        return Err(CmdError::msg(
            "--same-node may only be used with --copy-to.",
        ));
    } else if !set_images.is_empty() {
        return Err(CmdError::msg(
            "--set-image may only be used with --copy-to.",
        ));
    } else if image.is_empty() {
        return Err(CmdError::msg(
            "you must specify --image when not using --copy-to.",
        ));
    }
    if !image.is_empty() && !valid_image_reference(image) {
        return Err(CmdError::msg(format!(
            "invalid image name {image:?}: invalid reference format"
        )));
    }
    if a.targets.is_empty() && a.filename.is_empty() {
        return Err(CmdError::msg("NAME or filename is required for debug"));
    }
    match a.image_pull_policy.as_str() {
        "Always" | "IfNotPresent" | "Never" | "" => {}
        p => return Err(CmdError::msg(format!("invalid image pull policy: {p}"))),
    }
    for (name, image) in &set_images {
        if !valid_image_reference(image) {
            return Err(CmdError::msg(format!(
                "invalid image name {image:?} for container {name:?}: invalid reference format"
            )));
        }
    }
    if let Some(t) = &a.target {
        if a.copy_to.is_some() {
            return Err(CmdError::msg(
                "--target is incompatible with --copy-to. Use --share-processes instead.",
            ));
        }
        if !a.quiet {
            output::print(&format!(
                "Targeting container {t:?}. If you don't see processes from this container it may be because the container runtime doesn't support this feature.\n"
            ));
        }
    }
    if a.tty && !a.stdin {
        return Err(CmdError::msg(
            "-i/--stdin is required for containers with -t/--tty=true",
        ));
    }
    if let Some(c) = &custom
        && ["name", "command", "image", "lifecycle", "volumeDevices"]
            .iter()
            .any(|k| {
                c.get(*k)
                    .is_some_and(|v| !v.is_null() && v != "" && v != &json!([]))
            })
    {
        return Err(CmdError::msg(
            "name, command, image, lifecycle and volume devices are not modifiable via custom profile",
        ));
    }
    if a.profile == "legacy" {
        output::eprint_line(
            "--profile=legacy is deprecated and will be removed in the future. It is recommended to explicitly specify a profile, for example \"--profile=general\".",
        );
    }
    Ok(Plan {
        a,
        env,
        set_images,
        custom,
        attach,
        keep,
    })
}

/// The new container's common fields (`EphemeralContainerCommon` / `Container`).
fn new_container(plan: &Plan, name: &str) -> Value {
    let a = &plan.a;
    let mut c = json!({"name": name, "terminationMessagePolicy": "File"});
    if let Some(image) = &a.image {
        c["image"] = json!(image);
    }
    if !plan.env.is_empty() {
        c["env"] = json!(plan.env);
    }
    if !a.image_pull_policy.is_empty() {
        c["imagePullPolicy"] = json!(a.image_pull_policy);
    }
    if a.stdin {
        c["stdin"] = json!(true);
    }
    if a.tty {
        c["tty"] = json!(true);
    }
    if !a.args.is_empty() {
        let key = if a.arguments_only { "args" } else { "command" };
        c[key] = json!(a.args);
    }
    c
}

/// `debugger-xxxxx` (or `-c`), unused by any container of `pod`; announced unless quiet.
fn debug_container_name(plan: &Plan, pod: &Value) -> String {
    if let Some(c) = &plan.a.container {
        return c.clone();
    }
    let taken = all_names(pod);
    let name = loop {
        let n = format!("debugger-{}", random_suffix());
        if !taken.contains(&n) {
            break n;
        }
    };
    if !plan.a.quiet {
        output::print(&format!("Defaulting debug container name to {name}.\n"));
    }
    name
}

fn all_names(pod: &Value) -> Vec<String> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Five characters of upstream's `utilrand` alphabet (no vowels, no look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

async fn debug_by_ephemeral_container(
    plan: &Plan,
    client: &RestClient,
    pod: &Value,
) -> Result<(Value, String), CmdError> {
    let name = debug_container_name(plan, pod);
    let mut ec = new_container(plan, &name);
    if let Some(t) = &plan.a.target {
        ec["targetContainerName"] = json!(t);
    }
    let mut copied = pod.clone();
    push(&mut copied["spec"]["ephemeralContainers"], ec);
    profiles::apply(
        &plan.a.profile,
        plan.keep,
        &mut copied,
        &name,
        Style::Ephemeral,
    );
    let ec = copied["spec"]["ephemeralContainers"]
        .as_array_mut()
        .and_then(|l| l.last_mut())
        .expect("just added");
    if let Some(custom) = &plan.custom {
        merge_container(ec, custom);
    }
    display_warning(ec, pod);
    let ec = ec.clone();
    // The strategic merge patch upstream's two-way diff makes: the new item, merged by
    // name into the list, and the list's order.
    let order: Vec<Value> = copied["spec"]["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c["name"]}))
        .collect();
    let patch = json!({"spec": {
        "$setElementOrder/ephemeralContainers": order,
        "ephemeralContainers": [ec],
    }});
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let path = format!("{}/ephemeralcontainers", pod_path(ns, pod_name));
    match client
        .send_json(
            http::Method::PATCH,
            &path,
            "application/strategic-merge-patch+json",
            &patch,
        )
        .await
    {
        Ok(result) => Ok((result, name)),
        // A 404 without a name: the subresource itself is missing.
        Err(e @ client::Error::Status { .. })
            if e.is_not_found()
                && matches!(&e, client::Error::Status { status, .. }
                    if status["details"]["name"].as_str().unwrap_or_default().is_empty()) =>
        {
            Err(CmdError::msg(format!(
                "ephemeral containers are disabled for this cluster (error from server: {:?})",
                e.server_message()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

async fn debug_by_copy(
    plan: &Plan,
    client: &RestClient,
    pod: &Value,
) -> Result<(Value, String), CmdError> {
    let a = &plan.a;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut meta = json!({"name": a.copy_to, "namespace": ns});
    for k in ["annotations", "labels"] {
        if pod["metadata"][k].is_object() {
            meta[k] = pod["metadata"][k].clone();
        }
    }
    let mut copied =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod["spec"].clone()});
    let spec = copied["spec"].as_object_mut().expect("a spec");
    spec.remove("ephemeralContainers");
    if let Some(share) = a.share_processes {
        spec.insert("shareProcessNamespace".into(), json!(share));
    }
    if !a.same_node {
        spec.remove("nodeName");
    }
    for c in copied["spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let cname = c["name"].as_str().unwrap_or_default().to_string();
        let over = plan
            .set_images
            .get(&cname)
            .or_else(|| plan.set_images.get("*"));
        if let Some(img) = over.filter(|i| !i.is_empty()) {
            c["image"] = json!(img);
        }
    }
    let mut name = a.container.clone().unwrap_or_default();
    let existing = ["containers", "initContainers"].iter().find_map(|l| {
        copied["spec"][*l]
            .as_array()
            .and_then(|v| v.iter().position(|c| c["name"] == name.as_str()))
            .map(|i| (*l, i))
    });
    let (list, index) = match existing {
        Some(found) => found,
        None => {
            if a.image.is_none() {
                if !plan.set_images.is_empty() {
                    // Only images change: the copy has no debugging container.
                    return create_copy(plan, client, pod, copied, String::new()).await;
                }
                return Err(CmdError::msg(
                    "you must specify image when creating new container",
                ));
            }
            if name.is_empty() {
                name = debug_container_name(plan, &copied);
            }
            push(
                &mut copied["spec"]["containers"],
                json!({"name": name, "terminationMessagePolicy": "File"}),
            );
            let last = copied["spec"]["containers"]
                .as_array()
                .map_or(0, |v| v.len() - 1);
            ("containers", last)
        }
    };
    let c = &mut copied["spec"][list][index];
    if !a.args.is_empty() {
        if a.arguments_only {
            c["args"] = json!(a.args);
        } else {
            c["command"] = json!(a.args);
            c.as_object_mut().map(|m| m.remove("args"));
        }
    }
    if !plan.env.is_empty() {
        c["env"] = json!(plan.env);
    }
    if let Some(image) = &a.image {
        c["image"] = json!(image);
    }
    if !a.image_pull_policy.is_empty() {
        c["imagePullPolicy"] = json!(a.image_pull_policy);
    }
    // Go's `omitempty`: false is not sent.
    for (key, on) in [("stdin", a.stdin), ("tty", a.tty)] {
        match c.as_object_mut() {
            Some(m) if !on => {
                m.remove(key);
            }
            _ => c[key] = json!(true),
        }
    }
    profiles::apply(&a.profile, plan.keep, &mut copied, &name, Style::PodCopy);
    if let Some(custom) = &plan.custom
        && let Some(c) = copied["spec"]["containers"]
            .as_array_mut()
            .and_then(|l| l.iter_mut().find(|c| c["name"] == name.as_str()))
    {
        merge_container(c, custom);
    }
    create_copy(plan, client, pod, copied, name).await
}

async fn create_copy(
    plan: &Plan,
    client: &RestClient,
    pod: &Value,
    copied: Value,
    container: String,
) -> Result<(Value, String), CmdError> {
    if let Some(c) = copied["spec"]["containers"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == container.as_str()))
    {
        display_warning(c, &copied);
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let created = client
        .send_json(
            http::Method::POST,
            &format!("/api/v1/namespaces/{}/pods", percent_encode(ns)),
            client::JSON,
            &copied,
        )
        .await?;
    if plan.a.replace {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0});
        client
            .send_json(
                http::Method::DELETE,
                &pod_path(ns, name),
                client::JSON,
                &options,
            )
            .await?;
    }
    Ok((created, container))
}

async fn debug_node(
    plan: &Plan,
    client: &RestClient,
    namespace: &str,
    node: &Value,
) -> Result<(Value, String), CmdError> {
    let a = &plan.a;
    let node_name = node["metadata"]["name"].as_str().unwrap_or_default();
    let container = a.container.clone().unwrap_or_else(|| "debugger".into());
    let pod_name = format!("node-debugger-{node_name}-{}", random_suffix());
    if !a.quiet {
        output::print(&format!(
            "Creating debugging pod {pod_name} with container {container} on node {node_name}.\n"
        ));
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": {"app.kubernetes.io/managed-by": "kubectl-debug"}},
        "spec": {
            "containers": [new_container(plan, &container)],
            "nodeName": node_name,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
        }
    });
    profiles::apply(&a.profile, plan.keep, &mut pod, &container, Style::Node);
    if let Some(custom) = &plan.custom {
        merge_container(&mut pod["spec"]["containers"][0], custom);
    }
    let created = client
        .send_json(
            http::Method::POST,
            &format!("/api/v1/namespaces/{}/pods", percent_encode(namespace)),
            client::JSON,
            &pod,
        )
        .await?;
    Ok((created, container))
}

/// Upstream's warning when a profile grants capabilities a non-root pod cannot use.
fn display_warning(container: &Value, pod: &Value) {
    let run_as = pod["spec"]["securityContext"]["runAsUser"].as_i64();
    if run_as.is_none_or(|u| u == 0) {
        return;
    }
    let sc = &container["securityContext"];
    if !sc.is_object() || sc["runAsUser"].as_i64() == Some(0) {
        return;
    }
    let privileged = sc["privileged"].as_bool() == Some(true);
    let adds = sc["capabilities"]["add"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if privileged || adds {
        output::eprint_line(
            "Warning: Non-root user is configured for the entire target Pod, and some capabilities granted by debug profile may not work. Please consider using \"--custom\" with a custom profile that specifies \"securityContext.runAsUser: 0\".",
        );
    }
}

/// `--custom`: the partial container spec merged into the container strategically
/// (maps deep, `env`/`envFrom`-less keyed lists by their merge keys, others replaced).
fn merge_container(target: &mut Value, patch: &Value) {
    fn merge(target: &mut Value, patch: &Value, key: Option<&str>) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                        continue;
                    }
                    let mk = match k.as_str() {
                        "env" | "volumeMounts" | "resizePolicy" => Some(if k == "volumeMounts" {
                            "mountPath"
                        } else if k == "env" {
                            "name"
                        } else {
                            "resourceName"
                        }),
                        "ports" => Some("containerPort"),
                        _ => None,
                    };
                    merge(t.entry(k.clone()).or_insert(Value::Null), v, mk);
                }
            }
            (Value::Array(t), Value::Array(p)) if key.is_some() => {
                let key = key.expect("checked");
                for item in p {
                    match t.iter_mut().find(|x| x[key] == item[key]) {
                        Some(existing) => merge(existing, item, None),
                        None => t.push(item.clone()),
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
    merge(target, patch, None);
}

fn push(list: &mut Value, item: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    list.as_array_mut().expect("an array").push(item);
}

/// Waits for the debugging container to run (or end), then attaches to it; a container
/// that already ended has its logs printed instead, as upstream.
async fn attach(plan: &Plan, client: &RestClient, pod: &Value, container: &str) -> CmdResult {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let mut delay = Duration::from_millis(100);
    let mut last_message = String::new();
    let pod = loop {
        let p = client.get_json(&pod_path(ns, name), client::JSON).await?;
        if let Some(s) = container_status(&p, container) {
            let state = &s["state"];
            if state["running"].is_object() || state["terminated"].is_object() {
                break p;
            }
            let message = state["waiting"]["message"].as_str().unwrap_or_default();
            if !plan.a.quiet && !message.is_empty() && message != last_message {
                output::eprint_line(&format!("Warning: container {container}: {message}"));
                last_message = message.to_string();
            }
        }
        output::flush();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    };
    let terminated =
        container_status(&pod, container).is_some_and(|s| s["state"]["terminated"].is_object());
    if !terminated {
        match attach_to(
            client,
            &pod,
            Some(container),
            plan.a.stdin,
            plan.a.tty,
            plan.a.quiet,
        )
        .await
        {
            Ok(()) => return Ok(()),
            Err(e) => output::eprint_line(&format!(
                "warning: couldn't attach to pod/{name}, falling back to streaming logs: {}",
                e.text.trim_start_matches("error: ")
            )),
        }
    }
    let logs = client
        .request(
            http::Method::GET,
            &format!(
                "{}/log?container={}",
                pod_path(ns, name),
                query_escape(container)
            ),
            "*/*",
            None,
        )
        .await?;
    output::print(&String::from_utf8_lossy(&logs.body));
    Ok(())
}

fn container_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .flat_map(|l| pod["status"][*l].as_array().into_iter().flatten())
    .find(|s| s["name"] == name)
}

/// The distribution reference grammar (`reference.ReferenceRegexp`):
/// `[domain[:port]/]path[/path...][:tag][@algorithm:hex]`.
pub fn valid_image_reference(s: &str) -> bool {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        let alg_ok = !alg.is_empty()
            && alg.split(['-', '_', '+', '.']).all(|p| {
                p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !alg_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return false;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let path_start = usize::from(parts.len() > 1 && !path_component(parts[0]) && domain(parts[0]));
    parts[path_start..].iter().all(|p| path_component(p))
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn path_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let lower = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    while i < b.len() {
        if lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !lower(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host (`Example.com`, `localhost`, `[::1]`) with an optional port.
fn domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => {
            (h, Some(p))
        }
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && !c.starts_with('-')
                && !c.ends_with('-')
                && c.chars().all(|x| x.is_ascii_alphanumeric() || x == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "registry.k8s.io/pause:3.10",
            "localhost:5000/a/b_c__d---e:v1",
            "Example.com/x",
            "[::1]:5000/img",
            "img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid_image_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "BusyBox",
            "a//b",
            "img:",
            "img:-x",
            "-img",
            "img@sha256:12",
            "a/b:c:d",
        ] {
            assert!(!valid_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn custom_profiles_merge_keyed_lists() {
        let mut c = json!({"name": "d", "env": [{"name": "A", "value": "1"}], "securityContext": {"privileged": true}});
        merge_container(
            &mut c,
            &json!({"env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}], "securityContext": {"runAsUser": 0}}),
        );
        assert_eq!(
            c["env"],
            json!([{"name": "A", "value": "2"}, {"name": "B", "value": "3"}])
        );
        assert_eq!(
            c["securityContext"],
            json!({"privileged": true, "runAsUser": 0})
        );
    }
}
