//! x86-64 int8 dot products with AVX2: sixteen int16 activations times
//! sixteen int8 weights (widened) per VPMADDWD, the portable loop nests
//! around them compiled for AVX2. Integer sums, so the bits are the
//! portable loops'. Chosen at run time with `std` (the CPU is asked once,
//! by the standard library's cached detection), else when the build
//! enables AVX2.

use core::arch::x86_64::*;

#[cfg(feature = "std")]
pub(crate) mod vnni;

use super::portable::{self, for_pixel_pairs, gather, ConvArgs, Dots, Interior, Lane};

/// Proof that the CPU runs AVX2: only [`Avx2::detect`] makes one.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, when this CPU has AVX2 and `PICOCNN_PORTABLE` is not
    /// set (with `std`: asked once, then remembered).
    #[inline(always)]
    pub(crate) fn detect() -> Option<Avx2> {
        #[cfg(feature = "std")]
        let has = {
            static HAS: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
            super::remembered(&HAS, || {
                std::is_x86_feature_detected!("avx2") && super::unset(&["PICOCNN_PORTABLE"])
            })
        };
        #[cfg(not(feature = "std"))]
        let has = cfg!(target_feature = "avx2");
        has.then_some(Avx2(()))
    }
}

/// The sum of the eight int32 lanes.
#[inline(always)]
unsafe fn sum8(v: __m256i) -> i32 {
    // SAFETY: the caller holds an `Avx2` token.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// Sixteen weights at `w`, widened.
#[inline(always)]
unsafe fn weights16(w: *const i8) -> __m256i {
    // SAFETY: the caller's: 16 readable bytes, and AVX2.
    unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(w as *const __m128i)) }
}

/// Eight weights at `w`, widened.
#[inline(always)]
unsafe fn weights8(w: *const i8) -> __m128i {
    // SAFETY: the caller's: 8 readable bytes, and AVX2.
    unsafe { _mm_cvtepi8_epi16(_mm_loadl_epi64(w as *const __m128i)) }
}

/// The eight-lane sums of `a` and `b`: `[sum a, sum b]`.
#[inline(always)]
unsafe fn sum8x2(a: __m256i, b: __m256i) -> [i32; 2] {
    // SAFETY: the caller holds an `Avx2` token.
    unsafe {
        // [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]
        let h = _mm256_hadd_epi32(a, b);
        let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        // [a.., a.., b.., b..] -> [sum a, sum b] in lanes 0 and 2.
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b11_11_01_01>(s));
        [_mm_cvtsi128_si32(s), _mm_extract_epi32::<2>(s)]
    }
}

impl Dots for Avx2 {
    #[inline(always)]
    fn dot(self, col: &[i16], w: &[i8]) -> i32 {
        let n = col.len().min(w.len());
        let mut k = 0;
        // SAFETY: `self` proves AVX2; every load reads 16 or 8 values
        // below `n`.
        let mut acc = unsafe {
            let mut acc = _mm256_setzero_si256();
            while k + 16 <= n {
                let c = _mm256_loadu_si256(col.as_ptr().add(k) as *const __m256i);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(c, weights16(w.as_ptr().add(k))));
                k += 16;
            }
            if k + 8 <= n {
                let c = _mm_loadu_si128(col.as_ptr().add(k) as *const __m128i);
                let p = _mm_madd_epi16(c, weights8(w.as_ptr().add(k)));
                acc = _mm256_add_epi32(acc, _mm256_zextsi128_si256(p));
                k += 8;
            }
            sum8(acc)
        };
        for i in k..n {
            acc = acc.wrapping_add(col[i] as i32 * w[i] as i32);
        }
        acc
    }

    #[inline(always)]
    fn dot2(self, col: &[i16], wa: &[i8], wb: &[i8], acc: [i32; 2]) -> [i32; 2] {
        let n = col.len().min(wa.len()).min(wb.len());
        let mut k = 0;
        // SAFETY: `self` proves AVX2; every load reads 16 or 8 values
        // below `n`.
        let [mut x, mut y] = unsafe {
            let (mut sa, mut sb) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            while k + 16 <= n {
                let c = _mm256_loadu_si256(col.as_ptr().add(k) as *const __m256i);
                sa = _mm256_add_epi32(sa, _mm256_madd_epi16(c, weights16(wa.as_ptr().add(k))));
                sb = _mm256_add_epi32(sb, _mm256_madd_epi16(c, weights16(wb.as_ptr().add(k))));
                k += 16;
            }
            if k + 8 <= n {
                let c = _mm_loadu_si128(col.as_ptr().add(k) as *const __m128i);
                let pa = _mm_madd_epi16(c, weights8(wa.as_ptr().add(k)));
                let pb = _mm_madd_epi16(c, weights8(wb.as_ptr().add(k)));
                sa = _mm256_add_epi32(sa, _mm256_zextsi128_si256(pa));
                sb = _mm256_add_epi32(sb, _mm256_zextsi128_si256(pb));
                k += 8;
            }
            let [s, t] = sum8x2(sa, sb);
            [acc[0].wrapping_add(s), acc[1].wrapping_add(t)]
        };
        for i in k..n {
            let c = col[i] as i32;
            x = x.wrapping_add(c * wa[i] as i32);
            y = y.wrapping_add(c * wb[i] as i32);
        }
        [x, y]
    }
}

/// The eight dot products of two columns and four filter rows:
/// `[A.w0, A.w1, A.w2, A.w3, B.w0, B.w1, B.w2, B.w3]`.
#[inline(always)]
fn dot_2x4(_: Avx2, ca: &[i16], cb: &[i16], w: [&[i8]; 4]) -> [i32; 8] {
    let n = ca
        .len()
        .min(cb.len())
        .min(w.iter().map(|r| r.len()).min().unwrap_or(0));
    let mut k = 0;
    let mut s = [0i32; 8];
    // SAFETY: the `Avx2` argument proves AVX2; every load reads 16 or 8
    // values below `n`; the store is of an eight-lane array.
    unsafe {
        let mut acc = [_mm256_setzero_si256(); 8];
        while k + 16 <= n {
            let xa = _mm256_loadu_si256(ca.as_ptr().add(k) as *const __m256i);
            let xb = _mm256_loadu_si256(cb.as_ptr().add(k) as *const __m256i);
            for r in 0..4 {
                let wr = weights16(w[r].as_ptr().add(k));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(xa, wr));
                acc[4 + r] = _mm256_add_epi32(acc[4 + r], _mm256_madd_epi16(xb, wr));
            }
            k += 16;
        }
        if k + 8 <= n {
            let xa = _mm_loadu_si128(ca.as_ptr().add(k) as *const __m128i);
            let xb = _mm_loadu_si128(cb.as_ptr().add(k) as *const __m128i);
            for r in 0..4 {
                let wr = weights8(w[r].as_ptr().add(k));
                let (pa, pb) = (_mm_madd_epi16(xa, wr), _mm_madd_epi16(xb, wr));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_zextsi128_si256(pa));
                acc[4 + r] = _mm256_add_epi32(acc[4 + r], _mm256_zextsi128_si256(pb));
            }
            k += 8;
        }
        // Three rounds of pairwise sums put each vector's total in a lane.
        let h0 = _mm256_hadd_epi32(acc[0], acc[1]);
        let h1 = _mm256_hadd_epi32(acc[2], acc[3]);
        let h2 = _mm256_hadd_epi32(acc[4], acc[5]);
        let h3 = _mm256_hadd_epi32(acc[6], acc[7]);
        let (g0, g1) = (_mm256_hadd_epi32(h0, h1), _mm256_hadd_epi32(h2, h3));
        let lo = _mm256_permute2x128_si256::<0x20>(g0, g1);
        let hi = _mm256_permute2x128_si256::<0x31>(g0, g1);
        _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, _mm256_add_epi32(lo, hi));
    }
    for i in k..n {
        let (xa, xb) = (ca[i] as i32, cb[i] as i32);
        for r in 0..4 {
            let v = w[r][i] as i32;
            s[r] = s[r].wrapping_add(xa * v);
            s[4 + r] = s[4 + r].wrapping_add(xb * v);
        }
    }
    s
}

/// Output channels `lo..hi` of two pixels, whose columns are `ca` and `cb`
/// and output rows start at `ra` and `rb` (equal for a lone last pixel):
/// four channels a pass, then pairs and a last one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn channels_2px<const P: bool>(
    a: &ConvArgs<'_, P>,
    [lo, hi]: [usize; 2],
    [ca, cb]: [&[i16]; 2],
    output: &mut [i8],
    [ra, rb]: [usize; 2],
    d: Avx2,
) {
    let depth = ca.len();
    let w = |o: usize| &a.filter[o * depth..(o + 1) * depth];
    let mut o = lo;
    while o + 4 <= hi {
        let s = dot_2x4(d, ca, cb, [w(o), w(o + 1), w(o + 2), w(o + 3)]);
        for j in 0..4 {
            let b = a.bias[o + j];
            output[ra + o + j] = a.requantize(b.wrapping_add(s[j]), o + j);
            output[rb + o + j] = a.requantize(b.wrapping_add(s[4 + j]), o + j);
        }
        o += 4;
    }
    while o < hi {
        let ob = if o + 1 < hi { o + 1 } else { o };
        let bias = [a.bias[o], a.bias[ob]];
        for (c, r) in [(ca, ra), (cb, rb)] {
            let [x, y] = d.dot2(c, w(o), w(ob), bias);
            output[r + o] = a.requantize(x, o);
            output[r + ob] = a.requantize(y, ob);
        }
        o += 2;
    }
}

/// General convolution: two output pixels' columns, then blocks of two
/// pixels and four channels ([`portable::conv_general_i8`]'s loop when
/// the scratch holds one column only).
#[target_feature(enable = "avx2")]
pub(crate) fn conv_general_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: Avx2,
) {
    let geom = &a.geom;
    let depth = geom.filter_depth();
    if col.len() < 2 * depth {
        return portable::conv_general_with(a, input, output, col, d);
    }
    let (ca, rest) = col.split_at_mut(depth);
    let cb = &mut rest[..depth];
    let (oc, ow) = (geom.output.c, geom.output.w);
    let opg = oc / geom.groups;
    let interior = Interior::of(geom);
    for_pixel_pairs(geom.output.h * ow, |p, q| {
        for g in 0..geom.groups {
            gather(a, &interior, input, p / ow, p % ow, g, ca);
            gather(a, &interior, input, q / ow, q % ow, g, cb);
            let chans = [g * opg, (g + 1) * opg];
            channels_2px(a, chans, [ca, cb], output, [p * oc, q * oc], d);
        }
    });
}

/// 1x1 convolution: two pixels' channels widened, then blocks of two
/// pixels and four channels.
#[target_feature(enable = "avx2")]
pub(crate) fn conv_pointwise_i8<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    col: &mut [i16],
    d: Avx2,
) {
    let geom = &a.geom;
    let cin = geom.input.c;
    if col.len() < 2 * cin {
        return portable::conv_pointwise_with(a, input, output, col, d);
    }
    let (ca, rest) = col.split_at_mut(cin);
    let cb = &mut rest[..cin];
    let (oc, ow) = (geom.output.c, geom.output.w);
    let [sh, sw] = geom.stride;
    let src = |p: usize| ((p / ow) * sh * geom.input.w + (p % ow) * sw) * cin;
    for_pixel_pairs(geom.output.h * ow, |p, q| {
        <i16 as Lane>::widen(&input[src(p)..src(p) + cin], ca, a.input_offset);
        <i16 as Lane>::widen(&input[src(q)..src(q) + cin], cb, a.input_offset);
        channels_2px(a, [0, oc], [ca, cb], output, [p * oc, q * oc], d);
    });
}

/// [`portable::dense_i8`] compiled for AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn dense_i8(
    input: &[i8],
    weights: &[i8],
    col: &mut [i16],
    offset: i32,
    emit: impl FnMut(usize, i32),
    bias: &[i32],
    d: Avx2,
) {
    portable::dense_with(input, weights, col, offset, emit, bias, d)
}

/// [`super::lanes::max_window_i8`] compiled for AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn lanes_max_window_i8(
    input: &[i8],
    w: usize,
    c: usize,
    window: [usize; 4],
    dst: &mut [i8],
    clamp: super::Clamp,
    _: Avx2,
) {
    super::lanes::max_window_i8(input, w, c, window, dst, clamp)
}

/// [`super::lanes::add_i8`] compiled for AVX2.
#[target_feature(enable = "avx2")]
pub(crate) fn lanes_add_i8(
    io: super::AddInput<'_>,
    b: &[i8],
    zp: [i32; 3],
    left: u32,
    scales: [super::Scale; 3],
    clamp: super::Clamp,
    _: Avx2,
) {
    match io {
        super::AddInput::Apart(a, out) => super::lanes::add_i8(a, b, out, zp, left, scales, clamp),
        super::AddInput::InPlace(a) => super::lanes::add_i8_in_place(a, b, zp, left, scales, clamp),
    }
}

/// The float convolution compiled for AVX-512 (sixteen lanes a vector).
#[cfg(feature = "std")]
#[target_feature(enable = "avx512f")]
pub(crate) fn float_conv_avx512<T: super::FloatLane>(
    c: &super::float::FloatConv<'_, T>,
    input: &[T],
    output: &mut [T],
    _: vnni::Vnni,
) {
    super::float::conv(c, input, output)
}

/// The float convolution compiled for AVX2 (eight lanes a vector).
#[cfg(feature = "std")]
#[target_feature(enable = "avx2")]
pub(crate) fn float_conv_avx2<T: super::FloatLane>(
    c: &super::float::FloatConv<'_, T>,
    input: &[T],
    output: &mut [T],
    _: Avx2,
) {
    super::float::conv(c, input, output)
}

/// The float dense layer compiled for AVX-512.
#[cfg(feature = "std")]
#[target_feature(enable = "avx512f")]
pub(crate) fn float_dense_avx512<T: super::FloatLane>(
    input: &[T],
    weights: &[T],
    bias: &[T],
    range: [f32; 2],
    output: &mut [T],
    _: vnni::Vnni,
) {
    super::float::dense(input, weights, bias, range, output)
}

/// The float dense layer compiled for AVX2.
#[cfg(feature = "std")]
#[target_feature(enable = "avx2")]
pub(crate) fn float_dense_avx2<T: super::FloatLane>(
    input: &[T],
    weights: &[T],
    bias: &[T],
    range: [f32; 2],
    output: &mut [T],
    _: Avx2,
) {
    super::float::dense(input, weights, bias, range, output)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::arch::portable::{conv_general_with, conv_pointwise_with, dense_with};
    use crate::arch::simd_check::{Outputs, Paths};

    fn avx2() -> Option<Avx2> {
        let d = Avx2::detect();
        if d.is_none() {
            eprintln!("this CPU has no AVX2: the AVX2 loops are not tested here");
        }
        d
    }

    #[cfg(feature = "std")]
    fn has_vnni() -> bool {
        let v = vnni::Vnni::detect().is_some();
        if !v {
            eprintln!("no AVX-512 VNNI here (or PICOCNN_NO_AVX512): its loops are not tested");
        }
        v
    }
    #[cfg(not(feature = "std"))]
    fn has_vnni() -> bool {
        false
    }
    #[cfg(feature = "std")]
    fn vnni_takes<const P: bool>(a: &ConvArgs<'_, P>) -> bool {
        vnni::takes(a)
    }
    #[cfg(not(feature = "std"))]
    fn vnni_takes<const P: bool>(_: &ConvArgs<'_, P>) -> bool {
        false
    }

    /// Every length up to 100 and the extreme values: the dot products
    /// equal the scalar ones.
    #[test]
    fn dots_equal_the_scalar_ones() {
        let Some(d) = avx2() else { return };
        crate::arch::simd_check::check_dots(d);
    }

    /// The x86 paths this CPU has: the AVX2 dot products in the portable
    /// loops, the AVX2 two-pixel blocks, and the AVX-512 VNNI loops.
    struct X86(Avx2);

    impl Paths for X86 {
        fn conv<const P: bool>(&self, a: &ConvArgs<'_, P>, input: &[i8]) -> Outputs<i8> {
            let g = &a.geom;
            let pointwise = g.kernel == [1, 1] && g.groups == 1 && g.pad == [0, 0];
            let d = self.0;
            let run = |how: usize| {
                let mut out = vec![0i8; g.output.len()];
                let mut col = vec![0i16; 2 * g.filter_depth()];
                let (o, c) = (&mut out[..], &mut col[..]);
                match (how, pointwise) {
                    (0, true) => conv_pointwise_with(a, input, o, c, d),
                    (0, false) => conv_general_with(a, input, o, c, d),
                    // SAFETY: `d` proves AVX2.
                    (1, true) => unsafe { conv_pointwise_i8(a, input, o, c, d) },
                    // SAFETY: as above.
                    (1, false) => unsafe { conv_general_i8(a, input, o, c, d) },
                    #[cfg(feature = "std")]
                    _ => {
                        let v = vnni::Vnni::detect().expect("checked");
                        // SAFETY: `v` proves AVX-512 VNNI.
                        unsafe { vnni::conv_i8(a, input, o, v) }
                    }
                    #[cfg(not(feature = "std"))]
                    _ => unreachable!(),
                }
                out
            };
            let mut outs = vec![("avx2 dots", run(0)), ("avx2 blocks", run(1))];
            if has_vnni() && vnni_takes(a) {
                outs.push(("avx512 vnni", run(2)));
            }
            outs
        }

        fn dense(&self, x: &[i8], w: &[i8], offset: i32, bias: &[i32]) -> Outputs<i32> {
            let mut out = vec![0i32; bias.len()];
            let mut col = vec![0i16; x.len()];
            dense_with(x, w, &mut col, offset, |o, v| out[o] = v, bias, self.0);
            let mut outs = vec![("avx2", out)];
            #[cfg(feature = "std")]
            if let Some(v) = vnni::Vnni::detect() {
                let mut out = vec![0i32; bias.len()];
                // SAFETY: `v` proves AVX-512 VNNI.
                unsafe { vnni::dense_i8(x, w, offset, |o, s| out[o] = s, bias, v) };
                outs.push(("avx512 vnni", out));
            }
            outs
        }

        fn depthwise(&self, a: &ConvArgs<'_, true>, input: &[i8]) -> Outputs<i8> {
            let mut outs = vec![];
            #[cfg(feature = "std")]
            if let Some(v) = vnni::Vnni::detect() {
                let mut out = vec![0i8; a.geom.output.len()];
                // SAFETY: `v` proves AVX-512.
                unsafe { vnni::depthwise_i8(a, input, &mut out, v) };
                outs.push(("avx512", out));
            }
            let _ = (a, input);
            outs
        }
    }

    /// Every x86 path gives the scalar loops' bytes over 400 random layers.
    #[test]
    fn kernels_equal_the_scalar_ones() {
        let Some(d) = avx2() else { return };
        crate::arch::simd_check::check_paths(&X86(d), 11, 400);
    }
}
