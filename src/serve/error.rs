//! The server's error: what went wrong, in words, and its class, which
//! fixes the HTTP status and the gRPC code (the ones Triton and KServe use).

use std::fmt;

/// The class of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed request, wrong datatype, wrong shape, truncated binary
    /// data: HTTP 400, gRPC `INVALID_ARGUMENT`.
    BadRequest,
    /// Unknown model, version or route: HTTP 404, gRPC `NOT_FOUND`.
    NotFound,
    /// A body over `--max-body-bytes`: HTTP 413, gRPC `RESOURCE_EXHAUSTED`.
    TooLarge,
    /// Not ready yet, shutting down, or the queue is full: HTTP 503 (with
    /// `Retry-After` when overloaded), gRPC `UNAVAILABLE`.
    Unavailable,
    /// The queue is full: like [`ErrorKind::Unavailable`], with `Retry-After`.
    Overloaded,
    /// The engine failed: HTTP 500, gRPC `INTERNAL`.
    Internal,
}

/// A failed request: its class and a message naming what was wrong and
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeError {
    /// The class.
    pub kind: ErrorKind,
    /// What was wrong, in one line.
    pub message: String,
}

impl ServeError {
    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// A 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// An error of class `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServeError {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status code.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unavailable | ErrorKind::Overloaded => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The gRPC status code.
    pub fn grpc_code(&self) -> tonic::Code {
        match self.kind {
            ErrorKind::BadRequest => tonic::Code::InvalidArgument,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::TooLarge => tonic::Code::ResourceExhausted,
            ErrorKind::Unavailable | ErrorKind::Overloaded => tonic::Code::Unavailable,
            ErrorKind::Internal => tonic::Code::Internal,
        }
    }

    /// The JSON body: `{"error": "…"}`.
    pub fn json_body(&self) -> String {
        serde_json::json!({ "error": self.message }).to_string()
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServeError {}

impl From<ServeError> for tonic::Status {
    fn from(e: ServeError) -> Self {
        tonic::Status::new(e.grpc_code(), e.message)
    }
}
