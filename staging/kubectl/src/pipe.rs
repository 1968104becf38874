//! Pipes between blocking code (terminal reads, tar) and the async streams of exec.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::mpsc;

/// A blocking writer whose bytes an async reader receives.
pub struct SyncWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl io::Write for SyncWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SyncWriter {
    /// Ends the stream with an error instead of EOF.
    pub fn fail(self, e: io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

/// The async end of [`sync_to_async`].
pub struct AsyncReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
}

pub fn sync_to_async() -> (SyncWriter, AsyncReader) {
    let (tx, rx) = mpsc::channel(8);
    (
        SyncWriter { tx },
        AsyncReader {
            rx,
            pending: Vec::new(),
        },
    )
}

impl AsyncRead for AsyncReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(data))) => self.pending = data,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

/// A blocking reader of what an async writer writes (read it off the runtime thread).
pub struct SyncReader {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl io::Read for SyncReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.blocking_recv() {
                Some(d) => self.pending = d,
                None => return Ok(0),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// An async writer (one end of an in-memory pipe) and the blocking reader of its bytes;
/// the reader sees EOF once every writer is dropped.
pub fn async_to_sync() -> (tokio::io::DuplexStream, SyncReader) {
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = theirs.read(&mut buf).await {
            if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    });
    (
        ours,
        SyncReader {
            rx,
            pending: Vec::new(),
        },
    )
}
