//! Checks the instruction counter of `picocnn_qemu_tests::icount` against loops of known
//! length: `spin(n)` executes 2n instructions plus the one that loads n. Run it under
//! `-icount shift=N`: `cargo xtask bench-mcu --bin icount-check`.
#![no_std]
#![no_main]

use core::hint::black_box;

use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{icount, println, MACHINE};

#[entry]
fn main() -> ! {
    let cal = icount::init();
    println!("icount-check {} {:?}", MACHINE, cal);

    let mut worst: u64 = 0;
    for &n in &[
        1u32, 2, 3, 10, 100, 1000, 1001, 12_345, 100_000, 3_000_000, 20_000_000,
    ] {
        let n = black_box(n);
        let (_, raw, wraps) = icount::measure_raw(|| icount::spin(n));
        let (_, instructions) = icount::measure(|| icount::spin(n));
        let expected = 2 * u64::from(n) + 1;
        let error = instructions as i64 - expected as i64;
        worst = worst.max(error.unsigned_abs());
        println!(
            "spin {} raw_ticks {} wraps {} instructions {} expected {} error {}",
            n, raw, wraps, instructions, expected, error
        );
    }
    let (_, empty) = icount::measure(|| ());
    println!("empty {}", empty);
    println!("worst_abs_error {}", worst);
    picocnn_qemu_tests::exit_success()
}
