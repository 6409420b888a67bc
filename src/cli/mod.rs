//! The `resincept` command line: the commands and flags (clap, derive),
//! and the error type that turns every failure into one `error: …` line.
//!
//! clap gives per-command `--help`, typo suggestions (`--modle` → "a
//! similar argument exists: '--model'") and shell completions
//! (`resincept completions bash`). Its multi-line errors are folded by
//! [`CliError::from_clap`] into the binary's contract: one line, the
//! message, any tip, then the command's synopsis, exit status 2. Values
//! that need the model or another flag to be judged (a seed, `--split-k`,
//! `--device`) are parsed by the commands themselves, so their errors name
//! the flag and the value the same way.

pub mod bench;
pub mod check;
pub mod commands;
pub mod model;
#[cfg(feature = "serve")]
pub mod serve;

use clap::{Args, Parser, Subcommand};
use resincept::exec::gpu::F16Storage;
use resincept::exec::Precision;
use std::fmt;

/// A failure the binary reports as one `error: …` line on stderr.
#[derive(Debug)]
pub enum CliError {
    /// The command line itself is wrong (exit status 2).
    Usage(String),
    /// The command ran and failed: bad file, bad model, GPU error (exit status 1).
    Failed(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    /// A clap parse error as one usage line: clap's message, its tip
    /// (a suggested spelling), then the synopsis of the command at fault.
    pub fn from_clap(e: &clap::Error, argv: &[String]) -> CliError {
        use clap::error::ErrorKind;
        let names = command_names();
        let command = argv
            .iter()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .filter(|a| names.contains(a))
            .map(String::as_str);
        if matches!(
            e.kind(),
            ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            return CliError::Usage(format!(
                "no command given; usage: resincept <{}> [flags] (`resincept --help` explains each)",
                names.join("|")
            ));
        }
        // clap's rendering: `error: …` (continued on indented lines, e.g.
        // the missing arguments), `tip: …`, then `Usage:` and a pointer to
        // --help, which the synopsis replaces.
        let rendered = e.render().to_string();
        let mut parts: Vec<String> = Vec::new();
        for line in rendered.lines() {
            let line = line.trim();
            if line.starts_with("Usage:") || line.starts_with("For more information") {
                break;
            }
            if line.is_empty() {
                continue;
            }
            match (line.strip_prefix("error: "), line.strip_prefix("tip: ")) {
                (Some(m), _) | (_, Some(m)) => parts.push(m.to_string()),
                _ => match parts.last_mut() {
                    Some(last) => {
                        last.push(' ');
                        last.push_str(line);
                    }
                    None => parts.push(line.to_string()),
                },
            }
        }
        let usage = match (e.kind(), command) {
            (ErrorKind::InvalidSubcommand, _) | (_, None) => format!(
                "usage: resincept <{}> [flags] (`resincept --help` explains each)",
                names.join("|")
            ),
            (_, Some(c)) => format!("usage: {}", synopsis(c)),
        };
        parts.push(usage);
        CliError::Usage(parts.join("; "))
    }
}

impl fmt::Display for CliError {
    /// The message, folded onto one line (wgpu's validation messages span
    /// several).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (CliError::Usage(m) | CliError::Failed(m)) = self;
        let one_line = m.split_whitespace().collect::<Vec<_>>().join(" ");
        f.write_str(&one_line)
    }
}

impl From<resincept::Error> for CliError {
    fn from(e: resincept::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Result of a CLI step.
pub type CliResult<T> = std::result::Result<T, CliError>;

/// Every command, in the order `--help` lists them (`serve` only with the
/// `serve` feature).
pub fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// A command's one-line synopsis: shown by its `--help` and at the end of
/// each of its usage errors.
pub fn synopsis(command: &str) -> &'static str {
    match command {
        "info" => "resincept info",
        "models" => "resincept models",
        "run" => {
            "resincept run --model NAME|FILE.onnx [--weights FILE | --synthetic-seed N] \
             --input FILE --output FILE [--device gpu|cpu] [--precision f32|f16] \
             [--f16-storage auto|native|packed] [--transform-input]"
        }
        "classify" => {
            "resincept classify IMAGE... --model NAME|FILE.onnx [--weights FILE | \
             --synthetic-seed N] [--mean M,M,M] [--std S,S,S] [--resize N|none] [--crop C] \
             [--interpolation bilinear|bicubic] [--labels FILE] [--top K] [--device gpu|cpu] \
             [--precision f32|f16] [--f16-storage auto|native|packed] [--transform-input]"
        }
        "bench" => {
            "resincept bench --model NAME|FILE.onnx [--batch N] [--size S] [--iters N] \
             [--warmup N] [--precision f32|f16] [--f16-storage auto|native|packed] \
             [--weights FILE | --synthetic-seed N] \
             [--split-k auto|on|off|N] [--grouped-direct N] [--tall-tile N|off] [--profile] [--json]"
        }
        "check" => {
            "resincept check --model NAME|FILE.onnx [--batch N] [--size S | --input FILE] \
             [--weights FILE | --synthetic-seed N] [--precision f32|f16] \
             [--f16-storage auto|native|packed] [--transform-input] [--layers | --expect FILE]"
        }
        "serve" => {
            "resincept serve --model NAME|FILE.onnx (--weights FILE | --synthetic-seed N) \
             [--name SERVED_NAME] [--size S] [--max-batch-size N] [--max-queue-delay-us US] \
             [--max-queue-size Q] [--http-port P] [--grpc-port P] [--host ADDR] \
             [--max-body-bytes B] [--grace-period-s S] [--precision f32|f16] \
             [--f16-storage auto|native|packed]"
        }
        "completions" => "resincept completions bash|zsh|fish|elvish|powershell",
        _ => "resincept <command> [flags]",
    }
}

/// `resincept`: ResNet and Inception inference on any GPU.
#[derive(Debug, Parser)]
#[command(
    name = "resincept",
    version,
    about = "resincept: ResNet and Inception inference on any GPU (WGSL compute shaders via wgpu)",
    after_help = "`resincept COMMAND --help` shows a command's flags.\n\
                  environment: RESINCEPT_BACKEND=vulkan|metal|dx12|gl, \
                  RESINCEPT_ADAPTER=<name substring>",
    subcommand_required = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPU adapters wgpu sees, the one chosen, its features and limits.
    #[command(override_usage = synopsis("info"))]
    Info,
    /// List the models with parameters, multiply-adds and default input size.
    #[command(override_usage = synopsis("models"))]
    Models,
    /// Run a model on a tensor of a safetensors file: a zoo model on `input`
    /// (N,3,H,W), writing the logits as `output` (N,classes); an ONNX model on
    /// the tensor named as its input (or `input`), in its own shape and layout,
    /// writing each output under its own name.
    #[command(override_usage = synopsis("run"))]
    Run(RunArgs),
    /// Decode PNG/JPEG images, preprocess them as the model expects (the zoo's
    /// torchvision/timm transforms; an ONNX model's metadata or the flags), print
    /// the top-K classes with probabilities.
    #[command(override_usage = synopsis("classify"))]
    Classify(ClassifyArgs),
    /// Compile a model for the GPU, warm up, time it: median/min/max latency,
    /// images/s, GFLOP/s; --profile adds per-layer GPU times.
    #[command(override_usage = synopsis("bench"))]
    Bench(BenchArgs),
    /// Run a model on the GPU and on the CPU reference executor and compare
    /// them within the executor's tolerance; --layers compares every layer and
    /// names the first that differs; --expect compares both with PyTorch's own
    /// output (exit status 1 when anything differs).
    #[command(override_usage = synopsis("check"))]
    Check(CheckArgs),
    /// Serve a model over the Open Inference Protocol (KServe v2) on HTTP and
    /// gRPC, batching concurrent requests onto the GPU.
    #[cfg(feature = "serve")]
    #[command(override_usage = synopsis("serve"))]
    Serve(ServeArgs),
    /// Print a shell completion script (e.g. `resincept completions bash >
    /// /etc/bash_completion.d/resincept`).
    #[command(override_usage = synopsis("completions"))]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `--model`, and where the weights come from.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A zoo model's name (see `resincept models`), or an ONNX file
    /// (`path/model.onnx`, which carries its own weights).
    #[arg(long, value_name = "NAME|FILE.onnx")]
    pub model: String,
    /// Safetensors state_dict of a zoo model (scripts/export_weights.py; a
    /// fine-tuned head's width is read from it; bench and check: default
    /// synthetic weights).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<String>,
    /// Use synthetic-v1 weights with this seed instead (bench and check:
    /// default 1).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub synthetic_seed: Option<String>,
}

/// `resincept run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model and its weights.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Safetensors file holding tensor `input` (an ONNX model's: its input's
    /// own name, or `input`).
    #[arg(long, value_name = "FILE")]
    pub input: String,
    /// Safetensors file to write (tensor `output`; an ONNX model's outputs
    /// under their own names).
    #[arg(long, value_name = "FILE")]
    pub output: String,
    /// gpu (default) or cpu (the reference executor).
    #[arg(long, value_name = "gpu|cpu")]
    pub device: Option<String>,
    /// Precision of the weights and activations (both executors).
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// inception_v3: map ImageNet-normalised input as torchvision's
    /// transform_input=True does (its pretrained weights need it; on by itself
    /// when the weights' metadata says transform_input = true).
    #[arg(long)]
    pub transform_input: bool,
}

/// `resincept classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// PNG or JPEG files.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// The model and its weights.
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many classes to print per image.
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = positive)]
    pub top: usize,
    /// Per-channel mean subtracted after scaling pixels to [0, 1], three
    /// numbers (default: the zoo model's, or the ONNX model's metadata `mean`).
    #[arg(long, value_name = "M,M,M", allow_hyphen_values = true)]
    pub mean: Option<String>,
    /// Per-channel standard deviation divided by (default: the zoo model's, or
    /// the ONNX model's metadata `std`).
    #[arg(long, value_name = "S,S,S")]
    pub std: Option<String>,
    /// Resize the shorter side to N pixels first, or `none` (default: the zoo
    /// model's, or the ONNX model's metadata `resize`).
    #[arg(long, value_name = "N|none")]
    pub resize: Option<String>,
    /// Centre crop: the network's input height and width (default: the zoo
    /// model's, the ONNX model's metadata `crop`, or its fixed input size).
    #[arg(long, value_name = "C", value_parser = positive)]
    pub crop: Option<usize>,
    /// The resize's filter, PIL's: bilinear or bicubic (default: the zoo
    /// model's, the ONNX model's metadata `interpolation`, else bilinear).
    #[arg(long, value_name = "bilinear|bicubic")]
    pub interpolation: Option<String>,
    /// Class names, one per line, in logit order (default: ImageNet's or
    /// CIFAR-10's for the zoo's own heads, the ONNX model's metadata `labels`,
    /// else class indices).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<String>,
    /// gpu (default) or cpu.
    #[arg(long, value_name = "gpu|cpu")]
    pub device: Option<String>,
    /// Precision of the weights and activations (both executors).
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// inception_v3: torchvision's transform_input first (see `run`).
    #[arg(long)]
    pub transform_input: bool,
}

/// `resincept bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model and its weights (default synthetic, seed 1).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch size (default 1; an ONNX model's fixed batch).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub batch: Option<usize>,
    /// Input height and width (default: the zoo model's; an ONNX model's
    /// symbolic dims other than the batch).
    #[arg(long, value_name = "S", value_parser = positive)]
    pub size: Option<usize>,
    /// Timed runs.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = positive)]
    pub iters: usize,
    /// Untimed runs first.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = non_negative)]
    pub warmup: usize,
    /// Precision of the device's weights and activations.
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// auto (default: on for GPUs, off for CPU adapters), on or off: split the
    /// reduction of convs with too few output tiles to fill the GPU (256
    /// workgroups); or N: on, filling N workgroups (to tune for a GPU).
    #[arg(long, value_name = "auto|on|off|N")]
    pub split_k: Option<String>,
    /// Grouped convs with at most N output channels per group run as the
    /// direct conv, not the tiled one (default 16; 0: never; to tune for a GPU).
    #[arg(long, value_name = "N", value_parser = channel_count)]
    pub grouped_direct: Option<usize>,
    /// Pointwise (1×1) convs with a reduction of at least N channels take
    /// the 128×64 tile when there are 64 such tiles (default 256; off:
    /// always 64×64; to tune for a GPU).
    #[arg(long, value_name = "N|off")]
    pub tall_tile: Option<String>,
    /// Per-layer GPU time by PyTorch module name.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `resincept check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The model and its weights (default synthetic, seed 1).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch size of the synthetic input (default 1; an ONNX model's fixed
    /// batch).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub batch: Option<usize>,
    /// Height and width of the synthetic input (default: the zoo model's; an
    /// ONNX model's symbolic dims other than the batch).
    #[arg(long, value_name = "S", value_parser = positive)]
    pub size: Option<usize>,
    /// Safetensors file holding tensor `input` (N,3,H,W) instead (an ONNX
    /// model's: its input's own name, or `input`).
    #[arg(long, value_name = "FILE")]
    pub input: Option<String>,
    /// inception_v3: torchvision's transform_input first (see `run`).
    #[arg(long)]
    pub transform_input: bool,
    /// Safetensors file holding tensor `output` (an ONNX model's: its first
    /// output's own name, or `output`): PyTorch's logits for the same input and
    /// weights (export_weights.py --reference writes one), which both executors
    /// must meet within 1e-4·max|output|.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<String>,
    /// Compare every layer's output, not only the model's.
    #[arg(long)]
    pub layers: bool,
    /// Precision of both executors (f16: the GPU's f16 run against the CPU
    /// executor's f16 run, which rounds where the GPU stores).
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// `resincept serve`.
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model (a zoo name, or an ONNX file) and its weights.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The name clients use (default: the zoo name, or the ONNX file's stem).
    #[arg(long, value_name = "SERVED_NAME")]
    pub name: Option<String>,
    /// Input height and width (default: the zoo model's; an ONNX model's
    /// symbolic dims other than the batch).
    #[arg(long, value_name = "S", value_parser = positive)]
    pub size: Option<usize>,
    /// The batch the model is compiled for: concurrent requests are merged
    /// into GPU runs of at most this many images (an ONNX model with a fixed
    /// batch: that batch).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = positive)]
    pub max_batch_size: usize,
    /// How long a queued request may wait for others to join its batch (0:
    /// run what is queued now).
    #[arg(long, value_name = "US", default_value_t = 0)]
    pub max_queue_delay_us: u64,
    /// Requests that may wait for the GPU; beyond that, 503 with Retry-After
    /// (gRPC UNAVAILABLE).
    #[arg(long, value_name = "Q", default_value_t = 64, value_parser = positive)]
    pub max_queue_size: usize,
    /// HTTP port (REST, metrics, health).
    #[arg(long, value_name = "P", default_value_t = 8080)]
    pub http_port: u16,
    /// gRPC port.
    #[arg(long, value_name = "P", default_value_t = 8081)]
    pub grpc_port: u16,
    /// Address to bind (loopback by default; 0.0.0.0 to serve other machines).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub host: String,
    /// Largest request body (HTTP) or message (gRPC) accepted; larger: 413
    /// (gRPC RESOURCE_EXHAUSTED).
    #[arg(long, value_name = "B", default_value_t = 64 << 20, value_parser = positive)]
    pub max_body_bytes: usize,
    /// On SIGTERM or Ctrl-C, how long requests already accepted may take to
    /// finish before the process exits.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub grace_period_s: u64,
    /// Precision of the device's weights and activations.
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// `--precision` and `--f16-storage`, shared by run, classify, bench,
/// check and serve.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct PrecisionArgs {
    /// f32 (default), or f16: weights and activations stored as f16 on the
    /// device (half the bytes), arithmetic and sums in f32, one rounding
    /// per stored result; input and outputs stay f32. The CPU executor
    /// rounds at the same places.
    #[arg(long, value_name = "f32|f16", value_parser = precision_parser())]
    pub precision: Option<Precision>,
    /// With --precision f16: auto (default: native WGSL f16 where the
    /// device has SHADER_F16, packed elsewhere), native, or packed (pairs
    /// of f16 in u32 words: every device). `resincept info` says which
    /// auto takes.
    #[arg(long, value_name = "auto|native|packed", value_enum)]
    pub f16_storage: Option<F16StorageArg>,
}

/// The values of `--f16-storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum F16StorageArg {
    /// Native where the device has SHADER_F16, packed elsewhere.
    Auto,
    /// WGSL `f16` arrays (needs SHADER_F16).
    Native,
    /// Pairs of f16 in `u32` words (every device).
    Packed,
}

impl PrecisionArgs {
    /// The precision asked for (f32 unless `--precision f16`).
    pub fn precision(&self) -> Precision {
        self.precision.unwrap_or_default()
    }

    /// The f16 storage forced by `--f16-storage` (`None`: auto). A forced
    /// storage mode without `--precision f16` is a usage error of
    /// `command`.
    pub fn f16_storage(&self, command: &str) -> CliResult<Option<F16Storage>> {
        let forced = match self.f16_storage {
            None | Some(F16StorageArg::Auto) => return Ok(None),
            Some(F16StorageArg::Native) => F16Storage::Native,
            Some(F16StorageArg::Packed) => F16Storage::Packed,
        };
        if self.precision() == Precision::F32 {
            return Err(usage(
                command,
                &format!(
                    "--f16-storage {} applies to --precision f16 only",
                    forced.name()
                ),
            ));
        }
        Ok(Some(forced))
    }
}

/// clap value parser for `--precision` (clap lists the choices and
/// completes them).
fn precision_parser() -> impl clap::builder::TypedValueParser<Value = Precision> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["f32", "f16"])
        .map(|s| Precision::parse(&s).expect("one of the possible values"))
}

/// clap value parser: an integer ≥ 1.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("needs a positive integer, got `{s}`")),
    }
}

/// clap value parser: an integer ≥ 0.
fn non_negative(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| format!("needs a non-negative integer, got `{s}`"))
}

/// clap value parser for `--grouped-direct`.
fn channel_count(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| format!("needs a channel count (0: never), got `{s}`"))
}

/// Writes `s` to stdout. A closed pipe (`resincept models | head -1`) is
/// not an error; any other write failure is.
pub fn out(s: &str) -> CliResult<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(s.as_bytes()).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Failed(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// A usage error of `command`: `msg`, then the command's synopsis, on one line.
pub fn usage(command: &str, msg: &str) -> CliError {
    CliError::Usage(format!("{msg}; usage: {}", synopsis(command)))
}

/// Parses `argv` (with the program name first). `Ok(None)`: help or the
/// version was asked for and has been printed.
pub fn parse(argv: &[String]) -> CliResult<Option<Cli>> {
    use clap::error::ErrorKind;
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok(Some(cli)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            out(&e.render().to_string())?;
            Ok(None)
        }
        Err(e) => Err(CliError::from_clap(&e, argv)),
    }
}

/// `resincept completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> CliResult<()> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "resincept", &mut buf);
    out(&String::from_utf8_lossy(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        std::iter::once("resincept")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn usage_error(s: &str) -> String {
        match parse(&argv(s)) {
            Err(e @ CliError::Usage(_)) => e.to_string(),
            other => panic!("`{s}`: want a usage error, got {other:?}"),
        }
    }

    #[test]
    fn parses_values_switches_and_positionals() {
        let cli = parse(&argv("bench --model resnet50 --batch=4 --json"))
            .unwrap()
            .unwrap();
        let Command::Bench(b) = cli.command else {
            panic!()
        };
        assert_eq!(b.model.model, "resnet50");
        assert_eq!((b.batch, b.iters, b.warmup), (Some(4), 20, 3));
        assert!(b.json && !b.profile);
        let cli = parse(&argv("classify a.png --model x b.jpg"))
            .unwrap()
            .unwrap();
        let Command::Classify(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.images, ["a.png", "b.jpg"]);
        assert_eq!(c.top, 5);
    }

    #[test]
    fn rejects_bad_command_lines_in_one_line_with_the_synopsis() {
        for bad in [
            "bench --nope",
            "bench --model",
            "bench --model a --model b",
            "bench --json=1",
            "bench stray",
            "bench -x",
            "bench --model a --batch 0",
        ] {
            let e = usage_error(bad);
            assert!(e.contains("usage: resincept bench --model NAME"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(usage_error("frobnicate").contains("usage: resincept <info|models|run"));
        assert!(usage_error("").contains("no command given"));
        let e = usage_error("classify --model x");
        assert!(e.contains("not provided: <IMAGE>"), "{e}");
        assert!(e.contains("usage: resincept classify"), "{e}");
        // A typo gets clap's suggestion.
        let e = usage_error("run --modle x");
        assert!(e.contains("'--model'"), "{e}");
        let e = usage_error("bech");
        assert!(e.contains("'bench'"), "{e}");
    }

    #[cfg(feature = "serve")]
    #[test]
    fn serve_flags_have_their_defaults() {
        let cli = parse(&argv("serve --model resnet18 --synthetic-seed 1"))
            .unwrap()
            .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!((s.http_port, s.grpc_port), (8080, 8081));
        assert_eq!((s.max_batch_size, s.max_queue_delay_us), (8, 0));
        assert_eq!(s.grace_period_s, 30);
    }

    #[test]
    fn completions_cover_every_command() {
        let mut want = vec!["info", "models", "run", "classify", "bench", "check"];
        if cfg!(feature = "serve") {
            want.push("serve");
        }
        want.push("completions");
        assert_eq!(command_names(), want);
        use clap::CommandFactory;
        let mut buf = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "resincept",
            &mut buf,
        );
        let script = String::from_utf8(buf).unwrap();
        assert!(script.contains("--split-k"));
        assert_eq!(
            script.contains("--max-queue-delay-us"),
            cfg!(feature = "serve")
        );
    }

    #[test]
    fn errors_fold_to_one_line() {
        let e = CliError::Failed("a\n  b\n\tc".into());
        assert_eq!(e.to_string(), "a b c");
    }
}
