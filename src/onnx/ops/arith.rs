//! Elementwise arithmetic: `Add`, `Sub`, `Mul`, `Div`, `Sum`, `Relu`, `Clip`.
//!
//! A runtime value combined with a scalar or per-channel constant gets a
//! pending [`Affine`] map (see [`super::super::import`]); with any other
//! constant that broadcasts to its shape (a full tensor, per-row,
//! per-column, …), and for a constant divided by it, the IR's
//! [`Op::ConstArith`] node with the constant as its parameter
//! ([`full_const`]). Two runtime values of one shape are added by the IR's
//! `add_scaled`, with the scalar scales of pending maps as its
//! coefficients.

use super::{per_channel, Importer, Node, Val};
use crate::error::Result;
use crate::graph::{Arith, Clamp, Op};
use crate::onnx::import::{ir_shape, Affine, DynVal};
use crate::onnx::{Layout, OnnxTensor};
use std::rc::Rc;

/// `Add`, `Sub`, `Mul`, `Div` with at least one runtime operand.
pub fn binary(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let a = imp
        .input(n, 0)?
        .ok_or_else(|| n.err("input 0 is required"))?;
    let b = imp
        .input(n, 1)?
        .ok_or_else(|| n.err("input 1 is required"))?;
    let out = match (a, b) {
        (Val::Dyn(x), Val::Const(c)) => with_const(imp, n, x, &c, false, Some(0))?,
        (Val::Const(c), Val::Dyn(x)) => with_const(imp, n, x, &c, true, Some(1))?,
        (Val::Dyn(_), Val::Dyn(_)) => add_dyn(imp, n, &[0, 1])?,
        (Val::Const(_), Val::Const(_)) => unreachable!("folded"),
    };
    Ok(vec![Val::Dyn(out)])
}

/// A runtime value `x` (input `x_input` of `n`, if it is one) with
/// constant `c` (`c_first`: `c ∘ x`): a pending affine map when `c` is a
/// scalar or per-channel (but `c / x`), else [`full_const`].
fn with_const(
    imp: &mut Importer,
    n: &Node,
    x: DynVal,
    c: &OnnxTensor,
    c_first: bool,
    x_input: Option<usize>,
) -> Result<DynVal> {
    let x = if x.pad.is_some() {
        imp.materialize(n, x)?
    } else {
        x
    };
    let channels = imp.shape_of(x.v)[1];
    // `Sum` adds each constant as `Add` does.
    let op = if n.op() == "Sum" { "Add" } else { n.op() };
    let per_channel = per_channel(&x, c, channels);
    let Some(k) = per_channel.filter(|_| !(op == "Div" && c_first)) else {
        return full_const(imp, n, x, c, c_first, x_input);
    };
    // MatMul + Add: a per-feature constant added to the output of a
    // bias-less linear layer, read by nothing else, becomes its bias.
    let x_name = x_input.and_then(|i| n.input_name(i)).unwrap_or("");
    let linear_out = imp.linear_outputs.get(&x.v).is_some_and(|o| o == x_name);
    if op == "Add" && x.affine.is_none() && linear_out && imp.consumers(x_name) == 1 {
        if let Some(p) = imp.producer_index(x.v) {
            if let Op::Linear {
                out_features,
                bias: false,
            } = imp.graph.nodes[p].op
            {
                let name = imp.graph.nodes[p].name.clone();
                let data = k.iter().map(|&v| v as f32).collect();
                imp.weight(&format!("{name}.bias"), vec![out_features], data)?;
                imp.graph.nodes[p].op = Op::Linear {
                    out_features,
                    bias: true,
                };
                imp.linear_outputs.remove(&x.v);
                return Ok(x);
            }
        }
    }
    let (mut s, mut t, name) = match &x.affine {
        Some(a) => (a.scale.clone(), a.shift.clone(), a.name.clone()),
        None => (vec![1.0; channels], vec![0.0; channels], n.name.clone()),
    };
    for ch in 0..channels {
        let kc = k[ch];
        match (op, c_first) {
            ("Add", _) => t[ch] += kc,
            ("Sub", false) => t[ch] -= kc,
            ("Sub", true) => {
                s[ch] = -s[ch];
                t[ch] = kc - t[ch];
            }
            ("Mul", _) => {
                s[ch] *= kc;
                t[ch] *= kc;
            }
            ("Div", false) => {
                s[ch] /= kc;
                t[ch] /= kc;
            }
            _ => unreachable!("c / x is a full-constant node"),
        }
    }
    Ok(DynVal {
        affine: Some(Rc::new(Affine {
            name,
            scale: s,
            shift: t,
        })),
        ..x
    })
}

/// `x ∘ c` (`c ∘ x` when `c_first`) as an IR [`Op::ConstArith`] node:
/// `c` broadcasts to x's ONNX shape (numpy's rule, each of its dims 1 or
/// x's, after prefixing 1s to its rank), and is registered as the node's
/// parameter `{node}.constant` in the IR's NCHW (permuted from an NHWC
/// value's layout). Any pending map or pad of x is applied first (and
/// remembered for input `x_input`'s other readers). A constant that would
/// make the result larger than x, or that does not broadcast, is refused
/// naming both shapes.
pub fn full_const(
    imp: &mut Importer,
    n: &Node,
    x: DynVal,
    c: &OnnxTensor,
    c_first: bool,
    x_input: Option<usize>,
) -> Result<DynVal> {
    let arith = match n.op() {
        "Add" | "Sum" | "Gemm" => Arith::Add,
        "Sub" => Arith::Sub,
        "Mul" => Arith::Mul,
        "Div" => Arith::Div,
        other => return Err(n.err(format!("internal: `{other}` is not arithmetic"))),
    };
    let x = if x.affine.is_some() || x.pad.is_some() {
        let m = imp.materialize(n, x)?;
        if let Some(name) = x_input.and_then(|i| n.input_name(i)) {
            imp.remember(name, m.clone());
        }
        m
    } else {
        x
    };
    let (xs, cd) = (&x.shape, c.dims());
    let r = xs.len();
    let larger = |what: &str| {
        n.unsupported(format!(
            "a constant of dims {cd:?} with the runtime tensor of shape {xs:?}: {what} (the \
             result must keep the runtime tensor's shape)"
        ))
    };
    if cd.len() > r {
        return Err(larger("the result would have a higher rank"));
    }
    let mut dims = vec![1; r - cd.len()];
    dims.extend_from_slice(cd);
    for (a, (&k, &d)) in dims.iter().zip(xs).enumerate() {
        if k != 1 && k != d {
            return Err(if d == 1 {
                larger(&format!("axis {a} would grow from 1 to {k}"))
            } else {
                n.err(format!(
                    "a constant of dims {cd:?} does not broadcast with the runtime tensor of \
                     shape {xs:?} (axis {a}: {k} vs {d})"
                ))
            });
        }
    }
    let ir = ir_shape(&dims, x.layout)
        .ok_or_else(|| n.err(format!("internal: no IR shape for {dims:?}")))?;
    let data = c.as_f32(&n.name).map_err(|e| n.err(e))?;
    let data = match x.layout {
        Layout::Nchw => data.to_vec(),
        Layout::Nhwc => crate::tensor::nhwc_to_nchw(data, ir),
    };
    let name = imp.node_name(n);
    imp.weight(&format!("{name}.constant"), ir.to_vec(), data)?;
    let v = imp
        .graph
        .const_arith(&name, x.v, arith, c_first, ir)
        .map_err(|e| n.err(e))?;
    Ok(DynVal {
        v,
        affine: None,
        pad: None,
        ..x
    })
}

/// The sum (`Sub`: difference) of the runtime inputs `which` of `n`.
fn add_dyn(imp: &mut Importer, n: &Node, which: &[usize]) -> Result<DynVal> {
    if matches!(n.op(), "Mul" | "Div") {
        return Err(n.unsupported("product or quotient of two runtime tensors"));
    }
    let mut terms = Vec::new();
    for &i in which {
        let d = imp.dyn_in_raw(n, i)?;
        // A scalar scale rides along as the add's coefficient; any other
        // pending map is applied first.
        let (d, s) = match d.affine.as_ref().and_then(|a| a.scalar()) {
            Some(s) if d.pad.is_none() => (DynVal { affine: None, ..d }, s),
            _ => (imp.dyn_in(n, i)?, 1.0),
        };
        terms.push((d, s));
    }
    if n.op() == "Sub" {
        terms[1].1 = -terms[1].1;
    }
    let (first, s0) = terms[0].clone();
    for (d, _) in &terms[1..] {
        if d.shape != first.shape || d.layout != first.layout {
            return Err(n.unsupported(format!(
                "broadcasting between runtime tensors of shapes {:?} and {:?}",
                first.shape, d.shape
            )));
        }
    }
    if terms.len() == 1 {
        if s0 == 1.0 {
            return Ok(first);
        }
        let c = imp.shape_of(first.v)[1];
        let v = imp.batchnorm_affine(&n.name, first.v, &vec![s0; c], &vec![0.0; c])?;
        return Ok(DynVal { v, ..first });
    }
    let mut acc = first.v;
    let mut alpha = s0;
    for (d, beta) in &terms[1..] {
        let name = imp.node_name(n);
        acc = imp
            .graph
            .add_scaled(&name, acc, d.v, alpha as f32, *beta as f32)?;
        alpha = 1.0;
    }
    Ok(DynVal { v: acc, ..first })
}

/// `Sum` of runtime values and constants: the runtime ones added first,
/// then each constant in input order, as `Add` adds it (a pending affine
/// map, or a full-constant node).
pub fn sum(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let k = n.proto.input.len();
    let (mut which, mut consts) = (Vec::new(), Vec::new());
    for i in 0..k {
        match imp.input(n, i)? {
            Some(Val::Const(c)) => consts.push(c),
            Some(Val::Dyn(_)) => which.push(i),
            None => return Err(n.err(format!("input {i} is required"))),
        }
    }
    if which.is_empty() {
        return Err(n.err("no runtime inputs"));
    }
    let mut acc = add_dyn(imp, n, &which)?;
    for c in consts {
        acc = with_const(imp, n, acc, &c, false, None)?;
    }
    Ok(vec![Val::Dyn(acc)])
}

/// `Relu`.
pub fn relu(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in(n, 0)?;
    let name = imp.node_name(n);
    let v = imp.graph.relu(&name, x.v)?;
    Ok(vec![Val::Dyn(DynVal { v, ..x })])
}

/// `Clip` (opset ≥ 11: bounds as optional scalar inputs, absent or empty
/// meaning no bound): `[0, ∞)` is a ReLU, any other bounds a clamp
/// ([`crate::graph::Clamp`]; the fusion pass folds either into a preceding
/// conv, batchnorm or add). NaN bounds are refused.
pub fn clip(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let bound = |i: usize, default: f32| -> Result<f32> {
        match imp.opt_const_in(n, i)? {
            None => Ok(default),
            Some(t) => {
                let v = t.as_f64();
                if v.len() != 1 {
                    return Err(n.err(format!("bound {i} is not a scalar: dims {:?}", t.dims())));
                }
                Ok(v[0] as f32)
            }
        }
    };
    let lo = bound(1, f32::NEG_INFINITY)?;
    let hi = bound(2, f32::INFINITY)?;
    let c = Clamp::new(lo, hi);
    if c.is_relu() {
        return relu(imp, n);
    }
    if lo.is_nan() || hi.is_nan() || lo == f32::INFINITY || hi == f32::NEG_INFINITY {
        return Err(n.err(format!(
            "Clip bounds [{lo}, {hi}]: expected min < +inf and max > -inf, neither NaN"
        )));
    }
    let x = imp.dyn_in(n, 0)?;
    let name = imp.node_name(n);
    let v = imp.graph.clip(&name, x.v, c)?;
    Ok(vec![Val::Dyn(DynVal { v, ..x })])
}
