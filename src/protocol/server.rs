//! The board side: a [`Server`] answers what a [`Receiver`] found with a
//! model; `poll` and `Service` (feature `embedded-io`) run it over a serial
//! device.

use super::{encode, top3, Answer, Event, Kind, Learned, Status, REPLY_MAGIC};
#[cfg(any(doc, feature = "embedded-io"))]
use super::{Receiver, CRC_LEN, HEADER_LEN};
use crate::learn::{FineTuner, StepReport};
use crate::model::{DType, Interpreter, Model, TensorInfo};
use crate::quant::QParams;
use crate::{Error, Result};

/// What a learning [`Server`] runs the model with: a fine-tuner, which
/// answers classify requests with the tuned weights too. A server that does
/// not learn has [`NoLearner`], so a firmware that only classifies carries
/// no learning code.
pub trait Learner {
    /// The model's int8 input.
    fn input_mut(&mut self) -> Result<&mut [i8]>;
    /// Runs the tuned model: its int8 softmax output.
    fn infer(&mut self) -> Result<&[i8]>;
    /// One step with the current input's `label`.
    fn step(&mut self, label: usize) -> Result<StepReport>;
}

impl Learner for FineTuner<'_, '_, '_> {
    fn input_mut(&mut self) -> Result<&mut [i8]> {
        FineTuner::input_mut(self)
    }
    fn infer(&mut self) -> Result<&[i8]> {
        FineTuner::infer(self)
    }
    fn step(&mut self, label: usize) -> Result<StepReport> {
        FineTuner::step(self, label)
    }
}

/// The learner of a server that does not learn (there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLearner {}

impl Learner for NoLearner {
    fn input_mut(&mut self) -> Result<&mut [i8]> {
        match *self {}
    }
    fn infer(&mut self) -> Result<&[i8]> {
        match *self {}
    }
    fn step(&mut self, _: usize) -> Result<StepReport> {
        match *self {}
    }
}

/// What runs the model: the interpreter, or the learner.
enum Engine<'m, 'a, L> {
    Plain {
        interp: Interpreter<'m, 'a>,
        /// Why learn requests are refused.
        why_not: Error,
    },
    Tuner(L),
}

/// Answers requests with a model: the board-independent part of a
/// firmware that serves a model over a serial line. `L` is what it learns
/// with ([`with_learning`](Server::with_learning)).
pub struct Server<'m, 'a, L = NoLearner> {
    engine: Engine<'m, 'a, L>,
    input: TensorInfo,
    output: TensorInfo,
    norm: (f32, f32),
    answered: Option<Answer>,
}

impl<'m, 'a> Server<'m, 'a> {
    /// A server of `model`, running in `arena`; it does not learn.
    pub fn new(model: &Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let interp = Interpreter::new(model, arena)?;
        let why_not = Error::Unsupported {
            what: "a server built without a fine-tuner",
        };
        Self::serving(model, Engine::Plain { interp, why_not })
    }
}

impl<'m, 'a> Server<'m, 'a, FineTuner<'m, 'a, 'a>> {
    /// A server of `model` that also learns ([`Kind::Learn`]): a
    /// [`FineTuner`] with its state in `train`, learning rate `lr` and
    /// rounding seed `seed`. When the tuner cannot be built (a model it does
    /// not handle, `train` shorter than [`FineTuner::train_len`], a bad
    /// learning rate), it serves without learning (learn requests get
    /// [`Status::CannotLearn`]; [`learning`](Self::learning) says why)
    /// rather than fail.
    pub fn with_learning(
        model: &Model<'m>,
        arena: &'a mut [u8],
        train: &'a mut [u8],
        lr: f32,
        seed: u64,
    ) -> Result<Self> {
        let why_not = match FineTuner::train_len(model) {
            Ok(needed) if needed > train.len() => Some(Error::BufferTooSmall {
                what: "training buffer",
                needed,
                got: train.len(),
            }),
            // A trial, dropped at once: the buffers stay ours whatever it says.
            Ok(_) => FineTuner::new(model, &mut *arena, &mut *train, lr, seed).err(),
            Err(e) => Some(e),
        };
        let engine = match why_not {
            None => Engine::Tuner(FineTuner::new(model, arena, train, lr, seed)?),
            Some(why_not) => Engine::Plain {
                interp: Interpreter::new(model, arena)?,
                why_not,
            },
        };
        Self::serving(model, engine)
    }
}

impl<'m, 'a, L: Learner> Server<'m, 'a, L> {
    fn serving(model: &Model<'m>, engine: Engine<'m, 'a, L>) -> Result<Self> {
        let input = model.tensor(model.input(0).ok_or(Error::InvalidParameter {
            what: "model without input",
        })?);
        let output = model.tensor(model.output(0).ok_or(Error::InvalidParameter {
            what: "model without output",
        })?);
        Ok(Server {
            engine,
            input,
            output,
            norm: model.normalisation(),
            answered: None,
        })
    }

    /// `Ok` when learn requests are served; otherwise why not.
    pub fn learning(&self) -> Result<()> {
        match &self.engine {
            Engine::Plain { why_not, .. } => Err(*why_not),
            Engine::Tuner(_) => Ok(()),
        }
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
        let image_len = self.input.shape.len();
        match kind {
            None => reply(Status::UnknownKind, &[], out),
            Some(Kind::Info) => {
                let s = self.input.shape;
                let mut body = [0u8; 8];
                let classes = self.output.shape.len();
                for (i, v) in [s.h, s.w, s.c, classes].into_iter().enumerate() {
                    body[2 * i..2 * i + 2]
                        .copy_from_slice(&(v.min(u16::MAX as usize) as u16).to_le_bytes());
                }
                reply(Status::Ok, &body, out)
            }
            Some(Kind::Classify) => {
                if payload.len() != image_len {
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
            Some(Kind::Learn) => {
                if self.learning().is_err() {
                    return reply(Status::CannotLearn, &[], out);
                }
                let (image, label) = match payload.split_at_checked(image_len) {
                    Some((image, &[l0, l1])) => (image, u16::from_le_bytes([l0, l1]) as usize),
                    _ => return reply(Status::WrongSize, &[], out),
                };
                if label >= self.output.shape.len() {
                    return reply(Status::BadLabel, &[], out);
                }
                match self.learn(image, label) {
                    Ok(r) => {
                        let learned = Learned {
                            predicted: r.predicted.min(u16::MAX as usize) as u16,
                            loss_q12: r.loss_q12,
                        };
                        reply(Status::Ok, &learned.to_bytes(), out)
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

    /// Classifies one image of 8-bit pixels (the model's input size), with
    /// the tuned weights when the server learns.
    pub fn classify(&mut self, image: &[u8]) -> Result<Answer> {
        check_image(image, self.input)?;
        let (scale, offset) = self.norm;
        let real = |p: u8| p as f32 * scale + offset;
        let interp = match &mut self.engine {
            Engine::Tuner(tuner) => {
                quantize_into(image, self.input, self.norm, tuner.input_mut()?)?;
                return answer_i8(tuner.infer()?, self.output);
            }
            Engine::Plain { interp, .. } => interp,
        };
        match self.input.dtype {
            DType::I8 => quantize_into(image, self.input, self.norm, interp.input_mut(0)?)?,
            DType::I16 if crate::ops::built::INT16 => {
                let q = qparams(self.input, "int16 input without quantization")?;
                for (d, &p) in interp.input_mut::<i16>(0)?.iter_mut().zip(image) {
                    *d = q.quantize_i16(real(p));
                }
            }
            DType::F16 if crate::ops::built::F16 => {
                for (d, &p) in interp.input_mut::<half::f16>(0)?.iter_mut().zip(image) {
                    *d = half::f16::from_f32(real(p));
                }
            }
            DType::F32 if crate::ops::built::F32 => {
                for (d, &p) in interp.input_mut::<f32>(0)?.iter_mut().zip(image) {
                    *d = real(p);
                }
            }
            dtype => return Err(dtype.not_built()),
        }
        interp.run()?;
        let (order, best) = match self.output.dtype {
            DType::I8 => return answer_i8(interp.output::<i8>(0)?, self.output),
            DType::I16 if crate::ops::built::INT16 => {
                let q = qparams(self.output, "int16 output without quantization")?;
                let v = interp.output::<i16>(0)?;
                let o = top3(v);
                (o, v.get(o[0]).map_or(0.0, |&x| q.dequantize_i16(x)))
            }
            DType::F16 if crate::ops::built::F16 => {
                let v = interp.output::<half::f16>(0)?;
                let o = top3(v);
                (o, v.get(o[0]).map_or(0.0, |x| x.to_f32()))
            }
            DType::F32 if crate::ops::built::F32 => {
                let v = interp.output::<f32>(0)?;
                let o = top3(v);
                (o, v.get(o[0]).copied().unwrap_or(0.0))
            }
            dtype => return Err(dtype.not_built()),
        };
        Ok(Answer::ranked(order, best))
    }

    /// One learning step on an image of 8-bit pixels with its `label`: the
    /// prediction and loss before the step. An error if the server does not
    /// learn ([`learning`](Self::learning)), the image is not the model's
    /// input size or the label not a class (the weights are unchanged then).
    pub fn learn(&mut self, image: &[u8], label: usize) -> Result<StepReport> {
        check_image(image, self.input)?;
        match &mut self.engine {
            Engine::Plain { why_not, .. } => Err(*why_not),
            Engine::Tuner(tuner) => {
                quantize_into(image, self.input, self.norm, tuner.input_mut()?)?;
                tuner.step(label)
            }
        }
    }
}

fn check_image(image: &[u8], input: TensorInfo) -> Result<()> {
    if image.len() != input.shape.len() {
        return Err(Error::ShapeMismatch {
            what: "image",
            expected: input.shape.len(),
            got: image.len(),
        });
    }
    Ok(())
}

fn qparams(info: TensorInfo, what: &'static str) -> Result<QParams> {
    info.qparams.ok_or(Error::InvalidParameter { what })
}

/// 8-bit pixels through the model's normalisation into its int8 input.
fn quantize_into(image: &[u8], input: TensorInfo, norm: (f32, f32), x: &mut [i8]) -> Result<()> {
    let q = qparams(input, "int8 input without quantization")?;
    for (d, &p) in x.iter_mut().zip(image) {
        *d = q.quantize(p as f32 * norm.0 + norm.1);
    }
    Ok(())
}

/// The answer for an int8 output.
fn answer_i8(v: &[i8], output: TensorInfo) -> Result<Answer> {
    let q = qparams(output, "int8 output without quantization")?;
    let o = top3(v);
    Ok(Answer::ranked(
        o,
        v.get(o[0]).map_or(0.0, |&x| q.dequantize(x)),
    ))
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
    server: &mut Server<'_, '_, impl Learner>,
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
pub struct Service<'m, 'a, const N: usize, L = NoLearner> {
    /// The model's server (also for classifying outside the protocol).
    pub server: Server<'m, 'a, L>,
    rx: Receiver<N>,
    out: [u8; 32],
    idle: u32,
    idle_limit: u32,
}

#[cfg(feature = "embedded-io")]
impl<'m, 'a, const N: usize, L: Learner> Service<'m, 'a, N, L> {
    /// Serves with `server`; `idle_limit` passes of [`tick`](Self::tick)
    /// without a byte end a started frame (the runner's timeout).
    pub fn new(server: Server<'m, 'a, L>, idle_limit: u32) -> Self {
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
