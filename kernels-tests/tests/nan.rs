//! NaN semantics, as PyTorch has them: a NaN input makes NaN outputs
//! exactly where it is used. `relu(NaN)` is NaN (Rust's `f32::max` and
//! WGSL's `max` may give 0), a max-pool window holding a NaN is NaN, a conv
//! output whose receptive field holds one is NaN. Each case checks the CPU
//! reference against the NaN positions worked out by hand from the
//! geometry, then the GPU against the CPU reference. Outputs are pre-filled
//! with a sentinel NaN whose payload no kernel produces, so that "never
//! written" still fails where NaN is expected.
//!
//! The inputs carry a positive NaN and a negative one (sign bit set: x86
//! makes those), since the shaders test NaN on the bits. Every GPU case
//! runs in every storage mode (f16 NaNs are converted to f32 NaNs on load
//! and back on store).

use kernels_tests::{assert_close_nan, gpu, rand_vec, sentinel_tensor, storages};
use resincept::device::Span;
use resincept::graph::Clamp;
use resincept::kernels::{batchnorm, conv2d, elementwise, pool};
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};

const NEG_NAN: u32 = 0xffc0_0000;

/// `len` random values with NaN at `at` (alternately positive and negative).
fn with_nans(seed: u64, len: usize, at: &[usize]) -> Vec<f32> {
    let mut v = rand_vec(seed, len);
    for (k, &i) in at.iter().enumerate() {
        v[i] = if k % 2 == 0 {
            f32::NAN
        } else {
            f32::from_bits(NEG_NAN)
        };
    }
    v
}

fn nan_mask(v: &[f32]) -> Vec<bool> {
    v.iter().map(|x| x.is_nan()).collect()
}

#[test]
fn relu_keeps_nan() {
    let len = 1000;
    let at = [3, 4, 500, 999];
    let x = with_nans(1, len, &at);
    let mut want = vec![0.0; len];
    elementwise::relu_cpu(&x, &mut want);
    assert_eq!(
        nan_mask(&want),
        nan_mask(&x),
        "CPU relu: NaN where the input is"
    );
    assert!(want.iter().all(|v| v.is_nan() || *v >= 0.0));
    // Scaled add + ReLU: NaN in either operand.
    let y = with_nans(2, len, &[10, 600]);
    let p = elementwise::AddParams {
        len,
        alpha: 1.0,
        beta: 0.5,
        clamp: Some(Clamp::RELU),
    };
    let mut want_add = vec![0.0; len];
    elementwise::add_cpu(&p, &x, &y, &mut want_add);
    let either: Vec<bool> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| a.is_nan() || b.is_nan())
        .collect();
    assert_eq!(nan_mask(&want_add), either, "CPU add+relu");

    let Some(ctx) = gpu() else { return };
    for st in storages(&ctx) {
        let (mut want, mut want_add) = (want.clone(), want_add.clone());
        if st.is_f16() {
            elementwise::relu_cpu(&resincept::kernels::rounded_f16(&x), &mut want);
            resincept::kernels::round_f16_in_place(&mut want);
            elementwise::add_cpu_f16(&p, &x, &y, &mut want_add);
        }
        let tol = elementwise::tolerance(st);
        let bx = ctx.tensor_buffer_init("x", st, &x);
        let by = ctx.tensor_buffer_init("y", st, &y);
        let out = sentinel_tensor(&ctx, st, len);
        let d = elementwise::relu_gpu(&ctx, "relu", st, len, &bx, &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, st, len).unwrap();
        assert_close_nan(&format!("{} relu", st.name()), &got, &want, tol);
        let out = sentinel_tensor(&ctx, st, len);
        let d =
            elementwise::add_gpu(&ctx, "add", st, &p, &bx, Some(Span::whole(&by)), &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, st, len).unwrap();
        assert_close_nan(&format!("{} add+relu", st.name()), &got, &want_add, tol);
    }
}

#[test]
fn batchnorm_relu_keeps_nan() {
    let p = batchnorm::BatchNormParams {
        batch: 2,
        channels: 5,
        h: 3,
        w: 4,
        eps: 1e-5,
        clamp: Some(Clamp::RELU),
    };
    let shape = [2, 5, 3, 4];
    let len = 120;
    let x = with_nans(3, len, &[0, 17, 64, 119]);
    let gamma: Vec<f32> = rand_vec(4, 5).iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = rand_vec(5, 5);
    let mean = rand_vec(6, 5);
    let var: Vec<f32> = rand_vec(7, 5).iter().map(|v| 1.0 + 0.5 * v).collect();
    let mut want = vec![0.0; len];
    batchnorm::batchnorm_cpu(&p, &x, &gamma, &beta, &mean, &var, &mut want);
    assert_eq!(nan_mask(&want), nan_mask(&x), "CPU batchnorm+relu");

    let Some(ctx) = gpu() else { return };
    for st in storages(&ctx) {
        let mut want = want.clone();
        if st.is_f16() {
            batchnorm::batchnorm_cpu_f16(&p, &x, &gamma, &beta, &mean, &var, &mut want);
        }
        let b = |l: &str, v: &[f32]| ctx.storage_buffer_init(l, v);
        let (bx, bg, bb, bm, bv) = (
            ctx.tensor_buffer_init("x", st, &nchw_to_nhwc(&x, shape)),
            b("gamma", &gamma),
            b("beta", &beta),
            b("mean", &mean),
            b("var", &var),
        );
        let out = sentinel_tensor(&ctx, st, len);
        let d =
            batchnorm::batchnorm_gpu(&ctx, "bn", st, &p, &bx, &bg, &bb, &bm, &bv, &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(&ctx.read_tensor(&out, st, len).unwrap(), shape);
        let case = format!("{} batchnorm+relu", st.name());
        assert_close_nan(&case, &got, &want, batchnorm::tolerance(st));
    }
}

#[test]
fn max_pool_window_with_nan_is_nan() {
    // 3×3 stride 2, ceil mode: ResNet's and Inception's stem pools.
    let p = pool::PoolParams {
        kind: resincept::graph::PoolKind::Max,
        batch: 1,
        channels: 2,
        in_h: 9,
        in_w: 10,
        kernel: [3, 3],
        stride: [2, 2],
        padding: resincept::graph::Padding::same(1),
        dilation: [1, 1],
        ceil_mode: true,
        count_include_pad: true,
        out_c_total: 2,
        out_c_offset: 0,
    };
    let [oh, ow] = p.out_hw().unwrap();
    let shape = [1, 2, 9, 10];
    // Channel 0: NaN at (0, 0) (a corner, in the first window only) and at
    // (4, 5) (in four windows); channel 1: NaN at (8, 9), the last pixel.
    let nans = [(0, 0, 0), (0, 4, 5), (1, 8, 9)];
    let at: Vec<usize> = nans.iter().map(|&(c, y, x)| (c * 9 + y) * 10 + x).collect();
    let x = with_nans(8, 180, &at);
    let mut want = vec![0.0; 2 * oh * ow];
    pool::pool_cpu(&p, &x, &mut want);
    // By hand: output (oy, ox) covers rows 2·oy−1 ..= 2·oy+1, same for columns.
    for c in 0..2 {
        for oy in 0..oh {
            for ox in 0..ow {
                let covers = nans.iter().any(|&(nc, y, x)| {
                    nc == c && (2 * oy).abs_diff(y) <= 1 && (2 * ox).abs_diff(x) <= 1
                });
                let v = want[(c * oh + oy) * ow + ox];
                assert_eq!(v.is_nan(), covers, "CPU max pool at c{c} ({oy}, {ox}): {v}");
            }
        }
    }

    let Some(ctx) = gpu() else { return };
    for st in storages(&ctx) {
        let mut want = want.clone();
        if st.is_f16() {
            pool::pool_cpu_f16(&p, &x, &mut want);
        }
        let bx = ctx.tensor_buffer_init("x", st, &nchw_to_nhwc(&x, shape));
        let out = sentinel_tensor(&ctx, st, 2 * oh * ow);
        let d = pool::pool_gpu(&ctx, "maxpool", st, &p, &bx, &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(
            &ctx.read_tensor(&out, st, 2 * oh * ow).unwrap(),
            [1, 2, oh, ow],
        );
        let case = format!("{} max pool", st.name());
        assert_close_nan(&case, &got, &want, pool::tolerance(st));
    }
}

#[test]
fn conv_relu_receptive_field_of_nan_is_nan() {
    // 3×3, padding 1, ReLU: output (y, x) of every channel is NaN exactly
    // when input (y+i−1, x+j−1) of some channel is NaN.
    let p = conv2d::Conv2dParams {
        clamp: Some(Clamp::RELU),
        padding: resincept::graph::Padding::same(1),
        ..conv2d::Conv2dParams::simple(1, 4, [6, 7], 8, [3, 3])
    };
    let nans = [(0, 0, 0), (3, 3, 4)];
    let at: Vec<usize> = nans.iter().map(|&(c, y, x)| (c * 6 + y) * 7 + x).collect();
    let x = with_nans(9, 4 * 42, &at);
    let w = rand_vec(10, 8 * 4 * 9);
    let scale = vec![1.0; 8];
    let shift = rand_vec(11, 8);
    let mut want = vec![0.0; 8 * 42];
    conv2d::conv2d_cpu(&p, &x, &w, &scale, &shift, None, &mut want);
    for o in 0..8 {
        for y in 0..6usize {
            for xx in 0..7usize {
                let covers = nans
                    .iter()
                    .any(|&(_, ny, nx)| y.abs_diff(ny) <= 1 && xx.abs_diff(nx) <= 1);
                let v = want[(o * 6 + y) * 7 + xx];
                assert_eq!(v.is_nan(), covers, "CPU conv at o{o} ({y}, {xx}): {v}");
            }
        }
    }

    let Some(ctx) = gpu() else { return };
    for st in storages(&ctx) {
        let mut want = want.clone();
        if st.is_f16() {
            conv2d::conv2d_cpu_f16(&p, &x, &w, &scale, &shift, None, &mut want);
        }
        let b_in = ctx.tensor_buffer_init("x", st, &nchw_to_nhwc(&x, [1, 4, 6, 7]));
        let b_w = ctx.tensor_buffer_init("w", st, &conv2d::pack_weights(&p, &w));
        let b_scale = ctx.storage_buffer_init("scale", &scale);
        let b_shift = ctx.storage_buffer_init("shift", &shift);
        let out = sentinel_tensor(&ctx, st, 8 * 42);
        let d = conv2d::conv2d_gpu(
            &ctx, "conv", st, &p, &b_in, &b_w, &b_scale, &b_shift, None, &out,
        )
        .unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(&ctx.read_tensor(&out, st, 8 * 42).unwrap(), [1, 8, 6, 7]);
        let case = format!("{} conv+relu", st.name());
        assert_close_nan(&case, &got, &want, conv2d::tolerance(st, 36));
    }
}

/// Constant arithmetic: a NaN in x makes its own output NaN; a NaN in the
/// broadcast constant makes NaN every output that reads it (here a
/// per-row constant: a whole row of every channel and image).
#[test]
fn const_arith_keeps_nan() {
    use resincept::graph::Arith;
    use resincept::kernels::const_arith::{self, ConstArithParams};
    let shape = [2, 3, 4, 5];
    let len = 120;
    let x = with_nans(7, len, &[0, 33, 119]);
    let k = with_nans(8, 4, &[2]);
    for (arith, const_first) in [(Arith::Add, false), (Arith::Div, true)] {
        let p = ConstArithParams {
            arith,
            const_first,
            shape,
            const_shape: [1, 1, 4, 1],
        };
        let mut want = vec![0.0; len];
        const_arith::const_arith_cpu(&p, &x, &k, &mut want);
        // Row 2 of every (n, c) plane, and x's own NaNs.
        let by_hand: Vec<bool> = (0..len)
            .map(|i| x[i].is_nan() || (i / 5) % 4 == 2)
            .collect();
        assert_eq!(nan_mask(&want), by_hand, "CPU {p:?}");
        let Some(ctx) = gpu() else { return };
        for st in storages(&ctx) {
            let mut want = want.clone();
            if st.is_f16() {
                const_arith::const_arith_cpu_f16(&p, &x, &k, &mut want);
            }
            let bx = ctx.tensor_buffer_init("x", st, &nchw_to_nhwc(&x, shape));
            let bk = ctx.tensor_buffer_init("k", st, &const_arith::constant_to_device(&p, &k));
            let out = sentinel_tensor(&ctx, st, len);
            let d = const_arith::const_arith_gpu(&ctx, "nan", st, &p, &bx, &bk, &out).unwrap();
            ctx.run_dispatches(&[&d]).unwrap();
            let got = nhwc_to_nchw(&ctx.read_tensor(&out, st, len).unwrap(), shape);
            let tol = const_arith::tolerance(arith, st);
            assert_close_nan(&format!("{} {p:?}", st.name()), &got, &want, tol);
        }
    }
}
