//! Shell completion: `kubectl completion bash|zsh` prints a script that asks the binary
//! itself (`kubectl __complete <words>`) what may come next, as cobra's completion V2
//! does; `__complete` answers with one candidate per line (`name<TAB>description`), then
//! `:<directive>`. Upstream twins: `kubectl/pkg/cmd/completion/completion.go`,
//! `kubectl/pkg/util/completion/completion.go` and cobra's `__complete` protocol.

use crate::cmd::Cli;
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use clap::{CommandFactory, Parser};
use cli_runtime::client;
use cli_runtime::config_flags::ConfigFlags;

/// cobra's `ShellCompDirective` bits.
const NO_SPACE: u32 = 2;
const NO_FILE_COMP: u32 = 4;
const FILTER_FILE_EXT: u32 = 8;

#[derive(clap::Args, Debug)]
#[command(
    about = "Output shell completion code for the specified shell (bash, zsh, fish, or powershell)"
)]
pub struct CompletionArgs {
    /// SHELL
    pub shell: Vec<String>,
}

/// A usage error, with cobra's pointer to the help.
fn usage(m: &str) -> CmdError {
    CmdError::plain(format!(
        "error: {m}\nSee 'kubectl completion -h' for help and examples"
    ))
}

pub fn run(a: CompletionArgs) -> CmdResult {
    match a.shell.as_slice() {
        [] => Err(usage("Shell not specified.")),
        [shell] => match shell.as_str() {
            "bash" => {
                output::print(BASH);
                Ok(())
            }
            "zsh" => {
                output::print(ZSH);
                Ok(())
            }
            "fish" | "powershell" => Err(CmdError::msg(format!(
                "{shell} completion is not supported by this kubectl (bash and zsh are)"
            ))),
            other => Err(usage(&format!("Unsupported shell type \"{other}\"."))),
        },
        _ => Err(usage("Too many arguments. Expected only the shell type.")),
    }
}

#[derive(Parser)]
#[command(
    name = "kubectl",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Globals {
    #[command(flatten)]
    flags: ConfigFlags,
}

/// `kubectl __complete <words...> <partial>`: prints the candidates and the directive.
pub fn complete(words: Vec<String>, with_descriptions: bool) -> i32 {
    let (partial, words) = match words.split_last() {
        Some((last, rest)) => (last.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    // Global flags anywhere on the line choose the cluster, context and namespace.
    let cli = Cli::command();
    let mut globals = vec!["kubectl".to_string()];
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        match global_flag(&cli, w) {
            Some(takes_value) => {
                globals.push(w.clone());
                if takes_value && !w.contains('=') && i + 1 < words.len() {
                    globals.push(words[i + 1].clone());
                    i += 1;
                }
            }
            None => rest.push(w.clone()),
        }
        i += 1;
    }
    let flags = Globals::try_parse_from(&globals)
        .map(|g| g.flags)
        .unwrap_or_else(|_| Globals::parse_from(["kubectl"]).flags);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return 1,
    };
    let prev = words.last().cloned().unwrap_or_default();
    let (candidates, directive) = runtime.block_on(candidates(&cli, flags, &rest, &prev, &partial));
    for (name, description) in candidates
        .into_iter()
        .filter(|(n, _)| n.starts_with(partial.as_str()))
    {
        if with_descriptions && !description.is_empty() {
            output::print(&format!("{name}\t{description}\n"));
        } else {
            output::print(&format!("{name}\n"));
        }
    }
    output::print(&format!(":{directive}\n"));
    output::flush();
    eprintln!(
        "Completion ended with directive: {}",
        directive_name(directive)
    );
    0
}

fn directive_name(d: u32) -> String {
    let mut names = Vec::new();
    if d & NO_SPACE != 0 {
        names.push("ShellCompDirectiveNoSpace");
    }
    if d & NO_FILE_COMP != 0 {
        names.push("ShellCompDirectiveNoFileComp");
    }
    if d & FILTER_FILE_EXT != 0 {
        names.push("ShellCompDirectiveFilterFileExt");
    }
    if names.is_empty() {
        "ShellCompDirectiveDefault".into()
    } else {
        names.join(", ")
    }
}

/// Whether `w` is a global flag, and whether it takes a value.
fn global_flag(cli: &clap::Command, w: &str) -> Option<bool> {
    let name = w.split('=').next().unwrap_or_default();
    cli.get_arguments()
        .filter(|a| a.is_global_set())
        .find(|a| {
            name.strip_prefix("--")
                .is_some_and(|l| a.get_long() == Some(l))
                || (name.len() == 2
                    && name
                        .strip_prefix('-')
                        .and_then(|s| s.chars().next())
                        .is_some_and(|c| a.get_short() == Some(c)))
        })
        .map(|a| a.get_action().takes_values())
}

type Candidates = (Vec<(String, String)>, u32);

async fn candidates(
    cli: &clap::Command,
    flags: ConfigFlags,
    words: &[String],
    prev: &str,
    partial: &str,
) -> Candidates {
    let mut f = Factory::new(flags);
    // The value of a flag being completed.
    match prev {
        "-n" | "--namespace" => return (names(&mut f, "namespaces", false).await, NO_FILE_COMP),
        "--context" => return (kubeconfig_names(&f, "contexts"), NO_FILE_COMP),
        "--cluster" => return (kubeconfig_names(&f, "clusters"), NO_FILE_COMP),
        "--user" => return (kubeconfig_names(&f, "users"), NO_FILE_COMP),
        "-f" | "--filename" => {
            let exts = ["json", "yaml", "yml"].map(|e| (e.to_string(), String::new()));
            return (exts.to_vec(), FILTER_FILE_EXT);
        }
        _ => {}
    }
    if matches!(prev, "-o" | "--output") && words.iter().any(|w| w == "get") {
        const FORMATS: [&str; 13] = [
            "json",
            "yaml",
            "name",
            "go-template",
            "go-template-file",
            "template",
            "templatefile",
            "jsonpath",
            "jsonpath-as-json",
            "jsonpath-file",
            "custom-columns",
            "custom-columns-file",
            "wide",
        ];
        return (
            FORMATS.map(|f| (f.to_string(), String::new())).to_vec(),
            NO_FILE_COMP,
        );
    }
    // The subcommand path so far, and what follows it.
    let mut cmd = cli;
    let mut path = Vec::new();
    let mut args = Vec::new();
    for w in words {
        if w.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(w) {
            Some(sub) if args.is_empty() => {
                cmd = sub;
                path.push(sub.get_name().to_string());
            }
            _ => args.push(w.clone()),
        }
    }
    if partial.starts_with('-') {
        let mut out: Vec<(String, String)> = cmd
            .get_arguments()
            .chain(cli.get_arguments().filter(|a| a.is_global_set()))
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| {
                a.get_long().map(|l| {
                    (
                        format!("--{l}"),
                        a.get_help()
                            .map(|h| first_line(&h.to_string()))
                            .unwrap_or_default(),
                    )
                })
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        return (out, NO_FILE_COMP);
    }
    let subs: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| {
            (
                s.get_name().to_string(),
                s.get_about()
                    .map(|h| first_line(&h.to_string()))
                    .unwrap_or_default(),
            )
        })
        .collect();
    if !subs.is_empty() && args.is_empty() {
        let mut subs = subs;
        subs.sort();
        return (subs, NO_FILE_COMP);
    }
    let leaf = path.join(" ");
    match (leaf.as_str(), args.len()) {
        // TYPE, then names of that TYPE.
        (
            "get" | "describe" | "delete" | "edit" | "label" | "annotate" | "patch" | "wait"
            | "explain",
            0,
        ) => (resource_types(&mut f).await, NO_FILE_COMP),
        ("get" | "describe" | "delete" | "edit" | "label" | "annotate" | "patch" | "wait", _) => {
            (names(&mut f, &args[0], true).await, NO_FILE_COMP)
        }
        ("scale" | "autoscale", 0) => (
            [
                "deployment",
                "replicaset",
                "replicationcontroller",
                "statefulset",
            ]
            .map(|k| (k.to_string(), String::new()))
            .to_vec(),
            NO_FILE_COMP,
        ),
        (l, 0) if l.starts_with("rollout ") => (
            ["deployment", "daemonset", "statefulset"]
                .map(|k| (k.to_string(), String::new()))
                .to_vec(),
            NO_FILE_COMP,
        ),
        ("scale" | "autoscale", _) => (names(&mut f, &args[0], true).await, NO_FILE_COMP),
        (l, _) if l.starts_with("rollout ") => (names(&mut f, &args[0], true).await, NO_FILE_COMP),
        ("logs" | "exec" | "attach" | "port-forward", 0) => pod_or_type_name(&mut f, partial).await,
        ("cordon" | "uncordon" | "drain" | "top node", 0) => {
            (names(&mut f, "nodes", false).await, NO_FILE_COMP)
        }
        ("top pod", 0) => (names(&mut f, "pods", true).await, NO_FILE_COMP),
        ("taint", 0) => (vec![("node".to_string(), String::new())], NO_FILE_COMP),
        ("taint", 1) => (names(&mut f, "nodes", false).await, NO_FILE_COMP),
        (
            "config use-context"
            | "config delete-context"
            | "config rename-context"
            | "config get-contexts"
            | "config set-context",
            0,
        ) => (kubeconfig_names(&f, "contexts"), NO_FILE_COMP),
        ("config delete-cluster" | "config set-cluster", 0) => {
            (kubeconfig_names(&f, "clusters"), NO_FILE_COMP)
        }
        ("config delete-user" | "config set-credentials", 0) => {
            (kubeconfig_names(&f, "users"), NO_FILE_COMP)
        }
        ("completion", 0) => (
            ["bash", "zsh", "fish", "powershell"]
                .map(|k| (k.to_string(), String::new()))
                .to_vec(),
            NO_FILE_COMP,
        ),
        ("cp" | "debug", _) => (Vec::new(), 0),
        _ => (Vec::new(), NO_FILE_COMP),
    }
}

/// A pod, or `TYPE/NAME` for the kinds that lead to one (upstream
/// `PodResourceNameCompletionFunc`): the type prefixes first, their names once typed.
async fn pod_or_type_name(f: &mut Factory, partial: &str) -> Candidates {
    const TYPES: [&str; 8] = [
        "daemonsets",
        "deployments",
        "pods",
        "jobs",
        "replicasets",
        "replicationcontrollers",
        "services",
        "statefulsets",
    ];
    if let Some((ty, _)) = partial.split_once('/') {
        let items = names(f, ty, true).await;
        let out = items
            .into_iter()
            .map(|(n, d)| (format!("{ty}/{n}"), d))
            .collect();
        return (out, NO_FILE_COMP);
    }
    let mut out = names(f, "pods", true).await;
    // Only `TYPE/` to offer: no space after it.
    let directive = if out.is_empty() {
        NO_SPACE | NO_FILE_COMP
    } else {
        NO_FILE_COMP
    };
    out.extend(TYPES.map(|t| (format!("{t}/"), String::new())));
    (out, directive)
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string()
}

/// Every listable resource type as `api-resources -o name` names it.
async fn resource_types(f: &mut Factory) -> Vec<(String, String)> {
    let Ok(d) = f.discovery().await else {
        return Vec::new();
    };
    // The core group first, then by group, each group's resources by name.
    let mut types: Vec<(&str, &str, String)> = d
        .preferred()
        .into_iter()
        .filter(|r| r.verbs.iter().any(|v| v == "list"))
        .map(|r| (r.group.as_str(), r.resource.as_str(), r.resource_group()))
        .collect();
    types.sort();
    types.dedup();
    types
        .into_iter()
        .map(|(_, _, name)| (name, String::new()))
        .collect()
}

/// The names of `ty` objects (in the request namespace when `namespaced`).
async fn names(f: &mut Factory, ty: &str, namespaced: bool) -> Vec<(String, String)> {
    let Ok(client) = f.client().await else {
        return Vec::new();
    };
    let namespace = f.namespace().await.map(|(n, _)| n).unwrap_or_default();
    let Ok(d) = f.discovery().await else {
        return Vec::new();
    };
    let Some(r) = d.resource_for(ty) else {
        return Vec::new();
    };
    let path = r.collection_path((namespaced && r.namespaced).then_some(namespace.as_str()));
    let Ok(list) = client.get_json(&path, client::JSON).await else {
        return Vec::new();
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .map(|n| (n.to_string(), String::new()))
        .collect()
}

/// Context, cluster or user names of the kubeconfig.
fn kubeconfig_names(f: &Factory, what: &str) -> Vec<(String, String)> {
    let Ok(kc) = f.flags.raw_config() else {
        return Vec::new();
    };
    let names: Vec<String> = match what {
        "contexts" => kc.contexts.iter().map(|c| c.name.clone()).collect(),
        "clusters" => kc.clusters.iter().map(|c| c.name.clone()).collect(),
        _ => kc.auth_infos.iter().map(|u| u.name.clone()).collect(),
    };
    names.into_iter().map(|n| (n, String::new())).collect()
}

const BASH: &str = r#"# bash completion for kubectl                                -*- shell-script -*-
#
# Load it with `source <(kubectl completion bash)`. Each completion asks kubectl
# itself: `kubectl __complete <words...>` prints the candidates, then `:<directive>`.

__kubectl_complete()
{
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local out directive
    out=$("${words[0]}" __completeNoDesc "${words[@]:1:cword-1}" "$cur" 2>/dev/null)
    directive=${out##*:}
    out=${out%:*}
    [[ $directive =~ ^[0-9]+$ ]] || directive=0
    if (( directive & 2 )); then
        compopt -o nospace 2>/dev/null
    fi
    if (( directive & 8 )); then
        local ext filter=""
        for ext in $out; do filter+="${filter:+|}$ext"; done
        compopt -o filenames 2>/dev/null
        COMPREPLY=( $(compgen -f -X "!*.@($filter)" -- "$cur") $(compgen -d -- "$cur") )
        return
    fi
    local IFS=$'\n'
    COMPREPLY=( $(compgen -W "$out" -- "$cur") )
    if (( ${#COMPREPLY[@]} == 0 )) && ! (( directive & 4 )); then
        compopt -o default 2>/dev/null
    fi
}

complete -o default -F __kubectl_complete kubectl
"#;

const ZSH: &str = r#"#compdef kubectl
compdef _kubectl kubectl

# zsh completion for kubectl. Load it with `source <(kubectl completion zsh)`. Each
# completion asks kubectl itself: `kubectl __complete <words...>` prints the candidates
# (`name<TAB>description`), then `:<directive>`.

_kubectl()
{
    local -a lines candidates
    local out directive line
    out=$("${words[1]}" __complete "${(@)words[2,$CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)
    lines=("${(@f)out}")
    directive=${lines[-1]#:}
    lines=("${(@)lines[1,-2]}")
    for line in "${lines[@]}"; do
        if [[ $line == *$'\t'* ]]; then
            candidates+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
        else
            candidates+=("${line//:/\\:}")
        fi
    done
    if (( directive & 8 )); then
        _files -g "*.(${(j:|:)lines})"
        return
    fi
    if (( ${#candidates[@]} > 0 )); then
        if (( directive & 2 )); then
            _describe -t values 'completions' candidates -S ''
        else
            _describe -t values 'completions' candidates
        fi
    elif ! (( directive & 4 )); then
        _files
    fi
}

if [ "$funcstack[1]" = "_kubectl" ]; then
    _kubectl "$@"
fi
"#;
