//! `picocnn export`: a training checkpoint as a model blob (and Rust
//! source).

use crate::common::{load_data, write_atomically, Arch, At};
use anyhow::{bail, Result};
use clap::ValueEnum;
use picocnn::export::{builder, rust_source, ExportOptions, Precision, Ranges};
use picocnn::model::writer::Fusion;
use picocnn::train::checkpoint;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum Prec {
    Int8,
    F16,
    F32,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The checkpoint `picocnn train` wrote.
    #[arg(long)]
    model: PathBuf,
    /// The data it was trained on (calibration images, class names).
    #[arg(long)]
    data: PathBuf,
    /// Element type of the model.
    #[arg(long, value_enum, default_value_t = Prec::Int8)]
    precision: Prec,
    /// The model blob to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write Rust source with the blob as an aligned static and its
    /// arena size as a constant.
    #[arg(long)]
    rust: Option<PathBuf>,
    /// Training images used to calibrate int8 ranges.
    #[arg(long, default_value_t = 1000)]
    calibration: usize,
    /// Clip int8 ranges at this percentile (e.g. 99.99) instead of min/max.
    #[arg(long)]
    percentile: Option<f32>,
    /// Record a trainable set for on-device fine-tuning: the weights and
    /// biases of the last N weighted layers (int8 only). A set that reaches
    /// a convolution keeps each convolution apart from its pool (unfused).
    #[arg(long, value_name = "N")]
    trainable: Option<usize>,
    /// With --trainable: also the biases of the M weighted layers below
    /// them, or `all`.
    #[arg(long, value_name = "M", value_parser = crate::common::parse_layers)]
    trainable_biases: Option<usize>,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let (train_set, _) = load_data(&a.data)?;
    let meta = checkpoint::read_metadata(&a.model)?;
    let name = meta.get("model").map(String::as_str).unwrap_or("");
    let Some(arch) = Arch::from_name(name) else {
        bail!(
            "{}: not a picocnn training checkpoint (no known model in its metadata)",
            a.model.display()
        );
    };
    let mut net = arch.build(&train_set, 1)?;
    checkpoint::load(&mut net, &a.model)?;
    if a.calibration == 0 {
        bail!("--calibration must be at least 1");
    }
    let n = a.calibration.min(train_set.len());
    let order = picocnn::data::shuffled(train_set.len(), 7);
    let calib: Vec<f32> = order[..n]
        .iter()
        .flat_map(|&i| train_set.image(i).iter().map(|&p| p as f32 / 255.0))
        .collect();
    let mut options = ExportOptions::new(match a.precision {
        Prec::Int8 => Precision::Int8,
        Prec::F16 => Precision::F16,
        Prec::F32 => Precision::F32,
    })
    .calibration(&calib);
    if let Some(p) = a.percentile {
        options.ranges = Ranges::Percentile(p);
    }
    options.name = name.to_string();
    options.labels = train_set.class_names().to_vec();
    let model = builder(&net, &options).at(a.model.display())?;
    let mut blob = model.finish().at(a.model.display())?;
    if a.trainable_biases.is_some() && a.trainable.is_none() {
        bail!("--trainable-biases needs --trainable N (0 trains biases only)");
    }
    if let Some(weights) = a.trainable {
        if !matches!(a.precision, Prec::Int8) {
            bail!("--trainable needs --precision int8: the fine-tuner is integer");
        }
        let biases = a.trainable_biases.unwrap_or(0);
        if weights == 0 && biases == 0 {
            bail!("--trainable 0 without --trainable-biases trains nothing");
        }
        let set = picocnn::learn::TrainableSet::Last { weights, biases };
        // A convolution fused with its pool is never trained: a set that
        // reaches a convolution keeps the model unfused.
        let mut unfused = model
            .clone()
            .fuse(Fusion::Never)
            .finish()
            .at(a.model.display())?;
        picocnn::learn::record_trainable(&mut unfused, set).at(a.model.display())?;
        let aligned = picocnn::model::writer::AlignedBytes::from(unfused.clone());
        let m = picocnn::model::Model::parse(aligned.as_bytes())?;
        let trains_conv = (0..m.op_count()).any(|i| {
            let op = m.op(i);
            op.kind == picocnn::model::OpKind::Conv2d && op.train != picocnn::model::Train::Frozen
        });
        if trains_conv {
            blob = unfused;
        } else {
            picocnn::learn::record_trainable(&mut blob, set).at(a.model.display())?;
        }
    }
    let aligned = picocnn::model::writer::AlignedBytes::from(blob.clone());
    let parsed = picocnn::model::Model::parse(aligned.as_bytes())?;
    write_atomically(&a.out, &blob)?;
    if let Some(r) = &a.rust {
        let what = format!("{name} ({:?})", options.precision);
        let src = rust_source(&blob, parsed.arena_len(), parsed.train_len(), &what);
        write_atomically(r, src.as_bytes())?;
    }
    let train = match parsed.train_len() {
        0 => String::new(),
        n => format!(", training buffer {n} bytes"),
    };
    eprintln!(
        "wrote {}: {name}, {:?}, {} bytes, arena {} bytes{train}",
        a.out.display(),
        options.precision,
        blob.len(),
        parsed.arena_len()
    );
    Ok(())
}
