//! Prints every conformance case in the conformance firmware's lines
//! (`case <name> <digest> <status>`, then `done <n>`), so that `cargo xtask
//! cross` can hold a host of another architecture (aarch64 under
//! `qemu-aarch64`) to this one's digests, bit for bit.

use picocnn_conformance::Outcome;

/// The arena `cargo xtask qemu` gives the host's cases.
const ARENA: usize = 64 * 1024;

fn main() {
    let mut arena = vec![0u8; ARENA];
    let mut count = 0usize;
    picocnn_conformance::run_all(&mut arena, &mut |o: &Outcome<'_>| {
        count += 1;
        println!("case {} {:08x} {}", o.name, o.digest, status(o));
    });
    println!("done {count}");
}

/// The firmware's status word.
fn status(o: &Outcome<'_>) -> String {
    if o.skipped {
        return "skipped".to_string();
    }
    match (&o.error, o.matches_expected) {
        (Some(e), _) => format!("error:{e:?}"),
        (None, Some(true)) => "ok".to_string(),
        (None, Some(false)) => "mismatch".to_string(),
        (None, None) => "ran".to_string(),
    }
}
