//! `info`, `models`, `run` and `classify`, and the steps they share:
//! resolving a model, loading or synthesising its weights, and running a
//! graph on the GPU or the CPU reference executor.
//!
//! Every check on user input happens before a GPU context is created, so
//! a bad file or flag fails fast and the same way with or without a GPU.

use super::{usage, ClassifyArgs, CliError, CliResult, ModelArgs, RunArgs};
use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::graph::Graph;
use resincept::models::{self, ModelInfo, Options};
use resincept::preprocess::{self, Preprocess};
use resincept::weights::{self, Weights};
use resincept::{imagenet, Context, ContextOptions, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A compiled graph on the best wgpu adapter.
    Gpu,
    /// The CPU reference executor (slow, exact, needs no adapter).
    Cpu,
}

/// `--device gpu|cpu` (default gpu) of `command`.
pub fn device(command: &str, value: Option<&str>) -> CliResult<Device> {
    match value {
        None | Some("gpu") => Ok(Device::Gpu),
        Some("cpu") => Ok(Device::Cpu),
        Some(other) => Err(usage(
            command,
            &format!("--device must be gpu or cpu, got `{other}`"),
        )),
    }
}

/// The [`ModelInfo`] of `--model`; an unknown name lists the known ones.
pub fn model(args: &ModelArgs) -> CliResult<ModelInfo> {
    Ok(models::info(&args.model)?)
}

/// Builds `info`'s graph for a `batch × 3 × height × width` input.
pub fn build(info: &ModelInfo, batch: usize, height: usize, width: usize) -> CliResult<Graph> {
    Ok(models::build_with(
        info.name,
        &Options::new(batch, height, width).classes(info.classes),
    )?)
}

/// Where weights come from: `--weights FILE`, `--synthetic-seed N`, or
/// `default_seed` when neither is given (`None`: one is required).
/// Returns the weights, checked against the graph, and a description.
pub fn weights_for(
    command: &str,
    args: &ModelArgs,
    info: &ModelInfo,
    graph: &Graph,
    default_seed: Option<u64>,
) -> CliResult<(Weights, String)> {
    let specs = graph.param_specs();
    let seed = synthetic_seed(command, args)?;
    match (args.weights.as_deref(), seed) {
        (Some(_), Some(_)) => Err(usage(
            command,
            "give either --weights or --synthetic-seed, not both",
        )),
        (Some(path), None) => {
            let mut w = Weights::load_safetensors(path)?;
            if info.name == "inception_v3" {
                // torchvision's checkpoint carries the training-only
                // auxiliary head; the inference graph has none.
                let aux: Vec<String> = w
                    .keys()
                    .filter(|k| k.starts_with("AuxLogits."))
                    .map(String::from)
                    .collect();
                for k in aux {
                    w.remove(&k);
                }
            }
            w.check(&specs).map_err(|e| {
                CliError::Failed(format!("{path} does not fit model `{}`: {e}", info.name))
            })?;
            Ok((w, format!("file:{path}")))
        }
        (None, Some(seed)) => Ok((
            Weights::from_synthetic(seed, &specs),
            format!("{}:seed={seed}", weights::SYNTHETIC_VERSION),
        )),
        (None, None) => match default_seed {
            Some(seed) => Ok((
                Weights::from_synthetic(seed, &specs),
                format!("{}:seed={seed}", weights::SYNTHETIC_VERSION),
            )),
            None => Err(usage(
                command,
                "missing --weights FILE (or --synthetic-seed N)",
            )),
        },
    }
}

/// `--synthetic-seed`, parsed.
pub fn synthetic_seed(command: &str, args: &ModelArgs) -> CliResult<Option<u64>> {
    match &args.synthetic_seed {
        Some(s) => Ok(Some(s.parse::<u64>().map_err(|_| {
            usage(
                command,
                &format!("--synthetic-seed needs a non-negative integer, got `{s}`"),
            )
        })?)),
        None => Ok(None),
    }
}

/// The GPU context (honouring `RESINCEPT_BACKEND` / `RESINCEPT_ADAPTER`).
pub fn gpu_context() -> CliResult<Arc<Context>> {
    Ok(Arc::new(Context::from_env().map_err(|e| {
        CliError::Failed(format!(
            "{e} (or pass --device cpu where the command has it)"
        ))
    })?))
}

/// Runs `graph` on `input` on `device`; returns its outputs and a
/// description of the device.
pub fn execute(
    device: Device,
    graph: &Graph,
    weights: &Weights,
    input: &Tensor,
) -> CliResult<(Vec<Tensor>, String)> {
    match device {
        Device::Cpu => Ok((
            resincept::exec::cpu::run(graph, weights, input)?,
            "cpu".into(),
        )),
        Device::Gpu => {
            let ctx = gpu_context()?;
            let desc = format!("gpu:{} ({:?})", ctx.info.name, ctx.info.backend);
            let [n, _, h, w] = input.nchw()?;
            let compiled =
                CompiledGraph::compile(ctx, graph, weights, &CompileOptions::new(n, h, w))?;
            Ok((compiled.run(input)?, desc))
        }
    }
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

/// Reads and validates the `input` tensor of a `run` input file:
/// f32-convertible, rank 4, 3 channels, no zero dimension.
pub fn read_input(path: &str) -> CliResult<Tensor> {
    let t = weights::read_tensor(path, weights::INPUT_KEY).map_err(|e| match e {
        resincept::Error::Weights { key, message } if key == weights::INPUT_KEY => {
            CliError::Failed(format!("{path}: tensor `input`: {message}"))
        }
        other => other.into(),
    })?;
    if t.shape.len() != 4 {
        return Err(CliError::Failed(format!(
            "{path}: tensor `input` must have rank 4 (N, 3, H, W), found shape {:?}",
            t.shape
        )));
    }
    if t.shape[1] != 3 {
        return Err(CliError::Failed(format!(
            "{path}: tensor `input` must have 3 (RGB) channels in dimension 1 of (N, 3, H, W), \
             found {} in shape {:?}",
            t.shape[1], t.shape
        )));
    }
    if t.shape.contains(&0) {
        return Err(CliError::Failed(format!(
            "{path}: tensor `input` has a zero-sized dimension: {:?}",
            t.shape
        )));
    }
    Ok(t)
}

/// `resincept info`.
pub fn info() -> CliResult<()> {
    let opts = ContextOptions::from_env()?;
    let adapters = resincept::device::context::list_adapters(opts.backends);
    let chosen = Context::new(&opts);
    let mut out = String::new();
    out += &format!("adapters wgpu sees ({}), best first:\n", adapters.len());
    if adapters.is_empty() {
        out += "  (none)\n";
    }
    for entry in &adapters {
        let a = &entry.info;
        let mark = match &chosen {
            Ok(c) if c.info.name == a.name && c.info.backend == a.backend => "*",
            _ => " ",
        };
        out += &format!(
            "  {mark} {} ({:?}, {:?}){}\n",
            a.name,
            a.backend,
            a.device_type,
            driver(a)
        );
        if let Some(why) = &entry.shortfall {
            out += &format!("      skipped: {why}\n");
        }
    }
    if let Some(b) = opts.backends {
        out += &format!("RESINCEPT_BACKEND restricts to {b:?}\n");
    }
    if let Some(n) = &opts.adapter_name {
        out += &format!("RESINCEPT_ADAPTER asks for a name containing `{n}`\n");
    }
    match &chosen {
        Err(e) => {
            out += &format!("chosen: none: {e}\n");
        }
        Ok(ctx) => {
            let i = &ctx.info;
            out += &format!(
                "chosen: {} ({:?}, {:?}, vendor 0x{:04x}, device 0x{:04x}){}\n",
                i.name,
                i.backend,
                i.device_type,
                i.vendor,
                i.device,
                driver(i)
            );
            let names = |f: wgpu::Features| -> String {
                let s = f.to_string();
                if s.is_empty() {
                    "(none)".into()
                } else {
                    s
                }
            };
            out += &format!("features resincept uses: {}\n", names(ctx.features));
            out += &format!(
                "timestamp queries (for bench --profile): {}\n",
                if ctx.has_timestamps() { "yes" } else { "no" }
            );
            out += &format!("all adapter features: {}\n", names(ctx.adapter.features()));
            let l = &ctx.limits;
            out += "limits:\n";
            let rows: [(&str, u64); 6] = [
                (
                    "max_storage_buffer_binding_size",
                    l.max_storage_buffer_binding_size,
                ),
                ("max_buffer_size", l.max_buffer_size),
                (
                    "max_compute_workgroup_storage_size",
                    l.max_compute_workgroup_storage_size as u64,
                ),
                (
                    "max_compute_invocations_per_workgroup",
                    l.max_compute_invocations_per_workgroup as u64,
                ),
                (
                    "max_compute_workgroups_per_dimension",
                    l.max_compute_workgroups_per_dimension as u64,
                ),
                (
                    "max_storage_buffers_per_shader_stage",
                    l.max_storage_buffers_per_shader_stage as u64,
                ),
            ];
            for (name, v) in rows {
                let human = if v >= 1 << 20 {
                    format!(" ({})", bytes(v))
                } else {
                    String::new()
                };
                out += &format!("  {name:<40} {v}{human}\n");
            }
        }
    }
    super::out(&out)
}

fn driver(i: &wgpu::AdapterInfo) -> String {
    match (i.driver.is_empty(), i.driver_info.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(", driver {}", i.driver),
        (true, false) => format!(", driver {}", i.driver_info),
        (false, false) => format!(", driver {} {}", i.driver, i.driver_info),
    }
}

/// Bytes in binary units (`1.50 GiB`).
pub fn bytes(v: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v} B")
    } else {
        format!("{x:.2} {}", units[u])
    }
}

/// `resincept models`.
pub fn models() -> CliResult<()> {
    let mut out = format!(
        "{:<24} {:>11} {:>8} {:>6} {:>7}  {}\n",
        "model", "params", "GMACs", "input", "classes", "source"
    );
    for name in models::MODEL_NAMES {
        let info = models::info(name)?;
        let s = info.default_size;
        let g = build(&info, 1, s, s)?;
        let macs = g.macs([1, 3, s, s])?;
        out += &format!(
            "{:<24} {:>10.2}M {:>8.2} {:>6} {:>7}  {}\n",
            name,
            g.param_count() as f64 / 1e6,
            macs as f64 / 1e9,
            format!("{s}x{s}"),
            info.classes,
            info.source
        );
    }
    out += "GMACs: multiply-adds of convolutions and linear layers for one image at the default input size.\n";
    super::out(&out)
}

/// The metadata of the `--weights` file (empty without one): what
/// `scripts/export_weights.py` recorded about the weights.
pub fn weights_metadata(args: &ModelArgs) -> CliResult<HashMap<String, String>> {
    Ok(match &args.weights {
        Some(path) => weights::read_metadata(path)?,
        None => HashMap::new(),
    })
}

/// Whether inputs go through torchvision's Inception-v3 `transform_input`
/// first (`preprocess::inception_transform_input`): with
/// `--transform-input`, or for an `inception_v3` weights file whose
/// metadata `meta` says `transform_input = true` (`scripts/export_weights.py`
/// records how the model was built).
pub fn transform_input(
    command: &str,
    forced: bool,
    info: &ModelInfo,
    meta: &HashMap<String, String>,
) -> CliResult<bool> {
    if info.name != "inception_v3" {
        if forced {
            return Err(usage(
                command,
                &format!(
                    "--transform-input is torchvision's inception_v3 option; model `{}` has none",
                    info.name
                ),
            ));
        }
        return Ok(false);
    }
    if forced {
        return Ok(true);
    }
    Ok(meta
        .get("transform_input")
        .is_some_and(|v| matches!(v.as_str(), "true" | "True" | "1")))
}

/// `resincept run`.
pub fn run(args: &RunArgs) -> CliResult<()> {
    let info = model(&args.model)?;
    let input_path = args.input.as_str();
    let output_path = args.output.as_str();
    let device = device("run", args.device.as_deref())?;
    let mut input = read_input(input_path)?;
    let [n, _, h, w] = input.nchw()?;
    let graph = build(&info, n, h, w)?;
    let (weights, weights_desc) = weights_for("run", &args.model, &info, &graph, None)?;
    let transform = transform_input(
        "run",
        args.transform_input,
        &info,
        &weights_metadata(&args.model)?,
    )?;
    if transform {
        preprocess::inception_transform_input(&mut input)?;
    }
    let (outputs, device_desc) = execute(device, &graph, &weights, &input)?;
    let logits = squeeze_logits(
        outputs
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Failed(format!("model `{}` has no output", info.name)))?,
    );
    let meta = HashMap::from([
        ("model".to_string(), info.name.to_string()),
        ("weights".to_string(), weights_desc),
        ("device".to_string(), device_desc),
        ("input".to_string(), format!("{:?}", input.shape)),
        ("transform_input".to_string(), transform.to_string()),
    ]);
    weights::save_safetensors(output_path, &[("output", &logits)], Some(meta))?;
    eprintln!("wrote `output` {:?} to {output_path}", logits.shape);
    Ok(())
}

/// `resincept classify`.
pub fn classify(args: &ClassifyArgs) -> CliResult<()> {
    let info = model(&args.model)?;
    let top = args.top;
    let device = device("classify", args.device.as_deref())?;
    // The transform the weights were made for, where the file says
    // (scripts/export_weights.py records the library's own).
    let meta = weights_metadata(&args.model)?;
    let pre = Preprocess::for_model(info.name, info.default_size)
        .with_metadata(&meta)
        .map_err(|e| {
            CliError::Failed(format!(
                "{}: {e}",
                args.model.weights.as_deref().unwrap_or("")
            ))
        })?;
    let mut batch = pre.batch(&args.images)?;
    let n = args.images.len();
    let graph = build(&info, n, pre.crop, pre.crop)?;
    let (weights, weights_desc) = weights_for("classify", &args.model, &info, &graph, None)?;
    let transform = transform_input("classify", args.transform_input, &info, &meta)?;
    if transform {
        preprocess::inception_transform_input(&mut batch)?;
    }
    let (outputs, device_desc) = execute(device, &graph, &weights, &batch)?;
    let logits = squeeze_logits(
        outputs
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Failed(format!("model `{}` has no output", info.name)))?,
    );
    let k = logits.shape.get(1).copied().unwrap_or(0);
    let names = imagenet::class_names(k);
    let mut out = format!(
        "{} on {device_desc}, weights {weights_desc}; input {}x{} ({}{})\n",
        info.name,
        pre.crop,
        pre.crop,
        match pre.resize {
            Some(r) => format!(
                "resize {r} {}, centre crop {}, mean {:?} std {:?}",
                pre.interpolation.name(),
                pre.crop,
                pre.mean,
                pre.std
            ),
            None => "no resize".into(),
        },
        if transform { ", transform_input" } else { "" }
    );
    for (i, path) in args.images.iter().enumerate() {
        let probs = imagenet::softmax(&logits.data[i * k..(i + 1) * k]);
        out += &format!("{path}\n");
        for (c, p) in imagenet::top_k(&probs, top) {
            out += &format!("  {:>7.3}%  {:>4}  {}\n", p * 100.0, c, names[c]);
        }
    }
    super::out(&out)
}
