//! Digit recogniser for the BBC micro:bit v2: serves the trained int8
//! LeNet-5 over UARTE0 with the picocnn serial protocol
//! (`docs/protocol.md`) and shows each predicted digit on the 5x5 LED
//! matrix, brighter the surer the model is. UARTE0 is wired to the USB
//! interface chip's serial port, so `picocnn send --port /dev/ttyACM0
//! digit.png` over the cable that flashes it. Only pins, clocks, the
//! display and the runner live here; the model, serving loop, demo and log are
//! `picocnn_firmware::serve`.
#![no_std]
#![no_main]

use core::cell::RefCell;
use cortex_m::interrupt::Mutex;
use cortex_m_rt::entry;
use defmt_rtt as _;
use microbit::{
    display::nonblocking::{Display, GreyscaleImage},
    hal::{
        clocks::Clocks,
        uarte::{Baudrate, Parity, Uarte},
    },
    pac::{self, interrupt},
    Board,
};
use panic_halt as _;
use picocnn::protocol::Duplex;
use picocnn_firmware::Answer;

/// The display, refreshed from TIMER1's interrupt so that serving never
/// waits for it.
static DISPLAY: Mutex<RefCell<Option<Display<pac::TIMER1>>>> = Mutex::new(RefCell::new(None));

/// Digits 0-9 in a 3x5 font: one row a byte, bit 2 the left column.
const FONT: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b011, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// `answer`'s class in the middle three columns, at a brightness from 3
/// (confidence near 0) to 9 (near 255).
fn glyph(answer: &Answer) -> GreyscaleImage {
    let level = 3 + (answer.confidence as u32 * 6 / 255) as u8;
    let mut image = [[0u8; 5]; 5];
    let rows = FONT[answer.class as usize % 10];
    for (row, bits) in image.iter_mut().zip(rows) {
        for col in 0..3 {
            if bits & (0b100 >> col) != 0 {
                row[col + 1] = level;
            }
        }
    }
    GreyscaleImage::new(&image)
}

/// The LED matrix: each answer's digit until the next.
struct Matrix;

impl picocnn_firmware::Board for Matrix {
    fn show(&mut self, answer: &Answer) {
        let image = glyph(answer);
        cortex_m::interrupt::free(|cs| {
            if let Some(display) = DISPLAY.borrow(cs).borrow_mut().as_mut() {
                display.show(&image);
            }
        });
    }
}

#[interrupt]
fn TIMER1() {
    cortex_m::interrupt::free(|cs| {
        if let Some(display) = DISPLAY.borrow(cs).borrow_mut().as_mut() {
            display.handle_display_event();
        }
    });
}

#[entry]
fn main() -> ! {
    let board = Board::take().unwrap();
    // The crystal: the internal RC oscillator is too loose for 115200 baud
    // over a long frame.
    let _clocks = Clocks::new(board.CLOCK).enable_ext_hfosc();
    let display = Display::new(board.TIMER1, board.display_pins);
    cortex_m::interrupt::free(|cs| DISPLAY.borrow(cs).replace(Some(display)));
    // SAFETY: the handler only touches DISPLAY, which is set by now.
    unsafe { pac::NVIC::unmask(pac::Interrupt::TIMER1) };

    // EasyDMA reads and writes RAM only: the buffers are statics.
    let tx_buf = cortex_m::singleton!(: [u8; 64] = [0; 64]).unwrap();
    let rx_buf = cortex_m::singleton!(: [u8; 1] = [0; 1]).unwrap();
    let (tx, rx) = Uarte::new(
        board.UARTE0,
        board.uart.into(),
        Parity::EXCLUDED,
        Baudrate::BAUD115200,
    )
    .split(tx_buf, rx_buf)
    .unwrap();
    let mut port = Duplex { rx, tx };

    picocnn_firmware::serve(&mut port, "UARTE0 at 115200", 5_000_000, &mut Matrix)
}
