//! WebSocket framing (RFC 6455) as Kubernetes streams over it (upstream
//! `apimachinery/pkg/util/httpstream/wsstream`): the handshake keys, and binary messages
//! whose first byte names the channel (`v4`/`v5.channel.k8s.io`; in v5 a message on
//! channel 255 closes the channel its second byte names).

use base64::Engine;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// RFC 6455's GUID for `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The v5 channel that closes another channel.
pub const CLOSE_CHANNEL: u8 = 255;
/// Channels of remote command streams.
pub const STDIN_CHANNEL: u8 = 0;
pub const STDOUT_CHANNEL: u8 = 1;
pub const STDERR_CHANNEL: u8 = 2;
pub const ERROR_CHANNEL: u8 = 3;
pub const RESIZE_CHANNEL: u8 = 4;
/// A sane limit on one message (the apiserver's and kubelet's read limit is 32 MiB).
const MAX_MESSAGE: usize = 32 << 20;

/// A fresh `Sec-WebSocket-Key`.
pub fn new_key() -> String {
    let mut key = [0u8; 16];
    fill_random(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The `Sec-WebSocket-Accept` a server answers a key with.
pub fn accept_key(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}{ACCEPT_GUID}", key.trim()).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

fn fill_random(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .expect("system randomness");
}

/// Which end we are: clients mask what they send, servers do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Binary(Vec<u8>),
    Text(String),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close code and reason, if it gave them.
    Close(Option<(u16, String)>),
}

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads whole messages, joining fragments.
pub struct Reader<R> {
    inner: R,
    /// A fragmented message's opcode and parts so far (control frames may interleave).
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            partial: None,
        }
    }

    /// The next message; `None` when the socket closed without a close frame.
    pub async fn next(&mut self) -> io::Result<Option<Message>> {
        loop {
            let partial = &mut self.partial;
            let mut head = [0u8; 2];
            match self.inner.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.partial.is_none() => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
            let fin = head[0] & 0x80 != 0;
            let op = head[0] & 0x0f;
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7f {
                126 => self.inner.read_u16().await? as usize,
                127 => self.inner.read_u64().await? as usize,
                n => n as usize,
            };
            if len > MAX_MESSAGE {
                return Err(invalid("websocket message too large"));
            }
            let mut mask = [0u8; 4];
            if masked {
                self.inner.read_exact(&mut mask).await?;
            }
            let mut payload = vec![0u8; len];
            self.inner.read_exact(&mut payload).await?;
            if masked {
                apply_mask(&mut payload, mask);
            }
            match op {
                OP_PING => return Ok(Some(Message::Ping(payload))),
                OP_PONG => return Ok(Some(Message::Pong(payload))),
                OP_CLOSE => {
                    let close = (payload.len() >= 2).then(|| {
                        (
                            u16::from_be_bytes([payload[0], payload[1]]),
                            String::from_utf8_lossy(&payload[2..]).into_owned(),
                        )
                    });
                    return Ok(Some(Message::Close(close)));
                }
                OP_TEXT | OP_BINARY if partial.is_none() => {
                    if fin {
                        return Ok(Some(finish(op, payload)?));
                    }
                    *partial = Some((op, payload));
                }
                OP_CONT => {
                    let Some((first, mut acc)) = partial.take() else {
                        return Err(invalid("websocket continuation without a message"));
                    };
                    acc.extend(payload);
                    if acc.len() > MAX_MESSAGE {
                        return Err(invalid("websocket message too large"));
                    }
                    if fin {
                        return Ok(Some(finish(first, acc)?));
                    }
                    *partial = Some((first, acc));
                }
                _ => return Err(invalid("unexpected websocket opcode")),
            }
        }
    }
}

fn finish(op: u8, payload: Vec<u8>) -> io::Result<Message> {
    Ok(if op == OP_TEXT {
        Message::Text(
            String::from_utf8(payload).map_err(|_| invalid("websocket text is not UTF-8"))?,
        )
    } else {
        Message::Binary(payload)
    })
}

fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Writes messages, masked when we are the client.
pub struct Writer<W> {
    inner: W,
    role: Role,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub fn new(inner: W, role: Role) -> Self {
        Writer { inner, role }
    }

    pub async fn send(&mut self, msg: &Message) -> io::Result<()> {
        let (op, payload): (u8, std::borrow::Cow<[u8]>) = match msg {
            Message::Binary(b) => (OP_BINARY, b.into()),
            Message::Text(t) => (OP_TEXT, t.as_bytes().into()),
            Message::Ping(b) => (OP_PING, b.into()),
            Message::Pong(b) => (OP_PONG, b.into()),
            Message::Close(c) => (
                OP_CLOSE,
                c.as_ref()
                    .map(|(code, reason)| {
                        let mut p = code.to_be_bytes().to_vec();
                        p.extend_from_slice(reason.as_bytes());
                        p
                    })
                    .unwrap_or_default()
                    .into(),
            ),
        };
        self.inner
            .write_all(&encode(op, &payload, self.role))
            .await?;
        self.inner.flush().await
    }

    /// A binary message on a channel.
    pub async fn send_channel(&mut self, channel: u8, data: &[u8]) -> io::Result<()> {
        let mut m = Vec::with_capacity(data.len() + 1);
        m.push(channel);
        m.extend_from_slice(data);
        self.send(&Message::Binary(m)).await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

/// One unfragmented frame.
pub fn encode(op: u8, payload: &[u8], role: Role) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | op);
    let mask_bit = if role == Role::Client { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if role == Role::Client {
        let mut mask = [0u8; 4];
        fill_random(&mut mask);
        out.extend_from_slice(&mask);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], mask);
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A byte stream carried in binary messages (client-go's `TunnelingConnection`, the
/// apiserver's tunnel): what is written to the returned end goes out as messages, what
/// comes in as messages is read from it. Pings are answered; a close ends both ways.
pub fn binary_stream<IO>(io: IO, role: Role) -> tokio::io::DuplexStream
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (rd, wr) = tokio::io::split(io);
    let (mut from_local, mut to_local) = tokio::io::split(ours);
    let writer = std::sync::Arc::new(tokio::sync::Mutex::new(Writer::new(wr, role)));
    let pong = writer.clone();
    tokio::spawn(async move {
        let mut reader = Reader::new(rd);
        while let Ok(Some(m)) = reader.next().await {
            let written = match m {
                Message::Binary(b) => to_local.write_all(&b).await,
                Message::Ping(p) => pong.lock().await.send(&Message::Pong(p)).await,
                Message::Close(_) => break,
                _ => Ok(()),
            };
            if written.is_err() {
                break;
            }
        }
        let _ = to_local.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = from_local.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let msg = Message::Binary(buf[..n].to_vec());
            if writer.lock().await.send(&msg).await.is_err() {
                return;
            }
        }
        let mut w = writer.lock().await;
        let _ = w.send(&Message::Close(Some((1000, String::new())))).await;
        let _ = w.shutdown().await;
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(new_key().len(), 24);
    }

    #[tokio::test]
    async fn messages_round_trip_both_ways_and_fragments_join() {
        for (role, len) in [
            (Role::Client, 5),
            (Role::Server, 300),
            (Role::Client, 70_000),
        ] {
            let (a, b) = tokio::io::duplex(1 << 20);
            let mut w = Writer::new(a, role);
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            w.send_channel(STDOUT_CHANNEL, &data).await.unwrap();
            w.send(&Message::Ping(b"p".to_vec())).await.unwrap();
            w.send(&Message::Close(Some((1000, "bye".into()))))
                .await
                .unwrap();
            drop(w);
            let mut r = Reader::new(b);
            let mut want = vec![STDOUT_CHANNEL];
            want.extend(&data);
            assert_eq!(r.next().await.unwrap(), Some(Message::Binary(want)));
            assert_eq!(r.next().await.unwrap(), Some(Message::Ping(b"p".to_vec())));
            assert_eq!(
                r.next().await.unwrap(),
                Some(Message::Close(Some((1000, "bye".into()))))
            );
            assert_eq!(r.next().await.unwrap(), None);
        }
        // A byte stream through messages, both ways.
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut a = binary_stream(client, Role::Client);
        let mut b = binary_stream(server, Role::Server);
        a.write_all(b"over the tunnel").await.unwrap();
        let mut got = [0u8; 15];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"over the tunnel");
        b.write_all(b"back").await.unwrap();
        let mut got = [0u8; 4];
        a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"back");
        // A text message in two fragments, a ping between them.
        let mut wire = vec![0x01, 2, b'h', b'e'];
        wire.extend([0x89, 0]);
        wire.extend([0x80, 3, b'l', b'l', b'o']);
        let mut r = Reader::new(&wire[..]);
        assert_eq!(r.next().await.unwrap(), Some(Message::Ping(vec![])));
        assert_eq!(r.next().await.unwrap(), Some(Message::Text("hello".into())));
    }

    #[tokio::test]
    async fn bad_frames_are_errors() {
        let mut r = Reader::new(&[0x80u8, 1, 0][..]);
        assert!(r.next().await.is_err());
        let mut r = Reader::new(&[0x83u8, 0][..]);
        assert!(r.next().await.is_err());
        let mut r = Reader::new(&[0x82u8, 127, 0xff, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(r.next().await.is_err());
    }
}
