//! The board-independent half of picocnn's digit-recogniser firmware.
//!
//! A board crate sets up clocks, pins and its UART as an `embedded-io`
//! device, then calls [`serve`]: the trained int8 LeNet-5 (in flash) answers
//! the serial protocol of `docs/protocol.md` for ever, and learns from the
//! labelled images a host sends (fine-tuning its last layer in RAM). With no host on the
//! line, three digits stored in flash ([`demo`]) are classified in turn.
//! What a board shows of it (an LED, a display) goes through [`Board`]; the
//! log goes through defmt, to whatever global logger the board links
//! (defmt-rtt on real boards, defmt-semihosting under QEMU).
#![no_std]
#![deny(missing_docs)]

use core::cell::{Cell, UnsafeCell};

#[cfg(feature = "learn")]
use picocnn::learn::FineTuner;
use picocnn::model::Model;
pub use picocnn::protocol::Answer;
use picocnn::protocol::{Server, Service, Tick};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

/// The trained int8 LeNet-5, each convolution fused with its pool
/// (`tests/models/lenet5_mnist_i8_fused.pcnn`), aligned as `Model::parse` needs. `build.rs` checks it; the firmware only
/// opens it (`Model::parse_prechecked`: length, alignment, CRC).
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../tests/models/lenet5_mnist_i8_fused.pcnn"
));

pub mod demo;

/// Arena bytes: the model needs 2,975 (5,903 unfused).
const ARENA_LEN: usize = 3072;

static ARENA: StaticArena<ARENA_LEN> = StaticArena::new();

/// Training state bytes: `FineTuner::train_len` is 1,039 for the model (the
/// last dense layer, the set its blob records). A buffer too small leaves
/// the board serving without learning.
#[cfg(feature = "learn")]
const TRAIN_LEN: usize = 1040;

#[cfg(feature = "learn")]
static TRAIN: StaticArena<TRAIN_LEN> = StaticArena::new();

/// The fine-tuner's learning rate; a host that repeats the board's steps
/// (`cargo xtask serial`) uses the same.
pub const LEARNING_RATE: f32 = 0.01;

/// The seed of the fine-tuner's stochastic rounding.
pub const LEARNING_SEED: u64 = 1;

/// Receiver bytes: an image and a learn request's 2-byte label.
const RECEIVER_LEN: usize = 784 + 2;

/// A zero-initialised buffer in `.bss` that is lent out mutably once,
/// without `static mut` (an interpreter's arena, say).
///
/// ```ignore
/// static ARENA: StaticArena<6144> = StaticArena::new();
/// let arena: &'static mut [u8; 6144] = ARENA.take().unwrap();
/// ```
pub struct StaticArena<const N: usize> {
    buf: UnsafeCell<[u8; N]>,
    taken: critical_section::Mutex<Cell<bool>>,
}

// SAFETY: the buffer is reachable only through `take`, which hands it out once.
unsafe impl<const N: usize> Sync for StaticArena<N> {}

impl<const N: usize> StaticArena<N> {
    /// A new, untaken arena.
    pub const fn new() -> Self {
        StaticArena {
            buf: UnsafeCell::new([0; N]),
            taken: critical_section::Mutex::new(Cell::new(false)),
        }
    }

    /// The buffer, the first time; `None` afterwards.
    // A `&mut` from `&self` is sound here: `taken` makes it the only one, like `singleton!`.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut [u8; N]> {
        // Test-and-set in a critical section: thumbv6m and riscv32imc have
        // no atomic read-modify-write.
        critical_section::with(|cs| {
            let taken = self.taken.borrow(cs).replace(true);
            // SAFETY: the first caller gets the only reference ever made.
            (!taken).then(|| unsafe { &mut *self.buf.get() })
        })
    }
}

impl<const N: usize> Default for StaticArena<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a board shows of the serving loop. Every method defaults to
/// nothing.
pub trait Board {
    /// Bytes of a request are arriving (light an LED, say).
    fn busy(&mut self) {}
    /// The line has been quiet for the idle limit.
    fn quiet(&mut self) {}
    /// An answer: to a request, or of a demo digit.
    fn show(&mut self, answer: &Answer) {
        let _ = answer;
    }
}

/// A board that shows nothing.
impl Board for () {}

/// Serves the model on `port` for ever. `port_name` goes into the log;
/// `idle_limit` passes of the loop without a byte (about a second's worth
/// on the board) end a frame cut short with a timeout reply and, when no
/// request has come yet, run the next demo digit. A line error on `port`
/// is logged; the protocol's CRC and resynchronisation deal with its
/// frame.
///
/// # Panics
/// If called twice (the arena is handed out once).
pub fn serve<D>(port: &mut D, port_name: &str, idle_limit: u32, board: &mut impl Board) -> !
where
    D: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
{
    let Some(arena) = ARENA.take() else {
        defmt::panic!("picocnn_firmware::serve called twice");
    };
    // build.rs has run every check of `Model::parse` on these bytes.
    let model = match Model::parse_prechecked(&MODEL.0) {
        Ok(m) => m,
        Err(e) => defmt::panic!("the model does not parse: {}", e),
    };
    #[cfg(feature = "learn")]
    let server = match TRAIN.take() {
        Some(train) => Server::with_learning(
            &model,
            &mut arena[..],
            &mut train[..],
            LEARNING_RATE,
            LEARNING_SEED,
        ),
        None => defmt::panic!("picocnn_firmware::serve called twice"),
    };
    #[cfg(not(feature = "learn"))]
    let server = Server::new(&model, &mut arena[..]);
    let server = match server {
        Ok(s) => s,
        Err(e) => defmt::panic!("cannot serve the model: {}", e),
    };
    defmt::info!(
        "picocnn: {=str} ({=usize} bytes), arena {=usize} of {=usize} bytes; serving on {=str}",
        model.name(),
        MODEL.0.len(),
        model.arena_len(),
        ARENA_LEN,
        port_name
    );
    #[cfg(feature = "learn")]
    match server.learning() {
        Ok(()) => defmt::info!(
            "learning: training state {=usize} of {=usize} bytes",
            FineTuner::train_len(&model).unwrap_or(0),
            TRAIN_LEN
        ),
        Err(e) => defmt::warn!("not learning: {}", e),
    }
    #[cfg(not(feature = "learn"))]
    defmt::info!("learning: left out of this build");
    let mut service = Service::<RECEIVER_LEN, _>::new(server, idle_limit);
    let (mut next, mut served) = (0usize, false);
    loop {
        match service.tick(port) {
            Ok(Tick::Busy) => {
                if !served {
                    defmt::info!("host connected: demo stopped");
                    served = true;
                }
                board.busy();
                if let Some(answer) = service.server.take_answer() {
                    board.show(&answer);
                }
            }
            Ok(Tick::TimedOut) => {
                defmt::warn!("{=str}: frame cut short, timeout reply sent", port_name);
                board.quiet();
            }
            Ok(Tick::Quiet) => {
                board.quiet();
                if !served {
                    let mut digit = [0; demo::DIGIT_LEN];
                    demo::digit(demo::CODED, next, &mut digit);
                    match service.server.classify(&digit) {
                        Ok(a) => {
                            defmt::info!(
                                "demo digit {=usize}: class {=u8} ({=u8}/255)",
                                next,
                                a.class,
                                a.confidence
                            );
                            board.show(&a);
                        }
                        Err(e) => defmt::error!("demo digit {=usize}: {}", next, e),
                    }
                    next = (next + 1) % demo::DIGITS;
                }
            }
            Ok(Tick::Idle) => {}
            Err(e) => {
                use embedded_io::Error as _;
                defmt::warn!("{=str}: line error ({})", port_name, e.kind());
            }
        }
    }
}

/// An LED on a GPIO pin that lights while requests arrive.
pub struct Led<P> {
    pin: P,
    active_low: bool,
}

impl<P: embedded_hal::digital::OutputPin> Led<P> {
    /// An LED that lights when `pin` is high.
    pub fn active_high(pin: P) -> Self {
        Led {
            pin,
            active_low: false,
        }
    }

    /// An LED that lights when `pin` is low.
    pub fn active_low(pin: P) -> Self {
        Led {
            pin,
            active_low: true,
        }
    }

    fn set(&mut self, on: bool) {
        // A pin that cannot be set leaves the LED as it was: nothing to serve depends on it.
        let _ = self.pin.set_state((on != self.active_low).into());
    }
}

impl<P: embedded_hal::digital::OutputPin> Board for Led<P> {
    fn busy(&mut self) {
        self.set(true);
    }

    fn quiet(&mut self) {
        self.set(false);
    }
}
