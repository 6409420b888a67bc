//! Embedding resincept in a program: create the GPU context, build
//! ResNet-50, load weights (the safetensors file given as the first argument,
//! e.g. from `scripts/export_weights.py`, or synthetic ones), run a batch of
//! two images and print each image's top logits.
//!
//! `cargo run --release --example embed [-- resnet50.safetensors]`

use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::weights::{synthetic_input, Weights};
use resincept::{imagenet, models, Context, ContextOptions};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let ctx = match Context::new(&ContextOptions::default()) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!(
                "{e}\nNo GPU adapter: the CLI's `resincept run --device cpu` runs without one."
            );
            return Ok(());
        }
    };
    let (batch, size) = (2, 224);
    let graph = models::build("resnet50", batch, size)?;
    let weights = match std::env::args().nth(1) {
        Some(path) => Weights::load_safetensors(path)?,
        None => Weights::from_synthetic(1, &graph.param_specs()),
    };
    let opts = CompileOptions::new(batch, size, size);
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts)?;
    let input = synthetic_input(1, &[batch, 3, size, size]); // stands in for real images
    let logits = &model.run(&input)?[0];
    let names = imagenet::class_names(1000);
    println!("resnet50 on {}", ctx.info.name);
    for (i, row) in logits.data.chunks(logits.shape[1]).enumerate() {
        for (class, p) in imagenet::top_k(&imagenet::softmax(row), 3) {
            println!("image {i}: {:>6.2}% {}", p * 100.0, names[class]);
        }
    }
    Ok(())
}
