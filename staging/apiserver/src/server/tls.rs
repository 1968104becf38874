//! Serving certificates: the given `--tls-cert-file`/`--tls-private-key-file`, or (as
//! upstream) a self-signed pair generated once and kept in `--cert-dir`. The helpers live
//! in component-base, where the kubelet finds them too.

pub use component_base::tls::{
    client_verifier, ensure_self_signed, load_pem, load_roots, server_config,
    server_config_resolving,
};
