//! `resincept serve`: checks the flags, the model and its weights (before
//! any port is opened or the GPU touched, so a bad command line fails
//! fast), then hands over to [`resincept::serve::serve`], which compiles
//! the model on the GPU behind open ports.

use super::commands::{build, model, weights_for};
use super::{usage, CliError, CliResult, ServeArgs};
use resincept::serve::{self, BatchOptions, Config, Engine, GpuEngine, ModelSpec};
use std::sync::Arc;
use std::time::Duration;

/// `resincept serve`.
pub fn serve(args: &ServeArgs) -> CliResult<()> {
    let cmd = "serve";
    match args.precision.as_deref() {
        None | Some("f32") => {}
        Some("f16") => {
            return Err(CliError::Failed(
                "--precision f16: the engine has no f16 path yet; serve with f32 (the default)"
                    .into(),
            ))
        }
        Some(p) => {
            return Err(usage(
                cmd,
                &format!("--precision must be f32 or f16, got `{p}`"),
            ))
        }
    }
    if args.model.model.to_ascii_lowercase().ends_with(".onnx") {
        return Err(CliError::Failed(format!(
            "--model {}: serving ONNX files is not implemented yet; give a zoo model name \
             (see `resincept models`)",
            args.model.model
        )));
    }
    if args.host.trim().is_empty() {
        return Err(usage(cmd, "--host must not be empty"));
    }
    let info = model(&args.model)?;
    let size = args.size.unwrap_or(info.default_size);
    let max_batch = args.max_batch_size;
    let graph = build(&info, max_batch, size, size)?;
    let (weights, weights_desc) = weights_for(cmd, &args.model, &info, &graph, None)?;
    let name = args.name.clone().unwrap_or_else(|| info.name.to_string());
    if name.is_empty() || name.contains('/') {
        return Err(usage(
            cmd,
            &format!("--name must be a non-empty name without `/`, got `{name}`"),
        ));
    }
    let spec = ModelSpec::image_classifier(&name, size, info.classes, max_batch);
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
        "resincept serve: {} at {size}x{size}, weights {weights_desc}",
        info.name
    );
    let load_spec = spec.clone();
    let load: serve::Loader = Box::new(move || {
        let ctx = Arc::new(resincept::Context::from_env().map_err(|e| e.to_string())?);
        let engine =
            GpuEngine::compile(ctx, &graph, &weights, &load_spec).map_err(|e| e.to_string())?;
        eprintln!("resincept serve: compiled on {}", engine.adapter());
        Ok(Arc::new(engine) as Arc<dyn Engine>)
    });
    serve::serve(config, spec, load).map_err(CliError::Failed)
}
