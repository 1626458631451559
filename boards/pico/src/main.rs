//! Digit recogniser for the Raspberry Pi Pico: serves the trained int8
//! LeNet-5 over UART0 (GP0 TX, GP1 RX) with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter, or a Pico debug probe's UART bridge). Only the
//! pins, clocks and runner live here; the model, serving loop, demo and log
//! are `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_halt as _;
use picocnn::protocol::Duplex;
use picocnn_firmware::Led;
use rp2040_hal::{
    self as hal,
    clocks::init_clocks_and_plls,
    fugit::RateExtU32,
    pac,
    uart::{DataBits, StopBits, UartConfig, UartPeripheral},
    Clock, Sio, Watchdog,
};

/// The second-stage bootloader for the Pico's W25Q080 flash.
#[link_section = ".boot2"]
#[no_mangle]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

const XTAL_HZ: u32 = 12_000_000;

type Pins = (
    hal::gpio::Pin<hal::gpio::bank0::Gpio0, hal::gpio::FunctionUart, hal::gpio::PullDown>,
    hal::gpio::Pin<hal::gpio::bank0::Gpio1, hal::gpio::FunctionUart, hal::gpio::PullDown>,
);

#[hal::entry]
fn main() -> ! {
    let mut pac = pac::Peripherals::take().unwrap();
    let mut watchdog = Watchdog::new(pac.WATCHDOG);
    let clocks = init_clocks_and_plls(
        XTAL_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    )
    .ok()
    .unwrap();
    let sio = Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let uart_pins: Pins = (pins.gpio0.into_function(), pins.gpio1.into_function());
    let uart = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS)
        .enable(
            UartConfig::new(115_200.Hz(), DataBits::Eight, None, StopBits::One),
            clocks.peripheral_clock.freq(),
        )
        .unwrap();
    let (rx, tx) = uart.split();
    let mut port = Duplex { rx, tx };
    let led = pins.gpio25.into_push_pull_output();

    picocnn_firmware::serve(
        &mut port,
        "UART0 at 115200",
        10_000_000,
        &mut Led::active_high(led),
    )
}
