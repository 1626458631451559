//! Picks the memory map by target, and adds `-Tlink.x` (cortex-m-rt's or riscv-rt's) unless
//! the rustflags already carry it.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(machine, values(\"m0\", \"m4\", \"rv32\"))");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PICOCNN_QEMU_MACHINE");
    println!("cargo::rustc-check-cfg=cfg(mps2_tz)");
    println!("cargo::rustc-check-cfg=cfg(mps3)");
    println!("cargo::rerun-if-changed=memory-m55.x");
    println!("cargo::rerun-if-changed=memory-m33.x");
    println!("cargo::rerun-if-changed=memory-m0.x");
    println!("cargo::rerun-if-changed=memory-m4.x");
    println!("cargo::rerun-if-changed=memory-rv32.x");

    let target = env::var("TARGET").unwrap_or_default();
    // `machine` is the board family: "m4" for the MPS2 boards (CMSDK UART,
    // 4 MiB of RAM: mps2-an386, an385, an500, and with `mps2_tz` the
    // TrustZone an505, whose memory and UART sit elsewhere), "m0" for the
    // micro:bit, "rv32" for QEMU virt (RV32IMC: the ESP32-C3's class).
    let (memory, machine) = if target.starts_with("thumbv6m-") {
        ("memory-m0.x", "m0")
    } else if target.starts_with("thumbv7em-") || target.starts_with("thumbv7m-") {
        ("memory-m4.x", "m4")
    } else if target.starts_with("thumbv8m.main-")
        && env::var("PICOCNN_QEMU_MACHINE").as_deref() == Ok("m55")
    {
        println!("cargo::rustc-cfg=mps3");
        ("memory-m55.x", "m4")
    } else if target.starts_with("thumbv8m.main-") {
        println!("cargo::rustc-cfg=mps2_tz");
        ("memory-m33.x", "m4")
    } else if target.starts_with("riscv32") {
        // Debian's riscv64-unknown-elf-ld links 64-bit ELF unless told otherwise.
        // Code and data share the RAM (one writable, executable segment: meant here).
        println!("cargo::rustc-link-arg=-melf32lriscv");
        println!("cargo::rustc-link-arg=--no-warn-rwx-segments");
        ("memory-rv32.x", "rv32")
    } else {
        panic!(
            "picocnn-qemu-tests is firmware: build it with --target thumbv7em-none-eabihf \
             (QEMU mps2-an386), --target thumbv6m-none-eabi (QEMU microbit) or \
             --target riscv32imc-unknown-none-elf (QEMU virt), \
             or use `cargo xtask qemu` from the repository root (target given: {target:?})"
        );
    };
    println!("cargo::rustc-cfg=machine=\"{machine}\"");
    // The name the firmware reports: the xtask machine it was built for.
    let name = env::var("PICOCNN_QEMU_MACHINE").unwrap_or_else(|_| machine.to_string());
    println!("cargo::rustc-env=PICOCNN_QEMU_MACHINE={name}");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy(memory, out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    mnist_inputs(&out);
    println!("cargo::rustc-link-search={}", out.display());

    // .cargo/config.toml passes -Tlink.x; when it is not in effect (RUSTFLAGS set in the
    // environment replaces the config's rustflags), add it here. Passing it twice breaks the link.
    // defmt's sections, for the one firmware that logs with defmt.
    println!("cargo::rustc-link-arg-bin=serve=-Tdefmt.x");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !flags.split('\x1f').any(|f| f.contains("-Tlink.x")) {
        println!("cargo::rustc-link-arg=-Tlink.x");
    }
}

/// The `mnist` firmware's inputs: the model blob's path (`PICOCNN_MNIST_MODEL`, default the
/// committed trained LeNet-5) and the first `PICOCNN_MNIST_DIGITS` (default 100) test digits
/// of `data/mnist`, as raw bytes then labels in `OUT_DIR/digits.bin`.
fn mnist_inputs(out: &std::path::Path) {
    use std::io::Read;
    println!("cargo::rerun-if-env-changed=PICOCNN_MNIST_MODEL");
    println!("cargo::rerun-if-env-changed=PICOCNN_MNIST_DIGITS");
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("../..");
    let model = env::var("PICOCNN_MNIST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("tests/models/lenet5_mnist_i8_fused.pcnn"));
    let model = fs::canonicalize(&model)
        .unwrap_or_else(|e| panic!("PICOCNN_MNIST_MODEL {}: {e}", model.display()));
    println!("cargo::rerun-if-changed={}", model.display());
    println!("cargo::rustc-env=PICOCNN_MNIST_MODEL={}", model.display());
    // Every check of `Model::parse` here, as a board's build does: the
    // firmware only opens the blob (`Model::parse_prechecked`), in an arena
    // of the length the model plans.
    let bytes = fs::read(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    let aligned = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()];
    aligned.copy_from_slice(&bytes);
    let arena_len = match picocnn::model::Model::parse(aligned) {
        Ok(m) => m.arena_len(),
        Err(e) => panic!(
            "the model {} does not pass the checks: {e}",
            model.display()
        ),
    };
    fs::write(
        out.join("mnist_arena.rs"),
        format!("const ARENA_LEN: usize = {arena_len};\n"),
    )
    .expect("write mnist_arena.rs");
    let n: usize = env::var("PICOCNN_MNIST_DIGITS")
        .ok()
        .map(|v| v.parse().expect("PICOCNN_MNIST_DIGITS: a number"))
        .unwrap_or(100);
    let read = |name: &str| {
        let path = root.join("data/mnist").join(name);
        println!("cargo::rerun-if-changed={}", path.display());
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(&path).expect("data/mnist file"))
            .read_to_end(&mut bytes)
            .expect("gzip IDX file");
        bytes
    };
    let images = read("t10k-images-idx3-ubyte.gz");
    let labels = read("t10k-labels-idx1-ubyte.gz");
    let count = u32::from_be_bytes(labels[4..8].try_into().expect("IDX header")) as usize;
    let n = n.min(count);
    let mut digits = images[16..16 + n * 784].to_vec();
    digits.extend_from_slice(&labels[8..8 + n]);
    fs::write(out.join("digits.bin"), digits).expect("write digits.bin");
}
