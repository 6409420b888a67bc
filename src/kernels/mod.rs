//! The kernel families: each module reads doc → params → CPU reference →
//! dispatch.
//!
//! Conventions shared by every kernel:
//! - GPU activations are NHWC f32 (channels contiguous); the CPU references
//!   work on PyTorch's NCHW so that they are an independent oracle and the
//!   public API speaks NCHW. `docs/KERNELS.md` explains the choice.
//! - Binding 0 is the params uniform; storage bindings follow in the order
//!   the module documents. Shapes live in the uniform, never in WGSL text.
//! - A kernel's `*_gpu` function builds a [`Dispatch`]: pipeline (from the
//!   context's cache), uniform buffer and bind group, all made once. Encoding
//!   a dispatch creates nothing.
//! - Each kernel declares its comparison tolerance once, as a [`Tolerance`].

pub mod batchnorm;
pub mod concat;
pub mod conv2d;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod pool;
pub mod softmax;

use crate::context::{Binding, Context};
use crate::error::Result;
use crate::shaders::Shader;

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

/// One recorded kernel launch: a cached pipeline, its bind group (holding
/// its params uniform and buffers), and the workgroup grid. Created once at
/// compile time; encoding it creates nothing.
#[derive(Debug)]
pub struct Dispatch {
    /// Human-readable name: the graph node (PyTorch key prefix) or kernel name.
    pub label: String,
    /// Floating-point operations this dispatch performs (a multiply-add is 2).
    pub flops: u64,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

impl Dispatch {
    /// Records the dispatch into `pass`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.workgroups[0], self.workgroups[1], self.workgroups[2]);
    }

    /// The workgroup grid.
    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }

    /// The (cached, shared) pipeline this dispatch runs; equal pipelines
    /// compare equal, so a graph can count its distinct pipelines.
    pub fn pipeline(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }
}

/// The pieces every kernel passes to [`make_dispatch`].
pub(crate) struct DispatchSpec<'a, P: bytemuck::Pod> {
    pub label: String,
    pub shader: Shader,
    pub entry: &'static str,
    pub bindings: &'static [Binding],
    pub constants: &'a [(&'static str, f64)],
    pub params: &'a P,
    /// Storage buffers for bindings 1.. in order.
    pub buffers: &'a [&'a wgpu::Buffer],
    pub workgroups: [u32; 3],
    pub flops: u64,
}

/// Builds a [`Dispatch`]: gets the cached pipeline, writes the params into a
/// new uniform buffer and makes the bind group.
pub(crate) fn make_dispatch<P: bytemuck::Pod>(
    ctx: &Context,
    spec: DispatchSpec<'_, P>,
) -> Result<Dispatch> {
    let (pipeline, bgl) = ctx.pipeline(spec.shader, spec.entry, spec.bindings, spec.constants)?;
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    for &n in spec.workgroups.iter() {
        if n > max {
            return Err(crate::Error::Limit {
                node: spec.label.clone(),
                limit: "max_compute_workgroups_per_dimension",
                needed: n as u64,
                available: max as u64,
            });
        }
    }
    let uniform = ctx.uniform_buffer(&spec.label, spec.params);
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: uniform.as_entire_binding(),
    }];
    for (i, b) in spec.buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.as_entire_binding(),
        });
    }
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&spec.label),
        layout: &bgl,
        entries: &entries,
    });
    Ok(Dispatch {
        label: spec.label,
        flops: spec.flops,
        pipeline,
        bind_group,
        workgroups: spec.workgroups,
    })
}

/// A grid of `ceil(n / per_group)` workgroups folded into x and y so that no
/// dimension exceeds 65535. Shaders linearise with
/// `gid.x + gid.y * num_workgroups.x * WG`.
pub(crate) fn grid_1d(n: usize, per_group: usize) -> [u32; 3] {
    let groups = n.div_ceil(per_group).max(1);
    let x = groups.min(65535);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}
