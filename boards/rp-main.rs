// The `main` of the Raspberry Pi Pico and Pico 2 firmware, included by each
// crate's src/main.rs (`include!("../../rp-main.rs")`) after `use rp2040_hal
// as hal` or `use rp235x_hal as hal`: the two HALs share this API, so only
// the boot block differs. 12 MHz crystal, UART0 on GP0 (TX) and GP1 (RX) at
// 115200 baud, the LED on GP25.

use defmt_rtt as _;
use hal::{
    clocks::init_clocks_and_plls,
    fugit::RateExtU32,
    pac,
    uart::{DataBits, StopBits, UartConfig, UartPeripheral},
    Clock, Sio, Watchdog,
};
use panic_halt as _;
use picocnn::protocol::Duplex;
use picocnn_firmware::Led;

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
