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

/// A client certificate for `subject` signed by the CA `ca` made by [`pki`].
pub fn leaf(dir: &Path, ca: &str, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "client.ext",
            "-out",
            &format!("{name}.crt"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

/// A client certificate made the most common way: `openssl x509 -req` with no extensions
/// file, which makes an X.509 v1 certificate (no extensions at all); RSA, as the usual
/// recipes have it. Signed by the CA `ca` made by [`pki`].
pub fn leaf_v1(dir: &Path, ca: &str, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &format!("{name}.crt"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}
