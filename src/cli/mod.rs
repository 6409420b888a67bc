//! The `resincept` command line: argument parsing, usage text, and the
//! error type that turns every failure into one `error: …` line.
//!
//! The parser is hand-rolled (a command table of flag names, a few dozen
//! lines): the interface is six commands with long flags only, so a
//! dependency would save little. Flags take `--name value` or
//! `--name=value`; a flag given twice, an unknown flag, a missing value or
//! a stray positional argument is a [`CliError::Usage`] whose one line ends
//! with the command's synopsis.

pub mod bench;
pub mod check;
pub mod commands;
pub mod json;

use std::collections::HashMap;
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

/// One command: its name, one-line synopsis, description and flags.
pub struct Command {
    /// The word after `resincept`.
    pub name: &'static str,
    /// One-line synopsis, shown in usage errors.
    pub synopsis: &'static str,
    /// What it does (for `--help`).
    pub about: &'static str,
    /// `(flag without dashes, takes a value, help)`.
    pub flags: &'static [Flag],
    /// Positional arguments: `(min, max)` count.
    pub positional: (usize, usize),
}

/// A flag: `(name without dashes, takes a value, help)`.
pub type Flag = (&'static str, bool, &'static str);

/// `--model`, which every model command takes.
const MODEL: Flag = ("model", true, "model name (see `resincept models`)");

/// `--weights` where synthetic weights are the default (`bench`, `check`).
const WEIGHTS_OR_SYNTHETIC: Flag = (
    "weights",
    true,
    "safetensors state_dict (default: synthetic weights)",
);

/// `--synthetic-seed` where synthetic weights are the default.
const SYNTHETIC_SEED: Flag = (
    "synthetic-seed",
    true,
    "seed of the synthetic weights (default 1)",
);

/// Every command, in the order `--help` lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "info",
        synopsis: "resincept info",
        about: "list the GPU adapters wgpu sees, the one chosen, its features and limits",
        flags: &[],
        positional: (0, 0),
    },
    Command {
        name: "models",
        synopsis: "resincept models",
        about: "list the models with parameters, multiply-adds and default input size",
        flags: &[],
        positional: (0, 0),
    },
    Command {
        name: "run",
        synopsis: "resincept run --model NAME (--weights FILE | --synthetic-seed N) \
                   --input FILE --output FILE [--device gpu|cpu] [--transform-input]",
        about: "run a model on the f32 tensor `input` (N,3,H,W) of a safetensors file; \
                write the logits as tensor `output` (N,classes)",
        flags: &[
            MODEL,
            (
                "weights",
                true,
                "safetensors state_dict (scripts/export_weights.py)",
            ),
            (
                "synthetic-seed",
                true,
                "use synthetic-v1 weights with this seed instead",
            ),
            ("input", true, "safetensors file holding tensor `input`"),
            (
                "output",
                true,
                "safetensors file to write (tensor `output`)",
            ),
            (
                "device",
                true,
                "gpu (default) or cpu (the reference executor)",
            ),
            (
                "transform-input",
                false,
                "inception_v3: map ImageNet-normalised input as torchvision's \
                 transform_input=True does (its pretrained weights need it; on by \
                 itself when the weights' metadata says transform_input = true)",
            ),
        ],
        positional: (0, 0),
    },
    Command {
        name: "classify",
        synopsis: "resincept classify IMAGE... --model NAME (--weights FILE | \
                   --synthetic-seed N) [--top K] [--device gpu|cpu] [--transform-input]",
        about: "decode PNG/JPEG images, preprocess as torchvision does for the model, \
                print the top-K classes with probabilities",
        flags: &[
            MODEL,
            (
                "weights",
                true,
                "safetensors state_dict (scripts/export_weights.py)",
            ),
            (
                "synthetic-seed",
                true,
                "synthetic-v1 weights (meaningless classes; for testing)",
            ),
            (
                "top",
                true,
                "how many classes to print per image (default 5)",
            ),
            ("device", true, "gpu (default) or cpu"),
            (
                "transform-input",
                false,
                "inception_v3: map ImageNet-normalised input as torchvision's \
                 transform_input=True does (its pretrained weights need it; on by \
                 itself when the weights' metadata says transform_input = true)",
            ),
        ],
        positional: (1, usize::MAX),
    },
    Command {
        name: "bench",
        synopsis: "resincept bench --model NAME [--batch N] [--size S] [--iters N] \
                   [--warmup N] [--precision f32] [--weights FILE | --synthetic-seed N] \
                   [--split-k auto|on|off|N] [--grouped-direct N] [--profile] [--json]",
        about: "compile a model for the GPU, warm up, time it: median/min/max latency, \
                images/s, GFLOP/s; --profile adds per-layer GPU times",
        flags: &[
            MODEL,
            ("batch", true, "batch size (default 1)"),
            (
                "size",
                true,
                "input height and width (default: the model's)",
            ),
            ("iters", true, "timed runs (default 20)"),
            ("warmup", true, "untimed runs first (default 3)"),
            ("precision", true, "f32 (the only one for now)"),
            (
                "split-k",
                true,
                "auto (default: on for GPUs, off for CPU adapters), on or off: split \
                 the reduction of convs with too few output tiles to fill the GPU \
                 (256 workgroups); or N: on, filling N workgroups (to tune for a GPU)",
            ),
            (
                "grouped-direct",
                true,
                "grouped convs with at most N output channels per group run as the \
                 direct conv, not the tiled one (default 16; 0: never; to tune for a GPU)",
            ),
            WEIGHTS_OR_SYNTHETIC,
            SYNTHETIC_SEED,
            (
                "profile",
                false,
                "per-layer GPU time by PyTorch module name",
            ),
            ("json", false, "print one JSON object instead of the table"),
        ],
        positional: (0, 0),
    },
    Command {
        name: "check",
        synopsis: "resincept check --model NAME [--batch N] [--size S | --input FILE] \
                   [--weights FILE | --synthetic-seed N] [--transform-input] \
                   [--layers | --expect FILE]",
        about: "run a model on the GPU and on the CPU reference executor and compare \
                them within the executor's tolerance; --layers compares every layer \
                and names the first that differs; --expect compares both with \
                PyTorch's own output (exit status 1 when anything differs)",
        flags: &[
            MODEL,
            (
                "batch",
                true,
                "batch size of the synthetic input (default 1)",
            ),
            (
                "size",
                true,
                "height and width of the synthetic input (default: the model's)",
            ),
            (
                "input",
                true,
                "safetensors file holding tensor `input` (N,3,H,W) instead",
            ),
            WEIGHTS_OR_SYNTHETIC,
            SYNTHETIC_SEED,
            (
                "transform-input",
                false,
                "inception_v3: torchvision's transform_input first (see `run`)",
            ),
            (
                "expect",
                true,
                "safetensors file holding tensor `output`: PyTorch's logits for the \
                 same input and weights (export_weights.py --reference writes one), \
                 which both executors must meet within 1e-4·max|output|",
            ),
            (
                "layers",
                false,
                "compare every layer's output, not only the model's",
            ),
        ],
        positional: (0, 0),
    },
];

/// Parsed arguments of one command.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments in order.
    pub positional: Vec<String>,
    values: HashMap<&'static str, String>,
    switches: Vec<&'static str>,
}

impl Args {
    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name`, or a usage error saying it is required.
    pub fn required(&self, cmd: &Command, name: &str) -> CliResult<&str> {
        self.value(name)
            .ok_or_else(|| usage(cmd, &format!("missing --{name}")))
    }

    /// True when the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// `--name` parsed as a positive integer, or `default` when absent.
    pub fn positive(&self, cmd: &Command, name: &str, default: usize) -> CliResult<usize> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(usage(
                    cmd,
                    &format!("--{name} needs a positive integer, got `{v}`"),
                )),
            },
        }
    }
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

/// A usage error: `msg`, then the command's synopsis, on one line.
pub fn usage(cmd: &Command, msg: &str) -> CliError {
    CliError::Usage(format!("{msg}; usage: {}", cmd.synopsis))
}

/// Looks up a command by name.
pub fn find_command(name: &str) -> CliResult<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        CliError::Usage(format!(
            "unknown command `{name}`; usage: resincept <{}> [flags] (`resincept --help` explains each)",
            names.join("|")
        ))
    })
}

/// Parses `argv` (after the command word) against `cmd`'s flags.
/// `Ok(None)` means `--help` was asked for.
pub fn parse(cmd: &'static Command, argv: &[String]) -> CliResult<Option<Args>> {
    let mut args = Args::default();
    let mut it = argv.iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            args.positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(usage(cmd, &format!("unknown flag `{arg}`")));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(name, takes_value, _)) = cmd.flags.iter().find(|f| f.0 == name) else {
            return Err(usage(
                cmd,
                &format!("unknown flag `--{name}` for `resincept {}`", cmd.name),
            ));
        };
        if args.values.contains_key(name) || args.switches.contains(&name) {
            return Err(usage(cmd, &format!("--{name} given twice")));
        }
        if takes_value {
            let v = match inline {
                Some(v) => v,
                None => match it.next() {
                    Some(v) if !v.starts_with("--") => v.clone(),
                    _ => return Err(usage(cmd, &format!("--{name} needs a value"))),
                },
            };
            args.values.insert(name, v);
        } else {
            if inline.is_some() {
                return Err(usage(cmd, &format!("--{name} takes no value")));
            }
            args.switches.push(name);
        }
    }
    let (min, max) = cmd.positional;
    if args.positional.len() > max {
        let extra = &args.positional[max];
        return Err(usage(cmd, &format!("unexpected argument `{extra}`")));
    }
    if args.positional.len() < min {
        return Err(usage(cmd, "missing argument"));
    }
    Ok(Some(args))
}

/// The full help text (`resincept --help`).
pub fn help() -> String {
    let mut s = String::from(
        "resincept: ResNet and Inception inference on any GPU (WGSL compute shaders via wgpu)\n\n\
         commands:\n",
    );
    for c in COMMANDS {
        s += &format!("  {:<9} {}\n", c.name, c.about);
    }
    s += "\n`resincept COMMAND --help` shows a command's flags.\n\
          environment: RESINCEPT_BACKEND=vulkan|metal|dx12|gl, \
          RESINCEPT_ADAPTER=<name substring>\n";
    s
}

/// A command's help text (`resincept COMMAND --help`).
pub fn command_help(cmd: &Command) -> String {
    let mut s = format!("{}\n\n{}\n", cmd.synopsis, cmd.about);
    if !cmd.flags.is_empty() {
        s += "\nflags:\n";
        for (name, takes_value, help) in cmd.flags {
            let flag = if *takes_value {
                format!("--{name} V")
            } else {
                format!("--{name}")
            };
            s += &format!("  {flag:<20} {help}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_values_switches_and_positionals() {
        let bench = find_command("bench").unwrap();
        let a = parse(bench, &argv("--model resnet50 --batch=4 --json"))
            .unwrap()
            .unwrap();
        assert_eq!(a.value("model"), Some("resnet50"));
        assert_eq!(a.positive(bench, "batch", 1).unwrap(), 4);
        assert_eq!(a.positive(bench, "iters", 20).unwrap(), 20);
        assert!(a.switch("json") && !a.switch("profile"));
        let classify = find_command("classify").unwrap();
        let a = parse(classify, &argv("a.png --model x b.jpg"))
            .unwrap()
            .unwrap();
        assert_eq!(a.positional, ["a.png", "b.jpg"]);
    }

    #[test]
    fn rejects_bad_command_lines() {
        let bench = find_command("bench").unwrap();
        for bad in [
            "--nope",
            "--model",
            "--model a --model b",
            "--json=1",
            "stray",
            "-x",
        ] {
            let e = parse(bench, &argv(bad)).unwrap_err();
            assert!(matches!(e, CliError::Usage(_)), "{bad}");
            assert!(e.to_string().contains("usage: resincept bench"), "{e}");
        }
        let a = parse(bench, &argv("--batch 0")).unwrap().unwrap();
        assert!(a.positive(bench, "batch", 1).is_err());
        assert!(find_command("frobnicate").is_err());
        let classify = find_command("classify").unwrap();
        assert!(parse(classify, &argv("--model x")).is_err());
    }

    #[test]
    fn help_is_not_an_error() {
        let run = find_command("run").unwrap();
        assert!(parse(run, &argv("--help")).unwrap().is_none());
    }

    #[test]
    fn errors_fold_to_one_line() {
        let e = CliError::Failed("a\n  b\n\tc".into());
        assert_eq!(e.to_string(), "a b c");
    }
}
