//! On-device fine-tuning of the trained int8 LeNet-5: per trainable set,
//! the memory it takes, instructions per inference and per training step
//! under QEMU's `-icount`, and a digest of the tuned parameters after a
//! few steps (`cargo xtask bench-mcu --bin learn`). The sets: the one
//! recorded in the blob (the last dense layer), the last dense layer with
//! every bias below it, and on the Cortex-M4F and RV32 the last two dense layers.
#![no_std]
#![no_main]

use picocnn::learn::{FineTuner, TrainableSet};
use picocnn::model::Model;
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{icount, println, StaticArena, MACHINE};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static LENET5: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../../tests/models/lenet5_mnist_i8.pcnn"
));

/// LeNet-5's `arena_len()`: the plan and its alignment.
static ARENA: StaticArena<5920> = StaticArena::new();
/// The largest set each core runs: every bias (M0), two dense layers (M4F, RV32).
#[cfg(machine = "m0")]
static TRAIN: StaticArena<5008> = StaticArena::new();
#[cfg(any(machine = "m4", machine = "rv32"))]
static TRAIN: StaticArena<11616> = StaticArena::new();

#[cfg(machine = "m0")]
const SETS: [(&str, TrainableSet); 2] = [
    ("last dense layer (recorded)", TrainableSet::Recorded),
    (
        "last dense layer + every bias",
        TrainableSet::Last {
            weights: 1,
            biases: usize::MAX,
        },
    ),
];
#[cfg(any(machine = "m4", machine = "rv32"))]
const SETS: [(&str, TrainableSet); 3] = [
    ("last dense layer (recorded)", TrainableSet::Recorded),
    (
        "last dense layer + every bias",
        TrainableSet::Last {
            weights: 1,
            biases: usize::MAX,
        },
    ),
    (
        "last two dense layers",
        TrainableSet::Last {
            weights: 2,
            biases: 0,
        },
    ),
];

extern "C" {
    /// The start of the statics, the end of them (the stack grows down
    /// towards it) and the stack's top (cortex-m-rt's and riscv-rt's linker scripts).
    static mut __sdata: u8;
    static mut __euninit: u8;
    static mut _stack_start: u8;
}

const PAINT: u8 = 0xa5;

/// Fills the free stack below the caller's frame with a pattern.
#[inline(never)]
fn paint_stack() {
    let low = core::ptr::addr_of_mut!(__euninit) as usize;
    let here = &low as *const usize as usize - 256;
    for a in low..here {
        // SAFETY: between the statics and the live stack: unused RAM.
        unsafe { core::ptr::write_volatile(a as *mut u8, PAINT) };
    }
}

/// Bytes of stack below the top of RAM the program has used since
/// `paint_stack` (the deepest point reached).
fn stack_used() -> usize {
    let mut a = core::ptr::addr_of_mut!(__euninit) as usize;
    // SAFETY: reads unused RAM painted above.
    while unsafe { core::ptr::read_volatile(a as *const u8) } == PAINT {
        a += 1;
    }
    core::ptr::addr_of_mut!(_stack_start) as usize - a
}

/// Memory, instructions and digest of one trainable set.
#[inline(never)]
fn run_set(model: &Model<'_>, name: &str, set: TrainableSet, arena: &mut [u8], train: &mut [u8]) {
    let train_len = FineTuner::train_len_for(model, set).unwrap();
    let mut tuner =
        FineTuner::with_set(model, set, arena, &mut train[..train_len], 0.01, 7).unwrap();
    let mut s = 0x5eed_u64;
    let mut fill = |x: &mut [i8]| {
        for v in x {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *v = (s >> 56) as i8;
        }
    };
    fill(tuner.input_mut::<i8>().unwrap());
    let (class, infer) = icount::measure(|| tuner.predict());
    let class = class.unwrap();
    let mut step = 0;
    for k in 0..4 {
        fill(tuner.input_mut::<i8>().unwrap());
        let (r, n) = icount::measure(|| tuner.step(k % 10));
        r.unwrap();
        step = n;
    }
    report(
        name,
        model.arena_len(),
        train_len,
        infer,
        class,
        step,
        tuner.digest(),
    );
}

/// One line per set, formatted off the measured path's stack.
#[inline(never)]
fn report(
    name: &str,
    arena: usize,
    train_len: usize,
    infer: u64,
    class: usize,
    step: u64,
    digest: u32,
) {
    let permille = (step * 1000 / infer.max(1)) as u32;
    println!(
        "learn {}: {}: arena {} + training {} bytes; inference {} instructions (class {}), training step {} ({}.{:03}x); digest {:08x}",
        MACHINE,
        name,
        arena,
        train_len,
        infer,
        class,
        step,
        permille / 1000,
        permille % 1000,
        digest
    );
}

#[entry]
fn main() -> ! {
    paint_stack();
    run();
    println!(
        "learn {}: stack used {} bytes; static RAM {} bytes",
        MACHINE,
        stack_used(),
        core::ptr::addr_of_mut!(__euninit) as usize - core::ptr::addr_of_mut!(__sdata) as usize
    );
    picocnn_qemu_tests::exit_success()
}

/// Every set, below `main`'s frame.
#[inline(never)]
fn run() {
    icount::init();
    let model = Model::parse(&LENET5.0).unwrap();
    let arena = &mut ARENA.take().unwrap()[..];
    let train = &mut TRAIN.take().unwrap()[..];
    for (name, set) in SETS {
        run_set(&model, name, set, arena, train);
    }
}
