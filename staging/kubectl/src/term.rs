//! The local terminal while a remote TTY is attached (upstream `kubectl/pkg/util/term`):
//! raw mode restored on every way out, its size, and resizes (SIGWINCH) for the remote.

use cli_runtime::remotecommand::TermSize;
use std::io::IsTerminal;
use std::os::fd::RawFd;
use tokio::sync::mpsc;

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The size of the terminal on `fd`, if it is one.
pub fn size(fd: RawFd) -> Option<TermSize> {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize we own; a non-terminal fd just fails.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(TermSize {
        width: ws.ws_col,
        height: ws.ws_row,
    })
}

/// The local size: of stdout when it is a terminal, else of stdin.
pub fn local_size() -> Option<TermSize> {
    size(libc::STDOUT_FILENO).or_else(|| size(libc::STDIN_FILENO))
}

/// Raw mode on stdin until dropped.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    pub fn enable() -> std::io::Result<RawMode> {
        // SAFETY: termios structs we own, on the process's stdin.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in `enable`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

/// Sends `initial` sizes, then the new size after each SIGWINCH.
pub fn monitor_size(initial: Vec<TermSize>) -> mpsc::Receiver<TermSize> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut last = None;
        for s in initial {
            if tx.send(s).await.is_err() {
                return;
            }
            last = Some(s);
        }
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some(s) = local_size().filter(|s| Some(*s) != last) {
                last = Some(s);
                if tx.send(s).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Local stdin as an async reader fed by a plain thread: a blocking read left behind
/// when the remote side ends must not hold the process (tokio's stdin would).
pub fn stdin_reader() -> Box<dyn tokio::io::AsyncRead + Send + Unpin> {
    let (mut tx, rx) = crate::pipe::sync_to_async();
    std::thread::spawn(move || {
        if let Err(e) = std::io::copy(&mut std::io::stdin(), &mut tx)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            tx.fail(e);
        }
    });
    Box::new(rx)
}
