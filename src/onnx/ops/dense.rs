//! `Gemm`, `MatMul` (a runtime `(N, F)` times constant weights: the IR's
//! linear layer) and `Softmax`.

use super::{Importer, Node, Val};
use crate::error::Result;
use crate::onnx::import::DynVal;
use crate::onnx::{Layout, OnnxTensor};

/// A `(N, F)` runtime input (rank 2, or rank 4 with 1×1 spatial dims).
fn rows(imp: &mut Importer, n: &Node) -> Result<DynVal> {
    let x = imp.dyn_in(n, 0)?;
    if x.shape.len() != 2 {
        return Err(n.unsupported(format!(
            "a runtime input of shape {:?} (only 2-D (N, F) matrices)",
            x.shape
        )));
    }
    Ok(x)
}

fn linear(
    imp: &mut Importer,
    n: &Node,
    x: DynVal,
    w: Vec<f32>,
    out: usize,
    bias: Option<Vec<f32>>,
) -> Result<Vec<Val>> {
    let f = x.shape[1];
    let name = imp.node_name(n);
    imp.weight(&format!("{name}.weight"), vec![out, f], w)?;
    let has_bias = bias.is_some();
    if let Some(b) = bias {
        imp.weight(&format!("{name}.bias"), vec![out], b)?;
    }
    let v = imp.graph.linear(&name, x.v, out, has_bias)?;
    if let (false, Some(o)) = (has_bias, n.proto.output.first()) {
        imp.linear_outputs.insert(v, o.clone());
    }
    Ok(vec![Val::Dyn(DynVal {
        v,
        shape: vec![x.shape[0], out],
        layout: Layout::Nchw,
        affine: None,
        pad: None,
    })])
}

/// `Gemm`: `alpha·A·B' + beta·C` with A at run time, B and C constants; C
/// a scalar, a row, or a full matrix whose rows are bitwise equal (the
/// linear layer's bias), or a full `(M, out)` / `(M, 1)` matrix (the
/// linear layer, then a constant added by [`super::arith::full_const`]).
///
/// `transA=1` transposes A first (the IR's transpose, named
/// `{node}.transpose_a`), then multiplies as with `transA=0`.
pub fn gemm(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let mut x = rows(imp, n)?;
    if n.int("transA", 0)? != 0 {
        let name = imp.fresh(&format!("{}.transpose_a", n.name));
        x = super::layout::transpose_value(imp, n, &x, &[1, 0], &name)?;
    }
    let b = imp.const_in(n, 1)?;
    let c = imp.opt_const_in(n, 2)?;
    let alpha = n.float("alpha", 1.0)?;
    let beta = n.float("beta", 1.0)?;
    let trans_b = n.int("transB", 0)? != 0;
    let bd = b.dims();
    let f = x.shape[1];
    let bv = b.as_f32(&n.name).map_err(|e| n.err(e))?;
    if bd.len() != 2 || (if trans_b { bd[1] } else { bd[0] }) != f {
        return Err(n.err(format!(
            "B of dims {bd:?} (transB={}) does not multiply A of shape {:?}",
            trans_b as u8, x.shape
        )));
    }
    let out = if trans_b { bd[0] } else { bd[1] };
    let mut w = vec![0f32; out * f];
    for o in 0..out {
        for i in 0..f {
            let v = if trans_b {
                bv[o * f + i]
            } else {
                bv[i * out + o]
            };
            w[o * f + i] = if alpha == 1.0 { v } else { alpha * v };
        }
    }
    // C: a bias broadcast over the rows (a scalar, a row, or a full matrix
    // whose rows are bitwise equal: an exporter's materialized broadcast),
    // or a full (M, out) / (M, 1) matrix whose rows differ, added after the
    // linear layer as a constant (`beta·C` rounded once, as ONNX computes
    // it).
    let m = x.shape[0];
    let mut full = None;
    let bias = match c {
        None => None,
        Some(c) => {
            let cd = c.dims();
            let cv = c.as_f32(&n.name).map_err(|e| n.err(e))?;
            let rows_equal = |r: usize, k: usize| {
                let bits = |row: &[f32]| row.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                r == m && (1..r).all(|i| bits(&cv[i * k..(i + 1) * k]) == bits(&cv[..k]))
            };
            let per_out = match cd {
                [] => cv.len() == 1,
                [k] => *k == out || *k == 1,
                [r, k] => (*k == out || *k == 1) && (*r == 1 || rows_equal(*r, *k)),
                _ => false,
            };
            let matrix = matches!(cd, [r, k] if *r == m && (*k == out || *k == 1));
            let scaled = |v: f32| if beta == 1.0 { v } else { beta * v };
            if !per_out && matrix {
                let data = cv.iter().map(|&v| scaled(v)).collect();
                full = Some(OnnxTensor::from_f32(&n.name, cd.to_vec(), data)?);
                None
            } else if !per_out {
                return Err(n.err(format!(
                    "C of dims {cd:?} does not broadcast to the result's ({m}, {out})"
                )));
            } else {
                // Entries per row: 1 broadcasts over the outputs too.
                let row_len = cd.last().copied().unwrap_or(1);
                Some(
                    (0..out)
                        .map(|o| scaled(if row_len == 1 { cv[0] } else { cv[o] }))
                        .collect(),
                )
            }
        }
    };
    let y = linear(imp, n, x, w, out, bias)?;
    let Some(c) = full else { return Ok(y) };
    let Some(Val::Dyn(y)) = y.into_iter().next() else {
        unreachable!("linear returns its runtime output")
    };
    imp.linear_outputs.remove(&y.v);
    let y = super::arith::full_const(imp, n, y, &c, false, None)?;
    Ok(vec![Val::Dyn(y)])
}

/// `MatMul` of a runtime `(N, F)` by constant `(F, out)`.
pub fn matmul(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    if let Some(Val::Const(_)) = imp.input(n, 0)? {
        return Err(
            n.unsupported("a constant times a runtime tensor (MatMul with runtime right operand)")
        );
    }
    let x = rows(imp, n)?;
    let b = imp.const_in(n, 1)?;
    let bd = b.dims();
    let f = x.shape[1];
    if bd.len() != 2 || bd[0] != f {
        return Err(n.err(format!(
            "B of dims {bd:?} does not multiply A of shape {:?}",
            x.shape
        )));
    }
    let out = bd[1];
    let bv = b.as_f32(&n.name).map_err(|e| n.err(e))?;
    let mut w = vec![0f32; out * f];
    for o in 0..out {
        for i in 0..f {
            w[o * f + i] = bv[i * out + o];
        }
    }
    linear(imp, n, x, w, out, None)
}

/// `Softmax` over one axis (opset ≥ 13: that axis alone, not the
/// flattened trailing dims of opset 11) of a runtime value of rank ≤ 4.
pub fn softmax(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in(n, 0)?;
    let r = x.shape.len();
    let axis = crate::onnx::fold::norm_axis(n, n.int("axis", -1)?, r)?;
    if r > 4 {
        return Err(n.unsupported(format!("Softmax of shape {:?} (rank above 4)", x.shape)));
    }
    let name = imp.node_name(n);
    let ir = super::layout::ir_axis(x.layout, axis);
    let v = imp.graph.softmax_axis(&name, x.v, ir)?;
    Ok(vec![Val::Dyn(DynVal { v, ..x })])
}
