//! The TDS server: listens on a socket, negotiates PRELOGIN (plaintext or
//! TLS), checks LOGIN7 against the configured SQL login, then serves each
//! connection from its own session thread that owns a SQLite connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result, SqlError};
use crate::schema::DATABASE_NAME;
use crate::sql::session::{Request, Session};
use crate::tds::packet::*;
pub use crate::tds::tls::TlsOptions;
use crate::tds::tls::{self, PreloginWrapper};
use crate::tds::tokens::*;
use crate::tds::{login, prelogin, rpc};

/// How to run a stand-in server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The SQLite file holding the company database (created when missing).
    pub db: PathBuf,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The SQL login (SQL Server's `sa` by default in the CLI).
    pub user: String,
    pub password: String,
    /// TLS: when set, encryption is required (as SQL Server's Force
    /// Encryption); when not, only clients that don't encrypt can connect.
    pub tls: Option<TlsOptions>,
}

/// A running stand-in. Dropping it stops it.
pub struct StandinServer {
    addr: SocketAddr,
    user: String,
    password: String,
    tls_cert_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}
type Stream = Box<dyn AsyncStream>;

static NEXT_SPID: AtomicU16 = AtomicU16::new(51);

struct Shared {
    db: PathBuf,
    user: String,
    password: String,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl StandinServer {
    pub async fn start(opts: ServeOptions) -> Result<StandinServer> {
        // Create or check the database before accepting anyone.
        let db = opts.db.clone();
        tokio::task::spawn_blocking(move || crate::db::open(&db, Default::default()).map(|_| ()))
            .await
            .map_err(|e| Error::Other(e.to_string()))??;
        let tls = match &opts.tls {
            Some(t) => Some(tls::setup(t)?),
            None => None,
        };
        let listener = TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            db: opts.db.clone(),
            user: opts.user.clone(),
            password: opts.password.clone(),
            tls: tls.as_ref().map(|t| t.config.clone()),
        });
        let task = tokio::spawn(accept_loop(listener, shared, rx));
        tracing::info!(%addr, tls = tls.is_some(), db = %opts.db.display(), "optima-standin listening");
        Ok(StandinServer {
            addr,
            user: opts.user,
            password: opts.password,
            tls_cert_pem: tls.map(|t| t.cert_pem),
            shutdown,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's certificate (PEM) when it serves TLS.
    pub fn tls_cert_pem(&self) -> Option<&str> {
        self.tls_cert_pem.as_deref()
    }

    /// An ADO.NET connection string for this server, as tiberius parses it:
    /// plaintext servers use `encrypt=DANGER_PLAINTEXT` (loopback tests
    /// only); TLS servers `encrypt=true;TrustServerCertificate=true`.
    pub fn ado_connection_string(&self) -> String {
        let enc = if self.tls_cert_pem.is_some() {
            "encrypt=true;TrustServerCertificate=true"
        } else {
            "encrypt=DANGER_PLAINTEXT"
        };
        format!(
            "server=tcp:{},{};database={};user={};password={};{}",
            self.addr.ip(),
            self.addr.port(),
            DATABASE_NAME,
            ado_quote(&self.user),
            ado_quote(&self.password),
            enc
        )
    }

    /// Stops accepting and closes all connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for StandinServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Quotes a connection string value when it needs it.
pub fn ado_quote(v: &str) -> String {
    if v.contains([';', '\'', '"', '=', '{', '}']) || v.trim() != v {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let shared = shared.clone();
                    let rx = shutdown.clone();
                    conns.spawn(async move {
                        if let Err(e) = serve_connection(tcp, shared, rx).await {
                            tracing::debug!(%peer, error = %e, "connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn send_login_error<W: AsyncWrite + Unpin>(w: &mut W, e: &SqlError) -> Result<()> {
    let mut t = Tokens::new();
    t.error(e);
    t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
    write_message(w, PT_TABULAR, 4096, &t.buf).await
}

async fn serve_connection(
    tcp: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    tcp.set_nodelay(true)?;
    let mut tcp = tcp;
    // PRELOGIN
    let msg = read_message(&mut tcp)
        .await?
        .ok_or_else(|| Error::Protocol("closed before PRELOGIN".into()))?;
    if msg.ty != PT_PRELOGIN {
        return Err(Error::Protocol(format!(
            "expected PRELOGIN, got packet type 0x{:02X} (TDS 8.0 strict encryption is not supported)",
            msg.ty
        )));
    }
    let client = prelogin::parse(&msg.data)?;
    let reply = match (&shared.tls, client.encryption) {
        (Some(_), prelogin::ENCRYPT_NOT_SUP) => prelogin::ENCRYPT_REQ,
        (Some(_), _) => prelogin::ENCRYPT_ON,
        (None, _) => prelogin::ENCRYPT_NOT_SUP,
    };
    write_message(&mut tcp, PT_TABULAR, 4096, &prelogin::response(reply)).await?;
    let mut stream: Stream = match (&shared.tls, reply) {
        (Some(cfg), prelogin::ENCRYPT_ON) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
            let mut s = acceptor
                .accept(PreloginWrapper::new(tcp))
                .await
                .map_err(|e| Error::Tls(e.to_string()))?;
            s.get_mut().0.handshake = false;
            Box::new(s)
        }
        (Some(_), _) => return Err(Error::Protocol("client does not support encryption".into())),
        _ => Box::new(tcp),
    };
    // LOGIN7
    let msg = read_message(&mut stream)
        .await?
        .ok_or_else(|| Error::Protocol("closed before LOGIN7".into()))?;
    if msg.ty != PT_LOGIN7 {
        return Err(Error::Protocol(format!(
            "expected LOGIN7, got 0x{:02X}",
            msg.ty
        )));
    }
    let login = login::parse(&msg.data)?;
    let login_failed = |user: &str| SqlError {
        number: 18456,
        class: 14,
        state: 1,
        message: format!("Login failed for user '{user}'."),
    };
    if login.integrated {
        let e = login_failed("");
        send_login_error(&mut stream, &e).await?;
        return Err(Error::Protocol(
            "integrated authentication is not supported".into(),
        ));
    }
    if !login.user.eq_ignore_ascii_case(&shared.user) || login.password != shared.password {
        tracing::info!(user = %login.user, "login failed");
        send_login_error(&mut stream, &login_failed(&login.user)).await?;
        return Ok(());
    }
    if !login.database.is_empty() && !login.database.eq_ignore_ascii_case(DATABASE_NAME) {
        let mut t = Tokens::new();
        t.error(&SqlError::new(
            4060,
            11,
            format!(
                "Cannot open database \"{}\" requested by the login. The login failed.",
                login.database
            ),
        ));
        t.error(&login_failed(&login.user));
        t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
        write_message(&mut stream, PT_TABULAR, 4096, &t.buf).await?;
        return Ok(());
    }
    let packet_size = (login.packet_size as usize).clamp(512, 32767);
    let spid = NEXT_SPID.fetch_add(1, Ordering::SeqCst);

    // The session thread.
    let cancel = Arc::new(AtomicBool::new(false));
    let (job_tx, job_rx) = std::sync::mpsc::channel::<(Request, mpsc::Sender<Chunk>)>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let db = shared.db.clone();
    let user = login.user.clone();
    let c2 = cancel.clone();
    std::thread::Builder::new()
        .name(format!("tds-session-{spid}"))
        .spawn(move || session_thread(db, spid, user, c2, job_rx, ready_tx))?;
    let interrupt = match ready_rx.await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let err = SqlError::new(
                4060,
                11,
                format!("Cannot open database \"{DATABASE_NAME}\": {e}"),
            );
            send_login_error(&mut stream, &err).await?;
            return Err(e);
        }
        Err(_) => return Err(Error::Other("session thread failed".into())),
    };
    let mut t = Tokens::new();
    t.env_database(DATABASE_NAME, "master");
    t.info(
        5701,
        &format!("Changed database context to '{DATABASE_NAME}'."),
    );
    t.env_collation();
    t.env_language("us_english");
    t.info(5703, "Changed language setting to us_english.");
    t.login_ack();
    t.env_packet_size(packet_size as u32, 4096);
    t.done(TOKEN_DONE, DONE_FINAL, 0, 0);
    write_message(&mut stream, PT_TABULAR, packet_size, &t.buf).await?;
    tracing::debug!(spid, user = %login.user, app = %login.app_name, host = %login.host, "login");

    // Requests.
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (msg_tx, mut msg_rx) = mpsc::channel::<Result<Option<Message>>>(16);
    let c3 = cancel.clone();
    let reader = tokio::spawn(async move {
        loop {
            let m = read_message(&mut rd).await;
            let stop = !matches!(m, Ok(Some(_)));
            if let Ok(Some(msg)) = &m
                && msg.ty == PT_ATTENTION
            {
                c3.store(true, Ordering::SeqCst);
                interrupt.interrupt();
            }
            if msg_tx.send(m).await.is_err() || stop {
                break;
            }
        }
    });
    let mut acked_attentions = 0usize;
    let result = loop {
        let msg = tokio::select! {
            m = msg_rx.recv() => m,
            _ = shutdown.changed() => break Ok(()),
        };
        let msg = match msg {
            None | Some(Ok(None)) => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(Some(m))) => m,
        };
        let req = match msg.ty {
            PT_ATTENTION => {
                if acked_attentions > 0 {
                    acked_attentions -= 1;
                } else {
                    let mut t = Tokens::new();
                    t.done(TOKEN_DONE, DONE_ATTN, 0, 0);
                    write_message(&mut wr, PT_TABULAR, packet_size, &t.buf).await?;
                }
                cancel.store(false, Ordering::SeqCst);
                continue;
            }
            PT_SQL_BATCH => rpc::parse_batch(&msg.data).map(Request::Batch),
            PT_RPC => rpc::parse_rpc(&msg.data).map(Request::Rpc),
            PT_TRANSACTION_MANAGER => rpc::parse_tm(&msg.data).map(Request::Tm),
            other => Err(Error::Protocol(format!(
                "unsupported packet type 0x{other:02X}"
            ))),
        };
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                let mut t = Tokens::new();
                t.error(&SqlError::new(
                    4002,
                    16,
                    format!(
                        "The incoming tabular data stream (TDS) protocol stream is incorrect: {e}"
                    ),
                ));
                t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
                write_message(&mut wr, PT_TABULAR, packet_size, &t.buf).await?;
                continue;
            }
        };
        let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(8);
        if job_tx.send((req, chunk_tx)).is_err() {
            break Err(Error::Other("session thread ended".into()));
        }
        let mut pw = PacketWriter::new(packet_size, PT_TABULAR);
        while let Some(c) = chunk_rx.recv().await {
            match c {
                Chunk::Data(d) => pw.write(&mut wr, &d).await?,
                Chunk::End { attn } => {
                    if attn {
                        acked_attentions += 1;
                    }
                }
            }
        }
        pw.finish(&mut wr).await?;
    };
    reader.abort();
    drop(job_tx);
    result
}

enum Chunk {
    Data(Vec<u8>),
    End { attn: bool },
}

fn session_thread(
    db: PathBuf,
    spid: u16,
    user: String,
    cancel: Arc<AtomicBool>,
    jobs: std::sync::mpsc::Receiver<(Request, mpsc::Sender<Chunk>)>,
    ready: oneshot::Sender<Result<rusqlite::InterruptHandle>>,
) {
    let mut session = match Session::open(&db, spid, &user, cancel) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(session.interrupt_handle())).is_err() {
        return;
    }
    while let Ok((req, tx)) = jobs.recv() {
        let tx2 = tx.clone();
        let mut sink = move |b: Vec<u8>| b.is_empty() || tx2.blocking_send(Chunk::Data(b)).is_ok();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.execute(req, &mut sink)
        }));
        let attn = match run {
            Ok(attn) => attn,
            Err(_) => {
                // A bug must not take the server down: report it to this client.
                tracing::error!(spid, "request panicked");
                let mut t = Tokens::new();
                t.error(&SqlError::internal(
                    "internal error while executing the request",
                ));
                t.done(TOKEN_DONE, DONE_ERROR, 0, 0);
                let _ = tx.blocking_send(Chunk::Data(t.buf));
                false
            }
        };
        let _ = tx.blocking_send(Chunk::End { attn });
    }
}
