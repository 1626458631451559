//! Mixing of two images of a batch with soft labels: mixup and cutmix.

use super::check_probability;
use crate::rng::Rng;
use crate::tensor::Shape;
use crate::{Error, Result};
use std::vec;
use std::vec::Vec;

/// Makes a [`Mix`] from `p` and `alpha`.
type MakeMix = fn(f32, f32) -> Mix;

/// Mixing of two images of a batch with soft labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mix {
    /// Mixup (Zhang et al., 2018): a weighted average of the two images
    /// and of their labels, the weight drawn from Beta(alpha, alpha).
    Mixup {
        /// Probability per image.
        p: f32,
        /// Beta parameter.
        alpha: f32,
    },
    /// CutMix (Yun et al., 2019): a rectangle of the partner image pasted
    /// in, labels weighted by area.
    Cutmix {
        /// Probability per image.
        p: f32,
        /// Beta parameter.
        alpha: f32,
    },
}

impl Mix {
    /// Each kind in the text form: its name, its default `alpha`, and how
    /// to make it from `p` and `alpha`.
    pub(crate) const KINDS: [(&'static str, &'static str, MakeMix); 2] = [
        ("mixup", "0.4", |p, alpha| Mix::Mixup { p, alpha }),
        ("cutmix", "1", |p, alpha| Mix::Cutmix { p, alpha }),
    ];

    /// `(name in the text form, p, alpha)`.
    pub(crate) fn parts(self) -> (&'static str, f32, f32) {
        match self {
            Mix::Mixup { p, alpha } => (Mix::KINDS[0].0, p, alpha),
            Mix::Cutmix { p, alpha } => (Mix::KINDS[1].0, p, alpha),
        }
    }

    /// Checks `p` and `alpha`.
    pub(crate) fn check(self) -> Result<()> {
        let (_, p, alpha) = self.parts();
        check_probability(p)?;
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::InvalidParameter {
                what: "mixup/cutmix: alpha must be > 0",
            });
        }
        Ok(())
    }

    /// See [`Pipeline::mix_batch`](super::Pipeline::mix_batch).
    pub(crate) fn apply(
        self,
        images: &mut [f32],
        shape: Shape,
        labels: &[usize],
        classes: usize,
        seeds: &[u64],
    ) -> Vec<f32> {
        let n = labels.len();
        let len = shape.len();
        let mut targets = vec![0.0f32; n * classes];
        let original = images.to_vec();
        for j in 0..n {
            let t = &mut targets[j * classes..(j + 1) * classes];
            let mut rng = Rng::new(seeds.get(j).copied().unwrap_or(j as u64) ^ 0x006d_6978);
            let (_, p, alpha) = self.parts();
            let on = rng.chance(p) && n > 1;
            let partner = (j + 1 + rng.below(n.max(2) as u64 - 1) as usize) % n;
            let mut lambda = rng.beta(alpha);
            if on {
                let (img, other) = (
                    &mut images[j * len..(j + 1) * len],
                    &original[partner * len..(partner + 1) * len],
                );
                lambda = match self {
                    Mix::Mixup { .. } => mixup(img, other, lambda),
                    Mix::Cutmix { .. } => cutmix(img, other, shape, lambda, &mut rng),
                };
            } else {
                lambda = 1.0;
            }
            if let Some(v) = t.get_mut(labels[j]) {
                *v += lambda;
            }
            if let Some(v) = t.get_mut(labels[partner]) {
                *v += 1.0 - lambda;
            }
        }
        targets
    }
}

/// `img = lambda img + (1 - lambda) other`; returns the label weight.
fn mixup(img: &mut [f32], other: &[f32], lambda: f32) -> f32 {
    for (a, &b) in img.iter_mut().zip(other) {
        *a = lambda * *a + (1.0 - lambda) * b;
    }
    lambda
}

/// Pastes a rectangle of `1 - lambda` times the area of `other`, clipped
/// at the border; returns the label weight, the area actually kept.
fn cutmix(img: &mut [f32], other: &[f32], shape: Shape, lambda: f32, rng: &mut Rng) -> f32 {
    let cut = (1.0 - lambda).sqrt();
    let (bh, bw) = (
        (cut * shape.h as f32).round() as usize,
        (cut * shape.w as f32).round() as usize,
    );
    let cy = rng.below(shape.h.max(1) as u64) as usize;
    let cx = rng.below(shape.w.max(1) as u64) as usize;
    let (y0, y1) = (
        cy.saturating_sub(bh / 2),
        (cy + bh.div_ceil(2)).min(shape.h),
    );
    let (x0, x1) = (
        cx.saturating_sub(bw / 2),
        (cx + bw.div_ceil(2)).min(shape.w),
    );
    let c = shape.c;
    for y in y0..y1 {
        let r = (y * shape.w + x0) * c..(y * shape.w + x1) * c;
        img[r.clone()].copy_from_slice(&other[r]);
    }
    let pasted = (y1 - y0) * (x1 - x0);
    1.0 - pasted as f32 / (shape.h * shape.w).max(1) as f32
}
