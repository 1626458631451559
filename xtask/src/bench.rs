//! `cargo xtask bench-mcu`: a firmware binary under QEMU's `-icount`, its output printed as
//! it comes.

use std::time::Duration;

use crate::machines;
use crate::Opts;

/// `cargo xtask bench-mcu`: runs a firmware binary under `-icount shift=N` on each machine
/// and prints its output as it comes.
pub fn run(opts: &Opts) -> bool {
    let Some(tc) = machines::qemu_toolchain(opts) else {
        return false;
    };
    let mut ok = true;
    for m in &opts.machines {
        let elf = match machines::build(&tc, m, &opts.bin) {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let ns = 1u64 << opts.shift;
        println!(
            "== {} on {} ({}, {}): -icount shift={}: {} ns per instruction, the counter at {} MHz \
             counts {:.3} ticks per instruction",
            opts.bin,
            m.name,
            m.qemu_machine,
            m.target,
            opts.shift,
            ns,
            m.counter_hz / 1_000_000,
            ns as f64 * m.counter_hz as f64 / 1e9
        );
        let timeout = Duration::from_secs(opts.timeout_s);
        match machines::run_qemu(m, &elf, &machines::icount(opts.shift), timeout, Some("")) {
            Ok(run) => match run.status {
                Some(s) if s.success() => {
                    println!("== {} on {}: done in {:.1} s", opts.bin, m.name, run.secs)
                }
                other => {
                    ok = false;
                    let why = other.map_or_else(
                        || format!("killed after the {} s timeout", opts.timeout_s),
                        |s| format!("QEMU exited with {s}"),
                    );
                    println!("== {} on {}: FAILED: {why}", opts.bin, m.name);
                    for line in run.stderr.lines() {
                        println!("qemu stderr: {line}");
                    }
                }
            },
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
            }
        }
    }
    ok
}
