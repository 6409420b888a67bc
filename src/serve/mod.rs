//! `resincept serve`: one model over the Open Inference Protocol (KServe
//! "v2", as Triton and MLServer speak it), on HTTP/REST and gRPC, with
//! dynamic batching onto the GPU.
//!
//! ```text
//!  HTTP (axum) ─┐                        ┌─ worker thread ─────────────┐
//!               ├─ State::infer ─ queue ─┤  take ≤ max_batch images,   │
//!  gRPC (tonic) ┘   (parse, admit,       │  Engine::run, answer each   │
//!                    await reply)        └─────────────────────────────┘
//! ```
//!
//! - [`engine`]: the model as the server sees it ([`Engine`], [`ModelSpec`]),
//!   and the GPU implementation.
//! - [`batcher`]: the bounded queue and the worker that merges requests.
//! - [`lifecycle`]: loading → ready → draining → stopped, and in-flight counts.
//! - [`protocol`]: REST request parsing and responses (JSON and binary).
//! - [`http`], [`grpc`]: the two front ends; [`metrics`]: `GET /metrics`.
//!
//! [`serve`] binds both ports first (so liveness answers while the model
//! compiles), loads the model on its own thread, warms it up, and only then
//! reports ready. On SIGTERM or Ctrl-C it turns readiness off at once,
//! refuses new requests, waits for those accepted (up to the grace period),
//! and returns. Nothing in a request can panic the server: every input is
//! checked and answered with an error naming what was wrong.

pub mod batcher;
pub mod engine;
pub mod error;
pub mod grpc;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod protocol;

/// Code generated from `proto/grpc_predict_v2.proto` (by `scripts/protogen`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!("proto/inference.rs");
}

pub use batcher::{BatchOptions, Batcher};
pub use engine::{Engine, GpuEngine, ModelSpec, TensorSpec};
pub use error::{ErrorKind, ServeError};
pub use lifecycle::{Lifecycle, State as LifeState};
pub use metrics::Metrics;

use protocol::InferRequest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the server listens and batches.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (`127.0.0.1` unless told otherwise).
    pub host: String,
    /// HTTP port (0: any free port).
    pub http_port: u16,
    /// gRPC port (0: any free port).
    pub grpc_port: u16,
    /// Batching and queue bounds.
    pub batch: BatchOptions,
    /// Largest HTTP body or gRPC message accepted.
    pub max_body_bytes: usize,
    /// How long a shutdown waits for accepted requests.
    pub grace: Duration,
}

/// What every handler shares.
pub struct State {
    /// The model served.
    pub spec: ModelSpec,
    /// Ready or not, and requests in flight.
    pub lifecycle: Arc<Lifecycle>,
    /// The queue to the engine.
    pub batcher: Batcher,
    /// `GET /metrics`' counters.
    pub metrics: Arc<Metrics>,
    /// `--max-body-bytes`.
    pub max_body_bytes: usize,
}

impl State {
    /// Shared state for `spec`, loading, with a batcher not yet started.
    pub fn new(spec: ModelSpec, batch: BatchOptions, max_body_bytes: usize) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let batcher = Batcher::new(
            batch,
            spec.input.dims.clone(),
            spec.output.per_image(),
            metrics.clone(),
        );
        Arc::new(State {
            spec,
            lifecycle: Lifecycle::new(),
            batcher,
            metrics,
            max_body_bytes,
        })
    }

    /// A 404 unless `name` (and `version`, when given and not empty) is
    /// the model served.
    pub fn find_model(&self, name: &str, version: Option<&str>) -> Result<(), ServeError> {
        if name != self.spec.name {
            return Err(ServeError::not_found(format!(
                "unknown model `{name}`; this server serves `{}`",
                self.spec.name
            )));
        }
        match version {
            Some(v) if !v.is_empty() && v != self.spec.version => {
                Err(ServeError::not_found(format!(
                    "model `{name}` has no version `{v}`; it has version `{}`",
                    self.spec.version
                )))
            }
            _ => Ok(()),
        }
    }

    /// Admits, parses (with `parse`), queues and awaits one inference
    /// request; returns it (its data moved out) and its outputs. Updates
    /// the metrics either way.
    pub async fn infer(
        &self,
        parse: impl FnOnce() -> Result<InferRequest, ServeError>,
    ) -> Result<(InferRequest, Vec<f32>), ServeError> {
        let start = Instant::now();
        let result = self.infer_inner(parse).await;
        let m = &self.metrics;
        match &result {
            Ok(_) => {
                Metrics::add(&m.request_success, 1);
                Metrics::add(&m.request_duration_us, start.elapsed().as_micros() as u64);
            }
            Err(_) => Metrics::add(&m.request_failure, 1),
        }
        result
    }

    async fn infer_inner(
        &self,
        parse: impl FnOnce() -> Result<InferRequest, ServeError>,
    ) -> Result<(InferRequest, Vec<f32>), ServeError> {
        // Held until answered: a shutdown waits for it.
        let _in_flight = self.lifecycle.begin()?;
        let mut req = parse()?;
        let data = std::mem::take(&mut req.data);
        let pending = self.batcher.submit(data, req.images)?;
        let reply = pending.await.map_err(|_| {
            ServeError::unavailable("the server shut down before the request could run")
        })??;
        let m = &self.metrics;
        Metrics::add(&m.queue_duration_us, reply.queue_us);
        Metrics::add(&m.compute_infer_duration_us, reply.compute_us);
        Ok((req, reply.data))
    }
}

/// Loads the model: called once, on its own thread, while the ports are
/// already open (liveness answers, readiness does not).
pub type Loader = Box<dyn FnOnce() -> Result<Arc<dyn Engine>, String> + Send>;

/// Runs the server until SIGTERM or Ctrl-C (then drains and returns
/// `Ok`), or until the model fails to load (`Err`). Progress goes to
/// stderr.
pub fn serve(config: Config, spec: ModelSpec, load: Loader) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("resincept-serve")
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let result = rt.block_on(serve_async(config, spec, load));
    // A load still compiling or a connection still open does not hold the
    // process up.
    rt.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn bind(host: &str, port: u16, flag: &str) -> Result<tokio::net::TcpListener, String> {
    let addr = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&addr)
        .await
        .map_err(|e| format!("--host `{host}`: {e}"))?
        .collect();
    let Some(first) = addrs.first() else {
        return Err(format!("--host `{host}` resolves to no address"));
    };
    tokio::net::TcpListener::bind(first)
        .await
        .map_err(|e| format!("cannot listen on {first} ({flag} {port}): {e}"))
}

async fn serve_async(config: Config, spec: ModelSpec, load: Loader) -> Result<(), String> {
    let http_listener = bind(&config.host, config.http_port, "--http-port").await?;
    let grpc_listener = bind(&config.host, config.grpc_port, "--grpc-port").await?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    let grpc_addr = grpc_listener.local_addr().map_err(|e| e.to_string())?;
    let state = State::new(spec.clone(), config.batch, config.max_body_bytes);
    eprintln!(
        "resincept serve: model `{}` version {}, input `{}` FP32 {:?}, output `{}` FP32 {:?}, \
         batches of up to {} images; HTTP on http://{http_addr}, gRPC on {grpc_addr}; \
         compiling and warming up (ready after)",
        spec.name,
        spec.version,
        spec.input.name,
        spec.input.wire_shape(),
        spec.output.name,
        spec.output.wire_shape(),
        spec.max_batch
    );

    // Stops both front ends when told.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http_task = tokio::spawn(http::run(
        http_listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let grpc_task = tokio::spawn(grpc_server(
        grpc_listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));

    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
    {
        let state = state.clone();
        std::thread::Builder::new()
            .name("resincept-load".into())
            .spawn(move || {
                let t = Instant::now();
                let r = load_and_warm_up(&state, load);
                let _ = loaded_tx.send(r.map(|()| t.elapsed()));
            })
            .map_err(|e| format!("starting the loader thread: {e}"))?;
    }

    let (mut http_task, mut grpc_task, mut loaded_rx) = (http_task, grpc_task, loaded_rx);
    let mut loading = true;
    let mut signals = Signals::new()?;
    let outcome: Result<(), String> = loop {
        tokio::select! {
            r = &mut loaded_rx, if loading => {
                loading = false;
                match r {
                Ok(Ok(took)) => {
                    if state.lifecycle.set_ready() {
                        eprintln!("resincept serve: ready ({:.1} s to compile and warm up)", took.as_secs_f64());
                    }
                }
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err("the model loader stopped without an answer".into()),
                }
            }
            name = signals.next() => {
                state.lifecycle.drain();
                eprintln!(
                    "resincept serve: {name}: not ready; finishing {} requests in flight \
                     (grace period {} s)",
                    state.lifecycle.in_flight(),
                    config.grace.as_secs()
                );
                tokio::select! {
                    _ = state.lifecycle.drained() => {
                        eprintln!("resincept serve: all requests answered");
                    }
                    _ = tokio::time::sleep(config.grace) => {
                        eprintln!(
                            "resincept serve: grace period over with {} requests in flight; \
                             exiting without them",
                            state.lifecycle.in_flight()
                        );
                    }
                    name = signals.next() => {
                        eprintln!("resincept serve: {name} again: exiting now");
                    }
                }
                break Ok(());
            }
            r = &mut http_task => break Err(format!("HTTP server stopped: {}", task_error(r))),
            r = &mut grpc_task => break Err(format!("gRPC server stopped: {}", task_error(r))),
        }
    };
    state.lifecycle.stop();
    let _ = stop_tx.send(true);
    // Idle keep-alive connections close at once; give busy ones a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if !http_task.is_finished() {
            let _ = http_task.await;
        }
        if !grpc_task.is_finished() {
            let _ = grpc_task.await;
        }
    })
    .await;
    state.batcher.close(Duration::from_millis(100));
    outcome
}

/// Why a front end's task ended (it should not before shutdown).
fn task_error(r: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "without an error".into(),
        Ok(Err(e)) => e,
        Err(e) => e.to_string(),
    }
}

/// Compiles (through `load`), warms up with a full batch and a single
/// image, checks the output shape, starts the batcher.
fn load_and_warm_up(state: &State, load: Loader) -> Result<(), String> {
    let spec = &state.spec;
    let engine = load()?;
    for n in [spec.max_batch, 1] {
        let shape: Vec<usize> = std::iter::once(n).chain(spec.input.dims.clone()).collect();
        let out = engine
            .run(crate::Tensor::zeros(shape))
            .map_err(|e| format!("warm-up run of {n} images: {e}"))?;
        if out.data.len() != n * spec.output.per_image() {
            return Err(format!(
                "warm-up run of {n} images: output shape {:?}, expected [{n}, {}]",
                out.shape,
                spec.output.per_image()
            ));
        }
    }
    state
        .batcher
        .start(engine)
        .map_err(|e| format!("starting the batch worker: {e}"))
}

async fn grpc_server(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    use proto::grpc_inference_service_server::GrpcInferenceServiceServer;
    let limit = state.max_body_bytes;
    let svc = GrpcInferenceServiceServer::new(grpc::Service(state))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit.max(64 << 20));
    let rewrite = tower::util::MapResponseLayer::new(
        move |mut resp: axum::http::Response<tonic::body::Body>| {
            let headers = resp.headers();
            let status = headers.get("grpc-status").and_then(|v| v.to_str().ok());
            let message = headers.get("grpc-message").and_then(|v| v.to_str().ok());
            if let (Some(s), Some(m)) = (status, message) {
                if let Some((code, msg)) = grpc::size_limit_status(s, m, limit) {
                    let h = resp.headers_mut();
                    h.insert(
                        "grpc-status",
                        axum::http::HeaderValue::from(u16::from(code)),
                    );
                    if let Ok(v) = axum::http::HeaderValue::from_str(&msg) {
                        h.insert("grpc-message", v);
                    }
                }
            }
            resp
        },
    );
    tonic::transport::Server::builder()
        .layer(rewrite)
        .add_service(svc)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop,
        )
        .await
        .map_err(|e| e.to_string())
}

/// SIGTERM and Ctrl-C (SIGINT), as one stream of signal names.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, String> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("installing the SIGTERM handler: {e}"))?,
        })
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
