//! The boards' firmware under QEMU: `picocnn_firmware::serve` (the same
//! serving loop, model, demo and defmt log as the board crates) on the
//! emulated UART, behind the `embedded-io` traits: the CMSDK APB UART0 on
//! `mps2-an386`, the nRF51 UART on `microbit`. Run it with `-serial pty`
//! and talk to it with `picocnn send`; its defmt log comes out over
//! semihosting (`cargo xtask serial` does both and decodes the log).
#![no_std]
#![no_main]

use defmt_semihosting as _;
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::uart::Uart;

/// Polls without a byte after which a started frame counts as abandoned
/// and, before the first request, the next demo digit runs (about half a
/// second under QEMU).
const IDLE_POLLS: u32 = 2_000_000;

#[entry]
fn main() -> ! {
    picocnn_firmware::serve(&mut Uart::new(), "the emulated UART", IDLE_POLLS, &mut ())
}
