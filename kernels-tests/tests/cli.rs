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

use kernels_tests::gpu;
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

/// `serve` refuses what the engine cannot do yet with one line, before
/// opening a port or touching the GPU.
#[test]
fn serve_refuses_what_it_cannot_serve_yet() {
    assert_error(
        &[
            "serve",
            "--model",
            "resnet18",
            "--synthetic-seed",
            "1",
            "--precision",
            "f16",
        ],
        &["--precision f16", "no f16 path yet"],
    );
    assert_error(
        &["serve", "--model", "net.onnx", "--synthetic-seed", "1"],
        &["net.onnx", "ONNX files is not implemented yet"],
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
        &["bench", "--model", "resnet18", "--precision", "f16"],
        &["--precision `f16`", "only f32"],
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
    assert!(num("lower_bound_bytes") <= num("arena_bytes"));
    assert!(num("arena_bytes") <= num("values_bytes"));
    assert_eq!(m["split_k"], Json::Str("auto".into()));
    assert_eq!(m["grouped_direct_max"], Json::Num(16.0));

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
