//! The 2x2 blocks of the general and 1x1 convolutions with narrow
//! requantization in one assembly loop: two packed pixels times two output
//! channels a pass, the dot products, the requantization, the clamp and the
//! four stores, so that nothing leaves the registers between a block's MACs
//! and its outputs. Wide layers take the Rust loop in the parent module.

use core::arch::asm;

use super::super::Clamp;
use super::super::ConvArgs;

/// What the loop reads from memory: one per layer call, the same for every
/// pixel pair (the byte offsets are the assembly's).
#[repr(C)]
pub(super) struct Sweep {
    /// The packed columns (`super::pack_pair_i8`).
    col: *const i16,
    /// The end of their whole groups of four values.
    col_end: *const i16,
    /// Filter row bytes (at least 4).
    depth: usize,
    /// `2 zp + 1`: a channel's rounding term is `(zp2 << right) >> 1`.
    zp2: i32,
    min: i32,
    max: i32,
    multiplier: *const i32,
    shift: *const i32,
    bias: *const i32,
    /// Bytes from the first pixel's output row to the second's (0 for a
    /// lone last pixel).
    pixel_b: usize,
    /// `4 o` of the first channel after the last pair.
    k_end: usize,
    /// Whether the clamp is the whole int8 range (one SSAT).
    full: bool,
}

impl Sweep {
    /// The loop's invariants for a layer whose accumulators are narrow, over
    /// filters of `depth >= 4` values, or `None` when the layer is not.
    pub(super) fn new<const P: bool>(a: &ConvArgs<'_, P>, depth: usize) -> Option<Sweep> {
        if !a.narrow || depth < 4 {
            return None;
        }
        Some(Sweep {
            col: core::ptr::null(),
            col_end: core::ptr::null(),
            depth,
            zp2: 2 * a.output_zero_point + 1,
            min: a.clamp.min as i32,
            max: a.clamp.max as i32,
            multiplier: a.multiplier.as_ptr(),
            shift: a.shift.as_ptr(),
            bias: a.bias.as_ptr(),
            pixel_b: 0,
            k_end: 0,
            full: a.clamp == Clamp::NONE,
        })
    }

    /// Output channels `lo..lo + 2 pairs` of the pixels whose output rows
    /// start at `ra` and `rb` (equal for a lone last pixel), from their
    /// packed columns.
    ///
    /// # Safety
    /// `pairs >= 1`; `packed` holds the two pixels' `depth` values each;
    /// `filter` holds rows `..lo + 2 pairs` of `depth` bytes, `bias` (and
    /// with `P` the tables) `lo + 2 pairs` values, the tables at least one;
    /// outputs `ra + lo .. ra + lo + 2 pairs` and the same from `rb` are
    /// writable in `output`.
    #[inline(always)]
    pub(super) unsafe fn run<const P: bool>(
        &mut self,
        packed: &[i16],
        filter: *const i8,
        output: *mut i8,
        [ra, rb]: [usize; 2],
        lo: usize,
        pairs: usize,
    ) {
        self.col = packed.as_ptr();
        self.col_end = self.col.wrapping_add(8 * (self.depth / 4));
        self.pixel_b = rb.wrapping_sub(ra);
        self.k_end = 4 * (lo + 2 * pairs);
        // SAFETY: the caller's.
        unsafe {
            let (w, out) = (filter.add(lo * self.depth), output.add(ra + lo));
            match (P, self.full) {
                (true, true) => pairs_2x2::<true, true>(self, w, out, 4 * lo),
                (true, false) => pairs_2x2::<true, false>(self, w, out, 4 * lo),
                (false, true) => pairs_2x2::<false, true>(self, w, out, 4 * lo),
                (false, false) => pairs_2x2::<false, false>(self, w, out, 4 * lo),
            }
        }
    }
}

/// Field offsets in [`Sweep`], for the assembly.
macro_rules! field {
    (col) => {
        "#0"
    };
    (col_end) => {
        "#4"
    };
    (depth) => {
        "#8"
    };
    (zp2) => {
        "#12"
    };
    (min) => {
        "#16"
    };
    (max) => {
        "#20"
    };
    (multiplier) => {
        "#24"
    };
    (shift) => {
        "#28"
    };
    (bias) => {
        "#32"
    };
    (pixel_b) => {
        "#36"
    };
    (k_end) => {
        "#40"
    };
}

const _: () = {
    assert!(core::mem::offset_of!(Sweep, col_end) == 4);
    assert!(core::mem::offset_of!(Sweep, depth) == 8);
    assert!(core::mem::offset_of!(Sweep, zp2) == 12);
    assert!(core::mem::offset_of!(Sweep, min) == 16);
    assert!(core::mem::offset_of!(Sweep, max) == 20);
    assert!(core::mem::offset_of!(Sweep, multiplier) == 24);
    assert!(core::mem::offset_of!(Sweep, shift) == 28);
    assert!(core::mem::offset_of!(Sweep, bias) == 32);
    assert!(core::mem::offset_of!(Sweep, pixel_b) == 36);
    assert!(core::mem::offset_of!(Sweep, k_end) == 40);
};

/// One group of four filter values of both channels, both pixels: the
/// weights widened in `r8`, `r9` (row a) and `{e}`, `r10` (row b, at `lr`
/// bytes on), the pixels' words through `r4`, `r5`.
macro_rules! group {
    () => {
        concat!(
            "ldr r10, [r12, lr]\n",
            "ldr r8, [r12], #4\n",
            "sxtb16 {e}, r10, ror #8\n",
            "sxtb16 r10, r10\n",
            "sxtb16 r9, r8, ror #8\n",
            "sxtb16 r8, r8\n",
            "ldrd r4, r5, [r11], #8\n",
            "smlad r0, r4, r8, r0\n",
            "smlad r1, r4, r10, r1\n",
            "smlad r2, r5, r8, r2\n",
            "smlad r3, r5, r10, r3\n",
            "ldrd r4, r5, [r11], #8\n",
            "smlad r0, r4, r9, r0\n",
            "smlad r1, r4, {e}, r1\n",
            "smlad r2, r5, r9, r2\n",
            "smlad r3, r5, {e}, r3\n",
        )
    };
}

/// Requantizes `$v` with the multiplier in `r4`, the rounding term in `r5`
/// and the right shift in `r11` (`lr` is free), then clamps it.
#[rustfmt::skip]
macro_rules! requantize {
    ($v:literal, $clamp:expr) => {
        concat!(
            "lsl ", $v, ", ", $v, ", #1\n",
            "smmulr ", $v, ", ", $v, ", r4\n",
            "add lr, r5, ", $v, "\n",
            "add ", $v, ", lr, ", $v, ", asr #31\n",
            "asr ", $v, ", ", $v, ", r11\n",
            $clamp,
        )
    };
}

/// The clamps: one SSAT for the whole range, else both bounds.
#[rustfmt::skip]
macro_rules! clamp {
    (full, $v:literal) => {
        concat!("ssat ", $v, ", #8, ", $v, "\n")
    };
    (bounds, $v:literal) => {
        concat!(
            "ldr lr, [r8, ", field!(min), "]\n",
            "cmp ", $v, ", lr\n",
            "it lt\n",
            "movlt ", $v, ", lr\n",
            "ldr lr, [r8, ", field!(max), "]\n",
            "cmp ", $v, ", lr\n",
            "it gt\n",
            "movgt ", $v, ", lr\n",
        )
    };
}

/// A channel's multiplier into `r4`, right shift into `r11` and rounding
/// term into `r5`: channel `r9 / 4`'s (`$at` = `, r9`), or the tensor's
/// (`$at` empty).
#[rustfmt::skip]
macro_rules! scale {
    ($at:literal) => {
        concat!(
            "ldr r4, [r8, ", field!(multiplier), "]\n",
            "ldr r4, [r4", $at, "]\n",
            "ldr r11, [r8, ", field!(shift), "]\n",
            "ldr r11, [r11", $at, "]\n",
            "rsb r11, r11, #0\n",
            "ldr r5, [r8, ", field!(zp2), "]\n",
            "lsl r5, r5, r11\n",
            "asr r5, r5, #1\n",
        )
    };
}

/// The two outputs of one channel (`$a` for the first pixel, `$b` for the
/// second) stored, the output pointer and `4 o` moved on by one channel.
#[rustfmt::skip]
macro_rules! store {
    ($a:literal, $b:literal) => {
        concat!(
            "ldr lr, [r8, ", field!(pixel_b), "]\n",
            "strb ", $b, ", [r10, lr]\n",
            "strb ", $a, ", [r10], #1\n",
            "add r9, r9, #4\n",
        )
    };
}

/// The loop: pairs of channels from `4 o = k` (filter row `w`, outputs `out`)
/// up to `s.k_end`.
macro_rules! pairs_asm {
    ($s:expr, $w:expr, $out:expr, $k:expr, $scale0:expr, $scale1:expr, $clamp:ident) => {
        asm!(
            concat!("ldr r4, [r8, ", field!(col_end), "]"),
            "str r4, [sp, #-4]!",
            "1:",
            // The bias of both channels starts both pixels' sums.
            concat!("ldr r4, [r8, ", field!(bias), "]"),
            "add r4, r9",
            "ldrd r0, r1, [r4]",
            "mov r2, r0",
            "mov r3, r1",
            concat!("ldr r11, [r8, ", field!(col), "]"),
            concat!("ldr lr, [r8, ", field!(depth), "]"),
            "push {{r8, r9, r10}}",
            // Two groups a pass; an odd count enters at the second.
            "tst lr, #4",
            "bne 3f",
            "2:",
            group!(),
            "3:",
            group!(),
            "ldr r4, [sp, #12]",
            "cmp r11, r4",
            "bne 2b",
            // The last depth % 4 values: each pixel's, in natural order.
            "ands r4, lr, #3",
            "beq 5f",
            "add r5, r11, r4, lsl #1",
            "4:",
            "ldrsh r8, [r11], #2",
            "ldrsh r9, [r5], #2",
            "ldrsb r10, [r12, lr]",
            "ldrsb {e}, [r12], #1",
            "mla r0, r8, {e}, r0",
            "mla r1, r8, r10, r1",
            "mla r2, r9, {e}, r2",
            "mla r3, r9, r10, r3",
            "subs r4, #1",
            "bne 4b",
            "5:",
            // The next pair's rows.
            "add r12, lr",
            "pop {{r8, r9, r10}}",
            $scale0,
            requantize!("r0", clamp!($clamp, "r0")),
            requantize!("r2", clamp!($clamp, "r2")),
            store!("r0", "r2"),
            $scale1,
            requantize!("r1", clamp!($clamp, "r1")),
            requantize!("r3", clamp!($clamp, "r3")),
            store!("r1", "r3"),
            concat!("ldr r4, [r8, ", field!(k_end), "]"),
            "cmp r9, r4",
            "blo 1b",
            "add sp, #4",
            in("r8") $s,
            inout("r9") $k => _,
            inout("r10") $out => _,
            inout("r12") $w => _,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
            out("r4") _, out("r5") _, out("r11") _, out("lr") _,
            e = out(reg) _,
        )
    };
}

/// [`Sweep::run`]'s loop, per table granularity and clamp.
///
/// # Safety
/// As [`Sweep::run`]: `w` and `out` at the first pair's filter row and
/// output, `k = 4 lo < s.k_end`.
#[inline(never)]
unsafe fn pairs_2x2<const P: bool, const FULL: bool>(
    s: &Sweep,
    w: *const i8,
    out: *mut i8,
    k: usize,
) {
    let s = s as *const Sweep;
    // SAFETY: the caller's; the word pushed and the three saved per pass
    // are popped.
    unsafe {
        match (P, FULL) {
            (true, true) => pairs_asm!(s, w, out, k, scale!(", r9"), scale!(", r9"), full),
            (true, false) => pairs_asm!(s, w, out, k, scale!(", r9"), scale!(", r9"), bounds),
            // One tensor's scale: worked out once a pass.
            (false, true) => pairs_asm!(s, w, out, k, scale!(""), "", full),
            (false, false) => pairs_asm!(s, w, out, k, scale!(""), "", bounds),
        }
    }
}
