//! Digit recogniser for the Raspberry Pi Pico: serves the trained int8
//! LeNet-5 over UART0 (GP0 TX, GP1 RX) with the picocnn serial protocol
//! (`docs/protocol.md`; `picocnn send --port /dev/ttyUSB0 digit.png` through
//! a USB serial adapter, or a Pico debug probe's UART bridge). Only the
//! pins, clocks and runner live here; framing, checks and inference are
//! `picocnn::protocol`.
#![no_std]
#![no_main]

use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use panic_halt as _;
use picocnn::model::Model;
use picocnn::protocol::{Duplex, Server, Service, Tick};
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

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../tests/models/lenet5_mnist_i8.pcnn"
));

/// The first three test digits of `data/mnist` (a 3, a 4 and a 9), for the demo.
static DEMO: [u8; 3 * 784] = *include_bytes!("demo-digits.bin");

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
    let mut led = pins.gpio25.into_push_pull_output();

    let model = Model::parse(&MODEL.0).unwrap();
    static mut ARENA: [u8; 6144] = [0; 6144];
    // SAFETY: the only reference to ARENA, taken once before the loop.
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let server = Server::new(&model, arena).unwrap();
    defmt::info!(
        "picocnn: {} ({} bytes), arena {} bytes; serving on UART0 at 115200",
        model.name(),
        MODEL.0.len(),
        model.arena_len()
    );
    // About a second of passes without a byte ends a started frame.
    let mut service = Service::<784>::new(server, 10_000_000);
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
            // A line error (overrun, framing) loses its bytes; the
            // protocol's CRC and resynchronisation deal with the frame.
            Err(e) => defmt::warn!("UART0: {}", e),
        }
    }
}
