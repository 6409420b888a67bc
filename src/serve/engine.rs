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
    /// One image as the compiled graph takes it: `(C, H, W)`, or `(H, W,
    /// C)` for an NHWC input.
    image: [usize; 3],
}

impl GpuEngine {
    /// Compiles `graph` (built for the spec's `max_batch` and image size)
    /// with `weights` on `ctx`, for `C×H×W` images (NCHW in and out).
    pub fn compile(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        spec: &ModelSpec,
    ) -> crate::Result<Self> {
        let [_, h, w] = spec.input.dims[..] else {
            return Err(crate::Error::Invalid(format!(
                "input `{}` must be C×H×W per image, spec says {:?}",
                spec.input.name, spec.input.dims
            )));
        };
        let opts = CompileOptions::new(spec.max_batch, h, w);
        Self::compile_with(ctx, graph, weights, spec, &opts)
    }

    /// Compiles `graph` with `opts`, whose batch must be the spec's
    /// `max_batch` and whose input and output layouts are the model's own
    /// (an ONNX model's: NHWC in or out is taken and given as is, on the
    /// GPU). The spec's input dims may have any rank; their values, in
    /// order, must be those of one image of the compiled input in its
    /// layout (`(C, L)` for `(N, C, L)`, i.e. `(N, C, L, 1)`), and the
    /// output's those of one image of output 0.
    pub fn compile_with(
        ctx: Arc<Context>,
        graph: &Graph,
        weights: &Weights,
        spec: &ModelSpec,
        opts: &CompileOptions,
    ) -> crate::Result<Self> {
        if opts.batch != spec.max_batch {
            return Err(crate::Error::Invalid(format!(
                "compile options for a batch of {}, the spec's max_batch is {}",
                opts.batch, spec.max_batch
            )));
        }
        let model = CompiledGraph::compile(ctx.clone(), graph, weights, opts)?;
        let [_, a, b, c] = model.input_layout().dims(model.input_shape());
        if a * b * c != spec.input.per_image() {
            return Err(crate::Error::Shape {
                node: spec.input.name.clone(),
                expected: format!("an image of {a}×{b}×{c} values, as compiled"),
                actual: format!("spec dims {:?}", spec.input.dims),
            });
        }
        let out = model.output_shapes().first().cloned().unwrap_or_default();
        let per_image: usize = out.iter().skip(1).product();
        if out.is_empty() || per_image != spec.output.per_image() {
            return Err(crate::Error::Shape {
                node: spec.output.name.clone(),
                expected: format!("output 0 as compiled, {out:?}"),
                actual: format!("spec dims {:?}", spec.output.dims),
            });
        }
        Ok(GpuEngine {
            model,
            ctx,
            image: [a, b, c],
        })
    }

    /// The adapter's name, for the startup log.
    pub fn adapter(&self) -> String {
        format!("{} ({:?})", self.ctx.info.name, self.ctx.info.backend)
    }

    /// How the compiled model stores weights and activations (`f32`,
    /// `f16` or `f16-packed`), for the startup log.
    pub fn storage(&self) -> crate::shaders::Storage {
        self.model.stats().storage
    }
}

impl Engine for GpuEngine {
    fn run(&self, batch: Tensor) -> Result<Tensor, String> {
        let n = batch.shape.first().copied().unwrap_or(0);
        // The batch is `(n, …dims)` as the spec says; the compiled graph
        // takes 4-D in its layout, with the same values in the same order.
        let [a, b, c] = self.image;
        let batch = Tensor::new(vec![n, a, b, c], batch.data).map_err(|e| e.to_string())?;
        let mut outs = self.model.run(&batch).map_err(|e| e.to_string())?;
        if outs.is_empty() {
            return Err("the model has no output".into());
        }
        let logits = outs.swap_remove(0);
        // (N, K, 1, 1) → (N, K); (N, …) → (N, per image).
        let per_image = logits.data.len() / n.max(1);
        Tensor::new(vec![n, per_image], logits.data).map_err(|e| e.to_string())
    }
}
