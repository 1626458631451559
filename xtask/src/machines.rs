//! The QEMU machines the firmware in `boards/qemu` runs on, building it for them, and the one
//! QEMU command line every job starts from (`qemu-system-arm`, `qemu-system-riscv32`).

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
    /// The QEMU program.
    pub qemu: &'static str,
    /// The Debian package that has it.
    pub qemu_package: &'static str,
    /// `-machine`.
    pub qemu_machine: &'static str,
    /// `-cpu`, when the machine's default is not the one we build for.
    pub cpu: Option<&'static str>,
    /// What the firmware's output and exit need: semihosting on Arm; on RISC-V no firmware
    /// below ours (`-bios none`), the UART on stdout.
    pub qemu_args: &'static [&'static str],
    /// Rust target triple.
    pub target: &'static str,
    /// Clock of the instruction counter in Hz under QEMU's `-icount` (SysTick's on Arm;
    /// `minstret` counts nanoseconds): see boards/qemu/src/icount.rs.
    pub counter_hz: u64,
    /// Arena of the conformance firmware (boards/qemu/src/lib.rs, ARENA_SIZE).
    pub arena: usize,
    /// Extra rustflags: the CPU when the target alone does not name it.
    pub rustflags: &'static str,
    /// Runs the `serve` firmware (`cargo xtask serial`: its defmt log is on semihosting).
    pub serves: bool,
    /// The machine whose firmware this one runs unchanged (same target and
    /// flags): `cargo xtask test` runs the conformance and int8 jobs on both,
    /// the longer serial and f16 jobs on that one only.
    pub code_of: Option<&'static str>,
}

/// Semihosting: the Arm firmware's output and exit status.
const SEMIHOSTING: &[&str] = &["-semihosting-config", "enable=on,target=native"];

/// The Cortex-M33 (Secure state) without DSP; `m33dsp` is built for the CPU.
const M33: Machine = Machine {
    name: "m33",
    qemu: "qemu-system-arm",
    qemu_package: "qemu-system-arm",
    qemu_machine: "mps2-an505",
    cpu: Some("cortex-m33"),
    qemu_args: SEMIHOSTING,
    target: "thumbv8m.main-none-eabihf",
    counter_hz: 20_000_000,
    arena: 64 * 1024,
    rustflags: "",
    serves: true,
    code_of: None,
};

/// m4 = mps2-an386 (Cortex-M4F), m0 = microbit (Cortex-M0), m3 = mps2-an385
/// (Cortex-M3, no DSP: the portable loops), m7 = mps2-an500 (Cortex-M7, the
/// DSP loops), m33 = mps2-an505 (Cortex-M33 without DSP, Secure state),
/// m55 = mps3-an547 (Cortex-M55, the DSP loops, Secure state), rv32 = virt
/// (RV32IMC, the ESP32-C3's class: the portable loops), m33dsp = mps2-an505
/// built for `target-cpu=cortex-m33` (the DSP loops, as on the RP2350).
/// an385, an386 and an500 share one memory map and UART.
pub static MACHINES: [Machine; 8] = [
    Machine {
        name: "m4",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        qemu_machine: "mps2-an386",
        cpu: Some("cortex-m4"),
        qemu_args: SEMIHOSTING,
        target: "thumbv7em-none-eabihf",
        counter_hz: 25_000_000,
        arena: 64 * 1024,
        rustflags: "",
        serves: true,
        code_of: None,
    },
    Machine {
        name: "m0",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        qemu_machine: "microbit",
        cpu: None,
        qemu_args: SEMIHOSTING,
        target: "thumbv6m-none-eabi",
        counter_hz: 16_000_000,
        arena: 11 * 1024,
        rustflags: "",
        serves: true,
        code_of: None,
    },
    Machine {
        name: "m3",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        qemu_machine: "mps2-an385",
        cpu: Some("cortex-m3"),
        qemu_args: SEMIHOSTING,
        target: "thumbv7m-none-eabi",
        counter_hz: 25_000_000,
        arena: 64 * 1024,
        rustflags: "",
        serves: true,
        code_of: None,
    },
    Machine {
        name: "m7",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        qemu_machine: "mps2-an500",
        cpu: Some("cortex-m7"),
        qemu_args: SEMIHOSTING,
        target: "thumbv7em-none-eabihf",
        counter_hz: 25_000_000,
        arena: 64 * 1024,
        rustflags: "",
        serves: true,
        code_of: Some("m4"),
    },
    M33,
    Machine {
        name: "m55",
        qemu: "qemu-system-arm",
        qemu_package: "qemu-system-arm",
        qemu_machine: "mps3-an547",
        cpu: Some("cortex-m55"),
        qemu_args: SEMIHOSTING,
        target: "thumbv8m.main-none-eabihf",
        counter_hz: 32_000_000,
        arena: 64 * 1024,
        rustflags: "-C target-cpu=cortex-m55",
        serves: true,
        code_of: None,
    },
    Machine {
        name: "rv32",
        qemu: "qemu-system-riscv32",
        qemu_package: "qemu-system-misc",
        qemu_machine: "virt",
        cpu: None,
        qemu_args: &["-bios", "none"],
        target: "riscv32imc-unknown-none-elf",
        counter_hz: 1_000_000_000,
        arena: 64 * 1024,
        rustflags: "",
        serves: false,
        code_of: None,
    },
    Machine {
        name: "m33dsp",
        rustflags: "-C target-cpu=cortex-m33",
        ..M33
    },
];

/// The Cortex-M4F machine.
pub fn m4() -> &'static Machine {
    &MACHINES[0]
}

/// The Cortex-M0 machine.
pub fn m0() -> &'static Machine {
    &MACHINES[1]
}

/// The firmware crate run under QEMU.
pub fn board_dir() -> PathBuf {
    crate::root().join("boards/qemu")
}

fn target_dir() -> PathBuf {
    board_dir().join("target")
}

/// The toolchain for every machine in `opts`; prints which one it is, or says on stderr why
/// there is none.
pub fn toolchain(opts: &Opts) -> Option<Toolchain> {
    report(choose_toolchain(opts))
}

/// [`toolchain`], after checking that each machine's QEMU is there: what every job that runs
/// firmware needs first.
pub fn qemu_toolchain(opts: &Opts) -> Option<Toolchain> {
    report(check_qemu(opts).and_then(|()| choose_toolchain(opts)))
}

fn choose_toolchain(opts: &Opts) -> Result<Toolchain, String> {
    let targets: Vec<&str> = opts.machines.iter().map(|m| m.target).collect();
    let tc = toolchain::choose(opts.route, &targets)?;
    println!("{}", tc.description);
    Ok(tc)
}

fn report(tc: Result<Toolchain, String>) -> Option<Toolchain> {
    tc.map_err(|e| eprintln!("xtask: {e}")).ok()
}

/// Fails with the package to install when a machine's QEMU is missing.
fn check_qemu(opts: &Opts) -> Result<(), String> {
    match opts.machines.iter().find(|m| !toolchain::on_path(m.qemu)) {
        None => Ok(()),
        Some(m) => Err(format!(
            "{} not found (machine {}): apt-get install --no-install-recommends {} \
             (all packages used here: {})",
            m.qemu,
            m.name,
            m.qemu_package,
            toolchain::APT_PACKAGES
        )),
    }
}

/// Builds `bin` for machine `m`; returns the ELF's path.
pub fn build(tc: &Toolchain, m: &Machine, bin: &str) -> Result<PathBuf, String> {
    build_with_env(tc, m, bin, &[])
}

/// Builds `bin` for machine `m` with extra environment variables (read by
/// the firmware's build script); returns the ELF's path.
pub fn build_with_env(
    tc: &Toolchain,
    m: &Machine,
    bin: &str,
    envs: &[(&str, String)],
) -> Result<PathBuf, String> {
    build_variant(tc, m, bin, envs, false)
}

/// Builds `bin` for machine `m` as a board would run an int8 model: without
/// the crate's default `float` feature, so no f16 or f32 kernel is linked.
pub fn build_int8_only(tc: &Toolchain, m: &Machine, bin: &str) -> Result<PathBuf, String> {
    build_variant(tc, m, bin, &[], true)
}

fn build_variant(
    tc: &Toolchain,
    m: &Machine,
    bin: &str,
    envs: &[(&str, String)],
    int8_only: bool,
) -> Result<PathBuf, String> {
    let t = Instant::now();
    // One target folder per target and CPU flags, shared by the machines and
    // feature sets built with them: a folder per machine and feature set took
    // 6 GB in all (each with its own copy of the host's proc macros). Cargo
    // does not tell builds apart by RUSTFLAGS when they remap paths, so the
    // flags name the folder. Switching machine or features within one folder
    // rebuilds only the crates that read the machine or the models.
    let variant = if int8_only {
        format!("{}-int8", m.name)
    } else {
        m.name.to_string()
    };
    let flags: String = m
        .rustflags
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("target-cpu="))
        .map(|cpu| format!("-{cpu}"))
        .collect();
    let dir = target_dir().join(format!("{}{flags}", m.target));
    let mut cmd = tc.build_command_with(&board_dir(), m.target, bin, &dir, m.rustflags);
    if int8_only {
        // As a board's build for its one model: no float kernel, and only
        // the kernels the model uses.
        cmd.arg("--no-default-features").env(
            "PICOCNN_MODELS",
            crate::root().join("tests/models/lenet5_mnist_i8_fused.pcnn"),
        );
    }
    if !int8_only && m.target == "thumbv6m-none-eabi" {
        // The micro:bit's 256 KiB of flash: no 16x8 kernels beside LeNet-5.
        cmd.args(["--no-default-features", "--features", "float"]);
    }
    cmd.env("PICOCNN_QEMU_MACHINE", m.name);
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
    // The next build for this target overwrites cargo's copy: keep one per variant.
    let built = dir.join(m.target).join("release").join(bin);
    let kept = target_dir().join("elf").join(&variant);
    let elf = kept.join(bin);
    std::fs::create_dir_all(&kept)
        .and_then(|()| std::fs::copy(&built, &elf))
        .map_err(|e| format!("copying {} to {}: {e}", built.display(), elf.display()))?;
    Ok(elf)
}

/// The machine's QEMU running `elf` (semihosting on Arm), `extra` before the kernel; stdin
/// closed, stdout and stderr piped.
pub fn qemu_command(m: &Machine, elf: &Path, extra: &[String]) -> Command {
    let mut cmd = Command::new(m.qemu);
    if let Some(cpu) = m.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args(["-machine", m.qemu_machine, "-nographic"])
        .args(m.qemu_args)
        .args(extra)
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `-icount shift=N`: one instruction every 2^N ns of virtual time.
pub fn icount(shift: u32) -> [String; 2] {
    ["-icount".to_string(), format!("shift={shift}")]
}

/// What a QEMU run produced.
pub struct Run {
    /// The firmware's output (semihosting stdout).
    pub stdout: String,
    /// QEMU's own messages.
    pub stderr: String,
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    /// Wall time of the run.
    pub secs: f64,
}

/// Runs `elf` on machine `m`, killing QEMU after `timeout`. With `echo`, the firmware's
/// output lines are printed as they come, prefixed with `prefix`.
pub fn run_qemu(
    m: &Machine,
    elf: &Path,
    extra: &[String],
    timeout: Duration,
    echo: Option<&str>,
) -> Result<Run, String> {
    let t = Instant::now();
    let mut child = qemu_command(m, elf, extra)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", m.qemu))?;
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
            Err(e) => return Err(format!("waiting for {}: {e}", m.qemu)),
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
