//! The one table of embedded WGSL sources, and the expansion that makes
//! each family's f32, native-f16 and packed-f16 modules from its one file.
//!
//! Every shader family lives in one file under `shaders/` and is compiled
//! into the binary here with `include_str!`: nothing is read from disk at run
//! time. Shapes never appear in WGSL text; they travel in each dispatch's
//! params uniform. Only tile sizes and a few flags are `override` constants.
//!
//! # Storage modes and the `//#tensor` directive
//!
//! A family's file is a template: its math is written once, in f32, and
//! every tensor that may be stored in half precision (activations, conv and
//! linear weights) is declared by one directive line instead of a
//! `var<storage>`:
//!
//! ```text
//! // Input activations, NHWC.
//! //#tensor x 1 read_write
//! ```
//!
//! (name, binding, access `read` or `read_write`). [`expand`] replaces the
//! line, for each [`Storage`], by the binding's declarations and its
//! accessors, every one converting to or from f32 at the memory access:
//!
//! | accessor | meaning |
//! | --- | --- |
//! | `x_ld(i) -> f32` | element `i` |
//! | `x_ld2(i) -> vec2<f32>` | elements `i`, `i + 1` (any `i`) |
//! | `x_ld4(i) -> vec4<f32>` | elements `i .. i + 4`, `i` a multiple of 4 (one 16- or 8-byte load) |
//! | `x_st(i, v)` | element `i` (`read_write` only) |
//! | `x_st2(i, v: vec2<f32>)` | elements `i`, `i + 1`, any `i` (`read_write` only) |
//! | `x_st4(i, v: vec4<f32>)` | elements `i .. i + 4`, any `i` (`read_write` only) |
//!
//! - [`Storage::F32`]: `array<f32>` (and an `array<vec4<f32>>` view for
//!   `x_ld4`): the accessors are plain indexing.
//! - [`Storage::F16`]: `array<f16>` (and `array<vec4<f16>>`), the module
//!   starts with `enable f16;` (adapters with `SHADER_F16` only). Loads
//!   convert with `f32(…)`, stores with `f16(…)`; a 16-bit store touches
//!   its own two bytes only.
//! - [`Storage::F16Packed`]: element `i` is half `i & 1` (low half first,
//!   so the bytes are those of an `array<f16>`) of word `i / 2` of an
//!   `array<u32>`; loads use `unpack2x16float`, stores `pack2x16float`.
//!   Any device. Two invocations writing the two halves of one word would
//!   race, so stores go through an `array<atomic<u32>>` view: a word whose
//!   two halves the storing invocation writes is one `atomicStore`; a lone
//!   half (an odd start, an odd length) is `atomicAnd` clearing it then
//!   `atomicOr` setting it, which leaves the other half to whoever owns it
//!   (an odd start of `x_st4` stores four halves so).
//!   Each element is written by one invocation of a dispatch (every
//!   kernel's rule), so a word is either wholly one invocation's or built
//!   from half-word operations on disjoint bits: no store can lose
//!   another's, whatever the channel count or offset.
//!
//! All three views of a binding (`x`, `x_v4`, and `x_at` when packed) are
//! declared at the same binding; an entry point may use one of them only
//! (naga and Tint refuse two globals of one binding in one entry point), so
//! an entry point either loads a tensor or stores it, and uses `x_ld4` or
//! the other loads, not both. `shaders_validate.rs` validates every entry
//! point of every expansion.
//!
//! Every other binding (uniforms, per-channel f32 vectors, f32 scratch) is
//! plain WGSL in the template and the same in every mode. Workgroup memory
//! and all arithmetic stay f32.
//!
//! Expansions are made once per process and cached ([`Module::source`]).

use std::fmt::Write as _;
use std::sync::OnceLock;

/// A shader family: one `.wgsl` file in `shaders/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shader {
    /// `shaders/conv2d.wgsl`: tiled implicit-GEMM convolution with fused epilogue.
    Conv2d,
    /// `shaders/batchnorm.wgsl`: inference batchnorm with an optional clamp.
    BatchNorm,
    /// `shaders/elementwise.wgsl`: scaled add with an optional clamp, a clamp alone.
    Elementwise,
    /// `shaders/pool.wgsl`: max, average and global-average pooling.
    Pool,
    /// `shaders/concat.wgsl`: channel-offset copy.
    Concat,
    /// `shaders/linear.wgsl`: fully connected layer with bias.
    Linear,
    /// `shaders/softmax.wgsl`: softmax over channels.
    Softmax,
    /// `shaders/layout.wgsl`: NCHW <-> NHWC transposes at the API boundary.
    Layout,
    /// `shaders/pad.wgsl`: constant padding of H and W.
    Pad,
    /// `shaders/const_arith.wgsl`: `x ∘ c` with a broadcast constant.
    ConstArith,
}

impl Shader {
    /// Every shader family, in file-name order.
    pub const ALL: [Shader; 10] = [
        Shader::BatchNorm,
        Shader::Concat,
        Shader::ConstArith,
        Shader::Conv2d,
        Shader::Elementwise,
        Shader::Layout,
        Shader::Linear,
        Shader::Pad,
        Shader::Pool,
        Shader::Softmax,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::BatchNorm => "batchnorm.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Concat => "concat.wgsl",
            Shader::Linear => "linear.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Layout => "layout.wgsl",
            Shader::Pad => "pad.wgsl",
            Shader::ConstArith => "const_arith.wgsl",
        }
    }

    /// The embedded file as written: a template with `//#tensor`
    /// directives (see the module doc), not WGSL until [`expand`]ed.
    pub fn template(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../shaders/conv2d.wgsl"),
            Shader::BatchNorm => include_str!("../shaders/batchnorm.wgsl"),
            Shader::Elementwise => include_str!("../shaders/elementwise.wgsl"),
            Shader::Pool => include_str!("../shaders/pool.wgsl"),
            Shader::Concat => include_str!("../shaders/concat.wgsl"),
            Shader::Linear => include_str!("../shaders/linear.wgsl"),
            Shader::Softmax => include_str!("../shaders/softmax.wgsl"),
            Shader::Layout => include_str!("../shaders/layout.wgsl"),
            Shader::Pad => include_str!("../shaders/pad.wgsl"),
            Shader::ConstArith => include_str!("../shaders/const_arith.wgsl"),
        }
    }

    /// Index in [`Shader::ALL`].
    fn index(self) -> usize {
        Shader::ALL.iter().position(|&s| s == self).expect("in ALL")
    }
}

/// How a shader module stores the tensors its template declares with
/// `//#tensor` (activations, conv and linear weights). See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Storage {
    /// 4-byte f32 elements.
    #[default]
    F32,
    /// 2-byte WGSL `f16` elements (`enable f16;`): needs the device
    /// feature `SHADER_F16`.
    F16,
    /// 2-byte f16 elements packed in pairs into `u32` words, converted with
    /// `unpack2x16float` / `pack2x16float`: every device. Same bytes as
    /// [`Storage::F16`].
    F16Packed,
}

impl Storage {
    /// Every storage mode.
    pub const ALL: [Storage; 3] = [Storage::F32, Storage::F16, Storage::F16Packed];

    /// Its name in module names, stats and traces: `f32`, `f16` or
    /// `f16-packed`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::F16Packed => "f16-packed",
        }
    }

    /// True for the two half-precision modes.
    pub fn is_f16(self) -> bool {
        self != Storage::F32
    }

    /// Bytes of one element on the device (4 or 2).
    pub fn element_bytes(self) -> u64 {
        if self.is_f16() {
            2
        } else {
            4
        }
    }

    /// Bytes of a tensor of `len` elements, rounded up to a whole 4-byte
    /// word (a packed word, and wgpu's binding-size granule).
    pub fn bytes(self, len: usize) -> u64 {
        (len as u64 * self.element_bytes()).div_ceil(4) * 4
    }

    /// The device features a module of this storage needs: `SHADER_F16`
    /// for [`Storage::F16`], none otherwise.
    pub fn features(self) -> wgpu::Features {
        match self {
            Storage::F16 => wgpu::Features::SHADER_F16,
            _ => wgpu::Features::empty(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One shader module: a family expanded for one storage mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Module {
    /// The family (its file).
    pub shader: Shader,
    /// How its tensors are stored.
    pub storage: Storage,
}

impl Module {
    /// `shader` expanded for `storage`.
    pub fn new(shader: Shader, storage: Storage) -> Self {
        Self { shader, storage }
    }

    /// Its name: the file name for f32 (`conv2d.wgsl`), with the storage
    /// before the extension otherwise (`conv2d.f16.wgsl`,
    /// `conv2d.f16-packed.wgsl`).
    pub fn name(self) -> String {
        let file = self.shader.file_name();
        match self.storage {
            Storage::F32 => file.to_string(),
            s => format!("{}.{}.wgsl", file.trim_end_matches(".wgsl"), s.name()),
        }
    }

    /// The module's WGSL: [`expand`] of the family's template, made once
    /// per process.
    pub fn source(self) -> &'static str {
        static CACHE: OnceLock<Vec<OnceLock<String>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| {
            (0..Shader::ALL.len() * Storage::ALL.len())
                .map(|_| OnceLock::new())
                .collect()
        });
        cache[self.shader.index() * Storage::ALL.len() + self.storage.index()]
            .get_or_init(|| expand(self.shader.template(), self.storage))
    }
}

/// Expands a template for `storage`: every `//#tensor NAME BINDING ACCESS`
/// line becomes the declarations and accessors of the module doc, and a
/// native-f16 module starts with `enable f16;`. Every other line is kept
/// as it is, so f32 text in the template means the same in every mode.
///
/// Panics on a malformed directive: templates are the crate's own files,
/// and `shaders_validate.rs` expands every one of them.
pub fn expand(template: &str, storage: Storage) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    if storage == Storage::F16 {
        out.push_str("enable f16;\n\n");
    }
    let _ = writeln!(
        out,
        "// Expanded for {} storage by resincept's src/shaders.rs.",
        storage.name()
    );
    for line in template.lines() {
        match line.trim_start().strip_prefix("//#tensor") {
            Some(rest) => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let [name, binding, access] = words[..] else {
                    panic!("malformed directive `{line}`: want `//#tensor NAME BINDING ACCESS`");
                };
                let binding: u32 = binding
                    .parse()
                    .unwrap_or_else(|_| panic!("`{line}`: binding `{binding}` is not a number"));
                let writable = match access {
                    "read" => false,
                    "read_write" => true,
                    _ => panic!("`{line}`: access must be read or read_write"),
                };
                tensor(&mut out, storage, name, binding, writable);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The declarations and accessors of one `//#tensor` directive.
fn tensor(out: &mut String, storage: Storage, x: &str, binding: u32, writable: bool) {
    let access = if writable { "read_write" } else { "read" };
    let var = |out: &mut String, name: &str, ty: &str| {
        let _ = writeln!(
            out,
            "@group(0) @binding({binding}) var<storage, {access}> {name}: array<{ty}>;"
        );
    };
    let (scalar, quad) = match storage {
        Storage::F32 => ("f32", "vec4<f32>"),
        Storage::F16 => ("f16", "vec4<f16>"),
        Storage::F16Packed => ("u32", "vec2<u32>"),
    };
    let _ = writeln!(
        out,
        "// `{x}` stored as {}: element view `{x}`, 4-element view `{x}_v4`{}.",
        storage.name(),
        if writable && storage == Storage::F16Packed {
            format!(", store view `{x}_at`")
        } else {
            String::new()
        }
    );
    var(out, x, scalar);
    var(out, &format!("{x}_v4"), quad);
    if writable && storage == Storage::F16Packed {
        var(out, &format!("{x}_at"), "atomic<u32>");
    }
    // Loads.
    let (ld, ld4) = match storage {
        Storage::F32 => (format!("{x}[i]"), format!("{x}_v4[i >> 2u]")),
        Storage::F16 => (
            format!("f32({x}[i])"),
            format!("vec4<f32>({x}_v4[i >> 2u])"),
        ),
        Storage::F16Packed => (
            format!("unpack2x16float({x}[i >> 1u])[i & 1u]"),
            format!(
                "vec4<f32>(unpack2x16float({x}_v4[i >> 2u].x), unpack2x16float({x}_v4[i >> 2u].y))"
            ),
        ),
    };
    let _ = writeln!(out, "fn {x}_ld(i: u32) -> f32 {{ return {ld}; }}");
    match storage {
        Storage::F16Packed => {
            let _ = writeln!(
                out,
                "fn {x}_ld2(i: u32) -> vec2<f32> {{\n    \
                 if ((i & 1u) == 0u) {{ return unpack2x16float({x}[i >> 1u]); }}\n    \
                 return vec2<f32>({x}_ld(i), {x}_ld(i + 1u));\n}}"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "fn {x}_ld2(i: u32) -> vec2<f32> {{ return vec2<f32>({x}_ld(i), {x}_ld(i + 1u)); }}"
            );
        }
    }
    let _ = writeln!(out, "fn {x}_ld4(i: u32) -> vec4<f32> {{ return {ld4}; }}");
    if !writable {
        return;
    }
    // Stores.
    match storage {
        Storage::F32 | Storage::F16 => {
            let cv = |v: &str| {
                if storage == Storage::F16 {
                    format!("f16({v})")
                } else {
                    v.to_string()
                }
            };
            let _ = writeln!(out, "fn {x}_st(i: u32, v: f32) {{ {x}[i] = {}; }}", cv("v"));
            let _ = writeln!(
                out,
                "fn {x}_st2(i: u32, v: vec2<f32>) {{ {x}[i] = {}; {x}[i + 1u] = {}; }}",
                cv("v.x"),
                cv("v.y")
            );
            let _ = writeln!(
                out,
                "fn {x}_st4(i: u32, v: vec4<f32>) {{\n    \
                 {x}[i] = {}; {x}[i + 1u] = {}; {x}[i + 2u] = {}; {x}[i + 3u] = {};\n}}",
                cv("v.x"),
                cv("v.y"),
                cv("v.z"),
                cv("v.w")
            );
        }
        Storage::F16Packed => {
            let _ = writeln!(
                out,
                "// One half of a word: clear it, then set it; the other half is\n\
                 // another invocation's (or no one's) and is left as it is.\n\
                 fn {x}_st(i: u32, v: f32) {{\n    \
                 let shift = (i & 1u) * 16u;\n    \
                 let h = pack2x16float(vec2<f32>(v, 0.0)) << shift;\n    \
                 atomicAnd(&{x}_at[i >> 1u], ~(0xffffu << shift));\n    \
                 atomicOr(&{x}_at[i >> 1u], h);\n}}"
            );
            let _ = writeln!(
                out,
                "// Elements i, i + 1: one whole word when i is even.\n\
                 fn {x}_st2(i: u32, v: vec2<f32>) {{\n    \
                 if ((i & 1u) == 0u) {{\n        \
                 atomicStore(&{x}_at[i >> 1u], pack2x16float(v));\n    \
                 }} else {{\n        \
                 {x}_st(i, v.x);\n        \
                 {x}_st(i + 1u, v.y);\n    \
                 }}\n}}"
            );
            let _ = writeln!(
                out,
                "// Elements i .. i + 4: two whole words when i is even, else four\n\
                 // halves (a loop: a smaller shader; odd starts are rare).\n\
                 fn {x}_st4(i: u32, v: vec4<f32>) {{\n    \
                 if ((i & 1u) == 0u) {{\n        \
                 atomicStore(&{x}_at[i >> 1u], pack2x16float(v.xy));\n        \
                 atomicStore(&{x}_at[(i >> 1u) + 1u], pack2x16float(v.zw));\n        \
                 return;\n    \
                 }}\n    \
                 for (var c = 0u; c < 4u; c++) {{\n        \
                 {x}_st(i + c, v[c]);\n    \
                 }}\n}}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            Module::new(Shader::Conv2d, Storage::F32).name(),
            "conv2d.wgsl"
        );
        assert_eq!(
            Module::new(Shader::Pool, Storage::F16Packed).name(),
            "pool.f16-packed.wgsl"
        );
        assert_eq!(Storage::F16.bytes(3), 8);
        assert_eq!(Storage::F32.bytes(3), 12);
    }

    #[test]
    fn directive_becomes_declarations_and_accessors() {
        let t = "// role\n//#tensor x 2 read_write\nfn f() {}\n";
        let f32 = expand(t, Storage::F32);
        assert!(f32.contains("@group(0) @binding(2) var<storage, read_write> x: array<f32>;"));
        assert!(f32.contains("fn x_st4("));
        assert!(!f32.contains("enable f16"));
        let h = expand(t, Storage::F16);
        assert!(h.starts_with("enable f16;"));
        assert!(h.contains("x: array<f16>;"));
        let p = expand(t, Storage::F16Packed);
        assert!(p.contains("x_at: array<atomic<u32>>;"));
        let r = expand("//#tensor w 3 read\n", Storage::F16Packed);
        assert!(!r.contains("x_st") && !r.contains("atomic"), "{r}");
    }

    #[test]
    #[should_panic(expected = "malformed directive")]
    fn malformed_directive_panics() {
        expand("//#tensor x\n", Storage::F32);
    }
}
