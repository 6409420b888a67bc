//! Runs every example binary (built by `cargo build --release --workspace
//! --examples`, as the README's test command does first) and checks what it
//! prints, so the examples are exercised in CI and cannot rot.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, next to this test's own profile dir.
fn example(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let profile_dir = me.parent().and_then(|p| p.parent()).expect("profile dir");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example `{name}` is not built at {}; run `cargo build --release --workspace --examples` first",
        path.display()
    );
    path
}

/// Runs an example; `None` when there is no GPU adapter (the harness has
/// already printed SKIP or panicked under RESINCEPT_REQUIRE_GPU=1).
fn run(name: &str, args: &[&str]) -> Option<String> {
    kernels_tests::gpu()?;
    let out = Command::new(example(name))
        .args(args)
        .output()
        .expect("spawn example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example `{name}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

/// Finds the line starting with `prefix`, `… = D (max |…| = M)`, and
/// checks D against the graph tolerance the executor declares, M > 0.
fn check_difference_line(name: &str, stdout: &str, prefix: &str) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("`{name}` printed no `{prefix}` line:\n{stdout}"));
    let nums: Vec<f32> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect();
    let (diff, max) = (nums[nums.len() - 2], nums[nums.len() - 1]);
    let tol = resincept::exec::gpu::TOLERANCE;
    assert!(max > 0.0, "`{name}`: {line}");
    assert!(
        diff <= tol.atol + tol.rtol * max,
        "`{name}`: differ by {diff} (max {max}), over {tol:?}"
    );
}

/// Checks `max |gpu - cpu| = D (max |cpu| = M)` and the compile stats.
fn check_difference(name: &str, stdout: &str) {
    check_difference_line(name, stdout, "max |gpu - cpu| = ");
    assert!(
        stdout.contains("after passes"),
        "`{name}` printed no compile stats"
    );
}

#[test]
fn resnet_block_matches_cpu() {
    if let Some(out) = run("resnet_block", &[]) {
        check_difference("resnet_block", &out);
    }
}

#[test]
fn inception_block_matches_cpu() {
    if let Some(out) = run("inception_block", &[]) {
        check_difference("inception_block", &out);
    }
}

#[test]
fn embed_prints_top_classes_per_image() {
    if let Some(out) = run("embed", &[]) {
        for i in 0..2 {
            let n = out
                .lines()
                .filter(|l| l.starts_with(&format!("image {i}:")))
                .count();
            assert_eq!(n, 3, "image {i} should have 3 top classes:\n{out}");
        }
    }
}

#[test]
fn depth_reports_every_net() {
    if let Some(out) = run("depth", &[]) {
        for model in [
            "plain18",
            "resnet18",
            "plain34",
            "resnet34",
            "preact_resnet164_cifar",
            "preact_resnet1001_cifar",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.split_whitespace().next() == Some(model)),
                "depth printed no row for {model}:\n{out}"
            );
        }
    }
}

/// The application's own preprocessing shader, resincept's encoded run and
/// the application's copy, in one submission on the application's device,
/// agree with `run` on the same image preprocessed on the host.
#[test]
fn shared_device_matches_run() {
    let Some(out) = run("shared_device", &[]) else {
        return;
    };
    assert!(out.contains("on the application's device"), "{out}");
    let tops = out
        .lines()
        .filter(|l| l.trim_start().contains("% "))
        .count();
    assert_eq!(tops, 3, "3 top classes expected:\n{out}");
    check_difference_line("shared_device", &out, "max |encoded - run| = ");
}
