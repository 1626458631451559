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
