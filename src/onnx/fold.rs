//! Constant folding: evaluating a node whose inputs are all constants.
//!
//! With the input shape fixed, exporters' shape arithmetic (`Shape` →
//! `Gather` → `Unsqueeze` → `Concat` → `Reshape`, `Cast`, `Slice`,
//! `ConstantOfShape`, arithmetic on the results) has constant inputs only
//! once `Shape` of a runtime value is known, and folds away here. Each
//! evaluator follows the operator's ONNX definition (numpy broadcasting
//! for the arithmetic, negative axes and indices counted from the end,
//! `Slice`'s clamping). Sizes are checked before allocating.

use super::attrs::Node;
use super::proto::data_type;
use super::tensor::{element_count, is_float_type, is_int_type, Data, OnnxTensor};
use crate::error::Result;
use std::rc::Rc;

/// A constant input, or `None` for an omitted optional input.
pub type ConstIn = Option<Rc<OnnxTensor>>;

/// Normalizes a possibly negative `axis` for rank `rank` (`rank + 1` when
/// `extra` for `Unsqueeze`-style output ranks).
pub fn norm_axis(n: &Node, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(n.err(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

fn req<'a>(n: &Node, ins: &'a [ConstIn], i: usize) -> Result<&'a OnnxTensor> {
    ins.get(i)
        .and_then(|t| t.as_deref())
        .ok_or_else(|| n.err(format!("input {i} is required")))
}

fn ints(n: &Node, t: &OnnxTensor, what: &str) -> Result<Vec<i64>> {
    t.as_i64(what).map(<[i64]>::to_vec).map_err(|e| n.err(e))
}

fn usize_dims(n: &Node, v: &[i64], what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| n.err(format!("{what} {v:?} has a negative entry")))
        })
        .collect()
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// For each element of `out` (row-major), the flat index of the element of
/// a tensor of dims `inp` that broadcasts to it.
fn broadcast_index(out: &[usize], inp: &[usize]) -> Vec<usize> {
    let r = out.len();
    let mut strides = vec![0usize; r];
    let mut s = 1;
    for i in (0..inp.len()).rev() {
        let oi = i + r - inp.len();
        strides[oi] = if inp[i] == 1 { 0 } else { s };
        s *= inp[i];
    }
    let total: usize = out.iter().product();
    let mut idx = Vec::with_capacity(total);
    let mut pos = vec![0usize; r];
    for _ in 0..total {
        idx.push(pos.iter().zip(&strides).map(|(p, s)| p * s).sum());
        for d in (0..r).rev() {
            pos[d] += 1;
            if pos[d] < out[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    idx
}

/// Strides of row-major `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Gathers `idx` from data of either kind.
fn pick(d: &Data, idx: &[usize]) -> Data {
    match d {
        Data::F(v) => Data::F(idx.iter().map(|&i| v[i]).collect()),
        Data::I(v) => Data::I(idx.iter().map(|&i| v[i]).collect()),
    }
}

fn binary(n: &Node, a: &OnnxTensor, b: &OnnxTensor) -> Result<OnnxTensor> {
    let dims = broadcast_dims(a.dims(), b.dims()).ok_or_else(|| {
        n.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.dims(),
            b.dims()
        ))
    })?;
    element_count(&n.name, &dims).map_err(|e| n.err(e))?;
    let ia = broadcast_index(&dims, a.dims());
    let ib = broadcast_index(&dims, b.dims());
    let op = n.op();
    let data = match (a.data(), b.data()) {
        (Data::F(x), Data::F(y)) => {
            let f = |p: f32, q: f32| match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                "Div" => p / q,
                "Pow" => p.powf(q),
                "Max" => p.max(q),
                _ => p.min(q),
            };
            Data::F(ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect())
        }
        (Data::I(x), Data::I(y)) => {
            let mut out = Vec::with_capacity(ia.len());
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (x[i], y[j]);
                out.push(match op {
                    "Add" => p.wrapping_add(q),
                    "Sub" => p.wrapping_sub(q),
                    "Mul" => p.wrapping_mul(q),
                    "Div" => {
                        if q == 0 {
                            return Err(n.err("integer division by zero"));
                        }
                        p.wrapping_div(q)
                    }
                    "Max" => p.max(q),
                    "Min" => p.min(q),
                    _ => return Err(n.err("integer Pow is not supported")),
                });
            }
            Data::I(out)
        }
        _ => {
            return Err(n.err(format!(
                "operands of types {} and {}",
                data_type::name(a.dtype()),
                data_type::name(b.dtype())
            )))
        }
    };
    OnnxTensor::new(&n.name, dims, a.dtype(), data).map_err(|e| n.err(e))
}

fn compare(n: &Node, a: &OnnxTensor, b: &OnnxTensor) -> Result<OnnxTensor> {
    let dims = broadcast_dims(a.dims(), b.dims()).ok_or_else(|| {
        n.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.dims(),
            b.dims()
        ))
    })?;
    element_count(&n.name, &dims).map_err(|e| n.err(e))?;
    let (x, y) = (a.as_f64(), b.as_f64());
    let ia = broadcast_index(&dims, a.dims());
    let ib = broadcast_index(&dims, b.dims());
    let op = n.op();
    let data = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| {
            let r = match op {
                "Equal" => x[i] == y[j],
                "Less" => x[i] < y[j],
                _ => x[i] > y[j],
            };
            r as i64
        })
        .collect();
    OnnxTensor::new(&n.name, dims, data_type::BOOL, Data::I(data)).map_err(|e| n.err(e))
}

fn unary(n: &Node, a: &OnnxTensor) -> Result<OnnxTensor> {
    let op = n.op();
    let data = match a.data() {
        Data::F(v) => Data::F(
            v.iter()
                .map(|&x| match op {
                    "Neg" => -x,
                    "Sqrt" => x.sqrt(),
                    "Reciprocal" => 1.0 / x,
                    "Floor" => x.floor(),
                    "Ceil" => x.ceil(),
                    "Relu" => x.max(0.0),
                    _ => x.abs(),
                })
                .collect(),
        ),
        Data::I(v) => Data::I(
            v.iter()
                .map(|&x| match op {
                    "Neg" => x.wrapping_neg(),
                    "Relu" => x.max(0),
                    "Abs" => x.wrapping_abs(),
                    _ => x,
                })
                .collect(),
        ),
    };
    if matches!(a.data(), Data::I(_)) && matches!(op, "Sqrt" | "Reciprocal") {
        return Err(n.err("integer input"));
    }
    OnnxTensor::new(&n.name, a.dims().to_vec(), a.dtype(), data).map_err(|e| n.err(e))
}

fn cast(n: &Node, a: &OnnxTensor) -> Result<OnnxTensor> {
    let to = n.int("to", 0)? as i32;
    let data = match (a.data(), is_float_type(to), is_int_type(to)) {
        (Data::F(v), true, _) => Data::F(v.clone()),
        (Data::I(v), true, _) => Data::F(v.iter().map(|&x| x as f32).collect()),
        (Data::F(v), _, true) => {
            if to == data_type::BOOL {
                Data::I(v.iter().map(|&x| (x != 0.0) as i64).collect())
            } else {
                // Truncation toward zero, as C casts (and onnxruntime) do.
                Data::I(v.iter().map(|&x| x as i64).collect())
            }
        }
        (Data::I(v), _, true) => {
            if to == data_type::BOOL {
                Data::I(v.iter().map(|&x| (x != 0) as i64).collect())
            } else {
                Data::I(v.clone())
            }
        }
        _ => return Err(n.err(format!("cast to {} is not supported", data_type::name(to)))),
    };
    // 16-bit floats: round through the type so the folded value is the one
    // the model would compute.
    let data = match (data, to) {
        (Data::F(v), data_type::FLOAT16) => {
            Data::F(v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect())
        }
        (Data::F(v), data_type::BFLOAT16) => Data::F(
            v.iter()
                .map(|&x| half::bf16::from_f32(x).to_f32())
                .collect(),
        ),
        (d, _) => d,
    };
    OnnxTensor::new(&n.name, a.dims().to_vec(), to, data).map_err(|e| n.err(e))
}

/// `Reshape`'s target dims for input dims `input`: 0 copies the input's
/// dim (unless `allowzero`), −1 is inferred. Shared with the runtime importer.
pub fn reshape_dims(
    n: &Node,
    input: &[usize],
    shape: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                n.err(format!(
                    "shape {shape:?}: 0 at {i} but the input has rank {}",
                    input.len()
                ))
            })?),
            s if s >= 0 => out.push(s as usize),
            _ => return Err(n.err(format!("invalid target shape {shape:?}"))),
        }
    }
    let known = element_count(&n.name, &out).map_err(|e| n.err(e))?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(n.err(format!("cannot reshape {input:?} to {shape:?}")));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(n.err(format!(
            "cannot reshape {input:?} ({total} elements) to {shape:?}"
        )));
    }
    Ok(out)
}

/// Axes of `Squeeze`/`Unsqueeze`/`ReduceMean` from input 1 (opset ≥ 13) or
/// the `axes` attribute.
pub fn axes_of(n: &Node, ins_axes: Option<&OnnxTensor>) -> Result<Option<Vec<i64>>> {
    match ins_axes {
        Some(t) => Ok(Some(ints(n, t, "axes")?)),
        None => n.ints("axes"),
    }
}

/// The output dims of `Squeeze` with `axes` (all size-1 axes when `None`).
pub fn squeeze_dims(n: &Node, dims: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
    let mut drop = vec![false; dims.len()];
    match axes {
        None => {
            for (i, &d) in dims.iter().enumerate() {
                drop[i] = d == 1;
            }
        }
        Some(a) => {
            for &ax in a {
                let i = norm_axis(n, ax, dims.len())?;
                if dims[i] != 1 {
                    return Err(n.err(format!("cannot squeeze axis {ax} of size {}", dims[i])));
                }
                drop[i] = true;
            }
        }
    }
    Ok(dims
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&x, _)| x)
        .collect())
}

/// The output dims of `Unsqueeze` with `axes`.
pub fn unsqueeze_dims(n: &Node, dims: &[usize], axes: &[i64]) -> Result<Vec<usize>> {
    let r = dims.len() + axes.len();
    let mut ones = vec![false; r];
    for &ax in axes {
        let i = norm_axis(n, ax, r)?;
        if ones[i] {
            return Err(n.err(format!("axis {ax} repeated")));
        }
        ones[i] = true;
    }
    let mut it = dims.iter();
    Ok(ones
        .iter()
        .map(|&o| {
            if o {
                1
            } else {
                *it.next().expect("rank adds up")
            }
        })
        .collect())
}

/// `Transpose` permutation (reverse when absent), checked.
pub fn perm_of(n: &Node, rank: usize) -> Result<Vec<usize>> {
    let perm = match n.ints("perm")? {
        None => (0..rank).rev().collect(),
        Some(p) => usize_dims(n, &p, "perm")?,
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(n.err(format!("perm {perm:?} is not a permutation of rank {rank}")));
    }
    Ok(perm)
}

fn transpose(n: &Node, a: &OnnxTensor) -> Result<OnnxTensor> {
    let dims = a.dims();
    let perm = perm_of(n, dims.len())?;
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let st = strides(dims);
    let in_strides: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    let idx = broadcast_index_strided(&out_dims, &in_strides);
    OnnxTensor::new(&n.name, out_dims, a.dtype(), pick(a.data(), &idx)).map_err(|e| n.err(e))
}

/// Flat input indices of a strided view of shape `out`.
fn broadcast_index_strided(out: &[usize], strides: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    let mut idx = Vec::with_capacity(total);
    let mut pos = vec![0usize; out.len()];
    for _ in 0..total {
        idx.push(pos.iter().zip(strides).map(|(p, s)| p * s).sum());
        for d in (0..out.len()).rev() {
            pos[d] += 1;
            if pos[d] < out[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    idx
}

fn gather(n: &Node, data: &OnnxTensor, indices: &OnnxTensor) -> Result<OnnxTensor> {
    let dims = data.dims();
    if dims.is_empty() {
        return Err(n.err("Gather of a scalar"));
    }
    let axis = norm_axis(n, n.int("axis", 0)?, dims.len())?;
    let ind = ints(n, indices, "indices")?;
    let len = dims[axis] as i64;
    let mut norm = Vec::with_capacity(ind.len());
    for &i in &ind {
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return Err(n.err(format!("index {i} out of range for axis of size {len}")));
        }
        norm.push(j as usize);
    }
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out_dims = dims[..axis].to_vec();
    out_dims.extend_from_slice(indices.dims());
    out_dims.extend_from_slice(&dims[axis + 1..]);
    element_count(&n.name, &out_dims).map_err(|e| n.err(e))?;
    let mut idx = Vec::new();
    for o in 0..outer {
        for &j in &norm {
            for k in 0..inner {
                idx.push((o * dims[axis] + j) * inner + k);
            }
        }
    }
    OnnxTensor::new(&n.name, out_dims, data.dtype(), pick(data.data(), &idx)).map_err(|e| n.err(e))
}

fn concat(n: &Node, parts: &[&OnnxTensor]) -> Result<OnnxTensor> {
    let first = parts.first().ok_or_else(|| n.err("no inputs"))?;
    let rank = first.dims().len();
    let axis = norm_axis(n, n.int("axis", 0)?, rank.max(1))?;
    let mut out_dims = first.dims().to_vec();
    if rank == 0 {
        return Err(n.err("Concat of scalars"));
    }
    out_dims[axis] = 0;
    for p in parts {
        let d = p.dims();
        let same_kind = matches!(
            (p.data(), first.data()),
            (Data::F(_), Data::F(_)) | (Data::I(_), Data::I(_))
        );
        if d.len() != rank
            || !same_kind
            || d.iter()
                .enumerate()
                .any(|(i, &x)| i != axis && x != first.dims()[i])
        {
            return Err(n.err(format!(
                "inputs {:?} and {:?} do not concatenate on axis {axis}",
                first.dims(),
                d
            )));
        }
        out_dims[axis] += d[axis];
    }
    let outer: usize = out_dims[..axis].iter().product();
    let mut f = Vec::new();
    let mut iv = Vec::new();
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.dims()[axis..].iter().product();
            match p.data() {
                Data::F(v) => f.extend_from_slice(&v[o * chunk..(o + 1) * chunk]),
                Data::I(v) => iv.extend_from_slice(&v[o * chunk..(o + 1) * chunk]),
            }
        }
    }
    let data = match first.data() {
        Data::F(_) => Data::F(f),
        Data::I(_) => Data::I(iv),
    };
    OnnxTensor::new(&n.name, out_dims, first.dtype(), data).map_err(|e| n.err(e))
}

/// `Slice` parameters per axis, clamped as ONNX says: (start, step, count).
pub fn slice_plan(
    n: &Node,
    dims: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<(i64, i64, usize)>> {
    let mut plan: Vec<(i64, i64, usize)> = dims.iter().map(|&d| (0, 1, d)).collect();
    if starts.len() != ends.len() {
        return Err(n.err("starts and ends differ in length"));
    }
    for k in 0..starts.len() {
        let ax = match axes {
            Some(a) => norm_axis(
                n,
                *a.get(k).ok_or_else(|| n.err("axes too short"))?,
                dims.len(),
            )?,
            None => k,
        };
        if ax >= dims.len() {
            return Err(n.err("more starts than axes"));
        }
        let step = steps.map_or(1, |s| s.get(k).copied().unwrap_or(1));
        if step == 0 {
            return Err(n.err("slice step 0"));
        }
        let d = dims[ax] as i64;
        let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (s, e) = if step > 0 {
            (clamp(fix(starts[k]), 0, d), clamp(fix(ends[k]), 0, d))
        } else {
            (
                clamp(fix(starts[k]), 0, d - 1),
                clamp(fix(ends[k]), -1, d - 1),
            )
        };
        let count = if step > 0 {
            if e > s {
                (e - s + step - 1) / step
            } else {
                0
            }
        } else if s > e {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        plan[ax] = (s, step, count as usize);
    }
    Ok(plan)
}

fn slice(n: &Node, ins: &[ConstIn]) -> Result<OnnxTensor> {
    let data = req(n, ins, 0)?;
    let starts = ints(n, req(n, ins, 1)?, "starts")?;
    let ends = ints(n, req(n, ins, 2)?, "ends")?;
    let axes = ins
        .get(3)
        .and_then(|t| t.as_deref())
        .map(|t| ints(n, t, "axes"))
        .transpose()?;
    let steps = ins
        .get(4)
        .and_then(|t| t.as_deref())
        .map(|t| ints(n, t, "steps"))
        .transpose()?;
    let dims = data.dims();
    let plan = slice_plan(n, dims, &starts, &ends, axes.as_deref(), steps.as_deref())?;
    let out_dims: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let st = strides(dims);
    let total = element_count(&n.name, &out_dims).map_err(|e| n.err(e))?;
    let mut idx = Vec::with_capacity(total);
    let mut pos = vec![0usize; dims.len()];
    for _ in 0..total {
        let mut flat = 0i64;
        for (d, &(s, step, _)) in plan.iter().enumerate() {
            flat += (s + pos[d] as i64 * step) * st[d] as i64;
        }
        idx.push(flat as usize);
        for d in (0..dims.len()).rev() {
            pos[d] += 1;
            if pos[d] < out_dims[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    OnnxTensor::new(&n.name, out_dims, data.dtype(), pick(data.data(), &idx)).map_err(|e| n.err(e))
}

fn range(n: &Node, ins: &[ConstIn]) -> Result<OnnxTensor> {
    let (s, l, d) = (req(n, ins, 0)?, req(n, ins, 1)?, req(n, ins, 2)?);
    let (a, b, c) = (s.as_f64()[0], l.as_f64()[0], d.as_f64()[0]);
    if c == 0.0 {
        return Err(n.err("Range delta 0"));
    }
    let count = ((b - a) / c).ceil().max(0.0);
    if count > super::tensor::MAX_ELEMENTS as f64 {
        return Err(n.err("Range too long"));
    }
    let count = count as usize;
    let data = match s.data() {
        Data::F(_) => Data::F((0..count).map(|i| (a + i as f64 * c) as f32).collect()),
        Data::I(_) => Data::I((0..count).map(|i| (a + i as f64 * c) as i64).collect()),
    };
    OnnxTensor::new(&n.name, vec![count], s.dtype(), data).map_err(|e| n.err(e))
}

/// Evaluates node `n` on constant inputs. `None` when the op has no
/// constant evaluator (the caller then refuses or imports it at run time).
pub fn eval(n: &Node, ins: &[ConstIn]) -> Option<Result<Vec<OnnxTensor>>> {
    let one = |r: Result<OnnxTensor>| Some(r.map(|t| vec![t]));
    match n.op() {
        "Identity" | "Dropout" => one(req(n, ins, 0).cloned()),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" if ins.len() == 2 => {
            one(req(n, ins, 0).and_then(|a| binary(n, a, req(n, ins, 1)?)))
        }
        "Equal" | "Less" | "Greater" => {
            one(req(n, ins, 0).and_then(|a| compare(n, a, req(n, ins, 1)?)))
        }
        "Neg" | "Sqrt" | "Reciprocal" | "Floor" | "Ceil" | "Relu" | "Abs" => {
            one(req(n, ins, 0).and_then(|a| unary(n, a)))
        }
        "Cast" => one(req(n, ins, 0).and_then(|a| cast(n, a))),
        "Shape" => one(req(n, ins, 0).and_then(|a| shape_of(n, a.dims()))),
        "Size" => one(req(n, ins, 0).and_then(|a| {
            OnnxTensor::from_i64(&n.name, vec![], vec![a.len() as i64]).map_err(|e| n.err(e))
        })),
        "Gather" => one(req(n, ins, 0).and_then(|a| gather(n, a, req(n, ins, 1)?))),
        "Concat" => {
            let parts: Result<Vec<&OnnxTensor>> = (0..ins.len()).map(|i| req(n, ins, i)).collect();
            one(parts.and_then(|p| concat(n, &p)))
        }
        "Slice" => one(slice(n, ins)),
        "Range" => one(range(n, ins)),
        "Transpose" => one(req(n, ins, 0).and_then(|a| transpose(n, a))),
        "Reshape" => one((|| {
            let a = req(n, ins, 0)?;
            let s = ints(n, req(n, ins, 1)?, "shape")?;
            let dims = reshape_dims(n, a.dims(), &s, n.int("allowzero", 0)? != 0)?;
            a.reshaped(&n.name, dims).map_err(|e| n.err(e))
        })()),
        "Flatten" => one((|| {
            let a = req(n, ins, 0)?;
            let r = a.dims().len();
            let axis = n.int("axis", 1)?;
            let axis = if axis < 0 { axis + r as i64 } else { axis };
            if axis < 0 || axis > r as i64 {
                return Err(n.err(format!("axis {axis} out of range for rank {r}")));
            }
            let (x, y) = a.dims().split_at(axis as usize);
            a.reshaped(&n.name, vec![x.iter().product(), y.iter().product()])
                .map_err(|e| n.err(e))
        })()),
        "Squeeze" => one((|| {
            let a = req(n, ins, 0)?;
            let axes = axes_of(n, ins.get(1).and_then(|t| t.as_deref()))?;
            let dims = squeeze_dims(n, a.dims(), axes.as_deref())?;
            a.reshaped(&n.name, dims).map_err(|e| n.err(e))
        })()),
        "Unsqueeze" => one((|| {
            let a = req(n, ins, 0)?;
            let axes = axes_of(n, ins.get(1).and_then(|t| t.as_deref()))?
                .ok_or_else(|| n.err("no axes"))?;
            let dims = unsqueeze_dims(n, a.dims(), &axes)?;
            a.reshaped(&n.name, dims).map_err(|e| n.err(e))
        })()),
        "ConstantOfShape" => one((|| {
            let dims = usize_dims(n, &ints(n, req(n, ins, 0)?, "shape")?, "shape")?;
            let count = element_count(&n.name, &dims).map_err(|e| n.err(e))?;
            let value = n.tensor("value")?;
            match value {
                None => OnnxTensor::from_f32(&n.name, dims, vec![0.0; count]),
                Some(v) => {
                    if v.len() != 1 {
                        return Err(n.err("`value` must hold one element"));
                    }
                    let data = match v.data() {
                        Data::F(x) => Data::F(vec![x[0]; count]),
                        Data::I(x) => Data::I(vec![x[0]; count]),
                    };
                    OnnxTensor::new(&n.name, dims, v.dtype(), data)
                }
            }
            .map_err(|e| n.err(e))
        })()),
        _ => None,
    }
}

/// `Shape` of a tensor of dims `dims`, honouring `start`/`end` (opset 15).
pub fn shape_of(n: &Node, dims: &[usize]) -> Result<OnnxTensor> {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let s = clamp(n.int("start", 0)?);
    let e = clamp(n.int("end", r)?);
    let v: Vec<i64> = dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
    OnnxTensor::from_i64(&n.name, vec![v.len()], v).map_err(|e| n.err(e))
}
