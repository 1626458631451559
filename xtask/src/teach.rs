//! `cargo xtask serial`'s teaching cases: `picocnn send --teach` fine-tunes the `serve`
//! firmware on test digits redrawn in a writing style the model never saw
//! (`picocnn::data::style`); every reply must equal the host fine-tuner's on the same
//! sequence, and the held-back digits' answers must improve. Then malformed learn requests,
//! each with its error reply, after which the board answers as before.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use picocnn::data::style::{restyle, Style};
use picocnn::data::{load_image_folder, Dataset};
use picocnn::learn::FineTuner;
use picocnn::model::writer::AlignedBytes;
use picocnn::model::Model;

/// The firmware's learning rate and rounding seed (`boards/firmware/src/lib.rs`,
/// `LEARNING_RATE` and `LEARNING_SEED`): the host repeats the board's steps with them.
const LEARNING_RATE: f32 = 0.01;
const LEARNING_SEED: u64 = 1;

/// Styled test digits taught (the first ones), and held back (the next ones).
const TAUGHT: usize = 200;
const HELD_BACK: usize = 200;

/// Passes over the taught digits, and the seed of their order (`send --epochs --seed`).
const EPOCHS: u64 = 1;
const ORDER_SEED: u64 = 1;

/// The least gain in held-back digits answered right, out of [`HELD_BACK`]. Measured on the
/// host: 126 -> 170.
const MIN_GAIN: usize = 30;

/// The digits as class folders, and what the host says of them.
pub struct Lessons {
    taught_dir: PathBuf,
    held_dir: PathBuf,
    held: Dataset,
    /// The host's class for each held-back digit, untaught and after the lessons.
    before: Vec<usize>,
    after: Vec<usize>,
    /// The host fine-tuner's step per taught digit, in `send --teach`'s order:
    /// `(name, predicted, loss in Q4.12)`.
    steps: Vec<(String, usize, u32)>,
    /// Bytes of the fine-tuner's training state.
    pub train_len: usize,
}

/// Writes the styled digits as class folders under `target/serial-teach` and runs the host's
/// fine-tuner over them as `picocnn send --teach` will send them.
pub fn prepare() -> Result<Lessons, String> {
    let root = crate::host_target_dir().join("serial-teach");
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let taught_dir = root.join("taught");
    let held_dir = root.join("held-back");
    for (dir, range) in [
        (&taught_dir, 0..TAUGHT),
        (&held_dir, TAUGHT..TAUGHT + HELD_BACK),
    ] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        for class in 0..test.classes() {
            let d = dir.join(class.to_string());
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        for i in range {
            let img = restyle(test.image(i), test.shape(), Style::default())
                .map_err(|e| e.to_string())?;
            let path = dir
                .join(test.label(i).to_string())
                .join(format!("{i:04}.png"));
            crate::host::write_png(&path, &img)?;
        }
    }
    // What `send` reads: the folders' order, not MNIST's.
    let taught = load_image_folder(&taught_dir).map_err(|e| e.to_string())?;
    let held = load_image_folder(&held_dir).map_err(|e| e.to_string())?;

    let blob = AlignedBytes::from(
        std::fs::read(crate::root().join(crate::host::MODEL)).map_err(|e| e.to_string())?,
    );
    let model = Model::parse(blob.as_bytes()).map_err(|e| e.to_string())?;
    let mut arena = vec![0u8; model.arena_len()];
    let train_len = FineTuner::train_len(&model).map_err(|e| e.to_string())?;
    let mut train = vec![0u8; train_len];
    let mut tuner = FineTuner::new(&model, &mut arena, &mut train, LEARNING_RATE, LEARNING_SEED)
        .map_err(|e| e.to_string())?;
    let q = model
        .tensor(model.input(0).ok_or("model without input")?)
        .qparams
        .ok_or("int8 input without quantization")?;
    let (scale, offset) = model.normalisation();
    let load = |tuner: &mut FineTuner<'_, '_, '_>, img: &[u8]| -> Result<(), String> {
        let x = tuner.input_mut::<i8>().map_err(|e| e.to_string())?;
        for (d, &p) in x.iter_mut().zip(img) {
            *d = q.quantize(p as f32 * scale + offset);
        }
        Ok(())
    };
    let classes = |tuner: &mut FineTuner<'_, '_, '_>| -> Result<Vec<usize>, String> {
        (0..held.len())
            .map(|i| {
                load(tuner, held.image(i))?;
                tuner.predict().map_err(|e| e.to_string())
            })
            .collect()
    };
    let before = classes(&mut tuner)?;
    let mut steps = Vec::new();
    for epoch in 0..EPOCHS {
        for i in picocnn::rng::shuffled(taught.len(), ORDER_SEED + epoch) {
            let label = taught.label(i);
            load(&mut tuner, taught.image(i))?;
            let r = tuner.step(label).map_err(|e| e.to_string())?;
            let name = format!("{}#{i}", taught.class_names()[label]);
            steps.push((name, r.predicted, r.loss_q12));
        }
    }
    let after = classes(&mut tuner)?;
    Ok(Lessons {
        taught_dir,
        held_dir,
        held,
        before,
        after,
        steps,
        train_len,
    })
}

/// The class on each `name: class (...)` line of `picocnn send --dir`.
fn answers(text: &str) -> Vec<Option<usize>> {
    text.lines()
        .filter(|l| l.contains('#'))
        .map(|l| {
            l.split_once(": ")
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|c| c.parse().ok())
        })
        .collect()
}

/// The held-back digits through `picocnn send --dir`: each answer must be `want`'s; returns
/// how many are right.
fn classify_held(
    picocnn: &Path,
    pty: &str,
    lessons: &Lessons,
    want: &[usize],
    when: &str,
) -> Result<usize, String> {
    let text = crate::host::send(picocnn, pty, &["--dir".as_ref(), lessons.held_dir.as_ref()])?;
    let got = answers(&text);
    if got.len() != want.len() || got.iter().zip(want).any(|(g, w)| *g != Some(*w)) {
        return Err(format!(
            "{when}, the held-back answers differ from the host's:\n{text}"
        ));
    }
    Ok(want
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == lessons.held.label(i))
        .count())
}

/// One `name: predicted P, loss L (Q4.12 N)` line of `picocnn send --teach`.
fn step_line(line: &str) -> Option<(String, usize, u32)> {
    let (name, rest) = line.split_once(": predicted ")?;
    let (predicted, rest) = rest.split_once(", loss ")?;
    let (_, q12) = rest.split_once("(Q4.12 ")?;
    Some((
        name.to_string(),
        predicted.parse().ok()?,
        q12.strip_suffix(')')?.parse().ok()?,
    ))
}

/// Held-back digits, untaught; `picocnn send --teach` over the taught ones (every prediction
/// and loss equal to the host fine-tuner's); the held-back digits again, answered as the
/// host's tuned model does and better by [`MIN_GAIN`].
pub fn check_teach(picocnn: &Path, pty: &str, lessons: &Lessons) -> Result<String, String> {
    let start = Instant::now();
    let right_before = classify_held(picocnn, pty, lessons, &lessons.before, "untaught")?;
    let t = Instant::now();
    let (epochs, seed) = (EPOCHS.to_string(), ORDER_SEED.to_string());
    let args = [
        "--teach".as_ref(),
        lessons.taught_dir.as_os_str(),
        "--epochs".as_ref(),
        epochs.as_ref(),
        "--seed".as_ref(),
        seed.as_ref(),
    ];
    let text = crate::host::send(picocnn, pty, &args)?;
    let taught_s = t.elapsed().as_secs_f64();
    let steps: Vec<_> = text.lines().filter_map(step_line).collect();
    if steps != lessons.steps {
        let at = steps.iter().zip(&lessons.steps).position(|(a, b)| a != b);
        return Err(format!(
            "{} steps, {} on the host; the first that differs: {:?} (host {:?})",
            steps.len(),
            lessons.steps.len(),
            at.map(|k| &steps[k]),
            at.map(|k| &lessons.steps[k])
        ));
    }
    let summary = text.lines().find(|l| l.starts_with("epoch ")).unwrap_or("");
    let right_after = classify_held(picocnn, pty, lessons, &lessons.after, "taught")?;
    if right_after < right_before + MIN_GAIN {
        return Err(format!(
            "held-back digits right: {right_before} -> {right_after} of {HELD_BACK}, \
             short of a gain of {MIN_GAIN}"
        ));
    }
    Ok(format!(
        "taught {} styled digits in {taught_s:.1} s, every prediction and loss equal to the \
         host fine-tuner's ({summary}); held-back digits right {right_before} -> {right_after} \
         of {HELD_BACK}, every answer the host's ({:.1} s in all)",
        steps.len(),
        start.elapsed().as_secs_f64()
    ))
}

/// Malformed learn requests, each with its error reply; then a classify request answered
/// with the taught weights, unchanged by them.
pub fn check_learn_frames(pty: &str, lessons: &Lessons) -> Result<String, String> {
    use picocnn::protocol::{Answer, Client, Kind, Status};
    let mut port = serialport::new(pty, 115_200)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|e| format!("{pty}: {e}"))?;
    let mut client = Client::new(port.as_mut(), Duration::from_secs(10));
    let image = lessons.held.image(0);
    let with_label = |label: &[u8]| [image, label].concat();
    let cases: [(&str, Vec<u8>, Status); 4] = [
        ("no label", image.to_vec(), Status::WrongSize),
        ("a 1-byte label", with_label(&[1]), Status::WrongSize),
        ("label 10", with_label(&[10, 0]), Status::BadLabel),
        ("label 65535", with_label(&[255, 255]), Status::BadLabel),
    ];
    for (what, payload, want) in &cases {
        let r = client
            .request(Kind::Learn, payload)
            .map_err(|e| format!("{what}: {e}"))?;
        if (r.status, r.payload.len()) != (*want as u8, 0) {
            return Err(format!(
                "{what}: status {} with {} bytes, expected {}",
                r.status,
                r.payload.len(),
                *want as u8
            ));
        }
    }
    let r = client
        .request(Kind::Classify, image)
        .map_err(|e| format!("classify after them: {e}"))?;
    let class = Answer::from_bytes(&r.payload).map(|a| a.class as usize);
    if r.status != Status::Ok as u8 || class != Some(lessons.after[0]) {
        return Err(format!(
            "classify after them: status {}, class {class:?}, host {}",
            r.status, lessons.after[0]
        ));
    }
    Ok(format!(
        "{} malformed learn requests answered with their errors; the taught board answers as before",
        cases.len()
    ))
}
