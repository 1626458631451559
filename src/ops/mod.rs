//! The kernels, one file per op family, each with the same parts in the same
//! order: a checked geometry or parameter type, its scratch need as a
//! `const fn`, the int8 kernel, the float kernel (generic over [`Real`]).
//!
//! [`Real`]: crate::num::Real

pub mod act;
pub mod add;
pub mod concat;
pub mod conv;
pub mod conv_pool;
pub mod dense;
pub mod mean;
pub mod pool;
pub mod softmax;
pub mod x16;

use crate::error::{invalid, Error, Result};

/// Which kernels this build has: all of them, unless the build script was
/// given the models the firmware is for (`PICOCNN_MODELS`, blob paths); then
/// only theirs, and a kernel left out returns [`Error::Unsupported`].
pub(crate) mod built {
    /// General convolution (im2col).
    pub const CONV_GENERAL: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_general"));
    /// 1x1 convolution.
    pub const CONV_POINTWISE: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_pointwise"));
    /// Depthwise convolution.
    pub const CONV_DEPTHWISE: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_depthwise"));
    /// Dense layer.
    pub const DENSE: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "dense"));
    /// Max pooling.
    pub const MAX_POOL: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "max_pool"));
    /// Average pooling.
    pub const AVG_POOL: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "avg_pool"));
    /// Residual add.
    pub const ADD: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "add"));
    /// Concatenation.
    pub const CONCAT: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "concat"));
    /// Standalone activation.
    pub const ACTIVATION: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "activation"));
    /// Softmax.
    pub const SOFTMAX: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "softmax"));
    /// Mean over rows and columns.
    pub const MEAN: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "mean"));
    /// Plain convolution records (kind 1), apart from the kernels fused
    /// records share.
    pub const CONV_OP: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_op"));
    /// Plain max pooling records.
    pub const MAX_POOL_OP: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "max_pool_op"));
    /// Plain average pooling records.
    pub const AVG_POOL_OP: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "avg_pool_op"));
    /// Convolutions fused with a max pool.
    pub const CONV_MAX_POOL_OP: bool =
        cfg!(any(not(picocnn_pruned), picocnn_use = "conv_max_pool_op"));
    /// Convolutions fused with an average pool.
    pub const CONV_AVG_POOL_OP: bool =
        cfg!(any(not(picocnn_pruned), picocnn_use = "conv_avg_pool_op"));
    /// Fused pools that stream one convolution row at a time (max pools
    /// whose windows share no rows).
    pub const CONV_POOL_ROWS: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_pool_rows"));
    /// Fused pools that run by bands of rows (average pools, and max pools
    /// whose windows share rows).
    pub const CONV_POOL_BAND: bool = cfg!(any(not(picocnn_pruned), picocnn_use = "conv_pool_band"));
    /// int8 tensors (also the Cargo feature `int8`).
    pub const INT8: bool = cfg!(all(
        feature = "int8",
        any(not(picocnn_pruned), picocnn_use = "int8")
    ));
    /// int16 tensors with int8 weights (also the Cargo feature `int16`).
    pub const INT16: bool = cfg!(all(
        feature = "int16",
        any(not(picocnn_pruned), picocnn_use = "int16")
    ));
    /// f16 tensors (also the Cargo feature `f16`).
    pub const F16: bool = cfg!(all(
        feature = "f16",
        any(not(picocnn_pruned), picocnn_use = "f16")
    ));
    /// f32 tensors (also the Cargo feature `f32`).
    pub const F32: bool = cfg!(all(
        feature = "f32",
        any(not(picocnn_pruned), picocnn_use = "f32")
    ));

    /// The error of a kernel left out.
    pub const fn left_out(what: &'static str) -> crate::Error {
        crate::Error::Unsupported { what }
    }
}

/// Int8 parameters of a convolution or dense layer, as TensorFlow Lite
/// stores them: filters, bias and per-channel or per-tensor
/// requantization (borrowed either way: one multiplier and shift serve
/// every channel without copies).
#[derive(Debug, Clone, Copy)]
pub struct WeightsI8<'a> {
    /// Symmetric int8 filters (zero point 0) per output channel: OHWI for
    /// a convolution (HWO for depthwise), `[out][in]` for a dense layer.
    pub filter: &'a [i8],
    /// One int32 bias per output channel, scale `s_in * s_w[o]`.
    pub bias: &'a [i32],
    /// Q31 multiplier of `s_in * s_w[o] / s_out`, per output channel; or
    /// one value for the whole tensor (per-tensor quantization).
    pub multiplier: &'a [i32],
    /// Shift of that multiplier, as many as multipliers.
    pub shift: &'a [i32],
}

impl WeightsI8<'_> {
    /// Checks `filter_len` filters, `channels` biases and requantization
    /// (per channel or per tensor), the zero points `[input, output]` and the
    /// clamp; `what` names the filters, biases and requantization in errors.
    pub(crate) fn check(
        &self,
        what: [&'static str; 3],
        filter_len: usize,
        channels: usize,
        zero_points: [i32; 2],
        clamp: crate::quant::Clamp,
    ) -> Result<()> {
        crate::error::check_len(what[0], filter_len, self.filter.len())?;
        crate::error::check_len(what[1], channels, self.bias.len())?;
        crate::quant::check_requant(what[2], channels, self.multiplier, self.shift)?;
        for zp in zero_points {
            check_zero_point(zp)?;
        }
        crate::quant::Clamp::new(clamp.min, clamp.max).map(|_| ())
    }
}

/// How a window is placed over the input's border.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Padding {
    /// No padding: windows lie wholly inside the input.
    #[default]
    Valid,
    /// TensorFlow's `SAME`: output size `ceil(input / stride)`, the padding
    /// split evenly with the odd cell at the bottom and right.
    Same,
    /// Explicit cells of padding on each side.
    Explicit {
        /// Rows above.
        top: usize,
        /// Rows below.
        bottom: usize,
        /// Columns on the left.
        left: usize,
        /// Columns on the right.
        right: usize,
    },
}

/// Output size and leading padding of one axis.
pub(crate) fn axis(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    vertical: bool,
) -> Result<(usize, usize)> {
    if kernel == 0 {
        return Err(invalid("kernel size must be at least 1"));
    }
    if stride == 0 {
        return Err(invalid("stride must be at least 1"));
    }
    if dilation == 0 {
        return Err(invalid("dilation must be at least 1"));
    }
    let effective = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or(Error::Overflow)?;
    let (before, after) = match padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = out
                .saturating_sub(1)
                .checked_mul(stride)
                .and_then(|v| v.checked_add(effective))
                .ok_or(Error::Overflow)?
                .saturating_sub(input);
            (total / 2, total - total / 2)
        }
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => {
            if vertical {
                (top, bottom)
            } else {
                (left, right)
            }
        }
    };
    let padded = input
        .checked_add(before)
        .and_then(|v| v.checked_add(after))
        .ok_or(Error::Overflow)?;
    // Window positions are computed in isize; keep every extent well inside it.
    const LIMIT: usize = isize::MAX as usize / 4;
    if padded > LIMIT || effective > LIMIT || stride > LIMIT {
        return Err(Error::Overflow);
    }
    if padded < effective {
        return Err(Error::Unsupported {
            what: "window larger than the padded input",
        });
    }
    if before >= effective || after >= effective {
        return Err(Error::Unsupported {
            what: "padding as large as the window",
        });
    }
    Ok(((padded - effective) / stride + 1, before))
}

pub(crate) fn check_zero_point(zp: i32) -> Result<()> {
    if (-128..=127).contains(&zp) {
        Ok(())
    } else {
        Err(invalid("zero point must be in -128..=127"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 28 wide, 5x5 kernel, stride 1: 2 cells each side.
        assert_eq!(axis(28, 5, 1, 1, Padding::Same, true).unwrap(), (28, 2));
        // 9 wide, 3x3 stride 2: out 5, total pad 2, 1 before.
        assert_eq!(axis(9, 3, 2, 1, Padding::Same, true).unwrap(), (5, 1));
        // 10 wide, 3x3 stride 2: out 5, total pad 1, 0 before.
        assert_eq!(axis(10, 3, 2, 1, Padding::Same, true).unwrap(), (5, 0));
        assert_eq!(axis(12, 5, 1, 1, Padding::Valid, true).unwrap(), (8, 0));
        assert!(axis(3, 5, 1, 1, Padding::Valid, true).is_err());
        assert!(axis(3, 0, 1, 1, Padding::Valid, true).is_err());
    }

    /// Extents up to a quarter of `isize::MAX` are taken, one more is an
    /// overflow, whichever of the padded input, the window or the stride
    /// it is.
    #[test]
    fn extents_beyond_the_limit_overflow() {
        const LIMIT: usize = isize::MAX as usize / 4;
        let valid = Padding::Valid;
        assert_eq!(axis(LIMIT, 1, 1, 1, valid, true).unwrap(), (LIMIT, 0));
        assert_eq!(axis(LIMIT, LIMIT, LIMIT, 1, valid, true).unwrap(), (1, 0));
        assert_eq!(axis(LIMIT, 2, LIMIT, 1, valid, true).unwrap(), (1, 0));
        let overflow = |r: Result<(usize, usize)>| assert_eq!(r, Err(Error::Overflow));
        overflow(axis(LIMIT + 1, 1, 1, 1, valid, true));
        overflow(axis(LIMIT, LIMIT + 1, 1, 1, valid, true));
        overflow(axis(LIMIT, 1, LIMIT + 1, 1, valid, true));
        // Padding counts: the input plus its padding is what must fit.
        let pad = Padding::Explicit {
            top: 1,
            bottom: 0,
            left: 0,
            right: 0,
        };
        overflow(axis(LIMIT, 3, 1, 1, pad, true));
        assert_eq!(axis(LIMIT, 3, 1, 1, pad, false).unwrap(), (LIMIT - 2, 0));
    }
}
