//! `cargo xtask test`: the project's one test command. The cargo steps stop at the first
//! failure; then the firmware jobs and the cross builds and aarch64 tests, whose cases add up
//! to one "N passed, N failed" line.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::machines::MACHINES;
use crate::{boards, conformance, cross, fuzz, mnist, serial, size, Opts};

/// Runs every step; true when all passed.
pub fn run(opts: &Opts) -> bool {
    let all = Instant::now();
    for (label, args) in cargo_steps() {
        if !cargo_step(&label, &args, None) {
            return false;
        }
    }
    // The library built for the int8 LeNet-5 alone: the other kernels are
    // left out and models that need them refused by name.
    let lenet = crate::root().join("tests/models/lenet5_mnist_i8_fused.pcnn");
    let pruned = ["test", "--all-features", "--test", "pruned"].map(String::from);
    if !cargo_step(
        "PICOCNN_MODELS=tests/models/lenet5_mnist_i8_fused.pcnn cargo test --test pruned",
        &pruned,
        Some(("PICOCNN_MODELS", lenet.as_os_str())),
    ) {
        return false;
    }
    // The portable loops on a CPU whose SIMD loops the step above took.
    let portable = [
        "test",
        "--features",
        "std",
        "--lib",
        "--test",
        "kernels",
        "--test",
        "tflite_vectors",
        "--test",
        "fuse",
    ]
    .map(String::from);
    if !cargo_step(
        "PICOCNN_PORTABLE=1 cargo test --lib --test kernels --test tflite_vectors --test fuse",
        &portable,
        Some(("PICOCNN_PORTABLE", std::ffi::OsStr::new("1"))),
    ) {
        return false;
    }
    // And the AVX2 loops on a CPU that also has AVX-512 VNNI.
    if !cargo_step(
        "PICOCNN_NO_AVX512=1 cargo test --lib --test kernels --test tflite_vectors --test fuse",
        &portable,
        Some(("PICOCNN_NO_AVX512", std::ffi::OsStr::new("1"))),
    ) {
        return false;
    }
    // Only the cross step's build scripts come back to the host's debug build.
    let host = crate::host_target_dir();
    free(&host.join("debug"));
    eprintln!("== cargo xtask qemu --machine all");
    let t = Instant::now();
    let all_machines = Opts {
        machines: MACHINES.iter().collect(),
        route: opts.route,
        timeout_s: opts.timeout_s,
        verbose: opts.verbose,
        bless: false,
        bin: String::new(),
        shift: opts.shift,
        model: opts.model.clone(),
        digits: opts.digits,
        board: None,
    };
    eprintln!("== cargo xtask size");
    if !size::run(&all_machines) {
        eprintln!("== cargo xtask size: FAILED");
        println!("0 passed, 1 failed");
        return false;
    }
    let mut totals = conformance::run(&all_machines);
    eprintln!("== cargo xtask mnist --machine all");
    totals += mnist::run(&all_machines);
    // The f16 model on the cores whose FPU converts half precision (20
    // digits: about 5 million instructions a digit).
    let f16 = Opts {
        machines: MACHINES
            .iter()
            .filter(|m| m.target.ends_with("eabihf") && m.code_of.is_none())
            .collect(),
        model: Some(crate::root().join("tests/models/lenet5_mnist_f16.pcnn")),
        digits: 20,
        bin: String::new(),
        ..all_machines
    };
    totals += mnist::run(&f16);
    eprintln!("== cargo xtask serial --machine all");
    totals += serial::run(&Opts {
        machines: MACHINES
            .iter()
            .filter(|m| m.serves && m.code_of.is_none())
            .collect(),
        digits: 100,
        model: None,
        bin: String::new(),
        ..f16
    });
    free(&crate::root().join("boards/qemu/target"));
    free(&host.join("release"));
    eprintln!("== cargo xtask boards");
    totals += boards::run(opts);
    free(&crate::root().join("boards/target"));
    eprintln!("== cargo xtask cross");
    let t_cross = Instant::now();
    totals += cross::run(opts);
    for t in cross::TARGETS {
        free(&host.join(t));
    }
    eprintln!(
        "== cargo xtask cross: {:.1} s",
        t_cross.elapsed().as_secs_f64()
    );
    eprintln!("== cargo xtask fuzz --seconds 20");
    let t_fuzz = Instant::now();
    totals += fuzz::run(20);
    eprintln!(
        "== cargo xtask fuzz: {:.1} s",
        t_fuzz.elapsed().as_secs_f64()
    );
    eprintln!(
        "== cargo xtask qemu --machine all: {} ({:.1} s; all steps {:.1} s)",
        if totals.ok() { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64(),
        all.elapsed().as_secs_f64()
    );
    totals.print_with_skipped();
    totals.ok()
}

/// On CI (`CI` set), removes a build folder that no later step needs: the
/// steps' builds together outgrow a small runner's disk.
fn free(dir: &Path) {
    if std::env::var_os("CI").is_none() || !dir.exists() {
        return;
    }
    let bytes = size_of(dir);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => eprintln!(
            "== removed {} ({} MB; CI is set)",
            dir.display(),
            bytes >> 20
        ),
        Err(e) => eprintln!("== could not remove {}: {e}", dir.display()),
    }
}

/// Bytes in the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// fmt (the library and every firmware crate, each a workspace of its own), clippy, rustdoc
/// and the host tests: (label, cargo's arguments).
fn cargo_steps() -> Vec<(String, Vec<String>)> {
    let step = |args: &[&str]| {
        let label = format!("cargo {}", args.join(" "));
        (label, args.iter().map(|a| a.to_string()).collect())
    };
    let mut steps = vec![step(&["fmt", "--all", "--", "--check"])];
    let manifests = ["qemu", "firmware"]
        .into_iter()
        .chain(crate::boards::BOARDS.iter().map(|b| b.dir))
        .map(|dir| format!("boards/{dir}/Cargo.toml"));
    for m in manifests {
        steps.push(step(&["fmt", "--manifest-path", &m, "--", "--check"]));
    }
    steps.extend([
        step(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
        step(&[
            "rustdoc",
            "-p",
            "picocnn",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
        step(&["test", "--workspace", "--all-features"]),
    ]);
    steps
}

/// Runs one cargo step in the repository root, reporting it on stderr.
fn cargo_step(label: &str, args: &[String], env: Option<(&str, &std::ffi::OsStr)>) -> bool {
    let cargo = crate::host_cargo();
    eprintln!("== {label}");
    let t = Instant::now();
    let mut cmd = Command::new(&cargo);
    cmd.args(args).current_dir(crate::root());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let status = cmd.status();
    let secs = t.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {
            eprintln!("== {label}: ok ({secs:.1} s)");
            true
        }
        Ok(s) => {
            eprintln!("== {label}: FAILED ({s}, {secs:.1} s)");
            false
        }
        Err(e) => {
            eprintln!("== {label}: could not run {cargo}: {e}");
            false
        }
    }
}
