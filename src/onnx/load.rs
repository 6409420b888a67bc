//! From bytes to a checked [`ModelProto`], and from [`TensorProto`] to
//! [`OnnxTensor`].
//!
//! Nothing here panics or allocates on the say-so of the file: protobuf
//! lengths are checked against the bytes present by prost; tensor dims are
//! multiplied with overflow checks and capped at
//! [`super::tensor::MAX_ELEMENTS`] before any element is converted, and the
//! data field's length must equal the dims' product. External data is read
//! from files beside the model only: absolute paths and `..` components are
//! refused, the file's size is checked against `offset + length` before
//! reading.

use super::proto::{data_type, ModelProto, TensorProto};
use super::tensor::{element_count, is_float_type, Data, OnnxTensor};
use crate::error::{Error, Result};
use prost::Message;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// The oldest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 13;

/// The largest model file read into memory (2 GiB, protobuf's own limit).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

fn io_err(path: &str, message: impl Into<String>) -> Error {
    Error::Io {
        path: path.into(),
        message: message.into(),
    }
}

/// Reads a whole file, refusing more than `limit` bytes, with errors naming it.
pub fn read_file_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io_err(&name, e.to_string()))?;
    if !meta.is_file() {
        return Err(io_err(&name, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(io_err(
            &name,
            format!("{} bytes, more than the limit of {limit}", meta.len()),
        ));
    }
    std::fs::read(path).map_err(|e| io_err(&name, e.to_string()))
}

/// Decodes model bytes; `origin` names them in errors. Checks that there is
/// a graph and that the default domain's opset is at least [`MIN_OPSET`].
pub fn decode_model(bytes: &[u8], origin: &str) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| io_err(origin, format!("not a valid ONNX model (protobuf: {e})")))?;
    if model.graph.is_none() {
        return Err(io_err(
            origin,
            "not an ONNX model: no graph (the file decodes as protobuf but holds no ModelProto.graph)",
        ));
    }
    let opset = default_opset(&model).ok_or_else(|| {
        io_err(
            origin,
            "the model imports no opset of the default domain (ai.onnx)",
        )
    })?;
    if opset < MIN_OPSET {
        return Err(io_err(
            origin,
            format!(
                "opset {opset} is older than the oldest supported, {MIN_OPSET} (convert it with onnx.version_converter)"
            ),
        ));
    }
    Ok(model)
}

/// The version of the default domain (`""` or `ai.onnx`) the model imports.
pub fn default_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
}

/// Size in bytes of one element of a type that [`tensor_from_proto`] reads.
fn elem_size(t: i32) -> Option<usize> {
    Some(match t {
        data_type::FLOAT | data_type::INT32 | data_type::UINT32 => 4,
        data_type::DOUBLE | data_type::INT64 | data_type::UINT64 => 8,
        data_type::FLOAT16 | data_type::BFLOAT16 | data_type::INT16 | data_type::UINT16 => 2,
        data_type::INT8 | data_type::UINT8 | data_type::BOOL => 1,
        _ => return None,
    })
}

/// Converts little-endian bytes of type `t` (length already checked).
fn from_le_bytes(t: i32, b: &[u8]) -> Data {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N)
            .map(|c| c.try_into().expect("exact chunk"))
    }
    match t {
        data_type::FLOAT => Data::F(chunks::<4>(b).map(f32::from_le_bytes).collect()),
        data_type::DOUBLE => Data::F(
            chunks::<8>(b)
                .map(|c| f64::from_le_bytes(c) as f32)
                .collect(),
        ),
        data_type::FLOAT16 => Data::F(
            chunks::<2>(b)
                .map(|c| half::f16::from_le_bytes(c).to_f32())
                .collect(),
        ),
        data_type::BFLOAT16 => Data::F(
            chunks::<2>(b)
                .map(|c| half::bf16::from_le_bytes(c).to_f32())
                .collect(),
        ),
        data_type::INT64 => Data::I(chunks::<8>(b).map(i64::from_le_bytes).collect()),
        data_type::UINT64 => Data::I(
            chunks::<8>(b)
                .map(|c| u64::from_le_bytes(c) as i64)
                .collect(),
        ),
        data_type::INT32 => Data::I(
            chunks::<4>(b)
                .map(|c| i32::from_le_bytes(c) as i64)
                .collect(),
        ),
        data_type::UINT32 => Data::I(
            chunks::<4>(b)
                .map(|c| u32::from_le_bytes(c) as i64)
                .collect(),
        ),
        data_type::INT16 => Data::I(
            chunks::<2>(b)
                .map(|c| i16::from_le_bytes(c) as i64)
                .collect(),
        ),
        data_type::UINT16 => Data::I(
            chunks::<2>(b)
                .map(|c| u16::from_le_bytes(c) as i64)
                .collect(),
        ),
        data_type::INT8 => Data::I(b.iter().map(|&x| x as i8 as i64).collect()),
        _ => Data::I(b.iter().map(|&x| x as i64).collect()), // UINT8, BOOL
    }
}

/// Where a tensor's external data lives.
struct External {
    location: String,
    offset: u64,
    length: Option<u64>,
}

fn external_of(t: &TensorProto, what: &str) -> Result<External> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in &t.external_data {
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| {
                Error::Invalid(format!(
                    "{what}: external data `{}` = `{v}` is not a non-negative integer",
                    e.key
                ))
            })
        };
        match e.key.as_str() {
            "location" => location = Some(e.value.clone()),
            "offset" => offset = num(&e.value)?,
            "length" => length = Some(num(&e.value)?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| {
        Error::Invalid(format!(
            "{what}: data_location is EXTERNAL but no `location` is given"
        ))
    })?;
    Ok(External {
        location,
        offset,
        length,
    })
}

/// Reads `len` bytes of external data for tensor `what` from a file beside
/// the model (`dir`).
fn read_external(ext: &External, dir: Option<&Path>, what: &str, len: u64) -> Result<Vec<u8>> {
    let rel = Path::new(&ext.location);
    let label = format!("tensor `{what}`");
    let safe = !ext.location.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe {
        return Err(Error::Invalid(format!(
            "{label}: external data location `{}` is not a relative path inside the model's folder",
            ext.location
        )));
    }
    let dir = dir.ok_or_else(|| {
        Error::Invalid(format!(
            "{label}: external data `{}` but the model was not read from a file",
            ext.location
        ))
    })?;
    let path = dir.join(rel);
    let name = path.display().to_string();
    let mut f = std::fs::File::open(&path)
        .map_err(|e| io_err(&name, format!("external data of tensor `{what}`: {e}")))?;
    let size = f
        .metadata()
        .map_err(|e| io_err(&name, e.to_string()))?
        .len();
    if let Some(l) = ext.length {
        if l != len {
            return Err(io_err(
                &name,
                format!("tensor `{what}`: external length {l}, its dims and type need {len} bytes"),
            ));
        }
    }
    let end = ext.offset.saturating_add(len);
    if end > size {
        return Err(io_err(
            &name,
            format!(
                "tensor `{what}` needs bytes {}..{end}, the file has {size}",
                ext.offset
            ),
        ));
    }
    f.seek(SeekFrom::Start(ext.offset))
        .map_err(|e| io_err(&name, e.to_string()))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)
        .map_err(|e| io_err(&name, format!("tensor `{what}`: {e}")))?;
    Ok(buf)
}

/// Converts a [`TensorProto`] to an [`OnnxTensor`]. `dir` is the model's
/// folder, for external data (`None`: external data is an error). Errors
/// name the tensor (`what`).
pub fn tensor_from_proto(t: &TensorProto, dir: Option<&Path>, name: &str) -> Result<OnnxTensor> {
    let name = if name.is_empty() { "<unnamed>" } else { name };
    let label = format!("tensor `{name}`");
    let what = label.as_str();
    if t.segment.is_some() {
        return Err(Error::Invalid(format!(
            "{what}: segmented tensors are not supported"
        )));
    }
    let mut dims = Vec::with_capacity(t.dims.len().min(64));
    for &d in &t.dims {
        if d < 0 {
            return Err(Error::Invalid(format!(
                "{what}: negative dim {d} in {:?}",
                t.dims
            )));
        }
        dims.push(
            usize::try_from(d).map_err(|_| {
                Error::Invalid(format!("{what}: dim {d} does not fit this machine"))
            })?,
        );
    }
    let n = element_count(what, &dims)?;
    let dtype = t.data_type;
    let Some(size) = elem_size(dtype) else {
        return Err(Error::Invalid(format!(
            "{what}: element type {} is not supported",
            data_type::name(dtype)
        )));
    };
    let bytes_needed = n as u64 * size as u64;
    let data = if t.data_location == 1 {
        let ext = external_of(t, what)?;
        let raw = read_external(&ext, dir, name, bytes_needed)?;
        from_le_bytes(dtype, &raw)
    } else if !t.raw_data.is_empty() || n == 0 {
        if t.raw_data.len() as u64 != bytes_needed {
            return Err(Error::Invalid(format!(
                "{what}: raw_data has {} bytes, dims {dims:?} of {} need {bytes_needed}",
                t.raw_data.len(),
                data_type::name(dtype)
            )));
        }
        from_le_bytes(dtype, &t.raw_data)
    } else {
        let typed_len = match dtype {
            data_type::FLOAT => t.float_data.len(),
            data_type::DOUBLE => t.double_data.len(),
            data_type::INT64 => t.int64_data.len(),
            data_type::UINT32 | data_type::UINT64 => t.uint64_data.len(),
            _ => t.int32_data.len(),
        };
        if typed_len != n {
            return Err(Error::Invalid(format!(
                "{what}: {} values in the typed data field, dims {dims:?} need {n}",
                typed_len
            )));
        }
        match dtype {
            data_type::FLOAT => Data::F(t.float_data.clone()),
            data_type::DOUBLE => Data::F(t.double_data.iter().map(|&x| x as f32).collect()),
            data_type::FLOAT16 => Data::F(
                t.int32_data
                    .iter()
                    .map(|&x| half::f16::from_bits(x as u16).to_f32())
                    .collect(),
            ),
            data_type::BFLOAT16 => Data::F(
                t.int32_data
                    .iter()
                    .map(|&x| half::bf16::from_bits(x as u16).to_f32())
                    .collect(),
            ),
            data_type::INT64 => Data::I(t.int64_data.clone()),
            data_type::UINT32 | data_type::UINT64 => {
                Data::I(t.uint64_data.iter().map(|&x| x as i64).collect())
            }
            _ => Data::I(t.int32_data.iter().map(|&x| x as i64).collect()),
        }
    };
    debug_assert_eq!(is_float_type(dtype), matches!(data, Data::F(_)));
    OnnxTensor::new(what, dims, dtype, data)
}

/// Reads a serialized `TensorProto` file (the `input_0.pb` / `output_0.pb`
/// of ONNX's test data sets). External data is resolved beside the file.
pub fn read_tensor_file(path: impl AsRef<Path>) -> Result<OnnxTensor> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = read_file_limited(path, MAX_MODEL_BYTES)?;
    let t = TensorProto::decode(bytes.as_slice())
        .map_err(|e| io_err(&name, format!("not a TensorProto (protobuf: {e})")))?;
    let what = if t.name.is_empty() {
        name.clone()
    } else {
        t.name.clone()
    };
    tensor_from_proto(&t, path.parent(), &what).map_err(|e| match e {
        Error::Invalid(m) => io_err(&name, m),
        e => e,
    })
}
