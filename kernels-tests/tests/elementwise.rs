//! GPU-vs-CPU tests for the elementwise kernels and the layout transposes.

use kernels_tests::{assert_close, gpu, nan_buffer, rand_vec};
use resincept::device::Span;
use resincept::kernels::{elementwise, layout};

#[test]
fn add_sweep() {
    let Some(ctx) = gpu() else { return };
    // Lengths: 1, not a multiple of the workgroup, exactly one group, large.
    for &len in &[1usize, 3, 255, 256, 1000, 70_001] {
        for &(alpha, beta, relu) in &[
            (1.0, 1.0, false),
            (1.0, 1.0, true),
            (1.0, 0.17, true),
            (0.5, -2.0, false),
            (1.0, 0.0, true),
        ] {
            let p = elementwise::AddParams {
                len,
                alpha,
                beta,
                relu,
            };
            let a = rand_vec(1, len);
            let b = rand_vec(2, len);
            let mut want = vec![0.0; len];
            elementwise::add_cpu(&p, &a, &b, &mut want);
            let ba = ctx.storage_buffer_init("a", &a);
            let bb = ctx.storage_buffer_init("b", &b);
            let out = nan_buffer(&ctx, len);
            let bref = if beta == 0.0 {
                None
            } else {
                Some(Span::whole(&bb))
            };
            let d = elementwise::add_gpu(&ctx, "add", &p, &ba, bref, &out).unwrap();
            ctx.run_dispatches(&[&d]).unwrap();
            let got = ctx.read_buffer(&out, len).unwrap();
            assert_close(&format!("{p:?}"), &got, &want, elementwise::TOLERANCE);
        }
    }
}

#[test]
fn relu_keeps_infinity() {
    // Regression: relu is add with beta = 0; b must not be read, or
    // 0·inf would turn an infinite input into NaN.
    let Some(ctx) = gpu() else { return };
    let x = vec![f32::INFINITY, -1.0, 2.0, f32::NEG_INFINITY];
    let bx = ctx.storage_buffer_init("x", &x);
    let out = nan_buffer(&ctx, 4);
    let d = elementwise::relu_gpu(&ctx, "relu", 4, &bx, &out).unwrap();
    ctx.run_dispatches(&[&d]).unwrap();
    let got = ctx.read_buffer(&out, 4).unwrap();
    let mut want = vec![0.0; 4];
    elementwise::relu_cpu(&x, &mut want);
    assert_eq!(got, want);
}

#[test]
fn layout_round_trip() {
    let Some(ctx) = gpu() else { return };
    for &shape in &[[1, 1, 1, 1], [2, 3, 5, 7], [1, 64, 9, 11], [3, 1, 4, 2]] {
        let len: usize = shape.iter().product();
        let x = rand_vec(7, len);
        for dir in [layout::Direction::NchwToNhwc, layout::Direction::NhwcToNchw] {
            let want = layout::transpose_cpu(dir, shape, &x);
            let src = ctx.storage_buffer_init("src", &x);
            let dst = nan_buffer(&ctx, len);
            let d = layout::transpose_gpu(&ctx, "t", dir, shape, &src, &dst).unwrap();
            ctx.run_dispatches(&[&d]).unwrap();
            let got = ctx.read_buffer(&dst, len).unwrap();
            assert_close(
                &format!("{dir:?} {shape:?}"),
                &got,
                &want,
                layout::TOLERANCE,
            );
        }
    }
}
