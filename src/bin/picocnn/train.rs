//! `picocnn train`: a zoo model trained on MNIST-style IDX files or a
//! folder of PNGs, written as a checkpoint.

use crate::common::{load_data, Arch, At};
use anyhow::{bail, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use picocnn::augment::Pipeline;
use picocnn::train::{checkpoint, Net, Optimizer, Schedule, TrainConfig, Trainer};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum)]
enum Opt {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sched {
    Constant,
    Cosine,
    Step,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The architecture.
    #[arg(long, value_enum)]
    model: Arch,
    /// A folder with MNIST IDX files (raw or .gz), or with `train/` and
    /// `test/` folders of class sub-folders of PNGs.
    #[arg(long)]
    data: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Checkpoint to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Images per step.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = Opt::Adam)]
    optimizer: Opt,
    /// Weight decay (AdamW, SGD).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Sched::Constant)]
    schedule: Sched,
    /// Label smoothing of the cross-entropy.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Augment training images on the fly: `digits`, `none`, or steps like
    /// `digits; noise(p=0.3, sigma=0.05); cutmix(p=0.5, alpha=1)`.
    #[arg(long, default_value = "none")]
    augment: Pipeline,
    /// JSON-lines log, one object per epoch.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Training-curve PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Continue from this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from this checkpoint's weights (epochs count from zero), e.g.
    /// to fine-tune a float model with `--qat`.
    #[arg(long, conflicts_with = "resume")]
    from: Option<PathBuf>,
    /// Quantization-aware training: int8 rounding of weights and
    /// activations in the forward pass, gradients straight through.
    #[arg(long)]
    qat: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    if !(a.lr.is_finite() && a.lr > 0.0) {
        bail!("--lr {} must be a positive number", a.lr);
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        bail!("--label-smoothing {} must be in [0, 1)", a.label_smoothing);
    }
    if !(a.weight_decay >= 0.0 && a.weight_decay.is_finite()) {
        bail!(
            "--weight-decay {} must be a non-negative number",
            a.weight_decay
        );
    }
    let (train_set, test_set) = load_data(&a.data)?;
    let mut net = a.model.build(&train_set, a.seed)?;
    let mut done = 0usize;
    // The weights of a checkpoint of this architecture, and its metadata.
    let load = |net: &mut Net, ckpt: &Path| -> Result<HashMap<String, String>> {
        let meta = checkpoint::load(net, ckpt)?;
        match meta.get("model").map(String::as_str) {
            Some(m) if m == a.model.name() => Ok(meta),
            other => bail!(
                "{}: a checkpoint of {}, not {}",
                ckpt.display(),
                other.unwrap_or("an unknown model"),
                a.model.name()
            ),
        }
    };
    if let Some(ckpt) = &a.from {
        load(&mut net, ckpt)?;
    }
    if let Some(ckpt) = &a.resume {
        let meta = load(&mut net, ckpt)?;
        done = meta.get("epochs").and_then(|e| e.parse().ok()).unwrap_or(0);
        if done >= a.epochs as usize {
            bail!(
                "{}: already trained for {done} epochs (--epochs {})",
                ckpt.display(),
                a.epochs
            );
        }
    }
    let optimizer = match a.optimizer {
        Opt::Adam => Optimizer::adam(),
        Opt::Adamw => Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: a.weight_decay,
        },
        Opt::Sgd => Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: a.weight_decay,
        },
    };
    let schedule = match a.schedule {
        Sched::Constant => Schedule::Constant,
        Sched::Cosine => Schedule::Cosine,
        Sched::Step => Schedule::Step {
            every: (a.epochs as usize / 3).max(1),
            gamma: 0.1,
        },
    };
    let config = TrainConfig {
        epochs: a.epochs as usize,
        batch_size: a.batch as usize,
        learning_rate: a.lr,
        optimizer,
        schedule,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        threads: a.threads,
        qat: a.qat,
        ..TrainConfig::default()
    };
    eprintln!(
        "{}: {} parameters, {} MACs; {} training and {} test images of {}",
        a.model.name(),
        net.param_count(),
        net.macs(),
        train_set.len(),
        test_set.len(),
        train_set.shape()
    );
    let mut log = match &a.log {
        Some(p) => Some(std::fs::File::create(p).at(p.display())?),
        None => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    let mut failure = None;
    let total = a.epochs;
    let trainer = if a.augment == Pipeline::new() {
        Trainer::new(config)
    } else {
        Trainer::new(config).augment(a.augment.clone())
    };
    trainer.fit_from(
        &mut net,
        &train_set,
        &test_set,
        done,
        &mut |step, steps, loss| {
            if step == 1 {
                bar.reset();
                bar.set_length(steps as u64);
            }
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.4}"));
        },
        &mut |r| {
            bar.set_prefix(format!("{}/{total}", r.epoch + 1));
            bar.println(format!(
                "epoch {}/{total}: loss {:.4}, train {:.2} %, test {:.2} %, {:.2} s",
                r.epoch,
                r.train_loss,
                100.0 * r.train_accuracy,
                100.0 * r.test_accuracy,
                r.seconds
            ));
            if let Some(f) = log.as_mut() {
                let line = serde_json::json!({
                    "epoch": r.epoch,
                    "train_loss": r.train_loss,
                    "train_accuracy": r.train_accuracy,
                    "test_accuracy": r.test_accuracy,
                    "seconds": r.seconds,
                });
                if let Err(e) = writeln!(f, "{line}") {
                    failure.get_or_insert(format!("log: {e}"));
                }
            }
            reports.push(*r);
        },
    );
    bar.finish_and_clear();
    if let Some(e) = failure {
        bail!(e);
    }
    let mut meta = HashMap::new();
    meta.insert("model".to_string(), a.model.name().to_string());
    meta.insert("epochs".to_string(), a.epochs.to_string());
    meta.insert("input".to_string(), train_set.shape().to_string());
    meta.insert("classes".to_string(), train_set.classes().to_string());
    checkpoint::save(&net, &a.out, meta)?;
    if let Some(p) = &a.plot {
        crate::plot::training_curve(p, &reports)?;
    }
    if let Some(last) = reports.last() {
        eprintln!(
            "wrote {}: test accuracy {:.2} % after {} epochs",
            a.out.display(),
            100.0 * last.test_accuracy,
            last.epoch
        );
    }
    Ok(())
}
