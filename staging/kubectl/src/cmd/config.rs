//! `kubectl config`: view and edit kubeconfig files. The flags that name a cluster,
//! user, namespace, server or credentials are kubectl's global ones, as upstream's
//! `set-*` commands read the same names. Upstream twin: `kubectl/pkg/cmd/config`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::printers::{tabwriter, yaml};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Display merged kubeconfig settings or a specified kubeconfig file
    View(ViewArgs),
    /// Display the current-context
    CurrentContext,
    /// Set the current-context in a kubeconfig file
    #[command(alias = "use")]
    UseContext { name: String },
    /// Describe one or many contexts
    GetContexts(GetContextsArgs),
    /// Display clusters defined in the kubeconfig
    GetClusters,
    /// Display users defined in the kubeconfig
    GetUsers,
    /// Set a context entry in kubeconfig
    SetContext(SetContextArgs),
    /// Set a cluster entry in kubeconfig
    SetCluster(SetEntryArgs),
    /// Set a user entry in kubeconfig
    SetCredentials(SetEntryArgs),
    /// Delete the specified context from the kubeconfig
    DeleteContext { name: String },
    /// Delete the specified cluster from the kubeconfig
    DeleteCluster { name: String },
    /// Delete the specified user from the kubeconfig
    DeleteUser { name: String },
    /// Rename a context from the kubeconfig file
    RenameContext { old: String, new: String },
}

#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// Output format. One of: (json, yaml, name, jsonpath, custom-columns).
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
    /// Remove all information not used by current-context from the output
    #[arg(long)]
    pub minify: bool,
    /// Display raw byte data and sensitive data
    #[arg(long)]
    pub raw: bool,
    /// Flatten the resulting kubeconfig file into self-contained output (useful for creating portable kubeconfig files)
    #[arg(long)]
    pub flatten: bool,
}

#[derive(clap::Args, Debug)]
pub struct GetContextsArgs {
    pub names: Vec<String>,
    /// Output format. One of: (name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// When using the default or custom-column output format, don't print headers (default print headers).
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

#[derive(clap::Args, Debug)]
pub struct SetContextArgs {
    pub name: Option<String>,
    /// Modify the current context
    #[arg(long)]
    pub current: bool,
}

#[derive(clap::Args, Debug)]
pub struct SetEntryArgs {
    pub name: String,
    /// embed-certs for the cluster entry in kubeconfig
    #[arg(long = "embed-certs")]
    pub embed_certs: bool,
}

pub async fn run(f: &mut Factory, c: ConfigCommand) -> CmdResult {
    match c {
        ConfigCommand::View(a) => view(f, a),
        ConfigCommand::CurrentContext => {
            let kc = merged(f)?;
            match kc["current-context"].as_str().filter(|c| !c.is_empty()) {
                Some(c) => {
                    output::print(&format!("{c}\n"));
                    Ok(())
                }
                None => Err(CmdError::msg("current-context is not set")),
            }
        }
        ConfigCommand::UseContext { name } => {
            let (path, mut kc) = file(f)?;
            if named(&kc, "contexts", &name).is_none()
                && named(&merged(f)?, "contexts", &name).is_none()
            {
                return Err(CmdError::msg(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            kc["current-context"] = json!(name);
            save(&path, &kc)?;
            output::print(&format!("Switched to context \"{name}\".\n"));
            Ok(())
        }
        ConfigCommand::GetContexts(a) => get_contexts(f, a),
        ConfigCommand::GetClusters => list_names(f, "clusters"),
        ConfigCommand::GetUsers => list_names(f, "users"),
        ConfigCommand::SetContext(a) => set_context(f, a),
        ConfigCommand::SetCluster(a) => set_cluster(f, a),
        ConfigCommand::SetCredentials(a) => set_credentials(f, a),
        ConfigCommand::DeleteContext { name } => delete(f, "contexts", "context", &name),
        ConfigCommand::DeleteCluster { name } => delete(f, "clusters", "cluster", &name),
        ConfigCommand::DeleteUser { name } => delete(f, "users", "user", &name),
        ConfigCommand::RenameContext { old, new } => {
            let (path, mut kc) = file(f)?;
            if named(&kc, "contexts", &new).is_some() {
                return Err(CmdError::msg(format!(
                    "cannot rename the context \"{old}\", the context \"{new}\" already exists in {}",
                    path.display()
                )));
            }
            let Some(entry) = kc["contexts"]
                .as_array_mut()
                .and_then(|l| l.iter_mut().find(|e| e["name"] == old.as_str()))
            else {
                return Err(CmdError::msg(format!(
                    "cannot rename the context \"{old}\", it's not in {}",
                    path.display()
                )));
            };
            entry["name"] = json!(new);
            if kc["current-context"] == old.as_str() {
                kc["current-context"] = json!(new);
            }
            save(&path, &kc)?;
            output::print(&format!("Context \"{old}\" renamed to \"{new}\".\n"));
            Ok(())
        }
    }
}

// The merged kubeconfig in clientcmd's v1 shape (lists sorted by name).
fn merged(f: &Factory) -> Result<Value, CmdError> {
    let kc = f.flags.raw_config().map_err(CmdError::msg)?;
    let v = serde_json::to_value(&kc).map_err(CmdError::msg)?;
    Ok(normalize(v))
}

fn normalize(mut v: Value) -> Value {
    if !v.is_object() {
        v = json!({});
    }
    for list in ["clusters", "contexts", "users"] {
        match v[list].as_array_mut() {
            Some(items) if !items.is_empty() => {
                items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                for item in items.iter_mut() {
                    let inner = match list {
                        "clusters" => "cluster",
                        "contexts" => "context",
                        _ => "user",
                    };
                    if item[inner].is_null() {
                        item[inner] = json!({});
                    }
                }
            }
            _ => v[list] = Value::Null,
        }
    }
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Config");
    if v["preferences"].is_null() {
        v["preferences"] = json!({});
    }
    if v["current-context"].is_null() {
        v["current-context"] = json!("");
    }
    v
}

fn view(f: &Factory, a: ViewArgs) -> CmdResult {
    let mut kc = merged(f)?;
    if a.minify {
        let current = non_empty(&f.flags.context)
            .or_else(|| kc["current-context"].as_str().map(str::to_string))
            .unwrap_or_default();
        let Some(ctx) = named(&kc, "contexts", &current).cloned() else {
            return Err(CmdError::msg(
                "current-context must exist in order to minify",
            ));
        };
        let cluster = ctx["context"]["cluster"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let user = ctx["context"]["user"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        kc["contexts"] = json!([ctx]);
        kc["clusters"] = json!(
            named(&kc, "clusters", &cluster)
                .cloned()
                .into_iter()
                .collect::<Vec<_>>()
        );
        kc["users"] = json!(
            named(&kc, "users", &user)
                .cloned()
                .into_iter()
                .collect::<Vec<_>>()
        );
        kc["current-context"] = json!(current);
        kc = normalize(kc);
    }
    if a.flatten {
        flatten(&mut kc)?;
    }
    if !a.raw && !a.flatten {
        shorten(&mut kc);
    }
    let format = OutputFormat::parse(Some(&a.output))?;
    match format {
        OutputFormat::Yaml => output::print(&yaml::to_yaml(&kc)),
        other => util::print_object(&kc, &other, false)?,
    }
    Ok(())
}

// clientcmd's ShortenConfig: certificate data and tokens are not printed.
fn shorten(kc: &mut Value) {
    for c in kc["clusters"].as_array_mut().into_iter().flatten() {
        if c["cluster"]["certificate-authority-data"].is_string() {
            c["cluster"]["certificate-authority-data"] = json!("DATA+OMITTED");
        }
    }
    for u in kc["users"].as_array_mut().into_iter().flatten() {
        for k in ["client-certificate-data", "client-key-data"] {
            if u["user"][k].is_string() {
                u["user"][k] = json!("DATA+OMITTED");
            }
        }
        if u["user"]["token"].is_string() {
            u["user"]["token"] = json!("REDACTED");
        }
    }
}

// `--flatten`: file references become embedded data.
fn flatten(kc: &mut Value) -> CmdResult {
    use base64::Engine;
    let embed = |obj: &mut Value, file_key: &str, data_key: &str| -> CmdResult {
        if let Some(p) = obj[file_key].as_str().map(str::to_string) {
            let bytes = std::fs::read(&p).map_err(|e| CmdError::msg(format!("{p}: {e}")))?;
            obj[data_key] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            obj.as_object_mut().expect("object").remove(file_key);
        }
        Ok(())
    };
    for c in kc["clusters"].as_array_mut().into_iter().flatten() {
        embed(
            &mut c["cluster"],
            "certificate-authority",
            "certificate-authority-data",
        )?;
    }
    for u in kc["users"].as_array_mut().into_iter().flatten() {
        embed(
            &mut u["user"],
            "client-certificate",
            "client-certificate-data",
        )?;
        embed(&mut u["user"], "client-key", "client-key-data")?;
    }
    Ok(())
}

fn get_contexts(f: &Factory, a: GetContextsArgs) -> CmdResult {
    let kc = merged(f)?;
    let current = kc["current-context"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let all: Vec<Value> = kc["contexts"].as_array().cloned().unwrap_or_default();
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    if a.names.is_empty() {
        chosen = all;
    } else {
        for n in &a.names {
            match all.iter().find(|c| c["name"] == n.as_str()) {
                Some(c) => chosen.push(c.clone()),
                None => missing.push(format!("context {n} not found")),
            }
        }
    }
    let names_only = match a.output.as_deref() {
        None | Some("") => false,
        Some("name") => true,
        Some(o) => {
            return Err(CmdError::msg(format!(
                "output must be one of '' or 'name': {o}"
            )));
        }
    };
    let mut text = String::new();
    if names_only {
        for c in &chosen {
            text.push_str(c["name"].as_str().unwrap_or_default());
            text.push('\n');
        }
        output::print(&text);
    } else {
        if !a.no_headers {
            text.push_str("CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE\n");
        }
        for c in &chosen {
            let name = c["name"].as_str().unwrap_or_default();
            let ctx = &c["context"];
            text.push_str(&format!(
                "{}\t{name}\t{}\t{}\t{}\n",
                if name == current { "*" } else { "" },
                ctx["cluster"].as_str().unwrap_or_default(),
                ctx["user"].as_str().unwrap_or_default(),
                ctx["namespace"].as_str().unwrap_or_default()
            ));
        }
        output::print(&tabwriter::align(&text));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CmdError::msg(missing.join("\n")))
    }
}

fn list_names(f: &Factory, list: &str) -> CmdResult {
    let kc = merged(f)?;
    output::print("NAME\n");
    for e in kc[list].as_array().into_iter().flatten() {
        output::print(&format!("{}\n", e["name"].as_str().unwrap_or_default()));
    }
    Ok(())
}

fn set_context(f: &Factory, a: SetContextArgs) -> CmdResult {
    let (path, mut kc) = file(f)?;
    let name = match (a.current, a.name) {
        (true, None) => kc["current-context"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .ok_or_else(|| CmdError::msg("no current context is set"))?,
        (false, Some(n)) => n,
        (true, Some(_)) => return Err(CmdError::msg("you cannot specify a name and --current")),
        (false, None) => {
            return Err(CmdError::msg(
                "you must specify a non-empty context name or --current",
            ));
        }
    };
    let existed = named(&kc, "contexts", &name).is_some();
    let entry = upsert(&mut kc, "contexts", &name);
    let ctx = &mut entry["context"];
    for (flag, key) in [
        (&f.flags.cluster, "cluster"),
        (&f.flags.user, "user"),
        (&f.flags.namespace, "namespace"),
    ] {
        if !flag.is_empty() {
            ctx[key] = json!(flag);
        }
    }
    save(&path, &kc)?;
    output::print(&format!(
        "Context \"{name}\" {}.\n",
        if existed { "modified" } else { "created" }
    ));
    Ok(())
}

fn set_cluster(f: &Factory, a: SetEntryArgs) -> CmdResult {
    let (path, mut kc) = file(f)?;
    let entry = upsert(&mut kc, "clusters", &a.name);
    let c = &mut entry["cluster"];
    if !f.flags.server.is_empty() {
        c["server"] = json!(f.flags.server);
    }
    if !f.flags.tls_server_name.is_empty() {
        c["tls-server-name"] = json!(f.flags.tls_server_name);
    }
    if f.flags.insecure_skip_tls_verify {
        c["insecure-skip-tls-verify"] = json!(true);
        remove(c, "certificate-authority");
        remove(c, "certificate-authority-data");
    }
    if !f.flags.certificate_authority.is_empty() {
        let ca = &f.flags.certificate_authority;
        if a.embed_certs {
            use base64::Engine;
            let bytes = std::fs::read(ca).map_err(|e| {
                CmdError::msg(format!(
                    "could not read certificate-authority data from {ca}: {e}"
                ))
            })?;
            c["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            remove(c, "certificate-authority");
        } else {
            c["certificate-authority"] = json!(absolute(ca));
            remove(c, "certificate-authority-data");
        }
        remove(c, "insecure-skip-tls-verify");
    }
    save(&path, &kc)?;
    output::print(&format!("Cluster \"{}\" set.\n", a.name));
    Ok(())
}

fn set_credentials(f: &Factory, a: SetEntryArgs) -> CmdResult {
    let (path, mut kc) = file(f)?;
    let entry = upsert(&mut kc, "users", &a.name);
    let u = &mut entry["user"];
    if !f.flags.token.is_empty() {
        u["token"] = json!(f.flags.token);
    }
    for (flag, file_key, data_key) in [
        (
            &f.flags.client_certificate,
            "client-certificate",
            "client-certificate-data",
        ),
        (&f.flags.client_key, "client-key", "client-key-data"),
    ] {
        if flag.is_empty() {
            continue;
        }
        if a.embed_certs {
            use base64::Engine;
            let bytes = std::fs::read(flag).map_err(|e| {
                CmdError::msg(format!("error reading {file_key} data from {flag}: {e}"))
            })?;
            u[data_key] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            remove(u, file_key);
        } else {
            u[file_key] = json!(absolute(flag));
            remove(u, data_key);
        }
    }
    save(&path, &kc)?;
    output::print(&format!("User \"{}\" set.\n", a.name));
    Ok(())
}

fn delete(f: &Factory, list: &str, what: &str, name: &str) -> CmdResult {
    let (path, mut kc) = file(f)?;
    let Some(items) = kc[list].as_array_mut() else {
        return Err(CmdError::msg(format!(
            "cannot delete {what} {name}, not in {}",
            path.display()
        )));
    };
    let before = items.len();
    items.retain(|e| e["name"] != name);
    if items.len() == before {
        return Err(CmdError::msg(format!(
            "cannot delete {what} {name}, not in {}",
            path.display()
        )));
    }
    if what == "context" && kc["current-context"] == name {
        output::eprint_line(
            "warning: this removed your active context, use \"kubectl config use-context\" to select a different one",
        );
    }
    save(&path, &kc)?;
    output::print(&format!("deleted {what} {name} from {}\n", path.display()));
    Ok(())
}

// The one file `config set-*` edits, as it is on disk.
fn file(f: &Factory) -> Result<(PathBuf, Value), CmdError> {
    let path = f
        .flags
        .config_path()
        .ok_or_else(|| CmdError::msg("no kubeconfig path (HOME is not set)"))?;
    let kc = match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => serde_saphyr_value(&text)?,
        _ => json!({}),
    };
    Ok((path, normalize(kc)))
}

fn serde_saphyr_value(text: &str) -> Result<Value, CmdError> {
    let docs = cli_runtime::resource::parse_yaml_values(text).map_err(CmdError::msg)?;
    Ok(docs.into_iter().next().unwrap_or(json!({})))
}

fn save(path: &std::path::Path, kc: &Value) -> CmdResult {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CmdError::msg(format!("{}: {e}", dir.display())))?;
    }
    std::fs::write(path, yaml::to_yaml(kc))
        .map_err(|e| CmdError::msg(format!("{}: {e}", path.display())))
}

fn named<'a>(kc: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    kc[list].as_array()?.iter().find(|e| e["name"] == name)
}

fn upsert<'a>(kc: &'a mut Value, list: &str, name: &str) -> &'a mut Value {
    let inner = match list {
        "clusters" => "cluster",
        "contexts" => "context",
        _ => "user",
    };
    if !kc[list].is_array() {
        kc[list] = json!([]);
    }
    let items = kc[list].as_array_mut().expect("made an array");
    let pos = match items.iter().position(|e| e["name"] == name) {
        Some(p) => p,
        None => {
            items.push(json!({"name": name, inner: {}}));
            items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            items
                .iter()
                .position(|e| e["name"] == name)
                .expect("just added")
        }
    };
    &mut items[pos]
}

fn remove(v: &mut Value, key: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
}

fn absolute(p: &str) -> String {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}
