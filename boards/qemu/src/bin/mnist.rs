//! The end-to-end firmware: a trained int8 LeNet-5 (by default
//! `tests/models/lenet5_mnist_i8.pcnn`; `PICOCNN_MNIST_MODEL` at build time
//! picks another) classifies the first test digits of `data/mnist`
//! (`PICOCNN_MNIST_DIGITS`, default 100, written by `build.rs`), read from
//! flash. It prints the number of digits, how many it got right, and a
//! digest of its predictions, which `cargo xtask mnist` compares with the
//! host's predictions from the same blob.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use picocnn::model::{Interpreter, Model};
use picocnn_qemu_tests::{icount, println, StaticArena, MACHINE};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("PICOCNN_MNIST_MODEL")));
/// `n` images of 28x28 bytes, then their `n` labels.
static DIGITS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.bin"));

static ARENA: StaticArena<6144> = StaticArena::new();

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap();
    icount::init(&mut cp.SYST);
    let model = Model::parse(&MODEL.0).unwrap();
    let arena = ARENA.take().unwrap();
    let mut interp = Interpreter::new(&model, &mut arena[..]).unwrap();
    let input = model.tensor(model.input(0).unwrap());
    let q = input.qparams.unwrap();
    let (scale, offset) = model.normalisation();
    let len = input.shape.len();
    let n = DIGITS.len() / (len + 1);
    let (images, labels) = DIGITS.split_at(n * len);
    // Pixels to int8 inputs once, as a table: no float per pixel (the M0 has no FPU).
    let mut lut = [0i8; 256];
    for (p, v) in lut.iter_mut().enumerate() {
        *v = q.quantize(p as f32 * scale + offset);
    }
    let (mut correct, mut digest) = (0usize, 0x811c_9dc5u32);
    let ((), instructions) = icount::measure(|| {
        for (img, &label) in images.chunks_exact(len).zip(labels) {
            for (d, &p) in interp.input_mut::<i8>(0).unwrap().iter_mut().zip(img) {
                *d = lut[p as usize];
            }
            interp.run().unwrap();
            let out = interp.output::<i8>(0).unwrap();
            // The first largest probability, as the host takes it.
            let best = (0..out.len()).fold(0, |b, k| if out[k] > out[b] { k } else { b });
            correct += (best == label as usize) as usize;
            digest = (digest ^ best as u32).wrapping_mul(0x0100_0193);
        }
    });
    println!(
        "mnist {} n {} correct {} digest {:08x} instructions {}",
        MACHINE, n, correct, digest, instructions
    );
    picocnn_qemu_tests::exit_success()
}
