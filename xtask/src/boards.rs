//! `cargo xtask boards`: every board crate under `boards/` cross-compiled, with its size.

use std::time::Instant;

use crate::size::measure_size;
use crate::toolchain;
use crate::{Opts, Totals};

/// A board crate under `boards/`.
pub struct Board {
    /// Its folder under `boards/`.
    pub dir: &'static str,
    /// Rust target triple.
    pub target: &'static str,
    /// The firmware binary.
    pub bin: &'static str,
    /// The GNU linker the board's link needs.
    pub linker: &'static str,
    /// Extra rustflags, the same as its `.cargo/config.toml` (which the
    /// build's RUSTFLAGS override).
    pub rustflags: &'static str,
}

/// Every board crate.
pub const BOARDS: [Board; 6] = [
    Board {
        dir: "stm32f4-disco",
        target: "thumbv7em-none-eabihf",
        bin: "picocnn-stm32f4-disco",
        linker: "arm-none-eabi-ld",
        rustflags: "",
    },
    Board {
        dir: "pico",
        target: "thumbv6m-none-eabi",
        bin: "picocnn-pico",
        linker: "arm-none-eabi-ld",
        rustflags: "",
    },
    // The RP2350's Cortex-M33 has the DSP extension, which Armv8-M does not
    // imply: `target-cpu=cortex-m33` picks picocnn's SMLAD loops.
    Board {
        dir: "pico2",
        target: "thumbv8m.main-none-eabihf",
        bin: "picocnn-pico2",
        linker: "arm-none-eabi-ld",
        rustflags: "-C target-cpu=cortex-m33",
    },
    Board {
        dir: "nrf52840-dk",
        target: "thumbv7em-none-eabihf",
        bin: "picocnn-nrf52840-dk",
        linker: "arm-none-eabi-ld",
        rustflags: "",
    },
    Board {
        dir: "microbit-v2",
        target: "thumbv7em-none-eabihf",
        bin: "picocnn-microbit-v2",
        linker: "arm-none-eabi-ld",
        rustflags: "",
    },
    Board {
        dir: "esp32c3",
        target: "riscv32imc-unknown-none-elf",
        bin: "picocnn-esp32c3",
        linker: "riscv64-unknown-elf-ld",
        rustflags: "",
    },
];

/// `cargo xtask boards`: cross-compiles every board crate (or the one
/// `--board` names) and prints its size (one case per board).
pub fn run(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    let boards: Vec<&Board> = BOARDS
        .iter()
        .filter(|b| opts.board.as_deref().is_none_or(|name| name == b.dir))
        .collect();
    let mut targets: Vec<&str> = boards.iter().map(|b| b.target).collect();
    targets.sort_unstable();
    targets.dedup();
    let tc = match toolchain::choose(opts.route, &targets) {
        Ok(tc) => tc,
        Err(e) => {
            eprintln!("xtask: {e}");
            totals.failed += boards.len();
            return totals;
        }
    };
    for &Board {
        dir,
        target,
        bin,
        linker,
        rustflags,
    } in boards
    {
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
        // One target folder for all boards: they share their host tools and,
        // on one target, most of their crates.
        let target_dir = crate::root().join("boards/target");
        let t = Instant::now();
        let status = tc
            .build_command_with(&path, target, bin, &target_dir, rustflags)
            .status();
        let elf = target_dir.join(target).join("release").join(bin);
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

// The firmware's demo digits and their decoder, compiled for the host.
#[cfg(test)]
#[path = "../../boards/firmware/src/demo.rs"]
mod demo;

#[cfg(test)]
mod tests {
    use super::demo;

    /// The coder the committed `demo-digits.rle` was written with.
    fn encode(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let zeros = raw[i..].iter().take(255).take_while(|&&p| p == 0).count();
            if zeros > 0 {
                out.extend([0, zeros as u8]);
                i += zeros;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn demo_digits_are_the_first_test_digits() {
        let (_, test) = picocnn::data::load_mnist(crate::root().join("data/mnist")).unwrap();
        let raw: Vec<u8> = (0..demo::DIGITS)
            .flat_map(|i| test.image(i).to_vec())
            .collect();
        assert_eq!(demo::CODED, encode(&raw).as_slice());
        for i in 0..demo::DIGITS {
            let mut out = [0xaa; demo::DIGIT_LEN];
            demo::digit(demo::CODED, i, &mut out);
            assert_eq!(
                out.as_slice(),
                &raw[i * demo::DIGIT_LEN..][..demo::DIGIT_LEN]
            );
        }
        // A cut code leaves the rest zero rather than reading past it.
        let mut out = [0xaa; demo::DIGIT_LEN];
        demo::digit(&demo::CODED[..100], 0, &mut out);
        assert_eq!(out[..].iter().filter(|&&p| p == 0xaa).count(), 0);
        demo::digit(&demo::CODED[..101], 2, &mut out);
        assert!(out.iter().all(|&p| p == 0));
    }
}
