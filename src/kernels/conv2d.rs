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
//! v = max(v, 0)                                (when relu)
//! out[n, out_c_offset + o, y, x] = v           (out has out_c_total channels)
//! ```
//!
//! Out-of-range input taps read zero (asymmetric padding: top, left, bottom,
//! right). `OH = (H + top + bottom − dh·(kh−1) − 1) / sh + 1`, likewise `OW`.
//!
//! Layouts: the CPU reference takes NCHW input/residual/output and OIHW
//! weights, as PyTorch stores them. The GPU kernel takes NHWC tensors and
//! weights repacked once by [`pack_weights`]; see `docs/KERNELS.md` for the
//! tiling.

use super::{Dispatch, Tolerance};
use crate::context::Context;
use crate::error::{Error, Result};

/// Declared tolerance of the GPU conv against the CPU reference.
///
/// Both accumulate in f32 over K = C_in/groups·kh·kw terms, in different
/// orders (tiles, fused multiply-adds); the error grows like √K·ε·Σ|terms|.
/// For the unit-scale data of the tests (K ≤ 2304) that stays below 1e-4
/// absolute and relative.
pub const TOLERANCE: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// Padding on each side, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Padding {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding {
    /// The same padding on all four sides.
    pub fn same(p: usize) -> Self {
        Self {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }

    /// PyTorch's `padding=(ph, pw)`: `ph` above and below, `pw` left and right.
    pub fn hw(ph: usize, pw: usize) -> Self {
        Self {
            top: ph,
            left: pw,
            bottom: ph,
            right: pw,
        }
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
    /// Apply ReLU last.
    pub relu: bool,
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
            relu: false,
            out_c_total: out_channels,
            out_c_offset: 0,
        }
    }

    /// Output spatial size (OH, OW). Errors when the window does not fit.
    pub fn out_hw(&self) -> Result<[usize; 2]> {
        let eff_h = self.dilation[0] * (self.kernel[0] - 1) + 1;
        let eff_w = self.dilation[1] * (self.kernel[1] - 1) + 1;
        let ph = self.in_h + self.padding.top + self.padding.bottom;
        let pw = self.in_w + self.padding.left + self.padding.right;
        if ph < eff_h || pw < eff_w {
            return Err(Error::Shape {
                node: "conv2d".into(),
                expected: format!("padded input of at least {eff_h}×{eff_w}"),
                actual: format!("{ph}×{pw}"),
            });
        }
        Ok([
            (ph - eff_h) / self.stride[0] + 1,
            (pw - eff_w) / self.stride[1] + 1,
        ])
    }

    /// Checks the invariants (nonzero sizes, groups divide channels, the
    /// output channel range fits). `node` names the conv in the error.
    pub fn validate(&self, node: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Graph {
            node: node.into(),
            message: m,
        });
        if self.batch == 0 || self.in_channels == 0 || self.in_h == 0 || self.in_w == 0 {
            return bad(format!(
                "zero-sized input {}×{}×{}×{}",
                self.batch, self.in_channels, self.in_h, self.in_w
            ));
        }
        if self.out_channels == 0 || self.kernel.contains(&0) || self.stride.contains(&0) {
            return bad("zero out_channels, kernel or stride".into());
        }
        if self.dilation.contains(&0) || self.groups == 0 {
            return bad("zero dilation or groups".into());
        }
        if self.in_channels % self.groups != 0 || self.out_channels % self.groups != 0 {
            return bad(format!(
                "groups={} must divide in_channels={} and out_channels={}",
                self.groups, self.in_channels, self.out_channels
            ));
        }
        if self.out_c_offset + self.out_channels > self.out_c_total {
            return bad(format!(
                "output channels {}..{} exceed the output tensor's {} channels",
                self.out_c_offset,
                self.out_c_offset + self.out_channels,
                self.out_c_total
            ));
        }
        self.out_hw().map_err(|e| match e {
            Error::Shape {
                expected, actual, ..
            } => Error::Shape {
                node: node.into(),
                expected,
                actual,
            },
            e => e,
        })?;
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
    for n in 0..p.batch {
        for o in 0..p.out_channels {
            let g = o / cout_g;
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = 0.0f32;
                    for c in 0..cin_g {
                        let ci = g * cin_g + c;
                        for i in 0..kh {
                            let iy = (y * p.stride[0] + i * p.dilation[0]) as isize
                                - p.padding.top as isize;
                            if iy < 0 || iy >= p.in_h as isize {
                                continue;
                            }
                            for j in 0..kw {
                                let ix = (x * p.stride[1] + j * p.dilation[1]) as isize
                                    - p.padding.left as isize;
                                if ix < 0 || ix >= p.in_w as isize {
                                    continue;
                                }
                                let iv = input[((n * p.in_channels + ci) * p.in_h + iy as usize)
                                    * p.in_w
                                    + ix as usize];
                                let wv = weight[((o * cin_g + c) * kh + i) * kw + j];
                                acc += iv * wv;
                            }
                        }
                    }
                    let mut v = acc * scale[o] + shift[o];
                    if let (Some(rs), Some(res)) = (p.residual_scale, residual) {
                        v += rs * res[((n * p.out_channels + o) * oh + y) * ow + x];
                    }
                    if p.relu {
                        v = v.max(0.0);
                    }
                    out[((n * p.out_c_total + p.out_c_offset + o) * oh + y) * ow + x] = v;
                }
            }
        }
    }
}

/// Repacks PyTorch OIHW weights into the GPU kernel's layout (done once, at
/// load). See `docs/KERNELS.md`.
pub fn pack_weights(p: &Conv2dParams, weight_oihw: &[f32]) -> Vec<f32> {
    let _ = p;
    weight_oihw.to_vec()
}

/// Builds the GPU dispatch. `input` is NHWC (N, H, W, C_in); `weight` holds
/// [`pack_weights`]' output; `scale`/`shift` hold C_out f32 each;
/// `residual` is NHWC (N, OH, OW, C_out); `out` is NHWC (N, OH, OW, out_c_total).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_gpu(
    ctx: &Context,
    label: &str,
    p: &Conv2dParams,
    input: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    scale: &wgpu::Buffer,
    shift: &wgpu::Buffer,
    residual: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let _ = (ctx, p, input, weight, scale, shift, residual, out);
    Err(Error::Invalid(format!("{label}: conv2d GPU kernel not built yet")))
}
