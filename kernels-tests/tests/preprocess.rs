//! `classify`'s preprocessing against the libraries' own transforms
//! (`kernels-tests/fixtures/preprocess`, made by `scripts/make_fixtures.py`
//! with PIL, torchvision and timm):
//!
//! - each model's resize, crop, filter, mean and std as torchvision's
//!   `DEFAULT` weights and timm's `resolve_data_config` state them, against
//!   [`Preprocess::for_model`];
//! - the resized and centre-cropped 8-bit image, byte for byte, for a
//!   smooth 500×375 image that is shrunk (every transform) and a noisy
//!   97×73 one that is enlarged (one bilinear and one bicubic transform);
//! - `apply`'s floats: `(byte / 255 − mean) / std` of those bytes;
//! - decoding: every kind of PNG PIL opens differently (16-bit, grey +
//!   alpha, 1/2/4-bit grey, palette with transparency;
//!   `kernels-tests/fixtures/decode`) against PIL's `convert("RGB")`, byte
//!   for byte. CPU only.

use resincept::models;
use resincept::preprocess::{
    center_crop, decode_image, resize, resized_size, Interpolation, Preprocess,
};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/preprocess")
}

/// One line of `transforms.txt`: a model's transform as its library
/// states it.
struct Transform {
    name: String,
    resize: usize,
    crop: usize,
    interpolation: Interpolation,
    mean: [f32; 3],
    std: [f32; 3],
}

fn transforms() -> Vec<Transform> {
    let text = std::fs::read_to_string(dir().join("transforms.txt")).unwrap();
    let three = |s: &str| -> [f32; 3] {
        let v: Vec<f32> = s.split(',').map(|x| x.parse().unwrap()).collect();
        v.try_into().unwrap()
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "transforms.txt: {l}");
            Transform {
                name: f[0].to_string(),
                resize: f[1].parse().unwrap(),
                crop: f[2].parse().unwrap(),
                interpolation: Interpolation::parse(f[3]).unwrap(),
                mean: three(f[4]),
                std: three(f[5]),
            }
        })
        .collect()
}

#[test]
fn transforms_are_the_libraries() {
    let all = transforms();
    assert_eq!(all.len(), 10);
    for t in all {
        let name = &t.name;
        let size = models::info(name).unwrap().default_size;
        let p = Preprocess::for_model(name, size);
        assert_eq!(p.resize, Some(t.resize), "{name}: resize");
        assert_eq!(p.crop, t.crop, "{name}: crop");
        assert_eq!(p.interpolation, t.interpolation, "{name}: interpolation");
        assert_eq!(p.mean, t.mean, "{name}: mean");
        assert_eq!(p.std, t.std, "{name}: std");
    }
}

#[test]
fn resize_and_crop_are_pils_byte_for_byte() {
    let mut compared = 0;
    for t in transforms() {
        let (name, c) = (&t.name, t.crop);
        for i in 0..2 {
            let want_path = dir().join(format!("{name}_{i}.png"));
            if !want_path.exists() {
                continue;
            }
            let img = decode_image(dir().join(format!("input_{i}.png"))).unwrap();
            let want = decode_image(&want_path).unwrap();
            let (w, h) = resized_size(img.width, img.height, t.resize);
            let got = center_crop(&resize(&img, w, h, t.interpolation), c);
            assert_eq!(
                (got.width, got.height),
                (want.width, want.height),
                "{name} {i}"
            );
            let bad = got
                .data
                .iter()
                .zip(&want.data)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(bad, 0, "{name}, image {i}: {bad} bytes differ from PIL's");

            // apply() normalises exactly those bytes.
            let p = Preprocess::for_model(name, c);
            let v = p.apply(&img);
            let plane = c * c;
            for (k, px) in want.data.chunks_exact(3).enumerate() {
                for ch in 0..3 {
                    let x = (px[ch] as f32 / 255.0 - t.mean[ch]) / t.std[ch];
                    assert_eq!(v[ch * plane + k], x, "{name} {i}: pixel {k} channel {ch}");
                }
            }
            compared += 1;
        }
    }
    // 7 transforms of the shrunk image, 2 of the enlarged one.
    assert_eq!(compared, 9);
}

/// `decode_image` of each PNG in `fixtures/decode` equals PIL's
/// `Image.open(f).convert("RGB")` of it (stored beside it as an 8-bit RGB
/// PNG), byte for byte: 16-bit samples keep their high byte, except 16-bit
/// grey, which PIL opens as `I;16` and clips to 0..=255.
#[test]
fn decoding_is_pils() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/decode");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") && !n.ends_with(".rgb.png"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let got = decode_image(dir.join(name)).unwrap();
        let want = decode_image(dir.join(name.replace(".png", ".rgb.png"))).unwrap();
        assert_eq!((got.width, got.height), (want.width, want.height), "{name}");
        if let Some(i) = (0..got.data.len()).find(|&i| got.data[i] != want.data[i]) {
            let px = i / 3;
            panic!(
                "{name}: pixel ({}, {}) channel {} is {}, PIL gives {} ({} of {} bytes differ)",
                px % got.width,
                px / got.width,
                i % 3,
                got.data[i],
                want.data[i],
                got.data
                    .iter()
                    .zip(&want.data)
                    .filter(|(a, b)| a != b)
                    .count(),
                got.data.len()
            );
        }
    }
}
