//! GPU-vs-CPU tests for the index-mapping kernels (pad / crop in every
//! mode, transpose), in every storage mode (f32, native f16, packed f16),
//! the CPU references against hand-written cases, and graphs holding them
//! through both executors.

use kernels_tests::{
    assert_close, gpu, nan_tensor, options_in, rand_vec, storages, trace_dispatches,
};
use resincept::exec::cpu;
use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::exec::Precision;
use resincept::graph::{Graph, Pad, PadMode, Padding};
use resincept::kernels::pad::{self, PadParams};
use resincept::shaders::Storage;
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw, Tensor};
use resincept::weights::Weights;
use resincept::Context;

const MODES: [PadMode; 4] = [
    PadMode::Constant,
    PadMode::Edge,
    PadMode::Reflect,
    PadMode::Wrap,
];

fn pads(top: usize, left: usize, bottom: usize, right: usize) -> Padding {
    Padding {
        top,
        left,
        bottom,
        right,
    }
}

fn nd(begin: [i64; 4], end: [i64; 4], mode: PadMode, value: f32) -> Pad {
    Pad {
        begin,
        end,
        mode,
        value,
    }
}

/// Runs one pad in every storage mode against its reference (and records
/// it for the Dawn replay when `trace`).
fn check_pad(ctx: &Context, seed: u64, p: &PadParams, trace: bool) {
    let out_shape = p.out_shape("case").unwrap();
    let out_len: usize = out_shape.iter().product();
    let x = rand_vec(seed, p.shape.iter().product());
    for storage in storages(ctx) {
        let mut want = vec![f32::NAN; out_len];
        if storage.is_f16() {
            pad::pad_cpu_f16(p, &x, &mut want);
        } else {
            pad::pad_cpu(p, &x, &mut want);
        }
        let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, p.shape));
        let out = nan_tensor(ctx, storage, out_len);
        let case = format!("{} {p:?}", storage.name());
        let d = pad::pad_gpu(ctx, &case, storage, p, &bx, &out).unwrap();
        if trace {
            let tol = pad::tolerance(storage);
            trace_dispatches(ctx, "pad", &case, &[&d], &[("out", &out, tol, storage)]);
        }
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, out_len).unwrap(), out_shape);
        assert_close(&case, &got, &want, pad::tolerance(storage));
    }
}

#[test]
fn pad_sweep() {
    let Some(ctx) = gpu() else { return };
    // Constant H/W pads: C = 1 and 3 and odd totals (packed f16's
    // half-word stores, two elements of one word in different pixels),
    // each side alone, all four different, none (a copy), a pad larger
    // than the input, batch > 1, and a value that is not an f16 number
    // (0.1: rounded once on store).
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
    for (si, &(shape, padding, value)) in cases.iter().enumerate() {
        let p = PadParams {
            shape,
            pad: Pad::constant_hw(padding, value),
        };
        check_pad(&ctx, 60 + si as u64, &p, false);
    }
}

#[test]
fn pad_modes_sweep() {
    let Some(ctx) = gpu() else { return };
    // Every mode on every axis: pads on N and C too (C odd, so packed f16
    // words straddle pixels), asymmetric pads, pads equal to size − 1
    // (reflect's largest), crops of one side with a pad of the other (the
    // mode then reads the cropped tensor), crops alone, a length-1 axis
    // (edge and wrap repeat its one element), and wrap pads longer than
    // the axis (periodic).
    let cases: [([usize; 4], [i64; 4], [i64; 4]); 8] = [
        ([1, 3, 5, 4], [0, 0, 2, 1], [0, 0, 1, 3]),
        ([2, 3, 4, 5], [1, 2, 0, 0], [0, 1, 0, 0]),
        ([1, 5, 7, 3], [0, 0, 6, 2], [0, 0, 6, 2]),
        ([2, 3, 6, 5], [0, 0, -2, 3], [0, 0, 1, -1]),
        ([1, 4, 5, 6], [0, -1, -1, -2], [0, -2, -3, 0]),
        ([3, 1, 3, 7], [-1, 0, 2, -3], [1, 0, -1, 2]),
        ([2, 2, 1, 3], [0, 1, 0, 1], [0, 0, 0, 2]),
        ([1, 3, 4, 2], [0, 0, 2, 1], [0, 0, 1, 1]),
    ];
    let mut k = 0;
    for &(shape, begin, end) in &cases {
        for mode in MODES {
            let p = PadParams {
                shape,
                pad: nd(begin, end, mode, 0.3),
            };
            if p.validate("case").is_err() {
                // Reflect where a pad reaches the (cropped) length: checked
                // to be refused in `pad_refuses_bad_params`.
                assert_eq!(mode, PadMode::Reflect, "{p:?}");
                continue;
            }
            // One case in four is traced for the Dawn replay.
            check_pad(&ctx, 100 + k, &p, k % 4 == 0);
            k += 1;
        }
    }
    // Wrap beyond one period, on W only.
    let p = PadParams {
        shape: [1, 2, 3, 2],
        pad: nd([0, 0, 0, 5], [0, 0, 4, 3], PadMode::Wrap, 0.0),
    };
    check_pad(&ctx, 199, &p, true);
}

#[test]
fn pad_reference_by_hand() {
    // The CPU reference on cases small enough to write out, numpy's
    // np.pad of [[1, 2, 3], [4, 5, 6]] by one row above and two columns on
    // the right, in each mode.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let run = |mode, begin, end| {
        let p = PadParams {
            shape: [1, 1, 2, 3],
            pad: nd(begin, end, mode, 9.0),
        };
        let s = p.out_shape("hand").unwrap();
        let mut out = vec![f32::NAN; s.iter().product()];
        pad::pad_cpu(&p, &x, &mut out);
        out
    };
    let (b, e) = ([0, 0, 1, 0], [0, 0, 0, 2]);
    #[rustfmt::skip]
    let constant = [
        9.0, 9.0, 9.0, 9.0, 9.0,
        1.0, 2.0, 3.0, 9.0, 9.0,
        4.0, 5.0, 6.0, 9.0, 9.0,
    ];
    #[rustfmt::skip]
    let edge = [
        1.0, 2.0, 3.0, 3.0, 3.0,
        1.0, 2.0, 3.0, 3.0, 3.0,
        4.0, 5.0, 6.0, 6.0, 6.0,
    ];
    #[rustfmt::skip]
    let reflect = [
        4.0, 5.0, 6.0, 5.0, 4.0,
        1.0, 2.0, 3.0, 2.0, 1.0,
        4.0, 5.0, 6.0, 5.0, 4.0,
    ];
    #[rustfmt::skip]
    let wrap = [
        4.0, 5.0, 6.0, 4.0, 5.0,
        1.0, 2.0, 3.0, 1.0, 2.0,
        4.0, 5.0, 6.0, 4.0, 5.0,
    ];
    assert_eq!(run(PadMode::Constant, b, e), constant);
    assert_eq!(run(PadMode::Edge, b, e), edge);
    assert_eq!(run(PadMode::Reflect, b, e), reflect);
    assert_eq!(run(PadMode::Wrap, b, e), wrap);
    // Crop the last column and edge-pad
    // one on the left: [[1, 1, 2], [4, 4, 5]]. Crop the first and
    // wrap-pad one on the right: the wrap is of the cropped tensor
    // (onnxruntime's order), [[2, 3, 2], [5, 6, 5]].
    assert_eq!(
        run(PadMode::Edge, [0, 0, 0, 1], [0, 0, 0, -1]),
        [1.0, 1.0, 2.0, 4.0, 4.0, 5.0]
    );
    #[rustfmt::skip]
    let crop_wrap = [
        2.0, 3.0, 2.0,
        5.0, 6.0, 5.0,
    ];
    let p = PadParams {
        shape: [1, 1, 2, 3],
        pad: nd([0, 0, 0, -1], [0, 0, 0, 1], PadMode::Wrap, 0.0),
    };
    let mut out = vec![f32::NAN; 6];
    pad::pad_cpu(&p, &x, &mut out);
    assert_eq!(out, crop_wrap);
}

#[test]
fn pad_refuses_bad_params() {
    let Some(ctx) = gpu() else { return };
    // 16 f32 elements each.
    let x = ctx.storage_buffer("x", 16);
    let out = ctx.storage_buffer("out", 16);
    let ok = PadParams {
        shape: [1, 2, 2, 2],
        pad: Pad::constant_hw(pads(1, 1, 1, 1), 0.0),
    };
    let with = |pad: Pad| PadParams { pad, ..ok };
    // A non-finite value, a zero-sized input, an output larger than its
    // buffer (2·4·4 = 32 elements > 16), a reflect pad as long as the
    // axis (numpy and ONNX refuse it: there is no second element to
    // mirror onto), and a crop of every element are errors naming the
    // node; the reflect one names the axis, the pad and the size.
    for (p, must) in [
        (
            with(Pad {
                value: f32::INFINITY,
                ..ok.pad
            }),
            "not finite",
        ),
        (
            with(Pad {
                value: f32::NAN,
                ..ok.pad
            }),
            "not finite",
        ),
        (
            PadParams {
                shape: [1, 2, 0, 2],
                ..ok
            },
            "zero-sized",
        ),
        (ok, "bytes"),
        (
            with(nd([0, 0, 0, 2], [0, 0, 0, 0], PadMode::Reflect, 0.0)),
            "reflect pad 2 on axis 3 of size 2",
        ),
        (
            with(nd([0, 0, -1, 0], [0, 0, -1, 0], PadMode::Constant, 0.0)),
            "crop all 2",
        ),
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
        let msg = e.to_string();
        assert!(msg.contains("bad_pad") && msg.contains(must), "{msg}");
    }
}

/// Every permutation of `0..4`.
fn permutations() -> Vec<[usize; 4]> {
    let mut out = Vec::new();
    for a in 0..4 {
        for b in 0..4 {
            for c in 0..4 {
                for d in 0..4 {
                    let p = [a, b, c, d];
                    let mut s = p;
                    s.sort_unstable();
                    if s == [0, 1, 2, 3] {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn transpose_sweep() {
    let Some(ctx) = gpu() else { return };
    let perms = permutations();
    assert_eq!(perms.len(), 24);
    // All 24 permutations of odd, pairwise different dims (so a wrong axis
    // cannot pass by symmetry), and of a shape with ones (ONNX's rank-2
    // and rank-3 values are (N, F, 1, 1) and (A, B, C, 1)).
    for shape in [[3, 5, 7, 1], [2, 3, 5, 7]] {
        for (k, &perm) in perms.iter().enumerate() {
            let len: usize = shape.iter().product();
            let out_shape = perm.map(|a| shape[a]);
            let x = rand_vec(300 + k as u64, len);
            for storage in storages(&ctx) {
                let want = if storage.is_f16() {
                    pad::transpose_cpu_f16(shape, perm, &x)
                } else {
                    pad::transpose_cpu(shape, perm, &x)
                };
                let bx = ctx.tensor_buffer_init("x", storage, &nchw_to_nhwc(&x, shape));
                let out = nan_tensor(&ctx, storage, len);
                let case = format!("{} transpose {shape:?} by {perm:?}", storage.name());
                let d = pad::transpose_gpu(&ctx, &case, storage, shape, perm, &bx, &out).unwrap();
                if k % 8 == 3 {
                    let tol = pad::tolerance(storage);
                    trace_dispatches(
                        &ctx,
                        "transpose",
                        &case,
                        &[&d],
                        &[("out", &out, tol, storage)],
                    );
                }
                ctx.run_dispatches(&[&d]).unwrap();
                let got = nhwc_to_nchw(&ctx.read_tensor(&out, storage, len).unwrap(), out_shape);
                assert_close(&case, &got, &want, pad::tolerance(storage));
            }
        }
    }
}

#[test]
fn transpose_reference_by_hand() {
    // A 2×3 matrix (as (2, 3, 1, 1)) transposed: numpy's x.T.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let t = pad::transpose_cpu([2, 3, 1, 1], [1, 0, 2, 3], &x);
    assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // (1, 2, 1, 3) moved to (1, 3, 2, 1) by (0, 3, 1, 2): NHWC→NCHW
    // relabelling's inverse of the same data.
    let t = pad::transpose_cpu([1, 2, 1, 3], [0, 3, 1, 2], &x);
    assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn transpose_refuses_bad_perm() {
    let Some(ctx) = gpu() else { return };
    let x = ctx.storage_buffer("x", 16);
    let out = ctx.storage_buffer("out", 16);
    for perm in [[0, 1, 1, 3], [0, 1, 2, 4]] {
        let e = pad::transpose_gpu(
            &ctx,
            "bad_transpose",
            resincept::shaders::Storage::F32,
            [1, 2, 2, 2],
            perm,
            &x,
            &out,
        )
        .err()
        .unwrap_or_else(|| panic!("{perm:?} accepted"));
        assert!(e.to_string().contains("bad_transpose"), "{e}");
    }
}

/// A graph: reflect pad → transpose (moving N) → edge crop-pad, through
/// the CPU executor and the GPU in each precision; the GPU refuses to run
/// it on fewer images than it was compiled for, and to split the batch.
#[test]
fn pad_transpose_graph_both_executors() {
    let mut g = Graph::new();
    let shape = [3, 2, 5, 4];
    let x = g.input("x", shape).unwrap();
    let a = g
        .pad_nd(
            "reflect",
            x,
            nd([0, 0, 2, 1], [0, 0, 1, 3], PadMode::Reflect, 0.0),
        )
        .unwrap();
    let t = g.transpose("swap", a, [1, 3, 0, 2]).unwrap();
    let y = g
        .pad_nd(
            "edge",
            t,
            nd([0, -1, 1, 0], [1, 0, 0, -2], PadMode::Edge, 0.0),
        )
        .unwrap();
    g.output(y);
    assert_eq!(g.batch_coupled().map(|n| n.name.as_str()), Some("swap"));
    let w = Weights::new();
    let input = Tensor::new(shape.to_vec(), rand_vec(7, shape.iter().product())).unwrap();
    let want = cpu::run(&g, &w, &input).unwrap();
    let Some(ctx) = gpu() else { return };
    let want16 = cpu::run_with(&g, &w, &input, Precision::F16).unwrap();
    for storage in storages(&ctx) {
        let opts = options_in(CompileOptions::new(3, 5, 4).poisoned(), storage);
        let want = if storage == Storage::F32 {
            &want
        } else {
            &want16
        };
        let model = CompiledGraph::compile(ctx.clone(), &g, &w, &opts).unwrap();
        let got = model.run(&input).unwrap();
        assert_eq!(got[0].shape, want[0].shape);
        let case = format!("pad/transpose graph {}", storage.name());
        assert_close(&case, &got[0].data, &want[0].data, pad::tolerance(storage));
        // Two of the three images: refused, naming the coupling node.
        let two = Tensor::new(vec![2, 2, 5, 4], input.data[..80].to_vec()).unwrap();
        let e = model.run(&two).unwrap_err().to_string();
        assert!(e.contains("swap") && e.contains("whole"), "{e}");
    }
    let opts = CompileOptions::new(3, 5, 4).with_micro_batch(1);
    let Err(e) = CompiledGraph::compile(ctx.clone(), &g, &w, &opts) else {
        panic!("a split batch accepted");
    };
    let e = e.to_string();
    assert!(e.contains("swap") && e.contains("micro-batch"), "{e}");
}
