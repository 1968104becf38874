//! Buffered stdout for the whole command (one write at the end, or per line when
//! following), as kubectl's output is a stream of small writes.

use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub fn print(s: &str) {
    OUT.with(|o| o.borrow_mut().extend_from_slice(s.as_bytes()));
}

/// Writes what is buffered (streaming commands call this as they go).
pub fn flush() {
    OUT.with(|o| {
        let mut o = o.borrow_mut();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&o);
        let _ = stdout.flush();
        o.clear();
    });
}

/// A line to stderr, after what stdout has so far (kubectl interleaves them in order).
pub fn eprint_line(s: &str) {
    flush();
    eprintln!("{s}");
}
