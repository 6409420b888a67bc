//! End-to-end tests of the `resincept` binary: every bad-input case ends in
//! one `error: …` line and a non-zero status (never a panic), and the
//! commands that work produce what the README promises.
//!
//! The binary belongs to the root package, so `CARGO_BIN_EXE_resincept` is
//! not set here: it is located next to this test executable
//! (`target/<profile>/resincept`, so `CARGO_TARGET_DIR` and the profile are
//! honoured), or taken from `RESINCEPT_BIN`. Build it first:
//! `cargo build --release --workspace --bins --examples && cargo test --release --workspace`.
//!
//! GPU cases print `SKIP: no GPU adapter` without an adapter, and fail
//! instead under `RESINCEPT_REQUIRE_GPU=1` (as CI runs).

mod onnx_common;

use kernels_tests::{assert_close, gpu};
use onnx_common::{fixture_dir, read_pbs, NODE_TOL};
use resincept::models::{self, MODEL_NAMES};
use resincept::weights::{self, Weights};
use resincept::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

// ---------------------------------------------------------------- harness

/// The `resincept` binary, or a panic saying how to build it.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = if cfg!(windows) {
            "resincept.exe"
        } else {
            "resincept"
        };
        let mut candidates = Vec::new();
        if let Some(p) = std::env::var_os("RESINCEPT_BIN") {
            candidates.push(PathBuf::from(p));
        }
        // This test runs as target/<profile>/deps/cli-<hash>.
        if let Ok(me) = std::env::current_exe() {
            if let Some(profile_dir) = me.parent().and_then(Path::parent) {
                candidates.push(profile_dir.join(exe));
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        candidates.push(root.join("target/release").join(exe));
        candidates.push(root.join("target/debug").join(exe));
        let found = candidates
            .iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "the resincept binary is not built (looked at {candidates:?}); run \
                     `cargo build --release --workspace --bins --examples` before \
                     `cargo test --release --workspace`, or set RESINCEPT_BIN"
                )
            })
            .clone();
        warn_if_stale(&found, &root.join("src"));
        found
    })
}

/// Prints a warning when a source file is newer than the binary (a stale
/// binary would test old code).
fn warn_if_stale(bin: &Path, src: &Path) {
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut best = None;
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            let t = if p.is_dir() {
                newest(&p)
            } else {
                e.metadata().ok()?.modified().ok()
            };
            best = best.max(t);
        }
        best
    }
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(src)) = (built, newest(src)) {
        if src > built {
            eprintln!(
                "WARNING: {} is older than the sources in src/; rebuild it \
                 (cargo build --release --bins) or these tests run old code",
                bin.display()
            );
        }
    }
}

/// A scratch directory unique to one test, removed when the test ends
/// (kept when it fails, to look at).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("resincept-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// `resincept run --model MODEL --input INPUT --output OUTPUT` and `extra`.
fn run_command(model: &str, input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut cmd = command();
    cmd.args(["run", "--model", model, "--input", path_str(input)])
        .args(["--output", path_str(output)])
        .args(extra);
    cmd
}

/// Runs `cmd`, asserts it succeeded, and reads the `output` it wrote to
/// `output`.
fn run_ok(mut cmd: Command, output: &Path) -> Tensor {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o.stderr));
    weights::read_tensor(output, "output").unwrap()
}

/// The binary, run as on a headless server: no Wayland session, and
/// nothing set for Mesa's device-select layer, whose complaint the binary
/// must silence itself.
fn command() -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT");
    cmd
}

fn resincept(args: &[&str]) -> Output {
    command()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stderr without what a driver prints on its own (Mesa's lavapipe
/// conformance warning): that is not resincept's output.
fn own_stderr(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("lavapipe is not a conformant"))
        .map(String::from)
        .collect()
}

/// Asserts the bad-input contract: non-zero status, exactly one line on
/// stderr, starting with `error:` and containing every `needles`, and no
/// panic. Returns that line.
#[track_caller]
fn assert_error(args: &[&str], needles: &[&str]) -> String {
    let out = resincept(args);
    let all = text(&out.stderr);
    assert!(
        !all.contains("panicked")
            && !all.contains("internal error")
            && !all.contains("RUST_BACKTRACE"),
        "resincept {args:?} panicked:\n{all}"
    );
    assert!(
        !out.status.success(),
        "resincept {args:?} succeeded; it should fail (stdout: {})",
        text(&out.stdout)
    );
    let lines = own_stderr(&out);
    assert_eq!(
        lines.len(),
        1,
        "resincept {args:?}: want one stderr line, got:\n{all}"
    );
    let line = lines[0].clone();
    assert!(line.starts_with("error: "), "resincept {args:?}: {line}");
    for n in needles {
        assert!(line.contains(n), "resincept {args:?}: `{n}` not in: {line}");
    }
    line
}

/// Runs and asserts success; returns stdout.
#[track_caller]
fn assert_ok(args: &[&str]) -> String {
    let out = resincept(args);
    assert!(
        out.status.success(),
        "resincept {args:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Writes `{name: tensor}` to a safetensors file.
fn save(path: &Path, tensors: &[(&str, &Tensor)]) {
    weights::save_safetensors(path, tensors, None).unwrap();
}

/// `dir/in.safetensors` holding `x` as tensor `input`, for `run` and `check`.
fn input_file(dir: &Path, x: &Tensor) -> PathBuf {
    let path = dir.join("in.safetensors");
    save(&path, &[("input", x)]);
    path
}

const CIFAR: &str = "preact_resnet164_cifar";

// ---------------------------------------------------------------- a PNG writer

/// An 8-bit RGB PNG with stored (uncompressed) deflate blocks: enough for a
/// decoder to read, no compression library needed.
fn png_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for row in rgb.chunks(width as usize * 3) {
        raw.push(0); // filter: none
        raw.extend(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push((i + 1 == blocks.len()) as u8);
        z.extend((b.len() as u16).to_le_bytes());
        z.extend((!(b.len() as u16)).to_le_bytes());
        z.extend(*b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, truecolour, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn gradient_png(path: &Path, w: u32, h: u32) {
    let mut rgb = Vec::new();
    for y in 0..h {
        for x in 0..w {
            rgb.extend([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    std::fs::write(path, png_rgb(w, h, &rgb)).unwrap();
}

// ---------------------------------------------------------------- a JSON reader

/// A parsed JSON value (enough to check `bench --json`).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(HashMap<String, Json>),
}

/// Parses one JSON document (RFC 8259), or says where it is malformed.
fn parse_json(s: &str) -> Result<Json, String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && b" \t\r\n".contains(&self.b[self.i]) {
                self.i += 1;
            }
        }
        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.i))
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                self.err(&format!("expected `{}`", c as char))
            }
        }
        fn value(&mut self) -> Result<Json, String> {
            self.ws();
            match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = HashMap::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Json::Obj(m));
                    }
                    loop {
                        self.ws();
                        let Json::Str(k) = self.value()? else {
                            return self.err("expected a string key");
                        };
                        self.eat(b':')?;
                        let v = self.value()?;
                        if m.insert(k.clone(), v).is_some() {
                            return self.err(&format!("duplicate key `{k}`"));
                        }
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Json::Obj(m));
                            }
                            _ => return self.err("expected `,` or `}`"),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Json::Arr(v));
                    }
                    loop {
                        v.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Json::Arr(v));
                            }
                            _ => return self.err("expected `,` or `]`"),
                        }
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    let mut s = String::new();
                    loop {
                        let Some(&c) = self.b.get(self.i) else {
                            return self.err("unterminated string");
                        };
                        self.i += 1;
                        match c {
                            b'"' => return Ok(Json::Str(s)),
                            b'\\' => {
                                let Some(&e) = self.b.get(self.i) else {
                                    return self.err("bad escape");
                                };
                                self.i += 1;
                                match e {
                                    b'"' | b'\\' | b'/' => s.push(e as char),
                                    b'n' => s.push('\n'),
                                    b't' => s.push('\t'),
                                    b'r' => s.push('\r'),
                                    b'b' => s.push('\u{8}'),
                                    b'f' => s.push('\u{c}'),
                                    b'u' => {
                                        let hex = std::str::from_utf8(
                                            self.b.get(self.i..self.i + 4).unwrap_or(b"zzzz"),
                                        )
                                        .unwrap_or("zzzz");
                                        let Ok(cp) = u32::from_str_radix(hex, 16) else {
                                            return self.err("bad \\u escape");
                                        };
                                        self.i += 4;
                                        s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                    }
                                    _ => return self.err("bad escape"),
                                }
                            }
                            c if c < 0x20 => return self.err("raw control character in string"),
                            _ => {
                                // Copy one UTF-8 sequence.
                                let start = self.i - 1;
                                while self.i < self.b.len() && (self.b[self.i] & 0xC0) == 0x80 {
                                    self.i += 1;
                                }
                                s.push_str(
                                    std::str::from_utf8(&self.b[start..self.i])
                                        .map_err(|e| e.to_string())?,
                                );
                            }
                        }
                    }
                }
                Some(b't') if self.b[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Json::Bool(true))
                }
                Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Json::Bool(false))
                }
                Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Json::Null)
                }
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    let start = self.i;
                    while self.i < self.b.len() && b"+-.eE0123456789".contains(&self.b[self.i]) {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.b[start..self.i]).unwrap();
                    t.parse::<f64>()
                        .map(Json::Num)
                        .or_else(|_| self.err(&format!("bad number `{t}`")))
                }
                _ => self.err("expected a value"),
            }
        }
    }
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return p.err("trailing characters");
    }
    Ok(v)
}

#[test]
fn json_reader_reads_what_it_should() {
    let v = parse_json(r#" {"a": [1, -2.5e3, true, null], "b\n\"": "é\u00e9"} "#).unwrap();
    let Json::Obj(m) = v else { panic!() };
    assert_eq!(
        m["a"],
        Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-2500.0),
            Json::Bool(true),
            Json::Null
        ])
    );
    assert_eq!(m["b\n\""], Json::Str("éé".into()));
    assert!(parse_json("{\"a\":1,}").is_err());
    assert!(parse_json("{\"a\":1} x").is_err());
}

// ---------------------------------------------------------------- usage errors

#[test]
fn unknown_command_no_command_and_unknown_flag_print_usage() {
    // clap's wording, folded onto one line with the command's synopsis.
    assert_error(
        &["frobnicate"],
        &["unrecognized subcommand 'frobnicate'", "usage: resincept"],
    );
    assert_error(&[], &["no command", "usage: resincept"]);
    assert_error(
        &["run", "--frob", "1"],
        &[
            "unexpected argument '--frob'",
            "usage: resincept run --model NAME",
        ],
    );
    assert_error(
        &["models", "extra"],
        &["unexpected argument 'extra'", "usage: resincept models"],
    );
    assert_error(
        &["bench", "--model"],
        &["a value is required for '--model", "usage: resincept bench"],
    );
    assert_error(
        &["bench", "--model", "resnet18", "--batch", "0"],
        &["--batch", "positive"],
    );
    assert_error(
        &["classify", "--model", "resnet18"],
        &["not provided: <IMAGE>", "usage: resincept classify"],
    );
    // Typos get a suggestion.
    assert_error(
        &["run", "--modle", "x"],
        &["similar argument exists: '--model'"],
    );
    assert_error(&["bech"], &["similar subcommand exists: 'bench'"]);
    for bad in [["bench", "--model"], ["frobnicate", "x"]] {
        assert_eq!(resincept(&bad).status.code(), Some(2), "{bad:?}");
    }
}

/// `serve` refuses what it cannot serve, and what it cannot find, with
/// one line, before opening a port or touching the GPU.
#[test]
fn serve_refuses_what_it_cannot_serve() {
    assert_error(
        &[
            "serve",
            "--model",
            "resnet18",
            "--synthetic-seed",
            "1",
            "--f16-storage",
            "packed",
        ],
        &["--f16-storage packed applies to --precision f16 only"],
    );
    assert_error(
        &["serve", "--model", "net.onnx"],
        &["net.onnx", "No such file"],
    );
    assert_error(
        &["serve", "--model", "resnet18"],
        &["missing --weights FILE"],
    );
    assert_error(
        &[
            "serve",
            "--model",
            "resnet18",
            "--synthetic-seed",
            "1",
            "--http-port",
            "x",
        ],
        &["--http-port", "usage: resincept serve"],
    );
    // A model whose images are not independent (Gemm transA=1 transposes
    // the batch away) cannot be batched from separate requests.
    let coupled = onnx_model("extra/gemm_transa_bias");
    assert_error(
        &["serve", "--model", &coupled],
        &[
            "gemm_transa_bias",
            "gemm_ta.transpose_a",
            "mixes the images of a batch",
        ],
    );
}

/// Completion scripts for each shell clap knows, naming the commands.
#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = assert_ok(&["completions", shell]);
        assert!(out.contains("serve") && out.contains("classify"), "{shell}");
    }
    assert_error(&["completions", "tcsh"], &["invalid value 'tcsh'"]);
}

#[test]
fn help_succeeds() {
    let h = assert_ok(&["--help"]);
    for c in ["info", "models", "run", "classify", "bench"] {
        assert!(h.contains(c), "{c} not in help:\n{h}");
    }
    assert!(assert_ok(&["bench", "--help"]).contains("--precision"));
    let serve = assert_ok(&["serve", "--help"]);
    for flag in [
        "--max-batch-size",
        "--max-queue-delay-us",
        "--grpc-port",
        "--max-body-bytes",
    ] {
        assert!(serve.contains(flag), "{flag} not in serve --help:\n{serve}");
    }
    assert!(assert_ok(&["--version"]).starts_with("resincept "));
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let dir = scratch("unknown_model");
    let input = input_file(&dir, &Tensor::zeros(vec![1, 3, 32, 32]));
    let out = dir.join("out.safetensors");
    let line = assert_error(
        &[
            "run",
            "--model",
            "resnet9",
            "--synthetic-seed",
            "1",
            "--input",
            path_str(&input),
            "--output",
            path_str(&out),
        ],
        &["unknown model `resnet9`"],
    );
    for name in MODEL_NAMES {
        assert!(line.contains(name), "{name} not listed: {line}");
    }
    assert_error(
        &["bench", "--model", "resnet9"],
        &["unknown model `resnet9`", "resnet50"],
    );
}

#[test]
fn bad_flag_values() {
    assert_error(
        &["bench", "--model", "resnet18", "--precision", "half"],
        &["'half'", "--precision", "[possible values: f32, f16]"],
    );
    assert_error(
        &[
            "bench",
            "--model",
            "resnet18",
            "--precision",
            "f16",
            "--f16-storage",
            "u32",
        ],
        &[
            "'u32'",
            "--f16-storage",
            "[possible values: auto, native, packed]",
        ],
    );
    assert_error(
        &["bench", "--model", "resnet18", "--split-k", "yes"],
        &[
            "--split-k takes auto, on, off or a target workgroup count",
            "`yes`",
        ],
    );
    assert_error(
        &["bench", "--model", "resnet18", "--split-k", "0"],
        &["--split-k takes", "`0`"],
    );
    assert_error(
        &["bench", "--model", "resnet18", "--grouped-direct", "many"],
        &["--grouped-direct", "`many`"],
    );
    assert_error(
        &["bench", "--model", "resnet18", "--tall-tile", "0"],
        &["--tall-tile takes a positive reduction size or off", "`0`"],
    );
    let dir = scratch("bad_flag_values");
    let input = input_file(&dir, &Tensor::zeros(vec![1, 3, 32, 32]));
    let base = [
        "run",
        "--model",
        CIFAR,
        "--input",
        path_str(&input),
        "--output",
        "/dev/null",
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let args = with(&["--synthetic-seed", "1", "--device", "tpu"]);
    assert_error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--device must be gpu or cpu"],
    );
    let args = with(&["--synthetic-seed", "1", "--weights", "w.safetensors"]);
    assert_error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["not both"],
    );
    let args = with(&[]);
    assert_error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["missing --weights"],
    );
    let args = with(&["--synthetic-seed", "-1"]);
    assert_error(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--synthetic-seed needs a non-negative integer"],
    );
}

// ---------------------------------------------------------------- bad files

/// `run` with `--synthetic-seed 1` on `input`, expecting an error naming `needles`.
#[track_caller]
fn run_input_error(dir: &Path, input: &Path, needles: &[&str]) {
    let out = dir.join("out.safetensors");
    assert_error(
        &[
            "run",
            "--model",
            CIFAR,
            "--synthetic-seed",
            "1",
            "--input",
            path_str(input),
            "--output",
            path_str(&out),
        ],
        needles,
    );
    assert!(!out.exists(), "no output file may be written on error");
}

#[test]
fn missing_input_file() {
    let dir = scratch("missing_input");
    let p = dir.join("nope.safetensors");
    run_input_error(&dir, &p, &["nope.safetensors", "cannot read"]);
}

#[test]
fn corrupt_input_file() {
    let dir = scratch("corrupt_input");
    let p = dir.join("corrupt.safetensors");
    std::fs::write(&p, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......").unwrap();
    run_input_error(
        &dir,
        &p,
        &["corrupt.safetensors", "not a valid safetensors file"],
    );
    // Truncated: a header promising more bytes than there are.
    let p = dir.join("truncated.safetensors");
    let good = dir.join("good.safetensors");
    save(&good, &[("input", &Tensor::zeros(vec![1, 3, 32, 32]))]);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    run_input_error(
        &dir,
        &p,
        &["truncated.safetensors", "not a valid safetensors file"],
    );
    // Empty file.
    let p = dir.join("empty.safetensors");
    std::fs::write(&p, b"").unwrap();
    run_input_error(&dir, &p, &["empty.safetensors"]);
}

#[test]
fn safetensors_without_input() {
    let dir = scratch("no_input_tensor");
    let p = dir.join("x.safetensors");
    save(&p, &[("image", &Tensor::zeros(vec![1, 3, 32, 32]))]);
    run_input_error(&dir, &p, &["x.safetensors", "tensor `input`"]);
}

#[test]
fn input_of_wrong_rank() {
    let dir = scratch("wrong_rank");
    let p = dir.join("rank3.safetensors");
    save(&p, &[("input", &Tensor::zeros(vec![3, 32, 32]))]);
    run_input_error(&dir, &p, &["rank 4", "[3, 32, 32]"]);
}

#[test]
fn input_with_one_channel() {
    let dir = scratch("one_channel");
    let p = dir.join("grey.safetensors");
    save(&p, &[("input", &Tensor::zeros(vec![1, 1, 32, 32]))]);
    run_input_error(&dir, &p, &["3 (RGB) channels", "[1, 1, 32, 32]"]);
}

#[test]
fn input_too_small_for_the_model_names_the_node() {
    let dir = scratch("too_small");
    let p = dir.join("tiny.safetensors");
    save(&p, &[("input", &Tensor::zeros(vec![1, 3, 8, 8]))]);
    let out = dir.join("out.safetensors");
    assert_error(
        &[
            "run",
            "--model",
            "inception_v3",
            "--synthetic-seed",
            "1",
            "--device",
            "cpu",
            "--input",
            path_str(&p),
            "--output",
            path_str(&out),
        ],
        &["node `"],
    );
}

/// Synthetic weights of the CIFAR net with one tensor changed by `edit`.
fn edited_weights(dir: &Path, edit: impl FnOnce(&mut Weights, &str)) -> (PathBuf, String) {
    let g = models::build(CIFAR, 1, 32).unwrap();
    let specs = g.param_specs();
    let mut w = Weights::from_synthetic(1, &specs);
    let key = specs[1].0.clone();
    edit(&mut w, &key);
    let p = dir.join("weights.safetensors");
    w.save_safetensors(&p, None).unwrap();
    (p, key)
}

#[test]
fn weights_that_do_not_fit_name_the_key() {
    let dir = scratch("bad_weights");
    let input = input_file(&dir, &Tensor::zeros(vec![1, 3, 32, 32]));
    let out = dir.join("out.safetensors");
    let run = |w: &Path, needles: &[&str]| {
        assert_error(
            &[
                "run",
                "--model",
                CIFAR,
                "--weights",
                path_str(w),
                "--input",
                path_str(&input),
                "--output",
                path_str(&out),
            ],
            needles,
        );
    };
    // Wrong shape.
    let (w, key) = edited_weights(&dir, |w, k| {
        w.insert(k, Tensor::zeros(vec![1, 2, 3])).unwrap();
    });
    run(&w, &[&format!("`{key}`"), "wrong shape", CIFAR]);
    // Missing key.
    let (w, key) = edited_weights(&dir, |w, k| {
        w.remove(k);
    });
    run(&w, &[&format!("`{key}`"), "missing"]);
    // An extra key the model does not have.
    let (w, _) = edited_weights(&dir, |w, _| {
        w.insert("fc.extra", Tensor::zeros(vec![2])).unwrap();
    });
    run(&w, &["`fc.extra`", "unexpected"]);
    // Weights of another model.
    let g18 = models::build("resnet18", 1, 64).unwrap();
    let p = dir.join("resnet18.safetensors");
    Weights::from_synthetic(1, &g18.param_specs())
        .save_safetensors(&p, None)
        .unwrap();
    run(&p, &["does not fit model", "weight `"]);
    // Not a weights file at all.
    let p = dir.join("garbage.safetensors");
    std::fs::write(&p, b"garbage").unwrap();
    run(&p, &["garbage.safetensors"]);
}

#[test]
fn undecodable_and_missing_images() {
    let dir = scratch("bad_image");
    let bad = dir.join("cat.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not really a png").unwrap();
    assert_error(
        &[
            "classify",
            path_str(&bad),
            "--model",
            CIFAR,
            "--synthetic-seed",
            "1",
            "--device",
            "cpu",
        ],
        &["cat.png", "decode"],
    );
    let text_file = dir.join("notes.jpg");
    std::fs::write(&text_file, b"hello").unwrap();
    assert_error(
        &[
            "classify",
            path_str(&text_file),
            "--model",
            CIFAR,
            "--synthetic-seed",
            "1",
        ],
        &["notes.jpg"],
    );
    let missing = dir.join("missing.png");
    assert_error(
        &[
            "classify",
            path_str(&missing),
            "--model",
            CIFAR,
            "--synthetic-seed",
            "1",
        ],
        &["missing.png", "cannot read"],
    );
    let good = dir.join("good.png");
    gradient_png(&good, 8, 8);
    assert_error(
        &[
            "classify",
            path_str(&good),
            "--model",
            CIFAR,
            "--synthetic-seed",
            "1",
            "--top",
            "0",
        ],
        &["--top"],
    );
}

// ---------------------------------------------------------------- what works

#[test]
fn models_lists_all_twenty_one() {
    assert_eq!(MODEL_NAMES.len(), 21);
    let out = assert_ok(&["models"]);
    for name in MODEL_NAMES {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from `resincept models`:\n{out}"
        );
    }
    // resnet50: 25.56M parameters, 4.09 GMACs at 224.
    let r50 = out.lines().find(|l| l.starts_with("resnet50 ")).unwrap();
    assert!(
        r50.contains("25.56M") && r50.contains("4.09") && r50.contains("224x224"),
        "{r50}"
    );
    // A grouped one: torchvision's 25,028,904 parameters, 4.23 GMACs.
    let rx = out
        .lines()
        .find(|l| l.starts_with("resnext50_32x4d "))
        .unwrap();
    assert!(rx.contains("25.03M") && rx.contains("4.23"), "{rx}");
}

#[test]
fn info_runs() {
    let out = assert_ok(&["info"]);
    assert!(out.contains("adapters wgpu sees"), "{out}");
    if gpu().is_some() {
        for needle in [
            "chosen: ",
            "max_storage_buffer_binding_size",
            "max_buffer_size",
            "max_compute_workgroup_storage_size",
            "max_compute_invocations_per_workgroup",
            "max_compute_workgroups_per_dimension",
            "max_storage_buffers_per_shader_stage",
            "features",
        ] {
            assert!(
                out.contains(needle),
                "`{needle}` not in `resincept info`:\n{out}"
            );
        }
    }
}

#[test]
fn run_synthetic_gpu_and_cpu_agree() {
    let dir = scratch("run_agree");
    let x = weights::synthetic_input(7, &[2, 3, 32, 32]);
    let input = input_file(&dir, &x);
    let cpu_out = dir.join("cpu.safetensors");
    assert_ok(&[
        "run",
        "--model",
        CIFAR,
        "--synthetic-seed",
        "1",
        "--device",
        "cpu",
        "--input",
        path_str(&input),
        "--output",
        path_str(&cpu_out),
    ]);
    let cpu = weights::read_tensor(&cpu_out, "output").unwrap();
    assert_eq!(cpu.shape, vec![2, 10]);
    assert!(cpu.data.iter().all(|v| v.is_finite()));
    if gpu().is_none() {
        return;
    }
    let gpu_out = dir.join("gpu.safetensors");
    assert_ok(&[
        "run",
        "--model",
        CIFAR,
        "--synthetic-seed",
        "1",
        "--input",
        path_str(&input),
        "--output",
        path_str(&gpu_out),
    ]);
    let g = weights::read_tensor(&gpu_out, "output").unwrap();
    assert_eq!(g.shape, vec![2, 10]);
    let tol = 1e-4 * cpu.max_abs();
    for (i, (a, b)) in g.data.iter().zip(&cpu.data).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "logit {i}: gpu {a} cpu {b} (tolerance {tol})"
        );
    }
    let meta = weights::read_metadata(&gpu_out).unwrap();
    assert_eq!(meta.get("model").map(String::as_str), Some(CIFAR));
}

#[test]
fn run_resnet18_small_input_gpu() {
    if gpu().is_none() {
        return;
    }
    let dir = scratch("run_resnet18");
    let input = input_file(&dir, &weights::synthetic_input(3, &[1, 3, 64, 64]));
    let out = dir.join("out.safetensors");
    assert_ok(&[
        "run",
        "--model",
        "resnet18",
        "--synthetic-seed",
        "1",
        "--input",
        path_str(&input),
        "--output",
        path_str(&out),
    ]);
    let t = weights::read_tensor(&out, "output").unwrap();
    assert_eq!(t.shape, vec![1, 1000]);
}

#[test]
fn classify_prints_top_k_with_probabilities() {
    let dir = scratch("classify");
    let a = dir.join("a.png");
    let b = dir.join("b.png");
    gradient_png(&a, 40, 36);
    gradient_png(&b, 20, 50);
    let out = assert_ok(&[
        "classify",
        path_str(&a),
        path_str(&b),
        "--model",
        CIFAR,
        "--synthetic-seed",
        "1",
        "--top",
        "3",
        "--device",
        "cpu",
    ]);
    let cifar = resincept::imagenet::CIFAR10_CLASSES;
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().contains("% "))
        .collect();
    assert_eq!(rows.len(), 6, "3 rows per image:\n{out}");
    let mut total = 0.0;
    for r in &rows[..3] {
        let p: f64 = r.split('%').next().unwrap().trim().parse().unwrap();
        assert!((0.0..=100.0).contains(&p), "{r}");
        total += p;
        assert!(cifar.iter().any(|c| r.ends_with(c)), "{r}");
    }
    assert!(total <= 100.0 + 1e-3);
    assert!(out.contains("a.png") && out.contains("b.png"), "{out}");
}

#[test]
fn bench_json_has_every_key() {
    if gpu().is_none() {
        return;
    }
    let out = assert_ok(&[
        "bench", "--model", CIFAR, "--iters", "2", "--warmup", "1", "--json",
    ]);
    let line = out.trim();
    assert_eq!(
        line.lines().count(),
        1,
        "one JSON object on one line:\n{out}"
    );
    let Json::Obj(m) = parse_json(line).unwrap_or_else(|e| panic!("{e}: {line}")) else {
        panic!("not an object: {line}");
    };
    for key in [
        "model",
        "batch",
        "size",
        "adapter",
        "backend",
        "dispatches",
        "pipelines",
        "arena_bytes",
        "values_bytes",
        "lower_bound_bytes",
        "weight_bytes",
        "device_bytes",
        "flops",
        "latency_ms_median",
        "latency_ms_min",
        "latency_ms_max",
        "images_per_s",
    ] {
        assert!(m.contains_key(key), "key `{key}` missing from {line}");
    }
    assert_eq!(m["model"], Json::Str(CIFAR.into()));
    assert_eq!(m["batch"], Json::Num(1.0));
    assert_eq!(m["size"], Json::Num(32.0));
    let num = |k: &str| match &m[k] {
        Json::Num(x) => *x,
        other => panic!("{k} is not a number: {other:?}"),
    };
    assert!(num("dispatches") >= 1.0 && num("flops") > 0.0);
    assert!(num("latency_ms_min") <= num("latency_ms_median"));
    assert!(num("latency_ms_median") <= num("latency_ms_max"));
    assert!(num("images_per_s") > 0.0);
    assert_memory_keys(&m, line);
    assert_eq!(m["split_k"], Json::Str("auto".into()));
    assert_eq!(m["grouped_direct_max"], Json::Num(16.0));
    assert_eq!(m["tall_tile_min_k"], Json::Num(256.0));

    // `bench --split-k SPLIT --json`'s split-K keys: (split_k_convs,
    // dispatches, scratch_bytes), and its `split_k` is SPLIT.
    let split_run = |split: &str| {
        let out = assert_ok(&[
            "bench",
            "--model",
            CIFAR,
            "--iters",
            "1",
            "--warmup",
            "0",
            "--split-k",
            split,
            "--json",
        ]);
        let Json::Obj(m) = parse_json(out.trim()).unwrap() else {
            panic!("not an object: {out}");
        };
        assert_eq!(m["split_k"], Json::Str(split.into()));
        let (Json::Num(convs), Json::Num(dispatches), Json::Num(scratch)) =
            (&m["split_k_convs"], &m["dispatches"], &m["scratch_bytes"])
        else {
            panic!("split-K keys are not numbers: {m:?}");
        };
        (*convs, *dispatches, *scratch)
    };
    // Split-K forced on: the CIFAR net's 8×8 stage has one output tile per
    // conv and K = 576, so its convs split, each adding a reduce dispatch.
    let (split, dispatches, scratch) = split_run("on");
    assert!(split > 0.0 && scratch > 0.0);
    let auto_split = num("split_k_convs");
    assert_eq!(dispatches, num("dispatches") + split - auto_split);
    // A target workgroup count: a target of 1 is met by every grid, so
    // nothing splits; a large one splits at least what `on` (256) does.
    assert_eq!(split_run("1").0, 0.0);
    assert!(split_run("4096").0 >= split);
}

/// `bench --json`'s memory keys agree with each other: the arena (every
/// activation) and the weights are buffers the compiled graph owns, so
/// each is at most `device_bytes`; the arena is within 1.1× of the
/// liveness lower bound (issue 11's bar) and at most what no sharing
/// would need.
#[track_caller]
fn assert_memory_keys(m: &HashMap<String, Json>, line: &str) {
    let num = |k: &str| match &m[k] {
        Json::Num(x) => *x,
        other => panic!("{k} is not a number: {other:?} in {line}"),
    };
    let (arena, device, weights) = (num("arena_bytes"), num("device_bytes"), num("weight_bytes"));
    assert!(arena > 0.0 && weights > 0.0, "{line}");
    assert!(num("lower_bound_bytes") <= arena, "{line}");
    assert!(arena <= 1.1 * num("lower_bound_bytes"), "{line}");
    assert!(arena <= num("values_bytes"), "{line}");
    assert!(arena <= device && weights <= device, "{line}");
    assert!(arena + weights <= device, "{line}");
}

#[test]
fn bench_table_and_profile() {
    if gpu().is_none() {
        return;
    }
    let out = assert_ok(&[
        "bench",
        "--model",
        CIFAR,
        "--iters",
        "1",
        "--warmup",
        "0",
        "--profile",
    ]);
    assert!(
        out.contains("median_ms") && out.contains("images/s") && out.contains("GFLOP/s"),
        "{out}"
    );
    assert!(
        out.contains("per-layer GPU time") || out.contains("no timestamp queries"),
        "{out}"
    );
}

/// torchvision's pretrained `inception_v3` is built with
/// `transform_input=True`. `kernels-tests/fixtures` holds PyTorch's output
/// of such a model (synthetic weights, seed 1, 75×75; made by
/// `scripts/make_fixtures.py`) and its `_transform_input` alone. The
/// transform matches PyTorch's bit for bit; `run` with `--transform-input`
/// matches the model's output, and a weights file whose metadata says
/// `transform_input = true` gives the same logits bit for bit (the CPU
/// executor is deterministic), without it they differ. (The synthetic
/// Inception-v3's logits hardly depend on its input, so the tolerance test
/// alone could not tell; see `fixtures/README.md`.)
#[test]
fn inception_v3_transform_input_matches_torchvision() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("inception_v3_transform_input.safetensors");
    let mut x = weights::read_tensor(&fixture, "input").unwrap();
    resincept::preprocess::inception_transform_input(&mut x).unwrap();
    let t = weights::read_tensor(&fixture, "transformed").unwrap();
    assert_eq!(x.shape, t.shape);
    for (i, (a, b)) in x.data.iter().zip(&t.data).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "transformed[{i}]: ours {a}, PyTorch {b}"
        );
    }

    let want = weights::read_tensor(&fixture, "output").unwrap();
    let tol = 1e-4 * want.max_abs();
    let dir = scratch("transform_input");
    let run = |extra: &[&str], name: &str| -> Tensor {
        let out = dir.join(name);
        let mut cmd = run_command("inception_v3", &fixture, &out, &["--device", "cpu"]);
        cmd.args(extra);
        run_ok(cmd, &out)
    };
    let forced = run(
        &["--synthetic-seed", "1", "--transform-input"],
        "forced.safetensors",
    );
    let d = forced.max_abs_diff(&want).unwrap();
    assert!(
        d <= tol,
        "--transform-input: {d} from PyTorch (tolerance {tol})"
    );

    // The same weights in a file whose metadata says transform_input = true,
    // as scripts/export_weights.py writes for torchvision's pretrained model.
    let g = models::build("inception_v3", 1, 75).unwrap();
    let w = Weights::from_synthetic(1, &g.param_specs());
    let wfile = dir.join("weights.safetensors");
    let meta = HashMap::from([("transform_input".to_string(), "true".to_string())]);
    let list: Vec<(&str, &Tensor)> = w.iter().collect();
    weights::save_safetensors(&wfile, &list, Some(meta)).unwrap();
    let from_meta = run(&["--weights", path_str(&wfile)], "meta.safetensors");
    assert_eq!(
        from_meta.data, forced.data,
        "metadata transform_input = true"
    );
    let plain = run(&["--synthetic-seed", "1"], "plain.safetensors");
    assert_ne!(plain.data, forced.data, "without the transform");

    // Other models have no such option.
    assert_error(
        &[
            "run",
            "--model",
            "resnet18",
            "--transform-input",
            "--synthetic-seed",
            "1",
            "--input",
            path_str(&fixture),
            "--output",
            "/dev/null",
        ],
        &["--transform-input", "inception_v3", "resnet18"],
    );
}

/// `RESINCEPT_MAX_STORAGE_BINDING` makes the device look smaller: a batch
/// whose values no longer fit runs in micro-batches, which `bench --json`
/// reports, and `run` gives the same logits as on the full device.
#[test]
fn micro_batches_under_a_small_binding_limit() {
    if gpu().is_none() {
        return;
    }
    let dir = scratch("micro_batches");
    let input = input_file(&dir, &weights::synthetic_input(3, &[4, 3, 32, 32]));
    let run = |cap: Option<&str>, name: &str| -> Tensor {
        let out = dir.join(name);
        let mut cmd = run_command(CIFAR, &input, &out, &["--synthetic-seed", "1"]);
        if let Some(cap) = cap {
            cmd.env("RESINCEPT_MAX_STORAGE_BINDING", cap);
        }
        run_ok(cmd, &out)
    };
    // The CIFAR net's largest value is 64 × 32 × 32 f32 = 256 KiB per image.
    let capped = run(Some("600000"), "capped.safetensors");
    let full = run(None, "full.safetensors");
    let d = capped.max_abs_diff(&full).unwrap();
    assert!(
        d <= 1e-4 * full.max_abs(),
        "micro-batched logits differ by {d}"
    );

    let o = command()
        .args([
            "bench", "--model", CIFAR, "--batch", "4", "--iters", "1", "--warmup", "0", "--json",
        ])
        .env("RESINCEPT_MAX_STORAGE_BINDING", "600000")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    let Json::Obj(m) = parse_json(line.trim()).unwrap() else {
        panic!("not an object: {line}");
    };
    assert_eq!(m["micro_batches"], Json::Num(2.0), "{line}");
    assert_eq!(m["micro_batch"], Json::Num(2.0), "{line}");

    // Not a number: one clear line.
    let o = command()
        .args(["info"])
        .env("RESINCEPT_MAX_STORAGE_BINDING", "lots")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("RESINCEPT_MAX_STORAGE_BINDING"),
        "{}",
        text(&o.stderr)
    );
}

/// `check` runs a model on both executors and says whether they agree;
/// `--layers` lists every layer of the optimised graph (in-place concat
/// aside) in schedule order, each within tolerance here.
#[test]
fn check_compares_gpu_with_cpu() {
    if gpu().is_none() {
        return;
    }
    let out = assert_ok(&["check", "--model", CIFAR]);
    assert!(out.contains("ok: all 1 outputs within tolerance"), "{out}");
    assert!(out.contains("fc "), "{out}");

    let out = assert_ok(&["check", "--model", "resnet18", "--size", "32", "--layers"]);
    // ResNet-18 after the passes: 20 convs (batchnorms folded, adds and
    // ReLUs fused), the stem max pool, the global average pool and fc.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|k| k != "kind"))
        .filter(|l| l.contains('['))
        .collect();
    assert_eq!(rows.len(), 23, "{out}");
    assert!(rows[0].starts_with("conv1 "), "{out}");
    assert!(rows.last().unwrap().starts_with("fc "), "{out}");
    assert!(rows.iter().all(|r| r.trim_end().ends_with(" 0")), "{out}");
    assert!(out.contains("ok: all 23 outputs within tolerance"), "{out}");

    // The input's own shape sets the batch and size.
    let dir = scratch("check");
    let input = input_file(&dir, &weights::synthetic_input(5, &[2, 3, 32, 32]));
    let out = assert_ok(&["check", "--model", CIFAR, "--input", path_str(&input)]);
    assert!(out.contains("input 2×3×32×32"), "{out}");
    assert_error(
        &[
            "check",
            "--model",
            CIFAR,
            "--input",
            path_str(&input),
            "--size",
            "64",
        ],
        &["--input sets the batch and size"],
    );
}

/// `check --expect` holds both executors to PyTorch's own output (our
/// ResNeXt-50 fixture, computed by PyTorch in float64): within
/// 1e-4·max|output| it passes; with one logit moved by 1e-3 of max|output|
/// it fails with status 1, one error line naming both executors and the
/// file, the table on stdout; `--layers` with it is a usage error.
#[test]
fn check_against_pytorch() {
    if gpu().is_none() {
        return;
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/models/resnext50_32x4d_b2_61x53.safetensors");
    let f = path_str(&fixture);
    let model = "resnext50_32x4d";
    let out = assert_ok(&["check", "--model", model, "--input", f, "--expect", f]);
    assert!(
        out.contains("ok: GPU and CPU within the bar of PyTorch's output"),
        "{out}"
    );
    assert_eq!(out.matches("(within 1e-4)").count(), 2, "{out}");
    // In f16 both executors are held to the f16 bar of the compiled
    // graph's rounding depth (exec::f16_rel_tol), not f32's 1e-4.
    let out = assert_ok(&[
        "check",
        "--model",
        model,
        "--input",
        f,
        "--expect",
        f,
        "--precision",
        "f16",
    ]);
    assert!(
        out.contains("ok: GPU and CPU within the bar of PyTorch's output"),
        "{out}"
    );
    assert_eq!(out.matches("(within 1.9e-2)").count(), 2, "{out}");

    let dir = scratch("check_expect");
    let input = weights::read_tensor(&fixture, "input").unwrap();
    let mut output = weights::read_tensor(&fixture, "output").unwrap();
    let k = output.data.len() / 3;
    output.data[k] += 1e-3 * output.max_abs();
    let moved = dir.join("moved.safetensors");
    save(&moved, &[("input", &input), ("output", &output)]);
    let m = path_str(&moved);
    let args = ["check", "--model", model, "--input", f, "--expect", m];
    let line = assert_error(&args, &["GPU and CPU output differs", m, "1e-4"]);
    assert!(line.contains(model), "{line}");
    let out = resincept(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).matches("OVER 1e-4").count(), 2);

    assert_error(
        &[
            "check", "--model", model, "--input", f, "--expect", f, "--layers",
        ],
        &["leave out --layers"],
    );
    // A file without `output` is one error naming the file and the tensor.
    let no_output = dir.join("no_output.safetensors");
    save(&no_output, &[("input", &input)]);
    let n = path_str(&no_output);
    assert_error(
        &["check", "--model", model, "--input", f, "--expect", n],
        &["no_output.safetensors", "output"],
    );
}

/// `classify` preprocesses as the weights file's metadata says (what
/// `scripts/export_weights.py` records from the library), and a malformed
/// entry is one error line naming it.
#[test]
fn classify_takes_the_transform_from_the_weights() {
    let dir = scratch("classify_meta");
    let img = dir.join("a.png");
    gradient_png(&img, 60, 50);
    let g = models::build(CIFAR, 1, 32).unwrap();
    let w = Weights::from_synthetic(1, &g.param_specs());
    let list: Vec<(&str, &Tensor)> = w.iter().collect();
    let write = |name: &str, crop: &str| {
        let path = dir.join(name);
        let meta = HashMap::from([
            ("preprocess_resize".to_string(), "48".to_string()),
            ("preprocess_crop".to_string(), crop.to_string()),
            (
                "preprocess_interpolation".to_string(),
                "bicubic".to_string(),
            ),
            ("preprocess_mean".to_string(), "0.5,0.5,0.5".to_string()),
            ("preprocess_std".to_string(), "0.5, 0.5, 0.5".to_string()),
        ]);
        weights::save_safetensors(&path, &list, Some(meta)).unwrap();
        path
    };
    let good = write("good.safetensors", "40");
    let args = |wfile: &Path| {
        [
            "classify",
            path_str(&img),
            "--model",
            CIFAR,
            "--weights",
            path_str(wfile),
            "--device",
            "cpu",
        ]
        .map(String::from)
    };
    let a = args(&good);
    let out = assert_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains(
            "input 40x40 (resize 48 bicubic, centre crop 40, mean [0.5, 0.5, 0.5] std [0.5, 0.5, 0.5])"
        ),
        "{out}"
    );
    let bad = write("bad.safetensors", "big");
    let a = args(&bad);
    assert_error(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &["bad.safetensors", "preprocess_crop", "`big`"],
    );
}

// ---------------------------------------------------------------- ONNX files

/// `fixtures/onnx/{case}/model.onnx` as the CLI takes it.
fn onnx_model(case: &str) -> String {
    path_str(&fixture_dir(case).join("model.onnx")).to_string()
}

/// A case's `test_data_set_0` (ONNX's layout): input 0 written to
/// `dir/{tag}.in.safetensors` under `name`, and onnxruntime's outputs.
fn onnx_case_input(
    dir: &Path,
    case: &str,
    tag: &str,
    name: &str,
) -> (PathBuf, Vec<resincept::onnx::OnnxTensor>) {
    let data = fixture_dir(case).join("test_data_set_0");
    let x = read_pbs(&data, "input").unwrap().remove(0);
    let path = dir.join(format!("{tag}.in.safetensors"));
    save(&path, &[(name, &x.to_tensor(name).unwrap())]);
    (path, read_pbs(&data, "output").unwrap())
}

/// The ONNX cases `run` is held to onnxruntime on: an NHWC (tf2onnx-style)
/// input, an NHWC output, a softmax head, a symbolic batch, external data
/// beside the model, and two outputs. Each runs on the CPU executor and
/// (with an adapter) the GPU, its input read under the model's own input
/// name or `input`, each output written under its own name; every output
/// is compared with onnxruntime's within the node tests' tolerance.
#[test]
fn onnx_run_matches_onnxruntime() {
    let dir = scratch("onnx_run");
    let cases = [
        ("extra/nhwc_tf2onnx", "x", &["y"][..]),
        ("extra/nhwc_output", "input", &["y"][..]),
        ("extra/bn_gap_fc_softmax", "x", &["y"][..]),
        ("extra/symbolic_batch", "input", &["y"][..]),
        ("extra/external_data", "x", &["y"][..]),
        ("extra/shared_pending", "x", &["y1", "m"][..]),
        ("extra/const_div_by_activation", "x", &["y"][..]),
        ("extra/dropout_mask", "x", &["y"][..]),
    ];
    let devices: &[&str] = if gpu().is_some() {
        &["cpu", "gpu"]
    } else {
        &["cpu"]
    };
    for (case, input_name, outputs) in cases {
        let tag = case.rsplit('/').next().unwrap();
        let (input, want) = onnx_case_input(&dir, case, tag, input_name);
        for device in devices {
            let out = dir.join(format!("{tag}.{device}.safetensors"));
            let mut cmd = run_command(&onnx_model(case), &input, &out, &["--device", device]);
            let o = cmd.output().unwrap();
            assert!(o.status.success(), "{case} {device}: {}", text(&o.stderr));
            for (k, name) in outputs.iter().enumerate() {
                let got = weights::read_tensor(&out, name)
                    .unwrap_or_else(|e| panic!("{case} {device}: {e}"));
                onnx_common::compare(
                    &format!("{case} on {device}, output `{name}`"),
                    &got.data,
                    &got.shape,
                    &want[k],
                    NODE_TOL,
                )
                .unwrap();
            }
            let meta = weights::read_metadata(&out).unwrap();
            assert_eq!(meta["model"], onnx_model(case));
            assert!(meta["device"].starts_with(device), "{meta:?}");
        }
    }
}

/// A model that asks for Dropout's mask gets it from `run` as ONNX and
/// onnxruntime give it: a BOOL tensor (safetensors `BOOL`, one byte per
/// element) of the input's shape, all true, beside the computed output
/// (which `onnx_run_matches_onnxruntime` compares).
#[test]
fn onnx_run_writes_dropout_mask_as_bool() {
    let dir = scratch("onnx_mask");
    let case = "extra/dropout_mask";
    let (input, want) = onnx_case_input(&dir, case, "mask", "x");
    let devices: &[&str] = if gpu().is_some() {
        &["cpu", "gpu"]
    } else {
        &["cpu"]
    };
    for device in devices {
        let out = dir.join(format!("mask.{device}.safetensors"));
        let mut cmd = run_command(&onnx_model(case), &input, &out, &["--device", device]);
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{device}: {}", text(&o.stderr));
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mask = st.tensor("mask").unwrap();
        assert_eq!(mask.dtype(), safetensors::Dtype::BOOL, "{device}");
        assert_eq!(mask.shape(), want[1].dims(), "{device}");
        assert_eq!(want[1].dtype(), resincept::onnx::proto::data_type::BOOL);
        assert!(
            want[1].as_f64().iter().all(|&v| v == 1.0),
            "onnxruntime's mask"
        );
        assert!(
            mask.data().iter().all(|&b| b == 1),
            "{device}: not all true"
        );
        assert_eq!(st.tensor("y").unwrap().dtype(), safetensors::Dtype::F32);
    }
}

/// A whole exported network (the slim torchvision ResNet-50, legacy
/// exporter, symbolic batch) through `run` on the GPU: within
/// 1e-3·max|logits| of onnxruntime with the same top-5, as the library's
/// own model test holds it.
#[test]
fn onnx_run_exported_resnet50() {
    if gpu().is_none() {
        return;
    }
    let dir = scratch("onnx_run_r50");
    let case = "models/resnet50_slim_legacy";
    let (input, want) = onnx_case_input(&dir, case, "r50", "input");
    let out = dir.join("out.safetensors");
    let got = {
        let o = run_command(&onnx_model(case), &input, &out, &[])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        weights::read_tensor(&out, "logits").unwrap()
    };
    let want = want[0].to_tensor("logits").unwrap();
    assert_eq!(got.shape, want.shape);
    let d = got.max_abs_diff(&want).unwrap();
    assert!(d <= 1e-3 * want.max_abs(), "{d} vs max {}", want.max_abs());
    let top5 = |t: &Tensor| -> Vec<usize> {
        let p: Vec<f64> = t.data.iter().map(|&v| v as f64).collect();
        resincept::imagenet::top_k(&p, 5)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    };
    assert_eq!(top5(&got), top5(&want));
}

/// `--precision f16` on the exported slim models is as accurate as
/// PyTorch's own FP16 (`model.half()`) on the same models: against the
/// float64 logits (both written by `scripts/make_onnx_f16_references.py`),
/// resincept's f16 error is at most twice PyTorch's, and the top-1 class is
/// float64's wherever PyTorch's FP16 keeps it. These nets (random weights,
/// calibrated batchnorm) are input-sensitive, so f16 rounding in early
/// layers reaches the logits: PyTorch's FP16 is 0.9e-2 to 5.4e-2 of
/// max|logits| off float64 (0.36 for Inception-v4), far over the zoo
/// fixtures' depth bar (exec::f16_rel_tol), which assumes layer gains of
/// about one. Two implementations round different operations (PyTorch
/// rounds after every op, resincept once per fused kernel), so the two
/// errors are two draws of similar rounding noise, not equal; twice is the
/// margin.
#[test]
fn onnx_f16_as_accurate_as_pytorch() {
    if gpu().is_none() {
        return;
    }
    let dir = scratch("onnx_f16_torch");
    let cases = [
        ("resnet50_slim_legacy", &["packed", "auto"][..]),
        ("resnext50_32x4d_slim_legacy", &["auto"]),
        ("inception_v3_slim_legacy", &["auto"]),
        ("inception_v4_slim_legacy", &["auto"]),
        ("inception_resnet_v2_slim_legacy", &["auto"]),
        ("resnetv2_50_slim_legacy", &["auto"]),
    ];
    for (name, storages) in cases {
        let case = format!("models/{name}");
        let (input, _) = onnx_case_input(&dir, &case, name, "input");
        let data = fixture_dir(&case).join("test_data_set_0");
        let read = |f: &str| {
            let t = resincept::onnx::read_tensor_file(data.join(f)).unwrap();
            t.to_tensor("logits").unwrap()
        };
        let (exact, torch) = (read("float64_output_0.pb"), read("torch_f16_output_0.pb"));
        let scale = exact.max_abs();
        let torch_err = torch.max_abs_diff(&exact).unwrap() / scale;
        let top1 = |t: &Tensor| {
            (0..t.data.len())
                .max_by(|&a, &b| t.data[a].total_cmp(&t.data[b]))
                .unwrap()
        };
        for storage in storages {
            let out = dir.join(format!("{name}_{storage}.safetensors"));
            let o = run_command(
                &onnx_model(&case),
                &input,
                &out,
                &["--precision", "f16", "--f16-storage", storage],
            )
            .output()
            .unwrap();
            assert!(o.status.success(), "{}", text(&o.stderr));
            let ours = weights::read_tensor(&out, "logits").unwrap();
            let err = ours.max_abs_diff(&exact).unwrap() / scale;
            println!("{name} f16 {storage}: {err:.2e} of max|logits| off float64; PyTorch FP16 {torch_err:.2e}");
            assert!(
                err <= 2.0 * torch_err,
                "{name} f16 {storage}: {err:.2e} vs PyTorch's {torch_err:.2e}"
            );
            if top1(&torch) == top1(&exact) {
                assert_eq!(top1(&ours), top1(&exact), "{name} f16 {storage}: top-1");
            }
        }
    }
}

/// `check` on ONNX models: NHWC in and out (the GPU takes and gives NHWC,
/// the CPU executor gets the host's permute), layer by layer, a symbolic
/// batch from `--batch`, the input from a file under the model's input
/// name; flags that contradict the model's fixed dims are usage errors
/// naming the flag.
#[test]
fn onnx_check_compares_gpu_with_cpu() {
    if gpu().is_none() {
        return;
    }
    let m = onnx_model("extra/nhwc_output");
    let out = assert_ok(&["check", "--model", &m]);
    assert!(out.contains("input 2×6×7×3 (NHWC)"), "{out}");
    assert!(out.contains("ok: all 1 outputs within tolerance"), "{out}");
    let out = assert_ok(&["check", "--model", &m, "--layers"]);
    assert!(out.contains("within tolerance"), "{out}");

    let m = onnx_model("extra/symbolic_batch");
    let out = assert_ok(&["check", "--model", &m, "--batch", "3"]);
    assert!(out.contains("input 3×3×8×8"), "{out}");
    let dir = scratch("onnx_check");
    let (input, _) = onnx_case_input(&dir, "extra/symbolic_batch", "sym", "x");
    let out = assert_ok(&["check", "--model", &m, "--input", path_str(&input)]);
    assert!(out.contains("input 2×3×8×8"), "{out}");
    let line = assert_error(
        &["check", "--model", &m, "--size", "16"],
        &[
            "--size 16",
            "`x`",
            "[batch, 3, 8, 8]",
            "usage: resincept check",
        ],
    );
    assert!(line.contains("leave out --size"), "{line}");
    let fixed = onnx_model("extra/nhwc_tf2onnx");
    assert_error(
        &["check", "--model", &fixed, "--batch", "2"],
        &["--batch 2", "fixed batch of 1"],
    );
    assert_eq!(
        resincept(&["check", "--model", &fixed, "--batch", "2"])
            .status
            .code(),
        Some(2)
    );
}

/// `bench --json` on an imported network: its own input shape (symbolic
/// batch from `--batch`), the zoo ResNet-50's 57 dispatches, and memory
/// keys that agree with each other.
#[test]
fn onnx_bench_json() {
    if gpu().is_none() {
        return;
    }
    let m = onnx_model("models/resnet50_slim_legacy");
    let out = assert_ok(&[
        "bench", "--model", &m, "--batch", "2", "--iters", "1", "--warmup", "0", "--json",
    ]);
    let line = out.trim();
    let Json::Obj(o) = parse_json(line).unwrap() else {
        panic!("not an object: {line}");
    };
    assert_eq!(o["model"], Json::Str(m.clone()));
    assert_eq!(o["batch"], Json::Num(2.0));
    assert_eq!(o["size"], Json::Num(97.0));
    assert_eq!(
        o["input_shape"],
        Json::Arr([2.0, 3.0, 97.0, 97.0].map(Json::Num).to_vec())
    );
    assert_eq!(o["input_layout"], Json::Str("NCHW".into()));
    assert_eq!(o["dispatches"], Json::Num(57.0), "{line}");
    assert_memory_keys(&o, line);
}

/// A PNG of random pixels (seeded), `w × h`.
fn noise_png(path: &Path, w: u32, h: u32, seed: u64) {
    let rgb: Vec<u8> = kernels_tests::rand_vec(seed, (w * h * 3) as usize)
        .iter()
        .map(|v| ((v.abs() * 255.0) as u32).min(255) as u8)
        .collect();
    std::fs::write(path, png_rgb(w, h, &rgb)).unwrap();
}

/// The rows `classify` prints for one image: (probability %, class, name).
fn classify_rows(out: &str, image: &str) -> Vec<(f64, usize, String)> {
    out.lines()
        .skip_while(|l| !l.ends_with(image))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let mut f = l.split_whitespace();
            let p: f64 = f.next().unwrap().trim_end_matches('%').parse().unwrap();
            let c: usize = f.next().unwrap().parse().unwrap();
            (p, c, f.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// `classify` with an ONNX classifier (the slim ResNet-50 export, 100
/// classes, input 97×97): the preprocessing comes from the flags or the
/// model's `metadata_props`, the class names from `--labels` or the
/// metadata; its top classes and probabilities are those of `run` on the
/// same preprocessed tensor (the library's transform, tested against PIL
/// and torchvision elsewhere), softmaxed. Without mean, std or resize the
/// error names the flag needed.
#[test]
fn onnx_classify_with_flags_and_metadata() {
    let dir = scratch("onnx_classify");
    let img = dir.join("noise.png");
    noise_png(&img, 130, 110, 3);
    let labels = dir.join("labels.txt");
    let names: Vec<String> = (0..100).map(|i| format!("thing {i}")).collect();
    std::fs::write(&labels, names.join("\n") + "\n").unwrap();
    let m = onnx_model("models/resnet50_slim_legacy");
    let i = path_str(&img);
    let flags = [
        "--mean",
        "0.485,0.456,0.406",
        "--std",
        "0.229,0.224,0.225",
        "--resize",
        "110",
        "--interpolation",
        "bicubic",
    ];
    let mut args = vec![
        "classify", i, "--model", &m, "--device", "cpu", "--top", "3",
    ];
    args.extend(flags);
    let out = assert_ok(&[&args[..], &["--labels", path_str(&labels)]].concat());
    assert!(
        out.contains("input 97x97 (resize 110 bicubic, centre crop 97, mean [0.485, 0.456, 0.406] std [0.229, 0.224, 0.225])"),
        "{out}"
    );
    let rows = classify_rows(&out, "noise.png");
    assert_eq!(rows.len(), 3, "{out}");

    // The same through `run`.
    let pre = resincept::preprocess::Preprocess {
        resize: Some(110),
        interpolation: resincept::preprocess::Interpolation::Bicubic,
        crop: 97,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    let x = pre.batch(&[&img]).unwrap();
    let input = input_file(&dir, &x);
    let out_file = dir.join("logits.safetensors");
    let mut cmd = run_command(&m, &input, &out_file, &["--device", "cpu"]);
    let logits = {
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        weights::read_tensor(&out_file, "logits").unwrap()
    };
    let probs = resincept::imagenet::softmax(&logits.data);
    let top = resincept::imagenet::top_k(&probs, 3);
    for ((p, c, name), (want_c, want_p)) in rows.iter().zip(&top) {
        assert_eq!(c, want_c, "{out}");
        assert_eq!(name, &format!("thing {c}"));
        assert!((p - want_p * 100.0).abs() <= 1e-3, "{p} vs {want_p}");
    }

    // Without labels: class indices. A wrong count of labels is an error.
    let out = assert_ok(&args);
    assert!(classify_rows(&out, "noise.png")[0].2.starts_with("class "));
    std::fs::write(&labels, "a\nb\n").unwrap();
    assert_error(
        &[&args[..], &["--labels", path_str(&labels)]].concat(),
        &["labels.txt", "2 labels", "100 classes"],
    );

    // Missing settings name their flag.
    assert_error(
        &["classify", i, "--model", &m, "--device", "cpu"],
        &["metadata_props has no `mean`", "--mean"],
    );
    assert_error(
        &[&args[..4], &flags[..4]].concat(),
        &["no `resize`", "--resize N (or --resize none)"],
    );
    assert_error(
        &[&args[..], &["--crop", "64"]].concat(),
        &["crop 64 (from --crop)", "[batch, 3, 97, 97]"],
    );
    assert_error(
        &["classify", i, "--model", &m, "--mean", "1,2"],
        &["--mean needs three numbers", "`1,2`"],
    );

    // The same settings from the model's metadata_props.
    let with_meta = dir.join("with_meta.onnx");
    write_with_metadata(
        &fixture_dir("models/resnet50_slim_legacy").join("model.onnx"),
        &with_meta,
        &[
            ("mean", "[0.485, 0.456, 0.406]"),
            ("std", "0.229 0.224 0.225"),
            ("resize", "110"),
            ("crop", "97"),
            ("interpolation", "bicubic"),
            ("labels", &(names.join("\n") + "\n")),
        ],
    );
    let out = assert_ok(&[
        "classify",
        i,
        "--model",
        path_str(&with_meta),
        "--device",
        "cpu",
        "--top",
        "3",
    ]);
    let meta_rows = classify_rows(&out, "noise.png");
    assert_eq!(meta_rows, rows, "{out}");
    // A flag beats the metadata; a malformed entry is named.
    let out = assert_ok(&[
        "classify",
        i,
        "--model",
        path_str(&with_meta),
        "--device",
        "cpu",
        "--resize",
        "none",
    ]);
    assert!(out.contains("no resize, centre crop 97"), "{out}");
    let bad = dir.join("bad_meta.onnx");
    write_with_metadata(&with_meta, &bad, &[("std", "0.2,zero,0.2")]);
    assert_error(
        &["classify", i, "--model", path_str(&bad), "--device", "cpu"],
        &["bad_meta.onnx", "metadata_props `std`", "give the flag"],
    );
}

/// Copies the ONNX file `from` to `to` with `entries` set in its
/// `metadata_props` (replacing entries of the same key).
fn write_with_metadata(from: &Path, to: &Path, entries: &[(&str, &str)]) {
    use prost::Message;
    use resincept::onnx::proto::{ModelProto, StringStringEntryProto};
    let mut m = ModelProto::decode(std::fs::read(from).unwrap().as_slice()).unwrap();
    for (k, v) in entries {
        m.metadata_props.retain(|e| e.key != *k);
        m.metadata_props.push(StringStringEntryProto {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    std::fs::write(to, m.encode_to_vec()).unwrap();
}

/// Copies the ONNX file `from` to `to` with its (first) graph input
/// declared with `dims`.
fn write_with_input_dims(from: &Path, to: &Path, dims: &[i64]) {
    use prost::Message;
    use resincept::onnx::proto::ModelProto;
    let mut m = ModelProto::decode(std::fs::read(from).unwrap().as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let shape = g.input[0]
        .r#type
        .as_mut()
        .and_then(|t| t.tensor_type.as_mut())
        .and_then(|t| t.shape.as_mut())
        .unwrap();
    assert_eq!(shape.dim.len(), dims.len());
    for (d, &v) in shape.dim.iter_mut().zip(dims) {
        d.dim_value = Some(v);
        d.dim_param = None;
    }
    std::fs::write(to, m.encode_to_vec()).unwrap();
}

/// What the CLI must refuse of ONNX models and their inputs, each with one
/// `error:` line naming the file, node or tensor, exit status 1, never a
/// panic: an unsupported operator, a truncated file, a file that is not
/// ONNX, a missing external data file, an input of the wrong shape or
/// dtype, an old opset, two runtime inputs; and (a usage error) weights
/// flags for a file that carries its own.
#[test]
fn onnx_refusals() {
    let dir = scratch("onnx_refusals");
    let (input, _) = onnx_case_input(&dir, "extra/conv_bias", "conv", "x");
    let out = dir.join("out.safetensors");
    let run = |model: &str, input: &Path| -> Vec<String> {
        [
            "run",
            "--model",
            model,
            "--input",
            path_str(input),
            "--output",
            path_str(&out),
            "--device",
            "cpu",
        ]
        .map(String::from)
        .to_vec()
    };
    let check = |args: Vec<String>, needles: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(&a, needles);
        assert_eq!(resincept(&a).status.code(), Some(1), "{a:?}");
        assert!(!out.exists(), "no output on error");
    };
    let refuse = |f: &str| path_str(&fixture_dir("refuse").join(f)).to_string();
    let small = dir.join("small.safetensors");
    save(&small, &[("x", &Tensor::zeros(vec![1, 3, 8, 8]))]);
    check(
        run(&refuse("unsupported_op.onnx"), &small),
        &["node `leaky`", "LeakyRelu", "opset 17", "not supported"],
    );
    for cmd in ["bench", "check"] {
        check(
            vec![cmd.into(), "--model".into(), refuse("unsupported_op.onnx")],
            &["LeakyRelu", "not supported"],
        );
    }
    check(
        run(&refuse("old_opset.onnx"), &input),
        &["old_opset.onnx", "opset 11"],
    );
    check(
        run(&refuse("two_inputs.onnx"), &input),
        &["2 runtime inputs", "`a`", "`b`"],
    );
    // Truncated, and not ONNX at all.
    let model = fixture_dir("extra/conv_bias").join("model.onnx");
    let bytes = std::fs::read(&model).unwrap();
    let cut = dir.join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    check(
        run(path_str(&cut), &input),
        &["cut.onnx", "not a valid ONNX model"],
    );
    let text_file = dir.join("notes.onnx");
    std::fs::write(&text_file, "these are my notes, not a model\n").unwrap();
    check(
        run(path_str(&text_file), &input),
        &["notes.onnx", "not a valid ONNX model"],
    );
    check(
        run(path_str(&dir.join("nowhere.onnx")), &input),
        &["nowhere.onnx"],
    );
    // External data missing beside the model.
    let ext = dir.join("ext");
    std::fs::create_dir_all(&ext).unwrap();
    std::fs::copy(
        fixture_dir("extra/external_data").join("model.onnx"),
        ext.join("model.onnx"),
    )
    .unwrap();
    let (ext_input, _) = onnx_case_input(&dir, "extra/external_data", "ext", "x");
    check(
        run(path_str(&ext.join("model.onnx")), &ext_input),
        &["weights.bin", "external data of tensor `W`"],
    );
    // Inputs of the wrong shape, the wrong dtype, or under another name.
    let m = path_str(&model).to_string();
    let wrong = dir.join("wrong.safetensors");
    save(&wrong, &[("x", &Tensor::zeros(vec![2, 5, 9, 12]))]);
    check(
        run(&m, &wrong),
        &[
            "`x`",
            "[2, 5, 9, 12]",
            "does not match the declared [2, 5, 9, 11]",
        ],
    );
    let ints = dir.join("ints.safetensors");
    let st = safetensors::serialize(
        [(
            "x",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::I64,
                vec![2, 5, 9, 11],
                &[0u8; 990 * 8],
            )
            .unwrap(),
        )],
        None,
    )
    .unwrap();
    std::fs::write(&ints, st).unwrap();
    check(
        run(&m, &ints),
        &["input `x`", "ints.safetensors", "I64", "floating-point"],
    );
    let other = dir.join("other.safetensors");
    save(&other, &[("image", &Tensor::zeros(vec![2, 5, 9, 11]))]);
    check(run(&m, &other), &["no tensor `x` or `input`", "`image`"]);
    // The file carries its weights.
    let mut a = run(&m, &input);
    a.extend(["--synthetic-seed".into(), "1".into()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    assert_error(&a, &["--synthetic-seed", "carries its own weights"]);
    assert_eq!(resincept(&a).status.code(), Some(2));
    // `serve` takes one output.
    check(
        vec![
            "serve".into(),
            "--model".into(),
            onnx_model("extra/shared_pending"),
        ],
        &["2 outputs", "y1, m", "one"],
    );
}

/// Issue 11's "memory the host cannot have": sizes from the command line
/// or a model that no host or device can hold are one error naming the
/// tensor, its bytes and the limit, exit status 1, before anything is
/// allocated (these used to abort with a backtrace, exit 134).
#[test]
fn memory_the_host_cannot_have() {
    // resnet50 at 100000×100000: the input alone is 1.2e11 bytes; at batch
    // 100000 (224×224) 6.0e10. Whichever check sees it first (the host's
    // memory, or on a machine that has that much, the device's buffer
    // limit), the line names the input and its bytes.
    let available = host_available_bytes();
    for (flag, value, bytes) in [
        ("--size", "100000", 120_000_000_000u64),
        ("--batch", "100000", 60_211_200_000),
    ] {
        if available.is_none_or(|a| a >= bytes) {
            eprintln!("SKIP: resnet50 {flag} {value}: this host has {available:?} bytes available");
            continue;
        }
        for cmd in ["bench", "check"] {
            let args = [cmd, "--model", "resnet50", flag, value];
            assert_error(
                &args,
                &[
                    "tensor `input`: ",
                    &format!("needs {bytes} bytes"),
                    "host memory available (MemAvailable)",
                ],
            );
            assert_eq!(resincept(&args).status.code(), Some(1));
        }
    }
    let dir = scratch("memory");
    let img = dir.join("a.png");
    gradient_png(&img, 8, 8);
    assert_error(
        &[
            "classify",
            path_str(&img),
            "--model",
            "resnet18",
            "--synthetic-seed",
            "1",
            "--crop",
            "200000",
        ],
        &["input", "480000000000 bytes", "host memory"],
    );
    // An ONNX model whose dims are absurd: declared, or from the flags.
    let absurd = dir.join("absurd.onnx");
    write_with_input_dims(
        &fixture_dir("extra/conv_bias").join("model.onnx"),
        &absurd,
        &[1, 5, 100_000, 100_000],
    );
    for cmd in ["bench", "check", "serve"] {
        let args = [cmd, "--model", path_str(&absurd)];
        assert_error(
            &args,
            &["input `x` of", "absurd.onnx", "200000000000 bytes"],
        );
        assert_eq!(resincept(&args).status.code(), Some(1));
    }
    let r50 = onnx_model("models/resnet50_slim_legacy");
    assert_error(
        &["bench", "--model", &r50, "--batch", "100000"],
        &["`input`", "11290800000 bytes"],
    );
    // The device's limits (made small here) are checked by the compile,
    // before any device object exists: one line naming the node and limit.
    if gpu().is_some() {
        let o = command()
            .args(["bench", "--model", CIFAR, "--size", "512", "--json"])
            .env("RESINCEPT_MAX_STORAGE_BINDING", "600000")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        let lines = own_stderr(&o);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("error: node `")
                && lines[0].contains("max_storage_buffer_binding_size"),
            "{lines:?}"
        );
    }
}

/// `MemAvailable` of `/proc/meminfo`, where there is one.
fn host_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------- serve, run as a client would

/// A `resincept serve` process on free loopback ports, killed when dropped.
struct Served {
    child: std::process::Child,
    /// `127.0.0.1:PORT` of its HTTP front end.
    http: String,
    log: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `resincept serve ARGS` on ports 0 and waits (up to 5 minutes: a
/// loaded machine compiles slowly) until it says it is ready.
fn serve_start(args: &[&str]) -> Served {
    use std::io::BufRead;
    let mut child = command()
        .arg("serve")
        .args(args)
        .args(["--http-port", "0", "--grpc-port", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        http: String::new(),
        log: Vec::new(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("serve {args:?} not ready: {:?}", served.log));
        if let Some(at) = line.split("HTTP on http://").nth(1) {
            served.http = at.split(',').next().unwrap().to_string();
        }
        let ready = line.contains(": ready (");
        served.log.push(line);
        if ready {
            return served;
        }
    }
}

/// One HTTP/1.1 request (`Connection: close`); returns status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// `POST /v2/models/NAME/infer` of `x` as input `input`; returns the
/// first output's name, shape and data.
fn infer(served: &Served, model: &str, input: &str, x: &Tensor) -> (String, Vec<usize>, Vec<f32>) {
    let data: Vec<String> = x.data.iter().map(|v| format!("{v:e}")).collect();
    let body = format!(
        r#"{{"inputs":[{{"name":"{input}","shape":{:?},"datatype":"FP32","data":[{}]}}]}}"#,
        x.shape,
        data.join(",")
    );
    let (status, text) = http(
        &served.http,
        "POST",
        &format!("/v2/models/{model}/infer"),
        &body,
    );
    assert_eq!(status, 200, "{text}");
    let Json::Obj(m) = parse_json(&text).unwrap() else {
        panic!("{text}")
    };
    let Json::Arr(outs) = &m["outputs"] else {
        panic!("{text}")
    };
    let Json::Obj(o) = &outs[0] else {
        panic!("{text}")
    };
    let nums = |v: &Json| -> Vec<f64> {
        match v {
            Json::Arr(a) => a
                .iter()
                .map(|x| match x {
                    Json::Num(n) => *n,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    let Json::Str(name) = &o["name"] else {
        panic!("{text}")
    };
    let shape = nums(&o["shape"]).iter().map(|&d| d as usize).collect();
    let data = nums(&o["data"]).iter().map(|&d| d as f32).collect();
    (name.clone(), shape, data)
}

/// The metadata a v2 client reads: (input name, shape), (output name,
/// shape), shapes with -1 for the batch.
fn served_metadata(served: &Served, model: &str) -> ((String, Vec<f64>), (String, Vec<f64>)) {
    let (status, text) = http(&served.http, "GET", &format!("/v2/models/{model}"), "");
    assert_eq!(status, 200, "{text}");
    let Json::Obj(m) = parse_json(&text).unwrap() else {
        panic!("{text}")
    };
    let first = |k: &str| -> (String, Vec<f64>) {
        let Json::Arr(a) = &m[k] else {
            panic!("{text}")
        };
        let Json::Obj(t) = &a[0] else {
            panic!("{text}")
        };
        let (Json::Str(name), Json::Arr(shape)) = (&t["name"], &t["shape"]) else {
            panic!("{text}")
        };
        let shape = shape
            .iter()
            .map(|d| match d {
                Json::Num(n) => *n,
                other => panic!("{other:?}"),
            })
            .collect();
        (name.clone(), shape)
    };
    (first("inputs"), first("outputs"))
}

/// `serve --model m.onnx` advertises the model's own names and shapes
/// (NHWC as the model takes it), under the file's stem or `--name`, and
/// answers with onnxruntime's output: the tf2onnx-style NHWC model (fixed
/// batch 1), and a symbolic-batch model batched up to `--max-batch-size`.
#[test]
fn onnx_serve_takes_the_models_own_names_and_layout() {
    if gpu().is_none() {
        return;
    }
    let dir = scratch("onnx_serve");
    let served = serve_start(&["--model", &onnx_model("extra/nhwc_tf2onnx")]);
    let ((input, in_shape), (output, out_shape)) = served_metadata(&served, "model");
    assert_eq!(
        (input.as_str(), in_shape),
        ("x", vec![-1.0, 9.0, 11.0, 3.0])
    );
    assert_eq!((output.as_str(), out_shape), ("y", vec![-1.0, 5.0]));
    let data = fixture_dir("extra/nhwc_tf2onnx").join("test_data_set_0");
    let x = read_pbs(&data, "input").unwrap()[0].to_tensor("x").unwrap();
    let want = &read_pbs(&data, "output").unwrap()[0];
    let (name, shape, got) = infer(&served, "model", "x", &x);
    assert_eq!(name, "y");
    onnx_common::compare("served nhwc_tf2onnx", &got, &shape, want, NODE_TOL).unwrap();
    drop(served);

    let served = serve_start(&[
        "--model",
        &onnx_model("extra/symbolic_batch"),
        "--name",
        "convnet",
        "--max-batch-size",
        "2",
    ]);
    let ((_, in_shape), (_, out_shape)) = served_metadata(&served, "convnet");
    assert_eq!(in_shape, vec![-1.0, 3.0, 8.0, 8.0]);
    assert_eq!(out_shape, vec![-1.0, 8.0, 8.0, 8.0]);
    let (input, want) = onnx_case_input(&dir, "extra/symbolic_batch", "sym", "x");
    let x = weights::read_tensor(&input, "x").unwrap();
    let (name, shape, got) = infer(&served, "convnet", "x", &x);
    assert_eq!(name, "y");
    onnx_common::compare("served symbolic_batch", &got, &shape, &want[0], NODE_TOL).unwrap();
}

/// A fine-tuned zoo checkpoint: a torchvision-keyed ResNet-50 whose `fc`
/// has 10 classes (synthetic weights stored in F16, as a checkpoint may
/// be). The head width comes from the checkpoint in `run` (GPU and CPU
/// agree), `classify` (with `--labels`, else class indices: not CIFAR-10's
/// names, which belong to the CIFAR nets' own heads), `check`, `bench` and
/// `serve` (which advertises 10 outputs and answers as `run` does).
#[test]
fn fine_tuned_head_from_the_checkpoint() {
    let dir = scratch("fine_tuned");
    let g = models::build_with("resnet50", &models::Options::new(1, 32, 32).classes(10)).unwrap();
    let w = Weights::from_synthetic(1, &g.param_specs());
    assert_eq!(w.get("fc.weight").unwrap().shape, vec![10, 2048]);
    let ckpt = dir.join("ft.safetensors");
    {
        let halves: Vec<(String, Vec<usize>, Vec<u8>)> = w
            .iter()
            .map(|(k, t)| {
                let bytes = t
                    .data
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                (k.to_string(), t.shape.clone(), bytes)
            })
            .collect();
        let views = halves.iter().map(|(k, shape, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), b)
                .unwrap();
            (k.as_str(), v)
        });
        std::fs::write(&ckpt, safetensors::serialize(views, None).unwrap()).unwrap();
    }
    let c = path_str(&ckpt);
    let x = weights::synthetic_input(5, &[2, 3, 32, 32]);
    let input = input_file(&dir, &x);
    let run = |device: &str| -> Tensor {
        let out = dir.join(format!("{device}.safetensors"));
        let cmd = run_command(
            "resnet50",
            &input,
            &out,
            &["--weights", c, "--device", device],
        );
        run_ok(cmd, &out)
    };
    let cpu = run("cpu");
    assert_eq!(cpu.shape, vec![2, 10]);
    assert!(cpu.data.iter().all(|v| v.is_finite()));

    let img = dir.join("a.png");
    noise_png(&img, 40, 36, 9);
    let labels = dir.join("labels.txt");
    let names = [
        "ant", "bee", "cod", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay",
    ];
    std::fs::write(&labels, names.join("\n")).unwrap();
    let classify = |extra: &[&str]| {
        let args = [
            &[
                "classify",
                path_str(&img),
                "--model",
                "resnet50",
                "--weights",
                c,
                "--crop",
                "32",
                "--resize",
                "36",
                "--device",
                "cpu",
                "--top",
                "10",
            ][..],
            extra,
        ]
        .concat();
        classify_rows(&assert_ok(&args), "a.png")
    };
    let rows = classify(&["--labels", path_str(&labels)]);
    assert_eq!(rows.len(), 10);
    for (_, k, name) in &rows {
        assert_eq!(name, names[*k]);
    }
    let rows = classify(&[]);
    for (_, k, name) in &rows {
        assert_eq!(name, &format!("class {k}"));
    }

    if gpu().is_none() {
        return;
    }
    let g = run("gpu");
    assert_eq!(g.shape, vec![2, 10]);
    let d = g.max_abs_diff(&cpu).unwrap();
    assert!(d <= 1e-4 * cpu.max_abs(), "GPU vs CPU: {d}");
    let out = assert_ok(&[
        "check",
        "--model",
        "resnet50",
        "--weights",
        c,
        "--size",
        "32",
    ]);
    assert!(
        out.contains("[1, 10]") && out.contains("ok: all 1 outputs"),
        "{out}"
    );
    let out = assert_ok(&[
        "bench",
        "--model",
        "resnet50",
        "--weights",
        c,
        "--size",
        "32",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(out.contains(&format!("\"weights\":\"file:{c}\"")), "{out}");

    let served = serve_start(&[
        "--model",
        "resnet50",
        "--weights",
        c,
        "--size",
        "32",
        "--max-batch-size",
        "2",
        "--name",
        "ft",
    ]);
    let ((input, in_shape), (output, out_shape)) = served_metadata(&served, "ft");
    assert_eq!(
        (input.as_str(), in_shape),
        ("input", vec![-1.0, 3.0, 32.0, 32.0])
    );
    assert_eq!((output.as_str(), out_shape), ("output", vec![-1.0, 10.0]));
    let (_, shape, got) = infer(&served, "ft", "input", &x);
    assert_eq!(shape, vec![2, 10]);
    let got = Tensor::new(shape, got).unwrap();
    let d = got.max_abs_diff(&cpu).unwrap();
    assert!(d <= 1e-4 * cpu.max_abs(), "served vs CPU: {d}");
}

/// Outputs in both layouts from one model: the tf2onnx-style NHWC output
/// `y` of `nhwc_output`, plus (added here) `r = Relu(c1)` of the conv's
/// NCHW output. The GPU returns the NCHW one as compiled and the NHWC one
/// permuted on the host; both executors give onnxruntime's `y`, and `r` is
/// ReLU of `y`'s reference permuted to NCHW.
#[test]
fn onnx_mixed_output_layouts() {
    use prost::Message;
    use resincept::onnx::proto::{
        ModelProto, NodeProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
    };
    let dir = scratch("onnx_mixed");
    let case = "extra/nhwc_output";
    let bytes = std::fs::read(fixture_dir(case).join("model.onnx")).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node.push(NodeProto {
        input: vec!["c1".into()],
        output: vec!["r".into()],
        name: "relu".into(),
        op_type: "Relu".into(),
        ..Default::default()
    });
    let dims = [2, 8, 6, 7].map(|d| resincept::onnx::proto::Dimension {
        dim_value: Some(d),
        ..Default::default()
    });
    g.output.push(ValueInfoProto {
        name: "r".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
            ..Default::default()
        }),
    });
    let model = dir.join("mixed.onnx");
    std::fs::write(&model, m.encode_to_vec()).unwrap();
    let (input, want) = onnx_case_input(&dir, case, "mixed", "x");
    // r's reference: ReLU of onnxruntime's y (N, H, W, C) read as NCHW.
    let y = want[0].to_tensor("y").unwrap();
    let [n, h, w, c] = [2, 6, 7, 8];
    let mut r = vec![0f32; y.len()];
    for (i, v) in y.data.iter().enumerate() {
        let (b, yy, xx, ch) = (i / (h * w * c), i / (w * c) % h, i / c % w, i % c);
        r[((b * c + ch) * h + yy) * w + xx] = v.max(0.0);
    }
    let r = resincept::onnx::OnnxTensor::from_f32("r", vec![n, c, h, w], r).unwrap();
    let devices: &[&str] = if gpu().is_some() {
        &["cpu", "gpu"]
    } else {
        &["cpu"]
    };
    for device in devices {
        let out = dir.join(format!("{device}.safetensors"));
        let o = run_command(path_str(&model), &input, &out, &["--device", device])
            .output()
            .unwrap();
        assert!(o.status.success(), "{device}: {}", text(&o.stderr));
        for (name, want) in [("y", &want[0]), ("r", &r)] {
            let got = weights::read_tensor(&out, name).unwrap();
            onnx_common::compare(
                &format!("{device} `{name}`"),
                &got.data,
                &got.shape,
                want,
                NODE_TOL,
            )
            .unwrap();
        }
    }
}

/// `--precision f16` in every command. Both executors round where f16 is
/// stored: the CPU executor's f16 run moves the logits off the f32 run's
/// (it really rounds) by no more than the f16 bar of the compiled graph's
/// rounding depth, and the GPU's f16 runs, native and packed, are within
/// the f16 tolerance of it. `bench --json` names the precision and the
/// storage taken and halves the bytes; `check --precision f16 --layers`
/// passes layer by layer; `classify` keeps f32's top class; a served model
/// in f16 answers as `run` does. A storage mode without f16 is a usage
/// error.
#[test]
fn f16_in_every_command() {
    use resincept::exec::gpu::TOLERANCE_F16;
    use resincept::exec::{f16_rel_tol, f16_rounding_depth};
    use resincept::passes::{optimize, PassOptions};
    let dir = scratch("f16");
    let model = "resnet18";
    let x = weights::synthetic_input(5, &[2, 3, 32, 32]);
    let input = input_file(&dir, &x);
    let run = |name: &str, extra: &[&str]| -> (Tensor, HashMap<String, String>) {
        let out = dir.join(format!("{name}.safetensors"));
        let args = [
            &[
                "run",
                "--model",
                model,
                "--synthetic-seed",
                "3",
                "--input",
                path_str(&input),
                "--output",
                path_str(&out),
            ][..],
            extra,
        ]
        .concat();
        assert_ok(&args);
        let meta = weights::read_metadata(&out).unwrap();
        (weights::read_tensor(&out, "output").unwrap(), meta)
    };
    let graph = resincept::models::build(model, 2, 32).unwrap();
    let depth = f16_rounding_depth(&optimize(&graph, &PassOptions::default()).unwrap());
    let bar = f16_rel_tol(depth);
    let (cpu32, _) = run("cpu32", &["--device", "cpu"]);
    let (cpu16, meta) = run("cpu16", &["--device", "cpu", "--precision", "f16"]);
    assert_eq!(meta["device"], "cpu (f16)");
    let moved = cpu16.max_abs_diff(&cpu32).unwrap();
    assert!(
        moved > 0.0 && moved <= bar * cpu32.max_abs(),
        "f16 moved the logits by {moved}, bar {bar} of {}",
        cpu32.max_abs()
    );
    assert_error(
        &[
            "run",
            "--model",
            model,
            "--input",
            "x",
            "--output",
            "y",
            "--f16-storage",
            "native",
        ],
        &[
            "--f16-storage native applies to --precision f16 only",
            "usage: resincept run",
        ],
    );
    assert_error(
        &["bench", "--model", model, "--precision", "f64"],
        &["'f64'", "--precision", "f32, f16"],
    );
    if gpu().is_none() {
        return;
    }
    let native = gpu().is_some_and(|c| c.supports(resincept::shaders::Storage::F16));
    let mut modes = vec![("f16-packed", "packed")];
    if native {
        modes.push(("f16", "native"));
    }
    for (storage, flag) in &modes {
        let (g16, meta) = run(storage, &["--precision", "f16", "--f16-storage", flag]);
        assert!(
            meta["device"].ends_with(&format!(", {storage})")),
            "{meta:?}"
        );
        assert_close(storage, &g16.data, &cpu16.data, TOLERANCE_F16);
    }
    // `auto` takes native where the device has SHADER_F16.
    let (_, meta) = run("auto", &["--precision", "f16"]);
    let auto = if native { "f16" } else { "f16-packed" };
    assert!(meta["device"].ends_with(&format!(", {auto})")), "{meta:?}");

    let bench = |extra: &[&str]| -> HashMap<String, Json> {
        let args = [
            &[
                "bench", "--model", model, "--size", "32", "--iters", "1", "--warmup", "0",
                "--json",
            ][..],
            extra,
        ]
        .concat();
        let out = assert_ok(&args);
        match parse_json(out.trim()) {
            Ok(Json::Obj(m)) => m,
            other => panic!("{other:?}: {out}"),
        }
    };
    let num = |m: &HashMap<String, Json>, k: &str| match &m[k] {
        Json::Num(x) => *x,
        other => panic!("{k}: {other:?}"),
    };
    let b32 = bench(&[]);
    assert_eq!(
        (&b32["precision"], &b32["storage"]),
        (&Json::Str("f32".into()), &Json::Str("f32".into()))
    );
    for (storage, flag) in &modes {
        let b16 = bench(&["--precision", "f16", "--f16-storage", flag]);
        assert_eq!(b16["precision"], Json::Str("f16".into()));
        assert_eq!(b16["storage"], Json::Str(storage.to_string()));
        for key in ["weight_bytes", "arena_bytes"] {
            let r = num(&b16, key) / num(&b32, key);
            assert!(r <= 0.55, "{storage}: {key} is {r} of f32's");
        }
        assert!(num(&b16, "device_bytes") < 0.55 * num(&b32, "device_bytes"));
    }

    let out = assert_ok(&[
        "check",
        "--model",
        model,
        "--size",
        "32",
        "--precision",
        "f16",
        "--layers",
    ]);
    assert!(
        out.contains("against the CPU reference executor in f16"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} + {}", TOLERANCE_F16.atol, TOLERANCE_F16.rtol)),
        "{out}"
    );
    assert!(
        out.contains("ok: all") && out.contains("outputs within tolerance"),
        "{out}"
    );

    let a = dir.join("a.png");
    gradient_png(&a, 40, 36);
    let top = |extra: &[&str]| {
        let args = [
            &[
                "classify",
                path_str(&a),
                "--model",
                CIFAR,
                "--synthetic-seed",
                "1",
                "--top",
                "1",
            ][..],
            extra,
        ]
        .concat();
        classify_rows(&assert_ok(&args), "a.png")[0].1
    };
    assert_eq!(top(&["--precision", "f16"]), top(&[]));

    let served = serve_start(&[
        "--model",
        model,
        "--synthetic-seed",
        "3",
        "--size",
        "32",
        "--max-batch-size",
        "2",
        "--precision",
        "f16",
        "--f16-storage",
        "packed",
    ]);
    let (_, shape, got) = infer(&served, model, "input", &x);
    assert_eq!(shape, vec![2, 1000]);
    assert_close("served f16", &got, &cpu16.data, TOLERANCE_F16);
}
