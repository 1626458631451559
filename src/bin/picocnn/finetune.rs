//! `picocnn finetune`: the no_std integer fine-tuner (the code a board
//! runs) on the host, over a data folder's training images; accuracy on its
//! test images before and after; the tuned model written as a blob.

use crate::common::{parse_model, read_blob, to_int8, write_atomically, At, TuneArgs};
use anyhow::{bail, Context, Result};
use picocnn::learn::{record_trainable, FineTuner, TrainableSet};
use picocnn::model::Model;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// The int8 model blob (ending in a dense layer and softmax).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    tune: TuneArgs,
    /// Seed of the stochastic rounding.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tune this set instead of the one recorded in the blob: the weights
    /// and biases of the last N weighted layers (the written blob records
    /// it).
    #[arg(long, value_name = "N")]
    trainable: Option<usize>,
    /// With --trainable: also the biases of the M weighted layers below
    /// them, or `all`.
    #[arg(long, value_name = "M", value_parser = crate::common::parse_layers)]
    trainable_biases: Option<usize>,
    /// Where to write the tuned blob.
    #[arg(long)]
    out: PathBuf,
}

/// The model's int8 input for raw pixels.
fn quantize(model: &Model<'_>, img: &[u8], x: &mut [i8]) -> Result<()> {
    let info = model.tensor(model.input(0).context("model without input")?);
    if info.qparams.is_none() {
        bail!("fine-tuning needs an int8 model");
    }
    to_int8(info, model.normalisation(), img, x)
}

pub fn run(a: FinetuneArgs) -> Result<()> {
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    let (train, test) = a.tune.load()?;
    let input = model.tensor(model.input(0).context("model without input")?);
    if input.shape != train.shape() {
        bail!(
            "{}: the model takes {} images, {} holds {}",
            a.model.display(),
            input.shape,
            a.tune.data.display(),
            train.shape()
        );
    }
    let set = match (a.trainable, a.trainable_biases) {
        (None, Some(_)) => bail!("--trainable-biases needs --trainable N (0 trains biases only)"),
        (None, None) => TrainableSet::Recorded,
        (Some(0), None | Some(0)) => {
            bail!("--trainable 0 without --trainable-biases trains nothing")
        }
        (Some(weights), biases) => TrainableSet::Last {
            weights,
            biases: biases.unwrap_or(0),
        },
    };
    let train_len = FineTuner::train_len_for(&model, set).at(a.model.display())?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut state = vec![0u8; train_len];
    let mut tuner = FineTuner::with_set(&model, set, &mut arena, &mut state, a.tune.lr, a.seed)
        .at(a.model.display())?;
    let accuracy = |tuner: &mut FineTuner<'_, '_, '_>| -> Result<f64> {
        let mut right = 0;
        for i in 0..test.len() {
            quantize(&model, test.image(i), tuner.input_mut::<i8>()?)?;
            right += (tuner.predict()? == test.label(i)) as usize;
        }
        Ok(right as f64 / test.len().max(1) as f64)
    };
    let before = accuracy(&mut tuner)?;
    let n = a.tune.count(train.len());
    for epoch in 1..=a.tune.epochs {
        let mut loss = 0u64;
        for i in 0..n {
            quantize(&model, train.image(i), tuner.input_mut::<i8>()?)?;
            let report = tuner
                .step(train.label(i))
                .at(format!("{}: training image {i}", a.tune.data.display()))?;
            loss += report.loss_q12 as u64;
        }
        out!(
            "epoch {epoch}/{}: mean loss {:.4} over {n} images",
            a.tune.epochs,
            loss as f64 / 4096.0 / n.max(1) as f64
        );
    }
    let after = accuracy(&mut tuner)?;
    let mut tuned = blob.as_bytes().to_vec();
    tuner.write_into(&mut tuned)?;
    if set != TrainableSet::Recorded {
        record_trainable(&mut tuned, set)?;
    }
    write_atomically(&a.out, &tuned)?;
    out!(
        "test accuracy {:.2} % -> {:.2} % ({} images); wrote {} (training state {train_len} bytes)",
        100.0 * before,
        100.0 * after,
        test.len(),
        a.out.display()
    );
    Ok(())
}
