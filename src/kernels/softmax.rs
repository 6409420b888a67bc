//! Softmax over the class dimension of (N, K) logits.
//!
//! Math: `out[n, k] = exp(x[n, k] − m) / Σ_j exp(x[n, j] − m)` with
//! `m = max_j x[n, j]`, the numerically stable form.
//!
//! Bindings (`shaders/softmax.wgsl`, entry `softmax`): 0 params uniform
//! (N, K), 1 `x` (read, (N, K)), 2 `out` (read-write, (N, K)).
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
    pad0: u32,
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

/// f16 CPU reference: [`softmax_cpu`] on the logits rounded to f16 as the
/// GPU stores them, the probabilities rounded once.
pub fn softmax_cpu_f16(p: &SoftmaxParams, x: &[f32], out: &mut [f32]) {
    softmax_cpu(p, &super::rounded_f16(x), out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch over (N, K) rows stored as `storage` says.
pub fn softmax_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &SoftmaxParams,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if p.batch == 0 || p.classes == 0 {
        return Err(Error::Graph {
            node: label.into(),
            message: format!("softmax over an empty tensor {p:?}"),
        });
    }
    let len = p.batch * p.classes;
    if len > u32::MAX as usize {
        return Err(Error::Limit {
            node: label.into(),
            limit: "u32 element index",
            needed: len as u64,
            available: u32::MAX as u64,
        });
    }
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
                rows: p.batch as u32,
                classes: p.classes as u32,
                pad0: 0,
                pad1: 0,
            },
            buffers: &[x.into(), out.into()],
            workgroups: grid_1d(p.batch, 1),
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
