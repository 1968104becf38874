//! `kubectl exec` and `kubectl attach`: a command in a container, or the container's own
//! process, with stdin, stdout, stderr and a TTY streamed over WebSocket or SPDY.
//! Upstream twins: `kubectl/pkg/cmd/exec/exec.go`, `kubectl/pkg/cmd/attach/attach.go`.

use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::polymorphic::{attachable_pod, find_or_default_container};
use crate::{output, term};
use cli_runtime::client::RestClient;
use cli_runtime::discovery::{percent_encode, query_escape};
use cli_runtime::remotecommand::{self, ExecError, Streams, TermSize};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// POD | TYPE/NAME
    pub target: Vec<String>,
    /// COMMAND [args...]
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// to use to exec into the resource
    #[arg(short = 'f', long = "filename")]
    pub filename: Vec<String>,
    /// Pass stdin to the container
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running
    #[arg(long = "pod-running-timeout", default_value = "1m0s")]
    pub pod_running_timeout: String,
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// (POD | TYPE/NAME)
    pub target: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running
    #[arg(long = "pod-running-timeout", default_value = "1m0s")]
    pub pod_running_timeout: String,
}

fn usage(cmd: &str, m: &str) -> CmdError {
    CmdError::plain(format!(
        "error: {m}\nSee 'kubectl {cmd} -h' for help and examples"
    ))
}

/// `--pod-running-timeout`, which must be above zero.
fn check_timeout(cmd: &str, t: &str) -> Result<std::time::Duration, CmdError> {
    let d = cli_runtime::config_flags::parse_duration(t).map_err(|e| usage(cmd, &e))?;
    if d.is_zero() {
        return Err(usage(cmd, "--pod-running-timeout must be higher than zero"));
    }
    Ok(d)
}

pub async fn run_exec(f: &mut Factory, a: ExecArgs) -> CmdResult {
    if a.target.len() > 1
        || (!a.target.is_empty() && !a.filename.is_empty() && a.command.is_empty())
    {
        return Err(usage(
            "exec",
            "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead",
        ));
    }
    let timeout = check_timeout("exec", &a.pod_running_timeout)?;
    if a.target.is_empty() && a.filename.is_empty() {
        return Err(CmdError::msg(
            "pod, type/name or --filename must be specified",
        ));
    }
    if a.command.is_empty() {
        return Err(CmdError::msg(
            "you must specify at least one command for the container",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let pod = match a.target.first() {
        Some(t) => attachable_pod(f, &client, &namespace, t, timeout).await?,
        None => pod_from_files(f, &client, &a.filename, timeout).await?,
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(CmdError::msg(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    // A named container is the server's to validate (v1.35; v1.36 checks it here).
    let container = match &a.container {
        None => find_or_default_container(&pod, None, a.quiet)?["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Some(c) => c.clone(),
    };
    let tty = setup_tty(a.stdin, a.tty, a.quiet);
    let mut q: Vec<String> = a
        .command
        .iter()
        .map(|c| format!("command={}", query_escape(c)))
        .collect();
    q.push(format!("container={}", query_escape(&container)));
    let sizes = tty.then(|| term::local_size().into_iter().collect());
    let session = Session {
        subresource: "exec",
        stdin: a.stdin,
        tty,
        sizes,
    };
    session.run(&client, &pod, q).await
}

pub async fn run_attach(f: &mut Factory, a: AttachArgs) -> CmdResult {
    if a.target.is_empty() {
        return Err(CmdError::msg("at least 1 argument is required for attach"));
    }
    if a.target.len() > 2 {
        return Err(CmdError::msg(format!(
            "expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw {}: [{}]",
            a.target.len(),
            a.target.join(" ")
        )));
    }
    let timeout = check_timeout("attach", &a.pod_running_timeout)?;
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    let target = a.target.join("/");
    let pod = attachable_pod(f, &client, &namespace, &target, timeout).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(CmdError::msg(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
        )));
    }
    attach_to(
        &client,
        &pod,
        a.container.as_deref(),
        a.stdin,
        a.tty,
        a.quiet,
    )
    .await
}

/// Attaches to a container of `pod` (its default one when `container` is `None`), with
/// upstream's notices; `kubectl debug` attaches this way to the container it added.
pub async fn attach_to(
    client: &RestClient,
    pod: &Value,
    container: Option<&str>,
    stdin: bool,
    tty: bool,
    quiet: bool,
) -> CmdResult {
    let container = find_or_default_container(pod, container, quiet).map_err(|e| {
        CmdError::msg(format!(
            "cannot attach to the container: {}",
            e.text.trim_start_matches("error: ")
        ))
    })?;
    let name = container["name"].as_str().unwrap_or_default().to_string();
    let container_tty = container["tty"].as_bool().unwrap_or(false);
    let mut want_tty = tty;
    if want_tty && !container_tty {
        want_tty = false;
        if !quiet {
            output::eprint_line(&format!(
                "error: Unable to use a TTY - container {name} did not allocate one"
            ));
        }
    } else if !want_tty && container_tty {
        // The container runs with a TTY: without one the stream is unreadable.
        want_tty = true;
    }
    let tty = setup_tty(stdin, want_tty, quiet);
    // A size one larger, then the real one: a re-attached screen gets redrawn.
    let sizes = tty.then(|| {
        term::local_size()
            .map(|s| {
                vec![
                    TermSize {
                        width: s.width + 1,
                        height: s.height + 1,
                    },
                    s,
                ]
            })
            .unwrap_or_default()
    });
    if !quiet {
        output::eprint_line(
            "All commands and output from this session will be recorded in container logs, including credentials and sensitive information passed through the command prompt.",
        );
        output::eprint_line("If you don't see a command prompt, try pressing enter.");
    }
    let session = Session {
        subresource: "attach",
        stdin,
        tty,
        sizes,
    };
    let q = vec![format!("container={}", query_escape(&name))];
    session.run(client, pod, q).await?;
    if !quiet && stdin && tty {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let ephemeral = pod["spec"]["ephemeralContainers"]
            .as_array()
            .is_some_and(|e| e.iter().any(|c| c["name"] == name.as_str()));
        if ephemeral {
            output::print(&format!(
                "Session ended, the ephemeral container will not be restarted but may be reattached using 'kubectl attach {pod_name} -c {name} -n {ns} -i -t' if it is still running\n"
            ));
        } else {
            output::print(&format!(
                "Session ended, resume using 'kubectl attach {pod_name} -c {name} -n {ns} -i -t' command\n"
            ));
        }
    }
    Ok(())
}

/// upstream `StreamOptions.SetupTTY`: a TTY only with stdin, and only when stdin is a
/// terminal.
fn setup_tty(stdin: bool, tty: bool, quiet: bool) -> bool {
    if !stdin || !tty {
        return false;
    }
    if !term::stdin_is_terminal() {
        if !quiet {
            output::eprint_line(
                "Unable to use a TTY - input is not a terminal or the right kind of file",
            );
        }
        return false;
    }
    true
}

/// The one pod the `-f` files name.
async fn pod_from_files(
    f: &mut Factory,
    client: &RestClient,
    files: &[String],
    timeout: std::time::Duration,
) -> Result<Value, CmdError> {
    let objs = cli_runtime::resource::read_files(files, false)
        .await
        .map_err(CmdError::msg)?;
    if objs.len() != 1 {
        return Err(CmdError::msg("cannot exec into multiple objects at a time"));
    }
    let obj = &objs[0].object;
    let (namespace, _) = f.namespace().await?;
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or(&namespace)
        .to_string();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let target = if kind == "Pod" {
        name.to_string()
    } else {
        format!("{}/{name}", kind.to_ascii_lowercase())
    };
    attachable_pod(f, client, &ns, &target, timeout).await
}

/// The path of an exec or attach with the query the streams ask for.
fn stream_path(pod: &Value, subresource: &str, mut q: Vec<String>, s: &Streams) -> String {
    if s.stdin.is_some() {
        q.push("stdin=true".into());
    }
    if s.stdout.is_some() {
        q.push("stdout=true".into());
    }
    // With a TTY, stderr comes through stdout.
    if s.stderr.is_some() && !s.tty {
        q.push("stderr=true".into());
    }
    if s.tty {
        q.push("tty=true".into());
    }
    format!(
        "/api/v1/namespaces/{}/pods/{}/{subresource}?{}",
        percent_encode(pod["metadata"]["namespace"].as_str().unwrap_or_default()),
        percent_encode(pod["metadata"]["name"].as_str().unwrap_or_default()),
        q.join("&")
    )
}

/// A command in a container with the given streams (`kubectl cp` runs tar this way).
pub async fn exec_with_streams(
    client: &RestClient,
    pod: &Value,
    container: &str,
    command: &[&str],
    streams: Streams,
) -> Result<(), ExecError> {
    let mut q: Vec<String> = command
        .iter()
        .map(|c| format!("command={}", query_escape(c)))
        .collect();
    q.push(format!("container={}", query_escape(container)));
    let path = stream_path(pod, "exec", q, &streams);
    remotecommand::stream(client, &path, streams).await
}

/// How kubectl ends on a remote command's failure.
pub fn exec_error(e: ExecError) -> CmdError {
    match e {
        ExecError::Exit(code) => CmdError {
            text: format!("command terminated with exit code {code}"),
            code,
        },
        ExecError::Failed(e) => e.into(),
    }
}

/// One exec or attach stream with the local terminal.
struct Session {
    subresource: &'static str,
    stdin: bool,
    tty: bool,
    /// Sizes to send first when a TTY is attached.
    sizes: Option<Vec<TermSize>>,
}

impl Session {
    async fn run(self, client: &RestClient, pod: &Value, q: Vec<String>) -> CmdResult {
        output::flush();
        let streams = Streams {
            stdin: self.stdin.then(term::stdin_reader),
            stdout: Some(Box::new(tokio::io::stdout())),
            stderr: (!self.tty).then(|| Box::new(tokio::io::stderr()) as remotecommand::Output),
            tty: self.tty,
            resize: self.sizes.map(term::monitor_size),
        };
        let path = stream_path(pod, self.subresource, q, &streams);
        // Raw mode lasts exactly as long as the stream, whatever ends it.
        let raw = if self.tty {
            Some(
                term::RawMode::enable()
                    .map_err(|e| CmdError::msg(format!("setting the terminal to raw mode: {e}")))?,
            )
        } else {
            None
        };
        let result = remotecommand::stream(client, &path, streams).await;
        drop(raw);
        result.map_err(exec_error)
    }
}
