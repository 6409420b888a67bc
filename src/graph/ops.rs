//! The operations a graph node can compute, with their attributes and the
//! output-size arithmetic shape inference needs.
//!
//! Everything here is plain data and integer arithmetic: the IR depends on
//! nothing GPU. The kernels ([`crate::kernels`]) turn a node's attributes
//! into launch parameters and reuse the same size formulas
//! ([`conv_out_len`], [`pool_out_len`]), so shape inference and the kernels
//! cannot disagree about an output's size.

use crate::error::{Error, Result};

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

/// A clamp to `[min, max]`, the epilogue that ReLU, ReLU6 and ONNX's
/// `Clip` share: `min(max(v, min), max)`, NaN staying NaN (PyTorch and
/// onnxruntime). An infinite bound is no bound: ReLU is `[0, +∞)`. When
/// `min > max` every (non-NaN) value becomes `max`, as ONNX's `Clip` and
/// numpy's `clip` define it. Bounds are never NaN, `min` never `+∞` and
/// `max` never `−∞` ([`Clamp::validate`]), so a bound passed to a shader
/// is always finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clamp {
    /// Lower bound (`−∞`: none).
    pub min: f32,
    /// Upper bound (`+∞`: none).
    pub max: f32,
}

impl Clamp {
    /// ReLU: `[0, +∞)`.
    pub const RELU: Clamp = Clamp {
        min: 0.0,
        max: f32::INFINITY,
    };

    /// ReLU6: `[0, 6]`.
    pub const RELU6: Clamp = Clamp { min: 0.0, max: 6.0 };

    /// `[min, max]`.
    pub fn new(min: f32, max: f32) -> Self {
        Self { min, max }
    }

    /// True for `[0, +∞)`.
    pub fn is_relu(&self) -> bool {
        *self == Self::RELU
    }

    /// Checks that neither bound is NaN (a NaN bound has no meaning the
    /// kernels could agree on) and that an infinite bound is "no bound"
    /// (`min` not `+∞`, `max` not `−∞`). Errors name `node`.
    pub fn validate(&self, node: &str) -> Result<()> {
        if self.min.is_nan()
            || self.max.is_nan()
            || self.min == f32::INFINITY
            || self.max == f32::NEG_INFINITY
        {
            return Err(Error::Graph {
                node: node.into(),
                message: format!(
                    "clamp bounds [{}, {}]: expected a lower bound < +inf and an upper bound \
                     > -inf, neither NaN",
                    self.min, self.max
                ),
            });
        }
        Ok(())
    }
}

/// Max or average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum over the window.
    Max,
    /// Mean over the window.
    Avg,
}

/// Output length of a convolution along one axis: `(input + pad_lo +
/// pad_hi − dilation·(kernel − 1) − 1) / stride + 1`, or `None` when the
/// dilated window does not fit the padded input (or a size is zero).
pub fn conv_out_len(
    input: usize,
    pad_lo: usize,
    pad_hi: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let eff = dilation * (kernel - 1) + 1;
    let padded = input + pad_lo + pad_hi;
    Some(padded.checked_sub(eff)? / stride + 1)
}

/// Output length of a window pool along one axis: PyTorch's rule,
/// generalised to two pad sides and dilation as onnxruntime computes it:
/// `floor((input + pad_lo + pad_hi − dilation·(kernel − 1) − 1) / stride)
/// + 1`, or with `ceil` the ceiling, minus one when the last window would
/// start in the trailing padding (`(out − 1)·stride ≥ input + pad_lo`).
/// `None` when the dilated window does not fit the padded input (or a size
/// is zero). For `pad_lo = pad_hi` and dilation 1 it is PyTorch's formula.
pub fn pool_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    [pad_lo, pad_hi]: [usize; 2],
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    if stride == 0 || kernel == 0 || dilation == 0 {
        return None;
    }
    let span = (input + pad_lo + pad_hi).checked_sub(dilation * (kernel - 1) + 1)?;
    let mut out = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    if ceil && out > 1 && (out - 1) * stride >= input + pad_lo {
        out -= 1;
    }
    Some(out)
}

/// The taps of output `o`'s window along one pool axis: positions
/// `start + i·dilation` (`start = o·stride − pad_lo`, `i < kernel`) that
/// lie before `end = min(start + kernel·dilation, input + pad_hi)`, as
/// onnxruntime bounds them. Returns (padded taps, in-bounds taps): the
/// count-including-padding divisor and the count of taps inside
/// `0..input`. For dilation 1 the first is PyTorch's `end − start`.
pub fn pool_window_taps(
    o: usize,
    input: usize,
    kernel: usize,
    stride: usize,
    [pad_lo, pad_hi]: [usize; 2],
    dilation: usize,
) -> (usize, usize) {
    let start = (o * stride) as i64 - pad_lo as i64;
    let end = (start + (kernel * dilation) as i64).min((input + pad_hi) as i64);
    let (mut padded, mut inside) = (0, 0);
    for i in 0..kernel {
        let t = start + (i * dilation) as i64;
        if t >= end {
            break;
        }
        padded += 1;
        if t >= 0 && t < input as i64 {
            inside += 1;
        }
    }
    (padded, inside)
}

/// A convolution node: PyTorch's `Conv2d`, plus the epilogue the fusion
/// passes may attach.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel (kh, kw).
    pub kernel: [usize; 2],
    /// Stride (sh, sw).
    pub stride: [usize; 2],
    /// Padding per side.
    pub padding: Padding,
    /// Dilation (dh, dw).
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// The conv has a `{name}.bias` parameter.
    pub bias: bool,
    /// A batchnorm folded into this conv: (BN node name, eps). Its
    /// parameters are read as `{bn}.weight`, `{bn}.bias`, `{bn}.running_*`.
    pub bn: Option<(String, f32)>,
    /// Multiplies the conv (+BN) result: an Inception-ResNet branch scale
    /// folded from an `add`. 1 otherwise.
    pub out_scale: f32,
    /// `Some(s)`: the node has a second input, added as `s · residual`.
    pub residual: Option<f32>,
    /// A clamp last (ReLU, ReLU6, Clip; set by the fusion pass).
    pub clamp: Option<Clamp>,
}

impl Conv2d {
    /// A `k×k` conv with `out_channels`, stride 1, no padding, no bias.
    pub fn new(out_channels: usize, k: usize) -> Self {
        Self::rect(out_channels, [k, k])
    }

    /// A `kh×kw` conv (e.g. `[1, 7]`), stride 1, no padding, no bias.
    pub fn rect(out_channels: usize, kernel: [usize; 2]) -> Self {
        Self {
            out_channels,
            kernel,
            stride: [1, 1],
            padding: Padding::default(),
            dilation: [1, 1],
            groups: 1,
            bias: false,
            bn: None,
            out_scale: 1.0,
            residual: None,
            clamp: None,
        }
    }

    /// Sets the same stride in both directions.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }

    /// Sets PyTorch's `padding=p` (all four sides).
    pub fn pad(mut self, p: usize) -> Self {
        self.padding = Padding::same(p);
        self
    }

    /// Sets PyTorch's `padding=(ph, pw)`.
    pub fn pad_hw(mut self, ph: usize, pw: usize) -> Self {
        self.padding = Padding::hw(ph, pw);
        self
    }

    /// Sets each side's padding.
    pub fn pad4(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the dilation in both directions.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }

    /// Sets the groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// Gives the conv a bias parameter.
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// The output shape for input `[n, c, h, w]`, after checking the
    /// attributes against it (nonzero sizes, groups dividing both channel
    /// counts, the window fitting the padded input). Errors name `node`.
    pub fn output_shape(&self, node: &str, [n, c, h, w]: [usize; 4]) -> Result<[usize; 4]> {
        let bad = |m: String| {
            Err(Error::Graph {
                node: node.into(),
                message: m,
            })
        };
        if n == 0 || c == 0 || h == 0 || w == 0 {
            return bad(format!("zero-sized input {n}×{c}×{h}×{w}"));
        }
        if self.out_channels == 0 || self.kernel.contains(&0) || self.stride.contains(&0) {
            return bad("zero out_channels, kernel or stride".into());
        }
        if self.dilation.contains(&0) || self.groups == 0 {
            return bad("zero dilation or groups".into());
        }
        if let Some(c) = self.clamp {
            c.validate(node)?;
        }
        if !c.is_multiple_of(self.groups) || !self.out_channels.is_multiple_of(self.groups) {
            return bad(format!(
                "groups={} must divide in_channels={c} and out_channels={}",
                self.groups, self.out_channels
            ));
        }
        let p = self.padding;
        let oh = conv_out_len(
            h,
            p.top,
            p.bottom,
            self.kernel[0],
            self.stride[0],
            self.dilation[0],
        );
        let ow = conv_out_len(
            w,
            p.left,
            p.right,
            self.kernel[1],
            self.stride[1],
            self.dilation[1],
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok([n, self.out_channels, oh, ow]),
            _ => Err(Error::Shape {
                node: node.into(),
                expected: format!(
                    "padded input of at least {}×{}",
                    self.dilation[0] * (self.kernel[0] - 1) + 1,
                    self.dilation[1] * (self.kernel[1] - 1) + 1
                ),
                actual: format!("{}×{}", h + p.top + p.bottom, w + p.left + p.right),
            }),
        }
    }
}

/// A max or average pool node (PyTorch's `MaxPool2d` / `AvgPool2d`, ONNX's
/// `MaxPool` / `AveragePool`).
///
/// Windows: along each axis output `o` reads taps `o·stride − pad_lo +
/// i·dilation`, `i < kernel`, bounded by `input + pad_hi`
/// ([`pool_window_taps`]); max ignores taps outside the input, the average
/// reads them as zero and divides by the padded tap count
/// (`count_include_pad`) or the in-bounds one. Every window must hold at
/// least one input tap ([`Pool::output_shape`] refuses one that would not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pool {
    /// Max or average.
    pub kind: PoolKind,
    /// Window (kh, kw).
    pub kernel: [usize; 2],
    /// Stride (sh, sw).
    pub stride: [usize; 2],
    /// Padding per side (any size, as long as every window keeps an input
    /// tap; the zoo's are symmetric and at most half the window).
    pub padding: Padding,
    /// Dilation (dh, dw) between window taps; 1 in PyTorch's zoo.
    pub dilation: [usize; 2],
    /// PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
    /// PyTorch's `count_include_pad` (average only; PyTorch's default is true).
    pub count_include_pad: bool,
}

impl Pool {
    /// `MaxPool2d(k, stride=s, padding=p)`.
    pub fn max(k: usize, s: usize, p: usize) -> Self {
        Self {
            kind: PoolKind::Max,
            kernel: [k, k],
            stride: [s, s],
            padding: Padding::same(p),
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// `AvgPool2d(k, stride=s, padding=p)` (count_include_pad true).
    pub fn avg(k: usize, s: usize, p: usize) -> Self {
        Self {
            kind: PoolKind::Avg,
            ..Self::max(k, s, p)
        }
    }

    /// Sets `ceil_mode`.
    pub fn ceil(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }

    /// Sets `count_include_pad`.
    pub fn include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    /// Sets each side's padding.
    pub fn pad4(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the dilation (dh, dw).
    pub fn dilation(mut self, d: [usize; 2]) -> Self {
        self.dilation = d;
        self
    }

    /// The output shape for input `[n, c, h, w]`, after checking the
    /// attributes (nonzero sizes, the dilated window fitting the padded
    /// input, every window holding at least one input tap). Errors name
    /// `node`.
    pub fn output_shape(&self, node: &str, [n, c, h, w]: [usize; 4]) -> Result<[usize; 4]> {
        let bad = |m: String| {
            Err(Error::Graph {
                node: node.into(),
                message: m,
            })
        };
        if n == 0 || c == 0 || h == 0 || w == 0 {
            return bad("zero-sized input".into());
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return bad("zero window, stride or dilation".into());
        }
        let p = self.padding;
        let axes = [
            (h, [p.top, p.bottom], "rows"),
            (w, [p.left, p.right], "columns"),
        ];
        let mut out = [0; 2];
        for (a, &(len, pads, what)) in axes.iter().enumerate() {
            let (k, s, d) = (self.kernel[a], self.stride[a], self.dilation[a]);
            let Some(o) = pool_out_len(len, k, s, pads, d, self.ceil_mode) else {
                return Err(Error::Shape {
                    node: node.into(),
                    expected: format!(
                        "padded {what} of at least the dilated window, {}",
                        d * (k - 1) + 1
                    ),
                    actual: format!("{len} + {} + {} {what}", pads[0], pads[1]),
                });
            };
            for i in 0..o {
                if pool_window_taps(i, len, k, s, pads, d).1 == 0 {
                    return bad(format!(
                        "window {i} along the {what} (kernel {k}, stride {s}, pads {pads:?}, \
                         dilation {d}, input {len}) holds no input tap"
                    ));
                }
            }
            out[a] = o;
        }
        Ok([n, c, out[0], out[1]])
    }
}

/// How [`Pad`] fills the positions it adds (ONNX's `Pad` modes, numpy's
/// `np.pad` modes of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PadMode {
    /// The constant [`Pad::value`].
    Constant,
    /// The nearest edge element repeated (`edge`).
    Edge,
    /// The mirror image without repeating the edge (`reflect`: `…, x2, x1,
    /// x0, x1, x2, …`); each added count must be below the axis length.
    Reflect,
    /// The input repeated periodically (`wrap`: `…, x[n−1], x0, x1, …`).
    Wrap,
}

impl PadMode {
    /// ONNX's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Edge => "edge",
            PadMode::Reflect => "reflect",
            PadMode::Wrap => "wrap",
        }
    }
}

/// A pad (or crop) of each of the four NCHW axes.
///
/// Along axis `a`, a negative `begin[a]` / `end[a]` first removes that
/// many elements from the start / end (a crop, as onnxruntime does it);
/// the positive ones then add elements, filled as [`PadMode`] says from
/// the cropped input. So output coordinate `o` reads cropped coordinate
/// `t = o − max(begin, 0)`, mapped into `0..len` (the cropped length) by
/// the mode when outside it, at input coordinate `t + max(−begin, 0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pad {
    /// Elements added (> 0) or removed (< 0) before each axis (N, C, H, W).
    pub begin: [i64; 4],
    /// Elements added (> 0) or removed (< 0) after each axis.
    pub end: [i64; 4],
    /// How added elements are filled.
    pub mode: PadMode,
    /// The constant of [`PadMode::Constant`]; finite (ignored otherwise).
    pub value: f32,
}

impl Pad {
    /// Constant padding of H and W only (Keras' `ZeroPadding2D`).
    pub fn constant_hw(padding: Padding, value: f32) -> Self {
        let (t, l, b, r) = (padding.top, padding.left, padding.bottom, padding.right);
        Self {
            begin: [0, 0, t as i64, l as i64],
            end: [0, 0, b as i64, r as i64],
            mode: PadMode::Constant,
            value,
        }
    }

    /// Per axis: (elements cropped at the start, cropped length, elements
    /// added at the start), for input `shape` (unchecked: see
    /// [`Pad::output_shape`]).
    pub fn axis_map(&self, shape: [usize; 4]) -> [(usize, usize, usize); 4] {
        std::array::from_fn(|a| {
            let (b, e) = (self.begin[a], self.end[a]);
            let crop_lo = (-b).max(0) as usize;
            let crop_hi = (-e).max(0) as usize;
            let len = shape[a].saturating_sub(crop_lo + crop_hi);
            (crop_lo, len, b.max(0) as usize)
        })
    }

    /// The output shape for input `shape`, after checking the attributes
    /// against it: a finite value, a crop leaving at least one element on
    /// every axis, a reflection count below the cropped length (ONNX and
    /// numpy's rule), and sizes below 2³¹. Errors name `node`, the axis,
    /// the pad and the size.
    pub fn output_shape(&self, node: &str, shape: [usize; 4]) -> Result<[usize; 4]> {
        let bad = |m: String| {
            Err(Error::Graph {
                node: node.into(),
                message: m,
            })
        };
        if self.mode == PadMode::Constant && !self.value.is_finite() {
            return bad(format!("pad value {} is not finite", self.value));
        }
        const LIMIT: i64 = 1 << 31;
        let mut out = [0; 4];
        for (a, &(crop_lo, len, _)) in self.axis_map(shape).iter().enumerate() {
            let (b, e) = (self.begin[a], self.end[a]);
            if b.abs() >= LIMIT || e.abs() >= LIMIT {
                return bad(format!("axis {a}: pads ({b}, {e}) are too large"));
            }
            let crop = crop_lo as i64 + (-e).max(0);
            if crop >= shape[a] as i64 {
                return bad(format!(
                    "axis {a}: pads ({b}, {e}) crop all {} elements",
                    shape[a]
                ));
            }
            if self.mode == PadMode::Reflect {
                for p in [b, e] {
                    if p >= len as i64 {
                        return bad(format!(
                            "reflect pad {p} on axis {a} of size {len}: each reflect pad                              must be smaller than the (cropped) size"
                        ));
                    }
                }
            }
            out[a] = len + b.max(0) as usize + e.max(0) as usize;
        }
        Ok(out)
    }
}

/// What a node computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The graph input (no inputs).
    Input,
    /// Convolution (inputs: `[x]`, or `[x, residual]` when fused).
    Conv2d(Conv2d),
    /// Inference batchnorm with this eps; parameters `{name}.weight`,
    /// `.bias`, `.running_mean`, `.running_var`. `clamp` when fused.
    BatchNorm {
        /// Added to the variance.
        eps: f32,
        /// A clamp after (ReLU, ReLU6, Clip; set by the fusion pass).
        clamp: Option<Clamp>,
    },
    /// `max(x, 0)`.
    Relu,
    /// A clamp to `[min, max]` alone (ONNX `Clip`, ReLU6); NaN stays NaN.
    Clip(Clamp),
    /// `alpha·a + beta·b` (then the clamp, set by the fusion pass).
    Add {
        /// Scale of the first input.
        alpha: f32,
        /// Scale of the second input.
        beta: f32,
        /// A clamp after (ReLU, ReLU6, Clip).
        clamp: Option<Clamp>,
    },
    /// Max or average pool.
    Pool(Pool),
    /// Padding or cropping of any of the four axes (ONNX `Pad` in every
    /// mode, Keras `ZeroPadding2D`, PyTorch's `ReflectionPad2d`); see [`Pad`].
    Pad(Pad),
    /// Mean over H and W: (N, C, H, W) → (N, C, 1, 1).
    GlobalAvgPool,
    /// Concatenation along channels, in input order.
    Concat,
    /// (N, C, H, W) → (N, C·H·W, 1, 1).
    Flatten,
    /// `nn.Linear`: (N, F, 1, 1) → (N, out_features, 1, 1); parameters
    /// `{name}.weight` (out, in) and `{name}.bias`.
    Linear {
        /// Output features.
        out_features: usize,
        /// Has a bias.
        bias: bool,
    },
    /// Softmax over one axis (0 N, 1 C, 2 H, 3 W) of the NCHW value; the
    /// numerically stable form, `exp(x − max)` over the sum.
    Softmax {
        /// The NCHW axis the probabilities sum to one over.
        axis: usize,
    },
    /// A permutation of the four axes: output axis `i` is input axis
    /// `perm[i]` (ONNX `Transpose` of rank ≤ 4).
    Transpose {
        /// A permutation of `0..4`.
        perm: [usize; 4],
    },
    /// `x ∘ c` (or `c ∘ x`) with a constant `c`, the parameter
    /// `{name}.constant` of NCHW shape [`ConstArith::shape`], broadcast
    /// (each of its dims 1 or x's) to x's shape; the output has x's shape.
    /// ONNX's `Add`/`Sub`/`Mul`/`Div` by a full constant tensor.
    ConstArith(ConstArith),
}

impl Op {
    /// A short kind name for stats and profiles.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d(_) => "conv2d",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Relu => "relu",
            Op::Clip(_) => "clip",
            Op::Add { .. } => "add",
            Op::Pool(p) if p.kind == PoolKind::Max => "maxpool",
            Op::Pool(_) => "avgpool",
            Op::Pad(_) => "pad",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::Linear { .. } => "linear",
            Op::Softmax { .. } => "softmax",
            Op::Transpose { .. } => "transpose",
            Op::ConstArith(_) => "const_arith",
        }
    }

    /// True when the node couples the images of a batch: it reads or
    /// writes across the N axis (a softmax over N, a transpose moving N, a
    /// pad of N, a constant with one slice per image). Such a graph runs
    /// only on the whole batch it was compiled for
    /// ([`crate::graph::Graph::batch_coupled`]).
    pub fn couples_batch(&self) -> bool {
        match self {
            Op::Softmax { axis } => *axis == 0,
            Op::Transpose { perm } => perm[0] != 0,
            Op::Pad(p) => p.begin[0] != 0 || p.end[0] != 0,
            Op::ConstArith(k) => k.shape[0] > 1,
            _ => false,
        }
    }

    /// True when the node reads parameters by its name (`{name}.weight`, …),
    /// so that its name must be unique in the graph.
    pub fn has_params(&self) -> bool {
        matches!(
            self,
            Op::Conv2d(_) | Op::BatchNorm { .. } | Op::Linear { .. } | Op::ConstArith(_)
        )
    }
}

/// The arithmetic of a [`ConstArith`] node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arith {
    /// `x + c`.
    Add,
    /// `x − c` (`c − x` when the constant comes first).
    Sub,
    /// `x · c`.
    Mul,
    /// `x / c` (`c / x` when the constant comes first).
    Div,
}

impl Arith {
    /// Its name: `add`, `sub`, `mul`, `div`.
    pub fn name(self) -> &'static str {
        match self {
            Arith::Add => "add",
            Arith::Sub => "sub",
            Arith::Mul => "mul",
            Arith::Div => "div",
        }
    }

    /// `a ∘ b` in f32, one rounding (what the kernels compute).
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
        }
    }
}

/// An elementwise op between a runtime value `x` and a constant `c`
/// ([`Op::ConstArith`]): `x ∘ c`, or `c ∘ x` when `const_first`.
///
/// Broadcasting is numpy's (ONNX's multidirectional rule) restricted to
/// the result keeping x's shape: each dim of `c` is 1 or x's. The
/// constant's shape does not depend on the input size, so a graph
/// compiled for another batch keeps it only when its batch dim is 1 or
/// that batch ([`ConstArith::output_shape`] refuses otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstArith {
    /// The arithmetic.
    pub arith: Arith,
    /// `c ∘ x` rather than `x ∘ c` (matters for `Sub` and `Div`).
    pub const_first: bool,
    /// The constant's NCHW shape.
    pub shape: [usize; 4],
}

impl ConstArith {
    /// x's shape, after checking that the constant broadcasts to it
    /// without enlarging it. Errors name `node` and both shapes.
    pub fn output_shape(&self, node: &str, x: [usize; 4]) -> Result<[usize; 4]> {
        if self.shape.contains(&0) {
            return Err(Error::Graph {
                node: node.into(),
                message: format!("zero-sized constant {:?}", self.shape),
            });
        }
        if self.shape.iter().zip(&x).any(|(&c, &d)| c != 1 && c != d) {
            return Err(Error::Shape {
                node: node.into(),
                expected: format!(
                    "a constant broadcasting to the input's shape {x:?} (each dim 1 or the \
                     input's)"
                ),
                actual: format!("constant of shape {:?}", self.shape),
            });
        }
        Ok(x)
    }
}
