//! ONNX's own backend node tests and the extra cases (onnxruntime as the
//! oracle), imported and run on the CPU and GPU executors.
//!
//! The fixtures and their manifests are written by
//! `scripts/make_onnx_fixtures.py`; see `docs/ONNX.md` for the skip list.

mod onnx_common;

/// Every node test case of the supported operators: run on both executors
/// within rtol 1e-3 / atol 1e-5, folded at import, or skipped with the
/// manifest's reason (and then shown not to pass).
#[test]
fn onnx_node_tests() {
    onnx_common::run_manifest("node");
}

/// Convs, pools, broadcasting, layouts and file features the node tests
/// miss, against onnxruntime.
#[test]
fn onnx_extra_cases() {
    onnx_common::run_manifest("extra");
}
