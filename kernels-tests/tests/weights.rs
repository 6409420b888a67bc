//! CPU tests of `resincept::weights`: the `synthetic-v1` generator against the
//! golden fixtures and against values computed independently, safetensors
//! loading in f32/f16/bf16, `Weights::check` messages, malformed files, and a
//! save/load round trip. No GPU needed.

use kernels_tests::{golden_dir, golden_files};
use resincept::weights::{
    self, read_metadata, read_tensor, save_safetensors, synthetic_input, synthetic_seed,
    synthetic_tensor, synthetic_value, Weights,
};
use resincept::{Error, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A scratch path for this test binary (Cargo's per-target temp dir).
fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("weights-test-{}-{name}", std::process::id()))
}

/// Asserts bit-for-bit equality and prints the first mismatches.
#[track_caller]
fn assert_bits_eq(case: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case}: length mismatch");
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g.to_bits() != w.to_bits())
        .take(10)
        .map(|(i, (g, w))| {
            format!(
                "  [{i}] got {g:e} ({:#010x}) want {w:e} ({:#010x})",
                g.to_bits(),
                w.to_bits()
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{case}: values differ; first:\n{}",
        bad.join("\n")
    );
}

#[track_caller]
fn expect_weights_err<T: std::fmt::Debug>(r: resincept::Result<T>, key: &str, needles: &[&str]) {
    match r {
        Err(Error::Weights { key: k, message }) => {
            assert_eq!(k, key, "error names the wrong key: {message}");
            assert!(
                !message.contains('\n'),
                "message must be one line: {message}"
            );
            for n in needles {
                assert!(message.contains(n), "message `{message}` lacks `{n}`");
            }
        }
        other => panic!("expected Error::Weights for `{key}`, got {other:?}"),
    }
}

#[track_caller]
fn expect_io_err<T: std::fmt::Debug>(r: resincept::Result<T>, path_part: &str) -> String {
    match r {
        Err(e @ Error::Io { .. }) => {
            let Error::Io { path, message } = &e else {
                unreachable!()
            };
            assert!(
                path.contains(path_part),
                "path `{path}` lacks `{path_part}`"
            );
            assert!(!message.is_empty());
            e.to_string()
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------- synthetic-v1

/// The README's check: the `input` stored in every golden block and model
/// file is the synthetic input of its seed and shape, bit for bit.
#[test]
fn synthetic_input_matches_every_golden_fixture() {
    let mut checked = 0;
    for sub in ["blocks", "models"] {
        for path in golden_files(sub) {
            let meta = read_metadata(&path).unwrap();
            let seed = synthetic_seed(&meta).unwrap();
            let stored = read_tensor(&path, "input").unwrap();
            let regenerated = synthetic_input(seed, &stored.shape);
            assert_eq!(regenerated.shape, stored.shape);
            assert_bits_eq(&path.display().to_string(), &regenerated.data, &stored.data);
            checked += 1;
        }
    }
    // 25 blocks + 6 models are public; more files are fine, fewer means a copy went wrong.
    assert!(checked >= 31, "only {checked} golden files checked");
}

/// Values computed by an independent Python implementation of the README's
/// spec (plain Python integers and floats, not make_golden.py's numpy code),
/// covering every rule, seeds other than 1, and indices at the far end of a
/// tensor. Each row: seed, key, shape, index, expected f32 bits.
#[test]
fn synthetic_values_match_independent_reference() {
    #[rustfmt::skip]
    let cases: &[(u64, &str, &[usize], usize, u32)] = &[
        (1, "conv1.weight", &[64, 3, 7, 7], 0, 0xbdf8cb4a),
        (1, "conv1.weight", &[64, 3, 7, 7], 9407, 0x3dd1f730),
        (1, "layer1.0.bn1.running_var", &[64], 5, 0x3f519363),
        (1, "layer1.0.bn1.running_mean", &[64], 63, 0xbdb25496),
        (1, "layer1.0.bn1.weight", &[64], 0, 0x3f128b8e),
        (1, "layer1.0.bn1.bias", &[64], 17, 0x3d10abe0),
        (1, "fc.weight", &[1000, 2048], 2047999, 0xbcc24e15),
        (1, "fc.bias", &[1000], 999, 0x3d057f38),
        (1, "input", &[1, 3, 224, 224], 0, 0xbf0f191c),
        (1, "input", &[1, 3, 224, 224], 150527, 0x3f352c75),
        (7, "Mixed_7c.branch3x3dbl_3b.conv.weight", &[384, 384, 3, 1], 1234, 0x3cad00d0),
        (u64::MAX, "stages.0.blocks.0.norm1.weight", &[64], 3, 0x3f654f04),
        (42, "repeat.0.branch1.1.conv.weight", &[32, 32, 3, 3], 9215, 0x3d983e86),
        (1, "head.fc.bias", &[1000], 0, 0xbc9433fe),
        (1, "features.6.branch0.conv.weight", &[96, 384, 1, 1], 100, 0x3cd901a2),
        (1, "block8.conv2d.bias", &[2080], 2079, 0x3c216461),
        // rank 1 named `weight` is a gamma even for a key that looks like fc's
        (3, "fc.weight", &[10], 4, 0x3f423dfd),
    ];
    for &(seed, key, shape, index, bits) in cases {
        let v = synthetic_value(seed, key, shape, index);
        assert_eq!(
            v.to_bits(),
            bits,
            "{key} seed {seed} [{index}]: got {v:e}, want {:e}",
            f32::from_bits(bits)
        );
        let t = synthetic_tensor(seed, key, shape);
        assert_eq!(
            t.data[index].to_bits(),
            bits,
            "{key}: tensor disagrees with value"
        );
    }
    assert_eq!(weights::fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(weights::fnv1a64(b"input"), 0x1ebbae8f5810b65b);
}

/// Whole tensors against the same independent Python implementation: the
/// digest is FNV-1a 64 over the little-endian bytes of every f32, so one
/// wrong element anywhere (any rule, rank 0 included) fails.
#[test]
fn synthetic_tensors_match_independent_digests() {
    #[rustfmt::skip]
    let cases: &[(u64, &str, &[usize], u64)] = &[
        (1, "conv1.weight", &[64, 3, 7, 7], 0x400b87e86789664b),
        (1, "layer4.2.bn3.running_var", &[2048], 0xf8ac46bc31b31057),
        (1, "layer4.2.bn3.running_mean", &[2048], 0x7349c2f97217011e),
        (1, "layer4.2.bn3.weight", &[2048], 0xb2cc82e4f6d7544f),
        (1, "layer4.2.bn3.bias", &[2048], 0xd10127032179398e),
        (2, "fc.weight", &[1000, 512], 0xafc644371cdcfc47),
        (1, "input", &[2, 3, 17, 19], 0xc98e3eb2a0dd1586),
        (5, "scale", &[], 0x013f7a36c24bfaa0),
        (5, "alpha.weight", &[], 0x6006bd018eb0e1ee),
    ];
    for &(seed, key, shape, digest) in cases {
        let t = synthetic_tensor(seed, key, shape);
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            weights::fnv1a64(&bytes),
            digest,
            "{key} seed {seed} shape {shape:?}"
        );
    }
}

/// Every rule keeps its values in its documented range.
#[test]
fn synthetic_values_lie_in_their_ranges() {
    let check = |key: &str, shape: &[usize], lo: f32, hi: f32| {
        let t = synthetic_tensor(1, key, shape);
        assert_eq!(t.len(), shape.iter().product::<usize>());
        for &v in &t.data {
            assert!(v >= lo && v <= hi, "{key}: {v} outside [{lo}, {hi}]");
        }
        // not constant: the stream moves
        assert!(t.data.iter().any(|&v| v != t.data[0]), "{key} is constant");
    };
    let bound = (3.0f64 / (256.0 * 9.0)).sqrt() as f32;
    check("layer2.0.conv2.weight", &[128, 256, 3, 3], -bound, bound);
    check("bn.running_var", &[300], 0.5, 1.5);
    check("bn.running_mean", &[300], -0.1, 0.1);
    check("bn.weight", &[300], 0.5, 1.0);
    check("bn.bias", &[300], -0.1, 0.1);
    check("input", &[2, 3, 5, 7], -1.0, 1.0);
    // rank 2 (linear) uses fan_in = in_features
    let b = (3.0f64 / 2048.0).sqrt() as f32;
    check("fc.weight", &[10, 2048], -b, b);
    // different keys and seeds give different streams
    assert_ne!(
        synthetic_tensor(1, "a.weight", &[4, 4]).data,
        synthetic_tensor(1, "b.weight", &[4, 4]).data
    );
    assert_ne!(
        synthetic_tensor(1, "a.weight", &[4, 4]).data,
        synthetic_tensor(2, "a.weight", &[4, 4]).data
    );
}

#[test]
fn from_synthetic_builds_and_checks() {
    let specs: Vec<(String, Vec<usize>)> = vec![
        ("conv1.weight".into(), vec![8, 3, 3, 3]),
        ("bn1.weight".into(), vec![8]),
        ("bn1.bias".into(), vec![8]),
        ("bn1.running_mean".into(), vec![8]),
        ("bn1.running_var".into(), vec![8]),
        ("bn1.num_batches_tracked".into(), vec![]),
    ];
    let w = Weights::from_synthetic(5, &specs);
    assert_eq!(w.len(), 5, "num_batches_tracked is not generated");
    assert!(!w.contains("bn1.num_batches_tracked"));
    w.check(&specs).unwrap();
    for (key, shape) in &specs[..5] {
        assert_eq!(w.get(key).unwrap(), &synthetic_tensor(5, key, shape));
    }
    let keys: Vec<&str> = w.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys iterate in sorted order");
}

#[test]
fn synthetic_seed_reads_metadata() {
    let mut m = HashMap::new();
    assert_eq!(synthetic_seed(&m).unwrap(), 1, "absent seed defaults to 1");
    m.insert("seed".to_string(), "17".to_string());
    m.insert("weights".to_string(), "synthetic-v1".to_string());
    assert_eq!(synthetic_seed(&m).unwrap(), 17);
    m.insert("seed".to_string(), "x".to_string());
    assert!(synthetic_seed(&m).is_err());
    m.insert("seed".to_string(), "1".to_string());
    m.insert("weights".to_string(), "synthetic-v2".to_string());
    assert!(
        synthetic_seed(&m).is_err(),
        "an unknown generator must not be silently accepted"
    );
}

// ------------------------------------------------------------ real weights

const WEIGHTS_STEM: &str = "resnet_bottleneck_down";

fn weights_file(dtype: &str) -> PathBuf {
    golden_dir("weights").join(format!("{WEIGHTS_STEM}_{dtype}.safetensors"))
}

/// The `state_dict` of torchvision's `Bottleneck(256, 128, stride=2)` with
/// its 1×1 stride-2 downsample, as the weights fixtures hold it.
fn bottleneck_down_specs() -> Vec<(String, Vec<usize>)> {
    let mut s: Vec<(String, Vec<usize>)> = vec![
        ("conv1.weight".into(), vec![128, 256, 1, 1]),
        ("conv2.weight".into(), vec![128, 128, 3, 3]),
        ("conv3.weight".into(), vec![512, 128, 1, 1]),
        ("downsample.0.weight".into(), vec![512, 256, 1, 1]),
    ];
    for (bn, c) in [
        ("bn1", 128),
        ("bn2", 128),
        ("bn3", 512),
        ("downsample.1", 512),
    ] {
        for p in ["weight", "bias", "running_mean", "running_var"] {
            s.push((format!("{bn}.{p}"), vec![c]));
        }
    }
    s
}

fn bn_keys() -> Vec<String> {
    bottleneck_down_specs()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("bn") || k.starts_with("downsample.1"))
        .collect()
}

/// Loads a weights fixture and splits off its `input` and `output`.
fn load_state_dict(dtype: &str) -> (Weights, Tensor, Tensor) {
    let mut w =
        Weights::load_safetensors(weights_file(dtype)).unwrap_or_else(|e| panic!("{dtype}: {e}"));
    let x = w.remove("input").expect("input");
    let y = w.remove("output").expect("output");
    (w, x, y)
}

#[test]
fn weights_fixtures_load_in_every_dtype() {
    for dtype in ["f32", "f16", "bf16"] {
        // The files hold four I64 `*.num_batches_tracked` entries; prove it,
        // so that the skip below is really exercised.
        let bytes = std::fs::read(weights_file(dtype)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let nbt: Vec<_> = st
            .iter()
            .filter(|(k, _)| k.ends_with("num_batches_tracked"))
            .map(|(_, v)| v.dtype())
            .collect();
        assert_eq!(nbt, vec![Dtype::I64; 4], "{dtype}: fixture changed");

        let (w, x, y) = load_state_dict(dtype);
        assert!(w.keys().all(|k| !k.contains("num_batches_tracked")));
        w.check(&bottleneck_down_specs())
            .unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(x.shape, vec![2, 256, 9, 9]);
        assert_eq!(y.shape, vec![2, 512, 5, 5]);
        for (k, t) in w.iter() {
            assert!(
                t.data.iter().all(|v| v.is_finite()),
                "{dtype} {k}: non-finite value"
            );
        }
    }
}

/// make_golden.py seeds torch *after* building each module, then draws the
/// BatchNorm parameters and the input; so across the three files the BN
/// tensors and the input are the same draws (stored in f32/f16/bf16, the
/// input always in f32), while the conv weights come from different
/// default-init draws. We therefore compare BN tensors and the input fully,
/// and for conv weights check that each value is exactly representable in
/// its storage dtype (i.e. the f16/bf16 bits were decoded, not reinterpreted).
#[test]
fn f16_and_bf16_fixtures_are_f32_rounded() {
    let (w32, x32, _) = load_state_dict("f32");
    type Round = fn(f32) -> f32;
    let rounders: [(&str, Round); 2] = [
        ("f16", |v| half::f16::from_f32(v).to_f32()),
        ("bf16", |v| half::bf16::from_f32(v).to_f32()),
    ];
    for (dtype, round) in rounders {
        let (w, x, _) = load_state_dict(dtype);
        assert_bits_eq(&format!("{dtype} input"), &x.data, &x32.data);
        for key in bn_keys() {
            let want: Vec<f32> = w32
                .get(&key)
                .unwrap()
                .data
                .iter()
                .map(|&v| round(v))
                .collect();
            let got = w.get(&key).unwrap();
            assert_eq!(got.shape, w32.get(&key).unwrap().shape, "{dtype} {key}");
            assert_bits_eq(&format!("{dtype} {key}"), &got.data, &want);
        }
        for key in [
            "conv1.weight",
            "conv2.weight",
            "conv3.weight",
            "downsample.0.weight",
        ] {
            let t = w.get(key).unwrap();
            let rounded: Vec<f32> = t.data.iter().map(|&v| round(v)).collect();
            assert_bits_eq(&format!("{dtype} {key} representable"), &t.data, &rounded);
            // torch's default conv init: |w| <= 1/sqrt(fan_in)
            let fan_in: usize = t.shape[1..].iter().product();
            let bound = 1.0 / (fan_in as f32).sqrt() * 1.01;
            assert!(
                t.max_abs() <= bound,
                "{dtype} {key}: max {} > {bound}",
                t.max_abs()
            );
        }
    }
}

/// bf16 decoding checked without the `half` crate: a bf16 is the top half of
/// an f32's bits.
#[test]
fn bf16_decoding_is_the_top_half_of_f32() {
    let bytes = std::fs::read(weights_file("bf16")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let w = Weights::from_safetensors_bytes(&bytes).unwrap();
    for key in ["conv2.weight", "bn3.running_var"] {
        let view = st.tensor(key).unwrap();
        assert_eq!(view.dtype(), Dtype::BF16);
        let want: Vec<f32> = view
            .data()
            .chunks_exact(2)
            .map(|c| f32::from_bits((u32::from(u16::from_le_bytes([c[0], c[1]]))) << 16))
            .collect();
        assert_bits_eq(key, &w.get(key).unwrap().data, &want);
    }
}

// ------------------------------------------------------------------ check()

#[test]
fn check_names_missing_unexpected_and_misshapen_keys() {
    let (w, _, _) = load_state_dict("f32");
    let specs = bottleneck_down_specs();
    w.check(&specs).unwrap();

    // missing: the model wants a key the file lacks
    let mut more = specs.clone();
    more.push(("fc.weight".into(), vec![1000, 512]));
    expect_weights_err(w.check(&more), "fc.weight", &["missing", "[1000, 512]"]);

    // unexpected: the file has a key the model lacks
    let fewer: Vec<_> = specs
        .iter()
        .filter(|(k, _)| k != "bn2.bias")
        .cloned()
        .collect();
    expect_weights_err(w.check(&fewer), "bn2.bias", &["unexpected"]);

    // wrong shape: names both shapes
    let mut bad = specs.clone();
    bad[1].1 = vec![128, 128, 1, 1];
    expect_weights_err(
        w.check(&bad),
        "conv2.weight",
        &["expected [128, 128, 1, 1], found [128, 128, 3, 3]"],
    );

    // missing is reported before unexpected, and the rest are counted
    let mut both: Vec<_> = fewer.clone();
    both.push(("layer9.weight".into(), vec![3, 3]));
    expect_weights_err(
        w.check(&both),
        "layer9.weight",
        &["missing", "1 more problem", "1 unexpected"],
    );

    // num_batches_tracked is ignored on both sides, nothing else is
    let mut with_nbt = w.clone();
    with_nbt
        .insert("bn1.num_batches_tracked", Tensor::zeros(vec![]))
        .unwrap();
    with_nbt.check(&specs).unwrap();
    let mut spec_nbt = specs.clone();
    spec_nbt.push(("bn1.num_batches_tracked".into(), vec![]));
    w.check(&spec_nbt).unwrap();
    let mut with_extra = w.clone();
    with_extra
        .insert("bn1.num_batches", Tensor::zeros(vec![]))
        .unwrap();
    expect_weights_err(with_extra.check(&specs), "bn1.num_batches", &["unexpected"]);

    // get() of an absent key names it
    expect_weights_err(
        w.get("layer1.0.conv1.weight"),
        "layer1.0.conv1.weight",
        &["missing"],
    );
    // insert() refuses a tensor whose data disagrees with its shape
    let mut w2 = w.clone();
    let broken = Tensor {
        shape: vec![2, 2],
        data: vec![0.0; 3],
    };
    expect_weights_err(w2.insert("x.weight", broken), "x.weight", &["[2, 2]"]);
    assert!(!w2.contains("x.weight"));
}

// ---------------------------------------------------------- dtypes & errors

fn st_bytes(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<_> = entries
        .iter()
        .map(|(k, d, s, b)| {
            (
                *k,
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn dtypes_integer_and_f64() {
    let nbt = (
        "bn.num_batches_tracked",
        Dtype::I64,
        vec![],
        7i64.to_le_bytes().to_vec(),
    );
    let nbt32 = (
        "num_batches_tracked",
        Dtype::I32,
        vec![],
        7i32.to_le_bytes().to_vec(),
    );
    let f64s: Vec<u8> = [0.1f64, -2.5, 1e-40]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let ok = st_bytes(&[nbt.clone(), nbt32, ("lin.bias", Dtype::F64, vec![3], f64s)]);
    let w = Weights::from_safetensors_bytes(&ok).unwrap();
    assert_eq!(w.keys().collect::<Vec<_>>(), vec!["lin.bias"]);
    assert_eq!(
        w.get("lin.bias").unwrap().data,
        vec![0.1f64 as f32, -2.5, 1e-40f64 as f32]
    );

    let int_w = st_bytes(&[nbt, ("conv.weight", Dtype::I32, vec![2], vec![0; 8])]);
    expect_weights_err(
        Weights::from_safetensors_bytes(&int_w),
        "conv.weight",
        &["I32"],
    );
    let u8_w = st_bytes(&[("emb.weight", Dtype::U8, vec![4], vec![1; 4])]);
    expect_weights_err(
        Weights::from_safetensors_bytes(&u8_w),
        "emb.weight",
        &["U8"],
    );
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let good = std::fs::read(weights_file("f32")).unwrap();

    // in memory: empty, short, garbage, a text file, truncated, a lying header
    let mut lying = good.clone();
    lying[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut extra = good.clone();
    extra.push(0);
    let mut bad_json = good.clone();
    bad_json[8] = b'#';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", vec![1, 2, 3]),
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("text", b"this is not a safetensors file\n".repeat(10)),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("truncated header", good[..100].to_vec()),
        ("one byte extra", extra),
        ("huge header length", lying),
        ("bad json", bad_json),
    ];
    for (name, bytes) in &cases {
        let r = Weights::from_safetensors_bytes(bytes);
        let msg = expect_io_err(r, "<memory>");
        assert!(
            msg.contains("safetensors"),
            "{name}: unclear message `{msg}`"
        );
    }

    // on disk: truncated file, a directory, a nonexistent path
    let path = scratch("truncated.safetensors");
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    expect_io_err(Weights::load_safetensors(&path), &name);
    expect_io_err(read_tensor(&path, "input"), &name);
    expect_io_err(read_metadata(&path), &name);
    std::fs::remove_file(&path).unwrap();

    let missing = golden_dir("weights").join("no_such_file.safetensors");
    let msg = expect_io_err(
        Weights::load_safetensors(&missing),
        "no_such_file.safetensors",
    );
    assert!(msg.contains("cannot read"), "{msg}");
    expect_io_err(read_metadata(&missing), "no_such_file");
    expect_io_err(Weights::load_safetensors(golden_dir("weights")), "weights");

    // a valid file without the asked-for tensor
    expect_weights_err(
        read_tensor(weights_file("f32"), "logits"),
        "logits",
        &["no such tensor"],
    );
}

// ------------------------------------------------------------- round trip

#[test]
fn save_then_load_round_trip() {
    let specs: Vec<(String, Vec<usize>)> = vec![
        ("Mixed_5b.branch1x1.conv.weight".into(), vec![64, 192, 1, 1]),
        ("Mixed_5b.branch1x1.bn.running_var".into(), vec![64]),
        ("fc.bias".into(), vec![1000]),
        ("scalar".into(), vec![]),
        ("empty.weight".into(), vec![0, 3]),
    ];
    let mut w = Weights::from_synthetic(9, &specs);
    // special values survive too
    w.insert(
        "special",
        Tensor::new(
            vec![5],
            vec![0.0, -0.0, f32::MIN_POSITIVE / 2.0, f32::MAX, -1.5],
        )
        .unwrap(),
    )
    .unwrap();
    let meta: HashMap<String, String> = [
        ("seed".to_string(), "9".to_string()),
        ("note".to_string(), "round trip".to_string()),
    ]
    .into();

    let path = scratch("roundtrip.safetensors");
    w.save_safetensors(&path, Some(meta.clone())).unwrap();
    let back = Weights::load_safetensors(&path).unwrap();
    assert_eq!(back.len(), w.len());
    for (k, t) in w.iter() {
        let b = back.get(k).unwrap();
        assert_eq!(b.shape, t.shape, "{k}");
        assert_bits_eq(k, &b.data, &t.data);
    }
    assert_eq!(read_metadata(&path).unwrap(), meta);
    assert_eq!(synthetic_seed(&read_metadata(&path).unwrap()).unwrap(), 9);
    let one = read_tensor(&path, "fc.bias").unwrap();
    assert_eq!(one, synthetic_tensor(9, "fc.bias", &[1000]));

    // the free function, without metadata
    let x = synthetic_input(3, &[1, 3, 4, 5]);
    save_safetensors(&path, &[("input", &x)], None).unwrap();
    assert!(read_metadata(&path).unwrap().is_empty());
    assert_eq!(read_tensor(&path, "input").unwrap(), x);

    // repeated names and inconsistent tensors are refused
    expect_weights_err(
        save_safetensors(&path, &[("a", &x), ("a", &x)], None),
        "a",
        &["twice"],
    );
    let broken = Tensor {
        shape: vec![3],
        data: vec![1.0],
    };
    expect_weights_err(
        save_safetensors(&path, &[("b", &broken)], None),
        "b",
        &["[3]"],
    );
    std::fs::remove_file(&path).unwrap();

    // an unwritable path is an Io error naming it
    let dir_path = scratch("no-such-dir").join("x.safetensors");
    expect_io_err(
        save_safetensors(&dir_path, &[("input", &x)], None),
        "no-such-dir",
    );
}

/// Host allocations a user's sizes would ask for are refused before they
/// happen, naming the tensor, its bytes and the limit; sizes that fit pass.
#[test]
fn host_allocations_too_large_are_refused() {
    use resincept::tensor::{check_host_bytes, shape_bytes};
    use resincept::Error;
    // `bench --model resnet50 --batch 100000`: 60 GB of input.
    let bytes = shape_bytes(&[100_000, 3, 224, 224], 4);
    assert_eq!(bytes, 60_211_200_000);
    match check_host_bytes("input", shape_bytes(&[100_000, 3, 100_000, 100_000], 4)) {
        Err(Error::Limit {
            node,
            needed,
            available,
            ..
        }) => {
            assert_eq!(node, "input");
            assert_eq!(needed, 12_000_000_000_000_000);
            assert!(available > 0);
        }
        other => panic!("{other:?}"),
    }
    // A product past u128 saturates rather than wrapping to something small.
    assert_eq!(
        shape_bytes(&[usize::MAX, usize::MAX, usize::MAX], 4),
        u128::MAX
    );
    let e = check_host_bytes("input", shape_bytes(&[usize::MAX, 4], 4)).unwrap_err();
    assert!(
        e.to_string().contains("input") && e.to_string().contains("host"),
        "{e}"
    );
    check_host_bytes("input", shape_bytes(&[1, 3, 224, 224], 4)).unwrap();
}
