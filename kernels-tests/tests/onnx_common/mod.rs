//! Shared harness of the ONNX tests: fixture folders in ONNX's upstream
//! layout (`model.onnx`, `test_data_set_0/input_N.pb`, `output_N.pb`),
//! their manifests, and running one case on the CPU and GPU executors.

#![allow(dead_code)]

use kernels_tests::gpu;
use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::kernels::Tolerance;
use resincept::onnx::{self, tensor::Data, ImportOptions, OnnxTensor};
use resincept::Tensor;
use std::path::{Path, PathBuf};

/// The tolerance for ONNX's node tests and the extra cases.
pub const NODE_TOL: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-3,
};

/// `kernels-tests/fixtures/onnx/{sub}`.
pub fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/onnx")
        .join(sub)
}

/// One manifest line: case, mode (`run`, `fold`, `skip`), reason.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The case's folder name.
    pub name: String,
    /// `run`, `fold` or `skip`.
    pub mode: String,
    /// Why (skips; fold notes).
    pub reason: String,
}

/// Reads `{dir}/manifest.tsv` (panics when missing or malformed: a missing
/// list must not pass).
pub fn manifest(dir: &Path) -> Vec<Entry> {
    let path = dir.join("manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f.len() == 3, "{}: bad line {line:?}", path.display());
        assert!(
            matches!(f[1], "run" | "fold" | "skip"),
            "{}: bad mode in {line:?}",
            path.display()
        );
        assert!(
            f[1] != "skip" || !f[2].is_empty(),
            "{}: skip without a reason: {line:?}",
            path.display()
        );
        out.push(Entry {
            name: f[0].into(),
            mode: f[1].into(),
            reason: f[2].into(),
        });
    }
    assert!(!out.is_empty(), "{}: no cases", path.display());
    out
}

/// The case folders of `dir` (sub-folders holding a `model.onnx`).
pub fn case_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The numbered `{prefix}_N.pb` tensors of a data set folder.
pub fn read_pbs(dir: &Path, prefix: &str) -> Result<Vec<OnnxTensor>, String> {
    let mut out = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.pb"));
        if !p.is_file() {
            break;
        }
        out.push(onnx::read_tensor_file(&p).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Compares `got` with `want` (dims must match; integers exactly, floats
/// within `tol`; NaN never matches); `Err` lists the first mismatches.
pub fn compare(
    what: &str,
    got: &[f32],
    got_dims: &[usize],
    want: &OnnxTensor,
    tol: Tolerance,
) -> Result<(), String> {
    let wd: Vec<usize> = want.dims().to_vec();
    let same_dims = got_dims == wd.as_slice() || (wd.is_empty() && got_dims == [1]);
    if !same_dims {
        return Err(format!("{what}: dims {got_dims:?}, expected {wd:?}"));
    }
    let w: Vec<f32> = match want.data() {
        Data::F(v) => v.clone(),
        Data::I(v) => v.iter().map(|&x| x as f32).collect(),
    };
    let mut bad = Vec::new();
    let mut count = 0;
    for (i, (&g, &x)) in got.iter().zip(&w).enumerate() {
        if !tol.close(g, x) {
            count += 1;
            if bad.len() < 5 {
                bad.push(format!("[{i}] got {g:e} want {x:e}"));
            }
        }
    }
    if count > 0 {
        return Err(format!(
            "{what}: {count} of {} wrong: {}",
            w.len(),
            bad.join(", ")
        ));
    }
    Ok(())
}

/// Compares folded constants with ONNX's outputs: dims, element kind,
/// values (integers exactly).
pub fn compare_const(what: &str, got: &OnnxTensor, want: &OnnxTensor) -> Result<(), String> {
    match (got.data(), want.data()) {
        (Data::I(g), Data::I(w)) => {
            if got.dims() != want.dims() || g != w {
                return Err(format!(
                    "{what}: got {:?} {g:?}, want {:?} {w:?}",
                    got.dims(),
                    want.dims()
                ));
            }
            Ok(())
        }
        (Data::F(g), Data::F(_)) => compare(what, g, got.dims(), want, NODE_TOL),
        _ => Err(format!(
            "{what}: element type {} vs expected {}",
            got.dtype(),
            want.dtype()
        )),
    }
}

/// What running one case showed.
pub struct Ran {
    /// Compiled dispatch count on the GPU (None without an adapter).
    pub dispatches: Option<usize>,
}

/// Imports the case in `dir` (input 0 at run time, shape from
/// `input_0.pb`, other inputs bound to their `.pb` constants) and runs it
/// on the CPU executor and, when there is an adapter, on the GPU with
/// NaN-poisoned buffers; both are compared with `output_N.pb`.
pub fn run_case(dir: &Path, tol: Tolerance) -> Result<Ran, String> {
    let data = dir.join("test_data_set_0");
    let inputs = read_pbs(&data, "input")?;
    let outputs = read_pbs(&data, "output")?;
    let model = dir.join("model.onnx");
    let names = onnx::graph_inputs(&model).map_err(|e| e.to_string())?;
    let first = inputs.first().ok_or("no input_0.pb")?;
    let mut opts = ImportOptions::new().input_shape(first.dims());
    for (io, t) in names.iter().zip(&inputs).skip(1) {
        opts = opts.bind(&io.name, t.clone());
    }
    let (graph, weights, info) =
        onnx::load_with(&model, &opts).map_err(|e| format!("import: {e}"))?;
    let x = info.onnx_input_to_ir(first).map_err(|e| e.to_string())?;
    // Every output of the model: the IR graph's, and those known at
    // import (Dropout's mask), each in its own element type.
    let check = |which: &str, ys: &[Tensor]| -> Result<(), String> {
        let got = info
            .outputs_from_ir(ys)
            .map_err(|e| format!("{which}: {e}"))?;
        if got.len() != outputs.len() {
            return Err(format!(
                "{which}: {} outputs, expected {}",
                got.len(),
                outputs.len()
            ));
        }
        for (i, (y, want)) in got.iter().zip(&outputs).enumerate() {
            let what = format!("{which} output {i}");
            if y.dtype() != want.dtype() {
                return Err(format!(
                    "{what}: element type {}, expected {}",
                    y.dtype(),
                    want.dtype()
                ));
            }
            match y.data() {
                Data::F(v) => compare(&what, v, y.dims(), want, tol)?,
                Data::I(_) => compare_const(&what, y, want)?,
            }
        }
        Ok(())
    };
    let cpu = resincept::exec::cpu::run(&graph, &weights, &x).map_err(|e| format!("cpu: {e}"))?;
    check("cpu", &cpu)?;
    let mut dispatches = None;
    if let Some(ctx) = gpu() {
        let [n, _, h, w] = x.nchw().map_err(|e| e.to_string())?;
        let opts = CompileOptions::new(n, h, w).poisoned();
        let model = CompiledGraph::compile(ctx, &graph, &weights, &opts)
            .map_err(|e| format!("gpu compile: {e}"))?;
        let ys = model.run(&x).map_err(|e| format!("gpu: {e}"))?;
        check("gpu", &ys)?;
        dispatches = Some(model.dispatch_labels().len());
    }
    Ok(Ran { dispatches })
}

/// Evaluates the case in `dir` with every input bound (the constant
/// folder) and compares with `output_N.pb`.
pub fn fold_case(dir: &Path) -> Result<(), String> {
    let data = dir.join("test_data_set_0");
    let inputs = read_pbs(&data, "input")?;
    let outputs = read_pbs(&data, "output")?;
    let model = dir.join("model.onnx");
    let names = onnx::graph_inputs(&model).map_err(|e| e.to_string())?;
    let mut opts = ImportOptions::new();
    for (io, t) in names.iter().zip(&inputs) {
        opts = opts.bind(&io.name, t.clone());
    }
    let got = onnx::evaluate_with(&model, &opts).map_err(|e| format!("fold: {e}"))?;
    if got.len() != outputs.len() {
        return Err(format!("{} outputs, expected {}", got.len(), outputs.len()));
    }
    for (i, (g, w)) in got.iter().zip(&outputs).enumerate() {
        compare_const(&format!("output {i}"), g, w)?;
    }
    Ok(())
}

/// Runs every case of a manifest folder: `run` and `fold` cases must pass;
/// a `skip` case present on disk must *not* pass (else the list is stale);
/// every case folder must be listed. Panics with every failure at once.
pub fn run_manifest(sub: &str) {
    let dir = fixture_dir(sub);
    let entries = manifest(&dir);
    let dirs = case_dirs(&dir);
    let mut failures = Vec::new();
    for d in &dirs {
        if !entries.iter().any(|e| &e.name == d) {
            failures.push(format!(
                "{d}: folder not in manifest.tsv (neither run nor listed)"
            ));
        }
    }
    let (mut ran, mut folded, mut skipped, mut on_gpu) = (0, 0, 0, 0);
    for e in &entries {
        let path = dir.join(&e.name);
        let present = path.join("model.onnx").is_file();
        match e.mode.as_str() {
            "run" | "fold" if !present => failures.push(format!("{}: listed but missing", e.name)),
            "run" => match run_case(&path, NODE_TOL) {
                Ok(r) => {
                    ran += 1;
                    on_gpu += usize::from(r.dispatches.is_some());
                }
                Err(m) => failures.push(format!("{}: {m}", e.name)),
            },
            "fold" => {
                match fold_case(&path) {
                    Ok(()) => folded += 1,
                    Err(m) => failures.push(format!("{}: {m}", e.name)),
                }
                if run_case(&path, NODE_TOL).is_ok() {
                    failures.push(format!(
                        "{}: listed as fold-only but also runs and passes on the executors: make it `run`",
                        e.name
                    ));
                }
            }
            _ => {
                skipped += 1;
                if present && run_case(&path, NODE_TOL).is_ok() {
                    failures.push(format!(
                        "{}: listed as skipped ({}) but runs and passes: update the manifest",
                        e.name, e.reason
                    ));
                }
            }
        }
    }
    eprintln!(
        "onnx {sub}: {ran} run on the CPU executor ({on_gpu} also on the GPU), {folded} folded at import, {skipped} skipped"
    );
    assert!(
        failures.is_empty(),
        "{} of {} onnx {sub} cases failed:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}
