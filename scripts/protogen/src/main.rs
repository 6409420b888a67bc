//! Regenerates `src/serve/proto/inference.rs` from the `.proto` beside it.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("src/serve/proto");
    let proto = dir.join("grpc_predict_v2.proto");
    let descriptors = protox::compile([&proto], [&dir]).unwrap_or_else(|e| {
        eprintln!("error: {}: {e}", proto.display());
        std::process::exit(1)
    });
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&dir)
        .compile_fds(descriptors)
        .unwrap_or_else(|e| {
            eprintln!("error: generating code: {e}");
            std::process::exit(1)
        });
    println!("wrote {}", dir.join("inference.rs").display());
}
