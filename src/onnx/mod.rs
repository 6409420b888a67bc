//! ONNX import: a `.onnx` file → an IR [`Graph`] + [`Weights`] that the
//! existing passes, plan and executors take, with the model's own input
//! and output names, shapes and layouts ([`OnnxModelInfo`]).
//!
//! ```no_run
//! # fn main() -> resincept::Result<()> {
//! use resincept::onnx;
//! let (graph, weights, info) = onnx::load_with(
//!     "resnet50.onnx",
//!     &onnx::ImportOptions::new().input_shape(&[1, 3, 224, 224]),
//! )?;
//! let x = resincept::Tensor::zeros(info.inputs[0].shape.clone());
//! let logits = resincept::exec::cpu::run(&graph, &weights, &info.input_to_ir(&x)?)?;
//! let logits = info.output_from_ir(0, &logits[0])?;
//! # let _ = logits;
//! # Ok(())
//! # }
//! ```
//!
//! The pieces: [`proto`] (our prost schema of the messages read), [`load`](mod@load)
//! (bytes → checked model; tensors, external data), [`fold`] (constant
//! folding), the import walk ([`import`], which also does the
//! simplifications: see its doc) and one import function per operator
//! ([`ops`]). The graph is built for one input shape (symbolic dims are
//! resolved from [`ImportOptions::input_shape`]): compile it for that
//! shape. Untrusted files never panic the importer: every problem is one
//! [`crate::Error`] naming the file, tensor or node (with its op type and
//! the opset). Operators or attributes the IR cannot express yet are
//! refused the same way; `docs/ONNX.md` lists what is supported.

pub mod attrs;
pub mod fold;
pub mod import;
pub mod load;
pub mod ops;
pub mod proto;
pub mod tensor;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::tensor::Tensor;
use crate::weights::Weights;
use std::collections::BTreeMap;
use std::path::Path;

pub use load::{read_tensor_file, MIN_OPSET};
pub use tensor::OnnxTensor;

pub use crate::tensor::Layout;

/// One declared dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (`batch`, `N`, `DynamicDimension.0`; `?` if unnamed).
    Symbolic(String),
}

/// Formats declared dims as `[batch, 3, 224, 224]`.
pub fn fmt_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(x) => x.to_string(),
            Dim::Symbolic(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A graph input or output as the model declares it and as imported.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    /// Its name in the file.
    pub name: String,
    /// ONNX element type ([`proto::data_type`]).
    pub elem_type: i32,
    /// Declared dims (`None`: no shape declared).
    pub dims: Option<Vec<Dim>>,
    /// The concrete shape the graph was imported for.
    pub shape: Vec<usize>,
    /// Its layout relative to the IR value.
    pub layout: Layout,
    /// `Some`: an output known at import (Dropout's mask in inference:
    /// all true), returned as this constant, with its own element type;
    /// it is no output of the IR graph and costs no dispatch.
    pub constant: Option<OnnxTensor>,
}

/// Preprocessing hints read from the model's `metadata_props`: keys `mean`,
/// `std` (three numbers, comma- or space-separated, brackets allowed),
/// `resize`, `crop` (pixels), `interpolation` (text), `labels` (one per
/// line, or a JSON-style list of strings).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preprocess {
    /// Per-channel mean.
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation.
    pub std: Option<Vec<f32>>,
    /// Shorter side resized to this many pixels.
    pub resize: Option<usize>,
    /// Centre crop size.
    pub crop: Option<usize>,
    /// Interpolation name (`bilinear`, `bicubic`, …).
    pub interpolation: Option<String>,
    /// Class labels.
    pub labels: Option<Vec<String>>,
}

/// What the importer learned about a model besides its graph.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxModelInfo {
    /// The default-domain opset.
    pub opset: i64,
    /// The file format's IR version.
    pub ir_version: i64,
    /// `producer_name producer_version`.
    pub producer: String,
    /// The runtime input (one).
    pub inputs: Vec<IoInfo>,
    /// The outputs, in the graph's order. The IR graph's outputs are those
    /// without a [`IoInfo::constant`], in the same order
    /// ([`OnnxModelInfo::runtime_outputs`]).
    pub outputs: Vec<IoInfo>,
    /// All `metadata_props`.
    pub metadata: BTreeMap<String, String>,
    /// Preprocessing hints from the metadata.
    pub preprocess: Preprocess,
}

fn parse_floats(s: &str) -> Option<Vec<f32>> {
    let v: std::result::Result<Vec<f32>, _> = s
        .trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect();
    v.ok().filter(|v| !v.is_empty())
}

fn parse_labels(s: &str) -> Vec<String> {
    let t = s.trim();
    if t.starts_with('[') && t.ends_with(']') {
        t[1..t.len() - 1]
            .split(',')
            .map(|x| x.trim().trim_matches('"').to_string())
            .filter(|x| !x.is_empty())
            .collect()
    } else {
        t.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Preprocess {
    /// The hints in `metadata` (a model's `metadata_props`); a value that
    /// does not parse is left out (`None`), the raw text stays in the map.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| metadata.get(k).map(String::as_str);
        Preprocess {
            mean: get("mean").and_then(parse_floats),
            std: get("std").and_then(parse_floats),
            resize: get("resize").and_then(|s| s.trim().parse().ok()),
            crop: get("crop").and_then(|s| s.trim().parse().ok()),
            interpolation: get("interpolation").map(|s| s.trim().to_string()),
            labels: get("labels").map(parse_labels),
        }
    }
}

fn metadata_of(model: &proto::ModelProto) -> BTreeMap<String, String> {
    model
        .metadata_props
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

impl OnnxModelInfo {
    fn new(model: &proto::ModelProto, opset: i64, input: IoInfo, outputs: Vec<IoInfo>) -> Self {
        let metadata = metadata_of(model);
        let preprocess = Preprocess::from_metadata(&metadata);
        Self {
            opset,
            ir_version: model.ir_version,
            producer: format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
            inputs: vec![input],
            outputs,
            metadata,
            preprocess,
        }
    }

    /// The IR graph's input for the model's input `x` (its ONNX shape, in
    /// its layout): checked against the imported shape, permuted to NCHW
    /// for an NHWC model. Errors name the input, both shapes.
    pub fn input_to_ir(&self, x: &Tensor) -> Result<Tensor> {
        let io = &self.inputs[0];
        if x.shape != io.shape {
            return Err(Error::Shape {
                node: io.name.clone(),
                expected: format!("input of shape {:?}", io.shape),
                actual: format!("{:?}", x.shape),
            });
        }
        let ir = import::ir_shape(&io.shape, io.layout).expect("checked at import");
        let data = match io.layout {
            Layout::Nchw => x.data.clone(),
            Layout::Nhwc => crate::tensor::nhwc_to_nchw(&x.data, ir),
        };
        Tensor::new(ir.to_vec(), data)
    }

    /// [`OnnxModelInfo::input_to_ir`] for a tensor as read from a file: it
    /// must be FLOAT.
    pub fn onnx_input_to_ir(&self, x: &OnnxTensor) -> Result<Tensor> {
        let io = &self.inputs[0];
        if x.dtype() != proto::data_type::FLOAT {
            return Err(Error::Invalid(format!(
                "input `{}`: element type {}, the model takes FLOAT",
                io.name,
                proto::data_type::name(x.dtype())
            )));
        }
        self.input_to_ir(&x.to_tensor(&io.name)?)
    }

    /// The model's outputs the IR graph computes (those that are not
    /// constants), in order: output `i` of the IR graph is the `i`-th.
    pub fn runtime_outputs(&self) -> impl Iterator<Item = &IoInfo> {
        self.outputs.iter().filter(|o| o.constant.is_none())
    }

    /// Output `i` of the IR graph (as an executor returns it; the `i`-th of
    /// [`OnnxModelInfo::runtime_outputs`]) in the model's own shape and
    /// layout.
    pub fn output_from_ir(&self, i: usize, y: &Tensor) -> Result<Tensor> {
        let io = self.runtime_outputs().nth(i).ok_or_else(|| {
            Error::Invalid(format!(
                "output {i}: the IR graph has {}",
                self.runtime_outputs().count()
            ))
        })?;
        let ir = import::ir_shape(&io.shape, io.layout).expect("checked at import");
        if y.len() != ir.iter().product::<usize>() {
            return Err(Error::Shape {
                node: io.name.clone(),
                expected: format!("output of IR shape {ir:?}"),
                actual: format!("{:?}", y.shape),
            });
        }
        let data = match io.layout {
            Layout::Nchw => y.data.clone(),
            Layout::Nhwc => crate::tensor::nchw_to_nhwc(&y.data, ir),
        };
        Tensor::new(io.shape.clone(), data)
    }

    /// Every output of the model, in its order, from the IR graph's
    /// outputs `ys` (as an executor returns them): each runtime output in
    /// its own shape and layout (FLOAT), each constant one as imported
    /// (Dropout's mask: BOOL). Errors when `ys` is not one tensor per
    /// runtime output.
    pub fn outputs_from_ir(&self, ys: &[Tensor]) -> Result<Vec<OnnxTensor>> {
        let want = self.runtime_outputs().count();
        if ys.len() != want {
            return Err(Error::Invalid(format!(
                "{} IR outputs given, the graph has {want}",
                ys.len()
            )));
        }
        let mut k = 0;
        self.outputs
            .iter()
            .map(|io| match &io.constant {
                Some(c) => Ok(c.clone()),
                None => {
                    let t = self.output_from_ir(k, &ys[k])?;
                    k += 1;
                    OnnxTensor::from_f32(&io.name, t.shape, t.data)
                }
            })
            .collect()
    }
}

/// How to import: the concrete input shape, and graph inputs to bind to
/// constants (ONNX's node tests pass weights as inputs).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The input shape; required when the model's has symbolic dims, and
    /// must agree with its fixed dims.
    pub input_shape: Option<Vec<usize>>,
    /// Graph inputs taken as these constants.
    pub constants: Vec<(String, OnnxTensor)>,
}

impl ImportOptions {
    /// No input shape, no bound constants.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the input shape.
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// Binds graph input `name` to a constant.
    pub fn bind(mut self, name: &str, t: OnnxTensor) -> Self {
        self.constants.push((name.to_string(), t));
        self
    }
}

/// Imports the model at `path` for its declared input shape (symbolic
/// dims are an error naming them: use [`load_with`]).
pub fn load(path: impl AsRef<Path>) -> Result<(Graph, Weights, OnnxModelInfo)> {
    load_with(path, &ImportOptions::new())
}

/// Imports the model at `path` with `opts`. External data is read from
/// files beside it.
pub fn load_with(
    path: impl AsRef<Path>,
    opts: &ImportOptions,
) -> Result<(Graph, Weights, OnnxModelInfo)> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let bytes = load::read_file_limited(path, load::MAX_MODEL_BYTES)?;
    let model = load::decode_model(&bytes, &origin)?;
    import::import_model(&model, path.parent(), opts, &origin)
}

/// Evaluates the model at `path` with every graph input bound to a
/// constant in `opts`: the importer's constant folding, end to end. Errors
/// when an input is unbound or a node cannot be folded.
pub fn evaluate_with(path: impl AsRef<Path>, opts: &ImportOptions) -> Result<Vec<OnnxTensor>> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let bytes = load::read_file_limited(path, load::MAX_MODEL_BYTES)?;
    let model = load::decode_model(&bytes, &origin)?;
    import::evaluate_model(&model, path.parent(), opts, &origin)
}

/// The graph inputs of the model at `path` that are not initializers, in
/// order, as declared (shape and layout not yet known: empty and NCHW).
pub fn graph_inputs(path: impl AsRef<Path>) -> Result<Vec<IoInfo>> {
    Ok(declared(path)?.inputs)
}

/// What a model file declares, read without importing it: what a caller
/// needs to choose the input shape before [`load_with`] (the batch and
/// image size for symbolic dims, a classifier's preprocessing).
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The graph inputs that are not initializers, in order, as declared
    /// (shape and layout not yet known: empty and NCHW).
    pub inputs: Vec<IoInfo>,
    /// All `metadata_props`.
    pub metadata: BTreeMap<String, String>,
    /// Preprocessing hints read from them ([`Preprocess::from_metadata`]).
    pub preprocess: Preprocess,
}

/// Reads what the model at `path` declares (see [`Declared`]): the file is
/// read and decoded with the same checks as [`load_with`], nothing is
/// imported.
pub fn declared(path: impl AsRef<Path>) -> Result<Declared> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let bytes = load::read_file_limited(path, load::MAX_MODEL_BYTES)?;
    let model = load::decode_model(&bytes, &origin)?;
    let g = model.graph.as_ref().expect("checked by decode_model");
    let inputs = g
        .input
        .iter()
        .filter(|i| !g.initializer.iter().any(|t| t.name == i.name))
        .map(|i| import::declared_io(i, &origin))
        .collect::<Result<Vec<_>>>()?;
    let metadata = metadata_of(&model);
    let preprocess = Preprocess::from_metadata(&metadata);
    Ok(Declared {
        inputs,
        metadata,
        preprocess,
    })
}

/// Imports a model from bytes (`<memory>` in errors; external data is an
/// error).
pub fn from_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<(Graph, Weights, OnnxModelInfo)> {
    let model = load::decode_model(bytes, "<memory>")?;
    import::import_model(&model, None, opts, "<memory>")
}
