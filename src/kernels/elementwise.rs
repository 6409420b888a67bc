//! Elementwise kernels: scaled add with an optional clamp, and ReLU or a
//! clamp alone.
//!
//! Math: `out[i] = alpha·a[i] + beta·b[i]`, then the clamp when one is set
//! (ReLU `[0, ∞)`, ReLU6 `[0, 6]`, ONNX `Clip [min, max]`; NaN stays NaN,
//! [`super::clamp`]). ReLU or a clamp alone is the same kernel with
//! `beta = 0` (then `b` is never read).
//! Layout-agnostic: operands are flat arrays of `len` f32, so the same kernel
//! serves NHWC GPU tensors and NCHW host tensors.
//!
//! Bindings (`shaders/elementwise.wgsl`, entry `add`): 0 params uniform
//! (len, clamp flags, alpha, beta, clamp bounds),
//! 1 `a` (read), 2 `b` (read), 3 `out` (read-write). One invocation per
//! two consecutive elements (one packed f16 word), 256 per workgroup, grid
//! folded into x and y.
//!
//! Tolerance: exact. A multiply and an add per element, in the same order on
//! both sides, round the same in f32; only a fused multiply-add on the GPU
//! can differ, by one rounding of `alpha·a`, so the relative part is 1e-6.
//! A clamp is exact (a comparison and a copy of a bound).
//! In f16 the operands are f16, the arithmetic f32, the result rounded
//! once ([`TOLERANCE_F16`]).

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::Clamp;
use crate::shaders::{Shader, Storage};

/// Declared comparison tolerance for elementwise kernels.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-7,
    rtol: 1e-6,
};

/// [`TOLERANCE`] for the f16 variants, against [`add_cpu_f16`]
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

/// Parameters of `out = alpha·a + beta·b` (optionally clamped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddParams {
    /// Number of elements.
    pub len: usize,
    /// Scale of the first operand.
    pub alpha: f32,
    /// Scale of the second operand (0: ReLU/scale of `a` alone; `b` unread).
    pub beta: f32,
    /// A clamp of the result (ReLU: [`crate::graph::Clamp::RELU`]).
    pub clamp: Option<crate::graph::Clamp>,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    clamp: u32,
    alpha: f32,
    beta: f32,
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
}

/// CPU reference: plain loop.
pub fn add_cpu(p: &AddParams, a: &[f32], b: &[f32], out: &mut [f32]) {
    for i in 0..p.len {
        let mut v = p.alpha * a[i];
        if p.beta != 0.0 {
            v += p.beta * b[i];
        }
        out[i] = super::clamp_opt(v, p.clamp);
    }
}

/// f16 CPU reference: [`add_cpu`] on the operands rounded to f16 as the
/// GPU stores them, the result rounded once.
pub fn add_cpu_f16(p: &AddParams, a: &[f32], b: &[f32], out: &mut [f32]) {
    let (a, b) = (super::rounded_f16(a), super::rounded_f16(b));
    add_cpu(p, &a, &b, out);
    super::round_f16_in_place(&mut out[..p.len]);
}

/// CPU reference for ReLU alone.
pub fn relu_cpu(x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = super::relu(*v);
    }
}

/// CPU reference for a clamp alone (ONNX `Clip`, ReLU6).
pub fn clip_cpu(c: Clamp, x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = super::clamp(*v, c);
    }
}

/// The entry point in `shaders/elementwise.wgsl`.
const ENTRY: &str = "add";

/// Workgroup memory the entry point declares: no workgroup memory.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

/// Builds the GPU dispatch for `out = alpha·a + beta·b` over tensors
/// stored as `storage` says. Pass `b = None` with `beta = 0` for a
/// scale/ReLU of `a` alone.
pub fn add_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &AddParams,
    a: impl Into<Span<'a>>,
    b: Option<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if let Some(c) = p.clamp {
        c.validate(label)?;
    }
    if b.is_none() && p.beta != 0.0 {
        return Err(Error::Invalid(format!(
            "{label}: add with beta = {} needs a second operand",
            p.beta
        )));
    }
    let len = super::index_u32(label, p.len)?;
    let (clamp, lo, hi) = super::clamp_uniform(p.clamp);
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Elementwise,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                len,
                clamp,
                alpha: p.alpha,
                beta: p.beta,
                lo,
                hi,
                _pad0: 0,
                _pad1: 0,
            },
            buffers: &[
                a.into(),
                b.unwrap_or(Span::whole(ctx.dummy_buffer())),
                out.into(),
            ],
            workgroups: grid_1d(p.len.div_ceil(2), 256),
            flops: 2 * p.len as u64,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// Builds the GPU dispatch for `out = max(x, 0)`.
pub fn relu_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    len: usize,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    clip_gpu(ctx, label, storage, Clamp::RELU, len, x, out)
}

/// Builds the GPU dispatch for `out = clamp(x, c.min, c.max)` (NaN stays
/// NaN). Errors when a bound is NaN or an infinite bound is on the wrong side.
pub fn clip_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    c: Clamp,
    len: usize,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    c.validate(label)?;
    add_gpu(
        ctx,
        label,
        storage,
        &AddParams {
            len,
            alpha: 1.0,
            beta: 0.0,
            clamp: Some(c),
        },
        x,
        None,
        out,
    )
}

/// The pipelines this module's launchers create: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::Elementwise,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
