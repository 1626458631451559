//! Half-precision conversions with the FPU's `vcvtb` (FPv4-SP on the
//! Cortex-M4F, FPv5 on the M7, M33 and M55): one instruction where `half`
//! converts in about twenty. Bit-identical to `half`'s conversions with the
//! FPSCR's reset state (IEEE half format, round to nearest even, no
//! flush-to-zero, NaNs quieted with their payload kept), which the
//! conformance firmware checks on all 65,536 halves and on the rounding cases
//! of single to half.

use core::arch::asm;

// Rust names no FPU feature for these targets, so its asm cannot take
// s-registers as operands: the blocks keep their values in core registers
// and save and restore the s-registers they use.

/// The `f32` value of half-precision `bits` (exact).
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let out: u32;
    // SAFETY: registers only; s15 is restored before the block ends.
    unsafe {
        asm!(
            "vmov {t}, s15",
            "vmov s15, {i}",
            "vcvtb.f32.f16 s15, s15",
            "vmov {o}, s15",
            "vmov s15, {t}",
            t = out(reg) _,
            i = in(reg) bits as u32,
            o = lateout(reg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    f32::from_bits(out)
}

/// The nearest half-precision value of `v`, as bits.
#[inline(always)]
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    let out: u32;
    // SAFETY: as above. `vcvtb` writes the low half of s15 only; the upper
    // half is dropped by the cast.
    unsafe {
        asm!(
            "vmov {t}, s15",
            "vmov s15, {i}",
            "vcvtb.f16.f32 s15, s15",
            "vmov {o}, s15",
            "vmov s15, {t}",
            t = out(reg) _,
            i = in(reg) v.to_bits(),
            o = lateout(reg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out as u16
}

/// `acc + x[0] w[0] + x[1] w[1] + ...` over half-precision bits, each
/// product and sum rounded to `f32` in this order (`vmla` does not fuse),
/// as the portable loop computes it.
#[inline(always)]
pub(crate) fn dot_f16(acc: f32, x: &[u16], w: &[u16]) -> f32 {
    let n = x.len().min(w.len());
    let pairs = n / 2;
    let mut acc = acc.to_bits();
    if pairs > 0 {
        // SAFETY: reads `2 * pairs` halfwords from each slice, within their
        // lengths (ARMv7-M and Armv8-M Mainline `ldr` take 2-byte aligned
        // addresses). s8-s13 are saved on the stack and restored, so no
        // register the compiler uses changes.
        unsafe {
            asm!(
                "vpush {{d4, d5, d6}}",
                "vmov s8, {acc}",
                "2:",
                "ldr {t}, [{x}], #4",
                "ldr {u}, [{w}], #4",
                "vmov s9, s10, {t}, {u}",
                "vcvtb.f32.f16 s11, s9",
                "vcvtb.f32.f16 s12, s10",
                "vmla.f32 s8, s11, s12",
                "vcvtt.f32.f16 s11, s9",
                "vcvtt.f32.f16 s12, s10",
                "vmla.f32 s8, s11, s12",
                "subs {n}, {n}, #1",
                "bne 2b",
                "vmov {acc}, s8",
                "vpop {{d4, d5, d6}}",
                acc = inout(reg) acc,
                x = inout(reg) x.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                n = inout(reg) pairs => _,
                t = out(reg) _,
                u = out(reg) _,
                options(readonly),
            );
        }
    }
    let mut acc = f32::from_bits(acc);
    if n % 2 == 1 {
        acc += f16_to_f32(x[n - 1]) * f16_to_f32(w[n - 1]);
    }
    acc
}

/// [`dot_f16`] of one `x` with two weight rows at once: `x` is loaded and
/// converted once for both, and each sum runs in the same order as
/// [`dot_f16`]'s.
#[inline(always)]
pub(crate) fn dot2_f16(acc: [f32; 2], x: &[u16], wa: &[u16], wb: &[u16]) -> [f32; 2] {
    let n = x.len().min(wa.len()).min(wb.len());
    let pairs = n / 2;
    let [mut a, mut b] = acc.map(f32::to_bits);
    if pairs > 0 {
        // SAFETY: reads `2 * pairs` halfwords from each slice, within their
        // lengths (2-byte aligned `ldr` is allowed, as in `dot_f16`). s8-s15
        // are saved on the stack and restored.
        unsafe {
            asm!(
                "vpush {{d4, d5, d6, d7}}",
                "vmov s8, s9, {a}, {b}",
                "2:",
                "ldr {t}, [{x}], #4",
                "ldr {u}, [{wa}], #4",
                "ldr {v}, [{wb}], #4",
                "vmov s10, s11, {t}, {u}",
                "vmov s12, {v}",
                "vcvtb.f32.f16 s13, s10",
                "vcvtb.f32.f16 s14, s11",
                "vcvtb.f32.f16 s15, s12",
                "vmla.f32 s8, s13, s14",
                "vmla.f32 s9, s13, s15",
                "vcvtt.f32.f16 s13, s10",
                "vcvtt.f32.f16 s14, s11",
                "vcvtt.f32.f16 s15, s12",
                "vmla.f32 s8, s13, s14",
                "vmla.f32 s9, s13, s15",
                "subs {n}, {n}, #1",
                "bne 2b",
                "vmov {a}, {b}, s8, s9",
                "vpop {{d4, d5, d6, d7}}",
                a = inout(reg) a,
                b = inout(reg) b,
                x = inout(reg) x.as_ptr() => _,
                wa = inout(reg) wa.as_ptr() => _,
                wb = inout(reg) wb.as_ptr() => _,
                n = inout(reg) pairs => _,
                t = out(reg) _,
                u = out(reg) _,
                v = out(reg) _,
                options(readonly),
            );
        }
    }
    let [mut a, mut b] = [f32::from_bits(a), f32::from_bits(b)];
    if n % 2 == 1 {
        let xl = f16_to_f32(x[n - 1]);
        a += xl * f16_to_f32(wa[n - 1]);
        b += xl * f16_to_f32(wb[n - 1]);
    }
    [a, b]
}
