//! The kernel families: each module reads doc → params → CPU reference →
//! dispatch.
//!
//! Conventions shared by every kernel:
//! - GPU activations are NHWC (channels contiguous); the CPU references
//!   work on PyTorch's NCHW so that they are an independent oracle and the
//!   public API speaks NCHW. `docs/KERNELS.md` explains the choice.
//! - Every `*_gpu` builder takes a [`Storage`]: activations and conv/linear
//!   weights are f32, or f16 (native or packed, [`crate::shaders`]) with
//!   every load converted to f32, all arithmetic and every reduction in
//!   f32, and one rounding to f16 when a result is stored. Per-channel
//!   vectors (scale, shift, bias, batchnorm's four) stay f32. Each kernel
//!   declares its f16 tolerance from its f32 one
//!   ([`Tolerance::rounded_to_f16`]) and has an f16 CPU reference
//!   (`*_cpu_f16`: inputs and weights rounded as the GPU stores them, the
//!   f32 reference, the result rounded once).
//! - Binding 0 is the params uniform; storage bindings follow in the order
//!   the module documents. Shapes live in the uniform, never in WGSL text.
//! - A kernel's `*_gpu` function builds a [`Dispatch`](crate::device::Dispatch) through
//!   [`crate::device::make_dispatch`]: pipeline (from the context's cache),
//!   uniform buffer and bind group, all made once. Encoding a dispatch
//!   creates nothing. Buffers are passed as [`Span`](crate::device::Span)s (a whole buffer, or
//!   a range of one: activations may live at offsets in a shared arena).
//! - Each kernel declares its comparison tolerance once, as a [`Tolerance`].
//!
//! Layering: kernels depend on the IR ([`crate::graph`], for node
//! attributes and output-size arithmetic) and on the device layer
//! ([`crate::device`]), never on the executors.

pub mod batchnorm;
pub mod concat;
pub mod const_arith;
pub mod conv2d;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod pad;
pub mod pool;
pub mod softmax;

pub use crate::shaders::Storage;

/// `v` as a shader's u32 element index, or the `u32 element index` limit
/// error naming `node`: every `*_gpu` builder's index bound.
pub(crate) fn index_u32(node: &str, v: usize) -> crate::error::Result<u32> {
    u32::try_from(v).map_err(|_| crate::error::Error::Limit {
        node: node.into(),
        limit: "u32 element index",
        needed: v as u64,
        available: u32::MAX as u64,
    })
}

/// That a binding of `size` bytes holds `elems` elements taking `bytes`
/// bytes, or the shape error naming `node` and the binding (`what`).
pub(crate) fn check_span(
    node: &str,
    what: &str,
    size: u64,
    bytes: u64,
    elems: usize,
) -> crate::error::Result<()> {
    if size < bytes {
        return Err(crate::error::Error::Shape {
            node: node.into(),
            expected: format!("{what} buffer of at least {bytes} bytes ({elems} elements)"),
            actual: format!("{size} bytes"),
        });
    }
    Ok(())
}

/// One pipeline a launcher can create: shader, entry point, override
/// constants, bind group layout. [`catalogue`] lists them all.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// The shader family.
    pub shader: crate::shaders::Shader,
    /// Its storage mode (which expansion of the family).
    pub storage: crate::shaders::Storage,
    /// The entry point.
    pub entry: &'static str,
    /// Override constants.
    pub constants: Vec<(&'static str, f64)>,
    /// The bind group layout.
    pub bindings: &'static [crate::device::Binding],
    /// Bytes of workgroup memory the entry point declares with these
    /// constants (`shaders_validate.rs` checks it against the shader).
    pub workgroup_bytes: u32,
}

/// Every pipeline the launchers can create on a device with `limits`,
/// each family enumerating its own choices by the rules it launches with:
/// what a second WebGPU implementation must accept for the engine to run
/// there (the Dawn validation gate creates each one).
pub fn catalogue(limits: &wgpu::Limits) -> Vec<PipelineSpec> {
    let mut all = Vec::new();
    all.extend(batchnorm::pipelines());
    all.extend(concat::pipelines());
    all.extend(const_arith::pipelines());
    all.extend(conv2d::pipelines(limits));
    all.extend(elementwise::pipelines());
    all.extend(layout::pipelines());
    all.extend(linear::pipelines());
    all.extend(pad::pipelines());
    all.extend(pool::pipelines());
    all.extend(softmax::pipelines());
    all
}

/// ReLU as PyTorch computes it: `max(v, 0)`, except that NaN stays NaN
/// (Rust's `f32::max` would return 0). The CPU references use it; the
/// shaders have the same function, testing NaN on the bits.
pub fn relu(v: f32) -> f32 {
    if v.is_nan() {
        v
    } else {
        v.max(0.0)
    }
}

/// A clamp epilogue ([`crate::graph::Clamp`]) as the CPU references compute
/// it: NaN stays NaN; otherwise `max` with a finite-or-`+∞` lower bound,
/// then `min` with a finite-or-`−∞` upper bound, each skipped when the bound
/// is infinite (no bound), as the shaders skip them (bits of the flags word
/// `clamp_uniform` makes). For `[0, +∞)` this is [`relu`] exactly.
pub fn clamp(v: f32, c: crate::graph::Clamp) -> f32 {
    if v.is_nan() {
        return v;
    }
    let mut r = v;
    if c.min > f32::NEG_INFINITY {
        r = r.max(c.min);
    }
    if c.max < f32::INFINITY {
        r = r.min(c.max);
    }
    r
}

/// [`clamp`] when `c` is set, else `v`.
pub fn clamp_opt(v: f32, c: Option<crate::graph::Clamp>) -> f32 {
    match c {
        Some(c) => clamp(v, c),
        None => v,
    }
}

/// A clamp epilogue as the shaders read it from their params uniform:
/// `(flags, lo, hi)`, bit 0 of `flags` "clamp below at `lo`", bit 1 "clamp
/// above at `hi`". An infinite bound sets no bit (so no infinity is ever
/// passed to a shader); `None` is `(0, 0, 0)`.
pub(crate) fn clamp_uniform(c: Option<crate::graph::Clamp>) -> (u32, f32, f32) {
    let Some(c) = c else { return (0, 0.0, 0.0) };
    let mut flags = 0;
    let (mut lo, mut hi) = (0.0, 0.0);
    if c.min > f32::NEG_INFINITY {
        flags |= 1;
        lo = c.min;
    }
    if c.max < f32::INFINITY {
        flags |= 2;
        hi = c.max;
    }
    (flags, lo, hi)
}

/// `max(a, b)` as PyTorch's max pooling computes it: NaN wins.
pub fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// `|gpu − ref| ≤ atol + rtol·|ref|`: how far a GPU result may be from the
/// CPU reference. Declared once per kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f32,
    /// Relative part.
    pub rtol: f32,
}

impl Tolerance {
    /// True when `got` is within tolerance of `want` (NaN is never close).
    pub fn close(&self, got: f32, want: f32) -> bool {
        (got - want).abs() <= self.atol + self.rtol * want.abs()
    }

    /// The tolerance of a kernel's f16 variant, from `self`, its f32
    /// variant's (the bound on `|a − b|` for the GPU's unrounded result
    /// `a` and the f32 reference's `b` on the same inputs).
    ///
    /// Why this is the whole story: an f16 kernel loads f16 values,
    /// converts them to f32 exactly, and does the f32 kernel's arithmetic
    /// in the f32 kernel's order (the product of two f16 values is exact in
    /// f32), so before its store it holds exactly what the f32 kernel
    /// computes on the f16-rounded inputs: `a`, with `|a − b| ≤ δ = atol +
    /// rtol·|b|` against the f32 reference on those inputs. Then both
    /// round once. The f16 CPU reference rounds to nearest: `|r − b| ≤
    /// u(b)/2`. WGSL lets the GPU's conversion take either neighbour of a
    /// value it cannot represent: `|g − a| < u(a)`. With u(x) the spacing of
    /// f16 at x, u(x) ≤ 2⁻¹⁰·|x| + 2⁻²⁴ (normal numbers; 2⁻²⁴ below 2⁻¹⁴):
    ///
    /// ```text
    /// |g − r| ≤ δ + u(a) + u(b)/2
    ///         ≤ δ·(1 + 2⁻¹⁰) + 1.5·2⁻¹⁰·|b| + 1.5·2⁻²⁴          (|a| ≤ |b| + δ)
    ///         = atol·(1 + 2⁻¹⁰) + 1.5·2⁻²⁴ + c·|b|,  c = rtol·(1 + 2⁻¹⁰) + 1.5·2⁻¹⁰
    /// |b| ≤ (|r| + 2⁻²⁵) / (1 − 2⁻¹¹)                             (from |r − b| ≤ u(b)/2)
    /// ```
    ///
    /// so `rtol' = c / (1 − 2⁻¹¹)` and
    /// `atol' = atol·(1 + 2⁻¹⁰) + 1.5·2⁻²⁴ + rtol'·2⁻²⁵`. A copy
    /// (`atol = rtol = 0`) of values that are already
    /// f16 is exact and needs none of this; a conversion of f32 to f16
    /// (the input transpose) gets `rtol' ≈ 1.5·2⁻¹⁰`. Values beyond f16's
    /// range (±65504) are outside the bound: WGSL leaves their conversion
    /// to the implementation.
    pub const fn rounded_to_f16(self) -> Tolerance {
        let u = 1.0 / 1024.0; // 2^-10
        let tiny = 1.0 / 16_777_216.0; // 2^-24
        let c = self.rtol * (1.0 + u) + 1.5 * u;
        let rtol = c / (1.0 - u / 2.0);
        Tolerance {
            atol: self.atol * (1.0 + u) + 1.5 * tiny + rtol * tiny / 2.0,
            rtol,
        }
    }
}

/// `x` rounded to the nearest f16 (ties to even) and back: what an f16
/// tensor holds for `x`. NaN stays NaN; beyond ±65504 is ±infinity.
pub fn round_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// Every element of `x` rounded as [`round_f16`]: an f32 tensor as the
/// GPU stores it in f16.
pub fn rounded_f16(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| round_f16(v)).collect()
}

/// Rounds every element of `x` in place as [`round_f16`].
pub fn round_f16_in_place(x: &mut [f32]) {
    for v in x {
        *v = round_f16(*v);
    }
}

/// The IEEE half bits of `x` (rounded to nearest): the bytes an f16
/// tensor holds, in either f16 storage mode.
pub fn f16_bits(x: &[f32]) -> Vec<u16> {
    x.iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}
