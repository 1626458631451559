//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.

use super::{DataError, Dataset};
use crate::tensor::Shape;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::string::ToString;
use std::vec::Vec;

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

fn io(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not
/// (detected from the first bytes).
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx, DataError> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| io(path, e))?;
        out
    } else {
        raw
    };
    parse_idx(path, &bytes)
}

fn parse_idx(path: &Path, b: &[u8]) -> Result<Idx, DataError> {
    let truncated = |expected: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        got: b.len() as u64,
    };
    if b.len() < 4 {
        return Err(truncated(4));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (zero, kind, ndims) = (magic >> 16, (magic >> 8) & 0xff, (magic & 0xff) as usize);
    if zero != 0 || kind != 0x08 || ndims == 0 || ndims > 4 {
        return Err(DataError::WrongMagic {
            path: path.to_path_buf(),
            found: magic,
            expected: "an IDX file of unsigned bytes",
        });
    }
    let header = 4 + 4 * ndims;
    if b.len() < header {
        return Err(truncated(header as u64));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            u32::from_be_bytes([b[4 + 4 * i], b[5 + 4 * i], b[6 + 4 * i], b[7 + 4 * i]]) as usize
        })
        .collect();
    let n = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let expected = n.saturating_add(header as u64);
    if (b.len() as u64) < expected {
        return Err(truncated(expected));
    }
    Ok(Idx {
        dims,
        data: b[header..header + n as usize].to_vec(),
    })
}

/// The first of `names` that exists in `dir` (with or without `.gz`).
fn find(dir: &Path, names: &[&str]) -> PathBuf {
    for name in names {
        for candidate in [dir.join(std::format!("{name}.gz")), dir.join(name)] {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    dir.join(std::format!("{}.gz", names[0]))
}

fn images_and_labels(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let im = read_idx(images)?;
    if im.dims.len() != 3 {
        return Err(DataError::WrongMagic {
            path: images.to_path_buf(),
            found: 0x0800 | im.dims.len() as u32,
            expected: "an IDX image file (3 dimensions: count, rows, columns)",
        });
    }
    let lb = read_idx(labels)?;
    if lb.dims.len() != 1 {
        return Err(DataError::WrongMagic {
            path: labels.to_path_buf(),
            found: 0x0800 | lb.dims.len() as u32,
            expected: "an IDX label file (1 dimension)",
        });
    }
    if im.dims[0] != lb.dims[0] {
        return Err(DataError::Mismatch {
            path: labels.to_path_buf(),
            what: std::format!(
                "{} labels for {} images in {}",
                lb.dims[0],
                im.dims[0],
                images.display()
            ),
        });
    }
    if let Some(i) = lb.data.iter().position(|&l| l > 9) {
        return Err(DataError::Mismatch {
            path: labels.to_path_buf(),
            what: std::format!(
                "label {} of image {i} is not a digit class 0..=9",
                lb.data[i]
            ),
        });
    }
    let names = (0..10).map(|d: u8| d.to_string()).collect();
    Dataset::new(
        Shape::new(im.dims[1], im.dims[2], 1),
        im.data,
        lb.data,
        names,
    )
    .map_err(|what| DataError::Mismatch {
        path: images.to_path_buf(),
        what,
    })
}

/// Reads MNIST (or Fashion-MNIST) from a folder with the four standard
/// files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each raw or `.gz`):
/// the full 60,000/10,000 sets or the 8,000/2,000 subset this repository
/// ships in `data/mnist`. Returns `(train, test)`.
pub fn load_mnist(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset), DataError> {
    let dir = dir.as_ref();
    let train = images_and_labels(
        &find(dir, &["train-images-idx3-ubyte", "train-images.idx3-ubyte"]),
        &find(dir, &["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"]),
    )?;
    let test = images_and_labels(
        &find(dir, &["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"]),
        &find(dir, &["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"]),
    )?;
    Ok((train, test))
}
