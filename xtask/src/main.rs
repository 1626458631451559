//! Project automation: `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! One module per job; `machines` holds the QEMU machines, the firmware build and the one
//! QEMU command line, `toolchain` how the thumb and RISC-V targets get their `core`.
//! Uses std, `picocnn` (host predictions) and `picocnn-conformance` (the host's digests).

mod bench;
mod boards;
mod conformance;
mod cross;
mod fuzz;
mod host;
mod machines;
mod main_job;
mod mnist;
mod serial;
mod size;
mod teach;
mod test;
mod toolchain;

use std::ops::AddAssign;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

use machines::{Machine, MACHINES};
use toolchain::RoutePref;

/// Project automation for picocnn: tests, firmware runs under QEMU, board builds.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
    #[command(flatten)]
    args: Args,
}

/// The jobs, one module each.
#[derive(Subcommand)]
enum Task {
    /// Build the conformance firmware, run it under QEMU, compare with the host.
    Qemu,
    /// Check the firmware's size against boards/qemu/expected/size-interp-<machine>.txt.
    Size,
    /// Run a firmware binary under QEMU's `-icount shift=N`, print its output.
    BenchMcu,
    /// The trained int8 LeNet-5 over test digits under QEMU, against the host's predictions.
    Mnist,
    /// The serve firmware under QEMU on a pseudo-terminal: picocnn send, malformed frames.
    Serial,
    /// Cross-compile every board crate under boards/ and print its size.
    Boards,
    /// The library for the Cortex-M23 and RV32IMAC, and its kernel and model tests on aarch64
    /// under qemu-aarch64.
    Cross,
    /// Rewrite tests/models/*.pcnn (the blobs the firmware embeds) from their builders.
    BlessModels,
    /// Each libFuzzer target in fuzz/ over its committed corpus (needs a nightly toolchain;
    /// installs cargo-fuzz when missing).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// cargo fmt --check, clippy -D warnings, cargo test --workspace, then qemu --machine all,
    /// the board crates, cross and 20 seconds of each fuzz target.
    Test,
    /// The README's main job, written to target/main-job/.
    ///
    /// Train LeNet-5 on the shipped digits, quantize, evaluate float against int8, write the
    /// .pcnn and Rust source, run the int8 model under QEMU.
    MainJob,
}

/// Options every job accepts (each uses the ones it needs).
#[derive(clap::Args)]
struct Args {
    /// m4 = mps2-an386 (Cortex-M4F), m0 = microbit (Cortex-M0), m3, m7, m33, m55 (MPS2/MPS3
    /// Cortex-M), rv32 = virt (RV32IMC), m33dsp = mps2-an505 with the DSP loops.
    #[arg(long, global = true, value_enum, default_value_t = MachineArg::All)]
    machine: MachineArg,
    /// How to get `core` for the thumb targets [default: auto, or $PICOCNN_ROUTE].
    #[arg(long, global = true, value_enum)]
    route: Option<RoutePref>,
    /// Kill QEMU after this long.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// qemu: echo the firmware's output.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// size: rewrite the expected files.
    #[arg(long, global = true)]
    bless: bool,
    /// bench-mcu: the binary to run (icount-check checks the counter).
    #[arg(long, global = true, value_name = "NAME", default_value = "bench")]
    bin: String,
    /// bench-mcu, mnist: QEMU -icount shift.
    #[arg(long, global = true, value_name = "N", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    shift: u32,
    /// mnist: the int8 blob [default: tests/models/lenet5_mnist_i8_fused.pcnn].
    #[arg(long, global = true, value_name = "PATH")]
    model: Option<PathBuf>,
    /// boards: build only this board crate (its folder under boards/).
    #[arg(long, global = true, value_name = "DIR",
          value_parser = clap::builder::PossibleValuesParser::new(boards::BOARDS.map(|b| b.dir)))]
    board: Option<String>,
    /// mnist: how many test digits (the M0's flash holds about 150).
    #[arg(long, global = true, value_name = "N", default_value_t = 100, value_parser = positive)]
    digits: usize,
}

/// `--machine`.
#[derive(Clone, Copy, ValueEnum)]
enum MachineArg {
    M4,
    M0,
    M3,
    M7,
    M33,
    M55,
    Rv32,
    M33dsp,
    All,
}

fn positive(s: &str) -> Result<usize, String> {
    s.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "needs a positive number".to_string())
}

/// Options shared by the jobs.
pub struct Opts {
    /// The machines to run on.
    pub machines: Vec<&'static Machine>,
    /// How to build for the thumb targets.
    pub route: RoutePref,
    /// Seconds before QEMU is killed.
    pub timeout_s: u64,
    /// Echo the firmware's output.
    pub verbose: bool,
    /// Rewrite expected files instead of comparing.
    pub bless: bool,
    /// The firmware binary bench-mcu runs.
    pub bin: String,
    /// QEMU's `-icount shift`.
    pub shift: u32,
    /// The model blob mnist runs (its default when `None`).
    pub model: Option<PathBuf>,
    /// How many test digits.
    pub digits: usize,
    /// The one board crate `boards` builds (every one when `None`).
    pub board: Option<String>,
}

impl Args {
    fn into_opts(self) -> Result<Opts, String> {
        let route = match self.route {
            Some(r) => r,
            None => match std::env::var("PICOCNN_ROUTE") {
                Ok(v) if !v.is_empty() => RoutePref::parse(&v)?,
                _ => RoutePref::Auto,
            },
        };
        let machines = match self.machine {
            MachineArg::M4 => vec![machines::m4()],
            MachineArg::M0 => vec![machines::m0()],
            MachineArg::M3 => vec![&MACHINES[2]],
            MachineArg::M7 => vec![&MACHINES[3]],
            MachineArg::M33 => vec![&MACHINES[4]],
            MachineArg::M55 => vec![&MACHINES[5]],
            MachineArg::Rv32 => vec![&MACHINES[6]],
            MachineArg::M33dsp => vec![&MACHINES[7]],
            MachineArg::All => MACHINES.iter().collect(),
        };
        Ok(Opts {
            machines,
            route,
            timeout_s: self.timeout,
            verbose: self.verbose,
            bless: self.bless,
            bin: self.bin,
            shift: self.shift,
            model: self.model,
            digits: self.digits,
            board: self.board,
        })
    }
}

/// Counts of cases over all machines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases a machine may skip (a model larger than its arena).
    pub skipped: usize,
}

impl Totals {
    /// Nothing failed and something passed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }

    /// Prints the "N passed, N failed" summary line.
    fn print(&self) {
        println!("{} passed, {} failed", self.passed, self.failed);
    }

    /// Prints the summary line with the skipped cases.
    fn print_with_skipped(&self) {
        println!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
    }
}

impl AddAssign for Totals {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit with 1, as every failing job does.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let opts = match cli.args.into_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match cli.task {
        Task::Qemu => {
            let totals = conformance::run(&opts);
            totals.print_with_skipped();
            totals.ok()
        }
        Task::Size => size::run(&opts),
        Task::BenchMcu => bench::run(&opts),
        Task::Mnist => summary(mnist::run(&opts)),
        Task::Serial => summary(serial::run(&opts)),
        Task::Boards => summary(boards::run(&opts)),
        Task::Cross => {
            let totals = cross::run(&opts);
            totals.print_with_skipped();
            totals.ok()
        }
        Task::BlessModels => bless_models(),
        Task::Fuzz { seconds } => summary(fuzz::run(seconds)),
        Task::Test => test::run(&opts),
        Task::MainJob => main_job::run(&opts),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a job's summary line; true when it passed.
fn summary(totals: Totals) -> bool {
    totals.print();
    totals.ok()
}

/// Rewrites tests/models/*.pcnn from the builders in tests/models/mod.rs.
fn bless_models() -> bool {
    let status = Command::new(host_cargo())
        .args(["test", "--features", "std", "--test", "model_files"])
        .env("PICOCNN_BLESS", "1")
        .current_dir(root())
        .status();
    matches!(status, Ok(s) if s.success())
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

/// The workspace's target directory as cargo resolves it (`CARGO_TARGET_DIR`,
/// `build.target-dir` in a config, or `target/`): where `cargo build` puts the
/// `picocnn` command, and where the host jobs write their files.
pub fn host_target_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let mut cmd = Command::new(host_cargo());
        cmd.current_dir(root());
        metadata_target_dir(cmd).unwrap_or_else(|| root().join("target"))
    })
    .clone()
}

/// `target_directory` from `cargo metadata`, run as `cmd` (a cargo command
/// with its environment).
fn metadata_target_dir(mut cmd: Command) -> Option<PathBuf> {
    let out = cmd
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta["target_directory"].as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn opts(args: &[&str]) -> Result<Opts, String> {
        let cli =
            Cli::try_parse_from(["cargo xtask"].iter().chain(args)).map_err(|e| e.to_string())?;
        cli.args.into_opts()
    }

    #[test]
    fn the_target_directory_is_cargos() {
        let cargo = |dir: Option<&std::path::Path>| {
            let mut cmd = Command::new(host_cargo());
            cmd.current_dir(root());
            match dir {
                Some(d) => cmd.env("CARGO_TARGET_DIR", d),
                None => cmd.env_remove("CARGO_TARGET_DIR"),
            };
            metadata_target_dir(cmd)
        };
        let elsewhere = std::env::temp_dir().join("picocnn-target-elsewhere");
        assert_eq!(cargo(Some(&elsewhere)), Some(elsewhere));
        assert!(cargo(None).is_some(), "cargo metadata runs without it too");
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let o = opts(&["qemu"]).unwrap();
        let names: Vec<&str> = o.machines.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            ["m4", "m0", "m3", "m7", "m33", "m55", "rv32", "m33dsp"]
        );
        assert_eq!((o.timeout_s, o.shift, o.digits), (300, 7, 100));
        assert_eq!(o.bin, "bench");
        assert!(!o.verbose && !o.bless && o.model.is_none() && o.board.is_none());
    }

    #[test]
    fn options_after_the_job_in_both_spellings() {
        let o = opts(&[
            "mnist",
            "--machine=m0",
            "--shift",
            "10",
            "--digits=150",
            "--model",
            "x.pcnn",
            "-v",
            "--route",
            "debian",
        ])
        .unwrap();
        assert_eq!(o.machines.len(), 1);
        assert_eq!(o.machines[0].qemu_machine, "microbit");
        assert_eq!((o.shift, o.digits), (10, 150));
        assert_eq!(o.model, Some(PathBuf::from("x.pcnn")));
        assert!(o.verbose);
        assert_eq!(o.route, RoutePref::Debian);
        let o = opts(&["boards", "--board=pico2"]).unwrap();
        assert_eq!(o.board.as_deref(), Some("pico2"));
        let o = opts(&["qemu", "--machine", "rv32"]).unwrap();
        let m = o.machines[0];
        assert_eq!(
            (m.name, m.qemu, m.qemu_machine, m.target),
            (
                "rv32",
                "qemu-system-riscv32",
                "virt",
                "riscv32imc-unknown-none-elf"
            )
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["qemu", "--machine", "m9"][..],
            &["bench-mcu", "--shift", "11"],
            &["mnist", "--digits", "0"],
            &["boards", "--board", "pico3"],
            &["qemu", "--timeout", "soon"],
            &["qemu", "--frobnicate"],
            &["nosuch"],
            &[],
        ] {
            assert!(opts(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn totals_add_up() {
        let mut t = Totals {
            passed: 66,
            failed: 0,
            skipped: 0,
        };
        t += Totals {
            passed: 62,
            failed: 1,
            skipped: 4,
        };
        assert_eq!((t.passed, t.failed, t.skipped), (128, 1, 4));
        assert!(!t.ok());
        assert!(!Totals::default().ok());
    }
}
