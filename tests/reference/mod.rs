//! Naive reference kernels, written for clarity rather than speed, straight
//! from the definitions in TensorFlow Lite's reference kernels. The library's
//! kernels must match the int8 ones bit for bit.
#![allow(dead_code, clippy::too_many_arguments)]

/// Output size and leading padding, computed the way TensorFlow does.
pub fn out_and_pad(input: usize, k: usize, s: usize, d: usize, pad: Pad) -> Option<(usize, usize)> {
    let eff = (k - 1) * d + 1;
    match pad {
        Pad::Valid => {
            if input < eff {
                None
            } else {
                Some(((input - eff) / s + 1, 0))
            }
        }
        Pad::Same => {
            let out = input.div_ceil(s);
            let needed = (out - 1) * s + eff;
            let total = needed.saturating_sub(input);
            Some((out, total / 2))
        }
        Pad::Explicit(before, after) => {
            if input + before + after < eff || before >= eff || after >= eff {
                None
            } else {
                Some(((input + before + after - eff) / s + 1, before))
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Pad {
    Valid,
    Same,
    Explicit(usize, usize),
}

#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
    pub groups: usize,
}

pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

pub fn rdbp(x: i32, e: i32) -> i32 {
    // Exact: round x / 2^e half away from zero.
    let q = x as i64;
    let div = 1i64 << e;
    let r = if q >= 0 {
        (q + div / 2) / div
    } else {
        -((-q + div / 2) / div)
    };
    // TFLite rounds ties away from zero, which the formula above does for
    // positive x; for negative x it rounds -x up, i.e. away from zero too.
    r as i32
}

pub fn mbqm(x: i32, m: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    rdbp(srdhm(x.wrapping_mul(1 << left), m), right)
}

/// TFLite `ConvPerChannel` / `DepthwiseConvPerChannel` (as groups), OHWI filters.
pub fn conv_i8(
    g: &ConvGeom,
    input: &[i8],
    filter: &[i8],
    bias: &[i32],
    mult: &[i32],
    shift: &[i32],
    zp_in: i32,
    zp_out: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    let cpg = g.cin / g.groups;
    let opg = g.cout / g.groups;
    let mut out = vec![0i8; g.oh * g.ow * g.cout];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for oc in 0..g.cout {
                let grp = oc / opg;
                let mut acc: i32 = 0;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                        let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                            continue;
                        }
                        for ci in 0..cpg {
                            let x = input
                                [(iy as usize * g.w + ix as usize) * g.cin + grp * cpg + ci]
                                as i32;
                            let wv = filter[((oc * g.kh + ky) * g.kw + kx) * cpg + ci] as i32;
                            acc = acc.wrapping_add(wv * (x - zp_in));
                        }
                    }
                }
                acc = acc.wrapping_add(bias[oc]);
                let v = mbqm(acc, mult[oc], shift[oc]).wrapping_add(zp_out);
                out[(oy * g.ow + ox) * g.cout + oc] = v.clamp(lo as i32, hi as i32) as i8;
            }
        }
    }
    out
}

/// The taps of output `(oy, ox, oc)` as (input index, filter index) pairs
/// in the library's order: row by row, column by column, channel by
/// channel, padding skipped. Filters are OHWI.
fn conv_taps(
    g: &ConvGeom,
    oy: usize,
    ox: usize,
    oc: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let cpg = g.cin / g.groups;
    let grp = oc / (g.cout / g.groups);
    (0..g.kh).flat_map(move |ky| {
        (0..g.kw).flat_map(move |kx| {
            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
            let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
            let inside = iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize;
            let n = if inside { cpg } else { 0 };
            let base = (iy.max(0) as usize * g.w + ix.max(0) as usize) * g.cin + grp * cpg;
            (0..n).map(move |ci| (base + ci, ((oc * g.kh + ky) * g.kw + kx) * cpg + ci))
        })
    })
}

/// A float convolution in `f32` in the order the library documents (see
/// [`conv_taps`]), each product and sum rounded, then the bias, then the
/// clamp. Bit-exact.
pub fn conv_f32_ordered(
    g: &ConvGeom,
    input: &[f32],
    filter: &[f32],
    bias: &[f32],
    lo: f32,
    hi: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; g.oh * g.ow * g.cout];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for (oc, &b) in bias.iter().enumerate().take(g.cout) {
                let acc =
                    conv_taps(g, oy, ox, oc).fold(0.0f32, |a, (i, f)| a + input[i] * filter[f]);
                let v = acc + b;
                let v = if v < lo { lo } else { v };
                out[(oy * g.ow + ox) * g.cout + oc] = if v > hi { hi } else { v };
            }
        }
    }
    out
}

/// Float convolution in f64, and per output the sum of the magnitudes of
/// its terms (for tolerances).
pub fn conv_f64(
    g: &ConvGeom,
    input: &[f64],
    filter: &[f64],
    bias: &[f64],
    lo: f64,
    hi: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; g.oh * g.ow * g.cout];
    let mut mag = vec![0.0; g.oh * g.ow * g.cout];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for (oc, &b) in bias.iter().enumerate().take(g.cout) {
                let (mut acc, mut m) = (0.0, b.abs());
                for (i, f) in conv_taps(g, oy, ox, oc) {
                    acc += filter[f] * input[i];
                    m += (filter[f] * input[i]).abs();
                }
                let i = (oy * g.ow + ox) * g.cout + oc;
                out[i] = (acc + b).clamp(lo, hi);
                mag[i] = m;
            }
        }
    }
    (out, mag)
}

pub fn dense_i8(
    input: &[i8],
    w: &[i8],
    bias: &[i32],
    mult: &[i32],
    shift: &[i32],
    zp_in: i32,
    zp_out: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    let n = input.len();
    (0..bias.len())
        .map(|o| {
            let mut acc = 0i32;
            for i in 0..n {
                acc = acc.wrapping_add(w[o * n + i] as i32 * (input[i] as i32 - zp_in));
            }
            acc = acc.wrapping_add(bias[o]);
            (mbqm(acc, mult[o], shift[o]) + zp_out).clamp(lo as i32, hi as i32) as i8
        })
        .collect()
}

/// TFLite int8 MaxPool / AveragePool with per-cell bounds checks.
pub fn pool_i8(
    input: &[i8],
    h: usize,
    w: usize,
    c: usize,
    fh: usize,
    fw: usize,
    sh: usize,
    sw: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
    avg: bool,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    let mut out = vec![0i8; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let mut acc = 0i32;
                let mut mx = i32::MIN;
                let mut count = 0i32;
                for fy in 0..fh {
                    for fx in 0..fw {
                        let iy = (oy * sh + fy) as isize - pt as isize;
                        let ix = (ox * sw + fx) as isize - pl as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let v = input[(iy as usize * w + ix as usize) * c + ch] as i32;
                        acc += v;
                        mx = mx.max(v);
                        count += 1;
                    }
                }
                let v = if avg {
                    if acc > 0 {
                        (acc + count / 2) / count
                    } else {
                        (acc - count / 2) / count
                    }
                } else {
                    mx
                };
                out[(oy * ow + ox) * c + ch] = v.clamp(lo as i32, hi as i32) as i8;
            }
        }
    }
    out
}

/// TFLite int8 ADD with the multipliers already derived.
pub fn add_i8(
    a: &[i8],
    b: &[i8],
    zp1: i32,
    m1: i32,
    s1: i32,
    zp2: i32,
    m2: i32,
    s2: i32,
    mo: i32,
    so: i32,
    zpo: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let x = (x as i32 - zp1) * (1 << 20);
            let y = (y as i32 - zp2) * (1 << 20);
            let sx = rdbp(srdhm(x, m1), -s1);
            let sy = rdbp(srdhm(y, m2), -s2);
            let raw = rdbp(srdhm(sx + sy, mo), -so) + zpo;
            raw.clamp(lo as i32, hi as i32) as i8
        })
        .collect()
}

/// Deterministic pseudo-random numbers for tests (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn vec_i8(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }
}

/// TFLite `Requantize` (int8 to int8) and `ReluX`: `zp_out + M * (q - zp_in)`, clamped.
pub fn requantize_i8(
    input: &[i8],
    zp_in: i32,
    m: i32,
    shift: i32,
    zp_out: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    input
        .iter()
        .map(|&q| (mbqm(q as i32 - zp_in, m, shift) + zp_out).clamp(lo as i32, hi as i32) as i8)
        .collect()
}

/// Channel concatenation: for each pixel, the inputs' channels in order.
pub fn concat<T: Copy>(parts: &[(Vec<T>, usize)]) -> Vec<T> {
    let pixels = parts[0].0.len() / parts[0].1;
    let mut out = Vec::new();
    for p in 0..pixels {
        for (data, c) in parts {
            out.extend_from_slice(&data[p * c..(p + 1) * c]);
        }
    }
    out
}
