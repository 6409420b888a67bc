//! Model zoo tests (CPU only, no weights, fast): every registered model
//! builds, its parameter count is the figure its library publishes, its
//! multiply-adds are the published ones, its `state_dict` keys are
//! PyTorch's, and the registry's errors name what is known.

use resincept::graph::Graph;
use resincept::models::{self, Options, BLOCK_NAMES, MODEL_NAMES};
use std::collections::{HashMap, HashSet};

fn specs(g: &Graph) -> HashMap<String, Vec<usize>> {
    g.param_specs().into_iter().collect()
}

fn output_shape(g: &Graph, i: usize) -> [usize; 4] {
    g.shapes[g.outputs[i].0]
}

#[test]
fn every_model_builds_at_its_default_size() {
    let mut seen = HashSet::new();
    for &name in MODEL_NAMES {
        assert!(seen.insert(name), "{name} listed twice in MODEL_NAMES");
        let info = models::info(name).unwrap();
        assert_eq!(info.name, name);
        assert!(["torchvision", "timm", "paper"].contains(&info.source));
        let g = models::build(name, 2, info.default_size).unwrap_or_else(|e| panic!("{name}: {e}"));
        g.validate().unwrap();
        assert_eq!(g.outputs.len(), 1, "{name}");
        assert_eq!(output_shape(&g, 0), [2, info.classes, 1, 1], "{name}");
        // Every parameter key is unique (a duplicate would load one tensor twice).
        let keys: Vec<_> = g.param_specs().into_iter().map(|(k, _)| k).collect();
        let unique: HashSet<_> = keys.iter().collect();
        assert_eq!(keys.len(), unique.len(), "{name}: duplicate parameter keys");
    }
}

#[test]
fn registry_defaults() {
    let want = [
        ("resnet18", 224, 1000, "torchvision"),
        ("resnet152", 224, 1000, "torchvision"),
        ("resnext50_32x4d", 224, 1000, "torchvision"),
        ("wide_resnet101_2", 224, 1000, "torchvision"),
        ("plain34", 224, 1000, "paper"),
        ("resnetv2_50", 224, 1000, "timm"),
        ("resnetv2_200", 224, 1000, "paper"),
        ("preact_resnet164_cifar", 32, 10, "paper"),
        ("preact_resnet1001_cifar", 32, 10, "paper"),
        ("inception_v3", 299, 1000, "torchvision"),
        ("inception_v4", 299, 1000, "timm"),
        ("inception_resnet_v2", 299, 1000, "timm"),
    ];
    for (name, size, classes, source) in want {
        let i = models::info(name).unwrap();
        assert_eq!(
            (i.default_size, i.classes, i.source),
            (size, classes, source),
            "{name}"
        );
    }
}

#[test]
fn unknown_names_list_the_known_ones() {
    for err in [
        models::info("resnet51").unwrap_err(),
        models::build("resnet51", 1, 224).unwrap_err(),
        models::build_with("resnet51", &Options::new(1, 224, 224)).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(msg.contains("resnet51"), "{msg}");
        for name in MODEL_NAMES {
            assert!(msg.contains(name), "`{msg}` does not list {name}");
        }
    }
    let msg = models::build_block("inception_v3_z", [1, 3, 9, 9])
        .unwrap_err()
        .to_string();
    for name in BLOCK_NAMES {
        assert!(msg.contains(name), "`{msg}` does not list {name}");
    }
}

/// Published parameter counts (`sum(p.numel() for p in model.parameters())`:
/// BatchNorm running statistics are buffers and not counted).
#[test]
fn parameter_counts_match_published_figures() {
    let want: &[(&str, u64, &str)] = &[
        ("resnet18", 11_689_512, "torchvision docs"),
        ("resnet34", 21_797_672, "torchvision docs"),
        ("resnet50", 25_557_032, "torchvision docs"),
        ("resnet101", 44_549_160, "torchvision docs"),
        ("resnet152", 60_192_808, "torchvision docs"),
        ("resnext50_32x4d", 25_028_904, "torchvision docs"),
        ("resnext101_32x8d", 88_791_336, "torchvision docs"),
        ("resnext101_64x4d", 83_455_272, "torchvision docs"),
        ("wide_resnet50_2", 68_883_240, "torchvision docs"),
        ("wide_resnet101_2", 126_886_696, "torchvision docs"),
        ("inception_v3", 23_834_568, "torchvision, aux_logits=False"),
        ("inception_v4", 42_679_816, "timm"),
        ("inception_resnet_v2", 55_843_464, "timm"),
        // torchvision resnet50 − 7,680: no stem BN (−128), per-block norms
        // on the block input instead of the output and no BN in the
        // projections (−11,648), plus the final `norm` (+4,096).
        ("resnetv2_50", 25_549_352, "timm"),
        // The same differences on ResNet-101/152.
        ("resnetv2_101", 44_541_480, "timm"),
        ("resnetv2_152", 60_185_128, "timm"),
        // ResNet-18/34 minus their three projection shortcuts (173,824).
        ("plain18", 11_515_688, "by construction"),
        ("plain34", 21_623_848, "by construction"),
    ];
    for &(name, count, source) in want {
        let info = models::info(name).unwrap();
        let g = models::build(name, 1, info.default_size).unwrap();
        assert_eq!(g.param_count(), count, "{name} ({source})");
    }
    let aux =
        models::build_with("inception_v3", &Options::new(1, 299, 299).aux_logits(true)).unwrap();
    assert_eq!(aux.param_count(), 27_161_264, "inception_v3 with AuxLogits");
}

/// The identity-mappings paper quotes 1.7M (ResNet-164) and 10.2M
/// (ResNet-1001) parameters: its figures count conv and fc weights; the
/// BatchNorm affine parameters add 24,224 and 149,216.
#[test]
fn cifar_preact_nets_match_the_paper() {
    for (name, total, without_bn, paper) in [
        ("preact_resnet164_cifar", 1_703_258u64, 1_679_034u64, 1.7),
        ("preact_resnet1001_cifar", 10_327_706, 10_178_490, 10.2),
    ] {
        let g = models::build(name, 1, 32).unwrap();
        assert_eq!(g.param_count(), total, "{name}");
        let bn: u64 = g
            .param_specs()
            .iter()
            .filter(|(k, s)| {
                s.len() == 1
                    && !k.ends_with("running_mean")
                    && !k.ends_with("running_var")
                    && k != "head.fc.bias"
            })
            .map(|(_, s)| s[0] as u64)
            .sum();
        assert_eq!(total - bn, without_bn, "{name}");
        let m = without_bn as f64 / 1e6;
        assert!(
            (m - paper).abs() < 0.05,
            "{name}: {m:.3}M vs paper {paper}M"
        );
        // 32 → 32 → 16 → 8: the last stage runs on 8×8 maps.
        let last = g
            .nodes
            .iter()
            .find(|n| n.name == "norm")
            .expect("final norm");
        assert_eq!(g.shapes[last.output.0], [1, 256, 8, 8], "{name}");
    }
}

/// Multiply-adds at the models' standard sizes against the "GFLOPS" columns
/// that torchvision publishes (which count multiply-adds) and the GMACs of
/// timm's model cards, then exactly against counts taken from the PyTorch
/// models.
#[test]
fn multiply_adds_match_published_figures() {
    let want: &[(&str, usize, f64, f64)] = &[
        // name, size, published G multiply-adds, relative tolerance
        ("resnet18", 224, 1.81, 0.01),
        ("resnet34", 224, 3.66, 0.01),
        ("resnet50", 224, 4.09, 0.01),
        ("resnet101", 224, 7.80, 0.01),
        ("resnet152", 224, 11.51, 0.01),
        ("resnext50_32x4d", 224, 4.23, 0.01),
        ("resnext101_32x8d", 224, 16.41, 0.01),
        ("resnext101_64x4d", 224, 15.46, 0.01),
        ("wide_resnet50_2", 224, 11.40, 0.01),
        ("wide_resnet101_2", 224, 22.75, 0.01),
        ("inception_v3", 299, 5.71, 0.02),
        ("inception_v4", 299, 12.3, 0.01),
        ("inception_resnet_v2", 299, 13.2, 0.01),
    ];
    for &(name, size, gmacs, tol) in want {
        let g = models::build(name, 1, size).unwrap();
        let got = g.macs([1, 3, size, size]).unwrap() as f64 / 1e9;
        assert!(
            (got - gmacs).abs() <= tol * gmacs,
            "{name}: {got:.4} G multiply-adds, published {gmacs}"
        );
    }
    // Exact figures, so a change in any layer shows: the conv and linear
    // multiply-adds counted by forward hooks on the torchvision 0.29 and
    // timm 1.0.31 models themselves (output elements × kh·kw·C_in/groups,
    // and × in_features), one image at the default size.
    let exact: &[(&str, usize, u64)] = &[
        ("resnet18", 224, 1_814_073_344),
        ("resnet50", 224, 4_089_184_256),
        ("resnet152", 224, 11_513_626_624),
        ("resnext50_32x4d", 224, 4_230_479_872),
        ("resnext101_32x8d", 224, 16_414_015_488),
        ("resnext101_64x4d", 224, 15_460_270_080),
        ("wide_resnet50_2", 224, 11_398_021_120),
        ("wide_resnet101_2", 224, 22_753_050_624),
        ("resnetv2_50", 224, 4_089_184_256),
        ("resnetv2_101", 224, 7_801_405_440),
        ("resnetv2_152", 224, 11_513_626_624),
        ("inception_v3", 299, 5_713_216_096),
        ("inception_v4", 299, 12_253_974_624),
        ("inception_resnet_v2", 299, 13_155_794_016),
    ];
    for &(name, size, macs) in exact {
        let g = models::build(name, 1, size).unwrap();
        assert_eq!(g.macs([1, 3, size, size]).unwrap(), macs, "{name}");
    }
    let r50 = models::build("resnet50", 1, 224).unwrap();
    // Multiply-adds scale with the batch.
    assert_eq!(r50.macs([3, 3, 224, 224]).unwrap(), 3 * 4_089_184_256);
}

/// A `state_dict` key and its PyTorch shape.
type KeyShape = (&'static str, &'static [usize]);

/// Spot checks that keys and shapes are PyTorch's own, so real
/// `state_dict`s load by key.
#[test]
fn keys_are_pytorch_state_dict_keys() {
    let cases: &[(&str, &[KeyShape])] = &[
        (
            "resnet50",
            &[
                ("conv1.weight", &[64, 3, 7, 7]),
                ("bn1.running_var", &[64]),
                ("layer1.0.conv1.weight", &[64, 64, 1, 1]),
                ("layer1.0.downsample.0.weight", &[256, 64, 1, 1]),
                ("layer1.0.downsample.1.weight", &[256]),
                ("layer2.0.conv2.weight", &[128, 128, 3, 3]),
                ("layer4.2.bn3.bias", &[2048]),
                ("fc.weight", &[1000, 2048]),
                ("fc.bias", &[1000]),
            ],
        ),
        (
            "resnet18",
            &[
                ("layer2.0.downsample.0.weight", &[128, 64, 1, 1]),
                ("layer4.1.conv2.weight", &[512, 512, 3, 3]),
                ("fc.weight", &[1000, 512]),
            ],
        ),
        (
            "resnetv2_50",
            &[
                ("stem.conv.weight", &[64, 3, 7, 7]),
                ("stages.0.blocks.0.norm1.weight", &[64]),
                ("stages.0.blocks.0.downsample.conv.weight", &[256, 64, 1, 1]),
                ("stages.1.blocks.0.conv2.weight", &[128, 128, 3, 3]),
                ("stages.3.blocks.2.conv3.weight", &[2048, 512, 1, 1]),
                ("norm.running_mean", &[2048]),
                ("head.fc.weight", &[1000, 2048, 1, 1]),
                ("head.fc.bias", &[1000]),
            ],
        ),
        (
            "inception_v3",
            &[
                ("Conv2d_1a_3x3.conv.weight", &[32, 3, 3, 3]),
                ("Conv2d_4a_3x3.bn.running_var", &[192]),
                ("Mixed_5b.branch1x1.conv.weight", &[64, 192, 1, 1]),
                ("Mixed_5b.branch_pool.conv.weight", &[32, 192, 1, 1]),
                ("Mixed_6b.branch7x7_2.conv.weight", &[128, 128, 1, 7]),
                ("Mixed_6e.branch7x7dbl_2.conv.weight", &[192, 192, 7, 1]),
                ("Mixed_7b.branch3x3_2b.conv.weight", &[384, 384, 3, 1]),
                ("Mixed_7c.branch_pool.bn.weight", &[192]),
                ("fc.weight", &[1000, 2048]),
            ],
        ),
        (
            "inception_v4",
            &[
                ("features.0.conv.weight", &[32, 3, 3, 3]),
                ("features.3.conv.conv.weight", &[96, 64, 3, 3]),
                ("features.5.conv.bn.weight", &[192]),
                ("features.4.branch1.1.conv.weight", &[64, 64, 1, 7]),
                ("features.6.branch0.conv.weight", &[96, 384, 1, 1]),
                ("features.6.branch3.1.bn.weight", &[96]),
                ("features.10.branch1.2.conv.weight", &[256, 224, 3, 3]),
                ("features.17.branch2.4.conv.weight", &[256, 224, 1, 7]),
                ("features.18.branch1.3.conv.weight", &[320, 320, 3, 3]),
                ("features.21.branch2_3b.conv.weight", &[256, 512, 3, 1]),
                ("last_linear.weight", &[1000, 1536]),
            ],
        ),
        (
            "inception_resnet_v2",
            &[
                ("conv2d_1a.conv.weight", &[32, 3, 3, 3]),
                ("mixed_5b.branch3.1.conv.weight", &[64, 192, 1, 1]),
                ("repeat.0.branch1.1.conv.weight", &[32, 32, 3, 3]),
                ("repeat.9.conv2d.weight", &[320, 128, 1, 1]),
                ("repeat.9.conv2d.bias", &[320]),
                ("mixed_6a.branch1.2.conv.weight", &[384, 256, 3, 3]),
                ("repeat_1.19.branch1.2.conv.weight", &[192, 160, 7, 1]),
                ("mixed_7a.branch2.2.conv.weight", &[320, 288, 3, 3]),
                ("repeat_2.8.conv2d.weight", &[2080, 448, 1, 1]),
                ("block8.branch1.1.conv.weight", &[224, 192, 1, 3]),
                ("conv2d_7b.bn.running_var", &[1536]),
                ("classif.weight", &[1000, 1536]),
            ],
        ),
    ];
    for &(model, keys) in cases {
        let info = models::info(model).unwrap();
        let s = specs(&models::build(model, 1, info.default_size).unwrap());
        for &(k, shape) in keys {
            assert_eq!(
                s.get(k).map(|v| v.as_slice()),
                Some(shape),
                "{model}: key {k}"
            );
        }
        // No conv or BN key is unprefixed by a real module path.
        assert!(
            s.keys().all(|k| !k.starts_with('.') && !k.contains("..")),
            "{model}"
        );
    }
    let aux =
        models::build_with("inception_v3", &Options::new(1, 299, 299).aux_logits(true)).unwrap();
    let s = specs(&aux);
    assert_eq!(s["AuxLogits.conv0.conv.weight"], [128, 768, 1, 1]);
    assert_eq!(s["AuxLogits.conv1.conv.weight"], [768, 128, 5, 5]);
    assert_eq!(s["AuxLogits.fc.weight"], [1000, 768]);
}

#[test]
fn inception_v3_aux_head_is_a_second_output() {
    let g = models::build_with(
        "inception_v3",
        &Options::new(2, 299, 299).classes(7).aux_logits(true),
    )
    .unwrap();
    assert_eq!(g.outputs.len(), 2);
    assert_eq!(output_shape(&g, 0), [2, 7, 1, 1]);
    assert_eq!(output_shape(&g, 1), [2, 7, 1, 1]);
    // The aux head sees Mixed_6e's 17×17 map and its 5×5 conv yields 1×1.
    let conv1 = g
        .nodes
        .iter()
        .find(|n| n.name == "AuxLogits.conv1.conv")
        .unwrap();
    assert_eq!(g.shapes[conv1.output.0], [2, 768, 1, 1]);
}

/// Feature-map sizes at the standard input: the published ones.
#[test]
fn feature_map_sizes() {
    let at = |g: &Graph, node: &str| {
        let n = g.nodes.iter().find(|n| n.name == node).unwrap();
        g.shapes[n.output.0]
    };
    let r = models::build("resnet50", 1, 224).unwrap();
    assert_eq!(at(&r, "maxpool"), [1, 64, 56, 56]);
    assert_eq!(at(&r, "layer1.2.relu"), [1, 256, 56, 56]);
    assert_eq!(at(&r, "layer4.2.relu"), [1, 2048, 7, 7]);
    let v3 = models::build("inception_v3", 1, 299).unwrap();
    assert_eq!(at(&v3, "maxpool2"), [1, 192, 35, 35]);
    assert_eq!(at(&v3, "Mixed_5d.cat"), [1, 288, 35, 35]);
    assert_eq!(at(&v3, "Mixed_6e.cat"), [1, 768, 17, 17]);
    assert_eq!(at(&v3, "Mixed_7c.cat"), [1, 2048, 8, 8]);
    let v4 = models::build("inception_v4", 1, 299).unwrap();
    assert_eq!(at(&v4, "features.5.cat"), [1, 384, 35, 35]);
    assert_eq!(at(&v4, "features.10.cat"), [1, 1024, 17, 17]);
    assert_eq!(at(&v4, "features.21.cat"), [1, 1536, 8, 8]);
    let ir = models::build("inception_resnet_v2", 1, 299).unwrap();
    assert_eq!(at(&ir, "mixed_5b.cat"), [1, 320, 35, 35]);
    assert_eq!(at(&ir, "mixed_6a.cat"), [1, 1088, 17, 17]);
    assert_eq!(at(&ir, "mixed_7a.cat"), [1, 2080, 8, 8]);
    assert_eq!(at(&ir, "conv2d_7b.relu"), [1, 1536, 8, 8]);
}

/// Graphs re-infer for other batches and sizes (including the odd,
/// non-square sizes of the hidden golden set).
#[test]
fn models_accept_other_sizes() {
    for (name, shape) in [
        ("resnet34", [2, 3, 160, 192]),
        ("resnet50", [3, 3, 193, 161]),
        ("resnet101", [1, 3, 256, 256]),
        ("resnetv2_101", [1, 3, 192, 224]),
        ("inception_v3", [2, 3, 331, 317]),
        ("inception_v4", [1, 3, 331, 331]),
        ("inception_resnet_v2", [2, 3, 299, 299]),
    ] {
        let opts = Options::new(shape[0], shape[2], shape[3]);
        let g = models::build_with(name, &opts).unwrap();
        assert_eq!(output_shape(&g, 0), [shape[0], 1000, 1, 1], "{name}");
        let nominal = models::build(name, 1, models::info(name).unwrap().default_size).unwrap();
        let shapes = nominal.infer_shapes(shape).unwrap();
        assert_eq!(
            shapes[nominal.outputs[0].0],
            [shape[0], 1000, 1, 1],
            "{name}"
        );
    }
    // Too small an input fails at build, naming the node at fault.
    let err = models::build("inception_v3", 1, 64)
        .unwrap_err()
        .to_string();
    assert!(err.contains("node `"), "{err}");
}

#[test]
fn every_block_builds_at_its_fixture_shape() {
    let cases: &[(&str, [usize; 4], [usize; 4])] = &[
        ("resnet_basic", [2, 64, 7, 7], [2, 64, 7, 7]),
        ("resnet_basic_down", [2, 64, 9, 9], [2, 128, 5, 5]),
        ("resnet_bottleneck", [1, 256, 7, 7], [1, 256, 7, 7]),
        ("resnet_bottleneck_down", [1, 256, 9, 9], [1, 512, 5, 5]),
        ("preact_bottleneck_proj", [1, 64, 7, 7], [1, 256, 7, 7]),
        ("preact_bottleneck", [1, 256, 7, 7], [1, 256, 7, 7]),
        ("preact_bottleneck_down", [1, 256, 9, 9], [1, 512, 5, 5]),
        ("inception_v3_a", [1, 192, 9, 9], [1, 256, 9, 9]),
        ("inception_v3_b", [1, 288, 9, 9], [1, 768, 4, 4]),
        ("inception_v3_c", [1, 768, 7, 7], [1, 768, 7, 7]),
        ("inception_v3_d", [1, 768, 9, 9], [1, 1280, 4, 4]),
        ("inception_v3_e", [1, 1280, 5, 5], [1, 2048, 5, 5]),
        ("inception_v4_stem", [1, 3, 75, 75], [1, 384, 7, 7]),
        ("inception_v4_a", [1, 384, 9, 9], [1, 384, 9, 9]),
        ("inception_v4_reduction_a", [1, 384, 9, 9], [1, 1024, 4, 4]),
        ("inception_v4_b", [1, 1024, 7, 7], [1, 1024, 7, 7]),
        ("inception_v4_reduction_b", [1, 1024, 9, 9], [1, 1536, 4, 4]),
        ("inception_v4_c", [1, 1536, 5, 5], [1, 1536, 5, 5]),
        (
            "inception_resnet_v2_mixed_5b",
            [1, 192, 9, 9],
            [1, 320, 9, 9],
        ),
        (
            "inception_resnet_v2_block35",
            [1, 320, 9, 9],
            [1, 320, 9, 9],
        ),
        (
            "inception_resnet_v2_mixed_6a",
            [1, 320, 9, 9],
            [1, 1088, 4, 4],
        ),
        (
            "inception_resnet_v2_block17",
            [1, 1088, 7, 7],
            [1, 1088, 7, 7],
        ),
        (
            "inception_resnet_v2_mixed_7a",
            [1, 1088, 9, 9],
            [1, 2080, 4, 4],
        ),
        (
            "inception_resnet_v2_block8",
            [1, 2080, 5, 5],
            [1, 2080, 5, 5],
        ),
        (
            "inception_resnet_v2_block8_last",
            [1, 2080, 5, 5],
            [1, 2080, 5, 5],
        ),
    ];
    assert_eq!(cases.len(), BLOCK_NAMES.len());
    for &(name, input, output) in cases {
        assert!(BLOCK_NAMES.contains(&name), "{name}");
        let g = models::build_block(name, input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(output_shape(&g, 0), output, "{name}");
        // Block-relative keys: no model prefix.
        for (k, _) in g.param_specs() {
            assert!(
                !k.starts_with("layer") && !k.starts_with("stages") && !k.starts_with("Mixed"),
                "{name}: {k}"
            );
        }
    }
    // The channel configuration is fixed by the name.
    let err = models::build_block("inception_v3_a", [1, 256, 9, 9])
        .unwrap_err()
        .to_string();
    assert!(err.contains("192"), "{err}");
}

/// The final Inception-ResNet block has no ReLU and residual scale 1;
/// the repeated ones end in a ReLU.
#[test]
fn block8_last_has_no_relu() {
    let last = models::build_block("inception_resnet_v2_block8_last", [1, 2080, 5, 5]).unwrap();
    let out = last.producer(last.outputs[0]).unwrap();
    assert_eq!(out.op.kind(), "add");
    match out.op {
        resincept::graph::Op::Add { alpha, beta, .. } => assert_eq!((alpha, beta), (1.0, 1.0)),
        _ => unreachable!(),
    }
    let rep = models::build_block("inception_resnet_v2_block8", [1, 2080, 5, 5]).unwrap();
    assert_eq!(rep.producer(rep.outputs[0]).unwrap().op.kind(), "relu");
}

/// Every model's `ModelInfo::head` names the parameters its classifier
/// really has, and `classes_in` reads a checkpoint's class count from
/// them: a fine-tuned 10-class head builds a graph those weights fit.
#[test]
fn head_width_comes_from_the_checkpoint() {
    use resincept::models::{self, Options};
    use resincept::weights::Weights;
    for &name in models::MODEL_NAMES {
        let info = models::info(name).unwrap();
        let size = if info.default_size == 32 { 32 } else { 75 };
        let g = models::build_with(name, &Options::new(1, size, size).classes(10)).unwrap();
        let specs = g.param_specs();
        let key = format!("{}.weight", info.head);
        let head = specs.iter().find(|(k, _)| *k == key);
        let Some((_, shape)) = head else {
            panic!("{name}: no parameter `{key}` (head `{}`)", info.head)
        };
        assert_eq!(shape[0], 10, "{name}: {key} {shape:?}");
        let w = Weights::from_synthetic(1, &specs);
        assert_eq!(info.classes_in(&w).unwrap(), 10, "{name}");
        assert_eq!(
            info.classes_in(&Weights::new()).unwrap(),
            info.classes,
            "{name}"
        );
        let again = models::build_with(name, &Options::new(1, size, size).classes(10)).unwrap();
        w.check(&again.param_specs()).unwrap();
    }
    let info = models::info("resnet50").unwrap();
    let mut bad = Weights::new();
    bad.insert("fc.weight", resincept::Tensor::zeros(vec![10]))
        .unwrap();
    let e = info.classes_in(&bad).unwrap_err().to_string();
    assert!(e.contains("fc.weight") && e.contains("[10]"), "{e}");
}
