//! `cargo xtask fuzz`: each libFuzzer target in `fuzz/` for a while, over its
//! committed corpus (`fuzz/corpus/<target>`, read only; new inputs go under
//! the target directory). Needs a nightly toolchain and `cargo-fuzz`
//! (installed when missing); without a nightly the targets are skipped, and
//! the summary says so.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Totals;

/// The targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 5] = ["parse_run", "serial", "loaders", "augment_text", "import"];

/// Runs every target for `seconds`; a crash fails it.
pub fn run(seconds: u64) -> Totals {
    let skipped = Totals {
        passed: 0,
        failed: 0,
        skipped: TARGETS.len(),
    };
    if !succeeds(nightly(&["rustc", "--version"])) {
        eprintln!("fuzz: skipped: no nightly toolchain (`rustup toolchain install nightly`)");
        return skipped;
    }
    if !succeeds(nightly(&["cargo", "fuzz", "--version"])) {
        eprintln!("fuzz: installing cargo-fuzz");
        let mut install = Command::new(crate::host_cargo());
        install.args(["install", "cargo-fuzz", "--locked"]);
        if !succeeds(install) {
            eprintln!("fuzz: skipped: cargo-fuzz could not be installed");
            return skipped;
        }
    }
    let t = Instant::now();
    if !succeeds(nightly(&["cargo", "fuzz", "build"])) {
        println!("fuzz: FAIL the targets do not build");
        return Totals {
            passed: 0,
            failed: TARGETS.len(),
            skipped: 0,
        };
    }
    eprintln!("fuzz: built in {:.1} s", t.elapsed().as_secs_f64());
    let mut totals = Totals::default();
    for target in TARGETS {
        match run_one(target, seconds) {
            Ok(report) => {
                println!("fuzz {target}: ok: {report}");
                totals.passed += 1;
            }
            Err(why) => {
                println!("fuzz {target}: FAIL {why}");
                totals.failed += 1;
            }
        }
    }
    totals
}

/// One target for `seconds`: its executions and coverage, or why it failed.
fn run_one(target: &str, seconds: u64) -> Result<String, String> {
    let work = crate::host_target_dir().join("fuzz-corpus").join(target);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let seeds = crate::root().join("fuzz/corpus").join(target);
    let time = format!("-max_total_time={seconds}");
    // Model blobs are larger.
    let max_len = match target {
        "parse_run" => 65_536,
        "import" => 131_072,
        _ => 4096,
    };
    let max_len = format!("-max_len={max_len}");
    let mut cmd = nightly(&["cargo", "fuzz", "run", target]);
    cmd.arg(&work).arg(&seeds);
    if target == "parse_run" {
        // The committed models seed it too (those above the length limit
        // are cut, and fail early).
        cmd.arg(crate::root().join("tests/models"));
    }
    if target == "import" {
        // So do the importers' TensorFlow Lite and ONNX test models.
        cmd.arg(crate::root().join("tests/models/tflite"));
        cmd.arg(crate::root().join("tests/models/onnx"));
    }
    cmd.args(["--", &time, &max_len, "-print_final_stats=1"])
        .stdout(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{}\n{}", out.status, tail.join("\n")));
    }
    let executions = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let coverage = log
        .lines()
        .filter_map(|l| l.split_once(" cov: "))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    Ok(format!(
        "{executions} executions in {seconds} s, no crash; coverage {coverage} edges"
    ))
}

/// The number after `key` in libFuzzer's final statistics.
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// `args` run with the nightly toolchain, from the repository root.
fn nightly(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly"])
        .args(args)
        .current_dir(crate::root())
        .stdin(Stdio::null());
    cmd
}

fn succeeds(mut cmd: Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzers_statistics() {
        let log = "#1 INITED cov: 12 ft: 3\n#900 DONE   cov: 976 ft: 1337 corp: 126/40Kb\n\
                   stat::number_of_executed_units: 39493\nstat::average_exec_per_sec:     1880\n";
        assert_eq!(stat(log, "stat::number_of_executed_units:"), Some(39493));
        assert_eq!(stat(log, "stat::peak_rss_mb:"), None);
    }

    #[test]
    fn every_target_is_declared() {
        let manifest = std::fs::read_to_string(crate::root().join("fuzz/Cargo.toml")).unwrap();
        for t in TARGETS {
            assert!(manifest.contains(&format!("name = \"{t}\"")), "{t}");
            assert!(
                crate::root().join(format!("fuzz/corpus/{t}")).is_dir(),
                "{t}"
            );
        }
    }
}
