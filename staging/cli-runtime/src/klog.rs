//! klog's text header, for the few lines upstream's kubectl logs through klog rather than
//! printing (`W1203 22:58:19.395737   13108 prune.go:71] …`). Upstream twin:
//! `k8s.io/klog/v2` (`formatHeader`).

/// One klog line on stderr: severity letter (`I`, `W`, `E`), then `file:line] message`.
pub fn line(severity: char, location: &str, message: &str) {
    let now = jiff::Zoned::now();
    eprintln!(
        "{severity}{} {:>7} {location}] {message}",
        now.strftime("%m%d %H:%M:%S%.6f"),
        std::process::id(),
    );
}
