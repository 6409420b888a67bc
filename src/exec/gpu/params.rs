//! Parameters on the device: each node's weights uploaded once, in the
//! layout its kernel reads, and shared between every graph compiled from
//! the same [`Weights`] on the same context (a model compiled for batch 1
//! and for batch 32 holds its weights once).
//!
//! A parameter buffer is shared under (the store's [`Weights::id`], the
//! tensor's key, a tag of its device layout): the tag covers everything
//! the uploaded bytes depend on besides the stored tensors (a conv's
//! packing geometry, the epilogue folded into its scale and shift, f32 or
//! f16), so two graphs share a buffer only when its bytes would be
//! identical.
//!
//! In f16 the conv and linear weights are converted from the store's f32
//! to f16 here, once (round to nearest even). The store holds f16 and bf16
//! checkpoints as f32; f16 → f32 → f16 gives back the stored bits exactly,
//! and bf16 → f32 is exact, so a bf16 checkpoint is rounded to f16 once.
//! Per-channel vectors (scale/shift, biases, batchnorm's four) stay f32.

use super::memory::{limit_check, Alloc};
use crate::device::SharedKey;
use crate::error::Result;
use crate::shaders::Storage;
use crate::weights::Weights;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The parameter buffers a compiled graph uses.
#[derive(Default)]
pub(super) struct Params {
    /// In upload order.
    pub bufs: Vec<Arc<wgpu::Buffer>>,
    /// Bytes of all of them (shared or not): the graph's weight bytes.
    pub bytes: u64,
}

/// A layout tag from anything hashable (deterministic within the process,
/// which is as long as a context lives).
pub(super) fn layout_tag(parts: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl Params {
    /// The buffer for parameter `key` of `node` in layout `tag`, stored as
    /// `stored` says (f32, or f16 converted here, once, from the f32
    /// `make()` gives): the shared one if a graph on this context already
    /// uploaded it from `weights` in that layout and storage, else a new
    /// one holding `make()`'s output (checked against the device's binding
    /// limits, naming the node and key). Returns its index in
    /// [`Params::bufs`].
    #[allow(clippy::too_many_arguments)]
    pub fn upload(
        &mut self,
        alloc: &mut Alloc,
        weights: &Weights,
        node: &str,
        key: &str,
        tag: u64,
        stored: Storage,
        make: impl FnOnce() -> Result<Vec<f32>>,
    ) -> Result<usize> {
        let ctx = alloc.ctx;
        let shared_key = SharedKey {
            source: weights.id(),
            name: key.to_string(),
            // f16 bytes are the same in both f16 modes.
            layout: layout_tag((tag, stored.element_bytes())),
        };
        let (buf, _) = ctx.shared_buffer(shared_key, || {
            let data = make()?;
            let bytes = stored.bytes(data.len());
            limit_check(&ctx.limits, &format!("{node} ({key})"), bytes)?;
            Ok(alloc.init_tensor(key, stored, &data))
        })?;
        self.bytes += buf.size();
        self.bufs.push(buf);
        Ok(self.bufs.len() - 1)
    }
}
