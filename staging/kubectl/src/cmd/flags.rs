//! Where clap and cobra read a command line differently: boolean flags take
//! `--flag=true|false` (Go's `strconv.ParseBool`), and an unknown command gets cobra's
//! suggestions (edit distance at most 2, or a prefix) in kubectl's command order.

use std::collections::HashMap;
use std::ffi::OsString;

/// Moves the global flags (`-v=7`, `-n ns`, `--context=c`, ...) out of `create`'s
/// generator arguments, which clap captures whole (`trailing_var_arg`), to the front,
/// where clap reads them; cobra takes them anywhere on the line.
pub fn hoist_global_flags(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let dashes = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let Some(create) = args[..dashes].iter().position(|a| a == "create") else {
        return args;
    };
    // (name as written, takes a value)
    let mut globals: Vec<(String, bool)> = Vec::new();
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let takes_value = !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        if let Some(l) = arg.get_long() {
            globals.push((format!("--{l}"), takes_value));
        }
        if let Some(c) = arg.get_short() {
            globals.push((format!("-{c}"), takes_value));
        }
    }
    // A generator's own flag shadows the global one of the same name, as in cobra.
    let generator = args
        .get(create + 1)
        .map(|g| g.to_string_lossy().into_owned());
    if matches!(
        generator.as_deref(),
        Some("rolebinding" | "clusterrolebinding")
    ) {
        globals.retain(|(g, _)| g != "--user");
    }
    let (head, tail) = args.split_at(create + 1);
    let mut hoisted = Vec::new();
    let mut kept = Vec::new();
    let mut it = tail.iter().cloned();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        if s == "--" {
            kept.push(a);
            kept.extend(it.by_ref());
            break;
        }
        let flag = s.split_once('=').map_or(s.as_str(), |(f, _)| f);
        let short_joined = globals.iter().find(|(g, v)| {
            *v && g.len() == 2 && !s.starts_with("--") && s.len() > 2 && s.starts_with(g.as_str())
        });
        match globals.iter().find(|(g, _)| g == flag) {
            Some((_, takes_value)) => {
                hoisted.push(a);
                if *takes_value && !s.contains('=') {
                    hoisted.extend(it.next());
                }
            }
            // `-v7`, `-nkube-system`.
            None if short_joined.is_some() => hoisted.push(a),
            None => kept.push(a),
        }
    }
    let mut out = vec![head[0].clone()];
    out.extend(hoisted);
    out.extend(head[1..].iter().cloned());
    out.extend(kept);
    out
}

/// Rewrites `--flag=true` to `--flag` and drops `--flag=false` for boolean flags;
/// another value is cobra's error (message, argv for the usage line).
pub fn normalize_bools(
    cmd: &clap::Command,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, (String, Vec<OsString>)> {
    // The boolean flags of the command line's own subcommand (and the global ones).
    let mut bools: HashMap<String, String> = HashMap::new();
    collect_bools(cmd, &mut bools);
    let mut level = cmd;
    for a in args.iter().skip(1) {
        let s = a.to_string_lossy();
        if s.starts_with('-') {
            continue;
        }
        match level.find_subcommand(s.as_ref()) {
            Some(sub) => {
                collect_bools(sub, &mut bools);
                level = sub;
            }
            // A flag's value or a positional argument.
            None => continue,
        }
    }
    let mut out = Vec::with_capacity(args.len());
    let mut passthrough = false;
    for a in &args {
        let s = a.to_string_lossy();
        if passthrough || s == "--" {
            passthrough = true;
            out.push(a.clone());
            continue;
        }
        let key = if let Some(rest) = s.strip_prefix("--") {
            rest.split_once('=')
                .map(|(n, v)| (format!("--{n}"), v.to_string()))
        } else if let Some(rest) = s.strip_prefix('-') {
            rest.split_once('=')
                .filter(|(n, _)| n.chars().count() == 1)
                .map(|(n, v)| (format!("-{n}"), v.to_string()))
        } else {
            None
        };
        match key {
            Some((flag, value)) if bools.contains_key(&flag) => match value.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => out.push(OsString::from(flag)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => {}
                v => {
                    return Err((
                        format!(
                            "invalid argument {v:?} for {:?} flag: strconv.ParseBool: parsing {v:?}: invalid syntax",
                            bools[&flag]
                        ),
                        args.clone(),
                    ));
                }
            },
            _ => out.push(a.clone()),
        }
    }
    Ok(out)
}

fn collect_bools(cmd: &clap::Command, out: &mut HashMap<String, String>) {
    for arg in cmd.get_arguments() {
        if !matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            continue;
        }
        let long = arg.get_long().map(|l| format!("--{l}"));
        let short = arg.get_short().map(|c| format!("-{c}"));
        let display = match (&short, &long) {
            (Some(s), Some(l)) => format!("{s}, {l}"),
            (None, Some(l)) => l.clone(),
            (Some(s), None) => s.clone(),
            (None, None) => continue,
        };
        for name in [long, short].into_iter().flatten() {
            out.insert(name, display.clone());
        }
    }
}

/// kubectl's commands in the order cobra holds them (its groups as `kubectl --help`
/// lists them), which is the order suggestions come in.
const COMMANDS: &[&str] = &[
    "create",
    "expose",
    "run",
    "set",
    "explain",
    "get",
    "edit",
    "delete",
    "rollout",
    "scale",
    "autoscale",
    "certificate",
    "cluster-info",
    "top",
    "cordon",
    "uncordon",
    "drain",
    "taint",
    "describe",
    "logs",
    "attach",
    "exec",
    "port-forward",
    "proxy",
    "cp",
    "auth",
    "debug",
    "events",
    "diff",
    "apply",
    "patch",
    "replace",
    "wait",
    "kustomize",
    "label",
    "annotate",
    "completion",
    "alpha",
    "api-resources",
    "api-versions",
    "config",
    "plugin",
    "version",
    "options",
];

pub fn suggestions(typed: &str) -> Vec<&'static str> {
    let t = typed.to_lowercase();
    COMMANDS
        .iter()
        .copied()
        .filter(|c| levenshtein(&t, c) <= 2 || c.starts_with(&t))
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn global_flags_leave_generator_arguments() {
        use clap::CommandFactory;
        let cmd = crate::cmd::Cli::command();
        let line = |s: &str| -> Vec<OsString> { s.split(' ').map(Into::into).collect() };
        let out = hoist_global_flags(
            &cmd,
            line(
                "kubectl create deployment web --image=nginx -v=7 -n ns1 --context c -v7 --replicas=2",
            ),
        );
        assert_eq!(
            out,
            line(
                "kubectl -v=7 -n ns1 --context c -v7 create deployment web --image=nginx --replicas=2"
            )
        );
        // `create rolebinding --user` is the binding's subject, not the kubeconfig user.
        let rb = line("kubectl create rolebinding rb --clusterrole=view --user=alice -v=6");
        assert_eq!(
            hoist_global_flags(&cmd, rb),
            line("kubectl -v=6 create rolebinding rb --clusterrole=view --user=alice")
        );
        // After `--` the words are a container's command, whatever they look like.
        let exec = line("kubectl exec p -- create -n x");
        assert_eq!(hoist_global_flags(&cmd, exec.clone()), exec);
    }

    use super::*;

    #[test]
    fn suggestions_follow_cobra() {
        assert_eq!(suggestions("gett"), vec!["set", "get"]);
        assert_eq!(suggestions("foo"), vec!["top"]);
        assert!(suggestions("xyzzy").is_empty());
    }
}

/// `--field-manager`: the name a command's writes are recorded under in managedFields
/// (each command has upstream's default).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FieldManager {
    /// Name of the manager used to track field ownership.
    #[arg(long = "field-manager")]
    pub field_manager: Option<String>,
}

impl FieldManager {
    /// The manager, query-escaped, `default` unless given.
    pub fn query(&self, default: &str) -> String {
        cli_runtime::discovery::query_escape(self.field_manager.as_deref().unwrap_or(default))
    }
}
