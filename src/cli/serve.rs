//! `resincept serve`: checks the flags, the model and its weights (before
//! any port is opened or the GPU touched, so a bad command line fails
//! fast), then hands over to [`resincept::serve::serve`], which compiles
//! the model on the GPU behind open ports.

use super::model::{
    check_host, check_host_shape, declared, is_onnx, load_onnx, load_zoo, onnx_shape, zoo_info,
    Model,
};
use super::{usage, CliError, CliResult, ServeArgs};
use resincept::onnx::{Dim, IoInfo};
use resincept::serve::{self, BatchOptions, Config, Engine, GpuEngine, ModelSpec, TensorSpec};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `resincept serve`.
pub fn serve(args: &ServeArgs) -> CliResult<()> {
    let cmd = "serve";
    let f16_storage = args.precision.f16_storage(cmd)?;
    if args.host.trim().is_empty() {
        return Err(usage(cmd, "--host must not be empty"));
    }
    let (model, spec) = if is_onnx(&args.model.model) {
        onnx_model(args)?
    } else {
        let info = zoo_info(&args.model)?;
        let size = args.size.unwrap_or(info.default_size);
        let max_batch = args.max_batch_size;
        check_host_shape(
            "tensor `input` (a whole batch, to warm up)",
            &[max_batch, 3, size, size],
        )?;
        let model = load_zoo(cmd, &args.model, info, [max_batch, size, size], None)?;
        // The head's width is the checkpoint's (a fine-tuned head).
        let classes = model.output_per_image()?;
        let name = args.name.clone().unwrap_or_else(|| info.name.to_string());
        let spec = ModelSpec::image_classifier(&name, size, classes, max_batch);
        (model, spec)
    };
    if spec.name.is_empty() || spec.name.contains('/') {
        return Err(usage(
            cmd,
            &format!(
                "--name must be a non-empty name without `/`, got `{}`",
                spec.name
            ),
        ));
    }
    check_host("outputs (read back to the host)", model.output_bytes()?)?;
    let max_batch = spec.max_batch;
    let config = Config {
        host: args.host.clone(),
        http_port: args.http_port,
        grpc_port: args.grpc_port,
        batch: BatchOptions {
            max_batch,
            max_queue_delay: Duration::from_micros(args.max_queue_delay_us),
            max_queue_size: args.max_queue_size,
        },
        max_body_bytes: args.max_body_bytes,
        grace: Duration::from_secs(args.grace_period_s),
    };
    eprintln!(
        "resincept serve: {} with input {:?}, weights {}",
        model.name,
        model.input_shape(),
        model.weights_desc
    );
    let model = model.with_precision(args.precision.precision(), f16_storage);
    let load_spec = spec.clone();
    let load: serve::Loader = Box::new(move || {
        let ctx = Arc::new(resincept::Context::from_env().map_err(|e| e.to_string())?);
        let engine = GpuEngine::compile_with(
            ctx,
            &model.graph,
            &model.weights,
            &load_spec,
            &model.compile_options(),
        )
        .map_err(|e| e.to_string())?;
        eprintln!(
            "resincept serve: compiled on {} ({} storage)",
            engine.adapter(),
            engine.storage().name()
        );
        Ok(Arc::new(engine) as Arc<dyn Engine>)
    });
    serve::serve(config, spec, load).map_err(CliError::Failed)
}

/// An ONNX model to serve, and what the protocol advertises: the model's
/// own input and output names and per-image shapes (in its own layout),
/// served as the file's stem unless `--name`. The batch is dim 0: a
/// symbolic batch is compiled for `--max-batch-size`, a fixed one for
/// itself. One output.
fn onnx_model(args: &ServeArgs) -> CliResult<(Model, ModelSpec)> {
    let cmd = "serve";
    let path = args.model.model.as_str();
    let (_, io) = declared(path)?;
    let fixed_batch = match io.dims.as_deref().and_then(<[Dim]>::first) {
        Some(Dim::Fixed(b)) => Some(*b),
        _ => None,
    };
    let batch = fixed_batch.is_none().then_some(args.max_batch_size);
    let shape = onnx_shape(cmd, path, &io, batch, args.size)?;
    let model = load_onnx(cmd, &args.model, &io, &shape)?;
    let info = model.onnx().expect("an ONNX model");
    if let Some(node) = model.graph.batch_coupled() {
        return Err(CliError::Failed(format!(
            "{path}: node `{}` ({}) mixes the images of a batch; serve batches independent \
             requests, so it serves models whose images run independently",
            node.name,
            node.op.kind()
        )));
    }
    let max_batch = shape[0];
    let [output] = info.outputs.as_slice() else {
        return Err(CliError::Failed(format!(
            "{path} has {} outputs ({}); serve serves models with one",
            info.outputs.len(),
            info.outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let per_image = |io: &IoInfo, what: &str| -> CliResult<Vec<usize>> {
        match io.shape.split_first() {
            Some((&n, rest)) if n == max_batch => Ok(rest.to_vec()),
            _ => Err(CliError::Failed(format!(
                "{path}: {what} `{}` has shape {:?}, whose dim 0 is not the batch of \
                 {max_batch}; serve needs a batch dimension first",
                io.name, io.shape
            ))),
        }
    };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let spec = ModelSpec {
        name,
        version: "1".into(),
        platform: "resincept",
        input: TensorSpec {
            name: info.inputs[0].name.clone(),
            datatype: "FP32",
            dims: per_image(&info.inputs[0], "input")?,
        },
        output: TensorSpec {
            name: output.name.clone(),
            datatype: "FP32",
            dims: per_image(output, "output")?,
        },
        max_batch,
    };
    if let Some(b) = fixed_batch.filter(|&b| b != args.max_batch_size) {
        eprintln!(
            "resincept serve: input `{}` of {path} has a fixed batch of {b}: runs take 1 to {b} \
             images whatever --max-batch-size says",
            io.name
        );
    }
    Ok((model, spec))
}
