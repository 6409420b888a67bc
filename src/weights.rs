//! Named weight tensors: the `synthetic-v1` generator and safetensors I/O.
//!
//! A network's parameters are addressed by their PyTorch `state_dict` keys
//! (`layer1.0.conv1.weight`, `Mixed_5b.branch1x1.bn.running_var`, ...). A
//! [`Weights`] store maps each key to an f32 [`Tensor`] in PyTorch's own
//! layout (OIHW for conv weights); repacking for the GPU happens later.
//!
//! Weights come from one of two places:
//!
//! * **`synthetic-v1`** ([`synthetic_tensor`], [`Weights::from_synthetic`]):
//!   every value is a pure function of a seed and the key, so the golden
//!   fixtures need not store any weight. For key `k`, shape `s`, element `i`
//!   (row-major): `state = seed ^ fnv1a64(k)`, splitmix64 of
//!   `state + (i+1)·0x9E3779B97F4A7C15` gives 64 bits whose top 53 make
//!   `u ∈ [0, 1)`, and the value, computed in f64 and rounded once to f32, is
//!
//!   | key / rank | value |
//!   | --- | --- |
//!   | exactly `input` | `2u − 1` |
//!   | last segment `running_var` | `0.5 + u` |
//!   | last segment `running_mean` | `0.2·(u − 0.5)` |
//!   | rank ≥ 2 | `(2u − 1)·sqrt(3 / fan_in)`, `fan_in = s[1]·…·s[r−1]` |
//!   | rank < 2, last segment `weight` | `0.5 + 0.5u` |
//!   | rank < 2, anything else | `0.2·(u − 0.5)` |
//!
//!   (This table is the fixtures' README spec, restated; the stored
//!   `input` tensors check this implementation bit for bit.)
//! * **safetensors files** ([`Weights::load_safetensors`]), e.g. written by
//!   `scripts/export_weights.py` from a torchvision or timm model. F32, F16,
//!   BF16 and F64 tensors are converted to f32 at load; `num_batches_tracked`
//!   entries (BatchNorm's integer step counter, which inference never reads)
//!   are skipped; any other non-float tensor is an error naming its key.
//!
//! [`Weights::check`] compares a store against the keys and shapes a model
//! expects, so that a wrong checkpoint fails at load with the key at fault,
//! not later inside a kernel. Nothing here panics on a malformed file: it is
//! [`Error::Io`] with the path and the reason.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The name of the synthetic weight generator implemented here, as stored in
/// the golden fixtures' `weights` metadata.
pub const SYNTHETIC_VERSION: &str = "synthetic-v1";

/// The seed of every public golden fixture, and the one to assume when a
/// file's metadata has no `seed`.
pub const DEFAULT_SEED: u64 = 1;

/// The key whose synthetic values are a network input (`2u − 1`), and the
/// tensor name of the input in the golden fixtures.
pub const INPUT_KEY: &str = "input";

/// The last `state_dict` key segment that loading and [`Weights::check`] ignore.
pub const IGNORED_SEGMENT: &str = "num_batches_tracked";

/// Where bytes that did not come from a file are said to come from in errors.
const MEMORY_ORIGIN: &str = "<memory>";

/// 64-bit FNV-1a of `bytes` (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3, wrapping multiply).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The `synthetic-v1` uniform in `[0, 1)` of element `index` of the stream
/// whose state is `seed ^ fnv1a64(key)`: splitmix64 of
/// `state + (index+1)·0x9E3779B97F4A7C15`, top 53 bits times 2⁻⁵³ (exact).
fn uniform(state: u64, index: u64) -> f64 {
    let mut z = state.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Which `synthetic-v1` formula a key and shape select.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// `2u − 1` (the key `input`).
    Input,
    /// `0.5 + u` (`running_var`).
    RunningVar,
    /// `0.2·(u − 0.5)` (`running_mean`, and rank < 2 tensors not named `weight`).
    Centered,
    /// `(2u − 1)·scale` with `scale = sqrt(3 / fan_in)` (rank ≥ 2).
    Kaiming(f64),
    /// `0.5 + 0.5u` (rank < 2 `weight`: a norm's gamma).
    Gamma,
}

impl Rule {
    fn of(key: &str, shape: &[usize]) -> Rule {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        if key == INPUT_KEY {
            Rule::Input
        } else if leaf == "running_var" {
            Rule::RunningVar
        } else if leaf == "running_mean" {
            Rule::Centered
        } else if shape.len() >= 2 {
            let fan_in: usize = shape[1..].iter().product();
            Rule::Kaiming((3.0 / fan_in as f64).sqrt())
        } else if leaf == "weight" {
            Rule::Gamma
        } else {
            Rule::Centered
        }
    }

    /// The value in f64, in the operation order of the reference (numpy).
    fn apply(self, u: f64) -> f64 {
        match self {
            Rule::Input => 2.0 * u - 1.0,
            Rule::RunningVar => 0.5 + u,
            Rule::Centered => 0.2 * (u - 0.5),
            Rule::Kaiming(scale) => (2.0 * u - 1.0) * scale,
            Rule::Gamma => 0.5 + 0.5 * u,
        }
    }
}

/// Element `index` (row-major) of the `synthetic-v1` tensor `key` of the given
/// PyTorch shape under `seed`. The shape matters only through its rank and
/// `fan_in`; `index` is not checked against it.
pub fn synthetic_value(seed: u64, key: &str, shape: &[usize], index: usize) -> f32 {
    let state = seed ^ fnv1a64(key.as_bytes());
    Rule::of(key, shape).apply(uniform(state, index as u64)) as f32
}

/// The whole `synthetic-v1` tensor `key` of `shape` under `seed`, bit for bit
/// what `make_golden.py` loaded into the PyTorch module.
pub fn synthetic_tensor(seed: u64, key: &str, shape: &[usize]) -> Tensor {
    let state = seed ^ fnv1a64(key.as_bytes());
    let rule = Rule::of(key, shape);
    let n: usize = shape.iter().product();
    let data = (0..n as u64)
        .map(|i| rule.apply(uniform(state, i)) as f32)
        .collect();
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}

/// The synthetic network input of `shape` (NCHW) under `seed`: values
/// `2u − 1` in `[-1, 1)`, the key being [`INPUT_KEY`].
pub fn synthetic_input(seed: u64, shape: &[usize]) -> Tensor {
    synthetic_tensor(seed, INPUT_KEY, shape)
}

/// The seed of a golden fixture from its safetensors metadata: its `seed`
/// entry, or [`DEFAULT_SEED`] when there is none. Errors when `seed` is not a
/// u64, or when a `weights` entry names a generator other than
/// [`SYNTHETIC_VERSION`].
pub fn synthetic_seed(metadata: &HashMap<String, String>) -> Result<u64> {
    if let Some(w) = metadata.get("weights") {
        if w != SYNTHETIC_VERSION {
            return Err(Error::Invalid(format!(
                "weights generator `{w}` is not supported (only `{SYNTHETIC_VERSION}`)"
            )));
        }
    }
    match metadata.get("seed") {
        None => Ok(DEFAULT_SEED),
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("metadata `seed` = `{s}` is not a u64"))),
    }
}

/// True for keys that loading skips and [`Weights::check`] ignores: those
/// whose last segment is [`IGNORED_SEGMENT`].
pub fn is_ignored_key(key: &str) -> bool {
    key.rsplit('.').next() == Some(IGNORED_SEGMENT)
}

/// A named store of f32 tensors, keyed by PyTorch `state_dict` key.
///
/// Invariant: every tensor's `data.len()` equals the product of its shape
/// (tensors made by this module always hold; [`Weights::insert`] checks).
/// Keys iterate in sorted order.
///
/// Each store has an [`id`](Weights::id) that changes whenever its contents
/// do; the GPU executor uses it to upload a model's parameters once per
/// device however many graphs (batch sizes) are compiled from it.
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor>,
    id: u64,
}

/// A process-unique id for a store's contents.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Default for Weights {
    fn default() -> Self {
        Self::from_map(BTreeMap::new())
    }
}

impl PartialEq for Weights {
    /// Equal when they hold the same tensors under the same keys.
    fn eq(&self, other: &Self) -> bool {
        self.tensors == other.tensors
    }
}

impl Weights {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn from_map(tensors: BTreeMap<String, Tensor>) -> Self {
        Self {
            tensors,
            id: next_id(),
        }
    }

    /// Identifies this store's contents: unique in the process, the same
    /// for clones until either is changed, new after every
    /// [`insert`](Weights::insert) or [`remove`](Weights::remove).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The `synthetic-v1` weights of every `(key, shape)` in `specs` under
    /// `seed`. Keys for which [`is_ignored_key`] holds are not generated
    /// (they are integers in PyTorch). A repeated key keeps its last shape.
    pub fn from_synthetic(seed: u64, specs: &[(String, Vec<usize>)]) -> Self {
        let tensors = specs
            .iter()
            .filter(|(key, _)| !is_ignored_key(key))
            .map(|(key, shape)| (key.clone(), synthetic_tensor(seed, key, shape)))
            .collect();
        Self::from_map(tensors)
    }

    /// Loads every tensor of a safetensors file (see
    /// [`Weights::from_safetensors_bytes`] for what is kept). A file that
    /// cannot be read or is not valid safetensors is [`Error::Io`] naming
    /// `path`; an unsupported dtype is [`Error::Weights`] naming the key.
    pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Loads every tensor of an in-memory safetensors file. F32, F16, BF16
    /// and F64 tensors are converted to f32; keys for which
    /// [`is_ignored_key`] holds are skipped whatever their dtype; any other
    /// dtype is [`Error::Weights`] naming the key. Malformed bytes are
    /// [`Error::Io`] with path `<memory>`.
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, MEMORY_ORIGIN)
    }

    fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        let st = deserialize(bytes, origin)?;
        let mut tensors = BTreeMap::new();
        for (key, view) in st.iter() {
            if is_ignored_key(key) {
                continue;
            }
            let tensor = view_to_tensor(key, view.dtype(), view.shape(), view.data())?;
            tensors.insert(key.to_string(), tensor);
        }
        Ok(Self::from_map(tensors))
    }

    /// The tensor stored under `key`; [`Error::Weights`] naming the key when
    /// there is none.
    pub fn get(&self, key: &str) -> Result<&Tensor> {
        self.tensors.get(key).ok_or_else(|| Error::Weights {
            key: key.to_string(),
            message: format!("missing (not among the {} tensors loaded)", self.len()),
        })
    }

    /// True when a tensor is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Stores `tensor` under `key`, returning the tensor it replaces. Errors
    /// (storing nothing) when the tensor's data length disagrees with its shape.
    pub fn insert(&mut self, key: impl Into<String>, tensor: Tensor) -> Result<Option<Tensor>> {
        let key = key.into();
        check_len(&key, &tensor)?;
        self.id = next_id();
        Ok(self.tensors.insert(key, tensor))
    }

    /// Removes and returns the tensor under `key`, if any.
    pub fn remove(&mut self, key: &str) -> Option<Tensor> {
        self.id = next_id();
        self.tensors.remove(key)
    }

    /// The keys, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// `(key, tensor)` pairs, in sorted key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.tensors.iter().map(|(k, t)| (k.as_str(), t))
    }

    /// Number of tensors stored.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when no tensor is stored.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Checks the store against what a model expects: every `(key, shape)`
    /// of `specs` present with exactly that shape, and no other key (keys for
    /// which [`is_ignored_key`] holds are ignored on both sides).
    ///
    /// The error is [`Error::Weights`] for the first problem found: missing
    /// keys and wrong shapes in `specs` order first, then unexpected keys in
    /// sorted order. Its one-line message says how many more problems there are.
    pub fn check(&self, specs: &[(String, Vec<usize>)]) -> Result<()> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let (mut missing, mut wrong, mut unexpected) = (0usize, 0usize, 0usize);
        for (key, shape) in specs.iter().filter(|(k, _)| !is_ignored_key(k)) {
            match self.tensors.get(key) {
                None => {
                    missing += 1;
                    problems.push((key.clone(), format!("missing (expected shape {shape:?})")));
                }
                Some(t) if t.shape != *shape => {
                    wrong += 1;
                    problems.push((
                        key.clone(),
                        format!("wrong shape: expected {shape:?}, found {:?}", t.shape),
                    ));
                }
                Some(_) => {}
            }
        }
        let expected: std::collections::HashSet<&str> =
            specs.iter().map(|(k, _)| k.as_str()).collect();
        for (key, t) in &self.tensors {
            if !is_ignored_key(key) && !expected.contains(key.as_str()) {
                unexpected += 1;
                problems.push((
                    key.clone(),
                    format!(
                        "unexpected: the model has no such parameter (shape {:?})",
                        t.shape
                    ),
                ));
            }
        }
        let total = problems.len();
        match problems.into_iter().next() {
            None => Ok(()),
            Some((key, mut message)) => {
                if total > 1 {
                    message.push_str(&format!(
                        "; and {} more problem(s): {missing} missing, {wrong} wrong shape, \
                         {unexpected} unexpected in total",
                        total - 1
                    ));
                }
                Err(Error::Weights { key, message })
            }
        }
    }

    /// Writes every tensor as f32 to a safetensors file (see
    /// [`save_safetensors`]).
    pub fn save_safetensors(
        &self,
        path: impl AsRef<Path>,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<()> {
        let list: Vec<(&str, &Tensor)> = self.iter().collect();
        save_safetensors(path, &list, metadata)
    }
}

/// Writes `tensors` as F32 (little-endian, row-major) to a safetensors file
/// at `path`, with optional string `metadata` (`__metadata__`). A repeated
/// name, or a tensor whose data length disagrees with its shape, is
/// [`Error::Weights`] naming it; a failed write is [`Error::Io`].
pub fn save_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let mut raw = Vec::with_capacity(tensors.len());
    for &(name, t) in tensors {
        check_len(name, t)?;
        raw.push(RawTensor {
            dtype: Dtype::F32,
            shape: t.shape.clone(),
            bytes: t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }
    let list: Vec<(&str, &RawTensor)> = tensors.iter().map(|&(n, _)| n).zip(&raw).collect();
    save_safetensors_raw(path, &list, metadata)
}

/// A tensor of any safetensors element type, as [`save_safetensors_raw`]
/// writes it: its type, shape and little-endian row-major bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// The element type.
    pub dtype: Dtype,
    /// The shape, outermost first.
    pub shape: Vec<usize>,
    /// The elements' bytes (a BOOL is one byte, 0 or 1).
    pub bytes: Vec<u8>,
}

/// [`save_safetensors`] for tensors of any element type (an ONNX model's
/// outputs may be BOOL, as Dropout's mask is). A repeated name, or bytes
/// that disagree with a shape and type, is [`Error::Weights`] naming it; a
/// failed write is [`Error::Io`].
pub fn save_safetensors_raw(
    path: impl AsRef<Path>,
    tensors: &[(&str, &RawTensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let path = path.as_ref();
    let io_err = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let mut seen = std::collections::HashSet::new();
    let mut views = Vec::with_capacity(tensors.len());
    for &(name, t) in tensors {
        if !seen.insert(name) {
            return Err(Error::Weights {
                key: name.to_string(),
                message: "given twice to save_safetensors".into(),
            });
        }
        let view = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
            .map_err(|e| Error::Weights {
                key: name.to_string(),
                message: format!("cannot serialise: {e}"),
            })?;
        views.push((name, view));
    }
    let out = safetensors::serialize(views, metadata)
        .map_err(|e| io_err(format!("cannot serialise safetensors: {e}")))?;
    std::fs::write(path, out).map_err(|e| io_err(format!("cannot write: {e}")))
}

/// Reads the one tensor `name` of a safetensors file, converted to f32 as
/// [`Weights::load_safetensors`] would. A missing tensor is
/// [`Error::Weights`] naming it; an unreadable or malformed file is [`Error::Io`].
pub fn read_tensor(path: impl AsRef<Path>, name: &str) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let origin = path.display().to_string();
    let st = deserialize(&bytes, &origin)?;
    let view = st.tensor(name).map_err(|_| Error::Weights {
        key: name.to_string(),
        message: format!("no such tensor in {origin} (it has {} tensors)", st.len()),
    })?;
    view_to_tensor(name, view.dtype(), view.shape(), view.data())
}

/// Reads the first of the tensors `names` that a safetensors file holds (a
/// model's input under its own name or under `input`), converted to f32.
/// Returns the name found and the tensor. None of them present is
/// [`Error::Weights`] naming every candidate and the tensors the file
/// has; a tensor that is not floating point (F32, F16, BF16 or F64) is
/// [`Error::Weights`] naming its dtype; an unreadable or malformed file is
/// [`Error::Io`].
pub fn read_input_tensor(path: impl AsRef<Path>, names: &[&str]) -> Result<(String, Tensor)> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let origin = path.display().to_string();
    let st = deserialize(&bytes, &origin)?;
    let Some((name, view)) = names
        .iter()
        .find_map(|n| st.tensor(n).ok().map(|v| (n.to_string(), v)))
    else {
        let mut has: Vec<String> = st.names().into_iter().map(|n| format!("`{n}`")).collect();
        has.sort();
        let want: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        return Err(Error::Weights {
            key: names.first().copied().unwrap_or_default().to_string(),
            message: format!(
                "{origin} has no tensor {} (it has {})",
                want.join(" or "),
                if has.is_empty() {
                    "none".to_string()
                } else {
                    has.join(", ")
                }
            ),
        });
    };
    if !matches!(
        view.dtype(),
        Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
    ) {
        return Err(Error::Weights {
            key: name,
            message: format!(
                "{origin}: dtype {:?} (shape {:?}); the model takes floating-point input \
                 (F32, or F16, BF16, F64 converted to f32)",
                view.dtype(),
                view.shape()
            ),
        });
    }
    let t = view_to_tensor(&name, view.dtype(), view.shape(), view.data())?;
    Ok((name, t))
}

/// The string metadata (`__metadata__`) of a safetensors file; empty when the
/// file has none. An unreadable or malformed file is [`Error::Io`].
pub fn read_metadata(path: impl AsRef<Path>) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let origin = path.display().to_string();
    // Validates the whole header against the file length, not only the JSON.
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| malformed(&origin, &e))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

fn malformed(origin: &str, e: &safetensors::SafeTensorError) -> Error {
    Error::Io {
        path: origin.to_string(),
        message: format!("not a valid safetensors file: {e}"),
    }
}

fn deserialize<'a>(bytes: &'a [u8], origin: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| malformed(origin, &e))
}

fn check_len(key: &str, t: &Tensor) -> Result<()> {
    let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(t.data.len()) {
        return Err(Error::Weights {
            key: key.to_string(),
            message: format!(
                "shape {:?} needs {} values, the tensor holds {}",
                t.shape,
                n.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                t.data.len()
            ),
        });
    }
    Ok(())
}

/// Decodes little-endian `data` of `dtype` to f32. The safetensors crate has
/// already checked that `data.len()` matches the shape and dtype.
fn view_to_tensor(key: &str, dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor> {
    let data: Vec<f32> = match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        other => {
            return Err(Error::Weights {
                key: key.to_string(),
                message: format!(
                    "unsupported dtype {other:?} (shape {shape:?}); \
                     weights must be F32, F16, BF16 or F64"
                ),
            })
        }
    };
    Ok(Tensor {
        shape: shape.to_vec(),
        data,
    })
}
