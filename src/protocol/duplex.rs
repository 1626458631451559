//! One `embedded-io` device from a UART's two halves.

/// A receiver half and a transmitter half joined as the one
/// `embedded-io` device that [`poll`](super::poll) and
/// [`Service::tick`](super::Service::tick) take: HALs
/// often split a UART into a reader and a writer with error types of
/// their own.
///
/// ```
/// use core::convert::Infallible;
/// use picocnn::protocol::Duplex;
///
/// struct Rx(&'static [u8]);
/// impl embedded_io::ErrorType for Rx {
///     type Error = Infallible;
/// }
/// impl embedded_io::ReadReady for Rx {
///     fn read_ready(&mut self) -> Result<bool, Infallible> {
///         Ok(!self.0.is_empty())
///     }
/// }
/// impl embedded_io::Read for Rx {
///     fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
///         embedded_io::Read::read(&mut self.0, buf)
///     }
/// }
///
/// let mut tx = [0u8; 4];
/// let mut port = Duplex { rx: Rx(b"PQ"), tx: &mut tx[..] };
/// let mut two = [0u8; 2];
/// embedded_io::Read::read_exact(&mut port, &mut two).unwrap();
/// embedded_io::Write::write_all(&mut port, b"PR").unwrap();
/// assert_eq!((&two, &tx[..2]), (b"PQ", &b"PR"[..]));
/// ```
#[derive(Debug)]
pub struct Duplex<R, W> {
    /// The receiving half.
    pub rx: R,
    /// The transmitting half.
    pub tx: W,
}

/// An error of one half of a [`Duplex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplexError<R, W> {
    /// The receiver failed (a framing or overrun error, say).
    Read(R),
    /// The transmitter failed.
    Write(W),
}

impl<R: core::fmt::Debug, W: core::fmt::Debug> core::fmt::Display for DuplexError<R, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DuplexError::Read(e) => write!(f, "receive error: {e:?}"),
            DuplexError::Write(e) => write!(f, "transmit error: {e:?}"),
        }
    }
}

impl<R: core::fmt::Debug, W: core::fmt::Debug> core::error::Error for DuplexError<R, W> {}

impl<R: embedded_io::Error, W: embedded_io::Error> embedded_io::Error for DuplexError<R, W> {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            DuplexError::Read(e) => e.kind(),
            DuplexError::Write(e) => e.kind(),
        }
    }
}

#[cfg(feature = "defmt")]
impl<R: embedded_io::Error, W: embedded_io::Error> defmt::Format for DuplexError<R, W> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            DuplexError::Read(e) => defmt::write!(f, "receive error ({})", e.kind()),
            DuplexError::Write(e) => defmt::write!(f, "transmit error ({})", e.kind()),
        }
    }
}

impl<R: embedded_io::ErrorType, W: embedded_io::ErrorType> embedded_io::ErrorType for Duplex<R, W> {
    type Error = DuplexError<R::Error, W::Error>;
}

impl<R: embedded_io::Read, W: embedded_io::ErrorType> embedded_io::Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> core::result::Result<usize, Self::Error> {
        self.rx.read(buf).map_err(DuplexError::Read)
    }
}

impl<R: embedded_io::ReadReady, W: embedded_io::ErrorType> embedded_io::ReadReady for Duplex<R, W> {
    fn read_ready(&mut self) -> core::result::Result<bool, Self::Error> {
        self.rx.read_ready().map_err(DuplexError::Read)
    }
}

impl<R: embedded_io::ErrorType, W: embedded_io::Write> embedded_io::Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> core::result::Result<usize, Self::Error> {
        self.tx.write(buf).map_err(DuplexError::Write)
    }

    fn flush(&mut self) -> core::result::Result<(), Self::Error> {
        self.tx.flush().map_err(DuplexError::Write)
    }
}
