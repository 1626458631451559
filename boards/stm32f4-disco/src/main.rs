//! Digit recogniser for the STM32F4 Discovery: serves the trained int8
//! LeNet-5 over USART2 with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter on PA2/PA3). Only the pins, clocks and runner live
//! here; framing, checks and inference are `picocnn::protocol`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use panic_halt as _;
use picocnn::model::Model;
use picocnn::protocol::{Server, Service, Tick};
use stm32f4xx_hal::{pac, prelude::*, rcc::Config, serial};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../tests/models/lenet5_mnist_i8.pcnn"
));

/// The first three test digits of `data/mnist` (a 3, a 4 and a 9), for the demo.
static DEMO: [u8; 3 * 784] = *include_bytes!("demo-digits.bin");

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
    let mut led = gpiod.pd12.into_push_pull_output();
    let serial = dp
        .USART2
        .serial((gpioa.pa2, gpioa.pa3), 115_200.bps(), &mut rcc)
        .unwrap();
    let mut port = Port {
        serial,
        pending: None,
    };

    let model = Model::parse(&MODEL.0).unwrap();
    static mut ARENA: [u8; 6144] = [0; 6144];
    // SAFETY: the only reference to ARENA, taken once before the loop.
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let server = Server::new(&model, arena).unwrap();
    defmt::info!(
        "picocnn: {} ({} bytes), arena {} bytes; serving on USART2 at 115200",
        model.name(),
        MODEL.0.len(),
        model.arena_len()
    );
    // About a second of passes without a byte ends a started frame.
    let mut service = Service::<784>::new(server, 20_000_000);
    let (mut demo, mut served) = (0usize, false);
    loop {
        match service.tick(&mut port) {
            Ok(Tick::Busy) => {
                served = true;
                OutputPin::set_high(&mut led).ok();
            }
            Ok(Tick::TimedOut) => {
                OutputPin::set_low(&mut led).ok();
            }
            // Without a host at all, classify the demo digits in turn.
            Ok(Tick::Quiet) => {
                OutputPin::set_low(&mut led).ok();
                if !served {
                    let digit = &DEMO[demo * 784..(demo + 1) * 784];
                    if let Ok(a) = service.server.classify(digit) {
                        defmt::info!(
                            "demo digit {}: class {} ({}/255)",
                            demo,
                            a.class,
                            a.confidence
                        );
                    }
                    demo = (demo + 1) % 3;
                }
            }
            Ok(Tick::Idle) => {}
        }
    }
}
