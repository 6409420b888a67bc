//! The layering of the crate, checked on its sources (CPU only):
//!
//! - the IR (`graph/`, `passes.rs`, `plan.rs`) imports nothing of the
//!   device, kernel or executor layers, nor wgpu;
//! - the device layer (`device/`) imports no kernel, IR or executor;
//! - kernels import no executor;
//! - every per-op lowering function is at most 80 lines;
//! - no `async fn` blocks (no `block_on`, no blocking wait) — the blocking
//!   wrappers are separate functions;
//! - the library reads no environment variable outside
//!   `ContextOptions::from_env`.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../src")
}

/// Every `.rs` file under `dir` (or `dir` itself), with its contents.
fn sources(rel: &str) -> Vec<(String, String)> {
    let root = src().join(rel);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((p.display().to_string(), text));
        }
    }
    assert!(!out.is_empty(), "no sources under {}", root.display());
    out
}

/// The lines of `text` that are code (not `//` comments), with numbers.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

fn assert_no_mention(rel: &str, forbidden: &[&str]) {
    let mut bad = Vec::new();
    for (file, text) in sources(rel) {
        for (n, line) in code_lines(&text) {
            for f in forbidden {
                if line.contains(f) {
                    bad.push(format!("{file}:{n}: `{f}` in `{}`", line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_ir_depends_on_nothing_gpu() {
    let forbidden = [
        "wgpu",
        "crate::device",
        "crate::kernels",
        "crate::exec",
        "crate::shaders",
    ];
    for rel in ["graph", "passes.rs", "plan.rs"] {
        assert_no_mention(rel, &forbidden);
    }
}

#[test]
fn the_device_layer_knows_no_kernel() {
    assert_no_mention(
        "device",
        &[
            "crate::kernels",
            "crate::graph",
            "crate::exec",
            "crate::passes",
            "crate::plan",
            "crate::models",
        ],
    );
}

#[test]
fn kernels_know_no_executor() {
    assert_no_mention(
        "kernels",
        &["crate::exec", "crate::models", "crate::passes"],
    );
}

/// The body of the item starting at byte `start` of `text` (from its first
/// `{` to the matching `}`), ignoring braces in strings and char literals
/// well enough for this crate's sources.
fn body(text: &str, start: usize) -> &str {
    let open = start + text[start..].find('{').unwrap();
    let mut depth = 0;
    let mut in_str = false;
    let bytes = text.as_bytes();
    let mut i = open;
    while i < bytes.len() {
        let c = bytes[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'\'' && i + 2 < bytes.len() && bytes[i + 2] == b'\'' {
            i += 2;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return &text[open..=i];
            }
        }
        i += 1;
    }
    panic!("unbalanced braces after byte {start}");
}

#[test]
fn lowering_functions_are_small() {
    let (file, text) = sources("exec/gpu/lower.rs").pop().unwrap();
    let mut found = 0;
    for (at, _) in text.match_indices("fn lower_") {
        let lines = body(&text, at).lines().count();
        let name: String = text[at + 3..].chars().take_while(|c| *c != '(').collect();
        assert!(lines <= 80, "{file}: {name} is {lines} lines (at most 80)");
        found += 1;
    }
    assert!(found >= 11, "{file}: only {found} lowering functions found");
}

#[test]
fn async_paths_never_block() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for (file, text) in sources(".") {
        for (at, _) in text.match_indices("async fn ") {
            seen += 1;
            let b = body(&text, at);
            for f in [
                "block_on",
                "wait_blocking",
                "PollType::Wait",
                "lock_blocking",
            ] {
                if b.contains(f) {
                    let name: String = text[at + 9..].chars().take_while(|c| *c != '(').collect();
                    bad.push(format!("{file}: async fn {name} contains `{f}`"));
                }
            }
        }
    }
    assert!(seen >= 8, "only {seen} async fns found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_library_reads_no_environment() {
    let mut bad = Vec::new();
    for (file, text) in sources(".") {
        if file.contains("/cli/") || file.ends_with("main.rs") {
            continue;
        }
        let allowed = text.find("pub fn from_env() -> Result<Self> {").map(|at| {
            let b = body(&text, at);
            let start = b.as_ptr() as usize - text.as_ptr() as usize;
            start..start + b.len()
        });
        for (at, _) in text.match_indices("std::env::") {
            if !allowed.as_ref().is_some_and(|r| r.contains(&at)) {
                let line = text[..at].lines().count();
                bad.push(format!("{file}:{line}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "environment read outside ContextOptions::from_env: {}",
        bad.join(", ")
    );
}
