//! Index-mapping copies: pad / crop of any of the four axes in every ONNX
//! mode (ONNX's `Pad`, Keras' `ZeroPadding2D`, PyTorch's
//! `ReflectionPad2d`), and the permutation of the four axes (ONNX's
//! `Transpose`).
//!
//! Pad math ([`crate::graph::Pad`]): along each NCHW axis, negative pads
//! crop first; output coordinate `o` then reads cropped coordinate
//! `t = o − added_before`, and outside `0..len` the mode decides: the
//! constant `value`, the clamped `t` (edge), the mirror image of period
//! `2·(len − 1)` (reflect; each pad below `len`, as ONNX and numpy
//! require, so one reflection), or `t mod len` (wrap).
//!
//! Transpose math: `out[o₀, o₁, o₂, o₃] = x[i]` with `i[perm[k]] = o[k]`;
//! output dim `k` is input dim `perm[k]`.
//!
//! Layouts: CPU references NCHW; GPU NHWC. The GPU kernel is one mapping
//! for both: output element `i` (NHWC) decodes to NCHW coordinates, each
//! maps to its source coordinate (for a transpose, output axis `k` reads
//! source axis `perm[k]`), and the source index is the sum of those times
//! the source's NHWC strides, which travel in the uniform.
//!
//! Bindings (`shaders/pad.wgsl`, entries `pad` and `transpose`, the same
//! mapping): 0 params uniform (length, mode, value, output dims and per
//! output axis the source length, crop, elements added and source stride;
//! 96 bytes), 1 `x` (read, NHWC), 2 `out` (read-write, NHWC). One
//! invocation per two consecutive output elements (one packed f16 word),
//! 256 per workgroup, grid folded into x and y.
//!
//! Tolerance: exact — a copy. In f16 the input is already f16 and the
//! value is rounded once on store, as [`pad_cpu_f16`] rounds it.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::{Pad, PadMode};
use crate::shaders::{Shader, Storage};

/// Declared tolerance: bit-exact in every storage mode (against
/// [`pad_cpu`] / [`transpose_cpu`] in f32, their `_f16` forms in f16).
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
    /// Input shape (N, C, H, W); no dim zero.
    pub shape: [usize; 4],
    /// The pads of each axis, the mode and the value.
    pub pad: Pad,
}

impl PadParams {
    /// Output shape (NCHW); errors as [`Pad::output_shape`], naming `node`.
    pub fn out_shape(&self, node: &str) -> Result<[usize; 4]> {
        self.validate(node)?;
        self.pad.output_shape(node, self.shape)
    }

    /// Checks nonzero sizes and the pads against the shape; `node` names
    /// the pad.
    pub fn validate(&self, node: &str) -> Result<()> {
        if self.shape.contains(&0) {
            let [n, c, h, w] = self.shape;
            return Err(Error::Graph {
                node: node.into(),
                message: format!("pad of a zero-sized input {n}×{c}×{h}×{w}"),
            });
        }
        self.pad.output_shape(node, self.shape).map(|_| ())
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    mode: u32,
    value: f32,
    _pad0: u32,
    out_dims: [u32; 4],
    src_len: [u32; 4],
    crop: [u32; 4],
    lo: [u32; 4],
    stride: [u32; 4],
}

/// The entry points in `shaders/pad.wgsl`.
const ENTRY_PAD: &str = "pad";
const ENTRY_TRANSPOSE: &str = "transpose";

/// Workgroup memory the entry points declare: none.
const WORKGROUP_BYTES: u32 = 0;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// The source coordinate of cropped coordinate `t` (output coordinate
/// minus the elements added before) on an axis of cropped length `len`,
/// or `None` for the constant: written apart from the shader's
/// arithmetic, by cases, as numpy describes each mode.
fn source_coord(mode: PadMode, t: i64, len: i64) -> Option<i64> {
    if (0..len).contains(&t) {
        return Some(t);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(if t < 0 { 0 } else { len - 1 }),
        // One reflection: pads are below `len` (checked), so `t` lies in
        // `−(len − 1)..2·len − 1`.
        PadMode::Reflect => Some(if t < 0 { -t } else { 2 * (len - 1) - t }),
        PadMode::Wrap => Some(t.rem_euclid(len)),
    }
}

/// CPU reference over NCHW: plain loops over the output, each coordinate
/// mapped on its own. Panics on parameters [`PadParams::validate`] refuses.
pub fn pad_cpu(p: &PadParams, x: &[f32], out: &mut [f32]) {
    let out_shape = p.out_shape("pad_cpu").expect("valid pad parameters");
    let [_, c, h, w] = p.shape;
    let map = p.pad.axis_map(p.shape);
    let mut i = 0;
    for o0 in 0..out_shape[0] {
        for o1 in 0..out_shape[1] {
            for o2 in 0..out_shape[2] {
                for o3 in 0..out_shape[3] {
                    let mut src = [0usize; 4];
                    let mut inside = true;
                    for (a, &o) in [o0, o1, o2, o3].iter().enumerate() {
                        let (crop, len, added) = map[a];
                        let t = o as i64 - added as i64;
                        match source_coord(p.pad.mode, t, len as i64) {
                            Some(s) => src[a] = s as usize + crop,
                            None => inside = false,
                        }
                    }
                    out[i] = if inside {
                        x[((src[0] * c + src[1]) * h + src[2]) * w + src[3]]
                    } else {
                        p.pad.value
                    };
                    i += 1;
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

/// CPU reference of a transpose of NCHW `x` of `shape`: output axis `k`
/// is input axis `perm[k]` (a permutation of `0..4`, unchecked).
pub fn transpose_cpu(shape: [usize; 4], perm: [usize; 4], x: &[f32]) -> Vec<f32> {
    let os = perm.map(|a| shape[a]);
    let mut out = Vec::with_capacity(x.len());
    let mut i = [0usize; 4];
    for o0 in 0..os[0] {
        for o1 in 0..os[1] {
            for o2 in 0..os[2] {
                for o3 in 0..os[3] {
                    for (k, o) in [o0, o1, o2, o3].into_iter().enumerate() {
                        i[perm[k]] = o;
                    }
                    out.push(x[((i[0] * shape[1] + i[1]) * shape[2] + i[2]) * shape[3] + i[3]]);
                }
            }
        }
    }
    out
}

/// f16 CPU reference of a transpose: a copy of the f16-rounded input.
pub fn transpose_cpu_f16(shape: [usize; 4], perm: [usize; 4], x: &[f32]) -> Vec<f32> {
    transpose_cpu(shape, perm, &super::rounded_f16(x))
}

/// NHWC storage strides of the NCHW axes of a tensor of `shape`.
fn nhwc_strides([_, c, h, w]: [usize; 4]) -> [usize; 4] {
    [h * w * c, 1, w * c, c]
}

/// The checks and the dispatch both launchers share: `x` of `in_shape`
/// and `out` of `out_shape`, both NHWC as `storage` says; per output axis
/// `maps` holds (source length, crop, added before, source stride).
fn launch<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    (in_shape, out_shape): ([usize; 4], [usize; 4]),
    maps: [(usize, usize, usize, usize); 4],
    (entry, mode, value): (&'static str, u32, f32),
    (x, out): (Span<'a>, Span<'a>),
) -> Result<Dispatch> {
    let in_len: usize = in_shape.iter().product();
    let len: usize = out_shape.iter().product();
    let need = |what: &str, span: &Span, elems: usize| {
        super::check_span(label, what, span.size, storage.bytes(elems), elems)
    };
    need("input", &x, in_len)?;
    need("output", &out, len)?;
    let u = |v: usize| super::index_u32(label, v);
    u(in_len)?;
    // Coordinates travel as i32 in the shader.
    for &d in out_shape.iter().chain(&in_shape) {
        if d > i32::MAX as usize {
            return Err(Error::Limit {
                node: label.into(),
                limit: "i32 coordinate",
                needed: d as u64,
                available: i32::MAX as u64,
            });
        }
    }
    let field = |f: fn(&(usize, usize, usize, usize)) -> usize| -> Result<[u32; 4]> {
        Ok([
            u(f(&maps[0]))?,
            u(f(&maps[1]))?,
            u(f(&maps[2]))?,
            u(f(&maps[3]))?,
        ])
    };
    let params = Uniform {
        len: u(len)?,
        mode,
        value,
        _pad0: 0,
        out_dims: [
            u(out_shape[0])?,
            u(out_shape[1])?,
            u(out_shape[2])?,
            u(out_shape[3])?,
        ],
        src_len: field(|m| m.0)?,
        crop: field(|m| m.1)?,
        lo: field(|m| m.2)?,
        stride: field(|m| m.3)?,
    };
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Pad,
            storage,
            entry,
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

/// The shader's code of a mode.
fn mode_code(mode: PadMode) -> u32 {
    match mode {
        PadMode::Constant => 0,
        PadMode::Edge => 1,
        PadMode::Reflect => 2,
        PadMode::Wrap => 3,
    }
}

/// Builds the GPU pad dispatch: `x` NHWC of `p.shape` → `out` NHWC of
/// the padded shape, both stored as `storage` says. Errors name `label`:
/// parameters [`PadParams::validate`] refuses, a buffer too small, a size
/// past u32.
pub fn pad_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &PadParams,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let out_shape = p.out_shape(label)?;
    let strides = nhwc_strides(p.shape);
    let map = p.pad.axis_map(p.shape);
    let maps = std::array::from_fn(|a| (map[a].1, map[a].0, map[a].2, strides[a]));
    launch(
        ctx,
        label,
        storage,
        (p.shape, out_shape),
        maps,
        (ENTRY_PAD, mode_code(p.pad.mode), p.pad.value),
        (x.into(), out.into()),
    )
}

/// Builds the GPU transpose dispatch: `x` NHWC of NCHW `shape` → `out`
/// NHWC of `perm.map(|a| shape[a])`, output axis `k` being input axis
/// `perm[k]`. Errors name `label`: a `perm` that is not a permutation of
/// `0..4`, a zero dim, a buffer too small, a size past u32.
pub fn transpose_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    shape: [usize; 4],
    perm: [usize; 4],
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let mut sorted = perm;
    sorted.sort_unstable();
    if sorted != [0, 1, 2, 3] || shape.contains(&0) {
        return Err(Error::Graph {
            node: label.into(),
            message: format!(
                "transpose of shape {shape:?} by {perm:?}: expected a permutation of 0..4 and                  no zero dim"
            ),
        });
    }
    let strides = nhwc_strides(shape);
    let maps = perm.map(|a| (shape[a], 0, 0, strides[a]));
    launch(
        ctx,
        label,
        storage,
        (shape, perm.map(|a| shape[a])),
        maps,
        (ENTRY_TRANSPOSE, 0, 0.0),
        (x.into(), out.into()),
    )
}

/// The pipelines this module's launchers create: each entry in each
/// storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .flat_map(|&storage| [(storage, ENTRY_PAD), (storage, ENTRY_TRANSPOSE)])
        .map(|(storage, entry)| super::PipelineSpec {
            shader: Shader::Pad,
            storage,
            entry,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
