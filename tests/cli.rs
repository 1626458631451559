//! The `picocnn` command: training end to end on a small PNG data set, and
//! a one-line error with a non-zero exit for every bad flag or file.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn picocnn(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

mod common;
use common::temp_dir;

/// Width, height and RGB bytes of a PNG.
fn read_png(path: &str) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels of `rgb` within 40 of `colour` in each channel.
fn count(rgb: &[u8], colour: [u8; 3]) -> usize {
    rgb.chunks(3)
        .filter(|p| p.iter().zip(colour).all(|(&a, b)| a.abs_diff(b) <= 40))
        .count()
}

/// Two classes of 12x12 grayscale PNGs: a bright top half, or a bright left half.
fn tiny_dataset(root: &Path) {
    for split in ["train", "test"] {
        for (class, top) in [("left", false), ("top", true)] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..12u8 {
                let px: Vec<u8> = (0..144)
                    .map(|k| {
                        let (y, x) = (k / 12, k % 12);
                        let on = if top { y < 6 } else { x < 6 };
                        if on {
                            200 + i
                        } else {
                            10 + i
                        }
                    })
                    .collect();
                let f = std::fs::File::create(dir.join(format!("{i}.png"))).unwrap();
                let mut e = png::Encoder::new(std::io::BufWriter::new(f), 12, 12);
                e.set_color(png::ColorType::Grayscale);
                e.set_depth(png::BitDepth::Eight);
                e.write_header().unwrap().write_image_data(&px).unwrap();
            }
        }
    }
}

/// `picocnn train` takes the model's best recipe unless told otherwise, says
/// which settings it runs with, and lets each flag given override the recipe.
#[test]
fn train_defaults_to_the_best_recipe_and_flags_override_it() {
    let d = temp_dir("recipe");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    let out = d.join("m.safetensors").display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "--model", "lenet5", "--data", &data, "--out", &out];
        args.extend_from_slice(extra);
        let (code, err) = picocnn(&args);
        assert_eq!(code, 0, "{err}");
        err.lines()
            .find(|l| l.starts_with("recipe "))
            .unwrap_or_else(|| panic!("no recipe line: {err}"))
            .to_string()
    };
    let best = run(&["--epochs", "1"]);
    assert_eq!(
        best,
        "recipe best (flags given win): 1 epochs, adamw at 0.001 (weight decay 0.0001), \
         cosine schedule, label smoothing 0.1, batches of 64, augmentation affine(p=0.5, degrees=10, scale=0.9:1.1, \
         shear=10); translate(p=0.5, max=2); mixup(p=0.3, alpha=0.2)",
        "{best}"
    );
    let keras = run(&["--recipe", "keras", "--epochs", "1", "--batch", "8"]);
    assert_eq!(
        keras,
        "recipe keras (flags given win): 1 epochs, adam at 0.001 (weight decay 0), \
         constant schedule, label smoothing 0, batches of 8, augmentation none",
        "{keras}"
    );
    let mixed = run(&[
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--schedule",
        "step",
        "--augment",
        "none",
    ]);
    assert!(
        mixed.contains("sgd at 0.01 (weight decay 0.0001), step schedule, label smoothing 0.1")
            && mixed.ends_with("augmentation none"),
        "{mixed}"
    );
    let checkpoint = std::fs::read(&out).unwrap();
    assert!(checkpoint.len() > 10_000);
}

/// A checkpoint that cannot be written stops training after that epoch with
/// the reason, instead of training on with nothing saved.
#[test]
fn train_stops_at_the_first_checkpoint_it_cannot_write() {
    let d = temp_dir("ckfail");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    // A non-empty folder where the checkpoint should go: the rename fails.
    let out = d.join("taken");
    std::fs::create_dir_all(out.join("inside")).unwrap();
    let log = d.join("log.jsonl");
    let (code, err) = picocnn(&[
        "train",
        "--recipe",
        "keras",
        "--model",
        "lenet5",
        "--data",
        &data,
        "--out",
        &out.display().to_string(),
        "--log",
        &log.display().to_string(),
        "--epochs",
        "5",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("training stopped after epoch 1 of 5: ") && err.contains("taken"),
        "{err}"
    );
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(out.join("inside").is_dir());
}

/// Killed (SIGKILL) at moments spread over a whole run, checkpoint writes
/// included, `picocnn train` always leaves a checkpoint that `--resume` loads
/// and trains on from, to a log that then holds every epoch exactly once.
#[test]
fn training_killed_at_any_moment_resumes_from_its_last_checkpoint() {
    use std::time::Instant;
    let d = temp_dir("kill");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    const EPOCHS: u64 = 12;
    let args = |out: &str, log: &str| -> Vec<String> {
        [
            "train",
            "--recipe",
            "keras",
            "--model",
            "lenet5",
            "--data",
            &data,
            "--epochs",
            "12",
            "--batch",
            "8",
            "--threads",
            "1",
            "--out",
            out,
            "--log",
            log,
        ]
        .map(String::from)
        .to_vec()
    };
    let path = |name: &str| d.join(name).display().to_string();
    let epochs_logged = |log: &str| -> Vec<u64> {
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    // An uninterrupted run sets the time scale.
    let t = Instant::now();
    let (code, err) = picocnn(
        &args(&path("full.safetensors"), &path("full.jsonl"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{err}");
    let full = t.elapsed();
    let (mut mid_run, mut in_write, mut before_first) = (0, 0, 0);
    const TRIALS: u32 = 24;
    for trial in 0..TRIALS {
        let (out, log) = (
            path(&format!("{trial}.safetensors")),
            path(&format!("{trial}.jsonl")),
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args(args(&out, &log))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64((f64::from(trial) + 0.5) / f64::from(TRIALS)));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        if Path::new(&format!("{out}.tmp")).exists() {
            in_write += 1;
        }
        if !Path::new(&out).exists() {
            // Killed before its first checkpoint: nothing to resume.
            before_first += 1;
            continue;
        }
        let mut resume = args(&out, &log);
        resume.extend(["--resume".to_string(), out.clone()]);
        let (code, err) = picocnn(&resume.iter().map(String::as_str).collect::<Vec<_>>());
        if err.contains("already trained for 12 epochs") {
            assert_eq!(code, 1, "{err}");
        } else {
            assert_eq!(code, 0, "trial {trial}: {err}");
            assert!(
                !finished,
                "trial {trial}: a finished run left less than 12 epochs"
            );
            mid_run += 1;
        }
        assert_eq!(
            epochs_logged(&log),
            (1..=EPOCHS).collect::<Vec<_>>(),
            "trial {trial}"
        );
    }
    eprintln!(
        "{TRIALS} kills over {full:?}: {mid_run} resumed mid-run, {in_write} during a \
         checkpoint write, {before_first} before the first checkpoint"
    );
    assert!(
        mid_run >= 3,
        "only {mid_run} of {TRIALS} kills landed mid-run"
    );
}

#[test]
fn trains_logs_plots_and_resumes() {
    let d = temp_dir("train");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    let out = d.join("m.safetensors").display().to_string();
    let log = d.join("log.jsonl").display().to_string();
    let plot = d.join("curve.png").display().to_string();
    let (code, err) = picocnn(&[
        "train", "--model", "lenet5", "--data", &data, "--epochs", "3", "--batch", "8", "--out",
        &out, "--log", &log, "--plot", &plot,
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["epoch"], 3);
    for key in ["train_loss", "train_accuracy", "test_accuracy", "seconds"] {
        assert!(lines[0][key].is_number(), "{key}");
    }
    // The curve: its three lines (at least their legend's marks) in their
    // colours, and text (dark pixels).
    let (w, h, rgb) = read_png(&plot);
    assert_eq!((w, h), (800, 450));
    for colour in [[0, 140, 70], [30, 90, 200], [200, 50, 40]] {
        assert!(
            count(&rgb, colour) > 40,
            "{colour:?}: {}",
            count(&rgb, colour)
        );
    }
    assert!(count(&rgb, [0, 0, 0]) > 500);
    assert!(std::fs::metadata(&out).unwrap().len() > 10_000);
    // Resume for two more epochs.
    let out2 = d.join("m2.safetensors").display().to_string();
    let (code, err) = picocnn(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &data,
        "--epochs",
        "5",
        "--batch",
        "8",
        "--out",
        &out2,
        "--resume",
        &out,
        "--augment",
        "digits",
    ]);
    assert_eq!(code, 0, "{err}");
    // Export, evaluate and inspect the trained model.
    let blob = d.join("m.pcnn").display().to_string();
    let rust = d.join("model.rs");
    let (code, err) = picocnn(&[
        "export",
        "--model",
        &out2,
        "--data",
        &data,
        "--precision",
        "int8",
        "--out",
        &blob,
        "--rust",
        &rust.display().to_string(),
        "--trainable",
        "1",
        "--trainable-biases",
        "all",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("training buffer"), "{err}");
    let src = std::fs::read_to_string(&rust).unwrap();
    assert!(src.contains("pub const ARENA_LEN: usize = "), "{src:.300}");
    assert!(src.contains("#[repr(C, align(16))]"));
    let confusion = d.join("confusion.png").display().to_string();
    let eval = std::process::Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["eval", "--model", &blob, "--data", &data, "--json"])
        .args(["--confusion", &confusion])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(v["n"], 24);
    assert_eq!(v["precision"], "int8");
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert!(v["arena_bytes"].as_u64().unwrap() > 0);
    // The confusion matrix: two classes, 12 test images each; a row's
    // cells in shades of blue, darkest for the whole row.
    let (w, h, rgb) = read_png(&confusion);
    assert_eq!((w, h), (440, 300));
    let rows = &v["confusion"];
    let whole_rows = (0..2).filter(|&r| rows[r][r] == 12).count();
    let darkest = count(&rgb, [25, 76, 178]);
    assert_eq!(darkest > 2000, whole_rows > 0, "{darkest} pixels; {rows}");
    assert!(count(&rgb, [0, 0, 0]) > 200);
    assert_eq!(
        v["model_bytes"].as_u64().unwrap(),
        std::fs::metadata(&blob).unwrap().len()
    );
    // The table says each total once.
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["inspect", &blob])
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert_eq!(table.matches("arena").count(), 1, "{table}");
    assert_eq!(table.matches("model ").count(), 1, "{table}");
    let inspect = std::process::Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["inspect", &blob, "--json"])
        .output()
        .unwrap();
    assert!(inspect.status.success());
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 8);
    // The recorded trainable set: the last dense layer, every bias below.
    let marks: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["train"].as_str().unwrap())
        .collect();
    assert_eq!(
        marks,
        [
            "bias",
            "frozen",
            "bias",
            "frozen",
            "bias",
            "bias",
            "weights and bias",
            "frozen"
        ]
    );
    let train_bytes = v["totals"]["train_bytes"].as_u64().unwrap();
    assert!(train_bytes > 0);
    assert!(
        src.contains(&format!(
            "pub const TRAIN_ARENA_LEN: usize = {train_bytes};"
        )),
        "{src:.600}"
    );
    assert_eq!(
        v["totals"]["macs"].as_u64().unwrap(),
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["macs"].as_u64().unwrap())
            .sum::<u64>()
    );
    for (args, needle) in [
        (
            vec!["eval", "--model", out2.as_str(), "--data", data.as_str()],
            "not a model",
        ),
        (vec!["inspect", out2.as_str()], "not a model"),
        (
            vec![
                "export",
                "--model",
                blob.as_str(),
                "--data",
                data.as_str(),
                "--out",
                "x.pcnn",
            ],
            "safetensors",
        ),
        (
            vec![
                "export",
                "--model",
                out2.as_str(),
                "--data",
                data.as_str(),
                "--out",
                "x.pcnn",
                "--trainable-biases",
                "all",
            ],
            "needs --trainable",
        ),
        (
            vec![
                "export",
                "--model",
                out2.as_str(),
                "--data",
                data.as_str(),
                "--out",
                "x.pcnn",
                "--precision",
                "f32",
                "--trainable",
                "1",
            ],
            "int8",
        ),
    ] {
        let (code, err) = picocnn(&args);
        assert_eq!(code, 1, "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    // A flag's bad value: clap's usage error, one line.
    let (code, err) = picocnn(&[
        "export",
        "--model",
        &out2,
        "--data",
        &data,
        "--out",
        "x.pcnn",
        "--trainable",
        "1",
        "--trainable-biases",
        "some",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("`all`"), "{err}");
    // Predict: a digit of the right size, then one of another size.
    let png_path = d.join("data").join("test").join("top").join("0.png");
    let predicted = std::process::Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["predict", "--model", &blob, &png_path.display().to_string()])
        .output()
        .unwrap();
    assert!(
        predicted.status.success(),
        "{}",
        String::from_utf8_lossy(&predicted.stderr)
    );
    let text = String::from_utf8_lossy(&predicted.stdout);
    assert!(text.contains("top 3:"), "{text}");
    assert!(text.contains("top") && text.contains('%'), "{text}");
    let wrong = d.join("wrong.png");
    {
        let f = std::fs::File::create(&wrong).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 5, 7);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header()
            .unwrap()
            .write_image_data(&[0u8; 35])
            .unwrap();
    }
    let (code, err) = picocnn(&["predict", "--model", &blob, &wrong.display().to_string()]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("7x5x1") && err.contains("12x12x1"), "{err}");
    // Quantization-aware fine-tuning from the float checkpoint.
    let qat = d.join("qat.safetensors").display().to_string();
    let (code, err) = picocnn(&[
        "train", "--model", "lenet5", "--data", &data, "--epochs", "1", "--batch", "8", "--out",
        &qat, "--from", &out, "--qat", "--lr", "1e-4",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = picocnn(&[
        "train", "--model", "vgg-mini", "--data", &data, "--epochs", "1", "--out", &qat, "--from",
        &out,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("another architecture"), "{err}");
    // A checkpoint of another architecture.
    let (code, err) = picocnn(&[
        "train", "--model", "vgg-mini", "--data", &data, "--epochs", "5", "--out", &out2,
        "--resume", &out,
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("another architecture"), "{err}");
}

#[test]
fn augment_preview_writes_a_grid() {
    let d = temp_dir("augment");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    let grid = d.join("grid.png");
    let g = grid.display().to_string();
    let (code, err) = picocnn(&[
        "augment",
        "--data",
        &data,
        "--preview",
        &g,
        "--rows",
        "3",
        "--variants",
        "4",
        "--augment",
        "rotate(p=1, degrees=20); noise(p=0.5, sigma=0.1)",
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&grid).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    // 5 columns and 3 rows of 3x-zoomed 12x12 images with 2-pixel gaps.
    let (h, w) = (12 * 3 + 2, 12 * 3 + 2);
    assert_eq!((info.width, info.height), (5 * w + 2, 3 * h + 2));
    for (args, needle) in [
        (
            vec![
                "augment",
                "--data",
                &data,
                "--preview",
                &g,
                "--augment",
                "spin(p=1)",
            ],
            "spin",
        ),
        (
            vec!["augment", "--data", &data, "--preview", &g, "--rows", "0"],
            "--rows",
        ),
        (
            vec!["augment", "--data", "/nonexistent", "--preview", &g],
            "/nonexistent",
        ),
    ] {
        let (code, err) = picocnn(&args);
        assert_ne!(code, 0);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn bad_flags_and_files_give_one_line() {
    let d = temp_dir("errors");
    let out = d.join("x.safetensors").display().to_string();
    for (args, code, needle) in [
        (
            vec![
                "train",
                "--model",
                "lenet6",
                "--data",
                "data/mnist",
                "--out",
                out.as_str(),
            ],
            2,
            "lenet6",
        ),
        (
            vec!["train", "--model", "lenet5", "--out", out.as_str()],
            2,
            "--data",
        ),
        (
            vec![
                "train",
                "--model",
                "lenet5",
                "--data",
                "data/mnist",
                "--augment",
                "flips",
                "--out",
                out.as_str(),
            ],
            2,
            "flips",
        ),
        (
            vec![
                "train",
                "--model",
                "lenet5",
                "--data",
                "/nonexistent",
                "--out",
                out.as_str(),
            ],
            1,
            "/nonexistent",
        ),
        (
            vec![
                "train",
                "--model",
                "lenet5",
                "--data",
                "data/mnist",
                "--out",
                out.as_str(),
                "--epochs",
                "0",
            ],
            2,
            "epochs",
        ),
        (
            vec![
                "train",
                "--model",
                "lenet5",
                "--data",
                "data/mnist",
                "--out",
                out.as_str(),
                "--lr=-1",
            ],
            1,
            "--lr",
        ),
        (vec!["frobnicate"], 2, "frobnicate"),
    ] {
        let (got, err) = picocnn(&args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Not a checkpoint.
    let bad = d.join("bad.safetensors");
    std::fs::write(&bad, "hello").unwrap();
    let (got, err) = picocnn(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        "data/mnist",
        "--out",
        &out,
        "--resume",
        &bad.display().to_string(),
    ]);
    assert_eq!(got, 1);
    assert!(err.contains("not a safetensors file"), "{err}");
}

/// `bench` times one image and batches on two threads and says which
/// kernels ran; its flags and files are checked.
#[test]
fn bench_reports_latency_throughput_and_path() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/branchy_f16.pcnn");
    let out = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["bench", "--model", model, "--seconds", "0.2"])
        .args(["--batch", "5", "--threads", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(num("runs") >= 1.0, "{v}");
    assert!(
        num("min_us") > 0.0 && num("min_us") <= num("median_us"),
        "{v}"
    );
    assert!(
        num("median_us") <= num("p90_us") && num("p90_us") <= num("p99_us"),
        "{v}"
    );
    assert!(
        num("images_per_s") > 0.0 && num("batch_images_per_s") > 0.0,
        "{v}"
    );
    assert_eq!(v["dtype"], "f16");
    assert_eq!(v["path"], picocnn::kernel_path());
    assert_eq!((num("batch"), num("threads")), (5.0, 2.0));
    // Text, without batches.
    let text = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args([
            "bench",
            "--model",
            model,
            "--seconds",
            "0.05",
            "--batch",
            "0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("one image: median") && !text.contains("batches"),
        "{text}"
    );

    let d = temp_dir("bench");
    let garbage = d.join("garbage.pcnn");
    std::fs::write(&garbage, b"not a model").unwrap();
    let garbage = garbage.display().to_string();
    for (args, code, needle) in [
        (vec!["--model", "/nonexistent.pcnn"], 1, "/nonexistent.pcnn"),
        (vec!["--model", garbage.as_str()], 1, "not a model"),
        (vec!["--model", model, "--threads", "0"], 2, "--threads"),
        (vec!["--model", model, "--seconds", "0"], 1, "--seconds"),
        (vec!["--model", model, "--seconds", "nan"], 1, "--seconds"),
        (vec!["--model", model, "--seconds", "-1"], 1, "--seconds"),
        (vec!["--model", model, "--batch", "-3"], 2, "--batch"),
        (
            vec!["--model", model, "--batch", "18446744073709551615"],
            1,
            "--batch",
        ),
    ] {
        let args: Vec<&str> = ["bench"].into_iter().chain(args).collect();
        let (got, err) = picocnn(&args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// The committed int8 LeNet-5, aligned for `Model::parse`.
fn trained_lenet5() -> picocnn::model::writer::AlignedBytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_i8.pcnn"
    );
    picocnn::model::writer::AlignedBytes::from(std::fs::read(path).unwrap())
}

/// A board simulated on the other end of a pseudo-terminal: the library's
/// protocol server with the trained LeNet-5, learning (as the firmware:
/// learning rate 0.01, seed 1) or not. Stops when dropped.
#[cfg(unix)]
struct SimulatedBoard {
    port: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(unix)]
impl SimulatedBoard {
    fn start(learns: bool) -> SimulatedBoard {
        use picocnn::learn::FineTuner;
        use picocnn::model::Model;
        use picocnn::protocol::{Learner, Receiver, Server};
        use serialport::SerialPort;
        use std::io::{Read, Write};
        let (mut board, host) = serialport::TTYPort::pair().unwrap();
        let port = host.name().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        fn serve<L: Learner>(
            mut server: Server<'_, '_, L>,
            board: &mut serialport::TTYPort,
            stop: &std::sync::atomic::AtomicBool,
        ) {
            let mut rx = Receiver::<786>::new();
            let mut out = [0u8; 32];
            let mut buf = [0u8; 512];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A read timeout is no data.
                let n: usize = board.read(&mut buf).unwrap_or_default();
                for &b in &buf[..n] {
                    if let Some(e) = rx.push(b) {
                        let k = server.answer(e, rx.payload(), &mut out).unwrap();
                        board.write_all(&out[..k]).unwrap();
                    }
                }
            }
        }
        let thread = std::thread::spawn(move || {
            let blob = trained_lenet5();
            let model = Model::parse(blob.as_bytes()).unwrap();
            let mut arena = vec![0u8; model.arena_len()];
            board
                .set_timeout(std::time::Duration::from_millis(20))
                .unwrap();
            if learns {
                let mut train = vec![0u8; FineTuner::train_len(&model).unwrap()];
                let server =
                    Server::with_learning(&model, &mut arena, &mut train, 0.01, 1).unwrap();
                serve(server, &mut board, &stop2);
            } else {
                serve(Server::new(&model, &mut arena).unwrap(), &mut board, &stop2);
            }
        });
        SimulatedBoard {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

#[cfg(unix)]
impl Drop for SimulatedBoard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `images` (28x28 grey) as `root/<label>/<i>.png`, with a folder
/// for each of the ten classes.
fn write_class_folders(root: &Path, images: &[(Vec<u8>, usize)]) {
    for class in 0..10 {
        std::fs::create_dir_all(root.join(class.to_string())).unwrap();
    }
    for (i, (img, label)) in images.iter().enumerate() {
        let path = root.join(label.to_string()).join(format!("{i:03}.png"));
        let f = std::fs::File::create(path).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 28, 28);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(img).unwrap();
    }
}

/// `picocnn send` against a simulated board.
#[cfg(unix)]
#[test]
fn send_talks_to_a_board_over_a_serial_line() {
    let board = SimulatedBoard::start(false);
    let port = board.port.clone();
    // Ten test digits as a class-folder tree.
    let d = temp_dir("send");
    let (_, test) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let digits: Vec<(Vec<u8>, usize)> = (0..10)
        .map(|i| (test.image(i).to_vec(), test.label(i)))
        .collect();
    write_class_folders(&d.join("digits"), &digits);
    let one = d
        .join("digits")
        .join(test.label(0).to_string())
        .join("000.png");
    let out = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args(["send", "--port", &port, "--dir"])
        .arg(d.join("digits"))
        .arg(&one)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The single image first, then the folder; every digit answered.
    assert_eq!(text.lines().count(), 1 + 10 + 1, "{text}");
    assert!(text
        .lines()
        .next()
        .unwrap()
        .starts_with(&one.display().to_string()));
    assert!(text.contains("10 images, "), "{text}");
    // A PNG of another size is refused before anything is sent.
    let wrong = d.join("wrong.png");
    {
        let f = std::fs::File::create(&wrong).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 4, 4);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header()
            .unwrap()
            .write_image_data(&[0u8; 16])
            .unwrap();
    }
    let (code, err) = picocnn(&["send", "--port", &port, &wrong.display().to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("4x4x1") && err.contains("28x28x1"), "{err}");
    drop(board);
    // No board at all: a one-line error after the timeout.
    let (code, err) = picocnn(&[
        "send",
        "--port",
        "/nonexistent-port",
        &wrong.display().to_string(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent-port"), "{err}");
}

/// `picocnn send --teach` against a simulated learning board: each line
/// is the board's step, equal to a host fine-tuner's fed the same digits in
/// the same order; bad folders, a board that cannot learn and a bad
/// `--epochs` are one-line errors.
#[cfg(unix)]
#[test]
fn send_teaches_a_board_and_refuses_what_it_cannot_teach() {
    use picocnn::data::style::{restyle, Style};
    use picocnn::learn::FineTuner;
    use picocnn::model::Model;
    let d = temp_dir("teach");
    let (_, test) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let digits: Vec<(Vec<u8>, usize)> = (0..30)
        .map(|i| {
            let img = restyle(test.image(i), test.shape(), Style::default()).unwrap();
            (img, test.label(i))
        })
        .collect();
    let folder = d.join("styled");
    write_class_folders(&folder, &digits);
    let folder_s = folder.display().to_string();

    let board = SimulatedBoard::start(true);
    let (code, text) = {
        let o = Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args(["send", "--port", &board.port, "--teach", &folder_s])
            .args(["--epochs", "2", "--seed", "5"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    assert_eq!(code, Some(0));
    // The host's steps: the folder's order, shuffled per epoch from the seed.
    let set = picocnn::data::load_image_folder(&folder).unwrap();
    let blob = trained_lenet5();
    let model = Model::parse(blob.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut train = vec![0u8; FineTuner::train_len(&model).unwrap()];
    let mut tuner = FineTuner::new(&model, &mut arena, &mut train, 0.01, 1).unwrap();
    let q = model.tensor(model.input(0).unwrap()).qparams.unwrap();
    let mut want = Vec::new();
    for epoch in 0..2u64 {
        let (mut right, mut loss) = (0, 0u64);
        for i in picocnn::rng::shuffled(set.len(), 5 + epoch) {
            for (x, &p) in tuner
                .input_mut::<i8>()
                .unwrap()
                .iter_mut()
                .zip(set.image(i))
            {
                *x = q.quantize(p as f32 / 255.0);
            }
            let r = tuner.step(set.label(i)).unwrap();
            want.push(format!(
                "{}#{i}: predicted {}, loss {:.4} (Q4.12 {})",
                set.label(i),
                r.predicted,
                r.loss_q12 as f64 / 4096.0,
                r.loss_q12
            ));
            right += (r.predicted == set.label(i)) as usize;
            loss += r.loss_q12 as u64;
        }
        want.push(format!(
            "epoch {}/2: {right} of 30 right before their step ({:.2} %), mean loss {:.4}",
            epoch + 1,
            100.0 * right as f64 / 30.0,
            loss as f64 / 4096.0 / 30.0
        ));
    }
    assert_eq!(text.lines().collect::<Vec<_>>(), want);

    // Folders the board cannot be taught from.
    let three = d.join("three");
    for c in ["a", "b", "c"] {
        std::fs::create_dir_all(three.join(c)).unwrap();
    }
    let first = folder.join(digits[0].1.to_string()).join("000.png");
    std::fs::copy(first, three.join("a").join("x.png")).unwrap();
    let (code, err) = picocnn(&["send", "--port", &board.port, "--teach", "/nonexistent"]);
    assert_eq!((code, err.trim().lines().count()), (1, 1), "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    let three_s = three.display().to_string();
    let (code, err) = picocnn(&["send", "--port", &board.port, "--teach", &three_s]);
    assert_eq!((code, err.trim().lines().count()), (1, 1), "{err}");
    assert!(
        err.contains("3 class folders, the board's model has 10"),
        "{err}"
    );
    let args = ["send", "--port", &board.port, "--teach", &folder_s];
    let (code, err) = picocnn(&[&args[..], &["--epochs", "0"]].concat());
    assert_eq!(
        (code, err.trim()),
        (1, "error: --epochs must be at least 1")
    );
    drop(board);

    // A board without a fine-tuner.
    let board = SimulatedBoard::start(false);
    let (code, err) = picocnn(&["send", "--port", &board.port, "--teach", &folder_s]);
    assert_eq!((code, err.trim().lines().count()), (1, 1), "{err}");
    assert!(err.contains("this board cannot learn"), "{err}");
}

#[test]
fn finetune_writes_a_tuned_blob_and_refuses_bad_input() {
    let dir = temp_dir("finetune");
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_i8.pcnn"
    );
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let out = dir.join("tuned.pcnn");
    let out_s = out.to_str().unwrap();
    let run = |out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args([
                "finetune", "--model", model, "--data", data, "--out", out, "--epochs", "1",
                "--limit", "100", "--lr", "0.005",
            ])
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, text) = run(out_s);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("epoch 1/1: mean loss"), "{text}");
    assert!(text.contains("training state 1039 bytes"), "{text}");
    // The tuned blob is a model whose last dense layer differs, nothing else.
    let tuned = picocnn::model::writer::AlignedBytes::from(std::fs::read(&out).unwrap());
    let original = std::fs::read(model).unwrap();
    assert!(picocnn::model::Model::parse(tuned.as_bytes()).is_ok());
    assert_eq!(tuned.as_bytes().len(), original.len());
    assert_ne!(tuned.as_bytes(), &original[..]);
    // The same seed gives the same bytes.
    let again = dir.join("again.pcnn");
    let (code, _) = run(again.to_str().unwrap());
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&again).unwrap(), tuned.as_bytes());
    // Another set than the recorded one: the written blob records it.
    let deeper = dir.join("deeper.pcnn");
    let o = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .args([
            "finetune",
            "--model",
            model,
            "--data",
            data,
            "--epochs",
            "1",
            "--limit",
            "20",
            "--lr",
            "0.003",
            "--trainable",
            "1",
            "--trainable-biases",
            "all",
            "--out",
        ])
        .arg(&deeper)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("training state 4999 bytes"), "{text}");
    let deeper = picocnn::model::writer::AlignedBytes::from(std::fs::read(&deeper).unwrap());
    let m = picocnn::model::Model::parse(deeper.as_bytes()).unwrap();
    assert_eq!(m.train_len(), 4_999);
    assert_eq!(m.op(0).train, picocnn::model::Train::Bias);
    let (code, text) = picocnn(&[
        "finetune",
        "--model",
        model,
        "--data",
        data,
        "--out",
        "x.pcnn",
        "--trainable-biases",
        "all",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("needs --trainable"), "{text}");
    // A float model, a bad rate: one-line errors, nothing written.
    let f16 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_f16.pcnn"
    );
    let bad = dir.join("bad.pcnn");
    let (code, text) = picocnn(&[
        "finetune",
        "--model",
        f16,
        "--data",
        data,
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        text.contains("fine-tuning needs a model ending in an int8 softmax"),
        "{text}"
    );
    let (code, text) = picocnn(&[
        "finetune",
        "--model",
        model,
        "--data",
        data,
        "--out",
        bad.to_str().unwrap(),
        "--lr=0",
    ]);
    assert_eq!(code, 1);
    assert!(text.contains("--lr must be a positive number"), "{text}");
    assert!(!bad.exists());
}

/// Files in `dir`, for checking that a failed command left nothing behind.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn restyle_writes_the_styled_test_digits_and_refuses_bad_input() {
    use picocnn::data::style::{restyle, Style};
    let d = temp_dir("restyle");
    let mnist = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let run = |out: &Path, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args(["restyle", "--data", mnist, "--out", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (a, b) = (d.join("a"), d.join("b"));
    let (code, text) = run(&a, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("300 images to tune on, 1700 held out"),
        "{text}"
    );
    assert_eq!(run(&b, &[]).0, 0);
    let files = entries(&a);
    assert_eq!(files.len(), 5, "{files:?}");
    for f in &files {
        let name = f.file_name().unwrap();
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(b.join(name)).unwrap()
        );
    }
    // The first 300 test digits in the style, then the rest, in order.
    let (_, digits) = picocnn::data::load_mnist(mnist).unwrap();
    let (tune, held) = picocnn::data::load_mnist(&a).unwrap();
    assert_eq!((tune.len(), held.len()), (300, 1700));
    for (set, at, from) in [
        (&tune, 0, 0),
        (&tune, 299, 299),
        (&held, 0, 300),
        (&held, 1699, 1999),
    ] {
        let want = restyle(digits.image(from), digits.shape(), Style::default()).unwrap();
        assert_eq!(set.image(at), &want[..], "image {from}");
        assert_eq!(set.label(at), digits.label(from));
    }
    // No shear, no thickening: the digits themselves.
    let c = d.join("c");
    let (code, text) = run(&c, &["--shear", "0", "--thicken", "0", "--tune", "1999"]);
    assert_eq!(code, 0, "{text}");
    let (tune, held) = picocnn::data::load_mnist(&c).unwrap();
    assert_eq!(tune.image(1234), digits.image(1234));
    assert_eq!(held.image(0), digits.image(1999));
    // Class folders of PNGs are read too.
    tiny_dataset(&d.join("tiny"));
    let (code, text) = picocnn(&[
        "restyle",
        "--data",
        d.join("tiny").to_str().unwrap(),
        "--out",
        d.join("tiny-styled").to_str().unwrap(),
        "--tune",
        "4",
    ]);
    assert_eq!(code, 0, "{text}");
    let (tune, held) = picocnn::data::load_mnist(d.join("tiny-styled")).unwrap();
    assert_eq!((tune.len(), held.len(), tune.shape().w), (4, 20, 12));
    // Bad input: one line, nothing written or changed.
    let before = entries(&d);
    let a_bytes: Vec<Vec<u8>> = entries(&a)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let x = d.join("x");
    for (out, extra, code, needle) in [
        (&x, vec!["--tune", "0"], 1, "--tune 0 must be at least 1"),
        (
            &x,
            vec!["--tune", "2000"],
            1,
            "data/mnist has 2000 test images",
        ),
        (
            &x,
            vec!["--thicken", "65"],
            1,
            "--thicken 65 is more than 64",
        ),
        (
            &x,
            vec!["--shear", "nan"],
            1,
            "--shear must be a finite number",
        ),
        (&x, vec!["--shear", "slanted"], 2, "slanted"),
        (&a, vec![], 1, "already exists"),
        (&d.join("no/such/folder"), vec![], 1, "there is no folder"),
    ] {
        let (got, err) = run(out, &extra);
        assert_eq!(got, code, "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let (got, err) = picocnn(&[
        "restyle",
        "--data",
        "/nonexistent",
        "--out",
        x.to_str().unwrap(),
    ]);
    assert_eq!(got, 1);
    assert!(err.contains("/nonexistent"), "{err}");
    assert_eq!(entries(&d), before);
    let a_after: Vec<Vec<u8>> = entries(&a)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(a_after == a_bytes);
}

/// The float fine-tuner trains exactly the layers asked for: every other
/// parameter is bit for bit the checkpoint's.
#[test]
fn finetune_f32_trains_only_the_chosen_layers() {
    let d = temp_dir("finetune-f32");
    tiny_dataset(&d.join("data"));
    let data = d.join("data").display().to_string();
    let ckpt = d.join("m.safetensors").display().to_string();
    let (code, err) = picocnn(&[
        "train", "--model", "lenet5", "--data", &data, "--epochs", "1", "--batch", "8", "--out",
        &ckpt,
    ]);
    assert_eq!(code, 0, "{err}");
    let tensors = |path: &str| -> Vec<(String, Vec<u8>)> {
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(name, t)| (name, t.data().to_vec()))
            .collect();
        v.sort();
        v
    };
    let original = tensors(&ckpt);
    assert_eq!(original.len(), 10);
    // (flags, trainable parameters, tensors that change)
    for (flags, count, trained) in [
        (
            vec!["--train-last", "1"],
            170,
            vec!["logits.bias", "logits.weight"],
        ),
        (
            vec!["--train-last", "2", "--train-biases"],
            10_476,
            vec![
                "conv1.bias",
                "conv2.bias",
                "dense1.bias",
                "dense2.bias",
                "dense2.weight",
                "logits.bias",
                "logits.weight",
            ],
        ),
    ] {
        let out = d.join("tuned.safetensors").display().to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args([
                "finetune-f32",
                "--model",
                &ckpt,
                "--data",
                &data,
                "--out",
                &out,
            ])
            .args(["--epochs", "2", "--lr", "0.05"])
            .args(&flags)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{flags:?}: {text}");
        assert!(text.contains("epoch 2/2: mean loss"), "{text}");
        assert!(
            text.contains(&format!(
                "(24 images); wrote {out} ({count} trainable parameters)"
            )),
            "{text}"
        );
        for ((name, before), (name2, after)) in original.iter().zip(tensors(&out)) {
            assert_eq!(name, &name2);
            let changed = before != &after;
            assert_eq!(
                changed,
                trained.contains(&name.as_str()),
                "{flags:?}: {name}"
            );
        }
    }
    // Bad input: one line, nothing written.
    let bad = d.join("bad.safetensors").display().to_string();
    let mnist = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let blob = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_i8.pcnn"
    );
    for (model, data, extra, code, needle) in [
        (
            ckpt.as_str(),
            data.as_str(),
            vec!["--lr=0"],
            1,
            "--lr must be a positive number",
        ),
        (
            ckpt.as_str(),
            data.as_str(),
            vec!["--train-last", "0"],
            2,
            "--train-last",
        ),
        (blob, data.as_str(), vec![], 1, "not a safetensors file"),
        (
            ckpt.as_str(),
            mnist,
            vec![],
            1,
            "the model takes 12x12x1 images",
        ),
    ] {
        let mut args = vec![
            "finetune-f32",
            "--model",
            model,
            "--data",
            data,
            "--out",
            &bad,
        ];
        args.extend(extra);
        let (got, err) = picocnn(&args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!Path::new(&bad).exists());
}

/// An `.npy` of `shape` holding `values`.
fn npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], values: &[T]) {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    w.extend(values.iter().copied()).unwrap();
    w.finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `run` takes NumPy tensors through a model blob, batch first, and writes
/// the interpreter's outputs as NumPy; wrong files, types and shapes get
/// their errors and write nothing.
#[test]
fn run_takes_numpy_tensors_through_a_model() {
    use picocnn::model::writer::AlignedBytes;
    use picocnn::model::{Interpreter, Model};
    let dir = temp_dir("run-npy");
    let model_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/lenet5_mnist_i8.pcnn"
    );
    let mut rng = picocnn::rng::Rng::new(4);
    let x: Vec<i8> = (0..5 * 784).map(|_| rng.next_u64() as i8).collect();
    let (input, output) = (dir.join("x.npy"), dir.join("y.npy"));
    npy(&input, &[5, 28, 28, 1], &x);
    let run = |input: &Path, model: &str| {
        Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args(["run", "--model", model, "--threads", "2"])
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap()
    };
    let out = run(&input, model_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&output).unwrap();
    let y = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(y.shape(), &[5, 10]);
    let y: Vec<i8> = y.into_vec().unwrap();
    // The interpreter, one image at a time.
    let blob = AlignedBytes::from(std::fs::read(model_path).unwrap());
    let model = Model::parse(blob.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = Interpreter::new(&model, &mut arena).unwrap();
    for (k, image) in x.chunks(784).enumerate() {
        it.input_mut::<i8>(0).unwrap().copy_from_slice(image);
        it.run().unwrap();
        assert_eq!(
            it.output::<i8>(0).unwrap(),
            &y[k * 10..(k + 1) * 10],
            "image {k}"
        );
    }
    // One image as [H, W, C], and the batch flattened as [N, H*W*C].
    npy(&input, &[28, 28, 1], &x[..784]);
    assert!(run(&input, model_path).status.success());
    npy(&input, &[5, 784], &x);
    assert!(run(&input, model_path).status.success());
    std::fs::remove_file(&output).unwrap();
    // Each wrong input: one line naming the problem, no output file.
    let fails = |input: &Path, model: &str, says: &str| {
        let out = run(input, model);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{says}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!output.exists(), "{says}: wrote {}", output.display());
    };
    npy(&input, &[5, 28, 28, 1], &vec![0.5f64; 5 * 784]);
    fails(&input, model_path, "dtype=np.int8");
    npy(&input, &[5, 28, 27, 1], &x[..5 * 28 * 27]);
    fails(&input, model_path, "[N, 28, 28, 1]");
    std::fs::write(&input, b"not numpy").unwrap();
    fails(&input, model_path, "not a NumPy .npy file");
    fails(&dir.join("missing.npy"), model_path, "missing.npy");
    npy(&input, &[5, 28, 28, 1], &x);
    let branchy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/branchy_i8.pcnn");
    fails(&input, branchy, "2 outputs");
}

/// `import` writes a TensorFlow Lite model as a blob whose outputs (through
/// `run`) are the reference kernels'; other files get one line and no blob.
#[test]
fn import_writes_a_blob_with_the_reference_outputs() {
    let dir = temp_dir("import");
    let tflite = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/tflite/lenet5_int8.tflite"
    );
    let x = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/tflite/lenet5_int8_x.npy"
    );
    let want = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/tflite/lenet5_int8_y.npy"
    );
    let (blob, y) = (dir.join("lenet5.pcnn"), dir.join("y.npy"));
    let cli = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_picocnn"))
            .args(args)
            .output()
            .unwrap()
    };
    let os = |s: &str| std::ffi::OsStr::new(s).to_os_string();
    let out = cli(&[&os("import"), &os(tflite), &os("--out"), blob.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("arena 2975 bytes"));
    let b = blob.to_str().unwrap();
    let out = cli(&[
        &os("run"),
        &os("--model"),
        &os(b),
        &os("--input"),
        &os(x),
        &os("--output"),
        y.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| -> Vec<i8> {
        let bytes = std::fs::read(p).unwrap();
        npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap()
    };
    assert_eq!(read(&y), read(Path::new(want)));
    // Labels and the pixels' normalisation go into the blob.
    let labels = dir.join("labels.txt");
    std::fs::write(
        &labels,
        (0..10).map(|d| format!("digit {d}\n")).collect::<String>(),
    )
    .unwrap();
    let args = [
        &os("import"),
        &os(tflite),
        &os("--out"),
        blob.as_os_str(),
        &os("--labels"),
        labels.as_os_str(),
        &os("--normalise"),
        &os("0.00392157,0"),
    ];
    let out = cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = picocnn::model::writer::AlignedBytes::from(std::fs::read(&blob).unwrap());
    let model = picocnn::model::Model::parse(bytes.as_bytes()).unwrap();
    assert_eq!(model.label(7), Some("digit 7"));
    assert_eq!(model.normalisation(), (0.00392157, 0.0));
    let out = cli(&[
        &os("import"),
        &os(tflite),
        &os("--out"),
        blob.as_os_str(),
        &os("--normalise"),
        &os("x"),
    ]);
    assert!(!out.status.success());
    // Not TensorFlow Lite: one line each, no blob.
    let other = dir.join("other.pcnn");
    let junk = dir.join("junk.tflite");
    std::fs::write(&junk, b"no flatbuffer here").unwrap();
    let junk_onnx = dir.join("junk.onnx");
    std::fs::write(&junk_onnx, b"\xff\xff no protobuf here").unwrap();
    for (model, says) in [
        (x, "TensorFlow Lite (.tflite) and ONNX (.onnx) files"),
        (junk.to_str().unwrap(), "not a TensorFlow Lite model"),
        (junk_onnx.to_str().unwrap(), "not an ONNX model"),
    ] {
        let out = cli(&[&os("import"), &os(model), &os("--out"), other.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{says}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!other.exists());
    }
}

#[test]
fn import_reads_onnx_and_writes_rust_source() {
    let dir = temp_dir("import-onnx");
    let onnx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/models/onnx/dscnn_qdq.onnx"
    );
    let (blob, rust) = (dir.join("dscnn.pcnn"), dir.join("dscnn.rs"));
    let out = Command::new(env!("CARGO_BIN_EXE_picocnn"))
        .arg("import")
        .arg(onnx)
        .arg("--out")
        .arg(&blob)
        .arg("--rust")
        .arg(&rust)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = picocnn::model::writer::AlignedBytes::from(std::fs::read(&blob).unwrap());
    let model = picocnn::model::Model::parse(bytes.as_bytes()).unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("arena {} bytes", model.arena_len())),
        "{said}"
    );
    let src = std::fs::read_to_string(&rust).unwrap();
    assert!(
        src.contains(&format!("ARENA_LEN: usize = {}", model.arena_len())),
        "{src}"
    );
}
