//! Raster pictures: the training curve, the confusion matrix, and the PNG
//! writer the augmentation preview shares.

use crate::common::write_atomically;
use anyhow::Result;
use picocnn::train::EpochReport;
use std::path::Path;

/// Writes `rgb` (8-bit RGB rows, `w` by `h`) as a PNG at `path`.
pub fn write_png(path: &Path, w: usize, h: usize, rgb: &[u8]) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
    }
    write_atomically(path, &bytes)
}

/// Test accuracy (blue) and train accuracy (green) from 0 to 1, and train
/// loss (red) relative to its largest value, per epoch, as a 640x360 PNG.
pub fn training_curve(path: &Path, reports: &[EpochReport]) -> Result<()> {
    let (w, h) = (640usize, 360usize);
    let mut px = vec![255u8; w * h * 3];
    let (x0, x1, y0, y1) = (40usize, w - 20, 20usize, h - 30);
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < w && y < h {
            px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    };
    for x in x0..=x1 {
        put(x, y1, [0, 0, 0]);
    }
    for y in y0..=y1 {
        put(x0, y, [0, 0, 0]);
    }
    let n = reports.len().max(2) - 1;
    let max_loss = reports
        .iter()
        .map(|r| r.train_loss)
        .fold(f32::MIN_POSITIVE, f32::max);
    let xy = |i: usize, v: f32| {
        let x = x0 + (x1 - x0) * i / n.max(1);
        let y = y1 as f32 - (y1 - y0) as f32 * v.clamp(0.0, 1.0);
        (x as f32, y)
    };
    type Series = (fn(&EpochReport) -> f32, [u8; 3]);
    let series: [Series; 3] = [
        (|r| r.test_accuracy, [31, 119, 180]),
        (|r| r.train_accuracy, [44, 160, 44]),
        (|r| r.train_loss, [214, 39, 40]),
    ];
    for (k, (f, color)) in series.iter().enumerate() {
        let v = |r: &EpochReport| if k == 2 { f(r) / max_loss } else { f(r) };
        for i in 1..reports.len() {
            let (ax, ay) = xy(i - 1, v(&reports[i - 1]));
            let (bx, by) = xy(i, v(&reports[i]));
            let steps = ((bx - ax).abs().max((by - ay).abs()) as usize).max(1);
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (x, y) = (ax + (bx - ax) * t, ay + (by - ay) * t);
                for d in 0..2 {
                    put(x as usize, y as usize + d, *color);
                }
            }
        }
    }
    write_png(path, w, h, &px)
}

/// The confusion matrix as a heat map, 24 pixels a cell.
pub fn confusion(path: &Path, m: &[Vec<usize>]) -> Result<()> {
    let k = m.len();
    let cell = 24;
    let side = k * cell;
    let mut rgb = vec![255u8; side * side * 3];
    for (r, row) in m.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        for (c, &v) in row.iter().enumerate() {
            let f = v as f32 / total;
            // White for none, dark blue for all of a row.
            let px = [
                (255.0 * (1.0 - f)) as u8,
                (255.0 * (1.0 - 0.8 * f)) as u8,
                (255.0 - 100.0 * f) as u8,
            ];
            for y in r * cell..(r + 1) * cell - 1 {
                for x in c * cell..(c + 1) * cell - 1 {
                    let i = (y * k * cell + x) * 3;
                    rgb[i..i + 3].copy_from_slice(&px);
                }
            }
        }
    }
    write_png(path, side, side, &rgb)
}
