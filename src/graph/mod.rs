//! The graph IR: values, nodes, and a builder with shape inference.
//!
//! A [`Graph`] says *what* to compute. Every value is a 4-D NCHW tensor
//! (`(N, F)` results of `flatten`/`linear` are `(N, F, 1, 1)`). Nodes carry
//! the names of PyTorch's `state_dict` key prefixes (`layer1.0.conv1`,
//! `Mixed_5b.branch1x1.conv`), so their parameters are `{name}.weight`,
//! `{name}.bias`, `{name}.running_mean`, … and errors and profiles read like
//! the model the user knows.
//!
//! Shapes are inferred while the graph is built, against the nominal input
//! shape given to [`Graph::input`]; a bad graph fails at the line that built
//! it, with an error naming the node and both shapes. Batch size and input
//! height/width are parameters of compilation: [`Graph::infer_shapes`]
//! re-infers every shape for another input shape.
//!
//! The optimisation passes ([`crate::passes`]) rewrite a graph into one with
//! fused convolutions ([`Conv2d::bn`], [`Conv2d::clamp`], [`Conv2d::residual`])
//! and in-place concats ([`Graph::alias`]); the executors run either form.

mod ops;

pub use ops::{
    conv_out_len, pool_out_len, pool_window_taps, Arith, Clamp, ConstArith, Conv2d, Op, Pad,
    PadMode, Padding, Pool, PoolKind,
};

use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};

/// Index of a value (a tensor) in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// One node: a named operation from input values to one output value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// PyTorch key prefix (parameters are `{name}.weight`, …).
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Input values, in order.
    pub inputs: Vec<ValueId>,
    /// The value this node produces.
    pub output: ValueId,
}

/// A network: nodes in topological order, its input, its outputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// Nodes in a topological order (each node's inputs are produced earlier).
    pub nodes: Vec<Node>,
    /// Shapes of every value for the nominal input shape, indexed by [`ValueId`].
    pub shapes: Vec<[usize; 4]>,
    /// The value holding the graph input.
    pub input: Option<ValueId>,
    /// Values returned by a run, in order.
    pub outputs: Vec<ValueId>,
    /// In-place concat: `value → (concat output, channel offset)`. The
    /// producer of `value` writes straight into its channel range of the
    /// concat's output, and the concat itself moves no data. Set by
    /// [`crate::passes::inplace_concat`].
    pub alias: HashMap<ValueId, (ValueId, usize)>,
}

fn shape_err(node: &str, expected: String, actual: String) -> Error {
    Error::Shape {
        node: node.into(),
        expected,
        actual,
    }
}

fn fmt_shape(s: &[usize; 4]) -> String {
    format!("{}×{}×{}×{}", s[0], s[1], s[2], s[3])
}

/// Infers the output shape of `op` named `name` from its input shapes.
pub fn infer_op(name: &str, op: &Op, ins: &[[usize; 4]]) -> Result<[usize; 4]> {
    let arity = match op {
        Op::Input => 0,
        Op::Conv2d(c) => 1 + c.residual.is_some() as usize,
        Op::Add { .. } => 2,
        Op::Concat => ins.len().max(1),
        _ => 1,
    };
    if ins.len() != arity {
        return Err(Error::Graph {
            node: name.into(),
            message: format!("{} takes {arity} input(s), got {}", op.kind(), ins.len()),
        });
    }
    for s in ins {
        if s.contains(&0) {
            return Err(Error::Graph {
                node: name.into(),
                message: format!("zero-sized input {}", fmt_shape(s)),
            });
        }
    }
    if let Op::BatchNorm { clamp: Some(c), .. } | Op::Add { clamp: Some(c), .. } | Op::Clip(c) = op
    {
        c.validate(name)?;
    }
    let out = match op {
        Op::Input => unreachable!("input shapes are given, not inferred"),
        Op::Conv2d(c) => {
            let out = c.output_shape(name, ins[0])?;
            if c.residual.is_some() && ins[1] != out {
                return Err(shape_err(
                    name,
                    format!("residual of the conv's output shape {}", fmt_shape(&out)),
                    fmt_shape(&ins[1]),
                ));
            }
            out
        }
        Op::BatchNorm { .. } | Op::Relu | Op::Clip(_) => ins[0],
        Op::Softmax { axis } => {
            if *axis > 3 {
                return Err(Error::Graph {
                    node: name.into(),
                    message: format!("softmax axis {axis}, expected 0..=3 (N, C, H, W)"),
                });
            }
            ins[0]
        }
        Op::Transpose { perm } => {
            let mut seen = [false; 4];
            for &a in perm {
                if a > 3 || std::mem::replace(&mut seen[a], true) {
                    return Err(Error::Graph {
                        node: name.into(),
                        message: format!("transpose perm {perm:?} is not a permutation of 0..4"),
                    });
                }
            }
            perm.map(|a| ins[0][a])
        }
        Op::Add { .. } => {
            if ins[0] != ins[1] {
                return Err(shape_err(
                    name,
                    format!("two inputs of one shape, first is {}", fmt_shape(&ins[0])),
                    format!("second {}", fmt_shape(&ins[1])),
                ));
            }
            ins[0]
        }
        Op::Pool(pl) => pl.output_shape(name, ins[0])?,
        Op::ConstArith(k) => k.output_shape(name, ins[0])?,
        Op::Pad(p) => p.output_shape(name, ins[0])?,
        Op::GlobalAvgPool => [ins[0][0], ins[0][1], 1, 1],
        Op::Concat => {
            let [n, _, h, w] = ins[0];
            let mut c = 0;
            for s in ins {
                if s[0] != n || s[2] != h || s[3] != w {
                    return Err(shape_err(
                        name,
                        format!("inputs of one N×·×H×W, first is {}", fmt_shape(&ins[0])),
                        fmt_shape(s),
                    ));
                }
                c += s[1];
            }
            [n, c, h, w]
        }
        Op::Flatten => [ins[0][0], ins[0][1] * ins[0][2] * ins[0][3], 1, 1],
        Op::Linear { out_features, .. } => {
            let [n, _, h, w] = ins[0];
            if h != 1 || w != 1 {
                return Err(shape_err(
                    name,
                    "a flattened (N, F, 1, 1) input".into(),
                    fmt_shape(&ins[0]),
                ));
            }
            if *out_features == 0 {
                return Err(Error::Graph {
                    node: name.into(),
                    message: "zero out_features".into(),
                });
            }
            [n, *out_features, 1, 1]
        }
    };
    if out.contains(&0) {
        return Err(Error::Graph {
            node: name.into(),
            message: format!("zero-sized output {}", fmt_shape(&out)),
        });
    }
    Ok(out)
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the graph input with its nominal NCHW shape (used for
    /// build-time shape inference; compile for any other batch and size).
    pub fn input(&mut self, name: &str, shape: [usize; 4]) -> Result<ValueId> {
        if self.input.is_some() {
            return Err(Error::Graph {
                node: name.into(),
                message: "the graph already has an input".into(),
            });
        }
        if shape.contains(&0) {
            return Err(Error::Graph {
                node: name.into(),
                message: format!("zero-sized input {}", fmt_shape(&shape)),
            });
        }
        let v = ValueId(self.shapes.len());
        self.shapes.push(shape);
        self.nodes.push(Node {
            name: name.into(),
            op: Op::Input,
            inputs: vec![],
            output: v,
        });
        self.input = Some(v);
        Ok(v)
    }

    /// Appends a node, inferring its output shape. Errors name the node.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId> {
        if matches!(op, Op::Input) {
            return Err(Error::Graph {
                node: name.into(),
                message: "use Graph::input to declare the input".into(),
            });
        }
        let mut shapes = Vec::with_capacity(inputs.len());
        for v in inputs {
            let s = self.shapes.get(v.0).ok_or_else(|| Error::Graph {
                node: name.into(),
                message: format!("unknown input value {}", v.0),
            })?;
            shapes.push(*s);
        }
        let out = infer_op(name, &op, &shapes)?;
        if op.has_params() && self.nodes.iter().any(|n| n.name == name) {
            return Err(Error::Graph {
                node: name.into(),
                message: "two nodes with parameters share this name".into(),
            });
        }
        let v = ValueId(self.shapes.len());
        self.shapes.push(out);
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            output: v,
        });
        Ok(v)
    }

    /// `nn.Conv2d` named `name` (parameters `{name}.weight`, maybe `.bias`).
    pub fn conv2d(&mut self, name: &str, x: ValueId, conv: Conv2d) -> Result<ValueId> {
        self.push(name, Op::Conv2d(conv), &[x])
    }

    /// `nn.BatchNorm2d` named `name` with this eps.
    pub fn batchnorm(&mut self, name: &str, x: ValueId, eps: f32) -> Result<ValueId> {
        self.push(name, Op::BatchNorm { eps, clamp: None }, &[x])
    }

    /// ReLU.
    pub fn relu(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.push(name, Op::Relu, &[x])
    }

    /// A clamp to `[c.min, c.max]` (ReLU6, ONNX `Clip`); NaN stays NaN.
    pub fn clip(&mut self, name: &str, x: ValueId, c: Clamp) -> Result<ValueId> {
        self.push(name, Op::Clip(c), &[x])
    }

    /// `a + b`.
    pub fn add(&mut self, name: &str, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.add_scaled(name, a, b, 1.0, 1.0)
    }

    /// `alpha·a + beta·b` (Inception-ResNet: `x + 0.17·branch`).
    pub fn add_scaled(
        &mut self,
        name: &str,
        a: ValueId,
        b: ValueId,
        alpha: f32,
        beta: f32,
    ) -> Result<ValueId> {
        self.push(
            name,
            Op::Add {
                alpha,
                beta,
                clamp: None,
            },
            &[a, b],
        )
    }

    /// Max or average pool.
    pub fn pool(&mut self, name: &str, x: ValueId, pool: Pool) -> Result<ValueId> {
        self.push(name, Op::Pool(pool), &[x])
    }

    /// Constant padding of H and W with `value`.
    pub fn pad(&mut self, name: &str, x: ValueId, padding: Padding, value: f32) -> Result<ValueId> {
        self.push(name, Op::Pad(Pad::constant_hw(padding, value)), &[x])
    }

    /// A pad or crop of any axes in any mode ([`Pad`]).
    pub fn pad_nd(&mut self, name: &str, x: ValueId, pad: Pad) -> Result<ValueId> {
        self.push(name, Op::Pad(pad), &[x])
    }

    /// A permutation of the four axes: output axis `i` is input axis `perm[i]`.
    pub fn transpose(&mut self, name: &str, x: ValueId, perm: [usize; 4]) -> Result<ValueId> {
        self.push(name, Op::Transpose { perm }, &[x])
    }

    /// Global average pool to (N, C, 1, 1).
    pub fn global_avg_pool(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.push(name, Op::GlobalAvgPool, &[x])
    }

    /// Channel concatenation.
    pub fn concat(&mut self, name: &str, xs: &[ValueId]) -> Result<ValueId> {
        if xs.is_empty() {
            return Err(Error::Graph {
                node: name.into(),
                message: "concat of no inputs".into(),
            });
        }
        self.push(name, Op::Concat, xs)
    }

    /// Flatten to (N, C·H·W, 1, 1).
    pub fn flatten(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.push(name, Op::Flatten, &[x])
    }

    /// `nn.Linear` named `name`.
    pub fn linear(
        &mut self,
        name: &str,
        x: ValueId,
        out_features: usize,
        bias: bool,
    ) -> Result<ValueId> {
        self.push(name, Op::Linear { out_features, bias }, &[x])
    }

    /// Softmax over channels.
    pub fn softmax(&mut self, name: &str, x: ValueId) -> Result<ValueId> {
        self.softmax_axis(name, x, 1)
    }

    /// Softmax over NCHW axis `axis` (0..=3).
    pub fn softmax_axis(&mut self, name: &str, x: ValueId, axis: usize) -> Result<ValueId> {
        self.push(name, Op::Softmax { axis }, &[x])
    }

    /// The first node that couples the images of a batch ([`Op::couples_batch`]):
    /// with one, the graph runs only on the whole batch it was compiled
    /// for, never split into micro-batches or run on fewer images.
    pub fn batch_coupled(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.op.couples_batch())
    }

    /// `x ∘ c` (`c ∘ x` when `const_first`) with the constant
    /// `{name}.constant` of NCHW shape `shape`, broadcast to x's shape.
    pub fn const_arith(
        &mut self,
        name: &str,
        x: ValueId,
        arith: Arith,
        const_first: bool,
        shape: [usize; 4],
    ) -> Result<ValueId> {
        let op = Op::ConstArith(ConstArith {
            arith,
            const_first,
            shape,
        });
        self.push(name, op, &[x])
    }

    /// Marks `v` as a graph output.
    pub fn output(&mut self, v: ValueId) {
        self.outputs.push(v);
    }

    /// The node producing `v`.
    pub fn producer(&self, v: ValueId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.output == v)
    }

    /// For every value, the indices of the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.shapes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                if !c[v.0].contains(&i) {
                    c[v.0].push(i);
                }
            }
        }
        c
    }

    /// Checks the graph's structure: one input, every input value produced
    /// by an earlier node (so no cycle), each value produced once, outputs
    /// known, parameterised node names unique. Errors name the node.
    pub fn validate(&self) -> Result<()> {
        let mut produced = vec![false; self.shapes.len()];
        let mut names = HashSet::new();
        if self.input.is_none() {
            return Err(Error::Graph {
                node: "<graph>".into(),
                message: "no input declared".into(),
            });
        }
        for n in &self.nodes {
            for v in &n.inputs {
                match produced.get(v.0) {
                    None => {
                        return Err(Error::Graph {
                            node: n.name.clone(),
                            message: format!("unknown input value {}", v.0),
                        })
                    }
                    Some(false) => {
                        return Err(Error::Graph {
                            node: n.name.clone(),
                            message: format!(
                                "input value {} is not produced before this node (a cycle, or nodes out of order)",
                                v.0
                            ),
                        })
                    }
                    Some(true) => {}
                }
            }
            match produced.get_mut(n.output.0) {
                None => {
                    return Err(Error::Graph {
                        node: n.name.clone(),
                        message: format!("output value {} has no shape", n.output.0),
                    })
                }
                Some(p @ false) => *p = true,
                Some(true) => {
                    return Err(Error::Graph {
                        node: n.name.clone(),
                        message: format!("value {} is produced twice", n.output.0),
                    })
                }
            }
            if n.op.has_params() && !names.insert(n.name.as_str()) {
                return Err(Error::Graph {
                    node: n.name.clone(),
                    message: "two nodes with parameters share this name".into(),
                });
            }
        }
        if self.outputs.is_empty() {
            return Err(Error::Graph {
                node: "<graph>".into(),
                message: "no output marked".into(),
            });
        }
        for v in &self.outputs {
            if !produced.get(v.0).copied().unwrap_or(false) {
                return Err(Error::Graph {
                    node: "<graph>".into(),
                    message: format!("output value {} is never produced", v.0),
                });
            }
        }
        Ok(())
    }

    /// Re-infers every value's shape for the input shape `input`
    /// (batch and spatial size of a compilation). Errors name the node.
    pub fn infer_shapes(&self, input: [usize; 4]) -> Result<Vec<[usize; 4]>> {
        self.validate()?;
        let nominal = self.shapes[self.input.unwrap().0];
        if input[1] != nominal[1] {
            return Err(shape_err(
                &self.nodes[0].name,
                format!("{} input channels", nominal[1]),
                format!("{} in input {}", input[1], fmt_shape(&input)),
            ));
        }
        let mut shapes = vec![[0usize; 4]; self.shapes.len()];
        for n in &self.nodes {
            shapes[n.output.0] = if let Op::Input = n.op {
                if input.contains(&0) {
                    return Err(Error::Graph {
                        node: n.name.clone(),
                        message: format!("zero-sized input {}", fmt_shape(&input)),
                    });
                }
                input
            } else {
                let ins: Vec<_> = n.inputs.iter().map(|v| shapes[v.0]).collect();
                infer_op(&n.name, &n.op, &ins)?
            };
        }
        Ok(shapes)
    }

    /// Every parameter the graph reads: (`state_dict` key, PyTorch shape),
    /// in node order. Fused convs list their folded batchnorm's parameters.
    pub fn param_specs(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let in_shape = n.inputs.first().map(|v| self.shapes[v.0]);
            match &n.op {
                Op::Conv2d(c) => {
                    let cin = in_shape.unwrap()[1];
                    out.push((
                        format!("{}.weight", n.name),
                        vec![c.out_channels, cin / c.groups, c.kernel[0], c.kernel[1]],
                    ));
                    if c.bias {
                        out.push((format!("{}.bias", n.name), vec![c.out_channels]));
                    }
                    if let Some((bn, _)) = &c.bn {
                        for p in ["weight", "bias", "running_mean", "running_var"] {
                            out.push((format!("{bn}.{p}"), vec![c.out_channels]));
                        }
                    }
                }
                Op::BatchNorm { .. } => {
                    let c = in_shape.unwrap()[1];
                    for p in ["weight", "bias", "running_mean", "running_var"] {
                        out.push((format!("{}.{p}", n.name), vec![c]));
                    }
                }
                Op::ConstArith(k) => {
                    out.push((format!("{}.constant", n.name), k.shape.to_vec()));
                }
                Op::Linear { out_features, bias } => {
                    let f = in_shape.unwrap()[1];
                    out.push((format!("{}.weight", n.name), vec![*out_features, f]));
                    if *bias {
                        out.push((format!("{}.bias", n.name), vec![*out_features]));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Number of learned parameters (the `state_dict`'s floats, without
    /// `num_batches_tracked`); batchnorm running statistics are not counted,
    /// as PyTorch's `parameters()` does not count buffers.
    pub fn param_count(&self) -> u64 {
        self.param_specs()
            .iter()
            .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum()
    }

    /// Multiply-adds of convolutions and linear layers for the input shape
    /// `input` (the figure papers quote as "FLOPs").
    pub fn macs(&self, input: [usize; 4]) -> Result<u64> {
        let shapes = self.infer_shapes(input)?;
        let mut total = 0u64;
        for n in &self.nodes {
            let out = shapes[n.output.0];
            match &n.op {
                Op::Conv2d(c) => {
                    let cin = shapes[n.inputs[0].0][1];
                    total += out.iter().product::<usize>() as u64
                        * (cin / c.groups * c.kernel[0] * c.kernel[1]) as u64;
                }
                Op::Linear { out_features, .. } => {
                    let [b, f, _, _] = shapes[n.inputs[0].0];
                    total += (b * f * out_features) as u64;
                }
                _ => {}
            }
        }
        Ok(total)
    }

    /// Resolves an in-place concat alias chain: the value whose storage `v`
    /// lives in, and `v`'s channel offset within it.
    pub fn storage_of(&self, v: ValueId) -> (ValueId, usize) {
        let mut cur = v;
        let mut off = 0;
        while let Some(&(parent, o)) = self.alias.get(&cur) {
            cur = parent;
            off += o;
        }
        (cur, off)
    }
}
