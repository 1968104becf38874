//! The generators that read the cluster first: `kubectl create token` (a TokenRequest for
//! a ServiceAccount) and `kubectl create job --from=cronjob/NAME`. Upstream twins:
//! `kubectl/pkg/cmd/create/create_token.go`, `create_job.go` (`createJobFromCronJob`).

use super::create::GeneratorArgs;
use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::discovery::percent_encode;
use serde_json::{Value, json};

/// `kubectl create token SA`: prints the token (or the TokenRequest with `-o`).
pub async fn token(f: &mut Factory, args: &[String], format: Option<OutputFormat>) -> CmdResult {
    let g = GeneratorArgs::parse(args);
    g.known(
        "token",
        &[
            "audience",
            "duration",
            "bound-object-kind",
            "bound-object-name",
            "bound-object-uid",
        ],
    )?;
    let sa = super::create::name_arg("token", &g.positional)?;
    let mut spec = json!({});
    let audiences = g.all("audience");
    if audiences.iter().any(|a| a.is_empty()) {
        return Err(CmdError::msg("--audience must not be an empty string"));
    }
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    if let Some(d) = g.one("duration") {
        let d = cli_runtime::config_flags::parse_duration(&d).map_err(|e| {
            CmdError::plain(format!(
                "error: invalid argument {d:?} for \"--duration\" flag: {e}"
            ))
        })?;
        if d.as_secs() == 0 && d.subsec_nanos() == 0 {
            // Zero: the server's default lifetime.
        } else if d.subsec_nanos() != 0 {
            return Err(CmdError::msg(
                "--duration must be a whole number of seconds",
            ));
        } else {
            spec["expirationSeconds"] = json!(d.as_secs());
        }
    }
    if let Some(kind) = g.one("bound-object-kind").filter(|k| !k.is_empty()) {
        let api_version = match kind.as_str() {
            "Pod" | "Secret" | "Node" => "v1",
            _ => {
                return Err(CmdError::msg(
                    "supported --bound-object-kind values are Node, Pod, Secret",
                ));
            }
        };
        let name = g.one("bound-object-name").unwrap_or_default();
        if name.is_empty() {
            return Err(CmdError::msg(
                "--bound-object-name is required if --bound-object-kind is provided",
            ));
        }
        let mut r = json!({"kind": kind, "apiVersion": api_version, "name": name});
        if let Some(uid) = g.one("bound-object-uid").filter(|u| !u.is_empty()) {
            r["uid"] = json!(uid);
        }
        spec["boundObjectRef"] = r;
    } else if g.one("bound-object-name").is_some_and(|n| !n.is_empty()) {
        return Err(CmdError::msg(
            "--bound-object-name can only be set if --bound-object-kind is provided",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    let path = format!(
        "/api/v1/namespaces/{}/serviceaccounts/{}/token",
        percent_encode(&namespace),
        percent_encode(&sa)
    );
    let resp = client
        .typed_send(http::Method::POST, &path, &request)
        .await
        .map_err(|e| CmdError::msg(format!("failed to create token: {}", e.server_message())))?;
    match format {
        Some(fmt) => util::print_object(&resp, &fmt, false)?,
        None => {
            let token = resp["status"]["token"].as_str().unwrap_or_default();
            if token.is_empty() {
                return Err(CmdError::msg(
                    "failed to create token: no token in server response",
                ));
            }
            output::print(&format!("{token}\n"));
        }
    }
    Ok(())
}

/// `kubectl create job NAME --from=cronjob/CJ`: the CronJob's job template as a Job it
/// controls, marked as started by hand.
pub async fn job_from(f: &mut Factory, args: &[String]) -> Result<Value, CmdError> {
    let g = GeneratorArgs::parse(args);
    g.known("job", &["image", "restart", "from"])?;
    let name = super::create::name_arg("job", &g.positional)?;
    if g.one("image").is_some_and(|i| !i.is_empty()) {
        return Err(CmdError::msg("either --image or --from must be specified"));
    }
    let from = g.one("from").unwrap_or_default();
    let (ty, cj) = from.split_once('/').ok_or_else(|| {
        CmdError::msg(format!(
            "from must be of the form <resource>/<name>, got {from:?}"
        ))
    })?;
    let r = cli_runtime::resource::mapping(f.discovery().await?, ty).map_err(CmdError::msg)?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let source = client
        .typed_get(&r.object_path(Some(&namespace), cj))
        .await?;
    if r.kind != "CronJob" {
        return Err(CmdError::msg(format!("unknown object type *v1.{}", r.kind)));
    }
    let template = &source["spec"]["jobTemplate"];
    let mut annotations = serde_json::Map::new();
    annotations.insert("cronjob.kubernetes.io/instantiate".into(), json!("manual"));
    for (k, v) in template["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        annotations.insert(k.clone(), v.clone());
    }
    let mut meta = json!({
        "name": name,
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": source["metadata"]["name"],
            "uid": source["metadata"]["uid"],
            "controller": true,
        }],
    });
    if template["metadata"]["labels"].is_object() {
        meta["labels"] = template["metadata"]["labels"].clone();
    }
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": template["spec"],
        "status": {},
    }))
}
