//! Layout transposes between PyTorch's NCHW (the API boundary) and the
//! engine's NHWC (the GPU's working layout).
//!
//! Math: a pure permutation, `nhwc[((n·H + y)·W + x)·C + c] =
//! nchw[((n·C + c)·H + y)·W + x]`, and its inverse.
//!
//! Bindings (`shaders/layout.wgsl`, entries `nchw_to_nhwc`,
//! `nhwc_to_nchw`, and the boundary conversions `nchw_to_nhwc_from_f32`,
//! `nhwc_to_nchw_to_f32`): 0 params uniform (n, c, h, w), 1 source (read),
//! 2 destination (read-write). One invocation per two consecutive
//! destination elements.
//!
//! Precision: tensors are stored as the [`Storage`] says; the graph's
//! input and outputs are f32 at the API, so in f16 the input transpose
//! converts f32 to f16 ([`Direction::NchwF32ToNhwc`]) and the output one
//! f16 to f32 ([`Direction::NhwcToNchwF32`]). For f32 storage these are
//! the plain transposes.
//!
//! Tolerance: exact (a copy), except the conversion of f32 to f16, one
//! rounding ([`tolerance`]).

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::Result;
use crate::shaders::{Shader, Storage};

/// Declared tolerance: bit-exact.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 0.0,
    rtol: 0.0,
};

/// [`TOLERANCE`] rounded to f16 ([`Tolerance::rounded_to_f16`]): the
/// conversion of f32 to f16, which WGSL lets round to either neighbour.
pub const TOLERANCE_TO_F16: Tolerance = TOLERANCE.rounded_to_f16();

/// The declared tolerance of a transpose in `dir` over `storage`: exact,
/// except [`TOLERANCE_TO_F16`] where f32 becomes f16.
pub fn tolerance(dir: Direction, storage: Storage) -> Tolerance {
    if storage.is_f16() && dir == Direction::NchwF32ToNhwc {
        TOLERANCE_TO_F16
    } else {
        TOLERANCE
    }
}

/// Direction of a transpose, and which side is f32 at the API boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// PyTorch order to the GPU's working order, tensor to tensor.
    NchwToNhwc,
    /// The GPU's working order back to PyTorch order, tensor to tensor
    /// (a flatten of a spatial map).
    NhwcToNchw,
    /// The graph's input: f32 NCHW to an NHWC tensor.
    NchwF32ToNhwc,
    /// A graph output: an NHWC tensor to f32 NCHW.
    NhwcToNchwF32,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 4] = [
        Direction::NchwToNhwc,
        Direction::NhwcToNchw,
        Direction::NchwF32ToNhwc,
        Direction::NhwcToNchwF32,
    ];

    /// Its entry point in `shaders/layout.wgsl` for `storage` (the
    /// boundary conversions are the plain transposes in f32).
    pub fn entry(self, storage: Storage) -> &'static str {
        match (self, storage) {
            (Direction::NchwToNhwc, _) | (Direction::NchwF32ToNhwc, Storage::F32) => "nchw_to_nhwc",
            (Direction::NhwcToNchw, _) | (Direction::NhwcToNchwF32, Storage::F32) => "nhwc_to_nchw",
            (Direction::NchwF32ToNhwc, _) => "nchw_to_nhwc_from_f32",
            (Direction::NhwcToNchwF32, _) => "nhwc_to_nchw_to_f32",
        }
    }

    /// True when the source is NCHW (the destination NHWC).
    pub fn to_nhwc(self) -> bool {
        matches!(self, Direction::NchwToNhwc | Direction::NchwF32ToNhwc)
    }

    /// Bytes of the source and of the destination of `len` elements.
    pub fn bytes(self, storage: Storage, len: usize) -> (u64, u64) {
        let (t, f) = (storage.bytes(len), Storage::F32.bytes(len));
        match self {
            Direction::NchwF32ToNhwc => (f, t),
            Direction::NhwcToNchwF32 => (t, f),
            _ => (t, t),
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

/// The transpose the API boundary needs for a value of NCHW `shape` moving
/// between f32 in the API's order (NHWC when `api_nhwc`, else NCHW) and
/// the arena's NHWC in `storage`: `None` when no dispatch is needed (f32,
/// and the two orders agree: `H·W = 1`, `C = 1`, or an NHWC API), else the
/// shape to transpose — `shape` itself, or, where the orders agree and
/// only f16 ↔ f32 conversion is needed, the identity transpose of
/// `(N, 1, 1, C·H·W)`. The graph input and the outputs both use it.
pub fn boundary_transpose(
    shape: [usize; 4],
    api_nhwc: bool,
    storage: Storage,
) -> Option<[usize; 4]> {
    let [n, c, h, w] = shape;
    let in_order = h * w == 1 || c == 1 || api_nhwc;
    match (in_order, storage) {
        (true, Storage::F32) => None,
        (true, _) => Some([n, 1, 1, c * h * w]),
        (false, _) => Some(shape),
    }
}

/// CPU reference (f32 in, f32 out: the permutation alone).
pub fn transpose_cpu(dir: Direction, shape: [usize; 4], src: &[f32]) -> Vec<f32> {
    if dir.to_nhwc() {
        crate::tensor::nchw_to_nhwc(src, shape)
    } else {
        crate::tensor::nhwc_to_nchw(src, shape)
    }
}

/// f16 CPU reference: the permutation of `src` as an f16 tensor holds it
/// (rounded once where the source is f32; a copy of f16 values otherwise).
pub fn transpose_cpu_f16(dir: Direction, shape: [usize; 4], src: &[f32]) -> Vec<f32> {
    transpose_cpu(dir, shape, &super::rounded_f16(src))
}

/// Workgroup memory the entry point declares: no workgroup memory.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// Builds the GPU dispatch for a transpose of a tensor of logical NCHW
/// `shape` whose tensors are stored as `storage` says (the f32 side of a
/// boundary conversion is f32 in any storage). Errors name `label`: a
/// buffer too small for its side, an index past u32.
pub fn transpose_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    dir: Direction,
    shape: [usize; 4],
    src: impl Into<Span<'a>>,
    dst: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let len: usize = shape.iter().product();
    super::index_u32(label, len)?;
    let (src, dst) = (src.into(), dst.into());
    let (src_bytes, dst_bytes) = dir.bytes(storage, len);
    for (what, span, bytes) in [("source", src, src_bytes), ("destination", dst, dst_bytes)] {
        super::check_span(label, what, span.size, bytes, len)?;
    }
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Layout,
            storage,
            entry: dir.entry(storage),
            bindings: BINDINGS,
            constants: &[],
            params: &Uniform {
                n: shape[0] as u32,
                c: shape[1] as u32,
                h: shape[2] as u32,
                w: shape[3] as u32,
            },
            buffers: &[src, dst],
            workgroups: grid_1d(len.div_ceil(2), 256),
            flops: 0,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: each direction's entry
/// in each storage mode (two in f32, four in each f16 mode).
pub fn pipelines() -> Vec<super::PipelineSpec> {
    let mut out: Vec<super::PipelineSpec> = Vec::new();
    for storage in Storage::ALL {
        for d in Direction::ALL {
            let spec = super::PipelineSpec {
                shader: Shader::Layout,
                storage,
                entry: d.entry(storage),
                constants: Vec::new(),
                bindings: BINDINGS,
                workgroup_bytes: WORKGROUP_BYTES,
            };
            if !out.contains(&spec) {
                out.push(spec);
            }
        }
    }
    out
}
