//! `picocnn eval`: a model blob on the test images through the no_std
//! interpreter.

use crate::common::{classify, dtype_name, load_data, parse_model, read_blob};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The model blob.
    #[arg(long)]
    model: PathBuf,
    /// The data (its test images are used).
    #[arg(long)]
    data: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also draw the confusion matrix as a PNG.
    #[arg(long)]
    confusion: Option<PathBuf>,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    let (_, test) = load_data(&a.data)?;
    let input = model.tensor(model.input(0).context("model without input")?);
    if input.shape != test.shape() {
        bail!(
            "{}: the model takes {} images, {} holds {}",
            a.model.display(),
            input.shape,
            a.data.display(),
            test.shape()
        );
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = picocnn::model::Interpreter::new(&model, &mut arena)?;
    let k = test.classes();
    let mut confusion = vec![vec![0usize; k]; k];
    for i in 0..test.len() {
        let p = classify(&mut it, input, model.normalisation(), test.image(i))?;
        let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        if best < k {
            confusion[test.label(i)][best] += 1;
        }
    }
    let n = test.len();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n.max(1) as f64;
    let per_class: Vec<f64> = (0..k)
        .map(|c| confusion[c][c] as f64 / confusion[c].iter().sum::<usize>().max(1) as f64)
        .collect();
    if let Some(path) = &a.confusion {
        let name = a
            .model
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned());
        let title = format!("{name}: {:.2} % of {n} images right", 100.0 * accuracy);
        crate::plot::confusion(path, &title, test.class_names(), &confusion)?;
    }
    if a.json {
        let obj = serde_json::json!({
            "accuracy": accuracy,
            "n": n,
            "precision": dtype_name(input.dtype),
            "arena_bytes": model.arena_len(),
            "model_bytes": blob.as_bytes().len(),
            "per_class_accuracy": per_class,
            "confusion": confusion,
        });
        out!("{obj}");
        return Ok(());
    }
    out!(
        "{}: {} on {n} test images: accuracy {:.2} % ({} arena bytes, {} model bytes)",
        a.model.display(),
        dtype_name(input.dtype),
        100.0 * accuracy,
        model.arena_len(),
        blob.as_bytes().len()
    );
    out!(
        "per class: {}",
        per_class
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{c}: {:.1} %", 100.0 * v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out!("confusion (rows: true class, columns: predicted):");
    for row in &confusion {
        out!(
            "{}",
            row.iter().map(|v| format!("{v:5}")).collect::<String>()
        );
    }
    Ok(())
}
