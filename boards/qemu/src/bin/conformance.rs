//! Runs every conformance case of `picocnn-conformance` on the target and prints one line per
//! case over semihosting, for `cargo xtask qemu` to compare with the host's digests:
//!
//! ```text
//! case <name> <digest, 8 lowercase hex digits> <ok | mismatch | ran | skipped | absent | error:<Debug of the error>>
//! done <number of cases>
//! ```
//!
//! `skipped`: the arena is too small for the model; `absent`: the model is left
//! out of this firmware (the micro:bit's flash).
#![no_std]
#![no_main]

use picocnn_conformance::Outcome;
use picocnn_qemu_tests::entry;
use picocnn_qemu_tests::{println, StaticArena, ARENA_SIZE};

static ARENA: StaticArena<ARENA_SIZE> = StaticArena::new();

#[entry]
fn main() -> ! {
    let arena = ARENA.take().unwrap();
    let mut count: u32 = 0;
    picocnn_conformance::run_all(arena, &mut |o: &Outcome<'_>| {
        count += 1;
        if o.skipped {
            // A model left out of this firmware's flash needs no arena.
            let why = if o.arena_needed == usize::MAX {
                "absent"
            } else {
                "skipped"
            };
            println!("case {} {:08x} {why}", o.name, o.digest);
            return;
        }
        match (&o.error, o.matches_expected) {
            (Some(e), _) => println!("case {} {:08x} error:{:?}", o.name, o.digest, e),
            (None, Some(true)) => println!("case {} {:08x} ok", o.name, o.digest),
            (None, Some(false)) => println!("case {} {:08x} mismatch", o.name, o.digest),
            (None, None) => println!("case {} {:08x} ran", o.name, o.digest),
        }
    });
    println!("done {}", count);
    picocnn_qemu_tests::exit_success()
}
