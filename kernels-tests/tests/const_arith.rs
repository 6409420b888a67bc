//! GPU-vs-CPU tests for the constant-arithmetic kernel (`x ∘ c` with a
//! broadcast constant), in every storage mode (f32, native f16, packed
//! f16), every operation in both operand orders, and the broadcast
//! patterns ONNX models use. A subset of the sweep is also written as
//! traces for the Dawn replay (`trace_dispatches`).

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages, trace_dispatches};
use resincept::graph::Arith;
use resincept::kernels::const_arith::{self, ConstArithParams};
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};

/// `v` moved away from 0 to `±[0.5, 1.5)` (divisors: WGSL's division bound
/// holds for divisors of normal magnitude, and a quotient by a tiny
/// number would amplify the f16 rounding of its operands).
fn away_from_zero(v: &[f32]) -> Vec<f32> {
    v.iter()
        .map(|&x| if x < 0.0 { x - 0.5 } else { x + 0.5 })
        .collect()
}

#[test]
fn const_arith_sweep() {
    let Some(ctx) = gpu() else { return };
    // (x shape, constant shape): the full tensor; per row (H) and per
    // column (W) broadcasts; scalar along some axes ((1, C, 1, W), (N, 1,
    // H, 1)); batch broadcast of a whole image ((1, C, H, W) over N = 3);
    // a scalar; per-channel (which import folds, but the kernel must
    // still get right); C = 1 and 3, odd totals (a lone last half word in
    // packed f16, two elements of one word in different pixels), and one
    // case past a workgroup of pairs (256) with a ragged end.
    let cases = [
        ([2, 3, 5, 4], [2, 3, 5, 4]),
        ([1, 3, 5, 4], [1, 1, 5, 1]),
        ([2, 3, 5, 7], [1, 1, 1, 7]),
        ([2, 3, 5, 7], [1, 3, 1, 7]),
        ([2, 5, 3, 3], [2, 1, 3, 1]),
        ([3, 3, 5, 5], [1, 3, 5, 5]),
        ([2, 1, 7, 3], [1, 1, 1, 1]),
        ([1, 7, 3, 3], [1, 7, 1, 1]),
        ([1, 1, 1, 1], [1, 1, 1, 1]),
        ([3, 17, 9, 11], [1, 17, 9, 11]),
        ([3, 4, 5, 1], [3, 4, 5, 1]),
    ];
    let ops = [
        (Arith::Add, false),
        (Arith::Sub, false),
        (Arith::Sub, true),
        (Arith::Mul, false),
        (Arith::Div, false),
        (Arith::Div, true),
    ];
    for (si, &(shape, const_shape)) in cases.iter().enumerate() {
        let len: usize = shape.iter().product();
        let klen: usize = const_shape.iter().product();
        for (oi, &(arith, const_first)) in ops.iter().enumerate() {
            let p = ConstArithParams {
                arith,
                const_first,
                shape,
                const_shape,
            };
            let seed = 100 + 10 * si as u64 + oi as u64;
            let mut x = rand_vec(seed, len);
            let mut k = rand_vec(seed + 5000, klen);
            if arith == Arith::Div {
                if const_first {
                    x = away_from_zero(&x);
                } else {
                    k = away_from_zero(&k);
                }
            }
            for storage in storages(&ctx) {
                let mut want = vec![f32::NAN; len];
                if storage.is_f16() {
                    const_arith::const_arith_cpu_f16(&p, &x, &k, &mut want);
                } else {
                    const_arith::const_arith_cpu(&p, &x, &k, &mut want);
                }
                let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, shape));
                let bk =
                    ctx.tensor_buffer_init("k", storage, &const_arith::constant_to_device(&p, &k));
                let out = nan_tensor(&ctx, storage, len);
                let case = format!("{} {p:?}", storage.name());
                let d =
                    const_arith::const_arith_gpu(&ctx, &case, storage, &p, &bx, &bk, &out).unwrap();
                let tol = const_arith::tolerance(arith, storage);
                // One operation per shape pair (each op on some pair) as a
                // trace for the Dawn replay.
                if oi == si % ops.len() {
                    let checks = [("output", &out, tol, storage)];
                    trace_dispatches(&ctx, "const_arith", &case, &[&d], &checks);
                }
                ctx.run_dispatches(&[&d]).unwrap();
                let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, len).unwrap(), shape);
                assert_close(&case, &got, &want, tol);
            }
        }
    }
}

#[test]
fn const_arith_reference_by_hand() {
    // x (1, 2, 2, 2) = 1..8, a per-row constant (1, 1, 2, 1) = [10, 20]:
    // rows of both channels get 10 and 20; and the reversed division.
    let x: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    let k = [10.0, 20.0];
    let p = ConstArithParams {
        arith: Arith::Sub,
        const_first: false,
        shape: [1, 2, 2, 2],
        const_shape: [1, 1, 2, 1],
    };
    let mut out = vec![f32::NAN; 8];
    const_arith::const_arith_cpu(&p, &x, &k, &mut out);
    assert_eq!(out, [-9.0, -8.0, -17.0, -16.0, -5.0, -4.0, -13.0, -12.0]);
    let p = ConstArithParams {
        arith: Arith::Div,
        const_first: true,
        ..p
    };
    const_arith::const_arith_cpu(&p, &x, &k, &mut out);
    assert_eq!(
        out,
        [10.0, 5.0, 20.0 / 3.0, 5.0, 2.0, 10.0 / 6.0, 20.0 / 7.0, 2.5]
    );
}

#[test]
fn const_arith_rejects_bad_params() {
    let Some(ctx) = gpu() else { return };
    let x = ctx.storage_buffer("x", 16);
    let k = ctx.storage_buffer("k", 4);
    let out = ctx.storage_buffer("out", 16);
    let ok = ConstArithParams {
        arith: Arith::Add,
        const_first: false,
        shape: [1, 2, 2, 4],
        const_shape: [1, 1, 1, 4],
    };
    // A constant that does not broadcast (3 vs 4), one that would enlarge
    // the result (2 rows where x has 1), a zero-sized input, a constant
    // larger than its buffer and an output larger than its buffer are
    // errors naming the node.
    for p in [
        ConstArithParams {
            const_shape: [1, 1, 1, 3],
            ..ok
        },
        ConstArithParams {
            shape: [1, 2, 1, 4],
            const_shape: [1, 1, 2, 4],
            ..ok
        },
        ConstArithParams {
            shape: [1, 0, 2, 4],
            ..ok
        },
        ConstArithParams {
            const_shape: [1, 1, 2, 4],
            ..ok
        },
        ConstArithParams {
            shape: [1, 4, 2, 4],
            ..ok
        },
    ] {
        let e = const_arith::const_arith_gpu(
            &ctx,
            "bad_const",
            resincept::shaders::Storage::F32,
            &p,
            &x,
            &k,
            &out,
        )
        .err()
        .unwrap_or_else(|| panic!("{p:?} accepted"));
        assert!(e.to_string().contains("bad_const"), "{e}");
    }
}
