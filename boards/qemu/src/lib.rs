//! Support code shared by the QEMU firmware binaries: semihosting output, a panic handler
//! and a HardFault handler that end QEMU with a failure, a static arena, and an instruction
//! counter for `-icount` runs ([`icount`]).
//!
//! Machines (selected by the build target, see `build.rs`):
//! - `m4`: QEMU `mps2-an386`, Cortex-M4F, `thumbv7em-none-eabihf`, 4 MiB RAM;
//! - `m0`: QEMU `microbit` (nRF51822), Cortex-M0, `thumbv6m-none-eabi`, 16 KiB RAM.
//!
//! Every binary must use this crate (at least `use picocnn_qemu_tests as _;`): otherwise it is
//! not linked, and with it go the panic handler ("`#[panic_handler]` function required") and
//! the SysTick and fault handlers.
#![no_std]

pub mod icount;
pub mod uart;

use core::cell::Cell;
use core::fmt::{self, Write};
use core::panic::PanicInfo;

use cortex_m::interrupt::{self, Mutex};
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};

/// The machine this firmware was built for: `"m4"` (mps2-an386), `"m0"`
/// (microbit), `"m3"` (mps2-an385) or `"m7"` (mps2-an500).
pub const MACHINE: &str = env!("PICOCNN_QEMU_MACHINE");

/// Bytes of arena the conformance runner hands to the cases: 64 KiB on the M4,
/// 11 KiB on the M0 (whose 16 KiB of RAM also hold the stack).
#[cfg(machine = "m4")]
pub const ARENA_SIZE: usize = 64 * 1024;
/// Bytes of arena the conformance runner hands to the cases: 64 KiB on the M4,
/// 11 KiB on the M0 (whose 16 KiB of RAM also hold the stack).
#[cfg(machine = "m0")]
pub const ARENA_SIZE: usize = 11 * 1024;

pub use picocnn_firmware::StaticArena;

// ---------------------------------------------------------------------------------------------
// Semihosting output

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

/// Formats into a fixed buffer and writes it with as few semihosting calls as possible
/// (one per 256 bytes), so a line reaches the host in one piece.
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

/// `print!` over semihosting, to QEMU's stdout.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print_fmt(format_args!($($arg)*)) };
}

/// `println!` over semihosting, to QEMU's stdout.
#[macro_export]
macro_rules! println {
    () => { $crate::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
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

// ---------------------------------------------------------------------------------------------
// Faults: report and end QEMU with a failure instead of hanging until the runner's timeout.

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    println!("panic: {}", info);
    exit_failure()
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
