//! Picks how to build the firmware (thumb and RISC-V targets).
//!
//! 1. rustup: the thumb targets' prebuilt `core` is installed (or `rustup target add`
//!    installs it): plain `cargo build --release --target <t>`.
//! 2. debian: Debian's Rust (`rustc-web cargo-web rust-web-src`) ships the library source, so
//!    `/usr/bin/cargo -Zbuild-std=core` with `RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1` builds
//!    `core` itself (about 40 s per target the first time, cached after).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian packages everything here needs.
pub const APT_PACKAGES: &str = "rustc-web cargo-web rust-web-src binutils-arm-none-eabi \
     binutils-riscv64-unknown-elf qemu-system-arm qemu-system-misc";

const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
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
    /// `cargo build --release --target <target> --bin <bin>` in `dir`, for this route.
    pub fn build_command(&self, dir: &Path, target: &str, bin: &str, target_dir: &Path) -> Command {
        self.build_command_with(dir, target, bin, target_dir, "")
    }

    /// [`build_command`](Self::build_command) with `rustflags` added (a
    /// machine's CPU, say).
    pub fn build_command_with(
        &self,
        dir: &Path,
        target: &str,
        bin: &str,
        target_dir: &Path,
        rustflags: &str,
    ) -> Command {
        let mut cmd = match &self.route {
            Route::Rustup { cargo } => {
                let mut c = Command::new(cargo);
                c.args(["build", "--release"]);
                c
            }
            Route::Debian => {
                let mut c = Command::new(DEBIAN_CARGO);
                c.env("RUSTC", DEBIAN_RUSTC)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTDOC")
                    .args(["build", "--release", "-Zbuild-std=core"]);
                c
            }
        };
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
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo"))
            })
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

/// Returns the cargo to use when every target has a prebuilt `core`, after trying
/// `rustup target add` for the missing ones.
fn rustup_route(targets: &[&str]) -> Result<String, String> {
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
    let library = PathBuf::from(sysroot).join("lib/rustlib/src/rust/library");
    if !library.join("core/Cargo.toml").exists() {
        return Err(format!(
            "no library source at {} (package rust-web-src)",
            library.display()
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
