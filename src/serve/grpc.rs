//! The gRPC side: `inference.GRPCInferenceService` (tonic), the same
//! model, batcher and errors as REST.
//!
//! `ModelInfer` takes its input from `raw_input_contents` (what
//! tritonclient sends) or from `contents.fp32_contents`, and answers in
//! `raw_output_contents` (what tritonclient reads). Message size limits
//! are `--max-body-bytes` both ways; a request over it gets
//! `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`; [`size_limit_status`]
//! rewrites it, as other gRPC servers answer).

use super::error::ServeError;
use super::proto::grpc_inference_service_server::GrpcInferenceService;
use super::proto::{
    model_infer_response, model_metadata_response, ModelInferRequest, ModelInferResponse,
    ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse,
    ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse,
    ServerReadyRequest, ServerReadyResponse,
};
use super::protocol::{check_input, f32_from_le, InferRequest};
use super::State;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The service, over the server's shared state.
pub struct Service(pub Arc<State>);

/// `InferRequest` from a gRPC request, checked against the model.
pub fn parse_grpc(state: &State, r: ModelInferRequest) -> Result<InferRequest, ServeError> {
    let spec = &state.spec;
    if r.inputs.len() != 1 {
        return Err(ServeError::bad_request(format!(
            "model `{}` takes one input, `{}`; the request has {}",
            spec.name,
            spec.input.name,
            r.inputs.len()
        )));
    }
    let inp = &r.inputs[0];
    let images = check_input(spec, &inp.name, &inp.datatype, &inp.shape)?;
    let count = images * spec.input.per_image();
    let data = match (r.raw_input_contents.len(), &inp.contents) {
        (0, None) => {
            return Err(ServeError::bad_request(format!(
                "input `{}` has no contents and the request no raw_input_contents",
                inp.name
            )))
        }
        (0, Some(c)) => {
            if c.fp32_contents.len() != count {
                return Err(ServeError::bad_request(format!(
                    "input `{}` of shape {:?} needs {count} values in fp32_contents; it has {}",
                    inp.name,
                    inp.shape,
                    c.fp32_contents.len()
                )));
            }
            c.fp32_contents.clone()
        }
        (1, None) => {
            let raw = &r.raw_input_contents[0];
            if raw.len() != count * 4 {
                return Err(ServeError::bad_request(format!(
                    "input `{}` of shape {:?} needs {} bytes of FP32 data; \
                     raw_input_contents[0] has {}",
                    inp.name,
                    inp.shape,
                    count * 4,
                    raw.len()
                )));
            }
            f32_from_le(raw)
        }
        (1, Some(_)) => {
            return Err(ServeError::bad_request(format!(
                "input `{}` has both contents and raw_input_contents; give one",
                inp.name
            )))
        }
        (n, _) => {
            return Err(ServeError::bad_request(format!(
                "{n} raw_input_contents for 1 input"
            )))
        }
    };
    for o in &r.outputs {
        if o.name != spec.output.name {
            return Err(ServeError::bad_request(format!(
                "unknown output `{}`: model `{}` has one output, `{}` {} {:?}",
                o.name,
                spec.name,
                spec.output.name,
                spec.output.datatype,
                spec.output.wire_shape()
            )));
        }
        if o.parameters.contains_key("classification") {
            return Err(ServeError::bad_request(format!(
                "output `{}`: the classification extension is not supported",
                o.name
            )));
        }
    }
    Ok(InferRequest {
        id: (!r.id.is_empty()).then_some(r.id),
        images,
        data,
        binary_output: true,
    })
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.0.lifecycle.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        r: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = r.into_inner();
        self.0.find_model(&r.name, Some(&r.version))?;
        Ok(Response::new(ModelReadyResponse {
            ready: self.0.lifecycle.is_ready(),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "resincept".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["binary_tensor_data".into()],
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = r.into_inner();
        self.0.find_model(&r.name, Some(&r.version))?;
        let spec = &self.0.spec;
        let t = |t: &super::TensorSpec| model_metadata_response::TensorMetadata {
            name: t.name.clone(),
            datatype: t.datatype.into(),
            shape: t.wire_shape(),
        };
        Ok(Response::new(ModelMetadataResponse {
            name: spec.name.clone(),
            versions: vec![spec.version.clone()],
            platform: spec.platform.into(),
            inputs: vec![t(&spec.input)],
            outputs: vec![t(&spec.output)],
        }))
    }

    async fn model_infer(
        &self,
        r: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let r = r.into_inner();
        let state = &self.0;
        state.find_model(&r.model_name, Some(&r.model_version))?;
        let (req, out) = state
            .infer(|| parse_grpc(state, r))
            .await
            .map_err(Status::from)?;
        let spec = &state.spec;
        let shape = std::iter::once(req.images as i64)
            .chain(spec.output.dims.iter().map(|&d| d as i64))
            .collect();
        let mut raw = Vec::with_capacity(out.len() * 4);
        for v in &out {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        Ok(Response::new(ModelInferResponse {
            model_name: spec.name.clone(),
            model_version: spec.version.clone(),
            id: req.id.unwrap_or_default(),
            parameters: Default::default(),
            outputs: vec![model_infer_response::InferOutputTensor {
                name: spec.output.name.clone(),
                datatype: spec.output.datatype.into(),
                shape,
                parameters: Default::default(),
                contents: None,
            }],
            raw_output_contents: vec![raw],
        }))
    }
}

/// Decodes a `grpc-message` header (percent-encoded, as gRPC sends it).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status a gRPC response should carry: tonic answers a message over
/// the decoding limit with `OUT_OF_RANGE`; the protocol (and other gRPC
/// servers) say `RESOURCE_EXHAUSTED`. Takes the response's `grpc-status`
/// and (percent-encoded) `grpc-message`; returns the new `(grpc-status,
/// grpc-message)` for such a response, `None` for any other.
pub fn size_limit_status(status: &str, message: &str, limit: usize) -> Option<(u8, String)> {
    let message = percent_decode(message);
    let out_of_range = (tonic::Code::OutOfRange as i32).to_string();
    if status != out_of_range || !message.contains("message length too large") {
        return None;
    }
    // tonic's message: "...: found N bytes, the limit is: M bytes".
    let found = message
        .split("found ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?");
    Some((
        tonic::Code::ResourceExhausted as u8,
        format!("request message of {found} bytes is over the limit of {limit} bytes (--max-body-bytes)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::proto::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
    use crate::serve::proto::InferTensorContents;
    use crate::serve::{BatchOptions, ModelSpec};
    use std::time::Duration;

    fn state() -> Arc<State> {
        let opts = BatchOptions {
            max_batch: 2,
            max_queue_delay: Duration::ZERO,
            max_queue_size: 4,
        };
        State::new(ModelSpec::image_classifier("net", 1, 2, 2), opts, 1 << 20)
    }

    fn request(
        shape: Vec<i64>,
        raw: Option<Vec<u8>>,
        typed: Option<Vec<f32>>,
    ) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "net".into(),
            id: "r".into(),
            inputs: vec![InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape,
                contents: typed.map(|v| InferTensorContents {
                    fp32_contents: v,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            raw_input_contents: raw.into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_contents() {
        let s = state();
        let values = [1.0f32, -2.0, 0.5];
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let r = parse_grpc(&s, request(vec![1, 3, 1, 1], Some(raw.clone()), None)).unwrap();
        assert_eq!(
            (r.images, r.data.as_slice(), r.id.as_deref()),
            (1, &values[..], Some("r"))
        );
        let r = parse_grpc(&s, request(vec![1, 3, 1, 1], None, Some(values.to_vec()))).unwrap();
        assert_eq!(r.data, values);

        let bad = [
            (
                request(vec![1, 3, 1, 1], Some(raw[..11].to_vec()), None),
                "needs 12 bytes",
            ),
            (
                request(vec![1, 3, 1, 1], None, Some(vec![1.0])),
                "needs 3 values",
            ),
            (request(vec![1, 3, 1, 1], None, None), "no contents"),
            (
                request(vec![1, 3, 1, 1], Some(raw.clone()), Some(values.to_vec())),
                "both",
            ),
            (
                request(vec![3, 1, 1], Some(raw.clone()), None),
                "batch dimension",
            ),
        ];
        for (req, needle) in bad {
            let e = parse_grpc(&s, req).unwrap_err();
            assert_eq!(e.grpc_code(), tonic::Code::InvalidArgument);
            assert!(e.message.contains(needle), "{needle}: {e}");
        }
        let mut req = request(vec![1, 3, 1, 1], Some(raw), None);
        req.outputs.push(InferRequestedOutputTensor {
            name: "probs".into(),
            ..Default::default()
        });
        assert!(parse_grpc(&s, req)
            .unwrap_err()
            .message
            .contains("unknown output `probs`"));
    }

    #[test]
    fn the_size_limit_error_becomes_resource_exhausted() {
        let (code, msg) = size_limit_status(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%202000%20bytes,\
             %20the%20limit%20is:%201000%20bytes",
            1000,
        )
        .unwrap();
        assert_eq!(code, 8);
        assert!(
            msg.contains("2000 bytes") && msg.contains("--max-body-bytes"),
            "{msg}"
        );
        assert_eq!(size_limit_status("11", "other", 1), None);
        assert_eq!(size_limit_status("3", "message length too large", 1), None);
    }
}
