//! What the ONNX importer must refuse, each with one clear error naming
//! the file, tensor, node or input at fault, and never a panic: unsupported
//! operators, old opsets, truncated and corrupted files, files that are not
//! ONNX, inputs of the wrong shape or type, missing or escaping external
//! data, unresolved symbolic dims.

mod onnx_common;

use onnx_common::fixture_dir;
use resincept::onnx::{self, ImportOptions, OnnxTensor};
use resincept::Tensor;
use std::path::PathBuf;

fn refuse(name: &str) -> PathBuf {
    fixture_dir("refuse").join(name)
}

fn err_of<T>(r: resincept::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    assert!(!msg.contains('\n'), "one line expected: {msg}");
    for p in parts {
        assert!(msg.contains(p), "`{msg}` should mention `{p}`");
    }
}

/// An unsupported operator names the node, its op type and the opset.
#[test]
fn unsupported_operator() {
    let m = err_of(onnx::load(refuse("unsupported_op.onnx")));
    assert_has(&m, &["leaky", "LeakyRelu", "opset 17", "not supported"]);
}

/// Opset 11 is refused, naming it.
#[test]
fn old_opset() {
    let m = err_of(onnx::load(refuse("old_opset.onnx")));
    assert_has(&m, &["old_opset.onnx", "opset 11", "13"]);
}

/// An integer input is refused at import (naming the input and type), and
/// an integer tensor given to a float model at run time likewise.
#[test]
fn wrong_input_dtype() {
    let m = err_of(onnx::load(refuse("int_input.onnx")));
    assert_has(&m, &["`x`", "INT64", "FLOAT"]);
    let (_, _, info) = onnx::load(fixture_dir("extra/conv_bias/model.onnx")).unwrap();
    let x = OnnxTensor::from_i64("x", vec![2, 5, 9, 11], vec![0; 990]).unwrap();
    assert_has(
        &err_of(info.onnx_input_to_ir(&x)),
        &["`x`", "INT64", "FLOAT"],
    );
}

/// An input of another shape than the one imported is refused with both.
#[test]
fn wrong_input_shape() {
    let (_, _, info) = onnx::load(fixture_dir("extra/conv_bias/model.onnx")).unwrap();
    let m = err_of(info.input_to_ir(&Tensor::zeros(vec![2, 5, 9, 12])));
    assert_has(&m, &["`x`", "[2, 5, 9, 11]", "[2, 5, 9, 12]"]);
    // A given shape that contradicts a fixed dim.
    let opts = ImportOptions::new().input_shape(&[2, 4, 9, 11]);
    let m = err_of(onnx::load_with(
        fixture_dir("extra/conv_bias/model.onnx"),
        &opts,
    ));
    assert_has(&m, &["`x`", "[2, 4, 9, 11]", "[2, 5, 9, 11]"]);
}

/// Symbolic dims without a given shape are refused, naming them; with a
/// shape they resolve.
#[test]
fn symbolic_dims_need_a_shape() {
    let m = err_of(onnx::load(refuse("symbolic_dims.onnx")));
    assert_has(&m, &["`x`", "N, height", "input shape"]);
    let opts = ImportOptions::new().input_shape(&[2, 3, 9, 8]);
    let (g, _, info) = onnx::load_with(refuse("symbolic_dims.onnx"), &opts).unwrap();
    assert_eq!(info.inputs[0].shape, vec![2, 3, 9, 8]);
    assert_eq!(g.shapes[g.outputs[0].0], [2, 4, 7, 6]);
}

/// Two runtime inputs: the engine takes one.
#[test]
fn two_runtime_inputs() {
    let m = err_of(onnx::load(refuse("two_inputs.onnx")));
    assert_has(&m, &["2 runtime inputs", "`a`", "`b`"]);
}

/// External data outside the model's folder is refused before any file
/// is opened; missing external data names the file and the tensor.
#[test]
fn external_data_refusals() {
    let m = err_of(onnx::load(refuse("external_traversal.onnx")));
    assert_has(&m, &["`w`", "../outside.bin", "relative path inside"]);
    let dir = std::env::temp_dir().join(format!("resincept-onnx-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture_dir("extra/external_data/model.onnx"),
        dir.join("model.onnx"),
    )
    .unwrap();
    let m = err_of(onnx::load(dir.join("model.onnx")));
    assert_has(&m, &["weights.bin", "external data of tensor `W`"]);
    // A short external file: the needed range is named.
    std::fs::write(dir.join("weights.bin"), [0u8; 100]).unwrap();
    let m = err_of(onnx::load(dir.join("model.onnx")));
    assert_has(&m, &["weights.bin", "`W`", "the file has 100"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Files that are not ONNX: text, a PNG header, an empty file, random bytes.
#[test]
fn not_onnx() {
    for (what, bytes) in [
        ("text", b"hello, this is not a model\n".to_vec()),
        ("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        ("empty", Vec::new()),
        (
            "random",
            kernels_tests::rand_vec(5, 4096)
                .iter()
                .map(|v| (v.to_bits() >> 7) as u8)
                .collect(),
        ),
    ] {
        let m = err_of(onnx::from_bytes(&bytes, &ImportOptions::new()));
        assert_has(&m, &["<memory>"]);
        assert!(m.contains("not") || m.contains("opset"), "{what}: {m}");
    }
    let m = err_of(onnx::load(fixture_dir("no_such_model.onnx")));
    assert_has(&m, &["no_such_model.onnx"]);
}

/// A real model truncated anywhere, or with bytes flipped, never panics:
/// it imports or it returns an error.
#[test]
fn truncated_and_corrupted_files_never_panic() {
    let path = fixture_dir("extra/bn_gap_fc_softmax/model.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let mut errors = 0;
    for cut in (0..bytes.len()).step_by(7) {
        if onnx::from_bytes(&bytes[..cut], &ImportOptions::new()).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0);
    // The whole file truncated by one byte names the problem.
    let m = err_of(onnx::from_bytes(
        &bytes[..bytes.len() - 1],
        &ImportOptions::new(),
    ));
    assert_has(&m, &["<memory>"]);
    let mut rng = kernels_tests::Rng(11);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            b[i] = rng.below(256) as u8;
        }
        let _ = onnx::from_bytes(&b, &ImportOptions::new());
    }
}

/// A Gemm `C` that does not broadcast to the result: one error naming
/// the node, its op type and both shapes (ONNX's
/// `test_gemm_default_matrix_bias` with another `C` bound). The
/// elementwise ops' refusals are unit tests of `src/onnx/tests.rs`.
#[test]
fn gemm_c_that_does_not_broadcast() {
    let f = |dims: Vec<usize>| {
        let n = dims.iter().product();
        OnnxTensor::from_f32("c", dims, vec![0.5; n]).unwrap()
    };
    // A (3, 6), B (6, 4); C of two rows for a result of three.
    let gemm = fixture_dir("node/test_gemm_default_matrix_bias/model.onnx");
    let names = onnx::graph_inputs(&gemm).unwrap();
    let data = gemm.parent().unwrap().join("test_data_set_0");
    let a = onnx::read_tensor_file(data.join("input_0.pb")).unwrap();
    let b = onnx::read_tensor_file(data.join("input_1.pb")).unwrap();
    let out = b.dims()[1];
    let opts = ImportOptions::new()
        .input_shape(a.dims())
        .bind(&names[1].name, b.clone())
        .bind(&names[2].name, f(vec![2, out]));
    let m = err_of(onnx::load_with(&gemm, &opts));
    let want = format!("({}, {out})", a.dims()[0]);
    assert_has(&m, &["Gemm", &format!("[2, {out}]"), &want]);
}

/// A reflect `Pad` as long as the axis it mirrors is refused (ONNX and
/// numpy require each reflect pad below the size), naming the node, the
/// axis, the pads and the size.
#[test]
fn reflect_pad_too_large() {
    let m = err_of(onnx::load(refuse("reflect_pad_too_large.onnx")));
    assert_has(&m, &["mirror", "reflect", "axis 3", "(3, 1)", "size 3"]);
}
