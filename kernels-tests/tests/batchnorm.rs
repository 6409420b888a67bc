//! GPU-vs-CPU tests for inference batchnorm (NHWC on the GPU, NCHW in the
//! reference), in every storage mode.

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::graph::Clamp;
use resincept::kernels::batchnorm::{self, BatchNormParams};
use resincept::shaders::Storage;
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};
use resincept::Context;

/// Per-channel parameters for a test: gamma in [-1, 1), beta in [-1, 1),
/// mean in [-0.5, 0.5), var in [0.25, 1.25) (a positive running variance).
fn bn_params(seed: u64, c: usize) -> [Vec<f32>; 4] {
    let gamma = rand_vec(seed, c);
    let beta = rand_vec(seed + 1, c);
    let mean: Vec<f32> = rand_vec(seed + 2, c).iter().map(|v| 0.5 * v).collect();
    let var: Vec<f32> = rand_vec(seed + 3, c)
        .iter()
        .map(|v| 0.75 + 0.5 * v)
        .collect();
    [gamma, beta, mean, var]
}

/// Runs the GPU kernel and the reference on NCHW `x`; compares in NCHW.
fn check(
    ctx: &Context,
    storage: Storage,
    case: &str,
    p: &BatchNormParams,
    x: &[f32],
    bn: &[Vec<f32>; 4],
) {
    let case = &format!("{} {case}", storage.name());
    let shape = [p.batch, p.channels, p.h, p.w];
    let len = x.len();
    let [gamma, beta, mean, var] = bn;
    let mut want = vec![0.0; len];
    if storage.is_f16() {
        batchnorm::batchnorm_cpu_f16(p, x, gamma, beta, mean, var, &mut want);
    } else {
        batchnorm::batchnorm_cpu(p, x, gamma, beta, mean, var, &mut want);
    }
    let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(x, shape));
    let bg = ctx.storage_buffer_init("gamma", gamma);
    let bb = ctx.storage_buffer_init("beta", beta);
    let bm = ctx.storage_buffer_init("mean", mean);
    let bv = ctx.storage_buffer_init("var", var);
    let out = nan_tensor(ctx, storage, len);
    let d = batchnorm::batchnorm_gpu(ctx, case, storage, p, &bx, &bg, &bb, &bm, &bv, &out).unwrap();
    ctx.run_dispatches(&[&d]).unwrap();
    let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, len).unwrap(), shape);
    assert_close(case, &got, &want, batchnorm::tolerance(storage));
}

#[test]
fn batchnorm_sweep() {
    let Some(ctx) = gpu() else { return };
    // (N, C, H, W): a single element, C=1 and C=3, odd spatial sizes, totals
    // that are not multiples of the 256-wide workgroup, batch > 1, and a
    // ResNet-sized channel count.
    let shapes = [
        [1, 1, 1, 1],
        [1, 1, 7, 5],
        [2, 3, 5, 7],
        [3, 3, 17, 17],
        [2, 37, 9, 11],
        [1, 256, 14, 14],
    ];
    for (si, &[n, c, h, w]) in shapes.iter().enumerate() {
        for &eps in &[1e-5f32, 1e-3] {
            // No clamp, ReLU, and a two-sided clamp inside the outputs'
            // range (ONNX Clip / ReLU6 folded into a BN).
            for clamp in [None, Some(Clamp::RELU), Some(Clamp::new(-0.4, 0.6))] {
                let p = BatchNormParams {
                    batch: n,
                    channels: c,
                    h,
                    w,
                    eps,
                    clamp,
                };
                let x = rand_vec(10 + si as u64, n * c * h * w);
                let bn = bn_params(100 + si as u64, c);
                for storage in storages(&ctx) {
                    check(&ctx, storage, &format!("{p:?}"), &p, &x, &bn);
                }
            }
        }
    }
}

#[test]
fn batchnorm_zero_variance_channel() {
    // Regression: a dead channel has a running variance of exactly 0, so
    // eps alone sets the scale (1/sqrt(1e-5) ≈ 316); the kernel must add eps
    // before the square root, not fold it elsewhere.
    let Some(ctx) = gpu() else { return };
    for &eps in &[1e-5f32, 1e-3] {
        let p = BatchNormParams {
            batch: 2,
            channels: 3,
            h: 4,
            w: 5,
            eps,
            clamp: None,
        };
        let x = rand_vec(3, 2 * 3 * 4 * 5);
        let mut bn = bn_params(4, 3);
        bn[3][1] = 0.0;
        for storage in storages(&ctx) {
            check(
                &ctx,
                storage,
                &format!("zero variance, eps {eps}"),
                &p,
                &x,
                &bn,
            );
        }
    }
}

#[test]
fn batchnorm_folded_grid() {
    // 3·3315·3374 elements: more pairs than 65535 workgroups of 256 hold,
    // so the grid folds into y, and in f32 just under 128 MiB (WebGPU's
    // default binding limit).
    let Some(ctx) = gpu() else { return };
    let p = BatchNormParams {
        batch: 1,
        channels: 3,
        h: 3315,
        w: 3374,
        eps: 1e-3,
        clamp: Some(Clamp::RELU),
    };
    let x = rand_vec(5, 3 * 3315 * 3374);
    let bn = bn_params(6, 3);
    for storage in storages(&ctx) {
        check(&ctx, storage, "folded grid", &p, &x, &bn);
    }
}
