//! torchvision's ResNets (v1.5) and the plain (shortcut-free) nets of the
//! ResNet paper.
//!
//! Layout, as `torchvision.models.resnet`: stem `conv1` (7×7, 64, stride 2,
//! pad 3) → `bn1` → ReLU → `maxpool` (3×3, stride 2, pad 1); four stages
//! `layer1`…`layer4` of [`basic_block`]s (ResNet-18/34) or [`bottleneck`]s
//! (ResNet-50/101/152) with 64, 128, 256, 512 planes, stride 2 on the first
//! block of `layer2`…`layer4`; global average pool; `fc` (`nn.Linear` with
//! bias). Every BatchNorm has eps 1e-5. v1.5 means the bottleneck's stride is
//! on its 3×3 conv (`conv2`), not on `conv1`. A block whose shape changes has
//! the projection shortcut `downsample.0` (1×1 conv, no bias, the block's
//! stride) → `downsample.1` (BatchNorm).
//!
//! ResNeXt (`resnext50_32x4d`, `resnext101_32x8d`, `resnext101_64x4d`, Xie
//! et al. 2017) and Wide ResNet (`wide_resnet50_2`, `wide_resnet101_2`,
//! Zagoruyko & Komodakis 2016) are torchvision's same `ResNet` class with
//! `groups` and `width_per_group`: the bottleneck's inner width is
//! `planes · width_per_group / 64 · groups` and its 3×3 conv has `groups`
//! groups; the keys are ResNet-50/101's.
//!
//! The plain nets (`plain18`, `plain34`, He et al. 2015, §4.1) are the same
//! networks with no shortcuts at all, keyed like ResNet-18/34 (no
//! `downsample` keys).

use super::{check_options, key, pool_linear_head, Options};
use crate::error::Result;
use crate::graph::{Conv2d, Graph, Pool, ValueId};

/// torchvision's `BatchNorm2d` default eps, used by every ResNet norm.
pub const BN_EPS: f32 = 1e-5;

/// Which residual block a ResNet stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (`BasicBlock`, expansion 1).
    Basic,
    /// 1×1 → 3×3 → 1×1 (`Bottleneck`, expansion 4).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per plane: 1 or 4.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// A block's shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// None: the block is a plain stack of convs (plain nets).
    None,
    /// `x` itself (the input must have the output's shape).
    Identity,
    /// torchvision's `downsample`: 1×1 conv with the block's stride
    /// (`{prefix}.downsample.0`) → BatchNorm (`{prefix}.downsample.1`).
    Projection,
}

/// A ResNet's architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// The block every stage stacks.
    pub block: BlockKind,
    /// Blocks in `layer1`…`layer4`.
    pub layers: [usize; 4],
    /// With shortcuts (ResNet) or without (plain net).
    pub shortcuts: bool,
    /// Groups of the bottleneck's 3×3 conv (torchvision `groups`; 1 but
    /// for ResNeXt).
    pub groups: usize,
    /// Bottleneck channels per group at 64 planes (torchvision
    /// `width_per_group`: 64, 128 for Wide ResNets, 4 or 8 for ResNeXt).
    pub width_per_group: usize,
}

/// torchvision's stem: `conv1` (7×7/2, 64) → `bn1` → `relu` → `maxpool`
/// (3×3/2, pad 1). Returns the 64-channel, 1/4-size feature map.
pub fn stem(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let c = g.conv2d(
        &key(prefix, "conv1"),
        x,
        Conv2d::new(64, 7).stride(2).pad(3),
    )?;
    let b = g.batchnorm(&key(prefix, "bn1"), c, BN_EPS)?;
    let r = g.relu(&key(prefix, "relu"), b)?;
    g.pool(&key(prefix, "maxpool"), r, Pool::max(3, 2, 1))
}

/// The projection shortcut `{prefix}.downsample.0` (1×1 conv to `out`
/// channels, `stride`, no bias) → `{prefix}.downsample.1` (BatchNorm).
pub fn downsample(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    out: usize,
    stride: usize,
) -> Result<ValueId> {
    let c = g.conv2d(
        &key(prefix, "downsample.0"),
        x,
        Conv2d::new(out, 1).stride(stride),
    )?;
    g.batchnorm(&key(prefix, "downsample.1"), c, BN_EPS)
}

/// Adds the shortcut of `x` to the block's last BN output `y`, then ReLU
/// (`{prefix}.add`, `{prefix}.relu`); with [`Shortcut::None`] only the ReLU.
fn close_block(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    y: ValueId,
    out: usize,
    stride: usize,
    shortcut: Shortcut,
) -> Result<ValueId> {
    let y = match shortcut {
        Shortcut::None => y,
        Shortcut::Identity => g.add(&key(prefix, "add"), y, x)?,
        Shortcut::Projection => {
            let s = downsample(g, prefix, x, out, stride)?;
            g.add(&key(prefix, "add"), y, s)?
        }
    };
    g.relu(&key(prefix, "relu"), y)
}

/// torchvision `BasicBlock(inplanes, planes, stride, downsample)`:
/// `conv1` (3×3, `stride`) → `bn1` → ReLU → `conv2` (3×3) → `bn2`,
/// plus the shortcut, → ReLU. Output: `planes` channels.
pub fn basic_block(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    planes: usize,
    stride: usize,
    shortcut: Shortcut,
) -> Result<ValueId> {
    let c1 = g.conv2d(
        &key(prefix, "conv1"),
        x,
        Conv2d::new(planes, 3).stride(stride).pad(1),
    )?;
    let b1 = g.batchnorm(&key(prefix, "bn1"), c1, BN_EPS)?;
    let r1 = g.relu(&key(prefix, "relu1"), b1)?;
    let c2 = g.conv2d(&key(prefix, "conv2"), r1, Conv2d::new(planes, 3).pad(1))?;
    let b2 = g.batchnorm(&key(prefix, "bn2"), c2, BN_EPS)?;
    close_block(g, prefix, x, b2, planes, stride, shortcut)
}

/// torchvision `Bottleneck(inplanes, planes, stride, downsample)` (v1.5):
/// `conv1` (1×1, `planes`) → `bn1` → ReLU → `conv2` (3×3, `stride`) → `bn2`
/// → ReLU → `conv3` (1×1, 4·`planes`) → `bn3`, plus the shortcut, → ReLU.
/// Output: 4·`planes` channels.
pub fn bottleneck(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    planes: usize,
    stride: usize,
    shortcut: Shortcut,
) -> Result<ValueId> {
    grouped_bottleneck(g, prefix, x, planes, stride, shortcut, 1, 64)
}

/// torchvision `Bottleneck(inplanes, planes, stride, downsample, groups,
/// base_width)`: [`bottleneck`] with an inner width of
/// `⌊planes · base_width / 64⌋ · groups` and `groups` groups in `conv2`
/// (ResNeXt, Wide ResNet). Output: 4·`planes` channels.
#[allow(clippy::too_many_arguments)]
pub fn grouped_bottleneck(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    planes: usize,
    stride: usize,
    shortcut: Shortcut,
    groups: usize,
    base_width: usize,
) -> Result<ValueId> {
    let out = planes * BlockKind::Bottleneck.expansion();
    let width = planes * base_width / 64 * groups;
    let c1 = g.conv2d(&key(prefix, "conv1"), x, Conv2d::new(width, 1))?;
    let b1 = g.batchnorm(&key(prefix, "bn1"), c1, BN_EPS)?;
    let r1 = g.relu(&key(prefix, "relu1"), b1)?;
    let c2 = g.conv2d(
        &key(prefix, "conv2"),
        r1,
        Conv2d::new(width, 3).stride(stride).pad(1).groups(groups),
    )?;
    let b2 = g.batchnorm(&key(prefix, "bn2"), c2, BN_EPS)?;
    let r2 = g.relu(&key(prefix, "relu2"), b2)?;
    let c3 = g.conv2d(&key(prefix, "conv3"), r2, Conv2d::new(out, 1))?;
    let b3 = g.batchnorm(&key(prefix, "bn3"), c3, BN_EPS)?;
    close_block(g, prefix, x, b3, out, stride, shortcut)
}

/// Builds a ResNet (or plain net) from its configuration: stem, the four
/// stages `layer1`…`layer4`, `avgpool`, `fc`. Output: logits (N, classes).
pub fn resnet(cfg: &ResNetConfig, opts: &Options) -> Result<Graph> {
    check_options("resnet", opts)?;
    let mut g = Graph::new();
    let x = g.input("input", opts.input_shape())?;
    let mut y = stem(&mut g, "", x)?;
    let mut in_ch = 64;
    for (stage, &depth) in cfg.layers.iter().enumerate() {
        let planes = 64 << stage;
        let out = planes * cfg.block.expansion();
        for i in 0..depth {
            let prefix = format!("layer{}.{i}", stage + 1);
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let shortcut = if !cfg.shortcuts {
                Shortcut::None
            } else if stride != 1 || in_ch != out {
                Shortcut::Projection
            } else {
                Shortcut::Identity
            };
            y = match cfg.block {
                BlockKind::Basic => basic_block(&mut g, &prefix, y, planes, stride, shortcut)?,
                BlockKind::Bottleneck => grouped_bottleneck(
                    &mut g,
                    &prefix,
                    y,
                    planes,
                    stride,
                    shortcut,
                    cfg.groups,
                    cfg.width_per_group,
                )?,
            };
            in_ch = out;
        }
    }
    let logits = pool_linear_head(&mut g, "avgpool", "fc", y, opts.classes)?;
    g.output(logits);
    g.validate()?;
    Ok(g)
}

fn build(block: BlockKind, layers: [usize; 4], shortcuts: bool, opts: &Options) -> Result<Graph> {
    resnet(
        &ResNetConfig {
            block,
            layers,
            shortcuts,
            groups: 1,
            width_per_group: 64,
        },
        opts,
    )
}

/// A bottleneck ResNet with `groups` and `width_per_group` (ResNeXt, Wide
/// ResNet).
fn build_wide(
    layers: [usize; 4],
    groups: usize,
    width_per_group: usize,
    opts: &Options,
) -> Result<Graph> {
    resnet(
        &ResNetConfig {
            block: BlockKind::Bottleneck,
            layers,
            shortcuts: true,
            groups,
            width_per_group,
        },
        opts,
    )
}

/// torchvision `resnext50_32x4d`: bottlenecks [3, 4, 6, 3], 32 groups of 4
/// (25,028,904 parameters).
pub fn resnext50_32x4d(opts: &Options) -> Result<Graph> {
    build_wide([3, 4, 6, 3], 32, 4, opts)
}

/// torchvision `resnext101_32x8d`: bottlenecks [3, 4, 23, 3], 32 groups of
/// 8 (88,791,336 parameters).
pub fn resnext101_32x8d(opts: &Options) -> Result<Graph> {
    build_wide([3, 4, 23, 3], 32, 8, opts)
}

/// torchvision `resnext101_64x4d`: bottlenecks [3, 4, 23, 3], 64 groups of
/// 4 (83,455,272 parameters).
pub fn resnext101_64x4d(opts: &Options) -> Result<Graph> {
    build_wide([3, 4, 23, 3], 64, 4, opts)
}

/// torchvision `wide_resnet50_2`: ResNet-50 with bottlenecks twice as wide
/// inside (68,883,240 parameters).
pub fn wide_resnet50_2(opts: &Options) -> Result<Graph> {
    build_wide([3, 4, 6, 3], 1, 128, opts)
}

/// torchvision `wide_resnet101_2`: ResNet-101 with bottlenecks twice as
/// wide inside (126,886,696 parameters).
pub fn wide_resnet101_2(opts: &Options) -> Result<Graph> {
    build_wide([3, 4, 23, 3], 1, 128, opts)
}

/// torchvision `resnet18`: basic blocks [2, 2, 2, 2] (11,689,512 parameters).
pub fn resnet18(opts: &Options) -> Result<Graph> {
    build(BlockKind::Basic, [2, 2, 2, 2], true, opts)
}

/// torchvision `resnet34`: basic blocks [3, 4, 6, 3] (21,797,672 parameters).
pub fn resnet34(opts: &Options) -> Result<Graph> {
    build(BlockKind::Basic, [3, 4, 6, 3], true, opts)
}

/// torchvision `resnet50`: bottlenecks [3, 4, 6, 3] (25,557,032 parameters).
pub fn resnet50(opts: &Options) -> Result<Graph> {
    build(BlockKind::Bottleneck, [3, 4, 6, 3], true, opts)
}

/// torchvision `resnet101`: bottlenecks [3, 4, 23, 3] (44,549,160 parameters).
pub fn resnet101(opts: &Options) -> Result<Graph> {
    build(BlockKind::Bottleneck, [3, 4, 23, 3], true, opts)
}

/// torchvision `resnet152`: bottlenecks [3, 8, 36, 3] (60,192,808 parameters).
pub fn resnet152(opts: &Options) -> Result<Graph> {
    build(BlockKind::Bottleneck, [3, 8, 36, 3], true, opts)
}

/// The 18-layer plain net: ResNet-18 without shortcuts.
pub fn plain18(opts: &Options) -> Result<Graph> {
    build(BlockKind::Basic, [2, 2, 2, 2], false, opts)
}

/// The 34-layer plain net: ResNet-34 without shortcuts.
pub fn plain34(opts: &Options) -> Result<Graph> {
    build(BlockKind::Basic, [3, 4, 6, 3], false, opts)
}
