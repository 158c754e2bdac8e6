//! Generates the P4Runtime messages and service, and Solyx's own services
//! (node resources), from the `.proto` files in `proto/`. protoc comes from the `protoc-bin-vendored` crate, so the build
//! needs neither a system protoc nor a network.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/p4/v1/p4runtime.proto",
    "proto/p4/v1/p4data.proto",
    "proto/p4/config/v1/p4info.proto",
    "proto/p4/config/v1/p4types.proto",
];

const SOLYX_PROTOS: &[&str] = &["proto/solyx/node/v1/node.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts run single-threaded before any other code.
    std::env::set_var("PROTOC", protoc);

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("p4runtime_descriptor.bin"))
        .extern_path(".google.rpc", "::tonic_types::pb")
        .compile_protos(PROTOS, &["proto"])?;

    // Solyx's own services, apart from the P4Runtime descriptor set.
    tonic_prost_build::configure().compile_protos(SOLYX_PROTOS, &["proto"])?;

    for p in PROTOS.iter().chain(SOLYX_PROTOS) {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=proto/google/rpc/status.proto");
    Ok(())
}
