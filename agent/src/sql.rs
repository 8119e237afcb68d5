//! The SQL Server connection (tiberius over tokio, TLS through rustls).

use std::time::Duration;

use thiserror::Error;
use tiberius::{Client, Config};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::secrets::Secret;

pub type SqlClient = Client<Compat<TcpStream>>;

/// Per-session settings sent once after connecting.
pub const SESSION_SETTINGS: &str =
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCK_TIMEOUT 5000; SET NOCOUNT ON;";

#[derive(Debug, Error)]
pub enum SqlError {
    #[error("invalid connection string: {0}")]
    Config(String),
    #[error("cannot reach SQL Server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to SQL Server at {addr} timed out after {seconds} s")]
    Timeout { addr: String, seconds: u64 },
    #[error("SQL Server: {0}")]
    Server(#[from] tiberius::error::Error),
    #[error("unexpected answer from SQL Server: {0}")]
    Unexpected(String),
}

/// Where and how to connect: the ADO.NET string (password included) and
/// the time a connection may take.
#[derive(Debug, Clone)]
pub struct SqlTarget {
    pub ado: Secret,
    pub timeout_seconds: u64,
}

/// Opens one connection, within the target's timeout.
pub async fn connect(target: &SqlTarget) -> Result<SqlClient, SqlError> {
    connect_ado(target.ado.expose(), target.timeout_seconds).await
}

/// Opens one connection from an ADO.NET string (password included), with the
/// agent's session settings.
pub async fn connect_ado(ado: &str, seconds: u64) -> Result<SqlClient, SqlError> {
    let tds = Config::from_ado_string(ado).map_err(|e| SqlError::Config(e.to_string()))?;
    let addr = tds.get_addr();
    let attempt = async {
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| SqlError::Connect {
                addr: addr.clone(),
                source,
            })?;
        tcp.set_nodelay(true).ok();
        let mut client = Client::connect(tds, tcp.compat_write()).await?;
        client
            .simple_query(SESSION_SETTINGS)
            .await?
            .into_results()
            .await?;
        Ok::<_, SqlError>(client)
    };
    tokio::time::timeout(Duration::from_secs(seconds), attempt)
        .await
        .map_err(|_| SqlError::Timeout {
            addr: addr.clone(),
            seconds,
        })?
}

/// Connects and runs `SELECT 1`: the heartbeat's "can I reach the ERP".
pub async fn probe(target: &SqlTarget) -> Result<(), SqlError> {
    let mut client = connect(target).await?;
    client
        .simple_query("SELECT 1")
        .await?
        .into_results()
        .await?;
    client.close().await.ok();
    Ok(())
}

/// Plaintext SQL connections are for loopback tests only; say so once.
pub fn warn_if_plaintext(target: &SqlTarget) {
    if target
        .ado
        .expose()
        .to_ascii_lowercase()
        .contains("encrypt=danger_plaintext")
    {
        tracing::warn!(
            "the SQL connection is not encrypted (encrypt=DANGER_PLAINTEXT): use this on loopback only"
        );
    }
}
