//! `picocnn import`: a TensorFlow Lite model as a picocnn blob.

use crate::common::write_atomically;
use anyhow::{bail, Context, Result};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::Model;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The model: a TensorFlow Lite flatbuffer (`.tflite`, int8).
    model: PathBuf,
    /// Where to write the blob.
    #[arg(long)]
    out: PathBuf,
    /// The blob's name (default: the file's stem).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(a: ImportArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let kind = a.model.extension().and_then(|e| e.to_str()).unwrap_or("");
    if kind != "tflite" {
        bail!(
            "{}: the importer reads TensorFlow Lite files (.tflite); ONNX is not read yet",
            a.model.display()
        );
    }
    let name = a.name.clone().unwrap_or_else(|| {
        a.model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string()
    });
    let blob = picocnn::import::tflite(&bytes, &name)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    let aligned = AlignedBytes::from(&blob[..]);
    let model = Model::parse(aligned.as_bytes())?;
    write_atomically(&a.out, &blob)?;
    out!(
        "{}: {} ops, arena {} bytes, blob {} bytes written to {}",
        a.model.display(),
        model.op_count(),
        model.arena_len(),
        blob.len(),
        a.out.display()
    );
    Ok(())
}
