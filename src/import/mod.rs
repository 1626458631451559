//! Models trained elsewhere, as ordinary blobs (`std`): TensorFlow Lite
//! flatbuffers ([`tflite`]) and ONNX protobufs ([`onnx`](fn@onnx)), int8
//! and float32, read with the `flatbuffers` and `prost` crates and each
//! format's own schema, mapped op by op onto a [`ModelBuilder`], which
//! plans and checks the blob as for picocnn's own exports. A model file
//! is untrusted input: whatever it holds gives a blob or one error naming
//! the op and what is wrong, never a panic.
//!
//! [`ModelBuilder`]: crate::model::writer::ModelBuilder

use std::string::{String, ToString};

mod onnx;
mod tflite;

pub use self::onnx::{onnx, onnx_with};
pub use self::tflite::{tflite, tflite_with};

/// Why a model file could not be imported: one sentence naming the op,
/// tensor or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError(pub String);

impl core::fmt::Display for ImportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

impl From<crate::Error> for ImportError {
    fn from(e: crate::Error) -> Self {
        ImportError(e.to_string())
    }
}

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, ImportError> {
    Err(ImportError(msg.into()))
}

/// What a model file does not say, for the blob: its name, class labels,
/// and how raw pixels become the network's real-valued input.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// The blob's name.
    pub name: &'a str,
    /// Class labels, one per output channel (none: classes by number).
    pub labels: &'a [String],
    /// `input = pixel * scale + offset` as the network was trained (for
    /// example `(1 / 255, 0)`); `None` records the identity.
    pub normalisation: Option<(f32, f32)>,
}
