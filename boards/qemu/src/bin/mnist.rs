//! The end-to-end firmware: a trained LeNet-5 (int8; f16 or f32 on the M4F) (by default
//! `tests/models/lenet5_mnist_i8_fused.pcnn`; `PICOCNN_MNIST_MODEL` at build time
//! picks another) classifies the first test digits of `data/mnist`
//! (`PICOCNN_MNIST_DIGITS`, default 100, written by `build.rs`), read from
//! flash. It prints the number of digits, how many it got right, and a
//! digest of its predictions, which `cargo xtask mnist` compares with the
//! host's predictions from the same blob.
//!
//! Built as a board's firmware is: the host has run every check of
//! `Model::parse` on the blob (`cargo xtask mnist` runs it there first), so
//! the firmware opens it with `Model::parse_prechecked`, and errors stop it
//! with a line of text rather than through `Debug`, which a board's defmt
//! log would not link either. `cargo xtask size` reports the library's
//! share of this firmware's code.
#![no_std]
#![no_main]

use half::f16;
use picocnn::model::{DType, Interpreter, Model};
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{exit_failure, icount, println, StaticArena, MACHINE};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("PICOCNN_MNIST_MODEL")));
/// `n` images of 28x28 bytes, then their `n` labels.
static DIGITS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.bin"));

// `ARENA_LEN`: the model's arena (`build.rs`). The int8 LeNet-5 needs
// 2,975 bytes fused, 5,903 unfused; f16 11,775 (not on the M0: it has 16 KiB
// of RAM).
include!(concat!(env!("OUT_DIR"), "/mnist_arena.rs"));
static ARENA: StaticArena<ARENA_LEN> = StaticArena::new();

/// The value, or the firmware stops saying what failed.
fn ok<T>(r: Result<T, picocnn::Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(_) => {
            println!("mnist: {what} failed");
            exit_failure()
        }
    }
}

/// Index of the first largest value.
fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
}

#[entry]
fn main() -> ! {
    icount::init();
    let model = ok(Model::parse_prechecked(&MODEL.0), "opening the model");
    let arena = ARENA.take().unwrap();
    let mut interp = ok(Interpreter::new(&model, &mut arena[..]), "the interpreter");
    let Some(input) = model.input(0) else {
        println!("mnist: the model has no input");
        exit_failure()
    };
    let input = model.tensor(input);
    let (scale, offset) = model.normalisation();
    let len = input.shape.len();
    let n = DIGITS.len() / (len + 1);
    let (images, labels) = DIGITS.split_at(n * len);
    // Pixels to inputs once, as a table: no float per pixel (the M0 has no FPU).
    let mut lut_i8 = [0i8; 256];
    let mut lut_f32 = [0f32; 256];
    for p in 0..256 {
        lut_f32[p] = p as f32 * scale + offset;
        if let Some(q) = input.qparams {
            lut_i8[p] = q.quantize(lut_f32[p]);
        }
    }
    let (mut correct, mut digest) = (0usize, 0x811c_9dc5u32);
    let ((), instructions) = icount::measure(|| {
        for (img, &label) in images.chunks_exact(len).zip(labels) {
            let best = match input.dtype {
                DType::I8 => {
                    for (d, &p) in ok(interp.input_mut::<i8>(0), "the input")
                        .iter_mut()
                        .zip(img)
                    {
                        *d = lut_i8[p as usize];
                    }
                    ok(interp.run(), "inference");
                    argmax(ok(interp.output::<i8>(0), "the output"))
                }
                DType::I16 => {
                    let q = input.qparams.unwrap_or(picocnn::quant::QParams {
                        scale: 1.0,
                        zero_point: 0,
                    });
                    for (d, &p) in ok(interp.input_mut::<i16>(0), "the input")
                        .iter_mut()
                        .zip(img)
                    {
                        *d = q.quantize_i16(lut_f32[p as usize]);
                    }
                    ok(interp.run(), "inference");
                    argmax(ok(interp.output::<i16>(0), "the output"))
                }
                DType::F16 => {
                    for (d, &p) in ok(interp.input_mut::<f16>(0), "the input")
                        .iter_mut()
                        .zip(img)
                    {
                        *d = f16::from_f32(lut_f32[p as usize]);
                    }
                    ok(interp.run(), "inference");
                    argmax(ok(interp.output::<f16>(0), "the output"))
                }
                DType::F32 => {
                    for (d, &p) in ok(interp.input_mut::<f32>(0), "the input")
                        .iter_mut()
                        .zip(img)
                    {
                        *d = lut_f32[p as usize];
                    }
                    ok(interp.run(), "inference");
                    argmax(ok(interp.output::<f32>(0), "the output"))
                }
            };
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
