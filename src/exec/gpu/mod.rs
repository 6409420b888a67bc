//! The GPU executor: a graph compiled once for one input shape, run many
//! times with one submission per run.
//!
//! [`CompiledGraph::compile`] does all the work that creates device objects:
//! it runs the passes ([`crate::passes`]), infers shapes for the compiled
//! `(batch, C, height, width)`, plans storage ([`crate::plan`]), checks every
//! buffer against the device's limits, creates one buffer per plan slot,
//! uploads the weights in the kernels' layouts (conv: packed weights and the
//! per-channel scale/shift of [`super::conv_epilogue`]; batchnorm: the four
//! raw tensors; linear: packed weight and bias), builds every [`Dispatch`]
//! (pipelines come from the context's cache), and makes the input upload and
//! output staging buffers.
//!
//! [`CompiledGraph::run`] then only writes the input, encodes every dispatch
//! into one compute pass of one command encoder, copies the outputs to the
//! staging buffers, submits once and maps them back. It creates no buffer,
//! pipeline or bind group. [`CompiledGraph::encode`] encodes the same run
//! into an application's command encoder instead, from and to the
//! application's GPU buffers (for a [`Context::from_wgpu`] on the
//! application's device).
//!
//! Micro-batches: when a value of the whole batch would exceed the device's
//! `max_storage_buffer_binding_size` or `max_buffer_size` (a large batch on
//! a device with small limits), or when [`CompileOptions::micro_batch`]
//! asks, the graph is compiled for a micro-batch of `m` images (the largest
//! that fits, evened out) and a run encodes one compute pass per
//! micro-batch, still in one submission: each copies its images from the
//! whole-batch input buffer into the graph's input, runs every dispatch and
//! copies its outputs into the whole batch's staging buffers. The last
//! micro-batch may be short; the images past its end are left over from
//! the one before and their outputs are not copied.
//!
//! Precision ([`CompileOptions::precision`]): in [`Precision::F16`]
//! activations and conv and linear weights are f16 on the device, stored
//! natively or packed ([`F16Storage`], chosen from the device's features
//! unless forced; [`Stats::storage`] says which), with every reduction and
//! epilogue in f32 and one rounding per stored result; per-channel vectors
//! stay f32. Weights are converted to f16 once, at upload, from the
//! [`Weights`] store's f32 (an f16 checkpoint round-trips exactly through
//! f32, a bf16 one is rounded to f16 once). Input and outputs stay f32:
//! the input transpose converts to f16, the output transposes back to f32
//! (always a dispatch in f16, where f32 may copy).
//!
//! Layouts: activations are NHWC on the GPU, NCHW at the API. `run` writes
//! the whole batch's NCHW input into an upload buffer (`encode` takes the
//! application's buffer in its place); each micro-batch copies its images
//! into the graph's input buffer, which is transposed into its slot (or is
//! the slot itself when `H·W = 1` or `C = 1`, where both orders agree). Outputs with `H·W > 1` and `C > 1` are transposed back
//! into an output buffer; others are copied straight from their slot.
//! A `Flatten` of `(N, C, 1, 1)` (or `C = 1`) is free (a view: same
//! storage); any other, an NHWC → NCHW transpose, which is PyTorch's
//! flatten order.
//! A concat input that the in-place pass aliased is written by its producer
//! at its channel offset and costs nothing; every other concat input is
//! copied with [`crate::kernels::concat::concat_gpu`].

mod lower;
mod memory;
mod outputs;
mod params;
mod profile;

use crate::device::buffers::BufferRange;
use crate::device::{encode_commands, Command, Context, Dispatch};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::kernels::{conv2d, Tolerance};
use crate::passes::{optimize_report, PassOptions};
use crate::plan::Plan;
use crate::shaders::Storage;
use crate::tensor::{Layout, Tensor};
use crate::weights::Weights;
use memory::{buffer_limit_check, micro_batch, Alloc, Memory, BUFFERS_CREATED, BYTES_CREATED};
use outputs::Output;
use profile::Timestamps;
use std::sync::Arc;

pub use super::Precision;

/// Tolerance of a whole graph on the GPU against the CPU executor
/// ([`super::cpu::run`]), on the unit-scale synthetic data of the tests.
///
/// Each conv is within [`conv2d::TOLERANCE`] (1e-4) of its reference, and
/// the passes change rounding (a folded batchnorm is one multiply-add
/// instead of four operations; a fused residual adds in another order).
/// Errors compound through a chain: a test block holds up to ~6 convs
/// deep, each of which can amplify its input's error by its gain
/// (~√(fan_in)·|w| ≈ 1 for the Kaiming-uniform synthetic weights), so the
/// relative error stays within ~10× one conv's. 1e-3 absolute and relative
/// leaves that margin and still catches any indexing or epilogue mistake,
/// whose errors are O(1).
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-3,
    rtol: 1e-3,
};

/// Tolerance of a whole graph on the GPU in f16 against the CPU executor
/// in f16 ([`super::cpu::run_with`] with [`Precision::F16`]), on the
/// tests' unit-scale synthetic data.
///
/// The same argument as [`TOLERANCE`], from the f16 kernels' bound: each
/// kernel's stored result is within [`conv2d::TOLERANCE_F16`] (about 1.5
/// f16 ulps, rtol ≈ 1.6e-3) of the f16 reference on equal inputs, and a
/// chain of ~6 convs of gain ≈ 1 compounds that to within ~10 of them.
pub const TOLERANCE_F16: Tolerance = Tolerance {
    atol: 1e-2,
    rtol: 1e-2,
};

/// How f16 tensors are stored on the device (see [`crate::shaders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum F16Storage {
    /// WGSL `f16` arrays: needs the device feature `SHADER_F16`.
    Native,
    /// Pairs of f16 packed into `u32` words: every device (the GL backend
    /// and WebGPU's default limits included).
    Packed,
}

impl F16Storage {
    /// Its name: `native` or `packed`.
    pub fn name(self) -> &'static str {
        match self {
            F16Storage::Native => "native",
            F16Storage::Packed => "packed",
        }
    }

    /// Parses `native` or `packed`; the error names the value and the
    /// choices.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(F16Storage::Native),
            "packed" => Ok(F16Storage::Packed),
            other => Err(Error::Invalid(format!(
                "f16 storage `{other}` is not one of: native, packed"
            ))),
        }
    }

    /// The shader storage mode.
    pub fn storage(self) -> Storage {
        match self {
            F16Storage::Native => Storage::F16,
            F16Storage::Packed => Storage::F16Packed,
        }
    }
}

/// How to compile a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Batch size N.
    pub batch: usize,
    /// Input height H.
    pub height: usize,
    /// Input width W.
    pub width: usize,
    /// Which optimisation passes to run first.
    pub passes: PassOptions,
    /// Fill every activation buffer with NaN at the start of each run (a
    /// copy from one NaN buffer made at compile time; nothing is created per
    /// run). For tests: an element no kernel writes then reads as NaN and
    /// fails the comparison instead of passing as a stale or zero value.
    pub poison: bool,
    /// Whether the launcher may split the reduction of convs that have too
    /// few output tiles to fill a GPU (see [`SplitK`]).
    pub split_k: SplitK,
    /// Run the batch in micro-batches of at most this many images
    /// (`None`: the whole batch at once, unless a value would exceed the
    /// device's storage-binding or buffer limit, in which case the largest
    /// micro-batch that fits is taken). See [`CompiledGraph`].
    pub micro_batch: Option<usize>,
    /// Grouped convs with at most this many output channels per group run
    /// as the direct conv instead of the tiled one (ResNeXt's 3×3s; 0:
    /// never). [`conv2d::DIRECT_MAX_CHANNELS_PER_GROUP`] unless set, to
    /// tune it on a GPU.
    pub grouped_direct_max: usize,
    /// Pointwise convs with at least this many reduction terms take the
    /// 128×64 tile when there are enough tiles; `None`: always 64×64.
    /// `Some(`[`conv2d::TALL_TILE_MIN_K`]`)` unless set, to tune it on a GPU.
    pub tall_tile_min_k: Option<usize>,
    /// The layout `run` and `encode` take the input in: NCHW (PyTorch's,
    /// the default) is transposed to the GPU's NHWC on the GPU; NHWC
    /// (TensorFlow/Keras models) is copied straight in.
    pub input_layout: Layout,
    /// The layout 4-D outputs are returned in (NCHW by default; NHWC skips
    /// the output transpose). `(N, F)` outputs are the same in both.
    pub output_layout: Layout,
    /// Precision of activations and weights on the device (f32 unless
    /// set; see the module doc).
    pub precision: Precision,
    /// With [`Precision::F16`]: how f16 is stored. `None` (the default):
    /// natively where the device has `SHADER_F16`, packed elsewhere.
    /// Forcing [`F16Storage::Native`] on a device without the feature is
    /// an error at compile.
    pub f16_storage: Option<F16Storage>,
}

/// Split-K policy: whether convs with fewer output tiles than a target
/// count of workgroups ([`conv2d::SPLIT_K_TARGET_WORKGROUPS`] unless
/// given) get their reduction cut into slices ([`conv2d::split_k_for`]),
/// two dispatches each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitK {
    /// On for GPUs, off for adapters that are CPUs (lavapipe, llvmpipe):
    /// they run workgroups on a few threads, so more workgroups buy
    /// nothing and the partial sums cost time (ResNet-50 at batch 1 ran
    /// about 20% slower split on lavapipe).
    #[default]
    Auto,
    /// Wherever [`conv2d::split_k_for`] splits (tests, and A/B timing).
    On,
    /// Never: one dispatch per conv.
    Off,
    /// On, splitting convs with fewer output tiles than this many
    /// workgroups until they have about that many: to tune the default
    /// for a GPU (more for a large GPU, fewer for a small one), since wgpu
    /// tells nothing of its core count.
    Target(usize),
}

impl SplitK {
    /// The workgroup count convs are split up to on an adapter of
    /// `device_type`, or `None` where K is not split.
    pub fn target(self, device_type: wgpu::DeviceType) -> Option<usize> {
        match self {
            SplitK::Auto if device_type == wgpu::DeviceType::Cpu => None,
            SplitK::Auto | SplitK::On => Some(conv2d::SPLIT_K_TARGET_WORKGROUPS),
            SplitK::Off => None,
            SplitK::Target(n) => Some(n),
        }
    }

    /// Its name on the command line and in `bench --json`: `auto`, `on`,
    /// `off`, or the target workgroup count.
    pub fn name(self) -> String {
        match self {
            SplitK::Auto => "auto".into(),
            SplitK::On => "on".into(),
            SplitK::Off => "off".into(),
            SplitK::Target(n) => n.to_string(),
        }
    }
}

impl CompileOptions {
    /// Input `(batch, ·, height, width)`, every pass on.
    pub fn new(batch: usize, height: usize, width: usize) -> Self {
        Self {
            batch,
            height,
            width,
            passes: PassOptions::default(),
            poison: false,
            split_k: SplitK::Auto,
            micro_batch: None,
            grouped_direct_max: conv2d::DIRECT_MAX_CHANNELS_PER_GROUP,
            tall_tile_min_k: Some(conv2d::TALL_TILE_MIN_K),
            input_layout: Layout::Nchw,
            output_layout: Layout::Nchw,
            precision: Precision::F32,
            f16_storage: None,
        }
    }

    /// The same in `precision` (see [`CompileOptions::precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The same with f16 stored as `storage` when the precision is f16
    /// (see [`CompileOptions::f16_storage`]).
    pub fn with_f16_storage(mut self, storage: F16Storage) -> Self {
        self.f16_storage = Some(storage);
        self
    }

    /// The shader storage mode these options give on `ctx`: f32, or for
    /// f16 the forced [`F16Storage`], else native where `ctx` has
    /// `SHADER_F16` and packed elsewhere. Forcing native f16 on a device
    /// without the feature is an [`Error::Invalid`] naming the adapter.
    pub fn storage(&self, ctx: &Context) -> Result<Storage> {
        if self.precision == Precision::F32 {
            return Ok(Storage::F32);
        }
        match self.f16_storage {
            Some(F16Storage::Native) if !ctx.supports(Storage::F16) => {
                Err(Error::Invalid(format!(
                    "native f16 storage needs the device feature SHADER_F16, which {} ({:?}) \
                 lacks; use packed f16 storage",
                    ctx.info.name, ctx.info.backend
                )))
            }
            Some(s) => Ok(s.storage()),
            None if ctx.supports(Storage::F16) => Ok(Storage::F16),
            None => Ok(Storage::F16Packed),
        }
    }

    /// The same taking the input in `layout` (see
    /// [`CompileOptions::input_layout`]).
    pub fn with_input_layout(mut self, layout: Layout) -> Self {
        self.input_layout = layout;
        self
    }

    /// The same returning 4-D outputs in `layout` (see
    /// [`CompileOptions::output_layout`]).
    pub fn with_output_layout(mut self, layout: Layout) -> Self {
        self.output_layout = layout;
        self
    }

    /// The same with grouped convs of at most `channels` output channels
    /// per group run as the direct conv (see
    /// [`CompileOptions::grouped_direct_max`]).
    pub fn with_grouped_direct_max(mut self, channels: usize) -> Self {
        self.grouped_direct_max = channels;
        self
    }

    /// The same with the 128×64 tile's K threshold for pointwise convs
    /// (see [`CompileOptions::tall_tile_min_k`]; `None`: never).
    pub fn with_tall_tile_min_k(mut self, min_k: Option<usize>) -> Self {
        self.tall_tile_min_k = min_k;
        self
    }

    /// The same run in micro-batches of at most `images` images (see
    /// [`CompileOptions::micro_batch`]).
    pub fn with_micro_batch(mut self, images: usize) -> Self {
        self.micro_batch = Some(images);
        self
    }

    /// The same with this split-K policy (see [`CompileOptions::split_k`]).
    pub fn with_split_k(mut self, split_k: SplitK) -> Self {
        self.split_k = split_k;
        self
    }

    /// The same with every activation buffer NaN-filled before each run
    /// (see [`CompileOptions::poison`]).
    pub fn poisoned(mut self) -> Self {
        self.poison = true;
        self
    }

    /// The same with these passes.
    pub fn with_passes(mut self, passes: PassOptions) -> Self {
        self.passes = passes;
        self
    }
}

/// What a compiled graph amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes of the graph as given (before the passes), input included.
    pub nodes: usize,
    /// Nodes after the passes.
    pub nodes_optimized: usize,
    /// Kernel launches per run (layout transposes included).
    pub dispatches: usize,
    /// Distinct pipelines this graph's dispatches use.
    pub pipelines: usize,
    /// Activation memory allocated: the arena buffers of the plan's
    /// placement (every activation at a byte offset).
    pub arena_bytes: u64,
    /// Activation memory with no sharing: every storage value's size.
    pub values_bytes: u64,
    /// Most activation bytes alive at one step (no plan can use less).
    pub lower_bound_bytes: u64,
    /// Bytes of parameters uploaded (packed weights, scale/shift, BN, bias),
    /// whether this graph uploaded them or shares them with a graph
    /// compiled earlier from the same weights.
    pub weight_bytes: u64,
    /// Bytes of every buffer the compiled graph holds: parameters (shared
    /// ones included), the arena, the input upload and staging buffers,
    /// output transposes and staging, the split-K scratch, the poison, the
    /// params uniforms and the timestamp buffers.
    pub device_bytes: u64,
    /// Floating-point operations per run (sum over dispatches).
    pub flops: u64,
    /// Batchnorms folded into convs.
    pub folded_bn: usize,
    /// ReLUs and adds fused into their producer.
    pub fused_epilogues: usize,
    /// Concat inputs written in place.
    pub inplace_concats: usize,
    /// Convs whose reduction is split (split-K: two dispatches each).
    pub split_k_convs: usize,
    /// Bytes of the split-K scratch buffer all split convs share (0 when
    /// none is split).
    pub scratch_bytes: u64,
    /// Images per micro-batch (the whole batch unless it is split).
    pub micro_batch: usize,
    /// Micro-batches per run (1 unless the batch is split).
    pub micro_batches: usize,
    /// How activations and conv/linear weights are stored on the device:
    /// `f32`, `f16` (native) or `f16-packed` ([`Storage::name`]).
    pub storage: Storage,
}

impl std::fmt::Display for Stats {
    /// Two lines: what the passes did and what the plan allocated.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "compiled: {} nodes -> {} after passes ({} batchnorms folded, {} epilogues fused, \
             {} concat inputs written in place), {} dispatches ({} convs split along K), \
             {} pipelines, {} storage",
            self.nodes,
            self.nodes_optimized,
            self.folded_bn,
            self.fused_epilogues,
            self.inplace_concats,
            self.dispatches,
            self.split_k_convs,
            self.pipelines,
            self.storage.name()
        )?;
        write!(
            f,
            "activations: {} bytes allocated, {} with no sharing, {} lower bound",
            self.arena_bytes, self.values_bytes, self.lower_bound_bytes
        )?;
        if self.micro_batches > 1 {
            write!(
                f,
                "\nbatch run as {} micro-batches of {} images",
                self.micro_batches, self.micro_batch
            )?;
        }
        Ok(())
    }
}

/// One dispatch's GPU time, from [`CompiledGraph::profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTime {
    /// The node's name (PyTorch key prefix), or `node:what` for helper
    /// launches (`x:nchw_to_nhwc`, `Mixed_5b:copy[2]`).
    pub name: String,
    /// The kind: the node's [`crate::graph::Op::kind`], or `layout` for transposes.
    pub kind: &'static str,
    /// Milliseconds between the pass's start and end timestamps.
    pub ms: f64,
    /// Floating-point operations of the dispatch.
    pub flops: u64,
}

/// One dispatch of a run and the kind of the node it came from.
struct Step {
    dispatch: Dispatch,
    kind: &'static str,
}

/// A graph compiled for one input shape on one device. See the module doc.
///
/// Invariant: every device object it uses exists once compiled; `run` and
/// `profile` only write, encode, submit and map. Runs are serialised (the
/// staging buffers are shared) by an async lock, so `&self` may be used
/// from several threads and several tasks.
pub struct CompiledGraph {
    ctx: Arc<Context>,
    graph: Graph,
    plan: Plan,
    input_name: String,
    /// The whole batch's input shape (NCHW).
    input_shape: [usize; 4],
    /// The layout `run` and `encode` take the input in.
    input_layout: Layout,
    /// Images per micro-batch: the batch the graph is compiled for.
    micro: usize,
    /// The first node coupling the images ([`Graph::batch_coupled`]): a
    /// run must then be of the whole compiled batch.
    coupled: Option<String>,
    /// Where each micro-batch's NCHW input goes: an upload buffer the input
    /// transpose reads, or the input's own range of the arena.
    input_target: BufferRange,
    /// The whole batch's NCHW input, which `run` writes and each
    /// micro-batch copies its images from. Never the graph's own input
    /// buffer: `queue.write_buffer` lands at whichever submission comes
    /// next, which may be an application's run encoded by
    /// [`CompiledGraph::encode`], and that must not see it.
    upload: wgpu::Buffer,
    steps: Vec<Step>,
    outputs: Vec<Output>,
    /// The activation buffers (kept alive with the graph).
    _memory: Memory,
    /// The split-K scratch buffer, if any (kept alive with the graph).
    _scratch: Option<wgpu::Buffer>,
    /// With [`CompileOptions::poison`]: a NaN-filled buffer as large as the
    /// largest target, and the ranges to overwrite from it before each run.
    poison: Option<(wgpu::Buffer, Vec<BufferRange>)>,
    _params: Vec<Arc<wgpu::Buffer>>,
    timestamps: Option<Timestamps>,
    stats: Stats,
    buffers_created: u64,
    bytes_created: u64,
    run_lock: async_lock::Mutex<()>,
}

impl std::fmt::Debug for CompiledGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGraph")
            .field("input_shape", &self.input_shape)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Total bytes of the distinct buffers among `buffers`.
// wgpu's handles hash and compare by their id, which never changes.
#[allow(clippy::mutable_key_type)]
fn distinct_bytes(buffers: Vec<&wgpu::Buffer>) -> u64 {
    let mut seen = std::collections::HashSet::new();
    buffers
        .into_iter()
        .filter(|b| seen.insert((*b).clone()))
        .map(|b| b.size())
        .sum()
}

fn fmt4(s: [usize; 4]) -> String {
    format!("{}×{}×{}×{}", s[0], s[1], s[2], s[3])
}

/// A graph after the passes with its shapes and plan for one micro-batch.
struct Prepared {
    graph: Graph,
    plan: Plan,
    /// How tensors are stored.
    storage: Storage,
    /// The whole batch's input shape.
    full: [usize; 4],
    micro: usize,
    report: crate::passes::PassReport,
}

/// Everything before device objects: passes, micro-batch, shapes,
/// parameters checked, plan, limits.
fn prepare(
    ctx: &Context,
    graph: &Graph,
    weights: &Weights,
    opts: &CompileOptions,
) -> Result<Prepared> {
    let storage = opts.storage(ctx)?;
    let (mut g, report) = optimize_report(graph, &opts.passes)?;
    let input = g.input.expect("validated");
    let channels = g.shapes[input.0][1];
    let full = [opts.batch, channels, opts.height, opts.width];
    let micro = micro_batch(&g, full, opts, &ctx.limits, storage)?;
    check_whole_batch(&g, full, &ctx.limits)?;
    let shapes = g.infer_shapes([micro, channels, opts.height, opts.width])?;
    // The compiled graph's shapes are the compiled ones from here on.
    g.shapes = shapes.clone();
    super::check_params(weights, &g.param_specs())?;
    // The placement refuses a root over the device's binding or buffer
    // limit (naming its producer) at its size in this storage.
    let value_bytes: &dyn Fn(_, _) -> u64 = if storage.is_f16() {
        &crate::plan::f16_bytes
    } else {
        &crate::plan::f32_bytes
    };
    let plan = Plan::with_memory(
        &g,
        &shapes,
        value_bytes,
        &memory::memory_options(&ctx.limits),
    )?;
    Ok(Prepared {
        graph: g,
        plan,
        storage,
        full,
        micro,
        report,
    })
}

/// Refuses, before any device object exists, a whole-batch input or output
/// (the upload and staging buffers, copied to and from but never bound)
/// over the device's `max_buffer_size`, naming the tensor.
fn check_whole_batch(g: &Graph, full: [usize; 4], limits: &wgpu::Limits) -> Result<()> {
    let shapes = g.infer_shapes(full)?;
    let bytes = |s: [usize; 4]| s.iter().map(|&d| d as u64).product::<u64>() * 4;
    let input = g.input.expect("validated");
    let name = |v| g.producer(v).map_or("<output>", |n| n.name.as_str());
    buffer_limit_check(
        limits,
        &format!("{} (whole-batch input)", name(input)),
        bytes(full),
    )?;
    for &v in &g.outputs {
        let what = format!("{} (whole-batch output)", name(v));
        buffer_limit_check(limits, &what, bytes(shapes[v.0]))?;
    }
    Ok(())
}

impl CompiledGraph {
    /// Compiles `graph` for inputs of `(opts.batch, C, opts.height,
    /// opts.width)` (C is the graph's). Errors: bad graph or shapes (naming
    /// the node), missing or misshapen weights (naming the key), a value or
    /// weight over a device limit ([`Error::Limit`]), a shader or GPU failure.
    /// Blocks on [`CompiledGraph::compile_async`].
    pub fn compile(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
    ) -> Result<CompiledGraph> {
        pollster::block_on(Self::compile_async(ctx, graph, weights, opts))
    }

    /// [`CompiledGraph::compile`] without blocking the caller.
    pub async fn compile_async(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
    ) -> Result<CompiledGraph> {
        Self::compile_with_progress_async(ctx, graph, weights, opts, &mut |_, _| {}).await
    }

    /// [`CompiledGraph::compile`], calling `progress(done, total)` after each
    /// node's dispatches are built (pipelines compile then, so the first
    /// compile of a model can take a while). Blocking.
    pub fn compile_with_progress(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<CompiledGraph> {
        pollster::block_on(Self::compile_with_progress_async(
            ctx, graph, weights, opts, progress,
        ))
    }

    /// [`CompiledGraph::compile_with_progress`] without blocking the
    /// caller: device objects are created as the nodes are lowered, and the
    /// device's verdict on them (validation, out of memory) is awaited.
    pub async fn compile_with_progress_async(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<CompiledGraph> {
        let prep = prepare(&ctx, graph, weights, opts)?;
        let report = prep.report;
        let (built, oom, val) = {
            let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let built = Self::build(&ctx, prep, weights, opts, progress);
            let oom = oom.pop();
            (built, oom, scope.pop())
        };
        let oom_err = oom.await;
        let val_err = val.await;
        let mut cg = built?;
        if let Some(e) = oom_err {
            return Err(Error::Gpu(format!("out of memory while compiling: {e}")));
        }
        if let Some(e) = val_err {
            return Err(Error::Gpu(format!("compiling: {e}")));
        }
        cg.stats.nodes = graph.nodes.len();
        cg.stats.folded_bn = report.folded_bn;
        cg.stats.fused_epilogues = report.fused_epilogues;
        cg.stats.inplace_concats = report.inplace_concats;
        Ok(cg)
    }

    /// Creates every device object: activation buffers, conv launches and
    /// the split-K scratch, each node's dispatches (one lowering function
    /// per op), outputs, timestamps, the upload buffer and the poison.
    fn build(
        ctx: &Arc<Context>,
        prep: Prepared,
        weights: &Weights,
        opts: &CompileOptions,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<CompiledGraph> {
        let Prepared {
            graph: g,
            plan,
            storage,
            full,
            micro,
            ..
        } = prep;
        let micro_batches = full[0].div_ceil(micro);
        let mut alloc = Alloc::new(ctx);
        let memory = Memory::new(&mut alloc, &plan);
        let launches = lower::choose_launches(ctx, &g, &plan, &memory, opts)?;
        // (The split-K scratch is f32 in every storage.)
        let scratch_len = launches
            .iter()
            .flatten()
            .map(|(p, l)| l.scratch_len(p))
            .max()
            .unwrap_or(0);
        let scratch = (scratch_len > 0).then(|| alloc.storage("split-K scratch", scratch_len));
        let mut params = params::Params::default();
        let mut steps: Vec<Step> = Vec::new();
        let mut input_target = None;
        let total = plan.schedule.len();
        {
            let mut lw = lower::Lowering {
                ctx,
                input_layout: opts.input_layout,
                storage,
                graph: &g,
                plan: &plan,
                mem: &memory,
                weights,
                launches: &launches,
                scratch: scratch.as_ref(),
                alloc: &mut alloc,
                params: &mut params,
                steps: &mut steps,
                input_target: &mut input_target,
            };
            for (done, &i) in plan.schedule.iter().enumerate() {
                lower::lower_node(&mut lw, i)?;
                progress(done + 1, total);
            }
        }
        let outputs = outputs::build(
            &g,
            &plan,
            &memory,
            &mut alloc,
            &mut steps,
            (full, micro),
            (opts.output_layout, storage),
        )?;
        let timestamps = Timestamps::new(&mut alloc, &steps);
        let input_name = g.nodes[0].name.clone();
        let upload = alloc.raw(
            "input (whole batch, NCHW)",
            full.iter().product::<usize>() as u64 * 4,
            wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        );
        let input_target = input_target.expect("the graph has an input node");
        let poison = opts.poison.then(|| {
            // A transposed output lives outside the arena.
            let extra = outputs.iter().map(|o| &o.src).chain(scratch.iter());
            memory.poison(&mut alloc, extra, &input_target)
        });
        let split_k_convs = launches.iter().flatten().filter(|(_, l)| l.splits > 1);
        let device_bytes = {
            let mut held: Vec<&wgpu::Buffer> = Vec::new();
            held.extend(memory.buffers.iter());
            held.extend(params.bufs.iter().map(|b| b.as_ref()));
            held.push(&upload);
            held.push(&input_target.buffer);
            held.extend(outputs.iter().flat_map(|o| [&o.src, &o.staging]));
            held.extend(scratch.iter());
            held.extend(poison.iter().map(|(nan, _)| nan));
            held.extend(steps.iter().map(|s| &s.dispatch.record().uniform));
            held.extend(timestamps.iter().flat_map(|t| t.buffers()));
            distinct_bytes(held)
        };
        let stats = Stats {
            nodes: g.nodes.len(),
            nodes_optimized: g.nodes.len(),
            dispatches: steps.len() * micro_batches,
            pipelines: steps
                .iter()
                .map(|s| s.dispatch.pipeline().clone())
                .collect::<std::collections::HashSet<_>>()
                .len(),
            arena_bytes: plan.placement.arena_bytes,
            values_bytes: plan.values_bytes,
            lower_bound_bytes: plan.placement.lower_bound_bytes,
            weight_bytes: params.bytes,
            device_bytes,
            flops: steps.iter().map(|s| s.dispatch.flops).sum::<u64>() * micro_batches as u64,
            split_k_convs: split_k_convs.count(),
            scratch_bytes: scratch_len as u64 * 4,
            micro_batch: micro,
            micro_batches,
            storage,
            ..Stats::default()
        };
        let coupled = g.batch_coupled().map(|n| n.name.clone());
        Ok(CompiledGraph {
            ctx: ctx.clone(),
            graph: g,
            plan,
            input_name,
            input_shape: full,
            input_layout: opts.input_layout,
            micro,
            coupled,
            input_target,
            upload,
            steps,
            outputs,
            _memory: memory,
            _scratch: scratch,
            poison,
            _params: params.bufs,
            timestamps,
            stats,
            buffers_created: alloc.count,
            bytes_created: alloc.bytes,
            run_lock: async_lock::Mutex::new(()),
        })
    }
    /// The input shape this graph was compiled for (NCHW).
    pub fn input_shape(&self) -> [usize; 4] {
        self.input_shape
    }

    /// The layout `run` and `encode` take the input in (its shape there is
    /// `input_layout().dims(input_shape())`).
    pub fn input_layout(&self) -> Layout {
        self.input_layout
    }

    /// The shapes [`CompiledGraph::run`] returns, in output order
    /// (`[N, F]` for `H = W = 1`, else `[N, C, H, W]`, or `[N, H, W, C]`
    /// with an NHWC [`CompileOptions::output_layout`]).
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs.iter().map(|o| o.shape.clone()).collect()
    }

    /// Bytes of the whole batch's input (f32, in the input layout): what
    /// [`CompiledGraph::encode`] reads from its input buffer.
    pub fn input_bytes(&self) -> u64 {
        self.input_shape.iter().product::<usize>() as u64 * 4
    }

    /// Bytes of each output (f32, in [`CompiledGraph::output_shapes`]'
    /// layout): what [`CompiledGraph::encode`] writes to its output buffers.
    pub fn output_bytes(&self) -> Vec<u64> {
        self.outputs
            .iter()
            .map(|o| o.shape.iter().product::<usize>() as u64 * 4)
            .collect()
    }

    /// Encodes one run into the application's own command encoder, reading
    /// the input from and writing the outputs to the application's GPU
    /// buffers: for an application that already holds the images on the
    /// GPU (decoded or preprocessed there) or uses the logits there, so
    /// nothing crosses to the host. Nothing runs until the application
    /// submits `enc` to this context's queue; the outputs are ready for
    /// whatever it encodes after this call. [`CompiledGraph::run`] is this
    /// plus an upload, a submission and a read-back.
    ///
    /// - `input`: the whole batch as f32 in the input layout (NCHW unless
    ///   compiled with [`CompileOptions::with_input_layout`]; [`CompiledGraph::input_shape`])
    ///   from byte 0, at least [`CompiledGraph::input_bytes`] long, with
    ///   `COPY_SRC` usage.
    /// - `outputs`: one buffer per graph output, in order, each written from
    ///   byte 0 in the layout of [`CompiledGraph::output_shapes`], at least
    ///   [`CompiledGraph::output_bytes`] long, with `COPY_DST` usage.
    ///
    /// It runs the compiled batch; [`CompiledGraph::encode_images`] runs
    /// fewer.
    ///
    /// All buffers must come from this context's device. Creates nothing:
    /// the encoded commands use the graph's own buffers, so several
    /// encoded runs, and `run` on other threads, execute correctly in
    /// whatever order their submissions reach the queue, one at a time.
    /// Errors (an [`Error::Invalid`] naming the buffer) when a buffer is
    /// too small, lacks its usage, or the output count is wrong; nothing is
    /// encoded then.
    pub fn encode(
        &self,
        enc: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        outputs: &[&wgpu::Buffer],
    ) -> Result<()> {
        self.encode_images(enc, self.input_shape[0], input, outputs)
    }

    /// [`CompiledGraph::encode`] for the first `images` images only (1 to
    /// the compiled batch), as [`CompiledGraph::run`] takes a smaller
    /// batch: the buffers need only those images' bytes (`images` ×
    /// [`CompiledGraph::input_bytes`] / batch, and likewise per output), and
    /// the run costs its micro-batches' worth. Errors as `encode`, and an
    /// [`Error::Invalid`] for an image count out of range.
    pub fn encode_images(
        &self,
        enc: &mut wgpu::CommandEncoder,
        images: usize,
        input: &wgpu::Buffer,
        outputs: &[&wgpu::Buffer],
    ) -> Result<()> {
        let n = self.input_shape[0];
        if !(1..=n).contains(&images) {
            return Err(Error::Invalid(format!(
                "{} image(s) asked of a graph compiled for 1..={n}",
                images
            )));
        }
        if let (Some(node), true) = (&self.coupled, images != n) {
            return Err(Error::Invalid(format!(
                "{images} image(s) asked of a graph compiled for {n}: node `{node}` couples \
                 the images, so only the whole batch runs"
            )));
        }
        let part = |bytes: u64| bytes / n as u64 * images as u64;
        let check = |what: String, buf: &wgpu::Buffer, bytes: u64, usage: wgpu::BufferUsages| {
            if !buf.usage().contains(usage) {
                return Err(Error::Invalid(format!(
                    "{what} buffer needs {usage:?} usage; it has {:?}",
                    buf.usage()
                )));
            }
            if buf.size() < bytes {
                return Err(Error::Invalid(format!(
                    "{what} buffer is {} bytes; {bytes} are needed",
                    buf.size()
                )));
            }
            Ok(())
        };
        let mut shape = self.input_shape;
        shape[0] = images;
        let input_what = format!("input ({})", fmt4(shape));
        check(
            input_what,
            input,
            part(self.input_bytes()),
            wgpu::BufferUsages::COPY_SRC,
        )?;
        if outputs.len() != self.outputs.len() {
            return Err(Error::Invalid(format!(
                "the graph has {} output(s), {} output buffer(s) were given",
                self.outputs.len(),
                outputs.len()
            )));
        }
        for (k, (buf, bytes)) in outputs.iter().zip(self.output_bytes()).enumerate() {
            let o = &self.outputs[k];
            let mut shape = o.shape.clone();
            if !o.whole {
                shape[0] = images;
            }
            let what = format!("output {k} ({shape:?})");
            let need = o.range(0, images).1 as u64 * 4;
            debug_assert!(need <= bytes);
            check(what, buf, need, wgpu::BufferUsages::COPY_DST)?;
        }
        self.encode_run(enc, input, outputs, images);
        Ok(())
    }

    /// The graph after the passes, as compiled (its `shapes` are those of
    /// one micro-batch: the whole batch unless it is split).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The storage plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Sizes and counts; see [`Stats`].
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Buffers this compiled graph created (all at compile time).
    pub fn buffers_created(&self) -> u64 {
        self.buffers_created
    }

    /// Bytes of the buffers this compiled graph created (parameters
    /// shared with a graph compiled earlier on the same context are not
    /// among them).
    pub fn bytes_created(&self) -> u64 {
        self.bytes_created
    }

    /// Buffers the executor has created on the calling thread so far, all
    /// compiled graphs together: every buffer it makes is counted, and runs
    /// must leave the count unchanged.
    pub fn buffers_created_on_this_thread() -> u64 {
        BUFFERS_CREATED.with(std::cell::Cell::get)
    }

    /// Bytes of the buffers counted by
    /// [`CompiledGraph::buffers_created_on_this_thread`].
    pub fn bytes_created_on_this_thread() -> u64 {
        BYTES_CREATED.with(std::cell::Cell::get)
    }

    /// The dispatches of one micro-batch, in run order (with their records:
    /// pipelines, bound ranges, uniforms).
    pub fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.steps.iter().map(|s| &s.dispatch)
    }

    /// Labels and kinds of the dispatches, in run order.
    pub fn dispatch_labels(&self) -> Vec<(String, &'static str)> {
        self.steps
            .iter()
            .map(|s| (s.dispatch.label.clone(), s.kind))
            .collect()
    }

    /// Checks `input` (1 to the compiled batch of images, the compiled
    /// C, H, W), writes it to the upload buffer and returns its image count.
    fn write_input(&self, input: &Tensor) -> Result<usize> {
        let compiled = self.input_layout.dims(self.input_shape);
        let [n, a, b, c] = compiled;
        let expected = || {
            let order = match self.input_layout {
                Layout::Nchw => "",
                Layout::Nhwc => ", NHWC",
            };
            format!(
                "input 1..={n}×{a}×{b}×{c} (compiled for {}{order})",
                fmt4(compiled)
            )
        };
        let shape = input.nchw().map_err(|_| Error::Shape {
            node: self.input_name.clone(),
            expected: expected(),
            actual: format!("shape {:?}", input.shape),
        })?;
        if input.shape.len() != 4 || shape[1..] != compiled[1..] || !(1..=n).contains(&shape[0]) {
            return Err(Error::Shape {
                node: self.input_name.clone(),
                expected: expected(),
                actual: format!("{:?}", input.shape),
            });
        }
        if let (Some(node), true) = (&self.coupled, shape[0] != n) {
            return Err(Error::Shape {
                node: self.input_name.clone(),
                expected: format!(
                    "the whole compiled batch of {n} images (node `{node}` couples the images)"
                ),
                actual: format!("{:?}", input.shape),
            });
        }
        if input.data.len() != shape.iter().product::<usize>() {
            return Err(Error::Shape {
                node: self.input_name.clone(),
                expected: format!("{} values", shape.iter().product::<usize>()),
                actual: format!("{} values", input.data.len()),
            });
        }
        self.ctx
            .queue
            .write_buffer(&self.upload, 0, bytemuck::cast_slice(&input.data));
        Ok(shape[0])
    }

    /// The micro-batches of a run of `n` images: (first image, images).
    fn micro_batches(&self, n: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..n)
            .step_by(self.micro)
            .map(move |first| (first, self.micro.min(n - first)))
    }

    /// What comes before a micro-batch's dispatches: its images copied from
    /// `input` (the whole batch, NCHW), and the NaN poison.
    fn begin_micro_batch<'a>(
        &'a self,
        cmds: &mut Vec<Command<'a>>,
        input: &'a wgpu::Buffer,
        first: usize,
        images: usize,
    ) {
        let per_image = self.input_bytes() / self.input_shape[0] as u64;
        cmds.push(Command::Copy {
            src: input,
            src_offset: first as u64 * per_image,
            dst: &self.input_target.buffer,
            dst_offset: self.input_target.offset,
            size: images as u64 * per_image,
        });
        if let Some((nan, targets)) = &self.poison {
            for t in targets {
                cmds.push(Command::Copy {
                    src: nan,
                    src_offset: 0,
                    dst: &t.buffer,
                    dst_offset: t.offset,
                    size: t.size,
                });
            }
        }
    }

    /// The commands of a whole run of `n` images: per micro-batch, its
    /// images copied from `input`, every dispatch, and its outputs copied
    /// into `outputs` (whole-batch buffers, one per graph output).
    fn run_commands<'a>(
        &'a self,
        input: &'a wgpu::Buffer,
        outputs: &[&'a wgpu::Buffer],
        n: usize,
    ) -> Vec<Command<'a>> {
        let mut cmds = Vec::new();
        for (first, images) in self.micro_batches(n) {
            self.begin_micro_batch(&mut cmds, input, first, images);
            cmds.extend(self.steps.iter().map(|s| Command::Dispatch(&s.dispatch)));
            for (o, &dst) in self.outputs.iter().zip(outputs) {
                let (at, floats) = o.range(first, images);
                cmds.push(Command::Copy {
                    src: &o.src,
                    src_offset: o.src_offset,
                    dst,
                    dst_offset: at as u64 * 4,
                    size: floats as u64 * 4,
                });
            }
        }
        cmds
    }

    /// Encodes a whole run of `n` images (see [`CompiledGraph::run_commands`]).
    fn encode_run(
        &self,
        enc: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        outputs: &[&wgpu::Buffer],
        n: usize,
    ) {
        encode_commands(enc, "resincept run", &self.run_commands(input, outputs, n));
    }

    /// Writes `input`, encodes and submits its run, and requests the
    /// mapping of its outputs: everything of a run but the waiting. Returns
    /// the submission, its validation error (a future), the pending reads
    /// and the image count. The caller holds the run lock.
    #[allow(clippy::type_complexity)]
    fn start_run(
        &self,
        input: &Tensor,
    ) -> Result<(
        wgpu::SubmissionIndex,
        impl std::future::Future<Output = Option<wgpu::Error>> + wgpu::WasmNotSend,
        Vec<crate::device::buffers::MapRead>,
        usize,
    )> {
        let n = self.write_input(input)?;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("resincept run"),
            });
        let staging: Vec<&wgpu::Buffer> = self.outputs.iter().map(|o| &o.staging).collect();
        self.encode_run(&mut enc, &self.upload, &staging, n);
        let (index, err) = self.ctx.submit(enc.finish());
        Ok((index, err, outputs::start_reads(&self.outputs, n), n))
    }

    /// Runs the graph on `input` and returns its outputs in order. `input`
    /// is NCHW with the compiled C, H and W and from 1 image to the
    /// compiled batch: compile once for the largest batch, run any smaller
    /// one (the outputs have as many images as the input). A run computes
    /// whole micro-batches, so `n` images cost as much as the compiled
    /// batch, or as `n` rounded up to the micro-batch size when the graph
    /// is compiled in micro-batches ([`CompileOptions::with_micro_batch`]
    /// makes them small, for small runs at little cost). Images are
    /// independent: the other images of the last micro-batch are stale and
    /// never reach the outputs.
    ///
    /// One command encoder and one submission, one compute pass per
    /// micro-batch; creates no buffer, pipeline or bind group. Blocks the
    /// calling thread until its own submission is done (and no longer:
    /// other work on the device is not waited for); see
    /// [`CompiledGraph::run_async`].
    pub fn run(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let _guard = self.run_lock.lock_blocking();
        let (index, err, reads, n) = self.start_run(input)?;
        if let Some(e) = pollster::block_on(err) {
            return Err(Error::Gpu(e.to_string()));
        }
        self.ctx.wait_blocking(index)?;
        pollster::block_on(outputs::finish_reads(&self.outputs, reads, n))
    }

    /// [`CompiledGraph::run`] as a future that never blocks its caller: the
    /// GPU is waited for by the context's polling thread (which waits for
    /// this run's submission only), and concurrent runs queue on an async
    /// lock. Usable from any executor (tokio, async-std, a browser's).
    pub async fn run_async(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let _guard = self.run_lock.lock().await;
        let (index, err, reads, n) = self.start_run(input)?;
        if let Some(e) = err.await {
            return Err(Error::Gpu(e.to_string()));
        }
        self.ctx.wait_async(index).await?;
        outputs::finish_reads(&self.outputs, reads, n).await
    }

    /// Encodes and submits a profiled run (every dispatch in its own timed
    /// pass), and requests the timestamps' mapping.
    #[allow(clippy::type_complexity)]
    fn start_profile(
        &self,
        ts: &Timestamps,
        input: &Tensor,
    ) -> Result<(
        wgpu::SubmissionIndex,
        impl std::future::Future<Output = Option<wgpu::Error>> + wgpu::WasmNotSend,
        Vec<(crate::device::buffers::MapRead, usize)>,
    )> {
        let n = self.write_input(input)?;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("resincept profile"),
            });
        let mut cmds = Vec::new();
        self.begin_micro_batch(&mut cmds, &self.upload, 0, self.micro.min(n));
        encode_commands(&mut enc, "resincept profile", &cmds);
        ts.encode(&mut enc, &self.steps);
        let (index, err) = self.ctx.submit(enc.finish());
        Ok((index, err, ts.start_reads()))
    }

    /// Runs the graph once with a GPU timestamp around every dispatch (each
    /// in its own compute pass) and returns each dispatch's time, in run
    /// order. `None` when the adapter lacks `TIMESTAMP_QUERY`. With several
    /// micro-batches, the first is timed (times are for
    /// [`Stats::micro_batch`] images). The outputs are computed but not
    /// returned. Blocking; see [`CompiledGraph::profile_async`].
    pub fn profile(&self, input: &Tensor) -> Result<Option<Vec<LayerTime>>> {
        let Some(ts) = &self.timestamps else {
            return Ok(None);
        };
        let _guard = self.run_lock.lock_blocking();
        let (index, err, reads) = self.start_profile(ts, input)?;
        if let Some(e) = pollster::block_on(err) {
            return Err(Error::Gpu(e.to_string()));
        }
        self.ctx.wait_blocking(index)?;
        let period_ns = self.ctx.queue.get_timestamp_period() as f64;
        pollster::block_on(Timestamps::finish(reads, &self.steps, period_ns)).map(Some)
    }

    /// Runs the graph once on `input` and writes the run to `dir` as a
    /// trace (`trace.json` + `trace.bin`, see [`crate::device::trace`]) that
    /// another WebGPU implementation can replay: the upload, every
    /// dispatch of every micro-batch, and the outputs copied into buffers
    /// made for the trace, each checked against wgpu's result within the
    /// graph [`TOLERANCE`]. Compile with [`CompileOptions::poisoned`] so
    /// that the replay starts, like the run, from NaN-filled activations.
    /// Blocking; creates buffers (a tool, not a run).
    #[cfg(feature = "trace")]
    pub fn record_trace(
        &self,
        input: &Tensor,
        name: &str,
        dir: &std::path::Path,
    ) -> Result<crate::device::trace::Summary> {
        use crate::device::{trace, Span};
        let _guard = self.run_lock.lock_blocking();
        let n = self.write_input(input)?;
        let outs: Vec<wgpu::Buffer> = self
            .outputs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                self.ctx
                    .storage_buffer(&format!("trace output {k}"), o.range(0, n).1)
            })
            .collect();
        let refs: Vec<&wgpu::Buffer> = outs.iter().collect();
        let cmds = self.run_commands(&self.upload, &refs, n);
        let names: Vec<String> = self
            .graph
            .outputs
            .iter()
            .map(|&v| {
                self.graph
                    .producer(v)
                    .map_or("<output>".to_string(), |p| p.name.clone())
            })
            .collect();
        // The replay runs the same shaders: the graph's own tolerance in
        // its precision bounds two implementations' differences.
        let tol = if self.stats.storage.is_f16() {
            TOLERANCE_F16
        } else {
            TOLERANCE
        };
        let checks: Vec<trace::Check> = outs
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(k, (b, name))| trace::Check {
                label: format!("output {k} ({name})"),
                span: Span::whole(b),
                // Outputs are f32 at the API in every precision.
                storage: Storage::F32,
                atol: tol.atol,
                rtol: tol.rtol,
            })
            .collect();
        trace::record(&self.ctx, name, &cmds, &checks, dir)
    }

    /// [`CompiledGraph::profile`] without blocking the caller.
    pub async fn profile_async(&self, input: &Tensor) -> Result<Option<Vec<LayerTime>>> {
        let Some(ts) = &self.timestamps else {
            return Ok(None);
        };
        let _guard = self.run_lock.lock().await;
        let (index, err, reads) = self.start_profile(ts, input)?;
        if let Some(e) = err.await {
            return Err(Error::Gpu(e.to_string()));
        }
        self.ctx.wait_async(index).await?;
        let period_ns = self.ctx.queue.get_timestamp_period() as f64;
        Timestamps::finish(reads, &self.steps, period_ns)
            .await
            .map(Some)
    }
}
