//! Picks how to build the firmware (thumb and RISC-V targets).
//!
//! 1. rustup: the thumb targets' prebuilt `core` is installed (or `rustup target add`
//!    installs it): plain `cargo build --release --target <t>`.
//! 2. debian: Debian's Rust (`rustc-web cargo-web rust-web-src`) ships the library source, so
//!    `/usr/bin/cargo -Zbuild-std=core` with `RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1` builds
//!    `core` itself (about 40 s per target the first time, cached after).
//!
//! A target rustup has no prebuilt `core` for (`thumbv8m.base-none-eabi`) builds it from
//! rustup's nightly with `rust-src` (`rustup run nightly cargo -Zbuild-std=core`) before
//! falling back to Debian's Rust: [`for_library`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian packages everything here needs.
pub const APT_PACKAGES: &str = "rustc-web cargo-web rust-web-src binutils-arm-none-eabi \
     binutils-riscv64-unknown-elf qemu-system-arm qemu-system-misc";

const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// The rustup toolchain that builds `core` from source.
pub const NIGHTLY: &str = "nightly";
/// How long `rustup target add` may take before we give up on it (it hangs without network).
const RUSTUP_ADD_TIMEOUT: Duration = Duration::from_secs(120);

/// Which route the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoutePref {
    /// rustup when it works, else Debian's Rust.
    Auto,
    /// Prebuilt `core` from rustup.
    Rustup,
    /// Debian's Rust with `-Zbuild-std=core`.
    Debian,
}

impl RoutePref {
    /// Parses `$PICOCNN_ROUTE`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "rustup" => Ok(Self::Rustup),
            "debian" => Ok(Self::Debian),
            other => Err(format!("unknown route `{other}` (auto, rustup or debian)")),
        }
    }
}

#[derive(Clone, Debug)]
enum Route {
    Rustup { cargo: String },
    Nightly,
    Debian,
}

/// A way to build the firmware.
#[derive(Clone, Debug)]
pub struct Toolchain {
    route: Route,
    /// Set the thumb targets' linker to rust-lld (rustup route without GNU binutils).
    use_rust_lld: bool,
    /// One line saying which route was taken.
    pub description: String,
    /// The route and compiler, without the targets: what the firmware's size depends on.
    pub compiler: String,
}

impl Toolchain {
    /// `cargo <build or check> --release --lib --target <target>` of the library at the
    /// repository root, with `features` (comma-separated, or empty); nothing is linked.
    pub fn lib_command(&self, subcommand: &str, target: &str, features: &str) -> Command {
        let mut cmd = self.cargo_release(subcommand);
        cmd.args(["--lib", "--target", target])
            .current_dir(crate::root())
            .stdin(Stdio::null());
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        cmd
    }

    /// `cargo <subcommand> --release` for this route, building `core` where the route must.
    fn cargo_release(&self, subcommand: &str) -> Command {
        match &self.route {
            Route::Rustup { cargo } => {
                let mut c = Command::new(cargo);
                c.args([subcommand, "--release"]);
                c
            }
            Route::Nightly => {
                let mut c = Command::new("rustup");
                c.env_remove("RUSTC")
                    .env_remove("RUSTDOC")
                    .args(["run", NIGHTLY, "cargo", subcommand, "--release"])
                    .arg("-Zbuild-std=core");
                c
            }
            Route::Debian => {
                let mut c = Command::new(DEBIAN_CARGO);
                c.env("RUSTC", DEBIAN_RUSTC)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTDOC")
                    .args([subcommand, "--release", "-Zbuild-std=core"]);
                c
            }
        }
    }

    /// `cargo build --release --target <target> --bin <bin>` in `dir`, for
    /// this route, with `rustflags` added (a machine's or a board's CPU).
    pub fn build_command_with(
        &self,
        dir: &Path,
        target: &str,
        bin: &str,
        target_dir: &Path,
        rustflags: &str,
    ) -> Command {
        let mut cmd = self.cargo_release("build");
        cmd.args(["--target", target, "--bin", bin, "--target-dir"])
            .arg(target_dir)
            .current_dir(dir)
            .stdin(Stdio::null());
        // Paths end up in panic messages: map them to fixed names so that the
        // firmware (and its checked size) does not depend on where the
        // repository or cargo's home is. RUSTFLAGS replaces the config's
        // rustflags, so the linker script comes along.
        let root = dir.ancestors().nth(2).unwrap_or(dir).to_path_buf();
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .unwrap_or_default();
        // cortex-m-rt's script; esp-hal's own comes from its board's build.rs
        // (riscv-rt's `link.x` would clash with it).
        let link_x = if target.starts_with("thumb") {
            "-C link-arg=-Tlink.x "
        } else {
            ""
        };
        cmd.env(
            "RUSTFLAGS",
            format!(
                "{link_x}{rustflags} --remap-path-prefix={}=/picocnn --remap-path-prefix={}=/cargo",
                root.display(),
                cargo_home.display()
            ),
        );
        if self.use_rust_lld && target.starts_with("thumb") {
            let var = format!(
                "CARGO_TARGET_{}_LINKER",
                target.to_uppercase().replace(['-', '.'], "_")
            );
            cmd.env(var, "rust-lld");
        }
        cmd
    }
}

/// Chooses the route for building `targets`, installing rustup targets when that works.
pub fn choose(pref: RoutePref, targets: &[&str]) -> Result<Toolchain, String> {
    let have_gnu_ld = on_path("arm-none-eabi-ld");
    if pref != RoutePref::Debian {
        match rustup_route(targets) {
            Ok(cargo) => {
                let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
                let version = output_line(&rustc, &["--version"]).unwrap_or_default();
                let compiler = format!("rustup route ({version})");
                let mut description = format!(
                    "toolchain: rustup route ({version}; prebuilt core for {})",
                    targets.join(", ")
                );
                if !have_gnu_ld {
                    description.push_str("; linker rust-lld (arm-none-eabi-ld not found)");
                }
                return Ok(Toolchain {
                    route: Route::Rustup { cargo },
                    use_rust_lld: !have_gnu_ld,
                    description,
                    compiler,
                });
            }
            Err(why) if pref == RoutePref::Rustup => {
                return Err(format!("the rustup route does not work here: {why}"));
            }
            Err(why) => eprintln!("xtask: rustup route unavailable ({why}); trying Debian's Rust"),
        }
    }
    match debian_route() {
        Ok(version) if have_gnu_ld => Ok(Toolchain {
            route: Route::Debian,
            use_rust_lld: false,
            description: format!(
                "toolchain: debian route ({DEBIAN_CARGO} with {version}, RUSTC_BOOTSTRAP=1, \
                 -Zbuild-std=core, linker arm-none-eabi-ld)"
            ),
            compiler: format!("debian route ({version})"),
        }),
        Ok(_) => Err(format!(
            "Debian's Rust is there but arm-none-eabi-ld is not: \
             apt-get install --no-install-recommends binutils-arm-none-eabi \
             (all packages used here: {APT_PACKAGES})"
        )),
        Err(why) => Err(format!(
            "cannot build for {}: no prebuilt core from rustup (`rustup target add` failed or \
             rustup is missing) and no usable Debian Rust ({why}). Install the Debian route with\n  \
             apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES}",
            targets.join(", ")
        )),
    }
}

/// Chooses the route for building the library (no link) for `target`: rustup's prebuilt
/// `core`, else `core` from source with rustup's nightly, else (`auto`) Debian's Rust.
pub fn for_library(pref: RoutePref, target: &str) -> Result<Toolchain, String> {
    type Attempt<'a> = &'a dyn Fn() -> Result<(Route, String), String>;
    let attempts: [(bool, Attempt<'_>); 3] = [
        (pref != RoutePref::Debian, &|| {
            rustup_route(&[target]).map(|cargo| {
                let description = format!("rustup's prebuilt core for {target}");
                (Route::Rustup { cargo }, description)
            })
        }),
        (pref != RoutePref::Debian, &|| {
            nightly_route().map(|v| (Route::Nightly, format!("{v} with -Zbuild-std=core")))
        }),
        (pref != RoutePref::Rustup, &|| {
            debian_route().map(|v| (Route::Debian, format!("{v} (Debian) with -Zbuild-std=core")))
        }),
    ];
    let mut why = Vec::new();
    for (wanted, attempt) in attempts {
        if !wanted {
            continue;
        }
        match attempt() {
            Ok((route, description)) => {
                return Ok(Toolchain {
                    route,
                    use_rust_lld: false,
                    compiler: description.clone(),
                    description,
                })
            }
            Err(e) => why.push(e),
        }
    }
    Err(format!(
        "no core for {target}: {}; `rustup toolchain install {NIGHTLY} --profile minimal \
         --component rust-src` gives one, as does Debian's Rust (apt-get install \
         --no-install-recommends rustc-web cargo-web rust-web-src)",
        why.join("; ")
    ))
}

/// Checks rustup's nightly and its library source; returns its rustc's version line.
fn nightly_route() -> Result<String, String> {
    if !on_path("rustup") {
        return Err("no rustup for a nightly".to_string());
    }
    let run = |args: &[&str]| {
        let mut all = vec!["run", NIGHTLY, "rustc"];
        all.extend(args);
        output_line("rustup", &all)
    };
    let version = run(&["--version"]).ok_or_else(|| format!("no rustup toolchain {NIGHTLY}"))?;
    let sysroot = run(&["--print", "sysroot"])
        .ok_or_else(|| format!("rustc +{NIGHTLY} --print sysroot failed"))?;
    if !library_source(Path::new(&sysroot)) {
        return Err(format!(
            "{NIGHTLY} has no rust-src (rustup component add rust-src --toolchain {NIGHTLY})"
        ));
    }
    Ok(version)
}

/// Whether a sysroot holds the standard library's source (for `-Zbuild-std`).
fn library_source(sysroot: &Path) -> bool {
    sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .exists()
}

/// Returns the cargo to use when every target has a prebuilt `core`, after trying
/// `rustup target add` for the missing ones.
pub fn rustup_route(targets: &[&str]) -> Result<String, String> {
    let cargo = crate::host_cargo();
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !has_core(t)).collect();
    if missing.is_empty() {
        return Ok(cargo);
    }
    if !on_path("rustup") {
        return Err(format!("no core for {} and no rustup", missing.join(", ")));
    }
    eprintln!("xtask: rustup target add {}", missing.join(" "));
    let mut child = Command::new("rustup")
        .arg("target")
        .arg("add")
        .args(&missing)
        // Its error, without a backtrace of rustup itself.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let deadline = Instant::now() + RUSTUP_ADD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => return Err(format!("`rustup target add` failed ({status})")),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("`rustup target add` timed out".to_string());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for rustup: {e}")),
        }
    }
    match targets.iter().find(|t| !has_core(t)) {
        None => Ok(cargo),
        Some(t) => Err(format!("`rustup target add` ran but {t} still has no core")),
    }
}

/// Whether the rustc that `cargo` will use has a prebuilt `core` for `target`.
fn has_core(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let Some(dir) = output_line(&rustc, &["--print", "target-libdir", "--target", target]) else {
        return false;
    };
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libcore-") && name.ends_with(".rlib")
        })
    })
}

/// Checks Debian's cargo, rustc and library source; returns rustc's version line.
fn debian_route() -> Result<String, String> {
    for tool in [DEBIAN_CARGO, DEBIAN_RUSTC] {
        if !Path::new(tool).exists() {
            return Err(format!("{tool} is missing"));
        }
    }
    let version = output_line(DEBIAN_RUSTC, &["--version"])
        .ok_or_else(|| format!("{DEBIAN_RUSTC} --version failed"))?;
    let sysroot = output_line(DEBIAN_RUSTC, &["--print", "sysroot"])
        .ok_or_else(|| format!("{DEBIAN_RUSTC} --print sysroot failed"))?;
    if !library_source(Path::new(&sysroot)) {
        return Err(format!(
            "no library source in {sysroot} (package rust-web-src)"
        ));
    }
    Ok(version)
}

/// Whether `program` is an executable file in a `PATH` directory.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The first line of a command's stdout, if it succeeds.
fn output_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    s.lines().next().map(|l| l.trim().to_string())
}
