//! The demo's digits, run-length coded in flash.
//!
//! Three 28x28 digits are 2,352 bytes raw, most of them background zeros;
//! coded, 545. The code: a zero byte followed by a count `n` (1 to 255)
//! stands for `n` zero pixels; any other byte is a pixel. The digits follow
//! one another, and a run may cross from one into the next.

/// Pixels of one digit.
pub const DIGIT_LEN: usize = 28 * 28;

/// How many digits the demo has.
pub const DIGITS: usize = 3;

/// The first three test digits of `data/mnist` (a 3, a 4 and a 9), coded.
pub static CODED: &[u8] = include_bytes!("demo-digits.rle");

/// Decodes digit `index` (taken modulo [`DIGITS`]) of `coded` into `out`.
/// A code that ends early leaves the rest of `out` zero.
pub fn digit(coded: &[u8], index: usize, out: &mut [u8; DIGIT_LEN]) {
    let start = (index % DIGITS) * DIGIT_LEN;
    out.fill(0);
    let (mut at, mut bytes) = (0usize, coded.iter());
    while at < start + DIGIT_LEN {
        let (pixel, n) = match bytes.next() {
            Some(0) => (0, bytes.next().map_or(0, |&n| n as usize)),
            Some(&p) => (p, 1),
            None => return,
        };
        // The part of this run that falls inside the digit.
        let (lo, hi) = (at.max(start), (at + n).min(start + DIGIT_LEN));
        if lo < hi {
            out[lo - start..hi - start].fill(pixel);
        }
        at += n;
    }
}
