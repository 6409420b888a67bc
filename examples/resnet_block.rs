//! A ResNet bottleneck block built by hand with the graph builder (the
//! torchvision `Bottleneck` with a strided projection shortcut), run on the
//! GPU and on the CPU reference executor. Prints the largest absolute
//! difference between the two and what compilation made of the block: how
//! many dispatches after batchnorm folding and epilogue fusion, how many
//! pipelines, and the activation memory.
//!
//! `cargo run --release --example resnet_block`

use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::graph::{Conv2d, Graph};
use resincept::weights::{synthetic_input, Weights};
use resincept::{exec, Context, ContextOptions};
use std::sync::Arc;

/// `layer2.0` of a ResNet-50 with fewer channels: 1×1 → 3×3/2 → 1×1, each
/// with batchnorm (eps 1e-5), the shortcut a 1×1/2 conv with batchnorm,
/// add, ReLU. Node names are the `state_dict` prefixes torchvision uses.
fn bottleneck(input: [usize; 4], width: usize, out: usize) -> resincept::Result<Graph> {
    let mut g = Graph::new();
    let x = g.input("x", input)?;
    let y = g.conv2d("layer2.0.conv1", x, Conv2d::new(width, 1))?;
    let y = g.batchnorm("layer2.0.bn1", y, 1e-5)?;
    let y = g.relu("layer2.0.relu1", y)?;
    let y = g.conv2d("layer2.0.conv2", y, Conv2d::new(width, 3).stride(2).pad(1))?;
    let y = g.batchnorm("layer2.0.bn2", y, 1e-5)?;
    let y = g.relu("layer2.0.relu2", y)?;
    let y = g.conv2d("layer2.0.conv3", y, Conv2d::new(out, 1))?;
    let y = g.batchnorm("layer2.0.bn3", y, 1e-5)?;
    let s = g.conv2d("layer2.0.downsample.0", x, Conv2d::new(out, 1).stride(2))?;
    let s = g.batchnorm("layer2.0.downsample.1", s, 1e-5)?;
    let y = g.add("layer2.0.add", y, s)?;
    let y = g.relu("layer2.0.relu3", y)?;
    g.output(y);
    Ok(g)
}

fn main() -> anyhow::Result<()> {
    let shape = [2, 64, 28, 28];
    let graph = bottleneck(shape, 32, 128)?;
    let weights = Weights::from_synthetic(1, &graph.param_specs());
    let input = synthetic_input(1, &shape);
    let cpu = exec::cpu::run(&graph, &weights, &input)?.remove(0);
    println!(
        "bottleneck {shape:?} -> {:?}: {} nodes, {} parameters, {:.1} MMACs",
        cpu.shape,
        graph.nodes.len(),
        graph.param_count(),
        graph.macs(shape)? as f64 / 1e6
    );
    let ctx = match Context::new(&ContextOptions::default()) {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            println!("{e}\nNo GPU adapter: computed on the CPU reference executor only.");
            return Ok(());
        }
    };
    let opts = CompileOptions::new(shape[0], shape[2], shape[3]);
    let compiled = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts)?;
    let gpu = compiled.run(&input)?.remove(0);
    println!("GPU: {} ({:?})", ctx.info.name, ctx.info.backend);
    println!(
        "max |gpu - cpu| = {:.3e} (max |cpu| = {:.3})",
        gpu.max_abs_diff(&cpu)?,
        cpu.max_abs()
    );
    println!("{}", compiled.stats());
    Ok(())
}
