//! No panic is reachable from the safe public API: random (often invalid)
//! parameters and buffer lengths give `Ok` or `Err`, never a panic.

use picocnn::ops::act::ActI8;
use picocnn::ops::add::{AddI8, AddQuant};
use picocnn::ops::concat::{concat_float, concat_i8, ConcatInput, ConcatInputI8};
use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
use picocnn::ops::dense::{Dense, DenseFloat, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dFloat, Pool2dI8, PoolKind};
use picocnn::ops::softmax::{softmax_float, SoftmaxI8};
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{quantize_multiplier, Activation, Clamp, QParams, Requant, Rescale};
use picocnn::Shape;
use proptest::prelude::*;

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..9, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 3), 1 => 1usize..100_000]
}

fn small() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..6, 1 => Just(usize::MAX), 1 => Just(1 << 40)]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Valid),
        Just(Padding::Same),
        (small(), small(), small(), small()).prop_map(|(top, bottom, left, right)| {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            }
        }),
    ]
}

fn len_near(n: usize) -> impl Strategy<Value = usize> {
    let n = n.min(1 << 16);
    prop_oneof![Just(n), Just(n.saturating_sub(1)), Just(n + 1), 0usize..64]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    #[test]
    fn conv_never_panics(
        (h, w, c) in (dim(), dim(), dim()), oc in dim(), (kh, kw) in (small(), small()),
        (sh, sw, dh, dw) in (small(), small(), small(), small()), pad in padding(), groups in small(),
        lens in (0usize..4, 0usize..4, 0usize..4, 0usize..4), shift in -40i32..40, mult in any::<i32>(),
        zps in (-200i32..200, -200i32..200), seed in any::<u8>(),
    ) {
        let config = Conv2dConfig::new(Shape::new(h, w, c), oc, kh, kw)
            .stride(sh, sw).dilation(dh, dw).padding(pad).groups(groups);
        let Ok(conv) = Conv2d::new(config) else { return Ok(()) };
        // Keep the buffers allocatable.
        // Keep the buffers allocatable and the work small.
        prop_assume!(conv.input_shape().len() < 1 << 16 && conv.output_shape().len() < 1 << 16);
        prop_assume!(conv.macs() < 1 << 20 && conv.filter_len() < 1 << 20);
        let pick = |n: usize, k: usize| match k { 0 => n, 1 => n.saturating_sub(1), 2 => n + 1, _ => n / 2 };
        let filter = vec![seed as i8; pick(conv.filter_len(), lens.0)];
        let oc = conv.output_shape().c;
        let bias = vec![i32::MAX; pick(oc, lens.1)];
        let mults = vec![mult; oc];
        let shifts = vec![shift; pick(oc, lens.2)];
        let input = vec![-128i8; pick(conv.input_shape().len(), lens.3)];
        let mut out = vec![0i8; conv.output_shape().len()];
        let mut scratch = vec![0u8; pick(conv.scratch_len_i8(), lens.3)];
        if let Ok(layer) = Conv2dI8::new(conv, WeightsI8 { filter: &filter, bias: &bias, multiplier: &mults, shift: &shifts }, zps.0, zps.1, Clamp::NONE) {
            let _ = layer.run(&input, &mut out, &mut scratch);
        }
        let ff = vec![f32::MAX; filter.len()];
        let bf = vec![f32::NAN; bias.len()];
        let xf = vec![1.0f32; input.len()];
        let mut of = vec![0f32; out.len()];
        if let Ok(layer) = Conv2dFloat::new(conv, &ff, &bf, Activation::Relu6) {
            let _ = layer.run(&xf, &mut of);
        }
    }

    #[test]
    fn pool_never_panics((h, w, c) in (dim(), dim(), dim()), (fh, fw) in (small(), small()), (sh, sw) in (small(), small()),
                         pad in padding(), l in 0usize..3, lo in any::<i8>(), hi in any::<i8>()) {
        let Ok(pool) = Pool2d::new(Pool2dConfig::new(Shape::new(h, w, c), fh, fw).stride(sh, sw).padding(pad)) else { return Ok(()) };
        let [wh, ww] = pool.window();
        prop_assume!(pool.input_shape().len() < 1 << 16 && pool.output_shape().len().saturating_mul(wh).saturating_mul(ww) < 1 << 20);
        let input = vec![7i8; (pool.input_shape().len() + l).saturating_sub(1)];
        let mut out = vec![0i8; pool.output_shape().len()];
        let clamp = Clamp { min: lo, max: hi };
        let _ = Pool2dI8::new(pool, PoolKind::Max, clamp).and_then(|p| p.run(&input, &mut out));
        let _ = Pool2dI8::new(pool, PoolKind::Average, clamp).and_then(|p| p.run(&input, &mut out));
        let xf = vec![1.0f32; input.len()];
        let mut of = vec![0f32; out.len()];
        let _ = Pool2dFloat::new(pool, PoolKind::Max, Activation::None).run(&xf, &mut of);
        let _ = Pool2dFloat::new(pool, PoolKind::Average, Activation::None).run(&xf, &mut of);
    }

    #[test]
    fn dense_add_concat_softmax_never_panic(
        n in dim(), m in dim(), ln in len_near(64), lw in len_near(64 * 8), lb in len_near(8),
        s in (any::<f32>(), any::<f32>(), any::<f32>()), z in (-300i32..300, -300i32..300, -300i32..300),
        shift in -40i32..40, mult in any::<i32>(), depth in dim(), beta in any::<f32>(),
    ) {
        if let Ok(dense) = Dense::new(n, m) {
            let x = vec![1i8; ln];
            let w = vec![1i8; lw];
            let b = vec![1i32; lb];
            let mult = vec![mult; lb];
            let sh = vec![shift; lb];
            let mut out = vec![0i8; lb];
            let mut scratch = vec![0u8; 2000];
            if let Ok(layer) = DenseI8::new(dense, WeightsI8 { filter: &w, bias: &b, multiplier: &mult, shift: &sh }, z.0, z.1, Clamp::NONE) {
                let _ = layer.run(&x, &mut out, &mut scratch);
            }
            let wf = vec![1f32; lw];
            let bf = vec![1f32; lb];
            let xf = vec![1f32; ln];
            let mut of = vec![0f32; lb];
            if let Ok(layer) = DenseFloat::new(dense, &wf, &bf, Activation::None) {
                let _ = layer.run(&xf, &mut of);
            }
        }
        let q = |scale: f32, zp: i32| QParams { scale, zero_point: zp };
        if let Ok(aq) = AddQuant::new(q(s.0, z.0), q(s.1, z.1), q(s.2, z.2)) {
            if let Ok(add) = AddI8::new(aq, Clamp::NONE) {
                let a = vec![-128i8; ln];
                let b = vec![127i8; lb];
                let mut out = vec![0i8; ln];
                let _ = add.run(&a, &b, &mut out);
            }
        }
        let raw = AddQuant { input1_zero_point: z.0, input1: Requant { multiplier: mult, shift }, input2_zero_point: z.1,
            input2: Requant { multiplier: mult, shift }, output: Requant { multiplier: mult, shift }, output_zero_point: z.2 };
        if let Ok(add) = AddI8::new(raw, Clamp::NONE) {
            let mut a = vec![-128i8; ln];
            let _ = add.run_in_place(&mut a, &[127; 64]);
        }
        if let Ok(sm) = SoftmaxI8::new(s.0, beta) {
            let x = vec![-128i8; ln];
            let mut out = vec![0i8; lb];
            let _ = sm.run(depth, &x, &mut out);
        }
        if let Ok(sm) = SoftmaxI8::from_parts(mult, shift, -z.0.abs()) {
            let x: Vec<i8> = (0..ln).map(|i| i as i8).collect();
            let mut out = vec![0i8; ln];
            let _ = sm.run(depth.min(ln + 1), &x, &mut out);
        }
        let xf = vec![f32::INFINITY; ln];
        let mut of = vec![0f32; lb];
        let _ = softmax_float(depth, &xf, &mut of, beta);
        let _ = quantize_multiplier(s.0 as f64 * 1e30);
        let _ = quantize_multiplier(s.1 as f64);
        let r = Rescale { input_zero_point: z.0, requant: Requant { multiplier: mult, shift }, output_zero_point: z.1 };
        if let Ok(act) = ActI8::from_parts(r, Clamp::NONE) {
            let x = vec![5i8; ln];
            let mut out = vec![0i8; lb];
            let _ = act.run(&x, &mut out);
        }
        let a = vec![1i8; ln];
        let b = vec![2i8; lw];
        let mut out = vec![0i8; lb];
        let parts = [ConcatInputI8 { data: &a, channels: n % 7, rescale: r }, ConcatInputI8 { data: &b, channels: m % 9, rescale: Rescale::IDENTITY }];
        let _ = concat_i8(&parts, &mut out);
        let _ = concat_i8(&[], &mut out);
        let af = vec![1f32; ln];
        let mut of = vec![0f32; lb];
        let _ = concat_float(&[ConcatInput { data: &af, channels: depth % 5 }], &mut of);
    }
}
