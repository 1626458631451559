//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong when a kernel is configured or run.
///
/// Kernels validate their parameters once, in their constructors, and check
/// buffer lengths on each call; after that their inner loops run without
/// checks. Every variant says which thing was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Two shapes that must agree do not.
    ShapeMismatch {
        /// Which shape is wrong.
        what: &'static str,
        /// The size the kernel expects.
        expected: usize,
        /// The size it was given.
        got: usize,
    },
    /// A parameter is outside the range the kernel supports.
    InvalidParameter {
        /// The parameter's name.
        what: &'static str,
    },
    /// A combination of parameters the kernel does not support.
    Unsupported {
        /// What is not supported.
        what: &'static str,
    },
    /// A buffer is too small.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Bytes or elements it must have.
        needed: usize,
        /// Bytes or elements it has.
        got: usize,
    },
    /// A size computation overflowed `usize`.
    Overflow,
    /// A model blob is shorter than its header or sections say.
    Truncated {
        /// Bytes the blob must have.
        needed: usize,
        /// Bytes it has.
        got: usize,
    },
    /// The blob does not start with `PCNN`.
    BadMagic,
    /// The blob was written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The blob's version.
        found: u16,
        /// The version this reader understands.
        supported: u16,
    },
    /// The blob's CRC-32 does not match its contents.
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC of the contents.
        computed: u32,
    },
    /// A blob, section, array or arena is not aligned as it must be.
    Misaligned {
        /// What is misaligned.
        what: &'static str,
    },
    /// A field of the blob is out of range or inconsistent.
    InvalidModel {
        /// What is wrong.
        what: &'static str,
        /// The tensor, op or string it concerns (or 0).
        index: usize,
    },
    /// The arena given to the interpreter is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs (`Model::arena_len`).
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A model input or output was accessed as the wrong type or index.
    WrongTensor {
        /// What was wrong.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                what,
                expected,
                got,
            } => write!(
                f,
                "shape mismatch in {what}: expected {expected}, got {got}"
            ),
            Error::InvalidParameter { what } => write!(f, "invalid parameter: {what}"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::BufferTooSmall { what, needed, got } => {
                write!(f, "{what} too small: needed {needed}, got {got}")
            }
            Error::Overflow => write!(f, "size computation overflowed"),
            Error::Truncated { needed, got } => {
                write!(f, "model truncated: needs {needed} bytes, has {got}")
            }
            Error::BadMagic => write!(f, "not a picocnn model (bad magic)"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this reader knows version {supported})"
            ),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::Misaligned { what } => write!(f, "misaligned: {what}"),
            Error::InvalidModel { what, index } => write!(f, "invalid model: {what} (index {index})"),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: needed {needed} bytes, got {got}")
            }
            Error::WrongTensor { what } => write!(f, "wrong tensor access: {what}"),
        }
    }
}

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T> = core::result::Result<T, Error>;

pub(crate) const fn invalid(what: &'static str) -> Error {
    Error::InvalidParameter { what }
}

pub(crate) fn check_len(what: &'static str, needed: usize, got: usize) -> Result<()> {
    if got == needed {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected: needed,
            got,
        })
    }
}

pub(crate) fn check_min_len(what: &'static str, needed: usize, got: usize) -> Result<()> {
    if got >= needed {
        Ok(())
    } else {
        Err(Error::BufferTooSmall { what, needed, got })
    }
}
