//! The model zoo: ResNet, pre-activation ResNet and Inception graphs, built
//! exactly as torchvision and timm build them, so that their `state_dict`s
//! load by key.
//!
//! Every builder returns a [`Graph`] whose single output (two for
//! Inception-v3 with [`Options::aux_logits`]) is the logits, `(N, classes)`
//! (a `(N, classes, 1, 1)` value), with no softmax. Node names are the
//! PyTorch `state_dict` key prefixes of the module they mirror
//! (`layer1.0.conv1`, `Mixed_5b.branch1x1.conv`, `features.6.branch0.conv`,
//! `repeat.0.branch1.1.conv`, `stages.0.blocks.0.norm1`, ...); nodes without
//! parameters (ReLU, pools, adds, concats) get descriptive names under the
//! same prefixes (`layer1.0.relu2`, `Mixed_5b.cat`). Shapes are inferred for
//! the nominal input of [`Options`]; a graph compiles for any other batch and
//! input size its layers accept.
//!
//! | module | models | source |
//! | --- | --- | --- |
//! | [`resnet`] | `resnet18/34/50/101/152`, `plain18/34` | torchvision (v1.5) |
//! | [`preact`] | `resnetv2_50/101/152/200`, `preact_resnet164/1001_cifar` | timm `resnetv2`, He et al. 2016 |
//! | [`inception_v3`] | `inception_v3` | torchvision |
//! | [`inception_v4`] | `inception_v4` | timm |
//! | [`inception_resnet_v2`] | `inception_resnet_v2` | timm |
//!
//! The registry ([`MODEL_NAMES`], [`info`], [`build`]) builds a model by
//! name; [`build_block`] builds the single blocks of the golden fixtures
//! (`kernels-tests/golden/blocks`) with block-relative node names
//! (`conv1`, `branch7x7_2.conv`), as the fixtures' synthetic weights are
//! keyed. The blocks themselves are public functions of each module, so
//! other networks can be composed from them.

pub mod inception_resnet_v2;
pub mod inception_v3;
pub mod inception_v4;
pub mod preact;
pub mod resnet;

use crate::error::{Error, Result};
use crate::graph::{Conv2d, Graph, ValueId};

/// What a model builder needs besides the architecture: the nominal input
/// shape, the number of classes and optional heads.
///
/// The input shape is the one shapes are inferred against at build time;
/// compiling for another batch or size re-infers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Batch size N of the nominal input.
    pub batch: usize,
    /// Input height H.
    pub height: usize,
    /// Input width W.
    pub width: usize,
    /// Number of classes (the logits' width).
    pub classes: usize,
    /// Inception-v3 only: also build torchvision's `AuxLogits` head, as a
    /// second graph output `(N, classes)` after the main logits. Other
    /// builders ignore it.
    pub aux_logits: bool,
}

impl Options {
    /// Batch `batch`, `height`×`width` RGB input, 1000 classes, no aux head.
    pub fn new(batch: usize, height: usize, width: usize) -> Self {
        Self {
            batch,
            height,
            width,
            classes: 1000,
            aux_logits: false,
        }
    }

    /// Sets the number of classes.
    pub fn classes(mut self, classes: usize) -> Self {
        self.classes = classes;
        self
    }

    /// Turns the Inception-v3 auxiliary head on or off.
    pub fn aux_logits(mut self, on: bool) -> Self {
        self.aux_logits = on;
        self
    }

    /// The nominal input shape `[N, 3, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, 3, self.height, self.width]
    }
}

/// The models [`build`] knows, by the names it accepts.
pub const MODEL_NAMES: &[&str] = &[
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "plain18",
    "plain34",
    "resnetv2_50",
    "resnetv2_101",
    "resnetv2_152",
    "resnetv2_200",
    "preact_resnet164_cifar",
    "preact_resnet1001_cifar",
    "inception_v3",
    "inception_v4",
    "inception_resnet_v2",
];

/// Facts about a registered model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// Its name in [`MODEL_NAMES`].
    pub name: &'static str,
    /// The square input size it was designed for: 224 (ResNets), 299
    /// (Inceptions) or 32 (CIFAR nets).
    pub default_size: usize,
    /// Classes of its classifier: 1000 (ImageNet) or 10 (CIFAR-10).
    pub classes: usize,
    /// Whose layout and key names it follows: `"torchvision"`, `"timm"`, or
    /// `"paper"` for networks neither library registers (the plain nets,
    /// ResNet-200 and the CIFAR pre-activation nets), built in the style of
    /// their closest torchvision/timm relative.
    pub source: &'static str,
    /// The classifier's parameter prefix, as the family names it: `fc`
    /// (torchvision), `last_linear` (timm's Inception-v4), `classif`
    /// (timm's Inception-ResNet-v2) or `head.fc` (timm's ResNetV2, a 1×1
    /// conv).
    pub head: &'static str,
}

impl ModelInfo {
    /// [`Options`] for this model at batch `batch` and its default size.
    pub fn options(&self, batch: usize) -> Options {
        Options::new(batch, self.default_size, self.default_size).classes(self.classes)
    }

    /// The number of classes a checkpoint's classifier has: the first
    /// dimension of `{head}.weight` (a fine-tuned ResNet-50 with a 10-class
    /// `fc` gives 10), or [`ModelInfo::classes`] when the checkpoint has no
    /// such key (the check against the graph then names what is missing).
    /// Errors name the key when its shape is not a classifier's
    /// (`[classes, features]`, or `[classes, features, 1, 1]` for a 1×1
    /// conv head) or has no classes.
    pub fn classes_in(&self, weights: &crate::weights::Weights) -> Result<usize> {
        let key = format!("{}.weight", self.head);
        if !weights.contains(&key) {
            return Ok(self.classes);
        }
        let shape = &weights.get(&key)?.shape;
        let ok = match shape.as_slice() {
            [c, _] | [c, _, 1, 1] => *c > 0,
            _ => false,
        };
        if !ok {
            return Err(crate::Error::Weights {
                key,
                message: format!(
                    "shape {shape:?} is not a classifier's ([classes, features]{})",
                    if self.head == "head.fc" {
                        " or [classes, features, 1, 1]"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(shape[0])
    }
}

/// The [`ModelInfo`] of `name`; an unknown name is [`Error::Invalid`]
/// listing the known ones.
pub fn info(name: &str) -> Result<ModelInfo> {
    let (default_size, classes, source, head) = match name {
        "resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152" | "resnext50_32x4d"
        | "resnext101_32x8d" | "resnext101_64x4d" | "wide_resnet50_2" | "wide_resnet101_2" => {
            (224, 1000, "torchvision", "fc")
        }
        "plain18" | "plain34" => (224, 1000, "paper", "fc"),
        "resnetv2_50" | "resnetv2_101" | "resnetv2_152" => (224, 1000, "timm", "head.fc"),
        "resnetv2_200" => (224, 1000, "paper", "head.fc"),
        "preact_resnet164_cifar" | "preact_resnet1001_cifar" => (32, 10, "paper", "head.fc"),
        "inception_v3" => (299, 1000, "torchvision", "fc"),
        "inception_v4" => (299, 1000, "timm", "last_linear"),
        "inception_resnet_v2" => (299, 1000, "timm", "classif"),
        _ => return Err(unknown("model", name, MODEL_NAMES)),
    };
    let name = MODEL_NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .expect("every matched name is in MODEL_NAMES");
    Ok(ModelInfo {
        name,
        default_size,
        classes,
        source,
        head,
    })
}

/// Builds model `name` for a nominal `batch`×3×`size`×`size` input with its
/// default number of classes ([`ModelInfo::classes`]). An unknown name is
/// [`Error::Invalid`] listing the known ones.
pub fn build(name: &str, batch: usize, size: usize) -> Result<Graph> {
    let opts = Options::new(batch, size, size).classes(info(name)?.classes);
    build_with(name, &opts)
}

/// Builds model `name` with explicit [`Options`] (non-square inputs, another
/// class count, Inception-v3's aux head).
pub fn build_with(name: &str, opts: &Options) -> Result<Graph> {
    match name {
        "resnet18" => resnet::resnet18(opts),
        "resnet34" => resnet::resnet34(opts),
        "resnet50" => resnet::resnet50(opts),
        "resnet101" => resnet::resnet101(opts),
        "resnet152" => resnet::resnet152(opts),
        "resnext50_32x4d" => resnet::resnext50_32x4d(opts),
        "resnext101_32x8d" => resnet::resnext101_32x8d(opts),
        "resnext101_64x4d" => resnet::resnext101_64x4d(opts),
        "wide_resnet50_2" => resnet::wide_resnet50_2(opts),
        "wide_resnet101_2" => resnet::wide_resnet101_2(opts),
        "plain18" => resnet::plain18(opts),
        "plain34" => resnet::plain34(opts),
        "resnetv2_50" => preact::resnetv2_50(opts),
        "resnetv2_101" => preact::resnetv2_101(opts),
        "resnetv2_152" => preact::resnetv2_152(opts),
        "resnetv2_200" => preact::resnetv2_200(opts),
        "preact_resnet164_cifar" => preact::preact_resnet164_cifar(opts),
        "preact_resnet1001_cifar" => preact::preact_resnet1001_cifar(opts),
        "inception_v3" => inception_v3::inception_v3(opts),
        "inception_v4" => inception_v4::inception_v4(opts),
        "inception_resnet_v2" => inception_resnet_v2::inception_resnet_v2(opts),
        _ => Err(unknown("model", name, MODEL_NAMES)),
    }
}

/// The blocks [`build_block`] knows: the `block` metadata of the golden
/// fixtures in `kernels-tests/golden/blocks`.
pub const BLOCK_NAMES: &[&str] = &[
    "resnet_basic",
    "resnet_basic_down",
    "resnet_bottleneck",
    "resnet_bottleneck_down",
    "preact_bottleneck_proj",
    "preact_bottleneck",
    "preact_bottleneck_down",
    "inception_v3_a",
    "inception_v3_b",
    "inception_v3_c",
    "inception_v3_d",
    "inception_v3_e",
    "inception_v4_stem",
    "inception_v4_a",
    "inception_v4_reduction_a",
    "inception_v4_b",
    "inception_v4_reduction_b",
    "inception_v4_c",
    "inception_resnet_v2_mixed_5b",
    "inception_resnet_v2_block35",
    "inception_resnet_v2_mixed_6a",
    "inception_resnet_v2_block17",
    "inception_resnet_v2_mixed_7a",
    "inception_resnet_v2_block8",
    "inception_resnet_v2_block8_last",
];

/// The input channels each block in [`BLOCK_NAMES`] is configured for.
fn block_in_channels(name: &str) -> Option<usize> {
    Some(match name {
        "resnet_basic" | "resnet_basic_down" | "preact_bottleneck_proj" => 64,
        "resnet_bottleneck" | "resnet_bottleneck_down" => 256,
        "preact_bottleneck" | "preact_bottleneck_down" => 256,
        "inception_v3_a" => 192,
        "inception_v3_b" => 288,
        "inception_v3_c" | "inception_v3_d" => 768,
        "inception_v3_e" => 1280,
        "inception_v4_stem" => 3,
        "inception_v4_a" | "inception_v4_reduction_a" => 384,
        "inception_v4_b" | "inception_v4_reduction_b" => 1024,
        "inception_v4_c" => 1536,
        "inception_resnet_v2_mixed_5b" => 192,
        "inception_resnet_v2_block35" | "inception_resnet_v2_mixed_6a" => 320,
        "inception_resnet_v2_block17" | "inception_resnet_v2_mixed_7a" => 1088,
        "inception_resnet_v2_block8" | "inception_resnet_v2_block8_last" => 2080,
        _ => return None,
    })
}

/// Builds the golden-fixture block `name` (one of [`BLOCK_NAMES`]) for a
/// nominal NCHW `input_shape`, as the module `make_golden.py` instantiated:
///
/// | block | PyTorch module |
/// | --- | --- |
/// | `resnet_basic` | torchvision `BasicBlock(64, 64)` |
/// | `resnet_basic_down` | `BasicBlock(64, 128, 2, downsample=conv1x1 s2 + BN)` |
/// | `resnet_bottleneck` | `Bottleneck(256, 64)` |
/// | `resnet_bottleneck_down` | `Bottleneck(256, 128, 2, downsample=conv1x1 s2 + BN)` |
/// | `preact_bottleneck_proj` | timm `resnetv2_50().stages[0].blocks[0]` (64 → 256) |
/// | `preact_bottleneck` | `resnetv2_50().stages[0].blocks[1]` (256 → 256) |
/// | `preact_bottleneck_down` | `resnetv2_50().stages[1].blocks[0]` (256 → 512, s2) |
/// | `inception_v3_a` … `_e` | torchvision `InceptionA(192, 32)`, `B(288)`, `C(768, 128)`, `D(768)`, `E(1280)` |
/// | `inception_v4_stem` | timm `inception_v4().features[:6]` (keys `0.conv` … `5.conv`) |
/// | `inception_v4_a`, `_reduction_a`, `_b`, `_reduction_b`, `_c` | `features[6]`, `[10]`, `[11]`, `[18]`, `[19]` |
/// | `inception_resnet_v2_mixed_5b`, `_mixed_6a`, `_mixed_7a` | timm `mixed_5b`, `mixed_6a`, `mixed_7a` |
/// | `inception_resnet_v2_block35`, `_block17`, `_block8` | `repeat[0]` (scale 0.17), `repeat_1[0]` (0.10), `repeat_2[0]` (0.20) |
/// | `inception_resnet_v2_block8_last` | `block8`: scale 1.0, no ReLU |
///
/// Node names are relative to the block module (`conv1`, `downsample.0`,
/// `branch7x7_2.conv`, `branch1.1.conv`), as the fixtures' synthetic weights
/// are keyed. The block's channel configuration is fixed by its name: an
/// input with other channels is an [`Error::Shape`]; an unknown name is
/// [`Error::Invalid`] listing the known ones.
pub fn build_block(name: &str, input_shape: [usize; 4]) -> Result<Graph> {
    let cin = block_in_channels(name).ok_or_else(|| unknown("block", name, BLOCK_NAMES))?;
    if input_shape[1] != cin {
        return Err(Error::Shape {
            node: name.into(),
            expected: format!("{cin} input channels"),
            actual: format!("input {input_shape:?}"),
        });
    }
    let mut g = Graph::new();
    let x = g.input("input", input_shape)?;
    let g_ = &mut g;
    let y = match name {
        "resnet_basic" => resnet::basic_block(g_, "", x, 64, 1, resnet::Shortcut::Identity)?,
        "resnet_basic_down" => {
            resnet::basic_block(g_, "", x, 128, 2, resnet::Shortcut::Projection)?
        }
        "resnet_bottleneck" => resnet::bottleneck(g_, "", x, 64, 1, resnet::Shortcut::Identity)?,
        "resnet_bottleneck_down" => {
            resnet::bottleneck(g_, "", x, 128, 2, resnet::Shortcut::Projection)?
        }
        "preact_bottleneck_proj" => preact::preact_bottleneck(g_, "", x, 256, 1, true)?,
        "preact_bottleneck" => preact::preact_bottleneck(g_, "", x, 256, 1, false)?,
        "preact_bottleneck_down" => preact::preact_bottleneck(g_, "", x, 512, 2, true)?,
        "inception_v3_a" => inception_v3::inception_a(g_, "", x, 32)?,
        "inception_v3_b" => inception_v3::inception_b(g_, "", x)?,
        "inception_v3_c" => inception_v3::inception_c(g_, "", x, 128)?,
        "inception_v3_d" => inception_v3::inception_d(g_, "", x)?,
        "inception_v3_e" => inception_v3::inception_e(g_, "", x)?,
        "inception_v4_stem" => inception_v4::stem(g_, "", x)?,
        "inception_v4_a" => inception_v4::inception_a(g_, "", x)?,
        "inception_v4_reduction_a" => inception_v4::reduction_a(g_, "", x)?,
        "inception_v4_b" => inception_v4::inception_b(g_, "", x)?,
        "inception_v4_reduction_b" => inception_v4::reduction_b(g_, "", x)?,
        "inception_v4_c" => inception_v4::inception_c(g_, "", x)?,
        "inception_resnet_v2_mixed_5b" => inception_resnet_v2::mixed_5b(g_, "", x)?,
        "inception_resnet_v2_block35" => inception_resnet_v2::block35(g_, "", x, 0.17)?,
        "inception_resnet_v2_mixed_6a" => inception_resnet_v2::mixed_6a(g_, "", x)?,
        "inception_resnet_v2_block17" => inception_resnet_v2::block17(g_, "", x, 0.10)?,
        "inception_resnet_v2_mixed_7a" => inception_resnet_v2::mixed_7a(g_, "", x)?,
        "inception_resnet_v2_block8" => inception_resnet_v2::block8(g_, "", x, 0.20, true)?,
        "inception_resnet_v2_block8_last" => inception_resnet_v2::block8(g_, "", x, 1.0, false)?,
        _ => unreachable!("block_in_channels knows every block name"),
    };
    g.output(y);
    g.validate()?;
    Ok(g)
}

/// `prefix.name`, or just `name` when `prefix` is empty (a block built at
/// the root, as the golden fixtures key it).
pub fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Conv (no bias) → BatchNorm(`eps`) → ReLU under one prefix: torchvision's
/// Inception `BasicConv2d` and timm's `ConvNormAct` (nodes `{prefix}.conv`,
/// `{prefix}.bn`, and the ReLU `{prefix}.relu`).
pub fn conv_bn_relu(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    conv: Conv2d,
    eps: f32,
) -> Result<ValueId> {
    let c = g.conv2d(&key(prefix, "conv"), x, conv)?;
    let b = g.batchnorm(&key(prefix, "bn"), c, eps)?;
    g.relu(&key(prefix, "relu"), b)
}

/// The error for an unknown model or block name, listing the known ones.
fn unknown(what: &str, name: &str, known: &[&str]) -> Error {
    Error::Invalid(format!(
        "unknown {what} `{name}`; known {what}s: {}",
        known.join(", ")
    ))
}

/// Global average pool then the classifier `nn.Linear(C, classes)` named
/// `fc_name`: the head of every torchvision/timm model here but the
/// `resnetv2` family (whose classifier is a 1×1 conv).
pub(crate) fn pool_linear_head(
    g: &mut Graph,
    pool_name: &str,
    fc_name: &str,
    x: ValueId,
    classes: usize,
) -> Result<ValueId> {
    let p = g.global_avg_pool(pool_name, x)?;
    g.linear(fc_name, p, classes, true)
}

/// Checks an [`Options`] before building: nothing zero-sized.
pub(crate) fn check_options(model: &str, opts: &Options) -> Result<()> {
    if opts.batch == 0 || opts.height == 0 || opts.width == 0 || opts.classes == 0 {
        return Err(Error::Invalid(format!(
            "{model}: batch, height, width and classes must be positive, got {opts:?}"
        )));
    }
    Ok(())
}
