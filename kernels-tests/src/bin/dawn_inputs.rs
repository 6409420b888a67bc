//! Writes what the Dawn checks read (`docs/TRACE_FORMAT.md`) into a folder
//! (`target/dawn` unless given):
//!
//! - `pipelines.json`: every pipeline the launchers can create on any
//!   device (`kernels::catalogue` for the engine's floor, WebGPU's default
//!   limits and larger devices), in every storage mode (f32, native f16,
//!   packed f16), each marked with the workgroup memory it needs above the
//!   floor; the list's `features` is `["shader-f16"]`, which the native-f16
//!   modules need; `scripts/dawn/validate.mjs` creates each through Dawn.
//! - `traces/model-*`: recorded runs of ResNet-18 at 64×64 and Inception-v3
//!   at 107×107 (synthetic weights, NaN-poisoned activations) in f32, and of
//!   ResNet-18 in native and in packed f16, replayed by
//!   `scripts/dawn/replay.mjs`. (The kernel sweeps' traces come from the
//!   conv2d, pool and concat tests run with `RESINCEPT_TRACE_DIR`.)
//!
//! Run by `.ci/run`: `cargo run --release -p kernels-tests --bin dawn_inputs -- DIR`.

use kernels_tests::gpu;
use resincept::device::context::REQUIRED_LIMITS;
use resincept::exec::gpu::{CompileOptions, CompiledGraph, F16Storage, Precision};
use resincept::kernels::{catalogue, PipelineSpec};
use resincept::shaders::{Module, Storage};
use resincept::weights::{synthetic_input, Weights};
use serde_json::{json, Value};
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/dawn".into()),
    );
    std::fs::create_dir_all(out.join("traces")).expect("creating the output folder");
    write_pipeline_list(&out);
    let Some(ctx) = gpu() else {
        eprintln!("dawn_inputs: no GPU adapter, so no model traces");
        std::process::exit(1);
    };
    let runs = [
        ("resnet18", 64, None),
        ("inception_v3", 107, None),
        ("resnet18", 64, Some(F16Storage::Native)),
        ("resnet18", 64, Some(F16Storage::Packed)),
    ];
    for (model, size, f16) in runs {
        let graph = resincept::models::build(model, 1, size).unwrap();
        let weights = Weights::from_synthetic(1, &graph.param_specs());
        let mut opts = CompileOptions::new(1, size, size).poisoned();
        if let Some(s) = f16 {
            opts = opts.with_precision(Precision::F16).with_f16_storage(s);
        }
        let compiled = CompiledGraph::compile(ctx.clone(), &graph, &weights, &opts).unwrap();
        let x = synthetic_input(2, &[1, 3, size, size]);
        let storage = compiled.stats().storage.name();
        let dir = out
            .join("traces")
            .join(format!("model-{model}_{size}_{storage}"));
        let name = format!("{model} 1x3x{size}x{size} {storage}");
        let s = compiled.record_trace(&x, &name, &dir).unwrap();
        println!(
            "dawn_inputs: {name}: {} dispatches, {} pipelines, {} buffers, {} MB -> {}",
            s.dispatches,
            s.pipelines,
            s.buffers,
            s.bin_bytes / 1_000_000,
            dir.display()
        );
    }
}

/// The union of the catalogue over devices with the floor's, WebGPU's
/// default and larger amounts of workgroup memory, with `needs` marks.
fn write_pipeline_list(out: &std::path::Path) {
    let floor = REQUIRED_LIMITS.max_compute_workgroup_storage_size;
    let mut all: Vec<PipelineSpec> = Vec::new();
    for wg in [floor, 16 * 1024, 32 * 1024, 64 * 1024] {
        let limits = wgpu::Limits {
            max_compute_workgroup_storage_size: wg,
            ..wgpu::Limits::default()
        };
        for p in catalogue(&limits) {
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    let mut shaders: Vec<Module> = Vec::new();
    let pipelines: Vec<Value> = all
        .iter()
        .map(|p| {
            let module = Module::new(p.shader, p.storage);
            let shader = shaders
                .iter()
                .position(|&s| s == module)
                .unwrap_or_else(|| {
                    shaders.push(module);
                    shaders.len() - 1
                });
            let constants: serde_json::Map<String, Value> = p
                .constants
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let mut v = json!({
                "shader": shader,
                "entry": p.entry,
                "constants": constants,
                "bindings": p.bindings.iter().map(|b| b.name()).collect::<Vec<_>>(),
            });
            if p.workgroup_bytes > floor {
                v["needs"] = json!({ "maxComputeWorkgroupStorageSize": p.workgroup_bytes });
            }
            v
        })
        .collect();
    let r = &REQUIRED_LIMITS;
    // The native-f16 modules need `shader-f16` (Dawn on lavapipe 25 has
    // it); the others need nothing.
    let features: Vec<&str> = if all.iter().any(|p| p.storage == Storage::F16) {
        vec!["shader-f16"]
    } else {
        Vec::new()
    };
    let list = json!({
        "features": features,
        "limits": {
            "maxStorageBuffersPerShaderStage": r.max_storage_buffers_per_shader_stage,
            "maxComputeWorkgroupStorageSize": r.max_compute_workgroup_storage_size,
            "maxComputeInvocationsPerWorkgroup": r.max_compute_invocations_per_workgroup,
            "maxComputeWorkgroupSizeX": r.max_compute_workgroup_size_x,
            "maxComputeWorkgroupSizeY": r.max_compute_workgroup_size_y,
            "maxComputeWorkgroupSizeZ": r.max_compute_workgroup_size_z,
            "maxComputeWorkgroupsPerDimension": r.max_compute_workgroups_per_dimension,
        },
        "shaders": shaders
            .iter()
            .map(|s| json!({ "file": s.name(), "code": s.source() }))
            .collect::<Vec<_>>(),
        "pipelines": pipelines,
    });
    let path = out.join("pipelines.json");
    std::fs::write(&path, serde_json::to_string_pretty(&list).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!(
        "dawn_inputs: {} pipelines of {} shader files -> {}",
        all.len(),
        shaders.len(),
        path.display()
    );
}
