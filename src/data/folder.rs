//! A folder of PNG images, one sub-folder per class.

use super::{DataError, Dataset};
use crate::tensor::Shape;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

fn bad(path: &Path, what: impl Into<String>) -> DataError {
    DataError::BadImage {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// One PNG as 8-bit pixels (HWC) and its shape: grey (1 channel) or RGB
/// (3; alpha dropped); 16-bit samples reduced to 8, palettes expanded.
pub fn load_png(path: impl AsRef<Path>) -> Result<(Shape, Vec<u8>), DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(path, std::format!("unreadable PNG: {e}")))?;
    let mut buf = std::vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(path, std::format!("unreadable PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let data = &buf[..info.buffer_size()];
    let img: Vec<u8> = match info.color_type {
        png::ColorType::Grayscale => data.to_vec(),
        png::ColorType::GrayscaleAlpha => data.chunks_exact(2).map(|p| p[0]).collect(),
        png::ColorType::Rgb => data.to_vec(),
        png::ColorType::Rgba => data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => return Err(bad(path, std::format!("unsupported colour type {other:?}"))),
    };
    let c = img.len() / (w * h).max(1);
    Ok((Shape::new(h, w, c), img))
}

/// Reads `root/<class>/*.png`: classes are the sub-folders in name order,
/// images must all have the same size and be 8-bit grayscale (1 channel) or
/// RGB (3 channels; RGBA drops alpha). Files other than `.png` are ignored.
pub fn load_image_folder(root: impl AsRef<Path>) -> Result<Dataset, DataError> {
    let root = root.as_ref();
    let io = |path: &Path, source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut classes: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| io(root, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .collect();
    classes.sort();
    if classes.is_empty() || classes.len() > 256 {
        return Err(DataError::Mismatch {
            path: root.to_path_buf(),
            what: std::format!("{} class folders (need 1 to 256)", classes.len()),
        });
    }
    let mut shape: Option<Shape> = None;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (label, (_, dir)) in classes.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
            .collect();
        files.sort();
        for path in files {
            let (this, img) = load_png(&path)?;
            match shape {
                None => shape = Some(this),
                Some(s) if s != this => {
                    return Err(bad(
                        &path,
                        std::format!("image is {this}, the first image was {s}"),
                    ));
                }
                _ => {}
            }
            pixels.extend_from_slice(&img);
            labels.push(label as u8);
        }
    }
    let shape = shape.ok_or_else(|| DataError::Mismatch {
        path: root.to_path_buf(),
        what: "no PNG images in the class folders".to_string(),
    })?;
    let names = classes.into_iter().map(|(n, _)| n).collect();
    Dataset::new(shape, pixels, labels, names).map_err(|what| DataError::Mismatch {
        path: root.to_path_buf(),
        what,
    })
}
