//! `kubectl auth whoami` and `kubectl auth can-i` (`auth reconcile` is in its own file). Upstream twins:
//! `kubectl/pkg/cmd/auth/{whoami,cani}.go`.

use super::util::{self, OutputFormat};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use cli_runtime::printers::tabwriter;
use serde_json::json;

#[derive(clap::Subcommand, Debug)]
pub enum AuthCommand {
    /// Check whether an action is allowed
    CanI(CanIArgs),
    /// Experimental: Check self subject attributes
    Whoami(WhoamiArgs),
    /// Reconciles rules for RBAC role, role binding, cluster role, and cluster role binding objects
    Reconcile(super::auth_reconcile::ReconcileArgs),
}

#[derive(clap::Args, Debug)]
pub struct CanIArgs {
    /// VERB [TYPE | TYPE/NAME | NONRESOURCEURL]
    pub args: Vec<String>,
    /// If true, check the specified action in all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If true, suppress output and just return the exit code.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// SubResource such as pod/log or deployment/scale
    #[arg(long)]
    pub subresource: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct WhoamiArgs {
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

pub async fn run(f: &mut Factory, c: AuthCommand) -> CmdResult {
    match c {
        AuthCommand::Whoami(a) => whoami(f, a).await,
        AuthCommand::CanI(a) => can_i(f, a).await,
        AuthCommand::Reconcile(a) => super::auth_reconcile::run(f, a).await,
    }
}

async fn whoami(f: &mut Factory, a: WhoamiArgs) -> CmdResult {
    let format = OutputFormat::from_flag(a.output.as_deref())?;
    let client = f.client().await?;
    let review = client
        .typed_send(http::Method::POST, "/apis/authentication.k8s.io/v1/selfsubjectreviews", &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}),
        )
        .await?;
    if let Some(fmt) = format {
        return util::print_object(&review, &fmt, false);
    }
    let info = &review["status"]["userInfo"];
    let mut text = String::from("ATTRIBUTE\tVALUE\n");
    if let Some(u) = info["username"].as_str() {
        text.push_str(&format!("Username\t{u}\n"));
    }
    if let Some(u) = info["uid"].as_str() {
        text.push_str(&format!("UID\t{u}\n"));
    }
    if let Some(g) = info["groups"].as_array() {
        let groups: Vec<&str> = g.iter().filter_map(|x| x.as_str()).collect();
        text.push_str(&format!("Groups\t[{}]\n", groups.join(" ")));
    }
    if let Some(extra) = info["extra"].as_object() {
        for (k, v) in extra {
            let vals: Vec<&str> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .collect();
            text.push_str(&format!("Extra: {k}\t[{}]\n", vals.join(" ")));
        }
    }
    output::print(&tabwriter::align(&text));
    Ok(())
}

async fn can_i(f: &mut Factory, a: CanIArgs) -> CmdResult {
    if a.args.len() < 2 {
        return Err(CmdError::msg(
            "you must specify two arguments: verb resource or verb resource/resourceName.",
        ));
    }
    let verb = &a.args[0];
    let target = &a.args[1];
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let spec = if target.starts_with('/') {
        json!({"nonResourceAttributes": {"verb": verb, "path": target}})
    } else {
        let (ty, name) = match target.split_once('/') {
            Some((t, n)) => (t.to_string(), n.to_string()),
            None => (target.clone(), String::new()),
        };
        let (group, resource) = match f.discovery().await?.resource_for(&ty) {
            Some(r) => (r.group.clone(), r.resource.clone()),
            None if ty == "*" => ("*".to_string(), "*".to_string()),
            None => {
                output::eprint_line(&format!(
                    "Warning: the server doesn't have a resource type '{ty}'"
                ));
                let (res, grp) = ty.split_once('.').unwrap_or((&ty, ""));
                (grp.to_string(), res.to_string())
            }
        };
        let mut attrs = json!({"verb": verb, "group": group, "resource": resource, "name": name});
        if !a.all_namespaces {
            attrs["namespace"] = json!(namespace);
        }
        if let Some(s) = &a.subresource {
            attrs["subresource"] = json!(s);
        }
        json!({"resourceAttributes": attrs})
    };
    let review = client
        .typed_send(http::Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}),
        )
        .await?;
    let allowed = review["status"]["allowed"].as_bool().unwrap_or(false);
    if !a.quiet {
        let mut line = if allowed {
            "yes".to_string()
        } else {
            "no".to_string()
        };
        if let Some(reason) = review["status"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
            && !allowed
        {
            line = format!("{line} - {reason}");
        }
        output::print(&format!("{line}\n"));
    }
    if allowed {
        Ok(())
    } else {
        Err(CmdError::silent(1))
    }
}
