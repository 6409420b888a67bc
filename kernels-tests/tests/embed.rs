//! Embedding on the application's own device: [`Context::from_wgpu`] on a
//! device the test creates as an application would, and
//! [`CompiledGraph::encode`] from and to the application's buffers, inside
//! its own command encoder, beside its own commands.
//!
//! The oracle is the CPU executor (within the executor's tolerance) and
//! [`CompiledGraph::run`] on the same compiled graph (bit for bit: the same
//! dispatches on the same data). Output buffers are NaN-filled first.

use kernels_tests::{assert_close, gpu};
use resincept::device::context::REQUIRED_LIMITS;
use resincept::exec::cpu;
use resincept::exec::gpu::{CompileOptions, CompiledGraph, Precision, TOLERANCE, TOLERANCE_F16};
use resincept::weights::{synthetic_input, Weights};
use resincept::{models, Context, Error, Tensor};
use std::sync::Arc;

const MODEL: &str = "preact_resnet164_cifar";

/// A device on the adapter resincept would choose, created as an
/// application creates its own: its limits, no optional feature.
fn app_device(limits: wgpu::Limits) -> Option<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    let adapter = gpu()?.adapter.clone();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("the application's device"),
        required_features: wgpu::Features::empty(),
        required_limits: limits,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .expect("device");
    Some((adapter, device, queue))
}

fn buffer(
    device: &wgpu::Device,
    label: &str,
    data: &[f32],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage,
    })
}

fn read(ctx: &Context, buf: &wgpu::Buffer) -> Vec<f32> {
    ctx.read_buffer(buf, (buf.size() / 4) as usize).unwrap()
}

/// MODEL for `batch` images of `size`², with the synthetic weights of seed 1.
fn synthetic_model(batch: usize, size: usize) -> (resincept::graph::Graph, Weights) {
    let graph = models::build(MODEL, batch, size).unwrap();
    let weights = Weights::from_synthetic(1, &graph.param_specs());
    (graph, weights)
}

/// The bits of `v`, for exact comparisons.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn encoder(device: &wgpu::Device) -> wgpu::CommandEncoder {
    device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
}

/// The application's run: its image upload, then two encoded runs of a
/// micro-batched graph (three images in micro-batches of two) on two
/// inputs, then its own use of the logits (a copy), all in one encoder and
/// one submission. Each run's logits equal `run`'s bit for bit and the CPU
/// executor's within tolerance.
#[test]
fn encoded_runs_on_the_applications_device() {
    let Some((adapter, device, queue)) = app_device(gpu().unwrap().adapter.limits()) else {
        return;
    };
    let ctx = Arc::new(Context::from_wgpu(adapter, device.clone(), queue.clone()).unwrap());
    assert!(!ctx.has_timestamps(), "the application enabled no feature");
    assert_eq!(ctx.limits, device.limits());

    let (batch, size) = (3, 32);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size)
        .with_micro_batch(2)
        .poisoned();
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
    assert_eq!(model.stats().micro_batches, 2);
    assert_eq!(model.input_bytes(), (batch * 3 * size * size * 4) as u64);
    assert_eq!(model.output_bytes(), vec![(batch * 10 * 4) as u64]);

    let inputs: Vec<Tensor> = (1..=2)
        .map(|seed| synthetic_input(seed, &[batch, 3, size, size]))
        .collect();
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    // The application's images arrive in a staging buffer it copies from.
    let staged: Vec<wgpu::Buffer> = inputs
        .iter()
        .map(|t| buffer(&device, "app staging", &t.data, usage))
        .collect();
    let images: Vec<wgpu::Buffer> = inputs
        .iter()
        .map(|t| buffer(&device, "app images", &vec![f32::NAN; t.data.len()], usage))
        .collect();
    let nan = vec![f32::NAN; batch * 10];
    let logits: Vec<wgpu::Buffer> = (0..2)
        .map(|_| buffer(&device, "logits", &nan, usage))
        .collect();
    let used: Vec<wgpu::Buffer> = (0..2)
        .map(|_| buffer(&device, "app copy", &nan, usage))
        .collect();

    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("the application's frame"),
    });
    for k in 0..2 {
        enc.copy_buffer_to_buffer(&staged[k], 0, &images[k], 0, model.input_bytes());
    }
    for k in 0..2 {
        model.encode(&mut enc, &images[k], &[&logits[k]]).unwrap();
    }
    for k in 0..2 {
        enc.copy_buffer_to_buffer(&logits[k], 0, &used[k], 0, model.output_bytes()[0]);
    }
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    queue.submit([enc.finish()]);
    assert!(pollster::block_on(scope.pop()).is_none());

    for (k, input) in inputs.iter().enumerate() {
        let got = read(&ctx, &used[k]);
        let by_run = model.run(input).unwrap();
        assert_eq!(
            bits(&got),
            bits(&by_run[0].data),
            "encoded run {k} differs from run()"
        );
        let want = cpu::run(&graph, &weights, input).unwrap();
        assert_close(
            &format!("{MODEL} encoded run {k}"),
            &got,
            &want[0].data,
            TOLERANCE,
        );
    }
    // The two inputs give different logits: the second run did not reuse
    // the first's.
    assert_ne!(read(&ctx, &used[0]), read(&ctx, &used[1]));
}

/// f16 on an application's device created without `SHADER_F16`: the
/// executor stores f16 packed (every device can), and `encode` keeps its
/// f32 contract: f32 images in, f32 logits out, equal to `run`'s bit for
/// bit and to the f16 CPU executor's within the f16 graph tolerance.
#[test]
fn f16_encoded_run_without_the_feature() {
    let Some((adapter, device, queue)) = app_device(gpu().unwrap().adapter.limits()) else {
        return;
    };
    let ctx = Arc::new(Context::from_wgpu(adapter, device.clone(), queue.clone()).unwrap());
    let (batch, size) = (2, 32);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size)
        .poisoned()
        .with_precision(Precision::F16);
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
    assert_eq!(
        model.stats().storage,
        resincept::shaders::Storage::F16Packed
    );
    assert_eq!(model.input_bytes(), (batch * 3 * size * size * 4) as u64);
    assert_eq!(model.output_bytes(), vec![(batch * 10 * 4) as u64]);
    let input = synthetic_input(3, &[batch, 3, size, size]);
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let images = buffer(&device, "app images", &input.data, usage);
    let logits = buffer(&device, "logits", &vec![f32::NAN; batch * 10], usage);
    let mut enc = encoder(&device);
    model.encode(&mut enc, &images, &[&logits]).unwrap();
    queue.submit([enc.finish()]);
    let got = read(&ctx, &logits);
    assert_eq!(bits(&got), bits(&model.run(&input).unwrap()[0].data));
    let compiled = model.graph().clone();
    let want = cpu::run_with(&compiled, &weights, &input, Precision::F16).unwrap();
    assert_close("f16 encoded run", &got, &want[0].data, TOLERANCE_F16);
}

/// Wrong buffers are refused, naming what is wrong, and nothing is
/// encoded: the encoder still finishes and submits cleanly.
#[test]
fn encode_refuses_unusable_buffers() {
    let Some(ctx) = gpu() else {
        return;
    };
    let (batch, size) = (1, 32);
    let (graph, weights) = synthetic_model(batch, size);
    let model = CompiledGraph::compile(
        ctx.clone(),
        &graph,
        &weights,
        &CompileOptions::new(batch, size, size),
    )
    .unwrap();
    let make = |bytes: u64, usage| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    use wgpu::BufferUsages as U;
    let input = make(model.input_bytes(), U::COPY_SRC | U::STORAGE);
    let output = make(model.output_bytes()[0], U::COPY_DST | U::STORAGE);
    let small_input = make(model.input_bytes() - 4, U::COPY_SRC);
    let no_src = make(model.input_bytes(), U::STORAGE);
    let small_output = make(model.output_bytes()[0] - 4, U::COPY_DST);
    let no_dst = make(model.output_bytes()[0], U::STORAGE | U::COPY_SRC);

    let mut enc = encoder(&ctx.device);
    let cases: [(&wgpu::Buffer, &[&wgpu::Buffer], &[&str]); 6] = [
        (
            &small_input,
            &[&output],
            &["input (1×3×32×32)", "12284 bytes", "12288"],
        ),
        (&no_src, &[&output], &["input", "COPY_SRC"]),
        (
            &input,
            &[&small_output],
            &["output 0 ([1, 10])", "36 bytes", "40"],
        ),
        (&input, &[&no_dst], &["output 0", "COPY_DST"]),
        (&input, &[], &["1 output(s), 0 output buffer(s)"]),
        (
            &input,
            &[&output, &output],
            &["1 output(s), 2 output buffer(s)"],
        ),
    ];
    for (inp, outs, needles) in cases {
        match model.encode(&mut enc, inp, outs) {
            Err(Error::Invalid(m)) => {
                for n in needles {
                    assert!(m.contains(n), "`{m}` does not say `{n}`");
                }
            }
            other => panic!("expected Error::Invalid with {needles:?}, got {other:?}"),
        }
    }
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    ctx.queue.submit([enc.finish()]);
    assert!(pollster::block_on(scope.pop()).is_none());
}

/// A device created with too low limits is refused, naming each limit that
/// falls short with both values; one created with exactly
/// `REQUIRED_LIMITS` but for 384 KiB bindings (the model's largest value at
/// one image is 256 KiB) runs the model: the conv launcher picks tiles
/// that fit its 8 KiB of workgroup memory, and the batch of 2 runs as two
/// micro-batches.
#[test]
fn from_wgpu_checks_the_devices_limits() {
    let low = wgpu::Limits {
        max_storage_buffers_per_shader_stage: 4,
        ..REQUIRED_LIMITS
    };
    let Some((adapter, device, queue)) = app_device(low) else {
        return;
    };
    match Context::from_wgpu(adapter, device, queue) {
        Err(Error::Device(m)) => assert!(
            m.contains("max_storage_buffers_per_shader_stage is 4, resincept needs 6"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let small = wgpu::Limits {
        max_storage_buffer_binding_size: 384 << 10,
        max_buffer_size: 384 << 10,
        ..REQUIRED_LIMITS
    };
    let (adapter, device, queue) = app_device(small).unwrap();
    let ctx = Arc::new(Context::from_wgpu(adapter, device, queue).unwrap());
    let (batch, size) = (2, 32);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size).poisoned();
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
    assert_eq!(model.stats().micro_batches, 2);
    let input = synthetic_input(1, &[batch, 3, size, size]);
    let got = model.run(&input).unwrap();
    let want = cpu::run(&graph, &weights, &input).unwrap();
    assert_close(
        &format!(
            "{MODEL} at REQUIRED_LIMITS ({:?})",
            ctx.limits.max_compute_workgroup_storage_size
        ),
        &got[0].data,
        &want[0].data,
        TOLERANCE,
    );
}

/// The types an application holds are `Send + Sync`, so a model can live in
/// an `Arc` shared by worker threads; checked at compile time.
#[test]
fn shared_types_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Context>();
    shared::<CompiledGraph>();
    shared::<Weights>();
    shared::<resincept::graph::Graph>();
    shared::<Tensor>();
    shared::<Error>();
}

/// Four threads run one compiled model at once, each on its own images
/// (runs are serialised inside); every result equals that input's result
/// run alone, bit for bit.
#[test]
fn one_model_many_threads() {
    let Some(ctx) = gpu() else {
        return;
    };
    let (batch, size) = (2, 16);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size);
    let model = Arc::new(CompiledGraph::compile(ctx, &graph, &weights, &opts).unwrap());
    let inputs: Vec<Tensor> = (0..4)
        .map(|k| synthetic_input(10 + k, &[batch, 3, size, size]))
        .collect();
    let alone: Vec<Vec<u32>> = inputs
        .iter()
        .map(|x| bits(&model.run(x).unwrap()[0].data))
        .collect();
    std::thread::scope(|s| {
        for (x, want) in inputs.iter().zip(&alone) {
            let model = model.clone();
            s.spawn(move || {
                for _ in 0..5 {
                    assert_eq!(&bits(&model.run(x).unwrap()[0].data), want);
                }
            });
        }
    });
}

/// `run` on one thread and encoded runs submitted from another, on one
/// model, interleave on the queue in whatever order; each result equals
/// its input's result alone. (`run`'s host upload lands at the next
/// submission on the queue, whoever makes it, so it must not go to a
/// buffer an encoded run writes.)
#[test]
fn run_and_encode_from_two_threads() {
    let Some(ctx) = gpu() else {
        return;
    };
    let (batch, size) = (1, 16);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size);
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
    let (xa, xb) = (
        synthetic_input(21, &[batch, 3, size, size]),
        synthetic_input(22, &[batch, 3, size, size]),
    );
    let (want_a, want_b) = (
        bits(&model.run(&xa).unwrap()[0].data),
        bits(&model.run(&xb).unwrap()[0].data),
    );
    assert_ne!(want_a, want_b);
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let input_b = buffer(&ctx.device, "b images", &xb.data, usage);
    let logits_b = buffer(&ctx.device, "b logits", &[f32::NAN; 10], usage);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                assert_eq!(bits(&model.run(&xa).unwrap()[0].data), want_a);
            }
        });
        s.spawn(|| {
            for _ in 0..20 {
                let mut enc = encoder(&ctx.device);
                model.encode(&mut enc, &input_b, &[&logits_b]).unwrap();
                ctx.queue.submit([enc.finish()]);
                let got = read(&ctx, &logits_b);
                assert_eq!(bits(&got), want_b);
            }
        });
    });
}

/// `encode_images` runs the first images of a batch from buffers only that
/// long, bit for bit what `run` gives those images; 0 images or more than
/// compiled are refused.
#[test]
fn encode_fewer_images() {
    let Some(ctx) = gpu() else {
        return;
    };
    let (batch, size) = (3, 16);
    let (graph, weights) = synthetic_model(batch, size);
    let opts = CompileOptions::new(batch, size, size)
        .with_micro_batch(2)
        .poisoned();
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    for images in [1, 2, 3] {
        let x = synthetic_input(30 + images as u64, &[images, 3, size, size]);
        let input = buffer(&ctx.device, "images", &x.data, usage);
        let logits = buffer(&ctx.device, "logits", &vec![f32::NAN; images * 10], usage);
        let mut enc = encoder(&ctx.device);
        model
            .encode_images(&mut enc, images, &input, &[&logits])
            .unwrap();
        ctx.queue.submit([enc.finish()]);
        let got = read(&ctx, &logits);
        let want = &model.run(&x).unwrap()[0];
        assert_eq!(want.shape, vec![images, 10]);
        assert_eq!(bits(&got), bits(&want.data), "{images} images");
    }
    let x = buffer(&ctx.device, "x", &[0.0; 3 * 16 * 16 * 3], usage);
    let y = buffer(&ctx.device, "y", &[0.0; 30], usage);
    let mut enc = encoder(&ctx.device);
    for images in [0, 4] {
        let e = model
            .encode_images(&mut enc, images, &x, &[&y])
            .unwrap_err();
        assert!(e.to_string().contains("compiled for 1..=3"), "{e}");
    }
}
