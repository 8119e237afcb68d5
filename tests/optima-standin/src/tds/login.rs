//! LOGIN7: decoding the client's login record (SQL authentication).

use super::packet::{Rd, utf16_to_string};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Login {
    pub tds_version: u32,
    pub packet_size: u32,
    pub host: String,
    pub user: String,
    pub password: String,
    pub app_name: String,
    pub database: String,
    /// SSPI (integrated) authentication was requested.
    pub integrated: bool,
}

fn field(data: &[u8], offset: usize, chars: usize) -> Result<String> {
    let end = offset + chars * 2;
    let b = data
        .get(offset..end)
        .ok_or_else(|| Error::Protocol("LOGIN7 field out of range".into()))?;
    utf16_to_string(b)
}

/// Undoes LOGIN7's password obfuscation (XOR 0xA5, then swap nibbles).
pub fn decode_password(b: &[u8]) -> Result<String> {
    let plain: Vec<u8> = b
        .iter()
        .map(|x| {
            let y = x ^ 0xA5;
            y.rotate_left(4)
        })
        .collect();
    utf16_to_string(&plain)
}

pub fn parse(data: &[u8]) -> Result<Login> {
    let mut r = Rd::new(data);
    let _len = r.u32()?;
    let tds_version = u32::from_be_bytes(
        r.bytes(4)?
            .try_into()
            .map_err(|_| Error::Protocol("LOGIN7 version".into()))?,
    );
    let packet_size = r.u32()?;
    r.bytes(4 + 4 + 4)?; // client prog version, pid, connection id
    let _flags1 = r.u8()?;
    let flags2 = r.u8()?;
    r.bytes(1 + 1 + 4 + 4)?; // type flags, flags3, time zone, lcid
    let mut pairs = Vec::new();
    for _ in 0..9 {
        let off = r.u16()? as usize;
        let len = r.u16()? as usize;
        pairs.push((off, len));
    }
    let host = field(data, pairs[0].0, pairs[0].1)?;
    let user = field(data, pairs[1].0, pairs[1].1)?;
    let (poff, plen) = pairs[2];
    let pw_bytes = data
        .get(poff..poff + plen * 2)
        .ok_or_else(|| Error::Protocol("LOGIN7 password out of range".into()))?;
    let password = decode_password(pw_bytes)?;
    let app_name = field(data, pairs[3].0, pairs[3].1)?;
    let database = field(data, pairs[8].0, pairs[8].1)?;
    Ok(Login {
        tds_version,
        packet_size,
        host,
        user,
        password,
        app_name,
        database,
        integrated: flags2 & 0x80 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let pw = "Zażółć1!";
        let enc: Vec<u8> = pw
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .map(|b| b.rotate_left(4) ^ 0xA5)
            .collect();
        assert_eq!(decode_password(&enc).unwrap(), pw);
    }
}
