//! `cargo xtask main-job`: the README's main job. Trains LeNet-5 on the shipped digits,
//! quantizes it, evaluates float against int8, writes the `.pcnn` and Rust source, and runs
//! the int8 and f16 models under QEMU (`target/main-job/`); then imports the Keras LeNet-5 of
//! `tests/models/tflite` and holds it to TensorFlow Lite's classes, on the host and the
//! devices.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde::Deserialize;

use crate::machines;
use crate::{mnist, toolchain, Opts};

/// What `picocnn eval --json` says about a model (the fields used here).
#[derive(Deserialize)]
struct Eval {
    accuracy: f64,
    arena_bytes: u64,
    model_bytes: u64,
}

/// `picocnn eval --json` of `model`.
fn eval_json(bin: &Path, model: &Path) -> Result<Eval, String> {
    let out = Command::new(bin)
        .args(["eval", "--data", "data/mnist", "--json", "--model"])
        .arg(model)
        .current_dir(crate::root())
        .output()
        .map_err(|e| format!("cannot run picocnn: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).map_err(|e| format!("eval output: {e}: {text}"))
}

/// What TensorFlow Lite's reference kernels gave for the shipped test
/// digits (`tools/tflite/make_test_models.py`).
#[derive(Deserialize)]
struct TfliteDigits {
    digits: usize,
    correct: usize,
    classes: Vec<usize>,
}

/// The Keras LeNet-5 imported from TensorFlow Lite: its blob and the
/// summary lines (accuracy against TensorFlow Lite's, class by class).
fn keras_lenet(bin: &Path, dir: &Path) -> Result<(std::path::PathBuf, String), String> {
    let tflite = crate::root().join("tests/models/tflite/lenet5_int8.tflite");
    let blob = dir.join("keras_lenet5.pcnn");
    let out = Command::new(bin)
        .arg("import")
        .arg(&tflite)
        .arg("--out")
        .arg(&blob)
        // It was trained on pixels / 255.
        .args(["--normalise", "0.00392157,0"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| format!("cannot run picocnn: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let reference = crate::root().join("tests/models/tflite/lenet5_int8_digits.json");
    let text =
        std::fs::read_to_string(&reference).map_err(|e| format!("{}: {e}", reference.display()))?;
    let t: TfliteDigits =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", reference.display()))?;
    let eval = eval_json(bin, &blob)?;
    let ours = mnist::host_classes(&blob, t.digits)?;
    let same = ours.iter().zip(&t.classes).filter(|(a, b)| a == b).count();
    if same != t.digits || ours.len() != t.digits {
        return Err(format!(
            "the imported Keras LeNet-5 gives TensorFlow Lite's class for {same} of {} digits",
            t.digits
        ));
    }
    let line = format!(
        "Keras LeNet-5 imported from TensorFlow Lite (int8): {:.2} % on the {} test digits, \
         TensorFlow Lite's {:.2} %, the same class for {} of {}; arena {} bytes",
        100.0 * eval.accuracy,
        thousands(t.digits),
        100.0 * t.correct as f64 / t.digits as f64,
        thousands(same),
        thousands(t.digits),
        eval.arena_bytes
    );
    Ok((blob, line))
}

/// `n` with a comma every three digits.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The README's main job; true when every step passed.
pub fn run(opts: &Opts) -> bool {
    let all = Instant::now();
    let dir = crate::host_target_dir().join("main-job");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("main-job: {}: {e}", dir.display());
        return false;
    }
    let run = |label: &str, cmd: &mut Command| -> bool {
        eprintln!("== {label}");
        match cmd.current_dir(crate::root()).status() {
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
        Command::new(crate::host_cargo()).args([
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
    let bin = crate::host_target_dir().join("release/picocnn");
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
        if precision == "int8" {
            // Fine-tunable on any board: the last dense layer, 1,039 bytes.
            cmd.args(["--trainable", "1"]);
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
    eprintln!("== import the Keras LeNet-5 (TensorFlow Lite int8)");
    let (keras, keras_line) = match keras_lenet(&bin, &dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("== import the Keras LeNet-5: FAILED: {e}");
            return false;
        }
    };
    let mut device = Vec::new();
    let mut ok = true;
    if toolchain::on_path("qemu-system-arm") {
        for (m, digits, model) in [
            (machines::m4(), 2000, &int8),
            (machines::m0(), 150, &int8),
            (machines::m4(), 200, &half),
            (machines::m4(), 2000, &keras),
            (machines::m0(), 150, &keras),
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
                board: None,
            };
            let precision = if model == &half {
                "f16"
            } else if model == &keras {
                "Keras int8"
            } else {
                "int8"
            };
            eprintln!(
                "== the {precision} model on {} under QEMU ({digits} digits)",
                m.name
            );
            let totals = mnist::run(&o);
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
        "main job ({}), {:.0} s:",
        dir.display(),
        all.elapsed().as_secs_f64()
    );
    println!(
        "  trained LeNet-5 with augmentation in {train_s:.0} s (lenet5.safetensors, lenet5.png)"
    );
    println!(
        "  float (f32 blob): {:.2} % on the 2,000 test digits, {} bytes, arena {} bytes",
        100.0 * f.accuracy,
        f.model_bytes,
        f.arena_bytes
    );
    println!(
        "  int8 (post-training quantization): {:.2} % ({:+.2} points), {} bytes, arena {} bytes",
        100.0 * i.accuracy,
        100.0 * (i.accuracy - f.accuracy),
        i.model_bytes,
        i.arena_bytes
    );
    let train_len = std::fs::read(&int8)
        .ok()
        .map(picocnn::model::writer::AlignedBytes::from)
        .and_then(|b| {
            picocnn::model::Model::parse(b.as_bytes())
                .ok()
                .map(|m| m.train_len())
        })
        .unwrap_or(0);
    println!(
        "  wrote lenet5.pcnn and lenet5_model.rs (ARENA_LEN = {}, TRAIN_ARENA_LEN = {train_len})",
        i.arena_bytes
    );
    println!("  {keras_line}");
    for d in &device {
        println!("  {d}");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_have_commas() {
        assert_eq!(thousands(2000), "2,000");
        assert_eq!(thousands(150), "150");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn reads_picocnn_eval_json() {
        // The shape `picocnn eval --json` prints (src/bin/picocnn.rs).
        let text = r#"{"accuracy":0.9865,"arena_bytes":5903,"confusion":[[1,0],[0,1]],"model_bytes":65384,"n":2000,"per_class_accuracy":[1.0,0.98],"precision":"int8"}"#;
        let e: Eval = serde_json::from_str(text).unwrap();
        assert_eq!(e.accuracy, 0.9865);
        assert_eq!((e.arena_bytes, e.model_bytes), (5903, 65384));
    }
}
