//! Serves the trained int8 LeNet-5 over the emulated UART (the serial
//! protocol of `docs/protocol.md`): on `mps2-an386` the CMSDK APB UART0,
//! on `microbit` the nRF51 UART, each behind the `embedded-io` traits the
//! library's `protocol::poll` uses. Run it with `-serial pty` and talk to
//! it with `picocnn send` (`cargo xtask serial` does).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use picocnn::model::Model;
use picocnn::protocol::{poll, reply_error, Receiver, Server};
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
    let mut server = Server::new(&model, &mut arena[..]).unwrap();
    let mut uart = Uart::new();
    let mut rx = Receiver::<784>::new();
    let mut out = [0u8; 32];
    println!("serve ready");
    let mut idle = 0u32;
    loop {
        let Ok(n) = poll(&mut uart, &mut rx, &mut server, &mut out);
        if n > 0 {
            idle = 0;
            continue;
        }
        idle = idle.saturating_add(1);
        if idle > IDLE_POLLS {
            if let Some(status) = rx.timeout() {
                let Ok(()) = reply_error(&mut uart, status);
            }
            idle = 0;
        }
    }
}
