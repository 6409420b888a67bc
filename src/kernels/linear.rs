//! Fully connected layer with optional bias.
//!
//! Math: `out[n, o] = Σ_i x[n, i] · w[o, i] + bias[o]` (PyTorch's
//! `nn.Linear`, weight stored (out_features, in_features)).
//!
//! Layout: rows of features; the same in NCHW and NHWC since the input is
//! (N, F, 1, 1) after global pooling and flatten.

use super::{Dispatch, Tolerance};
use crate::context::Context;
use crate::error::{Error, Result};

/// Declared tolerance: a dot product of up to a few thousand terms in
/// another summation order.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// Shape of a linear launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearParams {
    /// Batch size N.
    pub batch: usize,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

/// CPU reference. `bias` has `out_features` entries when given.
pub fn linear_cpu(p: &LinearParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    for n in 0..p.batch {
        for o in 0..p.out_features {
            let mut acc = 0.0f32;
            for i in 0..p.in_features {
                acc += x[n * p.in_features + i] * w[o * p.in_features + i];
            }
            out[n * p.out_features + o] = acc + bias.map_or(0.0, |b| b[o]);
        }
    }
}

/// Repacks the PyTorch (out, in) weight for the GPU kernel (once, at load).
pub fn pack_weights(p: &LinearParams, w: &[f32]) -> Vec<f32> {
    let _ = p;
    w.to_vec()
}

/// Builds the GPU dispatch; `w` holds [`pack_weights`]' output.
pub fn linear_gpu(
    ctx: &Context,
    label: &str,
    p: &LinearParams,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let _ = (ctx, p, x, w, bias, out);
    Err(Error::Invalid(format!("{label}: linear GPU kernel not built yet")))
}
