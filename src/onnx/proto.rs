//! The subset of ONNX's protobuf schema that the importer reads, as
//! hand-written prost messages.
//!
//! Field numbers and wire types are those of the ONNX IR specification
//! (`onnx.proto`, IR version 10); the names follow it so that the spec can
//! be read beside this file. Fields the importer never reads (doc strings,
//! training info, functions, sparse tensors, subgraph attributes, …) are
//! left out: prost skips unknown fields, so files that carry them still
//! decode, and nested subgraphs are never parsed at all.
//!
//! Repeated numeric fields are declared packed; prost accepts both the
//! packed and the unpacked encoding of them, as protobuf requires (ONNX's
//! proto2 schema packs the tensor data fields but not `dims`).

// The message structs mirror the wire format; their docs say what each
// field means in ONNX.

/// A whole model file: metadata plus the main graph.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version of the file format.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Operator sets the model's nodes are drawn from, one per domain.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The tool that wrote the file (`pytorch`, `tf2onnx`, …).
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Its version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// Reverse-DNS model namespace.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// The model's own version number.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// Free text.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The main graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Named string metadata (preprocessing, labels, …).
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// One operator set import: a domain (empty or `ai.onnx` for the default
/// one) and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The domain; empty means `ai.onnx`.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The opset version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// A key/value pair (protobuf maps written as repeated entries).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A computation graph: nodes in topological order, constant tensors
/// (initializers), and the typed graph inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, in a topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors, addressed by name like any value.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Graph inputs (may include initializers, which then have defaults).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Types and shapes of intermediate values (optional hints).
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names; an empty name is an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names; an empty name is an unused optional output.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name (may be empty).
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator (`Conv`, `Relu`, …).
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// The operator's domain; empty means `ai.onnx`.
    #[prost(string, tag = "7")]
    pub domain: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// A named attribute: one of a float, int, string, tensor, or lists of them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Which of the value fields is meant ([`attribute_type`]).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// A float.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// An integer.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A byte string (UTF-8 text in practice).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// A tensor.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// A list of floats.
    #[prost(float, repeated, packed = "true", tag = "7")]
    pub floats: Vec<f32>,
    /// A list of integers.
    #[prost(int64, repeated, packed = "true", tag = "8")]
    pub ints: Vec<i64>,
    /// A list of byte strings.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    /// A list of tensors.
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    /// Set inside functions only: the attribute refers to a caller's.
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
}

/// Values of [`AttributeProto::type`].
pub mod attribute_type {
    /// Not set.
    pub const UNDEFINED: i32 = 0;
    /// [`super::AttributeProto::f`].
    pub const FLOAT: i32 = 1;
    /// [`super::AttributeProto::i`].
    pub const INT: i32 = 2;
    /// [`super::AttributeProto::s`].
    pub const STRING: i32 = 3;
    /// [`super::AttributeProto::t`].
    pub const TENSOR: i32 = 4;
    /// A subgraph (not read).
    pub const GRAPH: i32 = 5;
    /// [`super::AttributeProto::floats`].
    pub const FLOATS: i32 = 6;
    /// [`super::AttributeProto::ints`].
    pub const INTS: i32 = 7;
    /// [`super::AttributeProto::strings`].
    pub const STRINGS: i32 = 8;
    /// [`super::AttributeProto::tensors`].
    pub const TENSORS: i32 = 9;
    /// A list of subgraphs (not read).
    pub const GRAPHS: i32 = 10;
}

/// A tensor's contents: dims, element type, and the data in exactly one of
/// `raw_data` (little-endian bytes), a typed field, or an external file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Dimensions, outermost first.
    #[prost(int64, repeated, packed = "true", tag = "1")]
    pub dims: Vec<i64>,
    /// Element type ([`data_type`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// A chunk of a larger tensor (not supported when present).
    #[prost(message, optional, tag = "3")]
    pub segment: Option<Segment>,
    /// FLOAT and COMPLEX64 data.
    #[prost(float, repeated, packed = "true", tag = "4")]
    pub float_data: Vec<f32>,
    /// INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 data
    /// (the 16-bit floats as their bit patterns in the low half).
    #[prost(int32, repeated, packed = "true", tag = "5")]
    pub int32_data: Vec<i32>,
    /// STRING data.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// INT64 data.
    #[prost(int64, repeated, packed = "true", tag = "7")]
    pub int64_data: Vec<i64>,
    /// The tensor's name (initializers: the value it defines).
    #[prost(string, tag = "8")]
    pub name: String,
    /// The data as little-endian bytes of the element type.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// DOUBLE and COMPLEX128 data.
    #[prost(double, repeated, packed = "true", tag = "10")]
    pub double_data: Vec<f64>,
    /// UINT32 and UINT64 data.
    #[prost(uint64, repeated, packed = "true", tag = "11")]
    pub uint64_data: Vec<u64>,
    /// For external data: `location`, `offset`, `length`, `checksum`.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// 0: data in this message; 1: data in an external file.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// A segment of a tensor split over several messages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    /// First element index.
    #[prost(int64, tag = "1")]
    pub begin: i64,
    /// One past the last.
    #[prost(int64, tag = "2")]
    pub end: i64,
}

/// Values of [`TensorProto::data_type`] and of a tensor type's `elem_type`.
pub mod data_type {
    /// Not set.
    pub const UNDEFINED: i32 = 0;
    /// f32.
    pub const FLOAT: i32 = 1;
    /// u8.
    pub const UINT8: i32 = 2;
    /// i8.
    pub const INT8: i32 = 3;
    /// u16.
    pub const UINT16: i32 = 4;
    /// i16.
    pub const INT16: i32 = 5;
    /// i32.
    pub const INT32: i32 = 6;
    /// i64.
    pub const INT64: i32 = 7;
    /// Byte strings.
    pub const STRING: i32 = 8;
    /// bool (one byte).
    pub const BOOL: i32 = 9;
    /// IEEE half.
    pub const FLOAT16: i32 = 10;
    /// f64.
    pub const DOUBLE: i32 = 11;
    /// u32.
    pub const UINT32: i32 = 12;
    /// u64.
    pub const UINT64: i32 = 13;
    /// Two f32.
    pub const COMPLEX64: i32 = 14;
    /// Two f64.
    pub const COMPLEX128: i32 = 15;
    /// bfloat16.
    pub const BFLOAT16: i32 = 16;

    /// The type's name as ONNX spells it, for error messages.
    pub fn name(t: i32) -> String {
        let s = match t {
            UNDEFINED => "UNDEFINED",
            FLOAT => "FLOAT",
            UINT8 => "UINT8",
            INT8 => "INT8",
            UINT16 => "UINT16",
            INT16 => "INT16",
            INT32 => "INT32",
            INT64 => "INT64",
            STRING => "STRING",
            BOOL => "BOOL",
            FLOAT16 => "FLOAT16",
            DOUBLE => "DOUBLE",
            UINT32 => "UINT32",
            UINT64 => "UINT64",
            COMPLEX64 => "COMPLEX64",
            COMPLEX128 => "COMPLEX128",
            BFLOAT16 => "BFLOAT16",
            17..=20 => "FLOAT8",
            21 => "UINT4",
            22 => "INT4",
            23 => "FLOAT4E2M1",
            _ => return format!("data type {t}"),
        };
        s.into()
    }
}

/// A named, typed value (graph input, output or intermediate).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// A value's type. Only tensor types are read; the other kinds of the
/// spec's `oneof` (sequence, map, optional, sparse) decode as `None` here
/// and are refused by the importer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// A dense tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
    /// A sequence type (present only to be refused by name).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub sequence_type: Option<Vec<u8>>,
    /// A map type (present only to be refused by name).
    #[prost(bytes = "vec", optional, tag = "5")]
    pub map_type: Option<Vec<u8>>,
}

/// A dense tensor type: element type and (maybe partial) shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// Element type ([`data_type`]).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The shape; absent means unknown rank.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// A tensor shape: one entry per dimension.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// One dimension: a number, a symbol (`batch`, `N`), or unknown (neither).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A symbolic size.
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
    /// A semantic tag (`DATA_BATCH`, `DATA_CHANNEL`, …).
    #[prost(string, tag = "3")]
    pub denotation: String,
}
