//! Digit recogniser for the ESP32-C3 (ESP32-C3-DevKitM-1): serves the
//! trained int8 LeNet-5 over UART0 (GPIO21 TX, GPIO20 RX, wired to the
//! devkit's USB-UART bridge) with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png`). Only
//! the pins, clocks and runner live here; the model, serving loop, demo and log are
//! `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use defmt_rtt as _;
use esp_hal::{
    clock::CpuClock,
    gpio::Level,
    rmt::{Channel, PulseCode, Rmt, Tx, TxChannelConfig, TxChannelCreator},
    time::Rate,
    uart::{self, Uart},
    Blocking,
};
use panic_halt as _;

// The application descriptor the ESP-IDF second-stage bootloader checks.
esp_bootloader_esp_idf::esp_app_desc!();

/// WS2812 bit timings in 12.5 ns RMT ticks (80 MHz): 0.4/0.85 µs for a 0,
/// 0.8/0.45 µs for a 1.
const BIT0: PulseCode = PulseCode::new(Level::High, 32, Level::Low, 68);
const BIT1: PulseCode = PulseCode::new(Level::High, 64, Level::Low, 36);

/// The devkit's addressable RGB LED (a WS2812 on GPIO8), fed by RMT
/// channel 0. It is written only when it changes: a write blocks ~30 µs.
struct Led {
    ch: Option<Channel<'static, Blocking, Tx>>,
    lit: bool,
}

impl Led {
    fn set(&mut self, on: bool) {
        if on == self.lit {
            return;
        }
        self.lit = on;
        // Green, red, blue, most significant bit first; dim green when on.
        let grb: u32 = if on { 0x10_00_00 } else { 0 };
        let mut codes = [PulseCode::end_marker(); 25];
        for (i, code) in codes[..24].iter_mut().enumerate() {
            *code = if grb >> (23 - i) & 1 == 1 { BIT1 } else { BIT0 };
        }
        // The channel moves into the transfer and comes back, error or not.
        if let Some(ch) = self.ch.take() {
            self.ch = Some(match ch.transmit(&codes) {
                Ok(t) => t.wait().unwrap_or_else(|(_, ch)| ch),
                Err((_, ch)) => ch,
            });
        }
    }
}

impl picocnn_firmware::Board for Led {
    fn busy(&mut self) {
        self.set(true);
    }

    fn quiet(&mut self) {
        self.set(false);
    }
}

#[esp_hal::main]
fn main() -> ! {
    // 160 MHz rather than the default 80: inference is CPU-bound.
    let p = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    let mut port = Uart::new(p.UART0, uart::Config::default().with_baudrate(115_200))
        .unwrap()
        .with_tx(p.GPIO21)
        .with_rx(p.GPIO20);
    let rmt = Rmt::new(p.RMT, Rate::from_mhz(80)).unwrap();
    let ch = rmt
        .channel0
        .configure_tx(&TxChannelConfig::default().with_clk_divider(1))
        .unwrap()
        .with_pin(p.GPIO8);
    // Starts as "on" so that the first `set(false)` clears whatever the LED
    // showed before the reset.
    let mut led = Led {
        ch: Some(ch),
        lit: true,
    };
    led.set(false);

    picocnn_firmware::serve(&mut port, "UART0 at 115200", 10_000_000, &mut led)
}
