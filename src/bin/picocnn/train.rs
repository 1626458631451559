//! `picocnn train`: a zoo model trained on MNIST-style IDX files or a
//! folder of PNGs, written as a checkpoint.

use crate::common::{load_data, Arch, At};
use anyhow::{bail, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use picocnn::augment::Pipeline;
use picocnn::train::{checkpoint, EpochReport, Net, Optimizer, Schedule, TrainConfig, Trainer};
use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
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

#[derive(Clone, Copy, ValueEnum)]
enum Recipe {
    Best,
    Keras,
}

/// What a recipe sets; a flag given on the command line wins.
#[derive(Clone)]
struct Settings {
    epochs: u32,
    lr: f32,
    batch: u32,
    optimizer: Opt,
    weight_decay: f32,
    schedule: Sched,
    label_smoothing: f32,
    augment: Pipeline,
}

impl Recipe {
    /// The recipe's settings for `model`: `best` is the most accurate measured
    /// on the shipped digits (README, `tools/train_zoo.sh`), `keras` the
    /// recipe of the Keras comparison.
    fn settings(self, model: Arch) -> Settings {
        let keras = Settings {
            epochs: 10,
            lr: 1e-3,
            batch: 64,
            optimizer: Opt::Adam,
            weight_decay: 0.0,
            schedule: Sched::Constant,
            label_smoothing: 0.0,
            augment: Pipeline::new(),
        };
        match (self, model) {
            (Recipe::Keras, _) | (Recipe::Best, Arch::AlexnetMini) => keras,
            (Recipe::Best, Arch::Lenet5) => Settings {
                epochs: 30,
                optimizer: Opt::Adamw,
                weight_decay: 1e-4,
                schedule: Sched::Cosine,
                label_smoothing: 0.1,
                augment: Pipeline::digits(),
                ..keras
            },
            (Recipe::Best, Arch::VggMini) => Settings {
                schedule: Sched::Cosine,
                ..keras
            },
            (Recipe::Best, Arch::InceptionMini) => Settings {
                epochs: 20,
                lr: 3e-3,
                schedule: Sched::Cosine,
                label_smoothing: 0.1,
                ..keras
            },
            (Recipe::Best, Arch::Resnet8) => Settings { epochs: 8, ..keras },
        }
    }
}

impl TrainArgs {
    /// The recipe's settings with the flags given on top.
    fn settings(&self) -> Settings {
        let r = self.recipe.settings(self.model);
        Settings {
            epochs: self.epochs.unwrap_or(r.epochs),
            lr: self.lr.unwrap_or(r.lr),
            batch: self.batch.unwrap_or(r.batch),
            optimizer: self.optimizer.unwrap_or(r.optimizer),
            weight_decay: self.weight_decay.unwrap_or(r.weight_decay),
            schedule: self.schedule.unwrap_or(r.schedule),
            label_smoothing: self.label_smoothing.unwrap_or(r.label_smoothing),
            augment: self.augment.clone().unwrap_or(r.augment),
        }
    }
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
    /// The training recipe; any flag below given on the command line
    /// overrides it. `best`: the most accurate recipe measured for the model
    /// on the shipped digits (LeNet-5: AdamW with weight decay 1e-4, cosine
    /// schedule, label smoothing 0.1, digit augmentation, 30 epochs: 98.75 %).
    /// `keras`: Adam at 1e-3, constant rate, batches of 64, 10 epochs, no
    /// augmentation, as Keras's MNIST example (LeNet-5: 97.2 %).
    #[arg(long, value_enum, default_value_t = Recipe::Best)]
    recipe: Recipe,
    /// Passes over the training set [default: from --recipe].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Checkpoint to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Learning rate [default: from --recipe].
    #[arg(long)]
    lr: Option<f32>,
    /// Images per step [default: from --recipe].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Optimiser [default: from --recipe].
    #[arg(long, value_enum)]
    optimizer: Option<Opt>,
    /// Weight decay (AdamW, SGD) [default: from --recipe].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Learning-rate schedule [default: from --recipe].
    #[arg(long, value_enum)]
    schedule: Option<Sched>,
    /// Label smoothing of the cross-entropy [default: from --recipe].
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// Augment training images on the fly: `digits`, `none`, or steps like
    /// `digits; noise(p=0.3, sigma=0.05); cutmix(p=0.5, alpha=1)`
    /// [default: from --recipe].
    #[arg(long)]
    augment: Option<Pipeline>,
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
    let set = a.settings();
    if !(set.lr.is_finite() && set.lr > 0.0) {
        bail!("--lr {} must be a positive number", set.lr);
    }
    if !(0.0..1.0).contains(&set.label_smoothing) {
        bail!(
            "--label-smoothing {} must be in [0, 1)",
            set.label_smoothing
        );
    }
    if !(set.weight_decay >= 0.0 && set.weight_decay.is_finite()) {
        bail!(
            "--weight-decay {} must be a non-negative number",
            set.weight_decay
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
        if done >= set.epochs as usize {
            bail!(
                "{}: already trained for {done} epochs (--epochs {})",
                ckpt.display(),
                set.epochs
            );
        }
    }
    let optimizer = match set.optimizer {
        Opt::Adam => Optimizer::adam(),
        Opt::Adamw => Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: set.weight_decay,
        },
        Opt::Sgd => Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: set.weight_decay,
        },
    };
    let schedule = match set.schedule {
        Sched::Constant => Schedule::Constant,
        Sched::Cosine => Schedule::Cosine,
        Sched::Step => Schedule::Step {
            every: (set.epochs as usize / 3).max(1),
            gamma: 0.1,
        },
    };
    let config = TrainConfig {
        epochs: set.epochs as usize,
        batch_size: set.batch as usize,
        learning_rate: set.lr,
        optimizer,
        schedule,
        label_smoothing: set.label_smoothing,
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
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map_or(String::new(), |v| v.get_name().to_string())
    };
    let augmented = set.augment != Pipeline::new();
    let augment = if !augmented {
        "none".to_string()
    } else {
        set.augment.to_string()
    };
    eprintln!(
        "recipe {} (flags given win): {} epochs, {} at {} (weight decay {}), {} schedule, \
         label smoothing {}, batches of {}, augmentation {augment}",
        name(a.recipe.to_possible_value()),
        set.epochs,
        name(set.optimizer.to_possible_value()),
        set.lr,
        set.weight_decay,
        name(set.schedule.to_possible_value()),
        set.label_smoothing,
        set.batch,
    );
    // On --resume the log keeps the lines of the epochs the checkpoint holds
    // (an epoch's line is written before its checkpoint) and goes on after them.
    let mut reports = Vec::new();
    let mut log = match &a.log {
        Some(p) => {
            let kept = if a.resume.is_some() {
                earlier_epochs(p, done, &mut reports)
            } else {
                String::new()
            };
            let tmp = PathBuf::from(format!("{}.tmp", p.display()));
            std::fs::write(&tmp, kept).at(tmp.display())?;
            std::fs::rename(&tmp, p).at(p.display())?;
            Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(p)
                    .at(p.display())?,
            )
        }
        None => None,
    };
    let mut meta = HashMap::new();
    meta.insert("model".to_string(), a.model.name().to_string());
    meta.insert("input".to_string(), train_set.shape().to_string());
    meta.insert("classes".to_string(), train_set.classes().to_string());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let mut failure = None;
    let total = set.epochs;
    let trainer = if augmented {
        Trainer::new(config).augment(set.augment.clone())
    } else {
        Trainer::new(config)
    };
    let trained = trainer.fit_from(
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
        &mut |net, r| {
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
                    failure = Some(format!("log: {e}"));
                    return ControlFlow::Break(());
                }
            }
            // A checkpoint every epoch: killed, training loses at most one
            // epoch, and --resume goes on from the last one written.
            let mut meta = meta.clone();
            meta.insert("epochs".to_string(), r.epoch.to_string());
            if let Err(e) = checkpoint::save(net, &a.out, meta) {
                failure = Some(e.to_string());
                return ControlFlow::Break(());
            }
            reports.push(*r);
            ControlFlow::Continue(())
        },
    );
    bar.finish_and_clear();
    if let Some(e) = failure {
        let at = trained.last().map_or(done, |r| r.epoch);
        bail!("training stopped after epoch {at} of {total}: {e}");
    }
    if let Some(p) = &a.plot {
        let title = format!(
            "{}, recipe {}: {} at {}, {} schedule, batches of {}{}",
            a.model.name(),
            name(a.recipe.to_possible_value()),
            name(set.optimizer.to_possible_value()),
            set.lr,
            name(set.schedule.to_possible_value()),
            set.batch,
            if augmented { ", augmented" } else { "" },
        );
        crate::plot::training_curve(p, &title, &reports)?;
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

/// The lines of `log` for epochs 1 to `done` (as a resumed run keeps them),
/// their reports added to `reports`. Lines of later epochs, or cut off by a
/// kill, are dropped.
fn earlier_epochs(log: &Path, done: usize, reports: &mut Vec<EpochReport>) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let mut kept = String::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let num = |k: &str| v[k].as_f64().map(|x| x as f32);
        let report = match (
            v["epoch"].as_u64(),
            num("train_loss"),
            num("train_accuracy"),
            num("test_accuracy"),
            num("seconds"),
        ) {
            (Some(e), Some(l), Some(tr), Some(te), Some(s)) => EpochReport {
                epoch: e as usize,
                train_loss: l,
                train_accuracy: tr,
                test_accuracy: te,
                seconds: s,
            },
            _ => continue,
        };
        if (1..=done).contains(&report.epoch) && reports.iter().all(|r| r.epoch != report.epoch) {
            kept.push_str(line);
            kept.push('\n');
            reports.push(report);
        }
    }
    kept
}
