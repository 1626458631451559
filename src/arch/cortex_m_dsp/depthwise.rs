//! The depthwise loops' DSP parts: a tap's filters as SXTB16 pairs, one
//! tap of four channels, and a whole 3x3 window in one assembly block.

use core::arch::asm;

use super::{ld32, sxtb16, sxtb16_ror8};

/// One depthwise tap's four filter values sign-extended in pairs:
/// channels 0 and 2, then 1 and 3.
#[inline(always)]
pub(crate) fn filter4(w: &[i8]) -> [u32; 2] {
    let w = &w[..4];
    // SAFETY: the slice holds exactly four bytes.
    let wv = unsafe { ld32(w.as_ptr()) };
    [sxtb16(wv), sxtb16_ror8(wv)]
}

/// Four independent multiply-accumulates of one depthwise tap:
/// `acc[j] + (x[j] + offset) * w[j]`: one load of each, two SXTAB16 and
/// four SMLAxy in one block, so that the compiler keeps the accumulators
/// in registers instead of hoisting every tap's loads.
#[inline(always)]
pub(crate) fn mac4(acc: [i32; 4], x: &[i8], w: &[u32; 2], offset: i32) -> [i32; 4] {
    let x = &x[..4];
    let off2 = (offset as u32 & 0xffff) | ((offset as u32) << 16);
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    // SAFETY: reads the four bytes of `x` and the two words of `w`.
    unsafe {
        asm!(
            "ldr {x}, [{xp}]",
            "ldrd {w02}, {w13}, [{wp}]",
            "sxtab16 {t}, {off}, {x}",
            "sxtab16 {x}, {off}, {x}, ror #8",
            "smlabb {a0}, {t}, {w02}, {a0}",
            "smlatt {a2}, {t}, {w02}, {a2}",
            "smlabb {a1}, {x}, {w13}, {a1}",
            "smlatt {a3}, {x}, {w13}, {a3}",
            xp = in(reg) x.as_ptr(),
            wp = in(reg) w.as_ptr(),
            off = in(reg) off2,
            x = out(reg) _,
            t = out(reg) _,
            w02 = out(reg) _,
            w13 = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(readonly, nostack, preserves_flags),
        );
    }
    [a0, a1, a2, a3]
}

/// One tap of [`window_3x3`], its input word in `{x}`: the next filter
/// pair, both halves of the input, four SMLAxy.
macro_rules! window_tap {
    () => {
        concat!(
            "ldrd {w02}, {w13}, [{wp}], #8\n",
            "sxtb16 {t}, {x}\n",
            "sxtb16 {x}, {x}, ror #8\n",
            "smlabb {a0}, {t}, {w02}, {a0}\n",
            "smlatt {a2}, {t}, {w02}, {a2}\n",
            "smlabb {a1}, {x}, {w13}, {a1}\n",
            "smlatt {a3}, {x}, {w13}, {a3}\n",
        )
    };
}

/// One row of [`window_3x3`]: three taps from `{xp}`, which ends one tap
/// further on.
macro_rules! window_row {
    () => {
        concat!(
            "ldr {x}, [{xp}]\n",
            window_tap!(),
            "ldr {x}, [{xp}, {ts}]\n",
            window_tap!(),
            "add {xp}, {ts}\n",
            "ldr {x}, [{xp}, {ts}]\n",
            window_tap!(),
        )
    };
}

/// `acc[j] + x[t][j] * w[t][j]` over a whole 3x3 depthwise window whose
/// first tap is `input[0..4]`, taps `steps = [row, tap]` bytes apart: the
/// nine taps in one block (no input offset: the caller starts `acc` with
/// it).
#[inline(always)]
pub(crate) fn window_3x3(
    acc: [i32; 4],
    input: &[i8],
    [row, tap]: [usize; 2],
    w: &[[[u32; 2]; 3]; 3],
) -> [i32; 4] {
    // The last tap: the one bounds check.
    let input = &input[..2 * row + 2 * tap + 4];
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    // SAFETY: reads the nine taps' four bytes, all inside `input`, and the
    // nine pairs of words of `w`.
    unsafe {
        asm!(
            window_row!(),
            "add {xp}, {rd}",
            window_row!(),
            "add {xp}, {rd}",
            window_row!(),
            xp = inout(reg) input.as_ptr() => _,
            wp = inout(reg) w.as_ptr() => _,
            ts = in(reg) tap,
            rd = in(reg) row - tap,
            x = out(reg) _,
            t = out(reg) _,
            w02 = out(reg) _,
            w13 = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(readonly, nostack, preserves_flags),
        );
    }
    [a0, a1, a2, a3]
}
