//! Layout transposes between PyTorch's NCHW (the API boundary) and the
//! engine's NHWC (the GPU's working layout).
//!
//! Math: a pure permutation, `nhwc[((n·H + y)·W + x)·C + c] =
//! nchw[((n·C + c)·H + y)·W + x]`, and its inverse.
//!
//! Bindings (`shaders/layout.wgsl`, entries `nchw_to_nhwc` and
//! `nhwc_to_nchw`): 0 params uniform (n, c, h, w), 1 source (read),
//! 2 destination (read-write). One invocation per destination element.
//!
//! Tolerance: exact (a copy).

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::shaders::Shader;

/// Declared tolerance: bit-exact.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 0.0,
    rtol: 0.0,
};

/// Direction of a transpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// PyTorch order to the GPU's working order.
    NchwToNhwc,
    /// The GPU's working order back to PyTorch order.
    NhwcToNchw,
}

impl Direction {
    /// Its entry point in `shaders/layout.wgsl`.
    pub fn entry(self) -> &'static str {
        match self {
            Direction::NchwToNhwc => "nchw_to_nhwc",
            Direction::NhwcToNchw => "nhwc_to_nchw",
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
}

/// CPU reference.
pub fn transpose_cpu(dir: Direction, shape: [usize; 4], src: &[f32]) -> Vec<f32> {
    match dir {
        Direction::NchwToNhwc => crate::tensor::nchw_to_nhwc(src, shape),
        Direction::NhwcToNchw => crate::tensor::nhwc_to_nchw(src, shape),
    }
}

/// Workgroup memory the entry point declares: no workgroup memory.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// Builds the GPU dispatch for a transpose of a tensor of logical NCHW `shape`.
pub fn transpose_gpu<'a>(
    ctx: &Context,
    label: &str,
    dir: Direction,
    shape: [usize; 4],
    src: impl Into<Span<'a>>,
    dst: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let len: usize = shape.iter().product();
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
            shader: Shader::Layout,
            entry: dir.entry(),
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                n: shape[0] as u32,
                c: shape[1] as u32,
                h: shape[2] as u32,
                w: shape[3] as u32,
            },
            buffers: &[src.into(), dst.into()],
            workgroups: grid_1d(len, 256),
            flops: 0,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: both directions.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    [Direction::NchwToNhwc, Direction::NhwcToNchw]
        .into_iter()
        .map(|d| super::PipelineSpec {
            shader: Shader::Layout,
            entry: d.entry(),
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
