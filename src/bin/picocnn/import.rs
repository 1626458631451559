//! `picocnn import`: a TensorFlow Lite or ONNX model as a picocnn blob.

use crate::common::write_atomically;
use anyhow::{bail, Context, Result};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::Model;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The model: a TensorFlow Lite flatbuffer (`.tflite`) or an ONNX
    /// protobuf (`.onnx`), float32 or int8 (ONNX: in QDQ form).
    model: PathBuf,
    /// Where to write the blob.
    #[arg(long)]
    out: PathBuf,
    /// Also write Rust source with the blob as an aligned static and its
    /// arena size as a constant (as `export --rust`).
    #[arg(long)]
    rust: Option<PathBuf>,
    /// The blob's name (default: the file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Class labels, one per line, one per output channel.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// How the network's input was made from pixels: `input = pixel *
    /// SCALE + OFFSET` (e.g. `--normalise 0.00392157,0` for pixels / 255),
    /// so that `eval`, `predict` and the boards feed it images.
    #[arg(long, value_name = "SCALE,OFFSET", value_parser = parse_pair)]
    normalise: Option<(f32, f32)>,
}

fn parse_pair(s: &str) -> std::result::Result<(f32, f32), String> {
    let (a, b) = s.split_once(',').ok_or("give SCALE,OFFSET")?;
    let num = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or(format!("{v:?} is not a finite number"))
    };
    Ok((num(a)?, num(b)?))
}

pub fn run(a: ImportArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let kind = a.model.extension().and_then(|e| e.to_str()).unwrap_or("");
    let import = match kind {
        "tflite" => picocnn::import::tflite_with,
        "onnx" => picocnn::import::onnx_with,
        _ => bail!(
            "{}: the importer reads TensorFlow Lite (.tflite) and ONNX (.onnx) files",
            a.model.display()
        ),
    };
    let name = a.name.clone().unwrap_or_else(|| {
        a.model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string()
    });
    let labels: Vec<String> = match &a.labels {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let options = picocnn::import::Options {
        name: &name,
        labels: &labels,
        normalisation: a.normalise,
    };
    let blob =
        import(&bytes, &options).map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    let aligned = AlignedBytes::from(&blob[..]);
    let model = Model::parse(aligned.as_bytes())?;
    write_atomically(&a.out, &blob)?;
    if let Some(r) = &a.rust {
        let what = format!("{name} (imported from {})", a.model.display());
        let src = picocnn::export::rust_source(&blob, model.arena_len(), model.train_len(), &what);
        write_atomically(r, src.as_bytes())?;
    }
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
