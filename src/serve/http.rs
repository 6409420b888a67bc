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
