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
