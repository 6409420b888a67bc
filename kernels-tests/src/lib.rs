//! Shared helpers for resincept's GPU tests: the shared context (or a loud
//! skip), NaN-filled output buffers, a deterministic RNG, and the tolerance
//! comparison that prints the first mismatches.

use resincept::kernels::Tolerance;
use resincept::Context;
use std::sync::{Arc, OnceLock};

/// The environment variable that turns a missing adapter into a failure.
pub const REQUIRE_GPU: &str = "RESINCEPT_REQUIRE_GPU";

/// The process-wide GPU context, or `None` after printing
/// `SKIP: no GPU adapter`. Panics instead when `RESINCEPT_REQUIRE_GPU=1`.
pub fn gpu() -> Option<Arc<Context>> {
    static CTX: OnceLock<Result<Arc<Context>, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| Context::new().map(Arc::new).map_err(|e| e.to_string()));
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

/// A storage buffer of `len` f32 filled with NaN, so that an element the
/// shader never writes fails the comparison.
pub fn nan_buffer(ctx: &Context, len: usize) -> wgpu::Buffer {
    ctx.storage_buffer_init("nan-filled output", &vec![f32::NAN; len.max(1)])
}

/// Deterministic uniform values in [-1, 1) from a seed (splitmix64).
pub fn rand_vec(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
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
