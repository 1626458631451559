//! Cortex-M: cortex-m-rt's start-up, output and exit over semihosting, the fault handlers,
//! and SysTick as the counter of [`crate::icount`].

use core::arch::asm;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};

pub use cortex_m_rt::entry;

use crate::{icount, println};

static STDOUT: Mutex<Cell<Option<hio::HostStream>>> = Mutex::new(Cell::new(None));

/// Writes raw bytes to the host's stdout (QEMU's stdout) over semihosting.
pub fn write_bytes(bytes: &[u8]) {
    interrupt::free(|cs| {
        let cell = STDOUT.borrow(cs);
        let mut stream = match cell.get() {
            Some(s) => s,
            None => match hio::hstdout() {
                Ok(s) => {
                    cell.set(Some(s));
                    s
                }
                Err(()) => return,
            },
        };
        let _ = stream.write_all(bytes);
    });
}

/// Ends QEMU with exit status 0.
pub fn exit_success() -> ! {
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Ends QEMU with exit status 1.
pub fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

pub(crate) fn interrupts_off() {
    cortex_m::interrupt::disable();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("hardfault: {:?}", frame);
    exit_failure()
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    println!("unexpected exception or interrupt {}", irqn);
    exit_failure()
}

// ---------------------------------------------------------------------------------------------
// The counter: SysTick on the processor clock, its 24-bit wraps counted by its exception.

/// SysTick reload value: the full 24 bits.
pub const RELOAD: u32 = 0x00FF_FFFF;

/// Period of the SysTick clock in picoseconds (25 MHz on mps2-an386).
#[cfg(all(machine = "m4", not(any(mps2_tz, mps3))))]
pub const PERIOD_PS: u64 = 40_000;
/// Period of the SysTick clock in picoseconds (32 MHz on mps3-an547).
#[cfg(all(machine = "m4", mps3))]
pub const PERIOD_PS: u64 = 31_250;
/// Period of the SysTick clock in picoseconds (20 MHz on mps2-an505).
#[cfg(all(machine = "m4", mps2_tz))]
pub const PERIOD_PS: u64 = 50_000;
/// Period of the SysTick clock in picoseconds (16 MHz on the nRF51 of QEMU's microbit).
#[cfg(machine = "m0")]
pub const PERIOD_PS: u64 = 62_500;

/// Number of SysTick wraps, counted by the exception handler.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS (and `wrap_instructions`, with the exception masked);
    // thumbv6m has no atomic read-modify-write.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Starts SysTick: processor clock, full 24-bit reload, wrap interrupt. Takes the core
/// peripherals: call it once.
pub(crate) fn start_counter() {
    let mut syst = cortex_m::Peripherals::take().unwrap().SYST;
    syst.disable_counter();
    syst.disable_interrupt();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    WRAPS.store(0, Ordering::Relaxed);
    syst.enable_interrupt();
    syst.enable_counter();
}

/// SysTick ticks since [`start_counter`], wraps included.
#[inline(always)]
pub(crate) fn counter() -> u64 {
    use core::sync::atomic::compiler_fence;
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

/// Counter wraps between two readings (each one runs the SysTick exception).
pub(crate) fn wraps_between(start: u64, end: u64) -> u64 {
    (end >> 24).wrapping_sub(start >> 24)
}

/// Instructions of one SysTick wrap exception (entry, handler, return), measured: pend the
/// exception by hand inside a measurement, compare with the same register write of a value
/// that pends nothing (ICSR's bits are read-only or write-one-to-act), then take back the
/// extra wrap.
pub(crate) fn wrap_instructions() -> u64 {
    // SAFETY: only computes the address of ICSR.
    let icsr = unsafe { core::ptr::addr_of!((*SCB::PTR).icsr) } as *mut u32;
    let pendstset = core::hint::black_box(1u32 << 26);
    let nothing = core::hint::black_box(0u32);
    // SAFETY: ICSR is a valid, aligned register; setting PENDSTSET only runs our handler.
    let pend = icount::min_of_3(|| {
        let t =
            icount::measure_raw(move || unsafe { core::ptr::write_volatile(icsr, pendstset) }).1;
        cortex_m::interrupt::free(|_| {
            WRAPS.store(
                WRAPS.load(Ordering::Relaxed).wrapping_sub(1),
                Ordering::Relaxed,
            )
        });
        t.wrapping_sub(u64::from(RELOAD) + 1)
    });
    // SAFETY: as above; writing 0 has no effect.
    let no_pend = icount::min_of_3(|| {
        icount::measure_raw(move || unsafe { core::ptr::write_volatile(icsr, nothing) }).1
    });
    icount::ticks_to_instructions(pend.saturating_sub(no_pend))
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
