//! `picocnn finetune-f32`: the float reference of `picocnn finetune`. The
//! f32 network a blob was quantized from, fine-tuned with the f32 trainer
//! the way the integer fine-tuner works: plain SGD, one image per step, the
//! training images in order, only the chosen layers changing; accuracy on
//! the test images before and after, in the same words.

use crate::common::{Arch, TuneArgs};
use anyhow::{bail, Result};
use picocnn::data::Dataset;
use picocnn::train::{accuracy, checkpoint, Optimizer, Schedule, TrainConfig, Trainable, Trainer};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FinetuneF32Args {
    /// The checkpoint `picocnn train` wrote (the float model).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    tune: TuneArgs,
    /// Train the weights and biases of this many weighted layers (dense or
    /// convolution), counted from the output.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    train_last: u32,
    /// Also train the biases of every earlier weighted layer.
    #[arg(long)]
    train_biases: bool,
    /// Where to write the tuned checkpoint.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: FinetuneF32Args) -> Result<()> {
    let (train, test) = a.tune.load()?;
    let mut meta = checkpoint::read_metadata(&a.model)?;
    let name = meta.get("model").map(String::as_str).unwrap_or("");
    let Some(arch) = Arch::from_name(name) else {
        bail!(
            "{}: not a picocnn training checkpoint (no known model in its metadata)",
            a.model.display()
        );
    };
    let input = meta.get("input").cloned().unwrap_or_default();
    if input != train.shape().to_string() {
        bail!(
            "{}: the model takes {input} images, {} holds {}",
            a.model.display(),
            a.tune.data.display(),
            train.shape()
        );
    }
    let mut net = arch.build(&train, 1)?;
    checkpoint::load(&mut net, &a.model)?;
    if !net.stats.is_empty() {
        bail!(
            "{}: finetune-f32 takes networks without batch norm (one image per step \
             would be its batch)",
            a.model.display()
        );
    }
    let n = a.tune.count(train.len());
    let tune = Dataset::new(
        train.shape(),
        (0..n)
            .flat_map(|i| train.image(i).iter().copied())
            .collect(),
        train.labels()[..n].to_vec(),
        train.class_names().to_vec(),
    )
    .map_err(anyhow::Error::msg)?;
    let trainable = Trainable::Last {
        layers: a.train_last as usize,
        earlier_biases: a.train_biases,
    };
    let count = net.trainable(trainable).iter().filter(|&&t| t).count();
    let config = TrainConfig {
        epochs: a.tune.epochs,
        batch_size: 1,
        learning_rate: a.tune.lr,
        optimizer: Optimizer::Sgd {
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant,
        label_smoothing: 0.0,
        threads: 1,
        trainable,
        shuffle: false,
        ..TrainConfig::default()
    };
    let before = accuracy(&net, &test);
    let reports = Trainer::new(config).fit(&mut net, &tune, &test, &mut |r| {
        out!(
            "epoch {}/{}: mean loss {:.4} over {n} images",
            r.epoch,
            a.tune.epochs,
            r.train_loss
        );
    });
    let after = reports
        .last()
        .map_or_else(|| accuracy(&net, &test), |r| r.test_accuracy);
    meta.insert(
        "fine_tuned".to_string(),
        format!(
            "{}: last {} weighted layers{}, SGD lr {} for {} epochs over {n} images",
            a.tune.data.display(),
            a.train_last,
            if a.train_biases {
                " and earlier biases"
            } else {
                ""
            },
            a.tune.lr,
            a.tune.epochs
        ),
    );
    checkpoint::save(&net, &a.out, meta)?;
    out!(
        "test accuracy {:.2} % -> {:.2} % ({} images); wrote {} ({count} trainable parameters)",
        100.0 * before,
        100.0 * after,
        test.len(),
        a.out.display()
    );
    Ok(())
}
