//! The numeric loops under the training layers: im2col and its adjoint, the
//! GEMM wrapper, the direct one-channel convolution and its x86 vector
//! twins.

mod block;
pub(super) mod direct;
pub(super) mod gemm;
pub(super) mod im2col;
#[cfg(target_arch = "x86_64")]
mod simd;
