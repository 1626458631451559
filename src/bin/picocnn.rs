//! `picocnn`: train networks on the host, quantize and export them, and run
//! the exported blobs through the no_std interpreter.
//!
//! ```text
//! picocnn train --model lenet5 --data data/mnist --epochs 10 --out lenet5.safetensors
//!               [--seed N] [--threads N] [--lr X] [--batch N] [--optimizer adam|adamw|sgd]
//!               [--schedule constant|cosine|step] [--label-smoothing X] [--augment SPEC]
//!               [--log train.jsonl] [--plot curve.png] [--resume ckpt.safetensors]
//!               [--from float.safetensors --qat]
//! picocnn augment --data data/mnist --preview grid.png [--augment SPEC] [--seed N]
//! picocnn export --model ckpt.safetensors --data data/mnist --precision int8|f16|f32
//!                --out m.pcnn [--rust m.rs] [--calibration N] [--percentile P]
//! picocnn eval --model m.pcnn --data data/mnist [--json] [--confusion c.png]
//! picocnn inspect m.pcnn [--json]
//! picocnn predict --model m.pcnn digit.png ...
//! picocnn send --port /dev/ttyACM0 [--baud 115200] digit.png ... | --dir folder
//! ```

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use picocnn::augment::Pipeline;
use picocnn::data::{load_image_folder, load_mnist, Dataset};
use picocnn::train::{
    checkpoint, zoo, EpochReport, Net, Optimizer, Schedule, TrainConfig, Trainer,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `println!` that ends the program quietly when stdout is gone (a closed
/// pipe, as with `| head`), the way command-line tools do, instead of a
/// panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

#[derive(Parser)]
#[command(
    name = "picocnn",
    version,
    about = "Convolutional networks for microcontrollers: train, augment, quantize, export, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model on MNIST-style IDX files or a folder of PNGs.
    Train(TrainArgs),
    /// Show what an augmentation pipeline does: a PNG grid with originals
    /// in the first column and augmented variants beside them.
    Augment(AugmentArgs),
    /// Write a trained checkpoint as a model blob (and Rust source).
    Export(ExportArgs),
    /// Run a model blob on the test images through the no_std interpreter:
    /// accuracy, per-class accuracy, confusion matrix.
    Eval(EvalArgs),
    /// Per-layer op, output shape, parameters, multiply-accumulates and
    /// bytes of a model blob.
    Inspect(InspectArgs),
    /// Classify PNG images with a model blob: class, probability, top 3.
    Predict(PredictArgs),
    /// Send images to a board over a serial port and print its answers
    /// (protocol: docs/protocol.md).
    Send(SendArgs),
}

#[derive(clap::Args)]
struct SendArgs {
    /// The board's serial port (e.g. /dev/ttyACM0, or QEMU's /dev/pts/N).
    #[arg(long)]
    port: String,
    /// Line speed.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// A folder with one sub-folder of PNGs per class: send them all and
    /// report the accuracy.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// PNG images to send.
    images: Vec<PathBuf>,
}

/// One request and its reply over `port`: (status, payload).
fn exchange(
    port: &mut dyn serialport::SerialPort,
    kind: picocnn::protocol::Kind,
    payload: &[u8],
    timeout: std::time::Duration,
    what: &str,
) -> Result<(u8, Vec<u8>), String> {
    use picocnn::protocol::{
        encode, Event, Receiver, CRC_LEN, HEADER_LEN, REPLY_MAGIC, REQUEST_MAGIC,
    };
    let mut frame = vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
    let n = encode(REQUEST_MAGIC, kind as u8, payload, &mut frame).map_err(|e| e.to_string())?;
    port.write_all(&frame[..n])
        .and_then(|_| port.flush())
        .map_err(|e| format!("{what}: writing to the port: {e}"))?;
    let mut rx = Receiver::<64>::with_magic(REPLY_MAGIC);
    let start = std::time::Instant::now();
    let mut buf = [0u8; 256];
    loop {
        if start.elapsed() > timeout {
            return Err(format!(
                "{what}: no reply within {:.1} s (is the board running the picocnn server?)",
                timeout.as_secs_f64()
            ));
        }
        let got = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => return Err(format!("{what}: reading the port: {e}")),
        };
        for &b in &buf[..got] {
            match rx.push(b) {
                Some(Event::Request { kind, .. }) => return Ok((kind, rx.payload().to_vec())),
                Some(Event::Error(s)) => {
                    return Err(format!("{what}: a broken reply ({})", s.describe()))
                }
                None => {}
            }
        }
    }
}

fn send_cmd(a: SendArgs) -> Result<(), String> {
    use picocnn::protocol::{Answer, Kind, Status};
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(format!(
            "--timeout {} must be a positive number of seconds",
            a.timeout
        ));
    }
    if a.images.is_empty() && a.dir.is_none() {
        return Err("give PNG images or --dir".into());
    }
    let timeout = std::time::Duration::from_secs_f64(a.timeout);
    let mut port = serialport::new(&a.port, a.baud)
        .timeout(std::time::Duration::from_millis(50))
        .open()
        .map_err(|e| format!("{}: {e}", a.port))?;
    let (status, info) = exchange(port.as_mut(), Kind::Info, &[], timeout, &a.port)?;
    if status != Status::Ok as u8 || info.len() != 8 {
        return Err(format!("{}: the board did not describe its model", a.port));
    }
    let field = |i: usize| u16::from_le_bytes([info[2 * i], info[2 * i + 1]]) as usize;
    let shape = picocnn::Shape::new(field(0), field(1), field(2));
    let mut items: Vec<(String, Vec<u8>, Option<usize>)> = Vec::new();
    for path in &a.images {
        let (s, img) = picocnn::data::load_png(path).map_err(|e| e.to_string())?;
        if s != shape {
            return Err(format!(
                "{}: image is {s}, the board's model takes {shape}",
                path.display()
            ));
        }
        items.push((path.display().to_string(), img, None));
    }
    if let Some(dir) = &a.dir {
        let set = picocnn::data::load_image_folder(dir).map_err(|e| e.to_string())?;
        if set.shape() != shape {
            return Err(format!(
                "{}: images are {}, the board's model takes {shape}",
                dir.display(),
                set.shape()
            ));
        }
        for i in 0..set.len() {
            let name = format!("{}#{i}", set.class_names()[set.label(i)]);
            items.push((name, set.image(i).to_vec(), Some(set.label(i))));
        }
    }
    let (mut labelled, mut correct) = (0usize, 0usize);
    for (name, img, label) in &items {
        let (status, body) = exchange(port.as_mut(), Kind::Classify, img, timeout, name)?;
        let answer = match (Status::from_u8(status), Answer::from_bytes(&body)) {
            (Some(Status::Ok), Some(answer)) => answer,
            (Some(s), _) => return Err(format!("{name}: the board answered: {}", s.describe())),
            (None, _) => return Err(format!("{name}: unknown reply status {status}")),
        };
        out!(
            "{name}: {} ({:.1} %); next {}, {}",
            answer.class,
            answer.confidence as f32 / 2.55,
            answer.runners_up[0],
            answer.runners_up[1]
        );
        if let Some(l) = label {
            labelled += 1;
            correct += (answer.class as usize == *l) as usize;
        }
    }
    if labelled > 0 {
        out!(
            "{labelled} images, {correct} correct: accuracy {:.2} %",
            100.0 * correct as f64 / labelled as f64
        );
    }
    Ok(())
}

#[derive(clap::Args)]
struct PredictArgs {
    /// The model blob.
    #[arg(long)]
    model: PathBuf,
    /// PNG images of the model's input size and colour type.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn predict_cmd(a: PredictArgs) -> Result<(), String> {
    let blob = read_blob(&a.model)?;
    let model = picocnn::model::Model::parse(blob.as_bytes())
        .map_err(|e| format!("{}: not a model ({e})", a.model.display()))?;
    let input = model.tensor(model.input(0).ok_or("model without input")?);
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = picocnn::model::Interpreter::new(&model, &mut arena).map_err(|e| e.to_string())?;
    for path in &a.images {
        let (shape, img) = picocnn::data::load_png(path).map_err(|e| e.to_string())?;
        if shape != input.shape {
            return Err(format!(
                "{}: image is {shape}, the model takes {} ({})",
                path.display(),
                input.shape,
                if input.shape.c == 1 { "grey" } else { "RGB" }
            ));
        }
        let p = classify(&mut it, input, model.normalisation(), &img)?;
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&x, &y| p[y].total_cmp(&p[x]).then(x.cmp(&y)));
        let label = |k: usize| {
            model
                .label(k)
                .map(str::to_string)
                .unwrap_or_else(|| k.to_string())
        };
        let top: Vec<String> = order
            .iter()
            .take(3)
            .map(|&k| format!("{} {:.1} %", label(k), 100.0 * p[k]))
            .collect();
        out!(
            "{}: {} ({:.1} %); top 3: {}",
            path.display(),
            label(order[0]),
            100.0 * p[order[0]],
            top.join(", ")
        );
    }
    Ok(())
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The model blob.
    #[arg(long)]
    model: PathBuf,
    /// The data (its test images are used).
    #[arg(long)]
    data: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also draw the confusion matrix as a PNG.
    #[arg(long)]
    confusion: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The model blob.
    model: PathBuf,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// A blob read from `path` on a 16-byte boundary.
fn read_blob(path: &Path) -> Result<picocnn::model::writer::AlignedBytes, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(picocnn::model::writer::AlignedBytes::from(bytes))
}

fn dtype_name(d: picocnn::model::DType) -> &'static str {
    match d {
        picocnn::model::DType::I8 => "int8",
        picocnn::model::DType::F16 => "f16",
        picocnn::model::DType::F32 => "f32",
    }
}

/// Runs `model` on image `img` (raw 0..255 pixels); returns the class.
fn classify(
    it: &mut picocnn::model::Interpreter<'_, '_>,
    info: picocnn::model::TensorInfo,
    norm: (f32, f32),
    img: &[u8],
) -> Result<Vec<f32>, String> {
    use picocnn::model::DType;
    let real = |p: u8| p as f32 * norm.0 + norm.1;
    match info.dtype {
        DType::I8 => {
            let q = info.qparams.ok_or("int8 input without quantization")?;
            let x = it.input_mut::<i8>(0).map_err(|e| e.to_string())?;
            x.iter_mut()
                .zip(img)
                .for_each(|(d, &p)| *d = q.quantize(real(p)));
        }
        DType::F16 => {
            let x = it.input_mut::<half::f16>(0).map_err(|e| e.to_string())?;
            x.iter_mut()
                .zip(img)
                .for_each(|(d, &p)| *d = half::f16::from_f32(real(p)));
        }
        DType::F32 => {
            let x = it.input_mut::<f32>(0).map_err(|e| e.to_string())?;
            x.iter_mut().zip(img).for_each(|(d, &p)| *d = real(p));
        }
    }
    it.run().map_err(|e| e.to_string())?;
    let out = it.model().output(0).ok_or("model without output")?;
    let oinfo = it.model().tensor(out);
    Ok(match oinfo.dtype {
        DType::I8 => {
            let q = oinfo.qparams.ok_or("int8 output without quantization")?;
            it.output::<i8>(0)
                .map_err(|e| e.to_string())?
                .iter()
                .map(|&v| q.dequantize(v))
                .collect()
        }
        DType::F16 => it
            .output::<half::f16>(0)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        DType::F32 => it.output::<f32>(0).map_err(|e| e.to_string())?.to_vec(),
    })
}

fn eval_cmd(a: EvalArgs) -> Result<(), String> {
    let blob = read_blob(&a.model)?;
    let model = picocnn::model::Model::parse(blob.as_bytes())
        .map_err(|e| format!("{}: not a model ({e})", a.model.display()))?;
    let (_, test) = load_data(&a.data)?;
    let input = model.tensor(model.input(0).ok_or("model without input")?);
    if input.shape != test.shape() {
        return Err(format!(
            "{}: the model takes {} images, {} holds {}",
            a.model.display(),
            input.shape,
            a.data.display(),
            test.shape()
        ));
    }
    let mut arena = vec![0u8; model.arena_len()];
    let mut it = picocnn::model::Interpreter::new(&model, &mut arena).map_err(|e| e.to_string())?;
    let k = test.classes();
    let mut confusion = vec![vec![0usize; k]; k];
    for i in 0..test.len() {
        let p = classify(&mut it, input, model.normalisation(), test.image(i))?;
        let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        if best < k {
            confusion[test.label(i)][best] += 1;
        }
    }
    let n = test.len();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n.max(1) as f64;
    let per_class: Vec<f64> = (0..k)
        .map(|c| confusion[c][c] as f64 / confusion[c].iter().sum::<usize>().max(1) as f64)
        .collect();
    if let Some(path) = &a.confusion {
        confusion_png(path, &confusion)?;
    }
    if a.json {
        let obj = serde_json::json!({
            "accuracy": accuracy,
            "n": n,
            "precision": dtype_name(input.dtype),
            "arena_bytes": model.arena_len(),
            "model_bytes": blob.as_bytes().len(),
            "per_class_accuracy": per_class,
            "confusion": confusion,
        });
        out!("{obj}");
        return Ok(());
    }
    out!(
        "{}: {} on {n} test images: accuracy {:.2} % ({} arena bytes, {} model bytes)",
        a.model.display(),
        dtype_name(input.dtype),
        100.0 * accuracy,
        model.arena_len(),
        blob.as_bytes().len()
    );
    out!(
        "per class: {}",
        per_class
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{c}: {:.1} %", 100.0 * v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out!("confusion (rows: true class, columns: predicted):");
    for row in &confusion {
        out!(
            "{}",
            row.iter().map(|v| format!("{v:5}")).collect::<String>()
        );
    }
    Ok(())
}

/// The confusion matrix as a heat map, 24 pixels a cell.
fn confusion_png(path: &Path, m: &[Vec<usize>]) -> Result<(), String> {
    let k = m.len();
    let cell = 24;
    let side = (k * cell) as u32;
    let mut rgb = vec![255u8; (side * side * 3) as usize];
    for (r, row) in m.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f32;
        for (c, &v) in row.iter().enumerate() {
            let f = v as f32 / total;
            // White for none, dark blue for all of a row.
            let px = [
                (255.0 * (1.0 - f)) as u8,
                (255.0 * (1.0 - 0.8 * f)) as u8,
                (255.0 - 100.0 * f) as u8,
            ];
            for y in r * cell..(r + 1) * cell - 1 {
                for x in c * cell..(c + 1) * cell - 1 {
                    let i = (y * k * cell + x) * 3;
                    rgb[i..i + 3].copy_from_slice(&px);
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, side, side);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    write_atomically(path, &bytes)
}

fn inspect_cmd(a: InspectArgs) -> Result<(), String> {
    let blob = read_blob(&a.model)?;
    let model = picocnn::model::Model::parse(blob.as_bytes())
        .map_err(|e| format!("{}: not a model ({e})", a.model.display()))?;
    let summary = picocnn::model::Summary::new(&model);
    if !a.json {
        out!("{summary}");
        out!(
            "arena {} bytes, model {} bytes",
            model.arena_len(),
            blob.as_bytes().len()
        );
        return Ok(());
    }
    let layers: Vec<serde_json::Value> = summary
        .layers()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "op": l.kind.name(),
                "dtype": dtype_name(l.dtype),
                "output": [l.output.h, l.output.w, l.output.c],
                "params": l.params,
                "macs": l.macs,
                "bytes": l.bytes,
            })
        })
        .collect();
    let obj = serde_json::json!({
        "name": model.name(),
        "layers": layers,
        "totals": {
            "params": summary.params(),
            "macs": summary.macs(),
            "bytes": summary.bytes(),
            "arena_bytes": model.arena_len(),
            "model_bytes": blob.as_bytes().len(),
        },
    });
    out!("{obj}");
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum Prec {
    Int8,
    F16,
    F32,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The checkpoint `picocnn train` wrote.
    #[arg(long)]
    model: PathBuf,
    /// The data it was trained on (calibration images, class names).
    #[arg(long)]
    data: PathBuf,
    /// Element type of the model.
    #[arg(long, value_enum, default_value_t = Prec::Int8)]
    precision: Prec,
    /// The model blob to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write Rust source with the blob as an aligned static and its
    /// arena size as a constant.
    #[arg(long)]
    rust: Option<PathBuf>,
    /// Training images used to calibrate int8 ranges.
    #[arg(long, default_value_t = 1000)]
    calibration: usize,
    /// Clip int8 ranges at this percentile (e.g. 99.99) instead of min/max.
    #[arg(long)]
    percentile: Option<f32>,
}

fn model_from_name(name: &str) -> Option<Model> {
    [
        Model::Lenet5,
        Model::AlexnetMini,
        Model::VggMini,
        Model::InceptionMini,
        Model::Resnet8,
    ]
    .into_iter()
    .find(|&m| model_name(m) == name)
}

/// Rust source holding `blob` as an aligned static.
fn rust_source(blob: &[u8], arena: usize, what: &str) -> String {
    let mut s = format!(
        "//! {what}, written by `picocnn export`: regenerate rather than edit.\n\n\
         /// Bytes on a 16-byte boundary, as `Model::parse` wants them.\n\
         #[repr(C, align(16))]\n\
         pub struct Aligned<T: ?Sized>(pub T);\n\n\
         /// Arena bytes the model needs: `static mut ARENA: [u8; ARENA_LEN]`.\n\
         pub const ARENA_LEN: usize = {arena};\n\n\
         /// Bytes of the model blob.\n\
         pub const MODEL_LEN: usize = {};\n\n\
         /// The model blob: `Model::parse(&MODEL.0)`.\n\
         pub static MODEL: Aligned<[u8; MODEL_LEN]> = Aligned([",
        blob.len()
    );
    for (i, b) in blob.iter().enumerate() {
        if i % 16 == 0 {
            s.push_str("\n   ");
        }
        s.push_str(&format!(" 0x{b:02x},"));
    }
    s.push_str("\n]);\n");
    s
}

fn export_cmd(a: ExportArgs) -> Result<(), String> {
    use picocnn::export::{export, ExportOptions, Precision, Ranges};
    let (train_set, _) = load_data(&a.data)?;
    let meta = checkpoint::read_metadata(&a.model).map_err(|e| e.to_string())?;
    let name = meta.get("model").map(String::as_str).unwrap_or("");
    let Some(model) = model_from_name(name) else {
        return Err(format!(
            "{}: not a picocnn training checkpoint (no known model in its metadata)",
            a.model.display()
        ));
    };
    let mut net = build(model, &train_set, 1)?;
    checkpoint::load(&mut net, &a.model).map_err(|e| e.to_string())?;
    if a.calibration == 0 {
        return Err("--calibration must be at least 1".into());
    }
    let n = a.calibration.min(train_set.len());
    let order = picocnn::data::shuffled(train_set.len(), 7);
    let calib: Vec<f32> = order[..n]
        .iter()
        .flat_map(|&i| train_set.image(i).iter().map(|&p| p as f32 / 255.0))
        .collect();
    let mut options = ExportOptions::new(match a.precision {
        Prec::Int8 => Precision::Int8,
        Prec::F16 => Precision::F16,
        Prec::F32 => Precision::F32,
    })
    .calibration(&calib);
    if let Some(p) = a.percentile {
        options.ranges = Ranges::Percentile(p);
    }
    options.name = name.to_string();
    options.labels = train_set.class_names().to_vec();
    let blob = export(&net, &options).map_err(|e| format!("{}: {e}", a.model.display()))?;
    let aligned = picocnn::model::writer::AlignedBytes::from(blob.clone());
    let parsed = picocnn::model::Model::parse(aligned.as_bytes()).map_err(|e| e.to_string())?;
    write_atomically(&a.out, &blob)?;
    if let Some(r) = &a.rust {
        let what = format!("{name} ({:?})", options.precision);
        write_atomically(r, rust_source(&blob, parsed.arena_len(), &what).as_bytes())?;
    }
    eprintln!(
        "wrote {}: {name}, {:?}, {} bytes, arena {} bytes",
        a.out.display(),
        options.precision,
        blob.len(),
        parsed.arena_len()
    );
    Ok(())
}

#[derive(clap::Args)]
struct AugmentArgs {
    /// A folder with MNIST IDX files or `train/` and `test/` PNG folders.
    #[arg(long)]
    data: PathBuf,
    /// The PNG grid to write.
    #[arg(long)]
    preview: PathBuf,
    /// The pipeline (as for `train --augment`).
    #[arg(long, default_value = "digits")]
    augment: Pipeline,
    /// Seed of the image choice and of the augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows (images) of the grid.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Augmented variants per image.
    #[arg(long, default_value_t = 8)]
    variants: usize,
}

/// The preview grid: one row per training image, the original first.
fn augment_preview(a: AugmentArgs) -> Result<(), String> {
    if a.rows == 0 || a.variants == 0 || a.rows > 64 || a.variants > 64 {
        return Err("--rows and --variants must be between 1 and 64".into());
    }
    let (train_set, _) = load_data(&a.data)?;
    let shape = train_set.shape();
    let (zoom, gap) = (3usize, 2usize);
    let (cell_h, cell_w) = (shape.h * zoom + gap, shape.w * zoom + gap);
    let (w, h) = ((a.variants + 1) * cell_w + gap, a.rows * cell_h + gap);
    let mut rgb = vec![64u8; w * h * 3];
    let order = picocnn::data::shuffled(train_set.len(), a.seed);
    let rows: Vec<usize> = order.iter().take(a.rows).copied().collect();
    let len = shape.len();
    // Every cell as an image; the variants then mixed as one batch, so the
    // grid shows mixup or cutmix too.
    let mut cells = vec![0.0f32; rows.len() * (a.variants + 1) * len];
    let (mut batch, mut labels, mut seeds, mut at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, &i) in rows.iter().enumerate() {
        for col in 0..=a.variants {
            let mut img: Vec<f32> = train_set
                .image(i)
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect();
            let k = row * (a.variants + 1) + col;
            if col > 0 {
                let seed = a.seed ^ ((i as u64) << 20) ^ col as u64;
                a.augment.apply(&mut img, shape, seed);
                batch.extend_from_slice(&img);
                labels.push(train_set.label(i));
                seeds.push(seed);
                at.push(k);
            }
            cells[k * len..(k + 1) * len].copy_from_slice(&img);
        }
    }
    if a.augment
        .mix_batch(&mut batch, shape, &labels, train_set.classes(), &seeds)
        .is_some()
    {
        for (b, &k) in at.iter().enumerate() {
            cells[k * len..(k + 1) * len].copy_from_slice(&batch[b * len..(b + 1) * len]);
        }
    }
    for row in 0..rows.len() {
        for col in 0..=a.variants {
            let k = row * (a.variants + 1) + col;
            let img = &cells[k * len..(k + 1) * len];
            for y in 0..shape.h * zoom {
                for x in 0..shape.w * zoom {
                    let px = (y / zoom * shape.w + x / zoom) * shape.c;
                    let (oy, ox) = (gap + row * cell_h + y, gap + col * cell_w + x);
                    for k in 0..3 {
                        let v = img[px + k.min(shape.c - 1)];
                        rgb[(oy * w + ox) * 3 + k] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    write_atomically(&a.preview, &bytes)?;
    eprintln!(
        "wrote {}: {} images, {} variants each, pipeline: {}",
        a.preview.display(),
        a.rows,
        a.variants,
        a.augment
    );
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum Model {
    Lenet5,
    AlexnetMini,
    VggMini,
    InceptionMini,
    Resnet8,
}

#[derive(Clone, Copy, ValueEnum)]
enum Opt {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sched {
    Constant,
    Cosine,
    Step,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The architecture.
    #[arg(long, value_enum)]
    model: Model,
    /// A folder with MNIST IDX files (raw or .gz), or with `train/` and
    /// `test/` folders of class sub-folders of PNGs.
    #[arg(long)]
    data: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Checkpoint to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Images per step.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = Opt::Adam)]
    optimizer: Opt,
    /// Weight decay (AdamW, SGD).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Sched::Constant)]
    schedule: Sched,
    /// Label smoothing of the cross-entropy.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Augment training images on the fly: `digits`, `none`, or steps like
    /// `digits; noise(p=0.3, sigma=0.05); cutmix(p=0.5, alpha=1)`.
    #[arg(long, default_value = "none")]
    augment: Pipeline,
    /// JSON-lines log, one object per epoch.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Training-curve PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Continue from this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from this checkpoint's weights (epochs count from zero), e.g.
    /// to fine-tune a float model with `--qat`.
    #[arg(long, conflicts_with = "resume")]
    from: Option<PathBuf>,
    /// Quantization-aware training: int8 rounding of weights and
    /// activations in the forward pass, gradients straight through.
    #[arg(long)]
    qat: bool,
}

fn load_data(dir: &Path) -> Result<(Dataset, Dataset), String> {
    if dir.join("train").is_dir() && dir.join("test").is_dir() {
        let train = load_image_folder(dir.join("train")).map_err(|e| e.to_string())?;
        let test = load_image_folder(dir.join("test")).map_err(|e| e.to_string())?;
        if train.shape() != test.shape() || train.class_names() != test.class_names() {
            return Err(format!(
                "{}: train and test images differ in size or classes",
                dir.display()
            ));
        }
        return Ok((train, test));
    }
    load_mnist(dir).map_err(|e| e.to_string())
}

fn build(model: Model, data: &Dataset, seed: u64) -> Result<Net, String> {
    let f = match model {
        Model::Lenet5 => zoo::lenet5,
        Model::AlexnetMini => zoo::alexnet_mini,
        Model::VggMini => zoo::vgg_mini,
        Model::InceptionMini => zoo::inception_mini,
        Model::Resnet8 => zoo::resnet8,
    };
    f(data.shape(), data.classes(), seed)
        .map_err(|e| format!("cannot build the model for {} images: {e}", data.shape()))
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::Lenet5 => "lenet5",
        Model::AlexnetMini => "alexnet_mini",
        Model::VggMini => "vgg_mini",
        Model::InceptionMini => "inception_mini",
        Model::Resnet8 => "resnet8",
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Test accuracy (blue) and train accuracy (green) from 0 to 1, and train
/// loss (red) relative to its largest value, per epoch, as a 640x360 PNG.
fn plot(path: &Path, reports: &[EpochReport]) -> Result<(), String> {
    let (w, h) = (640usize, 360usize);
    let mut px = vec![255u8; w * h * 3];
    let (x0, x1, y0, y1) = (40usize, w - 20, 20usize, h - 30);
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < w && y < h {
            px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    };
    for x in x0..=x1 {
        put(x, y1, [0, 0, 0]);
    }
    for y in y0..=y1 {
        put(x0, y, [0, 0, 0]);
    }
    let n = reports.len().max(2) - 1;
    let max_loss = reports
        .iter()
        .map(|r| r.train_loss)
        .fold(f32::MIN_POSITIVE, f32::max);
    let xy = |i: usize, v: f32| {
        let x = x0 + (x1 - x0) * i / n.max(1);
        let y = y1 as f32 - (y1 - y0) as f32 * v.clamp(0.0, 1.0);
        (x as f32, y)
    };
    type Series = (fn(&EpochReport) -> f32, [u8; 3]);
    let series: [Series; 3] = [
        (|r| r.test_accuracy, [31, 119, 180]),
        (|r| r.train_accuracy, [44, 160, 44]),
        (|r| r.train_loss, [214, 39, 40]),
    ];
    for (k, (f, color)) in series.iter().enumerate() {
        let v = |r: &EpochReport| if k == 2 { f(r) / max_loss } else { f(r) };
        for i in 1..reports.len() {
            let (ax, ay) = xy(i - 1, v(&reports[i - 1]));
            let (bx, by) = xy(i, v(&reports[i]));
            let steps = ((bx - ax).abs().max((by - ay).abs()) as usize).max(1);
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (x, y) = (ax + (bx - ax) * t, ay + (by - ay) * t);
                for d in 0..2 {
                    put(x as usize, y as usize + d, *color);
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&px).map_err(|e| e.to_string())?;
    }
    write_atomically(path, &bytes)
}

fn train(a: TrainArgs) -> Result<(), String> {
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(format!("--lr {} must be a positive number", a.lr));
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        return Err(format!(
            "--label-smoothing {} must be in [0, 1)",
            a.label_smoothing
        ));
    }
    if !(a.weight_decay >= 0.0 && a.weight_decay.is_finite()) {
        return Err(format!(
            "--weight-decay {} must be a non-negative number",
            a.weight_decay
        ));
    }
    let (train_set, test_set) = load_data(&a.data)?;
    let mut net = build(a.model, &train_set, a.seed)?;
    let mut done = 0usize;
    // The weights of a checkpoint of this architecture, and its metadata.
    let load = |net: &mut Net, ckpt: &Path| -> Result<HashMap<String, String>, String> {
        let meta = checkpoint::load(net, ckpt).map_err(|e| e.to_string())?;
        match meta.get("model").map(String::as_str) {
            Some(m) if m == model_name(a.model) => Ok(meta),
            other => Err(format!(
                "{}: a checkpoint of {}, not {}",
                ckpt.display(),
                other.unwrap_or("an unknown model"),
                model_name(a.model)
            )),
        }
    };
    if let Some(ckpt) = &a.from {
        load(&mut net, ckpt)?;
    }
    if let Some(ckpt) = &a.resume {
        let meta = load(&mut net, ckpt)?;
        done = meta.get("epochs").and_then(|e| e.parse().ok()).unwrap_or(0);
        if done >= a.epochs as usize {
            return Err(format!(
                "{}: already trained for {done} epochs (--epochs {})",
                ckpt.display(),
                a.epochs
            ));
        }
    }
    let optimizer = match a.optimizer {
        Opt::Adam => Optimizer::adam(),
        Opt::Adamw => Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            weight_decay: a.weight_decay,
        },
        Opt::Sgd => Optimizer::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: a.weight_decay,
        },
    };
    let schedule = match a.schedule {
        Sched::Constant => Schedule::Constant,
        Sched::Cosine => Schedule::Cosine,
        Sched::Step => Schedule::Step {
            every: (a.epochs as usize / 3).max(1),
            gamma: 0.1,
        },
    };
    let config = TrainConfig {
        epochs: a.epochs as usize,
        batch_size: a.batch as usize,
        learning_rate: a.lr,
        optimizer,
        schedule,
        label_smoothing: a.label_smoothing,
        seed: a.seed,
        threads: a.threads,
        qat: a.qat,
        ..TrainConfig::default()
    };
    eprintln!(
        "{}: {} parameters, {} MACs; {} training and {} test images of {}",
        model_name(a.model),
        net.param_count(),
        net.macs(),
        train_set.len(),
        test_set.len(),
        train_set.shape()
    );
    let mut log = match &a.log {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    let mut failure = None;
    let total = a.epochs;
    let trainer = if a.augment == Pipeline::new() {
        Trainer::new(config)
    } else {
        Trainer::new(config).augment(a.augment.clone())
    };
    trainer.fit_from(
        &mut net,
        &train_set,
        &test_set,
        done,
        &mut |step, steps, loss| {
            if step == 1 {
                bar.reset();
                bar.set_length(steps as u64);
            }
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.4}"));
        },
        &mut |r| {
            bar.set_prefix(format!("{}/{total}", r.epoch + 1));
            bar.println(format!(
                "epoch {}/{total}: loss {:.4}, train {:.2} %, test {:.2} %, {:.2} s",
                r.epoch,
                r.train_loss,
                100.0 * r.train_accuracy,
                100.0 * r.test_accuracy,
                r.seconds
            ));
            if let Some(f) = log.as_mut() {
                let line = serde_json::json!({
                    "epoch": r.epoch,
                    "train_loss": r.train_loss,
                    "train_accuracy": r.train_accuracy,
                    "test_accuracy": r.test_accuracy,
                    "seconds": r.seconds,
                });
                if let Err(e) = writeln!(f, "{line}") {
                    failure.get_or_insert(format!("log: {e}"));
                }
            }
            reports.push(*r);
        },
    );
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let mut meta = HashMap::new();
    meta.insert("model".to_string(), model_name(a.model).to_string());
    meta.insert("epochs".to_string(), a.epochs.to_string());
    meta.insert("input".to_string(), train_set.shape().to_string());
    meta.insert("classes".to_string(), train_set.classes().to_string());
    checkpoint::save(&net, &a.out, meta).map_err(|e| e.to_string())?;
    if let Some(p) = &a.plot {
        plot(p, &reports)?;
    }
    if let Some(last) = reports.last() {
        eprintln!(
            "wrote {}: test accuracy {:.2} % after {} epochs",
            a.out.display(),
            100.0 * last.test_accuracy,
            last.epoch
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: what is wrong with the command (clap's first
            // paragraph, joined), without the usage block.
            let msg = e.to_string();
            let first: Vec<&str> = msg
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{}", first.join(" "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Augment(a) => augment_preview(a),
        Command::Export(a) => export_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Inspect(a) => inspect_cmd(a),
        Command::Predict(a) => predict_cmd(a),
        Command::Send(a) => send_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
