//! The library's error type.
//!
//! Every variant names the thing that went wrong: the node (by its PyTorch
//! `state_dict` key prefix), the tensor key, the shapes involved, or the
//! device limit that was exceeded and its value. The library never panics on
//! bad user input; it returns one of these.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in resincept.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No GPU adapter could be found (or none matched the requested backend/name).
    NoAdapter(String),
    /// The adapter refused to create a device.
    Device(String),
    /// A WGSL shader failed to compile or a pipeline failed validation.
    Shader {
        /// The shader family (file name in `shaders/`).
        shader: String,
        /// The backend's message.
        message: String,
    },
    /// A GPU operation failed at run time (out of memory, lost device, validation).
    Gpu(String),
    /// Two shapes that had to agree did not.
    Shape {
        /// The node (PyTorch key prefix) whose shapes disagree.
        node: String,
        /// What was expected, in words.
        expected: String,
        /// What was found.
        actual: String,
    },
    /// A graph is malformed (cycle, unknown value, duplicate name, zero-sized dim).
    Graph {
        /// The node at fault.
        node: String,
        /// What is wrong with it.
        message: String,
    },
    /// A device limit would be exceeded.
    Limit {
        /// The node or tensor that needs more than the limit allows.
        node: String,
        /// The wgpu limit's name, e.g. `max_storage_buffer_binding_size`.
        limit: &'static str,
        /// The value needed.
        needed: u64,
        /// The adapter's value of the limit.
        available: u64,
    },
    /// A weight is missing, unexpected, of the wrong shape or dtype.
    Weights {
        /// The `state_dict` key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file failed, or its contents are malformed.
    Io {
        /// The file's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An argument is invalid (unknown model name, bad parameter).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Device(m) => write!(f, "device request failed: {m}"),
            Error::Shader { shader, message } => write!(f, "shader `{shader}`: {message}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Shape {
                node,
                expected,
                actual,
            } => write!(f, "node `{node}`: expected {expected}, got {actual}"),
            Error::Graph { node, message } => write!(f, "node `{node}`: {message}"),
            // A host limit (`tensor::check_host_bytes`): `node` says what
            // the bytes are for; the limit is the machine's memory.
            Error::Limit {
                node,
                limit,
                needed,
                available,
            } if limit.starts_with("host") => write!(
                f,
                "{node}: needs {needed} bytes, more than the {limit} of {available} bytes"
            ),
            Error::Limit {
                node,
                limit,
                needed,
                available,
            } => write!(
                f,
                "node `{node}`: needs {needed} for device limit `{limit}`, adapter allows {available}"
            ),
            Error::Weights { key, message } => write!(f, "weight `{key}`: {message}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}
