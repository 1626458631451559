//! `picocnn send`: images to a board over a serial port, through the
//! library's protocol client.

use crate::common::At;
use anyhow::{anyhow, bail, Result};
use picocnn::protocol::{Answer, Client, ClientError, Kind, Reply, Status};
use std::path::PathBuf;
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
    client.request(kind, payload).map_err(|e| match e {
        ClientError::Encode(e) => anyhow!("{e}"),
        ClientError::Timeout(_) => {
            anyhow!("{what}: {e} (is the board running the picocnn server?)")
        }
        e => anyhow!("{what}: {e}"),
    })
}

pub fn run(a: SendArgs) -> Result<()> {
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        bail!(
            "--timeout {} must be a positive number of seconds",
            a.timeout
        );
    }
    if a.images.is_empty() && a.dir.is_none() {
        bail!("give PNG images or --dir");
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
        let set = picocnn::data::load_image_folder(dir)?;
        if set.shape() != shape {
            bail!(
                "{}: images are {}, the board's model takes {shape}",
                dir.display(),
                set.shape()
            );
        }
        for i in 0..set.len() {
            let name = format!("{}#{i}", set.class_names()[set.label(i)]);
            items.push((name, set.image(i).to_vec(), Some(set.label(i))));
        }
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
