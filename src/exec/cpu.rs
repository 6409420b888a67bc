//! The CPU executor: runs a graph, node by node, on the CPU reference
//! kernels (plain loops over NCHW). It is the oracle for graph tests and the
//! fallback device on machines with no GPU adapter.
//!
//! It runs graphs before and after the optimisation passes: fused convs use
//! the same epilogue parameters as the GPU ([`super::conv_epilogue`]);
//! in-place concat aliases are a GPU memory matter and are ignored here
//! (the concat copies). Values are dropped after their last use, so deep
//! nets (ResNet-1001) stay small in memory.

use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::kernels::{batchnorm, concat, conv2d, elementwise, linear, pool, softmax};
use crate::tensor::Tensor;
use crate::weights::Weights;

/// Runs `graph` on `input` (NCHW, any batch and spatial size the graph
/// accepts) and returns its outputs in order. Errors name the node.
pub fn run(graph: &Graph, weights: &Weights, input: &Tensor) -> Result<Vec<Tensor>> {
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
                let p = c.params(in_shape(0), c.out_channels, 0);
                let (scale, shift) = super::conv_epilogue(&node.name, c, weights)?;
                let wt = weights.get(&format!("{}.weight", node.name))?;
                let res = c.residual.map(|_| get(1));
                conv2d::conv2d_cpu(&p, get(0), &wt.data, &scale, &shift, res, &mut out);
            }
            Op::BatchNorm { eps, relu } => {
                let [n, c, h, w] = in_shape(0);
                let p = batchnorm::BatchNormParams {
                    batch: n,
                    channels: c,
                    h,
                    w,
                    eps: *eps,
                    relu: *relu,
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
            Op::Add { alpha, beta, relu } => {
                let p = elementwise::AddParams {
                    len: out_len,
                    alpha: *alpha,
                    beta: *beta,
                    relu: *relu,
                };
                elementwise::add_cpu(&p, get(0), get(1), &mut out);
            }
            Op::Pool(pl) => {
                let p = pl.params(in_shape(0), in_shape(0)[1], 0);
                pool::pool_cpu(&p, get(0), &mut out);
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
                let w = weights.get(&format!("{}.weight", node.name))?;
                let b = if *bias {
                    Some(&weights.get(&format!("{}.bias", node.name))?.data[..])
                } else {
                    None
                };
                linear::linear_cpu(&p, get(0), &w.data, b, &mut out);
            }
            Op::Softmax => {
                let [n, k, h, w] = out_shape;
                if h * w != 1 {
                    return Err(Error::Shape {
                        node: node.name.clone(),
                        expected: "softmax input (N, K, 1, 1)".into(),
                        actual: format!("{out_shape:?}"),
                    });
                }
                softmax::softmax_cpu(
                    &softmax::SoftmaxParams {
                        batch: n,
                        classes: k,
                    },
                    get(0),
                    &mut out,
                );
            }
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
