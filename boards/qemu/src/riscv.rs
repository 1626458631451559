//! RISC-V on QEMU `virt` (`-bios none`, machine mode): riscv-rt's start-up, output on the
//! ns16550a UART (QEMU's stdout with `-nographic`), exit through the sifive_test device, a
//! trap handler that reports and fails, and `minstret` as the counter of [`crate::icount`].

use core::arch::asm;
use core::ptr::write_volatile;

pub use riscv_rt::entry;

use crate::{println, uart::Uart};

/// The sifive_test device: a write of 0x5555 ends QEMU with status 0, one of
/// `(code << 16) | 0x3333` with status `code`.
const SIFIVE_TEST: usize = 0x0010_0000;

/// Writes raw bytes to QEMU's stdout through the UART.
pub fn write_bytes(bytes: &[u8]) {
    use embedded_io::Write;
    let _ = Uart::new().write_all(bytes);
}

fn finish(word: u32) -> ! {
    // SAFETY: the sifive_test device's one register on QEMU virt.
    unsafe { write_volatile(SIFIVE_TEST as *mut u32, word) };
    loop {
        riscv::asm::wfi();
    }
}

/// Ends QEMU with exit status 0.
pub fn exit_success() -> ! {
    finish(0x5555)
}

/// Ends QEMU with exit status 1.
pub fn exit_failure() -> ! {
    finish((1 << 16) | 0x3333)
}

pub(crate) fn interrupts_off() {
    riscv::interrupt::disable();
}

#[export_name = "ExceptionHandler"]
fn exception_handler(frame: &riscv_rt::TrapFrame) -> ! {
    println!(
        "exception: mcause {:#x} mepc {:#x} mtval {:#x} ra {:#x}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read(),
        riscv::register::mtval::read(),
        frame.ra
    );
    exit_failure()
}

#[export_name = "DefaultHandler"]
fn default_handler() -> ! {
    println!(
        "unexpected interrupt: mcause {:#x}",
        riscv::register::mcause::read().bits()
    );
    exit_failure()
}

// ---------------------------------------------------------------------------------------------
// The counter: `minstret`, the virtual clock in nanoseconds under QEMU's `-icount`.

/// `minstret` counts nanoseconds of QEMU's virtual clock under `-icount` (QEMU 7.2).
pub const PERIOD_PS: u64 = 1_000;

/// `minstret` runs from reset: nothing to start.
pub(crate) fn start_counter() {}

/// `minstret`, 64 bits (read high, low, high until the high half holds still).
#[inline(always)]
pub(crate) fn counter() -> u64 {
    loop {
        let hi = riscv::register::minstreth::read();
        let lo = riscv::register::minstret::read();
        if riscv::register::minstreth::read() == hi {
            return (u64::from(hi as u32) << 32) | u64::from(lo as u32);
        }
    }
}

/// `minstret` does not wrap in any run here.
pub(crate) fn wraps_between(_start: u64, _end: u64) -> u64 {
    0
}

/// No wraps, no wrap cost.
pub(crate) fn wrap_instructions() -> u64 {
    0
}

/// Executes exactly `2 * iterations` instructions (an `addi` and a `bnez` per iteration),
/// plus whatever the compiler needs to put `iterations` in a0 (usually one instruction).
/// `iterations` must be at least 1 (0 means 2^32).
#[inline(always)]
pub fn spin(iterations: u32) {
    // SAFETY: only touches a0.
    unsafe {
        asm!(
            "2:",
            "addi a0, a0, -1",
            "bnez a0, 2b",
            inout("a0") iterations => _,
            options(nomem, nostack),
        );
    }
}
