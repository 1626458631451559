//! Softmax cross-entropy from the int8 softmax output.
//!
//! A deployed classifier ends in TensorFlow Lite's int8 softmax: output
//! scale 1/256, zero point -128, so `p_q + 128` is the probability in
//! 1/256ths. The loss's gradient with respect to the logits is
//! `p - onehot(label)`: here `p_q + 128 - 256 [o == label]`, an integer in
//! `-256..=255`, exact in units of 1/256. The loss itself, `-ln p_label`, is
//! reported in Q4.12 from an integer logarithm, so host and board agree.

use crate::error::{check_len, invalid, Result};

/// Units of the logits' gradient: `1/256` of a probability.
pub const GRADIENT_SCALE: f32 = 1.0 / 256.0;

/// Fraction bits of [`cross_entropy_q12`]'s result.
pub const LOSS_FRACTION_BITS: u32 = 12;

/// Writes `p - onehot(label)` for the int8 softmax output `probs` into
/// `grad`, in units of [`GRADIENT_SCALE`].
///
/// ```
/// use picocnn::learn::loss::softmax_error;
///
/// // Three classes at 1/4, 1/2, 1/4; the label is class 0.
/// let probs: [i8; 3] = [-64, 0, -64]; // p_q + 128 = 64, 128, 64
/// let mut grad = [0i32; 3];
/// softmax_error(&probs, 0, &mut grad)?;
/// assert_eq!(grad, [64 - 256, 128, 64]);
/// # Ok::<(), picocnn::Error>(())
/// ```
pub fn softmax_error(probs: &[i8], label: usize, grad: &mut [i32]) -> Result<()> {
    check_len("softmax error", probs.len(), grad.len())?;
    if label >= probs.len() {
        return Err(invalid("label outside the classes"));
    }
    for (o, (g, &p)) in grad.iter_mut().zip(probs).enumerate() {
        *g = p as i32 + 128 - if o == label { 256 } else { 0 };
    }
    Ok(())
}

/// `-ln p_label` in Q4.12 (`ln 256` when the quantized probability is 0,
/// its smallest step).
pub fn cross_entropy_q12(probs: &[i8], label: usize) -> Result<u32> {
    let p = *probs
        .get(label)
        .ok_or(invalid("label outside the classes"))?;
    let k = (p as i32 + 128).max(1) as u32; // 1..=255
                                            // ln(256 / k) = ln 2 * (8 - log2 k)
    let bits = (8u64 << 16) - log2_q16(k) as u64;
    // ln 2 in Q16: 45426.
    Ok(((bits * 45_426 + (1 << 19)) >> 20) as u32)
}

/// `log2 x` in Q16 for `x >= 1`, by repeated squaring: the same bits on
/// every target.
fn log2_q16(x: u32) -> u32 {
    let int = 31 - x.leading_zeros();
    // The mantissa in Q30, in [1, 2).
    let mut m = if int <= 30 {
        (x as u64) << (30 - int)
    } else {
        (x as u64) >> (int - 30)
    };
    let mut frac = 0u32;
    for bit in (0..16).rev() {
        m = (m * m) >> 30;
        if m >= 2 << 30 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 16) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_p_minus_onehot() {
        let probs = [-128i8, 127, -100, 0];
        let mut g = [0i32; 4];
        softmax_error(&probs, 1, &mut g).unwrap();
        assert_eq!(g, [0, -1, 28, 128]);
        assert!(softmax_error(&probs, 4, &mut g).is_err());
        assert!(softmax_error(&probs, 0, &mut g[..3]).is_err());
    }

    #[test]
    fn the_loss_follows_ln() {
        for p in -128i8..=127 {
            let k = (p as i32 + 128).max(1) as f64;
            let want = (256.0 / k).ln();
            let got = cross_entropy_q12(&[p], 0).unwrap() as f64 / 4096.0;
            assert!((got - want).abs() < 1.0 / 2048.0, "{p}: {got} {want}");
        }
        assert!(cross_entropy_q12(&[0], 1).is_err());
    }
}
