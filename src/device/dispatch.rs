//! Recorded kernel launches and the command lists runs are made of.
//!
//! A [`Dispatch`] is made once, at compile time, by [`make_dispatch`]: the
//! pipeline comes from the context's cache, the params uniform and the bind
//! group are created there. It also keeps the record of how it was made
//! ([`DispatchRecord`]: shader, entry point, constants, bindings and their
//! buffer ranges, the uniform's bytes), so that a run can be written out
//! and replayed by another WebGPU implementation. Encoding creates nothing.
//!
//! A run is a list of [`Command`]s (buffer copies and dispatches);
//! [`encode_commands`] records it into a command encoder, consecutive
//! dispatches sharing one compute pass.

use super::buffers::{BufferRange, Span};
use super::cache::Binding;
use super::context::Context;
use crate::error::{Error, Result};
use crate::shaders::{Module, Shader, Storage};

/// How a [`Dispatch`] was made: enough to recreate it on another WebGPU
/// implementation.
#[derive(Debug, Clone)]
pub struct DispatchRecord {
    /// The shader module: family and storage mode.
    pub module: Module,
    /// The entry point.
    pub entry: &'static str,
    /// Override constants, sorted by name.
    pub constants: Vec<(&'static str, f64)>,
    /// The bind group layout: binding 0 the params uniform, then storage.
    pub bindings: &'static [Binding],
    /// The params uniform buffer (binding 0) and its bytes.
    pub uniform: wgpu::Buffer,
    /// The bytes written into [`DispatchRecord::uniform`].
    pub uniform_bytes: Vec<u8>,
    /// The ranges bound at bindings 1.. in order.
    pub storage: Vec<BufferRange>,
    /// Bytes of workgroup memory the entry point declares with these
    /// constants (what a device replaying it must allow).
    pub workgroup_bytes: u32,
}

/// One recorded kernel launch: a cached pipeline, its bind group (holding
/// its params uniform and buffer ranges), and the workgroup grid. Created
/// once at compile time; encoding it creates nothing.
#[derive(Debug)]
pub struct Dispatch {
    /// Human-readable name: the graph node (PyTorch key prefix) or kernel name.
    pub label: String,
    /// Floating-point operations this dispatch performs (a multiply-add is 2).
    pub flops: u64,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    record: DispatchRecord,
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

    /// How it was made (shader, entry, constants, bound ranges, uniform).
    pub fn record(&self) -> &DispatchRecord {
        &self.record
    }
}

/// The pieces every kernel passes to [`make_dispatch`].
pub struct DispatchSpec<'a, P: bytemuck::Pod> {
    /// The dispatch's label (node name).
    pub label: String,
    /// The shader family.
    pub shader: Shader,
    /// How its tensors are stored (which expansion of the family).
    pub storage: Storage,
    /// The entry point.
    pub entry: &'static str,
    /// The bind group layout (binding 0 the params uniform).
    pub bindings: &'static [Binding],
    /// Override constants.
    pub constants: &'a [(&'static str, f64)],
    /// The params uniform's contents.
    pub params: &'a P,
    /// Storage ranges for bindings 1.. in order.
    pub buffers: &'a [Span<'a>],
    /// The workgroup grid.
    pub workgroups: [u32; 3],
    /// Floating-point operations (a multiply-add is 2).
    pub flops: u64,
    /// Bytes of workgroup memory the entry point declares with these
    /// constants (each kernel states it; `shaders_validate.rs` checks it
    /// against the shader).
    pub workgroup_bytes: u32,
}

/// Builds a [`Dispatch`]: gets the cached pipeline, writes the params into a
/// new uniform buffer and makes the bind group. Errors name the label: a
/// grid over `max_compute_workgroups_per_dimension`, or a bound range that
/// is empty, misaligned or over `max_storage_buffer_binding_size`.
pub fn make_dispatch<P: bytemuck::Pod>(
    ctx: &Context,
    spec: DispatchSpec<'_, P>,
) -> Result<Dispatch> {
    let module = Module::new(spec.shader, spec.storage);
    let (pipeline, bgl) = ctx.pipeline(module, spec.entry, spec.bindings, spec.constants)?;
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    for &n in spec.workgroups.iter() {
        if n > max {
            return Err(Error::Limit {
                node: spec.label.clone(),
                limit: "max_compute_workgroups_per_dimension",
                needed: n as u64,
                available: max as u64,
            });
        }
    }
    let align = ctx.limits.min_storage_buffer_offset_alignment as u64;
    for (k, s) in spec.buffers.iter().enumerate() {
        if s.size == 0 || s.offset + s.size > s.buffer.size() {
            return Err(Error::Invalid(format!(
                "{}: binding {} is bytes {}..{} of a {}-byte buffer",
                spec.label,
                k + 1,
                s.offset,
                s.offset + s.size,
                s.buffer.size()
            )));
        }
        if !s.offset.is_multiple_of(align) {
            return Err(Error::Invalid(format!(
                "{}: binding {} starts at byte {}, not a multiple of the device's \
                 min_storage_buffer_offset_alignment {align}",
                spec.label,
                k + 1,
                s.offset
            )));
        }
    }
    let uniform = ctx.uniform_buffer(&spec.label, spec.params);
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: uniform.as_entire_binding(),
    }];
    for (i, s) in spec.buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: s.binding(),
        });
    }
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&spec.label),
        layout: &bgl,
        entries: &entries,
    });
    let mut constants = spec.constants.to_vec();
    constants.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Dispatch {
        label: spec.label,
        flops: spec.flops,
        pipeline,
        bind_group,
        workgroups: spec.workgroups,
        record: DispatchRecord {
            module,
            entry: spec.entry,
            constants,
            bindings: spec.bindings,
            uniform,
            uniform_bytes: bytemuck::bytes_of(spec.params).to_vec(),
            storage: spec.buffers.iter().map(Span::to_range).collect(),
            workgroup_bytes: spec.workgroup_bytes,
        },
    })
}

/// A grid of `ceil(n / per_group)` workgroups folded into x and y so that no
/// dimension exceeds 65535. Shaders linearise with
/// `gid.x + gid.y * num_workgroups.x * WG`.
pub fn grid_1d(n: usize, per_group: usize) -> [u32; 3] {
    let groups = n.div_ceil(per_group).max(1);
    let x = groups.min(65535);
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

/// One step of a run: a buffer copy or a dispatch.
#[derive(Debug, Clone, Copy)]
pub enum Command<'a> {
    /// `size` bytes from `src` at `src_offset` to `dst` at `dst_offset`.
    Copy {
        /// Source buffer.
        src: &'a wgpu::Buffer,
        /// First source byte.
        src_offset: u64,
        /// Destination buffer.
        dst: &'a wgpu::Buffer,
        /// First destination byte.
        dst_offset: u64,
        /// Bytes (a multiple of 4).
        size: u64,
    },
    /// A kernel launch.
    Dispatch(&'a Dispatch),
}

/// Records `commands` into `enc`: copies as they come, consecutive
/// dispatches in one compute pass labelled `label`.
pub fn encode_commands(enc: &mut wgpu::CommandEncoder, label: &str, commands: &[Command<'_>]) {
    let mut k = 0;
    while k < commands.len() {
        match commands[k] {
            Command::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                size,
            } => {
                enc.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
                k += 1;
            }
            Command::Dispatch(_) => {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(label),
                    timestamp_writes: None,
                });
                while let Some(Command::Dispatch(d)) = commands.get(k) {
                    d.encode(&mut pass);
                    k += 1;
                }
            }
        }
    }
}
