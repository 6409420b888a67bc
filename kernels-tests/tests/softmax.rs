//! GPU-vs-CPU tests for the softmax over rows and over any axis of a
//! 4-D tensor, in every storage mode, and graphs holding it through both
//! executors.

use kernels_tests::{
    assert_close, gpu, nan_tensor, options_in, rand_vec, storages, trace_dispatches,
};
use resincept::exec::cpu;
use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::exec::Precision;
use resincept::graph::Graph;
use resincept::kernels::softmax::{self, SoftmaxParams};
use resincept::shaders::Storage;
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw, Tensor};
use resincept::weights::Weights;
use resincept::Context;

/// Runs the kernel in every storage mode against its reference.
fn check(ctx: &Context, case: &str, p: &SoftmaxParams, x: &[f32]) {
    let len = p.len();
    for storage in storages(ctx) {
        let case = format!("{} {case}", storage.name());
        let mut want = vec![0.0; len];
        if storage.is_f16() {
            softmax::softmax_cpu_f16(p, x, &mut want);
        } else {
            softmax::softmax_cpu(p, x, &mut want);
        }
        let bx = ctx.tensor_buffer_init("x", storage, x);
        let out = nan_tensor(ctx, storage, len);
        let d = softmax::softmax_gpu(ctx, &case, storage, p, &bx, &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, storage, len).unwrap();
        assert_close(&case, &got, &want, softmax::tolerance(storage));
    }
}

#[test]
fn softmax_sweep() {
    let Some(ctx) = gpu() else { return };
    // K = 1 (always 1.0), fewer classes than lanes, one past the 256-wide
    // workgroup, ImageNet's 1000 and 1001 (TF-ported Inception heads);
    // batch 1 and 3. Logits are 4·U(−1, 1).
    for &classes in &[1usize, 2, 10, 257, 1000, 1001] {
        for &batch in &[1usize, 3] {
            let p = SoftmaxParams::rows(batch, classes);
            let x: Vec<f32> = rand_vec(classes as u64, batch * classes)
                .iter()
                .map(|v| 4.0 * v)
                .collect();
            check(&ctx, &format!("{p:?}"), &p, &x);
        }
    }
}

#[test]
fn softmax_large_logits() {
    // Regression for numerical stability: exp(1000) overflows f32, so a
    // kernel that does not subtract the row maximum returns inf/NaN here.
    let Some(ctx) = gpu() else { return };
    for (name, offset) in [("around +1e3", 1000.0f32), ("around -1e3", -1000.0)] {
        let p = SoftmaxParams::rows(2, 1000);
        let x: Vec<f32> = rand_vec(80, 2000)
            .iter()
            .map(|v| offset + 10.0 * v)
            .collect();
        check(&ctx, name, &p, &x);
    }
    // One dominant class 2000 above the rest: its probability is exactly 1
    // and the others underflow to exactly 0.
    let p = SoftmaxParams::rows(1, 10);
    let mut x = vec![-1000.0f32; 10];
    x[7] = 1000.0;
    check(&ctx, "one dominant class", &p, &x);
}

#[test]
fn softmax_equal_logits() {
    // A constant row is uniform: 1/K everywhere, whatever the constant.
    let Some(ctx) = gpu() else { return };
    let p = SoftmaxParams::rows(2, 300);
    let mut x = vec![3.5f32; 300];
    x.extend(vec![-2e4f32; 300]);
    check(&ctx, "constant rows", &p, &x);
}

#[test]
fn softmax_many_rows() {
    // More rows than 65535: the row index is folded into the grid's y.
    let Some(ctx) = gpu() else { return };
    let p = SoftmaxParams::rows(66_000, 3);
    let x = rand_vec(90, p.batch * p.classes);
    check(&ctx, "many rows", &p, &x);
}

#[test]
fn softmax_axis_sweep() {
    // Every NCHW axis of odd, pairwise different shapes (so a wrong axis
    // or stride cannot pass by symmetry): the GPU over the NHWC storage
    // (strided rows for N, H, W; contiguous for C) against the reference
    // over NCHW. A softmax axis of length 1 is all ones; one of 257 runs
    // past the 256-lane workgroup with a stride.
    let Some(ctx) = gpu() else { return };
    let shapes = [[2, 3, 5, 7], [3, 1, 4, 5], [1, 6, 257, 3], [5, 4, 1, 1]];
    for (si, &shape) in shapes.iter().enumerate() {
        let len: usize = shape.iter().product();
        let x: Vec<f32> = rand_vec(400 + si as u64, len)
            .iter()
            .map(|v| 6.0 * v)
            .collect();
        for axis in 0..4 {
            let pc = SoftmaxParams::nchw(shape, axis);
            let pg = SoftmaxParams::nhwc(shape, axis);
            assert_eq!((pg.len(), pg.classes), (len, shape[axis]));
            for storage in storages(&ctx) {
                let case = format!("{} softmax of {shape:?} over axis {axis}", storage.name());
                let mut want = vec![f32::NAN; len];
                if storage.is_f16() {
                    softmax::softmax_cpu_f16(&pc, &x, &mut want);
                } else {
                    softmax::softmax_cpu(&pc, &x, &mut want);
                }
                let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, shape));
                let out = nan_tensor(&ctx, storage, len);
                let d = softmax::softmax_gpu(&ctx, &case, storage, &pg, &bx, &out).unwrap();
                // One (shape, axis) in four is traced for the Dawn replay.
                if (si + axis) % 4 == 1 {
                    let tol = softmax::tolerance(storage);
                    trace_dispatches(
                        &ctx,
                        "softmax",
                        &case,
                        &[&d],
                        &[("out", &out, tol, storage)],
                    );
                }
                ctx.run_dispatches(&[&d]).unwrap();
                let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, len).unwrap(), shape);
                assert_close(&case, &got, &want, softmax::tolerance(storage));
            }
        }
    }
}

#[test]
fn softmax_reference_by_hand() {
    // Over H of a (1, 1, 2, 2) tensor [[0, ln 3], [ln 3, 0]]: each column
    // sums to one, 1/4 and 3/4.
    let l3 = 3f32.ln();
    let p = SoftmaxParams::nchw([1, 1, 2, 2], 2);
    let mut out = vec![f32::NAN; 4];
    softmax::softmax_cpu(&p, &[0.0, l3, l3, 0.0], &mut out);
    let want = [0.25, 0.75, 0.75, 0.25];
    for (g, w) in out.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{out:?}");
    }
}

/// A per-pixel softmax over C and one over N in a graph, through both
/// executors and every storage mode: the one over N couples the images.
#[test]
fn softmax_axis_graph_both_executors() {
    for (axis, coupled) in [(1, false), (3, false), (0, true)] {
        let mut g = Graph::new();
        let shape = [3, 5, 4, 7];
        let x = g.input("x", shape).unwrap();
        let y = g.softmax_axis("scores", x, axis).unwrap();
        g.output(y);
        assert_eq!(g.batch_coupled().is_some(), coupled);
        let w = Weights::new();
        let data: Vec<f32> = rand_vec(9, shape.iter().product())
            .iter()
            .map(|v| 5.0 * v)
            .collect();
        let input = Tensor::new(shape.to_vec(), data).unwrap();
        let want32 = cpu::run(&g, &w, &input).unwrap();
        let want16 = cpu::run_with(&g, &w, &input, Precision::F16).unwrap();
        let Some(ctx) = gpu() else { return };
        for storage in storages(&ctx) {
            let opts = options_in(CompileOptions::new(3, 4, 7).poisoned(), storage);
            let want = if storage == Storage::F32 {
                &want32
            } else {
                &want16
            };
            let model = CompiledGraph::compile(ctx.clone(), &g, &w, &opts).unwrap();
            let got = model.run(&input).unwrap();
            assert_eq!(got[0].shape, want[0].shape);
            let case = format!("softmax axis {axis} graph {}", storage.name());
            assert_close(
                &case,
                &got[0].data,
                &want[0].data,
                softmax::tolerance(storage),
            );
        }
    }
}
