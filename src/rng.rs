//! The one random number generator: SplitMix64, seeded, so training,
//! shuffles, augmentation and on-device fine-tuning depend only on their
//! seeds. The integer draws are `no_std`; the shuffle and the float
//! distributions need `std`.
//!
//! One step of SplitMix64 (add the golden-ratio increment, then finalise)
//! underlies everything: [`Rng`] iterates it from a mixed seed; [`shuffled`]
//! walks the classic counter sequence; training derives its per-epoch,
//! per-image and per-layer seeds and its initial weights with it.
//!
//! ```
//! use picocnn::rng::{shuffled, Rng};
//!
//! let mut rng = Rng::new(7);
//! let (a, b) = (rng.unit(), rng.normal());
//! assert!((0.0..1.0).contains(&a) && b.is_finite());
//! assert_eq!(shuffled(4, 1), shuffled(4, 1));
//! ```

#[cfg(feature = "std")]
use std::vec::Vec;

/// SplitMix64's increment, the golden ratio in 64 bits.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// One SplitMix64 output for state `z` (shuffles, initialisation, dropout,
/// seed derivation).
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `0..n` in an order shuffled by `seed` (Fisher-Yates over SplitMix64).
#[cfg(feature = "std")]
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        let z = mix(s);
        s = s.wrapping_add(GOLDEN);
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    order
}

/// A small seeded generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    /// Uniform in `0..n` (by remainder; `n` must not be zero).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Two uniforms in `[0, 1)` from one draw.
    pub fn unit_pair(&mut self) -> (f32, f32) {
        let r = self.next_u64();
        let scale = 1.0 / (1u64 << 24) as f32;
        (
            (r >> 40) as f32 * scale,
            ((r >> 8) & 0xff_ffff) as f32 * scale,
        )
    }

    /// Uniform in `[lo, hi)` (`lo` when the range is empty).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    #[cfg(feature = "std")]
    pub fn normal(&mut self) -> f32 {
        self.normal_pair().0
    }

    /// Two independent standard normals (both halves of Box-Muller).
    #[cfg(feature = "std")]
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let u = 1.0 - self.unit(); // (0, 1]
        let v = self.unit();
        let r = (-2.0 * u.ln()).sqrt();
        let (sin, cos) = (2.0 * core::f32::consts::PI * v).sin_cos();
        (r * cos, r * sin)
    }

    /// Gamma(`shape`, 1) (Marsaglia and Tsang).
    #[cfg(feature = "std")]
    pub fn gamma(&mut self, shape: f32) -> f32 {
        if shape < 1.0 {
            let u = self.unit().max(f32::MIN_POSITIVE);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit().max(f32::MIN_POSITIVE);
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(`a`, `a`), symmetric, as mixup draws its weight.
    #[cfg(feature = "std")]
    pub fn beta(&mut self, a: f32) -> f32 {
        let (x, y) = (self.gamma(a), self.gamma(a));
        if x + y > 0.0 {
            x / (x + y)
        } else {
            0.5
        }
    }
}
