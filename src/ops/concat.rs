//! Channel concatenation of 2..N tensors with the same height and width
//! (Inception branches). The int8 kernel requantizes each input to the
//! output's parameters; inputs that already share them are copied.
//!
//! ```
//! use picocnn::ops::concat::{concat_float, ConcatInput};
//!
//! // Two 1x2 pixels: 1 channel and 2 channels.
//! let a = [1.0f32, 2.0];
//! let b = [10.0f32, 11.0, 20.0, 21.0];
//! let mut out = [0.0f32; 6];
//! concat_float(&[ConcatInput { data: &a, channels: 1 }, ConcatInput { data: &b, channels: 2 }], &mut out)?;
//! assert_eq!(out, [1.0, 10.0, 11.0, 2.0, 20.0, 21.0]);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::error::{check_len, invalid, Error, Result};
use crate::quant::Rescale;

/// One input of a concatenation: its data (NHWC) and its channel count.
#[derive(Debug, Clone, Copy)]
pub struct ConcatInput<'a, T> {
    /// The tensor.
    pub data: &'a [T],
    /// Its channels.
    pub channels: usize,
}

/// One int8 input of a concatenation, with its rescale to the output.
#[derive(Debug, Clone, Copy)]
pub struct ConcatInputI8<'a> {
    /// The tensor.
    pub data: &'a [i8],
    /// Its channels.
    pub channels: usize,
    /// From its quantization to the output's.
    pub rescale: Rescale,
}

/// Checks the parts and returns the pixel count.
fn plan<'a, T: 'a>(
    parts: impl Iterator<Item = (&'a [T], usize)> + Clone,
    output_len: usize,
) -> Result<usize> {
    let mut total_c = 0usize;
    let mut pixels = None;
    let mut n = 0;
    for (data, c) in parts {
        n += 1;
        if c == 0 || data.len() % c != 0 {
            return Err(invalid(
                "concat input length not a multiple of its channels",
            ));
        }
        let p = data.len() / c;
        match pixels {
            None => pixels = Some(p),
            Some(q) if q != p => {
                return Err(Error::ShapeMismatch {
                    what: "concat input pixels",
                    expected: q,
                    got: p,
                })
            }
            _ => {}
        }
        total_c = total_c.checked_add(c).ok_or(Error::Overflow)?;
    }
    if n == 0 {
        return Err(invalid("concat needs at least one input"));
    }
    let pixels = pixels.unwrap_or(0);
    check_len(
        "concat output",
        pixels.checked_mul(total_c).ok_or(Error::Overflow)?,
        output_len,
    )?;
    Ok(pixels)
}

/// Concatenates float (or any copyable) tensors along channels.
pub fn concat_float<T: Copy>(inputs: &[ConcatInput<'_, T>], output: &mut [T]) -> Result<()> {
    let pixels = plan(inputs.iter().map(|i| (i.data, i.channels)), output.len())?;
    let mut out = 0;
    for p in 0..pixels {
        for i in inputs {
            let c = i.channels;
            output[out..out + c].copy_from_slice(&i.data[p * c..(p + 1) * c]);
            out += c;
        }
    }
    Ok(())
}

/// Concatenates int8 tensors along channels, requantizing each input.
pub fn concat_i8(inputs: &[ConcatInputI8<'_>], output: &mut [i8]) -> Result<()> {
    let pixels = plan(inputs.iter().map(|i| (i.data, i.channels)), output.len())?;
    for i in inputs {
        i.rescale.validate()?;
    }
    let mut out = 0;
    for p in 0..pixels {
        for i in inputs {
            let c = i.channels;
            let src = &i.data[p * c..(p + 1) * c];
            let dst = &mut output[out..out + c];
            if i.rescale.is_identity() {
                dst.copy_from_slice(src);
            } else {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = i.rescale.apply(s).clamp(-128, 127) as i8;
                }
            }
            out += c;
        }
    }
    Ok(())
}

/// Writes one int8 input into its channel slot of a concatenation: channels
/// `offset..offset + channels` of every pixel of `output`, which has
/// `total_channels` channels. Calling it for each input in turn gives the
/// same result as [`concat_i8`] without a list of inputs.
pub fn concat_into_i8(
    input: &[i8],
    channels: usize,
    offset: usize,
    total_channels: usize,
    rescale: Rescale,
    output: &mut [i8],
) -> Result<()> {
    let pixels = check_slot(input.len(), channels, offset, total_channels, output.len())?;
    rescale.validate()?;
    let identity = rescale.is_identity();
    for p in 0..pixels {
        let src = &input[p * channels..(p + 1) * channels];
        let dst = &mut output[p * total_channels + offset..p * total_channels + offset + channels];
        if identity {
            dst.copy_from_slice(src);
        } else {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = rescale.apply(s).clamp(-128, 127) as i8;
            }
        }
    }
    Ok(())
}

/// Float twin of [`concat_into_i8`].
pub fn concat_into_float<T: Copy>(
    input: &[T],
    channels: usize,
    offset: usize,
    total_channels: usize,
    output: &mut [T],
) -> Result<()> {
    let pixels = check_slot(input.len(), channels, offset, total_channels, output.len())?;
    for p in 0..pixels {
        output[p * total_channels + offset..p * total_channels + offset + channels]
            .copy_from_slice(&input[p * channels..(p + 1) * channels]);
    }
    Ok(())
}

fn check_slot(
    input_len: usize,
    channels: usize,
    offset: usize,
    total: usize,
    output_len: usize,
) -> Result<usize> {
    let end = offset.checked_add(channels).ok_or(Error::Overflow)?;
    if channels == 0 || end > total || !input_len.is_multiple_of(channels) {
        return Err(invalid("concat slot outside the output channels"));
    }
    let pixels = input_len / channels;
    check_len(
        "concat output",
        pixels.checked_mul(total).ok_or(Error::Overflow)?,
        output_len,
    )?;
    Ok(pixels)
}

/// Scratch bytes the kernels of this module need: none (planners size one
/// arena from every kernel's `scratch_len`).
pub const fn scratch_len() -> usize {
    0
}
