//! Fully connected layer with optional bias.
//!
//! Math: `out[n, o] = Σ_i x[n, i] · w[o, i] + bias[o]` (PyTorch's
//! `nn.Linear`, weight stored (out_features, in_features)).
//!
//! Layout: rows of features; the same in NCHW and NHWC since the input is
//! (N, F, 1, 1) after global pooling and flatten.
//!
//! GPU weight layout: [`pack_weights`] transposes PyTorch's (out, in) to
//! (in, out), so the 32 invocations that compute 32 neighbouring output
//! features read 32 neighbouring floats.
//!
//! Bindings (`shaders/linear.wgsl`, entry `linear`): 0 params uniform
//! (N, in, out, bias flag), 1 `x` (read, (N, in)), 2 packed weight (read,
//! (in, out)), 3 `bias` (read, out; the context's dummy buffer when absent),
//! 4 `out` (read-write, (N, out)).
//!
//! Work split: a 32×8 workgroup computes 8 rows × 32 output features. Lane
//! `x` owns one output feature; the 8 slices along `y` split the reduction
//! over the input features. Features are walked in chunks of 256: the chunk
//! of x (8 rows × 256) is staged in workgroup memory as two vec4s per
//! feature, and each slice streams its 32 features of the chunk — one
//! coalesced 128-byte load of the packed weight and two broadcast vec4 reads
//! of x per 8 multiply-adds. A slice's 32 weight loads of a chunk are all
//! issued before x is staged, so they are in flight together (a first
//! version that staged weight tiles in workgroup memory and loaded one value
//! per step was latency-bound: 398 µs where this one takes 29). The 8 partial
//! sums per output are then added in a fixed order in workgroup memory, and
//! the bias added. Tiles are folded into the grid's x and y. On
//! (32, 2048)·(2048, 1000) that is 128 workgroups of 8 warps; the 8 MiB
//! weight is read from DRAM once (the 4 row tiles share it in L2). Measured
//! on an H100 (Vulkan): about 29 µs per dispatch, ~5 µs of it the
//! per-dispatch overhead.
//!
//! Tolerance: each output sums `in` products in another order than the
//! reference (per 256-feature chunk, 8 slices of 32, then a fixed 8-way
//! sum); see [`TOLERANCE`].
//!
//! Precision: in f16, x and the packed weight are f16 (the weight
//! converted once at upload), the bias f32; products of f16 values are
//! exact in f32, every sum is f32, and the output is rounded once.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::shaders::{Shader, Storage};

/// Rows per tile (`TR` in `linear.wgsl`).
const TILE_N: usize = 8;
/// Output features per tile (`TO` in `linear.wgsl`).
const TILE_O: usize = 32;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    batch: u32,
    in_features: u32,
    out_features: u32,
    has_bias: u32,
}

/// The entry point in `shaders/linear.wgsl`.
const ENTRY: &str = "linear";

/// Workgroup memory the entry point declares: the x chunk: 256 features × 2 vec4 (8 KiB).
const WORKGROUP_BYTES: u32 = 8192;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
];

/// Declared tolerance: a dot product of up to a few thousand terms in
/// another summation order.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// [`TOLERANCE`] for the f16 variants, against [`linear_cpu_f16`]
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

/// Repacks the PyTorch (out, in) weight for the GPU kernel (once, at load):
/// the transpose, (in, out), `packed[i·out + o] = w[o·in + i]`.
///
/// Panics if `w` does not hold `out_features · in_features` values.
pub fn pack_weights(p: &LinearParams, w: &[f32]) -> Vec<f32> {
    let (fi, fo) = (p.in_features, p.out_features);
    assert_eq!(
        w.len(),
        fi * fo,
        "linear weight must be (out={fo}, in={fi})"
    );
    let mut packed = vec![0.0; w.len()];
    for o in 0..fo {
        for i in 0..fi {
            packed[i * fo + o] = w[o * fi + i];
        }
    }
    packed
}

/// f16 CPU reference: [`linear_cpu`] on `x` and `w` rounded to f16 as the
/// GPU stores them (the bias stays f32), the outputs rounded once.
pub fn linear_cpu_f16(
    p: &LinearParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (x, w) = (super::rounded_f16(x), super::rounded_f16(w));
    linear_cpu(p, &x, &w, bias, out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch; `w` holds [`pack_weights`]' output.
#[allow(clippy::too_many_arguments)]
pub fn linear_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &LinearParams,
    x: impl Into<Span<'a>>,
    w: impl Into<Span<'a>>,
    bias: Option<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if p.batch == 0 || p.in_features == 0 || p.out_features == 0 {
        return Err(Error::Graph {
            node: label.into(),
            message: format!("zero-sized linear layer {p:?}"),
        });
    }
    let biggest = (p.batch * p.in_features)
        .max(p.batch * p.out_features)
        .max(p.in_features * p.out_features);
    super::index_u32(label, biggest)?;
    let tiles = p.batch.div_ceil(TILE_N) * p.out_features.div_ceil(TILE_O);
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Linear,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                batch: p.batch as u32,
                in_features: p.in_features as u32,
                out_features: p.out_features as u32,
                has_bias: bias.is_some() as u32,
            },
            buffers: &[
                x.into(),
                w.into(),
                bias.unwrap_or(Span::whole(ctx.dummy_buffer())),
                out.into(),
            ],
            workgroups: grid_1d(tiles, 1),
            flops: 2 * (p.batch * p.in_features * p.out_features) as u64,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::Linear,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
