//! Counting executed instructions under QEMU's `-icount shift=N`.
//!
//! QEMU does not model cycles. With `-icount shift=N` every executed instruction advances
//! QEMU's virtual clock by exactly 2^N ns, and SysTick (clock source = processor clock)
//! counts that virtual clock. So
//!
//! ```text
//! ticks = instructions * 2^N ns / SysTick period
//! ```
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

use core::arch::asm;
use core::sync::atomic::{compiler_fence, AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

/// SysTick reload value: the full 24 bits.
pub const RELOAD: u32 = 0x00FF_FFFF;

/// Period of the SysTick clock in picoseconds (25 MHz on mps2-an386).
#[cfg(all(machine = "m4", not(any(mps2_tz, mps3))))]
pub const SYSTICK_PERIOD_PS: u64 = 40_000;
/// Period of the SysTick clock in picoseconds (32 MHz on mps3-an547).
#[cfg(all(machine = "m4", mps3))]
pub const SYSTICK_PERIOD_PS: u64 = 31_250;
/// Period of the SysTick clock in picoseconds (20 MHz on mps2-an505).
#[cfg(all(machine = "m4", mps2_tz))]
pub const SYSTICK_PERIOD_PS: u64 = 50_000;
/// Period of the SysTick clock in picoseconds (16 MHz on the nRF51 of QEMU's microbit).
#[cfg(machine = "m0")]
pub const SYSTICK_PERIOD_PS: u64 = 62_500;

/// Number of SysTick wraps, counted by the exception handler.
static WRAPS: AtomicU32 = AtomicU32::new(0);
/// Instructions [`measure`] counts for an empty closure (subtracted from every measurement).
static OVERHEAD_INSTRUCTIONS: AtomicU32 = AtomicU32::new(0);
/// Instructions of one SysTick exception (entry, handler, return), subtracted per wrap.
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

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS (and `init`, with the exception masked); thumbv6m has no
    // atomic read-modify-write.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

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
    /// Instructions of one SysTick wrap exception; [`measure`] subtracts them per wrap.
    pub wrap_instructions: u32,
}

/// Starts SysTick (processor clock, full 24-bit reload, wrap interrupt), then measures the
/// measurement overhead, detects the icount shift and measures the cost of a wrap.
/// Call it once, early in `main`, with interrupts enabled.
pub fn init(syst: &mut SYST) -> Calibration {
    syst.disable_counter();
    syst.disable_interrupt();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    WRAPS.store(0, Ordering::Relaxed);
    syst.enable_interrupt();
    syst.enable_counter();

    // Ticks per instruction, from a loop of a known number of instructions.
    let overhead_ticks = min_of_3(|| measure_raw(|| ()).1);
    let n = core::hint::black_box(CAL_ITER);
    let cal_ticks = min_of_3(|| measure_raw(|| spin(n)).1).saturating_sub(overhead_ticks);
    let cal_instructions = 2 * CAL_ITER;
    CAL_TICKS.store(cal_ticks as u32, Ordering::Relaxed);
    CAL_INSTRUCTIONS.store(cal_instructions, Ordering::Relaxed);

    // 2^shift ns per instruction = ticks * period / instructions.
    let ns_per_instruction_x1000 = cal_ticks * SYSTICK_PERIOD_PS / u64::from(cal_instructions);
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

    // The cost of a wrap: pend the SysTick exception by hand inside a measurement, compare
    // with the same register write of a value that pends nothing (ICSR's bits are read-only
    // or write-one-to-act), then take back the extra wrap.
    // SAFETY: only computes the address of ICSR.
    let icsr = unsafe { core::ptr::addr_of!((*SCB::PTR).icsr) } as *mut u32;
    let pendstset = core::hint::black_box(1u32 << 26);
    let nothing = core::hint::black_box(0u32);
    // SAFETY: ICSR is a valid, aligned register; setting PENDSTSET only runs our handler.
    let pend = min_of_3(|| {
        let t = measure_raw(move || unsafe { core::ptr::write_volatile(icsr, pendstset) }).1;
        cortex_m::interrupt::free(|_| {
            WRAPS.store(
                WRAPS.load(Ordering::Relaxed).wrapping_sub(1),
                Ordering::Relaxed,
            )
        });
        t.wrapping_sub(u64::from(RELOAD) + 1)
    });
    // SAFETY: as above; writing 0 has no effect.
    let no_pend =
        min_of_3(|| measure_raw(move || unsafe { core::ptr::write_volatile(icsr, nothing) }).1);
    let wrap_instructions = if shift.is_some() {
        ticks_to_instructions(pend.saturating_sub(no_pend)) as u32
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

fn min_of_3(mut f: impl FnMut() -> u64) -> u64 {
    let a = f();
    let b = f();
    let c = f();
    a.min(b).min(c)
}

/// SysTick ticks since [`init`], wraps included.
#[inline(never)]
pub fn ticks() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let current = SYST::get_current();
        compiler_fence(Ordering::SeqCst);
        let after = WRAPS.load(Ordering::Relaxed);
        if before == after {
            return (u64::from(before) << 24) + u64::from(RELOAD - current);
        }
    }
}

/// Runs `f` and returns its result, the SysTick ticks it took (the measurement's own ticks
/// included) and the number of SysTick wraps in between.
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
        (end >> 24).wrapping_sub(start >> 24),
    )
}

/// Runs `f` and returns its result with the number of instructions it executed (under QEMU
/// `-icount`), less the overhead of an empty measurement and the SysTick exceptions taken
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

/// Converts SysTick ticks to instructions: exactly (rounded) when an icount shift was
/// detected, else by the ratio measured in [`init`] (an estimate).
pub fn ticks_to_instructions(ticks: u64) -> u64 {
    match shift() {
        // instructions = ticks * period / 2^shift ns, rounded to nearest.
        Some(n) => {
            let num = ticks.saturating_mul(SYSTICK_PERIOD_PS);
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

/// Executes exactly `2 * iterations` instructions (a `subs` and a `bne` per iteration), plus
/// whatever the compiler needs to put `iterations` in r0 (usually one instruction).
/// `iterations` must be at least 1 (0 means 2^32).
#[inline(always)]
pub fn spin(iterations: u32) {
    // SAFETY: only touches r0 and the flags.
    unsafe {
        asm!(
            "2:",
            "subs r0, #1",
            "bne 2b",
            inout("r0") iterations => _,
            options(nomem, nostack),
        );
    }
}
