//! Data augmentation on the host: a seeded pipeline of per-image operations
//! applied on the fly while training.
//!
//! Images are `f32` in `0..=1`, HWC (grayscale or RGB). Each step of a
//! [`Pipeline`] runs with its own probability; a step's random parameters
//! come from a generator seeded per image, so an image gets the same
//! augmentation whatever thread handles it.
//!
//! Each operation is a type holding its parameters ([`Brightness`],
//! [`Affine`], ...); [`Op`] is any one of them, [`Mix`] the batch-level
//! mixing. A pipeline also reads from and writes to text (see
//! [`Pipeline::from_str`](core::str::FromStr::from_str)).
//!
//! ```
//! use picocnn::augment::Pipeline;
//! use picocnn::Shape;
//!
//! let pipeline = Pipeline::new()
//!     .affine(0.5, 10.0, [0.9, 1.1], 5.0)?
//!     .translate(0.5, 2.0)?
//!     .noise(0.3, 0.05)?;
//! let shape = Shape::new(28, 28, 1);
//! let mut image = vec![0.0f32; shape.len()];
//! image[14 * 28 + 14] = 1.0;
//! pipeline.apply(&mut image, shape, 7);
//! assert!(image.iter().all(|v| (0.0..=1.0).contains(v)));
//! # Ok::<(), picocnn::Error>(())
//! ```

mod geometric;
mod mixing;
mod photometric;
mod text;

pub use crate::rng::Rng;
pub use geometric::{Affine, CropResize, Elastic, Erase, FlipHorizontal, FlipVertical, Translate};
pub use mixing::Mix;
pub use photometric::{Brightness, ColorJitter, Contrast, Gamma, Noise};
pub use text::{SpecError, NAMES};

use crate::tensor::Shape;
use crate::{Error, Result};
use std::vec::Vec;
use text::Param;

// The source is grouped by kind: photometric (values), geometric (positions
// and regions), mixing (two images of a batch), text (the text form and the
// presets).

/// What each operation defines, in one place: names, parameters with their
/// text form, check, and the operation itself. Reading text starts from
/// `Default` and sets every parameter.
pub(crate) trait Augmentation: Default {
    /// Its name in the text form, then other names that read as it.
    const NAMES: &'static [&'static str];
    /// Its parameters in the order the text form writes them, each with its
    /// key and default.
    fn params(&mut self) -> Vec<Param<'_>> {
        Vec::new()
    }
    /// Checks the parameters; the message starts with the name.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Applies the operation to `image` with parameters drawn from `rng`;
    /// `scratch` is a buffer the steps of one image share.
    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>);
}

/// The table of operations: generates [`Op`] and its dispatch from one
/// line per operation type.
macro_rules! operations {
    ($($name:ident,)*) => {
        /// One operation of a pipeline, with its ranges.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum Op {
            $(
                #[doc = concat!("[`", stringify!($name), "`].")]
                $name($name),
            )*
        }

        $(
            impl From<$name> for Op {
                fn from(op: $name) -> Op {
                    Op::$name(op)
                }
            }
        )*

        /// Every operation's names in the text form, in table order.
        const OPERATION_NAMES: &[&[&str]] = &[$(<$name as Augmentation>::NAMES,)*];

        impl Op {
            /// The name the textual form uses.
            pub const fn name(&self) -> &'static str {
                match self {
                    $(Op::$name(_) => <$name as Augmentation>::NAMES[0],)*
                }
            }

            /// The operation named `name` in the text form, parameters unset.
            fn named(name: &str) -> Option<Op> {
                $(
                    if <$name as Augmentation>::NAMES.contains(&name) {
                        return Some(Op::$name($name::default()));
                    }
                )*
                None
            }

            fn params(&mut self) -> Vec<Param<'_>> {
                match self {
                    $(Op::$name(op) => op.params(),)*
                }
            }

            fn check(&self) -> Result<()> {
                match self {
                    $(Op::$name(op) => op.check(),)*
                }
            }

            fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>) {
                match self {
                    $(Op::$name(op) => op.apply(image, shape, rng, scratch),)*
                }
            }
        }
    };
}

operations! {
    Brightness,
    Contrast,
    Gamma,
    Noise,
    ColorJitter,
    Translate,
    CropResize,
    Affine,
    Elastic,
    FlipHorizontal,
    FlipVertical,
    Erase,
}

/// A non-negative finite value, else `what`.
fn non_negative(v: f32, what: &'static str) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter { what })
    }
}

/// A finite range with `0 <= lo <= hi`, else `what`.
fn ordered(r: [f32; 2], what: &'static str) -> Result<()> {
    if r[0].is_finite() && r[1].is_finite() && 0.0 <= r[0] && r[0] <= r[1] {
        Ok(())
    } else {
        Err(Error::InvalidParameter { what })
    }
}

/// A probability in `[0, 1]` (steps and mixing alike).
fn check_probability(p: f32) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            what: "probability must be in [0, 1]",
        })
    }
}

/// A step: an operation applied with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Probability of applying the operation to an image.
    pub p: f32,
    /// The operation.
    pub op: Op,
}

/// A seeded, composable sequence of augmentation steps, and optionally a
/// batch-level mixing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pipeline {
    steps: Vec<Step>,
    mix: Option<Mix>,
}

impl Pipeline {
    /// An empty pipeline (the identity).
    pub fn new() -> Pipeline {
        Pipeline {
            steps: Vec::new(),
            mix: None,
        }
    }

    /// Appends `op`, applied with probability `p`; checks both.
    pub fn then(mut self, p: f32, op: impl Into<Op>) -> Result<Pipeline> {
        let op = op.into();
        check_probability(p)?;
        op.check()?;
        self.steps.push(Step { p, op });
        Ok(self)
    }

    /// Mixes images of a batch (see [`mix_batch`](Self::mix_batch)); replaces
    /// an earlier mixing.
    pub fn mixing(mut self, mix: Mix) -> Result<Pipeline> {
        mix.check()?;
        self.mix = Some(mix);
        Ok(self)
    }

    /// [`Mix::Mixup`].
    pub fn mixup(self, p: f32, alpha: f32) -> Result<Pipeline> {
        self.mixing(Mix::Mixup { p, alpha })
    }

    /// [`Mix::Cutmix`].
    pub fn cutmix(self, p: f32, alpha: f32) -> Result<Pipeline> {
        self.mixing(Mix::Cutmix { p, alpha })
    }

    /// The batch-level mixing, if any.
    pub fn mix(&self) -> Option<Mix> {
        self.mix
    }

    /// Mixes the `labels.len()` images of `images` (each `shape`, after
    /// [`apply`](Self::apply)) in place with partners from the same batch
    /// and returns their soft labels (`classes` values per image, summing to
    /// one); `None` when the pipeline has no mixing. Image `j` draws from a
    /// generator seeded with `seeds[j]`; partners are read as they were
    /// before any mixing.
    pub fn mix_batch(
        &self,
        images: &mut [f32],
        shape: Shape,
        labels: &[usize],
        classes: usize,
        seeds: &[u64],
    ) -> Option<Vec<f32>> {
        Some(self.mix?.apply(images, shape, labels, classes, seeds))
    }

    /// The steps in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// [`Brightness`] with one change for all channels.
    pub fn brightness(self, p: f32, max: f32) -> Result<Pipeline> {
        self.then(
            p,
            Brightness {
                max,
                per_channel: false,
            },
        )
    }

    /// [`Contrast`].
    pub fn contrast(self, p: f32, lo: f32, hi: f32) -> Result<Pipeline> {
        self.then(p, Contrast { range: [lo, hi] })
    }

    /// [`Gamma`].
    pub fn gamma(self, p: f32, lo: f32, hi: f32) -> Result<Pipeline> {
        self.then(p, Gamma { range: [lo, hi] })
    }

    /// [`Noise`].
    pub fn noise(self, p: f32, sigma: f32) -> Result<Pipeline> {
        self.then(p, Noise { sigma })
    }

    /// [`Translate`].
    pub fn translate(self, p: f32, max: f32) -> Result<Pipeline> {
        self.then(p, Translate { max })
    }

    /// [`Affine`]: rotation up to `degrees`, scale in `scale`, shear up
    /// to `shear` degrees.
    pub fn affine(self, p: f32, degrees: f32, scale: [f32; 2], shear: f32) -> Result<Pipeline> {
        self.then(
            p,
            Affine {
                degrees,
                scale,
                shear,
            },
        )
    }

    /// [`Affine`] with rotation only.
    pub fn rotate(self, p: f32, degrees: f32) -> Result<Pipeline> {
        self.affine(p, degrees, [1.0, 1.0], 0.0)
    }

    /// [`Elastic`].
    pub fn elastic(self, p: f32, alpha: f32, sigma: f32) -> Result<Pipeline> {
        self.then(p, Elastic { alpha, sigma })
    }

    /// [`Erase`] with zeros.
    pub fn erase(self, p: f32, lo: f32, hi: f32) -> Result<Pipeline> {
        self.then(
            p,
            Erase {
                area: [lo, hi],
                value: 0.0,
            },
        )
    }

    /// Applies every step to `image` (HWC, `shape`), each with its
    /// probability, drawing from a generator seeded with `seed`.
    pub fn apply(&self, image: &mut [f32], shape: Shape, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut scratch = Vec::new();
        for step in &self.steps {
            // Draw the decision first so a step's parameters never shift
            // the decisions of the steps after it.
            let on = rng.chance(step.p);
            let mut op_rng = Rng::new(rng.next_u64());
            if on {
                step.op.apply(image, shape, &mut op_rng, &mut scratch);
            }
        }
    }
}
