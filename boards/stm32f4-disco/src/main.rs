//! Digit recogniser for the STM32F4 Discovery: serves the trained int8
//! LeNet-5 over USART2 with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter on PA2/PA3). Only the pins, clocks and runner live
//! here; the model, serving loop,
//! demo and log are `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_halt as _;
use picocnn_firmware::Led;
use stm32f4xx_hal::{pac, prelude::*, rcc::Config, serial};

/// USART2 as an `embedded-io` device: the HAL reads a byte at a time
/// without blocking; a byte read to answer `read_ready` waits in `pending`.
struct Port {
    serial: serial::Serial<pac::USART2>,
    pending: Option<u8>,
}

impl embedded_io::ErrorType for Port {
    type Error = core::convert::Infallible;
}

impl embedded_io::ReadReady for Port {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.pending.is_none() {
            // Line errors (overrun, framing) lose that byte; the protocol's
            // CRC and resynchronisation deal with the frame.
            self.pending = embedded_hal_nb::serial::Read::read(&mut self.serial).ok();
        }
        Ok(self.pending.is_some())
    }
}

impl embedded_io::Read for Port {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(b) = self.pending.take() {
                buf[0] = b;
                return Ok(1);
            }
            let _ = embedded_io::ReadReady::read_ready(self);
        }
    }
}

impl embedded_io::Write for Port {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            while embedded_hal_nb::serial::Write::write(&mut self.serial, b).is_err() {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while embedded_hal_nb::serial::Write::flush(&mut self.serial).is_err() {}
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    let dp = pac::Peripherals::take().unwrap();
    let mut rcc = dp.RCC.freeze(Config::hse(8.MHz()).sysclk(168.MHz()));
    let gpioa = dp.GPIOA.split(&mut rcc);
    let gpiod = dp.GPIOD.split(&mut rcc);
    let led = gpiod.pd12.into_push_pull_output();
    let serial = dp
        .USART2
        .serial((gpioa.pa2, gpioa.pa3), 115_200.bps(), &mut rcc)
        .unwrap();
    let mut port = Port {
        serial,
        pending: None,
    };

    picocnn_firmware::serve(
        &mut port,
        "USART2 at 115200",
        20_000_000,
        &mut Led::active_high(led),
    )
}
