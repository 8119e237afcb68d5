//! TLS as TDS 7.x does it: the TLS handshake travels inside PRELOGIN packets,
//! then TLS records flow directly over TCP. Certificates come from PEM files
//! or are generated (self-signed, for 127.0.0.1 and localhost).

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::packet::{HEADER_LEN, PT_PRELOGIN, STATUS_EOM};
use crate::error::{Error, Result};

/// Where the server's certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsOptions {
    /// A certificate chain and private key in PEM files.
    Pem { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate generated at start for `localhost` and
    /// `127.0.0.1`; its PEM is available from the server to trust it.
    SelfSigned,
}

/// A ready rustls configuration and the certificate's PEM.
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub cert_pem: String,
}

pub fn setup(opts: &TlsOptions) -> Result<TlsSetup> {
    let (certs, key, cert_pem) = match opts {
        TlsOptions::Pem { cert, key } => {
            let cert_pem = std::fs::read_to_string(cert)?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| Error::Tls(format!("{}: {e}", cert.display())))?;
            if certs.is_empty() {
                return Err(Error::Tls(format!("{}: no certificate", cert.display())));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
            (certs, key, cert_pem)
        }
        TlsOptions::SelfSigned => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .map_err(|e| Error::Tls(e.to_string()))?;
            let cert_pem = ck.cert.pem();
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| Error::Tls(e.to_string()))?;
            (vec![ck.cert.der().clone()], key, cert_pem)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    // Tickets would be sent after the handshake, when the client has left
    // the PRELOGIN framing: keep the handshake self-contained.
    config.send_tls13_tickets = 0;
    Ok(TlsSetup {
        config: Arc::new(config),
        cert_pem,
    })
}

/// Wraps the TCP stream: during the handshake, reads unwrap PRELOGIN
/// packets and writes are wrapped in them; afterwards it passes through.
pub struct PreloginWrapper<S> {
    pub inner: S,
    pub handshake: bool,
    /// Reads pass through: the client finished its handshake and sent TLS
    /// records directly (TLS 1.3 lets LOGIN7 follow the client's Finished
    /// before the server's handshake loop stops reading).
    read_raw: bool,
    replay: Vec<u8>,
    header: [u8; HEADER_LEN],
    header_pos: usize,
    remaining: usize,
    pending: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
}

impl<S> PreloginWrapper<S> {
    pub fn new(inner: S) -> Self {
        PreloginWrapper {
            inner,
            handshake: true,
            read_raw: false,
            replay: Vec::new(),
            header: [0; HEADER_LEN],
            header_pos: 0,
            remaining: 0,
            pending: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginWrapper<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if !this.handshake || this.read_raw {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            while this.header_pos < HEADER_LEN {
                let mut rb = ReadBuf::new(&mut this.header[this.header_pos..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.header_pos += n;
                if this.header[0] != PT_PRELOGIN && (0x14..=0x17).contains(&this.header[0]) {
                    // A TLS record: the client left the PRELOGIN framing.
                    this.read_raw = true;
                    let got = this.header[..this.header_pos].to_vec();
                    this.header_pos = 0;
                    let n = got.len().min(buf.remaining());
                    buf.put_slice(&got[..n]);
                    this.replay = got[n..].to_vec();
                    return Poll::Ready(Ok(()));
                }
            }
            if this.header[0] != PT_PRELOGIN {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "expected a PRELOGIN packet during the TLS handshake",
                )));
            }
            let len = u16::from_be_bytes([this.header[2], this.header[3]]) as usize;
            this.remaining = len.saturating_sub(HEADER_LEN);
            this.header_pos = 0;
        }
        let max = this.remaining.min(buf.remaining());
        let mut tmp = vec![0u8; max];
        let mut rb = ReadBuf::new(&mut tmp);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        buf.put_slice(&tmp[..n]);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginWrapper<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.handshake {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.wbuf.is_empty() && !this.pending.is_empty() {
            let pending = std::mem::take(&mut this.pending);
            let chunks: Vec<&[u8]> = pending.chunks(4000).collect();
            let n = chunks.len();
            for (i, c) in chunks.into_iter().enumerate() {
                let len = (c.len() + HEADER_LEN) as u16;
                let status = if i + 1 == n { STATUS_EOM } else { 0 };
                let l = len.to_be_bytes();
                this.wbuf
                    .extend_from_slice(&[PT_PRELOGIN, status, l[0], l[1], 0, 0, 1, 0]);
                this.wbuf.extend_from_slice(c);
            }
        }
        while this.wpos < this.wbuf.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.wbuf[this.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.wpos += n;
        }
        this.wbuf.clear();
        this.wpos = 0;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
