//! GPU-vs-CPU tests for the channel-offset concat copy.

use kernels_tests::{assert_close, gpu, nan_buffer, rand_vec, trace_dispatches};
use resincept::kernels::concat::{self, ConcatParams};
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};

#[test]
fn concat_sweep() {
    let Some(ctx) = gpu() else { return };
    // (N, H, W, C, out_c_total, out_c_offset): a single element, C=1 and
    // C=3, odd planes, batch > 1, sources at the start, middle and end of
    // the output, and sizes that are not multiples of the workgroup.
    let cases = [
        (1, 1, 1, 1, 1, 0),
        (1, 1, 1, 1, 4, 3),
        (2, 5, 7, 3, 10, 4),
        (3, 17, 17, 1, 2, 0),
        (2, 8, 8, 64, 200, 136),
        (1, 35, 35, 96, 288, 96),
    ];
    for (i, &(n, h, w, c, total, offset)) in cases.iter().enumerate() {
        let p = ConcatParams {
            batch: n,
            hw: h * w,
            channels: c,
            out_c_total: total,
            out_c_offset: offset,
        };
        let src = rand_vec(20 + i as u64, n * c * h * w);
        let out_len = n * total * h * w;
        let mut want = vec![f32::NAN; out_len];
        concat::concat_cpu(&p, &src, &mut want);
        let bsrc = ctx.storage_buffer_init("src", &nchw_to_nhwc(&src, [n, c, h, w]));
        let out = nan_buffer(&ctx, out_len);
        let d = concat::concat_gpu(&ctx, "concat", &p, &bsrc, &out).unwrap();
        let case = format!("sweep {i}");
        trace_dispatches(
            &ctx,
            "concat",
            &case,
            &[&d],
            &[("output", &out, concat::TOLERANCE)],
        );
        ctx.run_dispatches(&[&d]).unwrap();
        let got = nhwc_to_nchw(&ctx.read_buffer(&out, out_len).unwrap(), [n, total, h, w]);
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
                        "{p:?}: wrote channel {ch} of batch {b}, outside its range"
                    );
                }
            }
        }
        assert_close(&format!("{p:?}"), &g, &r, concat::TOLERANCE);
    }
}

#[test]
fn concat_fills_block_output() {
    // An Inception-style block: three sources of 1, 3 and 64 channels
    // concatenated into one 68-channel tensor by three dispatches in one
    // pass. Every element is written (no NaN survives) and equals the
    // reference.
    let Some(ctx) = gpu() else { return };
    let (n, h, w) = (2, 9, 7);
    let widths = [1usize, 3, 64];
    let total: usize = widths.iter().sum();
    let out_len = n * total * h * w;
    let out = nan_buffer(&ctx, out_len);
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
        let src = rand_vec(40 + i as u64, n * c * h * w);
        concat::concat_cpu(&p, &src, &mut want);
        bufs.push(ctx.storage_buffer_init("src", &nchw_to_nhwc(&src, [n, c, h, w])));
        params.push(p);
        offset += c;
    }
    let ds: Vec<_> = params
        .iter()
        .zip(&bufs)
        .map(|(p, b)| concat::concat_gpu(&ctx, "concat", p, b, &out).unwrap())
        .collect();
    ctx.run_dispatches(&ds.iter().collect::<Vec<_>>()).unwrap();
    let got = nhwc_to_nchw(&ctx.read_buffer(&out, out_len).unwrap(), [n, total, h, w]);
    assert_close("three-way concat", &got, &want, concat::TOLERANCE);
}

#[test]
fn concat_folded_grid() {
    // More than 65535 workgroups of 256 source elements: the grid is
    // folded into y, and the copy must still land every element.
    let Some(ctx) = gpu() else { return };
    let p = ConcatParams {
        batch: 1,
        hw: 1 << 16,
        channels: 257,
        out_c_total: 259,
        out_c_offset: 1,
    };
    let src = rand_vec(50, p.hw * p.channels);
    let out_len = p.hw * p.out_c_total;
    let mut want = vec![f32::NAN; out_len];
    concat::concat_cpu(&p, &src, &mut want);
    let shape = [1, p.channels, p.hw, 1];
    let bsrc = ctx.storage_buffer_init("src", &nchw_to_nhwc(&src, shape));
    let out = nan_buffer(&ctx, out_len);
    let d = concat::concat_gpu(&ctx, "concat", &p, &bsrc, &out).unwrap();
    assert!(
        d.workgroups()[1] > 1,
        "grid not folded: {:?}",
        d.workgroups()
    );
    ctx.run_dispatches(&[&d]).unwrap();
    let got = nhwc_to_nchw(
        &ctx.read_buffer(&out, out_len).unwrap(),
        [1, p.out_c_total, p.hw, 1],
    );
    // Channels 0 and 258 are not this source's: compare the rest.
    let keep = |v: &[f32]| -> Vec<f32> { v[p.hw..p.hw * (1 + p.channels)].to_vec() };
    assert_close("folded grid", &keep(&got), &keep(&want), concat::TOLERANCE);
    assert!(got[..p.hw].iter().all(|v| v.is_nan()));
    assert!(got[p.hw * (1 + p.channels)..].iter().all(|v| v.is_nan()));
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
    assert!(concat::concat_gpu(&ctx, "concat", &p, &b, &b).is_err());
}
