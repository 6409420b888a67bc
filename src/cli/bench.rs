//! `resincept bench`: compile once, warm up, time `iters` runs.
//!
//! A timed run is [`CompiledGraph::run`] end to end: input upload, every
//! dispatch in one submission, output read-back, measured on the host with
//! a monotonic clock. Reported: median, min and max latency, images/s
//! (`batch / median`), and achieved GFLOP/s counted as `2 · MACs` of the
//! convolutions and linear layers (the figure PyTorch benchmarks quote), so
//! the number compares across engines. `--profile` adds a per-layer table
//! of GPU timestamp times (each dispatch in its own pass, so their sum is
//! above the end-to-end latency).

use super::commands::{bytes, gpu_context};
use super::model::{
    check_host, check_host_shape, declared, is_onnx, load_onnx, load_zoo, onnx_shape, zoo_info,
    Model,
};
use super::{out, usage, BenchArgs, CliError, CliResult};
use resincept::exec::gpu::{CompiledGraph, LayerTime, SplitK};
use resincept::kernels::conv2d;
use resincept::weights;
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Median, min and max of `xs` (non-empty).
pub fn summary(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// Per-layer times summed by name (a node's helper launches stay separate
/// rows: `Mixed_5b:copy[2]`), slowest first.
fn aggregate(layers: &[LayerTime]) -> Vec<(String, &'static str, f64, u64)> {
    let mut rows: Vec<(String, &'static str, f64, u64)> = Vec::new();
    for l in layers {
        match rows.iter_mut().find(|r| r.0 == l.name) {
            Some(r) => {
                r.2 += l.ms;
                r.3 += l.flops;
            }
            None => rows.push((l.name.clone(), l.kind, l.ms, l.flops)),
        }
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    rows
}

/// How many profile rows the table shows (JSON has them all).
const PROFILE_ROWS: usize = 30;

/// The model `bench` and `check` run on a synthetic input: a zoo model at
/// `--batch` (default 1) and `--size` (default its own), an ONNX model at
/// its static shape with symbolic dims from `--batch` / `--size`. The
/// input's bytes are checked against the host's memory before any weight
/// is loaded or synthesised.
pub fn synthetic_model(
    command: &str,
    args: &super::ModelArgs,
    batch: Option<usize>,
    size: Option<usize>,
) -> CliResult<Model> {
    if is_onnx(&args.model) {
        let (_, io) = declared(&args.model)?;
        let shape = onnx_shape(command, &args.model, &io, batch, size)?;
        return load_onnx(command, args, &io, &shape);
    }
    let info = zoo_info(args)?;
    let batch = batch.unwrap_or(1);
    let size = size.unwrap_or(info.default_size);
    check_host_shape("tensor `input`", &[batch, 3, size, size])?;
    load_zoo(command, args, info, [batch, size, size], Some(1))
}

/// `resincept bench`.
pub fn bench(args: &BenchArgs) -> CliResult<()> {
    let cmd = "bench";
    let iters = args.iters;
    let warmup = args.warmup;
    let f16_storage = args.precision.f16_storage(cmd)?;
    let split_k = match args.split_k.as_deref() {
        None | Some("auto") => SplitK::Auto,
        Some("on") => SplitK::On,
        Some("off") => SplitK::Off,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => SplitK::Target(n),
            _ => {
                return Err(usage(
                    cmd,
                    &format!(
                        "--split-k takes auto, on, off or a target workgroup count, got `{v}`"
                    ),
                ))
            }
        },
    };
    let grouped_direct = args
        .grouped_direct
        .unwrap_or(conv2d::DIRECT_MAX_CHANNELS_PER_GROUP);
    let tall_tile = match args.tall_tile.as_deref() {
        None => Some(conv2d::TALL_TILE_MIN_K),
        Some("off") => None,
        Some(v) => Some(v.parse::<usize>().ok().filter(|&k| k > 0).ok_or_else(|| {
            usage(
                cmd,
                &format!("--tall-tile takes a positive reduction size or off, got `{v}`"),
            )
        })?),
    };
    let json = args.json;
    let profile = args.profile;
    let model = synthetic_model(cmd, &args.model, args.batch, args.size)?
        .with_precision(args.precision.precision(), f16_storage);
    let name = model.name.as_str();
    let weights_desc = model.weights_desc.as_str();
    let ir_input = model.ir_input_shape();
    let [batch, _, height, width] = ir_input;
    let macs = model.graph.macs(ir_input)?;
    // Host memory first (the synthetic input and the outputs read back),
    // then the device's limits in the compile; the input is made last.
    check_host_shape(
        &format!("tensor `{}`", model.input_name()),
        model.input_shape(),
    )?;
    check_host("outputs (read back to the host)", model.output_bytes()?)?;

    let ctx = gpu_context()?;
    let adapter = ctx.info.name.clone();
    let backend = format!("{:?}", ctx.info.backend);
    let t0 = Instant::now();
    // On a terminal the progress line redraws itself; in a log it is one
    // line at the end.
    let tty = std::io::stderr().is_terminal();
    let mut last_shown = Instant::now();
    let compiled = CompiledGraph::compile_with_progress(
        ctx.clone(),
        &model.graph,
        &model.weights,
        &model
            .compile_options()
            .with_split_k(split_k)
            .with_grouped_direct_max(grouped_direct)
            .with_tall_tile_min_k(tall_tile),
        &mut |done, total| {
            if tty && (done == total || last_shown.elapsed().as_millis() >= 100) {
                last_shown = Instant::now();
                let _ = write!(
                    std::io::stderr(),
                    "\rcompiling {name}: {done}/{total} nodes, {} pipelines",
                    ctx.pipeline_count()
                );
            }
        },
    )?;
    let compile_s = t0.elapsed().as_secs_f64();
    let stats = compiled.stats().clone();
    let _ = writeln!(
        std::io::stderr(),
        "{}compiled {}: {} nodes, {} dispatches ({} convs split along K), {} pipelines \
         in {compile_s:.2} s",
        if tty { "\r\x1b[2K" } else { "" },
        name,
        stats.nodes,
        stats.dispatches,
        stats.split_k_convs,
        stats.pipelines
    );

    let input = model.gpu_input(weights::synthetic_input(
        weights::DEFAULT_SEED,
        model.input_shape(),
    ))?;
    let _ = write!(std::io::stderr(), "warming up ({warmup} runs)...");
    for _ in 0..warmup {
        compiled.run(&input)?;
    }
    let _ = writeln!(std::io::stderr(), " timing {iters} runs");
    let mut times_ms = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = compiled.run(&input)?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if out.iter().any(|o| o.data.iter().any(|v| !v.is_finite())) {
            return Err(CliError::Failed(format!(
                "model `{name}` produced a non-finite output on {adapter}"
            )));
        }
    }
    let (median, min, max) = summary(&times_ms);
    let images_per_s = batch as f64 / (median / 1e3);
    let gflops = 2.0 * macs as f64 / (median / 1e3) / 1e9;

    let layers = if profile {
        compiled.profile(&input)?
    } else {
        None
    };
    let rows = layers.as_deref().map(aggregate);

    if json {
        // Keys in insertion order (serde_json's `preserve_order`).
        let mut o = serde_json::Map::new();
        let mut set = |k: &str, v: serde_json::Value| {
            o.insert(k.to_string(), v);
        };
        use serde_json::json;
        set("model", json!(name));
        set("batch", json!(batch));
        // Square inputs (every zoo model) give one number.
        if height == width {
            set("size", json!(height));
        } else {
            set("size", json!([height, width]));
        }
        set("input_shape", json!(model.input_shape()));
        set(
            "input_layout",
            json!(match model.input_layout() {
                resincept::tensor::Layout::Nchw => "NCHW",
                resincept::tensor::Layout::Nhwc => "NHWC",
            }),
        );
        set("precision", json!(model.precision.name()));
        // The storage the compile chose: f32, f16 (native WGSL f16) or
        // f16-packed (pairs in u32, on devices without SHADER_F16).
        set("storage", json!(stats.storage.name()));
        set("adapter", json!(adapter));
        set("backend", json!(backend));
        set("device_type", json!(format!("{:?}", ctx.info.device_type)));
        set(
            "driver",
            json!(format!("{} {}", ctx.info.driver, ctx.info.driver_info).trim()),
        );
        set("weights", json!(weights_desc));
        set("dispatches", json!(stats.dispatches));
        set("micro_batch", json!(stats.micro_batch));
        set("micro_batches", json!(stats.micro_batches));
        set("split_k", json!(split_k.name()));
        set("grouped_direct_max", json!(grouped_direct));
        set("tall_tile_min_k", json!(tall_tile));
        set("split_k_convs", json!(stats.split_k_convs));
        set("scratch_bytes", json!(stats.scratch_bytes));
        set("pipelines", json!(stats.pipelines));
        set("arena_bytes", json!(stats.arena_bytes));
        set("values_bytes", json!(stats.values_bytes));
        set("lower_bound_bytes", json!(stats.lower_bound_bytes));
        set("weight_bytes", json!(stats.weight_bytes));
        set("device_bytes", json!(stats.device_bytes));
        set("flops", json!(stats.flops));
        set("macs", json!(macs));
        set("compile_s", finite(compile_s));
        set("warmup", json!(warmup));
        set("iters", json!(iters));
        set("latency_ms_median", finite(median));
        set("latency_ms_min", finite(min));
        set("latency_ms_max", finite(max));
        set("images_per_s", finite(images_per_s));
        set("gflops_per_s", finite(gflops));
        if profile {
            set("timestamps", json!(layers.is_some()));
            let list: Vec<serde_json::Value> = rows
                .iter()
                .flatten()
                .map(|(name, kind, ms, flops)| {
                    json!({"name": name, "kind": kind, "ms": finite(*ms), "flops": flops})
                })
                .collect();
            set("profile", serde_json::Value::Array(list));
        }
        let line = serde_json::to_string(&o)
            .map_err(|e| CliError::Failed(format!("writing JSON: {e}")))?;
        return out(&format!("{line}\n"));
    }

    let mut s = format!(
        "{} on {adapter} ({backend}, {:?}), {} storage, weights {weights_desc}\n\
         compile {compile_s:.2} s: {} dispatches ({} convs split along K, scratch {}), \
         {} pipelines, activations {} (no sharing {}, lower bound {}), weights {}, \
         all device buffers {}\n\
         {} timed runs after {warmup} warm-up; latency = upload + all dispatches + read-back\n\n",
        name,
        ctx.info.device_type,
        stats.storage.name(),
        stats.dispatches,
        stats.split_k_convs,
        bytes(stats.scratch_bytes),
        stats.pipelines,
        bytes(stats.arena_bytes),
        bytes(stats.values_bytes),
        bytes(stats.lower_bound_bytes),
        bytes(stats.weight_bytes),
        bytes(stats.device_bytes),
        iters,
    );
    if stats.micro_batches > 1 {
        s += &format!(
            "the batch runs as {} micro-batches of {} images (a whole-batch value exceeds \
             the device's storage-binding limit of {})\n\n",
            stats.micro_batches,
            stats.micro_batch,
            bytes(ctx.limits.max_storage_buffer_binding_size)
        );
    }
    s += &table_header();
    s += &table_row(name, batch, height, median, min, max, images_per_s, gflops);
    if profile {
        match &rows {
            None => {
                s += &format!(
                    "\nprofile: {adapter} ({backend}) has no timestamp queries \
                     (wgpu feature TIMESTAMP_QUERY), so per-layer GPU times are unavailable\n"
                );
            }
            Some(rows) => s += &profile_table(rows),
        }
    }
    out(&s)
}

/// A float as JSON: a number, or `null` when not finite (JSON has no NaN).
fn finite(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// The column header shared with `scripts/bench_pytorch.py`.
pub fn table_header() -> String {
    format!(
        "{:<24} {:>5} {:>5} {:>10} {:>9} {:>9} {:>10} {:>9}\n",
        "model", "batch", "size", "median_ms", "min_ms", "max_ms", "images/s", "GFLOP/s"
    )
}

/// One row under [`table_header`].
#[allow(clippy::too_many_arguments)]
pub fn table_row(
    model: &str,
    batch: usize,
    size: usize,
    median: f64,
    min: f64,
    max: f64,
    images_per_s: f64,
    gflops: f64,
) -> String {
    format!(
        "{model:<24} {batch:>5} {size:>5} {median:>10.3} {min:>9.3} {max:>9.3} \
         {images_per_s:>10.1} {gflops:>9.1}\n"
    )
}

fn profile_table(rows: &[(String, &'static str, f64, u64)]) -> String {
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut s = format!(
        "\nper-layer GPU time (timestamp queries, each dispatch in its own pass; \
         sum {total:.3} ms over {} layers)\n{:<40} {:<16} {:>9} {:>7} {:>9}\n",
        rows.len(),
        "layer",
        "kind",
        "ms",
        "share",
        "GFLOP/s"
    );
    for (name, kind, ms, flops) in rows.iter().take(PROFILE_ROWS) {
        let share = if total > 0.0 { ms / total * 100.0 } else { 0.0 };
        let gf = if *ms > 0.0 {
            *flops as f64 / (ms / 1e3) / 1e9
        } else {
            0.0
        };
        s += &format!("{name:<40} {kind:<16} {ms:>9.4} {share:>6.1}% {gf:>9.1}\n");
    }
    if rows.len() > PROFILE_ROWS {
        let rest: f64 = rows[PROFILE_ROWS..].iter().map(|r| r.2).sum();
        s += &format!(
            "... {} more layers: {rest:.3} ms ({:.1}%)\n",
            rows.len() - PROFILE_ROWS,
            if total > 0.0 {
                rest / total * 100.0
            } else {
                0.0
            }
        );
    }
    // By kind.
    let mut kinds: Vec<(&str, f64)> = Vec::new();
    for (_, kind, ms, _) in rows {
        match kinds.iter_mut().find(|k| k.0 == *kind) {
            Some(k) => k.1 += ms,
            None => kinds.push((kind, *ms)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    s += "by kind:";
    for (k, ms) in kinds {
        let share = if total > 0.0 { ms / total * 100.0 } else { 0.0 };
        s += &format!(" {k} {ms:.3} ms ({share:.1}%);");
    }
    s.pop();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(summary(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        assert_eq!(summary(&[5.0]), (5.0, 5.0, 5.0));
    }

    #[test]
    fn aggregates_by_name() {
        let l = |name: &str, ms| LayerTime {
            name: name.into(),
            kind: "conv2d",
            ms,
            flops: 10,
        };
        let rows = aggregate(&[l("a", 1.0), l("b", 3.0), l("a", 1.5)]);
        assert_eq!(rows[0].0, "b");
        assert_eq!((rows[1].0.as_str(), rows[1].2, rows[1].3), ("a", 2.5, 20));
    }
}
