//! Lowering: one small function per graph op, turning a node into its
//! dispatches over a [`Lowering`] context (the device, the plan, where
//! values live, the parameters uploaded so far, the steps made so far).
//!
//! Adding an op means adding its arm to [`lower_node`] and one `lower_*`
//! function here, beside its IR variant and its kernel pair.

use super::memory::{Alloc, Memory};
use super::params::{layout_tag, Params};
use super::{CompileOptions, Step};
use crate::device::buffers::BufferRange;
use crate::device::{Context, Dispatch, Span};
use crate::error::Result;
use crate::exec::conv_epilogue;
use crate::graph::{Clamp, ConstArith, Conv2d, Graph, Node, Op, Pad, Pool};
use crate::kernels::conv2d::{self, Conv2dParams, Launch};
use crate::kernels::{
    batchnorm, concat, const_arith, elementwise, layout, linear, pad, pool, softmax,
};
use crate::plan::{is_flatten_view, Plan};
use crate::shaders::Storage;
use crate::weights::Weights;

/// What every `lower_*` function works with.
pub(super) struct Lowering<'a, 'b, 'c> {
    pub ctx: &'a Context,
    /// The layout the input arrives in.
    pub input_layout: crate::tensor::Layout,
    /// How activations and conv/linear weights are stored.
    pub storage: Storage,
    pub graph: &'a Graph,
    pub plan: &'a Plan,
    pub mem: &'a Memory,
    pub weights: &'a Weights,
    /// Per node (by index): its conv params and launch, chosen before any
    /// dispatch is built (so the shared split-K scratch exists first).
    pub launches: &'a [Option<(Conv2dParams, Launch)>],
    /// The split-K scratch buffer every split conv shares.
    pub scratch: Option<&'a wgpu::Buffer>,
    pub alloc: &'b mut Alloc<'c>,
    pub params: &'b mut Params,
    pub steps: &'b mut Vec<Step>,
    /// Where each micro-batch's NCHW input is copied to; set by the input
    /// node.
    pub input_target: &'b mut Option<BufferRange>,
}

impl Lowering<'_, '_, '_> {
    fn push(&mut self, dispatch: Dispatch, kind: &'static str) {
        self.steps.push(Step { dispatch, kind });
    }

    fn shape(&self, v: crate::graph::ValueId) -> [usize; 4] {
        self.plan.shapes[v.0]
    }

    /// A stored parameter uploaded as it is, f32 in every precision
    /// (batchnorm's, a bias).
    fn upload_raw(&mut self, node: &str, key: &str) -> Result<usize> {
        let weights = self.weights;
        self.params
            .upload(self.alloc, weights, node, key, 0, Storage::F32, || {
                Ok(weights.get(key)?.data.clone())
            })
    }
}

/// Every conv's kernel params and launch, by node index, as the launcher
/// chooses them for this device and these options.
pub(super) fn choose_launches(
    ctx: &Context,
    g: &Graph,
    plan: &Plan,
    mem: &Memory,
    opts: &CompileOptions,
) -> Result<Vec<Option<(Conv2dParams, Launch)>>> {
    let mut launches = vec![None; g.nodes.len()];
    for &i in &plan.schedule {
        let n = &g.nodes[i];
        if let Op::Conv2d(c) = &n.op {
            let (_, off, ctot) = mem.place(plan, n.output);
            let p = Conv2dParams::for_node(c, plan.shapes[n.inputs[0].0], ctot, off);
            p.validate(&n.name)?;
            let target = opts.split_k.target(ctx.info.device_type);
            let direct = opts.grouped_direct_max;
            let tall = opts.tall_tile_min_k;
            let l = Launch::choose_with(&n.name, &p, &ctx.limits, target, direct, tall)?;
            launches[i] = Some((p, l));
        }
    }
    Ok(launches)
}

/// Lowers node `i` of the graph.
pub(super) fn lower_node(lw: &mut Lowering, i: usize) -> Result<()> {
    let n = &lw.graph.nodes[i];
    match &n.op {
        Op::Input => lower_input(lw, n),
        Op::Conv2d(c) => lower_conv(lw, i, n, c),
        Op::BatchNorm { eps, clamp } => lower_batchnorm(lw, n, *eps, *clamp),
        Op::Relu => lower_clip(lw, n, Clamp::RELU),
        Op::Clip(c) => lower_clip(lw, n, *c),
        Op::Add { alpha, beta, clamp } => lower_add(lw, n, *alpha, *beta, *clamp),
        Op::Pool(pl) => lower_pool(lw, n, pl),
        Op::Pad(p) => lower_pad(lw, n, p),
        Op::GlobalAvgPool => lower_global_avg_pool(lw, n),
        Op::Concat => lower_concat(lw, n),
        Op::Flatten => lower_flatten(lw, n),
        Op::Linear { out_features, bias } => lower_linear(lw, n, *out_features, *bias),
        Op::Softmax { axis } => lower_softmax(lw, n, *axis),
        Op::Transpose { perm } => lower_transpose(lw, n, *perm),
        Op::ConstArith(k) => lower_const_arith(lw, n, k),
    }
}

/// The graph input: an f32 NCHW upload is transposed into the input's
/// range of the arena (converted to f16 in f16). An upload already in the
/// arena's order (NHWC, or NCHW with `H·W = 1` or `C = 1`) is copied
/// straight in when f32, and only converted in f16: the identity
/// transpose of `(N, 1, 1, H·W·C)`.
fn lower_input(lw: &mut Lowering, n: &Node) -> Result<()> {
    let slot = lw.mem.dense(lw.plan, n.output, &n.name)?;
    let nhwc = lw.input_layout == crate::tensor::Layout::Nhwc;
    let Some(shape) = layout::boundary_transpose(lw.shape(n.output), nhwc, lw.storage) else {
        *lw.input_target = Some(slot.to_range());
        return Ok(());
    };
    let up = lw
        .alloc
        .storage("input upload (NCHW)", shape.iter().product());
    let d = layout::transpose_gpu(
        lw.ctx,
        &format!("{}:nchw_to_nhwc", n.name),
        lw.storage,
        layout::Direction::NchwF32ToNhwc,
        shape,
        &up,
        slot,
    )?;
    lw.push(d, "layout");
    *lw.input_target = Some(Span::whole(&up).to_range());
    Ok(())
}

/// A conv with its fused epilogue: packed weights and the per-channel
/// scale/shift uploaded once; one dispatch, or two when K is split.
fn lower_conv(lw: &mut Lowering, i: usize, n: &Node, c: &Conv2d) -> Result<()> {
    let name = n.name.as_str();
    let (p, launch) = lw.launches[i].as_ref().expect("chosen before lowering");
    let weights = lw.weights;
    let wkey = format!("{name}.weight");
    let geometry = layout_tag((
        "conv2d packed",
        p.groups,
        p.in_channels,
        p.out_channels,
        p.kernel,
    ));
    let w = lw
        .params
        .upload(lw.alloc, weights, name, &wkey, geometry, lw.storage, || {
            Ok(conv2d::pack_weights(p, &weights.get(&wkey)?.data))
        })?;
    // Scale and shift depend on the conv's bias, its folded batchnorm and
    // its branch scale: all part of the tag.
    let epi = layout_tag((
        "conv2d epilogue",
        c.bias,
        &c.bn.as_ref().map(|(b, e)| (b.clone(), e.to_bits())),
        c.out_scale.to_bits(),
    ));
    let (scale_key, shift_key) = (format!("{name} scale"), format!("{name} shift"));
    let mut epilogue = None;
    let mut scale_shift = |which: usize| -> Result<Vec<f32>> {
        if epilogue.is_none() {
            epilogue = Some(conv_epilogue(name, c, weights)?);
        }
        let (scale, shift) = epilogue.as_ref().expect("computed above");
        Ok(if which == 0 {
            scale.clone()
        } else {
            shift.clone()
        })
    };
    let f32s = Storage::F32;
    let s = lw
        .params
        .upload(lw.alloc, weights, name, &scale_key, epi, f32s, || {
            scale_shift(0)
        })?;
    let t = lw
        .params
        .upload(lw.alloc, weights, name, &shift_key, epi, f32s, || {
            scale_shift(1)
        })?;
    let residual = match c.residual {
        Some(_) => Some(lw.mem.dense(lw.plan, n.inputs[1], name)?),
        None => None,
    };
    let (out, _, _) = lw.mem.place(lw.plan, n.output);
    let bufs = &lw.params.bufs;
    let ds = conv2d::conv2d_gpu_launch(
        lw.ctx,
        name,
        lw.storage,
        p,
        *launch,
        lw.mem.dense(lw.plan, n.inputs[0], name)?,
        bufs[w].as_ref(),
        bufs[s].as_ref(),
        bufs[t].as_ref(),
        residual,
        lw.scratch.map(Span::whole),
        out,
    )?;
    for d in ds {
        lw.push(d, n.op.kind());
    }
    Ok(())
}

/// A standalone inference batchnorm (pre-activation ResNets), reading the
/// four raw PyTorch buffers.
fn lower_batchnorm(lw: &mut Lowering, n: &Node, eps: f32, clamp: Option<Clamp>) -> Result<()> {
    let name = n.name.as_str();
    let [batch, channels, h, w] = lw.shape(n.inputs[0]);
    let p = batchnorm::BatchNormParams {
        batch,
        channels,
        h,
        w,
        eps,
        clamp,
    };
    let mut k = [0; 4];
    for (slot, s) in k
        .iter_mut()
        .zip(["weight", "bias", "running_mean", "running_var"])
    {
        *slot = lw.upload_raw(name, &format!("{name}.{s}"))?;
    }
    let bufs = &lw.params.bufs;
    let d = batchnorm::batchnorm_gpu(
        lw.ctx,
        name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], name)?,
        bufs[k[0]].as_ref(),
        bufs[k[1]].as_ref(),
        bufs[k[2]].as_ref(),
        bufs[k[3]].as_ref(),
        lw.mem.dense(lw.plan, n.output, name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// A ReLU or clamp (ONNX `Clip`, ReLU6) the fusion pass could not fold
/// into its producer.
fn lower_clip(lw: &mut Lowering, n: &Node, c: Clamp) -> Result<()> {
    let len = lw.shape(n.output).iter().product();
    let d = elementwise::clip_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        c,
        len,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// `alpha·a + beta·b` (then a clamp) that the fusion pass left standalone.
fn lower_add(
    lw: &mut Lowering,
    n: &Node,
    alpha: f32,
    beta: f32,
    clamp: Option<Clamp>,
) -> Result<()> {
    let p = elementwise::AddParams {
        len: lw.shape(n.output).iter().product(),
        alpha,
        beta,
        clamp,
    };
    let d = elementwise::add_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        Some(lw.mem.dense(lw.plan, n.inputs[1], &n.name)?),
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// A window pool, written at its storage's channel offset (an Inception
/// pool branch lands in its concat).
fn lower_pool(lw: &mut Lowering, n: &Node, pl: &Pool) -> Result<()> {
    let (out, off, ctot) = lw.mem.place(lw.plan, n.output);
    let p = pool::PoolParams::for_node(pl, lw.shape(n.inputs[0]), ctot, off);
    let x = lw.mem.dense(lw.plan, n.inputs[0], &n.name)?;
    let d = pool::pool_gpu(lw.ctx, &n.name, lw.storage, &p, x, out)?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// A pad or crop of any axes, in any mode, into a dense output.
fn lower_pad(lw: &mut Lowering, n: &Node, pd: &Pad) -> Result<()> {
    let p = pad::PadParams {
        shape: lw.shape(n.inputs[0]),
        pad: *pd,
    };
    let d = pad::pad_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// A permutation of the four axes into a dense output.
fn lower_transpose(lw: &mut Lowering, n: &Node, perm: [usize; 4]) -> Result<()> {
    let d = pad::transpose_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        lw.shape(n.inputs[0]),
        perm,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// Mean over H·W into (N, C).
fn lower_global_avg_pool(lw: &mut Lowering, n: &Node) -> Result<()> {
    let [batch, c, h, w] = lw.shape(n.inputs[0]);
    let d = pool::global_avg_pool_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        batch,
        c,
        h * w,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// A concat: its aliased inputs were written in place by their producers;
/// each other input is copied into its channel range.
fn lower_concat(lw: &mut Lowering, n: &Node) -> Result<()> {
    let (out, base_off, ctot) = lw.mem.place(lw.plan, n.output);
    let mut off = base_off;
    for (k, &v) in n.inputs.iter().enumerate() {
        let [batch, c, h, w] = lw.shape(v);
        let aliased = lw.graph.alias.get(&v).is_some_and(|&(t, _)| t == n.output);
        if !aliased {
            let p = concat::ConcatParams {
                batch,
                hw: h * w,
                channels: c,
                out_c_total: ctot,
                out_c_offset: off,
            };
            let src = lw.mem.dense(lw.plan, v, &n.name)?;
            let label = format!("{}:copy[{k}]", n.name);
            let d = concat::concat_gpu(lw.ctx, &label, lw.storage, &p, src, out)?;
            lw.push(d, n.op.kind());
        }
        off += c;
    }
    Ok(())
}

/// A flatten: free when a view (same bytes in NHWC and NCHW), else an
/// NHWC → NCHW transpose, which is PyTorch's flatten order.
fn lower_flatten(lw: &mut Lowering, n: &Node) -> Result<()> {
    let s = lw.shape(n.inputs[0]);
    if is_flatten_view(s) {
        return Ok(());
    }
    let d = layout::transpose_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        layout::Direction::NhwcToNchw,
        s,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, "layout");
    Ok(())
}

/// `nn.Linear`: the weight transposed once at upload.
fn lower_linear(lw: &mut Lowering, n: &Node, out_features: usize, bias: bool) -> Result<()> {
    let name = n.name.as_str();
    let [batch, f, _, _] = lw.shape(n.inputs[0]);
    let p = linear::LinearParams {
        batch,
        in_features: f,
        out_features,
    };
    let weights = lw.weights;
    let wkey = format!("{name}.weight");
    let tag = layout_tag(("linear packed", f, out_features));
    let w = lw
        .params
        .upload(lw.alloc, weights, name, &wkey, tag, lw.storage, || {
            Ok(linear::pack_weights(&p, &weights.get(&wkey)?.data))
        })?;
    let b = if bias {
        Some(lw.upload_raw(name, &format!("{name}.bias"))?)
    } else {
        None
    };
    let bufs = &lw.params.bufs;
    let d = linear::linear_gpu(
        lw.ctx,
        name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], name)?,
        bufs[w].as_ref(),
        b.map(|k| Span::whole(bufs[k].as_ref())),
        lw.mem.dense(lw.plan, n.output, name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// Softmax over one NCHW axis, as the NHWC storage lays it out.
fn lower_softmax(lw: &mut Lowering, n: &Node, axis: usize) -> Result<()> {
    let p = softmax::SoftmaxParams::nhwc(lw.shape(n.output), axis);
    let d = softmax::softmax_gpu(
        lw.ctx,
        &n.name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], &n.name)?,
        lw.mem.dense(lw.plan, n.output, &n.name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}

/// `x ∘ c` with a broadcast constant: the constant uploaded once in the
/// shader's layout (NHWC of its own shape), stored like the activations
/// (f16 in f16), then one dispatch.
fn lower_const_arith(lw: &mut Lowering, n: &Node, k: &ConstArith) -> Result<()> {
    let name = n.name.as_str();
    let p = const_arith::ConstArithParams {
        arith: k.arith,
        const_first: k.const_first,
        shape: lw.shape(n.inputs[0]),
        const_shape: k.shape,
    };
    let weights = lw.weights;
    let key = format!("{name}.constant");
    let tag = layout_tag(("const_arith nhwc", k.shape));
    let c = lw
        .params
        .upload(lw.alloc, weights, name, &key, tag, lw.storage, || {
            Ok(const_arith::constant_to_device(
                &p,
                &weights.get(&key)?.data,
            ))
        })?;
    let d = const_arith::const_arith_gpu(
        lw.ctx,
        name,
        lw.storage,
        &p,
        lw.mem.dense(lw.plan, n.inputs[0], name)?,
        lw.params.bufs[c].as_ref(),
        lw.mem.dense(lw.plan, n.output, name)?,
    )?;
    lw.push(d, n.op.kind());
    Ok(())
}
