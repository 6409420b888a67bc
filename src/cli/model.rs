//! `--model`: a zoo name or an ONNX file, turned into what every command
//! runs: an IR graph built for one input shape, its weights, and the
//! model's own boundary (input and output names, shapes and layouts).
//!
//! - **Zoo models** take `(N, 3, H, W)` under the name `input` and give
//!   `(N, classes)` as `output`. With `--weights FILE` the head width comes
//!   from the checkpoint's classifier ([`ModelInfo::classes_in`]: `fc`,
//!   `last_linear`, `classif`, `head.fc`), so a fine-tuned 10-class
//!   ResNet-50 builds a 10-class graph.
//! - **ONNX files** (`--model path/model.onnx`) keep their own names,
//!   shapes and layouts. The input shape is the model's static one; a
//!   symbolic dim takes its value from the caller: `run`'s input tensor, or
//!   `--batch` (dim 0) and `--size` (every other symbolic dim) in `bench`,
//!   `check` and `serve` ([`onnx_shape`]). On the GPU an NHWC input or
//!   output crosses the boundary as it is
//!   ([`CompileOptions::with_input_layout`] / `with_output_layout`: the
//!   executor's own transposes, none on the host); the CPU reference
//!   executor works in NCHW, so there the host permutes
//!   ([`OnnxModelInfo::input_to_ir`] / [`OnnxModelInfo::output_from_ir`]).
//!
//! Memory: every size that comes from a user (a batch, an image size, a
//! file's or a model's shapes) is checked against what the host can hold
//! ([`check_host`], [`tensor::check_host_bytes`]) before it is allocated,
//! and the GPU executor's compile refuses values and whole-batch buffers
//! over the device's limits before it creates any device object; the
//! commands build their synthetic inputs only after both checks.

use super::commands::{gpu_context, synthetic_seed, Device};
use super::{usage, CliError, CliResult, ModelArgs};
use resincept::exec::gpu::{CompileOptions, CompiledGraph, F16Storage};
use resincept::exec::{cpu, Precision};
use resincept::graph::{Graph, Op};
use resincept::models::{self, ModelInfo, Options};
use resincept::onnx::{self, Declared, Dim, ImportOptions, IoInfo, OnnxModelInfo};
use resincept::passes::{self, PassOptions};
use resincept::tensor::{self, Layout};
use resincept::weights::{self, Weights};
use resincept::Tensor;
use std::path::Path;

/// Whether `--model` names an ONNX file: a path ending in `.onnx` (any
/// case), or an existing file that is not a zoo name.
pub fn is_onnx(model: &str) -> bool {
    model.to_ascii_lowercase().ends_with(".onnx")
        || (models::info(model).is_err() && Path::new(model).is_file())
}

/// Refuses a host allocation of `bytes` for `what` (in words: ``tensor
/// `input` ``) that this machine cannot hold (one error naming it, its
/// bytes and the limit).
pub fn check_host(what: &str, bytes: u128) -> CliResult<()> {
    Ok(tensor::check_host_bytes(what, bytes)?)
}

/// [`check_host`] for an f32 tensor of `shape`.
pub fn check_host_shape(what: &str, shape: &[usize]) -> CliResult<()> {
    check_host(what, tensor::shape_bytes(shape, 4))
}

/// What kind of model a [`Model`] is.
#[derive(Debug)]
pub enum Kind {
    /// A zoo model.
    Zoo(ModelInfo),
    /// An imported ONNX file.
    Onnx(Box<OnnxModelInfo>),
}

/// A model built for one input shape, with its weights.
#[derive(Debug)]
pub struct Model {
    /// The zoo name, or the ONNX file as given.
    pub name: String,
    /// Zoo or ONNX, with what each knows.
    pub kind: Kind,
    /// The IR graph, built for [`Model::ir_input_shape`].
    pub graph: Graph,
    /// Its parameters (checked against the graph).
    pub weights: Weights,
    /// Where the weights came from (`file:PATH`, `synthetic-v1:seed=N`,
    /// `onnx:PATH`).
    pub weights_desc: String,
    /// The input shape in the model's own rank and layout.
    input_shape: Vec<usize>,
    /// Precision of both executors (`--precision`; f32 unless set).
    pub precision: Precision,
    /// With f16: the storage forced by `--f16-storage` (`None`: native
    /// where the device has `SHADER_F16`, packed elsewhere).
    pub f16_storage: Option<F16Storage>,
}

impl Model {
    /// The same model in `precision`, with f16 stored as `f16_storage`
    /// forces (`None`: native where the device has `SHADER_F16`); the
    /// commands take both from [`super::PrecisionArgs`].
    pub fn with_precision(mut self, precision: Precision, f16_storage: Option<F16Storage>) -> Self {
        self.precision = precision;
        self.f16_storage = f16_storage;
        self
    }

    /// The zoo model's facts (`None` for ONNX).
    pub fn zoo(&self) -> Option<&ModelInfo> {
        match &self.kind {
            Kind::Zoo(i) => Some(i),
            Kind::Onnx(_) => None,
        }
    }

    /// The ONNX model's facts (`None` for the zoo).
    pub fn onnx(&self) -> Option<&OnnxModelInfo> {
        match &self.kind {
            Kind::Zoo(_) => None,
            Kind::Onnx(i) => Some(i),
        }
    }

    /// The input's name: the ONNX model's own, `input` for the zoo.
    pub fn input_name(&self) -> &str {
        match &self.kind {
            Kind::Zoo(_) => weights::INPUT_KEY,
            Kind::Onnx(i) => &i.inputs[0].name,
        }
    }

    /// The input shape in the model's own rank and layout (`(N, 3, H, W)`
    /// for the zoo).
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The input's layout.
    pub fn input_layout(&self) -> Layout {
        match &self.kind {
            Kind::Zoo(_) => Layout::Nchw,
            Kind::Onnx(i) => i.inputs[0].layout,
        }
    }

    /// The IR graph's input shape, NCHW.
    pub fn ir_input_shape(&self) -> [usize; 4] {
        ir_shape(&self.input_shape, self.input_layout())
    }

    /// The names of the outputs the executors return, in order: the ONNX
    /// model's own (those it computes, not its constant ones), `output`
    /// for the zoo.
    pub fn output_names(&self) -> Vec<String> {
        match &self.kind {
            Kind::Zoo(_) => vec!["output".into()],
            Kind::Onnx(i) => i.runtime_outputs().map(|o| o.name.clone()).collect(),
        }
    }

    /// An ONNX model's outputs known at import (Dropout's mask), with
    /// their index among all its outputs: no executor computes them.
    pub fn constant_outputs(&self) -> Vec<(usize, &IoInfo)> {
        match &self.kind {
            Kind::Zoo(_) => Vec::new(),
            Kind::Onnx(i) => i
                .outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.constant.is_some())
                .collect(),
        }
    }

    /// The layout the GPU returns 4-D outputs in: NHWC when every output
    /// the model gives NHWC is, and it has one; else NCHW (a model mixing
    /// both gets its NHWC outputs permuted on the host).
    fn gpu_output_layout(&self) -> Layout {
        match &self.kind {
            Kind::Onnx(i) if i.runtime_outputs().any(|o| o.layout == Layout::Nhwc) => {
                if i.runtime_outputs()
                    .all(|o| o.layout == Layout::Nhwc || spatial(o) == 1)
                {
                    Layout::Nhwc
                } else {
                    Layout::Nchw
                }
            }
            _ => Layout::Nchw,
        }
    }

    /// How to compile the graph: the input shape, the model's layouts at
    /// the boundary, and the precision.
    pub fn compile_options(&self) -> CompileOptions {
        let [n, _, h, w] = self.ir_input_shape();
        let opts = CompileOptions::new(n, h, w)
            .with_input_layout(self.input_layout())
            .with_output_layout(self.gpu_output_layout())
            .with_precision(self.precision);
        match self.f16_storage {
            Some(s) => opts.with_f16_storage(s),
            None => opts,
        }
    }

    /// The graph the CPU executor runs: the model's own in f32; in f16 the
    /// GPU's after its passes (batchnorms folded, epilogues fused), so
    /// that the CPU rounds to f16 exactly where the GPU stores.
    pub fn cpu_graph(&self) -> CliResult<Graph> {
        Ok(match self.precision {
            Precision::F32 => self.graph.clone(),
            Precision::F16 => passes::optimize(&self.graph, &PassOptions::default())?,
        })
    }

    /// Compiles the graph on the GPU (`opts`: usually
    /// [`Model::compile_options`]).
    pub fn compile(
        &self,
        ctx: std::sync::Arc<resincept::Context>,
        opts: &CompileOptions,
    ) -> CliResult<CompiledGraph> {
        Ok(CompiledGraph::compile(
            ctx,
            &self.graph,
            &self.weights,
            opts,
        )?)
    }

    /// The model's input `x` (its own shape and layout) as the compiled
    /// graph takes it: 4-D in the input layout, the same values.
    pub fn gpu_input(&self, x: Tensor) -> CliResult<Tensor> {
        self.check_input(&x)?;
        let shape = self.input_layout().dims(self.ir_input_shape()).to_vec();
        Ok(Tensor::new(shape, x.data)?)
    }

    /// The model's input `x` as the CPU executor takes it: NCHW.
    pub fn cpu_input(&self, x: &Tensor) -> CliResult<Tensor> {
        match &self.kind {
            Kind::Zoo(_) => {
                self.check_input(x)?;
                Ok(x.clone())
            }
            Kind::Onnx(i) => Ok(i.input_to_ir(x)?),
        }
    }

    /// Refuses an input whose shape is not the one the graph was built for.
    fn check_input(&self, x: &Tensor) -> CliResult<()> {
        if x.shape != self.input_shape {
            return Err(resincept::Error::Shape {
                node: self.input_name().to_string(),
                expected: format!("input of shape {:?}", self.input_shape),
                actual: format!("{:?}", x.shape),
            }
            .into());
        }
        Ok(())
    }

    /// The compiled graph's outputs (in [`Model::compile_options`]'
    /// layout) in the model's own shapes and layouts.
    pub fn outputs_of_gpu(&self, outs: Vec<Tensor>) -> CliResult<Vec<Tensor>> {
        let Kind::Onnx(info) = &self.kind else {
            return Ok(outs.into_iter().map(squeeze_logits).collect());
        };
        let compiled = self.gpu_output_layout();
        outs.into_iter()
            .zip(info.runtime_outputs())
            .map(|(t, io)| {
                let n = t.shape.first().copied().unwrap_or(0);
                let data = if io.layout == Layout::Nhwc && compiled == Layout::Nchw {
                    let [_, c, h, w] = t.nchw()?;
                    tensor::nchw_to_nhwc(&t.data, [n, c, h, w])
                } else {
                    t.data
                };
                Ok(Tensor::new(own_shape(io, n, data.len())?, data)?)
            })
            .collect()
    }

    /// The CPU executor's outputs (NCHW) in the model's own shapes and
    /// layouts.
    pub fn outputs_of_cpu(&self, outs: Vec<Tensor>) -> CliResult<Vec<Tensor>> {
        match &self.kind {
            Kind::Zoo(_) => Ok(outs.into_iter().map(squeeze_logits).collect()),
            Kind::Onnx(info) => outs
                .iter()
                .enumerate()
                .map(|(i, t)| Ok(info.output_from_ir(i, t)?))
                .collect(),
        }
    }

    /// Whether output 0 is made by a softmax (an ONNX classifier may end
    /// with one): its values are probabilities already.
    pub fn output_is_probability(&self) -> bool {
        self.graph
            .outputs
            .first()
            .and_then(|&v| self.graph.producer(v))
            .is_some_and(|n| matches!(n.op, Op::Softmax { axis: 1 }))
    }

    /// Values per image of output 0 (a classifier's classes).
    pub fn output_per_image(&self) -> CliResult<usize> {
        let shapes = self.graph.infer_shapes(self.ir_input_shape())?;
        let out = self
            .graph
            .outputs
            .first()
            .ok_or_else(|| CliError::Failed(format!("model `{}` has no output", self.name)))?;
        let [_, c, h, w] = shapes[out.0];
        Ok(c * h * w)
    }

    /// The bytes of every output of one run, f32, at the built batch.
    pub fn output_bytes(&self) -> CliResult<u128> {
        let shapes = self.graph.infer_shapes(self.ir_input_shape())?;
        Ok(self
            .graph
            .outputs
            .iter()
            .map(|v| tensor::shape_bytes(&shapes[v.0], 4))
            .fold(0u128, u128::saturating_add))
    }

    /// Refuses, before anything runs, outputs (and for the CPU executor
    /// the activations it keeps alive at once) that the host cannot hold.
    pub fn check_run_memory(&self, device: Device) -> CliResult<()> {
        check_host("outputs (read back to the host)", self.output_bytes()?)?;
        if device == Device::Cpu {
            check_host(
                "activations of the CPU executor",
                cpu_peak_bytes(&self.graph, self.ir_input_shape())?,
            )?;
        }
        Ok(())
    }

    /// Gets the model ready to run on `device` (the memory checks, then
    /// for the GPU the compile).
    pub fn runner(&self, device: Device) -> CliResult<Runner<'_>> {
        self.check_run_memory(device)?;
        Ok(match device {
            Device::Cpu => Runner {
                model: self,
                cpu_graph: Some(self.cpu_graph()?),
                gpu: None,
                device: match self.precision {
                    Precision::F32 => "cpu".into(),
                    p => format!("cpu ({})", p.name()),
                },
            },
            Device::Gpu => {
                let ctx = gpu_context()?;
                let compiled = self.compile(ctx.clone(), &self.compile_options())?;
                let device = format!(
                    "gpu:{} ({:?}, {})",
                    ctx.info.name,
                    ctx.info.backend,
                    compiled.stats().storage.name()
                );
                Runner {
                    model: self,
                    cpu_graph: None,
                    gpu: Some(compiled),
                    device,
                }
            }
        })
    }

    /// Runs the model once on `x` (its own shape and layout) on `device`;
    /// returns its outputs in its own shapes and layouts, and the device.
    pub fn execute(&self, device: Device, x: Tensor) -> CliResult<(Vec<Tensor>, String)> {
        let runner = self.runner(device)?;
        let outs = runner.run(x)?;
        Ok((outs, runner.device))
    }
}

/// A [`Model`] ready to run on one device (compiled once for the GPU).
pub struct Runner<'a> {
    model: &'a Model,
    /// The CPU executor's graph ([`Model::cpu_graph`]).
    cpu_graph: Option<Graph>,
    gpu: Option<CompiledGraph>,
    /// The device, in words (`cpu`, `gpu:NAME (BACKEND)`).
    pub device: String,
}

impl Runner<'_> {
    /// Runs on `x` (the model's own input shape and layout); returns the
    /// outputs in the model's own shapes and layouts.
    pub fn run(&self, x: Tensor) -> CliResult<Vec<Tensor>> {
        let m = self.model;
        match (&self.gpu, &self.cpu_graph) {
            (Some(compiled), _) => m.outputs_of_gpu(compiled.run(&m.gpu_input(x)?)?),
            (None, Some(g)) => {
                let outs = cpu::run_with(g, &m.weights, &m.cpu_input(&x)?, m.precision)?;
                m.outputs_of_cpu(outs)
            }
            (None, None) => unreachable!("a runner has one executor"),
        }
    }
}

/// Values per image of an output in its IR shape's H·W (1 for `(N, F)`).
fn spatial(io: &IoInfo) -> usize {
    onnx::import::ir_shape(&io.shape, io.layout).map_or(1, |s| s[2] * s[3])
}

/// The IR shape of a model shape in `layout` (1-D to 4-D NCHW, 4-D NHWC;
/// import guarantees it).
fn ir_shape(shape: &[usize], layout: Layout) -> [usize; 4] {
    onnx::import::ir_shape(shape, layout).unwrap_or_else(|| {
        let mut s = [1; 4];
        for (d, &x) in s.iter_mut().zip(shape) {
            *d = x;
        }
        s
    })
}

/// An output's own shape for `len` values of `n` images: as imported, or
/// with dim 0 (the batch) set to `n` when fewer images ran.
fn own_shape(io: &IoInfo, n: usize, len: usize) -> CliResult<Vec<usize>> {
    if io.shape.iter().product::<usize>() == len {
        return Ok(io.shape.clone());
    }
    let mut shape = io.shape.clone();
    if let Some(d) = shape.first_mut() {
        *d = n;
    }
    if shape.iter().product::<usize>() != len {
        return Err(CliError::Failed(format!(
            "output `{}`: {len} values for {n} images do not fit its shape {:?}",
            io.name, io.shape
        )));
    }
    Ok(shape)
}

/// `(N, K, 1, 1)` → `(N, K)`; other shapes unchanged.
pub fn squeeze_logits(t: Tensor) -> Tensor {
    if t.shape.len() == 4 && t.shape[2] == 1 && t.shape[3] == 1 {
        Tensor {
            shape: t.shape[..2].to_vec(),
            data: t.data,
        }
    } else {
        t
    }
}

/// The most activation bytes the CPU executor holds at once on `graph`
/// for `input`: it frees each value after its last reader, keeps the
/// outputs, then copies them out.
pub fn cpu_peak_bytes(graph: &Graph, input: [usize; 4]) -> CliResult<u128> {
    let shapes = graph.infer_shapes(input)?;
    let bytes = |v: usize| tensor::shape_bytes(&shapes[v], 4);
    let mut remaining: Vec<usize> = graph.consumers().iter().map(Vec::len).collect();
    for v in &graph.outputs {
        remaining[v.0] += 1;
    }
    let (mut alive, mut peak) = (0u128, 0u128);
    for node in &graph.nodes {
        alive = alive.saturating_add(bytes(node.output.0));
        peak = peak.max(alive);
        for v in &node.inputs {
            if remaining[v.0] > 0 {
                remaining[v.0] -= 1;
                if remaining[v.0] == 0 {
                    alive = alive.saturating_sub(bytes(v.0));
                }
            }
        }
    }
    let outputs = graph
        .outputs
        .iter()
        .map(|v| bytes(v.0))
        .fold(0u128, u128::saturating_add);
    Ok(peak.max(alive.saturating_add(outputs)))
}

// ---------------------------------------------------------------- the zoo

/// The [`ModelInfo`] of `--model`; an unknown name lists the known ones.
pub fn zoo_info(args: &ModelArgs) -> CliResult<ModelInfo> {
    Ok(models::info(&args.model)?)
}

/// The zoo model `info` built for `n × 3 × h × w`, with weights from
/// `--weights FILE` (its classifier sets the head width), `--synthetic-seed
/// N`, or `default_seed` when neither is given (`None`: one is required).
pub fn load_zoo(
    command: &str,
    args: &ModelArgs,
    info: ModelInfo,
    [n, h, w]: [usize; 3],
    default_seed: Option<u64>,
) -> CliResult<Model> {
    let seed = match (args.weights.as_deref(), synthetic_seed(command, args)?) {
        (Some(_), Some(_)) => {
            return Err(usage(
                command,
                "give either --weights or --synthetic-seed, not both",
            ))
        }
        (Some(_), None) => None,
        (None, Some(seed)) => Some(seed),
        (None, None) => Some(
            default_seed
                .ok_or_else(|| usage(command, "missing --weights FILE (or --synthetic-seed N)"))?,
        ),
    };
    let (graph, weights, weights_desc) = match (args.weights.as_deref(), seed) {
        (Some(path), _) => {
            let mut weights = Weights::load_safetensors(path)?;
            if info.name == "inception_v3" {
                // torchvision's checkpoint carries the training-only
                // auxiliary head; the inference graph has none.
                let aux: Vec<String> = weights
                    .keys()
                    .filter(|k| k.starts_with("AuxLogits."))
                    .map(String::from)
                    .collect();
                for k in aux {
                    weights.remove(&k);
                }
            }
            let does_not_fit =
                |e| CliError::Failed(format!("{path} does not fit model `{}`: {e}", info.name));
            let classes = info.classes_in(&weights).map_err(does_not_fit)?;
            let graph = build(&info, classes, n, h, w)?;
            weights.check(&graph.param_specs()).map_err(does_not_fit)?;
            (graph, weights, format!("file:{path}"))
        }
        (None, Some(seed)) => {
            let graph = build(&info, info.classes, n, h, w)?;
            let weights = Weights::from_synthetic(seed, &graph.param_specs());
            let desc = format!("{}:seed={seed}", weights::SYNTHETIC_VERSION);
            (graph, weights, desc)
        }
        (None, None) => unreachable!("a seed was chosen above"),
    };
    Ok(Model {
        name: info.name.to_string(),
        kind: Kind::Zoo(info),
        graph,
        weights,
        weights_desc,
        input_shape: vec![n, 3, h, w],
        precision: Precision::F32,
        f16_storage: None,
    })
}

/// Builds zoo model `info` with `classes` outputs for `n × 3 × h × w`.
pub fn build(info: &ModelInfo, classes: usize, n: usize, h: usize, w: usize) -> CliResult<Graph> {
    Ok(models::build_with(
        info.name,
        &Options::new(n, h, w).classes(classes),
    )?)
}

// ---------------------------------------------------------------- ONNX files

/// What the ONNX file `path` declares, and its one runtime input (a model
/// with none or several gets the importer's own error).
pub fn declared(path: &str) -> CliResult<(Declared, IoInfo)> {
    let d = onnx::declared(path)?;
    match d.inputs.as_slice() {
        [one] => {
            let io = one.clone();
            Ok((d, io))
        }
        _ => {
            // The importer names the inputs (or says there is none).
            onnx::load(path)?;
            Err(CliError::Failed(format!(
                "{path}: the model has {} runtime inputs; the engine takes one",
                d.inputs.len()
            )))
        }
    }
}

/// The input shape to import an ONNX model with, from its declared dims:
/// dim 0 (the batch) is the fixed value or `--batch` (default 1), every
/// other symbolic dim takes `--size`. A flag that contradicts a fixed dim,
/// or a symbolic dim without `--size`, is a usage error naming the flag.
pub fn onnx_shape(
    command: &str,
    path: &str,
    io: &IoInfo,
    batch: Option<usize>,
    size: Option<usize>,
) -> CliResult<Vec<usize>> {
    let Some(dims) = &io.dims else {
        return Err(CliError::Failed(format!(
            "{path}: input `{}` declares no shape; `{command}` needs its rank and sizes \
             (`run` takes them from its input tensor)",
            io.name
        )));
    };
    let shown = onnx::fmt_dims(dims);
    let mut shape = Vec::with_capacity(dims.len());
    let mut symbolic = false;
    for (k, d) in dims.iter().enumerate() {
        shape.push(match (k, d) {
            (0, Dim::Fixed(b)) => {
                if let Some(n) = batch.filter(|&n| n != *b) {
                    return Err(usage(
                        command,
                        &format!(
                            "--batch {n}: input `{}` of {path} has a fixed batch of {b} ({shown})",
                            io.name
                        ),
                    ));
                }
                *b
            }
            (0, Dim::Symbolic(_)) => batch.unwrap_or(1),
            (_, Dim::Fixed(x)) => *x,
            (_, Dim::Symbolic(name)) => {
                symbolic = true;
                size.ok_or_else(|| {
                    usage(
                        command,
                        &format!(
                            "input `{}` of {path} has the symbolic dim `{name}` ({shown}): \
                             give --size S for it",
                            io.name
                        ),
                    )
                })?
            }
        });
    }
    if let Some(s) = size {
        if !symbolic && !shape.iter().skip(1).any(|&x| x == s) {
            return Err(usage(
                command,
                &format!(
                    "--size {s}: input `{}` of {path} has the fixed shape {shown}; leave out --size",
                    io.name
                ),
            ));
        }
    }
    Ok(shape)
}

/// Imports the ONNX file `--model` for the input `shape` (its own rank
/// and layout; `io` is its declared input, [`declared`]). The file carries its weights: `--weights` and
/// `--synthetic-seed` are refused. The input's bytes are checked against
/// the host's memory first.
pub fn load_onnx(
    command: &str,
    args: &ModelArgs,
    io: &IoInfo,
    shape: &[usize],
) -> CliResult<Model> {
    let path = args.model.as_str();
    for (flag, given) in [
        ("--weights", args.weights.is_some()),
        ("--synthetic-seed", args.synthetic_seed.is_some()),
    ] {
        if given {
            return Err(usage(
                command,
                &format!("{flag}: the ONNX file {path} carries its own weights; leave out {flag}"),
            ));
        }
    }
    check_host_shape(&format!("input `{}` of {path}", io.name), shape)?;
    let (graph, weights, info) = onnx::load_with(path, &ImportOptions::new().input_shape(shape))?;
    let input_shape = info.inputs[0].shape.clone();
    Ok(Model {
        name: path.to_string(),
        kind: Kind::Onnx(Box::new(info)),
        graph,
        weights,
        weights_desc: format!("onnx:{path}"),
        input_shape,
        precision: Precision::F32,
        f16_storage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(dims: Vec<Dim>) -> IoInfo {
        IoInfo {
            name: "x".into(),
            elem_type: 1,
            dims: Some(dims),
            shape: Vec::new(),
            layout: Layout::Nchw,
            constant: None,
        }
    }

    fn sym(s: &str) -> Dim {
        Dim::Symbolic(s.into())
    }

    fn err(r: CliResult<Vec<usize>>) -> (i32, String) {
        let e = r.unwrap_err();
        (e.exit_code(), e.to_string())
    }

    /// Dim 0 takes `--batch` (default 1), every other symbolic dim
    /// `--size`; fixed dims are kept, and a flag that contradicts them is
    /// a usage error naming it.
    #[test]
    fn onnx_shape_resolves_symbolic_dims_from_the_flags() {
        use Dim::Fixed;
        let shape = |dims, b, s| onnx_shape("bench", "m.onnx", &io(dims), b, s);
        let nchw = vec![sym("N"), Fixed(3), sym("H"), sym("W")];
        assert_eq!(shape(nchw.clone(), None, Some(64)).unwrap(), [1, 3, 64, 64]);
        assert_eq!(shape(nchw.clone(), Some(4), Some(9)).unwrap(), [4, 3, 9, 9]);
        let (code, e) = err(shape(nchw, Some(4), None));
        assert_eq!(code, 2);
        assert!(e.contains("`H`") && e.contains("--size"), "{e}");
        // NHWC reads the same way: the fixed channels stay where they are.
        let nhwc = vec![sym("batch"), sym("h"), sym("w"), Fixed(3)];
        assert_eq!(shape(nhwc, Some(2), Some(5)).unwrap(), [2, 5, 5, 3]);
        // Fixed dims: a contradicting --batch or --size is named; a
        // --size the model has anyway is fine.
        let fixed = vec![Fixed(1), Fixed(3), Fixed(224), Fixed(224)];
        assert_eq!(
            shape(fixed.clone(), None, Some(224)).unwrap(),
            [1, 3, 224, 224]
        );
        assert_eq!(
            shape(fixed.clone(), Some(1), None).unwrap(),
            [1, 3, 224, 224]
        );
        let (code, e) = err(shape(fixed.clone(), Some(8), None));
        assert_eq!(code, 2);
        assert!(
            e.contains("--batch 8") && e.contains("fixed batch of 1"),
            "{e}"
        );
        let (_, e) = err(shape(fixed, None, Some(64)));
        assert!(
            e.contains("--size 64") && e.contains("[1, 3, 224, 224]"),
            "{e}"
        );
        // No declared shape: a failure (exit 1) saying why.
        let mut none = io(Vec::new());
        none.dims = None;
        let (code, e) = err(onnx_shape("bench", "m.onnx", &none, None, Some(8)));
        assert_eq!(code, 1);
        assert!(e.contains("declares no shape"), "{e}");
    }

    /// The CPU executor's peak on a chain with a skip: while `b` is
    /// computed, `x` (read again by the add), `a` and `b` are alive; the
    /// outputs are copied out at the end.
    #[test]
    fn cpu_peak_follows_the_executors_lifetimes() {
        let mut g = Graph::new();
        let x = g.input("x", [1, 2, 4, 4]).unwrap();
        let a = g.relu("a", x).unwrap();
        let b = g.relu("b", a).unwrap();
        let c = g.add("c", b, x).unwrap();
        g.output(c);
        let v = 2 * 4 * 4 * 4; // bytes of one value
                               // x, a, b alive at `b` (a dies after it); at `c`: x, b, c; then c
                               // is copied out (4 values' worth at most).
        assert_eq!(cpu_peak_bytes(&g, [1, 2, 4, 4]).unwrap(), 3 * v as u128);
        // At batch 3 every value triples.
        assert_eq!(cpu_peak_bytes(&g, [3, 2, 4, 4]).unwrap(), 9 * v as u128);
    }

    #[test]
    fn onnx_files_are_told_from_zoo_names() {
        assert!(is_onnx("net.onnx") && is_onnx("dir/NET.ONNX"));
        assert!(!is_onnx("resnet50") && !is_onnx("no_such_model"));
    }
}
