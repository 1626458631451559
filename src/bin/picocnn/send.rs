//! `picocnn send`: images to a board over a serial port, through the
//! library's protocol client: to classify, or labelled to teach it.

use crate::common::At;
use anyhow::{anyhow, bail, Result};
use picocnn::data::Dataset;
use picocnn::protocol::{Answer, Client, ClientError, Kind, Learned, Reply, Status};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct SendArgs {
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
    /// A folder with one sub-folder of PNGs per class, one per class of the
    /// board's model in name order (empty ones allowed): teach the board
    /// with them first, one learn request per image.
    #[arg(long)]
    teach: Option<PathBuf>,
    /// Passes over the --teach images, each in its own shuffled order.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Seed of the --teach images' order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PNG images to send.
    images: Vec<PathBuf>,
}

/// One request and its reply; errors name `what` (the port or the image).
fn request<P: std::io::Read + std::io::Write>(
    client: &mut Client<P>,
    kind: Kind,
    payload: &[u8],
    what: &str,
) -> Result<Reply> {
    client.request(kind, payload).map_err(|e| explain(e, what))
}

/// The class folders in `dir`, of images of `shape` (the board's).
fn load_folder(dir: &Path, shape: picocnn::Shape) -> Result<Dataset> {
    let set = picocnn::data::load_image_folder(dir)?;
    if set.shape() != shape {
        bail!(
            "{}: images are {}, the board's model takes {shape}",
            dir.display(),
            set.shape()
        );
    }
    Ok(set)
}

/// A client error as one line about `what`.
fn explain(e: ClientError, what: &str) -> anyhow::Error {
    match e {
        ClientError::Encode(e) => anyhow!("{e}"),
        ClientError::Timeout(_) => {
            anyhow!("{what}: {e} (is the board running the picocnn server?)")
        }
        ClientError::Refused(s) if s == Status::CannotLearn as u8 => anyhow!(
            "{what}: {e} (its firmware serves without a fine-tuner, or has no room for one)"
        ),
        e => anyhow!("{what}: {e}"),
    }
}

/// Teaches the board `set` for `epochs` passes, each in an order shuffled
/// from `seed`: a line per image (the board's prediction before the step and
/// the loss) and per pass (the share it already got right, the mean loss).
fn teach<P: std::io::Read + std::io::Write>(
    client: &mut Client<P>,
    set: &Dataset,
    epochs: usize,
    seed: u64,
) -> Result<()> {
    for epoch in 0..epochs {
        let (mut right, mut loss) = (0usize, 0u64);
        let order = picocnn::rng::shuffled(set.len(), seed.wrapping_add(epoch as u64));
        for &i in &order {
            let name = format!("{}#{i}", set.class_names()[set.label(i)]);
            let label = set.label(i) as u16;
            let Learned {
                predicted,
                loss_q12,
            } = client
                .learn(set.image(i), label)
                .map_err(|e| explain(e, &name))?;
            out!(
                "{name}: predicted {predicted}, loss {:.4} (Q4.12 {loss_q12})",
                loss_q12 as f64 / 4096.0
            );
            right += (predicted == label) as usize;
            loss += loss_q12 as u64;
        }
        out!(
            "epoch {}/{epochs}: {right} of {} right before their step ({:.2} %), mean loss {:.4}",
            epoch + 1,
            set.len(),
            100.0 * right as f64 / set.len().max(1) as f64,
            loss as f64 / 4096.0 / set.len().max(1) as f64
        );
    }
    Ok(())
}

pub fn run(a: SendArgs) -> Result<()> {
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        bail!(
            "--timeout {} must be a positive number of seconds",
            a.timeout
        );
    }
    if a.images.is_empty() && a.dir.is_none() && a.teach.is_none() {
        bail!("give PNG images, --dir or --teach");
    }
    if a.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let timeout = Duration::from_secs_f64(a.timeout);
    let port = serialport::new(&a.port, a.baud)
        .timeout(Duration::from_millis(50))
        .open()
        .at(&a.port)?;
    let mut client = Client::new(port, timeout);
    let info = request(&mut client, Kind::Info, &[], &a.port)?;
    if info.status != Status::Ok as u8 || info.payload.len() != 8 {
        bail!("{}: the board did not describe its model", a.port);
    }
    let info = info.payload;
    let field = |i: usize| u16::from_le_bytes([info[2 * i], info[2 * i + 1]]) as usize;
    let shape = picocnn::Shape::new(field(0), field(1), field(2));
    let classes = field(3);
    let lessons = match &a.teach {
        Some(dir) => {
            let set = load_folder(dir, shape)?;
            if set.classes() != classes {
                bail!(
                    "{}: {} class folders, the board's model has {classes} classes \
                     (one folder per class, in name order)",
                    dir.display(),
                    set.classes()
                );
            }
            Some(set)
        }
        None => None,
    };
    let mut items: Vec<(String, Vec<u8>, Option<usize>)> = Vec::new();
    for path in &a.images {
        let (s, img) = picocnn::data::load_png(path)?;
        if s != shape {
            bail!(
                "{}: image is {s}, the board's model takes {shape}",
                path.display()
            );
        }
        items.push((path.display().to_string(), img, None));
    }
    if let Some(dir) = &a.dir {
        let set = load_folder(dir, shape)?;
        for i in 0..set.len() {
            let name = format!("{}#{i}", set.class_names()[set.label(i)]);
            items.push((name, set.image(i).to_vec(), Some(set.label(i))));
        }
    }
    if let Some(set) = &lessons {
        teach(&mut client, set, a.epochs, a.seed)?;
    }
    let (mut labelled, mut correct) = (0usize, 0usize);
    for (name, img, label) in &items {
        let reply = request(&mut client, Kind::Classify, img, name)?;
        let status = reply.status;
        let answer = match (Status::from_u8(status), Answer::from_bytes(&reply.payload)) {
            (Some(Status::Ok), Some(answer)) => answer,
            (Some(s), _) => bail!("{name}: the board answered: {}", s.describe()),
            (None, _) => bail!("{name}: unknown reply status {status}"),
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
