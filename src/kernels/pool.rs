//! Pooling: max and average over windows, and global average pooling.
//!
//! Window math follows PyTorch exactly, generalised to four pad sides and
//! dilation as onnxruntime computes them. For each output row `oy`:
//! `start = oy·s − pad_top`, `end = min(start + k·d, H + pad_bottom)`, taps
//! at `start + i·d` (`i < k`) before `end`; the average's divisor is the
//! number of those taps (times the same for columns) when
//! `count_include_pad` — PyTorch's `end − start` for d = 1 — else the
//! number of in-bounds taps. Out-of-bounds taps are ignored by max (as −∞)
//! and read as 0 by the average. A NaN in a window makes its max NaN, as
//! in PyTorch ([`super::max_nan`]). Every window holds an input tap
//! ([`crate::graph::Pool::output_shape`] refuses the attributes otherwise).
//!
//! Output size ([`crate::graph::pool_out_len`]): `floor((H + top + bottom
//! − d·(k − 1) − 1) / s) + 1`, or with `ceil_mode` the ceiling, minus one
//! when the last window would start in the bottom padding (PyTorch's rule:
//! `(out − 1)·s ≥ H + top` drops it).
//!
//! The output can be written at a channel offset into a wider tensor, so a
//! pool branch of an Inception block writes straight into its concat.
//!
//! Layouts: CPU reference NCHW; GPU NHWC.
//!
//! Bindings (`shaders/pool.wgsl`, entries `max_pool`, `avg_pool`,
//! `global_avg_pool`): 0 params uniform (shapes, window, strides, padding,
//! output placement, flags), 1 `x` (read, NHWC), 2 `out` (read-write).
//! The windowed pools run one invocation per two consecutive channels of
//! an output pixel (one packed f16 word where the output index is even; an
//! odd C leaves a lone last channel), channels fastest, 256 per workgroup,
//! grid folded into x and y. The global pool
//! runs one 32×8 workgroup per (n, block of 32 channels): 32 lanes read
//! consecutive channels of a row (coalesced), 8 lanes stride over the H·W
//! rows, and the 8 partial sums are added in workgroup memory in a fixed
//! order. In f16, inputs are converted on load and every sum is f32; the
//! result is rounded once (a max is one of its f16 inputs, exactly).

use super::Tolerance;
use crate::device::{grid_1d, make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::PoolKind;
use crate::shaders::{Shader, Storage};

/// Declared tolerance: max is exact; an average sums at most k·k terms (or
/// H·W for the global pool) in possibly another order.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-6,
    rtol: 1e-5,
};

/// [`TOLERANCE`] for the f16 variants, against [`pool_cpu_f16`] and [`global_avg_pool_cpu_f16`]
/// ([`Tolerance::rounded_to_f16`] explains the derivation).
pub const TOLERANCE_F16: Tolerance = TOLERANCE.rounded_to_f16();

/// The declared tolerance for `storage`.
pub fn tolerance(storage: Storage) -> Tolerance {
    if storage.is_f16() {
        TOLERANCE_F16
    } else {
        TOLERANCE
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pt: u32,
    pl: u32,
    out_c_total: u32,
    out_c_offset: u32,
    count_include_pad: u32,
    total: u32,
    pb: u32,
    pr: u32,
    dh: u32,
    dw: u32,
}

/// The entry point of a window pool in `shaders/pool.wgsl`.
fn window_entry(kind: PoolKind) -> &'static str {
    match kind {
        PoolKind::Max => "max_pool",
        PoolKind::Avg => "avg_pool",
    }
}

/// The entry point of the global average pool.
const GLOBAL_ENTRY: &str = "global_avg_pool";

/// Workgroup memory the global pool declares: 8 rows of 32 partial sums.
/// The window pools declare none.
const GLOBAL_WORKGROUP_BYTES: u32 = 8 * GLOBAL_GC as u32 * 4;

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[Binding::Uniform, Binding::ReadWrite, Binding::ReadWrite];

/// Channel lanes of a global-pool workgroup (`GC` in `pool.wgsl`).
const GLOBAL_GC: usize = 32;

/// Converts `v` for the uniform, or names the limit it exceeds. Indices in
/// the shaders are u32, and window starts are computed in i32.
fn to_u32(label: &str, v: usize) -> Result<u32> {
    if v > i32::MAX as usize {
        return Err(Error::Limit {
            node: label.into(),
            limit: "i32 index in pool shaders",
            needed: v as u64,
            available: i32::MAX as u64,
        });
    }
    Ok(v as u32)
}

/// Shape and options of a windowed pooling launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolParams {
    /// Max or average.
    pub kind: PoolKind,
    /// Batch size N.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Input height H.
    pub in_h: usize,
    /// Input width W.
    pub in_w: usize,
    /// Window (kh, kw).
    pub kernel: [usize; 2],
    /// Stride (sh, sw).
    pub stride: [usize; 2],
    /// Padding per side (every window must keep an input tap).
    pub padding: crate::graph::Padding,
    /// Dilation (dh, dw) between window taps.
    pub dilation: [usize; 2],
    /// PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
    /// PyTorch's `count_include_pad` (average only).
    pub count_include_pad: bool,
    /// Channel count of the tensor the output is written into.
    pub out_c_total: usize,
    /// First channel of this output within that tensor.
    pub out_c_offset: usize,
}

impl PoolParams {
    /// The launch parameters of graph node `pool` on input shape
    /// `[n, c, h, w]`, with the output written at channel `out_c_offset` of
    /// a tensor of `out_c_total` channels.
    pub fn for_node(
        pool: &crate::graph::Pool,
        [n, c, h, w]: [usize; 4],
        out_c_total: usize,
        out_c_offset: usize,
    ) -> Self {
        Self {
            kind: pool.kind,
            batch: n,
            channels: c,
            in_h: h,
            in_w: w,
            kernel: pool.kernel,
            stride: pool.stride,
            padding: pool.padding,
            dilation: pool.dilation,
            ceil_mode: pool.ceil_mode,
            count_include_pad: pool.count_include_pad,
            out_c_total,
            out_c_offset,
        }
    }

    /// The graph node these parameters launch.
    pub fn node(&self) -> crate::graph::Pool {
        crate::graph::Pool {
            kind: self.kind,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }

    /// Output spatial size (OH, OW), by the IR's shape arithmetic
    /// ([`crate::graph::Pool::output_shape`], [`crate::graph::pool_out_len`]).
    pub fn out_hw(&self) -> Result<[usize; 2]> {
        let input = [self.batch, self.channels, self.in_h, self.in_w];
        let [_, _, oh, ow] = self.node().output_shape("pool", input)?;
        Ok([oh, ow])
    }

    /// Checks the invariants: the IR's (nonzero sizes, the dilated window
    /// fits, every window holds an input tap) and the output channel range
    /// fitting the output tensor. `node` names the pool in the error.
    pub fn validate(&self, node: &str) -> Result<()> {
        let input = [self.batch, self.channels, self.in_h, self.in_w];
        self.node().output_shape(node, input)?;
        if self.out_c_offset + self.channels > self.out_c_total {
            return Err(Error::Graph {
                node: node.into(),
                message: "output channel range exceeds the output tensor".into(),
            });
        }
        Ok(())
    }
}

/// CPU reference over NCHW; `out` is (N, out_c_total, OH, OW). Plain
/// loops over every window tap `(start + i·d)`, skipping those at or past
/// the window's end (`min(start + k·d, H + pad_end)`) and, for the sum and
/// the max, those outside the input.
pub fn pool_cpu(p: &PoolParams, x: &[f32], out: &mut [f32]) {
    let [oh, ow] = p.out_hw().expect("pool_cpu: window does not fit");
    let (h, w) = (p.in_h as isize, p.in_w as isize);
    let [kh, kw] = p.kernel;
    let [dh, dw] = [p.dilation[0] as isize, p.dilation[1] as isize];
    let pad = p.padding;
    for n in 0..p.batch {
        for c in 0..p.channels {
            let plane = &x[(n * p.channels + c) * p.in_h * p.in_w..][..p.in_h * p.in_w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let hs = (oy * p.stride[0]) as isize - pad.top as isize;
                    let ws = (ox * p.stride[1]) as isize - pad.left as isize;
                    let he = (hs + kh as isize * dh).min(h + pad.bottom as isize);
                    let we = (ws + kw as isize * dw).min(w + pad.right as isize);
                    let (mut padded_rows, mut padded_cols) = (0usize, 0usize);
                    let mut inside = 0usize;
                    let mut m = f32::NEG_INFINITY;
                    let mut s = 0.0f32;
                    for i in 0..kh as isize {
                        let y = hs + i * dh;
                        if y >= he {
                            break;
                        }
                        padded_rows += 1;
                        padded_cols = 0;
                        for j in 0..kw as isize {
                            let xx = ws + j * dw;
                            if xx >= we {
                                break;
                            }
                            padded_cols += 1;
                            if y < 0 || y >= h || xx < 0 || xx >= w {
                                continue;
                            }
                            let v = plane[(y * w + xx) as usize];
                            inside += 1;
                            m = super::max_nan(m, v);
                            s += v;
                        }
                    }
                    let v = match p.kind {
                        PoolKind::Max => m,
                        PoolKind::Avg => {
                            let div = if p.count_include_pad {
                                padded_rows * padded_cols
                            } else {
                                inside
                            };
                            s / div as f32
                        }
                    };
                    out[((n * p.out_c_total + p.out_c_offset + c) * oh + oy) * ow + ox] = v;
                }
            }
        }
    }
}

/// CPU reference for global average pooling: NCHW (N, C, H, W) → (N, C).
pub fn global_avg_pool_cpu(batch: usize, channels: usize, hw: usize, x: &[f32], out: &mut [f32]) {
    for n in 0..batch {
        for c in 0..channels {
            let s: f32 = x[(n * channels + c) * hw..][..hw].iter().sum();
            out[n * channels + c] = s / hw as f32;
        }
    }
}

/// Builds the GPU dispatch for a windowed pool: `x` NHWC (N, H, W, C),
/// `out` NHWC (N, OH, OW, out_c_total), both stored as `storage` says.
pub fn pool_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &PoolParams,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    p.validate(label)?;
    let [oh, ow] = p.out_hw()?;
    let total = p.batch * oh * ow * p.channels;
    // Invocations: one per pair of channels of each output pixel.
    let pairs = p.batch * oh * ow * p.channels.div_ceil(2);
    // The largest index either side touches must fit too.
    to_u32(label, p.batch * p.in_h * p.in_w * p.channels)?;
    to_u32(label, p.batch * oh * ow * p.out_c_total)?;
    let u = |v: usize| to_u32(label, v);
    let params = Uniform {
        n: u(p.batch)?,
        c: u(p.channels)?,
        h: u(p.in_h)?,
        w: u(p.in_w)?,
        oh: u(oh)?,
        ow: u(ow)?,
        kh: u(p.kernel[0])?,
        kw: u(p.kernel[1])?,
        sh: u(p.stride[0])?,
        sw: u(p.stride[1])?,
        pt: u(p.padding.top)?,
        pl: u(p.padding.left)?,
        pb: u(p.padding.bottom)?,
        pr: u(p.padding.right)?,
        dh: u(p.dilation[0])?,
        dw: u(p.dilation[1])?,
        out_c_total: u(p.out_c_total)?,
        out_c_offset: u(p.out_c_offset)?,
        count_include_pad: p.count_include_pad as u32,
        total: u(pairs)?,
    };
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Pool,
            storage,
            entry: window_entry(p.kind),
            bindings: BINDINGS,
            constants: &[],
            params: &params,
            buffers: &[x.into(), out.into()],
            workgroups: grid_1d(pairs, 256),
            // One compare or add per window tap (padding taps included).
            flops: (total * p.kernel[0] * p.kernel[1]) as u64,
            workgroup_bytes: 0,
        },
    )
}

/// f16 CPU reference: [`pool_cpu`] on `x` rounded to f16 as the GPU stores
/// it, the result rounded once.
pub fn pool_cpu_f16(p: &PoolParams, x: &[f32], out: &mut [f32]) {
    pool_cpu(p, &super::rounded_f16(x), out);
    super::round_f16_in_place(out);
}

/// f16 CPU reference: [`global_avg_pool_cpu`] on `x` rounded to f16, the
/// means rounded once.
pub fn global_avg_pool_cpu_f16(
    batch: usize,
    channels: usize,
    hw: usize,
    x: &[f32],
    out: &mut [f32],
) {
    global_avg_pool_cpu(batch, channels, hw, &super::rounded_f16(x), out);
    super::round_f16_in_place(out);
}

/// Builds the GPU dispatch for global average pooling: `x` NHWC
/// (N, H·W, C) → `out` (N, C).
#[allow(clippy::too_many_arguments)]
pub fn global_avg_pool_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    batch: usize,
    channels: usize,
    hw: usize,
    x: impl Into<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    if batch == 0 || channels == 0 || hw == 0 {
        return Err(Error::Graph {
            node: label.into(),
            message: format!(
                "global average pool over a zero-sized input (N={batch}, C={channels}, H·W={hw})"
            ),
        });
    }
    to_u32(label, batch * hw * channels)?;
    let params = Uniform {
        n: to_u32(label, batch)?,
        c: to_u32(label, channels)?,
        h: to_u32(label, hw)?,
        w: 1,
        oh: 1,
        ow: 1,
        out_c_total: to_u32(label, channels)?,
        ..Uniform::default()
    };
    make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Pool,
            storage,
            entry: GLOBAL_ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &params,
            buffers: &[x.into(), out.into()],
            workgroups: grid_1d(batch * channels.div_ceil(GLOBAL_GC), 1),
            // One add per input element.
            flops: (batch * hw * channels) as u64,
            workgroup_bytes: GLOBAL_WORKGROUP_BYTES,
        },
    )
}

/// The pipelines this module's launchers create: max and average window
/// pools and the global average pool, in each storage mode.
pub fn pipelines() -> Vec<super::PipelineSpec> {
    [
        (window_entry(PoolKind::Max), 0),
        (window_entry(PoolKind::Avg), 0),
        (GLOBAL_ENTRY, GLOBAL_WORKGROUP_BYTES),
    ]
    .into_iter()
    .flat_map(|(entry, workgroup_bytes)| {
        Storage::ALL.map(|storage| super::PipelineSpec {
            shader: Shader::Pool,
            storage,
            entry,
            constants: Vec::new(),
            bindings: BINDINGS,
            workgroup_bytes,
        })
    })
    .collect()
}
