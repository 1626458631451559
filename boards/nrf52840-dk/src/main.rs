//! Digit recogniser for the nRF52840-DK: serves the trained int8 LeNet-5
//! over UARTE0 with the picocnn serial protocol (`docs/protocol.md`). The
//! DK wires UARTE0 (P0.06 TX, P0.08 RX) to its J-Link's virtual COM port,
//! so `picocnn send --port /dev/ttyACM0 digit.png` over the same USB cable
//! that flashes it. Only the pins, clocks and runner live here; framing,
//! checks and inference are `picocnn::protocol`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use nrf52840_hal::{
    clocks::Clocks,
    gpio::{p0, Level},
    pac,
    uarte::{self, Baudrate, Parity, Uarte},
};
use panic_halt as _;
use picocnn::model::Model;
use picocnn::protocol::{Duplex, Server, Service, Tick};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../tests/models/lenet5_mnist_i8.pcnn"
));

/// The first three test digits of `data/mnist` (a 3, a 4 and a 9), for the demo.
static DEMO: [u8; 3 * 784] = *include_bytes!("demo-digits.bin");

#[entry]
fn main() -> ! {
    let p = pac::Peripherals::take().unwrap();
    // The crystal: the internal RC oscillator is too loose for 115200 baud
    // over a long frame.
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);
    // LED1 is active low.
    let mut led = port0.p0_13.into_push_pull_output(Level::High).degrade();
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

    let model = Model::parse(&MODEL.0).unwrap();
    static mut ARENA: [u8; 6144] = [0; 6144];
    // SAFETY: the only reference to ARENA, taken once before the loop.
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let server = Server::new(&model, arena).unwrap();
    defmt::info!(
        "picocnn: {} ({} bytes), arena {} bytes; serving on UARTE0 at 115200",
        model.name(),
        MODEL.0.len(),
        model.arena_len()
    );
    // About a second of passes without a byte ends a started frame.
    let mut service = Service::<784>::new(server, 5_000_000);
    let (mut demo, mut served) = (0usize, false);
    loop {
        match service.tick(&mut port) {
            Ok(Tick::Busy) => {
                served = true;
                OutputPin::set_low(&mut led).ok();
            }
            Ok(Tick::TimedOut) => {
                OutputPin::set_high(&mut led).ok();
            }
            // Without a host at all, classify the demo digits in turn.
            Ok(Tick::Quiet) => {
                OutputPin::set_high(&mut led).ok();
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
            // A line error loses its byte; the protocol's CRC and
            // resynchronisation deal with the frame.
            Err(e) => defmt::warn!("UARTE0: {}", e),
        }
    }
}
