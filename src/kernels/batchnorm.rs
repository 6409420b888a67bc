//! Batch normalisation in inference form, with optional ReLU.
//!
//! Math, per channel `c`:
//! `out = (x − mean[c]) · gamma[c] / sqrt(var[c] + eps) + beta[c]`, then
//! `max(·, 0)` when `relu`. Pre-activation ResNets need it standalone: the
//! BN before a block's first conv reads the block input, which the shortcut
//! also reads, so it cannot be folded into a conv.
//!
//! Layouts: CPU reference NCHW; GPU NHWC.

use super::{Dispatch, Tolerance};
use crate::context::Context;
use crate::error::{Error, Result};

/// Declared tolerance: a handful of roundings per element (sqrt, divide,
/// multiply-add); the GPU's `inverseSqrt` may differ by a few ulp.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-6,
    rtol: 1e-5,
};

/// Shape and options of a batchnorm launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormParams {
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Height H.
    pub h: usize,
    /// Width W.
    pub w: usize,
    /// Added to the variance (PyTorch default 1e-5; Inception nets use 1e-3).
    pub eps: f32,
    /// Apply ReLU after the affine transform.
    pub relu: bool,
}

/// The per-channel (scale, shift) a batchnorm amounts to:
/// `scale = gamma / sqrt(var + eps)`, `shift = beta − mean · scale`.
/// Computed in f64 and rounded once; used to fold BN into a conv.
pub fn fold(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut scale = Vec::with_capacity(gamma.len());
    let mut shift = Vec::with_capacity(gamma.len());
    for c in 0..gamma.len() {
        let s = gamma[c] as f64 / (var[c] as f64 + eps as f64).sqrt();
        scale.push(s as f32);
        shift.push((beta[c] as f64 - mean[c] as f64 * s) as f32);
    }
    (scale, shift)
}

/// CPU reference over NCHW `x`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_cpu(
    p: &BatchNormParams,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    out: &mut [f32],
) {
    let hw = p.h * p.w;
    for n in 0..p.batch {
        for c in 0..p.channels {
            let inv = 1.0 / (var[c] + p.eps).sqrt();
            for i in 0..hw {
                let idx = (n * p.channels + c) * hw + i;
                let v = (x[idx] - mean[c]) * inv * gamma[c] + beta[c];
                out[idx] = if p.relu { v.max(0.0) } else { v };
            }
        }
    }
}

/// Builds the GPU dispatch over NHWC `x`; the four parameter buffers hold C
/// f32 each.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_gpu(
    ctx: &Context,
    label: &str,
    p: &BatchNormParams,
    x: &wgpu::Buffer,
    gamma: &wgpu::Buffer,
    beta: &wgpu::Buffer,
    mean: &wgpu::Buffer,
    var: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let _ = (ctx, p, x, gamma, beta, mean, var, out);
    Err(Error::Invalid(format!("{label}: batchnorm GPU kernel not built yet")))
}
