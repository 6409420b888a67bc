//! GPU-vs-CPU tests for the elementwise kernels and the layout transposes,
//! in every storage mode (f32, native f16, packed f16).

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::device::Span;
use resincept::graph::Clamp;
use resincept::kernels::{elementwise, layout};
use resincept::shaders::Storage;

#[test]
fn add_sweep() {
    let Some(ctx) = gpu() else { return };
    for storage in storages(&ctx) {
        // Lengths: 1, odd (a last lone element: a half word in packed
        // f16), not a multiple of the workgroup, exactly one group, large.
        for &len in &[1usize, 3, 255, 256, 1000, 70_001] {
            // Clamps: ReLU; ReLU6 with inputs scaled past 6; both bounds
            // inside the data's range; lower or upper bound only; min > max
            // (ONNX's Clip: every value becomes max).
            for &(alpha, beta, clamp) in &[
                (1.0, 1.0, None),
                (1.0, 1.0, Some(Clamp::RELU)),
                (1.0, 0.17, Some(Clamp::RELU)),
                (0.5, -2.0, None),
                (1.0, 0.0, Some(Clamp::RELU)),
                (8.0, 4.0, Some(Clamp::RELU6)),
                (1.0, 0.0, Some(Clamp::new(-0.5, 0.7))),
                (1.0, 1.0, Some(Clamp::new(-0.3, f32::INFINITY))),
                (1.0, 0.0, Some(Clamp::new(f32::NEG_INFINITY, 0.25))),
                (1.0, 0.0, Some(Clamp::new(0.5, -0.5))),
            ] {
                let p = elementwise::AddParams {
                    len,
                    alpha,
                    beta,
                    clamp,
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
        clamp: Some(Clamp::RELU),
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
fn clip_alone_edges() {
    // Named cases for the standalone clamp (ONNX `Clip`, ReLU6): infinities
    // clamp to the finite bounds (and stay infinite on an open side), NaN
    // stays NaN, values equal to a bound are kept, min > max gives max,
    // and a bound that is not an f16 value (0.1) is rounded once, on store.
    let Some(ctx) = gpu() else { return };
    let x = vec![
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -1.0,
        0.0,
        6.0,
        7.5,
        0.05,
        0.3,
    ];
    let len = x.len();
    for storage in storages(&ctx) {
        for c in [
            Clamp::RELU6,
            Clamp::new(-0.2, 0.1),
            Clamp::new(-0.5, f32::INFINITY),
            Clamp::new(f32::NEG_INFINITY, 0.1),
            Clamp::new(1.0, 0.0),
        ] {
            let bx = ctx.tensor_buffer_init("x", storage, &x);
            let out = nan_tensor(&ctx, storage, len);
            let d = elementwise::clip_gpu(&ctx, "clip", storage, c, len, &bx, &out).unwrap();
            ctx.run_dispatches(&[&d]).unwrap();
            let got = ctx.read_tensor(&out, storage, len).unwrap();
            let mut want = vec![0.0; len];
            if storage.is_f16() {
                let xr = resincept::kernels::rounded_f16(&x);
                elementwise::clip_cpu(c, &xr, &mut want);
                resincept::kernels::round_f16_in_place(&mut want);
            } else {
                elementwise::clip_cpu(c, &x, &mut want);
            }
            // Independent of the reference: numpy's clip on the easy ones.
            assert!(want[2].is_nan(), "{c:?}: NaN must stay NaN");
            if c == Clamp::RELU6 {
                assert_eq!(&want[..2], &[6.0, 0.0]);
                assert_eq!(want[6], 6.0);
            }
            if c.min > c.max {
                assert!(want.iter().filter(|v| !v.is_nan()).all(|&v| v == 0.0));
            }
            let case = format!("{} {c:?}", storage.name());
            // An infinity must come back exactly (|inf − inf| is NaN, never
            // within a tolerance); the rest within the declared tolerance.
            let (mut g, mut w) = (got.clone(), want.clone());
            for i in 0..len {
                if want[i].is_infinite() {
                    assert_eq!(got[i], want[i], "{case}: element {i}");
                    (g[i], w[i]) = (0.0, 0.0);
                }
            }
            kernels_tests::assert_close_nan(&case, &g, &w, elementwise::tolerance(storage));
        }
        // A NaN bound or an infinite bound on the wrong side is refused.
        let bx = ctx.tensor_buffer_init("x", storage, &x);
        let out = nan_tensor(&ctx, storage, len);
        for c in [
            Clamp::new(f32::NAN, 1.0),
            Clamp::new(f32::INFINITY, 1.0),
            Clamp::new(0.0, f32::NEG_INFINITY),
        ] {
            let e = elementwise::clip_gpu(&ctx, "bad_clip", storage, c, len, &bx, &out)
                .err()
                .unwrap_or_else(|| panic!("{c:?} accepted"));
            assert!(e.to_string().contains("bad_clip"), "{e}");
        }
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
