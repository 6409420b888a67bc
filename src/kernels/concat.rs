//! Concatenation along channels, as a channel-offset copy.
//!
//! Math: `out[n, out_c_offset + c, y, x] = src[n, c, y, x]` for `c < C`.
//! The graph executor makes most concats free (producers write at their
//! channel offset directly); this kernel covers the rest, e.g. a concat input
//! that is also read elsewhere, or a graph input.
//!
//! Layouts: CPU reference NCHW; GPU NHWC (a strided row copy).
//!
//! Bindings (`shaders/concat.wgsl`, entry `concat`): 0 params uniform
//! (element count, C, out_c_total, out_c_offset), 1 `src` (read), 2 `out`
//! (read-write). One invocation per two consecutive channels of a source
//! row (one packed f16 word where the output index is even), channels
//! fastest, 256 per workgroup, grid folded into x and y. Channels of `out`
//! outside `[out_c_offset, out_c_offset + C)` are not touched, whatever
//! the parity of the offset and the widths (packed f16 writes lone halves
//! with half-word atomics, `src/shaders.rs`).
//!
//! Tolerance: exact in every storage mode (f16 in, the same f16 out).

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::shaders::{Shader, Storage};

/// Declared tolerance: bit-exact (a copy), in f32 and in f16 alike.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 0.0,
    rtol: 0.0,
};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    channels: u32,
    out_c_total: u32,
    out_c_offset: u32,
}

/// The entry point in `shaders/concat.wgsl`.
const ENTRY: &str = "concat";

/// Workgroup memory the entry point declares: no workgroup memory.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// One source's placement in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatParams {
    /// Batch size N.
    pub batch: usize,
    /// Spatial size H·W (as a product).
    pub hw: usize,
    /// Channels of the source.
    pub channels: usize,
    /// Channels of the output tensor.
    pub out_c_total: usize,
    /// First channel of the source within the output.
    pub out_c_offset: usize,
}

/// CPU reference over NCHW: copies `src` into its channel range of `out`.
pub fn concat_cpu(p: &ConcatParams, src: &[f32], out: &mut [f32]) {
    for n in 0..p.batch {
        for c in 0..p.channels {
            let s = &src[(n * p.channels + c) * p.hw..][..p.hw];
            out[(n * p.out_c_total + p.out_c_offset + c) * p.hw..][..p.hw].copy_from_slice(s);
        }
    }
}

/// Builds the GPU dispatch over NHWC `src` (N·HW rows of C) into `out`
/// (N·HW rows of out_c_total), both stored as `storage` says.
pub fn concat_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &ConcatParams,
    src: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if p.channels == 0 || p.out_c_offset + p.channels > p.out_c_total {
        return Err(Error::Shape {
            node: label.into(),
            expected: format!(
                "a non-empty channel range within the output's {} channels",
                p.out_c_total
            ),
            actual: format!(
                "channels [{}, {})",
                p.out_c_offset,
                p.out_c_offset + p.channels
            ),
        });
    }
    let len = p.batch * p.hw * p.channels;
    let out_len = p.batch * p.hw * p.out_c_total;
    super::index_u32(label, out_len)?;
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Concat,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                len: len as u32,
                channels: p.channels as u32,
                out_c_total: p.out_c_total as u32,
                out_c_offset: p.out_c_offset as u32,
            },
            buffers: &[src.into(), out.into()],
            workgroups: grid_1d(p.batch * p.hw * p.channels.div_ceil(2), 256),
            // A copy: no arithmetic (as the layout transposes).
            flops: 0,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::Concat,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
