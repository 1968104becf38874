//! `/containerLogs/<ns>/<pod>/<container>` (upstream `server.go` getContainerLogs).

use super::*;

impl Kubelet {
    pub(super) async fn container_logs(
        &self,
        ns: &str,
        name: &str,
        c: &str,
        q: &HashMap<String, String>,
    ) -> Response<Body> {
        let Some(pod) = self.find_pod(ns, name) else {
            return status(404, "NotFound", &format!("pod \"{name}\" not found"));
        };
        let opts = match logs::LogOptions::from_query(q) {
            Ok(o) => o,
            Err(e) => return status(400, "BadRequest", &e),
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let rt = match self.pod_runtime(&uid).await {
            Ok(r) => r,
            Err(e) => return status(500, "InternalError", &e),
        };
        let previous = q.get("previous").is_some_and(|v| v == "true" || v == "1");
        let mut inst = rt.instances(c);
        let target = if previous { inst.nth(1) } else { inst.next() };
        let Some(target) = target.cloned() else {
            let msg = if previous {
                format!("previous terminated container \"{c}\" in pod \"{name}\" not found")
            } else {
                format!(
                    "container \"{c}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                )
            };
            return status(400, "BadRequest", &msg);
        };
        let path = std::path::PathBuf::from(&target.status.log_path);
        let (lines, mut pos) = logs::read_all(&path).unwrap_or_default();
        let first = logs::render(lines.into_iter(), &opts);
        if !opts.follow || !target.running() {
            return text(200, first, "text/plain");
        }
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(16);
        let runtime = self.runtime.clone();
        let id = target.status.id.clone();
        let follow_opts = logs::LogOptions {
            tail: None,
            since: None,
            timestamps: opts.timestamps,
            limit_bytes: None,
            follow: true,
        };
        tokio::spawn(async move {
            if tx
                .send(Ok(hyper::body::Frame::data(Bytes::from(first))))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let new = logs::read_from(&path, &mut pos);
                if !new.is_empty() {
                    let out = logs::render(new.into_iter(), &follow_opts);
                    if tx
                        .send(Ok(hyper::body::Frame::data(Bytes::from(out))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let running = runtime
                    .container_status(&id)
                    .await
                    .is_ok_and(|s| s.state == api::ContainerState::ContainerRunning as i32);
                if !running {
                    let rest = logs::read_from(&path, &mut pos);
                    let _ = tx
                        .send(Ok(hyper::body::Frame::data(Bytes::from(logs::render(
                            rest.into_iter(),
                            &follow_opts,
                        )))))
                        .await;
                    return;
                }
            }
        });
        let body = http_body_util::StreamBody::new(tokio_stream_from(rx)).boxed_unsync();
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(body)
            .unwrap()
    }
}
