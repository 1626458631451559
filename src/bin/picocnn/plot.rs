//! Raster pictures: the training curve, the confusion matrix, and the PNG
//! writer the augmentation preview shares.

use crate::common::write_atomically;
use anyhow::{anyhow, bail, Result};
use picocnn::train::EpochReport;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
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

/// The font of the plots' text (see `font/LICENSE`).
const FONT: &[u8] = include_bytes!("font/DejaVuSans-subset.ttf");

/// Makes the font known to plotters under the family "sans-serif" (once).
fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if !ok {
        bail!("the plots' built-in font did not load");
    }
    Ok(())
}

/// Any error of plotters, as text.
fn drawing<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e:?}")
}

/// The training curve, 800x450: train and test accuracy (left axis, per
/// cent) and train loss (right axis) per epoch, with a legend and `title`.
pub fn training_curve(path: &Path, title: &str, reports: &[EpochReport]) -> Result<()> {
    register_font()?;
    let (w, h) = (800u32, 450u32);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let last = reports.iter().map(|r| r.epoch).max().unwrap_or(1).max(2);
        let first = reports
            .iter()
            .map(|r| r.epoch)
            .min()
            .unwrap_or(1)
            .min(last - 1);
        let lowest = reports
            .iter()
            .flat_map(|r| [r.train_accuracy, r.test_accuracy])
            .fold(1.0f32, f32::min);
        // From a round number below the lowest accuracy to 100 %.
        let floor = ((lowest * 100.0 / 5.0).floor() * 5.0).clamp(0.0, 95.0);
        let max_loss = reports.iter().map(|r| r.train_loss).fold(0.0f32, f32::max);
        let loss_top = if max_loss > 0.0 { max_loss * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(first..last, floor..100.0f32)
            .map_err(drawing)?
            .set_secondary_coord(first..last, 0.0f32..loss_top);
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("accuracy (%)")
            .x_labels(last.saturating_sub(first).clamp(2, 10) + 1)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(drawing)?;
        chart
            .configure_secondary_axes()
            .y_desc("train loss")
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(drawing)?;
        let series = |f: fn(&EpochReport) -> f32| -> Vec<(usize, f32)> {
            reports.iter().map(|r| (r.epoch, f(r))).collect()
        };
        // A short line in the series' colour as its legend key.
        let key =
            |c: RGBColor| move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2));
        type Figure = fn(&EpochReport) -> f32;
        let accuracies: [(&str, RGBColor, Figure); 2] = [
            ("train accuracy", RGBColor(0, 140, 70), |r| {
                100.0 * r.train_accuracy
            }),
            ("test accuracy", RGBColor(30, 90, 200), |r| {
                100.0 * r.test_accuracy
            }),
        ];
        for (label, colour, f) in accuracies {
            chart
                .draw_series(LineSeries::new(series(f), colour.stroke_width(2)))
                .map_err(drawing)?
                .label(label)
                .legend(key(colour));
        }
        let red = RGBColor(200, 50, 40);
        chart
            .draw_secondary_series(LineSeries::new(
                series(|r| r.train_loss),
                red.stroke_width(2),
            ))
            .map_err(drawing)?
            .label("train loss (right axis)")
            .legend(key(red));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    write_png(path, w as usize, h as usize, &rgb)
}

/// The confusion matrix: a row per true class, a column per predicted
/// class, each cell's count written in it and its colour darker the larger
/// its share of the row; `names` label the classes.
pub fn confusion(path: &Path, title: &str, names: &[String], m: &[Vec<usize>]) -> Result<()> {
    register_font()?;
    let k = m.len().max(1);
    let cell = (480 / k as u32).clamp(14, 48);
    // Room for the title when there are few classes.
    let (w, h) = (
        (cell * k as u32 + 120).max(440),
        (cell * k as u32 + 110).max(300),
    );
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            // A segmented a..b has the b - a + 1 segments a to b.
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(drawing)?;
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        // Row 0 at the top: the drawing's y runs upwards.
        let row_of = |y: usize| k - 1 - y;
        let centre = |v: &SegmentValue<usize>| match *v {
            SegmentValue::CenterOf(i) if i < k => Some(i),
            _ => None,
        };
        let size = (cell as f64 * 0.36).clamp(8.0, 16.0);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted class")
            .y_desc("true class")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&|v| centre(v).map_or(String::new(), name))
            .y_label_formatter(&|v| centre(v).map_or(String::new(), |y| name(row_of(y))))
            .label_style(("sans-serif", size.max(11.0)))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(drawing)?;
        let corner = |c: usize, y: usize| (SegmentValue::Exact(c), SegmentValue::Exact(y));
        for (r, row) in m.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            for (c, &v) in row.iter().enumerate() {
                let share = v as f64 / total;
                let y = row_of(r);
                // White for none of the row, dark blue for all of it; the
                // square root shows a mistake or two in a row of hundreds.
                let tint = share.sqrt();
                let fill = RGBColor(
                    (255.0 * (1.0 - 0.9 * tint)) as u8,
                    (255.0 * (1.0 - 0.7 * tint)) as u8,
                    (255.0 * (1.0 - 0.3 * tint)) as u8,
                );
                let cell = [corner(c, y), corner(c + 1, y + 1)];
                chart
                    .draw_series([
                        Rectangle::new(cell.clone(), fill.filled()),
                        Rectangle::new(cell, ShapeStyle::from(BLACK.mix(0.15))),
                    ])
                    .map_err(drawing)?;
                if v > 0 {
                    let ink = if tint > 0.6 { WHITE } else { BLACK };
                    let style = ("sans-serif", size)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    let at = (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y));
                    chart
                        .draw_series([Text::new(v.to_string(), at, style)])
                        .map_err(drawing)?;
                }
            }
        }
        root.present().map_err(drawing)?;
    }
    write_png(path, w as usize, h as usize, &rgb)
}
