//! Data sets on the host (`std`): MNIST-style IDX files (raw or gzip) and
//! folders of PNG images, one folder per class; seeded shuffling and
//! batching.
//!
//! ```no_run
//! let (train, test) = picocnn::data::load_mnist("data/mnist")?;
//! assert_eq!(train.shape(), picocnn::Shape::new(28, 28, 1));
//! for batch in train.batches(64, 7) {
//!     let (images, labels) = (train.image(batch[0]), train.label(batch[0]));
//! #   let _ = (images, labels);
//! }
//! # Ok::<(), picocnn::data::DataError>(())
//! ```

extern crate std;

mod folder;
mod idx;
pub mod style;

pub use crate::rng::shuffled;
pub use folder::{load_image_folder, load_png};
pub use idx::{load_mnist, read_idx, Idx};

use crate::tensor::Shape;
use std::fmt;
use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

/// Why a data set could not be read; every variant names the file.
#[derive(Debug)]
pub enum DataError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Not an IDX file of the expected kind.
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The magic number found.
        found: u32,
        /// What was expected.
        expected: &'static str,
    },
    /// The file ends before its header says it should.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes there are.
        got: u64,
    },
    /// Images and labels of different counts, or a label out of range.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        what: String,
    },
    /// A PNG that cannot be decoded or has the wrong size or colour type.
    BadImage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::WrongMagic {
                path,
                found,
                expected,
            } => {
                write!(
                    f,
                    "{}: not {expected} (magic number {found:#010x})",
                    path.display()
                )
            }
            DataError::Truncated {
                path,
                expected,
                got,
            } => write!(
                f,
                "{}: truncated: the header promises {expected} bytes, the file has {got}",
                path.display()
            ),
            DataError::Mismatch { path, what } => write!(f, "{}: {what}", path.display()),
            DataError::BadImage { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Images (HWC bytes, 0..=255) and their class labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    shape: Shape,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: usize,
    class_names: Vec<String>,
}

impl Dataset {
    /// A data set from parts; `pixels` holds `labels.len()` images of `shape`.
    pub fn new(
        shape: Shape,
        pixels: Vec<u8>,
        labels: Vec<u8>,
        class_names: Vec<String>,
    ) -> Result<Self, String> {
        if pixels.len() != labels.len() * shape.len() {
            return Err(std::format!(
                "{} pixels are not {} images of {shape}",
                pixels.len(),
                labels.len()
            ));
        }
        let classes = class_names
            .len()
            .max(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0));
        Ok(Dataset {
            shape,
            pixels,
            labels,
            classes,
            class_names,
        })
    }

    /// Shape of one image.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Class names (digits for MNIST, folder names for an image folder).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Image `i`, HWC bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Label of image `i`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Index batches of `size` over a shuffle seeded by `seed` (the last
    /// batch may be smaller); the same seed gives the same batches.
    pub fn batches(&self, size: usize, seed: u64) -> impl Iterator<Item = Vec<usize>> + '_ {
        let order = shuffled(self.len(), seed);
        let size = size.max(1);
        (0..self.len().div_ceil(size))
            .map(move |b| order[b * size..((b + 1) * size).min(order.len())].to_vec())
    }
}
