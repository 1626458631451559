//! On-device fine-tuning of the trained int8 LeNet-5's last dense layer:
//! instructions per inference and per training step under QEMU's
//! `-icount`, the memory it takes, and a digest of the tuned weights after
//! a few steps (`cargo xtask bench-mcu --bin learn`).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use picocnn::learn::FineTuner;
use picocnn::model::Model;
use picocnn_qemu_tests::{icount, println, StaticArena, MACHINE};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static LENET5: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../../../../tests/models/lenet5_mnist_i8.pcnn"
));

static ARENA: StaticArena<6144> = StaticArena::new();
static TRAIN: StaticArena<1536> = StaticArena::new();

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap();
    icount::init(&mut cp.SYST);
    let model = Model::parse(&LENET5.0).unwrap();
    let train_len = FineTuner::train_len(&model).unwrap();
    let arena = &mut ARENA.take().unwrap()[..];
    let train = &mut TRAIN.take().unwrap()[..];
    let mut tuner = FineTuner::new(&model, arena, train, 0.01, 7).unwrap();
    println!(
        "learn {}: lenet5 last dense layer, arena {} bytes, training state {} bytes",
        MACHINE,
        model.arena_len(),
        train_len
    );
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
    println!(
        "learn {}: inference {} instructions (class {}), training step {} instructions ({:.2}x)",
        MACHINE,
        infer,
        class,
        step,
        step as f32 / infer as f32
    );
    println!(
        "learn {}: tuned parameters digest {:08x}",
        MACHINE,
        tuner.digest()
    );
    picocnn_qemu_tests::exit_success()
}
