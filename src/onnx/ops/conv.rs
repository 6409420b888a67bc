//! `Conv`, `MaxPool`, `AveragePool` (2-D, and 1-D as k×1 over `(N, C, L, 1)`), `GlobalAveragePool`, `ReduceMean`
//! over H and W, and inference `BatchNormalization`.
//!
//! ONNX pads are `[top, left, bottom, right]` (begins, then ends);
//! `auto_pad` `SAME_UPPER`/`SAME_LOWER` puts the odd pixel at the end /
//! the beginning, with output size `ceil(H / stride)`; `VALID` is no
//! padding. A pending constant zero `Pad` adds to a conv's pads, and to an
//! average pool's when it counts padding (both read zeros there).

use super::{Importer, Node, Val};
use crate::error::Result;
use crate::graph::Padding;
use crate::graph::PoolKind;
use crate::graph::{Conv2d, Op, Pool};
use crate::onnx::fold::norm_axis;
use crate::onnx::import::DynVal;
use crate::onnx::Layout;

/// Resolves `auto_pad` and `pads` for spatial input `hw`, window `k`,
/// `stride`, `dilation`: `[top, left, bottom, right]`.
fn pads(
    n: &Node,
    sp: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    dil: [usize; 2],
) -> Result<[usize; 4]> {
    let auto = n.string("auto_pad", "NOTSET")?;
    match auto.as_str() {
        "NOTSET" | "" => {
            let p = n.sizes("pads", 2 * sp, 0)?;
            Ok(if sp == 1 {
                [p[0], 0, p[1], 0]
            } else {
                [p[0], p[1], p[2], p[3]]
            })
        }
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = [0; 4];
            for a in 0..2 {
                let o = hw[a].div_ceil(stride[a]);
                let span = (k[a] - 1) * dil[a] + 1;
                let total = ((o - 1) * stride[a] + span).saturating_sub(hw[a]);
                let small = total / 2;
                let (b, e) = if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                out[a] = b;
                out[a + 2] = e;
            }
            Ok(out)
        }
        other => Err(n.err(format!("unknown auto_pad `{other}`"))),
    }
}

/// A per-spatial-axis attribute (`sp` entries) as 2-D: a 1-D op's second
/// axis is the IR's W of size 1, with `second` (1 for strides, dilations
/// and kernels).
fn attr2(n: &Node, name: &str, sp: usize, default: usize) -> Result<[usize; 2]> {
    let v = n.sizes(name, sp, default)?;
    Ok(if sp == 1 { [v[0], 1] } else { [v[0], v[1]] })
}

/// The spatial size of an NCHW value of rank 3 (`(N, C, L)`, the IR's
/// `(N, C, L, 1)`) or 4.
fn hw_of(x: &DynVal) -> [usize; 2] {
    [x.shape[2], x.shape.get(3).copied().unwrap_or(1)]
}

/// The ONNX shape of an IR output for a rank-`rank` op.
fn out_shape(s: [usize; 4], rank: usize) -> Vec<usize> {
    s[..rank].to_vec()
}

/// A 4-D NCHW runtime input (pending pad kept), or the reason it is not.
fn nchw_in(imp: &mut Importer, n: &Node, keep_pad: bool) -> Result<DynVal> {
    let x = imp.dyn_in_raw(n, 0)?;
    let x = if x.affine.is_some() || (x.pad.is_some() && !keep_pad) {
        imp.dyn_in(n, 0)?
    } else {
        x
    };
    if !(3..=4).contains(&x.shape.len()) {
        return Err(n.unsupported(format!(
            "a rank-{} input (only 1-D and 2-D spatial, NCHW)",
            x.shape.len()
        )));
    }
    if x.layout != Layout::Nchw {
        return Err(n.unsupported("an NHWC input (NHWC into a conv or pool)"));
    }
    Ok(x)
}

/// `Conv` (2-D, constant weights and bias).
pub fn conv(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = nchw_in(imp, n, true)?;
    let w = imp.const_in(n, 1)?;
    let b = imp.opt_const_in(n, 2)?;
    let rank = x.shape.len();
    let sp = rank - 2;
    let wd = w.dims().to_vec();
    if wd.len() != rank {
        return Err(n.err(format!(
            "weight dims {wd:?}, expected rank {rank} (M, C/group, kernel…)"
        )));
    }
    // A 1-D conv is the IR's k×1 conv over (N, C, L, 1).
    let wd: Vec<usize> = if sp == 1 {
        vec![wd[0], wd[1], wd[2], 1]
    } else {
        wd
    };
    let group = n.int("group", 1)?;
    let c = x.shape[1];
    if group < 1
        || (group as usize).checked_mul(wd[1]) != Some(c)
        || !wd[0].is_multiple_of(group as usize)
    {
        return Err(n.err(format!(
            "group {group} with weight dims {wd:?} does not fit {c} input channels"
        )));
    }
    let group = group as usize;
    let k = [wd[2], wd[3]];
    if k.iter()
        .any(|&x| x as i64 > crate::onnx::attrs::MAX_SIZE_ATTR)
    {
        return Err(n.err(format!("kernel {k:?} is too large")));
    }
    if let Some(ks) = n.ints("kernel_shape")? {
        if ks.len() != sp || ks[0] as usize != k[0] || (sp == 2 && ks[1] as usize != k[1]) {
            return Err(n.err(format!(
                "kernel_shape {ks:?} disagrees with weight dims {wd:?}"
            )));
        }
    }
    let stride = attr2(n, "strides", sp, 1)?;
    let dil = attr2(n, "dilations", sp, 1)?;
    if stride.contains(&0) || dil.contains(&0) || k.contains(&0) {
        return Err(n.err("zero stride, dilation or kernel size"));
    }
    let mut p = pads(n, sp, hw_of(&x), k, stride, dil)?;
    if let Some((extra, _)) = x.pad {
        for i in 0..4 {
            p[i] += extra[i];
        }
    }
    let name = imp.node_name(n);
    imp.weight_from(n, &format!("{name}.weight"), wd.clone(), &w)?;
    let mut cv = Conv2d::rect(wd[0], k).groups(group).pad4(Padding {
        top: p[0],
        left: p[1],
        bottom: p[2],
        right: p[3],
    });
    cv.stride = stride;
    cv.dilation = dil;
    if let Some(b) = b {
        imp.weight_from(n, &format!("{name}.bias"), vec![wd[0]], &b)?;
        cv = cv.with_bias();
    }
    let v = imp.graph.conv2d(&name, x.v, cv).map_err(|e| n.err(e))?;
    let s = imp.shape_of(v);
    Ok(vec![Val::Dyn(DynVal {
        v,
        shape: out_shape(s, rank),
        layout: Layout::Nchw,
        affine: None,
        pad: None,
    })])
}

/// True when every element of IR value `v` is ≥ 0 or NaN by construction:
/// its producer is a ReLU, or a clamp (standalone or an epilogue) with a
/// lower bound ≥ 0. A zero pad before a max pool of such a value is the
/// pool's own padding (a zero never beats a window's input taps).
fn nonnegative(imp: &Importer, v: crate::graph::ValueId) -> bool {
    let Some(p) = imp.graph.nodes.iter().rev().find(|nd| nd.output == v) else {
        return false;
    };
    let lower_ok = |c: &Option<crate::graph::Clamp>| c.is_some_and(|c| c.min >= 0.0);
    match &p.op {
        Op::Relu => true,
        Op::Clip(c) => c.min >= 0.0,
        Op::Conv2d(c) => lower_ok(&c.clamp),
        Op::BatchNorm { clamp, .. } | Op::Add { clamp, .. } => lower_ok(clamp),
        _ => false,
    }
}

/// `MaxPool` and `AveragePool`. A pending zero `Pad` folds into the pool's
/// padding when that computes the same: an average pool counting padding,
/// or a max pool of a nonnegative value ([`nonnegative`]), without
/// `ceil_mode` (whose last-window rule measures from the unpadded size),
/// and only if every folded window keeps an input tap; otherwise the pad
/// is materialized first.
pub fn pool(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let avg = n.op() == "AveragePool";
    let include_pad = avg && n.int("count_include_pad", 0)? != 0;
    let ceil = n.int("ceil_mode", 0)? != 0;
    let raw = imp.dyn_in_raw(n, 0)?;
    let fold = raw.pad.is_some()
        && raw.affine.is_none()
        && !ceil
        && (include_pad || (!avg && nonnegative(imp, raw.v)));
    let mut x = nchw_in(imp, n, fold)?;
    let rank = x.shape.len();
    let sp = rank - 2;
    let k = attr2(n, "kernel_shape", sp, 0)?;
    if !n.has("kernel_shape") || k.contains(&0) {
        return Err(n.err(format!("kernel_shape ({sp} positive entries) is required")));
    }
    let stride = attr2(n, "strides", sp, 1)?;
    let dil = attr2(n, "dilations", sp, 1)?;
    if stride.contains(&0) || dil.contains(&0) {
        return Err(n.err("zero stride or dilation"));
    }
    let p = pads(n, sp, hw_of(&x), k, stride, dil)?;
    let pool_of = |extra: [usize; 4]| Pool {
        kind: if avg { PoolKind::Avg } else { PoolKind::Max },
        kernel: k,
        stride,
        padding: Padding {
            top: p[0] + extra[0],
            left: p[1] + extra[1],
            bottom: p[2] + extra[2],
            right: p[3] + extra[3],
        },
        dilation: dil,
        ceil_mode: ceil,
        count_include_pad: include_pad,
    };
    let mut pl = pool_of([0; 4]);
    if let Some((extra, _)) = x.pad {
        let folded = pool_of(extra);
        if folded.output_shape(&n.name, imp.shape_of(x.v)).is_ok() {
            pl = folded;
        } else {
            x = imp.materialize(n, x)?;
        }
    }
    let name = imp.node_name(n);
    let v = imp.graph.pool(&name, x.v, pl).map_err(|e| n.err(e))?;
    let s = imp.shape_of(v);
    Ok(vec![Val::Dyn(DynVal {
        v,
        shape: out_shape(s, rank),
        layout: Layout::Nchw,
        affine: None,
        pad: None,
    })])
}

/// `GlobalAveragePool` of a rank-3 or rank-4 NCHW value.
pub fn global_avg_pool(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let x = imp.dyn_in(n, 0)?;
    if x.layout != Layout::Nchw || !(3..=4).contains(&x.shape.len()) {
        return Err(n.unsupported(format!(
            "an input of shape {:?} in {:?} layout",
            x.shape, x.layout
        )));
    }
    let name = imp.node_name(n);
    let v = imp.graph.global_avg_pool(&name, x.v)?;
    let mut shape = x.shape.clone();
    for d in &mut shape[2..] {
        *d = 1;
    }
    Ok(vec![Val::Dyn(DynVal { v, shape, ..x })])
}

/// `ReduceMean` over the spatial axes: a global average pool.
pub fn reduce_mean(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    let axes_in = imp.opt_const_in(n, 1)?;
    let axes = crate::onnx::fold::axes_of(n, axes_in.as_deref())?;
    let x = imp.dyn_in(n, 0)?;
    let r = x.shape.len();
    let Some(axes) = axes.filter(|a| !a.is_empty()) else {
        return Err(n.unsupported("ReduceMean over all axes"));
    };
    let mut set: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(n, a, r))
        .collect::<Result<_>>()?;
    set.sort_unstable();
    set.dedup();
    let spatial: &[usize] = match (x.layout, r) {
        (Layout::Nchw, 4) => &[2, 3],
        (Layout::Nchw, 3) => &[2],
        (Layout::Nhwc, 4) => &[1, 2],
        _ => &[],
    };
    if set != spatial {
        return Err(n.unsupported(format!(
            "ReduceMean over axes {axes:?} of a {:?} tensor of shape {:?} (only the spatial axes)",
            x.layout, x.shape
        )));
    }
    let keep = n.int("keepdims", 1)? != 0;
    let name = imp.node_name(n);
    let v = imp.graph.global_avg_pool(&name, x.v)?;
    let (shape, layout) = if keep {
        let mut s = x.shape.clone();
        for &a in &set {
            s[a] = 1;
        }
        (s, x.layout)
    } else {
        let s: Vec<usize> = (0..r)
            .filter(|a| !set.contains(a))
            .map(|a| x.shape[a])
            .collect();
        (s, Layout::Nchw)
    };
    Ok(vec![Val::Dyn(DynVal {
        v,
        shape,
        layout,
        affine: None,
        pad: None,
    })])
}

/// Inference `BatchNormalization` over axis 1 of an NCHW value.
pub fn batchnorm(imp: &mut Importer, n: &Node) -> Result<Vec<Val>> {
    if n.int("training_mode", 0)? != 0 {
        return Err(n.unsupported("training_mode=1 (training mode)"));
    }
    let x = imp.dyn_in(n, 0)?;
    if x.layout != Layout::Nchw || !(2..=4).contains(&x.shape.len()) {
        return Err(n.unsupported(format!(
            "an input of shape {:?} in {:?} layout",
            x.shape, x.layout
        )));
    }
    let c = x.shape[1];
    let eps = n.float("epsilon", 1e-5)?;
    let name = imp.node_name(n);
    for (i, key) in ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .enumerate()
    {
        let t = imp.const_in(n, i + 1)?;
        imp.weight_from(n, &format!("{name}.{key}"), vec![c], &t)?;
    }
    let v = imp.graph.batchnorm(&name, x.v, eps)?;
    Ok(vec![Val::Dyn(DynVal { v, ..x })])
}
