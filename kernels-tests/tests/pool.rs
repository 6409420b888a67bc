//! GPU-vs-CPU tests for windowed max/avg pooling (PyTorch window and
//! ceil_mode rules, channel-offset output) and global average pooling, in
//! every storage mode (odd channel counts and odd offsets put two writers
//! on the halves of one packed f16 word).

use kernels_tests::Rng;
use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages, trace_dispatches};
use resincept::graph::{Padding, PoolKind};
use resincept::kernels::pool::{self, PoolParams};
use resincept::shaders::Storage;
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};
use resincept::Context;

/// A pool with square stride/padding defaults filled in; tests override
/// fields with struct update syntax.
fn params(kind: PoolKind, [n, c, h, w]: [usize; 4], k: [usize; 2], s: [usize; 2]) -> PoolParams {
    PoolParams {
        kind,
        batch: n,
        channels: c,
        in_h: h,
        in_w: w,
        kernel: k,
        stride: s,
        padding: Padding::default(),
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
        out_c_total: c,
        out_c_offset: 0,
    }
}

/// Runs pool `p` on the GPU, in every storage mode, and the CPU. Compares
/// the written channel range with the pool tolerance and checks every
/// other channel of the (NaN pre-filled) output is still NaN. Each case is
/// also written as a trace for the Dawn replay (`trace_dispatches`).
fn check(ctx: &Context, case: &str, p: &PoolParams) {
    check_traced(ctx, case, p, true);
}

/// [`check`], writing the Dawn replay's trace only when `trace`: the two
/// sweeps trace one case in [`SWEEP_TRACE_EVERY`], which keeps every
/// kind of window in the replay and its time within CI's budget (each
/// trace compiles its pipeline on Dawn again).
fn check_traced(ctx: &Context, case: &str, p: &PoolParams, trace: bool) {
    for storage in storages(ctx) {
        check_in(
            ctx,
            storage,
            &format!("{} {case}", storage.name()),
            p,
            trace,
        );
    }
}

/// The sweeps trace every this-many-th case.
const SWEEP_TRACE_EVERY: usize = 4;

fn check_in(ctx: &Context, storage: Storage, case: &str, p: &PoolParams, trace: bool) {
    p.validate(case).unwrap();
    let [oh, ow] = p.out_hw().unwrap();
    let in_shape = [p.batch, p.channels, p.in_h, p.in_w];
    let out_shape = [p.batch, p.out_c_total, oh, ow];
    let x = rand_vec(
        p.in_h as u64 * 31 + p.in_w as u64,
        in_shape.iter().product(),
    );
    let out_len: usize = out_shape.iter().product();
    let mut want = vec![f32::NAN; out_len];
    if storage.is_f16() {
        pool::pool_cpu_f16(p, &x, &mut want);
    } else {
        pool::pool_cpu(p, &x, &mut want);
    }

    let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, in_shape));
    let out = nan_tensor(ctx, storage, out_len);
    let d = pool::pool_gpu(ctx, case, storage, p, &bx, &out).unwrap();
    let tol = pool::tolerance(storage);
    if trace {
        trace_dispatches(ctx, "pool", case, &[&d], &[("output", &out, tol, storage)]);
    }
    ctx.run_dispatches(&[&d]).unwrap();
    let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, out_len).unwrap(), out_shape);

    let plane = oh * ow;
    let (mut g, mut r) = (Vec::new(), Vec::new());
    for n in 0..p.batch {
        for c in 0..p.out_c_total {
            let at = (n * p.out_c_total + c) * plane;
            if (p.out_c_offset..p.out_c_offset + p.channels).contains(&c) {
                g.extend_from_slice(&got[at..at + plane]);
                r.extend_from_slice(&want[at..at + plane]);
            } else if let Some(i) = got[at..at + plane].iter().position(|v| !v.is_nan()) {
                panic!("{case}: wrote outside its channel range: n={n} c={c} pixel {i}");
            }
        }
    }
    assert_close(case, &g, &r, tol);
}

#[test]
fn pool_named_cases() {
    let Some(ctx) = gpu() else { return };
    use PoolKind::{Avg, Max};
    // (name, params, PyTorch's output size worked out by hand from
    // `pooling_output_shape`: floor or ceil of (H + 2p − k)/s, plus one, minus
    // one when ceil_mode's last window starts at or past H + p).
    let cases: Vec<(&str, PoolParams, [usize; 2])> = vec![
        // ResNet stem max pool: 3×3 s2 p1, batch 2, C=3, on an odd size.
        (
            "resnet stem 3x3 s2 p1",
            PoolParams {
                padding: Padding::hw(1, 1),
                ..params(Max, [2, 3, 15, 15], [3, 3], [2, 2])
            },
            [8, 8],
        ),
        // Inception reductions: 3×3 s2 without padding on odd sizes.
        (
            "inception 3x3 s2 max 35 -> 17",
            params(Max, [2, 5, 35, 35], [3, 3], [2, 2]),
            [17, 17],
        ),
        (
            "inception 3x3 s2 avg 17 -> 8",
            params(Avg, [1, 3, 17, 17], [3, 3], [2, 2]),
            [8, 8],
        ),
        // Inception branch pools: 3×3 s1 p1 average; at a corner the
        // divisor is 9 with count_include_pad and 4 without (6 on an edge).
        (
            "branch avg 3x3 s1 p1 include pad",
            PoolParams {
                padding: Padding::hw(1, 1),
                ..params(Avg, [2, 3, 7, 7], [3, 3], [1, 1])
            },
            [7, 7],
        ),
        (
            "branch avg 3x3 s1 p1 exclude pad",
            PoolParams {
                padding: Padding::hw(1, 1),
                count_include_pad: false,
                ..params(Avg, [2, 3, 7, 7], [3, 3], [1, 1])
            },
            [7, 7],
        ),
        // ceil_mode adds a window: on 8×8, 3×3 s2 gives ceil(5/2)+1 = 4
        // (floor: 3); the last window starts at 6 and holds 2 of its 3 rows,
        // so the average divides by 6 (clipped at H + p = 8), not 9.
        (
            "ceil 3x3 s2 on 8x8 max",
            PoolParams {
                ceil_mode: true,
                ..params(Max, [1, 3, 8, 8], [3, 3], [2, 2])
            },
            [4, 4],
        ),
        (
            "ceil 3x3 s2 on 8x8 avg",
            PoolParams {
                ceil_mode: true,
                ..params(Avg, [2, 1, 8, 8], [3, 3], [2, 2])
            },
            [4, 4],
        ),
        // On 7×7 the division is exact: ceil_mode changes nothing.
        (
            "ceil 3x3 s2 on 7x7 avg",
            PoolParams {
                ceil_mode: true,
                ..params(Avg, [1, 3, 7, 7], [3, 3], [2, 2])
            },
            [3, 3],
        ),
        // 2×2 s2 ceil on odd sizes without padding: a last window one row
        // (column) wide; with count_include_pad its divisor is still
        // clipped at H (2, not 4).
        (
            "ceil 2x2 s2 on 7x5 avg incl",
            PoolParams {
                ceil_mode: true,
                ..params(Avg, [2, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        (
            "ceil 2x2 s2 on 7x5 max",
            PoolParams {
                ceil_mode: true,
                ..params(Max, [1, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        // 2×2 s2 p1 ceil on odd sizes: the extra window ceil would add
        // starts in the bottom/right padding ((out−1)·s ≥ H + p), so
        // PyTorch drops it again: 7 → 4, 5 → 3, 9 → 5.
        (
            "ceil 2x2 s2 p1 on 7x5 avg incl (dropped window)",
            PoolParams {
                padding: Padding::hw(1, 1),
                ceil_mode: true,
                ..params(Avg, [2, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        (
            "ceil 2x2 s2 p1 on 7x5 avg excl (dropped window)",
            PoolParams {
                padding: Padding::hw(1, 1),
                ceil_mode: true,
                count_include_pad: false,
                ..params(Avg, [2, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        (
            "ceil 2x2 s2 p1 on 6x9 max (dropped window)",
            PoolParams {
                padding: Padding::hw(1, 1),
                ceil_mode: true,
                ..params(Max, [1, 3, 6, 9], [2, 2], [2, 2])
            },
            [4, 5],
        ),
        // 3×3 s2 p1 ceil on 8×8: the extra window (start 7) is kept, holds
        // one input row and one padding row, so its padded divisor is 2·3.
        (
            "ceil 3x3 s2 p1 on 8x8 avg incl",
            PoolParams {
                padding: Padding::hw(1, 1),
                ceil_mode: true,
                ..params(Avg, [1, 3, 8, 8], [3, 3], [2, 2])
            },
            [5, 5],
        ),
        (
            "ceil 3x3 s2 p1 on 8x8 avg excl",
            PoolParams {
                padding: Padding::hw(1, 1),
                ceil_mode: true,
                count_include_pad: false,
                ..params(Avg, [1, 3, 8, 8], [3, 3], [2, 2])
            },
            [5, 5],
        ),
        // Asymmetric windows, paddings and strides.
        (
            "3x1 s1 p(1,0) avg",
            PoolParams {
                padding: Padding::hw(1, 0),
                count_include_pad: false,
                ..params(Avg, [2, 3, 9, 4], [3, 1], [1, 1])
            },
            [9, 4],
        ),
        (
            "1x3 s(1,2) max",
            params(Max, [1, 1, 5, 11], [1, 3], [1, 2]),
            [5, 5],
        ),
        // A window as large as the input: one output per plane.
        (
            "whole plane max",
            params(Max, [3, 1, 5, 5], [5, 5], [1, 1]),
            [1, 1],
        ),
        // Many workgroups and a channel count that is a multiple of nothing
        // (an Inception 35×35 grid).
        (
            "inception 35x35 branch",
            PoolParams {
                padding: Padding::hw(1, 1),
                count_include_pad: false,
                ..params(Avg, [1, 67, 35, 35], [3, 3], [1, 1])
            },
            [35, 35],
        ),
    ];
    for (name, p, hw) in &cases {
        assert_eq!(p.out_hw().unwrap(), *hw, "{name}: output size");
        check(&ctx, name, p);
    }
}

#[test]
fn pool_onnx_windows() {
    // ONNX's pools beyond PyTorch's: four pad sides, pads beyond half the
    // window (any pad < window), dilation. Output sizes worked out by hand
    // from onnxruntime's rule: floor or ceil of (H + top + bottom −
    // d·(k − 1) − 1)/s, plus one, minus one when ceil's last window starts
    // at or past H + top.
    let Some(ctx) = gpu() else { return };
    use PoolKind::{Avg, Max};
    let pad = |top, left, bottom, right| Padding {
        top,
        left,
        bottom,
        right,
    };
    let cases: Vec<(&str, PoolParams, [usize; 2])> = vec![
        // TF's SAME on an even size: 3×3 s2 on 8×8 pads (0, 1) per axis
        // (SAME_UPPER): (8 + 1 − 3)/2 + 1 = 4.
        (
            "same_upper 3x3 s2 on 8x8 max",
            PoolParams {
                padding: pad(0, 0, 1, 1),
                ..params(Max, [1, 3, 8, 8], [3, 3], [2, 2])
            },
            [4, 4],
        ),
        // SAME_LOWER's pad on top: the first window holds 2 input rows;
        // counting padding it still divides by 9 (3 taps per axis).
        (
            "same_lower 3x3 s2 on 8x8 avg incl",
            PoolParams {
                padding: pad(1, 1, 0, 0),
                ..params(Avg, [2, 3, 8, 8], [3, 3], [2, 2])
            },
            [4, 4],
        ),
        // Pads beyond half the window (ONNX's test_*pool_2d_pads: 5×5 with
        // pads 2 on 5×5, then larger): 3×3 with pad 2 — a corner window has
        // one input tap, and with count_include_pad it divides by 9.
        (
            "3x3 p2 on 5x5 avg incl",
            PoolParams {
                padding: Padding::same(2),
                ..params(Avg, [1, 3, 5, 5], [3, 3], [1, 1])
            },
            [7, 7],
        ),
        (
            "3x3 p2 on 5x5 avg excl",
            PoolParams {
                padding: Padding::same(2),
                count_include_pad: false,
                ..params(Avg, [1, 3, 5, 5], [3, 3], [1, 1])
            },
            [7, 7],
        ),
        (
            "3x3 p(2,0,1,2) on 6x5 max",
            PoolParams {
                padding: pad(2, 0, 1, 2),
                ..params(Max, [1, 5, 6, 5], [3, 3], [1, 1])
            },
            [7, 5],
        ),
        // Dilation 2: a 3×3 window spans 5×5; (9 − 5)/1 + 1 = 5 (ONNX's
        // test_maxpool_2d_dilations is 2×2 d2 on 4×4 → 2×2).
        (
            "3x3 d2 on 9x7 max",
            params_d(Max, [2, 3, 9, 7], [3, 3], [1, 1], [2, 2]),
            [5, 3],
        ),
        // Dilation with padding and count_include_pad: a window's divisor
        // counts its taps before min(start + k·d, H + bottom), here 3 or 2;
        // rows (8 + 2 + 1 − 5)/2 + 1 = 4, columns (7 + 1 + 2 − 5)/2 + 1 = 3.
        (
            "3x3 d2 p(2,1,1,2) s2 avg incl",
            PoolParams {
                padding: pad(2, 1, 1, 2),
                ..params_d(Avg, [1, 3, 8, 7], [4, 3], [2, 2], [2, 2])
            },
            [3, 3],
        ),
        (
            "3x3 d2 p(2,1,1,2) s2 avg excl",
            PoolParams {
                padding: pad(2, 1, 1, 2),
                count_include_pad: false,
                ..params_d(Avg, [1, 3, 8, 7], [4, 3], [2, 2], [2, 2])
            },
            [3, 3],
        ),
        // Dilation and ceil_mode with asymmetric pads: rows ceil((7 + 0 + 1
        // − 3)/2) + 1 = 4, the last window starting at 6 < 7 (kept, one
        // tap: 8 is past min(6 + 4, 7 + 1)); columns ceil((6 + 1 + 0 −
        // 3)/2) + 1 = 3, the last starting at 4 − 1 = 3 < 6 + 1 (kept).
        (
            "2x2 d2 s2 ceil p(0,1,1,0) avg incl",
            PoolParams {
                padding: pad(0, 1, 1, 0),
                ceil_mode: true,
                ..params_d(Avg, [2, 3, 7, 6], [2, 2], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        // ceil's dropped last window with asymmetric pads: 2×2 s2 with a
        // bottom pad of 1 on 4 rows: ceil((4 + 1 − 2)/2) + 1 = 3, but the
        // third window starts at 4 ≥ 4 + 0 (top pad): dropped → 2.
        (
            "2x2 s2 ceil bottom pad 1 on 4 rows (dropped window)",
            PoolParams {
                padding: pad(0, 0, 1, 0),
                ceil_mode: true,
                ..params(Max, [1, 3, 4, 4], [2, 2], [2, 2])
            },
            [2, 2],
        ),
    ];
    for (name, p, hw) in &cases {
        assert_eq!(p.out_hw().unwrap(), *hw, "{name}: output size");
        check(&ctx, name, p);
    }
}

/// [`params`] with a dilation.
fn params_d(
    kind: PoolKind,
    shape: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
) -> PoolParams {
    PoolParams {
        dilation: d,
        ..params(kind, shape, k, s)
    }
}

#[test]
fn pool_onnx_random_sweep() {
    // Random four-sided pads up to the window, dilation up to 3, strides,
    // ceil_mode and count_include_pad, odd and even sizes, odd channel
    // counts; every combination the IR accepts (a window must keep an
    // input tap) runs on the GPU in every storage mode.
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng(20261130);
    let mut cases = 0;
    while cases < 60 {
        let kind = rng.pick(&[PoolKind::Max, PoolKind::Avg]);
        let k = [rng.range(1, 4), rng.range(1, 4)];
        let p = PoolParams {
            padding: Padding {
                top: rng.below(k[0]),
                left: rng.below(k[1]),
                bottom: rng.below(k[0]),
                right: rng.below(k[1]),
            },
            dilation: [rng.range(1, 3), rng.range(1, 3)],
            ceil_mode: rng.chance(0.5),
            count_include_pad: rng.chance(0.5),
            ..params(
                kind,
                [
                    rng.range(1, 2),
                    rng.pick(&[1, 3, 4]),
                    rng.range(1, 11),
                    rng.range(1, 11),
                ],
                k,
                [rng.range(1, 3), rng.range(1, 3)],
            )
        };
        if p.validate("sweep").is_err() {
            continue;
        }
        let trace = cases % SWEEP_TRACE_EVERY == 0;
        check_traced(&ctx, &format!("{p:?}"), &p, trace);
        cases += 1;
    }
}

#[test]
fn pool_channel_offset() {
    // The pool branch of an Inception block writes straight into the
    // block's concat: only its channel range may change; the rest of the
    // NaN-filled wider tensor must stay NaN.
    let Some(ctx) = gpu() else { return };
    // Odd offsets and odd totals: in packed f16 the pool's first or last
    // channel shares a word with a channel it must not touch.
    for (kind, offset, total) in [
        (PoolKind::Max, 0, 8),
        (PoolKind::Avg, 5, 8),
        (PoolKind::Max, 2, 9),
        (PoolKind::Avg, 1, 5),
        (PoolKind::Max, 3, 7),
    ] {
        let p = PoolParams {
            padding: Padding::hw(1, 1),
            out_c_total: total,
            out_c_offset: offset,
            count_include_pad: false,
            ..params(kind, [2, 3, 7, 6], [3, 3], [1, 1])
        };
        check(&ctx, &format!("offset {offset} of {total} {kind:?}"), &p);
        let p = PoolParams {
            out_c_total: total,
            out_c_offset: offset,
            ceil_mode: true,
            ..params(kind, [1, 3, 8, 8], [3, 3], [2, 2])
        };
        check(
            &ctx,
            &format!("ceil offset {offset} of {total} {kind:?}"),
            &p,
        );
    }
}

#[test]
fn pool_property_sweep() {
    // Every valid combination of a small grid of windows, strides,
    // paddings, ceil_mode and count_include_pad on odd and even sizes.
    let Some(ctx) = gpu() else { return };
    let mut cases = 0;
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (kh, kw) in [(1, 1), (2, 2), (3, 3), (2, 3), (4, 1)] {
            for stride in [1, 2, 3] {
                for pad in 0..=1 {
                    for ceil_mode in [false, true] {
                        for cip in [false, true] {
                            if kind == PoolKind::Max && !cip {
                                continue;
                            }
                            let (h, w) = (5 + stride, 4 + kh);
                            let p = PoolParams {
                                padding: Padding::hw(pad.min(kh / 2), pad.min(kw / 2)),
                                ceil_mode,
                                count_include_pad: cip,
                                out_c_total: 4,
                                out_c_offset: 1,
                                ..params(kind, [2, 3, h, w], [kh, kw], [stride, stride])
                            };
                            if p.validate("sweep").is_err() {
                                continue;
                            }
                            let trace = cases % SWEEP_TRACE_EVERY == 0;
                            check_traced(&ctx, &format!("{p:?}"), &p, trace);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 100, "sweep ran only {cases} cases");
}

#[test]
fn pool_rejects_bad_params() {
    let Some(ctx) = gpu() else { return };
    let x = ctx.storage_buffer("x", 64);
    let out = ctx.storage_buffer("out", 64);
    // A dilated window with no input tap (taps at −1 and 3 of 3 rows), a
    // window larger than the padded input, and a channel range past the
    // output tensor are errors, not launches.
    let bad = [
        PoolParams {
            padding: Padding::hw(1, 0),
            dilation: [4, 1],
            ..params(PoolKind::Max, [1, 1, 3, 4], [2, 2], [1, 1])
        },
        params(PoolKind::Avg, [1, 1, 2, 2], [3, 3], [1, 1]),
        PoolParams {
            out_c_offset: 1,
            ..params(PoolKind::Max, [1, 2, 4, 4], [2, 2], [2, 2])
        },
    ];
    for p in &bad {
        for storage in storages(&ctx) {
            assert!(
                pool::pool_gpu(&ctx, "bad", storage, p, &x, &out).is_err(),
                "{p:?}"
            );
        }
    }
}

#[test]
fn global_avg_pool_sweep() {
    let Some(ctx) = gpu() else { return };
    // Planes 1×1 (a copy), 7×7 (ResNet), 8×8 (Inception), 17×17 (more rows
    // than lanes, not a multiple of 8); C=1 and C=3 (mostly idle lanes),
    // 1536 (Inception-v4/ResNet-v2 width, 48 channel blocks); batch 2.
    for storage in storages(&ctx) {
        for &hw in &[1usize, 7, 8, 17] {
            for &c in &[1usize, 3, 1536] {
                let n = 2;
                let x = rand_vec(hw as u64 * 7 + c as u64, n * c * hw * hw);
                let mut want = vec![0.0; n * c];
                if storage.is_f16() {
                    pool::global_avg_pool_cpu_f16(n, c, hw * hw, &x, &mut want);
                } else {
                    pool::global_avg_pool_cpu(n, c, hw * hw, &x, &mut want);
                }
                let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, [n, c, hw, hw]));
                let out = nan_tensor(&ctx, storage, n * c);
                let case = format!("{} global avg {hw}x{hw} C={c}", storage.name());
                let d = pool::global_avg_pool_gpu(&ctx, &case, storage, n, c, hw * hw, &bx, &out)
                    .unwrap();
                ctx.run_dispatches(&[&d]).unwrap();
                let got = ctx.read_tensor(&out, storage, n * c).unwrap();
                assert_close(&case, &got, &want, pool::tolerance(storage));
            }
        }
    }
}

#[test]
fn global_avg_pool_many_rows() {
    // A large batch of narrow rows: more than 65535 workgroups, so the
    // group index is folded into the grid's y.
    let Some(ctx) = gpu() else { return };
    let (n, c, hw) = (66_000, 3, 4);
    let x = rand_vec(9, n * c * hw);
    for storage in storages(&ctx) {
        let mut want = vec![0.0; n * c];
        if storage.is_f16() {
            pool::global_avg_pool_cpu_f16(n, c, hw, &x, &mut want);
        } else {
            pool::global_avg_pool_cpu(n, c, hw, &x, &mut want);
        }
        let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, [n, c, hw, 1]));
        let out = nan_tensor(&ctx, storage, n * c);
        let d = pool::global_avg_pool_gpu(&ctx, "many rows", storage, n, c, hw, &bx, &out).unwrap();
        assert!(
            d.workgroups()[1] > 1,
            "grid not folded: {:?}",
            d.workgroups()
        );
        ctx.run_dispatches(&[&d]).unwrap();
        let got = ctx.read_tensor(&out, storage, n * c).unwrap();
        let case = format!("{} many rows", storage.name());
        assert_close(&case, &got, &want, pool::tolerance(storage));
    }
}
