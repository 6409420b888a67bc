//! Batch normalisation in inference form, with an optional clamp (ReLU,
//! ReLU6, ONNX `Clip`).
//!
//! Math, per channel `c`:
//! `out = (x − mean[c]) · gamma[c] / sqrt(var[c] + eps) + beta[c]`, then
//! the clamp when one is set ([`super::clamp`]). Pre-activation ResNets need it standalone: the
//! BN before a block's first conv reads the block input, which the shortcut
//! also reads, so it cannot be folded into a conv.
//!
//! Layouts: CPU reference NCHW; GPU NHWC.
//!
//! Bindings (`shaders/batchnorm.wgsl`, entry `batchnorm`): 0 params uniform
//! (element count, C, clamp flags, eps, clamp bounds), 1 `x` (read, NHWC), 2 `gamma`,
//! 3 `beta`, 4 `mean`, 5 `var` (read, C each), 6 `out` (read-write, NHWC).
//! One invocation per two consecutive elements (one packed f16 word), 256
//! per workgroup, channels fastest; grid folded into x and y. In f16 the
//! four vectors stay f32 (a fraction of a percent of the bytes) and x is
//! converted on load: the arithmetic is f32, the result rounded once. The GPU computes `1/sqrt(var + eps)` per element in
//! the reference's order rather than a pre-folded scale/shift, so the raw
//! PyTorch buffers can be bound as they are.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::shaders::{Shader, Storage};

/// Declared tolerance: the GPU does the reference's operations in the same
/// order (`1/sqrt(var + eps)`, subtract, two multiplies, add), but Vulkan
/// lets `sqrt` and the divide be off by a few ulp and the last multiply-add
/// may be fused. The result is then within a few ulp of the largest term:
/// `rtol` (≈ 80 ulp) covers results of any size, `atol` results that cancel
/// to near zero from terms of order one.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-6,
    rtol: 1e-5,
};

/// [`TOLERANCE`] for the f16 variants, against [`batchnorm_cpu_f16`]
/// ([`Tolerance::rounded_to_f16`] explains the derivation).
pub const TOLERANCE_F16: Tolerance = TOLERANCE.rounded_to_f16();

/// The declared tolerance for `storage`.
pub fn tolerance(storage: Storage) -> Tolerance {
    if storage.is_f16() {
        TOLERANCE_F16
    } else {
        TOLERANCE
    }
}

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
    /// A clamp after the affine transform (ReLU: [`crate::graph::Clamp::RELU`]).
    pub clamp: Option<crate::graph::Clamp>,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    channels: u32,
    clamp: u32,
    eps: f32,
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
}

/// The entry point in `shaders/batchnorm.wgsl`.
const ENTRY: &str = "batchnorm";

/// Workgroup memory the entry point declares: no workgroup memory.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
];

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
                out[idx] = super::clamp_opt(v, p.clamp);
            }
        }
    }
}

/// f16 CPU reference: [`batchnorm_cpu`] on `x` rounded to f16 as the GPU
/// stores it (the four vectors stay f32), the result rounded once.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_cpu_f16(
    p: &BatchNormParams,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    out: &mut [f32],
) {
    batchnorm_cpu(p, &super::rounded_f16(x), gamma, beta, mean, var, out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch over NHWC `x` stored as `storage` says; the
/// four parameter buffers hold C f32 each.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &BatchNormParams,
    x: impl Into<Span<'a>>,
    gamma: impl Into<Span<'a>>,
    beta: impl Into<Span<'a>>,
    mean: impl Into<Span<'a>>,
    var: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let len = p.batch * p.h * p.w * p.channels;
    if p.channels == 0 {
        return Err(Error::Graph {
            node: label.into(),
            message: "batchnorm over zero channels".into(),
        });
    }
    if let Some(c) = p.clamp {
        c.validate(label)?;
    }
    let len32 = super::index_u32(label, len)?;
    let (clamp, lo, hi) = super::clamp_uniform(p.clamp);
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::BatchNorm,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                len: len32,
                channels: p.channels as u32,
                clamp,
                eps: p.eps,
                lo,
                hi,
                _pad0: 0,
                _pad1: 0,
            },
            buffers: &[
                x.into(),
                gamma.into(),
                beta.into(),
                mean.into(),
                var.into(),
                out.into(),
            ],
            workgroups: grid_1d(len.div_ceil(2), 256),
            // A subtract, two multiplies and an add per element (the
            // per-channel reciprocal square root is not counted).
            flops: 4 * len as u64,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::BatchNorm,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
