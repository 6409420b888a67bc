//! Embedding resincept in an application that already has a wgpu device
//! (a renderer, a video pipeline): the network runs on the application's
//! device, between the application's own GPU work, and the image never
//! visits the host on its way in.
//!
//! The application here holds an RGBA8 image in a GPU buffer, turns it into
//! the network's normalised NCHW input with its own compute shader, lets
//! resincept encode ResNet-18 into the same command encoder, and copies the
//! logits out for itself: one submission. It then checks the result
//! against `CompiledGraph::run` on the same image preprocessed on the host.
//!
//! `cargo run --release --example shared_device`

use resincept::exec::gpu::{CompileOptions, CompiledGraph};
use resincept::{imagenet, models, weights::Weights, Context, Tensor};
use std::sync::Arc;
use wgpu::util::DeviceExt;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The application's own preprocessing: one packed RGBA8 pixel per u32 in,
/// ImageNet-normalised planar RGB out.
const PREPROCESS: &str = r#"
@group(0) @binding(0) var<storage, read> rgba: array<u32>;
@group(0) @binding(1) var<storage, read_write> nchw: array<f32>;
@group(0) @binding(2) var<uniform> size: vec4<u32>; // pixels per image, images
const MEAN = vec3<f32>(0.485, 0.456, 0.406);
const STD = vec3<f32>(0.229, 0.224, 0.225);
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let hw = size.x;
    if (id.x >= hw * size.y) { return; }
    let n = id.x / hw;
    let p = id.x % hw;
    let rgb = unpack4x8unorm(rgba[id.x]).xyz;
    let v = (rgb - MEAN) / STD;
    nchw[(n * 3u + 0u) * hw + p] = v.x;
    nchw[(n * 3u + 1u) * hw + p] = v.y;
    nchw[(n * 3u + 2u) * hw + p] = v.z;
}
"#;

fn main() -> anyhow::Result<()> {
    // The application's device, created its way (here: the first adapter
    // with the adapter's own limits, which resincept's kernels need).
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let Ok(adapter) = pollster::block_on(instance.request_adapter(&Default::default())) else {
        println!("no GPU adapter: nothing to share");
        return Ok(());
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("the application's device"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;

    // resincept on that device.
    let ctx = Arc::new(Context::from_wgpu(adapter, device.clone(), queue.clone())?);
    let (batch, size) = (1, 224);
    let graph = models::build("resnet18", batch, size)?;
    let weights = Weights::from_synthetic(1, &graph.param_specs());
    let opts = CompileOptions::new(batch, size, size);
    let model = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts)?;

    // The application's image: a colour gradient, RGBA8.
    let pixels: Vec<[u8; 4]> = (0..size * size)
        .map(|i| {
            let (y, x) = (i / size, i % size);
            [(x * 255 / size) as u8, (y * 255 / size) as u8, 128, 255]
        })
        .collect();
    let rgba = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("image (RGBA8)"),
        contents: bytemuck::cast_slice(&pixels),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let storage_copy =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let input = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("network input (NCHW)"),
        size: model.input_bytes(),
        usage: storage_copy,
        mapped_at_creation: false,
    });
    let logits = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("logits"),
        size: model.output_bytes()[0],
        usage: storage_copy,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("logits readback"),
        size: model.output_bytes()[0],
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("preprocess sizes"),
        contents: bytemuck::cast_slice(&[(size * size) as u32, batch as u32, 0, 0]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("preprocess"),
        source: wgpu::ShaderSource::Wgsl(PREPROCESS.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("preprocess"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: rgba.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: dims.as_entire_binding(),
            },
        ],
    });

    // One encoder, one submission: preprocess, network, copy out.
    let mut enc = device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(((batch * size * size) as u32).div_ceil(256), 1, 1);
    }
    model.encode(&mut enc, &input, &[&logits])?;
    enc.copy_buffer_to_buffer(&logits, 0, &readback, 0, model.output_bytes()[0]);
    queue.submit([enc.finish()]);
    readback.map_async(wgpu::MapMode::Read, .., |r| r.expect("map logits"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let on_gpu: Vec<f32> = bytemuck::cast_slice(&readback.get_mapped_range(..)?).to_vec();

    // The same image preprocessed on the host and run with `run`.
    let mut host = vec![0f32; batch * 3 * size * size];
    for (p, px) in pixels.iter().enumerate() {
        for c in 0..3 {
            host[c * size * size + p] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    let by_run = model.run(&Tensor::new(vec![batch, 3, size, size], host)?)?;
    let diff = on_gpu
        .iter()
        .zip(&by_run[0].data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);

    println!(
        "resnet18 (synthetic weights) on the application's device: {}",
        ctx.info.name
    );
    let names = imagenet::class_names(1000);
    for (class, p) in imagenet::top_k(&imagenet::softmax(&on_gpu), 3) {
        println!("{:>6.2}% {}", p * 100.0, names[class]);
    }
    println!(
        "max |encoded - run| = {diff:e} (max |run| = {:e})",
        by_run[0].max_abs()
    );
    Ok(())
}
