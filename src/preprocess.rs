//! Image decoding and torchvision's and timm's evaluation preprocessing.
//!
//! The ImageNet evaluation pipeline torchvision's and timm's weights were
//! measured with is `Resize(r)` (shorter side to `r`, bilinear for
//! torchvision, bicubic for timm, antialiased) → `CenterCrop(c)` →
//! `ToTensor()` (÷255) → `Normalize(mean, std)`, applied to a PIL RGB image.
//! This module reproduces it on 8-bit RGB:
//!
//! * [`resize`] is PIL's `Image.resize(..., BILINEAR | BICUBIC)` bit for
//!   bit: a separable filter (triangle, or Keys' cubic with a = −0.5) whose
//!   support widens by the downscale factor (that widening is the
//!   antialiasing), horizontal pass first, with PIL's 22-bit fixed-point
//!   coefficients and rounding to 8 bits after each pass.
//! * [`Preprocess::for_model`] holds each model's transform as its
//!   library's default weights define it (`weights.transforms()` in
//!   torchvision, `resolve_data_config` in timm), and
//!   [`Preprocess::with_metadata`] takes the one a weights file records
//!   (`scripts/export_weights.py` writes it).
//! * [`resized_size`] is torchvision's rule for `Resize(int)`: the shorter
//!   side becomes `r`, the longer `int(r · long / short)` (truncated).
//! * [`center_crop`] is torchvision's `CenterCrop`: offsets
//!   `round((h − c) / 2)` with Python's round-half-to-even, zero padding
//!   when the image is smaller than the crop.
//!
//! Decoding gives PIL's pixels: JPEG through [`crate::jpeg`] (libjpeg-turbo's
//! decoding reproduced bit for bit), PNG through the `image` crate with
//! PIL's 16-bit rules (see [`decode_image`]).
//!
//! Layout: [`RgbImage`] is interleaved `RGBRGB…`, row-major, top row first.
//! [`Preprocess::apply`] returns planar CHW f32, the layout of one image
//! of an NCHW batch.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// ImageNet's per-channel mean (RGB), as torchvision normalises.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The mean and std timm's Inception-v4 / Inception-ResNet-v2 weights
/// (ported from TensorFlow) expect: inputs in [-1, 1].
pub const INCEPTION_MEAN_STD: [f32; 3] = [0.5, 0.5, 0.5];
/// CIFAR-10's per-channel mean (RGB).
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10's per-channel standard deviation (RGB).
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// An 8-bit RGB image, interleaved, row-major.
///
/// Invariant: `data.len() == 3 · width · height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `RGBRGB…`, top row first.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// An image from its size and interleaved RGB bytes; errors when the
    /// length is not `3 · width · height`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if data.len() != 3 * width * height {
            return Err(Error::Invalid(format!(
                "RGB image {width}×{height} needs {} bytes, got {}",
                3 * width * height,
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    fn px(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + c]
    }
}

/// Decodes a PNG or JPEG file (format guessed from its bytes) to 8-bit RGB,
/// as PIL's `Image.open(f).convert("RGB")` does (how torchvision's
/// `ImageFolder` loads images): grey is replicated, alpha dropped (not
/// composited), a palette looked up; 16-bit samples keep their high byte,
/// except 16-bit grey without alpha, which PIL opens as `I;16` and clips
/// to 0..=255 (such images come out blown out in torchvision too). JPEGs
/// go through [`crate::jpeg`], which gives libjpeg-turbo's pixels bit for
/// bit as PIL does (the `image` crate's decoder differs by a few levels in
/// 10–30% of samples); a corrupt or truncated JPEG is an error.
/// Errors are [`Error::Io`] naming the path.
pub fn decode_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let io = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| io(format!("cannot read: {e}")))?;
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let d =
            crate::jpeg::decode_rgb(&bytes).map_err(|e| io(format!("cannot decode JPEG: {e}")))?;
        return RgbImage::new(d.width, d.height, d.rgb);
    }
    let img = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| io(format!("cannot read: {e}")))?
        .decode()
        .map_err(|e| {
            io(format!(
                "cannot decode image (PNG and JPEG are supported): {e}"
            ))
        })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(io("image has no pixels".into()));
    }
    // The `image` crate rounds 16-bit samples to 8 bits; PIL truncates
    // (and clips 16-bit grey), so those take PIL's way here.
    let high = |v: u16| (v >> 8) as u8;
    let rgb: Vec<u8> = match &img {
        image::DynamicImage::ImageLuma16(g) => g
            .pixels()
            .flat_map(|p| [p.0[0].min(255) as u8; 3])
            .collect(),
        image::DynamicImage::ImageLumaA16(g) => {
            g.pixels().flat_map(|p| [high(p.0[0]); 3]).collect()
        }
        image::DynamicImage::ImageRgb16(c) => c.pixels().flat_map(|p| p.0.map(high)).collect(),
        image::DynamicImage::ImageRgba16(c) => c
            .pixels()
            .flat_map(|p| [high(p.0[0]), high(p.0[1]), high(p.0[2])])
            .collect(),
        other => other.to_rgb8().into_raw(),
    };
    RgbImage::new(w, h, rgb)
}

/// torchvision's `Resize(size)` output size for a `width × height` image:
/// the shorter side becomes `size`, the longer `int(size · long / short)`.
/// Returns `(width, height)`.
pub fn resized_size(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((size as f64 * long as f64) / short as f64) as usize;
    if width <= height {
        (size, new_long.max(1))
    } else {
        (new_long.max(1), size)
    }
}

/// PIL's fixed-point precision for 8-bit resampling (`Resample.c`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The resampling filter of [`resize`], as PIL names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// PIL's `BILINEAR`: the triangle filter, support 1 (torchvision's
    /// default).
    Bilinear,
    /// PIL's `BICUBIC`: Keys' cubic convolution with a = −0.5, support 2
    /// (timm's default).
    Bicubic,
}

impl Interpolation {
    /// Parses `bilinear` or `bicubic` (torchvision's and timm's names).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "bilinear" | "interpolationmode.bilinear" => Ok(Interpolation::Bilinear),
            "bicubic" | "interpolationmode.bicubic" => Ok(Interpolation::Bicubic),
            other => Err(Error::Invalid(format!(
                "interpolation `{other}`: bilinear or bicubic"
            ))),
        }
    }

    /// `bilinear` or `bicubic`, as [`Interpolation::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        }
    }

    /// The filter's support at scale 1.
    fn support(self) -> f64 {
        match self {
            Interpolation::Bilinear => 1.0,
            Interpolation::Bicubic => 2.0,
        }
    }

    /// PIL's `bilinear_filter` / `bicubic_filter`.
    fn filter(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Interpolation::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Interpolation::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// One output sample's taps: first input index and fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// PIL's `precompute_coeffs` for `filter` followed by
/// `normalize_coeffs_8bpc`, for resampling `in_size` samples to `out_size`.
fn taps(filter: Interpolation, in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    // PIL multiplies by the reciprocal rather than dividing.
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; clamp as PIL does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (xmin..xmax)
                .map(|x| filter.filter((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = raw.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

/// PIL's `clip8`: fixed-point accumulator to a byte.
fn clip8(acc: i64) -> u8 {
    if acc >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// [`resize`] with PIL's `BILINEAR` filter.
pub fn resize_bilinear(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    resize(img, out_w, out_h, Interpolation::Bilinear)
}

/// Resizes like PIL's `Image.resize((out_w, out_h), filter)` (what
/// torchvision's `Resize` does to a PIL image): antialiased when shrinking,
/// horizontal pass first, each pass rounded to 8 bits. A size equal to the
/// input's leaves that axis untouched. `out_w`, `out_h` ≥ 1.
pub fn resize(img: &RgbImage, out_w: usize, out_h: usize, filter: Interpolation) -> RgbImage {
    let mut cur = img.clone();
    if out_w != cur.width {
        let taps = taps(filter, cur.width, out_w);
        let mut data = vec![0u8; out_w * cur.height * 3];
        for y in 0..cur.height {
            for (x, t) in taps.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &w) in t.weights.iter().enumerate() {
                        acc += cur.px(t.start + i, y, c) as i64 * w as i64;
                    }
                    data[(y * out_w + x) * 3 + c] = clip8(acc);
                }
            }
        }
        cur = RgbImage {
            width: out_w,
            height: cur.height,
            data,
        };
    }
    if out_h != cur.height {
        let taps = taps(filter, cur.height, out_h);
        let mut data = vec![0u8; cur.width * out_h * 3];
        for (y, t) in taps.iter().enumerate() {
            for x in 0..cur.width {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &w) in t.weights.iter().enumerate() {
                        acc += cur.px(x, t.start + i, c) as i64 * w as i64;
                    }
                    data[(y * cur.width + x) * 3 + c] = clip8(acc);
                }
            }
        }
        cur = RgbImage {
            width: cur.width,
            height: out_h,
            data,
        };
    }
    cur
}

/// Python's `round` (half to even) of a value that is an integer or an
/// integer plus one half, as `CenterCrop` computes its offsets.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        r as i64 - x.signum() as i64
    } else {
        r as i64
    }
}

/// torchvision's `CenterCrop(size)`: the `size × size` window at offsets
/// `round((h − size) / 2)`, `round((w − size) / 2)`; an image smaller than
/// the crop is first zero-padded symmetrically (as torchvision does).
pub fn center_crop(img: &RgbImage, size: usize) -> RgbImage {
    let top = round_half_even((img.height as f64 - size as f64) / 2.0);
    let left = round_half_even((img.width as f64 - size as f64) / 2.0);
    let mut data = vec![0u8; size * size * 3];
    for y in 0..size {
        let sy = top + y as i64;
        if sy < 0 || sy >= img.height as i64 {
            continue;
        }
        for x in 0..size {
            let sx = left + x as i64;
            if sx < 0 || sx >= img.width as i64 {
                continue;
            }
            let src = (sy as usize * img.width + sx as usize) * 3;
            data[(y * size + x) * 3..][..3].copy_from_slice(&img.data[src..src + 3]);
        }
    }
    RgbImage {
        width: size,
        height: size,
        data,
    }
}

/// torchvision's `Inception3._transform_input`, in place on an NCHW batch
/// of 3 channels: `x[c] = x[c] · (std[c] / 0.5) + (mean[c] − 0.5) / 0.5`
/// with ImageNet's mean and std, the constants taken in f64 and rounded to
/// f32, then a rounded multiply and a rounded add, as PyTorch computes it.
///
/// `inception_v3(weights=...)` builds the model with
/// `transform_input=True`: its pretrained weights expect inputs normalised
/// with mean = std = 0.5, and the model maps an ImageNet-normalised input
/// to that first. resincept's `inception_v3` graph is
/// `transform_input=False`, so inputs for such weights go through this
/// first (the CLI does it when the weights file's metadata says
/// `transform_input = true`, as `scripts/export_weights.py` records, or
/// with `--transform-input`). Errors when `x` is not (N, 3, H, W).
pub fn inception_transform_input(x: &mut Tensor) -> Result<()> {
    let [n, c, h, w] = x.nchw()?;
    if c != 3 {
        return Err(Error::Shape {
            node: "transform_input".into(),
            expected: "3 input channels (RGB)".into(),
            actual: format!("{:?}", x.shape),
        });
    }
    // torchvision's literals, as Python floats (f64).
    const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
    const STD: [f64; 3] = [0.229, 0.224, 0.225];
    let plane = h * w;
    for b in 0..n {
        for ch in 0..3 {
            let mul = (STD[ch] / 0.5) as f32;
            let add = ((MEAN[ch] - 0.5) / 0.5) as f32;
            for v in &mut x.data[(b * 3 + ch) * plane..][..plane] {
                *v = *v * mul + add;
            }
        }
    }
    Ok(())
}

/// An evaluation transform: optional shorter-side resize, centre crop,
/// `ToTensor`, `Normalize(mean, std)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// `Resize(r)`: shorter side to `r` (none: no resize).
    pub resize: Option<usize>,
    /// The resize's filter.
    pub interpolation: Interpolation,
    /// `CenterCrop(c)`: the network's input height and width.
    pub crop: usize,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Preprocess {
    /// The transform for the model `name` whose default input is
    /// `size × size`, as the library's default weights define it
    /// (torchvision: `weights.transforms()` of `DEFAULT`; timm:
    /// `resolve_data_config`, resize `floor(crop / crop_pct)`):
    ///
    /// | models | resize | crop | filter | mean / std |
    /// | --- | --- | --- | --- | --- |
    /// | 32×32 (CIFAR nets) | none | 32 | — | CIFAR-10's |
    /// | `resnet18`, `resnet34`, `plain18`, `plain34` | 256 | 224 | bilinear | ImageNet's |
    /// | `resnet50`, `resnet101`, `resnet152`, the ResNeXts and Wide ResNets (`IMAGENET1K_V2`; `resnext101_64x4d`'s `V1` too) | 232 | 224 | bilinear | ImageNet's |
    /// | `inception_v3` | 342 | 299 | bilinear | ImageNet's |
    /// | `resnetv2_50`, `resnetv2_101` (timm, crop_pct 0.95) | 235 | 224 | bicubic | 0.5 / 0.5 |
    /// | `resnetv2_152`, `resnetv2_200` (crop_pct 0.875) | 256 | 224 | bicubic | 0.5 / 0.5 |
    /// | `inception_v4` (timm, crop_pct 0.875) | 341 | 299 | bicubic | 0.5 / 0.5 |
    /// | `inception_resnet_v2` (timm, crop_pct 0.8975) | 333 | 299 | bicubic | 0.5 / 0.5 |
    ///
    /// At another input size the resize keeps its ratio to the crop.
    pub fn for_model(name: &str, size: usize) -> Self {
        if size <= 32 {
            return Self {
                resize: None,
                interpolation: Interpolation::Bilinear,
                crop: size,
                mean: CIFAR10_MEAN,
                std: CIFAR10_STD,
            };
        }
        use Interpolation::{Bicubic, Bilinear};
        let (resize, crop, interpolation, mean, std) = match name {
            "resnet50" | "resnet101" | "resnet152" | "resnext50_32x4d" | "resnext101_32x8d"
            | "resnext101_64x4d" | "wide_resnet50_2" | "wide_resnet101_2" => {
                (232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD)
            }
            "inception_v3" => (342, 299, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
            "resnetv2_50" | "resnetv2_101" => {
                (235, 224, Bicubic, INCEPTION_MEAN_STD, INCEPTION_MEAN_STD)
            }
            "resnetv2_152" | "resnetv2_200" => {
                (256, 224, Bicubic, INCEPTION_MEAN_STD, INCEPTION_MEAN_STD)
            }
            "inception_v4" => (341, 299, Bicubic, INCEPTION_MEAN_STD, INCEPTION_MEAN_STD),
            "inception_resnet_v2" => (333, 299, Bicubic, INCEPTION_MEAN_STD, INCEPTION_MEAN_STD),
            _ => (256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
        };
        Self {
            resize: Some(if size == crop {
                resize
            } else {
                (size * resize + crop / 2) / crop
            }),
            interpolation,
            crop: size,
            mean,
            std,
        }
    }

    /// This transform with what a weights file's metadata says, where it
    /// says it (`scripts/export_weights.py` writes these keys from the
    /// library's own transform): `preprocess_resize` (an integer, or
    /// `none`), `preprocess_crop`, `preprocess_interpolation` (`bilinear`
    /// or `bicubic`), `preprocess_mean` and `preprocess_std` (three
    /// comma-separated numbers). A malformed value is an error naming it.
    pub fn with_metadata(
        mut self,
        meta: &std::collections::HashMap<String, String>,
    ) -> Result<Self> {
        let bad = |key: &str, v: &str, want: &str| {
            Error::Invalid(format!("weights metadata `{key}` = `{v}`: expected {want}"))
        };
        let int = |key: &str, v: &str| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(key, v, "a positive integer"))
        };
        let three = |key: &str, v: &str| -> Result<[f32; 3]> {
            let xs: Vec<f32> = v
                .split(',')
                .map(|x| x.trim().parse::<f32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad(key, v, "three comma-separated numbers"))?;
            xs.try_into()
                .map_err(|_| bad(key, v, "three comma-separated numbers"))
        };
        if let Some(v) = meta.get("preprocess_resize") {
            self.resize = match v.trim() {
                "none" => None,
                _ => Some(int("preprocess_resize", v)?),
            };
        }
        if let Some(v) = meta.get("preprocess_crop") {
            self.crop = int("preprocess_crop", v)?;
        }
        if let Some(v) = meta.get("preprocess_interpolation") {
            self.interpolation = Interpolation::parse(v)
                .map_err(|_| bad("preprocess_interpolation", v, "bilinear or bicubic"))?;
        }
        if let Some(v) = meta.get("preprocess_mean") {
            self.mean = three("preprocess_mean", v)?;
        }
        if let Some(v) = meta.get("preprocess_std") {
            self.std = three("preprocess_std", v)?;
        }
        Ok(self)
    }

    /// Resize, crop, scale to [0, 1] and normalise one image; returns
    /// `3 · crop · crop` values in CHW order.
    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        let resized;
        let img = match self.resize {
            Some(r) => {
                let (w, h) = resized_size(img.width, img.height, r);
                resized = resize(img, w, h, self.interpolation);
                &resized
            }
            None => img,
        };
        let crop = center_crop(img, self.crop);
        let plane = self.crop * self.crop;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in crop.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        out
    }

    /// Decodes and preprocesses every file into one `(N, 3, crop, crop)`
    /// batch. The first undecodable file is the error.
    pub fn batch(&self, paths: &[impl AsRef<Path>]) -> Result<Tensor> {
        let mut data = Vec::with_capacity(paths.len() * 3 * self.crop * self.crop);
        for p in paths {
            data.extend(self.apply(&decode_image(p)?));
        }
        Tensor::new(vec![paths.len(), 3, self.crop, self.crop], data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_row(values: &[u8]) -> RgbImage {
        let data = values.iter().flat_map(|&v| [v, v, v]).collect();
        RgbImage::new(values.len(), 1, data).unwrap()
    }

    #[test]
    fn resized_size_follows_torchvision() {
        // 640×480 → shorter side 256, longer int(256·640/480) = int(341.33) = 341.
        assert_eq!(resized_size(640, 480, 256), (341, 256));
        assert_eq!(resized_size(480, 640, 256), (256, 341));
        assert_eq!(resized_size(500, 500, 256), (256, 256));
        // int(342·375/500) = int(256.5) = 256
        assert_eq!(resized_size(375, 500, 342), (342, 456));
        assert_eq!(resized_size(500, 375, 342), (456, 342));
    }

    #[test]
    fn halving_uses_a_widened_triangle() {
        // 4 → 2: scale 2, support 2. Output 0 has centre 1.0, taps x = 0..3
        // with triangle((x − 1 + 0.5)/2) = 0.75, 0.75, 0.25 → 3/7, 3/7, 1/7.
        // Values 0, 70, 140, 210: (0·3 + 70·3 + 140)/7 = 50.
        // Output 1 has centre 3.0, taps x = 1..4: 0.25, 0.75, 0.75 →
        // (70 + 140·3 + 210·3)/7 = 160.
        let out = resize_bilinear(&grey_row(&[0, 70, 140, 210]), 2, 1);
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.data, vec![50, 50, 50, 160, 160, 160]);
    }

    #[test]
    fn upscaling_is_plain_bilinear() {
        // 2 → 4: scale 0.5, support 1. Output centres 0.25, 0.75, 1.25, 1.75:
        // out 0 taps x=0 only (x=1 is at distance 1.0 → weight 0) → 0;
        // out 1: weights 0.75 (x=0), 0.25 (x=1) → 25; out 2: 0.25, 0.75 → 75;
        // out 3: x=1 → 100.
        let out = resize_bilinear(&grey_row(&[0, 100]), 4, 1);
        assert_eq!(
            out.data.chunks(3).map(|p| p[0]).collect::<Vec<_>>(),
            [0, 25, 75, 100]
        );
    }

    #[test]
    fn identity_size_is_a_copy() {
        let img = grey_row(&[1, 2, 3]);
        assert_eq!(resize_bilinear(&img, 3, 1), img);
    }

    #[test]
    fn rounding_is_half_even() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(16.0), 16);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(-1.5), -2);
    }

    #[test]
    fn center_crop_offsets_and_padding() {
        // 5 wide, crop 2: left = round(1.5) = 2 → columns 2, 3.
        let img = grey_row(&[10, 20, 30, 40, 50]);
        let tall = RgbImage::new(5, 2, [img.data.clone(), img.data.clone()].concat()).unwrap();
        let c = center_crop(&tall, 2);
        assert_eq!(
            c.data.chunks(3).map(|p| p[0]).collect::<Vec<_>>(),
            [30, 40, 30, 40]
        );
        // 1×1 image cropped to 3: padded with zeros around the centre.
        let one = RgbImage::new(1, 1, vec![9, 9, 9]).unwrap();
        let c = center_crop(&one, 3);
        let r: Vec<u8> = c.data.chunks(3).map(|p| p[0]).collect();
        assert_eq!(r, [0, 0, 0, 0, 9, 0, 0, 0, 0]);
    }

    #[test]
    fn normalisation_is_chw() {
        let p = Preprocess {
            resize: None,
            interpolation: Interpolation::Bilinear,
            crop: 1,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        };
        let img = RgbImage::new(1, 1, vec![255, 0, 51]).unwrap();
        let v = p.apply(&img);
        let want = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (0.2 - 0.406) / 0.225,
        ];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn model_transforms() {
        let r = Preprocess::for_model("resnet18", 224);
        assert_eq!((r.resize, r.crop, r.mean), (Some(256), 224, IMAGENET_MEAN));
        let r = Preprocess::for_model("resnet50", 224);
        assert_eq!((r.resize, r.crop, r.mean), (Some(232), 224, IMAGENET_MEAN));
        let i = Preprocess::for_model("inception_v3", 299);
        assert_eq!((i.resize, i.crop, i.mean), (Some(342), 299, IMAGENET_MEAN));
        let t = Preprocess::for_model("inception_v4", 299);
        assert_eq!((t.resize, t.crop, t.mean), (Some(341), 299, [0.5; 3]));
        assert_eq!(t.interpolation, Interpolation::Bicubic);
        let t = Preprocess::for_model("inception_resnet_v2", 299);
        assert_eq!((t.resize, t.crop), (Some(333), 299));
        let v2 = Preprocess::for_model("resnetv2_50", 224);
        assert_eq!(
            (v2.resize, v2.interpolation, v2.mean),
            (Some(235), Interpolation::Bicubic, [0.5; 3])
        );
        // Another size keeps the ratio: 256/224 at 112 is 128.
        assert_eq!(Preprocess::for_model("resnet18", 112).resize, Some(128));
        let c = Preprocess::for_model("preact_resnet164_cifar", 32);
        assert_eq!((c.resize, c.crop), (None, 32));
    }

    #[test]
    fn full_pipeline_shape() {
        let img = RgbImage::new(40, 30, vec![128; 40 * 30 * 3]).unwrap();
        let p = Preprocess::for_model("resnet18", 224);
        let v = p.apply(&img);
        assert_eq!(v.len(), 3 * 224 * 224);
        // A flat image stays flat through resize and crop.
        let want = (128.0 / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        assert!(v[..224 * 224].iter().all(|&x| (x - want).abs() < 1e-6));
    }
}
