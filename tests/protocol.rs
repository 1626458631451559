//! The serial protocol: frames round trip, the receiver resynchronises
//! after noise and broken frames, and no byte stream makes it panic.

use picocnn::protocol::{
    encode, Answer, Event, Kind, Learned, Receiver, Status, CRC_LEN, HEADER_LEN, REPLY_MAGIC,
    REQUEST_MAGIC,
};
use proptest::prelude::*;

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
    let n = encode(REQUEST_MAGIC, kind, payload, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

/// The committed int8 LeNet-5, aligned for `Model::parse`.
#[cfg(feature = "std")]
fn trained_lenet5() -> picocnn::model::writer::AlignedBytes {
    picocnn::model::writer::AlignedBytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/models/lenet5_mnist_i8.pcnn"
        ))
        .unwrap(),
    )
}

fn events<const N: usize>(rx: &mut Receiver<N>, bytes: &[u8]) -> Vec<(Event, Vec<u8>)> {
    let mut out = Vec::new();
    for &b in bytes {
        if let Some(e) = rx.push(b) {
            out.push((e, rx.payload().to_vec()));
        }
    }
    out
}

#[test]
fn frames_round_trip_and_noise_is_skipped() {
    let image: Vec<u8> = (0..784).map(|i| (i * 7) as u8).collect();
    let mut rx = Receiver::<784>::new();
    let mut bytes = b"noise P PQ? garbage".to_vec();
    bytes.extend(frame(Kind::Classify as u8, &image));
    bytes.extend(b"PPP");
    bytes.extend(frame(Kind::Info as u8, &[]));
    let got: Vec<(Event, Vec<u8>)> = events(&mut rx, &bytes)
        .into_iter()
        .filter(|e| matches!(e.0, Event::Request { .. }))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        (Event::Request { kind: 1, len: 784 }, image.clone())
    );
    assert_eq!(got[1], (Event::Request { kind: 2, len: 0 }, vec![]));
}

#[test]
fn broken_frames_get_errors_and_the_next_frame_is_read() {
    let image = [9u8; 100];
    let mut rx = Receiver::<128>::new();
    // A flipped payload bit: CRC error.
    let mut bad = frame(1, &image);
    bad[HEADER_LEN + 10] ^= 0x10;
    // A payload longer than the receiver holds: an error at its header, and
    // its bytes are searched for the next magic.
    let long = frame(1, &[1u8; 300]);
    let good = frame(1, &image);
    let mut bytes = bad;
    bytes.extend(&long);
    bytes.extend(&good);
    let got: Vec<Event> = events(&mut rx, &bytes).into_iter().map(|e| e.0).collect();
    assert_eq!(
        got,
        vec![
            Event::Error(Status::BadCrc),
            Event::Error(Status::TooLong),
            Event::Request { kind: 1, len: 100 }
        ]
    );
    // A frame cut short: the runner's timeout drops it; then a whole frame.
    let cut = &frame(1, &image)[..40];
    assert!(events(&mut rx, cut).is_empty());
    assert!(rx.in_frame());
    assert_eq!(rx.timeout(), Some(Status::Timeout));
    assert_eq!(rx.timeout(), None);
    assert_eq!(
        events(&mut rx, &good).last().unwrap().0,
        Event::Request { kind: 1, len: 100 }
    );
}

#[test]
fn replies_and_answers() {
    let answer = Answer::from_probabilities(&[0.05, 0.7, 0.05, 0.2]);
    assert_eq!(
        answer,
        Answer {
            class: 1,
            confidence: 179,
            runners_up: [3, 0]
        }
    );
    assert_eq!(Answer::from_bytes(&answer.to_bytes()), Some(answer));
    assert_eq!(Answer::from_bytes(&[1, 2, 3]), None);
    let mut out = [0u8; 32];
    let n = encode(REPLY_MAGIC, Status::Ok as u8, &answer.to_bytes(), &mut out).unwrap();
    let mut rx = Receiver::<8>::with_magic(REPLY_MAGIC);
    let got = events(&mut rx, &out[..n]);
    assert_eq!(
        got,
        vec![(
            Event::Request { kind: 0, len: 4 },
            answer.to_bytes().to_vec()
        )]
    );
    // Requests are not replies.
    assert!(events(&mut rx, &frame(1, &[1, 2, 3])).is_empty());
    for s in 0..=8u8 {
        assert_eq!(Status::from_u8(s).unwrap() as u8, s);
    }
    assert_eq!(Status::from_u8(9), None);
    let learned = Learned {
        predicted: 0x0102,
        loss_q12: 0x0304_0506,
    };
    assert_eq!(learned.to_bytes(), [2, 1, 6, 5, 4, 3]);
    assert_eq!(Learned::from_bytes(&learned.to_bytes()), Some(learned));
    assert_eq!(Learned::from_bytes(&[0u8; 4]), None);
    assert!(matches!(
        encode(REQUEST_MAGIC, 1, &[0u8; 10], &mut [0u8; 12]),
        Err(picocnn::Error::BufferTooSmall {
            needed: 19,
            got: 12,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any bytes: no panic; every request event carries a payload whose CRC
    /// was right.
    #[test]
    fn any_bytes_are_safe(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut rx = Receiver::<64>::new();
        for &b in &bytes {
            if let Some(Event::Request { len, .. }) = rx.push(b) {
                prop_assert!(len <= 64);
                prop_assert_eq!(rx.payload().len(), len);
            }
        }
        let _ = rx.timeout();
    }

    /// A frame between noise without the magic's first byte is found intact.
    #[test]
    fn frames_survive_noise(
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        before in proptest::collection::vec(any::<u8>().prop_filter("no P", |b| *b != b'P'), 0..50),
        after in proptest::collection::vec(any::<u8>().prop_filter("no P", |b| *b != b'P'), 0..50),
    ) {
        let mut bytes = before.clone();
        bytes.extend(frame(1, &payload));
        bytes.extend(after);
        let mut rx = Receiver::<64>::new();
        let got = events(&mut rx, &bytes);
        prop_assert_eq!(got, vec![(Event::Request { kind: 1, len: payload.len() }, payload.clone())]);
    }
}

/// The whole loop on the host: request frames through a receiver to the
/// server and its replies back through a reply receiver, with the trained
/// LeNet-5, broken frames in between.
#[cfg(feature = "std")]
#[test]
fn a_server_answers_every_request() {
    use picocnn::model::{Interpreter, Model};
    use picocnn::protocol::Server;
    let blob = trained_lenet5();
    let model = Model::parse(blob.as_bytes()).unwrap();
    let (_, test) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let mut server = Server::new(&model, &mut arena).unwrap();
    let mut reference_arena = vec![0u8; model.arena_len()];
    let mut reference = Interpreter::new(&model, &mut reference_arena).unwrap();
    let q = model.tensor(model.input(0).unwrap()).qparams.unwrap();

    let mut rx = Receiver::<784>::new();
    let mut replies = Receiver::<16>::with_magic(REPLY_MAGIC);
    let mut out = [0u8; 32];
    let mut roundtrip = |bytes: &[u8]| -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        for &b in bytes {
            if let Some(e) = rx.push(b) {
                let n = server.answer(e, rx.payload(), &mut out).unwrap();
                for &r in &out[..n] {
                    if let Some(Event::Request { kind, .. }) = replies.push(r) {
                        got.push((kind, replies.payload().to_vec()));
                    }
                }
            }
        }
        got
    };
    let mut correct = 0;
    for i in 0..100 {
        let img = test.image(i);
        let got = roundtrip(&frame(Kind::Classify as u8, img));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Status::Ok as u8);
        let answer = Answer::from_bytes(&got[0].1).unwrap();
        // The same as the interpreter's first largest output.
        let x = reference.input_mut::<i8>(0).unwrap();
        x.iter_mut()
            .zip(img)
            .for_each(|(d, &p)| *d = q.quantize(p as f32 / 255.0));
        reference.run().unwrap();
        let y = reference.output::<i8>(0).unwrap();
        let best = (0..y.len()).fold(0, |b, k| if y[k] > y[b] { k } else { b });
        assert_eq!(answer.class as usize, best);
        assert_eq!(
            answer.confidence as i32,
            ((y[best] as i32 + 128) * 255 + 128) / 256
        );
        assert!(!answer.runners_up.contains(&answer.class));
        correct += (best == test.label(i)) as usize;
    }
    assert!(correct >= 95, "{correct}");
    // Info, a wrong size, an unknown kind, a bad CRC: each its own reply,
    // and the server goes on serving.
    let got = roundtrip(&frame(Kind::Info as u8, &[]));
    assert_eq!(got, vec![(0, vec![28, 0, 28, 0, 1, 0, 10, 0])]);
    let got = roundtrip(&frame(Kind::Classify as u8, &[0u8; 100]));
    assert_eq!(got, vec![(Status::WrongSize as u8, vec![])]);
    let got = roundtrip(&frame(9, &[1, 2, 3]));
    assert_eq!(got, vec![(Status::UnknownKind as u8, vec![])]);
    let mut bad = frame(Kind::Classify as u8, test.image(0));
    bad[100] ^= 1;
    assert_eq!(roundtrip(&bad), vec![(Status::BadCrc as u8, vec![])]);
    let got = roundtrip(&frame(Kind::Classify as u8, test.image(0)));
    assert_eq!(got[0].0, Status::Ok as u8);
}

/// The receiver half of a scripted line: each `Some` chunk is what one
/// pass finds ready (a pause on the line follows it), `None` is a pass with
/// a line error (a framing error, say).
#[cfg(all(feature = "std", feature = "embedded-io"))]
struct ScriptedRx {
    passes: std::collections::VecDeque<Option<Vec<u8>>>,
    ready: Vec<u8>,
    pause: bool,
}

#[cfg(all(feature = "std", feature = "embedded-io"))]
#[derive(Debug)]
struct LineError;

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl core::fmt::Display for LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("framing error")
    }
}

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl std::error::Error for LineError {}

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl embedded_io::Error for LineError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::InvalidData
    }
}

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl embedded_io::ErrorType for ScriptedRx {
    type Error = LineError;
}

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl embedded_io::ReadReady for ScriptedRx {
    fn read_ready(&mut self) -> Result<bool, LineError> {
        if self.ready.is_empty() {
            if std::mem::take(&mut self.pause) {
                return Ok(false);
            }
            match self.passes.pop_front() {
                Some(Some(bytes)) => self.ready = bytes,
                Some(None) => return Err(LineError),
                None => {}
            }
        }
        Ok(!self.ready.is_empty())
    }
}

#[cfg(all(feature = "std", feature = "embedded-io"))]
impl embedded_io::Read for ScriptedRx {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, LineError> {
        // A few bytes at a time, as a UART gives them.
        let n = buf.len().min(self.ready.len()).min(5);
        buf[..n].copy_from_slice(&self.ready[..n]);
        self.ready.drain(..n);
        self.pause = self.ready.is_empty();
        Ok(n)
    }
}

/// `Service::tick` over a `Duplex`: answers arrive whole, a line error
/// surfaces as `DuplexError::Read` and serving goes on, a frame cut short
/// gets a timeout reply after the idle limit, and idle passes between
/// frames are `Quiet`.
#[cfg(all(feature = "std", feature = "embedded-io"))]
#[test]
fn a_service_serves_a_split_uart() {
    use picocnn::model::Model;
    use picocnn::protocol::{Duplex, DuplexError, Server, Service};
    let blob = trained_lenet5();
    let model = Model::parse(blob.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let server = Server::new(&model, &mut arena).unwrap();
    let mut service = Service::<784>::new(server, 3);

    let (_, test) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let image = frame(Kind::Classify as u8, test.image(0));
    let info = frame(Kind::Info as u8, &[]);
    let passes = vec![
        Some(image[..400].to_vec()),
        Some(image[400..].to_vec()),
        None,
        Some(info.clone()),
        Some(image[..10].to_vec()),
    ];
    let mut port = Duplex {
        rx: ScriptedRx {
            passes: passes.into(),
            ready: Vec::new(),
            pause: false,
        },
        tx: Vec::<u8>::new(),
    };
    let mut ticks = Vec::new();
    for _ in 0..12 {
        match service.tick(&mut port) {
            Ok(t) => ticks.push(format!("{t:?}")),
            Err(DuplexError::Read(LineError)) => ticks.push("LineError".into()),
            Err(DuplexError::Write(e)) => match e {},
        }
    }
    assert_eq!(
        ticks,
        [
            "Busy",
            "Busy",
            "LineError",
            "Busy",
            "Busy",
            "Idle",
            "Idle",
            "TimedOut",
            "Idle",
            "Idle",
            "Quiet",
            "Idle"
        ]
    );
    let mut replies = Receiver::<16>::with_magic(REPLY_MAGIC);
    let got: Vec<(Event, Vec<u8>)> = events(&mut replies, &port.tx);
    let statuses: Vec<u8> = got
        .iter()
        .map(|(e, _)| match e {
            Event::Request { kind, .. } => *kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [Status::Ok as u8, Status::Ok as u8, Status::Timeout as u8]
    );
    let answer = Answer::from_bytes(&got[0].1).unwrap();
    assert_eq!(answer.class as usize, test.label(0));
    // The last classify answer once, for a board's display.
    assert_eq!(service.server.take_answer(), Some(answer));
    assert_eq!(service.server.take_answer(), None);
    assert_eq!(got[1].1, [28, 0, 28, 0, 1, 0, 10, 0]);
}

/// A board on the host: what the client writes goes through a receiver to
/// the server, whose replies wait to be read.
#[cfg(feature = "std")]
struct Board<'m, 'a, L> {
    server: picocnn::protocol::Server<'m, 'a, L>,
    rx: Receiver<786>,
    replies: std::collections::VecDeque<u8>,
}

#[cfg(feature = "std")]
impl<L: picocnn::protocol::Learner> std::io::Write for Board<'_, '_, L> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut out = [0u8; 32];
        for &b in bytes {
            if let Some(e) = self.rx.push(b) {
                let n = self.server.answer(e, self.rx.payload(), &mut out).unwrap();
                self.replies.extend(&out[..n]);
            }
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "std")]
impl<L> std::io::Read for Board<'_, '_, L> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.replies.is_empty() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.replies.read(buf)
    }
}

#[cfg(feature = "std")]
fn client<'m, 'a, L: picocnn::protocol::Learner>(
    server: picocnn::protocol::Server<'m, 'a, L>,
) -> picocnn::protocol::Client<Board<'m, 'a, L>> {
    let board = Board {
        server,
        rx: Receiver::new(),
        replies: Default::default(),
    };
    picocnn::protocol::Client::new(board, std::time::Duration::from_secs(1))
}

/// The fine-tuning demonstration's samples: test digits in a writing style
/// the model never saw, with their labels.
#[cfg(feature = "std")]
fn styled_digits(n: usize) -> Vec<(Vec<u8>, usize)> {
    use picocnn::data::style::{restyle, Style};
    let (_, test) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    (0..n)
        .map(|i| {
            let img = restyle(test.image(i), test.shape(), Style::default()).unwrap();
            (img, test.label(i))
        })
        .collect()
}

/// Learn requests through the client and a learning server step the same
/// fine-tuner as one on the host fed the same samples: every prediction
/// and loss equal, and classify requests answer with the tuned weights.
#[cfg(feature = "std")]
#[test]
fn a_board_learns_as_the_host_tuner_does() {
    use picocnn::learn::FineTuner;
    use picocnn::model::Model;
    use picocnn::protocol::Server;
    let blob = trained_lenet5();
    let model = Model::parse(blob.as_bytes()).unwrap();
    let train_len = FineTuner::train_len(&model).unwrap();
    let (mut arena, mut train) = (vec![0u8; model.arena_len()], vec![0u8; train_len]);
    let server = Server::with_learning(&model, &mut arena, &mut train, 0.01, 7).unwrap();
    assert_eq!(server.learning(), Ok(()));
    let mut board = client(server);
    let (mut host_arena, mut host_train) = (vec![0u8; model.arena_len()], vec![0u8; train_len]);
    let mut host = FineTuner::new(&model, &mut host_arena, &mut host_train, 0.01, 7).unwrap();
    let q = model.tensor(model.input(0).unwrap()).qparams.unwrap();
    let out_q = model.tensor(model.output(0).unwrap()).qparams.unwrap();
    let (scale, offset) = model.normalisation();
    let load = |host: &mut FineTuner<'_, '_, '_>, img: &[u8]| {
        let x = host.input_mut::<i8>().unwrap();
        for (d, &p) in x.iter_mut().zip(img) {
            *d = q.quantize(p as f32 * scale + offset);
        }
    };
    let samples = styled_digits(130);
    let (tune, held_out) = samples.split_at(100);
    let classify_all = |board: &mut picocnn::protocol::Client<Board<'_, '_, _>>| -> Vec<u8> {
        held_out
            .iter()
            .map(|(img, _)| {
                let r = board.request(Kind::Classify, img).unwrap();
                assert_eq!(r.status, Status::Ok as u8);
                Answer::from_bytes(&r.payload).unwrap().class
            })
            .collect()
    };
    let before = classify_all(&mut board);
    let (mut right, mut losses) = (0, 0u64);
    for (img, label) in tune {
        let got = board.learn(img, *label as u16).unwrap();
        load(&mut host, img);
        let want = host.step(*label).unwrap();
        assert_eq!(
            (got.predicted as usize, got.loss_q12),
            (want.predicted, want.loss_q12)
        );
        right += (want.predicted == *label) as usize;
        losses += want.loss_q12 as u64;
    }
    // Not a trivial sequence: some were wrong before their step.
    assert!(right < tune.len() && losses > 0, "{right} {losses}");
    let after = classify_all(&mut board);
    for ((img, _), class) in held_out.iter().zip(&after) {
        load(&mut host, img);
        let probs = host.infer().unwrap();
        let best = (0..probs.len()).fold(0, |b, k| if probs[k] > probs[b] { k } else { b });
        assert_eq!(*class as usize, best);
        // The confidence as classify gives it, from the tuned output.
        let r = board.request(Kind::Classify, img).unwrap();
        let confidence = (out_q.dequantize(probs[best]).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        assert_eq!(
            Answer::from_bytes(&r.payload).unwrap().confidence,
            confidence
        );
    }
    // The tuned weights answer some held-out digits differently.
    assert_ne!(before, after);
}

/// Learn requests the board must refuse, each with its status, after which
/// it still learns as the host does; boards that cannot learn say so.
#[cfg(feature = "std")]
#[test]
fn bad_learn_requests_get_their_errors() {
    use picocnn::learn::FineTuner;
    use picocnn::model::Model;
    use picocnn::protocol::{ClientError, Server};
    let blob = trained_lenet5();
    let model = Model::parse(blob.as_bytes()).unwrap();
    let train_len = FineTuner::train_len(&model).unwrap();
    let samples = styled_digits(2);
    let (img, label) = &samples[0];
    let refused = |r: Result<Learned, ClientError>| match r {
        Err(ClientError::Refused(s)) => Status::from_u8(s),
        other => panic!("{other:?}"),
    };

    let (mut arena, mut train) = (vec![0u8; model.arena_len()], vec![0u8; train_len]);
    let server = Server::with_learning(&model, &mut arena, &mut train, 0.01, 7).unwrap();
    let mut board = client(server);
    let first = board.learn(img, *label as u16).unwrap();
    let mut with_label = img.clone();
    with_label.push(3); // a label of 1 byte
    let cases: [(&[u8], Status); 4] = [
        (img, Status::WrongSize), // no label
        (&with_label, Status::WrongSize),
        (&with_label[..100], Status::WrongSize),
        (&[], Status::WrongSize),
    ];
    for (payload, want) in cases {
        let r = board.request(Kind::Learn, payload).unwrap();
        assert_eq!((r.status, r.payload.len()), (want as u8, 0));
    }
    assert_eq!(refused(board.learn(img, 10)), Some(Status::BadLabel));
    assert_eq!(refused(board.learn(img, u16::MAX)), Some(Status::BadLabel));
    let err = board.learn(img, 10).unwrap_err().to_string();
    assert_eq!(err, "the board answered: label outside the model's classes");
    // Nothing was learned from those: the next step is the host's second.
    let second = board.learn(&samples[1].0, samples[1].1 as u16).unwrap();
    let (mut host_arena, mut host_train) = (vec![0u8; model.arena_len()], vec![0u8; train_len]);
    let mut host = FineTuner::new(&model, &mut host_arena, &mut host_train, 0.01, 7).unwrap();
    let q = model.tensor(model.input(0).unwrap()).qparams.unwrap();
    let mut step = |img: &[u8], label: usize| {
        for (d, &p) in host.input_mut::<i8>().unwrap().iter_mut().zip(img) {
            *d = q.quantize(p as f32 / 255.0);
        }
        let r = host.step(label).unwrap();
        Learned {
            predicted: r.predicted as u16,
            loss_q12: r.loss_q12,
        }
    };
    assert_eq!(first, step(img, *label));
    assert_eq!(second, step(&samples[1].0, samples[1].1));

    // A server without a tuner, and one whose training buffer is short,
    // refuse to learn and go on classifying.
    let mut arena = vec![0u8; model.arena_len()];
    let mut board = client(Server::new(&model, &mut arena).unwrap());
    assert_eq!(refused(board.learn(img, 1)), Some(Status::CannotLearn));
    let mut arena = vec![0u8; model.arena_len()];
    let mut short = vec![0u8; train_len - 1];
    let server = Server::with_learning(&model, &mut arena, &mut short, 0.01, 7).unwrap();
    assert_eq!(
        server.learning(),
        Err(picocnn::Error::BufferTooSmall {
            what: "training buffer",
            needed: train_len,
            got: train_len - 1
        })
    );
    let mut board = client(server);
    assert_eq!(refused(board.learn(img, 1)), Some(Status::CannotLearn));
    // So does one whose learning rate the tuner refuses.
    let (mut arena, mut train) = (vec![0u8; model.arena_len()], vec![0u8; train_len]);
    let server = Server::with_learning(&model, &mut arena, &mut train, f32::NAN, 7).unwrap();
    assert!(
        matches!(
            server.learning(),
            Err(picocnn::Error::InvalidParameter { .. })
        ),
        "{:?}",
        server.learning()
    );
    let mut board = client(server);
    assert_eq!(refused(board.learn(img, 1)), Some(Status::CannotLearn));
    let err = board.learn(img, 1).unwrap_err().to_string();
    assert_eq!(err, "the board answered: this board cannot learn");
    let r = board.request(Kind::Classify, img).unwrap();
    assert_eq!(r.status, Status::Ok as u8);
    // A learn request too long for the receiver.
    let r = board.request(Kind::Learn, &[0u8; 787]).unwrap();
    assert_eq!(r.status, Status::TooLong as u8);
}
