//! Operations on values only: every pixel stays where it is.

use super::text::Param;
use super::{non_negative, ordered, Augmentation};
use crate::rng::Rng;
use crate::tensor::Shape;
use crate::{Error, Result};
use std::vec;
use std::vec::Vec;

fn clamp01(image: &mut [f32]) {
    image.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
}

/// Adds a value uniform in `[-max, max]` (one per channel if
/// `per_channel`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Brightness {
    /// Largest change.
    pub max: f32,
    /// A separate change per channel.
    pub per_channel: bool,
}

impl Augmentation for Brightness {
    const NAMES: &'static [&'static str] = &["brightness"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::num("max", "0.2", &mut self.max),
            Param::flag("per_channel", "0", &mut self.per_channel),
        ]
    }

    fn check(&self) -> Result<()> {
        non_negative(self.max, "brightness: max must be >= 0")
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        let (max, c) = (self.max, shape.c);
        let shared = rng.uniform(-max, max);
        let deltas: Vec<f32> = (0..c)
            .map(|_| {
                if self.per_channel {
                    rng.uniform(-max, max)
                } else {
                    shared
                }
            })
            .collect();
        for (k, v) in image.iter_mut().enumerate() {
            *v += deltas[k % c];
        }
        clamp01(image);
    }
}

/// Scales the distance from the image mean by a factor in `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Contrast {
    /// Factor range.
    pub range: [f32; 2],
}

impl Augmentation for Contrast {
    const NAMES: &'static [&'static str] = &["contrast"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![Param::range("range", "0.8:1.2", &mut self.range)]
    }

    fn check(&self) -> Result<()> {
        ordered(self.range, "contrast: need 0 <= lo <= hi")
    }

    fn apply(&self, image: &mut [f32], _: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        let f = rng.uniform(self.range[0], self.range[1]);
        let mean = image.iter().sum::<f32>() / image.len().max(1) as f32;
        // This form gives the input back exactly for a factor of one.
        image
            .iter_mut()
            .for_each(|v| *v = *v * f + mean * (1.0 - f));
        clamp01(image);
    }
}

/// Raises every value to a power in `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gamma {
    /// Exponent range.
    pub range: [f32; 2],
}

impl Augmentation for Gamma {
    const NAMES: &'static [&'static str] = &["gamma"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![Param::range("range", "0.8:1.25", &mut self.range)]
    }

    fn check(&self) -> Result<()> {
        let what = "gamma: need 0 < lo <= hi";
        ordered(self.range, what)?;
        if self.range[0] > 0.0 {
            Ok(())
        } else {
            Err(Error::InvalidParameter { what })
        }
    }

    fn apply(&self, image: &mut [f32], _: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        let g = rng.uniform(self.range[0], self.range[1]);
        image.iter_mut().for_each(|v| *v = v.max(0.0).powf(g));
        clamp01(image);
    }
}

/// Adds Gaussian noise of this standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Noise {
    /// Standard deviation.
    pub sigma: f32,
}

impl Augmentation for Noise {
    const NAMES: &'static [&'static str] = &["noise"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![Param::num("sigma", "0.05", &mut self.sigma)]
    }

    fn check(&self) -> Result<()> {
        non_negative(self.sigma, "noise: sigma must be >= 0")
    }

    fn apply(&self, image: &mut [f32], _: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        for pair in image.chunks_mut(2) {
            let (a, b) = rng.normal_pair();
            pair[0] += self.sigma * a;
            if let Some(v) = pair.get_mut(1) {
                *v += self.sigma * b;
            }
        }
        clamp01(image);
    }
}

/// RGB only: saturation factor in `range` (blend with the gray value)
/// and a gain per channel in `1 ± gain`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColorJitter {
    /// Saturation range.
    pub saturation: [f32; 2],
    /// Largest change of a channel's gain.
    pub gain: f32,
}

impl Augmentation for ColorJitter {
    const NAMES: &'static [&'static str] = &["color_jitter"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::range("saturation", "0.7:1.3", &mut self.saturation),
            Param::num("gain", "0.1", &mut self.gain),
        ]
    }

    fn check(&self) -> Result<()> {
        ordered(
            self.saturation,
            "color_jitter: need 0 <= saturation lo <= hi",
        )?;
        non_negative(self.gain, "color_jitter: gain must be >= 0")
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        if shape.c != 3 {
            return;
        }
        let s = rng.uniform(self.saturation[0], self.saturation[1]);
        let g: [f32; 3] = core::array::from_fn(|_| 1.0 + rng.uniform(-self.gain, self.gain));
        for px in image.chunks_exact_mut(3) {
            let gray = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
            for (ch, v) in px.iter_mut().enumerate() {
                *v = (gray + (*v - gray) * s) * g[ch];
            }
        }
        clamp01(image);
    }
}
