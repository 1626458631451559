//! `picocnn`: train networks on the host, quantize and export them, and run
//! the exported blobs through the no_std interpreter.
//!
//! ```text
//! picocnn train --model lenet5 --data data/mnist --out lenet5.safetensors
//!               [--recipe best|keras] [--epochs N] [--seed N] [--threads N] [--lr X] [--batch N] [--optimizer adam|adamw|sgd]
//!               [--schedule constant|cosine|step] [--label-smoothing X] [--augment SPEC]
//!               [--log train.jsonl] [--plot curve.png] [--resume ckpt.safetensors]
//!               [--from float.safetensors --qat]
//! picocnn augment --data data/mnist --preview grid.png [--augment SPEC] [--seed N]
//! picocnn export --model ckpt.safetensors --data data/mnist --precision int8|f16|f32
//!                --out m.pcnn [--rust m.rs] [--calibration N] [--percentile P]
//! picocnn import model.tflite|model.onnx --out m.pcnn [--rust m.rs] [--name N]
//!                [--labels labels.txt] [--normalise SCALE,OFFSET]
//! picocnn run --model m.pcnn --input x.npy --output y.npy [--threads N]
//! picocnn eval --model m.pcnn --data data/mnist [--json] [--confusion c.png]
//! picocnn finetune --model m.pcnn --data DIR --out tuned.pcnn [--epochs N] [--lr X]
//!                  [--seed N] [--limit N]
//! picocnn finetune-f32 --model ckpt.safetensors --data DIR --out tuned.safetensors
//!                      [--epochs N] [--lr X] [--limit N] [--train-last N] [--train-biases]
//! picocnn restyle --data data/mnist --out DIR [--shear X] [--thicken N] [--tune N]
//! picocnn inspect m.pcnn [--json]
//! picocnn predict --model m.pcnn digit.png ...
//! picocnn send --port /dev/ttyACM0 [--baud 115200] digit.png ... | --dir folder
//! ```
//!
//! One module per subcommand; each returns an [`anyhow::Error`] whose
//! message is the one line printed after `error: ` (exit code 1). Bad
//! flags are clap's first paragraph on one line (exit code 2).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `println!` that ends the program quietly when stdout is gone (a closed
/// pipe, as with `| head`), the way command-line tools do, instead of a
/// panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

mod augment;
mod bench;
mod common;
mod eval;
mod export;
mod finetune;
mod finetune_f32;
mod import;
mod inspect;
mod plot;
mod predict;
mod restyle;
mod run;
mod send;
mod train;

#[derive(Parser)]
#[command(
    name = "picocnn",
    version,
    about = "Convolutional networks for microcontrollers: train, augment, quantize, export, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model on MNIST-style IDX files or a folder of PNGs.
    Train(train::TrainArgs),
    /// Show what an augmentation pipeline does: a PNG grid with originals
    /// in the first column and augmented variants beside them.
    Augment(augment::AugmentArgs),
    /// Write a trained checkpoint as a model blob (and Rust source).
    Export(export::ExportArgs),
    /// A model trained elsewhere (TensorFlow Lite or ONNX; int8 or float32)
    /// as a model blob (and Rust source).
    Import(import::ImportArgs),
    /// Run a model blob on the test images through the no_std interpreter:
    /// accuracy, per-class accuracy, confusion matrix.
    Eval(eval::EvalArgs),
    /// Fine-tune an int8 model's last dense layer with the integer
    /// fine-tuner a board runs; accuracy before and after; the tuned blob.
    Finetune(finetune::FinetuneArgs),
    /// The float reference of `finetune`: a checkpoint's last layers
    /// fine-tuned with plain SGD, one image per step, in order.
    FinetuneF32(finetune_f32::FinetuneF32Args),
    /// A data set's test images in one fixed writer's style (slanted,
    /// thickened), split into images to tune on and held-out ones.
    Restyle(restyle::RestyleArgs),
    /// Per-layer op, output shape, parameters, multiply-accumulates and
    /// bytes of a model blob.
    Inspect(inspect::InspectArgs),
    /// Classify PNG images with a model blob: class, probability, top 3.
    Predict(predict::PredictArgs),
    /// Raw tensors through a model blob: NumPy `.npy` inputs (batch first,
    /// NHWC, the model's input type) to `.npy` outputs, to compare with
    /// another runtime on the same tensors.
    Run(run::RunArgs),
    /// Send images to a board over a serial port and print its answers
    /// (protocol: docs/protocol.md).
    Send(send::SendArgs),
    /// Latency of one image (median, p90, p99) and throughput of batches on
    /// several threads, with the kernel path this build runs.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: what is wrong with the command (clap's first
            // paragraph, joined), without the usage block.
            let msg = e.to_string();
            let first: Vec<&str> = msg
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{}", first.join(" "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Augment(a) => augment::run(a),
        Command::Export(a) => export::run(a),
        Command::Import(a) => import::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Finetune(a) => finetune::run(a),
        Command::FinetuneF32(a) => finetune_f32::run(a),
        Command::Restyle(a) => restyle::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Run(a) => run::run(a),
        Command::Send(a) => send::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{e}`, not `{e:#}`: the message alone, as one line.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
