//! Which ERP a test talks to: a real SQL Server when `MSSQL_URL` is set (an
//! ADO.NET connection string), otherwise a fresh stand-in on 127.0.0.1 with
//! a seeded database in a temporary directory. Tests then use the same code
//! and SQL against either.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::error::{Error, Result};
use crate::seed::{SeedOptions, seed_database};
use crate::server::{ServeOptions, StandinServer};

/// The environment variable naming a real SQL Server.
pub const MSSQL_URL: &str = "MSSQL_URL";

/// A tiberius client over TCP.
pub type Client = tiberius::Client<Compat<TcpStream>>;

/// Connects tiberius with an ADO.NET connection string.
pub async fn connect(ado: &str) -> Result<Client> {
    let config = tiberius::Config::from_ado_string(ado)?;
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Ok(tiberius::Client::connect(config, tcp.compat_write()).await?)
}

/// The ERP under test.
pub struct Erp {
    /// The ADO.NET connection string to give the agent.
    pub ado: String,
    /// The stand-in, when no `MSSQL_URL` was set.
    pub standin: Option<StandinServer>,
    /// The stand-in's SQLite file (for the simulator).
    pub db: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Erp {
    /// A new connection.
    pub async fn connect(&self) -> Result<Client> {
        connect(&self.ado).await
    }
    /// True when this is a real SQL Server.
    pub fn is_real(&self) -> bool {
        self.standin.is_none()
    }
}

/// `MSSQL_URL` when set (the database must already hold the schema and seed:
/// see `optima-standin tsql`), else a stand-in seeded with `seed`.
pub async fn erp_for_tests(seed: SeedOptions) -> Result<Erp> {
    if let Ok(url) = std::env::var(MSSQL_URL)
        && !url.trim().is_empty()
    {
        return Ok(Erp {
            ado: url,
            standin: None,
            db: None,
            _dir: None,
        });
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("optima.sqlite");
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || seed_database(&db2, &seed))
        .await
        .map_err(|e| Error::Other(e.to_string()))??;
    let server = start_standin(&db, None).await?;
    Ok(Erp {
        ado: server.ado_connection_string(),
        standin: Some(server),
        db: Some(db),
        _dir: Some(dir),
    })
}

/// Starts a stand-in on a free loopback port with a random password.
pub async fn start_standin(
    db: &Path,
    tls: Option<crate::server::TlsOptions>,
) -> Result<StandinServer> {
    StandinServer::start(ServeOptions {
        db: db.to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        user: "sa".into(),
        password: random_password(),
        tls,
    })
    .await
}

/// A random password (letters and digits, 20 characters).
pub fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
