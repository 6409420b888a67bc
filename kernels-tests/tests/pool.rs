//! GPU-vs-CPU tests for windowed max/avg pooling (PyTorch window and
//! ceil_mode rules, channel-offset output) and global average pooling, in
//! every storage mode (odd channel counts and odd offsets put two writers
//! on the halves of one packed f16 word).

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages, trace_dispatches};
use resincept::graph::PoolKind;
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
        padding: [0, 0],
        ceil_mode: false,
        count_include_pad: true,
        out_c_total: c,
        out_c_offset: 0,
    }
}

/// Runs pool `p` on the GPU, in every storage mode, and the CPU. Compares
/// the written channel range with the pool tolerance and checks every
/// other channel of the (NaN pre-filled) output is still NaN.
fn check(ctx: &Context, case: &str, p: &PoolParams) {
    for storage in storages(ctx) {
        check_in(ctx, storage, &format!("{} {case}", storage.name()), p);
    }
}

fn check_in(ctx: &Context, storage: Storage, case: &str, p: &PoolParams) {
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
    trace_dispatches(ctx, "pool", case, &[&d], &[("output", &out, tol, storage)]);
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
                padding: [1, 1],
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
                padding: [1, 1],
                ..params(Avg, [2, 3, 7, 7], [3, 3], [1, 1])
            },
            [7, 7],
        ),
        (
            "branch avg 3x3 s1 p1 exclude pad",
            PoolParams {
                padding: [1, 1],
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
                padding: [1, 1],
                ceil_mode: true,
                ..params(Avg, [2, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        (
            "ceil 2x2 s2 p1 on 7x5 avg excl (dropped window)",
            PoolParams {
                padding: [1, 1],
                ceil_mode: true,
                count_include_pad: false,
                ..params(Avg, [2, 3, 7, 5], [2, 2], [2, 2])
            },
            [4, 3],
        ),
        (
            "ceil 2x2 s2 p1 on 6x9 max (dropped window)",
            PoolParams {
                padding: [1, 1],
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
                padding: [1, 1],
                ceil_mode: true,
                ..params(Avg, [1, 3, 8, 8], [3, 3], [2, 2])
            },
            [5, 5],
        ),
        (
            "ceil 3x3 s2 p1 on 8x8 avg excl",
            PoolParams {
                padding: [1, 1],
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
                padding: [1, 0],
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
                padding: [1, 1],
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
            padding: [1, 1],
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
                                padding: [pad.min(kh / 2), pad.min(kw / 2)],
                                ceil_mode,
                                count_include_pad: cip,
                                out_c_total: 4,
                                out_c_offset: 1,
                                ..params(kind, [2, 3, h, w], [kh, kw], [stride, stride])
                            };
                            if p.validate("sweep").is_err() {
                                continue;
                            }
                            check(&ctx, &format!("{p:?}"), &p);
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
    // Padding over half the window, a window larger than the padded input,
    // and a channel range past the output tensor are errors, not launches.
    let bad = [
        PoolParams {
            padding: [2, 2],
            ..params(PoolKind::Max, [1, 1, 4, 4], [3, 3], [1, 1])
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
