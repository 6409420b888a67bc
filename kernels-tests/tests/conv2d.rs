//! GPU-vs-CPU tests for the conv2d kernel: a shape sweep, every epilogue
//! combination, every kernel variant, channel-offset output, named
//! regression cases, and the launcher's errors.
//!
//! Every case builds NCHW input / OIHW weights on the host, runs
//! `conv2d_cpu` (or `conv2d_cpu_f16`) as the oracle, runs the GPU kernel on
//! the NHWC copy with a NaN-filled output in every storage mode (f32,
//! native f16, packed f16), and compares with `conv2d::tolerance`. Sizes
//! are kept small: lavapipe runs about a GFLOP/s.

use kernels_tests::trace_dispatches;
use kernels_tests::{assert_close, gpu, nan_buffer, nan_tensor, rand_vec, storages};
use resincept::device::Span;
use resincept::graph::{Clamp, Padding};
use resincept::kernels::conv2d::{self, Conv2dParams, Launch, TapMode, Variant};
use resincept::shaders::Storage;
use resincept::tensor::{nchw_to_nhwc, nhwc_to_nchw};
use resincept::Context;

/// `v` with K not split.
fn unsplit(v: Variant) -> Option<Launch> {
    Some(Launch {
        variant: v,
        splits: 1,
        direct: false,
    })
}

/// Runs `p` on the GPU (with `launch`, or [`conv2d::conv2d_gpu`]'s choice)
/// in every storage mode of [`storages`] and checks each against its CPU
/// reference: channels `out_c_offset..+C_out` within tolerance, every
/// other channel of the output tensor still NaN. A split-K launch gets a
/// NaN-filled (f32) scratch buffer. Returns the whole GPU output of each
/// storage mode, in order (NCHW, `out_c_total` channels).
fn check(
    ctx: &Context,
    name: &str,
    p: &Conv2dParams,
    launch: Option<Launch>,
    seed: u64,
) -> Vec<Vec<f32>> {
    storages(ctx)
        .into_iter()
        .map(|storage| {
            let name = format!("{} {name}", storage.name());
            check_in(ctx, storage, &name, p, launch, seed)
        })
        .collect()
}

/// [`check`] in one storage mode.
fn check_in(
    ctx: &Context,
    storage: Storage,
    name: &str,
    p: &Conv2dParams,
    launch: Option<Launch>,
    seed: u64,
) -> Vec<f32> {
    p.validate(name).unwrap();
    let [oh, ow] = p.out_hw().unwrap();
    let cin_g = p.in_channels / p.groups;
    let in_shape = [p.batch, p.in_channels, p.in_h, p.in_w];
    let input = rand_vec(seed, in_shape.iter().product());
    let weight = rand_vec(seed + 1, p.out_channels * cin_g * p.kernel[0] * p.kernel[1]);
    let scale: Vec<f32> = rand_vec(seed + 2, p.out_channels)
        .iter()
        .map(|v| 1.0 + 0.5 * v)
        .collect();
    let shift = rand_vec(seed + 3, p.out_channels);
    let res_shape = [p.batch, p.out_channels, oh, ow];
    let residual = p
        .residual_scale
        .map(|_| rand_vec(seed + 4, res_shape.iter().product()));
    let out_shape = [p.batch, p.out_c_total, oh, ow];
    let out_len: usize = out_shape.iter().product();

    let mut want = vec![f32::NAN; out_len];
    let reference = if storage.is_f16() {
        conv2d::conv2d_cpu_f16
    } else {
        conv2d::conv2d_cpu
    };
    reference(
        p,
        &input,
        &weight,
        &scale,
        &shift,
        residual.as_deref(),
        &mut want,
    );

    let b_in = ctx.tensor_buffer_init("input", storage, &nchw_to_nhwc(&input, in_shape));
    let packed = conv2d::pack_weights(p, &weight);
    let b_w = ctx.tensor_buffer_init("weight", storage, &packed);
    let b_scale = ctx.storage_buffer_init("scale", &scale);
    let b_shift = ctx.storage_buffer_init("shift", &shift);
    let b_res = residual
        .as_ref()
        .map(|r| ctx.tensor_buffer_init("residual", storage, &nchw_to_nhwc(r, res_shape)));
    let b_out = nan_tensor(ctx, storage, out_len);
    let ds = match launch {
        Some(l) => {
            let scratch = (l.splits > 1).then(|| nan_buffer(ctx, l.scratch_len(p)));
            conv2d::conv2d_gpu_launch(
                ctx,
                name,
                storage,
                p,
                l,
                &b_in,
                &b_w,
                &b_scale,
                &b_shift,
                b_res.as_ref().map(Span::whole),
                scratch.as_ref().map(Span::whole),
                &b_out,
            )
        }
        None => conv2d::conv2d_gpu(
            ctx,
            name,
            storage,
            p,
            &b_in,
            &b_w,
            &b_scale,
            &b_shift,
            b_res.as_ref().map(Span::whole),
            &b_out,
        )
        .map(|d| vec![d]),
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let splits = launch.map_or(1, |l| l.splits);
    assert_eq!(
        ds.len(),
        if splits > 1 { 2 } else { 1 },
        "{name}: dispatches"
    );
    assert_eq!(ds[0].flops, 2 * p.macs(), "{name}: flops");
    let k = p.kernel[0] * p.kernel[1] * cin_g;
    let refs: Vec<_> = ds.iter().collect();
    let tol = conv2d::tolerance(storage, k);
    // The Dawn replay takes the launcher's variants (those the validation
    // gate compiles too); variants only tests force would each cost lavapipe
    // a minute of shader compilation there.
    let wg = ctx.limits.max_compute_workgroup_storage_size;
    if launch.is_none_or(|l| l.direct || Variant::launcher_variants(wg).contains(&l.variant)) {
        let outputs = [("output", &b_out, tol, storage)];
        trace_dispatches(ctx, "conv2d", name, &refs, &outputs);
    }
    ctx.run_dispatches(&refs).unwrap();
    let got = nhwc_to_nchw(
        &ctx.read_tensor(&b_out, storage, out_len).unwrap(),
        out_shape,
    );

    // Split the output tensor into this conv's channels and the rest.
    let plane = oh * ow;
    let range = p.out_c_offset..p.out_c_offset + p.out_channels;
    let (mut got_in, mut want_in) = (Vec::new(), Vec::new());
    for n in 0..p.batch {
        for c in 0..p.out_c_total {
            let at = (n * p.out_c_total + c) * plane;
            if range.contains(&c) {
                got_in.extend_from_slice(&got[at..at + plane]);
                want_in.extend_from_slice(&want[at..at + plane]);
            } else if let Some(i) = got[at..at + plane].iter().position(|v| !v.is_nan()) {
                panic!(
                    "{name}: wrote channel {c} (outside {range:?}) of batch {n} at pixel {i}: {}",
                    got[at + i]
                );
            }
        }
    }
    let label = format!("{name} {p:?} launch {launch:?}");
    // TOLERANCE (or TOLERANCE_F16) itself up to K = 1024 (every case
    // here but the bench's).
    assert_close(&label, &got_in, &want_in, tol);
    got
}

/// A conv with the given kernel, stride and padding, other fields simple.
#[allow(clippy::too_many_arguments)]
fn conv(
    batch: usize,
    cin: usize,
    hw: [usize; 2],
    cout: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
) -> Conv2dParams {
    Conv2dParams {
        stride,
        padding,
        ..Conv2dParams::simple(batch, cin, hw, cout, kernel)
    }
}

fn pad(top: usize, left: usize, bottom: usize, right: usize) -> Padding {
    Padding {
        top,
        left,
        bottom,
        right,
    }
}

#[test]
fn shape_sweep() {
    let Some(ctx) = gpu() else { return };
    let cases: Vec<(&str, Conv2dParams)> = vec![
        // Sizes that are multiples of no tile: M = 2·17·13 = 442, C_out 23.
        (
            "3x3 pad 1",
            conv(2, 19, [17, 13], 23, [3, 3], [1, 1], Padding::same(1)),
        ),
        (
            "C_in 1",
            conv(2, 1, [17, 13], 8, [3, 3], [1, 1], Padding::same(1)),
        ),
        (
            "C_in 3, no padding",
            conv(1, 3, [11, 9], 16, [3, 3], [1, 1], Padding::default()),
        ),
        // ResNet's stem, shrunk.
        (
            "7x7 s2 p3, C_in 3",
            conv(1, 3, [23, 19], 16, [7, 7], [2, 2], Padding::same(3)),
        ),
        (
            "3x3 s2 odd",
            conv(2, 12, [15, 11], 20, [3, 3], [2, 2], Padding::same(1)),
        ),
        (
            "1x1 s1",
            conv(2, 24, [9, 7], 36, [1, 1], [1, 1], Padding::default()),
        ),
        // ResNet's downsampling shortcut.
        (
            "1x1 s2",
            conv(2, 20, [9, 7], 40, [1, 1], [2, 2], Padding::default()),
        ),
        (
            "1x1 C_in 3 (scalar pointwise)",
            conv(1, 3, [9, 7], 5, [1, 1], [1, 1], Padding::default()),
        ),
        (
            "5x5 pad 2",
            conv(1, 16, [13, 11], 24, [5, 5], [1, 1], Padding::same(2)),
        ),
        (
            "1x3 pad (0,1)",
            conv(2, 16, [9, 11], 24, [1, 3], [1, 1], Padding::hw(0, 1)),
        ),
        (
            "3x1 pad (1,0)",
            conv(2, 16, [9, 11], 24, [3, 1], [1, 1], Padding::hw(1, 0)),
        ),
        // Inception's factorised 7x7.
        (
            "1x7 pad l3 r3",
            conv(2, 20, [17, 13], 24, [1, 7], [1, 1], pad(0, 3, 0, 3)),
        ),
        (
            "7x1 pad t3 b3",
            conv(2, 20, [17, 13], 24, [7, 1], [1, 1], pad(3, 0, 3, 0)),
        ),
        (
            "7x1 pad t1 b0 (asymmetric)",
            conv(1, 12, [13, 9], 12, [7, 1], [1, 1], pad(1, 0, 0, 0)),
        ),
        (
            "1x7 pad l2 r1 (asymmetric)",
            conv(1, 12, [9, 13], 12, [1, 7], [1, 1], pad(0, 2, 0, 1)),
        ),
        // TensorFlow-style SAME padding of a stride-2 conv: extra row and
        // column at the bottom/right only.
        (
            "3x3 s2 pad t0 l0 b1 r1",
            conv(1, 8, [10, 12], 8, [3, 3], [2, 2], pad(0, 0, 1, 1)),
        ),
        (
            "batch 3",
            conv(3, 8, [7, 9], 12, [3, 3], [1, 1], Padding::same(1)),
        ),
        (
            "stride (2,1)",
            conv(1, 8, [11, 9], 8, [3, 3], [2, 1], Padding::same(1)),
        ),
        // K = 96·9 = 864: 54 k-tiles, so the software pipeline runs long.
        (
            "C_in 96 3x3 (K > one tile)",
            conv(1, 96, [9, 11], 70, [3, 3], [1, 1], Padding::same(1)),
        ),
        // C_out > 64 and M > 128: the 128x128 tile with partial tiles on both axes.
        (
            "C_out 136",
            conv(1, 8, [15, 13], 136, [3, 3], [1, 1], Padding::same(1)),
        ),
    ];
    for (i, (name, p)) in cases.iter().enumerate() {
        check(&ctx, name, p, None, 100 + i as u64);
    }
}

#[test]
fn dilation() {
    let Some(ctx) = gpu() else { return };
    let p = Conv2dParams {
        dilation: [2, 2],
        ..conv(2, 8, [13, 11], 12, [3, 3], [1, 1], Padding::same(2))
    };
    check(&ctx, "3x3 dilation 2", &p, None, 1);
    let p = Conv2dParams {
        dilation: [2, 3],
        ..conv(1, 8, [13, 11], 12, [3, 3], [2, 1], pad(1, 3, 2, 0))
    };
    check(&ctx, "3x3 dilation (2,3) asymmetric pad", &p, None, 2);
    // Row and column modes must use the dilation of their one axis.
    let p = Conv2dParams {
        dilation: [1, 2],
        ..conv(1, 8, [9, 15], 8, [1, 3], [1, 1], pad(0, 2, 0, 2))
    };
    check(&ctx, "1x3 dilation 2", &p, None, 3);
    let p = Conv2dParams {
        dilation: [3, 1],
        ..conv(1, 8, [15, 9], 8, [3, 1], [1, 1], pad(3, 0, 3, 0))
    };
    check(&ctx, "3x1 dilation 3", &p, None, 4);
}

#[test]
fn groups() {
    let Some(ctx) = gpu() else { return };
    let cases = [
        ("groups 2, C_in/g 8 (vec4)", 16, 24, 2),
        ("groups 2, C_in/g 6 (scalar)", 12, 10, 2),
        ("groups 4, C_in/g 3", 12, 8, 4),
        ("depthwise", 16, 16, 16),
        ("depthwise, multiplier 2", 12, 24, 12),
        // ResNeXt-like: 32 groups of 4 channels.
        ("groups 32, C_in/g 4", 128, 128, 32),
    ];
    for (i, &(name, cin, cout, groups)) in cases.iter().enumerate() {
        let p = Conv2dParams {
            groups,
            ..conv(2, cin, [9, 7], cout, [3, 3], [1, 1], Padding::same(1))
        };
        check(&ctx, name, &p, None, 10 + i as u64);
    }
    let p = Conv2dParams {
        groups: 4,
        ..conv(1, 16, [9, 7], 16, [1, 1], [2, 2], Padding::default())
    };
    check(&ctx, "grouped 1x1 s2", &p, None, 30);
}

/// The direct conv (`conv2d_grouped`) against the CPU reference on grouped
/// convs of every kind (ResNeXt's 32 groups of 4 with stride 2, 6 channels
/// per group (a partly used channel quad), depthwise, C_in/groups of 3, a
/// dilated 1×7 with uneven padding, residual + ReLU into a channel offset)
/// and a plain 1×1; on each, bit for bit what the tiled kernel gives, since
/// both sum K in the same order. The launcher takes it exactly for grouped
/// convs with at most `DIRECT_MAX_CHANNELS_PER_GROUP` channels per group.
#[test]
fn direct_conv() {
    let Some(ctx) = gpu() else { return };
    let grouped = |groups, p: Conv2dParams| Conv2dParams { groups, ..p };
    let cases = [
        (
            "resnext 3x3 s2, 32 groups of 4",
            grouped(
                32,
                conv(2, 128, [9, 7], 128, [3, 3], [2, 2], Padding::same(1)),
            ),
        ),
        (
            "6 channels per group",
            grouped(2, conv(1, 8, [7, 6], 12, [3, 3], [1, 1], Padding::same(1))),
        ),
        (
            "depthwise",
            grouped(
                12,
                conv(2, 12, [6, 9], 12, [3, 3], [1, 1], Padding::same(1)),
            ),
        ),
        (
            "C_in/groups 3",
            grouped(3, conv(1, 9, [8, 8], 6, [3, 3], [2, 1], Padding::same(1))),
        ),
        (
            "dilated 1x7, uneven padding",
            Conv2dParams {
                dilation: [1, 2],
                ..grouped(4, conv(1, 16, [5, 13], 16, [1, 7], [1, 1], pad(0, 5, 0, 2)))
            },
        ),
        (
            "residual + relu at channel offset 8",
            Conv2dParams {
                residual_scale: Some(0.17),
                clamp: Some(Clamp::RELU),
                out_c_total: 48,
                out_c_offset: 8,
                ..grouped(8, conv(2, 32, [6, 5], 32, [3, 3], [1, 1], Padding::same(1)))
            },
        ),
        (
            "plain 1x1",
            conv(1, 5, [6, 5], 7, [1, 1], [1, 1], Padding::default()),
        ),
    ];
    let limits = &ctx.limits;
    for (i, (name, p)) in cases.iter().enumerate() {
        let seed = 300 + 10 * i as u64;
        let chosen =
            Launch::choose(name, p, limits, None, conv2d::DIRECT_MAX_CHANNELS_PER_GROUP).unwrap();
        let cout_g = p.out_channels / p.groups;
        assert_eq!(
            chosen.direct,
            p.groups > 1 && cout_g <= conv2d::DIRECT_MAX_CHANNELS_PER_GROUP,
            "{name}: launcher's choice"
        );
        let direct = Launch {
            direct: true,
            ..chosen
        };
        let tiled = Launch {
            direct: false,
            ..chosen
        };
        let a = check(&ctx, &format!("{name}, direct"), p, Some(direct), seed);
        let b = check(&ctx, &format!("{name}, tiled"), p, Some(tiled), seed);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (k, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(bits(a) == bits(b), "{name}: direct and tiled differ ({k})");
        }
    }
    // Wide groups stay tiled: ResNeXt's last stage, 32 per group; unless
    // the executor asks for more, and 0 turns the direct conv off.
    assert!(
        Launch::choose(
            "wide",
            &grouped(
                32,
                conv(1, 1024, [7, 7], 1024, [3, 3], [1, 1], Padding::same(1))
            ),
            limits,
            None,
            32
        )
        .unwrap()
        .direct
    );
    assert!(
        !Launch::choose("x", &cases[0].1, limits, None, 0)
            .unwrap()
            .direct
    );
    let wide = grouped(
        32,
        conv(1, 1024, [7, 7], 1024, [3, 3], [1, 1], Padding::same(1)),
    );
    assert!(
        !Launch::choose("wide", &wide, limits, None, 16)
            .unwrap()
            .direct
    );
    // The direct conv does not split K.
    let p = &cases[0].1;
    let bad = Launch {
        direct: true,
        splits: 2,
        ..Launch::choose("x", p, limits, None, 16).unwrap()
    };
    let buf = ctx.storage_buffer("x", 1 << 16);
    let e = conv2d::conv2d_gpu_launch(
        &ctx,
        "split direct",
        Storage::F32,
        p,
        bad,
        &buf,
        &buf,
        &buf,
        &buf,
        None,
        Some(Span::whole(&buf)),
        &buf,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not split"), "{e}");
}

#[test]
fn epilogue_combinations() {
    let Some(ctx) = gpu() else { return };
    let base = conv(2, 8, [9, 7], 12, [3, 3], [1, 1], Padding::same(1));
    let mut seed = 40;
    for residual_scale in [None, Some(1.0), Some(0.17)] {
        // No clamp, ReLU, and a two-sided clamp (ONNX Clip / ReLU6) whose
        // bounds both cut into the outputs' range.
        for clamp in [None, Some(Clamp::RELU), Some(Clamp::new(-0.5, 0.5))] {
            let p = Conv2dParams {
                residual_scale,
                clamp,
                ..base.clone()
            };
            check(&ctx, "epilogue", &p, None, seed);
            seed += 1;
        }
    }
    // A pointwise conv with residual + ReLU: ResNet's bottleneck tail.
    let p = Conv2dParams {
        residual_scale: Some(1.0),
        clamp: Some(Clamp::RELU),
        ..conv(1, 16, [7, 7], 64, [1, 1], [1, 1], Padding::default())
    };
    check(&ctx, "bottleneck tail", &p, None, seed);
}

#[test]
fn channel_offset() {
    let Some(ctx) = gpu() else { return };
    // Inception concatenates branches by writing each at its channel
    // offset; the offset (13) is deliberately not a multiple of 4.
    let p = Conv2dParams {
        out_c_total: 40,
        out_c_offset: 13,
        clamp: Some(Clamp::RELU),
        ..conv(2, 8, [9, 7], 19, [3, 3], [1, 1], Padding::same(1))
    };
    check(&ctx, "offset 13 of 40", &p, None, 50);
    let p = Conv2dParams {
        out_c_total: 24,
        out_c_offset: 16,
        residual_scale: Some(0.17),
        ..conv(1, 12, [5, 9], 8, [1, 1], [1, 1], Padding::default())
    };
    check(&ctx, "last 8 of 24, with residual", &p, None, 51);
    let p = Conv2dParams {
        out_c_total: 30,
        out_c_offset: 0,
        ..conv(1, 8, [9, 5], 10, [1, 7], [1, 1], pad(0, 3, 0, 3))
    };
    check(&ctx, "first 10 of 30", &p, None, 52);
}

/// Every variant the launcher could pick, forced on shapes with partial
/// tiles, so that a variant the heuristic rarely picks on lavapipe is still
/// tested.
#[test]
fn every_variant() {
    let Some(ctx) = gpu() else { return };
    let limit = ctx.limits.max_compute_workgroup_storage_size;
    // M = 2·11·9 = 198 (partial 128- and 64-row tiles), C_out 72 (partial
    // 128- and 64-column tiles), K = 8·9 = 72 (4.5 k-tiles).
    let general = conv(2, 8, [11, 9], 72, [3, 3], [1, 1], Padding::same(1));
    let row = conv(2, 8, [11, 9], 72, [1, 5], [1, 1], pad(0, 2, 0, 2));
    let column = conv(2, 8, [11, 9], 72, [5, 1], [1, 1], pad(2, 0, 2, 0));
    let pointwise = conv(2, 8, [11, 9], 72, [1, 1], [2, 1], Padding::default());
    let mut seed = 60;
    let mut run = |p: &Conv2dParams, v: Variant| {
        if v.workgroup_bytes() > limit {
            eprintln!("skip {v:?}: needs {} bytes", v.workgroup_bytes());
            return;
        }
        check(&ctx, "forced variant", p, unsplit(v), seed);
        seed += 1;
    };
    // Every tile shape with both bufferings and both entry points, paired
    // so that each (wm, wn) meets each nbuf and each entry point once
    // (lavapipe compiles each pipeline in about two CPU seconds).
    for (vec4, wm, wn, nbuf) in [
        (true, 8, 8, 2),
        (true, 4, 4, 1),
        (true, 8, 4, 1),
        (true, 4, 8, 2),
        (false, 8, 8, 1),
        (false, 4, 4, 2),
        (false, 8, 4, 2),
        (false, 4, 8, 1),
    ] {
        let v = Variant {
            vec4,
            mode: TapMode::General,
            wm,
            wn,
            nbuf,
        };
        run(&general, v);
    }
    // Every specialised tap mode, on both entry points, with a tile that
    // has partial tiles on both axes.
    for (p, mode) in [
        (&row, TapMode::Row),
        (&column, TapMode::Column),
        (&pointwise, TapMode::Pointwise),
    ] {
        for vec4 in [true, false] {
            let v = Variant {
                vec4,
                mode,
                wm: 8,
                wn: 4,
                nbuf: 2,
            };
            run(p, v);
        }
        // The general mode computes these shapes too.
        let v = Variant {
            vec4: true,
            mode: TapMode::General,
            wm: 4,
            wn: 8,
            nbuf: 2,
        };
        run(p, v);
    }
}

/// Split-K: the reduction cut into slices that write partial sums to a
/// NaN-filled scratch buffer, then reduced with the epilogue. Uneven last
/// slices, one k-tile per slice, groups (the grid's z is groups · splits),
/// residual + ReLU into a channel offset, and both entry points.
#[test]
fn split_k() {
    let Some(ctx) = gpu() else { return };
    let limit = ctx.limits.max_compute_workgroup_storage_size;
    let launch = |p: &Conv2dParams, splits| {
        let variant = Variant::choose("split", p, limit).unwrap();
        Some(Launch {
            variant,
            splits,
            direct: false,
        })
    };
    // K = 40·9 = 360: 23 k-tiles, the last one partial (360 = 22·16 + 8).
    let p = conv(1, 40, [7, 6], 24, [3, 3], [1, 1], Padding::same(1));
    assert_eq!(conv2d::k_tiles(&p), 23);
    // 2 and 3 slices (12+11, 8+8+7), 5 (5·4+3), one k-tile each (23).
    for (i, splits) in [2, 3, 5, 23].into_iter().enumerate() {
        check(&ctx, "split 3x3", &p, launch(&p, splits), 200 + i as u64);
    }
    // Residual, a two-sided clamp and a channel offset: the epilogue runs
    // in the reduce.
    let p = Conv2dParams {
        batch: 2,
        residual_scale: Some(0.7),
        clamp: Some(Clamp::new(-0.3, 0.4)),
        out_c_total: 41,
        out_c_offset: 9,
        ..conv(2, 36, [5, 5], 30, [1, 1], [1, 1], Padding::default())
    };
    check(
        &ctx,
        "split 1x1 residual clip offset",
        &p,
        launch(&p, 3),
        210,
    );
    // Groups: slice s of group g is workgroup layer z = s·groups + g.
    let p = Conv2dParams {
        groups: 2,
        clamp: Some(Clamp::RELU),
        ..conv(1, 64, [6, 5], 20, [3, 3], [2, 1], pad(1, 0, 2, 1))
    };
    check(&ctx, "split grouped", &p, launch(&p, 4), 211);
    // The scalar entry point (C_in = 3, the stem) and a 1×7 row conv.
    let p = conv(1, 3, [12, 11], 16, [7, 7], [2, 2], Padding::same(3));
    check(&ctx, "split stem", &p, launch(&p, 3), 212);
    let p = conv(1, 48, [7, 7], 40, [1, 7], [1, 1], pad(0, 3, 0, 3));
    check(&ctx, "split 1x7", &p, launch(&p, 7), 213);
}

/// The split the launcher picks: none where the grid already fills a GPU,
/// many slices for ResNet-50's deep layers at batch 1, never an empty slice,
/// never more than the scratch budget. CPU only.
#[test]
fn split_k_choices() {
    let big = 64 * 1024;
    let huge = u64::MAX;
    let v = |p: &Conv2dParams| Variant::choose("c", p, big).unwrap();
    const T: usize = conv2d::SPLIT_K_TARGET_WORKGROUPS;
    // layer4's 3×3 at batch 1: K = 4608 (288 k-tiles), 8 output tiles.
    let deep = Conv2dParams {
        padding: Padding::same(1),
        ..Conv2dParams::simple(1, 512, [7, 7], 512, [3, 3])
    };
    let s = conv2d::split_k_for(&deep, &v(&deep), huge, T);
    assert_eq!(s, conv2d::SPLIT_K_MAX, "deep 3x3 at batch 1");
    // layer1's 1×1 at batch 32: thousands of tiles, not split.
    let wide = Conv2dParams::simple(32, 64, [56, 56], 256, [1, 1]);
    assert_eq!(conv2d::split_k_for(&wide, &v(&wide), huge, T), 1);
    // The target sets the slices: 8 tiles to 64 workgroups is 8 slices;
    // a target the grid already meets splits nothing.
    assert_eq!(conv2d::split_k_for(&deep, &v(&deep), huge, 64), 8);
    assert_eq!(conv2d::split_k_for(&deep, &v(&deep), huge, 8), 1);
    assert!(conv2d::split_k_for(&deep, &v(&deep), huge, 128) < s);
    // A short K cannot be split below the slice minimum.
    let short = Conv2dParams::simple(1, 64, [7, 7], 64, [1, 1]);
    assert_eq!(conv2d::split_k_for(&short, &v(&short), huge, T), 1);
    // The scratch budget caps the slices: one slice of `deep` is
    // 49·512·4 bytes.
    let slice = 49 * 512 * 4;
    assert!(conv2d::split_k_for(&deep, &v(&deep), 5 * slice, T) <= 5);
    assert_eq!(conv2d::split_k_for(&deep, &v(&deep), slice - 1, T), 1);
    // No choice leaves a slice empty, over many shapes.
    for cin in [3, 16, 40, 64, 160, 512, 1024, 2048] {
        for (hw, k) in [(7, 1), (7, 3), (14, 3), (17, 7), (35, 1)] {
            let p = Conv2dParams::simple(1, cin, [hw, hw], 96, [k, k]);
            let s = conv2d::split_k_for(&p, &v(&p), huge, T);
            let kt = conv2d::k_tiles(&p);
            let per = kt.div_ceil(s);
            assert!(
                s >= 1 && s <= kt && kt.div_ceil(per) == s,
                "{p:?}: {s} of {kt}"
            );
            assert!(s == 1 || per >= conv2d::SPLIT_K_MIN_TILES_PER_SLICE);
        }
    }
}

/// The 128×64 tile rule and its knob (`bench --tall-tile`): a deep
/// pointwise conv with many tiles takes 128×64 by default, 64×64 with the
/// rule off or its K threshold above the conv's K; 3×3s never take it.
/// CPU only.
#[test]
fn tall_tile_rule() {
    let big = 64 * 1024;
    let tile = |p: &Conv2dParams, min_k| {
        let v = Variant::choose_with("c", p, big, min_k).unwrap();
        (v.wm, v.wn)
    };
    // ResNet-50 layer2's 1×1 512→128 at batch 32: K = 512, 196 tiles of 128 rows.
    let deep = Conv2dParams::simple(32, 512, [28, 28], 128, [1, 1]);
    let default = Variant::choose("c", &deep, big).unwrap();
    assert_eq!((default.wm, default.wn), (8, 4));
    assert_eq!(tile(&deep, Some(conv2d::TALL_TILE_MIN_K)), (8, 4));
    assert_eq!(tile(&deep, None), (4, 4));
    assert_eq!(tile(&deep, Some(1024)), (4, 4));
    // The same at batch 1 has too few tiles; a 3×3 is not pointwise.
    let small = Conv2dParams::simple(1, 512, [28, 28], 128, [1, 1]);
    assert_eq!(tile(&small, Some(1)), (4, 4));
    let three = Conv2dParams::simple(32, 512, [28, 28], 128, [3, 3]);
    assert_eq!(tile(&three, Some(1)), (4, 4));
}

/// `Variant::launcher_variants` (what the Dawn gate creates) holds every
/// variant `Variant::choose` returns, for the model layers and the sweep's
/// shapes at several batches, on devices with 16 KiB, 32 KiB and 64 KiB of
/// workgroup memory, and nothing the launcher never picks twice.
#[test]
fn launcher_variants_cover_every_choice() {
    for wg in [16 * 1024, 32 * 1024, 64 * 1024] {
        let all = Variant::launcher_variants(wg);
        let mut seen = std::collections::HashSet::new();
        for (name, layer) in model_layers() {
            for batch in [1, 8, 32] {
                let p = Conv2dParams {
                    batch,
                    ..layer.clone()
                };
                let v = Variant::choose(name, &p, wg).unwrap();
                assert!(
                    all.contains(&v),
                    "{name} batch {batch}: {v:?} not listed for {wg}"
                );
                seen.insert(v);
            }
        }
        for cin in [3, 4, 16] {
            for k in [[1, 1], [3, 3], [1, 7], [7, 1]] {
                let p = conv(1, cin, [9, 9], 8, k, [1, 1], Padding::default());
                let v = Variant::choose("sweep", &p, wg).unwrap();
                assert!(all.contains(&v), "{p:?}: {v:?} not listed for {wg}");
            }
        }
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "duplicates in {all:?}");
        assert!(seen.len() >= 4, "model layers chose only {seen:?}");
    }
}

/// The launcher picks the specialised paths where they apply.
#[test]
fn launcher_choices() {
    let big = 64 * 1024;
    let choose = |p: &Conv2dParams| Variant::choose("c", p, big).unwrap();
    let v = choose(&conv(1, 16, [9, 9], 8, [1, 7], [1, 1], pad(0, 3, 0, 3)));
    assert_eq!((v.mode, v.vec4), (TapMode::Row, true));
    let v = choose(&conv(1, 16, [9, 9], 8, [7, 1], [1, 1], pad(3, 0, 3, 0)));
    assert_eq!(v.mode, TapMode::Column);
    let v = choose(&conv(1, 16, [9, 9], 8, [1, 1], [2, 2], Padding::default()));
    assert_eq!(v.mode, TapMode::Pointwise);
    let v = choose(&conv(1, 3, [9, 9], 8, [3, 3], [1, 1], Padding::default()));
    assert_eq!((v.mode, v.vec4), (TapMode::General, false));
    // The 64x64 tile, double-buffered, by default...
    let v = choose(&conv(
        8,
        256,
        [56, 56],
        256,
        [3, 3],
        [1, 1],
        Padding::same(1),
    ));
    assert_eq!((v.wm, v.wn, v.nbuf), (4, 4, 2));
    // ...128x64 for a deep pointwise conv with many tiles (ResNet-50
    // layer2 1x1 512>128 at batch 32)...
    let v = choose(&conv(
        32,
        512,
        [28, 28],
        128,
        [1, 1],
        [1, 1],
        Padding::default(),
    ));
    assert_eq!((v.wm, v.wn, v.mode), (8, 4, TapMode::Pointwise));
    // ...but not at batch 1, where 64x64 keeps more SMs busy.
    let v = choose(&conv(
        1,
        512,
        [28, 28],
        128,
        [1, 1],
        [1, 1],
        Padding::default(),
    ));
    assert_eq!((v.wm, v.wn), (4, 4));
    // 16 KiB of workgroup memory (WebGPU's minimum) still gets a variant.
    let v = Variant::choose(
        "c",
        &conv(8, 64, [56, 56], 64, [3, 3], [1, 1], Padding::same(1)),
        16384,
    )
    .unwrap();
    assert!(v.workgroup_bytes() <= 16384, "{v:?}");
    // Too little workgroup memory is a named limit error.
    let e = Variant::choose(
        "node.x",
        &conv(1, 8, [9, 9], 8, [3, 3], [1, 1], Padding::default()),
        1024,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("max_compute_workgroup_storage_size"),
        "{e}"
    );
}

#[test]
fn pack_weights_layout() {
    // Row k = (i·kw + j)·C_in/g + c, column = output channel in the group;
    // K padded to 16, C_out/g padded to 4, padding zero.
    let p = Conv2dParams {
        groups: 2,
        ..conv(1, 4, [5, 5], 6, [2, 3], [1, 1], Padding::default())
    };
    let w: Vec<f32> = (0..6 * 2 * 2 * 3).map(|v| v as f32 + 1.0).collect();
    let packed = conv2d::pack_weights(&p, &w);
    assert_eq!(packed.len(), conv2d::packed_weight_len(&p));
    let (k_pad, n_pad) = (16, 4); // K = 2·3·2 = 12, C_out/g = 3
    assert_eq!(packed.len(), 2 * k_pad * n_pad);
    for g in 0..2 {
        for k in 0..k_pad {
            for n in 0..n_pad {
                let got = packed[(g * k_pad + k) * n_pad + n];
                let want = if k < 12 && n < 3 {
                    let (ij, c) = (k / 2, k % 2);
                    let (i, j) = (ij / 3, ij % 3);
                    w[(((g * 3 + n) * 2 + c) * 2 + i) * 3 + j]
                } else {
                    0.0
                };
                assert_eq!(got, want, "g {g} k {k} n {n}");
            }
        }
    }
}

/// Named regression cases: each exists because a plausible bug fails it.
#[test]
fn regressions() {
    let Some(ctx) = gpu() else { return };
    // Kernel wider than the image: with W = 5 and a 1x7 kernel padded 3 on
    // each side, most taps are off-image; a left tap at ix = -1 must read
    // zero, not the previous row's last pixel (the u32 address arithmetic
    // wraps, so only the bounds check stops it).
    check(
        &ctx,
        "1x7 wider than image",
        &conv(2, 8, [4, 5], 8, [1, 7], [1, 1], pad(0, 3, 0, 3)),
        None,
        70,
    );
    // The same down a column: a top tap must not read the previous image
    // of the batch.
    check(
        &ctx,
        "7x1 taller than image",
        &conv(3, 8, [3, 4], 8, [7, 1], [1, 1], pad(3, 0, 3, 0)),
        None,
        71,
    );
    // A 1x1 conv with padding (legal in PyTorch): the pointwise path must
    // still zero the border pixels instead of assuming every tap is inside.
    check(
        &ctx,
        "1x1 with padding",
        &conv(1, 8, [5, 6], 8, [1, 1], [1, 1], pad(1, 2, 0, 1)),
        None,
        72,
    );
    // C_out = 1 and C_out = 5: n_pad pads the packed weights to 4 columns;
    // the epilogue must not write the padding columns into the next pixel.
    check(
        &ctx,
        "C_out 1",
        &conv(2, 8, [7, 9], 1, [3, 3], [1, 1], Padding::same(1)),
        None,
        73,
    );
    check(
        &ctx,
        "C_out 5",
        &conv(2, 8, [7, 9], 5, [3, 3], [1, 1], Padding::same(1)),
        None,
        74,
    );
    // A single output pixel (global-pooling-sized input): one partial tile.
    check(
        &ctx,
        "1x1 output",
        &conv(1, 16, [3, 3], 8, [3, 3], [1, 1], Padding::default()),
        None,
        75,
    );
    // K = 16 exactly (one k-tile: the pipelined loop body never runs) and
    // K = 17 (one element into the second tile).
    check(
        &ctx,
        "K 16",
        &conv(1, 16, [6, 6], 8, [1, 1], [1, 1], Padding::default()),
        None,
        76,
    );
    check(
        &ctx,
        "K 17",
        &conv(1, 17, [6, 6], 8, [1, 1], [1, 1], Padding::default()),
        None,
        77,
    );
    // C_in % 4 == 0 but C_in/groups == 2: the vec4 path needs both
    // divisible by 4, so this must take the scalar path.
    check(
        &ctx,
        "C_in/g 2",
        &Conv2dParams {
            groups: 4,
            ..conv(1, 8, [6, 7], 8, [3, 3], [1, 1], Padding::same(1))
        },
        None,
        78,
    );
    // Residual scale 0: the residual is still read (0·r), matching the
    // reference, so its buffer must be bound.
    check(
        &ctx,
        "residual scale 0",
        &Conv2dParams {
            residual_scale: Some(0.0),
            ..conv(1, 8, [6, 7], 8, [3, 3], [1, 1], Padding::same(1))
        },
        None,
        79,
    );
}

/// More than 65535 tiles: the grid folds into x and y, and the shader must
/// linearise the tile index the same way. Ignored by default: 65633
/// workgroups take about 50 s on lavapipe (well under a second on a real
/// GPU); run with `-- --ignored grid_fold`.
#[test]
#[ignore]
fn grid_fold() {
    let Some(ctx) = gpu() else { return };
    // One channel, many pixels: 2·2049·1025 = 4.2M pixels in 64-row tiles
    // is 65633 tiles > 65535.
    let p = conv(2, 1, [2049, 1025], 1, [1, 1], [1, 1], Padding::default());
    let v = Variant {
        vec4: false,
        mode: TapMode::Pointwise,
        wm: 4,
        wn: 4,
        nbuf: 1,
    };
    assert!(v.tiles_per_group(&p) > 65535);
    check(&ctx, "folded grid", &p, unsplit(v), 90);
}

#[test]
fn launcher_errors() {
    let Some(ctx) = gpu() else { return };
    let p = conv(1, 8, [5, 5], 8, [3, 3], [1, 1], Padding::same(1));
    let small = ctx.storage_buffer("small", 4);
    let ok_in = ctx.storage_buffer("in", 8 * 25);
    let w = ctx.storage_buffer("w", conv2d::packed_weight_len(&p));
    let s = ctx.storage_buffer("s", 8);
    let out = ctx.storage_buffer("out", 8 * 25);
    // Too-small input buffer: a shape error naming the conv.
    let f32s = Storage::F32;
    let e = conv2d::conv2d_gpu(
        &ctx,
        "layer1.0.conv1",
        f32s,
        &p,
        &small,
        &w,
        &s,
        &s,
        None,
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("layer1.0.conv1"), "{e}");
    // In f16 the same input needs half the bytes: 200 elements are 400.
    let half_in = ctx.buffer("half", 400, wgpu::BufferUsages::STORAGE);
    let ok = conv2d::conv2d_gpu(
        &ctx,
        "f16 input",
        Storage::F16Packed,
        &p,
        &half_in,
        &w,
        &s,
        &s,
        None,
        &out,
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    let e = conv2d::conv2d_gpu(
        &ctx,
        "f16 input",
        Storage::F16Packed,
        &p,
        &small,
        &w,
        &s,
        &s,
        None,
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("f16-packed"), "{e}");
    // residual_scale without a residual buffer.
    let pr = Conv2dParams {
        residual_scale: Some(1.0),
        ..p.clone()
    };
    let e = conv2d::conv2d_gpu(&ctx, "res", f32s, &pr, &ok_in, &w, &s, &s, None, &out).unwrap_err();
    assert!(e.to_string().contains("residual"), "{e}");
    // A variant that cannot compute the shape.
    let v = Variant {
        vec4: false,
        mode: TapMode::Row,
        wm: 4,
        wn: 4,
        nbuf: 1,
    };
    let e = conv2d::conv2d_gpu_variant(&ctx, "v", f32s, &p, v, &ok_in, &w, &s, &s, None, &out)
        .unwrap_err();
    assert!(e.to_string().contains("mode"), "{e}");

    // Split-K: K = 8·9 = 72 is 5 k-tiles. 4 slices of ⌈5/4⌉ = 2 leave the
    // last one empty, 6 is more than there are tiles, and a split needs a
    // scratch buffer (a too-small one is a shape error).
    let variant = Variant::choose("split", &p, 16 * 1024).unwrap();
    let scratch = ctx.storage_buffer("scratch", 2 * 8 * 25);
    let split = |splits, scratch: Option<&wgpu::Buffer>| {
        let l = Launch {
            variant,
            splits,
            direct: false,
        };
        conv2d::conv2d_gpu_launch(
            &ctx,
            "split",
            f32s,
            &p,
            l,
            &ok_in,
            &w,
            &s,
            &s,
            None,
            scratch.map(Span::whole),
            &out,
        )
        .map(|d| d.len())
    };
    assert_eq!(split(2, Some(&scratch)).unwrap(), 2);
    for splits in [0, 4, 6] {
        let e = split(splits, Some(&scratch)).unwrap_err().to_string();
        assert!(e.contains("split") && e.contains("empty"), "{e}");
    }
    let e = split(2, None).unwrap_err().to_string();
    assert!(e.contains("scratch"), "{e}");
    let e = split(3, Some(&scratch)).unwrap_err().to_string();
    assert!(e.contains("split-K scratch") && e.contains("bytes"), "{e}");
}

/// Realistic layers: ResNet-50 at 224² and Inception v3 at 299², as
/// (name, params at batch 1).
fn model_layers() -> Vec<(&'static str, Conv2dParams)> {
    let c = |cin, hw: usize, cout, k: [usize; 2], s, padding| {
        conv(1, cin, [hw, hw], cout, k, [s, s], padding)
    };
    vec![
        (
            "rn50 conv1 7x7 s2",
            c(3, 224, 64, [7, 7], 2, Padding::same(3)),
        ),
        (
            "rn50 l1 1x1 64>64",
            c(64, 56, 64, [1, 1], 1, Padding::default()),
        ),
        ("rn50 l1 3x3 64", c(64, 56, 64, [3, 3], 1, Padding::same(1))),
        (
            "rn50 l1 1x1 64>256",
            c(64, 56, 256, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l1 1x1 256>64",
            c(256, 56, 64, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l2 3x3 128",
            c(128, 28, 128, [3, 3], 1, Padding::same(1)),
        ),
        (
            "rn50 l2 1x1 512>128",
            c(512, 28, 128, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l2 1x1 128>512",
            c(128, 28, 512, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l3 3x3 256",
            c(256, 14, 256, [3, 3], 1, Padding::same(1)),
        ),
        (
            "rn50 l3 1x1 1024>256",
            c(1024, 14, 256, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l3 1x1 256>1024",
            c(256, 14, 1024, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l4 3x3 512",
            c(512, 7, 512, [3, 3], 1, Padding::same(1)),
        ),
        (
            "rn50 l4 1x1 2048>512",
            c(2048, 7, 512, [1, 1], 1, Padding::default()),
        ),
        (
            "rn50 l4 down 1x1 s2",
            c(1024, 14, 2048, [1, 1], 2, Padding::default()),
        ),
        (
            "incv3 1a 3x3 s2",
            c(3, 299, 32, [3, 3], 2, Padding::default()),
        ),
        (
            "incv3 5b 5x5 48>64",
            c(48, 35, 64, [5, 5], 1, Padding::same(2)),
        ),
        (
            "incv3 5b 3x3 64>96",
            c(64, 35, 96, [3, 3], 1, Padding::same(1)),
        ),
        (
            "incv3 6b 1x7 128",
            c(128, 17, 128, [1, 7], 1, Padding::hw(0, 3)),
        ),
        (
            "incv3 6b 7x1 128>192",
            c(128, 17, 192, [7, 1], 1, Padding::hw(3, 0)),
        ),
        (
            "incv3 6b 1x1 768>192",
            c(768, 17, 192, [1, 1], 1, Padding::default()),
        ),
        (
            "incv3 7b 1x3 384",
            c(384, 8, 384, [1, 3], 1, Padding::hw(0, 1)),
        ),
        (
            "incv3 7b 1x1 2048>320",
            c(2048, 8, 320, [1, 1], 1, Padding::default()),
        ),
    ]
}

/// Times [`model_layers`] at batch 1 and 32 on the chosen adapter and
/// prints ms and GFLOP/s per layer for the launcher's choice
/// ([`Launch::choose`]) and, where that splits K, the same variant unsplit
/// (the split-K A/B); `RESINCEPT_CONV_SWEEP=1` also times every valid
/// variant (to tune [`Variant::choose`]). Each storage mode of
/// `RESINCEPT_BENCH_STORAGE` (comma-separated `f32`, `f16`, `f16-packed`;
/// default all the device runs) is timed in turn. Batch-1 layers are
/// first checked against the CPU reference. A measurement, not a test: run
/// on a real GPU with
/// `cargo test --release -p kernels-tests --test conv2d -- --ignored bench_layers --nocapture`.
#[test]
#[ignore]
fn bench_layers() {
    let Some(ctx) = gpu() else { return };
    let mut modes = storages(&ctx);
    if let Ok(want) = std::env::var("RESINCEPT_BENCH_STORAGE") {
        modes.retain(|s| want.split(',').any(|w| w.trim() == s.name()));
    }
    for storage in modes {
        bench_layers_in(&ctx, storage);
    }
}

/// [`bench_layers`] in one storage mode.
fn bench_layers_in(ctx: &std::sync::Arc<Context>, storage: Storage) {
    let ctx = ctx.clone();
    let sweep = std::env::var("RESINCEPT_CONV_SWEEP").is_ok_and(|v| v == "1");
    let limit = ctx.limits.max_compute_workgroup_storage_size;
    println!(
        "adapter: {} ({:?}), storage {}",
        ctx.info.name,
        ctx.info.backend,
        storage.name()
    );
    // Sums over the layers: [batch][launcher's choice, same without split-K].
    let mut total = [[0.0f64; 2]; 2];
    for (bi, batch) in [1usize, 32].into_iter().enumerate() {
        for (li, (name, p1)) in model_layers().into_iter().enumerate() {
            let p = Conv2dParams { batch, ..p1 };
            if batch == 1 && p.macs() < 400_000_000 {
                check_in(&ctx, storage, name, &p, None, 1000 + li as u64);
            }
            let [oh, ow] = p.out_hw().unwrap();
            let cin_g = p.in_channels / p.groups;
            let b_in = ctx.tensor_buffer_init(
                "in",
                storage,
                &rand_vec(1, p.batch * p.in_channels * p.in_h * p.in_w),
            );
            let w = rand_vec(2, p.out_channels * cin_g * p.kernel[0] * p.kernel[1]);
            let b_w = ctx.tensor_buffer_init("w", storage, &conv2d::pack_weights(&p, &w));
            let b_s = ctx.storage_buffer_init("s", &vec![1.0; p.out_channels]);
            let b_out = nan_tensor(&ctx, storage, p.batch * oh * ow * p.out_channels);
            let target = Some(conv2d::SPLIT_K_TARGET_WORKGROUPS);
            let chosen = Launch::choose(
                name,
                &p,
                &ctx.limits,
                target,
                conv2d::DIRECT_MAX_CHANNELS_PER_GROUP,
            )
            .unwrap();
            let unsplit = Launch {
                splits: 1,
                ..chosen
            };
            // The launcher's choice first, then (when it splits) the same
            // variant unsplit, then the sweep's variants unsplit.
            let mut variants = vec![chosen];
            if chosen.splits > 1 {
                variants.push(unsplit);
            }
            let b_scratch = ctx.storage_buffer("scratch", chosen.scratch_len(&p).max(1));
            if sweep {
                for vec4 in [true, false] {
                    for mode in [TapMode::for_kernel(p.kernel), TapMode::General] {
                        for (wm, wn) in [(8, 8), (8, 4), (4, 8), (4, 4)] {
                            for nbuf in [2, 1] {
                                let v = Variant {
                                    vec4,
                                    mode,
                                    wm,
                                    wn,
                                    nbuf,
                                };
                                let l = Launch {
                                    variant: v,
                                    splits: 1,
                                    direct: false,
                                };
                                if !variants.contains(&l) && v.check(name, &p, limit).is_ok() {
                                    variants.push(l);
                                }
                            }
                        }
                    }
                }
            }
            for (vi, l) in variants.iter().enumerate() {
                let v = &l.variant;
                let ds = conv2d::conv2d_gpu_launch(
                    &ctx,
                    name,
                    storage,
                    &p,
                    *l,
                    &b_in,
                    &b_w,
                    &b_s,
                    &b_s,
                    None,
                    Some(Span::whole(&b_scratch)),
                    &b_out,
                )
                .unwrap();
                let one: Vec<_> = ds.iter().collect();
                ctx.run_dispatches(&one).unwrap();
                let t = std::time::Instant::now();
                ctx.run_dispatches(&one).unwrap();
                let once = t.elapsed().as_secs_f64();
                let reps = ((0.03 / once) as usize).clamp(3, 200);
                let many: Vec<_> = (0..reps).flat_map(|_| ds.iter()).collect();
                // Keep the GPU busy for 0.2 s first: after the CPU-side
                // gaps (reference checks, uploads) its clocks drop, and a
                // 30 ms window measured cold read up to 4x slow on an H100.
                let warm = std::time::Instant::now();
                while warm.elapsed().as_secs_f64() < 0.2 {
                    ctx.run_dispatches(&many).unwrap();
                }
                let t = std::time::Instant::now();
                ctx.run_dispatches(&many).unwrap();
                let per = t.elapsed().as_secs_f64() / reps as f64;
                if vi == 0 {
                    total[bi][0] += per;
                }
                if *l == unsplit {
                    total[bi][1] += per;
                }
                println!(
                    "{}{} batch {batch:>2} {name:<24} {:>8.3} ms {:>8.0} GFLOP/s  split {:>2} vec4={} {:?} {}x{} nbuf {} tiles {}",
                    if vi == 0 { "* " } else { "  " },
                    storage.name(),
                    per * 1e3,
                    ds[0].flops as f64 / per / 1e9,
                    l.splits,
                    v.vec4,
                    v.mode,
                    v.tile()[0],
                    v.tile()[1],
                    v.nbuf,
                    v.tiles_per_group(&p) * p.groups,
                );
            }
        }
    }
    println!(
        "{}: sum of chosen: batch 1 {:.3} ms, batch 32 {:.3} ms; without split-K: batch 1 {:.3} ms, \
         batch 32 {:.3} ms",
        storage.name(),
        total[0][0] * 1e3,
        total[1][0] * 1e3,
        total[0][1] * 1e3,
        total[1][1] * 1e3
    );
}

/// The CPU executor splits convolutions over threads by output channel
/// (`exec::cpu::conv_parallel`); it must be bitwise equal to one call of the
/// reference, residual, ReLU, batch > 1 and a channel offset included. CPU only.
#[test]
fn threaded_cpu_conv_is_bitwise_the_reference() {
    for (case, batch, cin, hw, cout, k, stride, residual, relu, offset) in [
        ("3x3 batch 2", 2, 16, [13, 11], 37, [3, 3], 1, None, true, 0),
        (
            "1x1 residual 0.17",
            1,
            64,
            [9, 9],
            70,
            [1, 1],
            1,
            Some(0.17),
            true,
            0,
        ),
        (
            "1x7 into a concat",
            2,
            8,
            [17, 17],
            40,
            [1, 7],
            1,
            None,
            false,
            24,
        ),
        (
            "7x7 stride 2 stem",
            1,
            3,
            [40, 40],
            64,
            [7, 7],
            2,
            None,
            true,
            0,
        ),
    ] {
        let mut p = Conv2dParams::simple(batch, cin, hw, cout, k);
        p.stride = [stride, stride];
        p.padding = Padding {
            top: k[0] / 2,
            left: k[1] / 2,
            bottom: k[0] / 2,
            right: k[1] / 2,
        };
        p.residual_scale = residual;
        p.clamp = relu.then_some(Clamp::RELU);
        p.out_c_total = cout + offset + 5;
        p.out_c_offset = offset;
        let [oh, ow] = p.out_hw().unwrap();
        let x = rand_vec(1, batch * cin * hw[0] * hw[1]);
        let w = rand_vec(2, cout * cin * k[0] * k[1]);
        let scale = rand_vec(3, cout);
        let shift = rand_vec(4, cout);
        let res = rand_vec(5, batch * cout * oh * ow);
        let res = residual.map(|_| &res[..]);
        let len = batch * p.out_c_total * oh * ow;
        let mut want = vec![f32::NAN; len];
        conv2d::conv2d_cpu(&p, &x, &w, &scale, &shift, res, &mut want);
        let mut got = vec![f32::NAN; len];
        resincept::exec::cpu::conv_parallel(&p, &x, &w, &scale, &shift, res, &mut got);
        let same = got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{case}: threaded conv differs from the reference");
    }
}
