//! Pre-activation ResNets ("identity mappings", He et al. 2016) as timm's
//! `resnetv2` builds them, and the paper's CIFAR-10 nets in the same layout.
//!
//! # timm `resnetv2_50/101/152` (and `resnetv2_200`)
//!
//! `timm.create_model("resnetv2_50")` is `ResNetV2(layers=[3, 4, 6, 3],
//! conv_layer=create_conv2d, norm_layer=BatchNormAct2d)`: plain convs (no
//! weight standardisation, no bias, timm's default padding `(k−1)/2` for the
//! 3×3s and the 7×7) and BatchNorm (eps 1e-5) + ReLU, preact. Keys:
//!
//! * stem: `stem.conv` (7×7/2, 64, pad 3), then `MaxPool2d(3, 2, 1)`; no norm
//!   (preact nets normalise at the start of each block).
//! * stages `stages.{s}.blocks.{i}`: [`preact_bottleneck`]s with 256, 512,
//!   1024, 2048 output channels (mid = out/4), stride 2 on the first block of
//!   stages 1–3. The first block of every stage has the projection shortcut
//!   `downsample.conv` (1×1, the stage's stride), fed by the *pre-activated*
//!   input.
//! * `norm` (BatchNorm + ReLU), global average pool, and the classifier
//!   `head.fc`, which timm makes a **1×1 conv with bias**
//!   (`ClassifierHead(..., use_conv=True)`): its weight is
//!   `(classes, 2048, 1, 1)`.
//!
//! `resnetv2_101` and `_152` use [3, 4, 23, 3] and [3, 8, 36, 3] blocks.
//! `resnetv2_200` ([3, 24, 36, 3], the paper's ImageNet ResNet-200) is not
//! registered by timm; it is built in exactly the same layout.
//!
//! # CIFAR nets (`preact_resnet164_cifar`, `preact_resnet1001_cifar`)
//!
//! The paper's depth-(9n+2) bottleneck nets for 32×32 CIFAR-10, n = 18
//! (ResNet-164) and n = 111 (ResNet-1001), keyed in the same timm style:
//!
//! * `stem.conv`: 3×3, 16 channels, pad 1, no bias; no pool, no norm.
//! * `stages.{0,1,2}.blocks.{i}`: n [`preact_bottleneck`]s per stage with
//!   mid widths 16, 32, 64 and outputs 64, 128, 256; stride 2 on the first
//!   block of stages 1 and 2 (32 → 16 → 8). The first block of each stage
//!   has the projection `downsample.conv` (the paper's "both preact" first
//!   block: the shortcut also sees the BN-ReLU'd input).
//! * `norm` (BN + ReLU), global average pool, `head.fc` (1×1 conv with bias,
//!   10 classes).
//!
//! BatchNorm eps is 1e-5 throughout.

use super::{check_options, key, Options};
use crate::error::{Error, Result};
use crate::graph::{Conv2d, Graph, Pool, ValueId};

/// timm's `BatchNormAct2d` default eps.
pub const BN_EPS: f32 = 1e-5;

/// timm's `make_div(v, 8)`: `v` rounded to a multiple of 8 (at least 8, and
/// never more than 10% below `v`).
pub fn make_div(v: f64) -> usize {
    let d = 8usize;
    let mut n = d.max(((v + d as f64 / 2.0) as usize) / d * d);
    if (n as f64) < 0.9 * v {
        n += d;
    }
    n
}

/// timm's `BatchNormAct2d` named `name`: BatchNorm (eps 1e-5) then its ReLU,
/// the node `{name}.act` (timm's `act` submodule).
pub fn norm_act(g: &mut Graph, name: &str, x: ValueId) -> Result<ValueId> {
    let b = g.batchnorm(name, x, BN_EPS)?;
    g.relu(&key(name, "act"), b)
}

/// timm `PreActBottleneck(in_chs, out_chs, bottle_ratio=0.25, stride)`:
///
/// ```text
/// p = norm1(x)                                   (BN + ReLU)
/// shortcut = downsample.conv(p) if proj else x   (1×1, stride, no bias)
/// y = conv1(p)                                   (1×1, mid)
/// y = conv2(norm2(y))                            (3×3, mid, stride, pad 1)
/// y = conv3(norm3(y))                            (1×1, out_chs)
/// return y + shortcut
/// ```
///
/// with `mid = make_div(out_chs / 4)`. No ReLU after the add.
pub fn preact_bottleneck(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    out_chs: usize,
    stride: usize,
    proj: bool,
) -> Result<ValueId> {
    let mid = make_div(out_chs as f64 * 0.25);
    let p = norm_act(g, &key(prefix, "norm1"), x)?;
    let shortcut = if proj {
        g.conv2d(
            &key(prefix, "downsample.conv"),
            p,
            Conv2d::new(out_chs, 1).stride(stride),
        )?
    } else {
        x
    };
    let y = g.conv2d(&key(prefix, "conv1"), p, Conv2d::new(mid, 1))?;
    let y = norm_act(g, &key(prefix, "norm2"), y)?;
    let y = g.conv2d(
        &key(prefix, "conv2"),
        y,
        Conv2d::new(mid, 3).stride(stride).pad(1),
    )?;
    let y = norm_act(g, &key(prefix, "norm3"), y)?;
    let y = g.conv2d(&key(prefix, "conv3"), y, Conv2d::new(out_chs, 1))?;
    g.add(&key(prefix, "add"), y, shortcut)
}

/// The stem of a pre-activation net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stem {
    /// ImageNet: `stem.conv` 7×7/2 (64, pad 3) → max pool 3×3/2 pad 1.
    ImageNet,
    /// CIFAR: `stem.conv` 3×3 (16, pad 1), no pool.
    Cifar,
}

/// A pre-activation ResNet's architecture (always bottleneck blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreActConfig {
    /// The stem.
    pub stem: Stem,
    /// Blocks per stage.
    pub layers: Vec<usize>,
    /// Output channels per stage (4× the bottleneck width).
    pub channels: Vec<usize>,
}

/// Builds a pre-activation ResNet: stem, `stages.{s}.blocks.{i}`, `norm`,
/// global pool, `head.fc` (1×1 conv with bias). Stage 0 has stride 1, the
/// others stride 2. Output: logits (N, classes).
pub fn preact_resnet(cfg: &PreActConfig, opts: &Options) -> Result<Graph> {
    check_options("preact_resnet", opts)?;
    if cfg.layers.len() != cfg.channels.len() || cfg.layers.contains(&0) {
        return Err(Error::Invalid(format!(
            "preact_resnet: need one positive block count per stage, got layers {:?} for channels {:?}",
            cfg.layers, cfg.channels
        )));
    }
    let mut g = Graph::new();
    let x = g.input("input", opts.input_shape())?;
    let mut y = match cfg.stem {
        Stem::ImageNet => {
            let c = g.conv2d("stem.conv", x, Conv2d::new(64, 7).stride(2).pad(3))?;
            g.pool("stem.pool", c, Pool::max(3, 2, 1))?
        }
        Stem::Cifar => g.conv2d("stem.conv", x, Conv2d::new(16, 3).pad(1))?,
    };
    for (s, (&depth, &out)) in cfg.layers.iter().zip(&cfg.channels).enumerate() {
        for i in 0..depth {
            let stride = if s > 0 && i == 0 { 2 } else { 1 };
            let prefix = format!("stages.{s}.blocks.{i}");
            y = preact_bottleneck(&mut g, &prefix, y, out, stride, i == 0)?;
        }
    }
    let y = norm_act(&mut g, "norm", y)?;
    let y = g.global_avg_pool("head.global_pool", y)?;
    let logits = g.conv2d("head.fc", y, Conv2d::new(opts.classes, 1).with_bias())?;
    g.output(logits);
    g.validate()?;
    Ok(g)
}

fn imagenet(layers: [usize; 4], opts: &Options) -> Result<Graph> {
    preact_resnet(
        &PreActConfig {
            stem: Stem::ImageNet,
            layers: layers.to_vec(),
            channels: vec![256, 512, 1024, 2048],
        },
        opts,
    )
}

/// timm `resnetv2_50`: [3, 4, 6, 3] (25,549,352 parameters).
pub fn resnetv2_50(opts: &Options) -> Result<Graph> {
    imagenet([3, 4, 6, 3], opts)
}

/// timm `resnetv2_101`: [3, 4, 23, 3].
pub fn resnetv2_101(opts: &Options) -> Result<Graph> {
    imagenet([3, 4, 23, 3], opts)
}

/// timm `resnetv2_152`: [3, 8, 36, 3].
pub fn resnetv2_152(opts: &Options) -> Result<Graph> {
    imagenet([3, 8, 36, 3], opts)
}

/// Pre-activation ResNet-200 (He et al. 2016): [3, 24, 36, 3], timm layout.
pub fn resnetv2_200(opts: &Options) -> Result<Graph> {
    imagenet([3, 24, 36, 3], opts)
}

/// The paper's CIFAR net of depth 9n+2: n bottlenecks per stage.
pub fn preact_resnet_cifar(n: usize, opts: &Options) -> Result<Graph> {
    preact_resnet(
        &PreActConfig {
            stem: Stem::Cifar,
            layers: vec![n; 3],
            channels: vec![64, 128, 256],
        },
        opts,
    )
}

/// Pre-activation ResNet-164 for CIFAR (n = 18; about 1.7M parameters).
pub fn preact_resnet164_cifar(opts: &Options) -> Result<Graph> {
    preact_resnet_cifar(18, opts)
}

/// Pre-activation ResNet-1001 for CIFAR (n = 111; about 10.2M parameters).
pub fn preact_resnet1001_cifar(opts: &Options) -> Result<Graph> {
    preact_resnet_cifar(111, opts)
}
