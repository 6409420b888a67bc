//! torchvision's Inception-v3 (`inception_v3(aux_logits=..., transform_input=False)`).
//!
//! Every conv is a `BasicConv2d`: conv (no bias) → BatchNorm (eps 1e-3) →
//! ReLU, keyed `{name}.conv` / `{name}.bn` (see [`super::conv_bn_relu`]).
//! Layout and keys, as `torchvision.models.inception.Inception3`:
//!
//! ```text
//! Conv2d_1a_3x3 (3×3/2, 32) → Conv2d_2a_3x3 (3×3, 32) → Conv2d_2b_3x3 (3×3 pad 1, 64)
//! → maxpool1 (3×3/2) → Conv2d_3b_1x1 (80) → Conv2d_4a_3x3 (3×3, 192) → maxpool2 (3×3/2)
//! → Mixed_5b/5c/5d (InceptionA, pool features 32/64/64) → Mixed_6a (InceptionB)
//! → Mixed_6b/6c/6d/6e (InceptionC, c7 = 128/160/160/192) [→ AuxLogits]
//! → Mixed_7a (InceptionD) → Mixed_7b/7c (InceptionE) → avgpool → fc (2048 → classes)
//! ```
//!
//! `transform_input=False` (the input is used as given) and dropout is the
//! identity at inference. The average pools inside the blocks are
//! `F.avg_pool2d(x, 3, 1, 1)`, which counts the padding
//! (`count_include_pad=True`). Nested concats (InceptionE's 1×3/3×1 pairs)
//! are flattened into one concat per block: the same channel order.

use super::{check_options, conv_bn_relu, key, pool_linear_head, Options};
use crate::error::Result;
use crate::graph::{Conv2d, Graph, Pool, ValueId};

/// torchvision `BasicConv2d`'s BatchNorm eps.
pub const BN_EPS: f32 = 1e-3;

/// One `BasicConv2d` named `{prefix}.{name}`.
fn bc(g: &mut Graph, prefix: &str, name: &str, x: ValueId, conv: Conv2d) -> Result<ValueId> {
    conv_bn_relu(g, &key(prefix, name), x, conv, BN_EPS)
}

/// `F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)` (counting padding).
fn avg3(g: &mut Graph, name: &str, x: ValueId) -> Result<ValueId> {
    g.pool(name, x, Pool::avg(3, 1, 1).include_pad(true))
}

/// `InceptionA(in_channels, pool_features)`: 64 + 64 + 96 + `pool_features`
/// output channels, same spatial size.
///
/// Branches: `branch1x1` (1×1, 64); `branch5x5_1` (1×1, 48) →
/// `branch5x5_2` (5×5 pad 2, 64); `branch3x3dbl_1` (1×1, 64) →
/// `branch3x3dbl_2` (3×3 pad 1, 96) → `branch3x3dbl_3` (3×3 pad 1, 96);
/// avg pool 3/1/1 → `branch_pool` (1×1, `pool_features`).
pub fn inception_a(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    pool_features: usize,
) -> Result<ValueId> {
    let b1 = bc(g, prefix, "branch1x1", x, Conv2d::new(64, 1))?;
    let b5 = bc(g, prefix, "branch5x5_1", x, Conv2d::new(48, 1))?;
    let b5 = bc(g, prefix, "branch5x5_2", b5, Conv2d::new(64, 5).pad(2))?;
    let b3 = bc(g, prefix, "branch3x3dbl_1", x, Conv2d::new(64, 1))?;
    let b3 = bc(g, prefix, "branch3x3dbl_2", b3, Conv2d::new(96, 3).pad(1))?;
    let b3 = bc(g, prefix, "branch3x3dbl_3", b3, Conv2d::new(96, 3).pad(1))?;
    let bp = avg3(g, &key(prefix, "branch_pool.avgpool"), x)?;
    let bp = bc(g, prefix, "branch_pool", bp, Conv2d::new(pool_features, 1))?;
    g.concat(&key(prefix, "cat"), &[b1, b5, b3, bp])
}

/// `InceptionB(in_channels)` (grid reduction): 384 + 96 + `in_channels`
/// output channels at (H−3)/2+1.
///
/// Branches: `branch3x3` (3×3/2, 384); `branch3x3dbl_1` (1×1, 64) →
/// `branch3x3dbl_2` (3×3 pad 1, 96) → `branch3x3dbl_3` (3×3/2, 96);
/// max pool 3×3/2.
pub fn inception_b(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b3 = bc(g, prefix, "branch3x3", x, Conv2d::new(384, 3).stride(2))?;
    let bd = bc(g, prefix, "branch3x3dbl_1", x, Conv2d::new(64, 1))?;
    let bd = bc(g, prefix, "branch3x3dbl_2", bd, Conv2d::new(96, 3).pad(1))?;
    let bd = bc(
        g,
        prefix,
        "branch3x3dbl_3",
        bd,
        Conv2d::new(96, 3).stride(2),
    )?;
    let bp = g.pool(&key(prefix, "branch_pool"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b3, bd, bp])
}

/// `InceptionC(in_channels, channels_7x7 = c7)`: 4 × 192 output channels,
/// same spatial size.
///
/// Branches: `branch1x1` (1×1, 192); `branch7x7_1` (1×1, c7) →
/// `branch7x7_2` (1×7 pad (0,3), c7) → `branch7x7_3` (7×1 pad (3,0), 192);
/// `branch7x7dbl_1` (1×1, c7) → `_2` (7×1, c7) → `_3` (1×7, c7) →
/// `_4` (7×1, c7) → `_5` (1×7, 192); avg pool 3/1/1 → `branch_pool` (1×1, 192).
pub fn inception_c(g: &mut Graph, prefix: &str, x: ValueId, c7: usize) -> Result<ValueId> {
    let k17 = |c| Conv2d::rect(c, [1, 7]).pad_hw(0, 3);
    let k71 = |c| Conv2d::rect(c, [7, 1]).pad_hw(3, 0);
    let b1 = bc(g, prefix, "branch1x1", x, Conv2d::new(192, 1))?;
    let b7 = bc(g, prefix, "branch7x7_1", x, Conv2d::new(c7, 1))?;
    let b7 = bc(g, prefix, "branch7x7_2", b7, k17(c7))?;
    let b7 = bc(g, prefix, "branch7x7_3", b7, k71(192))?;
    let bd = bc(g, prefix, "branch7x7dbl_1", x, Conv2d::new(c7, 1))?;
    let bd = bc(g, prefix, "branch7x7dbl_2", bd, k71(c7))?;
    let bd = bc(g, prefix, "branch7x7dbl_3", bd, k17(c7))?;
    let bd = bc(g, prefix, "branch7x7dbl_4", bd, k71(c7))?;
    let bd = bc(g, prefix, "branch7x7dbl_5", bd, k17(192))?;
    let bp = avg3(g, &key(prefix, "branch_pool.avgpool"), x)?;
    let bp = bc(g, prefix, "branch_pool", bp, Conv2d::new(192, 1))?;
    g.concat(&key(prefix, "cat"), &[b1, b7, bd, bp])
}

/// `InceptionD(in_channels)` (grid reduction): 320 + 192 + `in_channels`
/// output channels at (H−3)/2+1.
///
/// Branches: `branch3x3_1` (1×1, 192) → `branch3x3_2` (3×3/2, 320);
/// `branch7x7x3_1` (1×1, 192) → `_2` (1×7 pad (0,3), 192) →
/// `_3` (7×1 pad (3,0), 192) → `_4` (3×3/2, 192); max pool 3×3/2.
pub fn inception_d(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let b3 = bc(g, prefix, "branch3x3_1", x, Conv2d::new(192, 1))?;
    let b3 = bc(g, prefix, "branch3x3_2", b3, Conv2d::new(320, 3).stride(2))?;
    let b7 = bc(g, prefix, "branch7x7x3_1", x, Conv2d::new(192, 1))?;
    let b7 = bc(
        g,
        prefix,
        "branch7x7x3_2",
        b7,
        Conv2d::rect(192, [1, 7]).pad_hw(0, 3),
    )?;
    let b7 = bc(
        g,
        prefix,
        "branch7x7x3_3",
        b7,
        Conv2d::rect(192, [7, 1]).pad_hw(3, 0),
    )?;
    let b7 = bc(
        g,
        prefix,
        "branch7x7x3_4",
        b7,
        Conv2d::new(192, 3).stride(2),
    )?;
    let bp = g.pool(&key(prefix, "branch_pool"), x, Pool::max(3, 2, 0))?;
    g.concat(&key(prefix, "cat"), &[b3, b7, bp])
}

/// `InceptionE(in_channels)`: 320 + 768 + 768 + 192 = 2048 output channels,
/// same spatial size.
///
/// Branches: `branch1x1` (1×1, 320); `branch3x3_1` (1×1, 384) →
/// [`branch3x3_2a` (1×3 pad (0,1), 384), `branch3x3_2b` (3×1 pad (1,0), 384)];
/// `branch3x3dbl_1` (1×1, 448) → `branch3x3dbl_2` (3×3 pad 1, 384) →
/// [`branch3x3dbl_3a` (1×3), `branch3x3dbl_3b` (3×1)], 384 each;
/// avg pool 3/1/1 → `branch_pool` (1×1, 192).
pub fn inception_e(g: &mut Graph, prefix: &str, x: ValueId) -> Result<ValueId> {
    let k13 = |c| Conv2d::rect(c, [1, 3]).pad_hw(0, 1);
    let k31 = |c| Conv2d::rect(c, [3, 1]).pad_hw(1, 0);
    let b1 = bc(g, prefix, "branch1x1", x, Conv2d::new(320, 1))?;
    let b3 = bc(g, prefix, "branch3x3_1", x, Conv2d::new(384, 1))?;
    let b3a = bc(g, prefix, "branch3x3_2a", b3, k13(384))?;
    let b3b = bc(g, prefix, "branch3x3_2b", b3, k31(384))?;
    let bd = bc(g, prefix, "branch3x3dbl_1", x, Conv2d::new(448, 1))?;
    let bd = bc(g, prefix, "branch3x3dbl_2", bd, Conv2d::new(384, 3).pad(1))?;
    let bda = bc(g, prefix, "branch3x3dbl_3a", bd, k13(384))?;
    let bdb = bc(g, prefix, "branch3x3dbl_3b", bd, k31(384))?;
    let bp = avg3(g, &key(prefix, "branch_pool.avgpool"), x)?;
    let bp = bc(g, prefix, "branch_pool", bp, Conv2d::new(192, 1))?;
    g.concat(&key(prefix, "cat"), &[b1, b3a, b3b, bda, bdb, bp])
}

/// `InceptionAux(in_channels, num_classes)`: avg pool 5×5/3 → `conv0`
/// (1×1, 128) → `conv1` (5×5, 768) → global average pool → `fc`
/// (768 → classes). On a 17×17 input the 5×5 conv sees exactly 5×5.
pub fn inception_aux(g: &mut Graph, prefix: &str, x: ValueId, classes: usize) -> Result<ValueId> {
    let p = g.pool(&key(prefix, "avgpool"), x, Pool::avg(5, 3, 0))?;
    let c = bc(g, prefix, "conv0", p, Conv2d::new(128, 1))?;
    let c = bc(g, prefix, "conv1", c, Conv2d::new(768, 5))?;
    pool_linear_head(
        g,
        &key(prefix, "adaptive_avg_pool"),
        &key(prefix, "fc"),
        c,
        classes,
    )
}

/// torchvision `inception_v3(aux_logits=opts.aux_logits,
/// transform_input=False)` for `opts.classes` classes. Outputs: the logits,
/// then (with `aux_logits`) the `AuxLogits` head's logits.
/// 23,834,568 parameters without the aux head, 27,161,264 with it.
pub fn inception_v3(opts: &Options) -> Result<Graph> {
    check_options("inception_v3", opts)?;
    let mut g = Graph::new();
    let g_ = &mut g;
    let x = g_.input("input", opts.input_shape())?;
    let y = bc(g_, "", "Conv2d_1a_3x3", x, Conv2d::new(32, 3).stride(2))?;
    let y = bc(g_, "", "Conv2d_2a_3x3", y, Conv2d::new(32, 3))?;
    let y = bc(g_, "", "Conv2d_2b_3x3", y, Conv2d::new(64, 3).pad(1))?;
    let y = g_.pool("maxpool1", y, Pool::max(3, 2, 0))?;
    let y = bc(g_, "", "Conv2d_3b_1x1", y, Conv2d::new(80, 1))?;
    let y = bc(g_, "", "Conv2d_4a_3x3", y, Conv2d::new(192, 3))?;
    let y = g_.pool("maxpool2", y, Pool::max(3, 2, 0))?;
    let y = inception_a(g_, "Mixed_5b", y, 32)?;
    let y = inception_a(g_, "Mixed_5c", y, 64)?;
    let y = inception_a(g_, "Mixed_5d", y, 64)?;
    let y = inception_b(g_, "Mixed_6a", y)?;
    let y = inception_c(g_, "Mixed_6b", y, 128)?;
    let y = inception_c(g_, "Mixed_6c", y, 160)?;
    let y = inception_c(g_, "Mixed_6d", y, 160)?;
    let y = inception_c(g_, "Mixed_6e", y, 192)?;
    let aux = if opts.aux_logits {
        Some(inception_aux(g_, "AuxLogits", y, opts.classes)?)
    } else {
        None
    };
    let y = inception_d(g_, "Mixed_7a", y)?;
    let y = inception_e(g_, "Mixed_7b", y)?;
    let y = inception_e(g_, "Mixed_7c", y)?;
    let logits = pool_linear_head(g_, "avgpool", "fc", y, opts.classes)?;
    g.output(logits);
    if let Some(a) = aux {
        g.output(a);
    }
    g.validate()?;
    Ok(g)
}
