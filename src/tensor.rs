//! Host tensors: f32 data in PyTorch's NCHW order with its shape.
//!
//! This is the type at the public boundary. The GPU keeps activations in
//! NHWC internally; conversion happens on the GPU at upload and read-back.

use crate::error::{Error, Result};

/// How a 4-D activation's dimensions are ordered at the API boundary:
/// PyTorch's `(N, C, H, W)`, or `(N, H, W, C)` as TensorFlow/Keras models
/// (and their ONNX exports) take it. The GPU works in NHWC either way; an
/// NHWC input or output skips the boundary transpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Layout {
    /// `(N, C, H, W)`.
    #[default]
    Nchw,
    /// `(N, H, W, C)`.
    Nhwc,
}

impl Layout {
    /// The NCHW shape `[n, c, h, w]` written in this layout.
    pub fn dims(self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        match self {
            Layout::Nchw => [n, c, h, w],
            Layout::Nhwc => [n, h, w, c],
        }
    }
}

/// A dense f32 tensor in row-major (PyTorch) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (NCHW for activations).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values in row-major order.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; errors when the sizes disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape {
                node: "tensor".into(),
                expected: format!("{} values for shape {shape:?}", n),
                actual: format!("{} values", data.len()),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The shape as `[n, c, h, w]`, padding missing trailing dims with 1
    /// (so a `(N, F)` tensor reads as `(N, F, 1, 1)`). Errors on rank > 4.
    pub fn nchw(&self) -> Result<[usize; 4]> {
        if self.shape.is_empty() || self.shape.len() > 4 {
            return Err(Error::Shape {
                node: "tensor".into(),
                expected: "rank 1 to 4".into(),
                actual: format!("shape {:?}", self.shape),
            });
        }
        let mut s = [1usize; 4];
        s[..self.shape.len()].copy_from_slice(&self.shape);
        Ok(s)
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// Largest `|self − other|` over all elements; NaN when either holds a
    /// NaN (so a comparison against it fails). Errors when the shapes differ.
    pub fn max_abs_diff(&self, other: &Tensor) -> Result<f32> {
        if self.shape != other.shape {
            return Err(Error::Shape {
                node: "tensor".into(),
                expected: format!("shape {:?}", self.shape),
                actual: format!("shape {:?}", other.shape),
            });
        }
        Ok(self.data.iter().zip(&other.data).fold(0.0f32, |m, (a, b)| {
            let d = (a - b).abs();
            if d.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        }))
    }
}

/// NCHW → NHWC on the host (used by the CPU side of tests and by weight repacking).
pub fn nchw_to_nhwc(src: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out[((b * h + y) * w + x) * c + ch] = src[((b * c + ch) * h + y) * w + x];
                }
            }
        }
    }
    out
}

/// NHWC → NCHW on the host; `[n, c, h, w]` is the logical shape.
pub fn nhwc_to_nchw(src: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out[((b * c + ch) * h + y) * w + x] = src[((b * h + y) * w + x) * c + ch];
                }
            }
        }
    }
    out
}

/// Refuses a host allocation of `bytes` for `what` (what the bytes are
/// for, in words: ``tensor `input` ``) that this machine cannot reasonably hold: more than the memory
/// the operating system reports available (Linux: `MemAvailable` of
/// `/proc/meminfo`), or more than an address space allows. Call it with
/// sizes that come from a user (a batch, an image size, a file's or a
/// model's shapes) before allocating, so a request too large is one error
/// naming the tensor, its bytes and the limit instead of an abort.
pub fn check_host_bytes(what: &str, bytes: u128) -> Result<()> {
    let (limit, available) = match host_available_bytes() {
        Some(a) => ("host memory available (MemAvailable)", a),
        None => ("host address space", isize::MAX as u64),
    };
    if bytes > available as u128 {
        return Err(Error::Limit {
            node: what.into(),
            limit,
            needed: u64::try_from(bytes).unwrap_or(u64::MAX),
            available,
        });
    }
    Ok(())
}

/// The bytes of `shape` at `element_bytes` each, without overflow.
pub fn shape_bytes(shape: &[usize], element_bytes: usize) -> u128 {
    shape.iter().fold(element_bytes as u128, |acc, &d| {
        acc.saturating_mul(d as u128)
    })
}

/// Memory the operating system says is available, where it says so.
fn host_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_abs_diff_checks_shape_and_keeps_nan() {
        let a = Tensor::new(vec![1, 3], vec![1.0, -2.0, 3.0]).unwrap();
        let b = Tensor::new(vec![1, 3], vec![1.5, -2.0, 1.0]).unwrap();
        assert_eq!(a.max_abs_diff(&b).unwrap(), 2.0);
        let nan = Tensor::new(vec![1, 3], vec![f32::NAN, -2.0, 3.0]).unwrap();
        assert!(a.max_abs_diff(&nan).unwrap().is_nan());
        assert!(nan.max_abs_diff(&a).unwrap().is_nan());
        let c = Tensor::new(vec![3, 1], vec![1.0, -2.0, 3.0]).unwrap();
        assert!(matches!(a.max_abs_diff(&c), Err(Error::Shape { .. })));
    }
}
