//! Elementwise arithmetic of an activation with a broadcast constant: the
//! IR's [`crate::graph::Op::ConstArith`] (ONNX's `Add`/`Sub`/`Mul`/`Div`
//! by a constant tensor that is neither a scalar nor per-channel).
//!
//! Math: `out[n, c, y, x] = x[n, c, y, x] ∘ k[n', c', y', x']` (or
//! `k ∘ x`), ∘ one of `+ − · /`, where each primed index is the output's,
//! or 0 along an axis where the constant has size 1 (numpy broadcasting
//! that keeps x's shape). One f32 operation per element.
//!
//! Layouts: CPU reference NCHW (x, k and out); GPU NHWC, the constant
//! uploaded once as NHWC of its own shape ([`constant_to_device`]). The
//! shader reads it through element strides that are 0 along broadcast
//! axes, so one entry point serves every broadcast pattern and the shapes
//! travel in the uniform.
//!
//! Bindings (`shaders/const_arith.wgsl`, entry `const_arith`): 0 params
//! uniform (output length, C, W, H, the constant's four strides, op,
//! const_first; 48 bytes), 1 `x` (read, NHWC), 2 `k` (read, the constant),
//! 3 `out` (read-write, NHWC). One invocation per two consecutive output
//! elements (one packed f16 word), 256 per workgroup, grid folded into x
//! and y. In f16 precision x, k and out are f16 (the constant converted
//! once at upload, like conv weights).
//!
//! Tolerance ([`tolerance`]): WGSL's f32 `+`, `−` and `·` are correctly
//! rounded, as the CPU's are, so add/sub/mul are exact but for
//! subnormals, which WGSL lets an implementation flush to zero
//! (`atol = 2⁻¹²⁶`). WGSL's f32 division is accurate to 2.5 ULP of the
//! exact quotient q (for divisors of magnitude in [2⁻¹²⁶, 2¹²⁶]); the
//! CPU's is within 0.5 ULP, so they differ by at most 3 ULP(q) ≤
//! 3·2⁻²³·|q| ≤ 3·2⁻²³·(1 + 2⁻²³)·|ref|. f16 variants:
//! [`Tolerance::rounded_to_f16`] of those.

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::Arith;
use crate::shaders::{Shader, Storage};

/// Add, sub and mul in f32: exact up to subnormals flushed to zero.
pub const TOLERANCE_EXACT: Tolerance = Tolerance {
    atol: f32::MIN_POSITIVE,
    rtol: 0.0,
};

/// Division in f32: 3 ULP of the quotient (2.5 on the GPU, 0.5 on the CPU).
pub const TOLERANCE_DIV: Tolerance = Tolerance {
    atol: f32::MIN_POSITIVE,
    rtol: 3.0 * (1.0 / 8_388_608.0) * (1.0 + 1.0 / 8_388_608.0),
};

/// The declared tolerance of `arith` for `storage`.
pub fn tolerance(arith: Arith, storage: Storage) -> Tolerance {
    let t = match arith {
        Arith::Div => TOLERANCE_DIV,
        Arith::Add | Arith::Sub | Arith::Mul => TOLERANCE_EXACT,
    };
    if storage.is_f16() {
        t.rounded_to_f16()
    } else {
        t
    }
}

/// Shapes and operation of a launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstArithParams {
    /// The operation.
    pub arith: Arith,
    /// `k ∘ x` rather than `x ∘ k`.
    pub const_first: bool,
    /// x's (and the output's) NCHW shape.
    pub shape: [usize; 4],
    /// The constant's NCHW shape: each dim 1 or x's.
    pub const_shape: [usize; 4],
}

impl ConstArithParams {
    /// Checks nonzero sizes and that the constant broadcasts to x's shape
    /// (the IR's rule, [`crate::graph::ConstArith::output_shape`]).
    pub fn validate(&self, node: &str) -> Result<()> {
        if self.shape.contains(&0) {
            return Err(Error::Graph {
                node: node.into(),
                message: format!("zero-sized input {:?}", self.shape),
            });
        }
        crate::graph::ConstArith {
            arith: self.arith,
            const_first: self.const_first,
            shape: self.const_shape,
        }
        .output_shape(node, self.shape)
        .map(|_| ())
    }

    /// Elements of x (and of the output).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when x has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `a ∘ b` in this launch's operand order.
    fn op(&self, x: f32, k: f32) -> f32 {
        if self.const_first {
            self.arith.apply(k, x)
        } else {
            self.arith.apply(x, k)
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    len: u32,
    c: u32,
    w: u32,
    h: u32,
    sn: u32,
    sy: u32,
    sx: u32,
    sc: u32,
    op: u32,
    const_first: u32,
    _pad0: u32,
    _pad1: u32,
}

/// The entry point in `shaders/const_arith.wgsl`.
const ENTRY: &str = "const_arith";

/// Workgroup memory the entry point declares: none.
const WORKGROUP_BYTES: u32 = 0;

/// x is an activation (read-write: it shares the arena with the output);
/// the constant is a parameter buffer of its own, read only.
const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::Read,
    Binding::ReadWrite,
];

/// CPU reference over NCHW: plain loops over the output.
pub fn const_arith_cpu(p: &ConstArithParams, x: &[f32], k: &[f32], out: &mut [f32]) {
    let [n, c, h, w] = p.shape;
    let [kn, kc, kh, kw] = p.const_shape;
    let at = |size: usize, i: usize| if size == 1 { 0 } else { i };
    for ni in 0..n {
        for ci in 0..c {
            for y in 0..h {
                for xi in 0..w {
                    let o = ((ni * c + ci) * h + y) * w + xi;
                    let ki = ((at(kn, ni) * kc + at(kc, ci)) * kh + at(kh, y)) * kw + at(kw, xi);
                    out[o] = p.op(x[o], k[ki]);
                }
            }
        }
    }
}

/// f16 CPU reference: [`const_arith_cpu`] on x and the constant rounded
/// to f16 as the GPU stores them, the result rounded once.
pub fn const_arith_cpu_f16(p: &ConstArithParams, x: &[f32], k: &[f32], out: &mut [f32]) {
    let (x, k) = (super::rounded_f16(x), super::rounded_f16(k));
    const_arith_cpu(p, &x, &k, out);
    super::round_f16_in_place(out);
}

/// The constant (NCHW of `p.const_shape`) in the layout the shader reads:
/// NHWC of its own shape.
pub fn constant_to_device(p: &ConstArithParams, k: &[f32]) -> Vec<f32> {
    crate::tensor::nchw_to_nhwc(k, p.const_shape)
}

/// Builds the GPU dispatch: `x` NHWC, `k` from [`constant_to_device`],
/// `out` NHWC, all stored as `storage` says.
pub fn const_arith_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &ConstArithParams,
    x: impl Into<Span<'a>>,
    k: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    p.validate(label)?;
    let len = p.len();
    let (x, k, out) = (x.into(), k.into(), out.into());
    let need = |what: &str, span: &Span, elems: usize| {
        super::check_span(label, what, span.size, storage.bytes(elems), elems)
    };
    need("input", &x, len)?;
    need("constant", &k, p.const_shape.iter().product())?;
    need("output", &out, len)?;
    let u = |v: usize| super::index_u32(label, v);
    let [_, c, h, w] = p.shape;
    let [kn, kc, kh, kw] = p.const_shape;
    let stride = |size: usize, s: usize| if size == 1 { 0 } else { s };
    let params = Uniform {
        len: u(len)?,
        c: u(c)?,
        w: u(w)?,
        h: u(h)?,
        sn: u(stride(kn, kh * kw * kc))?,
        sy: u(stride(kh, kw * kc))?,
        sx: u(stride(kw, kc))?,
        sc: u(stride(kc, 1))?,
        op: match p.arith {
            Arith::Add => 0,
            Arith::Sub => 1,
            Arith::Mul => 2,
            Arith::Div => 3,
        },
        const_first: u32::from(p.const_first),
        _pad0: 0,
        _pad1: 0,
    };
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::ConstArith,
            storage,
            entry: ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &params,
            buffers: &[x, k, out],
            workgroups: grid_1d(len.div_ceil(2), 256),
            flops: len as u64,
            workgroup_bytes: WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launcher creates: one per storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    Storage::ALL
        .iter()
        .map(|&storage| super::PipelineSpec {
            shader: Shader::ConstArith,
            storage,
            entry: ENTRY,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes: WORKGROUP_BYTES,
        })
        .collect()
}
