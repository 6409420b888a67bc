//! GPU-vs-CPU tests for the constant pad kernel, in every storage mode
//! (f32, native f16, packed f16).

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages};
use resincept::graph::Padding;
use resincept::kernels::pad::{self, PadParams};
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};

fn pads(top: usize, left: usize, bottom: usize, right: usize) -> Padding {
    Padding {
        top,
        left,
        bottom,
        right,
    }
}

#[test]
fn pad_sweep() {
    let Some(ctx) = gpu() else { return };
    // C = 1 and 3 and odd totals (packed f16's half-word stores, two
    // elements of one word in different pixels), each side alone, all four
    // different, none (a copy), a pad larger than the input, batch > 1,
    // and a value that is not an f16 number (0.1: rounded once on store).
    let cases = [
        ([1, 1, 1, 1], pads(1, 1, 1, 1), 0.0),
        ([1, 3, 5, 4], pads(2, 0, 0, 0), -0.75),
        ([2, 3, 5, 4], pads(0, 3, 0, 0), 1.5),
        ([1, 1, 7, 3], pads(0, 0, 2, 0), 0.1),
        ([1, 5, 3, 6], pads(0, 0, 0, 1), 0.0),
        ([2, 3, 4, 5], pads(1, 3, 2, 4), 1.2),
        ([1, 4, 6, 6], Padding::default(), 7.0),
        ([1, 2, 2, 3], pads(5, 4, 6, 7), -3.0),
        ([3, 17, 9, 11], pads(1, 2, 1, 2), 0.0),
    ];
    for (si, &([n, c, h, w], padding, value)) in cases.iter().enumerate() {
        let p = PadParams {
            batch: n,
            channels: c,
            in_h: h,
            in_w: w,
            padding,
            value,
        };
        let [oh, ow] = p.out_hw();
        let out_shape = [n, c, oh, ow];
        let out_len: usize = out_shape.iter().product();
        let x = rand_vec(60 + si as u64, n * c * h * w);
        for storage in storages(&ctx) {
            let mut want = vec![f32::NAN; out_len];
            if storage.is_f16() {
                pad::pad_cpu_f16(&p, &x, &mut want);
            } else {
                pad::pad_cpu(&p, &x, &mut want);
            }
            let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, [n, c, h, w]));
            let out = nan_tensor(&ctx, storage, out_len);
            let case = format!("{} {p:?}", storage.name());
            let d = pad::pad_gpu(&ctx, &case, storage, &p, &bx, &out).unwrap();
            ctx.run_dispatches(&[&d]).unwrap();
            let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, out_len).unwrap(), out_shape);
            assert_close(&case, &got, &want, pad::tolerance(storage));
        }
    }
}

#[test]
fn pad_reference_by_hand() {
    // The CPU reference on a case small enough to write out: 1×1×2×2 with
    // one row above, two columns on the right, value 9.
    let p = PadParams {
        batch: 1,
        channels: 1,
        in_h: 2,
        in_w: 2,
        padding: pads(1, 0, 0, 2),
        value: 9.0,
    };
    let mut out = vec![f32::NAN; 3 * 4];
    pad::pad_cpu(&p, &[1.0, 2.0, 3.0, 4.0], &mut out);
    #[rustfmt::skip]
    let want = [
        9.0, 9.0, 9.0, 9.0,
        1.0, 2.0, 9.0, 9.0,
        3.0, 4.0, 9.0, 9.0,
    ];
    assert_eq!(out, want);
}

#[test]
fn pad_rejects_bad_params() {
    let Some(ctx) = gpu() else { return };
    // 16 f32 elements each.
    let x = ctx.storage_buffer("x", 16);
    let out = ctx.storage_buffer("out", 16);
    let ok = PadParams {
        batch: 1,
        channels: 2,
        in_h: 2,
        in_w: 2,
        padding: pads(1, 1, 1, 1),
        value: 0.0,
    };
    // A non-finite value, a zero-sized input, and an output larger than
    // its buffer (2·4·4 = 32 elements > 16) are errors naming the node.
    for p in [
        PadParams {
            value: f32::INFINITY,
            ..ok
        },
        PadParams {
            value: f32::NAN,
            ..ok
        },
        PadParams { in_h: 0, ..ok },
        ok,
    ] {
        let e = pad::pad_gpu(
            &ctx,
            "bad_pad",
            resincept::shaders::Storage::F32,
            &p,
            &x,
            &out,
        )
        .err()
        .unwrap_or_else(|| panic!("{p:?} accepted"));
        assert!(e.to_string().contains("bad_pad"), "{e}");
    }
}
