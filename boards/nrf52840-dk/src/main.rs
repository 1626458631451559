//! Digit recogniser for the nRF52840-DK: serves the trained int8 LeNet-5
//! over UARTE0 with the picocnn serial protocol (`docs/protocol.md`). The
//! DK wires UARTE0 (P0.06 TX, P0.08 RX) to its J-Link's virtual COM port,
//! so `picocnn send --port /dev/ttyACM0 digit.png` over the same USB cable
//! that flashes it. Only the pins, clocks and runner live here; the
//! model, serving loop, demo and log are `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use nrf52840_hal::{
    clocks::Clocks,
    gpio::{p0, Level},
    pac,
    uarte::{self, Baudrate, Parity, Uarte},
};
use panic_halt as _;
use picocnn::protocol::Duplex;
use picocnn_firmware::Led;

#[entry]
fn main() -> ! {
    let p = pac::Peripherals::take().unwrap();
    // The crystal: the internal RC oscillator is too loose for 115200 baud
    // over a long frame.
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);
    // LED1 is active low.
    let led = port0.p0_13.into_push_pull_output(Level::High).degrade();
    let pins = uarte::Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    // EasyDMA reads and writes RAM only: the buffers are statics.
    let tx_buf = cortex_m::singleton!(: [u8; 64] = [0; 64]).unwrap();
    let rx_buf = cortex_m::singleton!(: [u8; 1] = [0; 1]).unwrap();
    let (tx, rx) = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200)
        .split(tx_buf, rx_buf)
        .unwrap();
    let mut port = Duplex { rx, tx };

    picocnn_firmware::serve(
        &mut port,
        "UARTE0 at 115200",
        5_000_000,
        &mut Led::active_low(led),
    )
}
