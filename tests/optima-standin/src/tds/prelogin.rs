//! PRELOGIN: the client's options in, the server's answer out (version,
//! encryption, instance, thread id, MARS).

use crate::error::{Error, Result};

pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

/// The client's PRELOGIN options the server uses.
#[derive(Debug, Clone, Copy)]
pub struct ClientPrelogin {
    pub encryption: u8,
}

pub fn parse(data: &[u8]) -> Result<ClientPrelogin> {
    let mut encryption = ENCRYPT_NOT_SUP;
    let mut i = 0;
    loop {
        let token = *data
            .get(i)
            .ok_or_else(|| Error::Protocol("PRELOGIN without terminator".into()))?;
        if token == 0xFF {
            break;
        }
        let field = data
            .get(i + 1..i + 5)
            .ok_or_else(|| Error::Protocol("PRELOGIN option truncated".into()))?;
        let offset = u16::from_be_bytes([field[0], field[1]]) as usize;
        let len = u16::from_be_bytes([field[2], field[3]]) as usize;
        if token == 1 && len >= 1 {
            encryption = *data
                .get(offset)
                .ok_or_else(|| Error::Protocol("PRELOGIN encryption out of range".into()))?;
        }
        i += 5;
    }
    Ok(ClientPrelogin { encryption })
}

/// The server's PRELOGIN answer.
pub fn response(encryption: u8) -> Vec<u8> {
    let version = [15u8, 0, 0x0F, 0xA0, 0, 0];
    let fields: [(u8, Vec<u8>); 5] = [
        (0, version.to_vec()),
        (1, vec![encryption]),
        (2, vec![0]),
        (3, vec![]),
        (4, vec![0]),
    ];
    let mut head = Vec::new();
    let mut body = Vec::new();
    let mut offset = (fields.len() * 5 + 1) as u16;
    for (tok, data) in &fields {
        head.push(*tok);
        head.extend_from_slice(&offset.to_be_bytes());
        head.extend_from_slice(&(data.len() as u16).to_be_bytes());
        body.extend_from_slice(data);
        offset += data.len() as u16;
    }
    head.push(0xFF);
    head.extend_from_slice(&body);
    head
}
