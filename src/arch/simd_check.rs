//! The check every SIMD path's tests share: random layers (general, 1x1,
//! grouped, dilated and depthwise convolutions, dense layers) with narrow
//! and wide requantizations, left shifts, clamps, per-channel and
//! per-tensor scales, run through each path a target has and compared
//! byte for byte with the scalar loops.

use std::vec;
use std::vec::Vec;

use super::portable::{
    conv_general_with, conv_pointwise_with, dense_with, ConvArgs, ConvGeom, Dots, Scalar,
};
use super::Clamp;
use crate::rng::Rng;

/// The outputs of a target's paths for one layer, each named.
pub(crate) type Outputs<T> = Vec<(&'static str, Vec<T>)>;

/// A target's int8 paths, each run on a layer (an empty list where the
/// CPU has none of them).
pub(crate) trait Paths {
    /// A convolution of any groups (1x1 ones with no padding too).
    fn conv<const P: bool>(&self, a: &ConvArgs<'_, P>, input: &[i8]) -> Outputs<i8>;
    /// Dense accumulators: `bias[o] + w[o] . (x + offset)`.
    fn dense(&self, x: &[i8], w: &[i8], offset: i32, bias: &[i32]) -> Outputs<i32>;
    /// Depthwise, one filter per channel.
    fn depthwise(&self, a: &ConvArgs<'_, true>, input: &[i8]) -> Outputs<i8>;
}

/// One random layer's parts.
struct Layer {
    geom: ConvGeom,
    filter: Vec<i8>,
    input: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i32>,
    clamp: Clamp,
    /// Input offset (minus an int8 zero point) and output zero point.
    offsets: (i32, i32),
    depthwise_filter: Vec<i8>,
}

impl Layer {
    fn random(rng: &mut Rng, case: usize) -> Layer {
        let r = |rng: &mut Rng, lo: usize, hi: usize| lo + rng.below((hi - lo + 1) as u64) as usize;
        let groups = if case.is_multiple_of(5) { 2 } else { 1 };
        let (cin, oc) = (groups * r(rng, 1, 40), groups * r(rng, 1, 20));
        let (kh, kw) = (r(rng, 1, 5), r(rng, 1, 5));
        // Every fourth case dilated by two in one or both directions.
        let dilation = match case % 8 {
            2 => [2, 2],
            6 => [1, 2],
            _ => [1, 1],
        };
        let extent = |k: usize, d: usize| (k - 1) * d + 1;
        let (eh, ew) = (extent(kh, dilation[0]), extent(kw, dilation[1]));
        let (h, w) = (r(rng, eh, 11), r(rng, ew, 11));
        let stride = [r(rng, 1, 2), r(rng, 1, 2)];
        let pad = [r(rng, 0, 1) * (eh / 2), r(rng, 0, 1) * (ew / 2)];
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
        let bytes =
            |rng: &mut Rng, n: usize| -> Vec<i8> { (0..n).map(|_| rng.next_u64() as i8).collect() };
        // Per channel, enough for the depthwise layer's channels too.
        let channels = oc.max(cin);
        // Every fifth case has a shift beyond the narrow form's 22, and
        // every seventh some left shifts.
        let deepest = if case % 5 == 1 { 26 } else { 12 };
        Layer {
            geom,
            filter: bytes(rng, oc * geom.filter_depth()),
            input: bytes(rng, h * w * cin),
            bias: (0..channels)
                .map(|_| rng.below(60_001) as i32 - 30_000)
                .collect(),
            multiplier: (0..channels)
                .map(|_| (1 << 30) + rng.below(1 << 30) as i32)
                .collect(),
            shift: (0..channels)
                .map(|_| match case % 7 {
                    3 => r(rng, 0, 3) as i32 - 1,
                    _ => -(r(rng, 6, deepest) as i32),
                })
                .collect(),
            clamp: match case % 3 {
                0 => Clamp::NONE,
                1 => Clamp { min: -20, max: 127 },
                _ => Clamp { min: -100, max: 90 },
            },
            offsets: (rng.below(256) as i32 - 127, rng.below(256) as i32 - 128),
            depthwise_filter: bytes(rng, kh * kw * cin),
        }
    }

    fn args<'a, const P: bool>(&'a self, geom: ConvGeom, filter: &'a [i8]) -> ConvArgs<'a, P> {
        let tables = if P { geom.output.c } else { 1 };
        let mut a = ConvArgs::<P> {
            geom,
            filter,
            bias: &self.bias[..geom.output.c],
            multiplier: &self.multiplier[..tables],
            shift: &self.shift[..tables],
            input_offset: self.offsets.0,
            output_zero_point: self.offsets.1,
            clamp: self.clamp,
            narrow: false,
        };
        a.narrow = a.fits_narrow(geom.filter_depth());
        a
    }
}

/// The scalar loops' output of a convolution.
fn scalar_conv<const P: bool>(a: &ConvArgs<'_, P>, input: &[i8]) -> Vec<i8> {
    let mut out = vec![0i8; a.geom.output.len()];
    let mut col = vec![0i16; a.geom.filter_depth()];
    let g = &a.geom;
    if g.kernel == [1, 1] && g.groups == 1 && g.pad == [0, 0] {
        conv_pointwise_with(a, input, &mut out, &mut col, Scalar);
    } else {
        conv_general_with(a, input, &mut out, &mut col, Scalar);
    }
    out
}

/// Compares every path of `paths` with the scalar loops over `cases`
/// random layers; panics at the first difference, naming the path.
pub(crate) fn check_paths(paths: &impl Paths, seed: u64, cases: usize) {
    let mut rng = Rng::new(seed);
    let mut compared = 0usize;
    for case in 0..cases {
        let l = Layer::random(&mut rng, case);
        let geom = l.geom;
        let narrow = |a: bool| if a { "narrow" } else { "wide" };
        {
            let a = l.args::<true>(geom, &l.filter);
            let want = scalar_conv(&a, &l.input);
            for (name, got) in paths.conv(&a, &l.input) {
                assert_eq!(
                    got,
                    want,
                    "case {case} {name} per channel {}: {geom:?} {:?}",
                    narrow(a.narrow),
                    l.offsets
                );
                compared += 1;
            }
        }
        {
            let a = l.args::<false>(geom, &l.filter);
            let want = scalar_conv(&a, &l.input);
            for (name, got) in paths.conv(&a, &l.input) {
                assert_eq!(
                    got,
                    want,
                    "case {case} {name} per tensor {}: {geom:?} {:?}",
                    narrow(a.narrow),
                    l.offsets
                );
                compared += 1;
            }
        }
        // Depthwise over the same input, one filter per channel.
        let c = geom.input.c;
        let dg = ConvGeom {
            output: crate::Shape::new(geom.output.h, geom.output.w, c),
            groups: c,
            ..geom
        };
        let a = l.args::<true>(dg, &l.depthwise_filter);
        let mut want = vec![0i8; dg.output.len()];
        super::depthwise::depthwise_blocks(&a, &l.input, &mut want);
        for (name, got) in paths.depthwise(&a, &l.input) {
            assert_eq!(got, want, "case {case} {name} depthwise: {dg:?}");
            compared += 1;
        }
        // Dense over the same bytes.
        let oc = geom.output.c;
        let x = &l.input[..geom.filter_depth().min(l.input.len())];
        let w = &l.filter[..oc * x.len()];
        let bias = &l.bias[..oc];
        let mut want = vec![0i32; oc];
        let mut col = vec![0i16; x.len()];
        dense_with(
            x,
            w,
            &mut col,
            l.offsets.0,
            |o, v| want[o] = v,
            bias,
            Scalar,
        );
        for (name, got) in paths.dense(x, w, l.offsets.0, bias) {
            assert_eq!(got, want, "case {case} {name} dense");
            compared += 1;
        }
    }
    std::eprintln!("{compared} outputs compared with the scalar loops");
}

/// `d`'s dot products equal the scalar ones for every length up to 100,
/// at the extreme values and at random ones.
pub(crate) fn check_dots(d: impl Dots) {
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
