//! Project automation: `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Commands:
//! - `qemu [--machine m4|m0|all]`: builds the conformance firmware, runs it under QEMU and
//!   compares every case's digest with the host's.
//! - `size [--machine ...] [--bless]`: sizes of the conformance firmware against
//!   `boards/qemu/expected/size-<machine>.txt`.
//! - `bench-mcu [--machine ...] [--bin bench] [--shift 7]`: runs a firmware binary under
//!   `qemu-system-arm -icount shift=N` and prints its output.
//! - `test`: fmt, clippy, host tests, then `qemu --machine all`.
//! - `main-job`: the README's main job (train, quantize, evaluate, export, run under QEMU).
//!
//! - `mnist [--machine ...] [--model PATH] [--digits N]`: a trained int8 LeNet-5 over test
//!   digits on each machine against the host's predictions.
//! - `serial [--machine ...] [--digits N]`: the `serve` firmware with its UART on a
//!   pseudo-terminal; `picocnn send` and malformed frames against it.
//!
//! Uses std, `picocnn` (host predictions) and `picocnn-conformance` (the host's digests).

mod qemu;
mod toolchain;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use toolchain::RoutePref;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  qemu       build the conformance firmware, run it under QEMU, compare with the host
  size       check the firmware's size against boards/qemu/expected/size-<machine>.txt
  bench-mcu  run a firmware binary under `qemu-system-arm -icount shift=N`, print its output
  mnist      the trained int8 LeNet-5 over test digits under QEMU, against the host's predictions
  serial     the serve firmware under QEMU on a pseudo-terminal: picocnn send, malformed frames
  boards     cross-compile every board crate under boards/ and print its size
  bless-models  rewrite tests/models/*.pcnn (the blobs the firmware embeds) from their builders
  test       cargo fmt --check, clippy -D warnings, cargo test --workspace, then qemu --machine all
  main-job   train LeNet-5 on the shipped digits, quantize, evaluate float against int8, write
             the .pcnn and Rust source, run the int8 model under QEMU (target/main-job/)

options:
  --machine m4|m0|all   m4 = mps2-an386 (Cortex-M4F), m0 = microbit (Cortex-M0); default all
  --route auto|rustup|debian
                        how to get `core` for the thumb targets (default auto, or $PICOCNN_ROUTE)
  --timeout SECONDS     kill QEMU after this long (default 300)
  --verbose             qemu: echo the firmware's output
  --bless               size: rewrite the expected files
  --bin NAME            bench-mcu: the binary to run (default bench; icount-check checks the counter)
  --shift N             bench-mcu, mnist: QEMU -icount shift (default 7)
  --model PATH          mnist: the int8 blob (default tests/models/lenet5_mnist_i8.pcnn)
  --digits N            mnist: how many test digits (default 100; the M0's flash holds about 150)
";

/// Options shared by the commands.
pub struct Opts {
    pub machines: Vec<&'static qemu::Machine>,
    pub route: RoutePref,
    pub timeout_s: u64,
    pub verbose: bool,
    pub bless: bool,
    pub bin: String,
    pub shift: u32,
    pub model: Option<PathBuf>,
    pub digits: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let opts = match parse_opts(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match cmd.as_str() {
        "qemu" => {
            let totals = qemu::run_conformance(&opts);
            println!(
                "{} passed, {} failed, {} skipped",
                totals.passed, totals.failed, totals.skipped
            );
            totals.ok()
        }
        "size" => qemu::size(&opts),
        "boards" => {
            let totals = qemu::build_boards(&opts);
            println!("{} passed, {} failed", totals.passed, totals.failed);
            totals.ok()
        }
        "serial" => {
            let totals = qemu::run_serial(&opts);
            println!("{} passed, {} failed", totals.passed, totals.failed);
            totals.ok()
        }
        "mnist" => {
            let totals = qemu::run_mnist(&opts);
            println!("{} passed, {} failed", totals.passed, totals.failed);
            totals.ok()
        }
        "bench-mcu" => qemu::bench(&opts),
        "bless-models" => {
            // Rewrites tests/models/*.pcnn from the builders in tests/models/mod.rs.
            let status = std::process::Command::new(host_cargo())
                .args(["test", "--features", "std", "--test", "model_files"])
                .env("PICOCNN_BLESS", "1")
                .current_dir(root())
                .status();
            matches!(status, Ok(s) if s.success())
        }
        "test" => test(&opts),
        "main-job" => main_job(&opts),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            true
        }
        other => {
            eprintln!("error: unknown command `{other}`\n\n{USAGE}");
            false
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        machines: qemu::MACHINES.iter().collect(),
        route: match std::env::var("PICOCNN_ROUTE") {
            Ok(v) if !v.is_empty() => RoutePref::parse(&v)?,
            _ => RoutePref::Auto,
        },
        timeout_s: 300,
        verbose: false,
        bless: false,
        bin: "bench".to_string(),
        shift: 7,
        model: None,
        digits: 100,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key {
            "--machine" => {
                let v = value("--machine")?;
                opts.machines = match v.as_str() {
                    "all" => qemu::MACHINES.iter().collect(),
                    name => vec![qemu::MACHINES
                        .iter()
                        .find(|m| m.name == name)
                        .ok_or_else(|| format!("unknown machine `{name}` (m4, m0 or all)"))?],
                };
            }
            "--route" => opts.route = RoutePref::parse(&value("--route")?)?,
            "--timeout" => {
                opts.timeout_s = value("--timeout")?
                    .parse()
                    .map_err(|_| "--timeout needs a number of seconds".to_string())?
            }
            "--bin" => opts.bin = value("--bin")?,
            "--shift" => {
                opts.shift = value("--shift")?
                    .parse()
                    .ok()
                    .filter(|s| *s <= 10)
                    .ok_or_else(|| "--shift needs a number from 0 to 10".to_string())?
            }
            "--model" => opts.model = Some(PathBuf::from(value("--model")?)),
            "--digits" => {
                opts.digits = value("--digits")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "--digits needs a positive number".to_string())?
            }
            "--verbose" | "-v" => opts.verbose = true,
            "--bless" => opts.bless = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(opts)
}

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// The cargo that runs this xtask (rustup's, normally).
pub fn host_cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// `cargo xtask test`: the project's one test command. Stops at the first failing step.
fn test(opts: &Opts) -> bool {
    let root = root();
    let cargo = host_cargo();
    let mut steps: Vec<(String, Vec<&str>)> = vec![(
        "cargo fmt --all -- --check".into(),
        vec!["fmt", "--all", "--", "--check"],
    )];
    // Every firmware crate is a workspace of its own.
    let manifests: Vec<String> = ["qemu", "firmware"]
        .into_iter()
        .chain(qemu::BOARDS.iter().map(|b| b.0))
        .map(|dir| format!("boards/{dir}/Cargo.toml"))
        .collect();
    for m in &manifests {
        steps.push((
            format!("cargo fmt --manifest-path {m} -- --check"),
            vec!["fmt", "--manifest-path", m, "--", "--check"],
        ));
    }
    for (label, args) in [
        (
            "cargo clippy --workspace --all-targets --all-features -- -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ][..],
        ),
        (
            "cargo rustdoc -p picocnn --all-features -- -D warnings",
            &[
                "rustdoc",
                "-p",
                "picocnn",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "cargo test --workspace --all-features",
            &["test", "--workspace", "--all-features"],
        ),
    ] {
        steps.push((label.into(), args.to_vec()));
    }
    let all = Instant::now();
    for (label, args) in &steps {
        eprintln!("== {label}");
        let t = Instant::now();
        let status = Command::new(&cargo).args(args).current_dir(&root).status();
        let secs = t.elapsed().as_secs_f64();
        match status {
            Ok(s) if s.success() => eprintln!("== {label}: ok ({secs:.1} s)"),
            Ok(s) => {
                eprintln!("== {label}: FAILED ({s}, {secs:.1} s)");
                return false;
            }
            Err(e) => {
                eprintln!("== {label}: could not run {cargo}: {e}");
                return false;
            }
        }
    }
    eprintln!("== cargo xtask qemu --machine all");
    let t = Instant::now();
    let all_machines = Opts {
        machines: qemu::MACHINES.iter().collect(),
        route: opts.route,
        timeout_s: opts.timeout_s,
        verbose: opts.verbose,
        bless: false,
        bin: String::new(),
        shift: opts.shift,
        model: opts.model.clone(),
        digits: opts.digits,
    };
    eprintln!("== cargo xtask size");
    if !qemu::size(&all_machines) {
        eprintln!("== cargo xtask size: FAILED");
        println!("0 passed, 1 failed");
        return false;
    }
    let mut totals = qemu::run_conformance(&all_machines);
    eprintln!("== cargo xtask mnist --machine all");
    let mnist = qemu::run_mnist(&all_machines);
    totals.passed += mnist.passed;
    totals.failed += mnist.failed;
    // The f16 model on the M4F (20 digits: f16 runs at about 20 million
    // instructions a digit under QEMU).
    let f16 = Opts {
        machines: vec![&qemu::MACHINES[0]],
        model: Some(root.join("tests/models/lenet5_mnist_f16.pcnn")),
        digits: 20,
        bin: String::new(),
        ..all_machines
    };
    let mnist = qemu::run_mnist(&f16);
    totals.passed += mnist.passed;
    totals.failed += mnist.failed;
    eprintln!("== cargo xtask serial --machine all");
    let serial = qemu::run_serial(&Opts {
        machines: qemu::MACHINES.iter().collect(),
        digits: 100,
        model: None,
        bin: String::new(),
        ..f16
    });
    totals.passed += serial.passed;
    totals.failed += serial.failed;
    eprintln!("== cargo xtask boards");
    let boards = qemu::build_boards(opts);
    totals.passed += boards.passed;
    totals.failed += boards.failed;
    eprintln!(
        "== cargo xtask qemu --machine all: {} ({:.1} s; all steps {:.1} s)",
        if totals.ok() { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64(),
        all.elapsed().as_secs_f64()
    );
    println!(
        "{} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.skipped
    );
    totals.ok()
}

/// `picocnn eval --json` of `model`: (accuracy, arena bytes, model bytes).
fn eval_json(bin: &std::path::Path, model: &std::path::Path) -> Result<(f64, u64, u64), String> {
    let out = Command::new(bin)
        .args(["eval", "--data", "data/mnist", "--json", "--model"])
        .arg(model)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run picocnn: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // A flat JSON object: pick the three numbers without a JSON parser.
    let num = |key: &str| -> Result<f64, String> {
        let at = text
            .find(&format!("\"{key}\":"))
            .ok_or_else(|| format!("eval output without {key}: {text}"))?;
        let rest = &text[at + key.len() + 3..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end]
            .trim()
            .parse()
            .map_err(|_| format!("eval output: bad {key}: {text}"))
    };
    Ok((
        num("accuracy")?,
        num("arena_bytes")? as u64,
        num("model_bytes")? as u64,
    ))
}

/// The README's main job.
fn main_job(opts: &Opts) -> bool {
    let all = Instant::now();
    let dir = root().join("target/main-job");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("main-job: {}: {e}", dir.display());
        return false;
    }
    let run = |label: &str, cmd: &mut Command| -> bool {
        eprintln!("== {label}");
        match cmd.current_dir(root()).status() {
            Ok(s) if s.success() => true,
            Ok(s) => {
                eprintln!("== {label}: FAILED ({s})");
                false
            }
            Err(e) => {
                eprintln!("== {label}: could not run: {e}");
                false
            }
        }
    };
    if !run(
        "cargo build --release --features cli",
        Command::new(host_cargo()).args([
            "build",
            "--release",
            "--features",
            "cli",
            "--bin",
            "picocnn",
        ]),
    ) {
        return false;
    }
    let bin = root().join("target/release/picocnn");
    let ckpt = dir.join("lenet5.safetensors");
    let t = Instant::now();
    if !run(
        "train LeNet-5 with augmentation (30 epochs)",
        Command::new(&bin)
            .args([
                "train",
                "--model",
                "lenet5",
                "--data",
                "data/mnist",
                "--epochs",
                "30",
            ])
            .args([
                "--optimizer",
                "adamw",
                "--weight-decay",
                "1e-4",
                "--schedule",
                "cosine",
            ])
            .args([
                "--label-smoothing",
                "0.1",
                "--augment",
                "digits",
                "--seed",
                "1",
            ])
            .arg("--log")
            .arg(dir.join("lenet5.jsonl"))
            .arg("--plot")
            .arg(dir.join("lenet5.png"))
            .arg("--out")
            .arg(&ckpt),
    ) {
        return false;
    }
    let train_s = t.elapsed().as_secs_f64();
    let int8 = dir.join("lenet5.pcnn");
    let float = dir.join("lenet5_f32.pcnn");
    let rust = dir.join("lenet5_model.rs");
    let half = dir.join("lenet5_f16.pcnn");
    for (precision, out, rust) in [
        ("int8", &int8, Some(&rust)),
        ("f32", &float, None),
        ("f16", &half, None),
    ] {
        let mut cmd = Command::new(&bin);
        cmd.args([
            "export",
            "--data",
            "data/mnist",
            "--precision",
            precision,
            "--model",
        ])
        .arg(&ckpt)
        .arg("--out")
        .arg(out);
        if let Some(r) = rust {
            cmd.arg("--rust").arg(r);
        }
        if !run(&format!("export {precision}"), &mut cmd) {
            return false;
        }
    }
    let (f, i) = match (eval_json(&bin, &float), eval_json(&bin, &int8)) {
        (Ok(f), Ok(i)) => (f, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("== evaluate: FAILED: {e}");
            return false;
        }
    };
    let mut device = Vec::new();
    let mut ok = true;
    if toolchain::on_path("qemu-system-arm") {
        for (m, digits, model) in [
            (&qemu::MACHINES[0], 2000, &int8),
            (&qemu::MACHINES[1], 150, &int8),
            (&qemu::MACHINES[0], 200, &half),
        ] {
            let o = Opts {
                machines: vec![m],
                route: opts.route,
                timeout_s: opts.timeout_s,
                verbose: false,
                bless: false,
                bin: String::new(),
                shift: opts.shift,
                model: Some(model.clone()),
                digits,
            };
            let precision = if model == &half { "f16" } else { "int8" };
            eprintln!(
                "== the {precision} model on {} under QEMU ({digits} digits)",
                m.name
            );
            let totals = qemu::run_mnist(&o);
            ok &= totals.ok();
            device.push(format!(
                "{precision} on {} ({}): {digits} test digits, predictions {} the host's",
                m.name,
                m.qemu_machine,
                if totals.ok() {
                    "identical to"
                } else {
                    "DIFFERENT from"
                }
            ));
        }
    } else {
        device.push(
            "QEMU is not installed here: the device run was skipped \
             (apt-get install qemu-system-arm binutils-arm-none-eabi, or bash .ci/run)"
                .to_string(),
        );
    }
    println!();
    println!(
        "main job (target/main-job/), {:.0} s:",
        all.elapsed().as_secs_f64()
    );
    println!(
        "  trained LeNet-5 with augmentation in {train_s:.0} s (lenet5.safetensors, lenet5.png)"
    );
    println!(
        "  float (f32 blob): {:.2} % on the 2,000 test digits, {} bytes, arena {} bytes",
        100.0 * f.0,
        f.2,
        f.1
    );
    println!(
        "  int8 (post-training quantization): {:.2} % ({:+.2} points), {} bytes, arena {} bytes",
        100.0 * i.0,
        100.0 * (i.0 - f.0),
        i.2,
        i.1
    );
    println!(
        "  wrote lenet5.pcnn and lenet5_model.rs (ARENA_LEN = {})",
        i.1
    );
    for d in &device {
        println!("  {d}");
    }
    ok
}
