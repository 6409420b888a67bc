//! timm's Inception-v4 (`timm.create_model("inception_v4")`).
//!
//! Every conv is timm's `ConvNormAct` (conv without bias → BatchNorm eps 1e-3
//! → ReLU, keys `{name}.conv` / `{name}.bn`, see [`super::conv_bn_relu`]),
//! padding 0 unless stated. The body is one `nn.Sequential` named
//! `features`, so keys are `features.{i}...`:
//!
//! | index | module | output (299×299 input) |
//! | --- | --- | --- |
//! | 0, 1, 2 | 3×3/2 32; 3×3 32; 3×3 pad 1 64 | 147×147×64 |
//! | 3 | `Mixed3a`: [max pool 3/2, `conv` 3×3/2 96] | 73×73×160 |
//! | 4 | `Mixed4a`: `branch0` 1×1 64 → 3×3 96; `branch1` 1×1 64 → 1×7 → 7×1 → 3×3 96 | 71×71×192 |
//! | 5 | `Mixed5a`: [`conv` 3×3/2 192, max pool 3/2] | 35×35×384 |
//! | 6–9 | [`inception_a`] ×4 | 35×35×384 |
//! | 10 | [`reduction_a`] | 17×17×1024 |
//! | 11–17 | [`inception_b`] ×7 | 17×17×1024 |
//! | 18 | [`reduction_b`] | 8×8×1536 |
//! | 19–21 | [`inception_c`] ×3 | 8×8×1536 |
//!
//! then global average pool and `last_linear` (`nn.Linear(1536, classes)`).
//! The average pools inside the blocks are `AvgPool2d(3, 1, 1,
//! count_include_pad=False)`. A `branch` that is an `nn.Sequential` keys its
//! convs `branch1.0`, `branch1.1`, ...; a pool inside it takes an index too
//! (`branch3.0` is the pool, `branch3.1` the conv).

use super::{check_options, conv_bn_relu, key, pool_linear_head, Options};
use crate::error::Result;
use crate::graph::{Conv2d, Graph, Pool, ValueId};

/// timm's Inception-v4 BatchNorm eps (`norm_eps=1e-3`).
pub const BN_EPS: f32 = 1e-3;

/// One `ConvNormAct` named `{prefix}.{name}`.
fn cb(g: &mut Graph, prefix: &str, name: &str, x: ValueId, conv: Conv2d) -> Result<ValueId> {
    conv_bn_relu(g, &key(prefix, name), x, conv, BN_EPS)
}

/// `AvgPool2d(3, stride=1, padding=1, count_include_pad=False)`.
fn avg3(g: &mut Graph, name: &str, x: ValueId) -> Result<ValueId> {
    g.pool(name, x, Pool::avg(3, 1, 1).include_pad(false))
}

/// A 1×7 conv with padding (0, 3).
fn k17(c: usize) -> Conv2d {
    Conv2d::rect(c, [1, 7]).pad_hw(0, 3)
}

/// A 7×1 conv with padding (3, 0).
fn k71(c: usize) -> Conv2d {
    Conv2d::rect(c, [7, 1]).pad_hw(3, 0)
}

/// `features[:6]`, the stem: convs `0`, `1`, `2`, `Mixed3a` (`3`),
/// `Mixed4a` (`4`), `Mixed5a` (`5`). 3 → 384 channels; a 299×299 input
/// becomes 35×35 (75×75 → 7×7).
pub fn stem(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let y = cb(g, prefix, "0", x, Conv2d::new(32, 3).stride(2))?;
    let y = cb(g, prefix, "1", y, Conv2d::new(32, 3))?;
    let y = cb(g, prefix, "2", y, Conv2d::new(64, 3).pad(1))?;
    let y = mixed_3a(g, &key(prefix, "3"), y)?;
    let y = mixed_4a(g, &key(prefix, "4"), y)?;
    mixed_5a(g, &key(prefix, "5"), y)
}

/// `Mixed3a`: cat[`maxpool` (3×3/2), `conv` (3×3/2, 96)]: 64 → 160 channels.
pub fn mixed_3a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let p = g.pool(&key(prefix, "maxpool"), x, Pool::max(3, 2, 0))?;
    let c = cb(g, prefix, "conv", x, Conv2d::new(96, 3).stride(2))?;
    g.concat(&key(prefix, "cat"), &[p, c])
}

/// `Mixed4a`: cat[`branch0` (1×1 64 → 3×3 96), `branch1` (1×1 64 → 1×7 64
/// → 7×1 64 → 3×3 96)]: 160 → 192 channels, H−2.
pub fn mixed_4a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0.0", x, Conv2d::new(64, 1))?;
    let b0 = cb(g, prefix, "branch0.1", b0, Conv2d::new(96, 3))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(64, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, k17(64))?;
    let b1 = cb(g, prefix, "branch1.2", b1, k71(64))?;
    let b1 = cb(g, prefix, "branch1.3", b1, Conv2d::new(96, 3))?;
    g.concat(&key(prefix, "cat"), &[b0, b1])
}

/// `Mixed5a`: cat[`conv` (3×3/2, 192), `maxpool` (3×3/2)]: 192 → 384 channels.
pub fn mixed_5a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let c = cb(g, prefix, "conv", x, Conv2d::new(192, 3).stride(2))?;
    let p = g.pool(&key(prefix, "maxpool"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[c, p])
}

/// `InceptionA` (v4): 384 → 384 channels, same size. Branches: `branch0`
/// (1×1, 96); `branch1` (1×1 64 → 3×3 pad 1 96); `branch2` (1×1 64 → 3×3 96
/// → 3×3 96); `branch3` (avg pool → 1×1 96).
pub fn inception_a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(96, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(64, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(96, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.0", x, Conv2d::new(64, 1))?;
    let b2 = cb(g, prefix, "branch2.1", b2, Conv2d::new(96, 3).pad(1))?;
    let b2 = cb(g, prefix, "branch2.2", b2, Conv2d::new(96, 3).pad(1))?;
    let b3 = avg3(g, &key(prefix, "branch3.0"), x)?;
    let b3 = cb(g, prefix, "branch3.1", b3, Conv2d::new(96, 1))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2, b3])
}

/// `ReductionA` (v4, `Mixed6a`): 384 → 384 + 256 + 384 = 1024 channels at
/// (H−3)/2+1. Branches: `branch0` (3×3/2, 384); `branch1` (1×1 192 → 3×3
/// pad 1 224 → 3×3/2 256); `branch2` (max pool 3×3/2).
pub fn reduction_a(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(384, 3).stride(2))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(192, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, Conv2d::new(224, 3).pad(1))?;
    let b1 = cb(g, prefix, "branch1.2", b1, Conv2d::new(256, 3).stride(2))?;
    let b2 = g.pool(&key(prefix, "branch2"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2])
}

/// `InceptionB` (v4): 1024 → 384 + 256 + 256 + 128 = 1024 channels, same
/// size. Branches: `branch0` (1×1, 384); `branch1` (1×1 192 → 1×7 224 → 7×1
/// 256); `branch2` (1×1 192 → 7×1 192 → 1×7 224 → 7×1 224 → 1×7 256);
/// `branch3` (avg pool → 1×1 128).
pub fn inception_b(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(384, 1))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(192, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, k17(224))?;
    let b1 = cb(g, prefix, "branch1.2", b1, k71(256))?;
    let b2 = cb(g, prefix, "branch2.0", x, Conv2d::new(192, 1))?;
    let b2 = cb(g, prefix, "branch2.1", b2, k71(192))?;
    let b2 = cb(g, prefix, "branch2.2", b2, k17(224))?;
    let b2 = cb(g, prefix, "branch2.3", b2, k71(224))?;
    let b2 = cb(g, prefix, "branch2.4", b2, k17(256))?;
    let b3 = avg3(g, &key(prefix, "branch3.0"), x)?;
    let b3 = cb(g, prefix, "branch3.1", b3, Conv2d::new(128, 1))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2, b3])
}

/// `ReductionB` (v4, `Mixed7a`): 1024 → 192 + 320 + 1024 = 1536 channels at
/// (H−3)/2+1. Branches: `branch0` (1×1 192 → 3×3/2 192); `branch1` (1×1 256
/// → 1×7 256 → 7×1 320 → 3×3/2 320); `branch2` (max pool 3×3/2).
pub fn reduction_b(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b0 = cb(g, prefix, "branch0.0", x, Conv2d::new(192, 1))?;
    let b0 = cb(g, prefix, "branch0.1", b0, Conv2d::new(192, 3).stride(2))?;
    let b1 = cb(g, prefix, "branch1.0", x, Conv2d::new(256, 1))?;
    let b1 = cb(g, prefix, "branch1.1", b1, k17(256))?;
    let b1 = cb(g, prefix, "branch1.2", b1, k71(320))?;
    let b1 = cb(g, prefix, "branch1.3", b1, Conv2d::new(320, 3).stride(2))?;
    let b2 = g.pool(&key(prefix, "branch2"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b0, b1, b2])
}

/// `InceptionC` (v4): 1536 → 6 × 256 = 1536 channels, same size. Branches:
/// `branch0` (1×1, 256); `branch1_0` (1×1, 384) → [`branch1_1a` (1×3 pad
/// (0,1), 256), `branch1_1b` (3×1 pad (1,0), 256)]; `branch2_0` (1×1, 384) →
/// `branch2_1` (3×1, 448) → `branch2_2` (1×3, 512) → [`branch2_3a` (1×3,
/// 256), `branch2_3b` (3×1, 256)]; `branch3` (avg pool → 1×1 256).
pub fn inception_c(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let k13 = |c| Conv2d::rect(c, [1, 3]).pad_hw(0, 1);
    let k31 = |c| Conv2d::rect(c, [3, 1]).pad_hw(1, 0);
    let b0 = cb(g, prefix, "branch0", x, Conv2d::new(256, 1))?;
    let b1 = cb(g, prefix, "branch1_0", x, Conv2d::new(384, 1))?;
    let b1a = cb(g, prefix, "branch1_1a", b1, k13(256))?;
    let b1b = cb(g, prefix, "branch1_1b", b1, k31(256))?;
    let b2 = cb(g, prefix, "branch2_0", x, Conv2d::new(384, 1))?;
    let b2 = cb(g, prefix, "branch2_1", b2, k31(448))?;
    let b2 = cb(g, prefix, "branch2_2", b2, k13(512))?;
    let b2a = cb(g, prefix, "branch2_3a", b2, k13(256))?;
    let b2b = cb(g, prefix, "branch2_3b", b2, k31(256))?;
    let b3 = avg3(g, &key(prefix, "branch3.0"), x)?;
    let b3 = cb(g, prefix, "branch3.1", b3, Conv2d::new(256, 1))?;
    g.concat(&key(prefix, "cat"), &[b0, b1a, b1b, b2a, b2b, b3])
}

/// timm `inception_v4` for `opts.classes` classes (42,679,816 parameters
/// at 1000 classes). Output: logits (N, classes).
pub fn inception_v4(opts: &Options) -> Result<Graph> {
    check_options("inception_v4", opts)?;
    let mut g = Graph::new();
    let g_ = &mut g;
    let x = g_.input("input", opts.input_shape())?;
    let mut y = stem(g_, "features", x)?;
    for i in 6..=9 {
        y = inception_a(g_, &format!("features.{i}"), y)?;
    }
    y = reduction_a(g_, "features.10", y)?;
    for i in 11..=17 {
        y = inception_b(g_, &format!("features.{i}"), y)?;
    }
    y = reduction_b(g_, "features.18", y)?;
    for i in 19..=21 {
        y = inception_c(g_, &format!("features.{i}"), y)?;
    }
    let logits = pool_linear_head(g_, "global_pool", "last_linear", y, opts.classes)?;
    g.output(logits);
    g.validate()?;
    Ok(g)
}
