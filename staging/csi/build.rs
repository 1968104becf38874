//! Generates the csi.v1 stubs from the vendored spec (`proto/csi.proto`, CSI v1.12.0)
//! and the kubelet's plugin registration API (`proto/pluginregistration.proto`).
//! Needs `protoc` and its well-known types (Debian: protobuf-compiler, libprotobuf-dev).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/csi.proto");
    println!("cargo:rerun-if-changed=proto/pluginregistration.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &["proto/csi.proto", "proto/pluginregistration.proto"],
            &["proto"],
        )?;
    Ok(())
}
