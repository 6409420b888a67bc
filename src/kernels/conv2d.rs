//! 2-D convolution with a fused epilogue: the heart of the engine.
//!
//! Math (PyTorch's `conv2d`, cross-correlation), for output channel `o` in
//! group `g = o / (C_out/groups)`:
//!
//! ```text
//! acc[n,o,y,x] = Σ_{c<C_in/groups, i<kh, j<kw}
//!     in[n, g·C_in/groups + c, y·sh − pad_top + i·dh, x·sw − pad_left + j·dw] · w[o, c, i, j]
//! v = acc·scale[o] + shift[o]                  (a folded batchnorm, or a bias)
//! v = v + residual_scale · residual[n,o,y,x]   (when a residual is given)
//! v = clamp(v, lo, hi)                         (when a clamp is set: ReLU, ReLU6, Clip)
//! out[n, out_c_offset + o, y, x] = v           (out has out_c_total channels)
//! ```
//!
//! Out-of-range input taps read zero (asymmetric padding: top, left, bottom,
//! right). `OH = (H + top + bottom − dh·(kh−1) − 1) / sh + 1`, likewise `OW`.
//!
//! Layouts: the CPU reference takes NCHW input/residual/output and OIHW
//! weights, as PyTorch stores them. The GPU kernel takes NHWC tensors and
//! weights repacked once by [`pack_weights`] into `[groups][k_pad][n_pad]`
//! (reduction index k = (i·kw + j)·C_in/groups + c, so consecutive k are
//! contiguous NHWC channels).
//!
//! GPU kernel (`shaders/conv2d.wgsl`): a tiled implicit GEMM, M = N·OH·OW
//! output pixels × C_out/groups channels × K = kh·kw·C_in/groups, groups in
//! the grid's z. A 16×16 workgroup computes a 64×64 (or 128×64, 64×128,
//! 128×128) tile, 4×4 (to 8×8) outputs per invocation, stepping K by 16
//! through double-buffered workgroup memory. A [`Variant`] picks the entry
//! point (`conv2d`, or `conv2d_vec4` for vec4 input loads) and the override
//! constants (`WM`, `WN`, `NBUF`, `MODE`: general, pointwise 1×1, row 1×n,
//! column n×1); [`Variant::choose`] is the launcher's rule. See
//! `docs/KERNELS.md` for the tiling and the measurements behind the rule.
//!
//! Split-K: a conv with too few output tiles to fill a GPU can cut its
//! reduction into slices ([`Launch`], [`split_k_for`]): the conv dispatch
//! (entry `conv2d_split` or `conv2d_vec4_split`) writes each slice's
//! partial sums to an f32 scratch buffer, and `conv2d_splitk_reduce` adds
//! them in slice order and applies the epilogue ([`conv2d_gpu_launch`]).
//!
//! Precision ([`Storage`]): input, packed weights, residual and output are
//! f32 or f16 (the weights converted once at upload); scale and shift stay
//! f32 (a fraction of a percent of the bytes), and so do workgroup memory,
//! the accumulators, the epilogue and split-K's scratch. f16 values are
//! converted to f32 as they are loaded, and the product of two f16 values
//! is exact in f32, so the f16 conv is the f32 conv on f16-rounded input
//! and weights with its result rounded once, which is exactly what
//! [`conv2d_cpu_f16`] computes on the CPU; [`tolerance`] follows.

use super::Tolerance;
use crate::device::{make_dispatch, Binding, Context, Dispatch, DispatchSpec, Span};
use crate::error::{Error, Result};
use crate::graph::Padding;
use crate::shaders::{Shader, Storage};

/// Declared tolerance of the GPU conv against the CPU reference, for
/// reductions of up to [`TOLERANCE_K`] terms (use [`tolerance_for_k`] beyond).
///
/// Both sides accumulate in f32 over K = C_in/groups·kh·kw terms, each
/// output sequentially but in different orders (the CPU in (c, i, j) order
/// with a rounded multiply and add, the GPU in (i, j, c) order with fused
/// multiply-adds). Each step rounds the running sum, whose size grows like
/// √k·σ, so the two differ by a random walk of about ε·σ·K/√8 (σ the spread
/// of one term). For the unit-scale data of the tests (inputs and weights
/// uniform in [−1, 1), scale up to 1.5) that is ~1e-5 at K = 864 (the largest
/// in the kernel tests); the largest difference seen over all test outputs,
/// on lavapipe and on an H100, stays below 1e-4. The relative part covers
/// large outputs; the absolute part covers outputs that cancel to near zero,
/// where the relative part gives nothing.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// The K up to which [`TOLERANCE`] is justified.
pub const TOLERANCE_K: usize = 1024;

/// [`TOLERANCE`] for the f16 variants, against [`conv2d_cpu_f16`]
/// ([`Tolerance::rounded_to_f16`] derives it: the f32 bound on the
/// unrounded sums, then one rounding on each side).
pub const TOLERANCE_F16: Tolerance = TOLERANCE.rounded_to_f16();

/// The declared tolerance for a reduction of `k` terms with tensors
/// stored as `storage` says: [`tolerance_for_k`], rounded to f16 for the
/// f16 modes.
pub fn tolerance(storage: Storage, k: usize) -> Tolerance {
    let t = tolerance_for_k(k);
    if storage.is_f16() {
        t.rounded_to_f16()
    } else {
        t
    }
}

/// [`TOLERANCE`] with the absolute part grown linearly in K beyond
/// [`TOLERANCE_K`], as the error model above predicts (at K = 4608, ResNet's
/// 3×3×512, a near-zero output was seen 1.4e-4 from the reference).
pub fn tolerance_for_k(k: usize) -> Tolerance {
    Tolerance {
        atol: TOLERANCE.atol * (k as f32 / TOLERANCE_K as f32).max(1.0),
        rtol: TOLERANCE.rtol,
    }
}

/// Everything that defines one convolution launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dParams {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C_in (the whole input tensor's channel count).
    pub in_channels: usize,
    /// Input height H.
    pub in_h: usize,
    /// Input width W.
    pub in_w: usize,
    /// Output channels C_out produced by this conv.
    pub out_channels: usize,
    /// Kernel size (kh, kw).
    pub kernel: [usize; 2],
    /// Stride (sh, sw).
    pub stride: [usize; 2],
    /// Padding per side.
    pub padding: Padding,
    /// Dilation (dh, dw).
    pub dilation: [usize; 2],
    /// Groups; divides C_in and C_out.
    pub groups: usize,
    /// `Some(s)`: add `s · residual` after scale/shift. The residual has the
    /// output's shape (N, C_out, OH, OW), densely packed.
    pub residual_scale: Option<f32>,
    /// A clamp last (ReLU is [`crate::graph::Clamp::RELU`]).
    pub clamp: Option<crate::graph::Clamp>,
    /// Channel count of the tensor the output is written into (≥ C_out + offset).
    pub out_c_total: usize,
    /// First channel of this conv's output within that tensor.
    pub out_c_offset: usize,
}

impl Conv2dParams {
    /// A plain conv (no residual, no ReLU, output tensor of its own) with
    /// symmetric padding, stride, dilation 1 and one group.
    pub fn simple(
        batch: usize,
        in_channels: usize,
        in_hw: [usize; 2],
        out_channels: usize,
        kernel: [usize; 2],
    ) -> Self {
        Self {
            batch,
            in_channels,
            in_h: in_hw[0],
            in_w: in_hw[1],
            out_channels,
            kernel,
            stride: [1, 1],
            padding: Padding::default(),
            dilation: [1, 1],
            groups: 1,
            residual_scale: None,
            clamp: None,
            out_c_total: out_channels,
            out_c_offset: 0,
        }
    }

    /// The launch parameters of graph node `conv` on input shape
    /// `[n, c, h, w]`, with the output written at channel `out_c_offset` of
    /// a tensor of `out_c_total` channels. The one place a conv node becomes
    /// kernel parameters (both executors use it).
    pub fn for_node(
        conv: &crate::graph::Conv2d,
        [n, c, h, w]: [usize; 4],
        out_c_total: usize,
        out_c_offset: usize,
    ) -> Self {
        Self {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: conv.out_channels,
            kernel: conv.kernel,
            stride: conv.stride,
            padding: conv.padding,
            dilation: conv.dilation,
            groups: conv.groups,
            residual_scale: conv.residual,
            clamp: conv.clamp,
            out_c_total,
            out_c_offset,
        }
    }

    /// The graph node these parameters launch (its attributes; the
    /// epilogue's batchnorm and branch scale are not the kernel's concern).
    pub fn node(&self) -> crate::graph::Conv2d {
        crate::graph::Conv2d {
            out_channels: self.out_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            bias: false,
            bn: None,
            out_scale: 1.0,
            residual: self.residual_scale,
            clamp: self.clamp,
        }
    }

    /// Output spatial size (OH, OW), by the IR's shape arithmetic
    /// ([`crate::graph::Conv2d::output_shape`], [`crate::graph::conv_out_len`]). Errors
    /// when the attributes are invalid or the window does not fit.
    pub fn out_hw(&self) -> Result<[usize; 2]> {
        let input = [self.batch, self.in_channels, self.in_h, self.in_w];
        let [_, _, oh, ow] = self.node().output_shape("conv2d", input)?;
        Ok([oh, ow])
    }

    /// Checks the invariants: the IR's (nonzero sizes, groups divide the
    /// channels, the window fits) and the output channel range fitting the
    /// output tensor. `node` names the conv in the error.
    pub fn validate(&self, node: &str) -> Result<()> {
        let input = [self.batch, self.in_channels, self.in_h, self.in_w];
        self.node().output_shape(node, input)?;
        if self.out_c_offset + self.out_channels > self.out_c_total {
            return Err(Error::Graph {
                node: node.into(),
                message: format!(
                    "output channels {}..{} exceed the output tensor's {} channels",
                    self.out_c_offset,
                    self.out_c_offset + self.out_channels,
                    self.out_c_total
                ),
            });
        }
        Ok(())
    }

    /// Multiply-adds performed (the FLOP count is twice this).
    pub fn macs(&self) -> u64 {
        let [oh, ow] = self.out_hw().unwrap_or([0, 0]);
        (self.batch * self.out_channels * oh * ow) as u64
            * (self.in_channels / self.groups.max(1) * self.kernel[0] * self.kernel[1]) as u64
    }
}

/// CPU reference: plain nested loops over NCHW input, OIHW weights.
///
/// `scale` and `shift` have C_out entries; `residual` (when
/// `p.residual_scale` is set) is NCHW (N, C_out, OH, OW); `out` is NCHW
/// (N, out_c_total, OH, OW) and only channels `out_c_offset..+C_out` are written.
///
/// Every output sums its terms in the order (input channel, tap row, tap
/// column), skipping taps that fall in the padding. The loops visit one
/// whole output plane per term, so the innermost loop runs over contiguous
/// output columns (fast enough for the golden model tests) without changing
/// that order.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_cpu(
    p: &Conv2dParams,
    input: &[f32],
    weight: &[f32],
    scale: &[f32],
    shift: &[f32],
    residual: Option<&[f32]>,
    out: &mut [f32],
) {
    let [oh, ow] = p.out_hw().expect("conv2d_cpu: window does not fit");
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let [kh, kw] = p.kernel;
    let plane = p.in_h * p.in_w;
    let mut acc = vec![0.0f32; oh * ow];
    for n in 0..p.batch {
        for o in 0..p.out_channels {
            let g = o / cout_g;
            acc.fill(0.0);
            for c in 0..cin_g {
                let ci = g * cin_g + c;
                let src = &input[(n * p.in_channels + ci) * plane..][..plane];
                for i in 0..kh {
                    for j in 0..kw {
                        let wv = weight[((o * cin_g + c) * kh + i) * kw + j];
                        // Output columns whose tap lands inside the row.
                        let (x0, x1) =
                            valid_range(ow, p.stride[1], j * p.dilation[1], p.padding.left, p.in_w);
                        for y in 0..oh {
                            let iy = (y * p.stride[0] + i * p.dilation[0]) as isize
                                - p.padding.top as isize;
                            if iy < 0 || iy >= p.in_h as isize {
                                continue;
                            }
                            let row = &src[iy as usize * p.in_w..][..p.in_w];
                            let dst = &mut acc[y * ow..][..ow];
                            for (x, d) in (x0..x1).zip(&mut dst[x0..x1]) {
                                let ix = x * p.stride[1] + j * p.dilation[1] - p.padding.left;
                                *d += row[ix] * wv;
                            }
                        }
                    }
                }
            }
            for y in 0..oh {
                for x in 0..ow {
                    let mut v = acc[y * ow + x] * scale[o] + shift[o];
                    if let (Some(rs), Some(res)) = (p.residual_scale, residual) {
                        v += rs * res[((n * p.out_channels + o) * oh + y) * ow + x];
                    }
                    v = super::clamp_opt(v, p.clamp);
                    out[((n * p.out_c_total + p.out_c_offset + o) * oh + y) * ow + x] = v;
                }
            }
        }
    }
}

/// f16 CPU reference: [`conv2d_cpu`] on the input, the weights and the
/// residual rounded to f16 as the GPU stores them (scale and shift stay
/// f32), f32 accumulation, and the written outputs rounded once.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_cpu_f16(
    p: &Conv2dParams,
    input: &[f32],
    weight: &[f32],
    scale: &[f32],
    shift: &[f32],
    residual: Option<&[f32]>,
    out: &mut [f32],
) {
    let (input, weight) = (super::rounded_f16(input), super::rounded_f16(weight));
    let residual = residual.map(super::rounded_f16);
    conv2d_cpu(p, &input, &weight, scale, shift, residual.as_deref(), out);
    super::round_f16_in_place(out);
}

/// The output positions `x0..x1` (of `out` positions, stride `stride`) whose
/// input coordinate `x·stride + tap − pad` lies in `0..extent`.
fn valid_range(out: usize, stride: usize, tap: usize, pad: usize, extent: usize) -> (usize, usize) {
    // x·stride + tap ≥ pad  ⇔  x ≥ ceil((pad − tap) / stride)
    let x0 = pad.saturating_sub(tap).div_ceil(stride);
    // x·stride + tap − pad < extent  ⇔  x < ceil((extent + pad − tap) / stride)
    let x1 = (extent + pad).saturating_sub(tap).div_ceil(stride);
    (x0.min(out), x1.min(out).max(x0.min(out)))
}

/// Reduction depth of one k-tile (`BK` in the shader).
pub const BK: usize = 16;

/// Pointwise convs with at least this many reduction terms (K) take the
/// 128×64 tile when there are enough tiles (see [`Variant::choose`]).
pub const TALL_TILE_MIN_K: usize = 256;

/// The fewest 128×64 tiles for which [`Variant::choose`] takes them.
pub const TALL_TILE_MIN_TILES: usize = 64;

/// How the shader turns a reduction index k into an input tap
/// (`MODE` override constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapMode {
    /// Any kernel: k → (i, j, c) with two divisions, both image bounds
    /// checked per tap.
    General = 0,
    /// 1×1 kernel (any stride or padding): k is the channel; the tap is the
    /// row's own pixel, checked once per row. A plain GEMM over NHWC.
    Pointwise = 1,
    /// kh = 1 (Inception's 1×n): k → (j, c), only x checked per tap.
    Row = 2,
    /// kw = 1 (Inception's n×1): k → (i, c), only y checked per tap.
    Column = 3,
}

impl TapMode {
    /// The cheapest mode that is valid for `kernel`.
    pub fn for_kernel(kernel: [usize; 2]) -> Self {
        match kernel {
            [1, 1] => TapMode::Pointwise,
            [1, _] => TapMode::Row,
            [_, 1] => TapMode::Column,
            _ => TapMode::General,
        }
    }

    /// True when this mode computes `kernel` correctly.
    pub fn supports(self, kernel: [usize; 2]) -> bool {
        match self {
            TapMode::General => true,
            TapMode::Pointwise => kernel == [1, 1],
            TapMode::Row => kernel[0] == 1,
            TapMode::Column => kernel[1] == 1,
        }
    }
}

/// One specialisation of the conv kernel: entry point plus override
/// constants. Chosen by [`Variant::choose`]; tests may force any valid one
/// through [`conv2d_gpu_variant`].
///
/// The workgroup is always 16×16 invocations computing a
/// `(16·wm) × (16·wn)` tile of the output (pixels × channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Entry `conv2d_vec4` (A read as vec4; needs C_in % 4 == 0 and
    /// C_in/groups % 4 == 0) instead of `conv2d` (A read per f32).
    pub vec4: bool,
    /// Tap decode (`MODE`).
    pub mode: TapMode,
    /// Output pixels per invocation, 4 or 8 (`WM`; tile height 16·wm).
    pub wm: u32,
    /// Output channels per invocation, 4 or 8 (`WN`; tile width 16·wn).
    pub wn: u32,
    /// Workgroup buffers per operand, 1 or 2 (`NBUF`).
    pub nbuf: u32,
}

impl Variant {
    /// Bytes of workgroup memory this variant declares.
    pub fn workgroup_bytes(&self) -> u32 {
        let bk = BK as u32;
        let a = 16 * self.wm * bk;
        let b = bk * 16 * self.wn;
        self.nbuf * (a + b) * 4
    }

    /// Output tile (pixels, channels) of one workgroup.
    pub fn tile(&self) -> [usize; 2] {
        [16 * self.wm as usize, 16 * self.wn as usize]
    }

    /// Workgroups needed per group for `p`.
    pub fn tiles_per_group(&self, p: &Conv2dParams) -> usize {
        let [oh, ow] = p.out_hw().unwrap_or([0, 0]);
        let m = p.batch * oh * ow;
        let [bm, bn] = self.tile();
        m.div_ceil(bm) * (p.out_channels / p.groups).div_ceil(bn)
    }

    /// The entry point's name in `shaders/conv2d.wgsl`.
    pub fn entry(&self) -> &'static str {
        if self.vec4 {
            "conv2d_vec4"
        } else {
            "conv2d"
        }
    }

    /// The entry point of the split-K slices (raw f32 partial sums).
    pub fn split_entry(&self) -> &'static str {
        if self.vec4 {
            "conv2d_vec4_split"
        } else {
            "conv2d_split"
        }
    }

    /// Checks that this variant computes `p` and fits a workgroup-memory
    /// budget of `max_workgroup_bytes`.
    pub fn check(&self, node: &str, p: &Conv2dParams, max_workgroup_bytes: u32) -> Result<()> {
        let bad = |m: String| {
            Err(Error::Invalid(format!(
                "{node}: conv2d variant {self:?}: {m}"
            )))
        };
        if !matches!(self.wm, 4 | 8) || !matches!(self.wn, 4 | 8) {
            return bad("wm and wn must be 4 or 8".into());
        }
        if !matches!(self.nbuf, 1 | 2) {
            return bad("nbuf must be 1 or 2".into());
        }
        if !self.mode.supports(p.kernel) {
            return bad(format!("mode cannot compute a {:?} kernel", p.kernel));
        }
        if self.vec4 && !vec4_ok(p) {
            return bad(format!(
                "vec4 loads need C_in ({}) and C_in/groups ({}) divisible by 4",
                p.in_channels,
                p.in_channels / p.groups
            ));
        }
        if self.workgroup_bytes() > max_workgroup_bytes {
            return Err(Error::Limit {
                node: node.into(),
                limit: "max_compute_workgroup_storage_size",
                needed: self.workgroup_bytes() as u64,
                available: max_workgroup_bytes as u64,
            });
        }
        Ok(())
    }

    /// The launcher's choice for `p` on a device with `max_workgroup_bytes`
    /// of workgroup memory: vec4 loads when the channels allow, the
    /// cheapest tap mode, double-buffered when it fits, and the 64×64 tile
    /// (4×4 per invocation) except for pointwise convs with
    /// K ≥ [`TALL_TILE_MIN_K`] and at least [`TALL_TILE_MIN_TILES`] 128×64
    /// tiles, which take 128×64.
    ///
    /// Measured on an H100 (Vulkan) over the ResNet-50 and Inception v3
    /// layers at batch 1 and 32 (`bench_layers` in the conv2d tests): 64×64
    /// was the fastest tile or within about 10% of it almost everywhere,
    /// 128×128 (8×8 per invocation) was never the fastest, and 128×64 won
    /// by 10–25% only on deep pointwise convs with many tiles. Vector A
    /// loads gained about 6%, the specialised tap modes about 15%, and
    /// double buffering about 1%.
    pub fn choose(node: &str, p: &Conv2dParams, max_workgroup_bytes: u32) -> Result<Self> {
        Self::choose_with(node, p, max_workgroup_bytes, Some(TALL_TILE_MIN_K))
    }

    /// [`Variant::choose`] with the 128×64 tile's K threshold given:
    /// pointwise convs with K ≥ `tall_min_k` (and enough tiles) take it,
    /// `None` never (to time the rule on a GPU; `bench --tall-tile`).
    pub fn choose_with(
        node: &str,
        p: &Conv2dParams,
        max_workgroup_bytes: u32,
        tall_min_k: Option<usize>,
    ) -> Result<Self> {
        let k = p.kernel[0] * p.kernel[1] * (p.in_channels / p.groups);
        let vec4 = vec4_ok(p);
        let mode = TapMode::for_kernel(p.kernel);
        let with = |wm, wn| Self::fitted(vec4, mode, wm, wn, max_workgroup_bytes);
        if mode == TapMode::Pointwise && tall_min_k.is_some_and(|min| k >= min) {
            if let Some(v) = with(8, 4) {
                if v.tiles_per_group(p) * p.groups >= TALL_TILE_MIN_TILES {
                    return Ok(v);
                }
            }
        }
        with(4, 4).ok_or_else(|| Error::Limit {
            node: node.into(),
            limit: "max_compute_workgroup_storage_size",
            needed: Variant {
                vec4,
                mode,
                wm: 4,
                wn: 4,
                nbuf: 1,
            }
            .workgroup_bytes() as u64,
            available: max_workgroup_bytes as u64,
        })
    }
}

impl Variant {
    /// The `wm × wn` tile with `vec4` loads and `mode`, double-buffered
    /// when that fits `max_workgroup_bytes`, else single-buffered, else
    /// `None`: the launcher's one rule for the buffering.
    fn fitted(
        vec4: bool,
        mode: TapMode,
        wm: u32,
        wn: u32,
        max_workgroup_bytes: u32,
    ) -> Option<Self> {
        [2, 1].into_iter().find_map(|nbuf| {
            let v = Variant {
                vec4,
                mode,
                wm,
                wn,
                nbuf,
            };
            (v.workgroup_bytes() <= max_workgroup_bytes).then_some(v)
        })
    }

    /// Every variant [`Variant::choose`] can return on a device with
    /// `max_workgroup_bytes` of workgroup memory, by the same rule: each
    /// load width and tap mode with the 64×64 tile, and pointwise modes
    /// with the 128×64 tile too, each as buffered as fits.
    pub fn launcher_variants(max_workgroup_bytes: u32) -> Vec<Self> {
        let mut out = Vec::new();
        for vec4 in [false, true] {
            for mode in [
                TapMode::General,
                TapMode::Pointwise,
                TapMode::Row,
                TapMode::Column,
            ] {
                let mut tiles = vec![(4, 4)];
                if mode == TapMode::Pointwise {
                    tiles.push((8, 4));
                }
                out.extend(
                    tiles.into_iter().filter_map(|(wm, wn)| {
                        Self::fitted(vec4, mode, wm, wn, max_workgroup_bytes)
                    }),
                );
            }
        }
        out
    }

    /// Its override constants (`WM`, `WN`, `NBUF`, `MODE`).
    pub fn constants(&self) -> [(&'static str, f64); 4] {
        [
            ("WM", self.wm as f64),
            ("WN", self.wn as f64),
            ("NBUF", self.nbuf as f64),
            ("MODE", self.mode as u32 as f64),
        ]
    }
}

/// Entry point of the direct grouped conv.
const DIRECT_ENTRY: &str = "conv2d_grouped";

/// Entry point of the split-K reduction.
const REDUCE_ENTRY: &str = "conv2d_splitk_reduce";

/// The pipelines the conv launcher can create on a device with `limits`,
/// in each storage mode: every [`Variant::launcher_variants`] tile, unsplit
/// and as split-K slices, the direct grouped conv and the split-K
/// reduction.
pub fn pipelines(limits: &wgpu::Limits) -> Vec<super::PipelineSpec> {
    let mut out = Vec::new();
    for storage in Storage::ALL {
        for v in Variant::launcher_variants(limits.max_compute_workgroup_storage_size) {
            for entry in [v.entry(), v.split_entry()] {
                out.push(super::PipelineSpec {
                    shader: Shader::Conv2d,
                    storage,
                    entry,
                    constants: v.constants().to_vec(),
                    bindings: BINDINGS,
                    workgroup_bytes: v.workgroup_bytes(),
                });
            }
        }
        // The direct conv and the reduce use no workgroup memory.
        for entry in [DIRECT_ENTRY, REDUCE_ENTRY] {
            out.push(super::PipelineSpec {
                shader: Shader::Conv2d,
                storage,
                entry,
                constants: Vec::new(),
                bindings: BINDINGS,
                workgroup_bytes: 0,
            });
        }
    }
    out
}

fn vec4_ok(p: &Conv2dParams) -> bool {
    p.in_channels.is_multiple_of(4) && (p.in_channels / p.groups).is_multiple_of(4)
}

/// Packed weight geometry: (K, k_pad, n_pad) with K = kh·kw·C_in/groups,
/// k_pad = K rounded up to [`BK`], n_pad = C_out/groups rounded up to 4.
fn packed_dims(p: &Conv2dParams) -> (usize, usize, usize) {
    let k = p.kernel[0] * p.kernel[1] * (p.in_channels / p.groups);
    (
        k,
        k.div_ceil(BK) * BK,
        (p.out_channels / p.groups).div_ceil(4) * 4,
    )
}

/// Length in f32 of [`pack_weights`]' output: groups · k_pad · n_pad.
pub fn packed_weight_len(p: &Conv2dParams) -> usize {
    let (_, k_pad, n_pad) = packed_dims(p);
    p.groups * k_pad * n_pad
}

/// Repacks PyTorch OIHW weights into the GPU kernel's layout (done once, at
/// load): per group a `[k_pad][n_pad]` matrix, row k = (i·kw + j)·C_in/groups + c
/// (tap row, tap column, input channel: consecutive k are consecutive NHWC
/// channels), column n = output channel within the group. Rows K..k_pad and
/// columns C_out/groups..n_pad are zero, so the shader reads whole vec4s
/// and whole k-tiles without bounds checks on k.
///
/// `weight_oihw` has C_out · C_in/groups · kh · kw entries.
pub fn pack_weights(p: &Conv2dParams, weight_oihw: &[f32]) -> Vec<f32> {
    let (_, k_pad, n_pad) = packed_dims(p);
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let [kh, kw] = p.kernel;
    assert_eq!(
        weight_oihw.len(),
        p.out_channels * cin_g * kh * kw,
        "pack_weights: OIHW weight length"
    );
    let mut out = vec![0.0f32; p.groups * k_pad * n_pad];
    for g in 0..p.groups {
        for n in 0..cout_g {
            let o = g * cout_g + n;
            for c in 0..cin_g {
                for i in 0..kh {
                    for j in 0..kw {
                        let k = (i * kw + j) * cin_g + c;
                        out[(g * k_pad + k) * n_pad + n] =
                            weight_oihw[((o * cin_g + c) * kh + i) * kw + j];
                    }
                }
            }
        }
    }
    out
}

/// The params uniform; mirrors `struct Params` in `shaders/conv2d.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Uniform {
    in_h: u32,
    in_w: u32,
    in_c: u32,
    cin_g: u32,
    out_h: u32,
    out_w: u32,
    cout: u32,
    cout_g: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pad_t: u32,
    pad_l: u32,
    m_total: u32,
    k_total: u32,
    n_pad: u32,
    k_tiles: u32,
    out_c_total: u32,
    out_c_offset: u32,
    tiles_n: u32,
    tiles_per_group: u32,
    has_res: u32,
    clamp: u32,
    res_scale: f32,
    k_split: u32,
    kt_per_split: u32,
    groups: u32,
    lo: f32,
    hi: f32,
}

/// Activation bindings are read-write even where only read (they share
/// one arena buffer with the output; see `docs/ARCHITECTURE.md` §3).
const BINDINGS: &[Binding] = &[
    Binding::Uniform,
    Binding::ReadWrite,
    Binding::Read,
    Binding::Read,
    Binding::Read,
    Binding::ReadWrite,
    Binding::ReadWrite,
];

/// Split-K aims for at least this many workgroups per conv: fewer leave
/// most of a large GPU idle (ResNet-50's last 3×3 conv at batch 1 has 8
/// output tiles of 64×64).
pub const SPLIT_K_TARGET_WORKGROUPS: usize = 256;

/// The fewest k-tiles (of [`BK`] reduction terms) one split-K slice
/// multiplies, so that a slice's work outweighs writing its partial sums.
pub const SPLIT_K_MIN_TILES_PER_SLICE: usize = 8;

/// The most slices split-K cuts K into.
pub const SPLIT_K_MAX: usize = 32;

/// How one conv is launched: the kernel [`Variant`], and how many slices
/// the reduction K is cut into (`splits`; 1 = not split); or, with
/// `direct`, the direct conv (`conv2d_grouped`) instead of the tiled one.
///
/// With `splits > 1` the conv dispatch runs `groups · splits` workgroup
/// layers, slice `s` multiplying k-tiles `s·t .. (s+1)·t` (t = ⌈k_tiles /
/// splits⌉) and writing raw partial sums to a scratch buffer
/// `[splits][M][C_out]`; a second dispatch (`conv2d_splitk_reduce`) adds
/// the slices in order, applies the epilogue and writes the output. A
/// split is valid when no slice is empty: `⌈k_tiles / t⌉ == splits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Launch {
    /// The conv kernel's specialisation.
    pub variant: Variant,
    /// Slices of K (1 = the conv writes its output directly).
    pub splits: usize,
    /// The direct conv (entry `conv2d_grouped`: one invocation per output
    /// pixel and 4 channels, no tile) instead of the tiled GEMM; `variant`
    /// is then unused and `splits` must be 1. The launcher takes it for
    /// grouped convs with at most [`DIRECT_MAX_CHANNELS_PER_GROUP`] output
    /// channels per group, where the tile would be mostly padding.
    pub direct: bool,
}

/// The most output channels per group for which the executor has
/// [`Launch::choose`] take the direct conv by default: a 64-wide tile is
/// then at most a quarter used. ResNeXt
/// 32x4d's and 64x4d's 3×3 convs have 4, 8, 16 and 32 per group by stage.
/// Reasoned, not yet timed on a GPU.
pub const DIRECT_MAX_CHANNELS_PER_GROUP: usize = 16;

/// Number of k-tiles (of [`BK`]) in `p`'s reduction.
pub fn k_tiles(p: &Conv2dParams) -> usize {
    packed_dims(p).1 / BK
}

/// The launcher's split of K for `p` under variant `v`: 1 when the conv
/// already has `target_workgroups` output tiles (the executor's default is
/// [`SPLIT_K_TARGET_WORKGROUPS`]), else enough slices to reach that many
/// workgroups, each of at least
/// [`SPLIT_K_MIN_TILES_PER_SLICE`] k-tiles, at most [`SPLIT_K_MAX`], with a
/// scratch buffer of at most `max_scratch_bytes`, rounded so that no slice
/// is empty.
pub fn split_k_for(
    p: &Conv2dParams,
    v: &Variant,
    max_scratch_bytes: u64,
    target_workgroups: usize,
) -> usize {
    let workgroups = v.tiles_per_group(p) * p.groups;
    if workgroups == 0 || workgroups >= target_workgroups {
        return 1;
    }
    let kt = k_tiles(p);
    let [oh, ow] = p.out_hw().unwrap_or([0, 0]);
    let slice_bytes = (p.batch * oh * ow * p.out_channels) as u64 * 4;
    let by_scratch = (max_scratch_bytes / slice_bytes.max(1)) as usize;
    let s = target_workgroups
        .div_ceil(workgroups)
        .min(kt / SPLIT_K_MIN_TILES_PER_SLICE)
        .min(SPLIT_K_MAX)
        .min(by_scratch)
        .max(1);
    // Even the slices out: the fewest that keep ⌈kt / s⌉ tiles per slice.
    kt.div_ceil(kt.div_ceil(s))
}

impl Launch {
    /// The launcher's choice for `p` on a device with `limits`: the direct
    /// conv for a grouped conv with at most `direct_max` output channels
    /// per group (the executor's default is
    /// [`DIRECT_MAX_CHANNELS_PER_GROUP`]; 0 never), else
    /// [`Variant::choose`], then, with a `split_target` of workgroups,
    /// [`split_k_for`] (scratch within the storage binding limit); K is not
    /// split without one.
    pub fn choose(
        node: &str,
        p: &Conv2dParams,
        limits: &wgpu::Limits,
        split_target: Option<usize>,
        direct_max: usize,
    ) -> Result<Self> {
        Self::choose_with(
            node,
            p,
            limits,
            split_target,
            direct_max,
            Some(TALL_TILE_MIN_K),
        )
    }

    /// [`Launch::choose`] with the tile rule's 128×64 threshold given (see
    /// [`Variant::choose_with`]; the executor's default is
    /// `Some(`[`TALL_TILE_MIN_K`]`)`).
    pub fn choose_with(
        node: &str,
        p: &Conv2dParams,
        limits: &wgpu::Limits,
        split_target: Option<usize>,
        direct_max: usize,
        tall_min_k: Option<usize>,
    ) -> Result<Self> {
        let variant = Variant::choose_with(
            node,
            p,
            limits.max_compute_workgroup_storage_size,
            tall_min_k,
        )?;
        let max_scratch = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let direct = p.groups > 1 && p.out_channels / p.groups <= direct_max;
        let splits = match split_target {
            Some(t) if !direct => split_k_for(p, &variant, max_scratch, t),
            _ => 1,
        };
        Ok(Launch {
            variant,
            splits,
            direct,
        })
    }

    /// f32 elements of the scratch buffer this launch needs:
    /// `splits · M · C_out`, or 0 when K is not split.
    pub fn scratch_len(&self, p: &Conv2dParams) -> usize {
        if self.splits <= 1 {
            return 0;
        }
        let [oh, ow] = p.out_hw().unwrap_or([0, 0]);
        self.splits * p.batch * oh * ow * p.out_channels
    }
}

/// Builds the GPU dispatch with the launcher's [`Variant::choose`] (K not
/// split; see [`conv2d_gpu_launch`] for split-K).
/// `input` is NHWC (N, H, W, C_in); `weight` holds [`pack_weights`]'
/// output; `scale`/`shift` hold C_out f32 each; `residual` (required exactly
/// when `p.residual_scale` is set) is NHWC (N, OH, OW, C_out); `out` is NHWC
/// (N, OH, OW, out_c_total). `out` may alias none of the inputs.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_gpu<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &Conv2dParams,
    input: impl Into<Span<'a>>,
    weight: impl Into<Span<'a>>,
    scale: impl Into<Span<'a>>,
    shift: impl Into<Span<'a>>,
    residual: Option<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    p.validate(label)?;
    let v = Variant::choose(label, p, ctx.limits.max_compute_workgroup_storage_size)?;
    conv2d_gpu_variant(
        ctx, label, storage, p, v, input, weight, scale, shift, residual, out,
    )
}

/// [`conv2d_gpu`] with an explicit [`Variant`] (checked against `p` and the
/// device), for tests and tuning.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_gpu_variant<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &Conv2dParams,
    v: Variant,
    input: impl Into<Span<'a>>,
    weight: impl Into<Span<'a>>,
    scale: impl Into<Span<'a>>,
    shift: impl Into<Span<'a>>,
    residual: Option<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Dispatch> {
    let launch = Launch {
        variant: v,
        splits: 1,
        direct: false,
    };
    let mut d = conv2d_gpu_launch(
        ctx, label, storage, p, launch, input, weight, scale, shift, residual, None, out,
    )?;
    Ok(d.remove(0))
}

/// The conv as `launch` says: one dispatch, or with `launch.splits > 1` two
/// (the sliced conv into `scratch`, then `{label}:splitk_reduce` into
/// `out`), to be encoded in order. Buffers as in [`conv2d_gpu`]; `scratch`
/// (required when split, at least [`Launch::scratch_len`] f32) may be shared
/// by every conv of a graph, since each reduce reads it before the next conv
/// writes it. Errors name `label` for an invalid variant or split.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_gpu_launch<'a>(
    ctx: &Context,
    label: &str,
    storage: Storage,
    p: &Conv2dParams,
    launch: Launch,
    input: impl Into<Span<'a>>,
    weight: impl Into<Span<'a>>,
    scale: impl Into<Span<'a>>,
    shift: impl Into<Span<'a>>,
    residual: Option<Span<'a>>,
    scratch: Option<Span<'a>>,
    out: impl Into<Span<'a>>,
) -> Result<Vec<Dispatch>> {
    let (input, weight, scale, shift, out) = (
        input.into(),
        weight.into(),
        scale.into(),
        shift.into(),
        out.into(),
    );
    let v = launch.variant;
    p.validate(label)?;
    if launch.direct {
        if launch.splits != 1 {
            return Err(Error::Invalid(format!(
                "{label}: the direct conv does not split K ({} slices asked)",
                launch.splits
            )));
        }
    } else {
        v.check(label, p, ctx.limits.max_compute_workgroup_storage_size)?;
    }
    if p.residual_scale.is_some() != residual.is_some() {
        return Err(Error::Invalid(format!(
            "{label}: residual_scale is {:?} but a residual buffer was {}given",
            p.residual_scale,
            if residual.is_some() { "" } else { "not " }
        )));
    }
    let [oh, ow] = p.out_hw()?;
    let (k, k_pad, n_pad) = packed_dims(p);
    let m = p.batch * oh * ow;
    let cout_g = p.out_channels / p.groups;
    let kt = k_pad / BK;
    let splits = launch.splits;
    let per_slice = kt.div_ceil(splits.max(1));
    if splits == 0 || splits > kt || kt.div_ceil(per_slice) != splits {
        return Err(Error::Invalid(format!(
            "{label}: split-K into {splits} slices of {kt} k-tiles leaves a slice empty \
             (valid: 1..={kt} with ⌈{kt} / ⌈{kt} / splits⌉⌉ == splits)"
        )));
    }
    let scratch = match (splits > 1, scratch) {
        (false, _) => None,
        (true, Some(s)) => Some(s),
        (true, None) => {
            return Err(Error::Invalid(format!(
                "{label}: split-K into {splits} slices needs a scratch buffer"
            )))
        }
    };

    // Every buffer must hold its tensor, every index must fit a u32, and
    // every binding must fit the device's binding limit.
    let max_binding = ctx.limits.max_storage_buffer_binding_size;
    // (what, span, elements, how stored: the tensors as `storage` says,
    // the per-channel vectors and the scratch f32).
    let f32s = Storage::F32;
    let tensors: [(&str, Option<Span>, usize, Storage); 7] = [
        (
            "input",
            Some(input),
            p.batch * p.in_h * p.in_w * p.in_channels,
            storage,
        ),
        ("packed weight", Some(weight), packed_weight_len(p), storage),
        ("scale", Some(scale), p.out_channels, f32s),
        ("shift", Some(shift), p.out_channels, f32s),
        ("residual", residual, m * p.out_channels, storage),
        ("output", Some(out), m * p.out_c_total, storage),
        ("split-K scratch", scratch, launch.scratch_len(p), f32s),
    ];
    for (what, buf, elems, stored) in tensors {
        let Some(buf) = buf else { continue };
        super::index_u32(&format!("{label} ({what})"), elems)?;
        let bytes = stored.bytes(elems);
        if buf.size < bytes {
            return Err(Error::Shape {
                node: label.into(),
                expected: format!(
                    "{what} buffer of at least {bytes} bytes ({elems} {})",
                    stored.name()
                ),
                actual: format!("{} bytes", buf.size),
            });
        }
        if buf.size > max_binding {
            return Err(Error::Limit {
                node: format!("{label} ({what})"),
                limit: "max_storage_buffer_binding_size",
                needed: buf.size,
                available: max_binding,
            });
        }
    }

    let tiles_per_group = v.tiles_per_group(p);
    let workgroups = if launch.direct {
        crate::device::grid_1d(m * p.groups * n_pad / 4, 256)
    } else {
        let mut w = crate::device::grid_1d(tiles_per_group, 1);
        w[2] = (p.groups * splits) as u32;
        w
    };
    let (clamp, lo, hi) = super::clamp_uniform(p.clamp);
    let u = Uniform {
        in_h: p.in_h as u32,
        in_w: p.in_w as u32,
        in_c: p.in_channels as u32,
        cin_g: (p.in_channels / p.groups) as u32,
        out_h: oh as u32,
        out_w: ow as u32,
        cout: p.out_channels as u32,
        cout_g: cout_g as u32,
        kh: p.kernel[0] as u32,
        kw: p.kernel[1] as u32,
        sh: p.stride[0] as u32,
        sw: p.stride[1] as u32,
        dh: p.dilation[0] as u32,
        dw: p.dilation[1] as u32,
        pad_t: p.padding.top as u32,
        pad_l: p.padding.left as u32,
        m_total: m as u32,
        k_total: k as u32,
        n_pad: n_pad as u32,
        k_tiles: (k_pad / BK) as u32,
        out_c_total: p.out_c_total as u32,
        out_c_offset: p.out_c_offset as u32,
        tiles_n: cout_g.div_ceil(v.tile()[1]) as u32,
        tiles_per_group: tiles_per_group as u32,
        has_res: p.residual_scale.is_some() as u32,
        clamp,
        res_scale: p.residual_scale.unwrap_or(0.0),
        k_split: splits as u32,
        kt_per_split: per_slice as u32,
        groups: p.groups as u32,
        lo,
        hi,
    };
    let tiled = v.constants();
    let conv = make_dispatch(
        ctx,
        DispatchSpec {
            label: label.into(),
            shader: Shader::Conv2d,
            storage,
            entry: if launch.direct {
                DIRECT_ENTRY
            } else if splits > 1 {
                v.split_entry()
            } else {
                v.entry()
            },
            bindings: BINDINGS,
            constants: if launch.direct { &[] } else { &tiled },
            params: &u,
            buffers: &[
                input,
                weight,
                scale,
                shift,
                residual
                    .filter(|_| scratch.is_none())
                    .unwrap_or(Span::whole(ctx.dummy_buffer())),
                scratch.unwrap_or(out),
            ],
            workgroups,
            flops: 2 * p.macs(),
            workgroup_bytes: if launch.direct {
                0
            } else {
                v.workgroup_bytes()
            },
        },
    )?;
    let Some(scratch) = scratch else {
        return Ok(vec![conv]);
    };
    let reduce = make_dispatch(
        ctx,
        DispatchSpec {
            label: format!("{label}:splitk_reduce"),
            shader: Shader::Conv2d,
            storage,
            entry: REDUCE_ENTRY,
            bindings: BINDINGS,
            constants: &[],
            params: &u,
            // Binding 2 (weights) is not read by the reduce: the scale
            // stands in for it (the dummy buffer is bound read-write at 5
            // when there is no residual, and one buffer may not be bound
            // read-only and read-write in one dispatch).
            buffers: &[
                scratch,
                scale,
                scale,
                shift,
                residual.unwrap_or(Span::whole(ctx.dummy_buffer())),
                out,
            ],
            // One invocation per four output channels of a pixel.
            workgroups: crate::device::grid_1d(m * p.out_channels.div_ceil(4), 256),
            flops: ((splits - 1) * m * p.out_channels) as u64,
            workgroup_bytes: 0,
        },
    )?;
    Ok(vec![conv, reduce])
}
