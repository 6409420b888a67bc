//! Softmax over the class dimension of (N, K) logits.
//!
//! Math: `out[n, k] = exp(x[n, k] − m) / Σ_j exp(x[n, j] − m)` with
//! `m = max_j x[n, j]`, the numerically stable form.

use super::{Dispatch, Tolerance};
use crate::context::Context;
use crate::error::{Error, Result};

/// Declared tolerance: `exp` on the GPU may differ by a few ulp.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-7,
    rtol: 1e-5,
};

/// Shape of a softmax launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Rows N.
    pub batch: usize,
    /// Classes K per row.
    pub classes: usize,
}

/// CPU reference.
pub fn softmax_cpu(p: &SoftmaxParams, x: &[f32], out: &mut [f32]) {
    for n in 0..p.batch {
        let row = &x[n * p.classes..][..p.classes];
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0f32;
        for k in 0..p.classes {
            let e = (row[k] - m).exp();
            out[n * p.classes + k] = e;
            sum += e;
        }
        for k in 0..p.classes {
            out[n * p.classes + k] /= sum;
        }
    }
}

/// Builds the GPU dispatch over (N, K) rows.
pub fn softmax_gpu(
    ctx: &Context,
    label: &str,
    p: &SoftmaxParams,
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let _ = (ctx, p, x, out);
    Err(Error::Invalid(format!("{label}: softmax GPU kernel not built yet")))
}
