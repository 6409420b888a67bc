//! Shared helpers for resincept's GPU tests: the shared context (or a loud
//! skip), the storage modes to sweep, NaN-filled output buffers in any
//! storage, a deterministic RNG, and the tolerance comparison that prints
//! the first mismatches.

use resincept::kernels::Tolerance;
use resincept::shaders::Storage;
use resincept::Context;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The environment variable that turns a missing adapter into a failure.
pub const REQUIRE_GPU: &str = "RESINCEPT_REQUIRE_GPU";

/// The process-wide GPU context, or `None` after printing
/// `SKIP: no GPU adapter`. Panics instead when `RESINCEPT_REQUIRE_GPU=1`.
pub fn gpu() -> Option<Arc<Context>> {
    static CTX: OnceLock<Result<Arc<Context>, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| Context::from_env().map(Arc::new).map_err(|e| e.to_string()));
    match ctx {
        Ok(c) => Some(c.clone()),
        Err(e) => {
            if std::env::var(REQUIRE_GPU).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_GPU}=1 but no GPU adapter: {e}");
            }
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

/// The environment variable that makes a device without `SHADER_F16` fail
/// the f16 sweeps instead of skipping their native-f16 cases (CI's
/// lavapipe pass sets it: lavapipe has the feature).
pub const REQUIRE_F16: &str = "RESINCEPT_REQUIRE_F16";

/// The storage modes a kernel test sweeps on `ctx`: f32 and packed f16
/// everywhere, native f16 where the device has `SHADER_F16`. Without it
/// the native cases are skipped with a loud `SKIP` line (a failure with
/// [`REQUIRE_F16`]`=1`).
pub fn storages(ctx: &Context) -> Vec<Storage> {
    let mut all = storages_on(ctx);
    if let Ok(only) = std::env::var(ONLY_STORAGE) {
        all.retain(|s| only.split(',').any(|o| o.trim() == s.name()));
        eprintln!("{ONLY_STORAGE}={only}: sweeping {all:?} only");
    }
    all
}

/// `base` compiled to store in `storage`: f32, or f16 natively or packed
/// (forced, so that each storage mode a test sweeps really runs).
pub fn options_in(
    base: resincept::exec::gpu::CompileOptions,
    storage: Storage,
) -> resincept::exec::gpu::CompileOptions {
    use resincept::exec::gpu::F16Storage;
    use resincept::exec::Precision;
    match storage {
        Storage::F32 => base,
        Storage::F16 => base
            .with_precision(Precision::F16)
            .with_f16_storage(F16Storage::Native),
        Storage::F16Packed => base
            .with_precision(Precision::F16)
            .with_f16_storage(F16Storage::Packed),
    }
}

/// The environment variable that restricts [`storages`] to the named
/// modes (comma-separated `f32`, `f16`, `f16-packed`), for timing one
/// mode; CI never sets it.
pub const ONLY_STORAGE: &str = "RESINCEPT_ONLY_STORAGE";

fn storages_on(ctx: &Context) -> Vec<Storage> {
    if ctx.supports(Storage::F16) {
        return Storage::ALL.to_vec();
    }
    if std::env::var(REQUIRE_F16).is_ok_and(|v| v == "1") {
        panic!(
            "{REQUIRE_F16}=1 but {} ({:?}) lacks SHADER_F16",
            ctx.info.name, ctx.info.backend
        );
    }
    eprintln!(
        "SKIP: native f16 cases ({} ({:?}) lacks SHADER_F16); f32 and packed f16 run",
        ctx.info.name, ctx.info.backend
    );
    vec![Storage::F32, Storage::F16Packed]
}

/// A storage buffer of `len` f32 filled with NaN, so that an element the
/// shader never writes fails the comparison.
pub fn nan_buffer(ctx: &Context, len: usize) -> wgpu::Buffer {
    ctx.storage_buffer_init("nan-filled output", &vec![f32::NAN; len.max(1)])
}

/// A tensor buffer of `len` elements stored as `storage` says, filled with
/// NaN (the word 0x7fc07fc0 is a NaN as an f32 and as each f16 half).
pub fn nan_tensor(ctx: &Context, storage: Storage, len: usize) -> wgpu::Buffer {
    let words = storage.bytes(len.max(1)) / 4;
    let nan = f32::from_bits(0x7fc0_7fc0);
    ctx.storage_buffer_init("nan-filled output", &vec![nan; words as usize])
}

/// The bits of the NaN that [`sentinel_buffer`] holds: a quiet NaN with a
/// payload no kernel produces (NaN arithmetic gives the canonical NaN or
/// passes an input's along), so that a test whose expected output has NaN
/// in it can still tell "never written" from "written NaN".
pub const SENTINEL_NAN_BITS: u32 = 0x7fc0_bad0;

/// A storage buffer of `len` f32 holding the [`SENTINEL_NAN_BITS`] NaN: the
/// NaN pre-fill for tests whose expected output contains NaN.
pub fn sentinel_buffer(ctx: &Context, len: usize) -> wgpu::Buffer {
    let v = f32::from_bits(SENTINEL_NAN_BITS);
    ctx.storage_buffer_init("sentinel-filled output", &vec![v; len.max(1)])
}

/// [`SENTINEL_NAN_BITS`] for f16 tensors: a quiet half NaN with a payload
/// no kernel produces (converting an f32 NaN gives 0x7e00 or keeps the
/// f32 payload's top bits).
pub const SENTINEL_F16_BITS: u16 = 0x7ebd;

/// A tensor buffer of `len` elements stored as `storage` says, holding the
/// sentinel NaN ([`SENTINEL_NAN_BITS`] or [`SENTINEL_F16_BITS`]).
pub fn sentinel_tensor(ctx: &Context, storage: Storage, len: usize) -> wgpu::Buffer {
    if !storage.is_f16() {
        return sentinel_buffer(ctx, len);
    }
    let words = storage.bytes(len.max(1)) / 4;
    let w = u32::from(SENTINEL_F16_BITS) * 0x1_0001;
    ctx.storage_buffer_init(
        "sentinel-filled output",
        &vec![f32::from_bits(w); words as usize],
    )
}

/// True when `v` (read back as f32) is one of the sentinel NaNs.
fn is_sentinel(v: f32) -> bool {
    let f16 = half::f16::from_bits(SENTINEL_F16_BITS).to_f32().to_bits();
    v.to_bits() == SENTINEL_NAN_BITS || v.to_bits() == f16
}

/// [`assert_close`] for outputs where NaN is expected: an element still
/// holding the [`SENTINEL_NAN_BITS`] pre-fill fails (never written); where
/// `want` is NaN, `got` must be NaN; elsewhere `got` must be within `tol`.
pub fn assert_close_nan(case: &str, got: &[f32], want: &[f32], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{case}: length mismatch");
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if is_sentinel(g) {
            false
        } else if w.is_nan() {
            g.is_nan()
        } else {
            tol.close(g, w)
        };
        if !ok {
            bad.push(format!(
                "  [{i}] gpu={g:e} (bits {:#010x}) ref={w:e}",
                g.to_bits()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{case}: {} of {} elements wrong (NaN must match NaN, the sentinel means unwritten, \
         tolerance {tol:?}); first:\n{}",
        bad.len(),
        got.len(),
        bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// A small deterministic RNG (splitmix64) for random shapes and graphs.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of `xs`, uniformly.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// Uniform in [-1, 1), with 24 random bits.
    pub fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Deterministic uniform values in [-1, 1) from a seed.
pub fn rand_vec(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.unit()).collect()
}

/// `kernels-tests/golden/{sub}`.
pub fn golden_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(sub)
}

/// The team's shared fixture folder `../shared/golden/{sub}` beside the
/// checkout (where CI lays it), when it exists.
pub fn shared_golden_dir(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/golden")
        .join(sub);
    dir.is_dir().then_some(dir)
}

/// The `.safetensors` files directly in `dir` (panics when it cannot be read).
pub fn safetensors_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect()
}

/// Every `*.safetensors` fixture of `golden/{sub}`, sorted by file name;
/// panics when there is none (a missing oracle must not pass).
///
/// The project's own copy is what a fresh clone tests. When the shared
/// folder exists beside the checkout, its files are tested too and win over
/// a project copy of the same name: it is where fixtures are regenerated
/// (and where new ones, other sizes, batches and seeds, appear first).
pub fn golden_files(sub: &str) -> Vec<PathBuf> {
    let dir = golden_dir(sub);
    let mut by_name = std::collections::BTreeMap::new();
    for p in safetensors_in(&dir) {
        by_name.insert(p.file_name().unwrap().to_owned(), p);
    }
    if let Some(shared) = shared_golden_dir(sub) {
        for p in safetensors_in(&shared) {
            if !by_name.contains_key(p.file_name().unwrap()) {
                eprintln!(
                    "golden: also testing {} (not in the project copy)",
                    p.display()
                );
            }
            by_name.insert(p.file_name().unwrap().to_owned(), p);
        }
    }
    let files: Vec<PathBuf> = by_name.into_values().collect();
    assert!(
        !files.is_empty(),
        "no .safetensors files in {}",
        dir.display()
    );
    files
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` everywhere (NaN fails), and
/// prints the first mismatches with index and both values.
#[track_caller]
pub fn assert_close(case: &str, got: &[f32], want: &[f32], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{case}: length mismatch");
    let mut bad = Vec::new();
    let mut worst = 0.0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !tol.close(g, w) {
            if bad.len() < 10 {
                bad.push(format!(
                    "  [{i}] gpu={g:e} ref={w:e} diff={:e}",
                    (g - w).abs()
                ));
            }
            worst = worst.max((g - w).abs());
            if g.is_nan() || w.is_nan() {
                worst = f32::NAN;
            }
        }
    }
    let n_bad = got
        .iter()
        .zip(want)
        .filter(|(&g, &w)| !tol.close(g, w))
        .count();
    assert!(
        n_bad == 0,
        "{case}: {n_bad} of {} elements out of tolerance {tol:?} (worst diff {worst:e}); first:\n{}",
        got.len(),
        bad.join("\n")
    );
}

/// The environment variable naming the folder kernel tests write traces
/// to (for the Dawn replay, `tests/dawn.rs`); unset, nothing is written.
pub const TRACE_DIR: &str = "RESINCEPT_TRACE_DIR";

/// With [`TRACE_DIR`] set, records `dispatches` as a trace under
/// `$RESINCEPT_TRACE_DIR/<family>-<pid>-<n>-<case>`, whose checks are `outputs`
/// (label, buffer, the kernel's tolerance, how the buffer's elements are
/// stored). Call it *before* the test runs
/// the dispatches, while the outputs still hold their NaN pre-fill, so the
/// replay starts from the same state and an element it never writes stays
/// NaN. The trace runs the dispatches once itself; kernels write their
/// outputs without reading them, so the test's own run gives the same.
pub fn trace_dispatches(
    ctx: &Context,
    family: &str,
    case: &str,
    dispatches: &[&resincept::device::Dispatch],
    outputs: &[(&str, &wgpu::Buffer, Tolerance, Storage)],
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let Some(root) = std::env::var_os(TRACE_DIR) else {
        return;
    };
    let safe: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    let dir = PathBuf::from(root).join(format!("{family}-{pid}-{n:03}-{safe}"));
    let cmds: Vec<_> = dispatches
        .iter()
        .map(|d| resincept::device::Command::Dispatch(d))
        .collect();
    let checks: Vec<_> = outputs
        .iter()
        .map(|(label, b, tol, storage)| resincept::device::trace::Check {
            label: label.to_string(),
            span: resincept::device::Span::whole(b),
            storage: *storage,
            atol: tol.atol,
            rtol: tol.rtol,
        })
        .collect();
    resincept::device::trace::record(ctx, &format!("{family} {case}"), &cmds, &checks, &dir)
        .unwrap_or_else(|e| panic!("{family} {case}: recording a trace: {e}"));
}
