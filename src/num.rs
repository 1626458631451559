//! Element types of float tensors.

use half::f16;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
}

/// A float storage type: `f32`, or `f16` kept in memory and computed in `f32`.
///
/// Float kernels load each element as `f32`, compute in `f32` in one fixed
/// order on every target, and round once when they store, so the host and a
/// board give bit-identical results.
pub trait Real:
    Copy + Default + PartialOrd + sealed::Sealed + crate::arch::FloatLane + 'static
{
    /// The value as `f32` (exact).
    fn to_f32(self) -> f32;
    /// The nearest storable value (round to nearest even).
    fn from_f32(v: f32) -> Self;
    /// `acc + x[0] w[0] + x[1] w[1] + ...` in `f32`, in this order, each
    /// product and sum rounded (never fused): the float kernels' inner loop.
    fn dot(acc: f32, x: &[Self], w: &[Self]) -> f32;
    /// [`dot`](Self::dot) of one `x` with two weight rows, each sum in the
    /// same order (a kernel shares the loads and conversions of `x`).
    #[inline(always)]
    fn dot2(acc: [f32; 2], x: &[Self], wa: &[Self], wb: &[Self]) -> [f32; 2] {
        [Self::dot(acc[0], x, wa), Self::dot(acc[1], x, wb)]
    }
}

impl Real for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn dot(acc: f32, x: &[f32], w: &[f32]) -> f32 {
        crate::arch::dot_f32(acc, x, w)
    }
}

impl Real for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        crate::arch::f16_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_bits(crate::arch::f32_to_f16(v))
    }
    #[inline(always)]
    fn dot(acc: f32, x: &[f16], w: &[f16]) -> f32 {
        crate::arch::dot_f16(acc, bytemuck::cast_slice(x), bytemuck::cast_slice(w))
    }
    #[inline(always)]
    fn dot2(acc: [f32; 2], x: &[f16], wa: &[f16], wb: &[f16]) -> [f32; 2] {
        crate::arch::dot2_f16(
            acc,
            bytemuck::cast_slice(x),
            bytemuck::cast_slice(wa),
            bytemuck::cast_slice(wb),
        )
    }
}

pub(crate) use crate::arch::clamp_f32;
