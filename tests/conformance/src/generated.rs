//! Seeded random cases through every kernel and precision, including shapes
//! TensorFlow Lite does not produce. The host's result is the reference.

use crate::bump::{bytes, Bump, Pod};
use half::f16;
use picocnn::ops::act::{activation_float, ActI8};
use picocnn::ops::add::{add_float, AddI8, AddQuant};
use picocnn::ops::concat::{concat_float, concat_i8, ConcatInput, ConcatInputI8};
use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dFloat, Conv2dI8};
use picocnn::ops::conv_pool::ConvPool;
use picocnn::ops::dense::{Dense, DenseFloat, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dFloat, Pool2dI8, PoolKind};
use picocnn::ops::softmax::{softmax_float, SoftmaxI8};
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{quantize_multiplier, Activation, QParams, Rescale};
use picocnn::{Error, Real, Shape};

type CaseFn = for<'a> fn(&mut Bump<'a>) -> Result<&'a [u8], Error>;

/// Every generated case, by name.
pub static CASES: &[(&str, CaseFn)] = &[
    ("i8_conv_grouped_same_relu", i8_conv_grouped),
    ("i8_conv_dilated_explicit", i8_conv_dilated),
    ("i8_conv_tall_dilated_s2x1", i8_conv_tall_dilated),
    ("i8_conv_11x11_s4_same", i8_conv_11x11),
    ("i8_depthwise_5x5_mult3_relu6", i8_depthwise),
    ("i8_conv_sweep", i8_conv_sweep),
    (
        "i8_depthwise_3x3_mult1_s2_dilated",
        i8_depthwise_mult1_dilated,
    ),
    ("i8_wide_requant_conv_pointwise_depthwise", i8_wide_requant),
    ("i8_lenet_conv1_5x5_same", i8_lenet_conv1),
    ("i8_lenet_conv2_5x5_valid", i8_lenet_conv2),
    ("i8_dense_96_32", i8_dense),
    ("i8_dense_37_7", i8_dense_odd),
    (
        "i8_per_tensor_conv_pointwise_depthwise_dense",
        i8_per_tensor,
    ),
    ("i8_conv_maxpool_fused_lenet_conv1", i8_fused_lenet),
    ("i8_conv_avgpool_fused_overlapping", i8_fused_avg),
    (
        "i8_conv_maxpool_fused_overlapping_per_tensor",
        i8_fused_max_overlap,
    ),
    ("f32_conv_maxpool_fused_overlapping", float_fused::<f32>),
    ("f16_conv_maxpool_fused_overlapping", float_fused::<f16>),
    ("i8_maxpool_3x3_s2_explicit", i8_maxpool),
    ("i8_avgpool_3x3_s2_explicit", i8_avgpool),
    ("i8_global_avgpool", i8_global_avgpool),
    ("i8_add_relu", i8_add),
    ("i8_concat_requant", i8_concat),
    ("i8_relu6_requant", i8_relu6),
    ("i8_softmax_rows", i8_softmax),
    ("f32_conv_grouped_same_relu", float_conv_grouped::<f32>),
    ("f16_conv_grouped_same_relu", float_conv_grouped::<f16>),
    ("f32_conv_dilated_explicit", float_conv_dilated::<f32>),
    ("f16_conv_dilated_explicit", float_conv_dilated::<f16>),
    ("f32_depthwise_3x3_mult2", float_depthwise::<f32>),
    ("f16_depthwise_3x3_mult2", float_depthwise::<f16>),
    ("f32_conv_5x5_same_odd", float_conv_odd::<f32>),
    ("f16_conv_5x5_same_odd", float_conv_odd::<f16>),
    ("f16_to_f32_all_halves", f16_to_f32_all),
    ("f32_to_f16_rounding", f32_to_f16_rounding),
    ("f32_conv_pointwise", float_pointwise::<f32>),
    ("f16_conv_pointwise", float_pointwise::<f16>),
    ("f32_dense_48_24", float_dense::<f32>),
    ("f16_dense_48_24", float_dense::<f16>),
    ("f32_pools", float_pools::<f32>),
    ("f16_pools", float_pools::<f16>),
    ("f32_add_concat_relu6", float_add_concat::<f32>),
    ("f16_add_concat_relu6", float_add_concat::<f16>),
    ("f32_softmax", float_softmax::<f32>),
    ("f16_softmax", float_softmax::<f16>),
];

/// SplitMix64: small, seedable, identical on every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn i32(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
    /// Uniform in [lo, hi), from 24 random bits (exact in f32).
    fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / 16_777_216.0)
    }
    fn fill_i8(&mut self, v: &mut [i8]) {
        v.iter_mut().for_each(|x| *x = self.i8());
    }
    fn fill_f<T: Real>(&mut self, v: &mut [T], lo: f32, hi: f32) {
        v.iter_mut()
            .for_each(|x| *x = T::from_f32(self.f32(lo, hi)));
    }
}

fn out_bytes<T: Pod>(v: &[T]) -> &[u8] {
    bytes(v)
}

// ---- int8 ----

fn i8_conv_run<'a>(
    bump: &mut Bump<'a>,
    config: Conv2dConfig,
    seed: u64,
    act: Activation,
) -> Result<&'a [u8], Error> {
    i8_conv_quant(bump, config, seed, act, false, None, false)
}

/// A pool after a convolution: kind, window, stride, padding.
type PoolAfter = (PoolKind, [usize; 2], [usize; 2], Padding);

/// The pool over a convolution's output.
fn pool_after(conv: &Conv2d, (_, window, stride, padding): PoolAfter) -> Result<Pool2d, Error> {
    Pool2d::new(Pool2dConfig {
        input: conv.output_shape(),
        window,
        stride,
        padding,
    })
}

/// The fused convolution and pool, whose output must equal the
/// convolution's (`full`) then the pool's.
fn fused_i8<'a>(
    bump: &mut Bump<'a>,
    layer: &Conv2dI8<'_>,
    input: &[i8],
    full: &[i8],
    after: PoolAfter,
) -> Result<&'a [u8], Error> {
    let conv = *layer.geometry();
    let pool = pool_after(&conv, after)?;
    let fused = ConvPool::new(conv, pool, after.0)?;
    let out = bump.take::<i8>(pool.output_shape().len())?;
    let band = bump.take::<i8>(fused.band_len())?;
    let scratch = bump.take::<u8>(conv.scratch_len_i8())?;
    fused.run_i8(layer, input, out, scratch, band)?;
    let unfused = bump.take::<i8>(out.len())?;
    Pool2dI8::new(pool, after.0, picocnn::Clamp::NONE)?.run(full, unfused)?;
    if out != unfused {
        return Err(Error::InvalidParameter {
            what: "fused convolution and pool differ from the two ops",
        });
    }
    Ok(out_bytes(out))
}

/// A convolution with per-channel requantization, or per tensor (the first
/// channel's multiplier for all); `wide` gives channel 0 a left shift,
/// channel 1 a bias of 2^30 and channel 5 a right shift above 22, which the
/// kernels' shorter requantization does not take.
fn i8_conv_quant<'a>(
    bump: &mut Bump<'a>,
    config: Conv2dConfig,
    seed: u64,
    act: Activation,
    per_tensor: bool,
    pool: Option<PoolAfter>,
    wide: bool,
) -> Result<&'a [u8], Error> {
    let mut rng = Rng(seed);
    let conv = Conv2d::new(config)?;
    let input = bump.take::<i8>(conv.input_shape().len())?;
    rng.fill_i8(input);
    let filter = bump.take::<i8>(conv.filter_len())?;
    rng.fill_i8(filter);
    let oc = conv.output_shape().c;
    let bias = bump.take::<i32>(oc)?;
    let mult = bump.take::<i32>(oc)?;
    let shift = bump.take::<i32>(oc)?;
    for o in 0..oc {
        bias[o] = rng.i32(-30_000, 30_000);
        let real = match o {
            0 if wide => f64::from(rng.f32(1.1, 1.9)),
            5 if wide => f64::from(rng.f32(1e-8, 4e-8)),
            _ => f64::from(rng.f32(0.0005, 0.02)),
        };
        if wide && o == 1 {
            bias[o] = 1 << 30;
        }
        let r = quantize_multiplier(real)?;
        mult[o] = r.multiplier;
        shift[o] = r.shift;
    }
    let out_q = QParams::new(0.05, rng.i32(-20, 20))?;
    let n = if per_tensor { 1 } else { oc };
    let layer = Conv2dI8::new(
        conv,
        WeightsI8 {
            filter,
            bias,
            multiplier: &mult[..n],
            shift: &shift[..n],
        },
        rng.i32(-128, 127),
        out_q.zero_point,
        act.range_i8(out_q),
    )?;
    let out = bump.take::<i8>(conv.output_shape().len())?;
    let scratch = bump.take::<u8>(conv.scratch_len_i8())?;
    layer.run(input, out, scratch)?;
    match pool {
        Some(after) => fused_i8(bump, &layer, input, out, after),
        None => Ok(out_bytes(out)),
    }
}

fn i8_fused_lenet<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same);
    let pool = (PoolKind::Max, [2, 2], [2, 2], Padding::Valid);
    i8_conv_quant(b, c, 15, Activation::Relu, false, Some(pool), false)
}

/// Windows sharing rows: a band of three rows moving by two.
fn i8_fused_avg<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let pool = (PoolKind::Average, [3, 3], [2, 2], explicit_1());
    i8_conv_quant(
        b,
        dilated_config(),
        41,
        Activation::None,
        false,
        Some(pool),
        false,
    )
}

fn i8_fused_max_overlap<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(9, 7, 5), 4, 3, 3)
        .stride(2, 1)
        .padding(Padding::Same);
    let pool = (PoolKind::Max, [3, 2], [2, 1], explicit_1());
    i8_conv_quant(b, c, 42, Activation::Relu6, true, Some(pool), false)
}

fn explicit_1() -> Padding {
    Padding::Explicit {
        top: 1,
        bottom: 1,
        left: 1,
        right: 1,
    }
}

fn i8_conv_grouped<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(7, 7, 4), 6, 3, 3)
        .groups(2)
        .padding(Padding::Same);
    i8_conv_run(b, c, 1, Activation::Relu)
}

fn dilated_config() -> Conv2dConfig {
    Conv2dConfig::new(Shape::new(9, 8, 3), 4, 3, 3)
        .dilation(2, 2)
        .stride(1, 2)
        .padding(Padding::Explicit {
            top: 2,
            bottom: 1,
            left: 1,
            right: 2,
        })
}

fn i8_conv_dilated<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_conv_run(b, dilated_config(), 2, Activation::None)
}

/// Vertical dilation and stride only, uneven padding: the windows inside the
/// input take the fast gather, those over the border the general one.
fn i8_conv_tall_dilated<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(11, 10, 3), 5, 3, 2)
        .dilation(2, 1)
        .stride(2, 1)
        .padding(Padding::Explicit {
            top: 1,
            bottom: 2,
            left: 0,
            right: 1,
        });
    i8_conv_run(b, c, 17, Activation::None)
}

fn i8_conv_11x11<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(15, 15, 3), 4, 11, 11)
        .stride(4, 4)
        .padding(Padding::Same);
    i8_conv_run(b, c, 3, Activation::Relu)
}

fn i8_lenet_conv1<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same);
    i8_conv_run(b, c, 15, Activation::Relu)
}

fn i8_lenet_conv2<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(14, 14, 6), 16, 5, 5);
    i8_conv_run(b, c, 16, Activation::Relu)
}

fn i8_depthwise<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::depthwise(Shape::new(8, 8, 3), 3, 5, 5).padding(Padding::Same);
    i8_conv_run(b, c, 5, Activation::Relu6)
}

fn i8_depthwise_mult1_dilated<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut c = Conv2dConfig::depthwise(Shape::new(9, 8, 8), 1, 3, 3).padding(Padding::Explicit {
        top: 1,
        bottom: 0,
        left: 2,
        right: 1,
    });
    c.stride = [2, 1];
    c.dilation = [2, 2];
    i8_conv_run(b, c, 26, Activation::None)
}

/// Seeded random convolutions, one digest of all their outputs, so that
/// the tile, band, pair and depth edges of the fast paths fall everywhere
/// (fields are bits of one random word, to keep the case small in the
/// micro:bit's flash):
/// - 600 one-per-channel 3x3 depthwise convolutions: 1 to 16 rows, 1 to 32
///   columns, 4, 6 or 8 channels, strides 1 to 3 by 1 or 2, `same`,
///   `valid` or explicit padding of 0 to 2 a side;
/// - 300 general and 1x1 convolutions: 1 to 8 rows and columns, 1 to 16
///   input and 1 to 8 output channels (32 and 16 for 1x1 windows), 1x1,
///   1x3, 3x1 or 3x3 windows, strides 1 or 2, `same` or `valid`, sometimes
///   two groups of up to 8 and 4;
/// - every activation, per-tensor and wide requantization now and then.
fn i8_conv_sweep<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let work = b.take::<u8>(6 * 1024)?;
    let mut h = 0x811c_9dc5u32;
    let mut rng = Rng(41);
    for seed in 100..1000u64 {
        let v = rng.next();
        let f = |at: u32, mask: u64| ((v >> at) & mask) as usize;
        let mut config = if seed < 700 {
            let shape = Shape::new(1 + f(0, 15), 1 + f(4, 31), 4 + 2 * f(9, 1) + 2 * f(10, 1));
            let padding = match f(11, 3) {
                0 => Padding::Same,
                1 => Padding::Valid,
                _ => Padding::Explicit {
                    top: f(13, 1),
                    bottom: 2 * f(14, 1),
                    left: 2 * f(15, 1),
                    right: f(16, 1),
                },
            };
            Conv2dConfig::depthwise(shape, 1, 3, 3).padding(padding)
        } else {
            let (kh, kw) = (1 + 2 * f(13, 1), 1 + 2 * f(14, 1));
            let groups = 1 + f(30, 1) * f(31, 1);
            let big = usize::from(kh * kw == 1) * f(20, 1);
            let (cin, oc) = if groups == 1 {
                (1 + f(0, 15) + 16 * big, 1 + f(4, 7) + 8 * big)
            } else {
                (2 * (1 + f(0, 7)), 2 * (1 + f(4, 3)))
            };
            let padding = if f(15, 1) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            };
            let mut config =
                Conv2dConfig::new(Shape::new(1 + f(7, 7), 1 + f(10, 7), cin), oc, kh, kw)
                    .padding(padding);
            config.groups = groups;
            config
        };
        config.stride = [1 + f(21, 1) + f(22, 1), 1 + f(23, 1)];
        if Conv2d::new(config).is_err() {
            continue;
        }
        let act = match f(24, 3) {
            0 => Activation::Relu,
            1 => Activation::Relu6,
            _ => Activation::None,
        };
        let mut sub = Bump::new(&mut work[..]);
        let out = i8_conv_quant(
            &mut sub,
            config,
            seed,
            act,
            f(26, 3) == 0,
            None,
            f(28, 7) == 0,
        )?;
        h = out
            .iter()
            .fold(h, |h, &v| (h ^ v as u32).wrapping_mul(0x0100_0193));
    }
    b.copy(&h.to_le_bytes()).map(|v| &*v)
}

/// Requantization the kernels' shorter path does not take, beside
/// channels that take it, through every int8 convolution loop nest.
fn i8_wide_requant<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let general = Conv2dConfig::new(Shape::new(7, 7, 3), 6, 3, 3).padding(Padding::Same);
    let pointwise = Conv2dConfig::new(Shape::new(5, 5, 9), 7, 1, 1);
    let depthwise = Conv2dConfig::depthwise(Shape::new(6, 6, 8), 1, 3, 3).padding(Padding::Same);
    let parts = [
        i8_conv_quant(b, general, 27, Activation::Relu, false, None, true)?,
        i8_conv_quant(b, pointwise, 28, Activation::None, false, None, true)?,
        i8_conv_quant(b, depthwise, 29, Activation::None, false, None, true)?,
        i8_conv_quant(b, general, 30, Activation::None, true, None, true)?,
    ];
    joined(b, &parts)
}

/// The parts' bytes one after another.
fn joined<'a>(b: &mut Bump<'a>, parts: &[&[u8]]) -> Result<&'a [u8], Error> {
    let len = parts.iter().map(|p| p.len()).sum();
    let out = b.take::<u8>(len)?;
    let mut at = 0;
    for p in parts {
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    Ok(out)
}

fn i8_dense<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_dense_run(b, 96, 32, 6)
}

fn i8_dense_odd<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_dense_run(b, 37, 7, 17)
}

fn i8_dense_run<'a>(b: &mut Bump<'a>, n: usize, m: usize, seed: u64) -> Result<&'a [u8], Error> {
    i8_dense_quant(b, n, m, seed, false)
}

fn i8_dense_quant<'a>(
    b: &mut Bump<'a>,
    n: usize,
    m: usize,
    seed: u64,
    per_tensor: bool,
) -> Result<&'a [u8], Error> {
    let mut rng = Rng(seed);
    let dense = Dense::new(n, m)?;
    let input = b.take::<i8>(n)?;
    rng.fill_i8(input);
    let w = b.take::<i8>(dense.weights_len())?;
    rng.fill_i8(w);
    let bias = b.take::<i32>(m)?;
    let mult = b.take::<i32>(m)?;
    let shift = b.take::<i32>(m)?;
    for o in 0..m {
        bias[o] = rng.i32(-20_000, 20_000);
        let r = quantize_multiplier(f64::from(rng.f32(0.001, 0.01)))?;
        mult[o] = r.multiplier;
        shift[o] = r.shift;
    }
    let k = if per_tensor { 1 } else { m };
    let layer = DenseI8::new(
        dense,
        WeightsI8 {
            filter: w,
            bias,
            multiplier: &mult[..k],
            shift: &shift[..k],
        },
        3,
        -7,
        picocnn::Clamp::NONE,
    )?;
    let out = b.take::<i8>(m)?;
    let scratch = b.take::<u8>(dense.scratch_len_i8())?;
    layer.run(input, out, scratch)?;
    Ok(out_bytes(out))
}

/// Per-tensor requantization through every int8 loop nest.
fn i8_per_tensor<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let general = Conv2dConfig::new(Shape::new(9, 9, 3), 6, 3, 3).padding(Padding::Same);
    let pointwise = Conv2dConfig::new(Shape::new(6, 6, 10), 7, 1, 1);
    let depthwise = Conv2dConfig::depthwise(Shape::new(7, 7, 4), 2, 3, 3);
    let parts = [
        i8_conv_quant(b, general, 21, Activation::Relu, true, None, false)?,
        i8_conv_quant(b, pointwise, 22, Activation::None, true, None, false)?,
        i8_conv_quant(b, depthwise, 23, Activation::Relu6, true, None, false)?,
        i8_dense_quant(b, 40, 9, 24, true)?,
    ];
    joined(b, &parts)
}

fn pool_config() -> Pool2dConfig {
    Pool2dConfig::new(Shape::new(9, 9, 3), 3, 3)
        .stride(2, 2)
        .padding(Padding::Explicit {
            top: 1,
            bottom: 1,
            left: 1,
            right: 1,
        })
}

fn i8_pool<'a>(
    b: &mut Bump<'a>,
    config: Pool2dConfig,
    max: bool,
    seed: u64,
) -> Result<&'a [u8], Error> {
    let mut rng = Rng(seed);
    let pool = Pool2d::new(config)?;
    let input = b.take::<i8>(pool.input_shape().len())?;
    rng.fill_i8(input);
    let out = b.take::<i8>(pool.output_shape().len())?;
    let clamp = picocnn::Clamp::new(-100, 100)?;
    if max {
        Pool2dI8::new(pool, PoolKind::Max, clamp).and_then(|p| p.run(input, out))?;
    } else {
        Pool2dI8::new(pool, PoolKind::Average, clamp).and_then(|p| p.run(input, out))?;
    }
    Ok(out_bytes(out))
}

fn i8_maxpool<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_pool(b, pool_config(), true, 7)
}

fn i8_avgpool<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_pool(b, pool_config(), false, 8)
}

fn i8_global_avgpool<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    i8_pool(b, Pool2dConfig::global(Shape::new(5, 5, 8)), false, 9)
}

fn i8_add<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(10);
    let x = b.take::<i8>(200)?;
    let y = b.take::<i8>(200)?;
    rng.fill_i8(x);
    rng.fill_i8(y);
    let out_q = QParams::new(0.07, -3)?;
    let q = AddQuant::new(QParams::new(0.02, 5)?, QParams::new(0.045, -60)?, out_q)?;
    let out = b.take::<i8>(200)?;
    AddI8::new(q, Activation::Relu.range_i8(out_q))?.run(x, y, out)?;
    Ok(out_bytes(out))
}

fn i8_concat<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(11);
    let pixels = 16;
    let out_q = QParams::new(0.03, 4)?;
    let a = b.take::<i8>(pixels * 2)?;
    let c = b.take::<i8>(pixels * 3)?;
    let d = b.take::<i8>(pixels)?;
    rng.fill_i8(a);
    rng.fill_i8(c);
    rng.fill_i8(d);
    let parts = [
        ConcatInputI8 {
            data: a,
            channels: 2,
            rescale: Rescale::new(QParams::new(0.01, -10)?, out_q)?,
        },
        ConcatInputI8 {
            data: c,
            channels: 3,
            rescale: Rescale::new(out_q, out_q)?,
        },
        ConcatInputI8 {
            data: d,
            channels: 1,
            rescale: Rescale::new(QParams::new(0.1, 100)?, out_q)?,
        },
    ];
    let out = b.take::<i8>(pixels * 6)?;
    concat_i8(&parts, out)?;
    Ok(out_bytes(out))
}

fn i8_relu6<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(12);
    let x = b.take::<i8>(256)?;
    rng.fill_i8(x);
    let out = b.take::<i8>(256)?;
    ActI8::new(
        QParams::new(0.05, 10)?,
        QParams::new(0.03, -128)?,
        Activation::Relu6,
    )?
    .run(x, out)?;
    Ok(out_bytes(out))
}

fn i8_softmax<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(13);
    let x = b.take::<i8>(3 * 17)?;
    rng.fill_i8(x);
    let out = b.take::<i8>(3 * 17)?;
    SoftmaxI8::new(0.0625, 1.0)?.run(17, x, out)?;
    Ok(out_bytes(out))
}

// ---- f32 and f16 ----

fn float_conv_run<'a, T: Real + Pod>(
    b: &mut Bump<'a>,
    config: Conv2dConfig,
    seed: u64,
    act: Activation,
) -> Result<&'a [u8], Error> {
    let mut rng = Rng(seed);
    let conv = Conv2d::new(config)?;
    let input = b.take::<T>(conv.input_shape().len())?;
    rng.fill_f(input, -1.0, 1.0);
    let filter = b.take::<T>(conv.filter_len())?;
    rng.fill_f(filter, -0.5, 0.5);
    let bias = b.take::<T>(conv.output_shape().c)?;
    rng.fill_f(bias, -0.2, 0.2);
    let out = b.take::<T>(conv.output_shape().len())?;
    Conv2dFloat::new(conv, filter, bias, act)?.run(input, out)?;
    Ok(out_bytes(out))
}

fn float_conv_grouped<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(7, 7, 4), 6, 3, 3)
        .groups(2)
        .padding(Padding::Same);
    float_conv_run::<T>(b, c, 21, Activation::Relu)
}

fn float_conv_dilated<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    float_conv_run::<T>(b, dilated_config(), 22, Activation::None)
}

fn float_depthwise<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::depthwise(Shape::new(8, 8, 4), 2, 3, 3)
        .stride(2, 2)
        .padding(Padding::Same);
    float_conv_run::<T>(b, c, 23, Activation::Relu6)
}

/// A float convolution with a max pool whose windows share rows, fused;
/// it must equal the two ops.
fn float_fused<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(9, 8, 3), 5, 3, 3).padding(Padding::Same);
    let after = (PoolKind::Max, [3, 3], [2, 2], explicit_1());
    let mut rng = Rng(43);
    let conv = Conv2d::new(c)?;
    let input = b.take::<T>(conv.input_shape().len())?;
    rng.fill_f(input, -1.0, 1.0);
    let filter = b.take::<T>(conv.filter_len())?;
    rng.fill_f(filter, -0.5, 0.5);
    let bias = b.take::<T>(conv.output_shape().c)?;
    rng.fill_f(bias, -0.2, 0.2);
    let layer = Conv2dFloat::new(conv, filter, bias, Activation::Relu)?;
    let full = b.take::<T>(conv.output_shape().len())?;
    layer.run(input, full)?;
    let pool = pool_after(&conv, after)?;
    let unfused = b.take::<T>(pool.output_shape().len())?;
    Pool2dFloat::new(pool, after.0, Activation::None).run(full, unfused)?;
    let fused = ConvPool::new(conv, pool, after.0)?;
    let out = b.take::<T>(pool.output_shape().len())?;
    let band = b.take::<T>(fused.band_len())?;
    fused.run_float(&layer, input, out, band)?;
    if out_bytes(out) != out_bytes(unfused) {
        return Err(Error::InvalidParameter {
            what: "fused convolution and pool differ from the two ops",
        });
    }
    Ok(out_bytes(out))
}

/// One group, undilated, partial windows at every border and an odd
/// channel count: the float loops' merged taps and their odd tails.
fn float_conv_odd<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(9, 8, 3), 5, 5, 5).padding(Padding::Same);
    float_conv_run::<T>(b, c, 26, Activation::Relu)
}

/// Every half through the library's conversion (the FPU's on cores that
/// have one) against `half`'s: the output is the count of differing bit
/// patterns (0) and a digest of them all, so the host's must match.
fn f16_to_f32_all<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut differ = 0u32;
    let mut h = 0x811c_9dc5u32;
    for bits in 0..=u16::MAX {
        let got = <f16 as Real>::to_f32(f16::from_bits(bits)).to_bits();
        differ += (got != f16::from_bits(bits).to_f32().to_bits()) as u32;
        h = (h ^ got).wrapping_mul(0x0100_0193);
    }
    let out = b.take::<u32>(2)?;
    out.copy_from_slice(&[differ, h]);
    Ok(out_bytes(out))
}

/// Single to half on the rounding cases: every sign, exponent and top ten
/// mantissa bits (so every half, overflow and subnormal result), with the
/// dropped bits below, at, just above and just below the halfway point.
fn f32_to_f16_rounding<'a>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut differ = 0u32;
    let mut h = 0x811c_9dc5u32;
    for top in 0..1u32 << 19 {
        for low in [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff] {
            let v = f32::from_bits(top << 13 | low);
            let got = <f16 as Real>::from_f32(v).to_bits();
            differ += (got != f16::from_f32(v).to_bits()) as u32;
            h = (h ^ got as u32).wrapping_mul(0x0100_0193);
        }
    }
    let out = b.take::<u32>(2)?;
    out.copy_from_slice(&[differ, h]);
    Ok(out_bytes(out))
}

fn float_pointwise<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let c = Conv2dConfig::new(Shape::new(6, 6, 16), 8, 1, 1);
    float_conv_run::<T>(b, c, 24, Activation::None)
}

fn float_dense<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(25);
    let dense = Dense::new(48, 24)?;
    let x = b.take::<T>(48)?;
    rng.fill_f(x, -1.0, 1.0);
    let w = b.take::<T>(dense.weights_len())?;
    rng.fill_f(w, -0.3, 0.3);
    let bias = b.take::<T>(24)?;
    rng.fill_f(bias, -0.1, 0.1);
    let out = b.take::<T>(24)?;
    DenseFloat::new(dense, w, bias, Activation::None)?.run(x, out)?;
    Ok(out_bytes(out))
}

fn float_pools<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(26);
    let pool = Pool2d::new(pool_config())?;
    let global = Pool2d::global(Shape::new(9, 9, 3))?;
    let x = b.take::<T>(pool.input_shape().len())?;
    rng.fill_f(x, -2.0, 2.0);
    let n = pool.output_shape().len();
    let out = b.take::<T>(2 * n + 3)?;
    let (mx, rest) = out.split_at_mut(n);
    let (av, gl) = rest.split_at_mut(n);
    Pool2dFloat::new(pool, PoolKind::Max, Activation::None).run(x, mx)?;
    Pool2dFloat::new(pool, PoolKind::Average, Activation::Relu).run(x, av)?;
    Pool2dFloat::new(global, PoolKind::Average, Activation::None).run(x, gl)?;
    Ok(out_bytes(out))
}

fn float_add_concat<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(27);
    let pixels = 16;
    let x = b.take::<T>(pixels * 3)?;
    let y = b.take::<T>(pixels * 3)?;
    let z = b.take::<T>(pixels * 2)?;
    rng.fill_f(x, -4.0, 4.0);
    rng.fill_f(y, -4.0, 4.0);
    rng.fill_f(z, -8.0, 8.0);
    let sum = b.take::<T>(pixels * 3)?;
    add_float(x, y, sum, Activation::None)?;
    let relu = b.take::<T>(pixels * 2)?;
    activation_float(z, relu, Activation::Relu6)?;
    let out = b.take::<T>(pixels * 5)?;
    concat_float(
        &[
            ConcatInput {
                data: sum,
                channels: 3,
            },
            ConcatInput {
                data: relu,
                channels: 2,
            },
        ],
        out,
    )?;
    Ok(out_bytes(out))
}

fn float_softmax<'a, T: Real + Pod>(b: &mut Bump<'a>) -> Result<&'a [u8], Error> {
    let mut rng = Rng(28);
    let x = b.take::<T>(3 * 10)?;
    rng.fill_f(x, -6.0, 6.0);
    let out = b.take::<T>(3 * 10)?;
    softmax_float(10, x, out, 1.0)?;
    Ok(out_bytes(out))
}
