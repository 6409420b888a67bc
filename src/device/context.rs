//! The GPU context: adapter choice, device, queue, and the caches.
//!
//! A [`Context`] picks the best adapter wgpu can see (discrete over
//! integrated over virtual over software; native backends over OpenGL),
//! requests the adapter's own limits and the optional features the engine
//! uses, and owns the pipeline cache ([`super::cache`]).
//! [`Context::from_wgpu`] wraps an application's own device instead.
//! Either way the device must meet [`REQUIRED_LIMITS`], the floor the
//! shaders need.
//!
//! [`Context::new`] does exactly what its [`ContextOptions`] say: the
//! library reads no environment variable. [`Context::from_env`] (what the
//! command line and the tests use) fills the options from
//! `RESINCEPT_BACKEND` (`vulkan`, `metal`, `dx12` or `gl`),
//! `RESINCEPT_ADAPTER` (a case-insensitive substring of the adapter name),
//! `RESINCEPT_LIMITS` (`webgpu` for WebGPU's default limits) and
//! `RESINCEPT_MAX_STORAGE_BINDING` (bytes) first, when the caller asks for
//! it. Creating a context is async at heart ([`Context::new_async`]);
//! [`Context::new`] blocks on it.

use super::cache::{Binding, Caches};
use super::poll::Poller;
use crate::error::{Error, Result};
use crate::shaders::{Module, Storage};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// How to choose an adapter.
#[derive(Debug, Clone, Default)]
pub struct ContextOptions {
    /// Restrict to these backends (`None`: all).
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring the adapter's name must contain.
    pub adapter_name: Option<String>,
    /// Ask the device for at most this `max_storage_buffer_binding_size`
    /// (bytes), below the adapter's own: to see the engine on a smaller
    /// device (WebGPU's default is 128 MiB), where a large batch is run in
    /// micro-batches.
    pub max_storage_binding: Option<u64>,
    /// Ask the device for WebGPU's default limits (16 KiB of workgroup
    /// memory, 8 storage buffers per stage, 128 MiB bindings, …) instead of
    /// the adapter's: the engine as a minimal WebGPU device would run it.
    pub webgpu_limits: bool,
}

impl ContextOptions {
    /// Reads `RESINCEPT_BACKEND`, `RESINCEPT_ADAPTER`,
    /// `RESINCEPT_MAX_STORAGE_BINDING` (bytes) and `RESINCEPT_LIMITS`
    /// (`webgpu` for WebGPU's default limits, `adapter` or unset for the
    /// adapter's own).
    pub fn from_env() -> Result<Self> {
        let backends = match std::env::var("RESINCEPT_BACKEND") {
            Ok(v) if !v.is_empty() => Some(parse_backend(&v)?),
            _ => None,
        };
        let adapter_name = std::env::var("RESINCEPT_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        let max_storage_binding = match std::env::var("RESINCEPT_MAX_STORAGE_BINDING") {
            Ok(v) if !v.is_empty() => Some(v.parse::<u64>().map_err(|_| {
                Error::Invalid(format!(
                    "RESINCEPT_MAX_STORAGE_BINDING must be a byte count, got `{v}`"
                ))
            })?),
            _ => None,
        };
        let webgpu_limits = match std::env::var("RESINCEPT_LIMITS").as_deref() {
            Ok("webgpu") => true,
            Ok("adapter") | Ok("") | Err(_) => false,
            Ok(other) => {
                return Err(Error::Invalid(format!(
                    "RESINCEPT_LIMITS must be `webgpu` or `adapter`, got `{other}`"
                )))
            }
        };
        Ok(Self {
            backends,
            adapter_name,
            max_storage_binding,
            webgpu_limits,
        })
    }
}

/// Parses a backend name (`vulkan`, `metal`, `dx12`, `gl`).
pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        other => Err(Error::Invalid(format!(
            "RESINCEPT_BACKEND=`{other}` is not a backend; use vulkan, metal, dx12 or gl"
        ))),
    }
}

/// Features the engine uses when the adapter has them.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY);

/// The least of each device limit that every kernel needs: storage
/// buffers per dispatch (conv and batchnorm bind 6), invocations and
/// workgroup sizes (256 wide, conv tiles 16 × 16), workgroup memory (the
/// smallest conv tile and the linear kernel; larger conv tiles are chosen
/// when the device has more) and workgroups per grid dimension (kernels
/// fold larger grids into 2-D). `shaders_validate.rs` derives each from the
/// shaders and checks it is exactly what they need. Other limits are as
/// WebGL 2 guarantees.
///
/// A floor to check a device against, not a device to ask for: binding
/// and buffer sizes depend on the model and batch, so here they are only
/// the context's own 16-byte placeholder. They are checked per layer at
/// compile (a large batch runs in micro-batches; a layer that does not fit
/// at one image is an [`Error::Limit`] naming it). An application creating
/// a device for resincept should request `adapter.limits()`, or these
/// with the binding sizes its models need.
pub const REQUIRED_LIMITS: wgpu::Limits = wgpu::Limits {
    max_storage_buffers_per_shader_stage: 6,
    max_compute_invocations_per_workgroup: 256,
    max_compute_workgroup_size_x: 256,
    max_compute_workgroup_size_y: 16,
    max_compute_workgroup_size_z: 1,
    max_compute_workgroup_storage_size: 8192,
    max_compute_workgroups_per_dimension: 65535,
    max_storage_buffer_binding_size: 16,
    max_buffer_size: 16,
    ..wgpu::Limits::downlevel_webgl2_defaults()
};

/// Checks `limits` against [`REQUIRED_LIMITS`]; the error names the
/// adapter and every limit that falls short, with both values.
pub fn check_required_limits(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Result<()> {
    let mut short = Vec::new();
    REQUIRED_LIMITS.check_limits_with_fail_fn(limits, false, |name, needed, available| {
        short.push(format!("{name} is {available}, resincept needs {needed}"))
    });
    if short.is_empty() {
        return Ok(());
    }
    Err(Error::Device(format!(
        "{} ({:?}) cannot run resincept's kernels: {} (request at least \
         resincept::context::REQUIRED_LIMITS, or the adapter's own limits, when \
         creating the device)",
        info.name,
        info.backend,
        short.join("; ")
    )))
}

/// Rank of an adapter: higher is better.
fn adapter_rank(info: &wgpu::AdapterInfo) -> u32 {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 40,
        wgpu::DeviceType::IntegratedGpu => 30,
        wgpu::DeviceType::VirtualGpu => 20,
        wgpu::DeviceType::Other => 10,
        wgpu::DeviceType::Cpu => 0,
    };
    let native = if info.backend == wgpu::Backend::Gl {
        0
    } else {
        5
    };
    ty + native
}

/// An adapter wgpu can see, as `resincept info` lists it.
#[derive(Debug, Clone)]
pub struct AdapterEntry {
    /// Its name, backend, type and driver.
    pub info: wgpu::AdapterInfo,
    /// Why it cannot run resincept's kernels (its limits below
    /// [`REQUIRED_LIMITS`]), or `None` when it can.
    pub shortfall: Option<String>,
}

/// Every adapter wgpu can see, best first (for `resincept info`). Blocks
/// on [`list_adapters_async`].
pub fn list_adapters(backends: Option<wgpu::Backends>) -> Vec<AdapterEntry> {
    pollster::block_on(list_adapters_async(backends))
}

/// Every adapter wgpu can see, best first.
pub async fn list_adapters_async(backends: Option<wgpu::Backends>) -> Vec<AdapterEntry> {
    let instance = make_instance(backends);
    let mut entries: Vec<_> = instance
        .enumerate_adapters(backends.unwrap_or(wgpu::Backends::all()))
        .await
        .iter()
        .map(|a| {
            let info = a.get_info();
            let shortfall = check_required_limits(&info, &a.limits())
                .err()
                .map(|e| e.to_string());
            AdapterEntry { info, shortfall }
        })
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(adapter_rank(&e.info)));
    entries
}

fn make_instance(backends: Option<wgpu::Backends>) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends.unwrap_or(wgpu::Backends::all());
    wgpu::Instance::new(desc)
}

/// A GPU device ready to run resincept kernels.
///
/// Cheap to share: wrap it in an `Arc` and hand it to every compiled graph.
/// All caches are internally synchronised.
pub struct Context {
    /// The adapter the device was created from.
    pub adapter: wgpu::Adapter,
    /// The logical device.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    /// The adapter's description (name, backend, type, driver).
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    /// The optional features that were enabled.
    pub features: wgpu::Features,
    caches: Caches,
    dummy: wgpu::Buffer,
    pub(crate) poller: Poller,
    shared: Mutex<HashMap<SharedKey, Weak<wgpu::Buffer>>>,
}

/// What identifies a buffer that compiled graphs on one context share
/// (parameters uploaded once per model, whatever the batch): the source of
/// its contents (e.g. a [`crate::weights::Weights`] store's id), a name
/// within it, and a tag for the layout the contents were packed into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedKey {
    /// Identifies the contents' source.
    pub source: u64,
    /// The contents' name within the source (a `state_dict` key, …).
    pub name: String,
    /// Identifies how the contents were laid out for the device.
    pub layout: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish()
    }
}

impl Context {
    /// Creates a context on the best adapter that matches `opts` (the
    /// default options: the best adapter of any backend, with its own
    /// limits). Reads no environment variable. Blocks on
    /// [`Context::new_async`].
    pub fn new(opts: &ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(opts))
    }

    /// [`Context::new`] with the options [`ContextOptions::from_env`] reads
    /// (`RESINCEPT_BACKEND`, `RESINCEPT_ADAPTER`, `RESINCEPT_LIMITS`,
    /// `RESINCEPT_MAX_STORAGE_BINDING`): what the command line and the
    /// tests use.
    pub fn from_env() -> Result<Self> {
        Self::new(&ContextOptions::from_env()?)
    }

    /// Creates a context on the best adapter that matches `opts`, without
    /// blocking.
    pub async fn new_async(opts: &ContextOptions) -> Result<Self> {
        // Native backends first; OpenGL only when none has an adapter (or
        // when asked for). Probing GL needlessly initialises EGL, which is
        // slow and prints windowing-system noise on headless machines.
        let tries = match opts.backends {
            Some(b) => vec![b],
            None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::GL],
        };
        let mut adapters = Vec::new();
        for backends in tries {
            let instance = make_instance(Some(backends));
            adapters = instance.enumerate_adapters(backends).await;
            if let Some(name) = &opts.adapter_name {
                let needle = name.to_ascii_lowercase();
                adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&needle));
            }
            if !adapters.is_empty() {
                break;
            }
        }
        adapters.sort_by_key(|a| std::cmp::Reverse(adapter_rank(&a.get_info())));
        // The best adapter that can run every kernel; if none can, the
        // best one's shortfall is the error.
        if let Some(k) = adapters
            .iter()
            .position(|a| check_required_limits(&a.get_info(), &a.limits()).is_ok())
        {
            adapters.swap(0, k);
        } else if let Some(best) = adapters.first() {
            check_required_limits(&best.get_info(), &best.limits())?;
        }
        let Some(adapter) = adapters.into_iter().next() else {
            let mut msg = String::from("wgpu found no adapter");
            if let Some(b) = opts.backends {
                msg += &format!(" for backends {b:?}");
            }
            if let Some(n) = &opts.adapter_name {
                msg += &format!(" whose name contains `{n}`");
            }
            msg += ". Install a Vulkan, Metal or DX12 driver (on Debian/Ubuntu: \
                    `apt-get install mesa-vulkan-drivers libvulkan1` gives the lavapipe \
                    software driver), or run with `--device cpu`";
            return Err(Error::NoAdapter(msg));
        };
        let info = adapter.get_info();
        let mut limits = if opts.webgpu_limits {
            wgpu::Limits::default()
        } else {
            adapter.limits()
        };
        if let Some(cap) = opts.max_storage_binding {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(cap);
        }
        let features = adapter.features() & WANTED_FEATURES;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("resincept"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device(format!("{} ({:?}): {e}", info.name, info.backend)))?;
        Ok(Self::assemble(
            adapter, device, queue, info, limits, features,
        ))
    }

    /// Runs resincept on a device the application already has (its
    /// renderer's, say), so that tensors never leave the GPU between the
    /// application's work and the network's: see
    /// [`CompiledGraph::encode`](crate::exec::gpu::CompiledGraph::encode).
    ///
    /// The engine uses the limits and features the device was created
    /// with: the optional features of [`WANTED_FEATURES`] it has, and its
    /// limits, which must meet [`REQUIRED_LIMITS`] (request at least those,
    /// or `adapter.limits()`, when creating the device). An error names every
    /// limit that falls short. Values or weights over the device's binding
    /// limits are found at compile, per layer, as with [`Context::new`].
    ///
    /// Waiting for the GPU (read-backs) waits for resincept's own
    /// submissions only, never for the application's.
    pub fn from_wgpu(
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Self> {
        let info = adapter.get_info();
        let limits = device.limits();
        check_required_limits(&info, &limits)?;
        let features = device.features() & WANTED_FEATURES;
        Ok(Self::assemble(
            adapter, device, queue, info, limits, features,
        ))
    }

    fn assemble(
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
        features: wgpu::Features,
    ) -> Self {
        // Made directly, not through `Context::buffer`: it belongs to the
        // context, not to anything compiled on it.
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Self {
            poller: Poller::new(device.clone()),
            adapter,
            device,
            queue,
            info,
            limits,
            features,
            caches: Caches::default(),
            dummy,
            shared: Mutex::new(HashMap::new()),
        }
    }

    /// True when per-pass GPU timestamps are available.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Number of distinct pipelines created so far.
    pub fn pipeline_count(&self) -> usize {
        self.caches.pipeline_count()
    }

    /// A 16-byte storage buffer to bind where a kernel's optional input
    /// (bias, residual) is absent; the kernel's params say not to read it.
    pub fn dummy_buffer(&self) -> &wgpu::Buffer {
        &self.dummy
    }

    /// Gets or creates the bind group layout for `bindings`.
    pub fn bind_group_layout(&self, bindings: &'static [Binding]) -> wgpu::BindGroupLayout {
        self.caches.bind_group_layout(&self.device, bindings)
    }

    /// Gets or creates the compute pipeline for `module`'s `entry` point with
    /// the given bind group layout and `override` constants. Cached: the
    /// second call with the same key returns the same pipeline. The key holds
    /// no shape. A native-f16 module on a device without `SHADER_F16` is an
    /// [`Error::Shader`] naming the module and the feature.
    pub fn pipeline(
        &self,
        module: Module,
        entry: &'static str,
        bindings: &'static [Binding],
        constants: &[(&'static str, f64)],
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let needs = module.storage.features();
        if !self.features.contains(needs) {
            return Err(Error::Shader {
                shader: module.name(),
                message: format!(
                    "needs the device feature {needs:?}, which {} ({:?}) lacks \
                     (packed f16 storage runs on every device)",
                    self.info.name, self.info.backend
                ),
            });
        }
        self.caches
            .pipeline(&self.device, module, entry, bindings, constants)
    }

    /// True when this device can run `storage`'s modules (native f16 needs
    /// `SHADER_F16`; f32 and packed f16 run everywhere).
    pub fn supports(&self, storage: Storage) -> bool {
        self.features.contains(storage.features())
    }

    /// The buffer shared under `key` while any holder keeps it, else the
    /// one `create` makes (then shared). Returns it and whether it was
    /// created now. Compiled graphs share their parameters this way, so a
    /// model compiled for several batch sizes holds its weights once.
    pub fn shared_buffer(
        &self,
        key: SharedKey,
        create: impl FnOnce() -> Result<wgpu::Buffer>,
    ) -> Result<(Arc<wgpu::Buffer>, bool)> {
        let mut map = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get(&key).and_then(Weak::upgrade) {
            return Ok((b, false));
        }
        map.retain(|_, w| w.strong_count() > 0);
        let b = Arc::new(create()?);
        map.insert(key, Arc::downgrade(&b));
        Ok((b, true))
    }
}
