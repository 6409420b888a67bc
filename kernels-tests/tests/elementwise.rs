//! GPU-vs-CPU tests for the elementwise kernels and the layout transposes,
//! in every storage mode (f32, native f16, packed f16).

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::device::Span;
use resincept::kernels::{elementwise, layout};
use resincept::shaders::Storage;

#[test]
fn add_sweep() {
    let Some(ctx) = gpu() else { return };
    for storage in storages(&ctx) {
        // Lengths: 1, odd (a last lone element: a half word in packed
        // f16), not a multiple of the workgroup, exactly one group, large.
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
                if storage.is_f16() {
                    elementwise::add_cpu_f16(&p, &a, &b, &mut want);
                } else {
                    elementwise::add_cpu(&p, &a, &b, &mut want);
                }
                let ba = ctx.tensor_buffer_init("a", storage, &a);
                let bb = ctx.tensor_buffer_init("b", storage, &b);
                let out = nan_tensor(&ctx, storage, len);
                let bref = if beta == 0.0 {
                    None
                } else {
                    Some(Span::whole(&bb))
                };
                let d = elementwise::add_gpu(&ctx, "add", storage, &p, &ba, bref, &out).unwrap();
                ctx.run_dispatches(&[&d]).unwrap();
                let got = ctx.read_tensor(&out, storage, len).unwrap();
                assert_close(
                    &format!("{} {p:?}", storage.name()),
                    &got,
                    &want,
                    elementwise::tolerance(storage),
                );
            }
        }
    }
}

#[test]
fn add_folded_grid() {
    // 2^25 elements: 2^24 pairs, 65536 workgroups of 256, one more than a
    // grid dimension holds, so the grid folds into y (and in f32 the
    // buffers are exactly 128 MiB, WebGPU's default binding limit).
    let Some(ctx) = gpu() else { return };
    let len = 1usize << 25;
    let p = elementwise::AddParams {
        len,
        alpha: 1.0,
        beta: -0.5,
        relu: true,
    };
    let a = rand_vec(3, len);
    let b = rand_vec(4, len);
    for storage in storages(&ctx) {
        let mut want = vec![0.0; len];
        if storage.is_f16() {
            elementwise::add_cpu_f16(&p, &a, &b, &mut want);
        } else {
            elementwise::add_cpu(&p, &a, &b, &mut want);
        }
        let ba = ctx.tensor_buffer_init("a", storage, &a);
        let bb = ctx.tensor_buffer_init("b", storage, &b);
        let out = nan_tensor(&ctx, storage, len);
        let d = elementwise::add_gpu(&ctx, "add", storage, &p, &ba, Some(Span::whole(&bb)), &out)
            .unwrap();
        assert!(d.workgroups()[1] > 1, "not folded: {:?}", d.workgroups());
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, storage, len).unwrap();
        assert_close(
            &format!("{} folded grid", storage.name()),
            &got,
            &want,
            elementwise::tolerance(storage),
        );
    }
}

#[test]
fn relu_keeps_infinity() {
    // Regression: relu is add with beta = 0; b must not be read, or
    // 0·inf would turn an infinite input into NaN.
    let Some(ctx) = gpu() else { return };
    for storage in storages(&ctx) {
        let x = vec![f32::INFINITY, -1.0, 2.0, f32::NEG_INFINITY];
        let bx = ctx.tensor_buffer_init("x", storage, &x);
        let out = nan_tensor(&ctx, storage, 4);
        let d = elementwise::relu_gpu(&ctx, "relu", storage, 4, &bx, &out).unwrap();
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, storage, 4).unwrap();
        let mut want = vec![0.0; 4];
        elementwise::relu_cpu(&x, &mut want);
        assert_eq!(got, want, "{}", storage.name());
    }
}

#[test]
fn layout_round_trip() {
    let Some(ctx) = gpu() else { return };
    for storage in storages(&ctx) {
        // Odd totals (a lone last element) and C = 1 and 3 included.
        for &shape in &[[1, 1, 1, 1], [2, 3, 5, 7], [1, 64, 9, 11], [3, 1, 4, 2]] {
            let len: usize = shape.iter().product();
            let x = rand_vec(7, len);
            for dir in layout::Direction::ALL {
                // The f32 side of a boundary conversion is f32.
                let (src_st, dst_st) = match dir {
                    layout::Direction::NchwF32ToNhwc => (Storage::F32, storage),
                    layout::Direction::NhwcToNchwF32 => (storage, Storage::F32),
                    _ => (storage, storage),
                };
                let want = if storage.is_f16() {
                    layout::transpose_cpu_f16(dir, shape, &x)
                } else {
                    layout::transpose_cpu(dir, shape, &x)
                };
                // A source already f16 holds the rounded values.
                let stored: Vec<f32> = if src_st.is_f16() {
                    resincept::kernels::rounded_f16(&x)
                } else {
                    x.clone()
                };
                let src = ctx.tensor_buffer_init("src", src_st, &stored);
                let dst = nan_tensor(&ctx, dst_st, len);
                let d = layout::transpose_gpu(&ctx, "t", storage, dir, shape, &src, &dst).unwrap();
                ctx.run_dispatches(&[&d]).unwrap();
                let got = ctx.read_tensor(&dst, dst_st, len).unwrap();
                assert_close(
                    &format!("{} {dir:?} {shape:?}", storage.name()),
                    &got,
                    &want,
                    layout::tolerance(dir, storage),
                );
            }
        }
    }
}
