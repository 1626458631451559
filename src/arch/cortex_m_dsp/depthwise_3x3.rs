//! Depthwise 3x3 convolution (one filter per channel, no dilation, column
//! stride 1 or 2) on the DSP.
//!
//! A block of four channels is widened, a band of input rows and a tile of
//! columns at a time, into one int16 plane per channel: the input offset
//! added, padding as zeros (TensorFlow Lite pads with the zero point, which
//! the offset takes to zero). Each input value is widened once per band
//! instead of once per window. Each channel then sweeps its plane with its
//! nine weights in six registers, two output pixels per pass: neighbouring
//! taps are neighbouring halfwords, so one SMLAD does two of them, and the
//! two pixels share their input words: 22 instructions for 18 MACs. The
//! requantization follows per row, its parameters in registers.

use core::arch::asm;
use core::mem::MaybeUninit;

use super::super::{Clamp, Scale};
use super::{ld32, smmulr, sxtab16, sxtab16_ror8, sxtb16, sxtb16_ror8};
use crate::arch::portable::{ConvArgs, ConvGeom};
use crate::arch::NarrowScale;

/// Positions (int16) in a plane row.
const ROW: usize = 16;
/// Input rows a plane holds: a band of four output rows at row stride 1,
/// two at stride 2, one above.
const ROWS: usize = 6;
/// Accumulators of a band: up to four rows of up to `ROW` (pairs).
const ACC: usize = 4 * ROW;
/// Bytes from one plane to the next, and from one row to the next (the
/// assembly's offsets).
const PLANE_BYTES: usize = ROWS * ROW * 2;

/// The four planes of a block, rows of [`ROW`] positions; word aligned, so
/// that an even position starts an aligned pair.
#[repr(C, align(4))]
struct Planes([[[i16; ROW]; ROWS]; 4]);

/// Whether [`depthwise_3x3`] takes a one-per-channel depthwise geometry.
pub(crate) fn takes(g: &ConvGeom) -> bool {
    g.kernel == [3, 3] && g.dilation == [1, 1] && matches!(g.stride[1], 1 | 2) && g.stride[0] >= 1
}

/// Channels `0..blocks` (a multiple of four) of a depthwise convolution
/// that [`takes`] allows, four at a time.
#[inline(never)]
pub(crate) fn depthwise_3x3<const P: bool>(
    a: &ConvArgs<'_, P>,
    input: &[i8],
    output: &mut [i8],
    blocks: usize,
) {
    // Zeroed in place (a value built and then moved would be copied).
    let mut planes = MaybeUninit::<Planes>::zeroed();
    // SAFETY: all zeros is a valid `Planes` (integers only).
    let planes = unsafe { planes.assume_init_mut() };
    let mut acc = [0i32; ACC];
    let mut weights = [[[0u32; 2]; 3]; 4];
    let mut requant = [Requant::Wide(Scale::new(0, 0), 0); 4];
    let mut work = (planes, &mut acc, &mut weights, &mut requant);
    let layer = Layer {
        geom: a.geom,
        input_offset: a.input_offset,
        output_zero_point: a.output_zero_point,
        clamp: a.clamp,
    };
    for o0 in (0..blocks).step_by(4) {
        prepare(a, o0, work.2, work.3);
        if a.geom.stride[1] == 1 {
            block::<1>(&layer, input, output, o0, &mut work)
        } else {
            block::<2>(&layer, input, output, o0, &mut work)
        }
    }
}

/// What a block's loops read of the layer, the same per channel or per
/// tensor (the requantization is worked out per block beforehand).
struct Layer {
    geom: ConvGeom,
    input_offset: i32,
    output_zero_point: i32,
    clamp: Clamp,
}

/// A channel's weights, rows `[w0 | w1 << 16, w1 | w2 << 16]` as int16.
type Weights = [[u32; 2]; 3];

/// A block's buffers, reused from block to block: the planes, a row's
/// accumulators, and each channel's weights and requantization.
type Work<'w> = (
    &'w mut Planes,
    &'w mut [i32; ACC],
    &'w mut [Weights; 4],
    &'w mut [Requant; 4],
);

/// How a channel's accumulators become int8.
#[derive(Clone, Copy)]
enum Requant {
    /// [`NarrowScale`] (the bias doubled, added before the high multiply),
    /// and whether the clamp is the whole int8 range (one SSAT then).
    Narrow(NarrowScale, i32, bool),
    /// The general path.
    Wide(Scale, i32),
}

/// Channels `o0..o0 + 4`'s weights as [`Weights`] and their
/// requantization (narrow when the accumulators' bound allows it).
fn prepare<const P: bool>(
    a: &ConvArgs<'_, P>,
    o0: usize,
    weights: &mut [Weights; 4],
    requant: &mut [Requant; 4],
) {
    let c = a.geom.input.c;
    let full = a.clamp == Clamp::NONE;
    // The nine taps of the four channels, a word each (HWO filters), as
    // pairs [channels 0 and 2, channels 1 and 3].
    let f = &a.filter[o0..][..8 * c + 4];
    let taps: [[u32; 2]; 9] = core::array::from_fn(|t| {
        let v = &f[t * c..][..4];
        // SAFETY: four bytes of the slice.
        let v = unsafe { ld32(v.as_ptr()) };
        [sxtb16(v), sxtb16_ror8(v)]
    });
    for (j, w) in weights.iter_mut().enumerate() {
        // Channel j's taps from its pair's bottom (j < 2) or top halves.
        let (k, top) = (j % 2, j >= 2);
        let h = |t: usize| {
            let v = taps[t][k];
            if top {
                v >> 16
            } else {
                v & 0xffff
            }
        };
        for (ky, row) in w.iter_mut().enumerate() {
            let (w0, w1, w2) = (h(3 * ky), h(3 * ky + 1), h(3 * ky + 2));
            *row = [w0 | w1 << 16, w1 | w2 << 16];
        }
        let o = o0 + j;
        let i = if P { o } else { 0 };
        let bias = a.bias[o];
        // The layer's bound (`a.narrow`), or this channel's: |x + offset| <=
        // 255 for every int8 x and offset -zp.
        let narrow = a.narrow || {
            let size: u32 = (0..9)
                .map(|t| a.filter[t * c + o].unsigned_abs() as u32)
                .sum();
            NarrowScale::fits(bias.unsigned_abs().saturating_add(255 * size), a.shift[i])
        };
        requant[j] = if narrow {
            let s = NarrowScale::new(a.multiplier[i], a.shift[i], a.output_zero_point);
            // |bias| < 2^30 (it fits), so doubling it cannot overflow.
            Requant::Narrow(s, bias << 1, full)
        } else {
            Requant::Wide(a.requant_of(o), bias)
        };
    }
}

#[inline(always)]
fn block<const SW: usize>(
    a: &Layer,
    input: &[i8],
    output: &mut [i8],
    o0: usize,
    (planes, acc, weights, requant): &mut Work<'_>,
) {
    let c = a.geom.input.c;
    let g = &a.geom;
    let sh = g.stride[0];
    let band = (ROWS - 3) / sh + 1;
    // Output columns a tile takes: its last pixel's taps, as pairs, end
    // inside the row.
    // At stride 2 an odd tile's last pass reads two positions past its
    // last pixel's: six columns keep it inside the row.
    let tile = if SW == 1 { ROW - 3 } else { 6 };
    let off = a.input_offset;
    let off2 = (off as u32 & 0xffff) | ((off as u32) << 16);
    let (oh, ow) = (g.output.h, g.output.w);
    let mut oy0 = 0;
    while oy0 < oh {
        let rows_out = band.min(oh - oy0);
        let rows_in = (rows_out - 1) * sh + 3;
        let y_top = (oy0 * sh) as isize - g.pad[0] as isize;
        let mut ox0 = 0;
        while ox0 < ow {
            let t = tile.min(ow - ox0);
            let x_left = (ox0 * SW) as isize - g.pad[1] as isize;
            widen(
                planes,
                rows_in,
                (t - 1) * SW + 4,
                input,
                g,
                o0,
                [y_top, x_left],
                off2,
                ow <= tile,
            );
            for j in 0..4 {
                let at = (oy0 * ow + ox0) * c + o0 + j;
                // The tile's outputs of this channel, one row of the band
                // after the other: an output's last byte bounds them all.
                let last = at + ((rows_out - 1) * ow + t - 1) * c;
                let out = &mut output[at..=last];
                let row_step = ow * c;
                let plane = planes.0[j][0].as_ptr() as *const u32;
                let pitch = sweep::<SW>(
                    (plane, t, c),
                    &weights[j],
                    (rows_out, sh, row_step),
                    out.len(),
                    acc,
                );
                let (acc, q) = (&acc[..pitch * rows_out], out.as_mut_ptr());
                // Each row's first `t` accumulators to outputs `r row_step +
                // k c`: all inside `out` (asserted by `sweep`).
                let each = |f: &dyn Fn(i32) -> i8| {
                    for (r, row) in acc.chunks_exact(pitch).enumerate() {
                        for (k, &v) in row[..t].iter().enumerate() {
                            // SAFETY: as above.
                            unsafe { *q.add(r * row_step + k * c) = f(v) };
                        }
                    }
                };
                match requant[j] {
                    // SAFETY: as above (`t >= 1`, whole rows).
                    Requant::Narrow(s, bias2, true) => unsafe {
                        requantize_full(acc, [t, pitch], bias2, s, q, [c, row_step])
                    },
                    Requant::Narrow(s, bias2, false) => each(&|v| {
                        let high = smmulr(bias2.wrapping_add(v << 1), s.multiplier);
                        a.clamp.apply((high + (s.round + (high >> 31))) >> s.right)
                    }),
                    Requant::Wide(s, bias) => each(&|v| {
                        let v = s.apply(v.wrapping_add(bias));
                        a.clamp.apply(v.wrapping_add(a.output_zero_point))
                    }),
                }
            }
            ox0 += t;
        }
        oy0 += rows_out;
    }
}

/// Widens rows `y_top..` and columns `x_left..` (`n` of them) of channels
/// `o0..o0 + 4` into `planes`, the offset added (in both halves of `off2`),
/// zeros outside the input.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn widen(
    planes: &mut Planes,
    rows: usize,
    n: usize,
    input: &[i8],
    g: &ConvGeom,
    o0: usize,
    [y_top, x_left]: [isize; 2],
    off2: u32,
    same_edges: bool,
) {
    assert!(rows <= ROWS && n <= ROW);
    let (h, w, c) = (g.input.h, g.input.w, g.input.c);
    // Columns inside the input: positions lo..hi; rows inside: r_lo..r_hi.
    let lo = (-x_left).clamp(0, n as isize) as usize;
    let hi = (w as isize - x_left).clamp(lo as isize, n as isize) as usize;
    let r_lo = (-y_top).clamp(0, rows as isize) as usize;
    let r_hi = (h as isize - y_top).clamp(r_lo as isize, rows as isize) as usize;
    let (r_lo, r_hi) = if lo == hi { (0, 0) } else { (r_lo, r_hi) };
    let base = planes.0.as_mut_ptr() as *mut i16;
    const PLANE: usize = ROWS * ROW;
    // Position `i` of row `r` in the four planes.
    let put = |r: usize, i: usize, [v0, v1, v2, v3]: [i16; 4]| {
        // SAFETY: `r < rows <= ROWS` and `i < n <= ROW`.
        unsafe {
            let at = base.add(r * ROW + i);
            *at = v0;
            *at.add(PLANE) = v1;
            *at.add(2 * PLANE) = v2;
            *at.add(3 * PLANE) = v3;
        }
    };
    for r in (0..r_lo).chain(r_hi..rows) {
        let words = base as *mut u32;
        for i in (0..n).step_by(2) {
            // SAFETY: as in `put` (`i` even, ROW even: a whole word).
            unsafe {
                let at = words.add((r * ROW + i) / 2);
                *at = 0;
                *at.add(PLANE / 2) = 0;
                *at.add(PLANE) = 0;
                *at.add(3 * PLANE / 2) = 0;
            }
        }
    }
    if r_lo == r_hi {
        return;
    }
    // The inside rows' bytes, from position lo's first channel in row r_lo
    // to position hi - 1's fourth in row r_hi - 1: one bounds check.
    let row_bytes = w * c;
    let first =
        (y_top + r_lo as isize) as usize * row_bytes + (x_left + lo as isize) as usize * c + o0;
    let len = (r_hi - r_lo - 1) * row_bytes + (hi - lo - 1) * c + 4;
    let src = &input[first..][..len];
    for r in r_lo..r_hi {
        // Positions outside the input: zero from the start when every tile
        // has the same (one tile a row), else zeroed here.
        if !same_edges {
            for i in 0..lo {
                put(r, i, [0; 4]);
            }
            for i in hi..n {
                put(r, i, [0; 4]);
            }
        }
        // Position i's four channels (lo <= i < hi) of this row.
        let at = |i: usize| (r - r_lo) * row_bytes + (i - lo) * c;
        // A single position: its four channels, offset added.
        let one = |i: usize| {
            // SAFETY: `at(i) + 4 <= len` for `lo <= i < hi`, `r < r_hi`.
            let v = unsafe { ld32(src.as_ptr().add(at(i))) };
            let (a02, a13) = (sxtab16(off2, v), sxtab16_ror8(off2, v));
            let h = |v: u32| v as u16 as i16;
            put(r, i, [h(a02), h(a13), h(a02 >> 16), h(a13 >> 16)]);
        };
        let mut i = lo;
        if i % 2 == 1 {
            one(i);
            i += 1;
        }
        let pairs = (hi - i) / 2;
        if pairs > 0 {
            // SAFETY: positions `i .. i + 2 pairs <= hi` of the input row
            // (each four bytes from `at(i)` inside `src`) and of plane row
            // `r`, `i` even: aligned words (see `Planes`).
            unsafe {
                let dst = base.add(r * ROW + i) as *mut u32;
                widen_pairs(src.as_ptr().add(at(i)), c, dst, pairs, off2);
            }
            i += 2 * pairs;
        }
        if i < hi {
            one(i);
        }
    }
}

/// `pairs` pairs of positions from `src` (positions `c` bytes apart, four
/// channels each) into the four planes' words from `dst` on, offset added.
///
/// # Safety
/// `pairs >= 1`; `src .. src + (2 pairs - 1) c + 4` readable; `dst` a word
/// aligned position of plane 0 with `pairs` words writable there and at the
/// same place in the other three planes.
#[inline(always)]
unsafe fn widen_pairs(src: *const i8, c: usize, dst: *mut u32, pairs: usize, off2: u32) {
    // SAFETY: the caller's.
    unsafe {
        let end = dst.add(pairs);
        asm!(
            "2:",
            "ldr {v0}, [{src}]",
            "ldr {v1}, [{src}, {c}]",
            "add {src}, {src}, {c}, lsl #1",
            "sxtab16 {a02}, {off}, {v0}",
            "sxtab16 {a13}, {off}, {v0}, ror #8",
            "sxtab16 {b02}, {off}, {v1}",
            "sxtab16 {b13}, {off}, {v1}, ror #8",
            // Position 0 in the bottom halves, position 1 in the top.
            "pkhbt {v0}, {a02}, {b02}, lsl #16",
            "pkhtb {v1}, {b02}, {a02}, asr #16",
            "str {v1}, [{dst}, #{p2}]",
            "pkhbt {v1}, {a13}, {b13}, lsl #16",
            "pkhtb {a02}, {b13}, {a13}, asr #16",
            "str {v1}, [{dst}, #{p1}]",
            "str {a02}, [{dst}, #{p3}]",
            "str {v0}, [{dst}], #4",
            "cmp {dst}, {end}",
            "bne 2b",
            src = inout(reg) src => _,
            dst = inout(reg) dst => _,
            end = in(reg) end,
            c = in(reg) c,
            off = in(reg) off2,
            v0 = out(reg) _,
            v1 = out(reg) _,
            a02 = out(reg) _,
            a13 = out(reg) _,
            b02 = out(reg) _,
            b13 = out(reg) _,
            p1 = const PLANE_BYTES,
            p2 = const 2 * PLANE_BYTES,
            p3 = const 3 * PLANE_BYTES,
            options(nostack),
        );
    }
}

/// The accumulators of `rows` rows of `pairs` pairs of output pixels at
/// column stride `SW` (without bias) into `acc`, row after row, from plane
/// words `x` on (a window's three rows [`ROW`] positions apart, band rows
/// `sh` rows apart), the weights in registers throughout.
///
/// # Safety
/// `pairs >= 1`, `rows >= 1`; every window's words are inside the planes
/// (words `x + r sh ROW / 2 + ..` up to `(pairs - 1) SW + SW + 1` on, in
/// rows `r sh .. r sh + 3` for `r < rows`); `acc` holds `2 pairs rows`.
#[inline(never)]
unsafe fn accumulate<const SW: usize>(
    x: *const u32,
    w: &Weights,
    acc: *mut i32,
    [pairs, rows, sh]: [usize; 3],
) {
    macro_rules! row1 {
        ($off:literal, $off4:literal, $w01:ident, $w12:ident, $first:literal) => {
            concat!(
                "ldr {a}, [{x}, #",
                $off,
                "]\n",
                $first,
                "ldr {a}, [{x}, #",
                $off4,
                "]\n",
                "smlabt {acc0}, {a}, {",
                stringify!($w12),
                "}, {acc0}\n",
                "smlad {acc1}, {a}, {",
                stringify!($w12),
                "}, {acc1}\n",
            )
        };
    }
    macro_rules! row2 {
        ($off:literal, $off4:literal, $off8:literal, $w12:ident, $first:literal, $second:literal) => {
            concat!(
                "ldr {a}, [{x}, #",
                $off,
                "]\n",
                $first,
                "ldr {a}, [{x}, #",
                $off4,
                "]\n",
                "smlabt {acc0}, {a}, {",
                stringify!($w12),
                "}, {acc0}\n",
                $second,
                "ldr {a}, [{x}, #",
                $off8,
                "]\n",
                "smlabt {acc1}, {a}, {",
                stringify!($w12),
                "}, {acc1}\n",
            )
        };
    }
    // Two pairs a pass; at an odd count the first pass of each row enters
    // at its second half, `x` one pair back (its offsets are one pair on).
    let odd = pairs % 2;
    let x = x.wrapping_byte_sub(odd * 4 * SW);
    // Kept on the stack during the loop: the step from a row's end to the
    // next row's first window, a row's accumulator bytes, the last end.
    let skip = sh * ROW * 2 - (pairs + odd) * 4 * SW;
    let row_bytes = pairs * 8;
    let (end, last) = (
        acc.wrapping_add(2 * pairs),
        acc.wrapping_add(2 * pairs * rows),
    );
    macro_rules! run {
        ($enter:literal, $next:literal, $p0:expr, $p1:expr) => {
            asm!(
                // The weights from `w` (its address in the first's register).
                "ldrd {w12_0}, {w01_1}, [{w01_0}, #4]",
                "ldrd {w12_1}, {w01_2}, [{w01_0}, #12]",
                "ldr {w12_2}, [{w01_0}, #20]",
                "ldr {w01_0}, [{w01_0}]",
                "str {a}, [sp, #-4]!",
                "str {acc1}, [sp, #-4]!",
                "str {acc0}, [sp, #-4]!",
                $enter,
                "2:",
                $p0,
                "strd {acc0}, {acc1}, [{q}], #8",
                "3:",
                $p1,
                "adds {x}, #{pass}",
                "strd {acc0}, {acc1}, [{q}], #8",
                "cmp {q}, {end}",
                "bne 2b",
                "ldr {a}, [sp]",
                "add {x}, {a}",
                "ldr {a}, [sp, #4]",
                "add {end}, {a}",
                "ldr {a}, [sp, #8]",
                "cmp {q}, {a}",
                $next,
                "add sp, #12",
                x = inout(reg) x => _, q = inout(reg) acc => _, end = inout(reg) end => _,
                acc0 = inout(reg) skip => _, acc1 = inout(reg) row_bytes => _,
                a = inout(reg) last => _,
                w01_0 = inout(reg) w.as_ptr() => _, w12_0 = out(reg) _,
                w01_1 = out(reg) _, w12_1 = out(reg) _,
                w01_2 = out(reg) _, w12_2 = out(reg) _,
                pass = const 8 * SW,
            )
        };
    }
    macro_rules! pair1 {
        ($r0:literal, $r0b:literal, $r1:literal, $r1b:literal, $r2:literal, $r2b:literal) => {
            concat!(
                row1!(
                    $r0,
                    $r0b,
                    w01_0,
                    w12_0,
                    "smuad {acc0}, {a}, {w01_0}\nsmultb {acc1}, {a}, {w01_0}\n"
                ),
                row1!(
                    $r1,
                    $r1b,
                    w01_1,
                    w12_1,
                    "smlad {acc0}, {a}, {w01_1}, {acc0}\nsmlatb {acc1}, {a}, {w01_1}, {acc1}\n"
                ),
                row1!(
                    $r2,
                    $r2b,
                    w01_2,
                    w12_2,
                    "smlad {acc0}, {a}, {w01_2}, {acc0}\nsmlatb {acc1}, {a}, {w01_2}, {acc1}\n"
                ),
            )
        };
    }
    macro_rules! pair2 {
        ($r0:literal, $r0b:literal, $r0c:literal, $r1:literal, $r1b:literal, $r1c:literal,
         $r2:literal, $r2b:literal, $r2c:literal) => {
            concat!(
                row2!(
                    $r0,
                    $r0b,
                    $r0c,
                    w12_0,
                    "smuad {acc0}, {a}, {w01_0}\n",
                    "smuad {acc1}, {a}, {w01_0}\n"
                ),
                row2!(
                    $r1,
                    $r1b,
                    $r1c,
                    w12_1,
                    "smlad {acc0}, {a}, {w01_1}, {acc0}\n",
                    "smlad {acc1}, {a}, {w01_1}, {acc1}\n"
                ),
                row2!(
                    $r2,
                    $r2b,
                    $r2c,
                    w12_2,
                    "smlad {acc0}, {a}, {w01_2}, {acc0}\n",
                    "smlad {acc1}, {a}, {w01_2}, {acc1}\n"
                ),
            )
        };
    }
    // SAFETY: the caller's; the three words pushed are popped. The first
    // half of an odd count's first pass is skipped, so `x` one pair back
    // is never read at.
    unsafe {
        match (SW, odd) {
            (1, 0) => run!(
                "",
                "bne 2b",
                pair1!("0", "4", "32", "36", "64", "68"),
                pair1!("4", "8", "36", "40", "68", "72")
            ),
            (1, _) => run!(
                "b 3f",
                "bne 3b",
                pair1!("0", "4", "32", "36", "64", "68"),
                pair1!("4", "8", "36", "40", "68", "72")
            ),
            (_, 0) => run!(
                "",
                "bne 2b",
                pair2!("0", "4", "8", "32", "36", "40", "64", "68", "72"),
                pair2!("8", "12", "16", "40", "44", "48", "72", "76", "80")
            ),
            _ => run!(
                "b 3f",
                "bne 3b",
                pair2!("0", "4", "8", "32", "36", "40", "64", "68", "72"),
                pair2!("8", "12", "16", "40", "44", "48", "72", "76", "80")
            ),
        }
    }
}

/// One channel's accumulators (without bias) over a tile of `t` output
/// columns at column stride `SW`, outputs `c` bytes apart: `plane` is the
/// plane's first row as words; `rows = (count, row stride, output row
/// step)`; `out_len` the length of the outputs' slice (from the first to
/// the last). A pair of pixels at a time: at an odd `t` the last pair's
/// second is past the tile and not used. Returns the rows' pitch in `acc`.
#[inline(always)]
fn sweep<const SW: usize>(
    (plane, t, c): (*const u32, usize, usize),
    w: &Weights,
    (rows, sh, row_step): (usize, usize, usize),
    out_len: usize,
    acc: &mut [i32; ACC],
) -> usize {
    let pairs = t.div_ceil(2);
    // Every tap a pass reads is inside the plane's rows (see `block`'s
    // tile), every accumulator inside `acc`, and the requantization's
    // every output inside the outputs' slice.
    assert!(t >= 1 && 2 * (pairs - 1) * SW + 2 + 2 * SW <= ROW);
    assert!(rows >= 1 && (rows - 1) * sh + 3 <= ROWS && 2 * pairs * rows <= ACC);
    assert!(out_len > (rows - 1) * row_step + (t - 1) * c);
    // SAFETY: as asserted above.
    unsafe { accumulate::<SW>(plane, w, acc.as_mut_ptr(), [pairs, rows, sh]) };
    2 * pairs
}

/// [`NarrowScale`] over `t` accumulators of each row of `acc` (rows
/// `pitch` apart, `t <= pitch <= t + 1`), each plus half of `bias2` first,
/// saturated to int8 (a clamp of the whole range) into `q`, `c` bytes
/// apart, rows `row_step` bytes apart: two at a time, the second of an odd
/// row's last pair not stored.
///
/// # Safety
/// `t >= 1`, `acc` a whole number of rows of even `pitch`; every output
/// `q + r row_step + k c` (`k < t`) writable.
#[inline(never)]
unsafe fn requantize_full(
    acc: &[i32],
    [t, pitch]: [usize; 2],
    bias2: i32,
    s: NarrowScale,
    q: *mut i8,
    [c, row_step]: [usize; 2],
) {
    macro_rules! one {
        ($v:literal) => {
            concat!(
                "add {",
                $v,
                "}, {bias2}, {",
                $v,
                "}, lsl #1\n",
                "smmulr {",
                $v,
                "}, {",
                $v,
                "}, {m}\n",
                "add {t}, {round}, {",
                $v,
                "}\n",
                "add {",
                $v,
                "}, {t}, {",
                $v,
                "}, asr #31\n",
                "asr {",
                $v,
                "}, {",
                $v,
                "}, {right}\n",
                "ssat {",
                $v,
                "}, #8, {",
                $v,
                "}\n",
            )
        };
    }
    // Kept on the stack during the loop: the step from a row's last pair
    // of outputs to the next row's first, a row's accumulator bytes, the end.
    let skip = row_step.wrapping_sub(pitch * c);
    // SAFETY: the caller's; the three words pushed are popped.
    unsafe {
        let start = acc.as_ptr();
        let (valid_end, last) = (start.add(t), start.add(acc.len()));
        // The second output of a pair: stored, or at an odd `t` not when
        // it is the row's last pair's.
        // One pair of outputs: the second stored, or at an odd `t` not
        // when it is the row's last pair's.
        macro_rules! pair {
            ($($second:literal),*) => {
                concat!(
                    "ldrd {v}, {w}, [{acc}], #8\n",
                    one!("v"),
                    one!("w"),
                    "strb {v}, [{q}]\n",
                    $($second, "\n",)*
                    "add {q}, {q}, {c}, lsl #1\n",
                )
            };
        }
        macro_rules! rows {
            ($body:expr) => {
                asm!(
                    "str {v}, [sp, #-4]!",
                    "str {w}, [sp, #-4]!",
                    "str {t}, [sp, #-4]!",
                    "2:",
                    $body,
                    "cmp {acc}, {vend}",
                    "blo 2b",
                    "ldr {t}, [sp]",
                    "add {q}, {t}",
                    "ldr {t}, [sp, #4]",
                    "add {vend}, {t}",
                    "ldr {t}, [sp, #8]",
                    "cmp {acc}, {t}",
                    "blo 2b",
                    "add sp, #12",
                    acc = inout(reg) start => _,
                    q = inout(reg) q => _,
                    vend = inout(reg) valid_end => _,
                    c = in(reg) c,
                    bias2 = in(reg) bias2,
                    m = in(reg) s.multiplier,
                    round = in(reg) s.round,
                    right = in(reg) s.right,
                    v = inout(reg) last => _,
                    w = inout(reg) pitch * 4 => _,
                    t = inout(reg) skip => _,
                )
            };
        }
        if t % 4 == 0 {
            rows!(concat!(
                pair!("strb {w}, [{q}, {c}]"),
                pair!("strb {w}, [{q}, {c}]")
            ));
        } else if t % 2 == 0 {
            rows!(pair!("strb {w}, [{q}, {c}]"));
        } else {
            rows!(pair!(
                "cmp {acc}, {vend}",
                "it ls",
                "strbls {w}, [{q}, {c}]"
            ));
        }
    }
}
