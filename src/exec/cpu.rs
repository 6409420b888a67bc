//! The CPU executor: runs a graph, node by node, on the CPU reference
//! kernels (plain loops over NCHW). It is the oracle for graph tests and the
//! fallback device on machines with no GPU adapter.
//!
//! It runs graphs before and after the optimisation passes: fused convs use
//! the same epilogue parameters as the GPU ([`super::conv_epilogue`]);
//! in-place concat aliases are a GPU memory matter and are ignored here
//! (the concat copies). Values are dropped after their last use, so deep
//! nets (ResNet-1001) stay small in memory. Convolutions, nearly all of the
//! work, are split by output channel over the machine's cores; every output
//! is still computed by the same reference loop, so results are bitwise
//! those of a single-threaded run.
//!
//! In [`Precision::F16`] ([`run_with`]) it computes what the GPU's f16
//! precision computes: the input and the conv and linear weights rounded
//! to f16 as the device stores them, every kernel's f32 reference, and
//! every node's output rounded to f16 once (the kernels' `*_cpu_f16`
//! references, node by node), so that a layer-by-layer comparison with the
//! f16 GPU run sees only the kernels' declared tolerances.

use super::Precision;
use crate::error::Result;
use crate::graph::{Graph, Op};
use crate::kernels::{
    batchnorm, concat, const_arith, conv2d, elementwise, linear, pad, pool, round_f16_in_place,
    rounded_f16, softmax,
};
use crate::tensor::Tensor;
use crate::weights::Weights;

/// Runs `graph` on `input` (NCHW, any batch and spatial size the graph
/// accepts) in f32 and returns its outputs in order. Errors name the node.
pub fn run(graph: &Graph, weights: &Weights, input: &Tensor) -> Result<Vec<Tensor>> {
    run_with(graph, weights, input, Precision::F32)
}

/// [`run`] in `precision`: in f16, as the GPU computes it (see the module
/// doc); the outputs are f32 tensors holding f16 values.
pub fn run_with(
    graph: &Graph,
    weights: &Weights,
    input: &Tensor,
    precision: Precision,
) -> Result<Vec<Tensor>> {
    let half = precision == Precision::F16;
    // Conv and linear weights as the device stores them.
    let stored = |data: &[f32]| -> Vec<f32> {
        if half {
            rounded_f16(data)
        } else {
            data.to_vec()
        }
    };
    let in_shape = input.nchw()?;
    let shapes = graph.infer_shapes(in_shape)?;
    super::check_params(weights, &super::param_specs_for(graph, &shapes))?;
    let consumers = graph.consumers();
    let mut remaining: Vec<usize> = consumers.iter().map(|c| c.len()).collect();
    for v in &graph.outputs {
        remaining[v.0] += 1;
    }
    let mut values: Vec<Option<Vec<f32>>> = vec![None; shapes.len()];
    for node in &graph.nodes {
        let out_shape = shapes[node.output.0];
        let out_len: usize = out_shape.iter().product();
        let get = |i: usize| -> &[f32] { values[node.inputs[i].0].as_deref().unwrap() };
        let in_shape = |i: usize| shapes[node.inputs[i].0];
        let mut out = vec![0f32; out_len];
        match &node.op {
            Op::Input => out.copy_from_slice(&input.data),
            Op::Conv2d(c) => {
                let p = conv2d::Conv2dParams::for_node(c, in_shape(0), c.out_channels, 0);
                let (scale, shift) = super::conv_epilogue(&node.name, c, weights)?;
                let wt = stored(&weights.get(&format!("{}.weight", node.name))?.data);
                let res = c.residual.map(|_| get(1));
                conv_parallel(&p, get(0), &wt, &scale, &shift, res, &mut out);
            }
            Op::BatchNorm { eps, clamp } => {
                let [n, c, h, w] = in_shape(0);
                let p = batchnorm::BatchNormParams {
                    batch: n,
                    channels: c,
                    h,
                    w,
                    eps: *eps,
                    clamp: *clamp,
                };
                let g = |s: &str| weights.get(&format!("{}.{s}", node.name));
                batchnorm::batchnorm_cpu(
                    &p,
                    get(0),
                    &g("weight")?.data,
                    &g("bias")?.data,
                    &g("running_mean")?.data,
                    &g("running_var")?.data,
                    &mut out,
                );
            }
            Op::Relu => elementwise::relu_cpu(get(0), &mut out),
            Op::Clip(c) => elementwise::clip_cpu(*c, get(0), &mut out),
            Op::Add { alpha, beta, clamp } => {
                let p = elementwise::AddParams {
                    len: out_len,
                    alpha: *alpha,
                    beta: *beta,
                    clamp: *clamp,
                };
                elementwise::add_cpu(&p, get(0), get(1), &mut out);
            }
            Op::Pool(pl) => {
                let p = pool::PoolParams::for_node(pl, in_shape(0), in_shape(0)[1], 0);
                pool::pool_cpu(&p, get(0), &mut out);
            }
            Op::Pad(pd) => {
                let p = pad::PadParams {
                    shape: in_shape(0),
                    pad: *pd,
                };
                p.validate(&node.name)?;
                pad::pad_cpu(&p, get(0), &mut out);
            }
            Op::Transpose { perm } => {
                out = pad::transpose_cpu(in_shape(0), *perm, get(0));
            }
            Op::GlobalAvgPool => {
                let [n, c, h, w] = in_shape(0);
                pool::global_avg_pool_cpu(n, c, h * w, get(0), &mut out);
            }
            Op::Concat => {
                let mut off = 0;
                for i in 0..node.inputs.len() {
                    let [n, c, h, w] = in_shape(i);
                    let p = concat::ConcatParams {
                        batch: n,
                        hw: h * w,
                        channels: c,
                        out_c_total: out_shape[1],
                        out_c_offset: off,
                    };
                    concat::concat_cpu(&p, get(i), &mut out);
                    off += c;
                }
            }
            Op::Flatten => out.copy_from_slice(get(0)),
            Op::Linear { out_features, bias } => {
                let [n, f, _, _] = in_shape(0);
                let p = linear::LinearParams {
                    batch: n,
                    in_features: f,
                    out_features: *out_features,
                };
                let w = stored(&weights.get(&format!("{}.weight", node.name))?.data);
                let b = if *bias {
                    Some(&weights.get(&format!("{}.bias", node.name))?.data[..])
                } else {
                    None
                };
                linear::linear_cpu(&p, get(0), &w, b, &mut out);
            }
            Op::ConstArith(k) => {
                let p = const_arith::ConstArithParams {
                    arith: k.arith,
                    const_first: k.const_first,
                    shape: in_shape(0),
                    const_shape: k.shape,
                };
                // The constant as the device stores it (f16 in f16).
                let c = stored(&weights.get(&format!("{}.constant", node.name))?.data);
                const_arith::const_arith_cpu(&p, get(0), &c, &mut out);
            }
            Op::Softmax { axis } => {
                let p = softmax::SoftmaxParams::nchw(out_shape, *axis);
                softmax::softmax_cpu(&p, get(0), &mut out);
            }
        }
        // Each node's output rounded once, as the GPU stores it (its inputs
        // were rounded when they were stored: the graph's input here too).
        if half {
            round_f16_in_place(&mut out);
        }
        for v in &node.inputs {
            remaining[v.0] -= 1;
            if remaining[v.0] == 0 {
                values[v.0] = None;
            }
        }
        values[node.output.0] = Some(out);
    }
    graph
        .outputs
        .iter()
        .map(|v| {
            let s = shapes[v.0];
            let shape = if s[2] == 1 && s[3] == 1 {
                vec![s[0], s[1]]
            } else {
                s.to_vec()
            };
            Tensor::new(shape, values[v.0].clone().unwrap())
        })
        .collect()
}

/// Runs [`conv2d::conv2d_cpu`] on the machine's cores, each thread taking a
/// contiguous range of output channels (a sub-convolution with the same
/// input). Bitwise equal to one call: each output is computed by the same
/// loop over the same terms. Grouped convs and small ones run on one thread.
#[allow(clippy::too_many_arguments)]
pub fn conv_parallel(
    p: &conv2d::Conv2dParams,
    input: &[f32],
    weight: &[f32],
    scale: &[f32],
    shift: &[f32],
    residual: Option<&[f32]>,
    out: &mut [f32],
) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks = threads.min(p.out_channels);
    if p.groups != 1 || chunks < 2 || p.macs() < 1 << 20 {
        conv2d::conv2d_cpu(p, input, weight, scale, shift, residual, out);
        return;
    }
    let [oh, ow] = p.out_hw().expect("validated by shape inference");
    let plane = oh * ow;
    let k = weight.len() / p.out_channels;
    let per = p.out_channels.div_ceil(chunks);
    let ranges: Vec<(usize, usize)> = (0..p.out_channels)
        .step_by(per)
        .map(|o0| (o0, (o0 + per).min(p.out_channels)))
        .collect();
    let parts: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(o0, o1)| {
                scope.spawn(move || {
                    let co = o1 - o0;
                    let sub = conv2d::Conv2dParams {
                        out_channels: co,
                        out_c_total: co,
                        out_c_offset: 0,
                        ..p.clone()
                    };
                    // The residual's channels o0..o1, densely packed.
                    let res: Option<Vec<f32>> = residual.map(|r| {
                        (0..p.batch)
                            .flat_map(|n| &r[(n * p.out_channels + o0) * plane..][..co * plane])
                            .copied()
                            .collect()
                    });
                    let mut part = vec![0f32; p.batch * co * plane];
                    conv2d::conv2d_cpu(
                        &sub,
                        input,
                        &weight[o0 * k..o1 * k],
                        &scale[o0..o1],
                        &shift[o0..o1],
                        res.as_deref(),
                        &mut part,
                    );
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("conv thread"))
            .collect()
    });
    for (&(o0, o1), part) in ranges.iter().zip(&parts) {
        let co = o1 - o0;
        for n in 0..p.batch {
            let dst = (n * p.out_c_total + p.out_c_offset + o0) * plane;
            out[dst..dst + co * plane].copy_from_slice(&part[n * co * plane..][..co * plane]);
        }
    }
}
