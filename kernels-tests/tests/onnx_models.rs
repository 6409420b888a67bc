//! Whole networks exported by torch.onnx.export (legacy and dynamo
//! exporters) from randomly initialised torchvision / timm models with
//! calibrated batchnorm statistics, imported and run on both executors
//! against onnxruntime's outputs; and the dispatch counts of imported
//! networks against the zoo's own graphs.
//!
//! The committed models are slim variants (channels / 16, same topology,
//! same exporters' graphs); `scripts/make_onnx_fixtures.py --full DIR`
//! writes the full-width ones, which this test also runs when
//! `RESINCEPT_ONNX_FULL=DIR` is set.

mod onnx_common;

use kernels_tests::gpu;
use onnx_common::{fixture_dir, read_pbs};
use resincept::exec::gpu::{CompileOptions, CompiledGraph, SplitK};
use resincept::onnx::{self, ImportOptions};
use resincept::{models, Tensor};
use std::path::{Path, PathBuf};

/// The models expected among the fixtures (both exporters each).
const MODELS: &[&str] = &[
    "resnet50",
    "resnext50_32x4d",
    "inception_v3",
    "inception_v4",
    "inception_resnet_v2",
    "resnetv2_50",
];

fn model_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = onnx_common::case_dirs(&fixture_dir("models"))
        .into_iter()
        .map(|d| fixture_dir("models").join(d))
        .collect();
    if let Ok(full) = std::env::var("RESINCEPT_ONNX_FULL") {
        let full = PathBuf::from(full);
        dirs.extend(
            onnx_common::case_dirs(&full)
                .into_iter()
                .map(|d| full.join(d)),
        );
    }
    dirs
}

/// The five largest logits' indices, largest first.
fn top5(v: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(5);
    idx
}

/// Within 1e-3·max|logits| of onnxruntime, with the same top-5 set.
fn check(which: &str, got: &Tensor, want: &[f32]) -> Result<(), String> {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let atol = 1e-3 * scale;
    let mut worst = 0f32;
    for (&g, &w) in got.data.iter().zip(want) {
        let d = (g - w).abs();
        if d.is_nan() || g.is_nan() {
            return Err(format!("{which}: NaN"));
        }
        worst = worst.max(d);
    }
    if got.data.len() != want.len() || worst > atol {
        return Err(format!(
            "{which}: max |diff| {worst:e} > 1e-3·max|logits| = {atol:e} ({} vs {} values)",
            got.data.len(),
            want.len()
        ));
    }
    // Per image: the same five classes (their order may swap within the tolerance).
    let k = *got.shape.last().unwrap();
    for (i, (g, w)) in got.data.chunks(k).zip(want.chunks(k)).enumerate() {
        let (mut a, mut b) = (top5(g), top5(w));
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            return Err(format!(
                "{which}: image {i} top-5 {a:?} vs onnxruntime's {b:?}"
            ));
        }
    }
    eprintln!("    {which}: max |diff| {worst:.2e} (limit {atol:.2e})");
    Ok(())
}

fn run_model(dir: &Path) -> Result<Option<usize>, String> {
    let data = dir.join("test_data_set_0");
    let x = read_pbs(&data, "input")?;
    let y = read_pbs(&data, "output")?;
    let opts = ImportOptions::new().input_shape(x[0].dims());
    let (graph, weights, info) =
        onnx::load_with(dir.join("model.onnx"), &opts).map_err(|e| format!("import: {e}"))?;
    let xin = info.onnx_input_to_ir(&x[0]).map_err(|e| e.to_string())?;
    let want = y[0].as_f32("output").map_err(|e| e.to_string())?;
    let cpu = resincept::exec::cpu::run(&graph, &weights, &xin).map_err(|e| format!("cpu: {e}"))?;
    let cpu = info.output_from_ir(0, &cpu[0]).map_err(|e| e.to_string())?;
    check("cpu", &cpu, want)?;
    let Some(ctx) = gpu() else { return Ok(None) };
    let [n, _, h, w] = xin.nchw().map_err(|e| e.to_string())?;
    let opts = CompileOptions::new(n, h, w)
        .poisoned()
        .with_split_k(SplitK::Off);
    let m = CompiledGraph::compile(ctx, &graph, &weights, &opts)
        .map_err(|e| format!("gpu compile: {e}"))?;
    let g = m.run(&xin).map_err(|e| format!("gpu: {e}"))?;
    let g = info.output_from_ir(0, &g[0]).map_err(|e| e.to_string())?;
    check("gpu", &g, want)?;
    Ok(Some(m.dispatch_labels().len()))
}

/// Every exported model matches onnxruntime on both executors, and both
/// exporters of each of the six models are present.
#[test]
fn onnx_models_match_onnxruntime() {
    let dirs = model_dirs();
    let mut failures = Vec::new();
    for m in MODELS {
        for e in ["legacy", "dynamo"] {
            let tag = format!("{m}_slim_{e}");
            if !dirs.iter().any(|d| d.ends_with(&tag)) {
                failures.push(format!("{tag}: fixture missing"));
            }
        }
    }
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy();
        eprintln!("  {name}");
        if let Err(e) = run_model(d) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The dispatch count of a compiled graph (split-K off, so the count is
/// the graph's, not the device's).
fn dispatches(
    graph: &resincept::graph::Graph,
    weights: &resincept::weights::Weights,
    shape: [usize; 4],
) -> usize {
    let ctx = gpu().expect("checked");
    let opts = CompileOptions::new(shape[0], shape[2], shape[3]).with_split_k(SplitK::Off);
    CompiledGraph::compile(ctx, graph, weights, &opts)
        .unwrap()
        .dispatch_labels()
        .len()
}

/// Imported ResNet-50, ResNeXt-50, Inception-v3, Inception-v4,
/// Inception-ResNet-v2 and ResNetV2-50 (both exporters) compile to the
/// zoo's dispatch count at the same input size: the import lands in the
/// same fused graph (batchnorms folded, ReLUs and residual adds in conv
/// epilogues, Inception-ResNet's scaled adds too, zero-copy concats).
#[test]
fn onnx_dispatch_counts_match_the_zoo() {
    if gpu().is_none() {
        return;
    }
    let mut failures = Vec::new();
    for m in MODELS {
        for e in ["legacy", "dynamo"] {
            let dir = fixture_dir("models").join(format!("{m}_slim_{e}"));
            let x = read_pbs(&dir.join("test_data_set_0"), "input").unwrap();
            let opts = ImportOptions::new().input_shape(x[0].dims());
            let (g, w, _) = onnx::load_with(dir.join("model.onnx"), &opts).unwrap();
            let shape = g.shapes[g.input.unwrap().0];
            let imported = dispatches(&g, &w, shape);
            let zoo =
                models::build_with(m, &models::Options::new(1, shape[2], shape[3]).classes(100))
                    .unwrap();
            let zw = resincept::weights::Weights::from_synthetic(1, &zoo.param_specs());
            let expected = dispatches(&zoo, &zw, shape);
            eprintln!("  {m} {e}: imported {imported} dispatches, zoo {expected}");
            if imported != expected {
                failures.push(format!(
                    "{m} ({e} exporter): {imported} dispatches, the zoo's {m} has {expected}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
