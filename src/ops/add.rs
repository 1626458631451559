//! Residual add of two tensors of the same shape.
//!
//! The int8 kernel rescales each input to a common, finer scale (a left shift
//! of 20 bits and a per-input multiplier), adds, and requantizes to the output,
//! exactly as TensorFlow Lite's `ADD`; the inputs may have different scales
//! and zero points.
//!
//! ```
//! use picocnn::ops::add::{AddI8, AddQuant};
//! use picocnn::quant::{Clamp, QParams};
//!
//! let a = QParams::new(0.1, 0)?;
//! let b = QParams::new(0.05, 10)?;
//! let out = QParams::new(0.1, -5)?;
//! let add = AddI8::new(AddQuant::new(a, b, out)?, Clamp::NONE)?;
//! let mut y = [0i8; 2];
//! add.run(&[10, -10], &[30, 10], &mut y)?; // 1.0 + 1.0, -1.0 + 0.0
//! assert_eq!(y, [15, -15]);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::error::{check_len, invalid, Result};
use crate::num::{clamp_f32, Real};
use crate::ops::check_zero_point;
use crate::quant::{quantize_multiplier, Activation, Clamp, QParams, Requant, Scale};

/// Left shift applied to both inputs before rescaling (TensorFlow Lite's
/// value for int8).
pub const ADD_LEFT_SHIFT: i32 = 20;

/// Fixed-point parameters of an int8 add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddQuant {
    /// Zero point of the first input.
    pub input1_zero_point: i32,
    /// Multiplier of the first input (below one).
    pub input1: Requant,
    /// Zero point of the second input.
    pub input2_zero_point: i32,
    /// Multiplier of the second input (below one).
    pub input2: Requant,
    /// Multiplier from the common scale to the output's.
    pub output: Requant,
    /// Zero point of the output.
    pub output_zero_point: i32,
}

impl AddQuant {
    /// Derives the multipliers from the scales, as TensorFlow Lite's
    /// `PrepareGeneralSubOp` for int8.
    pub fn new(input1: QParams, input2: QParams, output: QParams) -> Result<Self> {
        AddQuant::with_left_shift(input1, input2, output, ADD_LEFT_SHIFT)
    }

    /// [`new`](Self::new) for inputs shifted left by `left_shift` bits
    /// (TensorFlow Lite's 20 for int8, 15 for int16).
    pub fn with_left_shift(
        input1: QParams,
        input2: QParams,
        output: QParams,
        left_shift: i32,
    ) -> Result<Self> {
        let twice_max = 2.0 * f64::from(input1.scale.max(input2.scale));
        let r1 = f64::from(input1.scale) / twice_max;
        let r2 = f64::from(input2.scale) / twice_max;
        let ro = twice_max / (f64::from(1u32 << left_shift) * f64::from(output.scale));
        Ok(AddQuant {
            input1_zero_point: input1.zero_point,
            input1: quantize_multiplier(r1)?,
            input2_zero_point: input2.zero_point,
            input2: quantize_multiplier(r2)?,
            output: quantize_multiplier(ro)?,
            output_zero_point: output.zero_point,
        })
    }
}

/// A ready-to-run int8 add.
#[derive(Debug, Clone, Copy)]
pub struct AddI8 {
    q: AddQuant,
    clamp: Clamp,
}

impl AddI8 {
    /// Checks the parameters.
    pub fn new(q: AddQuant, clamp: Clamp) -> Result<Self> {
        check_zero_point(q.input1_zero_point)?;
        check_zero_point(q.input2_zero_point)?;
        check_zero_point(q.output_zero_point)?;
        if !(q.input1.is_valid() && q.input2.is_valid() && q.output.is_valid()) {
            return Err(invalid("shift outside -31..=30"));
        }
        if q.input1.multiplier < 0 || q.input2.multiplier < 0 || q.output.multiplier < 0 {
            return Err(invalid("negative multiplier"));
        }
        Clamp::new(clamp.min, clamp.max)?;
        Ok(AddI8 { q, clamp })
    }

    /// From parts that `new` accepted before (a checked model record).
    pub(crate) const fn from_checked(q: AddQuant, clamp: Clamp) -> Self {
        AddI8 { q, clamp }
    }

    /// Adds `a` and `b` into `output`; all three have the same length.
    pub fn run(&self, a: &[i8], b: &[i8], output: &mut [i8]) -> Result<()> {
        check_len("add second input", a.len(), b.len())?;
        check_len("add output", a.len(), output.len())?;
        if self.vector(crate::arch::AddInput::Apart(a, output), b) {
            return Ok(());
        }
        if TABLES && a.len() >= TABLE_MIN {
            let tables = self.tables();
            for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
                *o = self.by_tables(&tables, x, y);
            }
        } else {
            let scales = self.scales();
            for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
                *o = self.element(&scales, x, y);
            }
        }
        Ok(())
    }

    /// Adds `b` into `a` in place (a residual add into a dying input).
    #[inline(never)]
    pub fn run_in_place(&self, a: &mut [i8], b: &[i8]) -> Result<()> {
        check_len("add second input", a.len(), b.len())?;
        if self.vector(crate::arch::AddInput::InPlace(a), b) {
            return Ok(());
        }
        if TABLES && a.len() >= TABLE_MIN {
            let tables = self.tables();
            for (x, &y) in a.iter_mut().zip(b) {
                *x = self.by_tables(&tables, *x, y);
            }
        } else {
            let scales = self.scales();
            for (x, &y) in a.iter_mut().zip(b) {
                *x = self.element(&scales, *x, y);
            }
        }
        Ok(())
    }

    /// The three requantizations' shifts and masks, worked out once per run
    /// rather than per element (`new` checked the multipliers not negative).
    /// The widest loop this CPU has over `io`'s first input and `b`, when
    /// there is one: then `true`.
    #[inline(always)]
    fn vector(&self, io: crate::arch::AddInput<'_>, b: &[i8]) -> bool {
        if !crate::arch::vector_elementwise() {
            return false;
        }
        let q = &self.q;
        let zp = [
            q.input1_zero_point,
            q.input2_zero_point,
            q.output_zero_point,
        ];
        let left = ADD_LEFT_SHIFT as u32;
        crate::arch::add_i8(io, b, zp, left, self.scales(), self.clamp);
        true
    }

    #[inline(always)]
    fn scales(&self) -> [Scale; 3] {
        [self.q.input1, self.q.input2, self.q.output].map(|r| Scale::new(r.multiplier, r.shift))
    }

    /// Each input's rescaled value for all 256 of its codes.
    fn tables(&self) -> [[i32; 256]; 2] {
        let [s1, s2, _] = self.scales();
        let q = &self.q;
        let (mut t1, mut t2) = ([0i32; 256], [0i32; 256]);
        for (code, (a, b)) in t1.iter_mut().zip(&mut t2).enumerate() {
            let v = code as u8 as i8 as i32;
            *a = s1.apply((v - q.input1_zero_point) << ADD_LEFT_SHIFT);
            *b = s2.apply((v - q.input2_zero_point) << ADD_LEFT_SHIFT);
        }
        [t1, t2]
    }

    #[inline(always)]
    fn by_tables(&self, [t1, t2]: &[[i32; 256]; 2], x: i8, y: i8) -> i8 {
        let sum = t1[x as u8 as usize].wrapping_add(t2[y as u8 as usize]);
        let so = Scale::new(self.q.output.multiplier, self.q.output.shift);
        self.clamp
            .apply(so.apply(sum).wrapping_add(self.q.output_zero_point))
    }

    #[inline(always)]
    fn element(&self, [s1, s2, so]: &[Scale; 3], x: i8, y: i8) -> i8 {
        let q = &self.q;
        let x = (x as i32 - q.input1_zero_point) << ADD_LEFT_SHIFT;
        let y = (y as i32 - q.input2_zero_point) << ADD_LEFT_SHIFT;
        let sum = s1.apply(x).wrapping_add(s2.apply(y));
        self.clamp
            .apply(so.apply(sum).wrapping_add(q.output_zero_point))
    }
}

/// Adds of this many values or more rescale their inputs through two
/// 256-entry tables (2 KB of stack, built in about 10,000 instructions)
/// rather than two requantizations per value. Not on Armv6-M, whose cores
/// have little RAM for stack.
const TABLES: bool = !cfg!(picocnn_thumb1);
const TABLE_MIN: usize = 1024;

/// Float add of `a` and `b` into `output`, with a fused activation.
pub fn add_float<T: Real>(
    a: &[T],
    b: &[T],
    output: &mut [T],
    activation: Activation,
) -> Result<()> {
    check_len("add second input", a.len(), b.len())?;
    check_len("add output", a.len(), output.len())?;
    let (lo, hi) = activation.range_f32();
    for ((o, x), y) in output.iter_mut().zip(a).zip(b) {
        *o = T::from_f32(clamp_f32(x.to_f32() + y.to_f32(), lo, hi));
    }
    Ok(())
}

/// Float add of `b` into `a` in place.
pub fn add_float_in_place<T: Real>(a: &mut [T], b: &[T], activation: Activation) -> Result<()> {
    check_len("add second input", a.len(), b.len())?;
    let (lo, hi) = activation.range_f32();
    for (x, y) in a.iter_mut().zip(b) {
        *x = T::from_f32(clamp_f32(x.to_f32() + y.to_f32(), lo, hi));
    }
    Ok(())
}

/// Scratch bytes the kernels of this module need: none (planners size one
/// arena from every kernel's `scratch_len`).
pub const fn scratch_len() -> usize {
    0
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Whatever loop `run` and `run_in_place` take on this CPU (AVX-512
    /// where it has it), every element equals the scalar path's, over
    /// random scales, zero points, clamps and lengths.
    #[test]
    fn every_path_gives_the_scalar_bytes() {
        let mut rng = Rng::new(3);
        for case in 0..300 {
            let scale = |rng: &mut Rng| 0.001 + rng.below(1000) as f32 / 997.0;
            let zp = |rng: &mut Rng| rng.below(256) as i32 - 128;
            let q = |rng: &mut Rng| QParams::new(scale(rng), zp(rng)).unwrap();
            let Ok(quant) = AddQuant::new(q(&mut rng), q(&mut rng), q(&mut rng)) else {
                continue;
            };
            let clamp = match case % 3 {
                0 => Clamp::NONE,
                1 => Clamp { min: -30, max: 127 },
                _ => Clamp { min: -100, max: 40 },
            };
            let add = AddI8::new(quant, clamp).unwrap();
            let n = rng.below(if case % 2 == 0 { 40 } else { 3000 }) as usize;
            let a: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
            let b: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
            let scales = add.scales();
            let want: Vec<i8> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| add.element(&scales, x, y))
                .collect();
            let mut out = vec![0i8; n];
            add.run(&a, &b, &mut out).unwrap();
            assert_eq!(out, want, "case {case}");
            let mut inplace = a.clone();
            add.run_in_place(&mut inplace, &b).unwrap();
            assert_eq!(inplace, want, "case {case} in place");
        }
    }
}
