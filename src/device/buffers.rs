//! Buffers: the byte ranges kernels bind ([`Span`]), buffer creation, and
//! read-back that waits for its own submission only.
//!
//! Every read-back maps a `MAP_READ` buffer after a submission that copied
//! into it, then waits for that submission: asynchronously through the
//! context's polling thread ([`Context::read_buffer_async`], the paths
//! under `*_async`), or on the calling thread ([`Context::read_buffer`],
//! the blocking wrappers). Neither waits for work submitted after it, so an
//! application's own GPU work on a shared device is never waited for.

use super::context::Context;
use super::poll::{wait_blocking, Signal};
use crate::error::{Error, Result};
use crate::shaders::Storage;
use std::cell::Cell;
use std::future::Future;
use wgpu::util::DeviceExt;

thread_local! {
    /// Buffers created through a [`Context`] on this thread, and their bytes.
    static CREATED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Buffers created through any [`Context`] on the calling thread so far,
/// and their total bytes: every buffer the engine makes goes through the
/// context's helpers, so a test can account for all device memory a step
/// allocates.
pub fn created_on_this_thread() -> (u64, u64) {
    CREATED.with(Cell::get)
}

fn note(b: &wgpu::Buffer) {
    CREATED.with(|c| {
        let (n, bytes) = c.get();
        c.set((n + 1, bytes + b.size()));
    });
}

/// A byte range of a buffer, as a kernel binds it: the whole buffer, or an
/// activation placed at an offset inside a larger one. `offset` must be a
/// multiple of the device's `min_storage_buffer_offset_alignment` when
/// bound as storage.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// First byte.
    pub offset: u64,
    /// Length in bytes (nonzero).
    pub size: u64,
}

impl<'a> Span<'a> {
    /// The whole of `buffer`.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Self {
            buffer,
            offset: 0,
            size: buffer.size(),
        }
    }

    /// `size` bytes of `buffer` from `offset`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64, size: u64) -> Self {
        Self {
            buffer,
            offset,
            size,
        }
    }

    /// The bind-group resource for this range.
    pub fn binding(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.size),
        })
    }

    /// An owned copy (the buffer handle is reference-counted).
    pub fn to_range(&self) -> BufferRange {
        BufferRange {
            buffer: self.buffer.clone(),
            offset: self.offset,
            size: self.size,
        }
    }
}

impl<'a> From<&'a wgpu::Buffer> for Span<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Span::whole(buffer)
    }
}

/// An owned [`Span`]: what a recorded dispatch keeps of each binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferRange {
    /// The buffer.
    pub buffer: wgpu::Buffer,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

impl BufferRange {
    /// Borrowed as a [`Span`].
    pub fn span(&self) -> Span<'_> {
        Span::new(&self.buffer, self.offset, self.size)
    }
}

/// A `MAP_READ` buffer whose mapping has been requested; [`MapRead::finish`]
/// returns its contents once the submission that filled it is done.
pub(crate) struct MapRead {
    buffer: wgpu::Buffer,
    bytes: u64,
    mapped: Signal<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl MapRead {
    /// Requests the mapping of the first `bytes` of `buffer` (a `MAP_READ`
    /// buffer, the destination of a copy already submitted).
    pub fn start(buffer: &wgpu::Buffer, bytes: u64) -> Self {
        let bytes = bytes.max(4).div_ceil(4) * 4;
        let mapped = Signal::new();
        let done = mapped.clone();
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| done.set(r));
        MapRead {
            buffer: buffer.clone(),
            bytes,
            mapped,
        }
    }

    /// The first `len` elements of type `T` (f32 for tensors, u64 for
    /// timestamps), once mapped; unmaps the buffer.
    pub async fn finish<T: bytemuck::Pod>(self, len: usize) -> Result<Vec<T>> {
        self.mapped
            .await
            .map_err(|e| Error::Gpu(format!("mapping read-back buffer: {e}")))?;
        let out = {
            let view = self
                .buffer
                .get_mapped_range(0..self.bytes)
                .map_err(|e| Error::Gpu(format!("mapped range: {e}")))?;
            let want = len * std::mem::size_of::<T>();
            if want > view.len() {
                return Err(Error::Gpu(format!(
                    "read-back of {want} bytes from a mapping of {}",
                    view.len()
                )));
            }
            bytemuck::pod_collect_to_vec::<u8, T>(&view[..want])
        };
        self.buffer.unmap();
        Ok(out)
    }
}

impl Context {
    /// Creates a storage buffer of `len` f32 elements (at least one), usable
    /// as a copy source and destination.
    pub fn storage_buffer(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.buffer(
            label,
            (len.max(1) * 4) as u64,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// Creates a buffer of `size` bytes (at least 4) with `usage`.
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4),
            usage,
            mapped_at_creation: false,
        });
        note(&b);
        b
    }

    /// Creates a storage buffer holding `data` (an empty slice gives one zero).
    pub fn storage_buffer_init(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let zero = [0f32];
        let data = if data.is_empty() { &zero[..] } else { data };
        let b = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            });
        note(&b);
        b
    }

    /// Creates a storage buffer holding `bytes`, zero-padded to a multiple
    /// of 4 (an empty slice gives four zero bytes).
    pub fn storage_buffer_init_bytes(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().max(1).div_ceil(4) * 4, 0);
        let b = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            });
        note(&b);
        b
    }

    /// Creates a storage buffer holding the tensor `data` stored as
    /// `storage` says: f32, or IEEE half (rounded to nearest, ties to
    /// even) in either f16 mode, whose bytes are the same.
    pub fn tensor_buffer_init(&self, label: &str, storage: Storage, data: &[f32]) -> wgpu::Buffer {
        if storage.is_f16() {
            let bits: Vec<u16> = data
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            self.storage_buffer_init_bytes(label, bytemuck::cast_slice(&bits))
        } else {
            self.storage_buffer_init(label, data)
        }
    }

    /// Creates a uniform buffer holding `params`.
    pub fn uniform_buffer<T: bytemuck::Pod>(&self, label: &str, params: &T) -> wgpu::Buffer {
        let b = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
        note(&b);
        b
    }

    /// Submits `commands` with a validation error scope around the
    /// submission; returns its index and the scope's error (if any), which
    /// is known at once on native backends and may be awaited elsewhere.
    pub(crate) fn submit(
        &self,
        commands: wgpu::CommandBuffer,
    ) -> (
        wgpu::SubmissionIndex,
        impl Future<Output = Option<wgpu::Error>> + wgpu::WasmNotSend,
    ) {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let index = self.queue.submit([commands]);
        (index, scope.pop())
    }

    /// Resolves once submission `index` is done on the GPU (its map
    /// callbacks have run), without blocking the caller: a thread of the
    /// context's waits for that submission only.
    pub(crate) fn wait_async(
        &self,
        index: wgpu::SubmissionIndex,
    ) -> impl Future<Output = Result<()>> {
        self.poller.wait(index)
    }

    /// Blocks until submission `index` is done on the GPU; waits for no
    /// later submission.
    pub(crate) fn wait_blocking(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        wait_blocking(&self.device, index)
    }

    /// Copies `len` f32 elements from the start of `buffer` (a `COPY_SRC`
    /// buffer) back to the host, waiting for that copy only. Blocking.
    pub fn read_buffer(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let (index, err, map) = self.start_read(buffer, len);
        if let Some(e) = pollster::block_on(err) {
            return Err(Error::Gpu(e.to_string()));
        }
        self.wait_blocking(index)?;
        pollster::block_on(map.finish(len))
    }

    /// Copies the first `len` elements of the tensor in `buffer`, stored as
    /// `storage` says, back to the host as f32 (f16 values convert
    /// exactly). Blocking.
    pub fn read_tensor(
        &self,
        buffer: &wgpu::Buffer,
        storage: Storage,
        len: usize,
    ) -> Result<Vec<f32>> {
        if !storage.is_f16() {
            return self.read_buffer(buffer, len);
        }
        let words = self.read_buffer(buffer, len.div_ceil(2))?;
        Ok(words
            .iter()
            .flat_map(|w| {
                let b = w.to_bits();
                [b as u16, (b >> 16) as u16]
            })
            .take(len)
            .map(|h| half::f16::from_bits(h).to_f32())
            .collect())
    }

    /// [`Context::read_buffer`] without blocking the caller.
    pub async fn read_buffer_async(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let (index, err, map) = self.start_read(buffer, len);
        if let Some(e) = err.await {
            return Err(Error::Gpu(e.to_string()));
        }
        self.wait_async(index).await?;
        map.finish(len).await
    }

    fn start_read(
        &self,
        buffer: &wgpu::Buffer,
        len: usize,
    ) -> (
        wgpu::SubmissionIndex,
        impl Future<Output = Option<wgpu::Error>> + wgpu::WasmNotSend,
        MapRead,
    ) {
        let bytes = (len.max(1) * 4) as u64;
        let staging = self.buffer(
            "readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        let (index, err) = self.submit(enc.finish());
        (index, err, MapRead::start(&staging, bytes))
    }

    /// Encodes `dispatches` into one compute pass, submits once and waits
    /// for that submission. Blocking (tests and tools).
    pub fn run_dispatches(&self, dispatches: &[&super::Dispatch]) -> Result<()> {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for d in dispatches {
                d.encode(&mut pass);
            }
        }
        let (index, err) = self.submit(enc.finish());
        if let Some(e) = pollster::block_on(err) {
            return Err(Error::Gpu(e.to_string()));
        }
        self.wait_blocking(index)
    }
}
