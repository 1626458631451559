//! `picocnn restyle`: a data set's test images in one fixed writer's style
//! (`picocnn::data::style`), written as a new data folder whose training
//! split is the first `--tune` of them (to fine-tune on) and whose test
//! split is the rest (held out): the fine-tuning demonstration's domain
//! shift.
//!
//! The folder holds IDX files, which keep the source's order: the
//! fine-tuners step through the images in that order, and class folders
//! would be read back one class after another.

use crate::common::{load_data, At};
use anyhow::{bail, Result};
use picocnn::data::style::{restyle, Style};
use picocnn::data::Dataset;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct RestyleArgs {
    /// The data set whose test images are restyled (MNIST IDX files, or
    /// `train/` and `test/` class folders of grey PNGs).
    #[arg(long)]
    data: PathBuf,
    /// The folder to create (it must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Horizontal shift per row above the centre, in pixels.
    #[arg(long, default_value_t = Style::default().shear)]
    shear: f32,
    /// Radius of the grey dilation that thickens the strokes.
    #[arg(long, default_value_t = Style::default().thicken)]
    thicken: usize,
    /// Images of the training split (to tune on); the rest are held out.
    #[arg(long, default_value_t = 300)]
    tune: usize,
}

/// An IDX file of unsigned bytes: magic, dimensions (big-endian), data.
fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Images `range` of `set` in `style`, as IDX images and labels.
fn split(set: &Dataset, range: std::ops::Range<usize>, style: Style) -> Result<(Vec<u8>, Vec<u8>)> {
    let shape = set.shape();
    let mut pixels = Vec::with_capacity(range.len() * shape.len());
    for i in range.clone() {
        pixels.extend(restyle(set.image(i), shape, style).at(format_args!("image {i}"))?);
    }
    let labels = &set.labels()[range.clone()];
    Ok((
        idx(&[range.len(), shape.h, shape.w], &pixels),
        idx(&[range.len()], labels),
    ))
}

/// Writes `files` into a new folder `out`: into a temporary folder beside
/// it first, renamed when complete; nothing is left behind on failure.
fn write_folder(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> Result<()> {
        std::fs::create_dir(&tmp).at(tmp.display())?;
        for (file, bytes) in files {
            let path = tmp.join(file);
            std::fs::write(&path, bytes).at(path.display())?;
        }
        std::fs::rename(&tmp, out).at(out.display())
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

pub fn run(a: RestyleArgs) -> Result<()> {
    if !a.shear.is_finite() {
        bail!("--shear must be a finite number, not {}", a.shear);
    }
    if a.thicken > 64 {
        bail!("--thicken {} is more than 64", a.thicken);
    }
    if a.out.file_name().is_none() {
        bail!("--out {}: not a folder name", a.out.display());
    }
    let parent = a.out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent.filter(|p| !p.is_dir()) {
        bail!(
            "--out {}: there is no folder {} to write it in",
            a.out.display(),
            p.display()
        );
    }
    if a.out.exists() {
        bail!(
            "{}: already exists (restyle writes a new folder)",
            a.out.display()
        );
    }
    let (_, test) = load_data(&a.data)?;
    let shape = test.shape();
    if shape.c != 1 {
        bail!(
            "{}: restyle takes grey images, not {shape}",
            a.data.display()
        );
    }
    if test.classes() > 10 {
        bail!(
            "{}: {} classes; the IDX files restyle writes hold digit labels 0..=9",
            a.data.display(),
            test.classes()
        );
    }
    if a.tune == 0 || a.tune >= test.len() {
        bail!(
            "--tune {} must be at least 1 and leave held-out images: {} has {} test images",
            a.tune,
            a.data.display(),
            test.len()
        );
    }
    let style = Style {
        shear: a.shear,
        thicken: a.thicken,
    };
    let (train_images, train_labels) = split(&test, 0..a.tune, style)?;
    let (test_images, test_labels) = split(&test, a.tune..test.len(), style)?;
    let about = format!(
        "The test images of {} in one writer's style (picocnn restyle): shear {}, \
         thicken {}.\ntrain-*: the first {} (to fine-tune on); t10k-*: the other {} (held out).\n",
        a.data.display(),
        a.shear,
        a.thicken,
        a.tune,
        test.len() - a.tune
    );
    write_folder(
        &a.out,
        &[
            ("train-images-idx3-ubyte", train_images),
            ("train-labels-idx1-ubyte", train_labels),
            ("t10k-images-idx3-ubyte", test_images),
            ("t10k-labels-idx1-ubyte", test_labels),
            ("README.txt", about.into_bytes()),
        ],
    )?;
    out!(
        "wrote {}: {} images to tune on, {} held out (shear {}, thicken {})",
        a.out.display(),
        a.tune,
        test.len() - a.tune,
        a.shear,
        a.thicken
    );
    Ok(())
}
