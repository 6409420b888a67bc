//! Executors: run a [`crate::graph::Graph`] on the CPU reference kernels
//! ([`cpu`]) or compiled onto the GPU ([`gpu`]), in either [`Precision`].

pub mod cpu;
pub mod gpu;

use crate::error::{Error, Result};

/// The precision of the tensors a graph keeps between its kernels.
///
/// - `F32`: activations and weights are f32.
/// - `F16`: activations and conv and linear weights are stored as f16
///   (halving their bytes); every reduction, epilogue and per-channel
///   vector stays f32, and each kernel rounds its result once, when it
///   stores it. The graph's input and outputs stay f32 at the API. On the
///   GPU f16 is stored natively or packed in pairs ([`gpu::F16Storage`]);
///   the CPU executor ([`cpu::run_with`]) computes what either does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 everywhere.
    #[default]
    F32,
    /// f16 storage, f32 arithmetic.
    F16,
}

impl Precision {
    /// Its name on the command line and in reports: `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    /// Parses `f32` or `f16` (what `--precision` takes); the error names
    /// the value and the choices.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            other => Err(Error::Invalid(format!(
                "precision `{other}` is not one of: f32, f16"
            ))),
        }
    }
}
use crate::graph::Conv2d;
use crate::weights::Weights;

/// The most f16 roundings on any path from the input to an output of `g`,
/// the graph as compiled (after the passes, e.g.
/// [`gpu::CompiledGraph::graph`]): two per conv, linear and constant-arithmetic node (its
/// weights and its result, epilogue included), one for every other node
/// that computes its result (batchnorm, add, ReLU, average pools, softmax),
/// none for the exact ones (max pool, concat, flatten, pad, transpose, the
/// input).
pub fn f16_rounding_depth(g: &crate::graph::Graph) -> usize {
    use crate::graph::{Op, PoolKind};
    let mut depth = vec![0usize; g.shapes.len()];
    for n in &g.nodes {
        let own = match &n.op {
            Op::Input | Op::Concat | Op::Flatten | Op::Pad(_) | Op::Transpose { .. } => 0,
            Op::Pool(p) if p.kind == PoolKind::Max => 0,
            // The weights (a constant) and the result.
            Op::Conv2d(_) | Op::Linear { .. } | Op::ConstArith(_) => 2,
            _ => 1,
        };
        let deepest_input = n.inputs.iter().map(|v| depth[v.0]).max().unwrap_or(0);
        depth[n.output.0] = deepest_input + own;
    }
    g.outputs.iter().map(|v| depth[v.0]).max().unwrap_or(0)
}

/// The bar of an f16 run against an exact (float64, or PyTorch f32)
/// output: `|f16 − exact| ≤ f16_rel_tol(D) · max|exact|` for a graph of
/// [`f16_rounding_depth`] D; `2⁻¹⁰ · (1 + √(3·D))`.
///
/// Why. In f16 every stored result and every conv/linear weight is
/// rounded once, and WGSL lets a GPU round to either neighbour, so each
/// rounding is a relative error within ±2⁻¹⁰, at worst uniform (standard
/// deviation 2⁻¹⁰/√3). The rest is f32 arithmetic, five orders smaller.
/// To first order a relative error in one layer's values moves the output
/// by the same relative amount (batchnorm keeps these nets' layer gains
/// near 1), and the roundings of different elements and layers are
/// independent, so along a path of D roundings they add in quadrature to
/// a standard deviation of √D·2⁻¹⁰/√3 of the output's scale. Three
/// standard deviations plus the output's own final rounding (2⁻¹⁰) give
/// the bar: 1.2e-2 for ResNet-18 (D = 43), 1.9e-2 for ResNet-50 (109),
/// 3.3e-2 for Inception-ResNet-v2 (353). The zoo's golden tests hold
/// every model and block fixture to it (`docs/BENCHMARKS.md`, f16
/// section, has the measured errors, far below it), and
/// `resincept check --precision f16 --expect` holds both executors to it.
pub fn f16_rel_tol(depth: usize) -> f32 {
    (1.0 + (3.0 * depth as f32).sqrt()) / 1024.0
}

/// The per-output-channel `(scale, shift)` a conv node's epilogue applies to
/// its raw accumulator: conv bias, folded batchnorm and branch scale
/// combined. Both executors use it, so a fused graph means the same on both.
///
/// `v = out_scale · ((acc + bias − mean) · γ/√(var+eps) + β)`, i.e.
/// `scale = out_scale · γ/√(var+eps)` and
/// `shift = out_scale · ((bias − mean) · γ/√(var+eps) + β)`, computed in f64.
pub fn conv_epilogue(name: &str, conv: &Conv2d, weights: &Weights) -> Result<(Vec<f32>, Vec<f32>)> {
    let co = conv.out_channels;
    let bias: Vec<f64> = if conv.bias {
        weights
            .get(&format!("{name}.bias"))?
            .data
            .iter()
            .map(|&v| v as f64)
            .collect()
    } else {
        vec![0.0; co]
    };
    let s = conv.out_scale as f64;
    let mut scale = vec![0f32; co];
    let mut shift = vec![0f32; co];
    match &conv.bn {
        Some((bn, eps)) => {
            let g = &weights.get(&format!("{bn}.weight"))?.data;
            let b = &weights.get(&format!("{bn}.bias"))?.data;
            let m = &weights.get(&format!("{bn}.running_mean"))?.data;
            let v = &weights.get(&format!("{bn}.running_var"))?.data;
            for o in 0..co {
                let k = g[o] as f64 / (v[o] as f64 + *eps as f64).sqrt();
                scale[o] = (s * k) as f32;
                shift[o] = (s * ((bias[o] - m[o] as f64) * k + b[o] as f64)) as f32;
            }
        }
        None => {
            for o in 0..co {
                scale[o] = s as f32;
                shift[o] = (s * bias[o]) as f32;
            }
        }
    }
    Ok((scale, shift))
}

/// Checks that `weights` holds every `(key, shape)` of `specs` with exactly
/// that shape. Extra keys are allowed (a store may serve several graphs, or
/// a graph before and after batchnorm folding, which reads the same keys).
///
/// The error is [`crate::Error::Weights`] naming the first bad key, with the
/// expected and the stored shape.
pub fn check_params(weights: &Weights, specs: &[(String, Vec<usize>)]) -> Result<()> {
    for (key, shape) in specs {
        if crate::weights::is_ignored_key(key) {
            continue;
        }
        if !weights.contains(key) {
            return Err(crate::Error::Weights {
                key: key.clone(),
                message: format!("missing (expected shape {shape:?})"),
            });
        }
        let t = weights.get(key)?;
        if t.shape != *shape {
            return Err(crate::Error::Weights {
                key: key.clone(),
                message: format!("wrong shape: expected {shape:?}, found {:?}", t.shape),
            });
        }
    }
    Ok(())
}

/// The graph's parameter specs ([`crate::graph::Graph::param_specs`]) for
/// the value shapes `shapes` of one run rather than the nominal ones: they
/// differ only where a `Flatten` of `H·W > 1` feeds a linear layer, whose
/// weight then depends on the input size.
pub fn param_specs_for(
    graph: &crate::graph::Graph,
    shapes: &[[usize; 4]],
) -> Vec<(String, Vec<usize>)> {
    let mut g = graph.clone();
    g.shapes = shapes.to_vec();
    g.param_specs()
}
