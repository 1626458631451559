//! `cargo xtask mnist`: a trained LeNet-5 blob over the test digits on each machine, against
//! the host's interpreter on the same blob.

use std::path::Path;
use std::time::Duration;

use crate::machines::{self, Machine, Run};
use crate::toolchain::Toolchain;
use crate::{Opts, Totals};

/// The host's run of the `mnist` firmware's work: `(digits, correct, digest)`
/// of the first `n` test digits through `model` in the interpreter.
fn host_mnist(model: &Path, n: usize) -> Result<(usize, usize, u32), String> {
    let classes = host_classes(model, n)?;
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let correct = (0..classes.len())
        .filter(|&i| classes[i] == test.label(i))
        .count();
    let digest = classes.iter().fold(0x811c_9dc5u32, |d, &c| {
        (d ^ c as u32).wrapping_mul(0x0100_0193)
    });
    Ok((classes.len(), correct, digest))
}

/// The class the host's interpreter gives each of the first `n` shipped
/// test digits (pixels through the blob's normalisation), as the `mnist`
/// firmware feeds them.
pub fn host_classes(model: &Path, n: usize) -> Result<Vec<usize>, String> {
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
    let mut classes = Vec::with_capacity(n);
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
            picocnn::model::DType::I16 => {
                let q = input.qparams.ok_or("int16 input without quantization")?;
                let x = it.input_mut::<i16>(0).map_err(e)?;
                x.iter_mut()
                    .zip(img)
                    .for_each(|(d, &p)| *d = q.quantize_i16(real(p)));
                it.run().map_err(e)?;
                argmax(it.output::<i16>(0).map_err(e)?)
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
        classes.push(best);
    }
    Ok(classes)
}

/// Builds the `mnist` firmware for `m` and runs it; what failed when it did not run.
fn build_and_run(
    tc: &Toolchain,
    m: &Machine,
    envs: &[(&str, String)],
    opts: &Opts,
) -> Result<Run, &'static str> {
    let elf = machines::build_with_env(tc, m, "mnist", envs).map_err(|e| {
        eprintln!("xtask: {e}");
        "firmware did not build"
    })?;
    let timeout = Duration::from_secs(opts.timeout_s);
    machines::run_qemu(m, &elf, &machines::icount(opts.shift), timeout, None).map_err(|e| {
        eprintln!("xtask: {e}");
        "QEMU did not run"
    })
}

/// `cargo xtask mnist`: the trained int8 LeNet-5 over the first test digits
/// on each machine, against the host's predictions from the same blob (one
/// case per machine: the number of digits, the correct ones and the digest
/// of the predictions must all be equal).
pub fn run(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    let model = opts
        .model
        .clone()
        .unwrap_or_else(|| crate::root().join("tests/models/lenet5_mnist_i8_fused.pcnn"));
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
    let Some(tc) = machines::qemu_toolchain(opts) else {
        totals.failed += opts.machines.len();
        return totals;
    };
    let envs = [
        ("PICOCNN_MNIST_MODEL", model.display().to_string()),
        ("PICOCNN_MNIST_DIGITS", opts.digits.to_string()),
    ];
    for m in &opts.machines {
        let tag = format!("mnist {}", m.name);
        let run = match build_and_run(&tc, m, &envs, opts) {
            Ok(r) => r,
            Err(why) => {
                println!("{tag}: FAIL {why}");
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
