//! resincept: ResNet and Inception networks on any GPU, from hand-written
//! WGSL compute shaders through wgpu.
//!
//! The path from a model to the GPU: [`graph`] (the IR: what to compute,
//! with shape inference at build time) → [`passes`] (fold batchnorm, fuse
//! epilogues, zero-copy concat) → [`plan`] (schedule, lifetimes, buffer
//! reuse) → [`exec`] (pipelines, buffers and bind groups made once; one
//! submission per run; or the CPU reference executor) → [`kernels`] (WGSL
//! in `shaders/`, each with a CPU reference) → [`device`] (adapter, device,
//! caches, dispatches, read-back). The IR knows nothing of the GPU and the
//! device layer nothing of the kernels. [`models`] builds the zoo's graphs
//! with PyTorch's parameter names; [`weights`] loads them.
//!
//! Every path that waits for the GPU is `async` at heart
//! ([`Context::new_async`], [`exec::gpu::CompiledGraph::compile_async`],
//! [`exec::gpu::CompiledGraph::run_async`]) with a blocking wrapper.
//!
//! ```no_run
//! use resincept::exec::gpu::{CompileOptions, CompiledGraph};
//! use resincept::{models, weights::Weights, Context, ContextOptions, Tensor};
//! use std::sync::Arc;
//!
//! # fn main() -> resincept::Result<()> {
//! let ctx = Arc::new(Context::new(&ContextOptions::default())?);
//! let graph = models::build("resnet50", 1, 224)?;
//! let weights = Weights::load_safetensors("resnet50.safetensors")?;
//! weights.check(&graph.param_specs())?;
//! let model = CompiledGraph::compile(ctx, &graph, &weights, &CompileOptions::new(1, 224, 224))?;
//! let logits = &model.run(&Tensor::zeros(vec![1, 3, 224, 224]))?[0]; // (1, 1000)
//! # let _ = logits;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod device;
pub mod error;
pub mod exec;
pub mod graph;
#[cfg(feature = "image")]
pub mod imagenet;
#[cfg(feature = "image")]
pub mod jpeg;
pub mod kernels;
pub mod models;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod passes;
pub mod plan;
#[cfg(feature = "image")]
pub mod preprocess;
#[cfg(feature = "serve")]
pub mod serve;
pub mod shaders;
pub mod tensor;
pub mod weights;

pub use device::{Context, ContextOptions};
pub use error::{Error, Result};
pub use tensor::Tensor;
