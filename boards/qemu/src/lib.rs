//! Support code shared by the QEMU firmware binaries: text output, a panic handler and fault
//! handlers that end QEMU with a failure, a static arena, and an instruction counter for
//! `-icount` runs ([`icount`]).
//!
//! Machines (selected by the build target, see `build.rs`):
//! - `m4`: the MPS2/MPS3 Cortex-M boards (`mps2-an386` Cortex-M4F, an385, an500, an505,
//!   mps3-an547), 4 MiB of RAM or more;
//! - `m0`: QEMU `microbit` (nRF51822), Cortex-M0, `thumbv6m-none-eabi`, 16 KiB RAM;
//! - `rv32`: QEMU `virt` with `-bios none`, RV32IMC, `riscv32imc-unknown-none-elf`.
//!
//! What differs per architecture (start-up, output, exit, faults, the counter under the
//! instruction count) is in `arm.rs` (cortex-m-rt, semihosting, SysTick) and `riscv.rs`
//! (riscv-rt, the ns16550a UART, the sifive_test device, `minstret`); the binaries use only
//! what this crate exports, so one source serves both.
//!
//! Every binary must use this crate (at least `use picocnn_qemu_tests as _;`): otherwise it is
//! not linked, and with it go the panic handler ("`#[panic_handler]` function required") and
//! the fault handlers.
#![no_std]

pub mod icount;
pub mod uart;

#[cfg(target_arch = "arm")]
#[path = "arm.rs"]
mod target;
#[cfg(target_arch = "riscv32")]
#[path = "riscv.rs"]
mod target;

use core::fmt::{self, Write};
use core::panic::PanicInfo;

/// The entry point's attribute: `#[entry] fn main() -> ! { ... }` (cortex-m-rt's or riscv-rt's).
pub use target::entry;
pub use target::{exit_failure, exit_success, write_bytes};

/// The machine this firmware was built for: `"m4"` (mps2-an386), `"m0"`
/// (microbit), `"m3"` (mps2-an385), `"m7"` (mps2-an500), `"rv32"` (virt), ...
pub const MACHINE: &str = env!("PICOCNN_QEMU_MACHINE");

/// Bytes of arena the conformance runner hands to the cases: 64 KiB on the M4 and RV32,
/// 11 KiB on the M0 (whose 16 KiB of RAM also hold the stack).
#[cfg(any(machine = "m4", machine = "rv32"))]
pub const ARENA_SIZE: usize = 64 * 1024;
/// Bytes of arena the conformance runner hands to the cases: 64 KiB on the M4 and RV32,
/// 11 KiB on the M0 (whose 16 KiB of RAM also hold the stack).
#[cfg(machine = "m0")]
pub const ARENA_SIZE: usize = 11 * 1024;

pub use picocnn_firmware::StaticArena;

// ---------------------------------------------------------------------------------------------
// Text output

/// Formats into a fixed buffer and writes it with as few output calls as possible (one per
/// 256 bytes), so a line reaches the host in one piece.
struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl LineBuf {
    fn flush(&mut self) {
        if self.len > 0 {
            write_bytes(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Prints formatted text to the host's stdout. Use [`println!`] and [`print!`].
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = line.write_fmt(args);
    line.flush();
}

/// `print!` to QEMU's stdout (semihosting on Arm, the UART on RISC-V).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print_fmt(format_args!($($arg)*)) };
}

/// `println!` to QEMU's stdout (semihosting on Arm, the UART on RISC-V).
#[macro_export]
macro_rules! println {
    () => { $crate::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

// ---------------------------------------------------------------------------------------------
// Faults: report and end QEMU with a failure instead of hanging until the runner's timeout.

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    target::interrupts_off();
    println!("panic: {}", info);
    exit_failure()
}
