//! The emulated UARTs as `embedded-io` devices: CMSDK APB UART0 on
//! `mps2-an386`, the nRF51 UART on `microbit`, the ns16550a on `virt`
//! (RISC-V). Polled, no interrupts.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

#[cfg(not(machine = "rv32"))]
fn read(addr: usize) -> u32 {
    // SAFETY: a memory-mapped UART register of this machine.
    unsafe { read_volatile(addr as *const u32) }
}

#[cfg(not(machine = "rv32"))]
fn write(addr: usize, v: u32) {
    // SAFETY: a memory-mapped UART register of this machine.
    unsafe { write_volatile(addr as *mut u32, v) }
}

#[cfg(machine = "rv32")]
fn read8(addr: usize) -> u8 {
    // SAFETY: a byte-wide memory-mapped UART register of this machine.
    unsafe { read_volatile(addr as *const u8) }
}

#[cfg(machine = "rv32")]
fn write8(addr: usize, v: u8) {
    // SAFETY: a byte-wide memory-mapped UART register of this machine.
    unsafe { write_volatile(addr as *mut u8, v) }
}

/// The machine's first UART.
pub struct Uart(());

#[cfg(machine = "m4")]
mod regs {
    /// UART0 (on mps2-an505 through its Secure alias).
    #[cfg(not(any(mps2_tz, mps3)))]
    pub const BASE: usize = 0x4000_4000;
    #[cfg(mps2_tz)]
    pub const BASE: usize = 0x5020_0000;
    #[cfg(mps3)]
    pub const BASE: usize = 0x5930_3000;
    pub const DATA: usize = BASE;
    pub const STATE: usize = BASE + 0x04;
    pub const CTRL: usize = BASE + 0x08;
    pub const BAUDDIV: usize = BASE + 0x10;
    pub const TX_FULL: u32 = 1;
    pub const RX_FULL: u32 = 2;
}

#[cfg(machine = "m0")]
mod regs {
    pub const BASE: usize = 0x4000_2000;
    pub const STARTRX: usize = BASE;
    pub const STARTTX: usize = BASE + 0x008;
    pub const RXDRDY: usize = BASE + 0x108;
    pub const TXDRDY: usize = BASE + 0x11C;
    pub const ENABLE: usize = BASE + 0x500;
    pub const RXD: usize = BASE + 0x518;
    pub const TXD: usize = BASE + 0x51C;
    pub const BAUDRATE: usize = BASE + 0x524;
}

#[cfg(machine = "rv32")]
mod regs {
    pub const BASE: usize = 0x1000_0000;
    /// Receive buffer (read), transmit holding (write).
    pub const DATA: usize = BASE;
    /// Line status: data ready (bit 0), transmit holding register empty (bit 5).
    pub const LSR: usize = BASE + 5;
    pub const DATA_READY: u8 = 1;
    pub const THR_EMPTY: u8 = 1 << 5;
}

impl Uart {
    /// Takes the UART: enables receive and transmit at 115200 baud.
    #[cfg(machine = "m4")]
    pub fn new() -> Uart {
        write(regs::BAUDDIV, 217); // 25 MHz / 115200
        write(regs::CTRL, 0b11);
        Uart(())
    }

    /// Takes the UART: enables receive and transmit at 115200 baud.
    #[cfg(machine = "m0")]
    pub fn new() -> Uart {
        write(regs::BAUDRATE, 0x01D7_E000);
        write(regs::ENABLE, 4);
        write(regs::STARTRX, 1);
        write(regs::STARTTX, 1);
        Uart(())
    }

    /// Takes the UART: QEMU's 16550 needs no set-up (no baud rate on an emulated line).
    #[cfg(machine = "rv32")]
    pub fn new() -> Uart {
        Uart(())
    }

    #[cfg(machine = "rv32")]
    fn ready(&self) -> bool {
        read8(regs::LSR) & regs::DATA_READY != 0
    }

    #[cfg(machine = "rv32")]
    fn take(&mut self) -> u8 {
        read8(regs::DATA)
    }

    #[cfg(machine = "rv32")]
    fn put(&mut self, b: u8) {
        while read8(regs::LSR) & regs::THR_EMPTY == 0 {}
        write8(regs::DATA, b);
    }

    #[cfg(machine = "m4")]
    fn ready(&self) -> bool {
        read(regs::STATE) & regs::RX_FULL != 0
    }

    #[cfg(machine = "m0")]
    fn ready(&self) -> bool {
        read(regs::RXDRDY) != 0
    }

    #[cfg(machine = "m4")]
    fn take(&mut self) -> u8 {
        read(regs::DATA) as u8
    }

    #[cfg(machine = "m0")]
    fn take(&mut self) -> u8 {
        write(regs::RXDRDY, 0);
        read(regs::RXD) as u8
    }

    #[cfg(machine = "m4")]
    fn put(&mut self, b: u8) {
        while read(regs::STATE) & regs::TX_FULL != 0 {}
        write(regs::DATA, b as u32);
    }

    #[cfg(machine = "m0")]
    fn put(&mut self, b: u8) {
        write(regs::TXDRDY, 0);
        write(regs::TXD, b as u32);
        while read(regs::TXDRDY) == 0 {}
    }
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.ready())
    }
}

impl embedded_io::Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.ready() {}
        let mut n = 0;
        while n < buf.len() && (n == 0 || self.ready()) {
            buf[n] = self.take();
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            self.put(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
