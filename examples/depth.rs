//! Depth on the GPU: plain and residual nets of 18 and 34 layers and the
//! 164- and 1001-layer pre-activation CIFAR ResNets, compiled and timed.
//! For each: dispatches per run, pipelines, activation memory (allocated,
//! and what it would be with no buffer sharing), weights, and median latency.
//! A 1001-layer net needs as little activation memory as a 164-layer one:
//! buffers are reused once their value is dead.
//!
//! Defaults are small enough for a software rasteriser (lavapipe) in CI:
//! batch 1, ImageNet nets at 64×64, CIFAR nets at 32×32, 2 timed runs.
//! `--full` (or `RESINCEPT_DEPTH_FULL=1`) uses 224×224; `--iters N` and
//! `--batch N` change the rest.
//!
//! `cargo run --release --example depth [-- --full --iters 20 --batch 8]`

use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::weights::{synthetic_input, Weights};
use resincept::{models, Context, ContextOptions};
use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let number = |name: &str, default: usize| -> anyhow::Result<usize> {
        match flag(name) {
            None => Ok(default),
            Some(i) => Ok(args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| anyhow::anyhow!("{name} needs a positive integer"))?),
        }
    };
    let full =
        flag("--full").is_some() || std::env::var("RESINCEPT_DEPTH_FULL").is_ok_and(|v| v == "1");
    let iters = number("--iters", 2)?;
    let batch = number("--batch", 1)?;
    let imagenet_size = if full { 224 } else { 64 };

    let ctx = match Context::new(&ContextOptions::default()) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            println!("{e}\nNo GPU adapter: nothing to time (the CLI's --device cpu runs a model without one).");
            return Ok(());
        }
    };
    println!(
        "{} ({:?}); batch {batch}, {iters} timed runs after 1 warm-up\n",
        ctx.info.name, ctx.info.backend
    );
    println!(
        "{:<24} {:>6} {:>10} {:>9} {:>12} {:>14} {:>11} {:>11}",
        "model", "input", "dispatches", "pipelines", "arena", "no sharing", "weights", "median_ms"
    );
    let nets = [
        "plain18",
        "resnet18",
        "plain34",
        "resnet34",
        "preact_resnet164_cifar",
        "preact_resnet1001_cifar",
    ];
    for name in nets {
        let info = models::info(name)?;
        let size = if info.default_size <= 32 {
            info.default_size
        } else {
            imagenet_size
        };
        let graph = models::build(name, batch, size)?;
        let weights = Weights::from_synthetic(1, &graph.param_specs());
        let opts = CompileOptions::new(batch, size, size);
        let compiled = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts)?;
        let input = synthetic_input(1, &[batch, 3, size, size]);
        compiled.run(&input)?;
        let mut ms: Vec<f64> = (0..iters)
            .map(|_| {
                let t = Instant::now();
                compiled
                    .run(&input)
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(|a, b| a.total_cmp(b));
        let median = (ms[(ms.len() - 1) / 2] + ms[ms.len() / 2]) / 2.0;
        let s = compiled.stats();
        let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1 << 20) as f64);
        println!(
            "{:<24} {:>6} {:>10} {:>9} {:>12} {:>14} {:>11} {:>11.2}",
            name,
            size,
            s.dispatches,
            s.pipelines,
            mib(s.arena_bytes),
            mib(s.values_bytes),
            mib(s.weight_bytes),
            median
        );
    }
    Ok(())
}
