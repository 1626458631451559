//! Building the firmware in `boards/qemu` and running it under `qemu-system-arm`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::toolchain::{self, Toolchain};
use crate::Opts;

/// A QEMU machine the firmware runs on.
pub struct Machine {
    /// Short name used on the command line and in file names.
    pub name: &'static str,
    /// `qemu-system-arm -machine`.
    pub qemu_machine: &'static str,
    /// `qemu-system-arm -cpu`, when the machine's default is not the one we build for.
    pub cpu: Option<&'static str>,
    /// Rust target triple.
    pub target: &'static str,
    /// SysTick clock in Hz under QEMU (see boards/qemu/src/icount.rs).
    pub systick_hz: u64,
    /// Arena of the conformance firmware (boards/qemu/src/lib.rs, ARENA_SIZE).
    pub arena: usize,
}

pub static MACHINES: [Machine; 2] = [
    Machine {
        name: "m4",
        qemu_machine: "mps2-an386",
        cpu: Some("cortex-m4"),
        target: "thumbv7em-none-eabihf",
        systick_hz: 25_000_000,
        arena: 64 * 1024,
    },
    Machine {
        name: "m0",
        qemu_machine: "microbit",
        cpu: None,
        target: "thumbv6m-none-eabi",
        systick_hz: 16_000_000,
        arena: 8 * 1024,
    },
];

/// Arena the host hands to the conformance cases (the M4 firmware's size).
const HOST_ARENA: usize = 64 * 1024;

/// Counts over all machines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    /// Nothing failed and something passed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

fn board_dir() -> PathBuf {
    crate::root().join("boards/qemu")
}

fn target_dir() -> PathBuf {
    board_dir().join("target")
}

fn elf_path(m: &Machine, bin: &str) -> PathBuf {
    target_dir().join(m.target).join("release").join(bin)
}

fn choose_toolchain(opts: &Opts) -> Result<Toolchain, String> {
    let targets: Vec<&str> = opts.machines.iter().map(|m| m.target).collect();
    let tc = toolchain::choose(opts.route, &targets)?;
    println!("{}", tc.description);
    Ok(tc)
}

fn check_qemu() -> Result<(), String> {
    if toolchain::on_path("qemu-system-arm") {
        Ok(())
    } else {
        Err(format!(
            "qemu-system-arm not found: apt-get install --no-install-recommends qemu-system-arm \
             (all packages used here: {})",
            toolchain::APT_PACKAGES
        ))
    }
}

/// Builds `bin` for machine `m`; returns the ELF's path.
fn build(tc: &Toolchain, m: &Machine, bin: &str) -> Result<PathBuf, String> {
    build_with_env(tc, m, bin, &[])
}

/// Builds `bin` for machine `m` with extra environment variables (read by
/// the firmware's build script); returns the ELF's path.
fn build_with_env(
    tc: &Toolchain,
    m: &Machine,
    bin: &str,
    envs: &[(&str, String)],
) -> Result<PathBuf, String> {
    let t = Instant::now();
    let mut cmd = tc.build_command(&board_dir(), m.target, bin, &target_dir());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building {bin} for {} ({}) failed: {status}",
            m.name, m.target
        ));
    }
    eprintln!(
        "xtask: built {bin} for {} ({}) in {:.1} s",
        m.name,
        m.target,
        t.elapsed().as_secs_f64()
    );
    Ok(elf_path(m, bin))
}

/// The host's run of the `mnist` firmware's work: `(digits, correct, digest)`
/// of the first `n` test digits through `model` in the interpreter.
fn host_mnist(model: &Path, n: usize) -> Result<(usize, usize, u32), String> {
    use picocnn::model::{writer::AlignedBytes, Interpreter, Model};
    let bytes = std::fs::read(model).map_err(|e| format!("{}: {e}", model.display()))?;
    let blob = AlignedBytes::from(bytes);
    let model = Model::parse(blob.as_bytes()).map_err(|e| format!("{}: {e}", model.display()))?;
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).map_err(|e| e.to_string())?;
    let input = model.tensor(model.input(0).ok_or("model without input")?);
    let (scale, offset) = model.normalisation();
    let n = n.min(test.len());
    let (mut correct, mut digest) = (0usize, 0x811c_9dc5u32);
    fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
        (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
    }
    let e = |e: picocnn::Error| e.to_string();
    for i in 0..n {
        let real = |p: u8| p as f32 * scale + offset;
        let img = test.image(i);
        let best = match input.dtype {
            picocnn::model::DType::I8 => {
                let q = input.qparams.ok_or("int8 input without quantization")?;
                let x = it.input_mut::<i8>(0).map_err(e)?;
                x.iter_mut()
                    .zip(img)
                    .for_each(|(d, &p)| *d = q.quantize(real(p)));
                it.run().map_err(e)?;
                argmax(it.output::<i8>(0).map_err(e)?)
            }
            picocnn::model::DType::F16 => {
                let x = it.input_mut::<half::f16>(0).map_err(e)?;
                x.iter_mut()
                    .zip(img)
                    .for_each(|(d, &p)| *d = half::f16::from_f32(real(p)));
                it.run().map_err(e)?;
                argmax(it.output::<half::f16>(0).map_err(e)?)
            }
            picocnn::model::DType::F32 => {
                let x = it.input_mut::<f32>(0).map_err(e)?;
                x.iter_mut().zip(img).for_each(|(d, &p)| *d = real(p));
                it.run().map_err(e)?;
                argmax(it.output::<f32>(0).map_err(e)?)
            }
        };
        correct += (best == test.label(i)) as usize;
        digest = (digest ^ best as u32).wrapping_mul(0x0100_0193);
    }
    Ok((n, correct, digest))
}

/// `cargo xtask mnist`: the trained int8 LeNet-5 over the first test digits
/// on each machine, against the host's predictions from the same blob (one
/// case per machine: the number of digits, the correct ones and the digest
/// of the predictions must all be equal).
pub fn run_mnist(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    let model = opts
        .model
        .clone()
        .unwrap_or_else(|| crate::root().join("tests/models/lenet5_mnist_i8.pcnn"));
    let model = std::fs::canonicalize(&model).unwrap_or(model);
    let host = match host_mnist(&model, opts.digits) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("xtask: mnist on the host: {e}");
            totals.failed += opts.machines.len().max(1);
            return totals;
        }
    };
    println!(
        "mnist host: {} digits, {} correct ({:.2} %), digest {:08x} ({})",
        host.0,
        host.1,
        100.0 * host.1 as f64 / host.0.max(1) as f64,
        host.2,
        model.display()
    );
    let tc = match check_qemu().and_then(|()| choose_toolchain(opts)) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            totals.failed += opts.machines.len();
            return totals;
        }
    };
    let envs = [
        ("PICOCNN_MNIST_MODEL", model.display().to_string()),
        ("PICOCNN_MNIST_DIGITS", opts.digits.to_string()),
    ];
    for m in &opts.machines {
        let tag = format!("mnist {}", m.name);
        let elf = match build_with_env(&tc, m, "mnist", &envs) {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                println!("{tag}: FAIL firmware did not build");
                totals.failed += 1;
                continue;
            }
        };
        let extra = ["-icount".to_string(), format!("shift={}", opts.shift)];
        let run = match run_qemu(m, &elf, &extra, Duration::from_secs(opts.timeout_s), None) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask: {e}");
                println!("{tag}: FAIL QEMU did not run");
                totals.failed += 1;
                continue;
            }
        };
        let line = run
            .stdout
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("mnist "))
            .map(str::to_string);
        let fields: Vec<&str> = line.as_deref().unwrap_or("").split_whitespace().collect();
        let get = |k: &str| {
            fields
                .iter()
                .position(|f| *f == k)
                .and_then(|i| fields.get(i + 1))
                .copied()
        };
        let n = get("n").and_then(|v| v.parse::<usize>().ok());
        let correct = get("correct").and_then(|v| v.parse::<usize>().ok());
        let digest = get("digest").and_then(|v| u32::from_str_radix(v, 16).ok());
        let instructions = get("instructions").and_then(|v| v.parse::<u64>().ok());
        let exited = matches!(run.status, Some(s) if s.success());
        if exited && n == Some(host.0) && correct == Some(host.1) && digest == Some(host.2) {
            let per = instructions.unwrap_or(0) / host.0.max(1) as u64;
            println!(
                "{tag}: ok: {} digits, {} correct ({:.2} %), digest {:08x} = host's; \
                 {per} instructions per digit ({} on {}, {:.1} s)",
                host.0,
                host.1,
                100.0 * host.1 as f64 / host.0.max(1) as f64,
                host.2,
                m.target,
                m.qemu_machine,
                run.secs
            );
            totals.passed += 1;
        } else {
            println!(
                "{tag}: FAIL firmware said {:?} (QEMU {}), host: n {} correct {} digest {:08x}",
                line.unwrap_or_default(),
                run.status
                    .map_or("killed at the timeout".to_string(), |s| s.to_string()),
                host.0,
                host.1,
                host.2
            );
            for l in run.stderr.lines() {
                println!("{tag}: qemu stderr: {l}");
            }
            totals.failed += 1;
        }
    }
    totals
}

/// What a QEMU run produced.
struct Run {
    stdout: String,
    stderr: String,
    /// `None` when it was killed at the timeout.
    status: Option<ExitStatus>,
    secs: f64,
}

/// Runs `elf` on machine `m`, killing QEMU after `timeout`. With `echo`, the firmware's
/// output lines are printed as they come, prefixed with `prefix`.
fn run_qemu(
    m: &Machine,
    elf: &Path,
    extra: &[String],
    timeout: Duration,
    echo: Option<&str>,
) -> Result<Run, String> {
    let mut cmd = Command::new("qemu-system-arm");
    if let Some(cpu) = m.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args(["-machine", m.qemu_machine, "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(extra)
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-arm: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let prefix = echo.map(str::to_string);
    let out_thread = std::thread::spawn(move || {
        let mut all = String::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let text = String::from_utf8_lossy(&line);
            if let Some(p) = &prefix {
                print!("{p}{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
            all.push_str(&text);
            line.clear();
        }
        all
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = t + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for qemu-system-arm: {e}")),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Run {
        stdout,
        stderr,
        status,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// One case as the host computed it.
struct HostCase {
    name: String,
    digest: u32,
    arena_needed: usize,
}

fn host_cases() -> Vec<HostCase> {
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
pub fn run_conformance(opts: &Opts) -> Totals {
    let host = host_cases();
    // A machine that cannot be run at all fails every case (and at least one).
    let all_failed = host.len().max(1);
    let mut totals = Totals::default();
    let fail_all = |totals: &mut Totals, machines: &[&Machine], why: &str| {
        for m in machines {
            println!("qemu {}: {why}", m.name);
            println!("qemu {}: 0 passed, {all_failed} failed", m.name);
            totals.failed += all_failed;
        }
    };
    let tc = match check_qemu().and_then(|()| choose_toolchain(opts)) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            fail_all(&mut totals, &opts.machines, "not run (toolchain)");
            return totals;
        }
    };
    for m in &opts.machines {
        let elf = match build(&tc, m, "conformance") {
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
        let run = match run_qemu(m, &elf, &[], timeout, echo) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask: {e}");
                fail_all(&mut totals, &[m], "QEMU did not run");
                continue;
            }
        };
        let (passed, failed, skipped) = compare(m, &host, &run, opts.timeout_s);
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

/// Compares the firmware's `case` lines with the host's cases; prints each failure.
fn compare(m: &Machine, host: &[HostCase], run: &Run, timeout_s: u64) -> (usize, usize, usize) {
    let tag = format!("qemu {}", m.name);
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
            // A model larger than this machine's arena may be skipped, nothing else.
            Some((_, "skipped")) if h.arena_needed > m.arena => skipped += 1,
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

/// `cargo xtask size`: `arm-none-eabi-size` of the conformance firmware against
/// `boards/qemu/expected/size-<machine>.txt` (rewritten with `--bless`).
/// Bytes a section may differ from the expected file between checkouts.
const SIZE_SLACK: u64 = 64;

pub fn size(opts: &Opts) -> bool {
    if !toolchain::on_path("arm-none-eabi-size") {
        eprintln!(
            "xtask: arm-none-eabi-size not found: apt-get install --no-install-recommends \
             binutils-arm-none-eabi"
        );
        return false;
    }
    let tc = match choose_toolchain(opts) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    let mut ok = true;
    for m in &opts.machines {
        let elf = match build(&tc, m, "interp") {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let got = match measure_size(&elf) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let file = board_dir()
            .join("expected")
            .join(format!("size-interp-{}.txt", m.name));
        let rel = format!("boards/qemu/expected/size-interp-{}.txt", m.name);
        let toolchain_line = format!(
            "# Built by the {}",
            tc.description.trim_start_matches("toolchain: ")
        );
        if opts.bless {
            let text = format!(
                "# arm-none-eabi-size of the interpreter firmware (boards/qemu/src/bin/interp.rs:\n\
                 # every op and precision linked, two models in flash) for {} ({}, {}), in bytes.\n\
                 {toolchain_line}\n\
                 # Sizes depend on the compiler. Regenerate: cargo xtask size --bless\n\
                 text {}\ndata {}\nbss {}\n",
                m.name,
                m.qemu_machine,
                m.target,
                got[0],
                got[1],
                got[2]
            );
            if let Err(e) = std::fs::create_dir_all(file.parent().expect("has a parent"))
                .and_then(|()| std::fs::write(&file, text))
            {
                eprintln!("xtask: cannot write {rel}: {e}");
                ok = false;
                continue;
            }
            println!(
                "size {}: text {} data {} bss {} (written to {rel})",
                m.name, got[0], got[1], got[2]
            );
            continue;
        }
        let expected = match std::fs::read_to_string(&file) {
            Ok(text) if !text.lines().any(|l| l == toolchain_line) => {
                let made = text
                    .lines()
                    .find(|l| l.starts_with("# Built by the "))
                    .unwrap_or("# (unknown)");
                println!(
                    "size {}: text {} data {} bss {}; {rel} was made {}, not with this toolchain: not compared",
                    m.name,
                    got[0],
                    got[1],
                    got[2],
                    made.trim_start_matches("# ").to_lowercase()
                );
                continue;
            }
            Ok(text) => parse_expected(&text),
            Err(e) => {
                println!(
                    "size {}: text {} data {} bss {}; cannot read {rel} ({e}): run `cargo xtask size --bless`",
                    m.name, got[0], got[1], got[2]
                );
                ok = false;
                continue;
            }
        };
        let Some(expected) = expected else {
            println!(
                "size {}: {rel} is malformed: run `cargo xtask size --bless`",
                m.name
            );
            ok = false;
            continue;
        };
        // Cargo's per-package hash includes the checkout's path, which moves
        // symbols by a few bytes; only a larger change is a change.
        let within = (0..3).all(|i| got[i].abs_diff(expected[i]) <= SIZE_SLACK);
        if within {
            println!(
                "size {}: text {} data {} bss {} (as expected, within {SIZE_SLACK} bytes)",
                m.name, got[0], got[1], got[2]
            );
        } else {
            ok = false;
            let names = ["text", "data", "bss"];
            let diffs: Vec<String> = (0..3)
                .filter(|&i| expected[i] != got[i])
                .map(|i| {
                    format!(
                        "{} {} -> {} ({:+})",
                        names[i],
                        expected[i],
                        got[i],
                        got[i] as i64 - expected[i] as i64
                    )
                })
                .collect();
            println!(
                "size {}: CHANGED {}; if intended, run `cargo xtask size --bless`",
                m.name,
                diffs.join(", ")
            );
        }
    }
    ok
}

/// text, data and bss of an ELF, from `arm-none-eabi-size -B`.
fn measure_size(elf: &Path) -> Result<[u64; 3], String> {
    let out = Command::new("arm-none-eabi-size")
        .arg("-B")
        .arg(elf)
        .output()
        .map_err(|e| format!("cannot run arm-none-eabi-size: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "arm-none-eabi-size failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = text
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .take(3)
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [t, d, b] => Ok([t, d, b]),
        _ => Err(format!("unexpected arm-none-eabi-size output: {text}")),
    }
}

fn parse_expected(text: &str) -> Option<[u64; 3]> {
    let mut v = [None; 3];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace)?;
        let i = ["text", "data", "bss"].iter().position(|k| *k == key)?;
        v[i] = Some(value.trim().parse().ok()?);
    }
    Some([v[0]?, v[1]?, v[2]?])
}

/// `cargo xtask bench-mcu`: runs a firmware binary under `-icount shift=N` on each machine
/// and prints its output as it comes.
pub fn bench(opts: &Opts) -> bool {
    let tc = match check_qemu().and_then(|()| choose_toolchain(opts)) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    let mut ok = true;
    for m in &opts.machines {
        let elf = match build(&tc, m, &opts.bin) {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let ns = 1u64 << opts.shift;
        println!(
            "== {} on {} ({}, {}): -icount shift={}: {} ns per instruction, SysTick at {} MHz \
             counts {:.3} ticks per instruction",
            opts.bin,
            m.name,
            m.qemu_machine,
            m.target,
            opts.shift,
            ns,
            m.systick_hz / 1_000_000,
            ns as f64 * m.systick_hz as f64 / 1e9
        );
        let extra = ["-icount".to_string(), format!("shift={}", opts.shift)];
        let timeout = Duration::from_secs(opts.timeout_s);
        match run_qemu(m, &elf, &extra, timeout, Some("")) {
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

/// `cargo xtask serial`: the `serve` firmware under QEMU with its UART on a
/// pseudo-terminal; `picocnn send` classifies test digits through it and the
/// answers must equal the host's; malformed frames get their error replies
/// and the firmware goes on serving.
pub fn run_serial(opts: &Opts) -> Totals {
    use picocnn::protocol::{encode, Kind, Status, CRC_LEN, HEADER_LEN, REQUEST_MAGIC};
    let mut totals = Totals::default();
    let n = opts.digits.min(2000);
    let fail = |totals: &mut Totals, tag: &str, why: &str| {
        println!("{tag}: FAIL {why}");
        totals.failed += 1;
    };
    // The digits as PNG files, and the host's answers through the same server code.
    let dir = crate::root().join("target/serial-digits");
    let model_path = crate::root().join("tests/models/lenet5_mnist_i8.pcnn");
    let prepared = (|| -> Result<(Vec<PathBuf>, Vec<u8>), String> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (_, test) = picocnn::data::load_mnist(crate::root().join("data/mnist"))
            .map_err(|e| e.to_string())?;
        let blob = picocnn::model::writer::AlignedBytes::from(
            std::fs::read(&model_path).map_err(|e| e.to_string())?,
        );
        let model = picocnn::model::Model::parse(blob.as_bytes()).map_err(|e| e.to_string())?;
        let mut arena = vec![0u8; model.arena_len()];
        let mut server =
            picocnn::protocol::Server::new(&model, &mut arena).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        let mut classes = Vec::new();
        for i in 0..n {
            let path = dir.join(format!("{i:04}.png"));
            let f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 28, 28);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .and_then(|mut w| w.write_image_data(test.image(i)))
                .map_err(|e| e.to_string())?;
            files.push(path);
            classes.push(
                server
                    .classify(test.image(i))
                    .map_err(|e| e.to_string())?
                    .class,
            );
        }
        Ok((files, classes))
    })();
    let (files, host) = match prepared {
        Ok(p) => p,
        Err(e) => {
            fail(&mut totals, "serial", &format!("preparing the digits: {e}"));
            return totals;
        }
    };
    let status = Command::new(crate::host_cargo())
        .args([
            "build",
            "--quiet",
            "--release",
            "--features",
            "cli",
            "--bin",
            "picocnn",
        ])
        .current_dir(crate::root())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        fail(&mut totals, "serial", "the picocnn command did not build");
        return totals;
    }
    let picocnn = crate::root().join("target/release/picocnn");
    let tc = match check_qemu().and_then(|()| choose_toolchain(opts)) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            totals.failed += opts.machines.len();
            return totals;
        }
    };
    for m in &opts.machines {
        let tag = format!("serial {}", m.name);
        let elf = match build(&tc, m, "serve") {
            Ok(elf) => elf,
            Err(e) => {
                fail(&mut totals, &tag, &e);
                continue;
            }
        };
        let mut cmd = Command::new("qemu-system-arm");
        if let Some(cpu) = m.cpu {
            cmd.args(["-cpu", cpu]);
        }
        let mut child = match cmd
            .args(["-machine", m.qemu_machine, "-nographic", "-monitor", "none"])
            .args([
                "-semihosting-config",
                "enable=on,target=native",
                "-serial",
                "pty",
            ])
            .arg("-kernel")
            .arg(&elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                fail(
                    &mut totals,
                    &tag,
                    &format!("cannot run qemu-system-arm: {e}"),
                );
                continue;
            }
        };
        // QEMU's own lines (the pseudo-terminal's name, warnings) and the
        // firmware's defmt log (stdout, over semihosting; decoded with the
        // ELF's table) arrive as lines on one channel.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("piped");
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let elf_bytes = std::fs::read(&elf).unwrap_or_default();
        std::thread::spawn(move || decode_defmt(&elf_bytes, stdout, &tx));
        let mut log = QemuLog {
            rx,
            lines: Vec::new(),
            pty: None,
        };
        log.wait(Duration::from_secs(20), |l| {
            l.pty.is_some() && l.any(|m| m.starts_with("picocnn: "))
        });
        let Some(pty) = log
            .pty
            .clone()
            .filter(|_| log.any(|m| m.starts_with("picocnn: ")))
        else {
            fail(
                &mut totals,
                &tag,
                &format!(
                    "the firmware did not come up on a pseudo-terminal; its log: {}",
                    log.lines.join(" | ")
                ),
            );
            let _ = child.kill();
            let _ = child.wait();
            continue;
        };
        // 0. With no host yet, the demo: its first digit is test digit 0.
        let demo_line = format!("demo digit 0: class {} (", host[0]);
        log.wait(Duration::from_secs(20), |l| {
            l.any(|m| m.starts_with("demo digit 0:"))
        });
        if log.any(|m| m.starts_with(&demo_line)) {
            println!(
                "{tag}: ok: defmt log decoded ({}), demo digit 0 classified as the host does",
                log.lines[0]
            );
            totals.passed += 1;
        } else {
            fail(
                &mut totals,
                &tag,
                &format!(
                    "no `{demo_line}...` line in the decoded log: {}",
                    log.lines.join(" | ")
                ),
            );
        }
        // 1. The digits through `picocnn send`.
        let t = Instant::now();
        let out = Command::new(&picocnn)
            .args(["send", "--port", &pty, "--timeout", "10"])
            .args(&files)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let got: Vec<Option<u8>> = text
                    .lines()
                    .map(|l| {
                        l.rsplit_once(": ")
                            .and_then(|(_, r)| r.split_whitespace().next())
                            .and_then(|c| c.parse().ok())
                    })
                    .collect();
                let same =
                    got.len() == host.len() && got.iter().zip(&host).all(|(g, h)| *g == Some(*h));
                if same {
                    println!(
                        "{tag}: ok: {} digits sent with picocnn send, every answer equal to the host's ({:.1} s)",
                        host.len(),
                        t.elapsed().as_secs_f64()
                    );
                    totals.passed += 1;
                } else {
                    fail(
                        &mut totals,
                        &tag,
                        &format!("answers differ from the host's:\n{text}"),
                    );
                }
            }
            Ok(o) => fail(
                &mut totals,
                &tag,
                &format!(
                    "picocnn send: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => fail(&mut totals, &tag, &format!("cannot run picocnn send: {e}")),
        }
        // 2. Malformed frames, each with its error reply, then a valid one.
        let checks = (|| -> Result<usize, String> {
            let mut port = serialport::new(&pty, 115_200)
                .timeout(Duration::from_millis(50))
                .open()
                .map_err(|e| format!("{pty}: {e}"))?;
            let frame = |kind: u8, payload: &[u8]| {
                let mut f = vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
                let _ = encode(REQUEST_MAGIC, kind, payload, &mut f);
                f
            };
            let (_, test) = picocnn::data::load_mnist(crate::root().join("data/mnist"))
                .map_err(|e| e.to_string())?;
            let mut bad_crc = frame(Kind::Classify as u8, test.image(0));
            bad_crc[200] ^= 0x40;
            let wait = Duration::from_secs(10);
            let cases: [(&str, Vec<u8>, Status); 5] = [
                ("bad CRC", bad_crc, Status::BadCrc),
                (
                    "wrong size",
                    frame(Kind::Classify as u8, &[0u8; 100]),
                    Status::WrongSize,
                ),
                ("unknown kind", frame(9, &[1, 2, 3]), Status::UnknownKind),
                (
                    "cut-off frame",
                    frame(Kind::Classify as u8, test.image(0))[..50].to_vec(),
                    Status::Timeout,
                ),
                (
                    "valid frame",
                    frame(Kind::Classify as u8, test.image(0)),
                    Status::Ok,
                ),
            ];
            let mut ok = 0;
            let mut client = picocnn::protocol::Client::new(port.as_mut(), wait);
            for (what, bytes, want) in cases {
                let picocnn::protocol::Reply { status, payload } = client
                    .exchange(&bytes)
                    .map_err(|e| format!("{what}: {e}"))?;
                if status != want as u8 {
                    return Err(format!("{what}: status {status}, expected {}", want as u8));
                }
                if want == Status::Ok && payload.first() != Some(&host[0]) {
                    return Err(format!(
                        "{what}: class {:?}, host {}",
                        payload.first(),
                        host[0]
                    ));
                }
                ok += 1;
            }
            Ok(ok)
        })();
        match checks {
            Ok(k) => {
                println!("{tag}: ok: {k} malformed and valid frames answered as they should be");
                totals.passed += 1;
            }
            Err(e) => fail(&mut totals, &tag, &e),
        }
        // 3. The log saw the host arrive and the cut-off frame.
        let want = ["host connected", "frame cut short"];
        log.wait(Duration::from_secs(5), |l| {
            want.iter().all(|w| l.any(|m| m.contains(w)))
        });
        match want.iter().find(|w| !log.any(|m| m.contains(*w))) {
            None => {
                println!(
                    "{tag}: ok: the log reports the host and the cut-off frame ({} lines)",
                    log.lines.len()
                );
                totals.passed += 1;
            }
            Some(w) => fail(
                &mut totals,
                &tag,
                &format!("no `{w}` in the decoded log: {}", log.lines.join(" | ")),
            ),
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    totals
}

/// Marks a decoded defmt message among QEMU's own lines.
const DEFMT_PREFIX: &str = "defmt: ";

/// What a QEMU run has said so far: its pseudo-terminal and the firmware's
/// decoded defmt messages.
struct QemuLog {
    rx: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
    pty: Option<String>,
}

impl QemuLog {
    /// Takes in lines until `done` holds or `timeout` has passed.
    fn wait(&mut self, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) && start.elapsed() < timeout {
            let Ok(line) = self.rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if let Some(message) = line.strip_prefix(DEFMT_PREFIX) {
                self.lines.push(message.to_string());
            } else if let Some(at) = line.find("/dev/pts/") {
                let rest = &line[at..];
                self.pty = Some(rest.split_whitespace().next().unwrap_or(rest).to_string());
            }
        }
    }

    /// Whether a message satisfies `f`.
    fn any(&self, f: impl Fn(&str) -> bool) -> bool {
        self.lines.iter().any(|m| f(m))
    }
}

/// Decodes the defmt frames `elf`'s firmware writes to `stream` and sends
/// each message (prefixed with [`DEFMT_PREFIX`]) to `tx`, until the stream ends.
fn decode_defmt(elf: &[u8], mut stream: impl Read, tx: &std::sync::mpsc::Sender<String>) {
    use defmt_decoder::{DecodeError, Table};
    let table = match Table::parse(elf) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let _ = tx.send(format!("{DEFMT_PREFIX}(the ELF has no defmt table)"));
            return;
        }
        Err(e) => {
            let _ = tx.send(format!(
                "{DEFMT_PREFIX}(the defmt table does not parse: {e})"
            ));
            return;
        }
    };
    let mut decoder = table.new_stream_decoder();
    let mut buf = [0u8; 256];
    // QEMU's own text lines (the pseudo-terminal's name) come first, on the
    // same stdout.
    let mut head = Vec::new();
    let mut in_head = true;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut bytes = &buf[..n];
        while in_head {
            head.extend_from_slice(bytes);
            bytes = &[];
            const QEMU_LINE: &[u8] = b"char device redirected to ";
            let k = head.len().min(QEMU_LINE.len());
            if head[..k] != QEMU_LINE[..k] {
                in_head = false;
                decoder.received(&head);
            } else if let Some(end) = head.iter().position(|&b| b == b'\n') {
                let _ = tx.send(String::from_utf8_lossy(&head[..end]).into_owned());
                head.drain(..=end);
            } else {
                break;
            }
        }
        decoder.received(bytes);
        loop {
            match decoder.decode() {
                Ok(frame) => {
                    let _ = tx.send(format!("{DEFMT_PREFIX}{}", frame.display_message()));
                }
                Err(DecodeError::UnexpectedEof) => break,
                // rzCOBS frames resynchronise at the next frame.
                Err(DecodeError::Malformed) => {
                    let _ = tx.send(format!("{DEFMT_PREFIX}(malformed defmt frame)"));
                }
            }
        }
    }
}

/// Board crates under `boards/`: (folder, target, binary, linker).
pub const BOARDS: [(&str, &str, &str, &str); 5] = [
    (
        "stm32f4-disco",
        "thumbv7em-none-eabihf",
        "picocnn-stm32f4-disco",
        "arm-none-eabi-ld",
    ),
    (
        "pico",
        "thumbv6m-none-eabi",
        "picocnn-pico",
        "arm-none-eabi-ld",
    ),
    (
        "nrf52840-dk",
        "thumbv7em-none-eabihf",
        "picocnn-nrf52840-dk",
        "arm-none-eabi-ld",
    ),
    (
        "microbit-v2",
        "thumbv7em-none-eabihf",
        "picocnn-microbit-v2",
        "arm-none-eabi-ld",
    ),
    (
        "esp32c3",
        "riscv32imc-unknown-none-elf",
        "picocnn-esp32c3",
        "riscv64-unknown-elf-ld",
    ),
];

/// `cargo xtask boards`: cross-compiles every board crate and prints its
/// size (one case per board).
pub fn build_boards(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    let mut targets: Vec<&str> = BOARDS.iter().map(|b| b.1).collect();
    targets.sort_unstable();
    targets.dedup();
    let tc = match toolchain::choose(opts.route, &targets) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            totals.failed += BOARDS.len();
            return totals;
        }
    };
    for (dir, target, bin, linker) in BOARDS {
        // The ARM boards fall back to rust-lld when GNU ld is missing
        // (rustup route); the ESP32-C3's link needs GNU ld's 32-bit RISC-V
        // emulation.
        if !target.starts_with("thumb") && !toolchain::on_path(linker) {
            println!(
                "board {dir}: FAIL {linker} not found: apt-get install --no-install-recommends \
                 binutils-riscv64-unknown-elf"
            );
            totals.failed += 1;
            continue;
        }
        let path = crate::root().join("boards").join(dir);
        let t = Instant::now();
        let status = tc
            .build_command(&path, target, bin, &path.join("target"))
            .status();
        let elf = path.join("target").join(target).join("release").join(bin);
        match status {
            Ok(s) if s.success() => {
                let size = measure_size(&elf)
                    .map(|s| format!("text {} data {} bss {}", s[0], s[1], s[2]))
                    .unwrap_or_else(|e| e);
                println!(
                    "board {dir}: built for {target} in {:.1} s: {size}",
                    t.elapsed().as_secs_f64()
                );
                totals.passed += 1;
            }
            other => {
                println!("board {dir}: FAIL build: {other:?}");
                totals.failed += 1;
            }
        }
    }
    totals
}
