//! A bump allocator over a byte arena, for typed buffers without a heap.

use half::f16;
use picocnn::Error;

mod sealed {
    pub trait Sealed {}
}

/// Plain data: every bit pattern is a valid value.
pub trait Pod: Copy + Default + sealed::Sealed {}

macro_rules! pod {
    ($($t:ty),*) => {$(impl sealed::Sealed for $t {} impl Pod for $t {})*};
}
pod!(u8, i8, i16, i32, u32, f32, f16);

/// Hands out aligned, zeroed slices of an arena, front to back.
pub struct Bump<'a> {
    rest: &'a mut [u8],
    used: usize,
}

impl<'a> Bump<'a> {
    /// A bump allocator over `arena`.
    pub fn new(arena: &'a mut [u8]) -> Self {
        Bump {
            rest: arena,
            used: 0,
        }
    }

    /// Bytes handed out so far, alignment included.
    pub fn used(&self) -> usize {
        self.used
    }

    /// `n` zeroed values of `T`.
    pub fn take<T: Pod>(&mut self, n: usize) -> Result<&'a mut [T], Error> {
        let rest = core::mem::take(&mut self.rest);
        let pad = rest.as_ptr().align_offset(core::mem::align_of::<T>());
        let bytes = n
            .checked_mul(core::mem::size_of::<T>())
            .ok_or(Error::Overflow)?;
        if pad.saturating_add(bytes) > rest.len() {
            let got = rest.len();
            self.rest = rest;
            return Err(Error::BufferTooSmall {
                what: "conformance arena",
                needed: self.used + pad.saturating_add(bytes),
                got: self.used + got,
            });
        }
        let (_, rest) = rest.split_at_mut(pad);
        let (chunk, rest) = rest.split_at_mut(bytes);
        chunk.fill(0);
        self.rest = rest;
        self.used += pad + bytes;
        // SAFETY: `chunk` is aligned for `T` (align_offset above), holds
        // exactly `n * size_of::<T>()` initialised bytes, is borrowed for 'a
        // and no longer reachable through `self`; any bit pattern is a valid
        // `T` (Pod).
        Ok(unsafe { core::slice::from_raw_parts_mut(chunk.as_mut_ptr() as *mut T, n) })
    }

    /// A copy of `data` in the arena.
    pub fn copy<T: Pod>(&mut self, data: &[T]) -> Result<&'a mut [T], Error> {
        let s = self.take(data.len())?;
        s.copy_from_slice(data);
        Ok(s)
    }
}

/// The bytes of a plain-data slice.
pub fn bytes<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: Pod types have no padding, and u8 has alignment 1; the byte
    // view covers exactly the slice's memory for the same lifetime.
    unsafe { core::slice::from_raw_parts(v.as_ptr() as *const u8, core::mem::size_of_val(v)) }
}
