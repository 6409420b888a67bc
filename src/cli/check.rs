//! `resincept check`: the GPU executor against the CPU reference executor,
//! on one model and one input, for people checking the shaders.
//!
//! Both executors run the same graph with the same weights and input. Each
//! output is compared element by element with the executor's declared
//! tolerance (`exec::gpu::TOLERANCE`: `|gpu − cpu| ≤ atol + rtol·|cpu|`;
//! NaN on one side only fails). With `--precision f16` the GPU's f16 run
//! is compared with the CPU executor's f16 run of the graph as compiled
//! (so both round to f16 at the same places) within
//! `exec::gpu::TOLERANCE_F16`. `--layers` compares every layer instead:
//! the graph goes through the same passes as always (batchnorm folding,
//! epilogue fusion) except the in-place concat, which is memory layout, not
//! arithmetic; then every node's output is made an output of the graph, so
//! that both executors keep and return it. Each executor feeds each layer
//! its own previous results, so the first layer out of tolerance is where
//! the two part. `--expect FILE` also compares both executors' final
//! output with the file's tensor `output`, PyTorch's own (as
//! `export_weights.py --reference` writes it, or a golden fixture), within
//! [`EXPECT_REL_TOL`]·max|output| (in f16: `exec::f16_rel_tol` of the
//! compiled graph's rounding depth): the check of a real weights file
//! against PyTorch on the user's own GPU. The exit status is 1 when any compared
//! output is out of tolerance.

use super::bench::synthetic_model;
use super::commands::{gpu_context, model_for_input, transform_input, weights_metadata};
use super::model::{check_host, cpu_peak_bytes};
use super::{out, usage, CheckArgs, CliError, CliResult};
use resincept::exec::gpu::{CompiledGraph, TOLERANCE, TOLERANCE_F16};
use resincept::exec::{cpu, f16_rel_tol, f16_rounding_depth, Precision};
use resincept::graph::{Graph, Op};
use resincept::kernels::Tolerance;
use resincept::passes::{self, PassOptions};
use resincept::tensor::Layout;
use resincept::{preprocess, weights, Tensor};
use std::time::Instant;

/// The bar against PyTorch's output: max|ours − PyTorch| ≤ this ·
/// max|PyTorch|. PyTorch's own f32 forward pass lands within 5e-7 of its
/// float64 one on these models; a correct f32 engine summing in another
/// order lands well within 1e-4, the bar the golden tests hold too.
pub const EXPECT_REL_TOL: f32 = 1e-4;

/// How one output of the GPU executor compares with the CPU executor's.
struct Diff {
    max_ref: f32,
    max_err: f32,
    /// Elements out of tolerance (NaN included).
    bad: usize,
    len: usize,
}

fn diff(gpu: &Tensor, cpu: &Tensor, tolerance: Tolerance) -> Diff {
    let mut d = Diff {
        max_ref: 0.0,
        max_err: 0.0,
        bad: 0,
        len: cpu.data.len(),
    };
    for (&g, &c) in gpu.data.iter().zip(&cpu.data) {
        d.max_ref = d.max_ref.max(c.abs());
        // Equal values (infinities too) and NaN against NaN agree.
        if g == c || (g.is_nan() && c.is_nan()) {
            continue;
        }
        d.max_err = d.max_err.max((g - c).abs());
        if !tolerance.close(g, c) {
            d.bad += 1;
        }
    }
    if gpu.shape != cpu.shape {
        d.bad = d.len.max(1);
    }
    d
}

/// `graph` after the passes but the in-place concat, with every node's
/// output an output of the graph, in schedule order.
fn every_layer(graph: &Graph) -> CliResult<Graph> {
    let opts = PassOptions {
        inplace_concat: false,
        ..PassOptions::default()
    };
    let mut g = passes::optimize(graph, &opts)?;
    g.outputs.clear();
    let produced: Vec<_> = g
        .nodes
        .iter()
        .filter(|n| !matches!(n.op, Op::Input))
        .map(|n| n.output)
        .collect();
    for v in produced {
        g.output(v);
    }
    Ok(g)
}

/// `resincept check`.
pub fn check(args: &CheckArgs) -> CliResult<()> {
    let cmd = "check";
    let f16_storage = args.precision.f16_storage(cmd)?;
    // The model, and the input when it comes from a file (a synthetic one
    // is made after the memory checks and the compile).
    let (model, file_input) = match &args.input {
        Some(path) => {
            if args.batch.is_some() || args.size.is_some() {
                return Err(usage(
                    cmd,
                    "--input sets the batch and size; leave out --batch and --size",
                ));
            }
            let (model, x) = model_for_input(cmd, &args.model, path, Some(1))?;
            (model, Some(x))
        }
        None => (
            synthetic_model(cmd, &args.model, args.batch, args.size)?,
            None,
        ),
    };
    let model = model.with_precision(args.precision.precision(), f16_storage);
    let transform = match model.zoo() {
        Some(info) => transform_input(
            cmd,
            args.transform_input,
            info,
            &weights_metadata(&args.model)?,
        )?,
        None if args.transform_input => {
            return Err(usage(
                cmd,
                &format!(
                    "--transform-input is torchvision's inception_v3 option; the ONNX model {} \
                     has none",
                    model.name
                ),
            ))
        }
        None => false,
    };
    let layers = args.layers;
    let expect = match args.expect.as_deref() {
        Some(_) if layers => {
            return Err(usage(
                cmd,
                "--expect compares the final output; leave out --layers",
            ))
        }
        Some(path) => {
            let first = model.output_names().into_iter().next().unwrap_or_default();
            let mut names = vec![first.as_str()];
            if first != "output" {
                names.push("output");
            }
            let (_, t) = weights::read_input_tensor(path, &names).map_err(|e| match e {
                resincept::Error::Weights { key, message } => {
                    CliError::Failed(format!("--expect: tensor `{key}`: {message}"))
                }
                other => other.into(),
            })?;
            Some((path, t))
        }
        None => None,
    };
    let (graph, passes) = if layers {
        (every_layer(&model.graph)?, PassOptions::none())
    } else {
        (model.graph.clone(), PassOptions::default())
    };
    let ir_input = model.ir_input_shape();
    // Host memory: what the CPU executor holds at once (with --layers,
    // every layer) and the GPU's outputs read back.
    check_host(
        "activations of the CPU executor",
        cpu_peak_bytes(&graph, ir_input)?,
    )?;
    let gpu_outputs = if layers {
        cpu_peak_bytes(&graph, ir_input)?
    } else {
        model.output_bytes()?
    };
    check_host("outputs (read back to the host)", gpu_outputs)?;

    let ctx = gpu_context()?;
    // With --layers both sides compare IR values (NCHW); otherwise the
    // model's outputs in its own layouts.
    let mut opts = model.compile_options().with_passes(passes);
    if layers {
        opts = opts.with_output_layout(Layout::Nchw);
    }
    let compiled = CompiledGraph::compile(ctx.clone(), &graph, &model.weights, &opts)?;
    let mut input = match file_input {
        Some(x) => x,
        None => weights::synthetic_input(weights::DEFAULT_SEED, model.input_shape()),
    };
    if transform {
        preprocess::inception_transform_input(&mut input)?;
    }

    // In f16 the CPU executor runs the graph as compiled (batchnorms
    // folded, epilogues fused), so that it rounds where the GPU stores.
    let precision = model.precision;
    let cpu_graph = match precision {
        Precision::F32 => &graph,
        Precision::F16 => compiled.graph(),
    };
    let (tolerance, expect_tol) = match precision {
        Precision::F32 => (TOLERANCE, EXPECT_REL_TOL),
        Precision::F16 => (
            TOLERANCE_F16,
            f16_rel_tol(f16_rounding_depth(compiled.graph())),
        ),
    };
    let t = Instant::now();
    let want = cpu::run_with(
        cpu_graph,
        &model.weights,
        &model.cpu_input(&input)?,
        precision,
    )?;
    let cpu_s = t.elapsed().as_secs_f64();
    let shown = input
        .shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×");
    let t = Instant::now();
    let got = compiled.run(&model.gpu_input(input)?)?;
    let gpu_s = t.elapsed().as_secs_f64();
    let (got, want) = if layers {
        (got, want)
    } else {
        (model.outputs_of_gpu(got)?, model.outputs_of_cpu(want)?)
    };

    let name = model.name.as_str();
    let mut s = format!(
        "{name} on {} ({:?}, {} storage) against the CPU reference executor in {}; weights {}; \
         input {shown}{}\n\
         CPU {cpu_s:.2} s, GPU {gpu_s:.3} s; tolerance |gpu − cpu| ≤ {} + {}·|cpu|\n\n",
        ctx.info.name,
        ctx.info.backend,
        compiled.stats().storage.name(),
        precision.name(),
        model.weights_desc,
        match model.input_layout() {
            Layout::Nhwc => " (NHWC)",
            Layout::Nchw => "",
        },
        tolerance.atol,
        tolerance.rtol,
    );
    let (table, first_bad) = compare(&graph, &got, &want, tolerance);
    s += &table;
    let mut off_reference = Vec::new();
    if let Some((path, reference)) = &expect {
        s += &format!(
            "\nagainst `output` of {path} (max|output| = {:.4e}):\n",
            reference.max_abs()
        );
        for (who, ours) in [("GPU", &got[0]), ("CPU", &want[0])] {
            let (line, ok) = against_reference(who, ours, reference, expect_tol);
            s += &line;
            if !ok {
                off_reference.push(who);
            }
        }
    }
    if let Some(bad) = first_bad {
        out(&s)?;
        return Err(CliError::Failed(format!(
            "{name} on {}: GPU and CPU differ beyond tolerance, first at `{bad}`{}",
            ctx.info.name,
            if layers {
                ""
            } else {
                " (--layers finds the first layer that differs)"
            }
        )));
    }
    if let (Some((path, _)), false) = (&expect, off_reference.is_empty()) {
        out(&s)?;
        return Err(CliError::Failed(format!(
            "{name} on {}: {} output differs from `output` of {path} by more than \
             {} of its max|output|",
            ctx.info.name,
            off_reference.join(" and "),
            short(expect_tol)
        )));
    }
    s += &format!("\nok: all {} outputs within tolerance\n", want.len());
    if expect.is_some() {
        s += "ok: GPU and CPU within the bar of PyTorch's output\n";
    }
    out(&s)
}

/// A bar in two significant digits at most: `1e-4`, `1.9e-2`.
fn short(x: f32) -> String {
    format!("{x:.1e}").replace(".0e", "e")
}

/// One line comparing an executor's output with PyTorch's, and whether it
/// is within `bar`·max|output| ([`EXPECT_REL_TOL`] in f32; shapes must
/// agree; NaN fails).
fn against_reference(who: &str, ours: &Tensor, reference: &Tensor, bar: f32) -> (String, bool) {
    if ours.shape != reference.shape {
        let line = format!(
            "  {who}: shape {:?}, the file's is {:?}\n",
            ours.shape, reference.shape
        );
        return (line, false);
    }
    let scale = reference.max_abs();
    let err = ours
        .data
        .iter()
        .zip(&reference.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, |m, d| {
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        });
    let rel = err / scale.max(f32::MIN_POSITIVE);
    let ok = rel <= bar;
    let line = format!(
        "  {who}: max|err| / max|output| = {rel:.3e} ({} {})\n",
        if ok { "within" } else { "OVER" },
        short(bar)
    );
    (line, ok)
}

/// The table comparing each output of `graph` (GPU `got`, CPU `want`, in
/// output order), and the name of the first output out of tolerance.
fn compare(
    graph: &Graph,
    got: &[Tensor],
    want: &[Tensor],
    tolerance: Tolerance,
) -> (String, Option<String>) {
    let mut s = format!(
        "{:<40} {:<15} {:<18} {:>10} {:>10} {:>10}  {}\n",
        "output", "kind", "shape", "max|cpu|", "max|err|", "err/max", "out of tolerance"
    );
    let mut first_bad = None;
    for (k, &v) in graph.outputs.iter().enumerate() {
        let node = graph.producer(v);
        let name = node.map_or_else(|| format!("output {k}"), |n| n.name.clone());
        let kind = node.map_or("", |n| n.op.kind());
        let d = diff(&got[k], &want[k], tolerance);
        if d.bad > 0 && first_bad.is_none() {
            first_bad = Some(name.clone());
        }
        s += &format!(
            "{:<40} {:<15} {:<18} {:>10.3e} {:>10.3e} {:>10.2e}  {}\n",
            name,
            kind,
            format!("{:?}", want[k].shape),
            d.max_ref,
            d.max_err,
            d.max_err / d.max_ref.max(f32::MIN_POSITIVE),
            if d.bad == 0 {
                "0".to_string()
            } else {
                format!("{} of {}", d.bad, d.len)
            },
        );
    }
    (s, first_bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use resincept::models;
    use resincept::weights::Weights;

    /// Every layer of a small model on the CPU executor: the "CPU" side,
    /// and the "GPU" side before it is broken on purpose.
    fn layers() -> (Graph, Vec<Tensor>) {
        let model = models::build("preact_resnet164_cifar", 1, 8).unwrap();
        let g = every_layer(&model).unwrap();
        let weights = Weights::from_synthetic(1, &g.param_specs());
        let input = weights::synthetic_input(1, &[1, 3, 8, 8]);
        let outs = cpu::run(&g, &weights, &input).unwrap();
        (g, outs)
    }

    fn row<'a>(table: &'a str, name: &str) -> &'a str {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
    }

    #[test]
    fn equal_outputs_pass() {
        let (g, want) = layers();
        assert!(want.len() > 100, "{} layers", want.len());
        let (table, first_bad) = compare(&g, &want, &want, TOLERANCE);
        assert_eq!(first_bad, None, "{table}");
        assert_eq!(table.lines().count(), want.len() + 1);
    }

    /// The first broken layer is named, however many are broken after it;
    /// each broken row counts its bad elements; a change inside the
    /// tolerance is not reported.
    #[test]
    fn the_first_layer_out_of_tolerance_is_named() {
        let (g, want) = layers();
        let name = |k: usize| g.producer(g.outputs[k]).unwrap().name.clone();
        let mut got = want.clone();
        // Within tolerance: atol + rtol·|cpu| is at least 1e-3.
        got[3].data[0] += 0.5 * TOLERANCE.atol;
        let (_, first_bad) = compare(&g, &got, &want, TOLERANCE);
        assert_eq!(first_bad, None);

        let (a, b) = (10, 40);
        got[a].data[5] += 1.0;
        got[b].data[0] = f32::NAN;
        got[b].data[1] = f32::INFINITY;
        let (table, first_bad) = compare(&g, &got, &want, TOLERANCE);
        assert_eq!(first_bad, Some(name(a)), "{table}");
        let len = |k: usize| want[k].data.len();
        assert!(
            row(&table, &name(a)).ends_with(&format!("1 of {}", len(a))),
            "{table}"
        );
        assert!(
            row(&table, &name(b)).ends_with(&format!("2 of {}", len(b))),
            "{table}"
        );
        assert!(row(&table, &name(3)).ends_with(" 0"), "{table}");
    }

    /// NaN on both sides agrees (PyTorch's NaN propagation), NaN on one
    /// side does not, and a shape that differs fails every element.
    #[test]
    fn nan_and_shape() {
        let t = |shape: Vec<usize>, data: Vec<f32>| Tensor::new(shape, data).unwrap();
        let nan = f32::NAN;
        assert_eq!(
            diff(
                &t(vec![2], vec![nan, 1.0]),
                &t(vec![2], vec![nan, 1.0]),
                TOLERANCE
            )
            .bad,
            0
        );
        assert_eq!(
            diff(
                &t(vec![2], vec![nan, 1.0]),
                &t(vec![2], vec![0.0, 1.0]),
                TOLERANCE
            )
            .bad,
            1
        );
        assert_eq!(
            diff(
                &t(vec![2], vec![0.0, 1.0]),
                &t(vec![2], vec![nan, 1.0]),
                TOLERANCE
            )
            .bad,
            1
        );
        let d = diff(
            &t(vec![1, 2], vec![0.0, 1.0]),
            &t(vec![2, 1], vec![0.0, 1.0]),
            TOLERANCE,
        );
        assert_eq!(d.bad, 2);
    }
}
