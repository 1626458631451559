//! The board side: a [`Server`] answers what a [`Receiver`] found with a
//! model; `poll` and `Service` (feature `embedded-io`) run it over a serial
//! device.

use super::{encode, top3, Answer, Event, Kind, Status, REPLY_MAGIC};
#[cfg(any(doc, feature = "embedded-io"))]
use super::{Receiver, CRC_LEN, HEADER_LEN};
use crate::{Error, Result};

/// Answers requests with a model: the board-independent part of a
/// firmware that serves a model over a serial line.
pub struct Server<'m, 'a> {
    interp: crate::model::Interpreter<'m, 'a>,
    input: crate::model::TensorInfo,
    norm: (f32, f32),
    classes: usize,
    answered: Option<Answer>,
}

impl<'m, 'a> Server<'m, 'a> {
    /// A server of `model`, running in `arena`.
    pub fn new(model: &crate::model::Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let input = model.tensor(model.input(0).ok_or(Error::InvalidParameter {
            what: "model without input",
        })?);
        let output = model.tensor(model.output(0).ok_or(Error::InvalidParameter {
            what: "model without output",
        })?);
        let norm = model.normalisation();
        let interp = crate::model::Interpreter::new(model, arena)?;
        Ok(Server {
            interp,
            input,
            norm,
            classes: output.shape.len(),
            answered: None,
        })
    }

    /// The reply to what a [`Receiver`] found (`payload` is its
    /// [`payload`](Receiver::payload)), written into `out` (at least
    /// [`HEADER_LEN`] + 8 + [`CRC_LEN`] bytes); returns the reply's length.
    pub fn answer(&mut self, event: Event, payload: &[u8], out: &mut [u8]) -> Result<usize> {
        let reply = |status: Status, body: &[u8], out: &mut [u8]| {
            encode(REPLY_MAGIC, status as u8, body, out)
        };
        let kind = match event {
            Event::Error(status) => return reply(status, &[], out),
            Event::Request { kind, .. } => Kind::from_u8(kind),
        };
        match kind {
            None => reply(Status::UnknownKind, &[], out),
            Some(Kind::Info) => {
                let s = self.input.shape;
                let mut body = [0u8; 8];
                for (i, v) in [s.h, s.w, s.c, self.classes].into_iter().enumerate() {
                    body[2 * i..2 * i + 2]
                        .copy_from_slice(&(v.min(u16::MAX as usize) as u16).to_le_bytes());
                }
                reply(Status::Ok, &body, out)
            }
            Some(Kind::Classify) => {
                if payload.len() != self.input.shape.len() {
                    return reply(Status::WrongSize, &[], out);
                }
                match self.classify(payload) {
                    Ok(a) => {
                        self.answered = Some(a);
                        reply(Status::Ok, &a.to_bytes(), out)
                    }
                    Err(_) => reply(Status::ModelError, &[], out),
                }
            }
        }
    }

    /// The answer to the latest classify request that [`answer`](Self::answer)
    /// replied to since the last call, for a board to show it (on a display,
    /// say).
    pub fn take_answer(&mut self) -> Option<Answer> {
        self.answered.take()
    }

    /// Classifies one image of 8-bit pixels (the model's input size).
    pub fn classify(&mut self, image: &[u8]) -> Result<Answer> {
        use crate::model::DType;
        let (scale, offset) = self.norm;
        let real = |p: u8| p as f32 * scale + offset;
        let class = |k: usize| if k == usize::MAX { 0 } else { k.min(255) as u8 };
        match self.input.dtype {
            DType::I8 => {
                let q = self.input.qparams.ok_or(Error::InvalidParameter {
                    what: "int8 input without quantization",
                })?;
                for (d, &p) in self.interp.input_mut::<i8>(0)?.iter_mut().zip(image) {
                    *d = q.quantize(real(p));
                }
            }
            DType::F16 => {
                for (d, &p) in self.interp.input_mut::<half::f16>(0)?.iter_mut().zip(image) {
                    *d = half::f16::from_f32(real(p));
                }
            }
            DType::F32 => {
                for (d, &p) in self.interp.input_mut::<f32>(0)?.iter_mut().zip(image) {
                    *d = real(p);
                }
            }
        }
        self.interp.run()?;
        let out = self
            .interp
            .model()
            .output(0)
            .ok_or(Error::InvalidParameter {
                what: "model without output",
            })?;
        let info = self.interp.model().tensor(out);
        let (order, best) = match info.dtype {
            DType::I8 => {
                let v = self.interp.output::<i8>(0)?;
                let q = info.qparams.ok_or(Error::InvalidParameter {
                    what: "int8 output without quantization",
                })?;
                let o = top3(v);
                (o, v.get(o[0]).map_or(0.0, |&x| q.dequantize(x)))
            }
            DType::F16 => {
                let v = self.interp.output::<half::f16>(0)?;
                let o = top3(v);
                (o, v.get(o[0]).map_or(0.0, |x| x.to_f32()))
            }
            DType::F32 => {
                let v = self.interp.output::<f32>(0)?;
                let o = top3(v);
                (o, v.get(o[0]).copied().unwrap_or(0.0))
            }
        };
        Ok(Answer {
            class: class(order[0]),
            confidence: (best.clamp(0.0, 1.0) * 255.0 + 0.5) as u8,
            runners_up: [class(order[1]), class(order[2])],
        })
    }
}

/// Serves requests from a serial device: reads the bytes `dev` has ready,
/// feeds them to `rx` and writes each reply (into `out`, then `dev`).
/// Returns how many bytes it read: a runner calls it in its main loop and,
/// when it has seen no byte for its timeout while
/// [`rx.in_frame()`](Receiver::in_frame), answers
/// [`rx.timeout()`](Receiver::timeout) with [`reply_error`].
#[cfg(feature = "embedded-io")]
pub fn poll<D, const N: usize>(
    dev: &mut D,
    rx: &mut Receiver<N>,
    server: &mut Server<'_, '_>,
    out: &mut [u8],
) -> core::result::Result<usize, D::Error>
where
    D: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
{
    let mut buf = [0u8; 32];
    let mut total = 0;
    while dev.read_ready()? {
        let n = dev.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
        for &b in &buf[..n] {
            if let Some(event) = rx.push(b) {
                // Encoding fails only if `out` is too small: nothing to send then.
                if let Ok(len) = server.answer(event, rx.payload(), out) {
                    dev.write_all(&out[..len])?;
                }
            }
        }
    }
    if total > 0 {
        dev.flush()?;
    }
    Ok(total)
}

/// Writes a reply with `status` and no payload (a runner's timeout
/// answer) to `dev`.
#[cfg(feature = "embedded-io")]
pub fn reply_error<D: embedded_io::Write>(
    dev: &mut D,
    status: Status,
) -> core::result::Result<(), D::Error> {
    let mut frame = [0u8; HEADER_LEN + CRC_LEN];
    if let Ok(n) = encode(REPLY_MAGIC, status as u8, &[], &mut frame) {
        dev.write_all(&frame[..n])?;
        dev.flush()?;
    }
    Ok(())
}

/// What one [`Service::tick`] saw.
#[cfg(feature = "embedded-io")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Tick {
    /// Bytes came in (and were answered when a frame was complete).
    Busy,
    /// Nothing came in.
    Idle,
    /// Nothing came in for the idle limit, in the middle of a frame: it was
    /// answered with [`Status::Timeout`] and dropped.
    TimedOut,
    /// Nothing came in for the idle limit, between frames (a board may do
    /// something else then, such as a demo).
    Quiet,
}

/// A serving loop's state, the same on every board: the receiver, the
/// server, the reply buffer and the count of passes without a byte.
#[cfg(feature = "embedded-io")]
pub struct Service<'m, 'a, const N: usize> {
    /// The model's server (also for classifying outside the protocol).
    pub server: Server<'m, 'a>,
    rx: Receiver<N>,
    out: [u8; 32],
    idle: u32,
    idle_limit: u32,
}

#[cfg(feature = "embedded-io")]
impl<'m, 'a, const N: usize> Service<'m, 'a, N> {
    /// Serves with `server`; `idle_limit` passes of [`tick`](Self::tick)
    /// without a byte end a started frame (the runner's timeout).
    pub fn new(server: Server<'m, 'a>, idle_limit: u32) -> Self {
        Service {
            server,
            rx: Receiver::new(),
            out: [0; 32],
            idle: 0,
            idle_limit,
        }
    }

    /// One pass of a board's main loop over `dev`.
    pub fn tick<D>(&mut self, dev: &mut D) -> core::result::Result<Tick, D::Error>
    where
        D: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
    {
        if poll(dev, &mut self.rx, &mut self.server, &mut self.out)? > 0 {
            self.idle = 0;
            return Ok(Tick::Busy);
        }
        self.idle = self.idle.saturating_add(1);
        if self.idle < self.idle_limit {
            return Ok(Tick::Idle);
        }
        self.idle = 0;
        match self.rx.timeout() {
            Some(status) => {
                reply_error(dev, status)?;
                Ok(Tick::TimedOut)
            }
            None => Ok(Tick::Quiet),
        }
    }
}
