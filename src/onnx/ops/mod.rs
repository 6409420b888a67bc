//! One import function per ONNX operator, registered by name.
//!
//! Each takes the [`Importer`] and the [`Node`] and returns the node's
//! output values (constants or runtime values of the IR graph). Nodes whose
//! inputs are all constants never get here: [`super::fold`] evaluates them.
//! Anything an importer cannot express in the IR yet is refused with
//! [`Node::unsupported`], which names the node, its op type, the opset and
//! the missing feature.

mod arith;
mod conv;
mod dense;
mod layout;

use super::attrs::Node;
use super::import::{DynVal, Importer, Val};
use super::tensor::OnnxTensor;
use crate::error::Result;

/// An operator's import function.
pub type ImportFn = fn(&mut Importer, &Node) -> Result<Vec<Val>>;

/// The operators with an import function (besides `Constant`, which the
/// walk handles itself, and the constant-only ones of [`super::fold`]).
pub const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Shape",
    "Softmax",
    "Squeeze",
    "Sub",
    "Sum",
    "Transpose",
    "Unsqueeze",
];

/// The import function of `op`, if there is one.
pub fn lookup(op: &str) -> Option<ImportFn> {
    Some(match op {
        "Add" | "Sub" | "Mul" | "Div" => arith::binary,
        "Sum" => arith::sum,
        "Relu" => arith::relu,
        "Clip" => arith::clip,
        "Conv" => conv::conv,
        "MaxPool" | "AveragePool" => conv::pool,
        "GlobalAveragePool" => conv::global_avg_pool,
        "ReduceMean" => conv::reduce_mean,
        "BatchNormalization" => conv::batchnorm,
        "Gemm" => dense::gemm,
        "MatMul" => dense::matmul,
        "Softmax" => dense::softmax,
        "Flatten" => layout::flatten,
        "Reshape" => layout::reshape,
        "Squeeze" | "Unsqueeze" => layout::squeeze,
        "Transpose" => layout::transpose,
        "Concat" => layout::concat,
        "Pad" => layout::pad,
        "Identity" | "Dropout" => layout::identity,
        "Shape" => layout::shape,
        "Cast" => layout::cast,
        _ => return None,
    })
}

/// The IR channel axis of a runtime value's ONNX shape: 1 for NCHW-like
/// values of rank ≥ 2, 3 for NHWC; `None` for rank 1.
fn channel_axis(d: &DynVal) -> Option<usize> {
    match d.layout {
        super::Layout::Nhwc => Some(3),
        super::Layout::Nchw if d.shape.len() >= 2 => Some(1),
        super::Layout::Nchw => None,
    }
}

/// The per-channel values (one per IR channel, `channels` of them) of a
/// constant that broadcasts against runtime value `d` along its channel
/// axis only, or is a scalar; `None` when it broadcasts otherwise (or would
/// enlarge `d`).
fn per_channel(d: &DynVal, c: &OnnxTensor, channels: usize) -> Option<Vec<f64>> {
    let r = d.shape.len();
    let cd = c.dims();
    if cd.len() > r {
        return None;
    }
    let ca = channel_axis(d);
    let mut along_channel = false;
    for (k, &x) in cd.iter().enumerate() {
        let axis = r - cd.len() + k;
        if x == 1 {
            continue;
        }
        if Some(axis) == ca && x == d.shape[axis] && x == channels {
            along_channel = true;
        } else {
            return None;
        }
    }
    let v = c.as_f64();
    if along_channel {
        Some(v)
    } else {
        Some(vec![*v.first()?; channels])
    }
}
