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

/// Preprocessing hints and the rest of the model's description come from
/// the file: `metadata_props`, opset, producer, input and output names,
/// declared dims (symbolic ones by name), imported shapes.
#[test]
fn onnx_model_info() {
    use resincept::onnx::{self, Dim, ImportOptions, Layout};
    let (_, _, info) = onnx::load(onnx_common::fixture_dir("extra/metadata/model.onnx")).unwrap();
    let p = &info.preprocess;
    assert_eq!(p.mean.as_deref(), Some(&[0.485, 0.456, 0.406][..]));
    assert_eq!(p.std.as_deref(), Some(&[0.229, 0.224, 0.225][..]));
    assert_eq!((p.resize, p.crop), (Some(256), Some(224)));
    assert_eq!(p.interpolation.as_deref(), Some("bicubic"));
    assert_eq!(
        p.labels.as_deref(),
        Some(&["cat".to_string(), "dog".into(), "bird".into()][..])
    );
    assert_eq!(
        (info.opset, info.producer.as_str()),
        (17, "resincept-fixtures")
    );
    let dir = onnx_common::fixture_dir("extra/symbolic_batch/model.onnx");
    let (_, _, info) =
        onnx::load_with(&dir, &ImportOptions::new().input_shape(&[3, 3, 8, 8])).unwrap();
    let i = &info.inputs[0];
    assert_eq!(i.name, "x");
    assert_eq!(
        i.dims.as_deref(),
        Some(
            &[
                Dim::Symbolic("batch".into()),
                Dim::Fixed(3),
                Dim::Fixed(8),
                Dim::Fixed(8)
            ][..]
        )
    );
    assert_eq!(
        (i.shape.as_slice(), i.layout),
        (&[3, 3, 8, 8][..], Layout::Nchw)
    );
    assert_eq!(
        (
            info.outputs[0].name.as_str(),
            info.outputs[0].shape.as_slice()
        ),
        ("y", &[3, 8, 8, 8][..])
    );
    let (_, _, info) =
        onnx::load(onnx_common::fixture_dir("extra/nhwc_tf2onnx/model.onnx")).unwrap();
    assert_eq!(
        (info.inputs[0].shape.as_slice(), info.inputs[0].layout),
        (&[1, 9, 11, 3][..], Layout::Nhwc)
    );
}

/// The `clip_fused` extra case (MobileNet-v2's Conv-BN-ReLU6 and friends)
/// is not only right but fused: after the passes, ReLU6 is the conv's
/// epilogue (BN folded), `[-1, 1]` the standalone batchnorm's, `(-inf,
/// 1.5]` the add's, and only the clip whose producer already has a clamp
/// is left standalone. CPU only (the passes on the imported graph).
#[test]
fn onnx_clip_folds_into_its_producer() {
    use resincept::graph::{Clamp, Op};
    use resincept::passes::{self, PassOptions};
    let dir = onnx_common::fixture_dir("extra/clip_fused/model.onnx");
    let (g, _, _) = resincept::onnx::load(&dir).unwrap();
    assert_eq!(g.nodes.iter().filter(|n| n.op.kind() == "clip").count(), 4);
    let o = passes::optimize(&g, &PassOptions::default()).unwrap();
    let mut seen = Vec::new();
    for n in &o.nodes {
        match &n.op {
            Op::Conv2d(c) => {
                assert_eq!(c.clamp, Some(Clamp::RELU6), "{}", n.name);
                assert!(c.bn.is_some(), "{}: BN folded", n.name);
                seen.push("conv");
            }
            Op::BatchNorm { clamp, .. } => {
                assert_eq!(*clamp, Some(Clamp::new(-1.0, 1.0)), "{}", n.name);
                seen.push("bn");
            }
            Op::Add { clamp, .. } => {
                assert_eq!(*clamp, Some(Clamp::new(f32::NEG_INFINITY, 1.5)));
                seen.push("add");
            }
            Op::Clip(c) => {
                assert_eq!(*c, Clamp::new(-1.0, 0.0), "{}", n.name);
                seen.push("clip");
            }
            Op::Input => {}
            op => panic!("{}: unexpected {op:?}", n.name),
        }
    }
    seen.sort();
    assert_eq!(seen, ["add", "bn", "clip", "conv"], "{:#?}", o.nodes);
}

/// A zero `Pad` folds into the max pool after a ReLU (Keras'
/// `ZeroPadding2D` → `MaxPooling2D`: no pad node, the pool's padding grows
/// by the pad), and becomes a pad node where folding would change the
/// result (a max pool of values that may be negative; a `ceil_mode`
/// average pool). The values are checked against onnxruntime by
/// `onnx_extra_cases`. CPU only.
#[test]
fn onnx_zero_pad_folds_only_where_exact() {
    use resincept::graph::{Op, Padding};
    let load = |case: &str| {
        let dir = onnx_common::fixture_dir(&format!("extra/{case}/model.onnx"));
        resincept::onnx::load(&dir).unwrap().0
    };
    let kinds = |g: &resincept::graph::Graph| {
        g.nodes
            .iter()
            .map(|n| n.op.kind())
            .filter(|k| *k != "input")
            .collect::<Vec<_>>()
    };
    let g = load("pad_relu_into_maxpool");
    assert_eq!(kinds(&g), ["relu", "maxpool"]);
    let pool = g.nodes.iter().find_map(|n| match &n.op {
        Op::Pool(p) => Some(*p),
        _ => None,
    });
    assert_eq!(pool.unwrap().padding, Padding::same(1));
    assert_eq!(kinds(&load("pad_then_maxpool")), ["pad", "maxpool"]);
    assert_eq!(kinds(&load("pad_then_avgpool_ceil")), ["pad", "avgpool"]);
    assert_eq!(kinds(&load("pad_standalone_value")), ["pad"]);
}

/// Constants that are neither scalars nor per-channel become the IR's
/// constant-arithmetic node (one per constant, in the right operand
/// order), per-channel ones still fold, and Dropout's mask is an output
/// known at import (BOOL, all true), computed by no node. The values are
/// checked against onnxruntime by `onnx_extra_cases`. CPU only.
#[test]
fn onnx_full_constants_become_const_arith() {
    use resincept::graph::{Arith, Op};
    let ops = |case: &str| {
        let path = onnx_common::fixture_dir(&format!("extra/{case}/model.onnx"));
        let opts = resincept::onnx::ImportOptions::new();
        let (g, w, info) = resincept::onnx::load_with(&path, &opts).unwrap();
        let mut found = Vec::new();
        for n in &g.nodes {
            if let Op::ConstArith(k) = &n.op {
                let c = w.get(&format!("{}.constant", n.name)).unwrap();
                assert_eq!(c.shape, k.shape.to_vec(), "{case}: {}", n.name);
                found.push((k.arith, k.const_first, k.shape));
            }
        }
        (found, g, info)
    };
    let (k, ..) = ops("const_add_image");
    assert_eq!(k, [(Arith::Add, false, [1, 4, 6, 5])]);
    let (k, ..) = ops("const_mul_plane");
    assert_eq!(k, [(Arith::Mul, true, [1, 1, 6, 5])]);
    // The pending `+ 1` lands as a batchnorm before the division.
    let (k, g, _) = ops("const_div_by_activation");
    assert_eq!(k, [(Arith::Div, true, [1, 4, 1, 5])]);
    assert_eq!(
        g.nodes
            .iter()
            .filter(|n| n.op.kind() == "batchnorm")
            .count(),
        1
    );
    let (k, ..) = ops("const_sub_rank_lower");
    assert_eq!(
        k,
        [
            (Arith::Sub, false, [1, 1, 6, 5]),
            (Arith::Sub, true, [1, 1, 1, 5])
        ]
    );
    let (k, ..) = ops("const_sum");
    assert_eq!(
        k,
        [
            (Arith::Add, false, [2, 4, 6, 5]),
            (Arith::Add, false, [1, 1, 6, 1])
        ]
    );
    let (k, ..) = ops("gemm_matrix_bias");
    assert_eq!(k, [(Arith::Add, false, [3, 7, 1, 1])]);
    let (k, ..) = ops("gemm_column_bias");
    assert_eq!(k, [(Arith::Add, false, [3, 1, 1, 1])]);
    // Per-channel constants still fold (a batchnorm, then into the conv).
    let (k, ..) = ops("per_channel_broadcast");
    assert!(k.is_empty(), "{k:?}");
    // Dropout's mask: a constant output, no IR output, no node.
    let (k, g, info) = ops("dropout_mask");
    assert!(k.is_empty());
    assert_eq!(g.outputs.len(), 1);
    assert_eq!(info.outputs.len(), 2);
    let mask = info.outputs[1].constant.as_ref().expect("mask is constant");
    assert_eq!(mask.dtype(), resincept::onnx::proto::data_type::BOOL);
    assert_eq!(mask.dims(), [2, 4, 6, 5]);
    assert!(mask.as_f64().iter().all(|&v| v == 1.0));
    assert_eq!(info.runtime_outputs().count(), 1);
}
