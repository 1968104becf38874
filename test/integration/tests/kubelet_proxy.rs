//! The apiserver side of `kubectl logs`, `exec`, `attach`, `port-forward` and the proxy
//! subresources: requests are routed to the kubelet of the pod's node (found through the
//! Node's addresses and `daemonEndpoints`), streamed back, and upgraded connections are
//! piped both ways. A small HTTPS server on loopback stands in for the kubelet.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use integration_tests::apiserver::TestApiServer;
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A kubelet stand-in: answers GETs with the path it was asked for, and switches any
/// upgrade request to an echo of the bytes it receives.
async fn fake_kubelet(dir: &std::path::Path) -> u16 {
    let (crt, key) =
        apiserver::server::tls::ensure_self_signed(dir, "apiserver", &["127.0.0.1".into()])
            .unwrap();
    let mut cfg = (*apiserver::server::tls::server_config(&crt, &key, &[]).unwrap()).clone();
    cfg.alpn_protocols.clear();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    |mut req: Request<hyper::body::Incoming>| async move {
                        if req.headers().contains_key(hyper::header::UPGRADE) {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                if let Ok(up) = on.await {
                                    let mut io = TokioIo::new(up);
                                    let mut buf = [0u8; 64];
                                    while let Ok(n) = io.read(&mut buf).await {
                                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                            return Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(101)
                                    .header("Connection", "Upgrade")
                                    .header("Upgrade", "test-echo")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            );
                        }
                        let body = format!("kubelet saw {}\nline 2\n", req.uri());
                        Ok(Response::new(Full::new(Bytes::from(body))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

// Multi-threaded: kubectl runs blocking while the stand-in kubelet must answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_subresources_reach_the_kubelet() {
    let s = TestApiServer::start(None, &[]).await;
    let kubelet_port = fake_kubelet(&s.dir.path().join("kubelet")).await;
    let c = &s.client;
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    assert_eq!(
        c.send_json("POST", "/api/v1/nodes", &node).await.status,
        201
    );
    let status = json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}}}})
    .to_string();
    let r = c
        .request(
            "PATCH",
            "/api/v1/nodes/n1/status",
            "application/merge-patch+json",
            status,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.kubectl_ok(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {nodeName: n1, containers: [{name: app, image: nginx}]}\n"));
    s.kubectl_ok(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: two}\nspec: {nodeName: n1, containers: [{name: a, image: x}, {name: b, image: x}]}\n"));
    s.kubectl_ok(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\nspec: {containers: [{name: app, image: nginx}]}\n"));

    // kubectl logs: the kubelet's containerLogs endpoint, with the options passed on.
    let out = s.kubectl_ok(&["logs", "web", "--tail=5", "--timestamps"], None);
    assert!(
        out.starts_with("kubelet saw /containerLogs/default/web/app?"),
        "{out}"
    );
    assert!(
        out.contains("tailLines=5") && out.contains("timestamps=true"),
        "{out}"
    );
    assert!(out.ends_with("line 2\n"), "{out}");
    let out = s.kubectl_ok(&["logs", "two", "-c", "b"], None);
    assert!(
        out.starts_with("kubelet saw /containerLogs/default/two/b"),
        "{out}"
    );
    let r = c.get("/api/v1/namespaces/default/pods/two/log").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    let (ok, _, err) = s.kubectl(&["logs", "pending"], None);
    assert!(
        !ok && err.contains("pod pending does not have a host assigned"),
        "{err}"
    );

    // Node proxy reaches the kubelet too.
    let r = c.get("/api/v1/nodes/n1/proxy/configz").await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("kubelet saw /configz"), "{}", r.text());

    // exec: an upgraded connection piped to the kubelet's exec endpoint.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    let mut tls = integration_tests::client::tls_connector()
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.write_all(b"POST /api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: test-echo\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_exact(&mut echo),
    )
    .await
    .expect("echo through the upgraded connection")
    .unwrap();
    assert_eq!(&echo, b"ping");

    // exec without a command is refused before reaching the kubelet.
    let r = c
        .request(
            "POST",
            "/api/v1/namespaces/default/pods/web/exec?stdout=true",
            "",
            "",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "you must specify at least 1 command");
}
