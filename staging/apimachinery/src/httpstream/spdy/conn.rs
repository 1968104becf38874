//! A client's SPDY connection (upstream `apimachinery/pkg/util/httpstream/spdy` over
//! `moby/spdystream`): streams opened with headers and answered by the peer's SYN_REPLY,
//! data in both directions, half-close with FIN, reset with RST_STREAM. As spdystream
//! does, neither side enforces flow-control windows, so WINDOW_UPDATE is ignored.

use super::frame::{FLAG_FIN, Frame, Framer, Headers, RST_CANCEL, RST_REFUSED_STREAM, data_frames};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Upstream's wait for a stream's SYN_REPLY (`createStreamResponseTimeout`).
pub const STREAM_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest DATA frame we send (spdystream's read buffer).
const CHUNK: usize = 32 * 1024;

#[derive(Default)]
struct Slot {
    data: Option<mpsc::UnboundedSender<Vec<u8>>>,
    reply: Option<oneshot::Sender<Result<Headers, String>>>,
}

struct Shared {
    out: mpsc::Sender<Frame>,
    streams: Mutex<HashMap<u32, Slot>>,
    next_id: AtomicU32,
}

impl Shared {
    async fn send(&self, f: Frame) -> io::Result<()> {
        self.out
            .send(f)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection closed"))
    }
}

/// A SPDY connection: cheap to clone; dropped with its last stream and clone.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    closed: Arc<tokio::sync::Notify>,
}

/// One stream: read what the peer sends, write, half-close, reset.
pub struct Stream {
    pub id: u32,
    pub reply_headers: Headers,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Connection {
    /// Runs the connection over an upgraded socket; frames are read and written by two
    /// tasks until either side closes.
    pub fn new<IO>(io: IO) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (out, mut out_rx) = mpsc::channel::<Frame>(64);
        let shared = Arc::new(Shared {
            out,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
        });
        let closed = Arc::new(tokio::sync::Notify::new());
        // Each direction has its own compression context, so one framer per task.
        tokio::spawn(async move {
            let mut framer = Framer::new();
            while let Some(f) = out_rx.recv().await {
                let goaway = matches!(f, Frame::GoAway { .. });
                if wr.write_all(&framer.encode(&f)).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                if goaway {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let weak = Arc::downgrade(&shared);
        let done = closed.clone();
        tokio::spawn(async move {
            let mut framer = Framer::new();
            while let Ok(Some(frame)) = framer.read(&mut rd).await {
                let Some(shared) = weak.upgrade() else { break };
                if !handle(&shared, frame).await {
                    break;
                }
            }
            // The peer is gone: every stream ends and every pending open fails.
            if let Some(shared) = weak.upgrade() {
                for (_, slot) in shared.streams.lock().unwrap().drain() {
                    if let Some(r) = slot.reply {
                        let _ = r.send(Err("connection closed".into()));
                    }
                }
            }
            done.notify_waiters();
            done.notify_one();
        });
        Connection { shared, closed }
    }

    /// Opens a stream and waits for the peer's reply.
    pub async fn open(&self, headers: Headers) -> io::Result<Stream> {
        let id = self.shared.next_id.fetch_add(2, Ordering::SeqCst);
        let (data_tx, rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.shared.streams.lock().unwrap().insert(
            id,
            Slot {
                data: Some(data_tx),
                reply: Some(reply_tx),
            },
        );
        self.shared
            .send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers,
            })
            .await?;
        let reply = tokio::time::timeout(STREAM_REPLY_TIMEOUT, reply_rx)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timeout waiting for SYN_REPLY"))?
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection closed"))?
            .map_err(|e| io::Error::new(io::ErrorKind::ConnectionReset, e))?;
        Ok(Stream {
            id,
            reply_headers: reply,
            shared: self.shared.clone(),
            rx,
        })
    }

    /// Waits until the peer closes the connection.
    pub async fn closed(&self) {
        self.closed.notified().await
    }

    /// Says goodbye: GOAWAY, then the socket is shut down.
    pub async fn close(&self) {
        let last = self.shared.next_id.load(Ordering::SeqCst).saturating_sub(2);
        let _ = self
            .shared
            .send(Frame::GoAway {
                last_good_stream_id: last,
                status: 0,
            })
            .await;
    }
}

/// One incoming frame; false ends the connection.
async fn handle(shared: &Shared, frame: Frame) -> bool {
    let finish = |id: u32, reply: Option<Result<Headers, String>>, fin: bool| {
        let mut streams = shared.streams.lock().unwrap();
        if let Some(slot) = streams.get_mut(&id) {
            if let (Some(r), Some(tx)) = (reply, slot.reply.take()) {
                let _ = tx.send(r);
            }
            if fin {
                slot.data = None;
            }
            if slot.data.is_none() && slot.reply.is_none() {
                streams.remove(&id);
            }
        }
    };
    match frame {
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => finish(stream_id, Some(Ok(headers)), flags & FLAG_FIN != 0),
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if !data.is_empty()
                && let Some(tx) = shared
                    .streams
                    .lock()
                    .unwrap()
                    .get(&stream_id)
                    .and_then(|s| s.data.as_ref())
            {
                let _ = tx.send(data);
            }
            if flags & FLAG_FIN != 0 {
                finish(stream_id, None, true);
            }
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                finish(stream_id, None, true);
            }
        }
        Frame::RstStream { stream_id, status } => finish(
            stream_id,
            Some(Err(format!("stream reset by peer (status {status})"))),
            true,
        ),
        // The server's pings (even ids) are answered; ours would come back odd.
        Frame::Ping { id } if id % 2 == 0 => {
            let _ = shared.send(Frame::Ping { id }).await;
        }
        Frame::SynStream { stream_id, .. } => {
            let _ = shared
                .send(Frame::RstStream {
                    stream_id,
                    status: RST_REFUSED_STREAM,
                })
                .await;
        }
        Frame::GoAway { .. } => return false,
        Frame::Ping { .. } | Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
    }
    true
}

impl Stream {
    /// The next chunk from the peer; `None` once it half-closed or reset the stream.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// Everything the peer sends until it half-closes.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(c) = self.read().await {
            all.extend(c);
        }
        all
    }

    pub async fn write(&self, data: &[u8]) -> io::Result<()> {
        self.writer().write(data).await
    }

    /// Half-closes our side (the peer reads EOF).
    pub async fn close(&self) -> io::Result<()> {
        self.writer().close().await
    }

    /// Abandons the stream in both directions.
    pub async fn reset(&self) {
        let _ = self
            .shared
            .send(Frame::RstStream {
                stream_id: self.id,
                status: RST_CANCEL,
            })
            .await;
        self.shared.streams.lock().unwrap().remove(&self.id);
    }

    /// A writer half for a task that copies into the stream.
    pub fn writer(&self) -> StreamWriter {
        StreamWriter {
            id: self.id,
            shared: self.shared.clone(),
        }
    }
}

/// The writing half of a stream, for a copying task.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
}

impl StreamWriter {
    /// Sends `data` in DATA frames no larger than spdystream reads at once.
    pub async fn write(&self, data: &[u8]) -> io::Result<()> {
        for f in data_frames(self.id, data, CHUNK) {
            self.shared.send(f).await?;
        }
        Ok(())
    }

    /// Half-closes the stream (DATA with FIN): the peer reads EOF.
    pub async fn close(&self) -> io::Result<()> {
        self.shared
            .send(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Vec::new(),
            })
            .await
    }
}
