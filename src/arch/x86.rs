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
            use core::sync::atomic::{AtomicU8, Ordering};
            // 0: not asked yet, 1: no, 2: yes.
            static HAS: AtomicU8 = AtomicU8::new(0);
            match HAS.load(Ordering::Relaxed) {
                0 => {
                    let has = std::is_x86_feature_detected!("avx2")
                        && std::env::var_os("PICOCNN_PORTABLE").is_none();
                    HAS.store(1 + has as u8, Ordering::Relaxed);
                    has
                }
                v => v == 2,
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::portable::{
        conv_general_with, conv_pointwise_with, dense_with, ConvGeom, Scalar,
    };
    use crate::arch::Clamp;
    use crate::rng::Rng;

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
        let mut rng = Rng::new(7);
        for n in 0..100 {
            for round in 0..4 {
                let col: Vec<i16> = (0..n)
                    .map(|_| match round {
                        0 => 255,
                        1 => -255,
                        _ => rng.below(511) as i16 - 255,
                    })
                    .collect();
                let w = |rng: &mut Rng| -> Vec<i8> {
                    (0..n + 3)
                        .map(|_| {
                            if round == 0 {
                                -128
                            } else {
                                rng.next_u64() as i8
                            }
                        })
                        .collect()
                };
                let (wa, wb) = (w(&mut rng), w(&mut rng));
                assert_eq!(d.dot(&col, &wa), Scalar.dot(&col, &wa), "n {n}");
                let acc = [rng.next_u64() as i32, rng.next_u64() as i32];
                assert_eq!(
                    d.dot2(&col, &wa, &wb, acc),
                    Scalar.dot2(&col, &wa, &wb, acc),
                    "n {n}"
                );
            }
        }
    }

    /// The loop nests with the AVX2 dot products give the scalar ones'
    /// bytes, over random geometries, narrow and wide
    /// requantizations, clamps, and per-channel and per-tensor scales.
    #[test]
    fn kernels_equal_the_scalar_ones() {
        let Some(d) = avx2() else { return };
        let mut rng = Rng::new(11);
        for case in 0..400 {
            let r =
                |rng: &mut Rng, lo: usize, hi: usize| lo + rng.below((hi - lo + 1) as u64) as usize;
            let groups = if case % 5 == 0 { 2 } else { 1 };
            let (cin, oc) = (groups * r(&mut rng, 1, 40), groups * r(&mut rng, 1, 20));
            let (kh, kw) = (r(&mut rng, 1, 5), r(&mut rng, 1, 5));
            // Every fourth case dilated by two in one or both directions.
            let dilation = match case % 8 {
                2 => [2, 2],
                6 => [1, 2],
                _ => [1, 1],
            };
            let extent = |k: usize, d: usize| (k - 1) * d + 1;
            let (eh, ew) = (extent(kh, dilation[0]), extent(kw, dilation[1]));
            let (h, w) = (r(&mut rng, eh, 11), r(&mut rng, ew, 11));
            let stride = [r(&mut rng, 1, 2), r(&mut rng, 1, 2)];
            let pad = [r(&mut rng, 0, 1) * (eh / 2), r(&mut rng, 0, 1) * (ew / 2)];
            let out = |size: usize, k: usize, p: usize, s: usize| (size + 2 * p - k) / s + 1;
            let geom = ConvGeom {
                input: crate::Shape::new(h, w, cin),
                output: crate::Shape::new(
                    out(h, eh, pad[0], stride[0]),
                    out(w, ew, pad[1], stride[1]),
                    oc,
                ),
                kernel: [kh, kw],
                stride,
                dilation,
                pad,
                groups,
            };
            let depth = geom.filter_depth();
            let bytes = |rng: &mut Rng, n: usize| -> Vec<i8> {
                (0..n).map(|_| rng.next_u64() as i8).collect()
            };
            let filter = bytes(&mut rng, oc * depth);
            let input = bytes(&mut rng, h * w * cin);
            let bias: Vec<i32> = (0..oc).map(|_| rng.below(60_001) as i32 - 30_000).collect();
            let multiplier: Vec<i32> = (0..oc)
                .map(|_| (1 << 30) + rng.below(1 << 30) as i32)
                .collect();
            // Every fifth case has a shift beyond the narrow form's 22.
            let deepest = if case % 5 == 1 { 26 } else { 12 };
            // and every seventh some left shifts.
            let shift: Vec<i32> = (0..oc)
                .map(|_| match case % 7 {
                    3 => r(&mut rng, 0, 3) as i32 - 1,
                    _ => -(r(&mut rng, 6, deepest) as i32),
                })
                .collect();
            let clamp = match case % 3 {
                0 => Clamp::NONE,
                1 => Clamp { min: -20, max: 127 },
                _ => Clamp { min: -100, max: 90 },
            };
            // The input offset is minus an int8 zero point.
            let offsets = (rng.below(256) as i32 - 127, rng.below(256) as i32 - 128);
            let pointwise = kh * kw == 1 && groups == 1 && pad == [0, 0];
            macro_rules! compare {
                ($p:literal, $tables:expr) => {{
                    let mut a = ConvArgs::<$p> {
                        geom,
                        filter: &filter,
                        bias: &bias,
                        multiplier: &multiplier[..$tables],
                        shift: &shift[..$tables],
                        input_offset: offsets.0,
                        output_zero_point: offsets.1,
                        clamp,
                        narrow: false,
                    };
                    a.narrow = a.fits_narrow(depth);
                    // 0: scalar; 1: the AVX2 dot products in the portable
                    // loops; 2: the two-pixel blocks.
                    let run = |how: usize| {
                        let mut out = vec![0i8; geom.output.len()];
                        let mut col = vec![0i16; 2 * depth];
                        let (i, o, c) = (&input[..], &mut out[..], &mut col[..]);
                        match (how, pointwise) {
                            (0, true) => conv_pointwise_with(&a, i, o, c, Scalar),
                            (0, false) => conv_general_with(&a, i, o, c, Scalar),
                            (1, true) => conv_pointwise_with(&a, i, o, c, d),
                            (1, false) => conv_general_with(&a, i, o, c, d),
                            #[cfg(feature = "std")]
                            (3, _) => {
                                let v = vnni::Vnni::detect().expect("checked");
                                // SAFETY: `v` proves AVX-512 VNNI.
                                unsafe { vnni::conv_i8(&a, i, o, v) }
                            }
                            // SAFETY: `d` proves AVX2.
                            (_, true) => unsafe { conv_pointwise_i8(&a, i, o, c, d) },
                            // SAFETY: as above.
                            (_, false) => unsafe { conv_general_i8(&a, i, o, c, d) },
                        }
                        out
                    };
                    let want = run(0);
                    let vnni = cfg!(feature = "std") && has_vnni() && vnni_takes(&a);
                    for how in [1, 2, 3].into_iter().filter(|&h| h < 3 || vnni) {
                        let narrow = a.narrow;
                        assert_eq!(
                            run(how),
                            want,
                            "case {case} path {how} narrow {narrow} offsets {offsets:?}: {geom:?}"
                        );
                    }
                }};
            }
            compare!(true, oc);
            compare!(false, 1);
            // Depthwise (one filter per channel) over the same input.
            #[cfg(feature = "std")]
            if has_vnni() {
                let c = cin;
                let g = ConvGeom {
                    output: crate::Shape::new(geom.output.h, geom.output.w, c),
                    groups: c,
                    ..geom
                };
                let dfilter = bytes(&mut rng, kh * kw * c);
                let dbias: Vec<i32> = (0..c).map(|_| rng.below(60_001) as i32 - 30_000).collect();
                let mut shifts = shift.clone();
                shifts.resize(c, -9);
                let mut mults = multiplier.clone();
                mults.resize(c, 1 << 30);
                let a = ConvArgs::<true> {
                    geom: g,
                    filter: &dfilter,
                    bias: &dbias,
                    multiplier: &mults,
                    shift: &shifts,
                    input_offset: offsets.0,
                    output_zero_point: offsets.1,
                    clamp,
                    narrow: false,
                };
                let mut want = vec![0i8; g.output.len()];
                crate::arch::depthwise::depthwise_blocks(&a, &input, &mut want);
                let mut got = vec![0i8; g.output.len()];
                let v = vnni::Vnni::detect().expect("checked");
                // SAFETY: `v` proves AVX-512.
                unsafe { vnni::depthwise_i8(&a, &input, &mut got, v) };
                assert_eq!(got, want, "case {case} depthwise: {g:?}");
            }
            // The dense loop over the same bytes: scalar, AVX2, VNNI.
            let emitted = |how: usize| {
                let mut out = vec![0i32; oc];
                let mut col = vec![0i16; depth];
                let emit = |o: usize, v: i32| out[o] = v;
                let x = &input[..depth.min(input.len())];
                let wts = &filter[..oc * x.len()];
                match how {
                    0 => dense_with(x, wts, &mut col, offsets.0, emit, &bias, Scalar),
                    1 => dense_with(x, wts, &mut col, offsets.0, emit, &bias, d),
                    #[cfg(feature = "std")]
                    _ => {
                        let v = vnni::Vnni::detect().expect("checked");
                        // SAFETY: `v` proves AVX-512 VNNI.
                        unsafe { vnni::dense_i8(x, wts, offsets.0, emit, &bias, v) };
                    }
                    #[cfg(not(feature = "std"))]
                    _ => unreachable!(),
                }
                out
            };
            let want = emitted(0);
            for how in [1, 2].into_iter().filter(|&h| h < 2 || has_vnni()) {
                assert_eq!(emitted(how), want, "case {case} dense path {how}");
            }
        }
    }
}
