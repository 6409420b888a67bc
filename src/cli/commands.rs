//! `info`, `models`, `run` and `classify`, and the steps they share:
//! resolving a model, loading or synthesising its weights, and running a
//! graph on the GPU or the CPU reference executor.
//!
//! Every check on user input happens before a GPU context is created, so
//! a bad file or flag fails fast and the same way with or without a GPU.

use super::model::{check_host_shape, declared, is_onnx, load_onnx, load_zoo, zoo_info, Model};
use super::{usage, ClassifyArgs, CliError, CliResult, ModelArgs, RunArgs};
use resincept::models::{self, ModelInfo};
use resincept::onnx::{Declared, Dim, IoInfo};
use resincept::preprocess::{self, Interpolation, Preprocess};
use resincept::tensor::{self, Layout};
use resincept::weights;
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
            out += &format!(
                "--precision f16 (auto) stores f16 {}\n",
                if ctx.supports(resincept::shaders::Storage::F16) {
                    "natively (WGSL f16; the device has SHADER_F16)"
                } else {
                    "packed in pairs into u32 words (the device lacks SHADER_F16)"
                }
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
        let g = models::build(name, 1, s)?;
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

/// `--transform-input` given for an ONNX model: a usage error (the option
/// is torchvision's Inception-v3's).
fn no_transform_for_onnx(command: &str, forced: bool, path: &str) -> CliResult<()> {
    if forced {
        return Err(usage(
            command,
            &format!(
                "--transform-input is torchvision's inception_v3 option; the ONNX model {path} \
                 has none (export the model with it instead)"
            ),
        ));
    }
    Ok(())
}

/// Reads an ONNX model's input from a safetensors file: the tensor named
/// as the model's input, or `input`.
pub fn read_onnx_input(path: &str, io: &IoInfo) -> CliResult<(String, Tensor)> {
    let mut names = vec![io.name.as_str()];
    if io.name != weights::INPUT_KEY {
        names.push(weights::INPUT_KEY);
    }
    weights::read_input_tensor(path, &names).map_err(|e| match e {
        resincept::Error::Weights { key, message } => {
            CliError::Failed(format!("input `{key}`: {message}"))
        }
        other => other.into(),
    })
}

/// The model `run` and `check --input` run on the tensor of `input_path`:
/// a zoo model at that tensor's batch and size, an ONNX model imported for
/// that tensor's shape. Returns the model and the input.
pub fn model_for_input(
    command: &str,
    args: &ModelArgs,
    input_path: &str,
    default_seed: Option<u64>,
) -> CliResult<(Model, Tensor)> {
    if is_onnx(&args.model) {
        let (_, io) = declared(&args.model)?;
        let (_, x) = read_onnx_input(input_path, &io)?;
        let model = load_onnx(command, args, &io, &x.shape)?;
        return Ok((model, x));
    }
    let info = zoo_info(args)?;
    let x = read_input(input_path)?;
    let [n, _, h, w] = x.nchw()?;
    let model = load_zoo(command, args, info, [n, h, w], default_seed)?;
    Ok((model, x))
}

/// `resincept run`.
pub fn run(args: &RunArgs) -> CliResult<()> {
    let device = device("run", args.device.as_deref())?;
    let f16_storage = args.precision.f16_storage("run")?;
    let (model, mut input) = model_for_input("run", &args.model, &args.input, None)?;
    let model = model.with_precision(args.precision.precision(), f16_storage);
    let transform = match model.zoo() {
        Some(info) => transform_input(
            "run",
            args.transform_input,
            info,
            &weights_metadata(&args.model)?,
        )?,
        None => {
            no_transform_for_onnx("run", args.transform_input, &model.name)?;
            false
        }
    };
    if transform {
        preprocess::inception_transform_input(&mut input)?;
    }
    let input_shape = format!("{:?}", input.shape);
    let (outputs, device_desc) = model.execute(device, input)?;
    let names = model.output_names();
    if outputs.len() != names.len() {
        return Err(CliError::Failed(format!(
            "model `{}` gave {} outputs for its {} names",
            model.name,
            outputs.len(),
            names.len()
        )));
    }
    let mut meta = HashMap::from([
        ("model".to_string(), model.name.clone()),
        ("weights".to_string(), model.weights_desc.clone()),
        ("device".to_string(), device_desc),
        ("input".to_string(), input_shape),
        ("input_name".to_string(), model.input_name().to_string()),
    ]);
    if model.zoo().is_some() {
        meta.insert("transform_input".to_string(), transform.to_string());
    }
    // Every output in the model's order: the computed ones (F32) and the
    // ones known at import (Dropout's mask: BOOL), in their own types.
    let mut list: Vec<(&str, weights::RawTensor)> = names
        .iter()
        .map(String::as_str)
        .zip(&outputs)
        .map(|(n, t)| {
            let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let dtype = safetensors::Dtype::F32;
            let shape = t.shape.clone();
            (
                n,
                weights::RawTensor {
                    dtype,
                    shape,
                    bytes,
                },
            )
        })
        .collect();
    for (i, io) in model.constant_outputs() {
        let t = io
            .constant
            .as_ref()
            .expect("constant outputs have their value");
        list.insert(i, (io.name.as_str(), t.to_raw()));
    }
    let refs: Vec<(&str, &weights::RawTensor)> = list.iter().map(|(n, t)| (*n, t)).collect();
    weights::save_safetensors_raw(&args.output, &refs, Some(meta))?;
    let written: Vec<String> = list
        .iter()
        .map(|(n, t)| format!("`{n}` {:?} {:?}", t.shape, t.dtype))
        .collect();
    eprintln!("wrote {} to {}", written.join(", "), args.output);
    Ok(())
}

/// Three numbers for `--mean` / `--std` (or the metadata's): comma- or
/// space-separated, brackets allowed.
fn three_numbers(s: &str) -> Option<[f32; 3]> {
    let v: Vec<f32> = s
        .trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<f32>().ok().filter(|x| x.is_finite()))
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

/// A resize value: a positive integer or `none`.
fn resize_value(s: &str) -> Option<Option<usize>> {
    match s.trim() {
        "none" => Some(None),
        t => t.parse::<usize>().ok().filter(|&n| n > 0).map(Some),
    }
}

/// classify's preprocessing flags, parsed (each error names its flag).
struct PreFlags {
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    resize: Option<Option<usize>>,
    crop: Option<usize>,
    interpolation: Option<Interpolation>,
}

impl PreFlags {
    fn parse(args: &ClassifyArgs) -> CliResult<Self> {
        let cmd = "classify";
        let numbers = |flag: &str, v: &Option<String>| -> CliResult<Option<[f32; 3]>> {
            v.as_deref()
                .map(|s| {
                    three_numbers(s).ok_or_else(|| {
                        usage(
                            cmd,
                            &format!("{flag} needs three numbers (R,G,B), got `{s}`"),
                        )
                    })
                })
                .transpose()
        };
        let std = numbers("--std", &args.std)?;
        if let Some(s) = std.filter(|s| s.contains(&0.0)) {
            return Err(usage(cmd, &format!("--std must not be zero, got {s:?}")));
        }
        Ok(PreFlags {
            mean: numbers("--mean", &args.mean)?,
            std,
            resize: args
                .resize
                .as_deref()
                .map(|s| {
                    resize_value(s).ok_or_else(|| {
                        usage(
                            cmd,
                            &format!("--resize needs a positive integer or `none`, got `{s}`"),
                        )
                    })
                })
                .transpose()?,
            crop: args.crop,
            interpolation: args
                .interpolation
                .as_deref()
                .map(|s| {
                    Interpolation::parse(s).map_err(|_| {
                        usage(
                            cmd,
                            &format!("--interpolation must be bilinear or bicubic, got `{s}`"),
                        )
                    })
                })
                .transpose()?,
        })
    }

    /// `pre` with every flag given applied over it.
    fn apply(&self, mut pre: Preprocess) -> Preprocess {
        if let Some(m) = self.mean {
            pre.mean = m;
        }
        if let Some(s) = self.std {
            pre.std = s;
        }
        if let Some(r) = self.resize {
            pre.resize = r;
        }
        if let Some(c) = self.crop {
            pre.crop = c;
        }
        if let Some(i) = self.interpolation {
            pre.interpolation = i;
        }
        pre
    }
}

/// The class names of `--labels FILE`: one per line (surrounding
/// whitespace and empty lines dropped), which must be `classes` many.
fn read_labels(path: &str) -> CliResult<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Failed(format!("--labels {path}: cannot read: {e}")))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// An ONNX classifier's preprocessing: each setting from its flag, else
/// from the model's `metadata_props`, else (crop) from its fixed input
/// size; `mean`, `std` and `resize` have no default (an error says which
/// flag is needed); the filter defaults to bilinear. Also returns whether
/// the input is NHWC (`[N, H, W, 3]` declared).
fn onnx_preprocess(
    path: &str,
    d: &Declared,
    io: &IoInfo,
    flags: &PreFlags,
) -> CliResult<(Preprocess, bool)> {
    let meta = |k: &str| d.metadata.get(k).map(String::as_str);
    let bad_meta = |k: &str, want: &str| {
        CliError::Failed(format!(
            "{path}: metadata_props `{k}` = `{}`: expected {want}; give the flag instead",
            meta(k).unwrap_or_default()
        ))
    };
    let need = |flag: &str, key: &str| {
        CliError::Failed(format!(
            "{path} is not a zoo model and its metadata_props has no `{key}`: give {flag}"
        ))
    };
    let dims = io.dims.clone().unwrap_or_default();
    let fixed = |k: usize| match dims.get(k) {
        Some(Dim::Fixed(x)) => Some(*x),
        _ => None,
    };
    if dims.len() != 4 {
        return Err(CliError::Failed(format!(
            "{path}: input `{}` is {}; classify feeds images, (N, 3, H, W) or (N, H, W, 3)",
            io.name,
            io.dims
                .as_ref()
                .map_or("of no declared shape".to_string(), |d| {
                    resincept::onnx::fmt_dims(d)
                })
        )));
    }
    let nhwc = fixed(3) == Some(3) && fixed(1) != Some(3);
    let (c, h, w) = if nhwc { (3, 1, 2) } else { (1, 2, 3) };
    if let Some(ch) = fixed(c).filter(|&ch| ch != 3) {
        return Err(CliError::Failed(format!(
            "{path}: input `{}` has {ch} channels ({}); classify feeds RGB images",
            io.name,
            resincept::onnx::fmt_dims(&dims)
        )));
    }
    let mean = match (flags.mean, meta("mean")) {
        (Some(m), _) => m,
        (None, Some(v)) => three_numbers(v).ok_or_else(|| bad_meta("mean", "three numbers"))?,
        (None, None) => return Err(need("--mean M,M,M", "mean")),
    };
    let std = match (flags.std, meta("std")) {
        (Some(s), _) => s,
        (None, Some(v)) => three_numbers(v)
            .filter(|s| !s.contains(&0.0))
            .ok_or_else(|| bad_meta("std", "three non-zero numbers"))?,
        (None, None) => return Err(need("--std S,S,S", "std")),
    };
    let resize = match (flags.resize, meta("resize")) {
        (Some(r), _) => r,
        (None, Some(v)) => {
            resize_value(v).ok_or_else(|| bad_meta("resize", "a positive integer or `none`"))?
        }
        (None, None) => return Err(need("--resize N (or --resize none)", "resize")),
    };
    let interpolation = match (flags.interpolation, meta("interpolation")) {
        (Some(i), _) => i,
        (None, Some(v)) => {
            Interpolation::parse(v).map_err(|_| bad_meta("interpolation", "bilinear or bicubic"))?
        }
        (None, None) => Interpolation::Bilinear,
    };
    let (fh, fw) = (fixed(h), fixed(w));
    let (crop, from) = match (flags.crop, meta("crop"), fh, fw) {
        (Some(c), ..) => (c, "--crop"),
        (None, Some(v), ..) => (
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| bad_meta("crop", "a positive integer"))?,
            "metadata_props `crop`",
        ),
        (None, None, Some(a), Some(b)) if a == b => (a, "the input's size"),
        _ => return Err(need("--crop C", "crop")),
    };
    for fixed in [fh, fw].into_iter().flatten() {
        if fixed != crop {
            return Err(CliError::Failed(format!(
                "{path}: crop {crop} (from {from}) but input `{}` is {}: classify makes \
                 square crops of the input's size",
                io.name,
                resincept::onnx::fmt_dims(&dims)
            )));
        }
    }
    let pre = Preprocess {
        resize,
        interpolation,
        crop,
        mean,
        std,
    };
    Ok((pre, nhwc))
}

/// `resincept classify`.
pub fn classify(args: &ClassifyArgs) -> CliResult<()> {
    let cmd = "classify";
    let top = args.top;
    let device = device(cmd, args.device.as_deref())?;
    let f16_storage = args.precision.f16_storage(cmd)?;
    let flags = PreFlags::parse(args)?;
    let n = args.images.len();
    let labels_file = args.labels.as_deref().map(read_labels).transpose()?;
    // The model (built for `chunk` images a run), how to preprocess, and
    // whether its input is NHWC.
    let (model, pre, nhwc, chunk, transform) = if is_onnx(&args.model.model) {
        let path = args.model.model.as_str();
        no_transform_for_onnx(cmd, args.transform_input, path)?;
        let (d, io) = declared(path)?;
        let (pre, nhwc) = onnx_preprocess(path, &d, &io, &flags)?;
        // A model exported for a fixed batch runs the images that many
        // at a time.
        let chunk = match io.dims.as_deref().and_then(<[Dim]>::first) {
            Some(Dim::Fixed(b)) => *b,
            _ => n,
        };
        let c = pre.crop;
        let shape = |nhwc| {
            if nhwc {
                vec![chunk, c, c, 3]
            } else {
                vec![chunk, 3, c, c]
            }
        };
        check_host_shape(
            "tensor `input` (the preprocessed images)",
            &[n.max(chunk), 3, c, c],
        )?;
        let mut model = load_onnx(cmd, &args.model, &io, &shape(nhwc))?;
        let nhwc_in = model.input_layout() == Layout::Nhwc;
        if nhwc_in != nhwc {
            // The declared dims read the other way round than the graph
            // uses them (symbolic channels): import for what it uses.
            model = load_onnx(cmd, &args.model, &io, &shape(nhwc_in))?;
        }
        (model, pre, nhwc_in, chunk, false)
    } else {
        let info = zoo_info(&args.model)?;
        // The transform the weights were made for, where the file says
        // (scripts/export_weights.py records the library's own), then the
        // flags.
        let meta = weights_metadata(&args.model)?;
        let base = Preprocess::for_model(info.name, flags.crop.unwrap_or(info.default_size))
            .with_metadata(&meta)
            .map_err(|e| {
                CliError::Failed(format!(
                    "{}: {e}",
                    args.model.weights.as_deref().unwrap_or("")
                ))
            })?;
        let pre = flags.apply(base);
        let c = pre.crop;
        check_host_shape("tensor `input` (the preprocessed images)", &[n, 3, c, c])?;
        let model = load_zoo(cmd, &args.model, info, [n, c, c], None)?;
        let transform = transform_input(cmd, args.transform_input, &info, &meta)?;
        (model, pre, false, n, transform)
    };
    let mut batch = pre.batch(&args.images)?;
    if transform {
        preprocess::inception_transform_input(&mut batch)?;
    }
    let model = model.with_precision(args.precision.precision(), f16_storage);
    let runner = model.runner(device)?;
    let c = pre.crop;
    let per_image = 3 * c * c;
    let mut logits: Vec<f32> = Vec::new();
    let mut k = 0;
    for first in (0..n).step_by(chunk.max(1)) {
        let count = chunk.min(n - first);
        // A short last chunk of a fixed-batch model is padded with zeros
        // (their outputs are dropped).
        let mut data = batch.data[first * per_image..(first + count) * per_image].to_vec();
        data.resize(chunk * per_image, 0.0);
        if nhwc {
            data = tensor::nchw_to_nhwc(&data, [chunk, 3, c, c]);
        }
        let x = Tensor::new(model.input_shape().to_vec(), data)?;
        let out = runner
            .run(x)?
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Failed(format!("model `{}` has no output", model.name)))?;
        k = out.len() / chunk;
        logits.extend_from_slice(&out.data[..count * k]);
    }
    let names = match (
        &labels_file,
        model.onnx().and_then(|i| i.preprocess.labels.clone()),
    ) {
        (Some(l), _) => check_labels(args.labels.as_deref().unwrap_or(""), l.clone(), k)?,
        (None, Some(l)) => check_labels(&format!("{}: metadata_props `labels`", model.name), l, k)?,
        (None, None) => match model.zoo() {
            // The zoo's own heads: ImageNet's or CIFAR-10's classes; a
            // fine-tuned head of another width: class indices.
            Some(info) if k == info.classes => imagenet::class_names(k),
            _ => (0..k).map(|i| format!("class {i}")).collect(),
        },
    };
    let probability = model.output_is_probability();
    let mut out = format!(
        "{} on {}, weights {}; input {c}x{c} ({}{})\n",
        model.name,
        runner.device,
        model.weights_desc,
        match pre.resize {
            Some(r) => format!(
                "resize {r} {}, centre crop {c}, mean {:?} std {:?}",
                pre.interpolation.name(),
                pre.mean,
                pre.std
            ),
            None => format!(
                "no resize, centre crop {c}, mean {:?} std {:?}",
                pre.mean, pre.std
            ),
        },
        if transform { ", transform_input" } else { "" }
    );
    for (i, path) in args.images.iter().enumerate() {
        let row = &logits[i * k..(i + 1) * k];
        let probs: Vec<f64> = if probability {
            row.iter().map(|&p| p as f64).collect()
        } else {
            imagenet::softmax(row)
        };
        out += &format!("{path}\n");
        for (c, p) in imagenet::top_k(&probs, top) {
            out += &format!("  {:>7.3}%  {:>4}  {}\n", p * 100.0, c, names[c]);
        }
    }
    super::out(&out)
}

/// `labels` (from `source`) when there is one per class.
fn check_labels(source: &str, labels: Vec<String>, classes: usize) -> CliResult<Vec<String>> {
    if labels.len() != classes {
        return Err(CliError::Failed(format!(
            "{source}: {} labels for the model's {classes} classes",
            labels.len()
        )));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_and_resize_values() {
        let want = Some([0.485, 0.456, 0.406]);
        for s in [
            "0.485,0.456,0.406",
            "[0.485, 0.456, 0.406]",
            "0.485 0.456 0.406",
        ] {
            assert_eq!(three_numbers(s), want, "{s}");
        }
        for bad in ["1,2", "1,2,3,4", "a,b,c", "1,,2", "", "inf,1,1"] {
            assert_eq!(three_numbers(bad), None, "{bad}");
        }
        assert_eq!(resize_value("none"), Some(None));
        assert_eq!(resize_value(" 256 "), Some(Some(256)));
        assert_eq!(resize_value("0"), None);
        assert_eq!(resize_value("big"), None);
    }
}
