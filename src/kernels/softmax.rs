//! Softmax over one axis of a tensor: the class dimension of (N, K)
//! logits, the channels of a (N, C, H, W) score map, any of the four.
//!
//! Math: `out[o, k, i] = exp(x[o, k, i] − m) / Σ_j exp(x[o, j, i] − m)` with
//! `m = max_j x[o, j, i]`, the numerically stable form, where the tensor is
//! seen as (outer, K, inner): K the softmax axis, outer and inner the
//! products of the dims before and after it.
//!
//! Layouts: the CPU reference sees NCHW and an NCHW axis; the GPU sees the
//! NHWC storage, where the same axis has its own (outer, K, inner)
//! ([`SoftmaxParams::nhwc`]): a softmax over C is over contiguous rows
//! (inner 1), over H or W or N rows of stride `inner`.
//!
//! Bindings (`shaders/softmax.wgsl`, entry `softmax`): 0 params uniform
//! (rows = outer·inner, K, inner), 1 `x` (read), 2 `out` (read-write).
//! One 256-invocation workgroup per row (rows folded into the grid's x and
//! y): a strided pass and a tree reduction in workgroup memory for the
//! maximum, another for the sum of `exp(x − m)`, then a pass writing
//! `exp(x − m)` (recomputed, not read back) divided by the sum, so that in
//! f16 the result is rounded once. In f16 the logits are f16, everything
//! else f32.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::shaders::{Shader, Storage};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    rows: u32,
    classes: u32,
    inner: u32,
    pad1: u32,
}

/// The entry point in `shaders/softmax.wgsl`.
const ENTRY: &str = "softmax";

/// Workgroup memory the entry point declares: the 256-lane reduction.
const WORKGROUP_BYTES: u32 = 1024;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// Declared tolerance: `exp` on the GPU may differ by a few ulp (Vulkan
/// allows `3 + 2·|x|` ulp, which for the probabilities above `atol` — those
/// with `x − m > −17` — stays under 40 ulp ≈ 5e-6 relative), and the row sum
/// is a tree rather than the reference's running sum, which differ by at
/// most a few ulp per doubling of K for positive terms.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-7,
    rtol: 1e-5,
};

/// [`TOLERANCE`] for the f16 variants, against [`softmax_cpu_f16`]
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

/// Shape of a softmax launch: the tensor as (outer, K, inner) in the
/// order it is stored, the softmax over K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Product of the dims before the softmax axis (N for (N, K) rows).
    pub batch: usize,
    /// Classes K per row: the softmax axis' length.
    pub classes: usize,
    /// Product of the dims after the softmax axis (1 for (N, K) rows).
    pub inner: usize,
}

impl SoftmaxParams {
    /// Contiguous (N, K) rows.
    pub fn rows(batch: usize, classes: usize) -> Self {
        Self {
            batch,
            classes,
            inner: 1,
        }
    }

    /// NCHW axis `axis` (0..=3) of an NCHW tensor of `shape`, as the CPU
    /// reference sees it.
    pub fn nchw(shape: [usize; 4], axis: usize) -> Self {
        Self {
            batch: shape[..axis].iter().product(),
            classes: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        }
    }

    /// NCHW axis `axis` of a tensor of NCHW `shape` stored NHWC, as the
    /// GPU kernel sees it.
    pub fn nhwc(shape: [usize; 4], axis: usize) -> Self {
        let [n, c, h, w] = shape;
        // The axis' position in the storage order (N, H, W, C).
        let stored = [n, h, w, c];
        let pos = [0, 3, 1, 2][axis];
        Self::nchw(stored, pos)
    }

    /// Elements: outer · K · inner.
    pub fn len(&self) -> usize {
        self.batch * self.classes * self.inner
    }

    /// True when there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// CPU reference: per (outer, inner) row, the maximum, the running sum of
/// `exp(x − m)`, then each exponential divided by it.
pub fn softmax_cpu(p: &SoftmaxParams, x: &[f32], out: &mut [f32]) {
    let (k_len, inner) = (p.classes, p.inner);
    for o in 0..p.batch {
        for i in 0..inner {
            let at = |k: usize| (o * k_len + k) * inner + i;
            let m = (0..k_len).fold(f32::NEG_INFINITY, |a, k| a.max(x[at(k)]));
            let mut sum = 0.0f32;
            for k in 0..k_len {
                let e = (x[at(k)] - m).exp();
                out[at(k)] = e;
                sum += e;
            }
            for k in 0..k_len {
                out[at(k)] /= sum;
            }
        }
    }
}

/// f16 CPU reference: [`softmax_cpu`] on the logits rounded to f16 as the
/// GPU stores them, the probabilities rounded once.
pub fn softmax_cpu_f16(p: &SoftmaxParams, x: &[f32], out: &mut [f32]) {
    softmax_cpu(p, &super::rounded_f16(x), out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch over the (outer, K, inner) tensor `p` says, in
/// its storage order, stored as `storage` says.
pub fn softmax_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &SoftmaxParams,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if p.is_empty() {
        return Err(Error::Graph {
            node: label.into(),
            message: format!("softmax over an empty tensor {p:?}"),
        });
    }
    let (x, out) = (x.into(), out.into());
    let len = p.len();
    for (what, span) in [("input", &x), ("output", &out)] {
        super::check_span(label, what, span.size, storage.bytes(len), len)?;
    }
    super::index_u32(label, len)?;
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Softmax,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                rows: (p.batch * p.inner) as u32,
                classes: p.classes as u32,
                inner: p.inner as u32,
                pad1: 0,
            },
            buffers: &[x, out],
            workgroups: grid_1d(p.batch * p.inner, 1),
            // Per element: a compare, a subtract, an exp, an add, a divide.
            flops: 5 * len as u64,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::Softmax,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
