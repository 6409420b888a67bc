//! Constant padding of H and W (ONNX's `Pad` in `constant` mode; Keras'
//! `ZeroPadding2D`).
//!
//! Math: `out[n, c, y, x] = x[n, c, y − top, x − left]` where that lies
//! inside the input, else `value`; the output is
//! (N, C, H + top + bottom, W + left + right).
//!
//! Layouts: CPU reference NCHW; GPU NHWC. Flat output index `i`
//! decodes to (n, y, x, c) on the GPU.
//!
//! Bindings (`shaders/pad.wgsl`, entry `pad`): 0 params uniform (output
//! length, C, H, W, OH, OW, top, left, value; 48 bytes), 1 `x` (read,
//! NHWC), 2 `out` (read-write, NHWC). One invocation per two consecutive
//! output elements (one packed f16 word), 256 per workgroup, grid folded
//! into x and y.
//!
//! Tolerance: exact — a copy. In f16 the input is already f16 and the
//! value is rounded once on store, as [`pad_cpu_f16`] rounds it.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::Padding;
use crate::shaders::{Shader, Storage};

/// Declared tolerance: bit-exact in every storage mode (against
/// [`pad_cpu`] in f32, [`pad_cpu_f16`] in f16).
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 0.0,
    rtol: 0.0,
};

/// The declared tolerance for `storage`: exact in each.
pub fn tolerance(_storage: Storage) -> Tolerance {
    TOLERANCE
}

/// Shape and options of a pad launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PadParams {
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Input height H.
    pub in_h: usize,
    /// Input width W.
    pub in_w: usize,
    /// Rows and columns added on each side (any may be zero).
    pub padding: Padding,
    /// The constant written in the padding; finite.
    pub value: f32,
}

impl PadParams {
    /// Output spatial size (H + top + bottom, W + left + right).
    pub fn out_hw(&self) -> [usize; 2] {
        let p = self.padding;
        [self.in_h + p.top + p.bottom, self.in_w + p.left + p.right]
    }

    /// Checks nonzero sizes and a finite value; `node` names the pad.
    pub fn validate(&self, node: &str) -> Result<()> {
        if self.batch == 0 || self.channels == 0 || self.in_h == 0 || self.in_w == 0 {
            return Err(Error::Graph {
                node: node.into(),
                message: format!(
                    "pad of a zero-sized input {}×{}×{}×{}",
                    self.batch, self.channels, self.in_h, self.in_w
                ),
            });
        }
        if !self.value.is_finite() {
            return Err(Error::Graph {
                node: node.into(),
                message: format!("pad value {} is not finite", self.value),
            });
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    top: u32,
    left: u32,
    value: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

/// The entry point in `shaders/pad.wgsl`.
const ENTRY: &str = "pad";

/// Workgroup memory the entry point declares: none.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// CPU reference over NCHW: plain loops over the output.
pub fn pad_cpu(p: &PadParams, x: &[f32], out: &mut [f32]) {
    let [oh, ow] = p.out_hw();
    for n in 0..p.batch {
        for c in 0..p.channels {
            for y in 0..oh {
                for xx in 0..ow {
                    let inside = y >= p.padding.top
                        && y - p.padding.top < p.in_h
                        && xx >= p.padding.left
                        && xx - p.padding.left < p.in_w;
                    out[((n * p.channels + c) * oh + y) * ow + xx] = if inside {
                        let (iy, ix) = (y - p.padding.top, xx - p.padding.left);
                        x[((n * p.channels + c) * p.in_h + iy) * p.in_w + ix]
                    } else {
                        p.value
                    };
                }
            }
        }
    }
}

/// f16 CPU reference: [`pad_cpu`] on `x` rounded to f16 as the GPU stores
/// it, the result (so the value) rounded once.
pub fn pad_cpu_f16(p: &PadParams, x: &[f32], out: &mut [f32]) {
    pad_cpu(p, &super::rounded_f16(x), out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch: `x` NHWC (N, H, W, C) → `out` NHWC
/// (N, OH, OW, C), both stored as `storage` says.
pub fn pad_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &PadParams,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    p.validate(label)?;
    let [oh, ow] = p.out_hw();
    let len = p.batch * oh * ow * p.channels;
    let (x, out) = (x.into(), out.into());
    let need = |what: &str, span: &Span, elems: usize| -> Result<()> {
        let bytes = storage.bytes(elems);
        if span.size < bytes {
            return Err(Error::Shape {
                node: label.into(),
                expected: format!("{what} buffer of at least {bytes} bytes ({elems} elements)"),
                actual: format!("{} bytes", span.size),
            });
        }
        Ok(())
    };
    need("input", &x, p.batch * p.in_h * p.in_w * p.channels)?;
    need("output", &out, len)?;
    let u = |v: usize| {
        u32::try_from(v).map_err(|_| Error::Limit {
            node: label.into(),
            limit: "u32 element index",
            needed: v as u64,
            available: u32::MAX as u64,
        })
    };
    let params = Uniform {
        len: u(len)?,
        c: u(p.channels)?,
        h: u(p.in_h)?,
        w: u(p.in_w)?,
        oh: u(oh)?,
        ow: u(ow)?,
        top: u(p.padding.top)?,
        left: u(p.padding.left)?,
        value: p.value,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    u(p.batch * p.in_h * p.in_w * p.channels)?;
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Pad,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &params,
            buffers: &[x, out],
            workgroups: grid_1d(len.div_ceil(2), 256),
            flops: 0,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launcher creates: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::Pad,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
