//! The command tree. Upstream twin: `kubectl/pkg/cmd/cmd.go`.

pub mod api_resources;
pub mod apply;
pub mod apply_last_applied;
pub mod apply_prune;
pub mod auth;
pub mod auth_reconcile;
pub mod certificate;
pub mod cluster_info;
pub mod completion;
pub mod config;
pub mod cp;
pub mod create;
pub mod create_ingress;
pub mod create_role;
pub mod create_token;
pub mod debug;
pub mod delete;
pub mod describe;
pub mod diff;
pub mod drain;
pub mod edit;
pub mod events;
pub mod exec;
pub mod explain;
pub mod flags;
pub mod get;
pub mod get_watch;
pub mod label;
pub mod logs;
pub mod patch;
pub mod plugin;
pub mod portforward;
pub mod proxy;
pub mod rollout;
pub mod rollout_history;
pub mod run;
pub mod scale;
pub mod set;
pub mod taint;
pub mod top;
pub mod util;
pub mod version;
pub mod wait;

use crate::error::CmdResult;
use crate::factory::Factory;
use cli_runtime::config_flags::ConfigFlags;
use std::ffi::OsString;

#[derive(clap::Parser, Debug)]
#[command(
    name = "kubectl",
    about = "kubectl controls the Kubernetes cluster manager.",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: ConfigFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Display one or many resources
    Get(get::GetArgs),
    /// Show details of a specific resource or group of resources
    Describe(describe::DescribeArgs),
    /// Create a resource from a file or from stdin
    Create(create::CreateArgs),
    /// Apply a configuration to a resource by file name or stdin
    Apply(apply::ApplyArgs),
    /// Diff the live version against a would-be applied version
    Diff(diff::DiffArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector
    Delete(delete::DeleteArgs),
    /// Update the labels on a resource
    Label(label::LabelArgs),
    /// Update the annotations on a resource
    Annotate(label::LabelArgs),
    /// Set a new size for a deployment, replica set, or replication controller
    Scale(scale::ScaleArgs),
    /// Edit a resource on the server
    Edit(edit::EditArgs),
    /// Update fields of a resource
    Patch(patch::PatchArgs),
    /// Replace a resource by file name or stdin
    Replace(patch::ReplaceArgs),
    /// Update the taints on one or more nodes
    Taint(taint::TaintArgs),
    /// Manage the rollout of a resource
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Run a particular image on the cluster
    Run(run::RunArgs),
    /// Take a replication controller, service, deployment or pod and expose it as a new Kubernetes service
    Expose(run::ExposeArgs),
    /// Auto-scale a deployment, replica set, stateful set, or replication controller
    Autoscale(run::AutoscaleArgs),
    /// Set specific features on objects
    #[command(subcommand)]
    Set(set::SetCommand),
    /// Experimental: Wait for a specific condition on one or many resources
    Wait(wait::WaitArgs),
    /// Modify certificate resources
    #[command(subcommand)]
    Certificate(certificate::CertificateCommand),
    /// Mark node as unschedulable
    Cordon(drain::CordonArgs),
    /// Mark node as schedulable
    Uncordon(drain::CordonArgs),
    /// Drain node in preparation for maintenance
    Drain(drain::DrainArgs),
    Debug(debug::DebugArgs),
    /// List events
    Events(events::EventsArgs),
    /// Display resource (CPU/memory) usage
    #[command(subcommand)]
    Top(top::TopCommand),
    /// Print the logs for a container in a pod
    Logs(logs::LogsArgs),
    /// Execute a command in a container
    Exec(exec::ExecArgs),
    /// Attach to a running container
    Attach(exec::AttachArgs),
    /// Forward one or more local ports to a pod
    PortForward(portforward::PortForwardArgs),
    /// Copy files and directories to and from containers
    Cp(cp::CpArgs),
    /// Run a proxy to the Kubernetes API server
    Proxy(proxy::ProxyArgs),
    /// Print the client and server version information
    Version(version::VersionArgs),
    Explain(explain::ExplainArgs),
    Completion(completion::CompletionArgs),
    /// Build a kustomization target from a directory or URL
    Kustomize(KustomizeArgs),
    /// Print the supported API resources on the server
    ApiResources(api_resources::ApiResourcesArgs),
    /// Print the supported API versions on the server, in the form of "group/version"
    ApiVersions,
    /// Modify kubeconfig files
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Display cluster information
    ClusterInfo,
    /// Inspect authorization
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Provides utilities for interacting with plugins
    #[command(subcommand, name = "plugin")]
    PluginList(plugin::PluginCommand),
    /// A plugin (`kubectl-<name>` on the PATH)
    #[command(external_subcommand)]
    Plugin(Vec<OsString>),
}

#[derive(clap::Args, Debug)]
pub struct KustomizeArgs {
    /// DIR
    pub dir: Option<String>,
}

/// `kubectl kustomize DIR`: the built objects as YAML documents.
fn kustomize(a: KustomizeArgs) -> CmdResult {
    let dir = a.dir.unwrap_or_else(|| ".".into());
    let objects = cli_runtime::kustomize::build(&dir).map_err(crate::error::CmdError::msg)?;
    let docs: Vec<String> = objects
        .iter()
        .map(|o| cli_runtime::printers::yaml::to_yaml(&o.object))
        .collect();
    crate::output::print(&docs.join("---\n"));
    Ok(())
}

pub async fn run(cli: Cli) -> CmdResult {
    let warnings_as_errors = cli.flags.warnings_as_errors;
    let mut f = Factory::new(cli.flags);
    let result = dispatch(&mut f, cli.command).await;
    // Upstream's --warnings-as-errors: a command that got warnings fails after it ran.
    let warnings = cli_runtime::client::WARNINGS.load(std::sync::atomic::Ordering::Relaxed);
    if result.is_ok() && warnings_as_errors && warnings > 0 {
        return Err(crate::error::CmdError::msg(format!(
            "{warnings} warnings received"
        )));
    }
    result
}

async fn dispatch(f: &mut Factory, command: Command) -> CmdResult {
    match command {
        Command::Get(a) => get::run(f, a).await,
        Command::Describe(a) => describe::run(f, a).await,
        Command::Create(a) => create::run(f, a).await,
        Command::Apply(a) => apply::run(f, a).await,
        Command::Diff(a) => diff::run(f, a).await,
        Command::Delete(a) => delete::run(f, a).await,
        Command::Label(a) => label::run(f, a, label::Field::Labels).await,
        Command::Annotate(a) => label::run(f, a, label::Field::Annotations).await,
        Command::Scale(a) => scale::run(f, a).await,
        Command::Edit(a) => edit::run(f, a).await,
        Command::Patch(a) => patch::patch(f, a).await,
        Command::Replace(a) => patch::replace(f, a).await,
        Command::Taint(a) => taint::run(f, a).await,
        Command::Rollout(c) => rollout::run(f, c).await,
        Command::Run(a) => run::run(f, a).await,
        Command::Expose(a) => run::expose(f, a).await,
        Command::Autoscale(a) => run::autoscale(f, a).await,
        Command::Set(c) => set::run(f, c).await,
        Command::Wait(a) => wait::run(f, a).await,
        Command::Certificate(c) => certificate::run(f, c).await,
        Command::Cordon(a) => drain::cordon(f, a, true).await,
        Command::Uncordon(a) => drain::cordon(f, a, false).await,
        Command::Drain(a) => drain::drain(f, a).await,
        Command::Debug(a) => debug::run(f, a).await,
        Command::Logs(a) => logs::run(f, a).await,
        Command::Exec(a) => exec::run_exec(f, a).await,
        Command::Attach(a) => exec::run_attach(f, a).await,
        Command::PortForward(a) => portforward::run(f, a).await,
        Command::Proxy(a) => proxy::run(f, a).await,
        Command::Cp(a) => cp::run(f, a).await,
        Command::Events(a) => events::run(f, a).await,
        Command::Top(c) => top::run(f, c).await,
        Command::Version(a) => version::run(f, a).await,
        Command::Explain(a) => explain::run(f, a).await,
        Command::Completion(a) => completion::run(a),
        Command::Kustomize(a) => kustomize(a),
        Command::ApiResources(a) => api_resources::run(f, a).await,
        Command::ApiVersions => api_resources::versions(f).await,
        Command::Config(c) => config::run(f, c).await,
        Command::ClusterInfo => cluster_info::run(f).await,
        Command::Auth(c) => auth::run(f, c).await,
        Command::PluginList(c) => plugin::plugin(c),
        Command::Plugin(args) => plugin::run(args),
    }
}

/// A command line clap could not parse, reported as cobra does.
pub fn usage_error(e: clap::Error, args: &[OsString]) -> i32 {
    use clap::error::{ContextKind, ErrorKind};
    let ctx = |k: ContextKind| e.get(k).map(|v| v.to_string()).unwrap_or_default();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::UnknownArgument => {
            let arg = ctx(ContextKind::InvalidArg);
            let flag = arg.split([' ', '=']).next().unwrap_or_default().to_string();
            if !flag.starts_with('-') {
                // A word the command takes no positional argument for (cobra's
                // `cmdutil.UsageErrorf(cmd, "Unexpected args: %v", args)`).
                eprintln!(
                    "error: Unexpected args: [{flag}]\nSee 'kubectl {}-h' for help and examples",
                    subcommand_name(args)
                );
                return 1;
            }
            if flag.starts_with("--") {
                flag_error(&format!("unknown flag: {flag}"), args)
            } else {
                let c = flag.trim_start_matches('-').chars().next().unwrap_or('?');
                flag_error(&format!("unknown shorthand flag: '{c}' in {flag}"), args)
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = ctx(ContextKind::InvalidArg);
            let value = ctx(ContextKind::InvalidValue);
            let flag = arg.split([' ', '=']).next().unwrap_or_default();
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                // An option at the end of the line without its value.
                let typed = args.last().map(|a| a.to_string_lossy().to_string());
                let message = match typed {
                    Some(t) if t.len() == 2 && t.starts_with('-') && !t.starts_with("--") => {
                        format!("flag needs an argument: '{}' in {t}", &t[1..])
                    }
                    _ => format!("flag needs an argument: {flag}"),
                };
                return flag_error(&message, args);
            }
            let why = if value.parse::<f64>().is_err() {
                format!("strconv.ParseInt: parsing {value:?}: invalid syntax")
            } else {
                format!("strconv.ParseInt: parsing {value:?}: value out of range")
            };
            flag_error(
                &format!("invalid argument {value:?} for {flag:?} flag: {why}"),
                args,
            )
        }
        ErrorKind::InvalidSubcommand => {
            let typed = ctx(ContextKind::InvalidSubcommand);
            eprintln!("Error: unknown command {typed:?} for \"kubectl\"");
            let suggestions = flags::suggestions(&typed);
            if !suggestions.is_empty() {
                eprintln!("\nDid you mean this?");
                for s in suggestions {
                    eprintln!("\t{s}");
                }
                eprintln!();
            }
            1
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            flag_error(first, args)
        }
    }
}

/// `Error: <message>` and where to read the usage, exit 1 (cobra's flag errors).
pub fn flag_error(message: &str, args: &[OsString]) -> i32 {
    eprintln!("Error: {message}");
    eprintln!("See 'kubectl {}--help' for usage.", subcommand_name(args));
    1
}

/// cobra's `CommandPath` below `kubectl`: the command word and the subcommands after it,
/// by their canonical names (`top nodes` → `top node `).
fn subcommand_name(args: &[OsString]) -> String {
    use clap::CommandFactory;
    let Some(i) = command_index(args) else {
        return String::new();
    };
    let root = Cli::command();
    let first = args[i].to_string_lossy();
    let Some(mut cmd) = root.find_subcommand(first.as_ref()) else {
        return format!("{first} ");
    };
    let mut path = format!("{} ", cmd.get_name());
    for a in &args[i + 1..] {
        match cmd.find_subcommand(a.to_string_lossy().as_ref()) {
            Some(sub) => {
                path.push_str(sub.get_name());
                path.push(' ');
                cmd = sub;
            }
            None => break,
        }
    }
    path
}

/// Where the command word is: the first argument that is neither a flag nor the value of
/// a global option before it (`--server URL`).
pub fn command_index(args: &[OsString]) -> Option<usize> {
    use clap::CommandFactory;
    let command = Cli::command();
    let takes_value = |a: &str| {
        let (long, short) = match a.strip_prefix("--") {
            Some(l) => (Some(l), None),
            None => (None, a.strip_prefix('-').and_then(|s| s.chars().next())),
        };
        command.get_arguments().any(|arg| {
            let named = long.is_some_and(|l| arg.get_long() == Some(l))
                || short.is_some_and(|c| a.len() == 2 && arg.get_short() == Some(c));
            named && arg.get_action().takes_values()
        })
    };
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if !a.starts_with('-') {
            return Some(i);
        }
        if !a.contains('=') && takes_value(&a) {
            i += 1;
        }
        i += 1;
    }
    None
}
