//! Benchmarks under QEMU `-icount` (placeholder: filled in by the kernels work).
//! `picocnn_qemu_tests::icount::measure` counts the instructions of a closure.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use picocnn_qemu_tests::println;

#[entry]
fn main() -> ! {
    println!("bench placeholder");
    picocnn_qemu_tests::exit_success()
}
