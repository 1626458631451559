//! The interpreter firmware: runs the committed models through
//! `picocnn::model::Interpreter`, read in place from flash, with every op
//! and precision linked (its `size` is checked by `cargo xtask size`), and
//! prints the instructions of each layer as the interpreter's hook sees
//! them, and a digest of each output (`cargo xtask bench-mcu --bin interp`).
#![no_std]
#![no_main]

use core::cell::Cell;

use picocnn::model::{Interpreter, LayerEvent, Model};
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{icount, println, StaticArena, MACHINE};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static BRANCHY_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../../../tests/models/branchy_i8.pcnn"));
static LENET5_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../../../tests/models/lenet5_i8.pcnn"));

/// ResNet-8 as MLPerf Tiny shapes it (12.5 million MACs): its 50,335-byte
/// arena is beyond the micro:bit's 16 KiB of RAM.
#[cfg(not(machine = "m0"))]
static RESNET8_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../../../tests/models/resnet8_i8.pcnn"));

/// DS-CNN as MLPerf Tiny's keyword spotter (2.7 million MACs; 16,287-byte
/// arena).
#[cfg(not(machine = "m0"))]
static DS_CNN_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../../../tests/models/ds_cnn_i8.pcnn"));

#[cfg(machine = "m0")]
static ARENA: StaticArena<7424> = StaticArena::new();
#[cfg(not(machine = "m0"))]
static ARENA: StaticArena<{ 50 * 1024 }> = StaticArena::new();

fn digest(bytes: &[i8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u8 as u32).wrapping_mul(0x0100_0193)
    })
}

fn run(name: &str, blob: &[u8], arena: &mut [u8]) {
    let model = Model::parse(blob).unwrap();
    let mut interp = Interpreter::new(&model, arena).unwrap();
    let mut s = 0x5eed_u64;
    for v in interp.input_mut::<i8>(0).unwrap() {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        *v = (z ^ (z >> 31)) as i8;
    }
    let start = Cell::new(0u64);
    let mut total = 0u64;
    let (r, all) = icount::measure(|| {
        interp.run_with(&mut |e: &LayerEvent<'_>| {
            let now = icount::ticks();
            if !e.done {
                start.set(now);
            } else {
                let n = icount::ticks_to_instructions(now - start.get());
                total += n;
                println!(
                    "{} layer {:<10} {:<10} macs {:>7} instructions {:>8}",
                    name,
                    e.name,
                    e.kind.name(),
                    e.macs,
                    n
                );
            }
        })
    });
    r.unwrap();
    println!(
        "{} arena {} bytes, run {} instructions (layers {}, with printing)",
        name,
        model.arena_len(),
        all,
        total
    );
    for k in 0..model.output_count() {
        let out = interp.output::<i8>(k).unwrap();
        println!("{} output {} digest {:08x}", name, k, digest(out));
    }
}

#[entry]
fn main() -> ! {
    icount::init();
    println!("interp {}", MACHINE);
    let arena = &mut ARENA.take().unwrap()[..];
    run("branchy_i8", &BRANCHY_I8.0, arena);
    run("lenet5_i8", &LENET5_I8.0, arena);
    #[cfg(not(machine = "m0"))]
    run("resnet8_i8", &RESNET8_I8.0, arena);
    #[cfg(not(machine = "m0"))]
    run("ds_cnn_i8", &DS_CNN_I8.0, arena);
    picocnn_qemu_tests::exit_success()
}
