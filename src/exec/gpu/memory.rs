//! Activation memory of a compiled graph: the arena buffers of the plan's
//! placement (every storage root at a byte offset; usually one buffer, as
//! every activation binding is read-write), where each value lives in
//! them, the NaN poison, the micro-batch that makes every value fit the
//! device's limits, and the accounting of every buffer the executor
//! creates.

use super::CompileOptions;
use crate::device::buffers::BufferRange;
use crate::device::{Context, Span};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::plan::Plan;
use std::cell::Cell;

thread_local! {
    /// Buffers created by the executor on this thread (compiles, runs and
    /// profiles of every compiled graph), so that a test can check that
    /// runs create none while other tests compile on other threads.
    pub(super) static BUFFERS_CREATED: Cell<u64> = const { Cell::new(0) };
    /// Bytes of those buffers.
    pub(super) static BYTES_CREATED: Cell<u64> = const { Cell::new(0) };
}

/// Counts and makes the executor's buffers.
pub(super) struct Alloc<'a> {
    pub ctx: &'a Context,
    /// Buffers created.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl<'a> Alloc<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Self {
            ctx,
            count: 0,
            bytes: 0,
        }
    }

    fn note(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        BUFFERS_CREATED.with(|c| c.set(c.get() + 1));
        BYTES_CREATED.with(|c| c.set(c.get() + bytes));
    }

    /// A storage buffer of `len` f32.
    pub fn storage(&mut self, label: &str, len: usize) -> wgpu::Buffer {
        let b = self.ctx.storage_buffer(label, len);
        self.note(b.size());
        b
    }

    /// A storage buffer holding `data`.
    pub fn init(&mut self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let b = self.ctx.storage_buffer_init(label, data);
        self.note(b.size());
        b
    }

    /// A storage buffer holding `data` stored as `storage` says (f32, or
    /// f16 rounded to nearest).
    pub fn init_tensor(
        &mut self,
        label: &str,
        storage: crate::shaders::Storage,
        data: &[f32],
    ) -> wgpu::Buffer {
        let b = self.ctx.tensor_buffer_init(label, storage, data);
        self.note(b.size());
        b
    }

    /// A buffer of `size` bytes (at least 4) with `usage`.
    pub fn raw(&mut self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let b = self.ctx.buffer(label, size, usage);
        self.note(b.size());
        b
    }
}

/// The activation arena: one buffer per buffer of the plan's
/// [`crate::plan::Placement`].
pub(super) struct Memory {
    /// Buffer `k` of the placement.
    pub buffers: Vec<wgpu::Buffer>,
}

/// Activation offsets are aligned to at least this many bytes: WebGPU's
/// default `minStorageBufferOffsetAlignment`, which every WebGPU device
/// accepts. A device may allow less (lavapipe through wgpu: 4), but then a
/// run would not be valid WebGPU elsewhere (Dawn refuses its traces), and
/// 256-byte alignment suits every GPU's memory transactions; it costs a few
/// bytes per small value (the CIFAR nets' 1.021× of the lower bound).
pub(super) const MIN_OFFSET_ALIGNMENT: u64 = 256;

/// The memory options of the plan on `limits`: offsets aligned to
/// [`MIN_OFFSET_ALIGNMENT`] or the device's alignment if larger, the
/// device's size limits, and one buffer for reads and writes alike (every
/// activation binding is read-write, so a dispatch may read and write
/// different ranges of one buffer).
pub(super) fn memory_options(limits: &wgpu::Limits) -> crate::plan::MemoryOptions {
    crate::plan::MemoryOptions {
        offset_alignment: (limits.min_storage_buffer_offset_alignment as u64)
            .max(MIN_OFFSET_ALIGNMENT),
        max_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        split_read_write: false,
    }
}

impl Memory {
    /// Creates the placement's buffers.
    pub fn new(alloc: &mut Alloc, plan: &Plan) -> Self {
        let buffers = plan
            .placement
            .buffers
            .iter()
            .enumerate()
            .map(|(k, &bytes)| alloc.storage(&format!("activations {k}"), (bytes / 4) as usize))
            .collect();
        Self { buffers }
    }

    /// The storage holding `v` (its root's byte range in the arena), `v`'s
    /// channel offset within it and the root's channel count.
    pub fn place<'m>(&'m self, plan: &Plan, v: ValueId) -> (Span<'m>, usize, usize) {
        let st = plan.storage[v.0].expect("produced");
        let (buf, offset) = plan.placement.at[st.root.0].expect("every root is placed");
        let bytes = plan.placement.bytes[st.root.0];
        (
            Span::new(&self.buffers[buf], offset, bytes),
            st.channel_offset,
            plan.shapes[st.root.0][1],
        )
    }

    /// A value a kernel reads or writes whole (never an in-place concat
    /// input: those are read by their concat alone, see
    /// [`crate::plan::check_alias`]).
    pub fn dense<'m>(&'m self, plan: &Plan, v: ValueId, node: &str) -> Result<Span<'m>> {
        let (span, off, _) = self.place(plan, v);
        if off != 0 {
            return Err(Error::Graph {
                node: node.into(),
                message: format!("value {} is an in-place concat input", v.0),
            });
        }
        Ok(span)
    }

    /// The NaN poison of [`super::CompileOptions::poison`]: a NaN-filled
    /// buffer as large as the largest target range, and the ranges to
    /// overwrite from it before each run: the
    /// arena and each of `extra` (transposed outputs, the split-K scratch),
    /// but not `keep` (the input's range when a run copies the input
    /// straight into the arena).
    pub fn poison<'b>(
        &'b self,
        alloc: &mut Alloc,
        extra: impl Iterator<Item = &'b wgpu::Buffer>,
        keep: &BufferRange,
    ) -> (wgpu::Buffer, Vec<BufferRange>) {
        let range = |b: &wgpu::Buffer, offset, size| BufferRange {
            buffer: b.clone(),
            offset,
            size,
        };
        let mut targets: Vec<BufferRange> = Vec::new();
        for b in self.buffers.iter().chain(extra) {
            if targets.iter().any(|t| t.buffer == *b) {
                continue;
            }
            if *b == keep.buffer {
                let end = keep.offset + keep.size;
                if keep.offset > 0 {
                    targets.push(range(b, 0, keep.offset));
                }
                if end < b.size() {
                    targets.push(range(b, end, b.size() - end));
                }
            } else {
                targets.push(range(b, 0, b.size()));
            }
        }
        let largest = targets.iter().map(|t| t.size).max().unwrap_or(4);
        let nan = f32::from_bits(POISON_BITS);
        let nan = alloc.init("poison", &vec![nan; (largest / 4) as usize]);
        (nan, targets)
    }
}

/// The poison's 32-bit word: a NaN as an f32 and as each of its two f16
/// halves (0x7fc0), so one buffer poisons f32 and f16 tensors alike.
pub(super) const POISON_BITS: u32 = 0x7fc0_7fc0;

/// Refuses a buffer that is bound as storage: over
/// `max_storage_buffer_binding_size` or `max_buffer_size`.
pub(super) fn limit_check(limits: &wgpu::Limits, node: &str, bytes: u64) -> Result<()> {
    for (limit, available) in [
        (
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", limits.max_buffer_size),
    ] {
        if bytes > available {
            return Err(Error::Limit {
                node: node.into(),
                limit,
                needed: bytes,
                available,
            });
        }
    }
    Ok(())
}

/// Refuses a buffer that is copied to or from but never bound: over
/// `max_buffer_size`.
pub(super) fn buffer_limit_check(limits: &wgpu::Limits, node: &str, bytes: u64) -> Result<()> {
    if bytes > limits.max_buffer_size {
        return Err(Error::Limit {
            node: node.into(),
            limit: "max_buffer_size",
            needed: bytes,
            available: limits.max_buffer_size,
        });
    }
    Ok(())
}

/// Images per micro-batch for `graph` on input `full` (NCHW): as
/// `opts.micro_batch` asks (at most the batch), else the whole batch when
/// every value, at its size in `storage`, fits the device's
/// storage-binding and buffer limits, else the largest count that does
/// (every value's size is linear in the batch).
/// The count is then evened out over the micro-batches needed, so the last
/// is not much smaller than the others. 0 images is an error; a single
/// image too large is left to the plan's limit check, which names the node.
pub(super) fn micro_batch(
    graph: &Graph,
    full: [usize; 4],
    opts: &CompileOptions,
    limits: &wgpu::Limits,
    storage: crate::shaders::Storage,
) -> Result<usize> {
    let n = full[0];
    let most = match opts.micro_batch {
        Some(0) => {
            return Err(Error::Invalid(
                "micro_batch must be at least one image".into(),
            ))
        }
        Some(m) => m.min(n),
        None => {
            let shapes = graph.infer_shapes(full)?;
            let per_image = shapes
                .iter()
                .map(|s| {
                    s.iter().product::<usize>() as u64 * storage.element_bytes() / n.max(1) as u64
                })
                .max()
                .unwrap_or(0);
            let limit = limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
            (limit / per_image.max(1)).clamp(1, n as u64) as usize
        }
    };
    let micro = n.div_ceil(n.div_ceil(most));
    // A node that couples the images (a softmax over N, a transpose
    // moving N, a pad of N) needs the whole batch in one run.
    if let (true, Some(node)) = (micro < n, graph.batch_coupled()) {
        return Err(Error::Limit {
            node: node.name.clone(),
            limit: "micro-batch (the node couples the images, so the batch cannot be split)",
            needed: n as u64,
            available: micro as u64,
        });
    }
    Ok(micro)
}
