//! Inner loops per target, chosen by `cfg(target_feature)`, never by the
//! caller. The portable loops are the reference; every fast path is tested
//! bit-exact against them (on the host by property tests of the portable
//! loops against a naive reference, on the target by the conformance
//! firmware, whose digests must equal the host's).

//!
//! `arch` is a leaf: it knows shapes, requantization and clamps, never the
//! ops that call it. [`portable`] holds the reference loops and the argument
//! types every path shares; each target module implements the same entry
//! points, and the functions below pick one.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(picocnn_thumb1)]
mod cortex_m0;
#[cfg(picocnn_dsp)]
mod cortex_m_dsp;
pub(crate) mod depthwise;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod float;
#[cfg(picocnn_fpu_half)]
mod fpu_half;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod lanes;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod packed;
pub(crate) mod portable;
#[cfg(all(test, feature = "std"))]
mod simd_check;
#[cfg(all(target_arch = "x86_64", not(any(picocnn_dsp, picocnn_thumb1))))]
mod x86;

/// Whether a path is taken: `ask` (the CPU's answer and the environment's
/// switches) the first time, then the answer kept in `known` (0: not
/// asked yet, 1: no, 2: yes).
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn remembered(known: &core::sync::atomic::AtomicU8, ask: impl FnOnce() -> bool) -> bool {
    use core::sync::atomic::Ordering;
    match known.load(Ordering::Relaxed) {
        0 => {
            let has = ask();
            known.store(1 + has as u8, Ordering::Relaxed);
            has
        }
        v => v == 2,
    }
}

/// Whether none of the environment variables `vars` is set.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
fn unset(vars: &[&str]) -> bool {
    vars.iter().all(|v| std::env::var_os(v).is_none())
}

/// The x86-64 AVX2 loops, when this CPU has them; `None` elsewhere.
#[inline(always)]
#[cfg(target_arch = "x86_64")]
fn avx2() -> Option<x86::Avx2> {
    x86::Avx2::detect()
}

/// The x86-64 AVX-512 VNNI loops, when this CPU has them.
#[inline(always)]
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub(crate) fn vnni() -> Option<x86::vnni::Vnni> {
    x86::vnni::Vnni::detect()
}

/// The AVX-512 VNNI convolution, when this CPU has it and it takes `a`
/// (then `true`).
#[inline(always)]
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn conv_vnni<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8], output: &mut [i8]) -> bool {
    let Some(v) = vnni() else { return false };
    if !x86::vnni::takes(a) {
        return false;
    }
    // SAFETY: `v` proves the CPU runs AVX-512 F, BW and VNNI.
    unsafe { x86::vnni::conv_i8(a, input, output, v) };
    true
}

pub(crate) use depthwise::depthwise_i8;

/// A float convolution (one group, or depthwise with one filter per
/// channel when `hwo`) with output channels in the vector lanes, when
/// this CPU has the vectors: then `true`, with the portable loops' bits.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn conv_float<T: FloatLane>(
    geom: ConvGeom,
    hwo: bool,
    filter: &[T],
    bias: &[T],
    range: [f32; 2],
    input: &[T],
    output: &mut [T],
) -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let c = float::FloatConv {
            geom,
            hwo,
            filter,
            bias,
            range,
        };
        if !float::takes(&c) {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v) = vnni() {
                // SAFETY: `v` proves AVX-512 F.
                unsafe { x86::float_conv_avx512(&c, input, output, v) };
                return true;
            }
            if let Some(d) = avx2() {
                // SAFETY: `d` proves AVX2.
                unsafe { x86::float_conv_avx2(&c, input, output, d) };
                return true;
            }
        }
        #[cfg(target_arch = "aarch64")]
        if aarch64::Neon::detect().is_some() {
            float::conv(&c, input, output);
            return true;
        }
    }
    let _ = (geom, hwo, filter, bias, range, input, output);
    false
}

/// A float dense layer with output channels in the vector lanes, when
/// this CPU has the vectors: then `true`, with the portable loops' bits.
#[inline]
pub(crate) fn dense_float<T: FloatLane>(
    input: &[T],
    weights: &[T],
    bias: &[T],
    range: [f32; 2],
    output: &mut [T],
) -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v) = vnni() {
                // SAFETY: `v` proves AVX-512 F.
                unsafe { x86::float_dense_avx512(input, weights, bias, range, output, v) };
                return true;
            }
            if let Some(d) = avx2() {
                // SAFETY: `d` proves AVX2.
                unsafe { x86::float_dense_avx2(input, weights, bias, range, output, d) };
                return true;
            }
        }
        #[cfg(target_arch = "aarch64")]
        if aarch64::Neon::detect().is_some() {
            float::dense(input, weights, bias, range, output);
            return true;
        }
    }
    let _ = (input, weights, bias, range, output);
    false
}
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub(crate) use x86::vnni::pool_window_float;

/// Whether int8 max pooling and residual adds have a vector loop here
/// ([`max_window_i8`], [`add_i8`]).
#[inline]
pub(crate) fn vector_elementwise() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if vnni().is_some() {
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2().is_some() {
        return true;
    }
    #[cfg(target_arch = "aarch64")]
    if aarch64::Neon::detect().is_some() {
        return true;
    }
    false
}

/// One int8 max-pooling window (the clamped maximum of `c` channels over
/// input pixels `ylo..yhi` by `xlo..xhi`, rows `w` pixels wide) with the
/// widest loop this CPU has, when [`vector_elementwise`].
#[inline]
pub(crate) fn max_window_i8(
    input: &[i8],
    w: usize,
    c: usize,
    window: [usize; 4],
    dst: &mut [i8],
    clamp: Clamp,
) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(v) = vnni() {
        // SAFETY: `v` proves AVX-512.
        return unsafe { x86::vnni::max_window_i8(input, w, c, window, dst, clamp, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = avx2() {
        // SAFETY: `d` proves AVX2.
        return unsafe { x86::lanes_max_window_i8(input, w, c, window, dst, clamp, d) };
    }
    #[cfg(target_arch = "aarch64")]
    return lanes::max_window_i8(input, w, c, window, dst, clamp);
    #[allow(unreachable_code)]
    let _ = (input, w, c, window, dst, clamp);
}

/// The two ways a residual add takes its first input: apart from the
/// output, or in it.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) enum AddInput<'a> {
    Apart(&'a [i8], &'a mut [i8]),
    InPlace(&'a mut [i8]),
}

/// TensorFlow Lite's int8 `ADD` of the first input and `b` with the
/// widest loop this CPU has, when [`vector_elementwise`]; the lengths are
/// checked equal. `zp = [input1, input2, output]`.
#[inline]
pub(crate) fn add_i8(
    io: AddInput<'_>,
    b: &[i8],
    zp: [i32; 3],
    left: u32,
    scales: [Scale; 3],
    clamp: Clamp,
) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(v) = vnni() {
        let (x, out, n) = match io {
            AddInput::Apart(a, out) => (a.as_ptr(), out.as_mut_ptr(), a.len().min(out.len())),
            AddInput::InPlace(a) => {
                let p = a.as_mut_ptr();
                (p as *const i8, p, a.len())
            }
        };
        let parts = scales.map(|s| s.parts());
        // SAFETY: `v` proves AVX-512; `x` and `out` hold `n` values, and
        // `b` at least as many (checked by the callers).
        unsafe {
            x86::vnni::add_i8(
                [x, b.as_ptr(), out],
                n.min(b.len()),
                zp,
                left,
                parts,
                clamp,
                v,
            )
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = avx2() {
        // SAFETY: `d` proves AVX2.
        return unsafe { x86::lanes_add_i8(io, b, zp, left, scales, clamp, d) };
    }
    #[cfg(target_arch = "aarch64")]
    return match io {
        AddInput::Apart(a, out) => lanes::add_i8(a, b, out, zp, left, scales, clamp),
        AddInput::InPlace(a) => lanes::add_i8_in_place(a, b, zp, left, scales, clamp),
    };
    #[allow(unreachable_code)]
    let _ = (io, b, zp, left, scales, clamp);
}

/// What [`crate::kernel_path`] reports.
pub(crate) fn path() -> &'static str {
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    if aarch64::dot::Dot::detect().is_some() {
        return "aarch64-dotprod";
    }
    #[cfg(target_arch = "aarch64")]
    if aarch64::Neon::detect().is_some() {
        return "aarch64-neon";
    }
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if vnni().is_some() {
        return "x86-64-avx512-vnni";
    }
    #[cfg(target_arch = "x86_64")]
    if avx2().is_some() {
        return "x86-64-avx2";
    }
    match (
        cfg!(picocnn_dsp),
        cfg!(picocnn_thumb1),
        cfg!(picocnn_fpu_half),
    ) {
        (true, _, true) => "cortex-m-dsp+fpu-f16",
        (true, _, false) => "cortex-m-dsp",
        (_, true, _) => "thumb1",
        (_, _, true) => "portable+fpu-f16",
        _ => "portable",
    }
}
pub(crate) use portable::{taps, ConvArgs, ConvGeom};

/// A float element as the kernels compute it: `f32`, or `f16` widened to
/// `f32` and rounded back to nearest even. Public in this private module
/// so that `num::Real` can build on it; only `f32` and `f16` have it.
pub trait FloatLane: Copy + Default + 'static {
    /// The value as `f32` (exact).
    fn widen(self) -> f32;
    /// The nearest value of this type.
    fn narrow(v: f32) -> Self;
}

impl FloatLane for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(v: f32) -> f32 {
        v
    }
}

impl FloatLane for half::f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f16_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn narrow(v: f32) -> half::f16 {
        half::f16::from_bits(f32_to_f16(v))
    }
}

/// Clamps `v` into `lo..=hi`; NaN passes through unchanged.
#[inline(always)]
pub(crate) fn clamp_f32(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi {
        hi
    } else {
        v
    }
}

/// The `f32` value of half-precision `bits` (exact), as `half` gives it.
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    #[cfg(picocnn_fpu_half)]
    return fpu_half::f16_to_f32(bits);
    #[cfg(not(picocnn_fpu_half))]
    half::f16::from_bits(bits).to_f32()
}

/// The nearest half-precision value of `v` (round to nearest even), as
/// `half` gives it.
#[inline(always)]
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    #[cfg(picocnn_fpu_half)]
    return fpu_half::f32_to_f16(v);
    #[cfg(not(picocnn_fpu_half))]
    half::f16::from_f32(v).to_bits()
}

/// `acc + x[0] w[0] + x[1] w[1] + ...` in `f32`, each product and sum
/// rounded in this order (never fused): the float kernels' inner loop, so
/// that every target gives the same bits.
#[inline(always)]
pub(crate) fn dot_f32(acc: f32, x: &[f32], w: &[f32]) -> f32 {
    let n = x.len().min(w.len());
    let mut acc = acc;
    let (xs, xt) = x[..n].as_chunks::<4>();
    let (ws, wt) = w[..n].as_chunks::<4>();
    for (x, w) in xs.iter().zip(ws) {
        acc += x[0] * w[0];
        acc += x[1] * w[1];
        acc += x[2] * w[2];
        acc += x[3] * w[3];
    }
    for (x, w) in xt.iter().zip(wt) {
        acc += x * w;
    }
    acc
}

/// [`dot_f32`] over half-precision bits.
#[inline(always)]
pub(crate) fn dot_f16(acc: f32, x: &[u16], w: &[u16]) -> f32 {
    #[cfg(picocnn_fpu_half)]
    return fpu_half::dot_f16(acc, x, w);
    #[cfg(not(picocnn_fpu_half))]
    {
        let mut acc = acc;
        for (&x, &w) in x.iter().zip(w) {
            acc += f16_to_f32(x) * f16_to_f32(w);
        }
        acc
    }
}

/// [`dot_f16`] of one `x` with two weight rows: `[acc[0] + x.wa, acc[1] + x.wb]`,
/// each in [`dot_f16`]'s order.
#[inline(always)]
pub(crate) fn dot2_f16(acc: [f32; 2], x: &[u16], wa: &[u16], wb: &[u16]) -> [f32; 2] {
    #[cfg(picocnn_fpu_half)]
    return fpu_half::dot2_f16(acc, x, wa, wb);
    #[cfg(not(picocnn_fpu_half))]
    [dot_f16(acc[0], x, wa), dot_f16(acc[1], x, wb)]
}

/// Scratch bytes of a general int8 convolution with filters of `depth`
/// values: two packed int16 columns and two natural-order ones, plus slack
/// to align the buffer. The same on every target, so a plan made on the
/// host sizes the arena of any board.
pub(crate) const fn im2col_bytes(depth: usize) -> usize {
    4 * depth * core::mem::size_of::<i16>() + 3
}

/// Scratch bytes of a 1x1 convolution or dense layer over `depth` inputs:
/// one packed pair of int16 columns, plus alignment slack.
pub(crate) const fn pointwise_bytes(depth: usize) -> usize {
    2 * depth * core::mem::size_of::<i16>() + 3
}

/// The largest 4-byte aligned `i16` region inside a byte scratch buffer.
pub(crate) fn scratch_i16(scratch: &mut [u8]) -> &mut [i16] {
    // SAFETY: every bit pattern is a valid u32, and `align_to_mut` returns an
    // aligned middle part that lies within `scratch`.
    let (_, mid, _) = unsafe { scratch.align_to_mut::<u32>() };
    let len = mid.len() * 2;
    // SAFETY: the u32 region is 4-byte aligned, so also 2-byte aligned, and
    // holds exactly `2 * mid.len()` halfwords; it stays borrowed from
    // `scratch` for the returned lifetime and every bit pattern is a valid i16.
    unsafe { core::slice::from_raw_parts_mut(mid.as_mut_ptr() as *mut i16, len) }
}

/// `(x * m + 2^30) >> 31` in 32 bits: gemmlowp's rounding doubling high
/// multiply without its saturation (see `quant::multiply_by_nonneg_multiplier`).
#[inline(always)]
pub(crate) fn rounding_high_mul(x: i32, m: i32) -> i32 {
    #[cfg(picocnn_thumb1)]
    return portable::rounding_high_mul_16(x, m);
    #[cfg(not(picocnn_thumb1))]
    {
        ((x as i64 * m as i64 + (1 << 30)) >> 31) as i32
    }
}

/// An int8 output range `min..=max` (fused activation in the quantized domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Clamp {
    /// Lowest output value.
    pub min: i8,
    /// Highest output value.
    pub max: i8,
}

impl Clamp {
    /// The whole int8 range.
    pub const NONE: Clamp = Clamp {
        min: -128,
        max: 127,
    };

    /// A checked range (`min <= max`).
    pub fn new(min: i8, max: i8) -> crate::Result<Clamp> {
        if min <= max {
            Ok(Clamp { min, max })
        } else {
            Err(crate::error::invalid("clamp min above max"))
        }
    }

    #[inline(always)]
    pub(crate) fn apply(&self, v: i32) -> i8 {
        // Not `Ord::clamp`, whose check of `min <= max` costs a compare and
        // branch per value: `new` has checked it.
        v.max(self.min as i32).min(self.max as i32) as i8
    }
}

/// One output channel's requantization with its shifts and rounding masks
/// worked out once, for the several accumulators a kernel requantizes with
/// it: [`multiply_by_nonneg_multiplier`] in parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    multiplier: i32,
    left: u32,
    right: u32,
    mask: i32,
    half: i32,
}

impl Scale {
    /// A multiplier checked not negative and `shift` in `-31..=30`.
    #[inline(always)]
    pub(crate) fn new(multiplier: i32, shift: i32) -> Self {
        let left = if shift > 0 { shift } else { 0 };
        let right = ((left - shift) & 31) as u32;
        let mask = ((1u32 << right) - 1) as i32;
        Scale {
            multiplier,
            left: left as u32,
            right,
            mask,
            half: mask >> 1,
        }
    }

    /// `[multiplier, left, right, mask, half]`, for loops that requantize
    /// a vector of channels.
    #[cfg_attr(
        not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))),
        allow(dead_code)
    )]
    pub(crate) fn parts(self) -> [i32; 5] {
        [
            self.multiplier,
            self.left as i32,
            self.right as i32,
            self.mask,
            self.half,
        ]
    }

    /// The requantized `x` (before the output's zero point and clamp).
    #[inline(always)]
    pub(crate) fn apply(self, x: i32) -> i32 {
        let high = rounding_high_mul(x.wrapping_shl(self.left), self.multiplier);
        // gemmlowp's RoundingDivideByPOT: half away from zero.
        let threshold = self.half + ((high as u32) >> 31) as i32;
        (high >> self.right) + ((high & self.mask) > threshold) as i32
    }
}

/// One output channel's requantization, zero point included, for
/// accumulators below `2^30` in size and a right shift of 1 to 22 (see
/// [`fits`](Self::fits); most layers): TensorFlow Lite's
/// `MultiplyByQuantizedMultiplier` plus the zero point, to the bit, in fewer
/// instructions. The high multiply cannot overflow when its operand is
/// doubled (the DSP's SMMULR rounds at bit 31 then), and the rounding
/// division is one shift: with `high = q 2^r + rem`, adding `2^(r-1)`, less
/// one for negative `high`, carries exactly when gemmlowp's rounding adds
/// one, and the zero point rides along as `zp 2^r`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NarrowScale {
    multiplier: i32,
    right: u32,
    /// `2^(right-1) + zp 2^right`.
    round: i32,
}

impl NarrowScale {
    /// Largest right shift: the zero point times `2^right` stays below
    /// `2^29`, so that no sum overflows.
    const MAX_RIGHT: i32 = 22;

    /// Whether accumulators of at most `bound` in size take this path
    /// with a multiplier's `shift`.
    #[inline(always)]
    pub(crate) fn fits(bound: u32, shift: i32) -> bool {
        (-Self::MAX_RIGHT..=-1).contains(&shift) && bound < 1 << 30
    }

    /// A checked (not negative) `multiplier`, a `shift` that [`fits`](Self::fits) and the
    /// output's zero point in `-128..=127`.
    #[inline(always)]
    pub(crate) fn new(multiplier: i32, shift: i32, zero_point: i32) -> Self {
        let right = (-shift) as u32 & 31;
        NarrowScale {
            multiplier,
            right,
            round: ((1u32 << right) >> 1) as i32 + (zero_point << right),
        }
    }

    /// The requantized `x` plus the zero point, before the clamp.
    #[inline(always)]
    pub(crate) fn apply(self, x: i32) -> i32 {
        let high = rounding_high_mul_narrow(x, self.multiplier);
        (high + (self.round + (high >> 31))) >> self.right
    }
}

/// [`rounding_high_mul`] of an `x` below `2^30` in size.
#[inline(always)]
fn rounding_high_mul_narrow(x: i32, m: i32) -> i32 {
    #[cfg(picocnn_dsp)]
    return cortex_m_dsp::smmulr(x << 1, m);
    #[cfg(not(picocnn_dsp))]
    rounding_high_mul(x, m)
}

/// One depthwise tap's four filter values, prepared for [`mac4`].
#[cfg(picocnn_dsp)]
pub(crate) use cortex_m_dsp::filter4;
/// What [`filter4`] gives.
#[cfg(picocnn_dsp)]
pub(crate) type Filter4 = [u32; 2];
/// What [`filter4`] gives.
#[cfg(not(picocnn_dsp))]
pub(crate) type Filter4 = [i8; 4];
#[cfg(not(picocnn_dsp))]
pub(crate) use portable::filter4;

/// Four independent multiply-accumulates (depthwise, one tap of four
/// channels): `acc[j] + (x[j] + offset) * w[j]`, `w` from [`filter4`].
#[cfg(picocnn_dsp)]
pub(crate) use cortex_m_dsp::mac4;
/// A whole 3x3 depthwise window of four channels (see `portable::window_3x3`).
#[cfg(picocnn_dsp)]
pub(crate) use cortex_m_dsp::window_3x3;
#[cfg(not(picocnn_dsp))]
pub(crate) use portable::mac4;
#[cfg(not(picocnn_dsp))]
pub(crate) use portable::window_3x3;

#[inline(always)]
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::conv_general_i8(a, input, output, col);
    #[cfg(picocnn_thumb1)]
    cortex_m0::conv_general_i8(a, input, output, col);
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if conv_vnni(a, input, output) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = avx2() {
        // SAFETY: `d` proves the CPU runs AVX2.
        return unsafe { x86::conv_general_i8(a, input, output, col, d) };
    }
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    if let (Some(d), true) = (aarch64::dot::Dot::detect(), aarch64::dot::takes(a)) {
        // SAFETY: `d` proves the core has the dot-product instructions.
        return unsafe { aarch64::dot::conv_i8(a, input, output, d) };
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(d) = aarch64::Neon::detect() {
        return aarch64::conv_general_i8(a, input, output, col, d);
    }
    #[cfg(not(any(picocnn_dsp, picocnn_thumb1)))]
    portable::conv_general_i8(a, input, output, col);
}

#[inline(always)]
pub(crate) fn conv_pointwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::conv_pointwise_i8(a, input, output, col);
    #[cfg(picocnn_thumb1)]
    cortex_m0::conv_pointwise_i8(a, input, output, col);
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if conv_vnni(a, input, output) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = avx2() {
        // SAFETY: `d` proves the CPU runs AVX2.
        return unsafe { x86::conv_pointwise_i8(a, input, output, col, d) };
    }
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    if let (Some(d), true) = (aarch64::dot::Dot::detect(), aarch64::dot::takes(a)) {
        // SAFETY: `d` proves the core has the dot-product instructions.
        return unsafe { aarch64::dot::conv_i8(a, input, output, d) };
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(d) = aarch64::Neon::detect() {
        return aarch64::conv_pointwise_i8(a, input, output, col, d);
    }
    #[cfg(not(any(picocnn_dsp, picocnn_thumb1)))]
    portable::conv_pointwise_i8(a, input, output, col);
}

/// Dense accumulators: `emit(o, bias[o] + sum_i w[o][i] * (x[i] + offset))`.
#[inline(always)]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    emit: impl FnMut(usize, i32),
    bias: &[i32],
) {
    #[cfg(picocnn_dsp)]
    cortex_m_dsp::dense_i8(input, weights, col, offset, emit, bias);
    #[cfg(picocnn_thumb1)]
    cortex_m0::dense_i8(input, weights, col, offset, emit, bias);
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(v) = vnni() {
        // SAFETY: `v` proves the CPU runs AVX-512 F, BW and VNNI.
        return unsafe { x86::vnni::dense_i8(input, weights, offset, emit, bias, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(d) = avx2() {
        // SAFETY: `d` proves the CPU runs AVX2.
        return unsafe { x86::dense_i8(input, weights, col, offset, emit, bias, d) };
    }
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    if let Some(d) = aarch64::dot::Dot::detect() {
        // SAFETY: `d` proves the core has the dot-product instructions.
        return unsafe { aarch64::dot::dense_i8(input, weights, offset, emit, bias, d) };
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(d) = aarch64::Neon::detect() {
        return aarch64::dense_i8(input, weights, col, offset, emit, bias, d);
    }
    #[cfg(not(any(picocnn_dsp, picocnn_thumb1)))]
    portable::dense_i8(input, weights, col, offset, emit, bias);
}

#[cfg(test)]
mod tests {
    use super::NarrowScale;
    use crate::quant::multiply_by_quantized_multiplier;

    /// SMMULR as the Armv7E-M manual defines it.
    fn smmulr(a: i32, b: i32) -> i32 {
        ((a as i64 * b as i64 + (1 << 31)) >> 32) as i32
    }

    #[test]
    fn narrow_scale_is_tflites_plus_the_zero_point() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0u32;
        for shift in -31..=30 {
            for _ in 0..8_000 {
                let r = next();
                let m = (r as i32) & i32::MAX;
                let zp = (r >> 32) as u8 as i8 as i32;
                if !NarrowScale::fits(1, shift) {
                    // Only right shifts of 1 to 22 take it.
                    assert!(!(-NarrowScale::MAX_RIGHT..0).contains(&shift));
                    continue;
                }
                let top = (1i64 << 30) - 1;
                assert!(NarrowScale::fits(top as u32, shift));
                assert!(!NarrowScale::fits(top as u32 + 1, shift));
                let s = NarrowScale::new(m, shift, zp);
                let wide = (next() as i64 % (top + 1)) as i32;
                let small = wide >> (next() % 31);
                for x in [wide, small, top as i32, -(top as i32), 0, 1, -1] {
                    let want = multiply_by_quantized_multiplier(x, m, shift) + zp;
                    assert_eq!(s.apply(x), want, "x {x} m {m} shift {shift} zp {zp}");
                    // The DSP's doubled SMMULR is the same high multiply.
                    assert_eq!(smmulr(x << 1, m), super::rounding_high_mul(x, m), "{x} {m}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000_000);
    }
}
