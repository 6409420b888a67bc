//! One GPU run written out so that another WebGPU implementation can replay
//! it (feature `trace`; the format is `scripts/dawn/TRACE_FORMAT.md`).
//!
//! A trace holds everything the run touches: the WGSL source of every
//! shader family it uses, every buffer with its usage and its contents
//! before the run, every pipeline (entry point, override constants, binding
//! kinds), every bind group (buffer ranges), and the commands in order
//! (copies and dispatches). `checks` name buffer ranges whose contents
//! after the run wgpu computed here; the replay must reproduce them within
//! the given tolerance. `scripts/dawn/replay.mjs` replays a trace on Dawn,
//! Chrome's WebGPU implementation, whose WGSL compiler (Tint) is
//! independent of wgpu's (naga): two compilers agreeing on the same
//! dispatch sequence is the evidence that the shaders are valid WebGPU
//! that means the same everywhere.

use super::buffers::{MapRead, Span};
use super::cache::ready_now;
use super::context::Context;
use super::dispatch::{encode_commands, Command};
use crate::error::{Error, Result};
use crate::shaders::{Module, Storage};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// A buffer range whose contents after the run the replay must reproduce.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    /// What it is, for messages (`fc (logits)`).
    pub label: String,
    /// The range.
    pub span: Span<'a>,
    /// How its elements are stored: f32, or IEEE half (`dtype` `f16` in
    /// the trace) for either f16 storage mode.
    pub storage: Storage,
    /// How close the replay must come: `|replay − wgpu| ≤ atol + rtol·|wgpu|`
    /// (the kernel's declared tolerance).
    pub atol: f32,
    /// See [`Check::atol`].
    pub rtol: f32,
}

/// What [`record`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Buffers in the trace.
    pub buffers: usize,
    /// Distinct pipelines.
    pub pipelines: usize,
    /// Dispatches.
    pub dispatches: usize,
    /// Bytes of `trace.bin`.
    pub bin_bytes: u64,
}

/// Runs `commands` once on `ctx` and writes the run to `dir/trace.json`
/// and `dir/trace.bin` (`name` is free text for messages). Every buffer the
/// commands touch is read back first, so the trace starts from exactly the
/// state this run starts from (write the run's input before calling); the
/// checks' contents after the run are its expected values. Blocking (a
/// test and tooling facility). Errors name the file or the GPU failure.
// wgpu's handles hash and compare by their id, which never changes.
#[allow(clippy::mutable_key_type)]
pub fn record(
    ctx: &Context,
    name: &str,
    commands: &[Command<'_>],
    checks: &[Check<'_>],
    dir: &Path,
) -> Result<Summary> {
    let mut bin: Vec<u8> = Vec::new();
    let mut blob = |bytes: &[u8]| -> Value {
        let at = bin.len();
        bin.extend_from_slice(bytes);
        while !bin.len().is_multiple_of(16) {
            bin.push(0);
        }
        json!([at, bytes.len()])
    };

    // Buffers, in first-use order; uniforms' contents are known here.
    let mut ids: HashMap<wgpu::Buffer, usize> = HashMap::new();
    let mut buffers: Vec<(wgpu::Buffer, Option<Vec<u8>>)> = Vec::new();
    let mut id_of = |b: &wgpu::Buffer, known: Option<&[u8]>| -> usize {
        *ids.entry(b.clone()).or_insert_with(|| {
            buffers.push((b.clone(), known.map(<[u8]>::to_vec)));
            buffers.len() - 1
        })
    };
    let mut shaders: Vec<Module> = Vec::new();
    let mut pipelines: Vec<Value> = Vec::new();
    let mut pipeline_ids: HashMap<wgpu::ComputePipeline, usize> = HashMap::new();
    let mut bind_groups: Vec<Value> = Vec::new();
    let mut cmds: Vec<Value> = Vec::new();
    let mut dispatches = 0;
    let mut max_binding = 0u64;
    let mut max_storage = 0usize;
    let mut max_workgroup_bytes = 0u32;
    let d = wgpu::Limits::default();
    let mut offset_alignment = u64::from(d.min_storage_buffer_offset_alignment);
    for c in commands {
        match *c {
            Command::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                size,
            } => cmds.push(json!({
                "op": "copy",
                "src": id_of(src, None),
                "src_offset": src_offset,
                "dst": id_of(dst, None),
                "dst_offset": dst_offset,
                "size": size,
            })),
            Command::Dispatch(d) => {
                dispatches += 1;
                let r = d.record();
                let shader = match shaders.iter().position(|&s| s == r.module) {
                    Some(k) => k,
                    None => {
                        shaders.push(r.module);
                        shaders.len() - 1
                    }
                };
                let pipeline = *pipeline_ids.entry(d.pipeline().clone()).or_insert_with(|| {
                    let constants: serde_json::Map<String, Value> = r
                        .constants
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect();
                    pipelines.push(json!({
                        "shader": shader,
                        "entry": r.entry,
                        "constants": constants,
                        "bindings": r.bindings.iter().map(|b| b.name()).collect::<Vec<_>>(),
                    }));
                    pipelines.len() - 1
                });
                let mut entries = vec![json!({
                    "buffer": id_of(&r.uniform, Some(&r.uniform_bytes)),
                    "offset": 0,
                    "size": r.uniform_bytes.len(),
                })];
                for s in &r.storage {
                    max_binding = max_binding.max(s.size);
                    // The largest power of two dividing every offset.
                    if s.offset != 0 {
                        offset_alignment = offset_alignment.min(1 << s.offset.trailing_zeros());
                    }
                    entries.push(json!({
                        "buffer": id_of(&s.buffer, None),
                        "offset": s.offset,
                        "size": s.size,
                    }));
                }
                max_storage = max_storage.max(r.storage.len());
                max_workgroup_bytes = max_workgroup_bytes.max(r.workgroup_bytes);
                bind_groups.push(json!({ "pipeline": pipeline, "entries": entries }));
                cmds.push(json!({
                    "op": "dispatch",
                    "pipeline": pipeline,
                    "bind_group": bind_groups.len() - 1,
                    "workgroups": d.workgroups(),
                    "label": d.label,
                }));
            }
        }
    }
    let check_ids: Vec<usize> = checks.iter().map(|c| id_of(c.span.buffer, None)).collect();

    // Contents before the run.
    let mut buffer_json = Vec::new();
    let mut max_buffer = 0u64;
    for (b, known) in &buffers {
        max_buffer = max_buffer.max(b.size());
        let init = match known {
            Some(bytes) => Some(bytes.clone()),
            None if b.usage().contains(wgpu::BufferUsages::COPY_SRC) => {
                Some(read_bytes(ctx, b, 0, b.size())?)
            }
            None => None,
        };
        let usage = usage_names(b.usage());
        buffer_json.push(json!({
            "label": format!("buffer {}", buffer_json.len()),
            "size": b.size(),
            "usage": usage,
            "init": init.map(|bytes| blob(&bytes)),
        }));
    }

    // The run, and the checks' contents after it.
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("trace"),
        });
    encode_commands(&mut enc, "trace", commands);
    let (index, err) = ctx.submit(enc.finish());
    if let Some(Some(e)) = ready_now(err) {
        return Err(Error::Gpu(format!("trace run: {e}")));
    }
    ctx.wait_blocking(index)?;
    let mut check_json = Vec::new();
    for (c, id) in checks.iter().zip(check_ids) {
        let bytes = read_bytes(ctx, c.span.buffer, c.span.offset, c.span.size)?;
        check_json.push(json!({
            "label": c.label,
            "buffer": id,
            "offset": c.span.offset,
            "size": c.span.size,
            "dtype": if c.storage.is_f16() { "f16" } else { "f32" },
            "expected": blob(&bytes),
            "atol": c.atol,
            "rtol": c.rtol,
        }));
    }

    // What the trace needs, never less than WebGPU's defaults (which every
    // WebGPU device has): not the recording device's own limits, which
    // another implementation on the same hardware may report differently.
    // The storage offset alignment is the coarsest every bound offset
    // meets (an activation arena placed on a device aligning to 16 bytes
    // needs a replay device that allows 16; WebGPU's default is 256).
    let trace = json!({
        "format": "resincept-trace",
        "version": 1,
        "name": name,
        "features": if shaders.iter().any(|m| m.storage == Storage::F16) {
            vec!["shader-f16"]
        } else {
            Vec::new()
        },
        "limits": {
            "maxStorageBufferBindingSize": max_binding.max(d.max_storage_buffer_binding_size),
            "maxBufferSize": max_buffer.max(d.max_buffer_size),
            "maxStorageBuffersPerShaderStage": (max_storage as u32).max(d.max_storage_buffers_per_shader_stage),
            "maxComputeWorkgroupStorageSize": max_workgroup_bytes.max(d.max_compute_workgroup_storage_size),
            "maxComputeInvocationsPerWorkgroup": d.max_compute_invocations_per_workgroup,
            "maxComputeWorkgroupSizeX": d.max_compute_workgroup_size_x,
            "maxComputeWorkgroupSizeY": d.max_compute_workgroup_size_y,
            "maxComputeWorkgroupSizeZ": d.max_compute_workgroup_size_z,
            "maxComputeWorkgroupsPerDimension": d.max_compute_workgroups_per_dimension,
            "minStorageBufferOffsetAlignment": offset_alignment,
        },
        "shaders": shaders
            .iter()
            .map(|s| json!({ "file": s.name(), "code": s.source() }))
            .collect::<Vec<_>>(),
        "buffers": buffer_json,
        "pipelines": pipelines,
        "bind_groups": bind_groups,
        "commands": cmds,
        "checks": check_json,
    });
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json_path = dir.join("trace.json");
    let text = serde_json::to_string(&trace).map_err(|e| Error::Io {
        path: json_path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(&json_path, text).map_err(|e| io(&json_path, e))?;
    let bin_path = dir.join("trace.bin");
    std::fs::write(&bin_path, &bin).map_err(|e| io(&bin_path, e))?;
    Ok(Summary {
        buffers: buffers.len(),
        pipelines: pipelines.len(),
        dispatches,
        bin_bytes: bin.len() as u64,
    })
}

/// The WebGPU names of `usage`'s flags.
fn usage_names(usage: wgpu::BufferUsages) -> Vec<&'static str> {
    [
        (wgpu::BufferUsages::STORAGE, "storage"),
        (wgpu::BufferUsages::UNIFORM, "uniform"),
        (wgpu::BufferUsages::COPY_SRC, "copy_src"),
        (wgpu::BufferUsages::COPY_DST, "copy_dst"),
        (wgpu::BufferUsages::MAP_READ, "map_read"),
    ]
    .into_iter()
    .filter(|(f, _)| usage.contains(*f))
    .map(|(_, n)| n)
    .collect()
}

/// `size` bytes of `buffer` from `offset` (multiples of 4), read back.
fn read_bytes(ctx: &Context, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
    let staging = ctx.buffer(
        "trace readback",
        size,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
    let (index, err) = ctx.submit(enc.finish());
    if let Some(Some(e)) = ready_now(err) {
        return Err(Error::Gpu(format!("trace read-back: {e}")));
    }
    let map = MapRead::start(&staging, size);
    ctx.wait_blocking(index)?;
    pollster::block_on(map.finish::<u8>(size as usize))
}
