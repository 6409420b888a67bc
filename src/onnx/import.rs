//! The import walk: ONNX nodes in file order, each value either a constant
//! or a runtime tensor of the IR graph being built.
//!
//! With the input shape fixed, every value's shape is known as the walk
//! reaches it, so the simplification of the issue happens on the way
//! rather than as separate passes over an ONNX graph:
//!
//! - a node whose inputs are all constants is evaluated ([`super::fold`]);
//!   `Shape` of a runtime value is a constant, so shape arithmetic folds;
//! - `Identity`, `Dropout`, and reshapes that do not move data (`(N, C)` ↔
//!   `(N, C, 1, 1)`) produce no IR node;
//! - `Add`/`Sub`/`Mul`/`Div` of a runtime value by a scalar or per-channel
//!   constant is kept pending as a per-channel affine map
//!   ([`Affine`]) on the value. A chain of them (a decomposed batchnorm)
//!   composes in f64. It becomes the coefficient of an IR `add_scaled` when
//!   the consumer is an `Add` and the map is a plain scalar scale
//!   (Inception-ResNet's `0.17·branch + x`), the bias of a linear layer it
//!   follows, or else one inference `BatchNorm` with synthesized parameters
//!   (γ = scale, β = shift, mean 0, var 1, eps 0), which the IR's
//!   batchnorm-folding pass then folds into a preceding conv;
//! - a constant zero `Pad` is kept pending and becomes the padding of the
//!   conv (or count-including-pad average pool) that reads it;
//! - `Transpose` NCHW → NHWC and back only relabels the value's
//!   [`Layout`]: tf2onnx's transpose pairs around convs cost nothing, and a
//!   graph input read only through an NHWC → NCHW transpose makes the
//!   model's input NHWC.
//!
//! The IR holds 4-D NCHW values; an ONNX value of rank r ≤ 4 in
//! [`Layout::Nchw`] is the IR value with trailing dims of 1 dropped
//! (`(N, F)` is `(N, F, 1, 1)`); a rank-4 value in [`Layout::Nhwc`] is the
//! IR value with its axes permuted `(0, 2, 3, 1)`.

use super::attrs::Node;
use super::load::{default_opset, tensor_from_proto};
use super::proto::{data_type, ModelProto};
use super::tensor::OnnxTensor;
use super::{Dim, ImportOptions, IoInfo, Layout, OnnxModelInfo};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Padding, ValueId};
use crate::tensor::Tensor;
use crate::weights::Weights;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// A pending per-channel map `x·scale[c] + shift[c]` over the IR channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    /// The first ONNX node of the chain (names the synthesized batchnorm).
    pub name: String,
    /// Per-channel scale.
    pub scale: Vec<f64>,
    /// Per-channel shift.
    pub shift: Vec<f64>,
}

impl Affine {
    /// The map's scale when it is the same scalar for every channel and
    /// there is no shift.
    pub fn scalar(&self) -> Option<f64> {
        let s = self.scale[0];
        (self.scale.iter().all(|&x| x == s) && self.shift.iter().all(|&x| x == 0.0)).then_some(s)
    }
}

/// A runtime value: an IR value seen through an ONNX shape and layout, with
/// maybe a pending affine map or zero padding.
#[derive(Debug, Clone, PartialEq)]
pub struct DynVal {
    /// The IR value.
    pub v: ValueId,
    /// The ONNX shape (padded shape when `pad` is set).
    pub shape: Vec<usize>,
    /// How the ONNX shape maps onto the IR's NCHW.
    pub layout: Layout,
    /// Pending per-channel affine map.
    pub affine: Option<Rc<Affine>>,
    /// Pending zero padding (top, left, bottom, right) and the Pad node's name.
    pub pad: Option<([usize; 4], String)>,
}

/// A value during the walk.
#[derive(Debug, Clone)]
pub enum Val {
    /// Known at import time.
    Const(Rc<OnnxTensor>),
    /// Computed by the IR graph.
    Dyn(DynVal),
}

/// The IR shape of an ONNX shape in a layout; `None` when not expressible.
pub fn ir_shape(shape: &[usize], layout: Layout) -> Option<[usize; 4]> {
    match layout {
        Layout::Nhwc if shape.len() == 4 => Some([shape[0], shape[3], shape[1], shape[2]]),
        Layout::Nhwc => None,
        Layout::Nchw if (1..=4).contains(&shape.len()) => {
            let mut s = [1; 4];
            s[..shape.len()].copy_from_slice(shape);
            Some(s)
        }
        Layout::Nchw => None,
    }
}

/// The import state.
pub struct Importer<'a> {
    /// The graph being built.
    pub graph: Graph,
    /// Parameters registered under the keys the IR reads.
    pub weights: Weights,
    vals: HashMap<String, Val>,
    consumers: HashMap<String, usize>,
    names: HashSet<String>,
    own: HashSet<String>,
    /// Bias-less linear layers' IR outputs → the ONNX value the `MatMul`
    /// (or `Gemm`) wrote them to: only an `Add` reading that very value
    /// may become their bias.
    pub linear_outputs: HashMap<ValueId, String>,
    dir: Option<&'a Path>,
}

impl<'a> Importer<'a> {
    /// An empty import, reading external data relative to `dir`.
    fn new(dir: Option<&'a Path>) -> Self {
        Importer {
            graph: Graph::new(),
            weights: Weights::new(),
            vals: HashMap::new(),
            consumers: HashMap::new(),
            names: HashSet::new(),
            own: HashSet::new(),
            linear_outputs: HashMap::new(),
            dir,
        }
    }

    /// A name not used by any IR node yet: `base`, else `base_1`, `base_2`, …
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// The name of the first IR node made for ONNX node `n`: its own
    /// (unique) name; later ones get a suffix.
    pub fn node_name(&mut self, n: &Node) -> String {
        if self.own.insert(n.name.clone()) {
            n.name.clone()
        } else {
            self.fresh(&n.name)
        }
    }

    /// The IR shape of a value.
    pub fn shape_of(&self, v: ValueId) -> [usize; 4] {
        self.graph.shapes[v.0]
    }

    /// How many nodes (and graph outputs) read ONNX value `name`.
    pub fn consumers(&self, name: &str) -> usize {
        self.consumers.get(name).copied().unwrap_or(0)
    }

    /// Input `i` of `n`, `None` when omitted.
    pub fn input(&self, n: &Node, i: usize) -> Result<Option<Val>> {
        match n.input_name(i) {
            None => Ok(None),
            Some(name) => {
                self.vals.get(name).cloned().map(Some).ok_or_else(|| {
                    n.err(format!("input `{name}` is not produced before this node"))
                })
            }
        }
    }

    /// Input `i` of `n` as a constant; errors when it is a runtime value.
    pub fn const_in(&self, n: &Node, i: usize) -> Result<Rc<OnnxTensor>> {
        match self.input(n, i)? {
            Some(Val::Const(t)) => Ok(t),
            Some(Val::Dyn(_)) => Err(n.unsupported(format!(
                "input {i} (`{}`) computed at run time; it must be a constant",
                n.input_name(i).unwrap_or("")
            ))),
            None => Err(n.err(format!("input {i} is required"))),
        }
    }

    /// Optional input `i` of `n` as a constant.
    pub fn opt_const_in(&self, n: &Node, i: usize) -> Result<Option<Rc<OnnxTensor>>> {
        if n.input_name(i).is_none() {
            return Ok(None);
        }
        self.const_in(n, i).map(Some)
    }

    /// Input `i` of `n` as a runtime value, pending maps included.
    pub fn dyn_in_raw(&self, n: &Node, i: usize) -> Result<DynVal> {
        match self.input(n, i)? {
            Some(Val::Dyn(d)) => Ok(d),
            Some(Val::Const(_)) => Err(n.unsupported(format!(
                "input {i} (`{}`) is a constant where a runtime tensor is expected",
                n.input_name(i).unwrap_or("")
            ))),
            None => Err(n.err(format!("input {i} is required"))),
        }
    }

    /// Input `i` of `n` as a runtime value with any pending affine map
    /// applied (the result is remembered for later readers); a pending pad
    /// is refused.
    pub fn dyn_in(&mut self, n: &Node, i: usize) -> Result<DynVal> {
        let d = self.dyn_in_raw(n, i)?;
        if d.affine.is_none() && d.pad.is_none() {
            return Ok(d);
        }
        let m = self.materialize(n, d)?;
        if let Some(name) = n.input_name(i) {
            self.vals.insert(name.to_string(), Val::Dyn(m.clone()));
        }
        Ok(m)
    }

    /// Makes `d` what ONNX value `name` reads as from now on (a runtime
    /// value whose pending map was applied for one reader serves the
    /// others too).
    pub fn remember(&mut self, name: &str, d: DynVal) {
        self.vals.insert(name.to_string(), Val::Dyn(d));
    }

    /// Applies `d`'s pending zero pad as an IR pad node (named after its
    /// `Pad` node) and its pending affine map as a synthesized batchnorm.
    pub fn materialize(&mut self, n: &Node, d: DynVal) -> Result<DynVal> {
        let d = match d.pad.clone() {
            Some((p, pad_node)) => {
                let name = self.fresh(&pad_node);
                let padding = Padding {
                    top: p[0],
                    left: p[1],
                    bottom: p[2],
                    right: p[3],
                };
                let v = self
                    .graph
                    .pad(&name, d.v, padding, 0.0)
                    .map_err(|e| n.err(e))?;
                DynVal { v, pad: None, ..d }
            }
            None => d,
        };
        let Some(a) = d.affine.clone() else {
            return Ok(d);
        };
        if a.scale.iter().all(|&s| s == 1.0) && a.shift.iter().all(|&s| s == 0.0) {
            return Ok(DynVal { affine: None, ..d });
        }
        let v = self.batchnorm_affine(&a.name, d.v, &a.scale, &a.shift)?;
        Ok(DynVal {
            v,
            affine: None,
            ..d
        })
    }

    /// Emits an IR batchnorm computing `x·scale + shift` per channel
    /// (γ = scale, β = shift, mean 0, var 1, eps 0: exact).
    pub fn batchnorm_affine(
        &mut self,
        base: &str,
        x: ValueId,
        scale: &[f64],
        shift: &[f64],
    ) -> Result<ValueId> {
        let name = self.fresh(base);
        let c = scale.len();
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        self.weight(&format!("{name}.weight"), vec![c], f(scale))?;
        self.weight(&format!("{name}.bias"), vec![c], f(shift))?;
        self.weight(&format!("{name}.running_mean"), vec![c], vec![0.0; c])?;
        self.weight(&format!("{name}.running_var"), vec![c], vec![1.0; c])?;
        self.graph.batchnorm(&name, x, 0.0)
    }

    /// Registers a parameter.
    pub fn weight(&mut self, key: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<()> {
        self.weights.insert(key, Tensor::new(shape, data)?)?;
        Ok(())
    }

    /// Registers a constant as a parameter; it must be FLOAT with `shape`'s
    /// element count. `n` names the node in errors.
    pub fn weight_from(
        &mut self,
        n: &Node,
        key: &str,
        shape: Vec<usize>,
        t: &OnnxTensor,
    ) -> Result<()> {
        let data = t
            .as_f32(&format!("{}: `{key}`", n.name))
            .map_err(|e| n.err(e))?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(n.err(format!(
                "parameter `{key}` has dims {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        self.weight(key, shape, data.to_vec())
    }

    /// The IR node that produces `v`, if it is not the input.
    pub fn producer_index(&self, v: ValueId) -> Option<usize> {
        self.graph
            .nodes
            .iter()
            .rposition(|x| x.output == v && x.op != Op::Input)
    }
}

/// The default opset, the tensors bound by the caller, and so on: imports
/// `model` into an IR graph and its weights.
pub fn import_model(
    model: &ModelProto,
    dir: Option<&Path>,
    opts: &ImportOptions,
    origin: &str,
) -> Result<(Graph, Weights, OnnxModelInfo)> {
    let g = model.graph.as_ref().expect("checked by decode_model");
    let opset = default_opset(model).expect("checked by decode_model");
    let mut imp = Importer::new(dir);
    init_constants(&mut imp, g, opts, origin)?;
    // The runtime input: the one graph input that is not a constant.
    let runtime: Vec<_> = g
        .input
        .iter()
        .filter(|i| !imp.vals.contains_key(&i.name))
        .collect();
    let input = match runtime.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Io {
                path: origin.into(),
                message: "the model has no runtime input (every input is an initializer)".into(),
            })
        }
        many => {
            return Err(Error::Io {
                path: origin.into(),
                message: format!(
                    "the model has {} runtime inputs ({}); the engine takes one image tensor",
                    many.len(),
                    many.iter()
                        .map(|i| format!("`{}`", i.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    };
    let in_info = declared_io(input, origin)?;
    if in_info.elem_type != data_type::FLOAT {
        return Err(Error::Io {
            path: origin.into(),
            message: format!(
                "input `{}` has element type {}; only FLOAT inputs are supported",
                input.name,
                data_type::name(in_info.elem_type)
            ),
        });
    }
    let shape = resolve_shape(&in_info, opts.input_shape.as_deref(), origin)?;
    if super::tensor::element_count("input", &shape).is_err()
        || shape
            .iter()
            .any(|&d| d as i64 > super::attrs::MAX_SIZE_ATTR)
    {
        return Err(Error::Io {
            path: origin.into(),
            message: format!(
                "input `{}`: shape {shape:?} is too large ({} bytes of f32; at most {} \
                 elements, {} bytes, and {} per dim)",
                input.name,
                crate::tensor::shape_bytes(&shape, 4),
                super::tensor::MAX_ELEMENTS,
                super::tensor::MAX_ELEMENTS * 4,
                super::attrs::MAX_SIZE_ATTR
            ),
        });
    }
    if !(1..=4).contains(&shape.len()) {
        return Err(Error::Io {
            path: origin.into(),
            message: format!(
                "input `{}` has rank {}; the engine takes tensors of rank 1 to 4",
                input.name,
                shape.len()
            ),
        });
    }
    // NHWC input: rank 4, read only by transposes to NCHW.
    let readers: Vec<_> = g
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == &input.name))
        .collect();
    let nhwc = shape.len() == 4
        && !readers.is_empty()
        && readers.iter().all(|n| {
            n.op_type == "Transpose"
                && n.attribute
                    .iter()
                    .any(|a| a.name == "perm" && a.ints == [0, 3, 1, 2])
        });
    let layout = if nhwc { Layout::Nhwc } else { Layout::Nchw };
    let irs = ir_shape(&shape, layout).expect("rank checked");
    imp.names.insert(input.name.clone());
    let v = imp.graph.input(&input.name, irs)?;
    imp.vals.insert(
        input.name.clone(),
        Val::Dyn(DynVal {
            v,
            shape: shape.clone(),
            layout,
            affine: None,
            pad: None,
        }),
    );
    walk(&mut imp, g, opset, dir, std::slice::from_ref(&input.name))?;
    // Outputs: runtime values become the IR graph's outputs; constants
    // (Dropout's mask) are kept in the model info, with no dispatch.
    let mut outputs: Vec<(IoInfo, Option<DynVal>)> = Vec::new();
    for o in &g.output {
        let val = imp.vals.get(&o.name).cloned().ok_or_else(|| Error::Graph {
            node: o.name.clone(),
            message: "graph output is never produced".into(),
        })?;
        let mut info = declared_io(o, origin)?;
        let d = match val {
            Val::Dyn(d) => d,
            Val::Const(t) => {
                info.shape = t.dims().to_vec();
                info.constant = Some((*t).clone());
                outputs.push((info, None));
                continue;
            }
        };
        let n = Node {
            proto: &OUTPUT_NODE,
            name: o.name.clone(),
            opset,
            dir,
        };
        let mut d = imp.materialize(&n, d)?;
        let taken = |x: &DynVal| {
            outputs
                .iter()
                .any(|(_, y)| y.as_ref().is_some_and(|y| y.v == x.v))
        };
        if d.v == v || taken(&d) {
            // The IR cannot output its input (or one value twice): an
            // identity batchnorm gives the output its own value.
            let c = imp.graph.shapes[d.v.0][1];
            d.v = imp.batchnorm_affine(
                &format!("{}.identity", o.name),
                d.v,
                &vec![1.0; c],
                &vec![0.0; c],
            )?;
        }
        info.shape = d.shape.clone();
        info.layout = d.layout;
        imp.graph.output(d.v);
        outputs.push((info, Some(d)));
    }
    if imp.graph.outputs.is_empty() {
        return Err(Error::Graph {
            node: g
                .output
                .first()
                .map_or("<graph>".into(), |o| o.name.clone()),
            message: "every graph output is a constant (none depends on the input)".into(),
        });
    }
    imp.graph.validate()?;
    // Self-check: the IR's inferred shapes agree with the ONNX ones.
    for (info, d) in &outputs {
        let Some(d) = d else { continue };
        let want = ir_shape(&d.shape, d.layout);
        if want != Some(imp.graph.shapes[d.v.0]) {
            return Err(Error::Graph {
                node: info.name.clone(),
                message: format!(
                    "internal: ONNX shape {:?} ({:?}) disagrees with the IR's {:?}",
                    d.shape, d.layout, imp.graph.shapes[d.v.0]
                ),
            });
        }
    }
    let mut in_io = in_info;
    in_io.shape = shape;
    in_io.layout = layout;
    let info = OnnxModelInfo::new(
        model,
        opset,
        in_io,
        outputs.into_iter().map(|(i, _)| i).collect(),
    );
    Ok((imp.graph, imp.weights, info))
}

/// Consumer counts, initializers and caller-bound constants.
fn init_constants(
    imp: &mut Importer,
    g: &super::proto::GraphProto,
    opts: &ImportOptions,
    origin: &str,
) -> Result<()> {
    // Consumer counts (graph outputs count as readers).
    for node in &g.node {
        for i in node.input.iter().filter(|s| !s.is_empty()) {
            *imp.consumers.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *imp.consumers.entry(o.name.clone()).or_default() += 1;
    }
    // Initializers, then caller-bound constants.
    for t in &g.initializer {
        if t.name.is_empty() {
            return Err(Error::Io {
                path: origin.into(),
                message: "an initializer has no name".into(),
            });
        }
        let c = tensor_from_proto(t, imp.dir, &t.name).map_err(|e| match e {
            Error::Invalid(m) => Error::Io {
                path: origin.into(),
                message: format!("initializer {m}"),
            },
            e => e,
        })?;
        imp.vals.insert(t.name.clone(), Val::Const(Rc::new(c)));
    }
    for (name, t) in &opts.constants {
        if !g.input.iter().any(|i| &i.name == name) {
            return Err(Error::Invalid(format!(
                "bound constant `{name}` is not an input of the model"
            )));
        }
        imp.vals
            .insert(name.clone(), Val::Const(Rc::new(t.clone())));
    }
    Ok(())
}

/// Names every node uniquely (`reserved` names are taken already) and
/// imports them in file order.
fn walk(
    imp: &mut Importer,
    g: &super::proto::GraphProto,
    opset: i64,
    dir: Option<&Path>,
    reserved: &[String],
) -> Result<()> {
    // Unique node names, fixed before the walk so extra IR nodes do not
    // take a later node's name.
    let mut node_names = Vec::with_capacity(g.node.len());
    let mut seen: HashSet<String> = HashSet::new();
    seen.extend(reserved.iter().cloned());
    for (i, node) in g.node.iter().enumerate() {
        let base = if node.name.is_empty() {
            format!("{}_{i}", node.op_type)
        } else {
            node.name.clone()
        };
        let mut name = base.clone();
        let mut k = 1;
        while !seen.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        node_names.push(name);
    }
    imp.names = seen;
    for (node, name) in g.node.iter().zip(node_names) {
        let n = Node {
            proto: node,
            name,
            opset,
            dir,
        };
        import_node(imp, &n)?;
    }
    Ok(())
}

/// Evaluates a model whose inputs are all bound to constants (by
/// initializers or `opts.constants`): every node folds at import, and the
/// outputs are returned. For testing the constant folder against ONNX's
/// reference outputs.
pub fn evaluate_model(
    model: &ModelProto,
    dir: Option<&Path>,
    opts: &ImportOptions,
    origin: &str,
) -> Result<Vec<OnnxTensor>> {
    let g = model.graph.as_ref().expect("checked by decode_model");
    let opset = default_opset(model).expect("checked by decode_model");
    let mut imp = Importer::new(dir);
    init_constants(&mut imp, g, opts, origin)?;
    if let Some(i) = g.input.iter().find(|i| !imp.vals.contains_key(&i.name)) {
        return Err(Error::Invalid(format!(
            "input `{}` is not bound to a constant",
            i.name
        )));
    }
    walk(&mut imp, g, opset, dir, &[])?;
    g.output
        .iter()
        .map(|o| match imp.vals.get(&o.name) {
            Some(Val::Const(t)) => Ok((**t).clone()),
            _ => Err(Error::Graph {
                node: o.name.clone(),
                message: "output is not a constant".into(),
            }),
        })
        .collect()
}

static OUTPUT_NODE: super::proto::NodeProto = super::proto::NodeProto {
    input: Vec::new(),
    output: Vec::new(),
    name: String::new(),
    op_type: String::new(),
    domain: String::new(),
    attribute: Vec::new(),
};

/// The declared name, element type and dims of a graph input or output.
pub fn declared_io(v: &super::proto::ValueInfoProto, origin: &str) -> Result<IoInfo> {
    let bad = |m: String| Error::Io {
        path: origin.into(),
        message: m,
    };
    let tt = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| {
            bad(format!(
                "`{}` is not a tensor (sequence, map or untyped)",
                v.name
            ))
        })?;
    let dims = match &tt.shape {
        None => None,
        Some(s) => Some(
            s.dim
                .iter()
                .map(|d| match (&d.dim_value, &d.dim_param) {
                    (Some(x), _) if *x >= 0 => Ok(Dim::Fixed(*x as usize)),
                    (Some(x), _) => Err(bad(format!("`{}` has a negative dim {x}", v.name))),
                    (None, Some(p)) => Ok(Dim::Symbolic(p.clone())),
                    (None, None) => Ok(Dim::Symbolic("?".into())),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(IoInfo {
        name: v.name.clone(),
        elem_type: tt.elem_type,
        dims,
        shape: Vec::new(),
        layout: Layout::Nchw,
        constant: None,
    })
}

/// The concrete input shape: the declared dims with symbolic ones taken
/// from `given` (which must agree with every fixed dim).
fn resolve_shape(info: &IoInfo, given: Option<&[usize]>, origin: &str) -> Result<Vec<usize>> {
    let bad = |m: String| Error::Io {
        path: origin.into(),
        message: m,
    };
    match (&info.dims, given) {
        (None, None) => Err(bad(format!(
            "input `{}` has no declared shape; give the input shape",
            info.name
        ))),
        (None, Some(g)) => Ok(g.to_vec()),
        (Some(dims), None) => {
            let sym: Vec<String> = dims
                .iter()
                .filter_map(|d| match d {
                    Dim::Symbolic(s) => Some(s.clone()),
                    Dim::Fixed(_) => None,
                })
                .collect();
            if !sym.is_empty() {
                return Err(bad(format!(
                    "input `{}` has symbolic dims ({}); give the input shape",
                    info.name,
                    sym.join(", ")
                )));
            }
            Ok(dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(x) => *x,
                    Dim::Symbolic(_) => unreachable!(),
                })
                .collect())
        }
        (Some(dims), Some(g)) => {
            let ok = dims.len() == g.len()
                && dims.iter().zip(g).all(|(d, &x)| match d {
                    Dim::Fixed(f) => *f == x,
                    Dim::Symbolic(_) => true,
                });
            if !ok {
                return Err(bad(format!(
                    "input `{}`: shape {g:?} does not match the declared {}",
                    info.name,
                    super::fmt_dims(dims)
                )));
            }
            if g.contains(&0) {
                return Err(bad(format!(
                    "input `{}`: zero-sized shape {g:?}",
                    info.name
                )));
            }
            Ok(g.to_vec())
        }
    }
}

/// Imports one node: constant-folds it when every input is a constant and
/// the op has an evaluator; otherwise runs the op's importer.
fn import_node(imp: &mut Importer, n: &Node) -> Result<()> {
    let domain = n.proto.domain.as_str();
    if !(domain.is_empty() || domain == "ai.onnx") {
        return Err(n.err(format!(
            "operator `{}` of domain `{domain}` is not supported",
            n.op()
        )));
    }
    let outputs: Vec<Val> = if n.op() == "Constant" {
        vec![Val::Const(Rc::new(constant(n)?))]
    } else {
        let mut all_const = true;
        let mut consts = Vec::with_capacity(n.proto.input.len());
        for i in 0..n.proto.input.len() {
            match imp.input(n, i)? {
                None => consts.push(None),
                Some(Val::Const(t)) => consts.push(Some(t)),
                Some(Val::Dyn(_)) => {
                    all_const = false;
                    break;
                }
            }
        }
        let folded = if all_const && !n.proto.input.is_empty() {
            super::fold::eval(n, &consts)
        } else {
            None
        };
        match folded {
            Some(r) => r?.into_iter().map(|t| Val::Const(Rc::new(t))).collect(),
            None => {
                let f = super::ops::lookup(n.op())
                    .ok_or_else(|| n.err(format!("operator `{}` is not supported", n.op())))?;
                f(imp, n)?
            }
        }
    };
    let produced = outputs.len();
    for (i, out) in outputs.into_iter().enumerate() {
        if let Some(name) = n.proto.output.get(i).filter(|s| !s.is_empty()) {
            imp.vals.insert(name.clone(), out);
        }
    }
    // Outputs an importer does not produce (Dropout's mask, MaxPool's
    // indices, batchnorm's training statistics) must be unused.
    for name in n.proto.output.iter().skip(produced) {
        if !name.is_empty() && imp.consumers(name) > 0 {
            return Err(n.unsupported(format!(
                "its output `{name}` is read (only the first output is computed)"
            )));
        }
    }
    Ok(())
}

/// A `Constant` node's value.
fn constant(n: &Node) -> Result<OnnxTensor> {
    let what = n.name.as_str();
    if let Some(t) = n.tensor("value")? {
        return Ok(t);
    }
    if n.has("value_float") {
        return OnnxTensor::from_f32(what, vec![], vec![n.float("value_float", 0.0)?]);
    }
    if let Some(v) = n.floats("value_floats")? {
        return OnnxTensor::from_f32(what, vec![v.len()], v);
    }
    if n.has("value_int") {
        return OnnxTensor::from_i64(what, vec![], vec![n.int("value_int", 0)?]);
    }
    if let Some(v) = n.ints("value_ints")? {
        return OnnxTensor::from_i64(what, vec![v.len()], v);
    }
    Err(n.unsupported(
        "a Constant without value, value_float(s) or value_int(s) (sparse or string constants)",
    ))
}
