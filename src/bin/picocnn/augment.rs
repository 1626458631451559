//! `picocnn augment`: a PNG grid showing what an augmentation pipeline
//! does to training images.

use crate::common::load_data;
use anyhow::{bail, Result};
use picocnn::augment::Pipeline;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AugmentArgs {
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
pub fn run(a: AugmentArgs) -> Result<()> {
    if a.rows == 0 || a.variants == 0 || a.rows > 64 || a.variants > 64 {
        bail!("--rows and --variants must be between 1 and 64");
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
    crate::plot::write_png(&a.preview, w, h, &rgb)?;
    eprintln!(
        "wrote {}: {} images, {} variants each, pipeline: {}",
        a.preview.display(),
        a.rows,
        a.variants,
        a.augment
    );
    Ok(())
}
