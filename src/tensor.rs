//! Shapes of NHWC tensors (batch 1).

use crate::error::{invalid, Error, Result};

/// The shape of one NHWC tensor with a batch of one: height, width, channels.
///
/// Element `(y, x, c)` sits at index `(y * w + x) * c_total + c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// A shape of `h` rows, `w` columns and `c` channels.
    pub const fn new(h: usize, w: usize, c: usize) -> Self {
        Shape { h, w, c }
    }

    /// A flat vector of `n` features (1x1xn), as dense layers see it.
    pub const fn flat(n: usize) -> Self {
        Shape { h: 1, w: 1, c: n }
    }

    /// Number of elements, or `None` when it overflows `usize`.
    pub const fn checked_len(&self) -> Option<usize> {
        match self.h.checked_mul(self.w) {
            Some(hw) => hw.checked_mul(self.c),
            None => None,
        }
    }

    /// Number of elements. Saturates at `usize::MAX` for absurd shapes, which
    /// every buffer check then rejects.
    pub const fn len(&self) -> usize {
        match self.checked_len() {
            Some(n) => n,
            None => usize::MAX,
        }
    }

    /// True when the tensor holds no element.
    pub const fn is_empty(&self) -> bool {
        self.h == 0 || self.w == 0 || self.c == 0
    }

    /// Rejects empty and overflowing shapes.
    pub(crate) fn validate(&self, what: &'static str) -> Result<usize> {
        if self.is_empty() {
            return Err(invalid(what));
        }
        self.checked_len().ok_or(Error::Overflow)
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}x{}x{}", self.h, self.w, self.c)
    }
}
