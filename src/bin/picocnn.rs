//! `picocnn`: train networks on the host.
//!
//! ```text
//! picocnn train --model lenet5 --data data/mnist --epochs 10 --out lenet5.safetensors
//!               [--seed N] [--threads N] [--lr X] [--batch N] [--optimizer adam|adamw|sgd]
//!               [--schedule constant|cosine|step] [--label-smoothing X] [--augment SPEC]
//!               [--log train.jsonl] [--plot curve.png] [--resume ckpt.safetensors]
//! picocnn augment --data data/mnist --preview grid.png [--augment SPEC] [--seed N]
//! ```

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use picocnn::augment::Pipeline;
use picocnn::data::{load_image_folder, load_mnist, Dataset};
use picocnn::train::{
    checkpoint, zoo, EpochReport, Net, Optimizer, Schedule, TrainConfig, Trainer,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "picocnn",
    version,
    about = "Convolutional networks for microcontrollers: train on the host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model on MNIST-style IDX files or a folder of PNGs.
    Train(TrainArgs),
    /// Show what an augmentation pipeline does: a PNG grid with originals
    /// in the first column and augmented variants beside them.
    Augment(AugmentArgs),
}

#[derive(clap::Args)]
struct AugmentArgs {
    /// A folder with MNIST IDX files or `train/` and `test/` PNG folders.
    #[arg(long)]
    data: PathBuf,
    /// The PNG grid to write.
    #[arg(long)]
    preview: PathBuf,
    /// The pipeline (as for `train --augment`).
    #[arg(long, default_value = "digits")]
    augment: Pipeline,
    /// Seed of the image choice and of the augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows (images) of the grid.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Augmented variants per image.
    #[arg(long, default_value_t = 8)]
    variants: usize,
}

/// The preview grid: one row per training image, the original first.
fn augment_preview(a: AugmentArgs) -> Result<(), String> {
    if a.rows == 0 || a.variants == 0 || a.rows > 64 || a.variants > 64 {
        return Err("--rows and --variants must be between 1 and 64".into());
    }
    let (train_set, _) = load_data(&a.data)?;
    let shape = train_set.shape();
    let (zoom, gap) = (3usize, 2usize);
    let (cell_h, cell_w) = (shape.h * zoom + gap, shape.w * zoom + gap);
    let (w, h) = ((a.variants + 1) * cell_w + gap, a.rows * cell_h + gap);
    let mut rgb = vec![64u8; w * h * 3];
    let order = picocnn::data::shuffled(train_set.len(), a.seed);
    let rows: Vec<usize> = order.iter().take(a.rows).copied().collect();
    let len = shape.len();
    // Every cell as an image; the variants then mixed as one batch, so the
    // grid shows mixup or cutmix too.
    let mut cells = vec![0.0f32; rows.len() * (a.variants + 1) * len];
    let (mut batch, mut labels, mut seeds, mut at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, &i) in rows.iter().enumerate() {
        for col in 0..=a.variants {
            let mut img: Vec<f32> = train_set
                .image(i)
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect();
            let k = row * (a.variants + 1) + col;
            if col > 0 {
                let seed = a.seed ^ ((i as u64) << 20) ^ col as u64;
                a.augment.apply(&mut img, shape, seed);
                batch.extend_from_slice(&img);
                labels.push(train_set.label(i));
                seeds.push(seed);
                at.push(k);
            }
            cells[k * len..(k + 1) * len].copy_from_slice(&img);
        }
    }
    if a.augment
        .mix_batch(&mut batch, shape, &labels, train_set.classes(), &seeds)
        .is_some()
    {
        for (b, &k) in at.iter().enumerate() {
            cells[k * len..(k + 1) * len].copy_from_slice(&batch[b * len..(b + 1) * len]);
        }
    }
    for row in 0..rows.len() {
        for col in 0..=a.variants {
            let k = row * (a.variants + 1) + col;
            let img = &cells[k * len..(k + 1) * len];
            for y in 0..shape.h * zoom {
                for x in 0..shape.w * zoom {
                    let px = (y / zoom * shape.w + x / zoom) * shape.c;
                    let (oy, ox) = (gap + row * cell_h + y, gap + col * cell_w + x);
                    for k in 0..3 {
                        let v = img[px + k.min(shape.c - 1)];
                        rgb[(oy * w + ox) * 3 + k] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    write_atomically(&a.preview, &bytes)?;
    eprintln!(
        "wrote {}: {} images, {} variants each, pipeline: {}",
        a.preview.display(),
        a.rows,
        a.variants,
        a.augment
    );
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum Model {
    Lenet5,
    AlexnetMini,
    VggMini,
    InceptionMini,
    Resnet8,
}

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
struct TrainArgs {
    /// The architecture.
    #[arg(long, value_enum)]
    model: Model,
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
}

fn load_data(dir: &Path) -> Result<(Dataset, Dataset), String> {
    if dir.join("train").is_dir() && dir.join("test").is_dir() {
        let train = load_image_folder(dir.join("train")).map_err(|e| e.to_string())?;
        let test = load_image_folder(dir.join("test")).map_err(|e| e.to_string())?;
        if train.shape() != test.shape() || train.class_names() != test.class_names() {
            return Err(format!(
                "{}: train and test images differ in size or classes",
                dir.display()
            ));
        }
        return Ok((train, test));
    }
    load_mnist(dir).map_err(|e| e.to_string())
}

fn build(model: Model, data: &Dataset, seed: u64) -> Result<Net, String> {
    let f = match model {
        Model::Lenet5 => zoo::lenet5,
        Model::AlexnetMini => zoo::alexnet_mini,
        Model::VggMini => zoo::vgg_mini,
        Model::InceptionMini => zoo::inception_mini,
        Model::Resnet8 => zoo::resnet8,
    };
    f(data.shape(), data.classes(), seed)
        .map_err(|e| format!("cannot build the model for {} images: {e}", data.shape()))
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::Lenet5 => "lenet5",
        Model::AlexnetMini => "alexnet_mini",
        Model::VggMini => "vgg_mini",
        Model::InceptionMini => "inception_mini",
        Model::Resnet8 => "resnet8",
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Test accuracy (blue) and train accuracy (green) from 0 to 1, and train
/// loss (red) relative to its largest value, per epoch, as a 640x360 PNG.
fn plot(path: &Path, reports: &[EpochReport]) -> Result<(), String> {
    let (w, h) = (640usize, 360usize);
    let mut px = vec![255u8; w * h * 3];
    let (x0, x1, y0, y1) = (40usize, w - 20, 20usize, h - 30);
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < w && y < h {
            px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    };
    for x in x0..=x1 {
        put(x, y1, [0, 0, 0]);
    }
    for y in y0..=y1 {
        put(x0, y, [0, 0, 0]);
    }
    let n = reports.len().max(2) - 1;
    let max_loss = reports
        .iter()
        .map(|r| r.train_loss)
        .fold(f32::MIN_POSITIVE, f32::max);
    let xy = |i: usize, v: f32| {
        let x = x0 + (x1 - x0) * i / n.max(1);
        let y = y1 as f32 - (y1 - y0) as f32 * v.clamp(0.0, 1.0);
        (x as f32, y)
    };
    type Series = (fn(&EpochReport) -> f32, [u8; 3]);
    let series: [Series; 3] = [
        (|r| r.test_accuracy, [31, 119, 180]),
        (|r| r.train_accuracy, [44, 160, 44]),
        (|r| r.train_loss, [214, 39, 40]),
    ];
    for (k, (f, color)) in series.iter().enumerate() {
        let v = |r: &EpochReport| if k == 2 { f(r) / max_loss } else { f(r) };
        for i in 1..reports.len() {
            let (ax, ay) = xy(i - 1, v(&reports[i - 1]));
            let (bx, by) = xy(i, v(&reports[i]));
            let steps = ((bx - ax).abs().max((by - ay).abs()) as usize).max(1);
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (x, y) = (ax + (bx - ax) * t, ay + (by - ay) * t);
                for d in 0..2 {
                    put(x as usize, y as usize + d, *color);
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&px).map_err(|e| e.to_string())?;
    }
    write_atomically(path, &bytes)
}

fn train(a: TrainArgs) -> Result<(), String> {
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(format!("--lr {} must be a positive number", a.lr));
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        return Err(format!(
            "--label-smoothing {} must be in [0, 1)",
            a.label_smoothing
        ));
    }
    if !(a.weight_decay >= 0.0 && a.weight_decay.is_finite()) {
        return Err(format!(
            "--weight-decay {} must be a non-negative number",
            a.weight_decay
        ));
    }
    let (train_set, test_set) = load_data(&a.data)?;
    let mut net = build(a.model, &train_set, a.seed)?;
    let mut done = 0usize;
    if let Some(ckpt) = &a.resume {
        let meta = checkpoint::load(&mut net, ckpt).map_err(|e| e.to_string())?;
        if meta.get("model").map(String::as_str) != Some(model_name(a.model)) {
            return Err(format!(
                "{}: a checkpoint of {}, not {}",
                ckpt.display(),
                meta.get("model")
                    .map(String::as_str)
                    .unwrap_or("an unknown model"),
                model_name(a.model)
            ));
        }
        done = meta.get("epochs").and_then(|e| e.parse().ok()).unwrap_or(0);
        if done >= a.epochs as usize {
            return Err(format!(
                "{}: already trained for {done} epochs (--epochs {})",
                ckpt.display(),
                a.epochs
            ));
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
        ..TrainConfig::default()
    };
    eprintln!(
        "{}: {} parameters, {} MACs; {} training and {} test images of {}",
        model_name(a.model),
        net.param_count(),
        net.macs(),
        train_set.len(),
        test_set.len(),
        train_set.shape()
    );
    let mut log = match &a.log {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
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
        return Err(e);
    }
    let mut meta = HashMap::new();
    meta.insert("model".to_string(), model_name(a.model).to_string());
    meta.insert("epochs".to_string(), a.epochs.to_string());
    meta.insert("input".to_string(), train_set.shape().to_string());
    meta.insert("classes".to_string(), train_set.classes().to_string());
    checkpoint::save(&net, &a.out, meta).map_err(|e| e.to_string())?;
    if let Some(p) = &a.plot {
        plot(p, &reports)?;
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
        Command::Train(a) => train(a),
        Command::Augment(a) => augment_preview(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
