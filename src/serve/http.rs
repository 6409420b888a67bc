//! The HTTP/REST side (axum): health, metadata, inference and metrics.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v2/health/live` | 200 `{"live": true}` |
//! | `GET /v2/health/ready` | 200 `{"ready": true}`, or 503 `{"ready": false}` while loading or draining |
//! | `GET /v2` | server metadata, extensions `["binary_tensor_data"]` |
//! | `GET /v2/models/{m}[/versions/{v}]` | model metadata |
//! | `GET /v2/models/{m}[/versions/{v}]/ready` | 200 / 503 `{"name": m, "ready": …}` |
//! | `POST /v2/models/{m}[/versions/{v}]/infer` | inference (JSON or binary) |
//! | `GET /metrics` | Prometheus text |
//!
//! Errors are `{"error": "…"}` with the status of [`ServeError`]; a full
//! queue adds `Retry-After: 1`. Bodies are read up to `--max-body-bytes`
//! (a larger `Content-Length` is refused before reading). No
//! `Content-Type` is required (tritonclient sends none).

use super::error::{ErrorKind, ServeError};
use super::protocol;
use super::State;
use axum::body::Body;
use axum::extract::{Path, State as Shared};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;

type AppState = Shared<Arc<State>>;

/// Serves `router(state)` on `listener` until `stop` resolves, then lets
/// open requests finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())
}

/// The routes.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/metrics", get(metrics))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer_v))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A JSON response.
fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `{"error": …}` with the error's status (and `Retry-After` when overloaded).
pub fn error_response(e: &ServeError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json(status, e.json_body());
    if e.kind == ErrorKind::Overloaded {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error_response(&ServeError::not_found(format!(
        "no route `{}`; the v2 protocol's routes are under /v2 (health/live, health/ready, \
         models/NAME, models/NAME/ready, models/NAME/infer) and /metrics",
        uri.path()
    )))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        ServeError::bad_request(format!(
            "{method} is not allowed on `{}` (infer takes POST, the rest GET)",
            uri.path()
        ))
        .json_body(),
    );
    r.headers_mut().remove(header::ALLOW);
    r
}

async fn live() -> Response {
    json(StatusCode::OK, r#"{"live":true}"#.into())
}

async fn ready(Shared(s): AppState) -> Response {
    if s.lifecycle.is_ready() {
        json(StatusCode::OK, r#"{"ready":true}"#.into())
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"ready":false}"#.into())
    }
}

async fn server_metadata() -> Response {
    json(StatusCode::OK, protocol::server_metadata().to_string())
}

async fn metrics(Shared(s): AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        s.metrics
            .render(&s.spec.name, &s.spec.version, s.lifecycle.in_flight()),
    )
        .into_response()
}

fn model_metadata_for(s: &State, model: &str, version: Option<&str>) -> Response {
    match s.find_model(model, version) {
        Ok(()) => json(
            StatusCode::OK,
            protocol::model_metadata(&s.spec).to_string(),
        ),
        Err(e) => error_response(&e),
    }
}

async fn model_metadata(Shared(s): AppState, Path(model): Path<String>) -> Response {
    model_metadata_for(&s, &model, None)
}

async fn model_metadata_v(
    Shared(s): AppState,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    model_metadata_for(&s, &model, Some(&version))
}

fn model_ready_for(s: &State, model: &str, version: Option<&str>) -> Response {
    if let Err(e) = s.find_model(model, version) {
        return error_response(&e);
    }
    let ready = s.lifecycle.is_ready();
    let body = serde_json::json!({"name": s.spec.name, "ready": ready}).to_string();
    if ready {
        json(StatusCode::OK, body)
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn model_ready(Shared(s): AppState, Path(model): Path<String>) -> Response {
    model_ready_for(&s, &model, None)
}

async fn model_ready_v(
    Shared(s): AppState,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    model_ready_for(&s, &model, Some(&version))
}

async fn infer(
    Shared(s): AppState,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_for(&s, &model, None, &headers, body).await
}

async fn infer_v(
    Shared(s): AppState,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_for(&s, &model, Some(&version), &headers, body).await
}

/// The body, or 413 when it is over `limit` bytes (by its
/// `Content-Length`, before reading, or as it arrives).
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ServeError> {
    let too_large = |n: String| {
        ServeError::new(
            ErrorKind::TooLarge,
            format!(
                "request body of {n} bytes is over the limit of {limit} bytes (--max-body-bytes)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared {
        if n > limit as u64 {
            return Err(too_large(n.to_string()));
        }
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ServeError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large(format!("more than {limit}")));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

async fn infer_for(
    s: &State,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = s.find_model(model, version) {
        return error_response(&e);
    }
    let body = match read_body(headers, body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            super::Metrics::add(&s.metrics.request_failure, 1);
            return error_response(&e);
        }
    };
    let header_len = match headers.get("inference-header-content-length") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(v) => Some(v),
            Err(_) => {
                return error_response(&ServeError::bad_request(
                    "Inference-Header-Content-Length is not ASCII",
                ))
            }
        },
    };
    let result = s
        .infer(|| protocol::parse_rest(&body, header_len, &s.spec))
        .await;
    match result {
        Err(e) => error_response(&e),
        Ok((req, out)) => {
            let (body, header_len) = protocol::rest_response(&s.spec, &req, &out);
            let mut r = match header_len {
                None => json(StatusCode::OK, String::new()),
                Some(n) => {
                    let mut r = StatusCode::OK.into_response();
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    r.headers_mut()
                        .insert("inference-header-content-length", HeaderValue::from(n));
                    r
                }
            };
            *r.body_mut() = Body::from(body);
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{BatchOptions, Engine, ModelSpec};
    use crate::Tensor;
    use axum::http::Request;
    use std::time::Duration;
    use tower::ServiceExt;

    /// Per image: its sum, then its first value.
    struct SumEngine;

    impl Engine for SumEngine {
        fn run(&self, batch: Tensor) -> Result<Tensor, String> {
            let n = batch.shape[0];
            let per = batch.data.len() / n;
            let data = batch
                .data
                .chunks(per)
                .flat_map(|img| [img.iter().sum::<f32>(), img[0]])
                .collect();
            Tensor::new(vec![n, 2], data).map_err(|e| e.to_string())
        }
    }

    /// A server state for a `net` of 3×1×2 images and 2 outputs, batch 2,
    /// a 1000-byte body limit; ready unless `loading`.
    fn state(loading: bool) -> Arc<State> {
        let spec = ModelSpec {
            input: crate::serve::TensorSpec {
                name: "input".into(),
                datatype: "FP32",
                dims: vec![3, 1, 2],
            },
            ..ModelSpec::image_classifier("net", 1, 2, 2)
        };
        let opts = BatchOptions {
            max_batch: 2,
            max_queue_delay: Duration::ZERO,
            max_queue_size: 4,
        };
        let s = State::new(spec, opts, 1000);
        if !loading {
            s.batcher.start(Arc::new(SumEngine)).unwrap();
            s.lifecycle.set_ready();
        }
        s
    }

    async fn call(s: &Arc<State>, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let r = router(s.clone()).oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn infer(uri: &str, body: Vec<u8>, header_len: Option<usize>) -> Request<Body> {
        let mut b = Request::post(uri);
        if let Some(n) = header_len {
            b = b.header("Inference-Header-Content-Length", n);
        }
        b.body(Body::from(body)).unwrap()
    }

    fn error(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn health_metadata_and_unknown_routes() {
        let s = state(false);
        let (st, _, b) = call(&s, get("/v2/health/live")).await;
        assert_eq!(
            (st, b.as_slice()),
            (StatusCode::OK, &br#"{"live":true}"#[..])
        );
        let (st, _, b) = call(&s, get("/v2/health/ready")).await;
        assert_eq!(
            (st, b.as_slice()),
            (StatusCode::OK, &br#"{"ready":true}"#[..])
        );
        let (st, _, b) = call(&s, get("/v2/models/net/versions/1")).await;
        assert_eq!(st, StatusCode::OK);
        let m: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(m["inputs"][0]["shape"], serde_json::json!([-1, 3, 1, 2]));
        for uri in [
            "/v2/models/other",
            "/v2/models/net/versions/7/ready",
            "/nope",
        ] {
            let (st, h, b) = call(&s, get(uri)).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(h[header::CONTENT_TYPE], "application/json");
            assert!(!error(&b).is_empty());
        }
        let (st, _, b) = call(&s, get("/v2/models/net/infer")).await;
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
        assert!(error(&b).contains("POST"));
        let (st, _, b) = call(&s, get("/metrics")).await;
        assert_eq!(st, StatusCode::OK);
        assert!(String::from_utf8(b)
            .unwrap()
            .contains("nv_inference_count{model=\"net\""));
    }

    #[tokio::test]
    async fn infer_json_and_binary_through_the_batcher() {
        let s = state(false);
        let json = br#"{"id":"x","inputs":[{"name":"input","datatype":"FP32","shape":[2,3,1,2],
            "data":[[1,2,3,4,5,6],[0,0,0,0,0,1.5]]}]}"#
            .to_vec();
        let (st, h, b) = call(&s, infer("/v2/models/net/infer", json, None)).await;
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(
            v["outputs"][0]["data"],
            serde_json::json!([21.0, 1.0, 1.5, 0.0])
        );

        // Binary in, binary out (no outputs named, binary_data_output).
        let head = br#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,1,2],"parameters":{"binary_data_size":24}}],"parameters":{"binary_data_output":true}}"#;
        let mut body = head.to_vec();
        for v in [1.0f32, 1.0, 1.0, 1.0, 1.0, 2.0] {
            body.extend(v.to_le_bytes());
        }
        let (st, h, b) = call(
            &s,
            infer(
                "/v2/models/net/versions/1/infer",
                body.clone(),
                Some(head.len()),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        let n: usize = h["inference-header-content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(protocol::f32_from_le(&b[n..]), [7.0, 1.0]);
        // Truncated: 400 naming the byte counts.
        let (st, _, b) = call(
            &s,
            infer(
                "/v2/models/net/infer",
                body[..body.len() - 3].to_vec(),
                Some(head.len()),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            error(&b).contains("needs 24 bytes, only 21"),
            "{}",
            error(&b)
        );
        let m = s.metrics.render("net", "1", 0);
        assert!(
            m.contains("nv_inference_request_success{model=\"net\",version=\"1\"} 2\n"),
            "{m}"
        );
        assert!(
            m.contains("nv_inference_request_failure{model=\"net\",version=\"1\"} 1\n"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_by_length_or_as_they_arrive() {
        let s = state(false);
        // By the declared length, before reading.
        let req = Request::post("/v2/models/net/infer")
            .header(header::CONTENT_LENGTH, 1001)
            .body(Body::from(vec![b' '; 1001]))
            .unwrap();
        let (st, _, b) = call(&s, req).await;
        assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            error(&b).contains("1001 bytes is over the limit of 1000"),
            "{}",
            error(&b)
        );
        assert!(error(&b).contains("--max-body-bytes"));
        // No length given: as the bytes arrive.
        let (st, _, b) = call(&s, infer("/v2/models/net/infer", vec![b' '; 1001], None)).await;
        assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error(&b).contains("more than 1000"), "{}", error(&b));
        // At the limit: read, then judged as a request (not JSON here).
        let (st, _, _) = call(&s, infer("/v2/models/net/infer", vec![b' '; 1000], None)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn loading_and_draining_answer_503() {
        let s = state(true);
        let (st, _, b) = call(&s, get("/v2/health/ready")).await;
        assert_eq!(
            (st, b.as_slice()),
            (StatusCode::SERVICE_UNAVAILABLE, &br#"{"ready":false}"#[..])
        );
        let (st, _, b) = call(&s, get("/v2/models/net/ready")).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b, br#"{"name":"net","ready":false}"#);
        let json = br#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,1,2],"data":[1,2,3,4,5,6]}]}"#;
        let (st, _, b) = call(&s, infer("/v2/models/net/infer", json.to_vec(), None)).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert!(error(&b).contains("still compiling"));
        let s = state(false);
        s.lifecycle.drain();
        let (st, _, b) = call(&s, infer("/v2/models/net/infer", json.to_vec(), None)).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert!(error(&b).contains("shutting down"));
        assert_eq!(call(&s, get("/v2/health/live")).await.0, StatusCode::OK);
    }
}
