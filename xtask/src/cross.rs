//! `cargo xtask cross`: the library on cores no firmware here runs on. It is built (no_std,
//! nothing linked) for the Cortex-M23 (`thumbv8m.base-none-eabi`, whose build must take the
//! Thumb-1 loops) and RV32IMAC, and tested on aarch64 Linux under `qemu-aarch64`: the kernel
//! and model tests, and every conformance case's digest against this host's.
//!
//! A step whose tools are missing is skipped with the reason, except under `CI=true`, where it
//! fails: CI installs them (`.ci/run`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::conformance::{self, HOST_ARENA};
use crate::machines::Run;
use crate::toolchain::{self, on_path};
use crate::{Opts, Totals};

/// A no_std target built without a firmware.
struct LibraryTarget {
    /// Rust target triple.
    triple: &'static str,
    /// The `arch` module whose int8 loops the build must hold.
    loops: &'static str,
}

/// The targets the library is built for here and nowhere else.
const LIBRARY_TARGETS: [LibraryTarget; 2] = [
    // Armv8-M Baseline: the Armv6-M instruction set and a few more, so the M0's loops.
    LibraryTarget {
        triple: "thumbv8m.base-none-eabi",
        loops: "cortex_m0",
    },
    LibraryTarget {
        triple: "riscv32imac-unknown-none-elf",
        loops: "portable",
    },
];

/// Each library target is built (release, as the firmware) with the default features, and
/// checked with these: they add derives and a serial loop, not code that optimisation or
/// inline assembly could break, and a check costs a third of a release build.
const FEATURE_SETS: [(&str, &str); 2] = [("build", ""), ("check", "embedded-io,defmt")];

const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// Every target this step builds for (each a folder under the host's target folder).
pub const TARGETS: [&str; 3] = [
    LIBRARY_TARGETS[0].triple,
    LIBRARY_TARGETS[1].triple,
    AARCH64,
];
/// The linker of the aarch64 tests (Debian's `gcc-aarch64-linux-gnu`).
const AARCH64_GCC: &str = "aarch64-linux-gnu-gcc";
/// The aarch64 C library `qemu-aarch64 -L` loads the tests against (`libc6-arm64-cross`).
const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// The tests of `src/ops`, `src/arch` and `src/model` that run on aarch64, with the library's
/// own unit tests: 6 to 17 s under QEMU here, after a clean build of about 260 CPU seconds.
/// Left out for time: `model_corruption` (70 s) and `learn` (340 s), and the training,
/// export, CLI and protocol tests, which do not reach the kernels by another path.
const AARCH64_TESTS: [&str; 6] = [
    "kernels",
    "model",
    "model_files",
    "robustness",
    "tflite_vectors",
    "layer",
];
/// The Debian packages of the aarch64 step.
const AARCH64_APT: &str = "qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross";

/// `cargo xtask cross`: every library build and test counted as cases.
pub fn run(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    for target in &LIBRARY_TARGETS {
        totals += build_library(opts, target);
    }
    totals += aarch64(opts);
    totals
}

/// Whether this is a CI run, where a missing tool is a failure.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A step that cannot run for want of a tool: skipped, or failed under CI.
fn missing(step: &str, why: &str) -> Totals {
    let mut t = Totals::default();
    if ci() {
        println!("cross {step}: FAIL (CI=true) {why}");
        t.failed = 1;
    } else {
        println!("cross {step}: skipped: {why}");
        t.skipped = 1;
    }
    t
}

/// Builds the library for `target` with each feature set; one case each.
fn build_library(opts: &Opts, target: &LibraryTarget) -> Totals {
    let label = |subcommand: &str, features: &str| {
        if features.is_empty() {
            format!("{subcommand} {}", target.triple)
        } else {
            format!("{subcommand} {} --features {features}", target.triple)
        }
    };
    let tc = match toolchain::for_library(opts.route, target.triple) {
        Ok(tc) => tc,
        Err(why) => {
            let mut t = Totals::default();
            for (subcommand, features) in FEATURE_SETS {
                t += missing(&label(subcommand, features), &why);
            }
            return t;
        }
    };
    let mut totals = Totals::default();
    for (subcommand, features) in FEATURE_SETS {
        let label = label(subcommand, features);
        let t = Instant::now();
        let result = tc
            .lib_command(subcommand, target.triple, features)
            .arg("--message-format=json-render-diagnostics")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))
            .and_then(|o| {
                if !o.status.success() {
                    return Err(format!("cargo exited with {}", o.status));
                }
                if subcommand != "build" {
                    return Ok("ok".to_string());
                }
                artifact_files(&String::from_utf8_lossy(&o.stdout), "picocnn")
                    .into_iter()
                    .find(|f| f.ends_with(".rlib"))
                    .ok_or_else(|| "cargo named no libpicocnn rlib".to_string())
                    .and_then(|rlib| holds_loops(&rlib, target.loops))
                    .map(|()| format!("the {} loops", target.loops))
            });
        match result {
            Ok(what) => {
                println!(
                    "cross {label}: {what} ({}; {:.1} s)",
                    tc.description,
                    t.elapsed().as_secs_f64()
                );
                totals.passed += 1;
            }
            Err(e) => {
                println!("cross {label}: FAIL {e}");
                totals.failed += 1;
            }
        }
    }
    totals
}

/// The files cargo's JSON messages name for the target `name` (a library's rlib and rmeta, a
/// binary's executable).
fn artifact_files(messages: &str, name: &str) -> Vec<String> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// Checks that the rlib holds the code of `arch::<module>::conv_general_i8` (its mangled
/// name, in either mangling, has the path's parts with their lengths).
fn holds_loops(rlib: &str, module: &str) -> Result<(), String> {
    let bytes = std::fs::read(rlib).map_err(|e| format!("{rlib}: {e}"))?;
    let needle = format!("{}{module}15conv_general_i8", module.len());
    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        Ok(())
    } else {
        Err(format!("{rlib} has no arch::{module}::conv_general_i8"))
    }
}

/// Why the aarch64 step cannot run here, if it cannot.
fn aarch64_missing() -> Option<String> {
    let mut why = Vec::new();
    if let Err(e) = toolchain::rustup_route(&[AARCH64]) {
        why.push(e);
    }
    for tool in [AARCH64_GCC, "qemu-aarch64"] {
        if !on_path(tool) {
            why.push(format!("no {tool}"));
        }
    }
    if !Path::new(AARCH64_SYSROOT).join("lib").is_dir() {
        why.push(format!("no {AARCH64_SYSROOT}/lib"));
    }
    (!why.is_empty()).then(|| {
        format!(
            "{} (apt-get install --no-install-recommends {AARCH64_APT}; rustup target add {AARCH64})",
            why.join(", ")
        )
    })
}

/// A cargo command for aarch64 whose binaries run under `qemu-aarch64`. Without debug info
/// (the kernel tests' binary is 2 MB instead of 45 MB); a failure still names its line.
fn aarch64_cargo(args: &[&str]) -> Command {
    let var = |what: &str| {
        format!(
            "CARGO_TARGET_{}_{what}",
            AARCH64.to_uppercase().replace('-', "_")
        )
    };
    let mut cmd = Command::new(crate::host_cargo());
    cmd.args(args)
        .args(["--target", AARCH64])
        .env(var("LINKER"), AARCH64_GCC)
        .env(var("RUNNER"), format!("qemu-aarch64 -L {AARCH64_SYSROOT}"))
        .env("CARGO_PROFILE_TEST_DEBUG", "0")
        .current_dir(crate::root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// The aarch64 tests and conformance digests; each test and each case is one case. The tests
/// run on QEMU's `max` core, which has the dot-product instructions; the kernel, vector and
/// model tests run again with `PICOCNN_NO_DOTPROD=1`, for the NEON loops a core without them
/// takes.
fn aarch64(opts: &Opts) -> Totals {
    if let Some(why) = aarch64_missing() {
        return missing("aarch64", &why);
    }
    let mut args = vec!["test", "--no-fail-fast", "--features", "std", "--lib"];
    for test in AARCH64_TESTS {
        args.extend(["--test", test]);
    }
    let what = format!("--lib, {}", AARCH64_TESTS.join(", "));
    let mut totals = aarch64_tests(opts, &args, &what, None);
    let neon = [
        "test",
        "--no-fail-fast",
        "--features",
        "std",
        "--test",
        "kernels",
        "--test",
        "tflite_vectors",
        "--test",
        "model",
    ];
    totals += aarch64_tests(
        opts,
        &neon,
        "kernels, tflite_vectors, model; PICOCNN_NO_DOTPROD=1",
        Some(("PICOCNN_NO_DOTPROD", "1")),
    );
    totals += aarch64_digests();
    totals
}

/// One cargo test run on aarch64, its tests counted as cases.
fn aarch64_tests(opts: &Opts, args: &[&str], what: &str, env: Option<(&str, &str)>) -> Totals {
    let t = Instant::now();
    let mut totals = Totals::default();
    let mut cmd = aarch64_cargo(args);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(o) => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            let counts = libtest_counts(&stdout);
            if opts.verbose || counts.failed > 0 || !o.status.success() {
                print!("{stdout}");
            }
            println!(
                "cross aarch64 tests ({what}): {} passed, {} failed, {} ignored ({:.1} s)",
                counts.passed,
                counts.failed,
                counts.skipped,
                t.elapsed().as_secs_f64()
            );
            totals += counts;
            if !o.status.success() && counts.failed == 0 {
                println!("cross aarch64 tests: FAIL cargo exited with {}", o.status);
                totals.failed += 1;
            }
        }
        Err(e) => {
            println!("cross aarch64 tests: FAIL cannot run cargo: {e}");
            totals.failed += 1;
        }
    }
    totals
}

/// Every conformance case's digest on aarch64 against this host's. Built with the tests'
/// profile and features (`--test kernels` brings picocnn's dev-dependencies' features), so it
/// links the library the tests built.
fn aarch64_digests() -> Totals {
    let tag = "cross aarch64 conformance";
    let t = Instant::now();
    let build = aarch64_cargo(&[
        "build",
        "--profile",
        "test",
        "-p",
        "picocnn",
        "-p",
        "picocnn-conformance",
        "--features",
        "picocnn/std",
        "--test",
        "kernels",
        "--example",
        "digests",
        "--message-format=json-render-diagnostics",
    ])
    .output()
    .map_err(|e| format!("cannot run cargo: {e}"))
    .and_then(|o| {
        let messages = String::from_utf8_lossy(&o.stdout);
        match artifact_files(&messages, "digests").first() {
            Some(exe) if o.status.success() => Ok(exe.clone()),
            _ => Err(format!(
                "building the digests example: cargo exited with {}",
                o.status
            )),
        }
    });
    let out = build.and_then(|exe| {
        Command::new("qemu-aarch64")
            .args(["-L", AARCH64_SYSROOT])
            .arg(&exe)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run qemu-aarch64: {e}"))
    });
    let mut totals = Totals::default();
    match out {
        Ok(o) => {
            let run = Run {
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                status: Some(o.status),
                secs: t.elapsed().as_secs_f64(),
            };
            let host = conformance::host_cases();
            let (passed, failed, skipped) = conformance::compare(tag, HOST_ARENA, &host, &run, 0);
            println!(
                "{tag}: {passed} passed, {failed} failed, {skipped} skipped ({:.1} s)",
                run.secs
            );
            totals.passed += passed;
            totals.failed += failed;
            totals.skipped += skipped;
        }
        Err(e) => {
            println!("{tag}: FAIL {e}");
            totals.failed += 1;
        }
    }
    totals
}

/// Sums libtest's `test result:` lines: passed, failed, and ignored as skipped.
fn libtest_counts(stdout: &str) -> Totals {
    let mut t = Totals::default();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test result: ") else {
            continue;
        };
        let counts = rest.split_once(". ").map_or("", |(_, c)| c);
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            match what {
                "passed" => t.passed += n,
                "failed" => t.failed += n,
                "ignored" => t.skipped += n,
                _ => {}
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_counts_add_up_over_binaries() {
        let out = "\
running 20 tests
test arch::portable::tests::taps_clip_to_input ... ok
test result: ok. 20 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.15s

test result: FAILED. 12 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.5s
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let t = libtest_counts(out);
        assert_eq!((t.passed, t.failed, t.skipped), (32, 2, 1));
        assert_eq!(libtest_counts("no tests here\n").passed, 0);
    }

    #[test]
    fn artifacts_are_found_among_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"half"},"filenames":["/t/libhalf-1.rlib"]}
{"reason":"compiler-artifact","target":{"name":"picocnn"},"filenames":["/t/libpicocnn-2.rlib","/t/libpicocnn-2.rmeta"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            artifact_files(messages, "picocnn"),
            ["/t/libpicocnn-2.rlib", "/t/libpicocnn-2.rmeta"]
        );
        assert!(artifact_files(messages, "digests").is_empty());
        assert!(artifact_files("not json", "picocnn").is_empty());
    }

    #[test]
    fn the_loops_are_found_by_their_mangled_path() {
        let dir = std::env::temp_dir().join(format!("xtask-cross-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rlib = dir.join("libpicocnn-x.rlib");
        std::fs::write(
            &rlib,
            b"..._RINvNtNtCs1_7picocnn4arch9cortex_m015conv_general_i8Kb0_...",
        )
        .unwrap();
        let rlib = rlib.to_string_lossy();
        assert!(holds_loops(&rlib, "cortex_m0").is_ok());
        assert!(holds_loops(&rlib, "portable").is_err());
        assert!(holds_loops("/nonexistent/libpicocnn.rlib", "portable").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
