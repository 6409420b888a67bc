//! An Inception block built by hand with the graph builder: the four
//! branches of Inception-v3's `InceptionC` (1×1; 1×1 → 1×7 → 7×1; the
//! doubled 7×1/1×7 factorisation; 3×3 average pool → 1×1), each conv with
//! batchnorm (eps 0.001) and ReLU, concatenated along channels. Runs it on
//! the GPU and on the CPU reference executor and prints the largest
//! absolute difference and the compile stats: the concat costs no copy
//! when its inputs are written in place.
//!
//! `cargo run --release --example inception_block`

use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::graph::{Conv2d, Graph, Pool, ValueId};
use resincept::weights::{synthetic_input, Weights};
use resincept::{exec, Context, ContextOptions};
use std::sync::Arc;

/// conv → batchnorm → ReLU, named as torchvision's `BasicConv2d`
/// (`{name}.conv`, `{name}.bn`).
fn basic(g: &mut Graph, name: &str, x: ValueId, conv: Conv2d) -> resincept::Result<ValueId> {
    let y = g.conv2d(&format!("{name}.conv"), x, conv)?;
    let y = g.batchnorm(&format!("{name}.bn"), y, 1e-3)?;
    g.relu(&format!("{name}.relu"), y)
}

/// `Mixed_6b` with `out` channels per branch and `c7` inside the 7×7 ones.
fn inception_c(input: [usize; 4], c7: usize, out: usize) -> resincept::Result<Graph> {
    let k17 = |c| Conv2d::rect(c, [1, 7]).pad_hw(0, 3);
    let k71 = |c| Conv2d::rect(c, [7, 1]).pad_hw(3, 0);
    let mut g = Graph::new();
    let x = g.input("x", input)?;
    let b1 = basic(&mut g, "Mixed_6b.branch1x1", x, Conv2d::new(out, 1))?;
    let b7 = basic(&mut g, "Mixed_6b.branch7x7_1", x, Conv2d::new(c7, 1))?;
    let b7 = basic(&mut g, "Mixed_6b.branch7x7_2", b7, k17(c7))?;
    let b7 = basic(&mut g, "Mixed_6b.branch7x7_3", b7, k71(out))?;
    let bd = basic(&mut g, "Mixed_6b.branch7x7dbl_1", x, Conv2d::new(c7, 1))?;
    let bd = basic(&mut g, "Mixed_6b.branch7x7dbl_2", bd, k71(c7))?;
    let bd = basic(&mut g, "Mixed_6b.branch7x7dbl_3", bd, k17(c7))?;
    let bd = basic(&mut g, "Mixed_6b.branch7x7dbl_4", bd, k71(c7))?;
    let bd = basic(&mut g, "Mixed_6b.branch7x7dbl_5", bd, k17(out))?;
    let bp = g.pool("Mixed_6b.avgpool", x, Pool::avg(3, 1, 1))?;
    let bp = basic(&mut g, "Mixed_6b.branch_pool", bp, Conv2d::new(out, 1))?;
    let y = g.concat("Mixed_6b.cat", &[b1, b7, bd, bp])?;
    g.output(y);
    Ok(g)
}

fn main() -> anyhow::Result<()> {
    let shape = [1, 96, 17, 17];
    let graph = inception_c(shape, 32, 48)?;
    let weights = Weights::from_synthetic(1, &graph.param_specs());
    let input = synthetic_input(1, &shape);
    let cpu = exec::cpu::run(&graph, &weights, &input)?.remove(0);
    println!(
        "InceptionC {shape:?} -> {:?}: {} nodes, {} parameters, {:.1} MMACs",
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
