//! `picocnn predict`: classify PNG images with a model blob.

use crate::common::{classify, parse_model, read_blob};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PredictArgs {
    /// The model blob.
    #[arg(long)]
    model: PathBuf,
    /// PNG images of the model's input size and colour type.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(a: PredictArgs) -> Result<()> {
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    let input = model.tensor(model.input(0).context("model without input")?);
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = picocnn::model::Interpreter::new(&model, &mut arena)?;
    for path in &a.images {
        let (shape, img) = picocnn::data::load_png(path)?;
        if shape != input.shape {
            bail!(
                "{}: image is {shape}, the model takes {} ({})",
                path.display(),
                input.shape,
                if input.shape.c == 1 { "grey" } else { "RGB" }
            );
        }
        let p = classify(&mut it, input, model.normalisation(), &img)?;
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&x, &y| p[y].total_cmp(&p[x]).then(x.cmp(&y)));
        let label = |k: usize| {
            model
                .label(k)
                .map(str::to_string)
                .unwrap_or_else(|| k.to_string())
        };
        let top: Vec<String> = order
            .iter()
            .take(3)
            .map(|&k| format!("{} {:.1} %", label(k), 100.0 * p[k]))
            .collect();
        out!(
            "{}: {} ({:.1} %); top 3: {}",
            path.display(),
            label(order[0]),
            100.0 * p[order[0]],
            top.join(", ")
        );
    }
    Ok(())
}
