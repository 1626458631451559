//! The element types a tensor or a weight table is viewed as, and the
//! checked casts from the blob's and the arena's bytes.

use super::format::DType;
use crate::error::{Error, Result};
use half::f16;

mod sealed {
    pub trait Sealed {}
    impl Sealed for i8 {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for i32 {}
    impl Sealed for i16 {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// An element type the arena and the data section can be viewed as.
pub trait Element: bytemuck::Pod + sealed::Sealed {
    /// The tensor type it stands for (`None` for int32 bias and tables).
    const DTYPE: Option<DType>;
}

impl Element for i8 {
    const DTYPE: Option<DType> = Some(DType::I8);
}
impl Element for f32 {
    const DTYPE: Option<DType> = Some(DType::F32);
}
impl Element for f16 {
    const DTYPE: Option<DType> = Some(DType::F16);
}
impl Element for i32 {
    const DTYPE: Option<DType> = None;
}
impl Element for i16 {
    const DTYPE: Option<DType> = Some(DType::I16);
}
impl Element for i64 {
    const DTYPE: Option<DType> = None;
}
impl Element for f64 {
    const DTYPE: Option<DType> = None;
}

/// `b` as elements; the blob's and the arena's alignment make it exact.
pub(crate) fn cast<T: Element>(b: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(b).map_err(|_| Error::Misaligned {
        what: "tensor or weights",
    })
}

/// `b` as mutable elements.
pub(crate) fn cast_mut<T: Element>(b: &mut [u8]) -> Result<&mut [T]> {
    bytemuck::try_cast_slice_mut(b).map_err(|_| Error::Misaligned { what: "tensor" })
}
