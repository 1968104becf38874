//! A test client that talks as client-go does, for the paths our own components, kubectl
//! and the Python client never take: protobuf request and response bodies for built-in
//! kinds (client-go's default content type), `DeleteOptions` bodies (in protobuf, with
//! preconditions and propagation), single-object watches by `metadata.name` field
//! selector, and events through `events.k8s.io/v1`.

use crate::client::{Client, Reply};
use apimachinery::protobuf;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// What client-go sends as `Accept` when its content type is protobuf.
const ACCEPT: &str = "application/vnd.kubernetes.protobuf, */*";

/// An answer decoded from whichever form it came in (protobuf or JSON).
pub struct GoReply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

#[derive(Clone)]
pub struct GoClient {
    pub http: Client,
}

fn decode(r: Reply) -> GoReply {
    let content_type = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = if content_type.starts_with(PROTOBUF) {
        protobuf::decode_object(&r.body)
            .unwrap_or_else(|e| panic!("undecodable protobuf answer ({}): {e}", r.status))
    } else if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or_else(|_| json!(r.text()))
    };
    GoReply {
        status: r.status,
        content_type,
        body,
    }
}

/// A JSON object in its protobuf envelope (its `apiVersion` and `kind` must be set),
/// written as Go writes it: a non-pointer `metav1.Time` that is unset still appears, as
/// an empty message (`Time.Marshal` of the zero time), at the object's top level.
pub fn encode(obj: &Value) -> Vec<u8> {
    use protobuf::schema::{Kind, Schema, Special};
    let enveloped =
        protobuf::encode_object(obj).unwrap_or_else(|e| panic!("no protobuf form: {e}"));
    let (av, kind) = (
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    );
    let schema = Schema::get();
    let msg = schema.message(schema.by_kind(av, kind).unwrap()).unwrap();
    let mut raw = protobuf::unwrap_envelope(&enveloped).unwrap().to_vec();
    for f in &msg.fields {
        let is_time = matches!(f.kind, Kind::Message(i)
            if schema.message(i).is_some_and(|m| m.special == Special::Time));
        if is_time && obj.get(f.json).is_none() {
            let mut key = (f.tag << 3) | 2;
            while key >= 0x80 {
                raw.push((key as u8) | 0x80);
                key >>= 7;
            }
            raw.extend([key as u8, 0]);
        }
    }
    protobuf::envelope(av, kind, &raw)
}

impl GoClient {
    pub fn new(http: Client) -> Self {
        Self { http }
    }

    /// A request with a protobuf body (when given), accepting protobuf.
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> GoReply {
        let bytes = body.map(encode).unwrap_or_default();
        decode(
            self.http
                .request_accepting(method, path, PROTOBUF, ACCEPT, bytes)
                .await,
        )
    }

    pub async fn get(&self, path: &str) -> GoReply {
        self.send("GET", path, None).await
    }

    /// Creates an object from its JSON form, sent as protobuf; returns the answer.
    pub async fn create(&self, collection: &str, obj: &Value) -> GoReply {
        self.send("POST", collection, Some(obj)).await
    }

    pub async fn update(&self, path: &str, obj: &Value) -> GoReply {
        self.send("PUT", path, Some(obj)).await
    }

    /// DELETE with a `DeleteOptions` body, as client-go sends it: in protobuf, under the
    /// client's group version (`v1`, `apps/v1`, ...).
    pub async fn delete(&self, path: &str, group_version: &str, options: Value) -> GoReply {
        let mut opts = json!({"apiVersion": group_version, "kind": "DeleteOptions"});
        opts.as_object_mut()
            .unwrap()
            .extend(options.as_object().cloned().unwrap_or_default());
        self.send("DELETE", path, Some(&opts)).await
    }

    /// Watches one object as client-go's informers for a single name do: a list/watch of
    /// the collection with `fieldSelector=metadata.name=<name>`, in protobuf. Returns the
    /// HTTP status and, when it is 200, a stream of (type, object).
    pub async fn watch_name(
        &self,
        collection: &str,
        name: &str,
    ) -> (u16, tokio::sync::mpsc::UnboundedReceiver<(String, Value)>) {
        let path = format!(
            "{collection}?watch=true&allowWatchBookmarks=true&fieldSelector=metadata.name%3D{name}"
        );
        let mut send = self.http.connect().await;
        let mut req = Request::builder()
            .uri(&path)
            .header("host", "localhost")
            .header("accept", ACCEPT);
        if let Some(t) = &self.http.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = send
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .expect("watch request");
        let status = resp.status().as_u16();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if status != 200 {
            return (status, rx);
        }
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let _keep = send;
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while buf.len() >= 4 {
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if buf.len() < 4 + len {
                        break;
                    }
                    let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
                    let event = protobuf::fields(&frame).expect("watch event");
                    let kind = protobuf::string_field(&event, 1).unwrap_or_default();
                    let raw = protobuf::bytes_field(&event, 2).unwrap_or_default();
                    let inner = protobuf::bytes_field(&protobuf::fields(raw).unwrap(), 1)
                        .unwrap_or_default();
                    let obj = protobuf::decode_object(inner).expect("watch object");
                    if tx.send((kind, obj)).is_err() {
                        return;
                    }
                }
            }
        });
        (status, rx)
    }

    /// Records an event through `events.k8s.io/v1`, as every upstream component does
    /// (`eventTime`, `reportingController`, `regarding`, no core timestamps).
    pub async fn record_event(
        &self,
        ns: &str,
        regarding: &Value,
        reason: &str,
        note: &str,
    ) -> GoReply {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let event = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{}.", regarding["name"].as_str().unwrap_or("x")), "namespace": ns},
            "eventTime": now,
            "reportingController": "test.io/go-client",
            "reportingInstance": "go-client-1",
            "action": "Testing",
            "reason": reason,
            "regarding": regarding,
            "note": note,
            "type": "Normal",
        });
        self.create(
            &format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"),
            &event,
        )
        .await
    }
}
