//! `cargo xtask size`: `arm-none-eabi-size` of the interpreter firmware against the checked-in
//! expected files.

use std::path::Path;
use std::process::Command;

use crate::machines;
use crate::toolchain;
use crate::Opts;

/// Bytes a section may differ from the expected file between checkouts.
const SIZE_SLACK: u64 = 64;

/// `cargo xtask size`: `arm-none-eabi-size` of the interpreter firmware against
/// `boards/qemu/expected/size-interp-<machine>.txt` (rewritten with `--bless`).
pub fn run(opts: &Opts) -> bool {
    if !toolchain::on_path("arm-none-eabi-size") {
        eprintln!(
            "xtask: arm-none-eabi-size not found: apt-get install --no-install-recommends \
             binutils-arm-none-eabi"
        );
        return false;
    }
    let Some(tc) = machines::toolchain(opts) else {
        return false;
    };
    let mut ok = true;
    for m in &opts.machines {
        ok &= int8_firmware(&tc, m);
        let elf = match machines::build(&tc, m, "interp") {
            Ok(elf) => elf,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let got = match firmware_size(&elf) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("xtask: {e}");
                ok = false;
                continue;
            }
        };
        let file = machines::board_dir()
            .join("expected")
            .join(format!("size-interp-{}.txt", m.name));
        let rel = format!("boards/qemu/expected/size-interp-{}.txt", m.name);
        let toolchain_line = format!("# Built by the {}", tc.compiler);
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

/// The int8 LeNet-5 firmware (`mnist` without the float kernels): its size and
/// how much of its code is the library's, by symbol (reported, not compared:
/// inlining moves code between symbols from one compiler to the next).
fn int8_firmware(tc: &toolchain::Toolchain, m: &machines::Machine) -> bool {
    let report = machines::build_int8_only(tc, m, "mnist").and_then(|elf| {
        let [text, data, bss] = firmware_size(&elf)?;
        let code = library_code(&elf)?;
        Ok(format!(
            "size {} int8 firmware (mnist, no float kernels): text {text} data {data} bss {bss}; \
             picocnn's code {} bytes; constants of 16 KiB or more (model, digits) {} bytes",
            m.name, code.0, code.1
        ))
    });
    match report {
        Ok(line) => {
            println!("{line}");
            true
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            false
        }
    }
}

/// Bytes of code in `picocnn::` functions, and of the firmware's two large
/// constants (the model blob and the test digits), from `arm-none-eabi-nm`.
fn library_code(elf: &Path) -> Result<(u64, u64), String> {
    let out = Command::new("arm-none-eabi-nm")
        .args(["-S", "-C"])
        .arg(elf)
        .output()
        .map_err(|e| format!("cannot run arm-none-eabi-nm: {e}"))?;
    if !out.status.success() {
        return Err("arm-none-eabi-nm failed".to_string());
    }
    let (mut code, mut data) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(_), Some(size), Some(kind), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(size) = u64::from_str_radix(size, 16) else {
            continue;
        };
        let firmware = name.contains("picocnn_qemu") || name.contains("picocnn_firmware");
        if matches!(kind, "t" | "T") && name.contains("picocnn::") && !firmware {
            code += size;
        } else if matches!(kind, "r" | "R") && size >= 16 * 1024 {
            data += size;
        }
    }
    Ok((code, data))
}

/// [`measure_size`] less riscv-rt's `.stack`: a NOLOAD section that spans the RAM left free,
/// counted as bss by `size`, though no part of the firmware.
fn firmware_size(elf: &Path) -> Result<[u64; 3], String> {
    let [text, data, bss] = measure_size(elf)?;
    let out = Command::new("arm-none-eabi-size")
        .arg("-A")
        .arg(elf)
        .output()
        .map_err(|e| format!("cannot run arm-none-eabi-size: {e}"))?;
    let stack = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(".stack")).then(|| f.next()?.parse::<u64>().ok())?
        })
        .unwrap_or(0);
    Ok([text, data, bss.saturating_sub(stack)])
}

/// text, data and bss of an ELF, from `arm-none-eabi-size -B` (its generic ELF reader serves
/// the RISC-V firmware too).
pub fn measure_size(elf: &Path) -> Result<[u64; 3], String> {
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
