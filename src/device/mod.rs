//! The device layer: everything between the kernels and wgpu, and nothing
//! that knows a kernel.
//!
//! - [`context`]: adapter choice, the device and queue, the limits and
//!   features the engine uses, [`Context::from_wgpu`] for an application's
//!   own device.
//! - [`cache`]: the keyed shader-module, bind-group-layout and pipeline
//!   caches (keys hold a shader, an entry point, the bindings and override
//!   constants: never a shape).
//! - [`dispatch`]: a recorded kernel launch ([`Dispatch`]: cached pipeline,
//!   bind group, grid, and the record of how it was made), the command
//!   lists a run encodes ([`Command`]), and [`make_dispatch`], through which
//!   every kernel builds its launches.
//! - [`buffers`]: buffer ranges ([`Span`]), buffer creation, and read-back
//!   that waits for its own submission only, as a future or blocking.
//! - `trace` (feature `trace`): one run written out as a self-contained
//!   file that another WebGPU implementation can replay.
//!
//! Layering: this module imports the shader table ([`crate::shaders`]) and
//! the error type, never [`crate::kernels`], [`crate::graph`] or
//! [`crate::exec`].

pub mod buffers;
pub mod cache;
pub mod context;
pub mod dispatch;
mod poll;
#[cfg(feature = "trace")]
pub mod trace;

pub use buffers::Span;
pub use cache::Binding;
pub use context::{Context, ContextOptions, SharedKey};
pub use dispatch::{encode_commands, grid_1d, make_dispatch, Command, Dispatch, DispatchSpec};
