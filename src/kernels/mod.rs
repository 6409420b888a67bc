//! The kernel families: each module reads doc → params → CPU reference →
//! dispatch.
//!
//! Conventions shared by every kernel:
//! - GPU activations are NHWC f32 (channels contiguous); the CPU references
//!   work on PyTorch's NCHW so that they are an independent oracle and the
//!   public API speaks NCHW. `docs/KERNELS.md` explains the choice.
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
pub mod conv2d;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod pool;
pub mod softmax;

/// One pipeline a launcher can create: shader, entry point, override
/// constants, bind group layout. [`catalogue`] lists them all.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSpec {
    /// The shader family.
    pub shader: crate::shaders::Shader,
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
    all.extend(conv2d::pipelines(limits));
    all.extend(elementwise::pipelines());
    all.extend(layout::pipelines());
    all.extend(linear::pipelines());
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
}
