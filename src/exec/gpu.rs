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
//! copied with [`concat::concat_gpu`].

use super::conv_epilogue;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::kernels::{
    batchnorm, concat, conv2d, elementwise, layout, linear, pool, softmax, Dispatch, Tolerance,
};
use crate::passes::{optimize_report, PassOptions};
use crate::plan::{is_flatten_view, Plan};
use crate::tensor::Tensor;
use crate::weights::Weights;
use std::cell::Cell;
use std::sync::{Arc, Mutex};

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
        }
    }

    /// The same with grouped convs of at most `channels` output channels
    /// per group run as the direct conv (see
    /// [`CompileOptions::grouped_direct_max`]).
    pub fn with_grouped_direct_max(mut self, channels: usize) -> Self {
        self.grouped_direct_max = channels;
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
    /// Activation memory allocated: the sum of the plan's slot sizes.
    pub arena_bytes: u64,
    /// Activation memory with no sharing: every storage value's size.
    pub values_bytes: u64,
    /// Most activation bytes alive at one step (no plan can use less).
    pub lower_bound_bytes: u64,
    /// Bytes of parameters uploaded (packed weights, scale/shift, BN, bias).
    pub weight_bytes: u64,
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
}

impl std::fmt::Display for Stats {
    /// Two lines: what the passes did and what the plan allocated.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "compiled: {} nodes -> {} after passes ({} batchnorms folded, {} epilogues fused, \
             {} concat inputs written in place), {} dispatches ({} convs split along K), \
             {} pipelines",
            self.nodes,
            self.nodes_optimized,
            self.folded_bn,
            self.fused_epilogues,
            self.inplace_concats,
            self.dispatches,
            self.split_k_convs,
            self.pipelines
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
    /// The kind: the node's [`Op::kind`], or `layout` for transposes.
    pub kind: &'static str,
    /// Milliseconds between the pass's start and end timestamps.
    pub ms: f64,
    /// Floating-point operations of the dispatch.
    pub flops: u64,
}

struct Step {
    dispatch: Dispatch,
    kind: &'static str,
}

struct Output {
    /// The buffer copied to `staging` (a slot, or the transposed copy).
    src: wgpu::Buffer,
    /// The whole batch's output, filled micro-batch by micro-batch.
    staging: wgpu::Buffer,
    /// f32 per image.
    per_image: usize,
    /// The whole batch's shape.
    shape: Vec<usize>,
}

/// Query sets for [`CompiledGraph::profile`]: one begin/end pair per
/// dispatch, in sets of at most `wgpu::QUERY_SET_MAX_QUERIES`.
struct Timestamps {
    sets: Vec<(wgpu::QuerySet, u32)>,
    resolve: Vec<wgpu::Buffer>,
    readback: Vec<wgpu::Buffer>,
}

const PAIRS_PER_SET: usize = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;

thread_local! {
    /// Buffers created by the executor on this thread (compiles, runs and
    /// profiles of every [`CompiledGraph`]), so that a test can check that
    /// runs create none while other tests compile on other threads.
    static BUFFERS_CREATED: Cell<u64> = const { Cell::new(0) };
}

/// A graph compiled for one input shape on one device. See the module doc.
///
/// Invariant: every device object it uses exists once compiled; `run` and
/// `profile` only write, encode, submit and map. Runs are serialised (the
/// staging buffers are shared), so `&self` may be used from several threads.
pub struct CompiledGraph {
    ctx: Arc<Context>,
    graph: Graph,
    plan: Plan,
    input_name: String,
    /// The whole batch's input shape (NCHW).
    input_shape: [usize; 4],
    /// Images per micro-batch: the batch the graph is compiled for.
    micro: usize,
    /// Where each micro-batch's NCHW input goes (an upload buffer or the slot).
    input_target: wgpu::Buffer,
    /// The whole batch's NCHW input, which `run` writes and each
    /// micro-batch copies its images from. Never the graph's own input
    /// buffer: `queue.write_buffer` lands at whichever submission comes
    /// next, which may be an application's run encoded by
    /// [`CompiledGraph::encode`], and that must not see it.
    upload: wgpu::Buffer,
    steps: Vec<Step>,
    outputs: Vec<Output>,
    _slots: Vec<wgpu::Buffer>,
    /// With [`CompileOptions::poison`]: a NaN-filled buffer as large as the
    /// largest slot, and the slots to overwrite from it before each run.
    poison: Option<(wgpu::Buffer, Vec<wgpu::Buffer>)>,
    _params: Vec<wgpu::Buffer>,
    timestamps: Option<Timestamps>,
    stats: Stats,
    buffers_created: u64,
    run_lock: Mutex<()>,
}

impl std::fmt::Debug for CompiledGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGraph")
            .field("input_shape", &self.input_shape)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Counts and makes the executor's buffers.
struct Alloc<'a> {
    ctx: &'a Context,
    count: u64,
}

impl Alloc<'_> {
    fn note(&mut self) {
        self.count += 1;
        BUFFERS_CREATED.with(|c| c.set(c.get() + 1));
    }

    fn storage(&mut self, label: &str, len: usize) -> wgpu::Buffer {
        self.note();
        self.ctx.storage_buffer(label, len)
    }

    fn init(&mut self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.note();
        self.ctx.storage_buffer_init(label, data)
    }

    fn raw(&mut self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.note();
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4),
            usage,
            mapped_at_creation: false,
        })
    }
}

/// The parameter buffers uploaded so far and their total size.
#[derive(Default)]
struct Params {
    bufs: Vec<wgpu::Buffer>,
    bytes: u64,
}

impl Params {
    fn upload(&mut self, alloc: &mut Alloc, node: &str, key: &str, data: &[f32]) -> Result<()> {
        let bytes = data.len() as u64 * 4;
        limit_check(&alloc.ctx.limits, &format!("{node} ({key})"), bytes)?;
        self.bufs.push(alloc.init(key, data));
        self.bytes += bytes;
        Ok(())
    }
}

fn limit_check(limits: &wgpu::Limits, node: &str, bytes: u64) -> Result<()> {
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

/// A buffer that is copied to or from but never bound: `max_buffer_size`.
fn buffer_limit_check(limits: &wgpu::Limits, node: &str, bytes: u64) -> Result<()> {
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
/// every value fits the device's storage-binding and buffer limits, else
/// the largest count that does (every value's size is linear in the batch).
/// The count is then evened out over the micro-batches needed, so the last
/// is not much smaller than the others. 0 images is an error; a single
/// image too large is left to the plan's limit check, which names the node.
fn micro_batch(
    graph: &Graph,
    full: [usize; 4],
    opts: &CompileOptions,
    limits: &wgpu::Limits,
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
                .map(|s| s.iter().product::<usize>() as u64 * 4 / n.max(1) as u64)
                .max()
                .unwrap_or(0);
            let limit = limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
            (limit / per_image.max(1)).clamp(1, n as u64) as usize
        }
    };
    Ok(n.div_ceil(n.div_ceil(most)))
}

fn fmt4(s: [usize; 4]) -> String {
    format!("{}×{}×{}×{}", s[0], s[1], s[2], s[3])
}

impl CompiledGraph {
    /// Compiles `graph` for inputs of `(opts.batch, C, opts.height,
    /// opts.width)` (C is the graph's). Errors: bad graph or shapes (naming
    /// the node), missing or misshapen weights (naming the key), a value or
    /// weight over a device limit ([`Error::Limit`]), a shader or GPU failure.
    pub fn compile(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
    ) -> Result<CompiledGraph> {
        Self::compile_with_progress(ctx, graph, weights, opts, &mut |_, _| {})
    }

    /// [`CompiledGraph::compile`], calling `progress(done, total)` after each
    /// node's dispatches are built (pipelines compile then, so the first
    /// compile of a model can take a while).
    pub fn compile_with_progress(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        opts: &CompileOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<CompiledGraph> {
        let (mut g, report) = optimize_report(graph, &opts.passes)?;
        let input = g.input.expect("validated");
        let channels = g.shapes[input.0][1];
        let full = [opts.batch, channels, opts.height, opts.width];
        let micro = micro_batch(&g, full, opts, &ctx.limits)?;
        let input_shape = [micro, channels, opts.height, opts.width];
        let shapes = g.infer_shapes(input_shape)?;
        // The compiled graph's shapes are the compiled ones from here on.
        g.shapes = shapes.clone();
        super::check_params(weights, &g.param_specs())?;
        let plan = Plan::new(&g, &shapes)?;
        plan.check_limits(&g, &ctx.limits)?;

        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let built = Self::build(&ctx, &g, &plan, weights, full, opts, progress);
        let oom_err = pollster::block_on(oom.pop());
        let val_err = pollster::block_on(scope.pop());
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

    fn build(
        ctx: &Arc<Context>,
        g: &Graph,
        plan: &Plan,
        weights: &Weights,
        full: [usize; 4],
        opts: &CompileOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<CompiledGraph> {
        let poison = opts.poison;
        let micro = plan.shapes[g.input.expect("validated").0][0];
        let micro_batches = full[0].div_ceil(micro);
        let shapes = &plan.shapes;
        let mut alloc = Alloc { ctx, count: 0 };
        let slots: Vec<wgpu::Buffer> = plan
            .slots
            .iter()
            .enumerate()
            .map(|(k, s)| alloc.storage(&format!("slot {k}"), (s.bytes / 4) as usize))
            .collect();
        // The buffer holding `v` and its channel offset there.
        let place = |v: ValueId| -> (&wgpu::Buffer, usize, usize) {
            let st = plan.storage[v.0].expect("produced");
            let buf = &slots[plan.slot_of[st.root.0].expect("root has a slot")];
            (buf, st.channel_offset, shapes[st.root.0][1])
        };
        // A value a kernel reads or writes whole (never an alias: aliased
        // values are read by their concat alone, see plan::check_alias).
        let dense = |v: ValueId, node: &str| -> Result<&wgpu::Buffer> {
            let (b, off, _) = place(v);
            if off != 0 {
                return Err(Error::Graph {
                    node: node.into(),
                    message: format!("value {} is an in-place concat input", v.0),
                });
            }
            Ok(b)
        };
        // Every conv's params and launch, chosen first so that the split-K
        // scratch buffer all split convs share exists before their bind
        // groups.
        let mut launches = vec![None; g.nodes.len()];
        for &i in &plan.schedule {
            let n = &g.nodes[i];
            if let Op::Conv2d(c) = &n.op {
                let (_, off, ctot) = place(n.output);
                let p = c.params(shapes[n.inputs[0].0], ctot, off);
                p.validate(&n.name)?;
                let target = opts.split_k.target(ctx.info.device_type);
                let direct = opts.grouped_direct_max;
                let l = conv2d::Launch::choose(&n.name, &p, &ctx.limits, target, direct)?;
                launches[i] = Some((p, l));
            }
        }
        let scratch_len = launches
            .iter()
            .flatten()
            .map(|(p, l)| l.scratch_len(p))
            .max()
            .unwrap_or(0);
        let scratch = (scratch_len > 0).then(|| alloc.storage("split-K scratch", scratch_len));
        let mut params = Params::default();
        let mut steps: Vec<Step> = Vec::new();
        let mut input_target = None;
        let input_name = g.nodes[0].name.clone();
        let total = plan.schedule.len();

        for (done, &i) in plan.schedule.iter().enumerate() {
            let n = &g.nodes[i];
            let name = n.name.as_str();
            let kind = n.op.kind();
            let out = n.output;
            let oshape = shapes[out.0];
            let olen: usize = oshape.iter().product();
            let ishape = |k: usize| shapes[n.inputs[k].0];
            let mut push = |d: Dispatch, kind: &'static str| steps.push(Step { dispatch: d, kind });
            match &n.op {
                Op::Input => {
                    let slot = dense(out, name)?;
                    let [_, c, h, w] = oshape;
                    if h * w == 1 || c == 1 {
                        input_target = Some(slot.clone());
                    } else {
                        let up = alloc.storage("input upload (NCHW)", olen);
                        let d = layout::transpose_gpu(
                            ctx,
                            &format!("{name}:nchw_to_nhwc"),
                            layout::Direction::NchwToNhwc,
                            oshape,
                            &up,
                            slot,
                        )?;
                        push(d, "layout");
                        input_target = Some(up);
                    }
                }
                Op::Conv2d(c) => {
                    let (obuf, _, _) = place(out);
                    let (p, launch) = launches[i].as_ref().expect("chosen above");
                    let wkey = format!("{name}.weight");
                    let wt = weights.get(&wkey)?;
                    let packed = conv2d::pack_weights(p, &wt.data);
                    let (scale, shift) = conv_epilogue(name, c, weights)?;
                    let base = params.bufs.len();
                    params.upload(&mut alloc, name, &wkey, &packed)?;
                    params.upload(&mut alloc, name, &format!("{name} scale"), &scale)?;
                    params.upload(&mut alloc, name, &format!("{name} shift"), &shift)?;
                    let residual = match c.residual {
                        Some(_) => Some(dense(n.inputs[1], name)?),
                        None => None,
                    };
                    let ds = conv2d::conv2d_gpu_launch(
                        ctx,
                        name,
                        p,
                        *launch,
                        dense(n.inputs[0], name)?,
                        &params.bufs[base],
                        &params.bufs[base + 1],
                        &params.bufs[base + 2],
                        residual,
                        scratch.as_ref(),
                        obuf,
                    )?;
                    for d in ds {
                        push(d, kind);
                    }
                }
                Op::BatchNorm { eps, relu } => {
                    let [nb, c, h, w] = ishape(0);
                    let p = batchnorm::BatchNormParams {
                        batch: nb,
                        channels: c,
                        h,
                        w,
                        eps: *eps,
                        relu: *relu,
                    };
                    let base = params.bufs.len();
                    for s in ["weight", "bias", "running_mean", "running_var"] {
                        let key = format!("{name}.{s}");
                        params.upload(&mut alloc, name, &key, &weights.get(&key)?.data)?;
                    }
                    let d = batchnorm::batchnorm_gpu(
                        ctx,
                        name,
                        &p,
                        dense(n.inputs[0], name)?,
                        &params.bufs[base],
                        &params.bufs[base + 1],
                        &params.bufs[base + 2],
                        &params.bufs[base + 3],
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
                Op::Relu => {
                    let d = elementwise::relu_gpu(
                        ctx,
                        name,
                        olen,
                        dense(n.inputs[0], name)?,
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
                Op::Add { alpha, beta, relu } => {
                    let p = elementwise::AddParams {
                        len: olen,
                        alpha: *alpha,
                        beta: *beta,
                        relu: *relu,
                    };
                    let d = elementwise::add_gpu(
                        ctx,
                        name,
                        &p,
                        dense(n.inputs[0], name)?,
                        Some(dense(n.inputs[1], name)?),
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
                Op::Pool(pl) => {
                    let (obuf, off, ctot) = place(out);
                    let p = pl.params(ishape(0), ctot, off);
                    let d = pool::pool_gpu(ctx, name, &p, dense(n.inputs[0], name)?, obuf)?;
                    push(d, kind);
                }
                Op::GlobalAvgPool => {
                    let [nb, c, h, w] = ishape(0);
                    let d = pool::global_avg_pool_gpu(
                        ctx,
                        name,
                        nb,
                        c,
                        h * w,
                        dense(n.inputs[0], name)?,
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
                Op::Concat => {
                    let (obuf, base_off, ctot) = place(out);
                    let mut off = base_off;
                    for (k, &v) in n.inputs.iter().enumerate() {
                        let [nb, c, h, w] = shapes[v.0];
                        if g.alias.get(&v).is_none_or(|&(t, _)| t != out) {
                            let p = concat::ConcatParams {
                                batch: nb,
                                hw: h * w,
                                channels: c,
                                out_c_total: ctot,
                                out_c_offset: off,
                            };
                            let d = concat::concat_gpu(
                                ctx,
                                &format!("{name}:copy[{k}]"),
                                &p,
                                dense(v, name)?,
                                obuf,
                            )?;
                            push(d, kind);
                        }
                        off += c;
                    }
                }
                Op::Flatten => {
                    let s = ishape(0);
                    if !is_flatten_view(s) {
                        let d = layout::transpose_gpu(
                            ctx,
                            name,
                            layout::Direction::NhwcToNchw,
                            s,
                            dense(n.inputs[0], name)?,
                            dense(out, name)?,
                        )?;
                        push(d, "layout");
                    }
                }
                Op::Linear { out_features, bias } => {
                    let [nb, f, _, _] = ishape(0);
                    let p = linear::LinearParams {
                        batch: nb,
                        in_features: f,
                        out_features: *out_features,
                    };
                    let wkey = format!("{name}.weight");
                    let packed = linear::pack_weights(&p, &weights.get(&wkey)?.data);
                    let base = params.bufs.len();
                    params.upload(&mut alloc, name, &wkey, &packed)?;
                    if *bias {
                        let bkey = format!("{name}.bias");
                        params.upload(&mut alloc, name, &bkey, &weights.get(&bkey)?.data)?;
                    }
                    let d = linear::linear_gpu(
                        ctx,
                        name,
                        &p,
                        dense(n.inputs[0], name)?,
                        &params.bufs[base],
                        if *bias {
                            Some(&params.bufs[base + 1])
                        } else {
                            None
                        },
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
                Op::Softmax => {
                    let [nb, k, h, w] = oshape;
                    if h * w != 1 {
                        return Err(Error::Shape {
                            node: name.into(),
                            expected: "softmax input (N, K, 1, 1)".into(),
                            actual: fmt4(oshape),
                        });
                    }
                    let p = softmax::SoftmaxParams {
                        batch: nb,
                        classes: k,
                    };
                    let d = softmax::softmax_gpu(
                        ctx,
                        name,
                        &p,
                        dense(n.inputs[0], name)?,
                        dense(out, name)?,
                    )?;
                    push(d, kind);
                }
            }
            progress(done + 1, total);
        }

        let mut outputs = Vec::new();
        for (k, &v) in g.outputs.iter().enumerate() {
            let s = shapes[v.0];
            let len: usize = s.iter().product();
            let name = g.producer(v).map_or("<output>", |n| n.name.as_str());
            let slot = dense(v, name)?;
            let src = if s[2] * s[3] > 1 && s[1] > 1 {
                let buf = alloc.storage(&format!("output {k} (NCHW)"), len);
                let d = layout::transpose_gpu(
                    ctx,
                    &format!("{name}:nhwc_to_nchw"),
                    layout::Direction::NhwcToNchw,
                    s,
                    slot,
                    &buf,
                )?;
                steps.push(Step {
                    dispatch: d,
                    kind: "layout",
                });
                buf
            } else {
                slot.clone()
            };
            let per_image = len / micro;
            let bytes = (full[0] * per_image) as u64 * 4;
            buffer_limit_check(&ctx.limits, &format!("{name} (whole-batch output)"), bytes)?;
            let staging = alloc.raw(
                &format!("output {k} staging"),
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            );
            let shape = if s[2] == 1 && s[3] == 1 {
                vec![full[0], s[1]]
            } else {
                vec![full[0], s[1], s[2], s[3]]
            };
            outputs.push(Output {
                src,
                staging,
                per_image,
                shape,
            });
        }

        let timestamps = if ctx.has_timestamps() && !steps.is_empty() {
            let mut t = Timestamps {
                sets: Vec::new(),
                resolve: Vec::new(),
                readback: Vec::new(),
            };
            for chunk in steps.chunks(PAIRS_PER_SET) {
                let count = 2 * chunk.len() as u32;
                let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                });
                t.sets.push((set, count));
                t.resolve.push(alloc.raw(
                    "timestamp resolve",
                    count as u64 * 8,
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ));
                t.readback.push(alloc.raw(
                    "timestamp readback",
                    count as u64 * 8,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ));
            }
            Some(t)
        } else {
            None
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
            arena_bytes: plan.arena_bytes,
            values_bytes: plan.values_bytes,
            lower_bound_bytes: plan.lower_bound_bytes,
            weight_bytes: params.bytes,
            flops: steps.iter().map(|s| s.dispatch.flops).sum::<u64>() * micro_batches as u64,
            folded_bn: 0,
            fused_epilogues: 0,
            inplace_concats: 0,
            split_k_convs: launches
                .iter()
                .flatten()
                .filter(|(_, l)| l.splits > 1)
                .count(),
            scratch_bytes: scratch_len as u64 * 4,
            micro_batch: micro,
            micro_batches,
        };
        let upload = {
            let bytes = full.iter().product::<usize>() as u64 * 4;
            buffer_limit_check(
                &ctx.limits,
                &format!("{input_name} (whole-batch input)"),
                bytes,
            )?;
            alloc.raw(
                "input (whole batch, NCHW)",
                bytes,
                wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            )
        };
        Ok(CompiledGraph {
            ctx: ctx.clone(),
            graph: g.clone(),
            plan: plan.clone(),
            input_name,
            input_shape: full,
            micro,
            upload,
            poison: poison.then(|| {
                let target = input_target.as_ref().expect("the graph has an input node");
                // Every slot and every output buffer (a transposed output
                // lives outside the slots), but not the slot the input is
                // written into directly: it must keep the input.
                let mut targets: Vec<wgpu::Buffer> = Vec::new();
                let outs = outputs.iter().map(|o| &o.src);
                for b in slots.iter().chain(outs).chain(scratch.iter()) {
                    if b != target && !targets.contains(b) {
                        targets.push(b.clone());
                    }
                }
                let largest = targets.iter().map(|b| b.size()).max().unwrap_or(4);
                let nan = alloc.init("poison", &vec![f32::NAN; (largest / 4) as usize]);
                (nan, targets)
            }),
            input_target: input_target.expect("the graph has an input node"),
            steps,
            outputs,
            _slots: slots.into_iter().chain(scratch).collect(),
            _params: params.bufs,
            timestamps,
            stats,
            buffers_created: alloc.count,
            run_lock: Mutex::new(()),
        })
    }

    /// The input shape this graph was compiled for (NCHW).
    pub fn input_shape(&self) -> [usize; 4] {
        self.input_shape
    }

    /// The shapes [`CompiledGraph::run`] returns, in output order
    /// (`[N, F]` for `H = W = 1`, else `[N, C, H, W]`).
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs.iter().map(|o| o.shape.clone()).collect()
    }

    /// Bytes of the whole batch's input (f32, NCHW): what
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
    /// - `input`: the whole batch as f32 NCHW ([`CompiledGraph::input_shape`])
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
            let mut shape = self.outputs[k].shape.clone();
            shape[0] = images;
            let what = format!("output {k} ({shape:?})");
            check(what, buf, part(bytes), wgpu::BufferUsages::COPY_DST)?;
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

    /// Buffers the executor has created on the calling thread so far, all
    /// compiled graphs together: every buffer it makes is counted, and runs
    /// must leave the count unchanged.
    pub fn buffers_created_on_this_thread() -> u64 {
        BUFFERS_CREATED.with(Cell::get)
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
        let [n, c, h, w] = self.input_shape;
        let expected = || {
            format!(
                "input 1..={n}×{c}×{h}×{w} (compiled for {})",
                fmt4(self.input_shape)
            )
        };
        let shape = input.nchw().map_err(|_| Error::Shape {
            node: self.input_name.clone(),
            expected: expected(),
            actual: format!("shape {:?}", input.shape),
        })?;
        if input.shape.len() != 4
            || shape[1..] != self.input_shape[1..]
            || !(1..=n).contains(&shape[0])
        {
            return Err(Error::Shape {
                node: self.input_name.clone(),
                expected: expected(),
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

    /// Encodes what comes before a micro-batch's dispatches: its images
    /// copied from `input` (the whole batch, NCHW), and the NaN poison.
    fn begin_micro_batch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        first: usize,
        images: usize,
    ) {
        let per_image = self.input_bytes() / self.input_shape[0] as u64;
        enc.copy_buffer_to_buffer(
            input,
            first as u64 * per_image,
            &self.input_target,
            0,
            images as u64 * per_image,
        );
        if let Some((nan, slots)) = &self.poison {
            for slot in slots {
                enc.copy_buffer_to_buffer(nan, 0, slot, 0, slot.size());
            }
        }
    }

    fn submit(&self, enc: wgpu::CommandEncoder) -> Result<()> {
        let scope = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        self.ctx.queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(e.to_string()));
        }
        Ok(())
    }

    /// Encodes a whole run of `n` images: per micro-batch, its images
    /// copied from `input`, one compute pass of every dispatch, and its
    /// outputs copied into `outputs` (whole-batch buffers, one per graph
    /// output).
    fn encode_run(
        &self,
        enc: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        outputs: &[&wgpu::Buffer],
        n: usize,
    ) {
        for (first, images) in self.micro_batches(n) {
            self.begin_micro_batch(enc, input, first, images);
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("resincept run"),
                    timestamp_writes: None,
                });
                for s in &self.steps {
                    s.dispatch.encode(&mut pass);
                }
            }
            for (o, dst) in self.outputs.iter().zip(outputs) {
                let per_image = o.per_image as u64 * 4;
                enc.copy_buffer_to_buffer(
                    &o.src,
                    0,
                    dst,
                    first as u64 * per_image,
                    images as u64 * per_image,
                );
            }
        }
    }

    /// The first `n` images' outputs from the staging buffers.
    fn read_outputs(&self, n: usize) -> Result<Vec<Tensor>> {
        self.outputs
            .iter()
            .map(|o| {
                let mut shape = o.shape.clone();
                shape[0] = n;
                Tensor::new(shape, self.ctx.map_read(&o.staging, n * o.per_image)?)
            })
            .collect()
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
    /// micro-batch; creates no buffer, pipeline or bind group.
    pub fn run(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.write_input(input)?;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("resincept run"),
            });
        let staging: Vec<&wgpu::Buffer> = self.outputs.iter().map(|o| &o.staging).collect();
        self.encode_run(&mut enc, &self.upload, &staging, n);
        self.submit(enc)?;
        self.read_outputs(n)
    }

    /// Runs the graph once with a GPU timestamp around every dispatch (each
    /// in its own compute pass) and returns each dispatch's time, in run
    /// order. `None` when the adapter lacks `TIMESTAMP_QUERY`. With several
    /// micro-batches, the first is timed (times are for
    /// [`Stats::micro_batch`] images). The outputs are computed but not
    /// returned.
    pub fn profile(&self, input: &Tensor) -> Result<Option<Vec<LayerTime>>> {
        let Some(ts) = &self.timestamps else {
            return Ok(None);
        };
        let _guard = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.write_input(input)?;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("resincept profile"),
            });
        self.begin_micro_batch(&mut enc, &self.upload, 0, self.micro.min(n));
        for (k, s) in self.steps.iter().enumerate() {
            let (set, _) = &ts.sets[k / PAIRS_PER_SET];
            let q = 2 * (k % PAIRS_PER_SET) as u32;
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&s.dispatch.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(q),
                    end_of_pass_write_index: Some(q + 1),
                }),
            });
            s.dispatch.encode(&mut pass);
        }
        for (j, (set, count)) in ts.sets.iter().enumerate() {
            enc.resolve_query_set(set, 0..*count, &ts.resolve[j], 0);
            enc.copy_buffer_to_buffer(&ts.resolve[j], 0, &ts.readback[j], 0, *count as u64 * 8);
        }
        self.submit(enc)?;
        let period_ns = self.ctx.queue.get_timestamp_period() as f64;
        let mut ticks: Vec<u64> = Vec::with_capacity(2 * self.steps.len());
        for (j, (_, count)) in ts.sets.iter().enumerate() {
            ticks.extend(self.ctx.map_read::<u64>(&ts.readback[j], *count as usize)?);
        }
        Ok(Some(
            self.steps
                .iter()
                .enumerate()
                .map(|(k, s)| LayerTime {
                    name: s.dispatch.label.clone(),
                    kind: s.kind,
                    ms: ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * period_ns / 1e6,
                    flops: s.dispatch.flops,
                })
                .collect(),
        ))
    }
}
