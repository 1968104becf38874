//! Test PKI made with the real openssl: a CA and client certificates signed by it.

use std::path::{Path, PathBuf};

fn openssl(dir: &Path, args: &[&str]) {
    crate::openssl(dir, args);
}

/// A CA and a client certificate for `subject` signed by it; returns (ca, cert, key).
pub fn pki(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
        ],
    );
    let (cert, key) = leaf(dir, &ca, name, subject);
    (dir.join(format!("{ca}.crt")), cert, key)
}

/// A client certificate for `subject` signed by the CA `ca` made by [`pki`]: an EC key
/// and an X.509 v3 certificate for client authentication.
pub fn leaf(dir: &Path, ca: &str, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    sign(
        dir,
        ca,
        name,
        subject,
        &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        &["-extfile", "client.ext"],
    )
}

/// A client certificate made the most common way: `openssl x509 -req` with no extensions
/// file, which makes an X.509 v1 certificate (no extensions at all); RSA, as the usual
/// recipes have it. Signed by the CA `ca` made by [`pki`].
pub fn leaf_v1(dir: &Path, ca: &str, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    sign(dir, ca, name, subject, &["rsa:2048"], &[])
}

/// A key and CSR for `subject`, signed by `ca` with `x509 -req` and `extra` arguments.
fn sign(
    dir: &Path,
    ca: &str,
    name: &str,
    subject: &str,
    key: &[&str],
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let (key_file, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let mut req = vec!["req", "-new", "-newkey"];
    req.extend(key);
    req.extend([
        "-nodes", "-subj", subject, "-keyout", &key_file, "-out", &csr,
    ]);
    openssl(dir, &req);
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    let mut x509 = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
    ];
    x509.extend(extra);
    x509.extend(["-out", crt.as_str()]);
    openssl(dir, &x509);
    (dir.join(crt), dir.join(key_file))
}
