//! TDS packets: the 8-byte header, reassembly of a message from packets, and
//! splitting a response into packets of the negotiated size.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

pub const HEADER_LEN: usize = 8;

pub const PT_SQL_BATCH: u8 = 0x01;
pub const PT_RPC: u8 = 0x03;
pub const PT_TABULAR: u8 = 0x04;
pub const PT_ATTENTION: u8 = 0x06;
pub const PT_BULK: u8 = 0x07;
pub const PT_TRANSACTION_MANAGER: u8 = 0x0E;
pub const PT_LOGIN7: u8 = 0x10;
pub const PT_SSPI: u8 = 0x11;
pub const PT_PRELOGIN: u8 = 0x12;

pub const STATUS_EOM: u8 = 0x01;

/// Largest message the stand-in accepts from a client (64 MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// A whole client message (one or more packets of the same type).
#[derive(Debug)]
pub struct Message {
    pub ty: u8,
    pub data: Vec<u8>,
}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Message>> {
    let mut data = Vec::new();
    let mut ty = None;
    loop {
        let mut h = [0u8; HEADER_LEN];
        match r.read_exact(&mut h).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && ty.is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if len < HEADER_LEN {
            return Err(Error::Protocol(format!(
                "packet length {len} is shorter than its header"
            )));
        }
        if *ty.get_or_insert(h[0]) != h[0] && h[0] != PT_ATTENTION {
            return Err(Error::Protocol(
                "packet type changed inside a message".into(),
            ));
        }
        let start = data.len();
        data.resize(start + len - HEADER_LEN, 0);
        r.read_exact(&mut data[start..]).await?;
        if data.len() > MAX_MESSAGE {
            return Err(Error::Protocol("message too large".into()));
        }
        if h[0] == PT_ATTENTION {
            return Ok(Some(Message {
                ty: PT_ATTENTION,
                data: Vec::new(),
            }));
        }
        if h[1] & STATUS_EOM != 0 {
            return Ok(Some(Message {
                ty: ty.unwrap_or(h[0]),
                data,
            }));
        }
    }
}

/// Writes a response message as packets of `packet_size`, streaming: call
/// [`PacketWriter::write`] with parts and [`PacketWriter::finish`] at the end.
pub struct PacketWriter {
    pub packet_size: usize,
    pending: Vec<u8>,
    packet_id: u8,
    ty: u8,
}

impl PacketWriter {
    pub fn new(packet_size: usize, ty: u8) -> Self {
        PacketWriter {
            packet_size: packet_size.clamp(512, 32767),
            pending: Vec::new(),
            packet_id: 1,
            ty,
        }
    }

    fn header(&mut self, len: usize, eom: bool) -> [u8; HEADER_LEN] {
        let l = (len + HEADER_LEN) as u16;
        let id = self.packet_id;
        self.packet_id = self.packet_id.wrapping_add(1);
        [
            self.ty,
            if eom { STATUS_EOM } else { 0 },
            (l >> 8) as u8,
            l as u8,
            0,
            0,
            id,
            0,
        ]
    }

    /// Queues data; writes whole packets as they fill.
    pub async fn write<W: AsyncWrite + Unpin>(&mut self, w: &mut W, data: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(data);
        let cap = self.packet_size - HEADER_LEN;
        // Keep at least one byte back so the last packet carries EOM.
        if self.pending.len() > cap {
            let mut out = Vec::with_capacity(self.pending.len() + 64);
            let mut start = 0;
            while self.pending.len() - start > cap {
                let h = self.header(cap, false);
                out.extend_from_slice(&h);
                out.extend_from_slice(&self.pending[start..start + cap]);
                start += cap;
            }
            self.pending.drain(..start);
            w.write_all(&out).await?;
        }
        Ok(())
    }

    /// Writes the last packet with END OF MESSAGE and flushes.
    pub async fn finish<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<()> {
        let rest = std::mem::take(&mut self.pending);
        let h = self.header(rest.len(), true);
        let mut out = Vec::with_capacity(rest.len() + HEADER_LEN);
        out.extend_from_slice(&h);
        out.extend_from_slice(&rest);
        w.write_all(&out).await?;
        w.flush().await?;
        self.packet_id = 1;
        Ok(())
    }
}

/// Writes a whole message at once.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    ty: u8,
    packet_size: usize,
    data: &[u8],
) -> Result<()> {
    let mut pw = PacketWriter::new(packet_size, ty);
    pw.write(w, data).await?;
    pw.finish(w).await
}

/// A little-endian reader over a message body; every read is bounds-checked.
pub struct Rd<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Rd<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Rd { buf, pos: 0 }
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| Error::Protocol("message ends too early".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn utf16(&mut self, chars: usize) -> Result<String> {
        let b = self.bytes(chars * 2)?;
        utf16_to_string(b)
    }
    pub fn b_varchar(&mut self) -> Result<String> {
        let n = self.u8()? as usize;
        self.utf16(n)
    }
    pub fn us_varchar(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        self.utf16(n)
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Skips ALL_HEADERS (SQL batch, RPC and transaction manager requests).
    pub fn skip_all_headers(&mut self) -> Result<()> {
        let total = self.u32()? as usize;
        if total < 4 {
            return Err(Error::Protocol("bad ALL_HEADERS length".into()));
        }
        self.bytes(total - 4)?;
        Ok(())
    }
}

pub fn utf16_to_string(b: &[u8]) -> Result<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| Error::Protocol("invalid UTF-16 text".into()))
}
