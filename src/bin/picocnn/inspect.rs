//! `picocnn inspect`: a model blob's layers and totals.

use crate::common::{dtype_name, parse_model, read_blob};
use anyhow::Result;
use picocnn::model::Train;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The model blob.
    model: PathBuf,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    let summary = picocnn::model::Summary::new(&model);
    if !a.json {
        // The summary's last line has the arena and the model's size.
        out!("{summary}");
        if model.train_len() > 0 {
            let marks: Vec<String> = (0..model.op_count())
                .map(|i| model.op(i))
                .filter(|op| op.train != Train::Frozen)
                .map(|op| format!("{} ({})", op.name, train_name(op.train)))
                .collect();
            out!(
                "trainable: {}; training buffer {} bytes",
                marks.join(", "),
                model.train_len()
            );
        }
        return Ok(());
    }
    let layers: Vec<serde_json::Value> = summary
        .layers()
        .enumerate()
        .map(|(i, l)| {
            serde_json::json!({
                "train": train_name(model.op(i).train),
                "name": l.name,
                "op": l.kind.name(),
                "dtype": dtype_name(l.dtype),
                "output": [l.output.h, l.output.w, l.output.c],
                "params": l.params,
                "macs": l.macs,
                "bytes": l.bytes,
            })
        })
        .collect();
    let obj = serde_json::json!({
        "name": model.name(),
        "layers": layers,
        "totals": {
            "params": summary.params(),
            "macs": summary.macs(),
            "bytes": summary.bytes(),
            "arena_bytes": model.arena_len(),
            "model_bytes": blob.as_bytes().len(),
            "train_bytes": model.train_len(),
        },
    });
    out!("{obj}");
    Ok(())
}

/// What fine-tuning updates, as the table and the JSON say it.
fn train_name(t: Train) -> &'static str {
    match t {
        Train::Frozen => "frozen",
        Train::Bias => "bias",
        Train::All => "weights and bias",
    }
}
