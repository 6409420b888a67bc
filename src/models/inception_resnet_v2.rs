//! timm's Inception-ResNet-v2 (`timm.create_model("inception_resnet_v2")`).
//!
//! Every conv but the residual projections is timm's `ConvNormAct` (conv
//! without bias → BatchNorm eps 1e-3 → ReLU, keys `{name}.conv` /
//! `{name}.bn`, see [`super::conv_bn_relu`]). Layout and keys:
//!
//! ```text
//! conv2d_1a (3×3/2, 32) → conv2d_2a (3×3, 32) → conv2d_2b (3×3 pad 1, 64) → maxpool_3a (3/2)
//! → conv2d_3b (1×1, 80) → conv2d_4a (3×3, 192) → maxpool_5a (3/2)
//! → mixed_5b (320) → repeat.0–9 (Block35, scale 0.17)
//! → mixed_6a (1088) → repeat_1.0–19 (Block17, scale 0.10)
//! → mixed_7a (2080) → repeat_2.0–8 (Block8, scale 0.20) → block8 (Block8, scale 1.0, no ReLU)
//! → conv2d_7b (1×1, 1536) → global pool → classif (1536 → classes)
//! ```
//!
//! A residual block computes `relu(x + scale · conv2d(cat(branches)))`,
//! where `conv2d` is a plain `nn.Conv2d` 1×1 **with bias** and no norm,
//! back to the input's channels (the final `block8` omits the ReLU). The
//! average pool in `mixed_5b` is `AvgPool2d(3, 1, 1, count_include_pad=False)`.

use super::{check_options, conv_bn_relu, key, pool_linear_head, Options};
use crate::error::Result;
use crate::graph::{Conv2d, Graph, Pool, ValueId};

/// timm's Inception-ResNet-v2 BatchNorm eps (`norm_eps=1e-3`).
pub const BN_EPS: f32 = 1e-3;

/// Residual scale of the `repeat` blocks (Block35).
pub const BLOCK35_SCALE: f32 = 0.17;
/// Residual scale of the `repeat_1` blocks (Block17).
pub const BLOCK17_SCALE: f32 = 0.10;
/// Residual scale of the `repeat_2` blocks (Block8); the final `block8`
/// uses 1.0.
pub const BLOCK8_SCALE: f32 = 0.20;

/// One `ConvNormAct` named `{prefix}.{name}`.
fn cb(g: &mut Graph, prefix: &str, name: &str, x: ValueId, conv: Conv2d) -> Result<ValueId> {
    conv_bn_relu(g, &key(prefix, name), x, conv, BN_EPS)
}

/// The residual tail shared by Block35/17/8: `conv2d` (1×1 with bias, back
/// to `x`'s channels) on the concatenated branches, `x + scale · that`
/// (`{prefix}.add`), then ReLU (`{prefix}.relu`) when `relu`.
fn residual_tail(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    branches: &[ValueId],
    scale: f32,
    relu: bool,
) -> Result<ValueId> {
    let channels = g.shapes[x.0][1];
    let cat = g.concat(&key(prefix, "cat"), branches)?;
    let up = g.conv2d(
        &key(prefix, "conv2d"),
        cat,
        Conv2d::new(channels, 1).with_bias(),
    )?;
    let y = g.add_scaled(&key(prefix, "add"), up, x, scale, 1.0)?;
    if relu {
        g.relu(&key(prefix, "relu"), y)
    } else {
        Ok(y)
    }
}

/// `Mixed5b`: 192 → 96 + 64 + 96 + 64 = 320 channels, same size. Branches:
/// `branch0` (1×1, 96); `branch1` (1×1 48 → 5×5 pad 2 64); `branch2` (1×1 64
/// → 3×3 pad 1 96 → 3×3 pad 1 96); `branch3` (avg pool → 1×1 64).
pub fn mixed_5b(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(96, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(48, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(64, 5).pad(2))?;
    let b2 = cb(g, prefix, "branch2.0", x, Conv2d::new(64, 1))?;
    let b2 = cb(g, prefix, "branch2.1", b2, Conv2d::new(96, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.2", b2, Conv2d::new(96, 3).pad(1))?;
    let b3 = g.pool(
        &key(prefix, "branch3.0"),
        x,
        Pool::avg(3, 1, 1).include_pad(false),
    )?;
    let b3 = cb(g, prefix, "branch3.1", b3, Conv2d::new(64, 1))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2, b3])
}

/// `Block35(scale)`: 320 → 320 channels, same size. Branches: `branch0`
/// (1×1, 32); `branch1` (1×1 32 → 3×3 pad 1 32); `branch2` (1×1 32 → 3×3 48
/// → 3×3 64); `conv2d` 128 → 320 with bias; ReLU.
pub fn block35(g: &mut Graph, prefix: &str, x: ValueId, scale: f32) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(32, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(32, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(32, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.0", x, Conv2d::new(32, 1))?;
    let b2 = cb(g, prefix, "branch2.1", b2, Conv2d::new(48, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.2", b2, Conv2d::new(64, 3).pad(1))?;
    residual_tail(g, prefix, x, &[b0, b1, b2], scale, true)
}

/// `Mixed6a`: 320 → 384 + 384 + 320 = 1088 channels at (H−3)/2+1.
/// Branches: `branch0` (3×3/2, 384); `branch1` (1×1 256 → 3×3 pad 1 256 →
/// 3×3/2 384); `branch2` (max pool 3×3/2).
pub fn mixed_6a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(384, 3).stride(2))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(256, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(256, 3).pad(1))?;
    let b1 = cb(g, prefix, "branch1.2", b1, Conv2d::new(384, 3).stride(2))?;
    let b2 = g.pool(&key(prefix, "branch2"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2])
}

/// `Block17(scale)`: 1088 → 1088 channels, same size. Branches: `branch0`
/// (1×1, 192); `branch1` (1×1 128 → 1×7 pad (0,3) 160 → 7×1 pad (3,0) 192);
/// `conv2d` 384 → 1088 with bias; ReLU.
pub fn block17(g: &mut Graph, prefix: &str, x: ValueId, scale: f32) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(192, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(128, 1))?;
    let b1 = cb(
        g,
        prefix,
        "branch1.1",
        b1,
        Conv2d::rect(160, [1, 7]).pad_hw(0, 3),
    )?;
    let b1 = cb(
        g,
        prefix,
        "branch1.2",
        b1,
        Conv2d::rect(192, [7, 1]).pad_hw(3, 0),
    )?;
    residual_tail(g, prefix, x, &[b0, b1], scale, true)
}

/// `Mixed7a`: 1088 → 384 + 288 + 320 + 1088 = 2080 channels at (H−3)/2+1.
/// Branches: `branch0` (1×1 256 → 3×3/2 384); `branch1` (1×1 256 → 3×3/2
/// 288); `branch2` (1×1 256 → 3×3 pad 1 288 → 3×3/2 320); `branch3` (max
/// pool 3×3/2).
pub fn mixed_7a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0.0", x, Conv2d::new(256, 1))?;
    let b0 = cb(g, prefix, "branch0.1", b0, Conv2d::new(384, 3).stride(2))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(256, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(288, 3).stride(2))?;
    let b2 = cb(g, prefix, "branch2.0", x, Conv2d::new(256, 1))?;
    let b2 = cb(g, prefix, "branch2.1", b2, Conv2d::new(288, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.2", b2, Conv2d::new(320, 3).stride(2))?;
    let b3 = g.pool(&key(prefix, "branch3"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2, b3])
}

/// `Block8(scale, no_relu = !relu)`: 2080 → 2080 channels, same size.
/// Branches: `branch0` (1×1, 192); `branch1` (1×1 192 → 1×3 pad (0,1) 224 →
/// 3×1 pad (1,0) 256); `conv2d` 448 → 2080 with bias; ReLU when `relu`.
/// The `repeat_2` blocks are `block8(.., 0.20, true)`; the final `block8` is
/// `block8(.., 1.0, false)`.
pub fn block8(g: &mut Graph, prefix: &str, x: ValueId, scale: f32, relu: bool) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(192, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(192, 1))?;
    let b1 = cb(
        g,
        prefix,
        "branch1.1",
        b1,
        Conv2d::rect(224, [1, 3]).pad_hw(0, 1),
    )?;
    let b1 = cb(
        g,
        prefix,
        "branch1.2",
        b1,
        Conv2d::rect(256, [3, 1]).pad_hw(1, 0),
    )?;
    residual_tail(g, prefix, x, &[b0, b1], scale, relu)
}

/// timm `inception_resnet_v2` for `opts.classes` classes (55,843,464
/// parameters at 1000 classes). Output: logits (N, classes).
pub fn inception_resnet_v2(opts: &Options) -> Result<Graph> {
    check_options("inception_resnet_v2", opts)?;
    let mut g = Graph::new();
    let g_ = &mut g;
    let x = g_.input("input", opts.input_shape())?;
    let y = cb(g_, "", "conv2d_1a", x, Conv2d::new(32, 3).stride(2))?;
    let y = cb(g_, "", "conv2d_2a", y, Conv2d::new(32, 3))?;
    let y = cb(g_, "", "conv2d_2b", y, Conv2d::new(64, 3).pad(1))?;
    let y = g_.pool("maxpool_3a", y, Pool::max(3, 2, 0))?;
    let y = cb(g_, "", "conv2d_3b", y, Conv2d::new(80, 1))?;
    let y = cb(g_, "", "conv2d_4a", y, Conv2d::new(192, 3))?;
    let y = g_.pool("maxpool_5a", y, Pool::max(3, 2, 0))?;
    let mut y = mixed_5b(g_, "mixed_5b", y)?;
    for i in 0..10 {
        y = block35(g_, &format!("repeat.{i}"), y, BLOCK35_SCALE)?;
    }
    y = mixed_6a(g_, "mixed_6a", y)?;
    for i in 0..20 {
        y = block17(g_, &format!("repeat_1.{i}"), y, BLOCK17_SCALE)?;
    }
    y = mixed_7a(g_, "mixed_7a", y)?;
    for i in 0..9 {
        y = block8(g_, &format!("repeat_2.{i}"), y, BLOCK8_SCALE, true)?;
    }
    y = block8(g_, "block8", y, 1.0, false)?;
    let y = cb(g_, "", "conv2d_7b", y, Conv2d::new(1536, 1))?;
    let logits = pool_linear_head(g_, "global_pool", "classif", y, opts.classes)?;
    g.output(logits);
    g.validate()?;
    Ok(g)
}
