//! Data movement: `Flatten`, `Reshape`, `Squeeze`/`Unsqueeze`,
//! `Transpose`, `Concat`, `Pad`, and the pass-throughs `Identity`,
//! `Dropout`, `Shape`, `Cast` on runtime values.
//!
//! Reshapes that keep the IR shape (`(N, C)` ↔ `(N, C, 1, 1)`) relabel the
//! value; `(N, C, H, W)` → `(N, C·H·W)` is the IR's flatten. `Transpose`
//! between NCHW and NHWC relabels the value's [`Layout`].

use super::{Importer, Node, Val};
use crate::error::Result;
use crate::graph::Padding;
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

/// `x` reshaped to `dims`: a relabel, or the IR's flatten to `(N, F)`.
fn reshape_to(imp: &mut Importer, n: &Node, dims: Vec<usize>) -> Result<Vec<Val>> {
    let x = imp.dyn_in_raw(n, 0)?;
    if let Some(d) = relabel(imp, &x, &dims) {
        return Ok(vec![Val::Dyn(d)]);
    }
    let x = imp.dyn_in(n, 0)?;
    let flat =
        x.shape.len() >= 2 && dims.len() == 2 && dims[0] == x.shape[0] && x.layout == Layout::Nchw;
    if !flat {
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
    match relabel(imp, &x, &dims) {
        Some(d) => Ok(vec![Val::Dyn(d)]),
        None => Err(n.unsupported(format!(
            "{} of shape {:?} to {dims:?} (general reshape)",
            n.op(),
            x.shape
        ))),
    }
}

/// `Transpose` of a runtime value: identity, NCHW → NHWC or NHWC → NCHW.
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
        return Err(n.unsupported(format!(
            "Transpose with perm {perm:?} of a {:?} tensor of shape {:?} (general transpose)",
            x.layout, x.shape
        )));
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

/// Constant zero `Pad` of the spatial dims of an NCHW value: pending,
/// folded into the conv or average pool that reads it.
pub fn pad(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let mode = n.string("mode", "constant")?;
    if mode != "constant" {
        return Err(n.unsupported(format!("Pad mode `{mode}`")));
    }
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
            if !f.is_finite() {
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
    if begin
        .iter()
        .chain(&end)
        .any(|&p| p > crate::onnx::attrs::MAX_SIZE_ATTR)
    {
        return Err(n.err(format!("pads {pads:?} are too large")));
    }
    if begin.iter().chain(&end).any(|&p| p < 0) {
        return Err(n.unsupported(format!("negative pads {pads:?} (cropping Pad)")));
    }
    let spatial_only = r == 4
        && x.layout == Layout::Nchw
        && begin[0] == 0
        && begin[1] == 0
        && end[0] == 0
        && end[1] == 0;
    if !spatial_only {
        return Err(n.unsupported(format!(
            "Pad {pads:?} of a {:?} tensor of shape {:?} (only H and W of NCHW)",
            x.layout, x.shape
        )));
    }
    let p = [
        begin[2] as usize,
        begin[3] as usize,
        end[2] as usize,
        end[3] as usize,
    ];
    let shape = vec![
        x.shape[0],
        x.shape[1],
        x.shape[2] + p[0] + p[2],
        x.shape[3] + p[1] + p[3],
    ];
    if value != 0.0 {
        // Nothing folds a nonzero pad: the pad kernel, now.
        let name = imp.node_name(n);
        let padding = Padding {
            top: p[0],
            left: p[1],
            bottom: p[2],
            right: p[3],
        };
        let v = imp
            .graph
            .pad(&name, x.v, padding, value)
            .map_err(|e| n.err(e))?;
        return Ok(vec![Val::Dyn(DynVal { v, shape, ..x })]);
    }
    // A zero pad stays pending: a conv, a count-including-pad average pool
    // or a max pool of a nonnegative value takes it as its own padding;
    // any other reader materializes it as a pad node.
    Ok(vec![Val::Dyn(DynVal {
        shape,
        pad: Some((p, n.name.clone())),
        ..x
    })])
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
