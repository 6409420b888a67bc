//! The one place the server touches the engine: a model that runs a batch.
//!
//! The rest of `serve` sees only [`Engine`] (run a batch of images) and
//! [`ModelSpec`] (the names and shapes the protocol advertises), so the
//! batcher and the protocol are tested with a fake engine, without a GPU,
//! and switching to ONNX models, f16 or an async run touches this file
//! only.

use crate::exec::gpu::{CompileOptions, CompiledGraph};
use crate::graph::Graph;
use crate::weights::Weights;
use crate::{Context, Tensor};
use std::sync::Arc;

/// Something that runs a batch of images.
///
/// `run` gets `n` images (`1 ≤ n ≤` the spec's `max_batch`) stacked in
/// one tensor `(n, …input dims)` and returns `(n, …output dims)`, image
/// `i` of the output belonging to image `i` of the input. It blocks (the
/// server calls it from a dedicated thread, never from an async task).
pub trait Engine: Send + Sync + 'static {
    /// Runs one batch. An error fails every request in the batch (500).
    fn run(&self, batch: Tensor) -> Result<Tensor, String>;
}

/// A tensor as the protocol advertises it: name, datatype and the shape
/// of one image (the batch dimension, `-1` on the wire, is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The tensor's name (`input`, `output`, or an ONNX model's own).
    pub name: String,
    /// The protocol datatype (`FP32`).
    pub datatype: &'static str,
    /// The dimensions of one image, without the batch dimension.
    pub dims: Vec<usize>,
}

impl TensorSpec {
    /// Values per image.
    pub fn per_image(&self) -> usize {
        self.dims.iter().product()
    }

    /// The shape with `-1` for the batch dimension, as metadata shows it.
    pub fn wire_shape(&self) -> Vec<i64> {
        std::iter::once(-1)
            .chain(self.dims.iter().map(|&d| d as i64))
            .collect()
    }
}

/// What the server serves: the model's name and version, its one input
/// and one output, and the largest batch one run takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name clients use in URLs and requests.
    pub name: String,
    /// The one version served (`"1"`).
    pub version: String,
    /// The platform metadata reports (`resincept`).
    pub platform: &'static str,
    /// The input, `(N, 3, H, W)` FP32 for the zoo's models.
    pub input: TensorSpec,
    /// The output, `(N, classes)` FP32 for the zoo's models.
    pub output: TensorSpec,
    /// The batch the model is compiled for: one run takes 1 to this many images.
    pub max_batch: usize,
}

impl ModelSpec {
    /// The spec of a zoo model served as `name` at `size × size` with
    /// `classes` outputs, compiled for `max_batch`.
    pub fn image_classifier(name: &str, size: usize, classes: usize, max_batch: usize) -> Self {
        ModelSpec {
            name: name.to_string(),
            version: "1".into(),
            platform: "resincept",
            input: TensorSpec {
                name: "input".into(),
                datatype: "FP32",
                dims: vec![3, size, size],
            },
            output: TensorSpec {
                name: "output".into(),
                datatype: "FP32",
                dims: vec![classes],
            },
            max_batch,
        }
    }
}

/// A resincept graph compiled for the GPU: the production [`Engine`].
pub struct GpuEngine {
    model: CompiledGraph,
    ctx: Arc<Context>,
}

impl GpuEngine {
    /// Compiles `graph` (built for the spec's `max_batch` and image size)
    /// with `weights` on `ctx`.
    pub fn compile(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        spec: &ModelSpec,
    ) -> crate::Result<Self> {
        let [_, h, w] = spec.input.dims[..] else {
            return Err(crate::Error::Invalid(format!(
                "input `{}` must be 3×H×W per image, spec says {:?}",
                spec.input.name, spec.input.dims
            )));
        };
        let opts = CompileOptions::new(spec.max_batch, h, w);
        Ok(GpuEngine {
            model: CompiledGraph::compile(ctx.clone(), graph, weights, &opts)?,
            ctx,
        })
    }

    /// The adapter's name, for the startup log.
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }
}

impl Engine for GpuEngine {
    fn run(&self, batch: Tensor) -> Result<Tensor, String> {
        let n = batch.shape.first().copied().unwrap_or(0);
        let mut outs = self.model.run(&batch).map_err(|e| e.to_string())?;
        if outs.is_empty() {
            return Err("the model has no output".into());
        }
        let logits = outs.swap_remove(0);
        // (N, K, 1, 1) → (N, K).
        let per_image = logits.data.len() / n.max(1);
        Tensor::new(vec![n, per_image], logits.data).map_err(|e| e.to_string())
    }
}
