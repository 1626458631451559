//! The serial protocol between a host and a board that runs a model: framed
//! requests (an image to classify, or to learn from with its label), framed
//! replies (the class and its confidence, the prediction and loss of a
//! learning step, or an error), each with a CRC-32. `no_std`, no allocation:
//! a board parses bytes as they arrive with a [`Receiver`] of fixed
//! capacity and answers with [`encode`]; the host uses the same two, through
//! `Client` (feature `std`) over any byte port.
//! `docs/protocol.md` describes the bytes.
//!
//! ```
//! use picocnn::protocol::{encode, Event, Kind, Receiver, REQUEST_MAGIC};
//!
//! let image = [7u8; 16];
//! let mut frame = [0u8; 64];
//! let n = encode(REQUEST_MAGIC, Kind::Classify as u8, &image, &mut frame)?;
//! let mut rx = Receiver::<64>::new();
//! let mut got = None;
//! for &b in &frame[..n] {
//!     if let Some(e) = rx.push(b) {
//!         got = Some(e);
//!     }
//! }
//! assert_eq!(got, Some(Event::Request { kind: Kind::Classify as u8, len: 16 }));
//! assert_eq!(rx.payload(), &image);
//! # Ok::<(), picocnn::Error>(())
//! ```

#[cfg(feature = "std")]
mod client;
#[cfg(feature = "embedded-io")]
mod duplex;
mod server;

#[cfg(feature = "std")]
pub use client::{Client, ClientError, Reply};
#[cfg(feature = "embedded-io")]
pub use duplex::{Duplex, DuplexError};
#[cfg(feature = "embedded-io")]
pub use server::{poll, reply_error, Service, Tick};
pub use server::{Learner, NoLearner, Server};

use crate::{Error, Result};

/// First two bytes of a request.
pub const REQUEST_MAGIC: [u8; 2] = *b"PQ";
/// First two bytes of a reply.
pub const REPLY_MAGIC: [u8; 2] = *b"PR";
/// Magic (2), kind or status (1), payload length (2, little-endian).
pub const HEADER_LEN: usize = 5;
/// The CRC-32 that ends a frame.
pub const CRC_LEN: usize = 4;

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Kind {
    /// Classify the image in the payload (the model's input size, 8-bit
    /// pixels, HWC).
    Classify = 1,
    /// Answer with the model's input shape (`h`, `w`, `c` as u16 each) and
    /// class count (u16): lets the host check before it sends images.
    Info = 2,
    /// One fine-tuning step: the image (as for [`Classify`](Kind::Classify))
    /// then its label (u16). The reply is a [`Learned`]; classify requests
    /// afterwards answer with the tuned model.
    Learn = 3,
}

impl Kind {
    /// From the byte in a frame.
    pub const fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Classify),
            2 => Some(Kind::Info),
            3 => Some(Kind::Learn),
            _ => None,
        }
    }
}

/// The status byte of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Status {
    /// Done; the payload holds the answer.
    Ok = 0,
    /// The request's kind is not one this firmware knows.
    UnknownKind = 1,
    /// The payload is longer than the receiver holds.
    TooLong = 2,
    /// The image is not the model's input size (in a learn request, the
    /// payload is not the image and a 2-byte label).
    WrongSize = 3,
    /// The CRC does not match the frame.
    BadCrc = 4,
    /// The frame stopped arriving before it was complete.
    Timeout = 5,
    /// The model failed (should not happen with a checked model).
    ModelError = 6,
    /// A learn request's label is not one of the model's classes (nothing
    /// was learned).
    BadLabel = 7,
    /// A learn request to a board that cannot learn: its firmware serves
    /// without a fine-tuner (a model the tuner does not handle, or no room
    /// for its training state).
    CannotLearn = 8,
}

impl Status {
    /// From the byte in a frame.
    pub const fn from_u8(v: u8) -> Option<Status> {
        match v {
            0 => Some(Status::Ok),
            1 => Some(Status::UnknownKind),
            2 => Some(Status::TooLong),
            3 => Some(Status::WrongSize),
            4 => Some(Status::BadCrc),
            5 => Some(Status::Timeout),
            6 => Some(Status::ModelError),
            7 => Some(Status::BadLabel),
            8 => Some(Status::CannotLearn),
            _ => None,
        }
    }

    /// What it means, for messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::UnknownKind => "unknown request kind",
            Status::TooLong => "payload longer than the receiver holds",
            Status::WrongSize => "image is not the model's input size",
            Status::BadCrc => "CRC mismatch",
            Status::Timeout => "frame incomplete (timeout)",
            Status::ModelError => "model error",
            Status::BadLabel => "label outside the model's classes",
            Status::CannotLearn => "this board cannot learn",
        }
    }
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut d = crate::model::CRC32.digest();
    parts.iter().for_each(|p| d.update(p));
    d.finalize()
}

/// Writes a frame (`magic`, kind or status byte `code`, `payload`) into
/// `out`; returns its length.
pub fn encode(magic: [u8; 2], code: u8, payload: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = payload.len();
    let total = HEADER_LEN + len + CRC_LEN;
    if len > u16::MAX as usize {
        return Err(Error::InvalidParameter {
            what: "frame payload longer than 65535 bytes",
        });
    }
    if out.len() < total {
        return Err(Error::BufferTooSmall {
            what: "frame",
            needed: total,
            got: out.len(),
        });
    }
    let header = [magic[0], magic[1], code, len as u8, (len >> 8) as u8];
    out[..HEADER_LEN].copy_from_slice(&header);
    out[HEADER_LEN..HEADER_LEN + len].copy_from_slice(payload);
    let crc = crc32(&[&header[2..], payload]);
    out[HEADER_LEN + len..total].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// What [`Receiver::push`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// A whole frame with a good CRC: its kind or status byte and payload
    /// length ([`Receiver::payload`] holds the payload until the next push).
    Request {
        /// Kind (requests) or status (replies) byte.
        kind: u8,
        /// Payload bytes.
        len: usize,
    },
    /// A frame that must be answered with this error; the receiver is
    /// looking for the next frame again.
    Error(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the magic's first byte.
    Idle,
    /// Header bytes read so far (magic included).
    Header(usize),
    /// Payload bytes read so far.
    Payload(usize),
    /// CRC bytes read so far.
    Crc(usize),
}

/// Parses frames byte by byte into a buffer of `N` payload bytes. Bytes
/// before a magic are skipped, so a receiver finds the next frame after
/// noise or a broken frame; a header announcing more than `N` bytes is
/// answered at once ([`Status::TooLong`]) and the search for a magic goes
/// on from the next byte (a false magic in noise cannot swallow the frames
/// after it; the CRC rejects a false frame inside a payload).
#[derive(Debug, Clone)]
pub struct Receiver<const N: usize> {
    magic: [u8; 2],
    state: State,
    header: [u8; HEADER_LEN],
    crc: [u8; CRC_LEN],
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> Default for Receiver<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Receiver<N> {
    /// A receiver of requests.
    pub const fn new() -> Self {
        Self::with_magic(REQUEST_MAGIC)
    }

    /// A receiver of frames starting with `magic` (replies: [`REPLY_MAGIC`]).
    pub const fn with_magic(magic: [u8; 2]) -> Self {
        Receiver {
            magic,
            state: State::Idle,
            header: [0; HEADER_LEN],
            crc: [0; CRC_LEN],
            len: 0,
            buf: [0; N],
        }
    }

    /// True while a frame has started and is not complete: a runner that
    /// sees no byte for its timeout calls [`timeout`](Self::timeout).
    pub fn in_frame(&self) -> bool {
        self.state != State::Idle
    }

    /// Drops a partial frame; returns the error to answer with, if a frame
    /// had started.
    pub fn timeout(&mut self) -> Option<Status> {
        let was = self.in_frame();
        self.state = State::Idle;
        was.then_some(Status::Timeout)
    }

    /// The payload of the last [`Event::Request`].
    pub fn payload(&self) -> &[u8] {
        &self.buf[..self.len.min(N)]
    }

    /// Takes one byte.
    pub fn push(&mut self, b: u8) -> Option<Event> {
        match self.state {
            State::Idle => {
                if b == self.magic[0] {
                    self.header[0] = b;
                    self.state = State::Header(1);
                }
                None
            }
            State::Header(1) => {
                if b == self.magic[1] {
                    self.header[1] = b;
                    self.state = State::Header(2);
                } else {
                    // Resynchronise: this byte may start the next magic.
                    self.state = State::Idle;
                    return self.push(b);
                }
                None
            }
            State::Header(k) => {
                self.header[k] = b;
                if k + 1 < HEADER_LEN {
                    self.state = State::Header(k + 1);
                    return None;
                }
                self.len = u16::from_le_bytes([self.header[3], self.header[4]]) as usize;
                if self.len > N {
                    // Answer at once and look for the next magic in what
                    // follows rather than trust a length that may be noise.
                    self.state = State::Idle;
                    self.len = 0;
                    return Some(Event::Error(Status::TooLong));
                }
                self.state = if self.len == 0 {
                    State::Crc(0)
                } else {
                    State::Payload(0)
                };
                None
            }
            State::Payload(k) => {
                self.buf[k] = b;
                self.state = if k + 1 < self.len {
                    State::Payload(k + 1)
                } else {
                    State::Crc(0)
                };
                None
            }
            State::Crc(k) => {
                self.crc[k] = b;
                if k + 1 < CRC_LEN {
                    self.state = State::Crc(k + 1);
                    return None;
                }
                self.state = State::Idle;
                let want = crc32(&[&self.header[2..], &self.buf[..self.len]]);
                if u32::from_le_bytes(self.crc) != want {
                    return Some(Event::Error(Status::BadCrc));
                }
                Some(Event::Request {
                    kind: self.header[2],
                    len: self.len,
                })
            }
        }
    }
}

/// The payload of a successful classification: the class, its confidence
/// (probability times 255, rounded) and the next two classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Answer {
    /// The most probable class.
    pub class: u8,
    /// Its probability, 0..=255 for 0..=1.
    pub confidence: u8,
    /// The second and third most probable classes.
    pub runners_up: [u8; 2],
}

impl Answer {
    /// Bytes of the reply payload.
    pub const LEN: usize = 4;

    /// From class probabilities (first maximum wins ties).
    pub fn from_probabilities(p: &[f32]) -> Answer {
        let o = top3(p);
        Answer::ranked(o, p.get(o[0]).copied().unwrap_or(0.0))
    }

    /// From the three most probable classes (`usize::MAX` where there are
    /// fewer) and the first one's probability.
    pub(crate) fn ranked(order: [usize; 3], best: f32) -> Answer {
        let class = |k: usize| if k == usize::MAX { 0 } else { k.min(255) as u8 };
        Answer {
            class: class(order[0]),
            confidence: (best.clamp(0.0, 1.0) * 255.0 + 0.5) as u8,
            runners_up: [class(order[1]), class(order[2])],
        }
    }

    /// The reply payload.
    pub fn to_bytes(self) -> [u8; Answer::LEN] {
        [
            self.class,
            self.confidence,
            self.runners_up[0],
            self.runners_up[1],
        ]
    }

    /// From a reply payload.
    pub fn from_bytes(b: &[u8]) -> Option<Answer> {
        match *b {
            [class, confidence, a, c] => Some(Answer {
                class,
                confidence,
                runners_up: [a, c],
            }),
            _ => None,
        }
    }
}

/// The payload of a successful learn request: what the model said before
/// the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Learned {
    /// The class the model gave the image before the step.
    pub predicted: u16,
    /// The loss before the step, `-ln p_label` in Q4.12.
    pub loss_q12: u32,
}

impl Learned {
    /// Bytes of the reply payload.
    pub const LEN: usize = 6;

    /// The reply payload.
    pub fn to_bytes(self) -> [u8; Learned::LEN] {
        let [p0, p1] = self.predicted.to_le_bytes();
        let [l0, l1, l2, l3] = self.loss_q12.to_le_bytes();
        [p0, p1, l0, l1, l2, l3]
    }

    /// From a reply payload.
    pub fn from_bytes(b: &[u8]) -> Option<Learned> {
        match *b {
            [p0, p1, l0, l1, l2, l3] => Some(Learned {
                predicted: u16::from_le_bytes([p0, p1]),
                loss_q12: u32::from_le_bytes([l0, l1, l2, l3]),
            }),
            _ => None,
        }
    }
}

/// Indices of the three largest values, first ones first on ties.
fn top3<T: PartialOrd + Copy>(v: &[T]) -> [usize; 3] {
    let mut order = [usize::MAX; 3];
    for k in 0..v.len() {
        let at = (0..3).find(|&s| order[s] == usize::MAX || v[k] > v[order[s]]);
        if let Some(at) = at {
            for s in (at + 1..3).rev() {
                order[s] = order[s - 1];
            }
            order[at] = k;
        }
    }
    order
}
