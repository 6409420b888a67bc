//! resincept: ResNet and Inception networks on any GPU, from hand-written
//! WGSL compute shaders through wgpu.
//!
//! The path from a model to the GPU: [`graph`] (what to compute, with shape
//! inference at build time) → `passes` (fold batchnorm, fuse epilogues,
//! zero-copy concat) → `plan` (schedule, lifetimes, buffer reuse) →
//! executor (pipelines, buffers and bind groups made once; one submission
//! per run) → [`kernels`] (WGSL in `shaders/`, each with a CPU reference).

pub mod context;
pub mod error;
pub mod exec;
pub mod graph;
pub mod imagenet;
pub mod kernels;
pub mod models;
pub mod passes;
pub mod plan;
pub mod preprocess;
pub mod shaders;
pub mod tensor;
pub mod weights;

pub use context::{Context, ContextOptions};
pub use error::{Error, Result};
pub use tensor::Tensor;
