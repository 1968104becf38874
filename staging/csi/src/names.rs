//! Names the kubelet and the attach/detach controller must agree on (upstream
//! `pkg/volume/csi`): a VolumeAttachment's name for a volume on a node, and a CSI
//! volume's unique name in node status.

/// The lowercase hex SHA-256 of `s`.
pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The VolumeAttachment of a volume on a node: `csi-` and the SHA-256 of handle, driver
/// and node (upstream `getAttachmentName`).
pub fn attachment_name(handle: &str, driver: &str, node: &str) -> String {
    format!("csi-{}", sha256_hex(&format!("{handle}{driver}{node}")))
}

/// A CSI volume's name in `node.status.volumesInUse` / `volumesAttached`
/// (`kubernetes.io/csi/<driver>^<handle>`).
pub fn unique_volume_name(driver: &str, handle: &str) -> String {
    format!("kubernetes.io/csi/{driver}^{handle}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        // sha256("abc"), a known vector.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            attachment_name("h", "d", "n"),
            format!("csi-{}", sha256_hex("hdn"))
        );
        assert_eq!(unique_volume_name("d", "h"), "kubernetes.io/csi/d^h");
    }
}
