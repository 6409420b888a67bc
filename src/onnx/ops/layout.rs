//! Data movement: `Flatten`, `Reshape`, `Squeeze`/`Unsqueeze`,
//! `Transpose`, `Concat`, `Pad`, and the pass-throughs `Identity`,
//! `Dropout`, `Shape`, `Cast` on runtime values.
//!
//! Reshapes that keep the IR shape (`(N, C)` ↔ `(N, C, 1, 1)`) relabel the
//! value; `(N, C, H, W)` → `(N, C·H·W)` is the IR's flatten; one that
//! only adds or drops dims of size 1 (a squeeze, an unsqueeze) is the IR's
//! transpose moving size-1 axes. `Transpose`
//! between NCHW and NHWC relabels the value's [`Layout`]; any other
//! permutation of rank ≤ 4 is the IR's transpose. `Pad` of H and W by
//! constant zeros stays pending (a conv takes it as its padding); any
//! other pad, crop or mode is the IR's pad.

use super::{Importer, Node, Val};
use crate::error::Result;
use crate::graph::{Pad, PadMode};
use crate::onnx::fold::{
    axes_of, norm_axis, perm_of, reshape_dims, shape_of, squeeze_dims, unsqueeze_dims,
};
use crate::onnx::import::{ir_shape, DynVal};
use crate::onnx::proto::data_type;
use crate::onnx::{Layout, OnnxTensor};

/// `x` seen with ONNX shape `dims`, when that moves no data: the same IR
/// shape and either NCHW or 1×1 spatial. `None` otherwise.
fn relabel(imp: &Importer, x: &DynVal, dims: &[usize]) -> Option<DynVal> {
    if x.pad.is_some() {
        return None;
    }
    let ir = imp.shape_of(x.v);
    let same_order = x.layout == Layout::Nchw || (ir[2] == 1 && ir[3] == 1);
    (same_order && ir_shape(dims, Layout::Nchw) == Some(ir)).then(|| DynVal {
        shape: dims.to_vec(),
        layout: Layout::Nchw,
        ..x.clone()
    })
}

/// `x` seen with ONNX shape `dims` (NCHW, rank ≤ 4) when the two differ
/// only by dims of size 1 (a squeeze, an unsqueeze, a reshape adding or
/// dropping ones): the same elements in the same order, so the IR's
/// transpose moving size-1 axes only (exact, and one dispatch). `None`
/// when the dims of size above 1 differ.
fn move_ones(imp: &mut Importer, n: &Node, x: &DynVal, dims: &[usize]) -> Result<Option<DynVal>> {
    let big = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    let Some(target) = ir_shape(dims, Layout::Nchw) else {
        return Ok(None);
    };
    if x.shape.len() > 4 || big(&x.shape) != big(dims) {
        return Ok(None);
    }
    // The source's IR axes in the ONNX value's row-major order, then the
    // IR axes it lacks (size 1); target axis i takes the next of its size
    // class (above 1, or 1), so the axes above 1 keep their order.
    let src = imp.shape_of(x.v);
    let mut seq: Vec<usize> = (0..x.shape.len()).map(|a| ir_axis(x.layout, a)).collect();
    let lacking: Vec<usize> = (0..4).filter(|a| !seq.contains(a)).collect();
    seq.extend(lacking);
    let mut bigs = seq.iter().copied().filter(|&a| src[a] != 1);
    let mut ones = seq.iter().copied().filter(|&a| src[a] == 1);
    let mut q = [0; 4];
    for (i, t) in target.iter().enumerate() {
        let next = if *t != 1 { bigs.next() } else { ones.next() };
        q[i] =
            next.ok_or_else(|| n.err(format!("{:?} to {dims:?}: size classes differ", x.shape)))?;
    }
    let shape = dims.to_vec();
    if q == [0, 1, 2, 3] {
        return Ok(Some(DynVal {
            shape,
            layout: Layout::Nchw,
            ..x.clone()
        }));
    }
    let name = imp.node_name(n);
    let v = imp.graph.transpose(&name, x.v, q).map_err(|e| n.err(e))?;
    Ok(Some(DynVal {
        v,
        shape,
        layout: Layout::Nchw,
        affine: None,
        pad: None,
    }))
}

/// `x` reshaped to `dims`: a relabel, the IR's flatten to `(N, F)`, or a
/// transpose moving size-1 axes ([`move_ones`]).
fn reshape_to(imp: &mut Importer, n: &Node, dims: Vec<usize>) -> Result<Vec<Val>> {
    let x = imp.dyn_in_raw(n, 0)?;
    if let Some(d) = relabel(imp, &x, &dims) {
        return Ok(vec![Val::Dyn(d)]);
    }
    let x = imp.dyn_in(n, 0)?;
    let flat =
        x.shape.len() >= 2 && dims.len() == 2 && dims[0] == x.shape[0] && x.layout == Layout::Nchw;
    if !flat {
        if let Some(d) = move_ones(imp, n, &x, &dims)? {
            return Ok(vec![Val::Dyn(d)]);
        }
        return Err(n.unsupported(format!(
            "reshape of a {:?} tensor of shape {:?} to {dims:?} (general reshape)",
            x.layout, x.shape
        )));
    }
    let name = imp.node_name(n);
    let v = imp.graph.flatten(&name, x.v)?;
    Ok(vec![Val::Dyn(DynVal {
        v,
        shape: dims,
        layout: Layout::Nchw,
        affine: x.affine,
        pad: None,
    })])
}

/// `Flatten` (axis 1 of a runtime value).
pub fn flatten(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in_raw(n, 0)?;
    let r = x.shape.len() as i64;
    let axis = n.int("axis", 1)?;
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&axis) {
        return Err(n.err(format!("axis {axis} out of range for rank {r}")));
    }
    let (a, b) = x.shape.split_at(axis as usize);
    reshape_to(imp, n, vec![a.iter().product(), b.iter().product()])
}

/// `Reshape` of a runtime value to a constant shape.
pub fn reshape(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let s = imp.const_in(n, 1)?;
    let s = s.as_i64("shape").map_err(|e| n.err(e))?.to_vec();
    let x = imp.dyn_in_raw(n, 0)?;
    let dims = reshape_dims(n, &x.shape, &s, n.int("allowzero", 0)? != 0)?;
    reshape_to(imp, n, dims)
}

/// `Squeeze` / `Unsqueeze` of a runtime value (only relabels).
pub fn squeeze(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let axes_t = imp.opt_const_in(n, 1)?;
    let axes = axes_of(n, axes_t.as_deref())?;
    let x = imp.dyn_in_raw(n, 0)?;
    let dims = if n.op() == "Squeeze" {
        squeeze_dims(n, &x.shape, axes.as_deref())?
    } else {
        unsqueeze_dims(n, &x.shape, &axes.ok_or_else(|| n.err("no axes"))?)?
    };
    if let Some(d) = relabel(imp, &x, &dims) {
        return Ok(vec![Val::Dyn(d)]);
    }
    let x = imp.dyn_in(n, 0)?;
    match move_ones(imp, n, &x, &dims)? {
        Some(d) => Ok(vec![Val::Dyn(d)]),
        None => Err(n.unsupported(format!(
            "{} of shape {:?} to {dims:?} (general reshape)",
            n.op(),
            x.shape
        ))),
    }
}

/// The IR axis (NCHW) of ONNX axis `a` of a value in `layout`.
pub fn ir_axis(layout: Layout, a: usize) -> usize {
    match layout {
        Layout::Nchw => a,
        Layout::Nhwc => [0, 2, 3, 1][a],
    }
}

/// `x` (its pending pad and affine map applied) permuted by ONNX `perm`
/// as the IR's transpose: output axis `i` is ONNX axis `perm[i]`, NCHW.
pub fn transpose_value(
    imp: &mut Importer,
    n: &Node,
    x: &DynVal,
    perm: &[usize],
    name: &str,
) -> Result<DynVal> {
    let r = x.shape.len();
    if r > 4 || perm.len() != r {
        return Err(n.unsupported(format!(
            "Transpose with perm {perm:?} of shape {:?} (rank above 4)",
            x.shape
        )));
    }
    let mut q = [0, 1, 2, 3];
    for (i, &p) in perm.iter().enumerate() {
        q[i] = ir_axis(x.layout, p);
    }
    let v = imp.graph.transpose(name, x.v, q).map_err(|e| n.err(e))?;
    Ok(DynVal {
        v,
        shape: perm.iter().map(|&p| x.shape[p]).collect(),
        layout: Layout::Nchw,
        affine: None,
        pad: None,
    })
}

/// `Transpose` of a runtime value: identity, NCHW → NHWC or NHWC → NCHW
/// (relabels), or any other permutation of rank ≤ 4 (the IR's transpose).
pub fn transpose(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in_raw(n, 0)?;
    let perm = perm_of(n, x.shape.len())?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(vec![Val::Dyn(x)]);
    }
    let x = if x.pad.is_some() {
        imp.dyn_in(n, 0)?
    } else {
        x
    };
    let layout = match (x.layout, perm.as_slice()) {
        (Layout::Nchw, [0, 2, 3, 1]) if x.shape.len() == 4 => Some(Layout::Nhwc),
        (Layout::Nhwc, [0, 3, 1, 2]) => Some(Layout::Nchw),
        _ => None,
    };
    let Some(layout) = layout else {
        let x = imp.dyn_in(n, 0)?;
        let name = imp.node_name(n);
        return Ok(vec![Val::Dyn(transpose_value(imp, n, &x, &perm, &name)?)]);
    };
    let shape = perm.iter().map(|&p| x.shape[p]).collect();
    Ok(vec![Val::Dyn(DynVal { shape, layout, ..x })])
}

/// `Concat` of runtime values along their channel axis.
pub fn concat(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let k = n.proto.input.len();
    let mut xs = Vec::with_capacity(k);
    for i in 0..k {
        match imp.input(n, i)? {
            Some(Val::Dyn(_)) => xs.push(imp.dyn_in(n, i)?),
            _ => return Err(n.unsupported("Concat of runtime tensors and constants")),
        }
    }
    let first = xs.first().ok_or_else(|| n.err("no inputs"))?.clone();
    let r = first.shape.len();
    let axis = norm_axis(n, n.int("axis", 0)?, r)?;
    let channel = match first.layout {
        Layout::Nchw => axis == 1 && r >= 2,
        Layout::Nhwc => axis == 3,
    };
    if !channel {
        return Err(n.unsupported(format!(
            "Concat on axis {axis} of {:?} tensors of shape {:?} (only the channel axis)",
            first.layout, first.shape
        )));
    }
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for x in &xs {
        let same = x.layout == first.layout
            && x.shape.len() == r
            && (0..r).all(|a| a == axis || x.shape[a] == first.shape[a]);
        if !same {
            return Err(n.err(format!(
                "inputs of shapes {:?} and {:?} do not concatenate on axis {axis}",
                first.shape, x.shape
            )));
        }
        shape[axis] += x.shape[axis];
    }
    let name = imp.node_name(n);
    let ids: Vec<_> = xs.iter().map(|x| x.v).collect();
    let v = imp.graph.concat(&name, &ids)?;
    Ok(vec![Val::Dyn(DynVal { v, shape, ..first })])
}

/// `Pad` of a runtime value. A constant zero pad of the spatial dims of
/// an NCHW value stays pending, folded into the conv or average pool that
/// reads it; any other (another value, another mode, other axes, negative
/// pads that crop) is the IR's pad.
pub fn pad(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let mode = match n.string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "edge" => PadMode::Edge,
        "reflect" => PadMode::Reflect,
        "wrap" => PadMode::Wrap,
        other => return Err(n.unsupported(format!("Pad mode `{other}`"))),
    };
    let pads_t = imp.const_in(n, 1)?;
    let pads = pads_t.as_i64("pads").map_err(|e| n.err(e))?.to_vec();
    let value = match imp.opt_const_in(n, 2)? {
        None => 0.0,
        Some(v) => {
            let v = v.as_f64();
            if v.len() != 1 {
                return Err(n.err(format!(
                    "constant_value has {} elements, expected 1",
                    v.len()
                )));
            }
            let f = v[0] as f32;
            if mode == PadMode::Constant && !f.is_finite() {
                return Err(n.unsupported(format!("Pad with the non-finite value {}", v[0])));
            }
            f
        }
    };
    let axes_t = imp.opt_const_in(n, 3)?;
    let x = imp.dyn_in(n, 0)?;
    let r = x.shape.len();
    let axes: Vec<usize> = match axes_t {
        None => (0..r).collect(),
        Some(t) => t
            .as_i64("axes")
            .map_err(|e| n.err(e))?
            .iter()
            .map(|&a| norm_axis(n, a, r))
            .collect::<Result<_>>()?,
    };
    if pads.len() != 2 * axes.len() {
        return Err(n.err(format!("{} pads for {} axes", pads.len(), axes.len())));
    }
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    for (k, &a) in axes.iter().enumerate() {
        begin[a] = pads[k];
        end[a] = pads[k + axes.len()];
    }
    if begin.iter().chain(&end).all(|&p| p == 0) {
        return Ok(vec![Val::Dyn(x)]);
    }
    let limit = crate::onnx::attrs::MAX_SIZE_ATTR;
    if begin.iter().chain(&end).any(|&p| p > limit || p < -limit) {
        return Err(n.err(format!("pads {pads:?} are too large")));
    }
    if r > 4 {
        return Err(n.unsupported(format!("Pad of a rank-{r} tensor (rank above 4)")));
    }
    let mut shape = Vec::with_capacity(r);
    for a in 0..r {
        let (b, e, size) = (begin[a], end[a], x.shape[a] as i64);
        let len = size + b.min(0) + e.min(0);
        if len < 1 {
            return Err(n.err(format!(
                "pads ({b}, {e}) on axis {a} crop all {size} elements"
            )));
        }
        if mode == PadMode::Reflect && (b >= len || e >= len) {
            return Err(n.err(format!(
                "reflect pads ({b}, {e}) on axis {a} of size {len}: each must be smaller than \
                 the size"
            )));
        }
        shape.push((len + b.max(0) + e.max(0)) as usize);
    }
    let pending = mode == PadMode::Constant
        && value == 0.0
        && r == 4
        && x.layout == Layout::Nchw
        && begin[..2] == [0, 0]
        && end[..2] == [0, 0]
        && begin.iter().chain(&end).all(|&p| p >= 0);
    if pending {
        // A zero pad stays pending: a conv, a count-including-pad average
        // pool or a max pool of a nonnegative value takes it as its own
        // padding; any other reader materializes it as a pad node.
        let p = [begin[2], begin[3], end[2], end[3]].map(|v| v as usize);
        return Ok(vec![Val::Dyn(DynVal {
            shape,
            pad: Some((p, n.name.clone())),
            ..x
        })]);
    }
    let mut pd = Pad {
        begin: [0; 4],
        end: [0; 4],
        mode,
        value: if mode == PadMode::Constant {
            value
        } else {
            0.0
        },
    };
    for a in 0..r {
        pd.begin[ir_axis(x.layout, a)] = begin[a];
        pd.end[ir_axis(x.layout, a)] = end[a];
    }
    let name = imp.node_name(n);
    let v = imp.graph.pad_nd(&name, x.v, pd).map_err(|e| n.err(e))?;
    Ok(vec![Val::Dyn(DynVal { v, shape, ..x })])
}

/// `Identity` and inference `Dropout`: the input itself (and Dropout's
/// mask, when read, a constant all-true BOOL tensor of the input's shape).
pub fn identity(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    if n.op() == "Dropout" {
        if let Some(t) = imp.opt_const_in(n, 2)? {
            if t.as_f64().first().is_some_and(|&v| v != 0.0) {
                return Err(n.unsupported("training_mode=true (training mode)"));
            }
        }
    }
    let x = imp
        .input(n, 0)?
        .ok_or_else(|| n.err("input 0 is required"))?;
    // Dropout's mask, when something reads it: in inference every element
    // is kept, so it is a constant all-true BOOL tensor of x's shape.
    let mask = n.proto.output.get(1).filter(|m| !m.is_empty());
    if n.op() == "Dropout" && mask.is_some_and(|m| imp.consumers(m) > 0) {
        let dims = match &x {
            Val::Dyn(d) => d.shape.clone(),
            Val::Const(t) => t.dims().to_vec(),
        };
        let len = crate::onnx::tensor::element_count(&n.name, &dims).map_err(|e| n.err(e))?;
        let what = format!("{}: mask", n.name);
        let data = crate::onnx::tensor::Data::I(vec![1; len]);
        let mask = OnnxTensor::new(&what, dims, data_type::BOOL, data)?;
        return Ok(vec![x, Val::Const(std::rc::Rc::new(mask))]);
    }
    Ok(vec![x])
}

/// `Shape` of a runtime value: a constant.
pub fn shape(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in_raw(n, 0)?;
    Ok(vec![Val::Const(std::rc::Rc::new(shape_of(n, &x.shape)?))])
}

/// `Cast` of a runtime value to FLOAT: the value itself.
pub fn cast(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let to = n.int("to", 0)? as i32;
    if to != crate::onnx::proto::data_type::FLOAT {
        return Err(n.unsupported(format!(
            "Cast of a runtime tensor to {}",
            crate::onnx::proto::data_type::name(to)
        )));
    }
    let x = imp
        .input(n, 0)?
        .ok_or_else(|| n.err("input 0 is required"))?;
    Ok(vec![x])
}
