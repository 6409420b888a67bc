//! Executors: run a [`crate::graph::Graph`] on the CPU reference kernels
//! ([`cpu`]) or compiled onto the GPU ([`gpu`]).

pub mod cpu;
pub mod gpu;

use crate::error::Result;
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
