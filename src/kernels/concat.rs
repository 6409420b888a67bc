//! Concatenation along channels, as a channel-offset copy.
//!
//! Math: `out[n, out_c_offset + c, y, x] = src[n, c, y, x]` for `c < C`.
//! The graph executor makes most concats free (producers write at their
//! channel offset directly); this kernel covers the rest, e.g. a concat input
//! that is also read elsewhere, or a graph input.
//!
//! Layouts: CPU reference NCHW; GPU NHWC (a strided row copy).

use super::{Dispatch, Tolerance};
use crate::context::Context;
use crate::error::{Error, Result};

/// Declared tolerance: bit-exact (a copy).
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 0.0,
    rtol: 0.0,
};

/// One source's placement in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatParams {
    /// Batch size N.
    pub batch: usize,
    /// Spatial size H·W (as a product).
    pub hw: usize,
    /// Channels of the source.
    pub channels: usize,
    /// Channels of the output tensor.
    pub out_c_total: usize,
    /// First channel of the source within the output.
    pub out_c_offset: usize,
}

/// CPU reference over NCHW: copies `src` into its channel range of `out`.
pub fn concat_cpu(p: &ConcatParams, src: &[f32], out: &mut [f32]) {
    for n in 0..p.batch {
        for c in 0..p.channels {
            let s = &src[(n * p.channels + c) * p.hw..][..p.hw];
            out[(n * p.out_c_total + p.out_c_offset + c) * p.hw..][..p.hw].copy_from_slice(s);
        }
    }
}

/// Builds the GPU dispatch over NHWC `src` (N·HW rows of C) into `out`
/// (N·HW rows of out_c_total).
pub fn concat_gpu(
    ctx: &Context,
    label: &str,
    p: &ConcatParams,
    src: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let _ = (ctx, p, src, out);
    Err(Error::Invalid(format!("{label}: concat GPU kernel not built yet")))
}
