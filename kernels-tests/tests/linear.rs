//! GPU-vs-CPU tests for the fully connected layer and its weight packing,
//! in every storage mode.

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::device::Span;
use resincept::kernels::linear::{self, LinearParams};
use resincept::Context;

/// Runs the layer in every storage mode against its reference.
fn check(ctx: &Context, p: &LinearParams, with_bias: bool, seed: u64) {
    for storage in storages(ctx) {
        check_in(ctx, storage, p, with_bias, seed);
    }
}

fn check_in(
    ctx: &Context,
    storage: resincept::shaders::Storage,
    p: &LinearParams,
    with_bias: bool,
    seed: u64,
) {
    let case = format!("{} {p:?} bias={with_bias}", storage.name());
    let x = rand_vec(seed, p.batch * p.in_features);
    let w = rand_vec(seed + 1, p.out_features * p.in_features);
    let b = rand_vec(seed + 2, p.out_features);
    let bias = with_bias.then_some(&b[..]);
    let mut want = vec![0.0; p.batch * p.out_features];
    if storage.is_f16() {
        linear::linear_cpu_f16(p, &x, &w, bias, &mut want);
    } else {
        linear::linear_cpu(p, &x, &w, bias, &mut want);
    }
    let bx = ctx.tensor_buffer_init("x", storage, &x);
    let bw = ctx.tensor_buffer_init("w", storage, &linear::pack_weights(p, &w));
    let bb = ctx.storage_buffer_init("bias", &b);
    let out = nan_tensor(ctx, storage, p.batch * p.out_features);
    let d = linear::linear_gpu(
        ctx,
        &case,
        storage,
        p,
        &bx,
        &bw,
        with_bias.then_some(Span::whole(&bb)),
        &out,
    )
    .unwrap();
    assert_eq!(
        d.flops,
        2 * (p.batch * p.in_features * p.out_features) as u64
    );
    ctx.run_dispatches(&[&d]).unwrap();
    let got = ctx
        .read_tensor(&out, storage, p.batch * p.out_features)
        .unwrap();
    assert_close(&case, &got, &want, linear::tolerance(storage));
}

#[test]
fn linear_sweep() {
    let Some(ctx) = gpu() else { return };
    // (N, in, out): one feature; in_features below, at and past the
    // 256-feature chunk and the 32-feature slice, and not multiples of
    // either; out_features not a multiple of the 32-wide tile; batch 1, 2,
    // 3, 9 and 17 (one row past an 8-row tile).
    let shapes = [
        (1, 1, 1),
        (1, 5, 10),
        (3, 32, 32),
        (3, 256, 33),
        (17, 300, 70),
        (9, 513, 65),
        (2, 1, 100),
    ];
    for (i, &(batch, in_features, out_features)) in shapes.iter().enumerate() {
        let p = LinearParams {
            batch,
            in_features,
            out_features,
        };
        for with_bias in [false, true] {
            check(&ctx, &p, with_bias, 60 + i as u64);
        }
    }
}

#[test]
fn linear_classifier_heads() {
    // The real heads: ResNet-50's (2048 → 1000) and Inception-v3's
    // (2048 → 1000) at batch 1 and 3, Inception-v4's 1536 → 1000 at batch 1;
    // the reduction is long enough to expose a summation-order problem.
    let Some(ctx) = gpu() else { return };
    for (batch, in_features) in [(1, 2048), (3, 2048), (1, 1536)] {
        let p = LinearParams {
            batch,
            in_features,
            out_features: 1000,
        };
        check(&ctx, &p, true, 70);
    }
}

#[test]
fn pack_weights_is_the_transpose() {
    // CPU-only: packed[i·out + o] = w[o·in + i].
    let p = LinearParams {
        batch: 1,
        in_features: 3,
        out_features: 2,
    };
    let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert_eq!(
        linear::pack_weights(&p, &w),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
}

#[test]
fn linear_rejects_empty() {
    let Some(ctx) = gpu() else { return };
    let b = ctx.storage_buffer("b", 4);
    let o = ctx.storage_buffer("o", 4);
    let p = LinearParams {
        batch: 1,
        in_features: 0,
        out_features: 4,
    };
    for storage in storages(&ctx) {
        assert!(linear::linear_gpu(&ctx, "fc", storage, &p, &b, &b, None, &o).is_err());
    }
}
