//! `cargo xtask qemu`: the conformance firmware under QEMU, every case's digest against the
//! host's (`picocnn-conformance` run in this process).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::machines::{self, Machine, Run};
use crate::{Opts, Totals};

/// Arena the host hands to the conformance cases (the M4 firmware's size).
pub const HOST_ARENA: usize = 64 * 1024;

/// One case as the host computed it.
pub struct HostCase {
    name: String,
    digest: u32,
    arena_needed: usize,
}

/// Every case, run in this process.
pub fn host_cases() -> Vec<HostCase> {
    let mut arena = vec![0u8; HOST_ARENA];
    let mut cases = Vec::new();
    picocnn_conformance::run_all(&mut arena, &mut |o| {
        cases.push(HostCase {
            name: o.name.to_string(),
            digest: o.digest,
            arena_needed: o.arena_needed,
        })
    });
    cases
}

/// `cargo xtask qemu`: per machine, build, run, compare with the host; prints one summary
/// line per machine. The caller prints the total.
pub fn run(opts: &Opts) -> Totals {
    let host = host_cases();
    // A machine that cannot be run at all fails every case (and at least one).
    let all_failed = host.len().max(1);
    let mut totals = Totals::default();
    let fail_all = |totals: &mut Totals, down: &[&Machine], why: &str| {
        for m in down {
            println!("qemu {}: {why}", m.name);
            println!("qemu {}: 0 passed, {all_failed} failed", m.name);
            totals.failed += all_failed;
        }
    };
    let Some(tc) = machines::qemu_toolchain(opts) else {
        fail_all(&mut totals, &opts.machines, "not run (toolchain)");
        return totals;
    };
    for m in &opts.machines {
        let elf = match machines::build(&tc, m, "conformance") {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                fail_all(&mut totals, &[m], "firmware did not build");
                continue;
            }
        };
        let prefix = format!("[{}] ", m.name);
        let echo = opts.verbose.then_some(prefix.as_str());
        let timeout = Duration::from_secs(opts.timeout_s);
        let run = match machines::run_qemu(m, &elf, &[], timeout, echo) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask: {e}");
                fail_all(&mut totals, &[m], "QEMU did not run");
                continue;
            }
        };
        let tag = format!("qemu {}", m.name);
        let (passed, failed, skipped) = compare(&tag, m.arena, &host, &run, opts.timeout_s);
        println!(
            "qemu {}: {passed} passed, {failed} failed, {skipped} skipped ({} on {}, {:.1} s)",
            m.name, m.target, m.qemu_machine, run.secs
        );
        totals.passed += passed;
        totals.failed += failed;
        totals.skipped += skipped;
    }
    totals
}

/// Compares the `case` lines of a run (the firmware's, with `arena` bytes) with the host's
/// cases; prints each failure after `tag`.
pub fn compare(
    tag: &str,
    arena: usize,
    host: &[HostCase],
    run: &Run,
    timeout_s: u64,
) -> (usize, usize, usize) {
    let mut failed = 0;
    let mut firmware: BTreeMap<&str, (Option<u32>, &str)> = BTreeMap::new();
    let mut lines = 0usize;
    let mut done: Option<&str> = None;
    for line in run.stdout.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("case ") {
            lines += 1;
            let mut parts = rest.splitn(3, ' ');
            let name = parts.next().unwrap_or("");
            let digest = parts.next().and_then(|d| {
                (d.len() == 8)
                    .then(|| u32::from_str_radix(d, 16).ok())
                    .flatten()
            });
            let status = parts.next().unwrap_or("");
            if firmware.insert(name, (digest, status)).is_some() {
                println!("{tag}: FAIL {name}: reported twice");
                failed += 1;
            }
        } else if let Some(n) = line.strip_prefix("done ") {
            done = Some(n.trim());
        } else if !line.trim().is_empty() {
            // Anything else the firmware said (a panic message, say).
            println!("{tag}: firmware: {line}");
        }
    }
    let mut passed = 0;
    let mut skipped = 0;
    for h in host {
        match firmware.remove(h.name.as_str()) {
            None => {
                println!("{tag}: FAIL {}: missing from the firmware's output", h.name);
                failed += 1;
            }
            // A model larger than this machine's arena may be skipped, nothing else;
            // the micro:bit's firmware (its 11 KiB arena) leaves models out of its flash.
            Some((_, "skipped")) if h.arena_needed > arena => skipped += 1,
            Some((_, "absent")) if arena < 16 * 1024 => skipped += 1,
            Some((digest, status)) => {
                let digest_ok = digest == Some(h.digest);
                let status_ok = status == "ok" || status == "ran";
                if digest_ok && status_ok {
                    passed += 1;
                } else {
                    let fw = digest.map_or("(unreadable)".to_string(), |d| format!("{d:08x}"));
                    println!(
                        "{tag}: FAIL {}: firmware digest {fw} status {status}, host digest {:08x}",
                        h.name, h.digest
                    );
                    failed += 1;
                }
            }
        }
    }
    for name in firmware.keys() {
        println!("{tag}: FAIL {name}: reported by the firmware but not by the host");
        failed += 1;
    }
    match done {
        None => {
            println!("{tag}: FAIL no `done` line (the firmware stopped early)");
            failed += 1;
        }
        Some(n) if n.parse::<usize>().ok() != Some(lines) => {
            println!("{tag}: FAIL `done {n}` but {lines} case lines");
            failed += 1;
        }
        Some(_) => {}
    }
    match run.status {
        Some(s) if s.success() => {}
        Some(s) => {
            println!("{tag}: FAIL QEMU exited with {s}");
            failed += 1;
        }
        None => {
            println!("{tag}: FAIL QEMU killed after the {timeout_s} s timeout");
            failed += 1;
        }
    }
    if failed > 0 && !run.stderr.trim().is_empty() {
        for line in run.stderr.lines() {
            println!("{tag}: qemu stderr: {line}");
        }
    }
    (passed, failed, skipped)
}
