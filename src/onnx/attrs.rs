//! One ONNX node as the op importers see it: its unique name, typed
//! attribute readers and error constructors that name the node, its op
//! type and the model's opset.

use super::proto::{attribute_type as at, AttributeProto, NodeProto};
use super::tensor::OnnxTensor;
use crate::error::{Error, Result};

/// The largest kernel size, stride, dilation or pad accepted (2²⁴): far
/// beyond any real model, small enough that window arithmetic cannot
/// overflow.
pub const MAX_SIZE_ATTR: i64 = 1 << 24;

/// A node being imported.
pub struct Node<'a> {
    /// The node as stored in the file.
    pub proto: &'a NodeProto,
    /// Its unique name: the file's, or `{op_type}_{index}` when the file's
    /// is empty, with a `_N` suffix where two clash. IR nodes made for it
    /// are named from it.
    pub name: String,
    /// The model's default-domain opset.
    pub opset: i64,
    /// The folder of the model file, for tensor attributes with external data.
    pub dir: Option<&'a std::path::Path>,
}

impl Node<'_> {
    /// The op type (`Conv`).
    pub fn op(&self) -> &str {
        &self.proto.op_type
    }

    /// An [`Error::Graph`] naming this node, prefixed with its op type.
    pub fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::Graph {
            node: self.name.clone(),
            message: format!("{} (opset {}): {message}", self.op(), self.opset),
        }
    }

    /// The error for something the IR cannot express yet (phase 2 of the
    /// ONNX work): names the node, op type, opset and the missing feature.
    pub fn unsupported(&self, what: impl std::fmt::Display) -> Error {
        self.err(format!("not supported yet: {what}"))
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    fn check_type(&self, a: &AttributeProto, want: i32, kind: &str) -> Result<()> {
        if !a.ref_attr_name.is_empty() {
            return Err(self.err(format!(
                "attribute `{}` refers to a function attribute",
                a.name
            )));
        }
        // Type 0 (unset) is accepted: some old writers leave it out.
        if a.r#type != want && a.r#type != at::UNDEFINED {
            return Err(self.err(format!(
                "attribute `{}` should be {kind}, its type is {}",
                a.name, a.r#type
            )));
        }
        Ok(())
    }

    /// True when the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// An integer attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, at::INT, "an int")?;
                Ok(a.i)
            }
        }
    }

    /// A float attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, at::FLOAT, "a float")?;
                Ok(a.f)
            }
        }
    }

    /// A string attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.attr(name) {
            None => Ok(default.into()),
            Some(a) => {
                self.check_type(a, at::STRING, "a string")?;
                String::from_utf8(a.s.clone())
                    .map_err(|_| self.err(format!("attribute `{name}` is not UTF-8")))
            }
        }
    }

    /// An integer list attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, at::INTS, "a list of ints")?;
                Ok(Some(a.ints.clone()))
            }
        }
    }

    /// A float list attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, at::FLOATS, "a list of floats")?;
                Ok(Some(a.floats.clone()))
            }
        }
    }

    /// A tensor attribute, if present, converted (errors name the node).
    pub fn tensor(&self, name: &str) -> Result<Option<OnnxTensor>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, at::TENSOR, "a tensor")?;
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.err(format!("attribute `{name}` holds no tensor")))?;
                let what = format!("{}.{name}", self.name);
                super::load::tensor_from_proto(t, self.dir, &what)
                    .map(Some)
                    .map_err(|e| self.err(e))
            }
        }
    }

    /// A list attribute of non-negative sizes (kernel, strides, dilations),
    /// of exactly `len` entries; `default` when absent.
    pub fn sizes(&self, name: &str, len: usize, default: usize) -> Result<Vec<usize>> {
        match self.ints(name)? {
            None => Ok(vec![default; len]),
            Some(v) => {
                if v.len() != len {
                    return Err(self.err(format!(
                        "attribute `{name}` has {} entries, expected {len}",
                        v.len()
                    )));
                }
                v.iter()
                    .map(|&x| {
                        if !(0..=MAX_SIZE_ATTR).contains(&x) {
                            return Err(self.err(format!(
                                "attribute `{name}` = {v:?}: entries must be in 0..={MAX_SIZE_ATTR}"
                            )));
                        }
                        Ok(x as usize)
                    })
                    .collect()
            }
        }
    }

    /// The name of input `i`, or `None` when absent or empty (omitted).
    pub fn input_name(&self, i: usize) -> Option<&str> {
        self.proto
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The number of outputs the node declares and that something reads
    /// (trailing empty names do not count).
    pub fn output_used(&self, i: usize) -> bool {
        self.proto.output.get(i).is_some_and(|s| !s.is_empty())
    }
}
