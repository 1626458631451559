//! Serves the trained int8 LeNet-5 over the emulated UART (the serial
//! protocol of `docs/protocol.md`): on `mps2-an386` the CMSDK APB UART0,
//! on `microbit` the nRF51 UART, each behind the `embedded-io` traits the
//! library's `protocol::poll` uses. Run it with `-serial pty` and talk to
//! it with `picocnn send` (`cargo xtask serial` does).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use picocnn::model::Model;
use picocnn::protocol::{Server, Service};
use picocnn_qemu_tests::{println, uart::Uart, StaticArena};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../../tests/models/lenet5_mnist_i8.pcnn"
));

static ARENA: StaticArena<6144> = StaticArena::new();

/// Polls without a byte after which a started frame counts as abandoned
/// (about half a second under QEMU).
const IDLE_POLLS: u32 = 2_000_000;

#[entry]
fn main() -> ! {
    let model = Model::parse(&MODEL.0).unwrap();
    let arena = ARENA.take().unwrap();
    let server = Server::new(&model, &mut arena[..]).unwrap();
    let mut uart = Uart::new();
    let mut service = Service::<784>::new(server, IDLE_POLLS);
    println!("serve ready");
    loop {
        let Ok(_) = service.tick(&mut uart);
    }
}
