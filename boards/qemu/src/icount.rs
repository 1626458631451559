//! Counting executed instructions under QEMU's `-icount shift=N`.
//!
//! QEMU does not model cycles. With `-icount shift=N` every executed instruction advances
//! QEMU's virtual clock by exactly 2^N ns, and a counter of that clock gives instructions:
//! SysTick (clock source = processor clock) on Arm, `minstret` on RISC-V (QEMU 7.2 reads
//! `minstret` and `mcycle` as the virtual clock in nanoseconds under `-icount`, a period of
//! 1 ns; both are 64 bits wide and never wrap here). So
//!
//! ```text
//! ticks = instructions * 2^N ns / counter period
//! ```
//!
//! The Arm SysTick details follow; on RISC-V (`virt`) the same calibration applies with a
//! period of 1 ns, no wraps, and `spin` as `addi`/`bnez`. There `icount-check` is exact at
//! every shift (checked from `shift=0` to `shift=10`; the overhead of an empty measurement is
//! 9 instructions).
//!
//! SysTick clock (QEMU 7.2, checked empirically by `src/bin/icount-check.rs`):
//! - `mps2-an386`: 25 MHz, a period of 40 ns;
//! - `microbit`: 16 MHz, a period of 62.5 ns: QEMU's Cortex-M model always has a SysTick, and
//!   the nRF51 SoC model clocks it with its 16 MHz HCLK (whether a real nRF51 has SysTick does
//!   not matter here; the processor clock source must be used, as `init` does).
//!
//! With `shift=7` (128 ns per instruction) a tick is 1/3.2 (M4) or 1/2.048 (M0) of an
//! instruction, so a count of ticks rounds to an exact count of instructions on both machines;
//! `cargo xtask bench-mcu` uses `shift=7`. Smaller shifts work with a coarser resolution.
//!
//! The 24-bit counter wraps every 2^24 ticks (5.2 M instructions on the M4 at shift=7, 8.2 M on
//! the M0); the SysTick exception counts the wraps, so measured sections can be of any length.
//! [`init`] measures the instructions of one wrap exception (8 on the M4, 7 on the M0) and the
//! overhead of an empty measurement (20 on both), and [`measure`] subtracts both.
//!
//! Accuracy, from `icount-check` (loops of 3 to 40,000,001 instructions, up to 8 wraps): exact
//! on both machines at `shift=7` and above (on the M4 from `shift=6`); `shift=6` on the M0 and
//! `shift=5` on the M4 are off by up to ±1 instruction per reading, plus ±1 per wrap. The loop
//! is the best case: around an arbitrary closure the compiler may add or drop a register move
//! or two, so read single-digit differences with care. Without `-icount`, SysTick follows the
//! host's clock and [`measure`] returns an estimate scaled by the calibration loop.
//!
//! Figures are instructions, not cycles (a load takes 2 cycles on a real M4, a taken branch
//! 2-4), so report them as "instructions".

use core::sync::atomic::{compiler_fence, AtomicU32, Ordering};

use crate::target;

pub use crate::target::spin;

/// Period of the counter's clock in picoseconds (SysTick's on Arm, 1 ns for `minstret`).
pub const PERIOD_PS: u64 = target::PERIOD_PS;

/// Instructions [`measure`] counts for an empty closure (subtracted from every measurement).
static OVERHEAD_INSTRUCTIONS: AtomicU32 = AtomicU32::new(0);
/// Instructions of one counter wrap (the SysTick exception), subtracted per wrap.
static WRAP_INSTRUCTIONS: AtomicU32 = AtomicU32::new(0);
/// The detected icount shift, or `NO_SHIFT`.
static SHIFT: AtomicU32 = AtomicU32::new(NO_SHIFT);
/// Ticks per instruction as a fraction, measured by `init` (used when no shift was detected).
static CAL_TICKS: AtomicU32 = AtomicU32::new(0);
static CAL_INSTRUCTIONS: AtomicU32 = AtomicU32::new(0);

const NO_SHIFT: u32 = u32::MAX;

/// Iterations of [`spin`] that `init` times: 10,000 instructions, short enough not to wrap
/// SysTick up to `shift=14`.
const CAL_ITER: u32 = 5_000;

/// What [`init`] found.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// The `-icount shift=N` QEMU runs with, or `None` when the timer does not count a power
    /// of two nanoseconds per instruction (QEMU without `-icount`, or real hardware).
    pub shift: Option<u32>,
    /// Ticks counted by an empty measurement.
    pub overhead_ticks: u64,
    /// Instructions counted by an empty measurement; [`measure`] subtracts them.
    pub overhead_instructions: u32,
    /// Ticks counted for [`spin`]`(5_000)` (10,000 instructions), overhead subtracted.
    pub calibration_ticks: u64,
    /// Instructions of one counter wrap exception; [`measure`] subtracts them per wrap.
    pub wrap_instructions: u32,
}

/// Starts the counter, then measures the measurement overhead, detects the icount shift and
/// measures the cost of a wrap. Call it once (on Arm it takes the core peripherals), early in
/// `main`, with interrupts enabled.
pub fn init() -> Calibration {
    target::start_counter();

    // Ticks per instruction, from a loop of a known number of instructions.
    let overhead_ticks = min_of_3(|| measure_raw(|| ()).1);
    let n = core::hint::black_box(CAL_ITER);
    let cal_ticks = min_of_3(|| measure_raw(|| spin(n)).1).saturating_sub(overhead_ticks);
    let cal_instructions = 2 * CAL_ITER;
    CAL_TICKS.store(cal_ticks as u32, Ordering::Relaxed);
    CAL_INSTRUCTIONS.store(cal_instructions, Ordering::Relaxed);

    // 2^shift ns per instruction = ticks * period / instructions.
    let ns_per_instruction_x1000 = cal_ticks * PERIOD_PS / u64::from(cal_instructions);
    let mut shift = None;
    for k in 0..=14u32 {
        let exact = 1000u64 << k;
        // Within 1 %: the loop is exact up to the instruction that loads its count.
        if ns_per_instruction_x1000.abs_diff(exact) * 100 <= exact {
            shift = Some(k);
            break;
        }
    }
    SHIFT.store(shift.unwrap_or(NO_SHIFT), Ordering::Relaxed);
    let overhead_instructions = ticks_to_instructions(overhead_ticks) as u32;
    OVERHEAD_INSTRUCTIONS.store(overhead_instructions, Ordering::Relaxed);

    let wrap_instructions = if shift.is_some() {
        target::wrap_instructions() as u32
    } else {
        0
    };
    WRAP_INSTRUCTIONS.store(wrap_instructions, Ordering::Relaxed);

    Calibration {
        shift,
        overhead_ticks,
        overhead_instructions,
        calibration_ticks: cal_ticks,
        wrap_instructions,
    }
}

/// The least of three runs of `f`.
pub(crate) fn min_of_3(mut f: impl FnMut() -> u64) -> u64 {
    let a = f();
    let b = f();
    let c = f();
    a.min(b).min(c)
}

/// Counter ticks since [`init`], wraps included.
#[inline(never)]
pub fn ticks() -> u64 {
    target::counter()
}

/// Runs `f` and returns its result, the counter ticks it took (the measurement's own ticks
/// included) and the number of counter wraps in between.
///
/// Not inlined, so that the code around `f` and with it the overhead is the same at every
/// call site.
#[inline(never)]
pub fn measure_raw<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let start = ticks();
    compiler_fence(Ordering::SeqCst);
    let r = f();
    compiler_fence(Ordering::SeqCst);
    let end = ticks();
    (
        r,
        end.wrapping_sub(start),
        target::wraps_between(start, end),
    )
}

/// Runs `f` and returns its result with the number of instructions it executed (under QEMU
/// `-icount`), less the overhead of an empty measurement and the counter wraps taken
/// meanwhile. Call [`init`] first.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let (r, t, wraps) = measure_raw(f);
    let overhead = u64::from(OVERHEAD_INSTRUCTIONS.load(Ordering::Relaxed))
        + wraps * u64::from(WRAP_INSTRUCTIONS.load(Ordering::Relaxed));
    (r, ticks_to_instructions(t).saturating_sub(overhead))
}

/// The icount shift [`init`] detected.
pub fn shift() -> Option<u32> {
    match SHIFT.load(Ordering::Relaxed) {
        NO_SHIFT => None,
        n => Some(n),
    }
}

/// Converts counter ticks to instructions: exactly (rounded) when an icount shift was
/// detected, else by the ratio measured in [`init`] (an estimate).
pub fn ticks_to_instructions(ticks: u64) -> u64 {
    match shift() {
        // instructions = ticks * period / 2^shift ns, rounded to nearest.
        Some(n) => {
            let num = ticks.saturating_mul(PERIOD_PS);
            let den = 1000u64 << n;
            (num + den / 2) / den
        }
        None => {
            let t = u64::from(CAL_TICKS.load(Ordering::Relaxed)).max(1);
            let i = u64::from(CAL_INSTRUCTIONS.load(Ordering::Relaxed));
            (ticks.saturating_mul(i) + t / 2) / t
        }
    }
}
