//! The host side: one request, one reply, over any byte port (a serial
//! port, a pseudo-terminal, a socket).

use super::{encode, Event, Kind, Learned, Receiver, Status, CRC_LEN, HEADER_LEN, REPLY_MAGIC};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// A reply frame: its status byte and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status byte ([`Status::from_u8`] names the known ones).
    pub status: u8,
    /// The payload (an [`Answer`](super::Answer) after a classification).
    pub payload: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ClientError {
    /// The request could not be framed (a payload over 65535 bytes).
    Encode(crate::Error),
    /// Writing the request failed.
    Write(std::io::Error),
    /// Reading the port failed (a read that times out is not a failure:
    /// the client reads again until its own timeout).
    Read(std::io::Error),
    /// No whole reply within the client's timeout.
    Timeout(Duration),
    /// A reply arrived broken (a bad CRC, or longer than a reply can be).
    Broken(Status),
    /// The board answered with this error status.
    Refused(u8),
    /// An OK reply whose payload is not the request's answer (its length).
    Unexpected(usize),
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientError::Encode(e) => write!(f, "{e}"),
            ClientError::Write(e) => write!(f, "writing to the port: {e}"),
            ClientError::Read(e) => write!(f, "reading the port: {e}"),
            ClientError::Timeout(t) => write!(f, "no reply within {:.1} s", t.as_secs_f64()),
            ClientError::Broken(s) => write!(f, "a broken reply ({})", s.describe()),
            ClientError::Refused(s) => match Status::from_u8(*s) {
                Some(s) => write!(f, "the board answered: {}", s.describe()),
                None => write!(f, "the board answered with unknown status {s}"),
            },
            ClientError::Unexpected(n) => {
                write!(f, "an unexpected reply ({n} payload bytes)")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Asks a board that runs [`Server`](super::Server) over `port` and waits
/// for its replies. The port's reads should time out now and then
/// ([`ErrorKind::TimedOut`], as serial ports opened with a timeout do) so
/// that the client can give up after its own timeout.
///
/// ```
/// use picocnn::protocol::{encode, Answer, Client, Kind, Status, REPLY_MAGIC};
/// use std::io::{Cursor, Read, Write};
/// use std::time::Duration;
///
/// // A port whose board has already answered: the reply waits to be read.
/// struct Port(Vec<u8>, Cursor<Vec<u8>>);
/// impl Write for Port {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
/// impl Read for Port {
///     fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> { self.1.read(b) }
/// }
///
/// let answer = Answer { class: 7, confidence: 250, runners_up: [1, 9] };
/// let mut reply = [0u8; 16];
/// let n = encode(REPLY_MAGIC, Status::Ok as u8, &answer.to_bytes(), &mut reply)?;
/// let port = Port(Vec::new(), Cursor::new(reply[..n].to_vec()));
///
/// let mut client = Client::new(port, Duration::from_millis(100));
/// let got = client.request(Kind::Classify, &[0u8; 16]).unwrap();
/// assert_eq!(got.status, Status::Ok as u8);
/// assert_eq!(Answer::from_bytes(&got.payload), Some(answer));
/// assert_eq!(client.port().0.len(), 5 + 16 + 4); // the request frame
/// # Ok::<(), picocnn::Error>(())
/// ```
#[derive(Debug)]
pub struct Client<P> {
    port: P,
    timeout: Duration,
}

impl<P: Read + Write> Client<P> {
    /// A client of `port` that waits up to `timeout` for each reply.
    pub fn new(port: P, timeout: Duration) -> Self {
        Client { port, timeout }
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// Sends a `kind` request with `payload`; returns the reply.
    pub fn request(&mut self, kind: Kind, payload: &[u8]) -> Result<Reply, ClientError> {
        let mut frame = std::vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
        let n = encode(super::REQUEST_MAGIC, kind as u8, payload, &mut frame)
            .map_err(ClientError::Encode)?;
        self.exchange(&frame[..n])
    }

    /// One learning step on the board: `image` (the model's input size,
    /// 8-bit pixels) with its `label`; returns the prediction and loss
    /// before the step. An error status is [`ClientError::Refused`].
    pub fn learn(&mut self, image: &[u8], label: u16) -> Result<Learned, ClientError> {
        let mut payload = std::vec::Vec::with_capacity(image.len() + 2);
        payload.extend_from_slice(image);
        payload.extend_from_slice(&label.to_le_bytes());
        let reply = self.request(Kind::Learn, &payload)?;
        if reply.status != Status::Ok as u8 {
            return Err(ClientError::Refused(reply.status));
        }
        Learned::from_bytes(&reply.payload).ok_or(ClientError::Unexpected(reply.payload.len()))
    }

    /// Sends `bytes` as they are (a frame, or a malformed one to test a
    /// board's error replies); returns the reply.
    pub fn exchange(&mut self, bytes: &[u8]) -> Result<Reply, ClientError> {
        self.port
            .write_all(bytes)
            .and_then(|_| self.port.flush())
            .map_err(ClientError::Write)?;
        let mut rx = Receiver::<64>::with_magic(REPLY_MAGIC);
        let start = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            if start.elapsed() > self.timeout {
                return Err(ClientError::Timeout(self.timeout));
            }
            let got = match self.port.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::TimedOut => 0,
                Err(e) => return Err(ClientError::Read(e)),
            };
            for &b in &buf[..got] {
                match rx.push(b) {
                    Some(Event::Request { kind, .. }) => {
                        return Ok(Reply {
                            status: kind,
                            payload: rx.payload().to_vec(),
                        })
                    }
                    Some(Event::Error(s)) => return Err(ClientError::Broken(s)),
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Writes go nowhere; reads come from `input`, then time out.
    struct Port(Cursor<Vec<u8>>);

    impl Write for Port {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Read for Port {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(b)? {
                0 => Err(ErrorKind::TimedOut.into()),
                n => Ok(n),
            }
        }
    }

    fn reply(status: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = std::vec![0u8; HEADER_LEN + payload.len() + CRC_LEN];
        let n = encode(REPLY_MAGIC, status, payload, &mut f).unwrap();
        f.truncate(n);
        f
    }

    #[test]
    fn skips_noise_before_the_reply() {
        let mut bytes = b"xxPQ".to_vec();
        bytes.extend(reply(Status::WrongSize as u8, &[]));
        let mut c = Client::new(Port(Cursor::new(bytes)), Duration::from_secs(1));
        let r = c.exchange(b"PQ").unwrap();
        assert_eq!((r.status, r.payload.len()), (Status::WrongSize as u8, 0));
    }

    #[test]
    fn a_broken_reply_and_silence_are_errors() {
        let mut bad = reply(Status::Ok as u8, &[1, 2, 3, 4]);
        bad[6] ^= 1;
        let mut c = Client::new(Port(Cursor::new(bad)), Duration::from_secs(1));
        let e = c.request(Kind::Info, &[]).unwrap_err();
        assert_eq!(e.to_string(), "a broken reply (CRC mismatch)");
        let mut c = Client::new(Port(Cursor::new(Vec::new())), Duration::from_millis(20));
        let e = c.request(Kind::Info, &[]).unwrap_err();
        assert_eq!(e.to_string(), "no reply within 0.0 s");
    }

    #[test]
    fn an_oversized_payload_is_not_sent() {
        let mut c = Client::new(Port(Cursor::new(Vec::new())), Duration::from_millis(20));
        let e = c.request(Kind::Classify, &[0u8; 70_000]).unwrap_err();
        assert!(matches!(e, ClientError::Encode(_)), "{e}");
    }
}
