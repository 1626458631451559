//! Digit recogniser for the Raspberry Pi Pico 2: serves the trained int8
//! LeNet-5 over UART0 (GP0 TX, GP1 RX) with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter, or a Pico debug probe's UART bridge). Only the
//! boot block lives here; pins and clocks are `../rp-main.rs`, shared with
//! the Pico, and the model, serving loop, demo and log are
//! `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use rp235x_hal as hal;

/// Tells the RP2350's boot ROM that this image is Arm code to run in Secure
/// state; the ROM looks for it in the first 4 KiB of flash (`memory.x`).
#[link_section = ".start_block"]
#[used]
pub static IMAGE_DEF: hal::block::ImageDef = hal::block::ImageDef::secure_exe();

include!("../../rp-main.rs");
