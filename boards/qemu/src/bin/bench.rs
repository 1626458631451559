//! Instructions per layer of LeNet-5 int8, counted under QEMU's `-icount`
//! (`cargo xtask bench-mcu`): 28x28x1 input, conv 5x5x6 `same` with ReLU,
//! max pool 2x2, conv 5x5x16 `valid` with ReLU, max pool 2x2, dense
//! 400-120-84-10, softmax.
//!
//! Weights are pseudo-random (generated at compile time into flash); the
//! instruction counts do not depend on their values, except for the few
//! branches of clamping.
#![no_std]
#![no_main]

use picocnn::ops::conv::{Conv2d, Conv2dConfig, Conv2dI8};
use picocnn::ops::dense::{Dense, DenseI8};
use picocnn::ops::pool::{Pool2d, Pool2dConfig};
use picocnn::ops::pool::{Pool2dI8, PoolKind};
use picocnn::ops::softmax::SoftmaxI8;
use picocnn::ops::Padding;
use picocnn::ops::WeightsI8;
use picocnn::quant::{quantize_multiplier, Activation, Clamp, QParams};
use picocnn::Shape;
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{icount, println, StaticArena, MACHINE};

const fn pseudo_random<const N: usize>(seed: u64) -> [i8; N] {
    let mut out = [0i8; N];
    let mut s = seed;
    let mut i = 0;
    while i < N {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out[i] = (s >> 56) as i8;
        i += 1;
    }
    out
}

static W_CONV1: [i8; 6 * 25] = pseudo_random(1);
static W_CONV2: [i8; 16 * 150] = pseudo_random(2);
static W_FC1: [i8; 120 * 400] = pseudo_random(3);
static W_FC2: [i8; 84 * 120] = pseudo_random(4);
static W_FC3: [i8; 10 * 84] = pseudo_random(5);
static INPUT: [i8; 784] = pseudo_random(6);

/// Biases and requantization of one layer of `N` channels.
struct Quant<const N: usize> {
    bias: [i32; N],
    mult: [i32; N],
    shift: [i32; N],
}

impl<const N: usize> Quant<N> {
    fn new(real: f64, seed: i32) -> Self {
        let r = quantize_multiplier(real).unwrap();
        let mut q = Quant {
            bias: [0; N],
            mult: [r.multiplier; N],
            shift: [r.shift; N],
        };
        for (i, b) in q.bias.iter_mut().enumerate() {
            *b = (i as i32 * 7919 + seed) % 4001 - 2000;
        }
        q
    }
}

const A_LEN: usize = 28 * 28 * 6;
// Also DS-CNN's narrow depthwise shape at 16 channels, 25x5x16.
const B_LEN: usize = 25 * 5 * 16;
const SCRATCH_LEN: usize = 2 * 400 * 2 + 3;

static A: StaticArena<A_LEN> = StaticArena::new();
static B: StaticArena<B_LEN> = StaticArena::new();
static SCRATCH: StaticArena<SCRATCH_LEN> = StaticArena::new();

fn as_i8(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: u8 and i8 have the same size, alignment and valid bit patterns.
    unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut i8, b.len()) }
}

struct Totals {
    macs: u64,
    instructions: u64,
}

fn report(t: &mut Totals, name: &str, macs: usize, instructions: u64) {
    t.macs += macs as u64;
    t.instructions += instructions;
    if macs > 0 {
        let per_mac_x100 = instructions * 100 / macs as u64;
        println!(
            "layer {:<8} macs {:>7} instructions {:>8} per_mac {}.{:02}",
            name,
            macs,
            instructions,
            per_mac_x100 / 100,
            per_mac_x100 % 100
        );
    } else {
        println!(
            "layer {:<8} macs {:>7} instructions {:>8}",
            name, 0, instructions
        );
    }
}

#[entry]
fn main() -> ! {
    let cal = icount::init();
    println!("bench lenet5-int8 {} {:?}", MACHINE, cal);

    let a = as_i8(&mut A.take().unwrap()[..]);
    let b = as_i8(&mut B.take().unwrap()[..]);
    let scratch = &mut SCRATCH.take().unwrap()[..];
    let out_q = QParams::new(0.05, -128).unwrap();
    let relu = Activation::Relu.range_i8(out_q);

    let conv1 =
        Conv2d::new(Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same))
            .unwrap();
    let q1 = Quant::<6>::new(0.0041, 1);
    let conv1_l = Conv2dI8::new(
        conv1,
        WeightsI8 {
            filter: &W_CONV1,
            bias: &q1.bias,
            multiplier: &q1.mult,
            shift: &q1.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let pool1 = Pool2d::new(Pool2dConfig::new(Shape::new(28, 28, 6), 2, 2).stride(2, 2)).unwrap();
    let conv2 = Conv2d::new(Conv2dConfig::new(Shape::new(14, 14, 6), 16, 5, 5)).unwrap();
    let q2 = Quant::<16>::new(0.0017, 2);
    let conv2_l = Conv2dI8::new(
        conv2,
        WeightsI8 {
            filter: &W_CONV2,
            bias: &q2.bias,
            multiplier: &q2.mult,
            shift: &q2.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let pool2 = Pool2d::new(Pool2dConfig::new(Shape::new(10, 10, 16), 2, 2).stride(2, 2)).unwrap();
    let fc1 = Dense::new(400, 120).unwrap();
    let qf1 = Quant::<120>::new(0.0011, 3);
    let fc1_l = DenseI8::new(
        fc1,
        WeightsI8 {
            filter: &W_FC1,
            bias: &qf1.bias,
            multiplier: &qf1.mult,
            shift: &qf1.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let fc2 = Dense::new(120, 84).unwrap();
    let qf2 = Quant::<84>::new(0.0021, 4);
    let fc2_l = DenseI8::new(
        fc2,
        WeightsI8 {
            filter: &W_FC2,
            bias: &qf2.bias,
            multiplier: &qf2.mult,
            shift: &qf2.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let fc3 = Dense::new(84, 10).unwrap();
    let qf3 = Quant::<10>::new(0.0025, 5);
    let fc3_l = DenseI8::new(
        fc3,
        WeightsI8 {
            filter: &W_FC3,
            bias: &qf3.bias,
            multiplier: &qf3.mult,
            shift: &qf3.shift,
        },
        -128,
        0,
        Clamp::NONE,
    )
    .unwrap();
    let softmax = SoftmaxI8::new(0.1, 1.0).unwrap();

    let mut t = Totals {
        macs: 0,
        instructions: 0,
    };
    b[..784].copy_from_slice(&INPUT);
    let (r, n) = icount::measure(|| conv1_l.run(&b[..784], &mut a[..4704], scratch));
    r.unwrap();
    report(&mut t, "conv1", conv1.macs(), n);
    let (r, n) = icount::measure(|| {
        Pool2dI8::new(pool1, PoolKind::Max, Clamp::NONE)
            .and_then(|p| p.run(&a[..4704], &mut b[..1176]))
    });
    r.unwrap();
    report(&mut t, "pool1", 0, n);
    let (r, n) = icount::measure(|| conv2_l.run(&b[..1176], &mut a[..1600], scratch));
    r.unwrap();
    report(&mut t, "conv2", conv2.macs(), n);
    let (r, n) = icount::measure(|| {
        Pool2dI8::new(pool2, PoolKind::Max, Clamp::NONE)
            .and_then(|p| p.run(&a[..1600], &mut b[..400]))
    });
    r.unwrap();
    report(&mut t, "pool2", 0, n);
    let (r, n) = icount::measure(|| fc1_l.run(&b[..400], &mut a[..120], scratch));
    r.unwrap();
    report(&mut t, "fc1", fc1.macs(), n);
    let (r, n) = icount::measure(|| fc2_l.run(&a[..120], &mut b[..84], scratch));
    r.unwrap();
    report(&mut t, "fc2", fc2.macs(), n);
    let (r, n) = icount::measure(|| fc3_l.run(&b[..84], &mut a[..10], scratch));
    r.unwrap();
    report(&mut t, "fc3", fc3.macs(), n);
    let (r, n) = icount::measure(|| softmax.run(10, &a[..10], &mut b[..10]));
    r.unwrap();
    report(&mut t, "softmax", 0, n);

    let per_mac_x100 = t.instructions * 100 / t.macs;
    println!(
        "total macs {} instructions {} per_mac {}.{:02}",
        t.macs,
        t.instructions,
        per_mac_x100 / 100,
        per_mac_x100 % 100
    );
    let digest = b[..10].iter().fold(0x811c_9dc5u32, |h, &v| {
        (h ^ v as u8 as u32).wrapping_mul(0x0100_0193)
    });
    println!("output {:?} digest {:08x}", &b[..10], digest);

    // Other layer shapes: MobileNet-style depthwise and pointwise layers.
    let shape = Shape::new(8, 8, 16);
    let dw = Conv2d::new(Conv2dConfig::depthwise(shape, 1, 3, 3).padding(Padding::Same)).unwrap();
    let pw = Conv2d::new(Conv2dConfig::new(shape, 16, 1, 1)).unwrap();
    let qd = Quant::<16>::new(0.004, 7);
    let dw_l = Conv2dI8::new(
        dw,
        WeightsI8 {
            filter: &W_FC1[..dw.filter_len()],
            bias: &qd.bias,
            multiplier: &qd.mult,
            shift: &qd.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let pw_l = Conv2dI8::new(
        pw,
        WeightsI8 {
            filter: &W_FC1[..pw.filter_len()],
            bias: &qd.bias,
            multiplier: &qd.mult,
            shift: &qd.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let n = shape.len();
    b[..n].copy_from_slice(&W_FC2[..n]);
    let mut t = Totals {
        macs: 0,
        instructions: 0,
    };
    let (r, i) = icount::measure(|| dw_l.run(&b[..n], &mut a[..n], scratch));
    r.unwrap();
    report(&mut t, "dw3x3", dw.macs(), i);
    let (r, i) = icount::measure(|| pw_l.run(&b[..n], &mut a[..n], scratch));
    r.unwrap();
    report(&mut t, "pw1x1", pw.macs(), i);
    // DS-CNN's depthwise shape (25x5, narrow rows), at 16 channels.
    let shape = Shape::new(25, 5, 16);
    let dw = Conv2d::new(Conv2dConfig::depthwise(shape, 1, 3, 3).padding(Padding::Same)).unwrap();
    let dw_l = Conv2dI8::new(
        dw,
        WeightsI8 {
            filter: &W_FC1[..dw.filter_len()],
            bias: &qd.bias,
            multiplier: &qd.mult,
            shift: &qd.shift,
        },
        -128,
        -128,
        relu,
    )
    .unwrap();
    let n = shape.len();
    b[..n].copy_from_slice(&W_FC1[1000..1000 + n]);
    let (r, i) = icount::measure(|| dw_l.run(&b[..n], &mut a[..n], scratch));
    r.unwrap();
    report(&mut t, "dw3x3_25x5", dw.macs(), i);
    picocnn_qemu_tests::exit_success()
}
