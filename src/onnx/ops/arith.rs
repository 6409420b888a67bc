//! Elementwise arithmetic: `Add`, `Sub`, `Mul`, `Div`, `Sum`, `Relu`, `Clip`.
//!
//! A runtime value combined with a scalar or per-channel constant gets a
//! pending [`Affine`] map (see [`super::super::import`]); two runtime values
//! of one shape are added by the IR's `add_scaled`, with the scalar scales
//! of pending maps as its coefficients.

use super::{per_channel, Importer, Node, Val};
use crate::error::Result;
use crate::graph::{Clamp, Op};
use crate::onnx::import::{Affine, DynVal};
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
        (Val::Dyn(x), Val::Const(c)) => with_const(imp, n, x, &c, false)?,
        (Val::Const(c), Val::Dyn(x)) => with_const(imp, n, x, &c, true)?,
        (Val::Dyn(_), Val::Dyn(_)) => add_dyn(imp, n, &[0, 1])?,
        (Val::Const(_), Val::Const(_)) => unreachable!("folded"),
    };
    Ok(vec![Val::Dyn(out)])
}

/// A runtime value `x` with constant `c` (`c_first`: `c ∘ x`).
fn with_const(
    imp: &mut Importer,
    n: &Node,
    x: DynVal,
    c: &crate::onnx::OnnxTensor,
    c_first: bool,
) -> Result<DynVal> {
    let x = if x.pad.is_some() {
        imp.materialize(n, x)?
    } else {
        x
    };
    let channels = imp.shape_of(x.v)[1];
    let Some(k) = per_channel(&x, c, channels) else {
        return Err(n.unsupported(format!(
            "a constant of dims {:?} that is neither a scalar nor per-channel for the runtime tensor of shape {:?} (elementwise op with a full constant tensor)",
            c.dims(),
            x.shape
        )));
    };
    let op = n.op();
    // MatMul + Add: a per-feature constant added to the output of a
    // bias-less linear layer, read by nothing else, becomes its bias.
    let x_name = n.input_name(usize::from(c_first)).unwrap_or("");
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
            _ => return Err(n.unsupported("division of a constant by a runtime tensor")),
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

/// `Sum` of runtime values.
pub fn sum(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let k = n.proto.input.len();
    for i in 0..k {
        if let Some(Val::Const(_)) = imp.input(n, i)? {
            return Err(n.unsupported("Sum of runtime tensors and constants"));
        }
    }
    let which: Vec<usize> = (0..k).collect();
    if which.is_empty() {
        return Err(n.err("no inputs"));
    }
    Ok(vec![Val::Dyn(add_dyn(imp, n, &which)?)])
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
