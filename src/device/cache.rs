//! Keyed caches of device objects: shader modules by [`Module`] (family and
//! storage mode), bind-group layouts by binding list, compute pipelines by
//! (module, entry point, bindings, override constants). A key never holds a
//! shape, so one pipeline serves every shape (shapes travel in each
//! dispatch's params uniform).

use crate::error::{Error, Result};
use crate::shaders::Module;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};

/// One entry of a kernel's bind group layout. Binding 0 is always the
/// params uniform; the storage bindings follow in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A uniform buffer (the params).
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

impl Binding {
    /// Its name in traces and pipeline lists: `uniform`, `read` or
    /// `read_write`.
    pub fn name(self) -> &'static str {
        match self {
            Binding::Uniform => "uniform",
            Binding::Read => "read",
            Binding::ReadWrite => "read_write",
        }
    }
}

/// What identifies a compute pipeline: never a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    module: Module,
    entry: &'static str,
    bindings: &'static [Binding],
    /// Override constants as (name, f64 bits), sorted by name.
    constants: Vec<(&'static str, u64)>,
}

/// The caches one [`crate::device::Context`] owns. Internally synchronised.
#[derive(Default)]
pub(crate) struct Caches {
    modules: Mutex<HashMap<Module, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, (wgpu::ComputePipeline, wgpu::BindGroupLayout)>>,
    layouts: Mutex<HashMap<&'static [Binding], wgpu::BindGroupLayout>>,
}

/// The result of `fut` if it is ready at its first poll, else `None`.
///
/// wgpu's error-scope futures are ready at once on native backends (wgpu
/// validates as it creates), so a pipeline's own error is reported with its
/// shader, entry point and constants; where they are not ready (the web),
/// nothing waits for them here, and the enclosing compile's error scope,
/// which the executor awaits, reports the error instead.
pub(crate) fn ready_now<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

impl Caches {
    /// Number of distinct pipelines created so far.
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }

    /// Gets or creates the bind group layout for `bindings`.
    pub fn bind_group_layout(
        &self,
        device: &wgpu::Device,
        bindings: &'static [Binding],
    ) -> wgpu::BindGroupLayout {
        let mut layouts = self.layouts.lock().unwrap();
        layouts
            .entry(bindings)
            .or_insert_with(|| {
                let entries: Vec<_> = bindings
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match b {
                                Binding::Uniform => wgpu::BufferBindingType::Uniform,
                                Binding::Read => {
                                    wgpu::BufferBindingType::Storage { read_only: true }
                                }
                                Binding::ReadWrite => {
                                    wgpu::BufferBindingType::Storage { read_only: false }
                                }
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: None,
                    entries: &entries,
                })
            })
            .clone()
    }

    /// Gets or creates the compute pipeline for `module`'s `entry` point with
    /// the given bind group layout and `override` constants.
    pub fn pipeline(
        &self,
        device: &wgpu::Device,
        module: Module,
        entry: &'static str,
        bindings: &'static [Binding],
        constants: &[(&'static str, f64)],
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let mut sorted: Vec<(&'static str, f64)> = constants.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let key = PipelineKey {
            module,
            entry,
            bindings,
            constants: sorted.iter().map(|(n, v)| (*n, v.to_bits())).collect(),
        };
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let shader = self.module(device, module)?;
        let bgl = self.bind_group_layout(device, bindings);
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&layout),
            module: &shader,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &sorted,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(Some(err)) = ready_now(scope.pop()) {
            return Err(Error::Shader {
                shader: module.name(),
                message: format!("entry `{entry}` with constants {sorted:?}: {err}"),
            });
        }
        let value = (pipeline, bgl);
        self.pipelines.lock().unwrap().insert(key, value.clone());
        Ok(value)
    }

    fn module(&self, device: &wgpu::Device, module: Module) -> Result<wgpu::ShaderModule> {
        if let Some(m) = self.modules.lock().unwrap().get(&module) {
            return Ok(m.clone());
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let name = module.name();
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&name),
            source: wgpu::ShaderSource::Wgsl(module.source().into()),
        });
        if let Some(Some(err)) = ready_now(scope.pop()) {
            return Err(Error::Shader {
                shader: name,
                message: err.to_string(),
            });
        }
        self.modules.lock().unwrap().insert(module, shader.clone());
        Ok(shader)
    }
}
