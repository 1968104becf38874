//! `kubectl cp`: files to and from containers through `tar` run by exec. Upstream twin:
//! `kubectl/pkg/cmd/cp/cp.go`.

mod tar;

use crate::cmd::exec::{exec_error, exec_with_streams};
use crate::error::{CmdError, CmdResult};
use crate::factory::Factory;
use crate::output;
use crate::pipe;
use crate::polymorphic::find_or_default_container;
use cli_runtime::client::{self, RestClient};
use cli_runtime::discovery::percent_encode;
use cli_runtime::remotecommand::{ExecError, Streams};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use tar::{Entry, Kind};

#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// <file-spec-src> <file-spec-dest>
    pub args: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The copied file/directory's ownership and permissions will not be preserved in the container
    #[arg(long = "no-preserve")]
    pub no_preserve: bool,
    /// Set number of retries to complete a copy operation from a container. Specify 0 to disable or any negative value for infinite retrying. The default is 0 (no retry).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub retries: i64,
}

const FORMAT_ERROR: &str = "filespec must match the canonical format: [[namespace/]pod:]file/path";

/// `[[namespace/]pod:]path`.
#[derive(Debug, PartialEq)]
struct FileSpec {
    namespace: Option<String>,
    pod: Option<String>,
    file: String,
}

fn extract_file_spec(arg: &str) -> Result<FileSpec, CmdError> {
    let Some(i) = arg.find(':') else {
        return Ok(FileSpec {
            namespace: None,
            pod: None,
            file: arg.to_string(),
        });
    };
    if i == 0 {
        return Err(CmdError::msg(FORMAT_ERROR));
    }
    let (pod, file) = (&arg[..i], &arg[i + 1..]);
    let pieces: Vec<&str> = pod.split('/').collect();
    let (namespace, pod) = match pieces.as_slice() {
        [p] => (None, p.to_string()),
        [ns, p] => (Some(ns.to_string()), p.to_string()),
        _ => return Err(CmdError::msg(FORMAT_ERROR)),
    };
    Ok(FileSpec {
        namespace,
        pod: Some(pod),
        file: file.to_string(),
    })
}

/// upstream `stripPathShortcuts`: no leading `../`, `.` or `/`.
fn strip_path_shortcuts(p: &str) -> String {
    let mut p = p;
    while let Some(rest) = p.strip_prefix("../") {
        p = rest;
    }
    if p == "." || p == ".." {
        return String::new();
    }
    p.strip_prefix('/').unwrap_or(p).to_string()
}

/// Go's `path.Clean` for the remote (always `/`-separated) path.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Lexically joined and cleaned local path.
fn join_local(base: &Path, rel: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in Path::new(&clean(&format!("/{rel}"))).components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

pub async fn run(f: &mut Factory, a: CpArgs) -> CmdResult {
    if a.args.len() != 2 {
        return Err(CmdError::msg("source and destination are required"));
    }
    let src = extract_file_spec(&a.args[0])?;
    let dest = extract_file_spec(&a.args[1])?;
    if src.pod.is_some() && dest.pod.is_some() {
        return Err(CmdError::msg(
            "one of src or dest must be a local file specification",
        ));
    }
    if src.file.is_empty() || dest.file.is_empty() {
        return Err(CmdError::msg("filepath can not be empty"));
    }
    if src.pod.is_none() && dest.pod.is_none() {
        return Err(CmdError::msg(
            "one of src or dest must be a remote file specification",
        ));
    }
    let client = f.client().await?;
    let (namespace, _) = f.namespace().await?;
    if src.pod.is_some() {
        copy_from_pod(&client, &namespace, &a, &src, &dest).await
    } else {
        copy_to_pod(&client, &namespace, &a, &src, &dest).await
    }
}

/// The pod and container a spec names, as `kubectl exec` finds them.
async fn target(
    client: &RestClient,
    namespace: &str,
    a: &CpArgs,
    spec: &FileSpec,
) -> Result<(Value, String), CmdError> {
    let ns = spec.namespace.as_deref().unwrap_or(namespace);
    let name = spec.pod.as_deref().unwrap_or_default();
    let pod = client
        .get_json(
            &format!(
                "/api/v1/namespaces/{}/pods/{}",
                percent_encode(ns),
                percent_encode(name)
            ),
            client::JSON,
        )
        .await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(CmdError::msg(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = find_or_default_container(&pod, a.container.as_deref(), false)?;
    let container = container["name"].as_str().unwrap_or_default().to_string();
    Ok((pod, container))
}

async fn copy_to_pod(
    client: &RestClient,
    namespace: &str,
    a: &CpArgs,
    src: &FileSpec,
    dest: &FileSpec,
) -> CmdResult {
    let src_path = PathBuf::from(&src.file);
    if std::fs::symlink_metadata(&src_path).is_err() {
        return Err(CmdError::msg(format!(
            "{} doesn't exist in local filesystem",
            src.file
        )));
    }
    let (pod, container) = target(client, namespace, a, dest).await?;
    let mut dest_file = dest.file.clone();
    // Into an existing directory: keep the source's name.
    let is_dir = exec_with_streams(
        client,
        &pod,
        &container,
        &["test", "-d", &dest_file],
        Streams {
            stdout: Some(Box::new(tokio::io::sink())),
            stderr: Some(Box::new(tokio::io::sink())),
            ..Streams::default()
        },
    )
    .await;
    if is_dir.is_ok() {
        let base = src_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest_file = format!("{}/{base}", dest_file.trim_end_matches('/'));
    }
    let dest_clean = clean(&dest_file);
    let (dest_dir, dest_base) = match dest_clean.rsplit_once('/') {
        Some(("", b)) => ("/".to_string(), b.to_string()),
        Some((d, b)) => (d.to_string(), b.to_string()),
        None => (String::new(), dest_clean.clone()),
    };
    let (mut writer, reader) = pipe::sync_to_async();
    let archive = tokio::task::spawn_blocking(move || {
        let result = (|| {
            let mut w = tar::Writer::new(&mut writer);
            recursive_tar(&src_path, &dest_base, &mut w)?;
            w.finish().map(|_| ())
        })();
        if let Err(e) = result {
            let text = e.to_string();
            writer.fail(e);
            return Err(text);
        }
        Ok(())
    });
    let mut command = vec!["tar"];
    if a.no_preserve {
        command.extend(["--no-same-permissions", "--no-same-owner"]);
    }
    command.extend(["-xmf", "-"]);
    if !dest_dir.is_empty() {
        command.extend(["-C", dest_dir.as_str()]);
    }
    output::flush();
    let result = exec_with_streams(
        client,
        &pod,
        &container,
        &command,
        Streams {
            stdin: Some(Box::new(reader)),
            stdout: Some(Box::new(tokio::io::stdout())),
            stderr: Some(Box::new(tokio::io::stderr())),
            ..Streams::default()
        },
    )
    .await;
    if let Ok(Err(e)) = archive.await {
        return Err(CmdError::msg(e));
    }
    result.map_err(exec_error)
}

/// upstream `recursiveTar`: the tree at `src` named `name` in the archive.
fn recursive_tar(
    src: &Path,
    name: &str,
    w: &mut tar::Writer<&mut pipe::SyncWriter>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(src)?;
    let mut entry = Entry {
        name: name.to_string(),
        mode: meta.permissions().mode(),
        size: 0,
        mtime: meta.mtime().max(0) as u64,
        kind: Kind::File,
        uid: meta.uid(),
        gid: meta.gid(),
    };
    if meta.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
        if children.is_empty() {
            entry.kind = Kind::Dir;
            return w.append(&entry, None);
        }
        children.sort_by_key(|c| c.file_name());
        for c in children {
            let child = format!("{name}/{}", c.file_name().to_string_lossy());
            recursive_tar(&c.path(), &child, w)?;
        }
        return Ok(());
    }
    if meta.file_type().is_symlink() {
        entry.kind = Kind::Symlink(std::fs::read_link(src)?.to_string_lossy().into_owned());
        return w.append(&entry, None);
    }
    entry.size = meta.len();
    let mut file = std::fs::File::open(src)?;
    w.append(&entry, Some(&mut file))
}

async fn copy_from_pod(
    client: &RestClient,
    namespace: &str,
    a: &CpArgs,
    src: &FileSpec,
    dest: &FileSpec,
) -> CmdResult {
    let (pod, container) = target(client, namespace, a, src).await?;
    let prefix = strip_path_shortcuts(&clean(src.file.trim_start_matches('/')));
    let dest_dir = PathBuf::from(&dest.file);
    let (out, reader) = pipe::async_to_sync();
    let untar = {
        let (prefix, dest_dir) = (prefix.clone(), dest_dir.clone());
        tokio::task::spawn_blocking(move || untar_all(reader, &prefix, &dest_dir))
    };
    output::flush();
    let result = read_from_pod(client, &pod, &container, &src.file, a.retries, out).await;
    let untarred = untar.await.map_err(|e| CmdError::msg(e.to_string()))?;
    result?;
    untarred.map_err(CmdError::msg)
}

/// `tar cf - SRC` in the container into `out`; with retries, a broken stream resumes
/// where it stopped (`tar cf - SRC | tail -c+N`), as upstream's `TarPipe` does.
async fn read_from_pod(
    client: &RestClient,
    pod: &Value,
    container: &str,
    src: &str,
    retries: i64,
    out: tokio::io::DuplexStream,
) -> CmdResult {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let counted = Arc::new(AtomicU64::new(0));
    let out = Arc::new(tokio::sync::Mutex::new(out));
    let mut attempt = 0i64;
    loop {
        let offset = counted.load(Ordering::SeqCst);
        let script;
        let command: Vec<&str> = if retries != 0 {
            script = format!("tar cf - {src} | tail -c+{}", offset + 1);
            vec!["sh", "-c", &script]
        } else {
            vec!["tar", "cf", "-", src]
        };
        let (sink, mut from_exec) = tokio::io::duplex(64 * 1024);
        let forward = {
            let (out, counted) = (out.clone(), counted.clone());
            async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = from_exec.read(&mut buf).await {
                    if n == 0 || out.lock().await.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    counted.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
        };
        // The container's tar reports on kubectl's stdout, as upstream wires it.
        let run = exec_with_streams(
            client,
            pod,
            container,
            &command,
            Streams {
                stdout: Some(Box::new(sink)),
                stderr: Some(Box::new(tokio::io::stdout())),
                ..Streams::default()
            },
        );
        let (result, ()) = tokio::join!(run, forward);
        match result {
            Ok(()) => return Ok(()),
            Err(ExecError::Exit(code)) => return Err(exec_error(ExecError::Exit(code))),
            Err(e) => {
                attempt += 1;
                if retries >= 0 && attempt > retries {
                    return Err(exec_error(e));
                }
                output::eprint_line(&format!(
                    "Resuming copy at {} bytes, retry {attempt}/{retries}",
                    counted.load(Ordering::SeqCst)
                ));
            }
        }
    }
}

/// upstream `untarAll`: entries under `prefix` written below `dest`; anything else in
/// the archive means it was tampered with, and nothing escapes `dest`.
fn untar_all(reader: pipe::SyncReader, prefix: &str, dest: &Path) -> Result<(), String> {
    let mut r = tar::Reader::new(reader);
    while let Some(e) = r.next_entry().map_err(|e| e.to_string())? {
        let Some(rest) = e.name.strip_prefix(prefix) else {
            return Err("tar contents corrupted".into());
        };
        let target = join_local(dest, rest);
        if !target.starts_with(dest) && target != dest {
            output::eprint_line(&format!(
                "warning: file {:?} is outside target destination, skipping",
                target.display().to_string()
            ));
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        match &e.kind {
            Kind::Dir => {
                std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            }
            Kind::Symlink(link) => {
                output::eprint_line(&format!(
                    "warning: skipping symlink: {:?} -> {link:?}",
                    target.display().to_string()
                ));
            }
            Kind::File => {
                let mut file = std::fs::File::create(&target)
                    .map_err(|err| format!("open {}: {err}", target.display()))?;
                r.read_data(&mut file).map_err(|e| e.to_string())?;
            }
            Kind::Other => {}
        }
    }
    // The rest of the stream (tar's end blocks) is drained for the writer's sake.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs_and_paths_as_upstream() {
        assert_eq!(
            extract_file_spec("ns/pod:/tmp/x").unwrap(),
            FileSpec {
                namespace: Some("ns".into()),
                pod: Some("pod".into()),
                file: "/tmp/x".into()
            }
        );
        assert_eq!(extract_file_spec("local").unwrap().pod, None);
        assert_eq!(
            extract_file_spec(":x").unwrap_err().text,
            format!("error: {FORMAT_ERROR}")
        );
        assert!(extract_file_spec("a/b/c:x").is_err());
        assert_eq!(strip_path_shortcuts("../../tmp/x"), "tmp/x");
        assert_eq!(strip_path_shortcuts(".."), "");
        assert_eq!(clean("/tmp/../etc//x/."), "/etc/x");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(
            join_local(Path::new("/d"), "/../../etc/passwd"),
            PathBuf::from("/d/etc/passwd")
        );
    }
}
