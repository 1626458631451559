//! Every kernel against the naive reference in `reference/`, over random
//! shapes, strides, paddings, dilations, groups and quantization parameters.

mod reference;

use half::f16;
use picocnn::ops::act::activation_float_in_place;
use picocnn::ops::add::{add_float, add_float_in_place, AddI8, AddQuant};
use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8, ConvKind};
use picocnn::ops::dense::{Dense, DenseFloat, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig, Pool2dFloat, Pool2dI8, PoolKind};
use picocnn::ops::{Padding, WeightsI8};
use picocnn::quant::{quantize_multiplier, Activation, Clamp, QParams};
use picocnn::{Error, Shape};
use proptest::prelude::*;
use reference::{ConvGeom, Pad, Rng};

/// A random convolution problem.
#[derive(Debug, Clone)]
struct ConvCase {
    h: usize,
    w: usize,
    groups: usize,
    cpg: usize,
    opg: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pad: Pad,
    seed: u64,
}

fn pad_strategy() -> impl Strategy<Value = Pad> {
    prop_oneof![
        Just(Pad::Valid),
        Just(Pad::Same),
        (0usize..4, 0usize..4).prop_map(|(a, b)| Pad::Explicit(a, b)),
    ]
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..12, 1usize..12, 1usize..4, 1usize..5, 1usize..5),
        (
            1usize..7,
            1usize..7,
            1usize..4,
            1usize..4,
            1usize..3,
            1usize..3,
        ),
        pad_strategy(),
        any::<u64>(),
    )
        .prop_map(
            |((h, w, groups, cpg, opg), (kh, kw, sh, sw, dh, dw), pad, seed)| ConvCase {
                h,
                w,
                groups,
                cpg,
                opg,
                kh,
                kw,
                sh,
                sw,
                dh,
                dw,
                pad,
                seed,
            },
        )
}

fn to_padding(p: Pad, vertical_then_horizontal: (Pad, Pad)) -> Padding {
    let _ = vertical_then_horizontal;
    match p {
        Pad::Valid => Padding::Valid,
        Pad::Same => Padding::Same,
        Pad::Explicit(a, b) => Padding::Explicit {
            top: a,
            bottom: b,
            left: a,
            right: b,
        },
    }
}

impl ConvCase {
    fn config(&self) -> Conv2dConfig {
        Conv2dConfig::new(
            Shape::new(self.h, self.w, self.groups * self.cpg),
            self.groups * self.opg,
            self.kh,
            self.kw,
        )
        .stride(self.sh, self.sw)
        .dilation(self.dh, self.dw)
        .padding(to_padding(self.pad, (self.pad, self.pad)))
        .groups(self.groups)
    }

    /// The geometry as the reference computes it, or None when invalid.
    fn reference_geom(&self) -> Option<ConvGeom> {
        let (oh, pt) = reference::out_and_pad(self.h, self.kh, self.sh, self.dh, self.pad)?;
        let (ow, pl) = reference::out_and_pad(self.w, self.kw, self.sw, self.dw, self.pad)?;
        Some(ConvGeom {
            h: self.h,
            w: self.w,
            cin: self.groups * self.cpg,
            cout: self.groups * self.opg,
            kh: self.kh,
            kw: self.kw,
            sh: self.sh,
            sw: self.sw,
            dh: self.dh,
            dw: self.dw,
            pad_top: pt,
            pad_left: pl,
            oh,
            ow,
            groups: self.groups,
        })
    }
}

/// Random per-channel quantization: multipliers from realistic scales.
fn requant_table(rng: &mut Rng, n: usize) -> (Vec<i32>, Vec<i32>) {
    (0..n)
        .map(|_| {
            let real = 10f64.powf(rng.f32(-4.0, 0.3) as f64);
            let r = quantize_multiplier(real).unwrap();
            (r.multiplier, r.shift)
        })
        .unzip()
}

/// The library keeps depthwise filters HWO; the reference reads OHWI.
fn to_ohwi<T: Copy>(conv: &Conv2d, filter: &[T]) -> Vec<T> {
    if conv.kind() != ConvKind::Depthwise {
        return filter.to_vec();
    }
    let [kh, kw] = conv.kernel();
    let oc = conv.output_shape().c;
    let mut out = filter.to_vec();
    for o in 0..oc {
        for k in 0..kh * kw {
            out[o * kh * kw + k] = filter[k * oc + o];
        }
    }
    out
}

fn run_conv_i8(c: &ConvCase, g: &ConvGeom, conv: Conv2d) {
    let mut rng = Rng(c.seed);
    let input = rng.vec_i8(g.h * g.w * g.cin);
    let filter = rng.vec_i8(conv.filter_len());
    let bias: Vec<i32> = (0..g.cout)
        .map(|_| rng.range(-20_000, 20_000) as i32)
        .collect();
    let (mult, shift) = requant_table(&mut rng, g.cout);
    let zp_in = rng.range(-128, 127) as i32;
    let zp_out = rng.range(-128, 127) as i32;
    let lo = rng.range(-128, 0) as i8;
    let hi = rng.range(0, 127) as i8;
    let layer = Conv2dI8::new(
        conv,
        WeightsI8 {
            filter: &filter,
            bias: &bias,
            multiplier: &mult,
            shift: &shift,
        },
        zp_in,
        zp_out,
        Clamp::new(lo, hi).unwrap(),
    )
    .unwrap();
    let mut out = vec![0i8; conv.output_shape().len()];
    let mut scratch = vec![0u8; conv.scratch_len_i8()];
    layer.run(&input, &mut out, &mut scratch).unwrap();
    let ohwi = to_ohwi(&conv, &filter);
    let expected = reference::conv_i8(
        g, &input, &ohwi, &bias, &mult, &shift, zp_in, zp_out, lo, hi,
    );
    assert_eq!(out, expected, "{c:?} kind {:?}", conv.kind());
    // A scratch buffer at an odd address works too.
    let mut scratch = vec![0u8; conv.scratch_len_i8() + 1];
    let mut out2 = vec![0i8; out.len()];
    layer.run(&input, &mut out2, &mut scratch[1..]).unwrap();
    assert_eq!(out2, expected);
}

fn run_conv_float(c: &ConvCase, g: &ConvGeom, conv: Conv2d) {
    let mut rng = Rng(c.seed ^ 0x55);
    let input: Vec<f32> = (0..g.h * g.w * g.cin).map(|_| rng.f32(-1.0, 1.0)).collect();
    let filter: Vec<f32> = (0..conv.filter_len()).map(|_| rng.f32(-1.0, 1.0)).collect();
    let bias: Vec<f32> = (0..g.cout).map(|_| rng.f32(-1.0, 1.0)).collect();
    let act = [Activation::None, Activation::Relu, Activation::Relu6][(c.seed % 3) as usize];
    let (lo, hi) = act.range_f32();
    let layer = Conv2dFloat::new(conv, &filter, &bias, act).unwrap();
    let mut out = vec![0f32; conv.output_shape().len()];
    layer.run(&input, &mut out).unwrap();
    // The documented order, bit for bit (every target computes the same).
    let ohwi = to_ohwi(&conv, &filter);
    let ordered = reference::conv_f32_ordered(g, &input, &ohwi, &bias, lo, hi);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out), bits(&ordered), "f32 order {c:?}");
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let (expected, mag) = reference::conv_f64(
        g,
        &f64s(&input),
        &f64s(&to_ohwi(&conv, &filter)),
        &f64s(&bias),
        lo as f64,
        hi as f64,
    );
    for i in 0..out.len() {
        let tol = 1e-6 * mag[i] + 1e-7;
        assert!(
            (out[i] as f64 - expected[i]).abs() <= tol,
            "f32 {i}: {} vs {}",
            out[i],
            expected[i]
        );
    }

    // f16: storage rounding only. Bound: each product's inputs are within
    // 2^-11 relative, the sum is exact in f32 to ~2^-24, the store rounds to
    // 2^-11 relative: |err| <= 2^-10 * sum|w x| + 2^-11 |out| + subnormal step.
    let input16: Vec<f16> = input.iter().map(|&v| f16::from_f32(v)).collect();
    let filter16: Vec<f16> = filter.iter().map(|&v| f16::from_f32(v)).collect();
    let bias16: Vec<f16> = bias.iter().map(|&v| f16::from_f32(v)).collect();
    let layer16 = Conv2dFloat::new(conv, &filter16, &bias16, act).unwrap();
    let mut out16 = vec![f16::ZERO; out.len()];
    layer16.run(&input16, &mut out16).unwrap();
    let wide = |v: &[f16]| v.iter().map(|x| x.to_f32()).collect::<Vec<_>>();
    let ordered16 = reference::conv_f32_ordered(
        g,
        &wide(&input16),
        &to_ohwi(&conv, &wide(&filter16)),
        &wide(&bias16),
        lo,
        hi,
    );
    let bits16 = |v: &[f16]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let rounded: Vec<f16> = ordered16.iter().map(|&v| f16::from_f32(v)).collect();
    assert_eq!(bits16(&out16), bits16(&rounded), "f16 order {c:?}");
    for i in 0..out.len() {
        let tol = F16_TOLERANCE * (mag[i] + expected[i].abs()) + 1e-7;
        let got = out16[i].to_f32() as f64;
        assert!(
            (got - out[i] as f64).abs() <= tol,
            "f16 {i}: {got} vs {}",
            out[i]
        );
    }
}

/// f16 results are within this fraction of `sum |w x| + |b| + |y|` of f32's.
const F16_TOLERANCE: f64 = 1.0 / 1024.0;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn conv_matches_reference(c in conv_case()) {
        let config = c.config();
        match (Conv2d::new(config), c.reference_geom()) {
            (Ok(conv), Some(g)) => {
                prop_assert_eq!(conv.output_shape(), Shape::new(g.oh, g.ow, g.cout));
                run_conv_i8(&c, &g, conv);
                run_conv_float(&c, &g, conv);
            }
            (Err(_), None) => {}
            (a, b) => prop_assert!(false, "library {:?} vs reference {:?}", a, b),
        }
    }

    #[test]
    fn depthwise_matches_reference(
        h in 1usize..10, w in 1usize..10, c in 1usize..6, mult in 1usize..4,
        k in 1usize..6, s in 1usize..3, d in 1usize..3, pad in pad_strategy(), seed in any::<u64>()
    ) {
        let case = ConvCase { h, w, groups: c, cpg: 1, opg: mult, kh: k, kw: k, sh: s, sw: s, dh: d, dw: d, pad, seed };
        if let (Ok(conv), Some(g)) = (Conv2d::new(case.config()), case.reference_geom()) {
            let expected = if k == 1 && c == 1 && g.pad_top == 0 && g.pad_left == 0 {
                ConvKind::Pointwise
            } else if c == 1 {
                ConvKind::General
            } else {
                ConvKind::Depthwise
            };
            prop_assert_eq!(conv.kind(), expected);
            run_conv_i8(&case, &g, conv);
            run_conv_float(&case, &g, conv);
        }
    }

    #[test]
    fn pointwise_matches_reference(
        h in 1usize..8, w in 1usize..8, cin in 1usize..40, cout in 1usize..20, s in 1usize..3, seed in any::<u64>()
    ) {
        let case = ConvCase { h, w, groups: 1, cpg: cin, opg: cout, kh: 1, kw: 1, sh: s, sw: s, dh: 1, dw: 1, pad: Pad::Valid, seed };
        let conv = Conv2d::new(case.config()).unwrap();
        prop_assert_eq!(conv.kind(), ConvKind::Pointwise);
        let g = case.reference_geom().unwrap();
        run_conv_i8(&case, &g, conv);
        run_conv_float(&case, &g, conv);
    }

    #[test]
    fn dense_matches_reference(n in 1usize..300, m in 1usize..40, seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let input = rng.vec_i8(n);
        let w = rng.vec_i8(n * m);
        let bias: Vec<i32> = (0..m).map(|_| rng.range(-50_000, 50_000) as i32).collect();
        let (mult, shift) = requant_table(&mut rng, m);
        let zp_in = rng.range(-128, 127) as i32;
        let zp_out = rng.range(-128, 127) as i32;
        let dense = Dense::new(n, m).unwrap();
        let layer = DenseI8::new(dense, WeightsI8 { filter: &w, bias: &bias, multiplier: &mult, shift: &shift }, zp_in, zp_out, Clamp::NONE).unwrap();
        let mut out = vec![0i8; m];
        let mut scratch = vec![0u8; dense.scratch_len_i8()];
        layer.run(&input, &mut out, &mut scratch).unwrap();
        prop_assert_eq!(out, reference::dense_i8(&input, &w, &bias, &mult, &shift, zp_in, zp_out, -128, 127));

        let xf: Vec<f32> = (0..n).map(|_| rng.f32(-1.0, 1.0)).collect();
        let wf: Vec<f32> = (0..n * m).map(|_| rng.f32(-1.0, 1.0)).collect();
        let bf: Vec<f32> = (0..m).map(|_| rng.f32(-1.0, 1.0)).collect();
        let layer = DenseFloat::new(dense, &wf, &bf, Activation::None).unwrap();
        let mut out = vec![0f32; m];
        layer.run(&xf, &mut out).unwrap();
        for o in 0..m {
            let exact: f64 = (0..n).map(|i| xf[i] as f64 * wf[o * n + i] as f64).sum::<f64>() + bf[o] as f64;
            let mag: f64 = (0..n).map(|i| (xf[i] as f64 * wf[o * n + i] as f64).abs()).sum::<f64>();
            prop_assert!((out[o] as f64 - exact).abs() <= 1e-6 * mag + 1e-7);
            // The documented order, bit for bit.
            let ordered = (0..n).fold(0.0f32, |acc, i| acc + xf[i] * wf[o * n + i]) + bf[o];
            prop_assert_eq!(out[o].to_bits(), ordered.to_bits());
        }
        let h = |v: &[f32]| v.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>();
        let (x16, w16, b16) = (h(&xf), h(&wf), h(&bf));
        let layer = DenseFloat::new(dense, &w16, &b16, Activation::None).unwrap();
        let mut out16 = vec![f16::ZERO; m];
        layer.run(&x16, &mut out16).unwrap();
        for o in 0..m {
            let ordered = (0..n).fold(0.0f32, |acc, i| acc + x16[i].to_f32() * w16[o * n + i].to_f32())
                + b16[o].to_f32();
            prop_assert_eq!(out16[o].to_bits(), f16::from_f32(ordered).to_bits());
        }
    }

    #[test]
    fn pool_matches_reference(
        h in 1usize..12, w in 1usize..12, c in 1usize..5, fh in 1usize..5, fw in 1usize..5,
        s in 1usize..4, pad in pad_strategy(), seed in any::<u64>()
    ) {
        let config = Pool2dConfig::new(Shape::new(h, w, c), fh, fw).stride(s, s).padding(to_padding(pad, (pad, pad)));
        let geo = (reference::out_and_pad(h, fh, s, 1, pad), reference::out_and_pad(w, fw, s, 1, pad));
        match (Pool2d::new(config), geo) {
            (Ok(pool), (Some((oh, pt)), Some((ow, pl)))) => {
                prop_assert_eq!(pool.output_shape(), Shape::new(oh, ow, c));
                let mut rng = Rng(seed);
                let input = rng.vec_i8(h * w * c);
                let lo = rng.range(-128, 0) as i8;
                let hi = rng.range(0, 127) as i8;
                let clamp = Clamp::new(lo, hi).unwrap();
                let mut out = vec![0i8; oh * ow * c];
                Pool2dI8::new(pool, PoolKind::Max, clamp).and_then(|p| p.run(&input, &mut out)).unwrap();
                prop_assert_eq!(&out, &reference::pool_i8(&input, h, w, c, fh, fw, s, s, pt, pl, oh, ow, false, lo, hi));
                Pool2dI8::new(pool, PoolKind::Average, clamp).and_then(|p| p.run(&input, &mut out)).unwrap();
                prop_assert_eq!(&out, &reference::pool_i8(&input, h, w, c, fh, fw, s, s, pt, pl, oh, ow, true, lo, hi));

                // Float pools on the same (small integer) values are exact up to the division.
                let xf: Vec<f32> = input.iter().map(|&v| v as f32).collect();
                let mut of = vec![0f32; out.len()];
                Pool2dFloat::new(pool, PoolKind::Max, Activation::None).run(&xf, &mut of).unwrap();
                let mx = reference::pool_i8(&input, h, w, c, fh, fw, s, s, pt, pl, oh, ow, false, -128, 127);
                prop_assert_eq!(of.iter().map(|&v| v as i8).collect::<Vec<_>>(), mx.clone());
                Pool2dFloat::new(pool, PoolKind::Average, Activation::None).run(&xf, &mut of).unwrap();
                let av = reference::pool_i8(&input, h, w, c, fh, fw, s, s, pt, pl, oh, ow, true, -128, 127);
                for (f, q) in of.iter().zip(&av) {
                    prop_assert!((f - *q as f32).abs() <= 0.5 + 1e-4);
                }
                let mut o16 = vec![f16::ZERO; out.len()];
                let x16: Vec<f16> = xf.iter().map(|&v| f16::from_f32(v)).collect();
                Pool2dFloat::new(pool, PoolKind::Max, Activation::None).run(&x16, &mut o16).unwrap();
                prop_assert_eq!(o16.iter().map(|v| v.to_f32() as i8).collect::<Vec<_>>(), mx);
            }
            (Err(_), (a, b)) => prop_assert!(a.is_none() || b.is_none()),
            (Ok(_), _) => prop_assert!(false, "library accepted what the reference rejects"),
        }
    }

    #[test]
    fn add_matches_reference(n in prop_oneof![1usize..200, 1024usize..1300], s1 in 0.001f32..1.0, s2 in 0.001f32..1.0, so in 0.001f32..2.0,
                             z1 in -128i32..128, z2 in -128i32..128, zo in -128i32..128, seed in any::<u64>()) {
        let q = AddQuant::new(QParams::new(s1, z1).unwrap(), QParams::new(s2, z2).unwrap(), QParams::new(so, zo).unwrap()).unwrap();
        let add = AddI8::new(q, Activation::Relu.range_i8(QParams::new(so, zo).unwrap())).unwrap();
        let mut rng = Rng(seed);
        let a = rng.vec_i8(n);
        let b = rng.vec_i8(n);
        let mut out = vec![0i8; n];
        add.run(&a, &b, &mut out).unwrap();
        let clamp = Activation::Relu.range_i8(QParams::new(so, zo).unwrap());
        let expected = reference::add_i8(&a, &b, z1, q.input1.multiplier, q.input1.shift, z2, q.input2.multiplier, q.input2.shift,
            q.output.multiplier, q.output.shift, zo, clamp.min, clamp.max);
        prop_assert_eq!(&out, &expected);
        // In place gives the same.
        let mut a2 = a.clone();
        add.run_in_place(&mut a2, &b).unwrap();
        prop_assert_eq!(&a2, &expected);
        // Within one output step of the real sum (before clamping).
        for i in 0..n {
            let real = s1 as f64 * (a[i] as i32 - z1) as f64 + s2 as f64 * (b[i] as i32 - z2) as f64;
            let ideal = (real / so as f64 + zo as f64).round().clamp(clamp.min as f64, clamp.max as f64);
            prop_assert!((out[i] as f64 - ideal).abs() <= 1.0, "{} vs {}", out[i], ideal);
        }
    }
}

/// int8 against f32: quantize a float convolution, run it in int8, and the
/// dequantized result stays within one output step of the float result on
/// the same (dequantized) inputs and weights.
#[test]
fn int8_conv_within_quantization_error_of_f32() {
    let mut rng = Rng(7);
    for trial in 0..50 {
        let cin = 1 + trial % 5;
        let cout = 1 + trial % 7;
        let conv = Conv2d::new(
            Conv2dConfig::new(Shape::new(9, 8, cin), cout, 3, 3)
                .padding(Padding::Same)
                .stride(1 + trial % 2, 1),
        )
        .unwrap();
        let in_q = QParams::new(rng.f32(0.005, 0.05), rng.range(-20, 20) as i32).unwrap();
        let out_q = QParams::new(rng.f32(0.02, 0.2), rng.range(-20, 20) as i32).unwrap();
        let depth = conv.filter_depth();
        let mut filter = vec![0i8; conv.filter_len()];
        let mut w_scales = vec![0f32; cout];
        let mut w_real = vec![0f32; conv.filter_len()];
        for o in 0..cout {
            let ws: Vec<f32> = (0..depth).map(|_| rng.f32(-0.5, 0.5)).collect();
            let max = ws.iter().fold(0f32, |m, v| m.max(v.abs()));
            w_scales[o] = max / 127.0;
            for i in 0..depth {
                let q = (ws[i] / w_scales[o]).round().clamp(-127.0, 127.0) as i8;
                filter[o * depth + i] = q;
                w_real[o * depth + i] = q as f32 * w_scales[o];
            }
        }
        let bias_real: Vec<f32> = (0..cout).map(|_| rng.f32(-0.5, 0.5)).collect();
        let bias: Vec<i32> = (0..cout)
            .map(|o| (bias_real[o] / (in_q.scale * w_scales[o])).round() as i32)
            .collect();
        let bias_deq: Vec<f32> = (0..cout)
            .map(|o| bias[o] as f32 * in_q.scale * w_scales[o])
            .collect();
        let (mult, shift): (Vec<i32>, Vec<i32>) = w_scales
            .iter()
            .map(|&ws| {
                let r = quantize_multiplier(in_q.scale as f64 * ws as f64 / out_q.scale as f64)
                    .unwrap();
                (r.multiplier, r.shift)
            })
            .unzip();
        let input = rng.vec_i8(conv.input_shape().len());
        let input_real: Vec<f32> = input.iter().map(|&q| in_q.dequantize(q)).collect();
        let clamp = Activation::Relu.range_i8(out_q);
        let layer = Conv2dI8::new(
            conv,
            WeightsI8 {
                filter: &filter,
                bias: &bias,
                multiplier: &mult,
                shift: &shift,
            },
            in_q.zero_point,
            out_q.zero_point,
            clamp,
        )
        .unwrap();
        let mut out = vec![0i8; conv.output_shape().len()];
        let mut scratch = vec![0u8; conv.scratch_len_i8()];
        layer.run(&input, &mut out, &mut scratch).unwrap();
        let flayer = Conv2dFloat::new(conv, &w_real, &bias_deq, Activation::Relu).unwrap();
        let mut fout = vec![0f32; out.len()];
        flayer.run(&input_real, &mut fout).unwrap();
        let hi = out_q.dequantize(127);
        for i in 0..out.len() {
            let expect = fout[i].min(hi);
            let got = out_q.dequantize(out[i]);
            assert!(
                (got - expect).abs() <= out_q.scale * 1.0001,
                "trial {trial} element {i}: int8 {got} vs f32 {expect} (step {})",
                out_q.scale
            );
        }
    }
}

#[test]
fn add_float_matches() {
    let a = [1.0f32, -2.0, 3.0];
    let b = [0.5f32, 1.0, 4.0];
    let mut out = [0f32; 3];
    add_float(&a, &b, &mut out, Activation::Relu6).unwrap();
    assert_eq!(out, [1.5, 0.0, 6.0]);
    // In place, the same sums; a length mismatch is an error.
    let mut x = a;
    add_float_in_place(&mut x, &b, Activation::Relu6).unwrap();
    assert_eq!(x, out);
    let mut x = [f16::from_f32(1.0), f16::from_f32(-8.0)];
    let y = [f16::from_f32(2.5), f16::from_f32(1.0)];
    add_float_in_place(&mut x, &y, Activation::None).unwrap();
    assert_eq!(x, [f16::from_f32(3.5), f16::from_f32(-7.0)]);
    assert!(add_float_in_place(&mut x, &y[..1], Activation::None).is_err());
}

#[test]
fn float_activation_in_place_clamps() {
    let mut x = [-1.5f32, 0.25, 5.0, 7.5];
    activation_float_in_place(&mut x, Activation::Relu6);
    assert_eq!(x, [0.0, 0.25, 5.0, 6.0]);
    let mut x = [f16::from_f32(-2.0), f16::from_f32(3.0)];
    activation_float_in_place(&mut x, Activation::Relu);
    assert_eq!(x, [f16::from_f32(0.0), f16::from_f32(3.0)]);
    activation_float_in_place(&mut x, Activation::None);
    assert_eq!(x, [f16::from_f32(0.0), f16::from_f32(3.0)]);
}

/// Planners size one arena from every kernel's scratch: these kernels
/// need none, and the model tests' exact arena sizes rest on it.
#[test]
fn elementwise_kernels_need_no_scratch() {
    assert_eq!(picocnn::ops::add::scratch_len(), 0);
    assert_eq!(picocnn::ops::act::scratch_len(), 0);
}

#[test]
fn concat_inputs_of_different_pixel_counts_are_an_error() {
    use picocnn::ops::concat::{concat_float, ConcatInput};
    // Two pixels of one channel and one pixel of two: the lengths alone
    // would fit an output of 2 pixels x 3 channels.
    let (a, b) = ([1.0f32, 2.0], [3.0f32, 4.0]);
    let inputs = [
        ConcatInput {
            data: &a,
            channels: 1,
        },
        ConcatInput {
            data: &b,
            channels: 2,
        },
    ];
    let mut out = [0f32; 6];
    match concat_float(&inputs, &mut out) {
        Err(Error::ShapeMismatch {
            what,
            expected: 2,
            got: 1,
        }) => {
            assert_eq!(what, "concat input pixels")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_parameters_are_errors() {
    let s = Shape::new(8, 8, 4);
    assert!(Conv2d::new(Conv2dConfig::new(s, 4, 3, 3).groups(3)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(s, 5, 3, 3).groups(2)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(s, 4, 0, 3)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(s, 4, 3, 3).stride(0, 1)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(s, 4, 9, 3)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(Shape::new(0, 8, 4), 4, 3, 3)).is_err());
    assert!(Conv2d::new(Conv2dConfig::new(Shape::new(usize::MAX, 2, 4), 4, 1, 1)).is_err());
    let conv = Conv2d::new(Conv2dConfig::new(s, 2, 3, 3)).unwrap();
    // 'static without leaking (Miri reports leaks).
    static FILTER: [i8; 72] = [0; 72];
    assert_eq!(conv.filter_len(), FILTER.len());
    let filter: &'static [i8] = &FILTER;
    let w = |f: &'static [i8]| WeightsI8 {
        filter: f,
        bias: &[0, 0],
        multiplier: &[1 << 30, 1 << 30],
        shift: &[0, 0],
    };
    assert!(matches!(
        Conv2dI8::new(conv, w(&filter[1..]), 0, 0, Clamp::NONE),
        Err(Error::ShapeMismatch {
            what: "conv filter",
            ..
        })
    ));
    let bad_shift = WeightsI8 {
        filter,
        bias: &[0, 0],
        multiplier: &[1, 1],
        shift: &[0, 31],
    };
    assert!(Conv2dI8::new(conv, bad_shift, 0, 0, Clamp::NONE).is_err());
    assert!(Conv2dI8::new(conv, w(filter), 200, 0, Clamp::NONE).is_err());
    let layer = Conv2dI8::new(conv, w(filter), 0, 0, Clamp::NONE).unwrap();
    let input = vec![0i8; s.len()];
    let mut out = vec![0i8; conv.output_shape().len()];
    let mut scratch = vec![0u8; conv.scratch_len_i8()];
    assert!(matches!(
        layer.run(&input, &mut out, &mut scratch[..3]),
        Err(Error::BufferTooSmall { what: "conv scratch", needed, got: 3 }) if needed == conv.scratch_len_i8()
    ));
    assert!(layer.run(&input[1..], &mut out, &mut scratch).is_err());
    assert!(layer.run(&input, &mut out[1..], &mut scratch).is_err());
    assert!(Clamp::new(5, 4).is_err());
    assert!(QParams::new(0.0, 0).is_err());
    assert!(QParams::new(f32::NAN, 0).is_err());
    assert!(QParams::new(1.0, 128).is_err());
    assert!(Dense::new(0, 3).is_err());
    assert!(Dense::new(usize::MAX, 3).is_err());
}

mod more_ops {
    use super::reference::{self, Rng};
    use picocnn::ops::act::{activation_float, ActI8};
    use picocnn::ops::concat::{concat_float, concat_i8, ConcatInput, ConcatInputI8};
    use picocnn::ops::pool::Pool2d;
    use picocnn::ops::softmax::{softmax_float, SoftmaxI8};
    use picocnn::quant::{Activation, QParams, Rescale};
    use picocnn::Shape;
    use proptest::prelude::*;

    fn act() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            Just(Activation::Relu6)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

        #[test]
        fn activation_matches_reference(n in 1usize..300, s_in in 0.001f32..0.5, s_out in 0.001f32..0.5,
                                        z_in in -128i32..128, z_out in -128i32..128, a in act(), seed in any::<u64>()) {
            let (qi, qo) = (QParams::new(s_in, z_in).unwrap(), QParams::new(s_out, z_out).unwrap());
            let layer = ActI8::new(qi, qo, a).unwrap();
            let r = Rescale::new(qi, qo).unwrap();
            let clamp = a.range_i8(qo);
            let x = Rng(seed).vec_i8(n);
            let mut out = vec![0i8; n];
            layer.run(&x, &mut out).unwrap();
            let expected = reference::requantize_i8(&x, z_in, r.requant.multiplier, r.requant.shift, z_out, clamp.min, clamp.max);
            prop_assert_eq!(&out, &expected);
            let mut in_place = x.clone();
            layer.run_in_place(&mut in_place);
            prop_assert_eq!(&in_place, &expected);
            // Within one step of the real activation of the real value.
            let (lo, hi) = a.range_f32();
            for i in 0..n {
                let real = qi.dequantize(x[i]).clamp(lo, hi);
                let ideal = (real / s_out + z_out as f32).round().clamp(clamp.min as f32, clamp.max as f32);
                prop_assert!((out[i] as f32 - ideal).abs() <= 1.0);
            }
            let xf: Vec<f32> = x.iter().map(|&q| qi.dequantize(q)).collect();
            let mut of = vec![0f32; n];
            activation_float(&xf, &mut of, a).unwrap();
            for i in 0..n {
                prop_assert_eq!(of[i], xf[i].clamp(lo, hi));
            }
        }

        #[test]
        fn concat_matches_reference(pixels in 1usize..20, cs in proptest::collection::vec(1usize..6, 1..5),
                                    scales in proptest::collection::vec((0.001f32..0.5, -128i32..128), 5), seed in any::<u64>()) {
            let mut rng = Rng(seed);
            let out_q = QParams::new(scales[4].0, scales[4].1).unwrap();
            let parts: Vec<(Vec<i8>, usize)> = cs.iter().map(|&c| (rng.vec_i8(pixels * c), c)).collect();
            let rescales: Vec<Rescale> = (0..parts.len())
                .map(|i| Rescale::new(QParams::new(scales[i].0, scales[i].1).unwrap(), out_q).unwrap())
                .collect();
            let inputs: Vec<ConcatInputI8<'_>> = parts.iter().zip(&rescales)
                .map(|((d, c), r)| ConcatInputI8 { data: d, channels: *c, rescale: *r }).collect();
            let total: usize = cs.iter().sum();
            let mut out = vec![0i8; pixels * total];
            concat_i8(&inputs, &mut out).unwrap();
            let requantized: Vec<(Vec<i8>, usize)> = parts.iter().zip(&rescales).map(|((d, c), r)| {
                (reference::requantize_i8(d, r.input_zero_point, r.requant.multiplier, r.requant.shift, r.output_zero_point, -128, 127), *c)
            }).collect();
            prop_assert_eq!(&out, &reference::concat(&requantized));
            // Shared parameters: a plain copy.
            let same: Vec<ConcatInputI8<'_>> = parts.iter()
                .map(|(d, c)| ConcatInputI8 { data: d, channels: *c, rescale: Rescale::new(out_q, out_q).unwrap() }).collect();
            concat_i8(&same, &mut out).unwrap();
            prop_assert_eq!(&out, &reference::concat(&parts));
            let fparts: Vec<(Vec<f32>, usize)> = parts.iter().map(|(d, c)| (d.iter().map(|&v| v as f32).collect(), *c)).collect();
            let finputs: Vec<ConcatInput<'_, f32>> = fparts.iter().map(|(d, c)| ConcatInput { data: d, channels: *c }).collect();
            let mut of = vec![0f32; pixels * total];
            concat_float(&finputs, &mut of).unwrap();
            prop_assert_eq!(&of, &reference::concat(&fparts));
        }

        #[test]
        fn softmax_is_close_to_exact(depth in 1usize..40, rows in 1usize..4, scale in 0.01f32..0.5, beta in 0.5f32..2.0, seed in any::<u64>()) {
            let x = Rng(seed).vec_i8(depth * rows);
            let sm = SoftmaxI8::new(scale, beta).unwrap();
            let mut out = vec![0i8; x.len()];
            sm.run(depth, &x, &mut out).unwrap();
            let xf: Vec<f32> = x.iter().map(|&q| q as f32 * scale).collect();
            let mut of = vec![0f32; x.len()];
            softmax_float(depth, &xf, &mut of, beta).unwrap();
            for r in 0..rows {
                let row = &x[r * depth..(r + 1) * depth];
                let max = *row.iter().max().unwrap() as f64;
                let e: Vec<f64> = row.iter().map(|&q| ((q as f64 - max) * scale as f64 * beta as f64).exp()).collect();
                let sum: f64 = e.iter().sum();
                for i in 0..depth {
                    let p = e[i] / sum;
                    prop_assert!((of[r * depth + i] as f64 - p).abs() < 1e-5, "f32 {} vs {}", of[r * depth + i], p);
                    // int8: scale 1/256, zero point -128, within one step.
                    let q = (out[r * depth + i] as f64 + 128.0) / 256.0;
                    prop_assert!((q - p.min(127.0 / 256.0 + 0.5)).abs() <= 1.0 / 256.0 + 1e-9, "int8 {} vs {}", q, p);
                }
            }
        }

        #[test]
        fn global_avgpool_is_the_mean(h in 1usize..8, w in 1usize..8, c in 1usize..6, seed in any::<u64>()) {
            let x = Rng(seed).vec_i8(h * w * c);
            let pool = Pool2d::global(Shape::new(h, w, c)).unwrap();
            prop_assert_eq!(pool.output_shape(), Shape::new(1, 1, c));
            let mut out = vec![0i8; c];
            picocnn::ops::pool::Pool2dI8::new(pool, picocnn::ops::pool::PoolKind::Average, picocnn::Clamp::NONE).and_then(|p| p.run(&x, &mut out)).unwrap();
            for ch in 0..c {
                let sum: i32 = (0..h * w).map(|p| x[p * c + ch] as i32).sum();
                let mean = sum as f64 / (h * w) as f64;
                let rounded = if mean >= 0.0 { (mean + 0.5).floor() } else { (mean - 0.5).ceil() };
                prop_assert_eq!(out[ch] as f64, rounded);
            }
        }
    }
}

/// One multiplier and shift for the whole tensor gives the bits of the same
/// value repeated per channel, through every loop nest (general, 1x1,
/// depthwise) and the dense layer.
#[test]
fn per_tensor_requantization_equals_repeated_per_channel() {
    let configs = [
        Conv2dConfig::new(Shape::new(9, 7, 3), 5, 3, 3).padding(Padding::Same),
        Conv2dConfig::new(Shape::new(6, 6, 10), 7, 1, 1).stride(2, 2),
        Conv2dConfig::depthwise(Shape::new(7, 5, 4), 2, 3, 3),
        Conv2dConfig::new(Shape::new(8, 8, 6), 6, 3, 3).groups(2),
    ];
    let mut rng = Rng(77);
    for config in configs {
        let conv = Conv2d::new(config).unwrap();
        let oc = conv.output_shape().c;
        let input: Vec<i8> = (0..conv.input_shape().len()).map(|_| rng.i8()).collect();
        let filter: Vec<i8> = (0..conv.filter_len()).map(|_| rng.i8()).collect();
        let bias: Vec<i32> = (0..oc).map(|_| rng.range(-20_000, 20_000) as i32).collect();
        let r = quantize_multiplier(0.004).unwrap();
        let (mult, shift) = (vec![r.multiplier; oc], vec![r.shift; oc]);
        let run = |n: usize| {
            let layer = Conv2dI8::new(
                conv,
                WeightsI8 {
                    filter: &filter,
                    bias: &bias,
                    multiplier: &mult[..n],
                    shift: &shift[..n],
                },
                -3,
                5,
                Clamp::NONE,
            )
            .unwrap();
            let mut out = vec![0i8; conv.output_shape().len()];
            let mut scratch = vec![0u8; conv.scratch_len_i8()];
            layer.run(&input, &mut out, &mut scratch).unwrap();
            out
        };
        assert_eq!(run(1), run(oc), "{config:?}");
    }
    let dense = Dense::new(40, 9).unwrap();
    let input: Vec<i8> = (0..40).map(|_| rng.i8()).collect();
    let w: Vec<i8> = (0..dense.weights_len()).map(|_| rng.i8()).collect();
    let bias: Vec<i32> = (0..9).map(|_| rng.range(-9_000, 9_000) as i32).collect();
    let r = quantize_multiplier(0.01).unwrap();
    let (mult, shift) = (vec![r.multiplier; 9], vec![r.shift; 9]);
    let run = |n: usize| {
        let weights = WeightsI8 {
            filter: &w,
            bias: &bias,
            multiplier: &mult[..n],
            shift: &shift[..n],
        };
        let layer = DenseI8::new(dense, weights, 2, -1, Clamp::NONE).unwrap();
        let mut out = vec![0i8; 9];
        let mut scratch = vec![0u8; dense.scratch_len_i8()];
        layer.run(&input, &mut out, &mut scratch).unwrap();
        out
    };
    assert_eq!(run(1), run(9));
    // Two multipliers for nine outputs is neither form.
    let weights = WeightsI8 {
        filter: &w,
        bias: &bias,
        multiplier: &mult[..2],
        shift: &shift[..2],
    };
    assert!(DenseI8::new(dense, weights, 2, -1, Clamp::NONE).is_err());
}
