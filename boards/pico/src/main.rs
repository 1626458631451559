//! Digit recogniser for the Raspberry Pi Pico: serves the trained int8
//! LeNet-5 over UART0 (GP0 TX, GP1 RX) with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter, or a Pico debug probe's UART bridge). Only the
//! boot block lives here; pins and clocks are `../rp-main.rs`, shared with
//! the Pico 2, and the model, serving loop, demo and log are
//! `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use rp2040_hal as hal;

/// The second-stage bootloader for the Pico's W25Q080 flash.
#[link_section = ".boot2"]
#[no_mangle]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

include!("../../rp-main.rs");
