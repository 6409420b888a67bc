//! The `resincept` command line.
//!
//! ```text
//! resincept info
//! resincept models
//! resincept run --model NAME|FILE.onnx [--weights FILE | --synthetic-seed N] --input FILE --output FILE [--device gpu|cpu]
//! resincept classify IMAGE... --model NAME|FILE.onnx [--weights FILE] [--mean M,M,M] [--std S,S,S] [--resize N|none] [--crop C] [--interpolation bilinear|bicubic] [--labels FILE] [--top K] [--device gpu|cpu]
//! resincept bench --model NAME|FILE.onnx [--batch N] [--size S] [--iters N] [--precision f32] [--split-k auto|on|off|N] [--grouped-direct N] [--profile] [--json]
//! resincept check --model NAME|FILE.onnx [--batch N] [--size S | --input FILE] [--weights FILE | --synthetic-seed N] [--layers | --expect FILE]
//! resincept serve --model NAME|FILE.onnx [--weights FILE | --synthetic-seed N] [--max-batch-size N] [--http-port P] [--grpc-port P] ...
//! resincept completions bash|zsh|fish|elvish|powershell
//! ```
//!
//! `--model` is a zoo name (`resincept models`) or an ONNX file, which
//! carries its weights and keeps its own input and output names, shapes
//! and layouts (`run` reads the input tensor under the model's input name
//! or `input` and writes each output under its own name). A zoo
//! checkpoint's classifier sets the head's width (a fine-tuned head).
//!
//! Contract: on success, exit status 0 and results on stdout (progress on
//! stderr). On failure, exactly one line `error: …` on stderr naming the
//! file, key, flag or limit at fault, and status 2 for a bad command line
//! or 1 for anything else; that includes sizes no host or device can hold,
//! which are refused before anything is allocated. The binary never shows
//! a panic message: should a bug panic, the hook prints one `error:
//! internal error …` line and the status is 101.

mod cli;

use cli::{CliError, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_device_select_layer();
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let line = format!("{msg}{at}");
        eprintln!(
            "error: internal error (a bug in resincept, please report it): {}",
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }));
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match std::panic::catch_unwind(|| dispatch(&argv)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(_) => ExitCode::from(101),
    }
}

/// Mesa's Vulkan device-select layer (an implicit layer that every
/// `mesa-vulkan-drivers` install loads) asks the Wayland compositor which
/// GPU drives the display, each time wgpu enumerates adapters. Without
/// `XDG_RUNTIME_DIR` (a headless server, a container, an ssh session)
/// there is no compositor to ask and libwayland prints `error:
/// XDG_RUNTIME_DIR is invalid or not set` four times, which breaks the
/// one-line error contract and reads like resincept failing. resincept
/// ranks adapters itself, so the layer's answer is not needed: turn it off
/// then, unless the user set `NODEVICE_SELECT` either way. Done first in
/// `main`, before any thread exists, so changing the environment is sound.
fn quiet_device_select_layer() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn dispatch(argv: &[String]) -> Result<(), CliError> {
    let Some(cli) = cli::parse(argv)? else {
        return Ok(()); // --help or --version, printed
    };
    match cli.command {
        Command::Info => cli::commands::info(),
        Command::Models => cli::commands::models(),
        Command::Run(a) => cli::commands::run(&a),
        Command::Classify(a) => cli::commands::classify(&a),
        Command::Bench(a) => cli::bench::bench(&a),
        Command::Check(a) => cli::check::check(&a),
        #[cfg(feature = "serve")]
        Command::Serve(a) => cli::serve::serve(&a),
        Command::Completions { shell } => cli::completions(shell),
    }
}
