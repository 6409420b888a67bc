//! GPU-vs-CPU tests for the channel-offset concat copy, in every storage
//! mode. Packed f16 stores two channels per 32-bit word, so odd widths, odd
//! offsets and odd row lengths put two writers (two invocations of one
//! dispatch, or two dispatches) on the halves of one word: the cases below
//! check that neither loses the other's half.

use kernels_tests::{assert_close, gpu, nan_tensor, rand_vec, storages, trace_dispatches};
use resincept::kernels::concat::{self, ConcatParams};
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};

#[test]
fn concat_sweep() {
    let Some(ctx) = gpu() else { return };
    // (N, H, W, C, out_c_total, out_c_offset): a single element, C=1 and
    // C=3, odd planes, batch > 1, sources at the start, middle and end of
    // the output, and sizes that are not multiples of the workgroup. For
    // packed f16: odd offsets (1, 3), odd widths (1, 3, 5), odd row lengths
    // (3, 7: one row's last channel and the next row's first share a word,
    // written by two invocations of one dispatch), and a source filling
    // whole odd rows.
    let cases = [
        (1, 1, 1, 1, 1, 0),
        (1, 1, 1, 1, 4, 3),
        (2, 5, 7, 3, 10, 4),
        (3, 17, 17, 1, 2, 0),
        (2, 8, 8, 64, 200, 136),
        (1, 35, 35, 96, 288, 96),
        (2, 3, 5, 3, 3, 0),
        (1, 7, 9, 5, 7, 1),
        (2, 4, 3, 2, 7, 3),
        (1, 6, 5, 1, 3, 1),
    ];
    for storage in storages(&ctx) {
        for (i, &(n, h, w, c, total, offset)) in cases.iter().enumerate() {
            let p = ConcatParams {
                batch: n,
                hw: h * w,
                channels: c,
                out_c_total: total,
                out_c_offset: offset,
            };
            // A copy: the f16 source holds f16 values, copied exactly.
            let mut src = rand_vec(20 + i as u64, n * c * h * w);
            if storage.is_f16() {
                src = resincept::kernels::rounded_f16(&src);
            }
            let out_len = n * total * h * w;
            let mut want = vec![f32::NAN; out_len];
            concat::concat_cpu(&p, &src, &mut want);
            let bsrc = ctx.tensor_buffer_init("src", storage, &nchw_to_nhwc(&src, [n, c, h, w]));
            let out = nan_tensor(&ctx, storage, out_len);
            let d = concat::concat_gpu(&ctx, "concat", storage, &p, &bsrc, &out).unwrap();
            let case = format!("sweep {i} {}", storage.name());
            trace_dispatches(
                &ctx,
                "concat",
                &case,
                &[&d],
                &[("output", &out, concat::TOLERANCE, storage)],
            );
            ctx.run_dispatches(&[&d]).unwrap();
            let got = nhwc_to_nchw(
                &ctx.read_tensor(&out, storage, out_len).unwrap(),
                [n, total, h, w],
            );
            // Written channels must match bit for bit; all others stay NaN.
            let plane = h * w;
            let (mut g, mut r) = (Vec::new(), Vec::new());
            for b in 0..n {
                for ch in 0..total {
                    let at = (b * total + ch) * plane;
                    if (offset..offset + c).contains(&ch) {
                        g.extend_from_slice(&got[at..at + plane]);
                        r.extend_from_slice(&want[at..at + plane]);
                    } else {
                        assert!(
                            got[at..at + plane].iter().all(|v| v.is_nan()),
                            "{case} {p:?}: wrote channel {ch} of batch {b}, outside its range"
                        );
                    }
                }
            }
            assert_close(&format!("{case} {p:?}"), &g, &r, concat::TOLERANCE);
        }
    }
}

#[test]
fn concat_fills_block_output() {
    // An Inception-style block: three sources of 1, 3 and 64 channels
    // concatenated into one 68-channel tensor by three dispatches in one
    // pass. Every element is written (no NaN survives) and equals the
    // reference. In packed f16, channel 0 (first dispatch) and channel 1
    // (second) share a word, as do channels 3 and 4 (second and third).
    let Some(ctx) = gpu() else { return };
    let (n, h, w) = (2, 9, 7);
    let widths = [1usize, 3, 64];
    let total: usize = widths.iter().sum();
    let out_len = n * total * h * w;
    for storage in storages(&ctx) {
        let out = nan_tensor(&ctx, storage, out_len);
        let mut want = vec![f32::NAN; out_len];
        let mut bufs = Vec::new();
        let mut params = Vec::new();
        let mut offset = 0;
        for (i, &c) in widths.iter().enumerate() {
            let p = ConcatParams {
                batch: n,
                hw: h * w,
                channels: c,
                out_c_total: total,
                out_c_offset: offset,
            };
            let mut src = rand_vec(40 + i as u64, n * c * h * w);
            if storage.is_f16() {
                src = resincept::kernels::rounded_f16(&src);
            }
            concat::concat_cpu(&p, &src, &mut want);
            bufs.push(ctx.tensor_buffer_init("src", storage, &nchw_to_nhwc(&src, [n, c, h, w])));
            params.push(p);
            offset += c;
        }
        let ds: Vec<_> = params
            .iter()
            .zip(&bufs)
            .map(|(p, b)| concat::concat_gpu(&ctx, "concat", storage, p, b, &out).unwrap())
            .collect();
        ctx.run_dispatches(&ds.iter().collect::<Vec<_>>()).unwrap();
        let got = nhwc_to_nchw(
            &ctx.read_tensor(&out, storage, out_len).unwrap(),
            [n, total, h, w],
        );
        assert_close(
            &format!("{} three-way concat", storage.name()),
            &got,
            &want,
            concat::TOLERANCE,
        );
    }
}

#[test]
fn concat_folded_grid() {
    // More than 65535 workgroups of 256 channel pairs: the grid is folded
    // into y, and the copy must still land every element. (131071 rows of
    // 128 pairs; the f32 output is just under 128 MiB, WebGPU's default
    // binding limit.)
    let Some(ctx) = gpu() else { return };
    let p = ConcatParams {
        batch: 1,
        hw: 131_071,
        channels: 255,
        out_c_total: 256,
        out_c_offset: 1,
    };
    let src = rand_vec(50, p.hw * p.channels);
    let out_len = p.hw * p.out_c_total;
    for storage in storages(&ctx) {
        let src = if storage.is_f16() {
            resincept::kernels::rounded_f16(&src)
        } else {
            src.clone()
        };
        let mut want = vec![f32::NAN; out_len];
        concat::concat_cpu(&p, &src, &mut want);
        let shape = [1, p.channels, p.hw, 1];
        let bsrc = ctx.tensor_buffer_init("src", storage, &nchw_to_nhwc(&src, shape));
        let out = nan_tensor(&ctx, storage, out_len);
        let d = concat::concat_gpu(&ctx, "concat", storage, &p, &bsrc, &out).unwrap();
        assert!(
            d.workgroups()[1] > 1,
            "grid not folded: {:?}",
            d.workgroups()
        );
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(
            &ctx.read_tensor(&out, storage, out_len).unwrap(),
            [1, p.out_c_total, p.hw, 1],
        );
        // Channel 0 is not this source's: compare the rest.
        let keep = |v: &[f32]| -> Vec<f32> { v[p.hw..].to_vec() };
        let case = format!("{} folded grid", storage.name());
        assert_close(&case, &keep(&got), &keep(&want), concat::TOLERANCE);
        assert!(got[..p.hw].iter().all(|v| v.is_nan()), "{case}");
    }
}

#[test]
fn concat_rejects_out_of_range() {
    let Some(ctx) = gpu() else { return };
    let b = ctx.storage_buffer("b", 16);
    let p = ConcatParams {
        batch: 1,
        hw: 4,
        channels: 3,
        out_c_total: 4,
        out_c_offset: 2,
    };
    for storage in storages(&ctx) {
        assert!(concat::concat_gpu(&ctx, "concat", storage, &p, &b, &b).is_err());
    }
}
