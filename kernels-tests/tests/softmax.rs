//! GPU-vs-CPU tests for the row softmax, in every storage mode.

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::kernels::softmax::{self, SoftmaxParams};
use resincept::Context;

/// Runs the kernel in every storage mode against its reference.
fn check(ctx: &Context, case: &str, p: &SoftmaxParams, x: &[f32]) {
    let len = p.batch * p.classes;
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
            let p = SoftmaxParams { batch, classes };
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
        let p = SoftmaxParams {
            batch: 2,
            classes: 1000,
        };
        let x: Vec<f32> = rand_vec(80, 2000)
            .iter()
            .map(|v| offset + 10.0 * v)
            .collect();
        check(&ctx, name, &p, &x);
    }
    // One dominant class 2000 above the rest: its probability is exactly 1
    // and the others underflow to exactly 0.
    let p = SoftmaxParams {
        batch: 1,
        classes: 10,
    };
    let mut x = vec![-1000.0f32; 10];
    x[7] = 1000.0;
    check(&ctx, "one dominant class", &p, &x);
}

#[test]
fn softmax_equal_logits() {
    // A constant row is uniform: 1/K everywhere, whatever the constant.
    let Some(ctx) = gpu() else { return };
    let p = SoftmaxParams {
        batch: 2,
        classes: 300,
    };
    let mut x = vec![3.5f32; 300];
    x.extend(vec![-2e4f32; 300]);
    check(&ctx, "constant rows", &p, &x);
}

#[test]
fn softmax_many_rows() {
    // More rows than 65535: the row index is folded into the grid's y.
    let Some(ctx) = gpu() else { return };
    let p = SoftmaxParams {
        batch: 66_000,
        classes: 3,
    };
    let x = rand_vec(90, p.batch * p.classes);
    check(&ctx, "many rows", &p, &x);
}
