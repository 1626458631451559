//! Test models built with `ModelBuilder` from seeded pseudo-random weights:
//! shared by the host tests and `cargo xtask gen-models`, which writes the
//! committed blobs the firmware embeds.
#![allow(dead_code)]

use half::f16;
use picocnn::model::writer::{ModelBuilder, TensorId, TensorType, Weights};
use picocnn::ops::conv::Conv2dConfig;
use picocnn::ops::Padding;
use picocnn::quant::{Activation, QParams};
use picocnn::{Result, Shape};

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / 16_777_216.0)
    }
    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }
}

/// Precision of a test model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    I8,
    F32,
    F16,
}

struct Net {
    b: ModelBuilder,
    rng: Rng,
    p: Precision,
    layer: u32,
}

impl Net {
    fn ty(&mut self, scale: f32, zp: i32) -> TensorType {
        match self.p {
            Precision::I8 => TensorType::I8(QParams::new(scale, zp).unwrap()),
            Precision::F32 => TensorType::F32,
            Precision::F16 => TensorType::F16,
        }
    }

    fn q(t: TensorType) -> QParams {
        match t {
            TensorType::I8(q) => q,
            _ => QParams::new(1.0, 0).unwrap(),
        }
    }

    /// Weights for `n` filter values and `oc` channels between two tensor types.
    fn weights(&mut self, n: usize, oc: usize, input: TensorType, output: TensorType) -> Weights {
        let scale = (3.0 / (n / oc.max(1)) as f32).sqrt();
        match self.p {
            Precision::I8 => {
                let filter: Vec<i8> = (0..n).map(|_| self.rng.i8()).collect();
                let ws: Vec<f32> = (0..oc)
                    .map(|_| scale / 127.0 * self.rng.f32(0.5, 1.5))
                    .collect();
                let qi = Self::q(input);
                let bias: Vec<i32> = ws
                    .iter()
                    .map(|&w| (self.rng.f32(-0.2, 0.2) / (qi.scale * w)) as i32)
                    .collect();
                Weights::i8_from_scales(filter, bias, &ws, qi, Self::q(output)).unwrap()
            }
            Precision::F32 => Weights::F32 {
                filter: (0..n).map(|_| self.rng.f32(-scale, scale)).collect(),
                bias: (0..oc).map(|_| self.rng.f32(-0.2, 0.2)).collect(),
            },
            Precision::F16 => Weights::F16 {
                filter: (0..n)
                    .map(|_| f16::from_f32(self.rng.f32(-scale, scale)))
                    .collect(),
                bias: (0..oc)
                    .map(|_| f16::from_f32(self.rng.f32(-0.2, 0.2)))
                    .collect(),
            },
        }
    }

    fn name(&mut self, what: &str) -> String {
        self.layer += 1;
        format!("{what}{}", self.layer)
    }

    fn conv(
        &mut self,
        x: TensorId,
        input: TensorType,
        config: Conv2dConfig,
        act: Activation,
        out: TensorType,
    ) -> Result<TensorId> {
        let n = config.out_channels
            * config.kernel[0]
            * config.kernel[1]
            * (config.input.c / config.groups);
        let w = self.weights(n, config.out_channels, input, out);
        let name = self.name("conv");
        self.b.conv2d(&name, x, config, act, w, out)
    }

    fn dense(
        &mut self,
        x: TensorId,
        n_in: usize,
        n_out: usize,
        input: TensorType,
        act: Activation,
        out: TensorType,
    ) -> Result<TensorId> {
        let w = self.weights(n_in * n_out, n_out, input, out);
        let name = self.name("dense");
        self.b.dense(&name, x, n_out, act, w, out)
    }
}

/// An Inception-and-ResNet-style net of every op: conv 3x3, a block of
/// three branches (1x1; 1x1 then depthwise 3x3; max pool then 1x1) joined by
/// concat, a residual add, a standalone ReLU6, average pooling, a dense
/// classifier with softmax, and a second output head (global average pool
/// and dense, as GoogLeNet's auxiliary classifier).
pub fn branchy(p: Precision) -> Result<Vec<u8>> {
    branchy_with(p, true)
}

/// [`branchy`], optionally with every tensor in its own place.
pub fn branchy_with(p: Precision, reuse: bool) -> Result<Vec<u8>> {
    let mut n = Net {
        b: ModelBuilder::new(&format!("branchy-{p:?}").to_lowercase()),
        rng: Rng(42),
        p,
        layer: 0,
    };
    let t_in = n.ty(1.0 / 255.0, -128);
    let x = n.b.input(Shape::new(12, 12, 3), t_in);
    let t1 = n.ty(0.04, -128);
    let s1 = Shape::new(12, 12, 3);
    let c1 = n.conv(
        x,
        t_in,
        Conv2dConfig::new(s1, 8, 3, 3).padding(Padding::Same),
        Activation::Relu,
        t1,
    )?;
    let s = Shape::new(12, 12, 8);
    // Branches with their own scales: concat requantizes them.
    let ta = n.ty(0.03, -100);
    let a = n.conv(c1, t1, Conv2dConfig::new(s, 4, 1, 1), Activation::Relu, ta)?;
    let tb1 = n.ty(0.05, -128);
    let b1 = n.conv(c1, t1, Conv2dConfig::new(s, 6, 1, 1), Activation::Relu, tb1)?;
    let tb = n.ty(0.06, -128);
    let b = n.conv(
        b1,
        tb1,
        Conv2dConfig::depthwise(Shape::new(12, 12, 6), 1, 3, 3).padding(Padding::Same),
        Activation::Relu6,
        tb,
    )?;
    let pool_name = n.name("pool");
    let pc =
        n.b.max_pool(&pool_name, c1, [3, 3], [1, 1], Padding::Same)?;
    let tc = n.ty(0.035, -110);
    let c = n.conv(pc, t1, Conv2dConfig::new(s, 6, 1, 1), Activation::None, tc)?;
    let tcat = n.ty(0.05, -20);
    let cat_name = n.name("concat");
    let cat = n.b.concat(&cat_name, &[a, b, c], tcat)?;
    // Residual: project c1 to 16 channels and add.
    let tproj = n.ty(0.045, 5);
    let proj = n.conv(
        c1,
        t1,
        Conv2dConfig::new(s, 16, 1, 1),
        Activation::None,
        tproj,
    )?;
    let tsum = n.ty(0.07, -10);
    let add_name = n.name("add");
    let sum = n.b.add(&add_name, cat, proj, Activation::None, tsum)?;
    let trelu = n.ty(0.03, -128);
    let act_name = n.name("relu6_");
    let r = n.b.activation(&act_name, sum, Activation::Relu6, trelu)?;
    let avg_name = n.name("avgpool");
    let pooled = n.b.avg_pool(&avg_name, r, [2, 2], [2, 2], Padding::Valid)?;
    let tlogits = n.ty(0.15, 3);
    let logits = n.dense(pooled, 6 * 6 * 16, 10, trelu, Activation::None, tlogits)?;
    let sm_name = n.name("softmax");
    let probs = n.b.softmax(&sm_name, logits, 1.0)?;
    // Auxiliary head.
    let gap_name = n.name("gap");
    let gap = n.b.global_avg_pool(&gap_name, r)?;
    let taux = n.ty(0.1, 0);
    let aux = n.dense(gap, 16, 10, trelu, Activation::None, taux)?;
    n.b.output(probs).output(aux);
    n.b.labels(&[
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ]);
    n.b.normalisation(1.0 / 255.0, 0.0);
    n.b.arena_reuse(reuse);
    n.b.finish()
}

/// LeNet-5 on 28x28x1 (conv 5x5x6 same, max pool, conv 5x5x16 valid, max
/// pool, dense 400-120-84-10, softmax), 61,706 parameters.
pub fn lenet5(p: Precision) -> Result<Vec<u8>> {
    let mut n = Net {
        b: ModelBuilder::new(&format!("lenet5-{p:?}").to_lowercase()),
        rng: Rng(5),
        p,
        layer: 0,
    };
    let t_in = n.ty(1.0 / 255.0, -128);
    let x = n.b.input(Shape::new(28, 28, 1), t_in);
    let t1 = n.ty(0.05, -128);
    let c1 = n.conv(
        x,
        t_in,
        Conv2dConfig::new(Shape::new(28, 28, 1), 6, 5, 5).padding(Padding::Same),
        Activation::Relu,
        t1,
    )?;
    let p1 = n.b.max_pool("pool1", c1, [2, 2], [2, 2], Padding::Valid)?;
    let t2 = n.ty(0.08, -128);
    let c2 = n.conv(
        p1,
        t1,
        Conv2dConfig::new(Shape::new(14, 14, 6), 16, 5, 5),
        Activation::Relu,
        t2,
    )?;
    let p2 = n.b.max_pool("pool2", c2, [2, 2], [2, 2], Padding::Valid)?;
    let t3 = n.ty(0.06, -128);
    let f1 = n.dense(p2, 400, 120, t2, Activation::Relu, t3)?;
    let t4 = n.ty(0.05, -128);
    let f2 = n.dense(f1, 120, 84, t3, Activation::Relu, t4)?;
    let t5 = n.ty(0.2, 0);
    let f3 = n.dense(f2, 84, 10, t4, Activation::None, t5)?;
    let probs = n.b.softmax("softmax", f3, 1.0)?;
    n.b.output(probs);
    n.b.normalisation(1.0 / 255.0, 0.0);
    n.b.finish()
}

/// A deterministic input for a model input of `n` elements.
pub fn input_i8(n: usize, seed: u64) -> Vec<i8> {
    let mut r = Rng(seed);
    (0..n).map(|_| r.i8()).collect()
}

/// ResNet-8 shaped as MLPerf Tiny's image-classification model (32x32x3
/// input; a 3x3x16 stem; three residual stacks of two 3x3 convolutions of
/// 16, 32 and 64 filters, the last two with stride 2 and a 1x1 stride-2
/// shortcut; global average pooling and a dense classifier): 12.5 million
/// multiply-accumulates, for the benchmarks. Batch normalisation is folded
/// into the convolutions, as an exported model has it.
pub fn resnet8(p: Precision) -> Result<Vec<u8>> {
    let mut n = Net {
        b: ModelBuilder::new(&format!("resnet8-{p:?}").to_lowercase()),
        rng: Rng(8),
        p,
        layer: 0,
    };
    let t_in = n.ty(1.0 / 255.0, -128);
    let x = n.b.input(Shape::new(32, 32, 3), t_in);
    let t = n.ty(0.05, -128);
    let same = |s: Shape, c: usize, k: usize, stride: usize| {
        Conv2dConfig::new(s, c, k, k)
            .stride(stride, stride)
            .padding(Padding::Same)
    };
    let mut x = n.conv(
        x,
        t_in,
        same(Shape::new(32, 32, 3), 16, 3, 1),
        Activation::Relu,
        t,
    )?;
    let (mut side, mut c_in, mut tx) = (32, 16, t);
    for (k, (c, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
        let s = Shape::new(side, side, c_in);
        let t1 = n.ty(0.04, -128);
        let y = n.conv(x, tx, same(s, c, 3, stride), Activation::Relu, t1)?;
        side = side.div_ceil(stride);
        let t2 = n.ty(0.06, -10);
        let y = n.conv(
            y,
            t1,
            same(Shape::new(side, side, c), c, 3, 1),
            Activation::None,
            t2,
        )?;
        let shortcut = if stride == 1 {
            (x, tx)
        } else {
            let ts = n.ty(0.05, 5);
            (
                n.conv(x, tx, same(s, c, 1, stride), Activation::None, ts)?,
                ts,
            )
        };
        let ta = n.ty(0.05, -128);
        let name = format!("add{}", k + 1);
        x = n.b.add(&name, shortcut.0, y, Activation::Relu, ta)?;
        (c_in, tx) = (c, ta);
    }
    let gap = n.b.global_avg_pool("gap", x)?;
    let tl = n.ty(0.1, 0);
    let logits = n.dense(gap, 64, 10, tx, Activation::None, tl)?;
    n.b.output(logits);
    n.b.normalisation(1.0 / 255.0, 0.0);
    n.b.finish()
}

/// DS-CNN as MLPerf Tiny's keyword-spotting model (49x10x1 MFCC input; a
/// 10x4 stride-2 convolution to 64 channels; four depthwise-separable
/// blocks of a 3x3 depthwise and a 1x1 convolution of 64 channels; average
/// pooling and a 12-class dense layer): 2.7 million multiply-accumulates,
/// for the benchmarks.
pub fn ds_cnn(p: Precision) -> Result<Vec<u8>> {
    let mut n = Net {
        b: ModelBuilder::new(&format!("ds_cnn-{p:?}").to_lowercase()),
        rng: Rng(12),
        p,
        layer: 0,
    };
    let t_in = n.ty(0.1, 0);
    let x = n.b.input(Shape::new(49, 10, 1), t_in);
    let mut t = n.ty(0.05, -128);
    let stem = Conv2dConfig::new(Shape::new(49, 10, 1), 64, 10, 4)
        .stride(2, 2)
        .padding(Padding::Same);
    let mut x = n.conv(x, t_in, stem, Activation::Relu, t)?;
    let s = Shape::new(25, 5, 64);
    for _ in 0..4 {
        let td = n.ty(0.04, -128);
        let dw = Conv2dConfig::depthwise(s, 1, 3, 3).padding(Padding::Same);
        let y = n.conv(x, t, dw, Activation::Relu, td)?;
        let tp = n.ty(0.05, -128);
        x = n.conv(y, td, Conv2dConfig::new(s, 64, 1, 1), Activation::Relu, tp)?;
        t = tp;
    }
    let gap = n.b.global_avg_pool("gap", x)?;
    let tl = n.ty(0.1, 0);
    let logits = n.dense(gap, 64, 12, t, Activation::None, tl)?;
    n.b.output(logits);
    n.b.finish()
}
