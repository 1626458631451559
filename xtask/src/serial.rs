//! `cargo xtask serial`: the `serve` firmware under QEMU with its UART on a pseudo-terminal.
//!
//! Per machine, seven cases: the demo's first digit in the decoded defmt log, test digits
//! through `picocnn send`, malformed frames with their error replies, twice as many valid
//! frames again under load (noise, bad CRCs and cut-off frames between them), the log's
//! report of the host, the tuner and the cut-off frame, then teaching (`teach.rs`): `picocnn send
//! --teach` on styled digits, and malformed learn requests. The answers must equal the host's,
//! from the same server code.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::host::{build_cli, send, write_png, MODEL};
use crate::machines::{self, Machine};
use crate::{Opts, Totals};

/// `cargo xtask serial`: `picocnn send` classifies test digits through the
/// firmware and the answers must equal the host's; malformed frames get their
/// error replies and the firmware goes on serving.
pub fn run(opts: &Opts) -> Totals {
    let mut totals = Totals::default();
    let (files, host) = match prepare_digits(opts.digits.min(2000)) {
        Ok(p) => p,
        Err(e) => {
            fail(&mut totals, "serial", &format!("preparing the digits: {e}"));
            return totals;
        }
    };
    let t = Instant::now();
    let lessons = match crate::teach::prepare() {
        Ok(l) => {
            println!(
                "serial: lessons prepared in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            l
        }
        Err(e) => {
            fail(
                &mut totals,
                "serial",
                &format!("preparing the lessons: {e}"),
            );
            return totals;
        }
    };
    let Some(picocnn) = build_cli() else {
        fail(&mut totals, "serial", "the picocnn command did not build");
        return totals;
    };
    let Some(tc) = machines::qemu_toolchain(opts) else {
        totals.failed += opts.machines.len();
        return totals;
    };
    for m in &opts.machines {
        let tag = format!("serial {}", m.name);
        if !m.serves {
            println!("{tag}: skipped: the serve firmware logs over Arm semihosting");
            totals.skipped += 1;
            continue;
        }
        // Built as the boards build it: int8 kernels only, those of the
        // model it serves.
        let serve = machines::build_int8_only(&tc, m, "serve").and_then(|elf| {
            let [text, data, bss] = crate::size::measure_size(&elf)?;
            println!(
                "{tag}: serve firmware: flash {} bytes (text + data), static RAM {} (data + bss)",
                text + data,
                data + bss
            );
            Serve::start(m, &elf)
        });
        let mut serve = match serve {
            Ok(s) => s,
            Err(e) => {
                fail(&mut totals, &tag, &e);
                continue;
            }
        };
        let mut report = |check: Result<String, String>| match check {
            Ok(what) => {
                println!("{tag}: ok: {what}");
                totals.passed += 1;
            }
            Err(why) => fail(&mut totals, &tag, &why),
        };
        report(check_demo(&mut serve.log, host[0]));
        report(check_send(&picocnn, &serve.pty, &files, &host));
        report(check_frames(&serve.pty, host[0]));
        report(check_load(&serve.pty, 2 * host.len(), &host));
        report(check_log(&mut serve.log, lessons.train_len));
        report(crate::teach::check_teach(&picocnn, &serve.pty, &lessons));
        report(crate::teach::check_learn_frames(&serve.pty, &lessons));
    }
    totals
}

fn fail(totals: &mut Totals, tag: &str, why: &str) {
    println!("{tag}: FAIL {why}");
    totals.failed += 1;
}

/// The first `n` test digits as PNG files under `target/serial-digits`, and the host's
/// class for each through [`picocnn::protocol::Server`].
fn prepare_digits(n: usize) -> Result<(Vec<PathBuf>, Vec<u8>), String> {
    let dir = crate::host_target_dir().join("serial-digits");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let blob = picocnn::model::writer::AlignedBytes::from(
        std::fs::read(crate::root().join(MODEL)).map_err(|e| e.to_string())?,
    );
    let model = picocnn::model::Model::parse(blob.as_bytes()).map_err(|e| e.to_string())?;
    let mut arena = vec![0u8; model.arena_len()];
    let mut server =
        picocnn::protocol::Server::new(&model, &mut arena).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut classes = Vec::new();
    for i in 0..n {
        let path = dir.join(format!("{i:04}.png"));
        write_png(&path, test.image(i))?;
        files.push(path);
        classes.push(
            server
                .classify(test.image(i))
                .map_err(|e| e.to_string())?
                .class,
        );
    }
    Ok((files, classes))
}

/// The `serve` firmware running under QEMU; killed when dropped.
struct Serve {
    child: Child,
    log: QemuLog,
    /// The pseudo-terminal its UART is on.
    pty: String,
}

impl Serve {
    /// Starts `elf` on `m` and waits until it is up on a pseudo-terminal.
    fn start(m: &Machine, elf: &Path) -> Result<Self, String> {
        let extra = ["-monitor", "none", "-serial", "pty"].map(String::from);
        let mut child = machines::qemu_command(m, elf, &extra)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", m.qemu))?;
        // QEMU's own lines (the pseudo-terminal's name, warnings) and the
        // firmware's defmt log (stdout, over semihosting; decoded with the
        // ELF's table) arrive as lines on one channel.
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("piped");
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let elf_bytes = std::fs::read(elf).unwrap_or_default();
        std::thread::spawn(move || decode_defmt(&elf_bytes, stdout, &tx));
        let mut log = QemuLog {
            rx,
            lines: Vec::new(),
            pty: None,
        };
        log.wait(Duration::from_secs(20), |l| {
            l.pty.is_some() && l.any(|m| m.starts_with("picocnn: "))
        });
        match log
            .pty
            .clone()
            .filter(|_| log.any(|m| m.starts_with("picocnn: ")))
        {
            Some(pty) => Ok(Self { child, log, pty }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the firmware did not come up on a pseudo-terminal; its log: {}",
                    log.lines.join(" | ")
                ))
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With no host yet, the demo: its first digit is test digit 0.
fn check_demo(log: &mut QemuLog, host0: u8) -> Result<String, String> {
    let demo_line = format!("demo digit 0: class {host0} (");
    log.wait(Duration::from_secs(20), |l| {
        l.any(|m| m.starts_with("demo digit 0:"))
    });
    if log.any(|m| m.starts_with(&demo_line)) {
        Ok(format!(
            "defmt log decoded ({}), demo digit 0 classified as the host does",
            log.lines[0]
        ))
    } else {
        Err(format!(
            "no `{demo_line}...` line in the decoded log: {}",
            log.lines.join(" | ")
        ))
    }
}

/// The digits through `picocnn send`.
fn check_send(picocnn: &Path, pty: &str, files: &[PathBuf], host: &[u8]) -> Result<String, String> {
    let t = Instant::now();
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let text = send(picocnn, pty, &args)?;
    let got: Vec<Option<u8>> = text
        .lines()
        .map(|l| {
            l.rsplit_once(": ")
                .and_then(|(_, r)| r.split_whitespace().next())
                .and_then(|c| c.parse().ok())
        })
        .collect();
    if got.len() == host.len() && got.iter().zip(host).all(|(g, h)| *g == Some(*h)) {
        Ok(format!(
            "{} digits sent with picocnn send, every answer equal to the host's ({:.1} s)",
            host.len(),
            t.elapsed().as_secs_f64()
        ))
    } else {
        Err(format!("answers differ from the host's:\n{text}"))
    }
}

/// Malformed frames, each with its error reply, then a valid one.
fn check_frames(pty: &str, host0: u8) -> Result<String, String> {
    use picocnn::protocol::{encode, Kind, Status, CRC_LEN, HEADER_LEN, REQUEST_MAGIC};
    let mut port = serialport::new(pty, 115_200)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|e| format!("{pty}: {e}"))?;
    let frame = |kind: u8, payload: &[u8]| {
        let mut f = vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
        let _ = encode(REQUEST_MAGIC, kind, payload, &mut f);
        f
    };
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let mut bad_crc = frame(Kind::Classify as u8, test.image(0));
    bad_crc[200] ^= 0x40;
    let wait = Duration::from_secs(10);
    let cases: [(&str, Vec<u8>, Status); 5] = [
        ("bad CRC", bad_crc, Status::BadCrc),
        (
            "wrong size",
            frame(Kind::Classify as u8, &[0u8; 100]),
            Status::WrongSize,
        ),
        ("unknown kind", frame(9, &[1, 2, 3]), Status::UnknownKind),
        (
            "cut-off frame",
            frame(Kind::Classify as u8, test.image(0))[..50].to_vec(),
            Status::Timeout,
        ),
        (
            "valid frame",
            frame(Kind::Classify as u8, test.image(0)),
            Status::Ok,
        ),
    ];
    let mut ok = 0;
    let mut client = picocnn::protocol::Client::new(port.as_mut(), wait);
    for (what, bytes, want) in cases {
        let picocnn::protocol::Reply { status, payload } = client
            .exchange(&bytes)
            .map_err(|e| format!("{what}: {e}"))?;
        if status != want as u8 {
            return Err(format!("{what}: status {status}, expected {}", want as u8));
        }
        if want == Status::Ok && payload.first() != Some(&host0) {
            return Err(format!("{what}: class {:?}, host {host0}", payload.first()));
        }
        ok += 1;
    }
    Ok(format!(
        "{ok} malformed and valid frames answered as they should be"
    ))
}

/// The serial loop under load: `n` valid classify frames (the prepared
/// digits in turn) with, before them, line noise (bytes that cannot start a
/// frame), frames with a bad CRC and frames cut off, drawn at random (fixed
/// seed). Every valid frame must get the host's class and every bad one its
/// error: nothing lost, nothing wrong.
fn check_load(pty: &str, n: usize, host: &[u8]) -> Result<String, String> {
    use picocnn::protocol::{encode, Kind, Status, CRC_LEN, HEADER_LEN, REQUEST_MAGIC};
    let mut port = serialport::new(pty, 115_200)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|e| format!("{pty}: {e}"))?;
    let (_, test) =
        picocnn::data::load_mnist(crate::root().join("data/mnist")).map_err(|e| e.to_string())?;
    let frame = |d: usize| {
        let payload = test.image(d);
        let mut f = vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
        let _ = encode(REQUEST_MAGIC, Kind::Classify as u8, payload, &mut f);
        f
    };
    // xorshift64*: the same draws on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |below: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below
    };
    let (mut noise, mut bad_crc, mut cut) = (0usize, 0usize, 0usize);
    let exchange = |port: &mut Box<dyn serialport::SerialPort>, f: &[u8]| {
        picocnn::protocol::Client::new(port.as_mut(), Duration::from_secs(10)).exchange(f)
    };
    let t = Instant::now();
    for i in 0..n {
        let d = i % host.len();
        let before = next(100);
        if before < 30 {
            // Idle, the receiver drops every byte but a frame's first.
            let bytes: Vec<u8> = (0..1 + next(64))
                .map(|_| next(255) as u8)
                .map(|b| if b == REQUEST_MAGIC[0] { 0xff } else { b })
                .collect();
            noise += bytes.len();
            std::io::Write::write_all(&mut port, &bytes)
                .map_err(|e| format!("writing noise: {e}"))?;
        } else if before < 42 {
            let mut f = frame(d);
            let want = if before < 40 {
                let at = HEADER_LEN + next(test.image(d).len());
                f[at] ^= 1 << next(8);
                bad_crc += 1;
                Status::BadCrc
            } else {
                f.truncate(1 + next(f.len() - 1));
                cut += 1;
                Status::Timeout
            };
            let reply = exchange(&mut port, &f)
                .map_err(|e| format!("frame {i}: the bad frame before it: {e}"))?;
            if reply.status != want as u8 {
                return Err(format!(
                    "frame {i}: the bad frame before it got status {}, expected {}",
                    reply.status, want as u8
                ));
            }
        }
        let reply = exchange(&mut port, &frame(d))
            .map_err(|e| format!("valid frame {i} (digit {d}) lost: {e}"))?;
        if reply.status != Status::Ok as u8 || reply.payload.first() != Some(&host[d]) {
            return Err(format!(
                "valid frame {i} (digit {d}): status {}, class {:?}, host {}",
                reply.status,
                reply.payload.first(),
                host[d]
            ));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        "under load: {n} valid frames all answered with the host's class, between them \
         {noise} bytes of noise ignored, {bad_crc} bad-CRC and {cut} cut-off frames answered \
         with their errors; {:.1} valid frames/s ({secs:.1} s)",
        n as f64 / secs
    ))
}

/// The log saw the tuner built (its training state as large as the host's), the host arrive
/// and the cut-off frame.
fn check_log(log: &mut QemuLog, train_len: usize) -> Result<String, String> {
    let learning = format!("learning: training state {train_len} of ");
    let want = [learning.as_str(), "host connected", "frame cut short"];
    log.wait(Duration::from_secs(5), |l| {
        want.iter().all(|w| l.any(|m| m.contains(w)))
    });
    match want.iter().find(|w| !log.any(|m| m.contains(*w))) {
        None => Ok(format!(
            "the log reports the tuner, the host and the cut-off frame ({} lines)",
            log.lines.len()
        )),
        Some(w) => Err(format!(
            "no `{w}` in the decoded log: {}",
            log.lines.join(" | ")
        )),
    }
}

/// Marks a decoded defmt message among QEMU's own lines.
const DEFMT_PREFIX: &str = "defmt: ";

/// What a QEMU run has said so far: its pseudo-terminal and the firmware's
/// decoded defmt messages.
struct QemuLog {
    rx: mpsc::Receiver<String>,
    lines: Vec<String>,
    pty: Option<String>,
}

impl QemuLog {
    /// Takes in lines until `done` holds or `timeout` has passed.
    fn wait(&mut self, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) && start.elapsed() < timeout {
            let Ok(line) = self.rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if let Some(message) = line.strip_prefix(DEFMT_PREFIX) {
                self.lines.push(message.to_string());
            } else if let Some(at) = line.find("/dev/pts/") {
                let rest = &line[at..];
                self.pty = Some(rest.split_whitespace().next().unwrap_or(rest).to_string());
            }
        }
    }

    /// Whether a message satisfies `f`.
    fn any(&self, f: impl Fn(&str) -> bool) -> bool {
        self.lines.iter().any(|m| f(m))
    }
}

/// Decodes the defmt frames `elf`'s firmware writes to `stream` and sends
/// each message (prefixed with [`DEFMT_PREFIX`]) to `tx`, until the stream ends.
fn decode_defmt(elf: &[u8], mut stream: impl Read, tx: &mpsc::Sender<String>) {
    use defmt_decoder::{DecodeError, Table};
    let table = match Table::parse(elf) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let _ = tx.send(format!("{DEFMT_PREFIX}(the ELF has no defmt table)"));
            return;
        }
        Err(e) => {
            let _ = tx.send(format!(
                "{DEFMT_PREFIX}(the defmt table does not parse: {e})"
            ));
            return;
        }
    };
    let mut decoder = table.new_stream_decoder();
    let mut buf = [0u8; 256];
    // QEMU's own text lines (the pseudo-terminal's name) come first, on the
    // same stdout.
    let mut head = Vec::new();
    let mut in_head = true;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut bytes = &buf[..n];
        while in_head {
            head.extend_from_slice(bytes);
            bytes = &[];
            const QEMU_LINE: &[u8] = b"char device redirected to ";
            let k = head.len().min(QEMU_LINE.len());
            if head[..k] != QEMU_LINE[..k] {
                in_head = false;
                decoder.received(&head);
            } else if let Some(end) = head.iter().position(|&b| b == b'\n') {
                let _ = tx.send(String::from_utf8_lossy(&head[..end]).into_owned());
                head.drain(..=end);
            } else {
                break;
            }
        }
        decoder.received(bytes);
        loop {
            match decoder.decode() {
                Ok(frame) => {
                    let _ = tx.send(format!("{DEFMT_PREFIX}{}", frame.display_message()));
                }
                Err(DecodeError::UnexpectedEof) => break,
                // rzCOBS frames resynchronise at the next frame.
                Err(DecodeError::Malformed) => {
                    let _ = tx.send(format!("{DEFMT_PREFIX}(malformed defmt frame)"));
                }
            }
        }
    }
}
