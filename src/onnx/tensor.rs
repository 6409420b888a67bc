//! Constant tensors of an ONNX file: initializers, `Constant` nodes, test
//! data (`input_0.pb`) and the results of constant folding.
//!
//! Floating-point types (FLOAT, DOUBLE, FLOAT16, BFLOAT16) are held as f32,
//! integer types and BOOL as i64; the ONNX element type is kept beside the
//! data, so that `Cast` and error messages know what the file said. Every
//! constructor checks that the data length equals the product of the dims,
//! and that the product fits [`MAX_ELEMENTS`] before anything is allocated.

use super::proto::data_type;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The most elements one constant tensor may have (2²⁸, 1 GiB of f32; the largest weight of a VGG is 103M):
/// a dims list asking for more is refused before any allocation.
pub const MAX_ELEMENTS: u64 = 1 << 28;

/// Element storage of a [`OnnxTensor`].
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// FLOAT, DOUBLE, FLOAT16, BFLOAT16 (converted to f32).
    F(Vec<f32>),
    /// Integer types and BOOL (widened to i64).
    I(Vec<i64>),
}

/// A constant tensor: dims, ONNX element type, and data in row-major order.
///
/// Invariant: the data length is the product of `dims` (1 for a scalar).
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxTensor {
    dims: Vec<usize>,
    dtype: i32,
    data: Data,
}

/// The number of elements of `dims`, or an error naming `what` when it
/// overflows or exceeds [`MAX_ELEMENTS`].
pub fn element_count(what: &str, dims: &[usize]) -> Result<usize> {
    let mut n: u64 = 1;
    for &d in dims {
        n = n
            .checked_mul(d as u64)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{what}: dims {dims:?} hold more than {MAX_ELEMENTS} elements"
                ))
            })?;
    }
    Ok(n as usize)
}

/// True for the ONNX element types held as [`Data::F`].
pub fn is_float_type(t: i32) -> bool {
    matches!(
        t,
        data_type::FLOAT | data_type::DOUBLE | data_type::FLOAT16 | data_type::BFLOAT16
    )
}

/// True for the ONNX element types held as [`Data::I`].
pub fn is_int_type(t: i32) -> bool {
    matches!(
        t,
        data_type::INT8
            | data_type::INT16
            | data_type::INT32
            | data_type::INT64
            | data_type::UINT8
            | data_type::UINT16
            | data_type::UINT32
            | data_type::UINT64
            | data_type::BOOL
    )
}

impl OnnxTensor {
    /// A tensor of ONNX type `dtype` from its dims and data; errors (naming
    /// `what`) when the length disagrees with the dims or the storage kind
    /// with the type.
    pub fn new(what: &str, dims: Vec<usize>, dtype: i32, data: Data) -> Result<Self> {
        let n = element_count(what, &dims)?;
        let (len, kind_ok) = match &data {
            Data::F(v) => (v.len(), is_float_type(dtype)),
            Data::I(v) => (v.len(), is_int_type(dtype)),
        };
        if !kind_ok {
            return Err(Error::Invalid(format!(
                "{what}: element type {} does not match its data",
                data_type::name(dtype)
            )));
        }
        if len != n {
            return Err(Error::Invalid(format!(
                "{what}: dims {dims:?} need {n} elements, the data has {len}"
            )));
        }
        Ok(Self { dims, dtype, data })
    }

    /// An f32 tensor.
    pub fn from_f32(what: &str, dims: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        Self::new(what, dims, data_type::FLOAT, Data::F(data))
    }

    /// An i64 tensor.
    pub fn from_i64(what: &str, dims: Vec<usize>, data: Vec<i64>) -> Result<Self> {
        Self::new(what, dims, data_type::INT64, Data::I(data))
    }

    /// The tensor as safetensors stores it, in its own element type:
    /// FLOAT, FLOAT16 and BFLOAT16 exactly; DOUBLE as F64 of the f32 it
    /// was read as; integers and BOOL (one byte, 0 or 1) in their width.
    pub fn to_raw(&self) -> crate::weights::RawTensor {
        use safetensors::Dtype;
        let (dtype, bytes): (Dtype, Vec<u8>) = match &self.data {
            Data::F(v) => match self.dtype {
                data_type::FLOAT16 => (
                    Dtype::F16,
                    v.iter()
                        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                        .collect(),
                ),
                data_type::BFLOAT16 => (
                    Dtype::BF16,
                    v.iter()
                        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                        .collect(),
                ),
                data_type::DOUBLE => (
                    Dtype::F64,
                    v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
                ),
                _ => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            },
            Data::I(v) => {
                // Each value fits its type: the loader read it from that type.
                let w = |f: fn(i64) -> Vec<u8>| v.iter().flat_map(|&x| f(x)).collect();
                match self.dtype {
                    data_type::BOOL => (Dtype::BOOL, w(|x| vec![u8::from(x != 0)])),
                    data_type::INT8 => (Dtype::I8, w(|x| (x as i8).to_le_bytes().to_vec())),
                    data_type::UINT8 => (Dtype::U8, w(|x| (x as u8).to_le_bytes().to_vec())),
                    data_type::INT16 => (Dtype::I16, w(|x| (x as i16).to_le_bytes().to_vec())),
                    data_type::UINT16 => (Dtype::U16, w(|x| (x as u16).to_le_bytes().to_vec())),
                    data_type::INT32 => (Dtype::I32, w(|x| (x as i32).to_le_bytes().to_vec())),
                    data_type::UINT32 => (Dtype::U32, w(|x| (x as u32).to_le_bytes().to_vec())),
                    data_type::UINT64 => (Dtype::U64, w(|x| (x as u64).to_le_bytes().to_vec())),
                    _ => (Dtype::I64, w(|x| x.to_le_bytes().to_vec())),
                }
            }
        };
        crate::weights::RawTensor {
            dtype,
            shape: self.dims.clone(),
            bytes,
        }
    }

    /// The dims, outermost first (empty for a scalar).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The ONNX element type ([`super::proto::data_type`]).
    pub fn dtype(&self) -> i32 {
        self.dtype
    }

    /// The data.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// True when the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f64 (integers converted).
    pub fn as_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::F(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The values as i64; errors naming `what` for a float tensor.
    pub fn as_i64(&self, what: &str) -> Result<&[i64]> {
        match &self.data {
            Data::I(v) => Ok(v),
            Data::F(_) => Err(Error::Invalid(format!(
                "{what}: expected an integer tensor, got {}",
                data_type::name(self.dtype)
            ))),
        }
    }

    /// The values as f32; errors naming `what` for an integer tensor.
    pub fn as_f32(&self, what: &str) -> Result<&[f32]> {
        match &self.data {
            Data::F(v) => Ok(v),
            Data::I(_) => Err(Error::Invalid(format!(
                "{what}: expected a float tensor, got {}",
                data_type::name(self.dtype)
            ))),
        }
    }

    /// The tensor as an f32 [`Tensor`] of the same dims (a scalar becomes
    /// shape `[1]`); errors naming `what` unless it is a FLOAT tensor.
    pub fn to_tensor(&self, what: &str) -> Result<Tensor> {
        if self.dtype != data_type::FLOAT {
            return Err(Error::Invalid(format!(
                "{what}: element type {}, expected FLOAT",
                data_type::name(self.dtype)
            )));
        }
        let data = self.as_f32(what)?.to_vec();
        let shape = if self.dims.is_empty() {
            vec![1]
        } else {
            self.dims.clone()
        };
        Tensor::new(shape, data)
    }

    /// The same data under new dims of the same element count.
    pub fn reshaped(&self, what: &str, dims: Vec<usize>) -> Result<Self> {
        Self::new(what, dims, self.dtype, self.data.clone())
    }
}
