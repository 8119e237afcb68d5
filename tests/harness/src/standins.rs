//! The ERP and shop stand-ins as processes, started from their own binaries
//! exactly as a person would (see docs/optima-standin.md, docs/woo-standin.md).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::cloud::random_secret;
use crate::free_port;
use crate::paths::workspace_bin;
use crate::process::Process;

/// The SQL Server stand-in holding an Optima company database.
pub struct OptimaStandin {
    pub process: Process,
    /// ADO connection string without the password (as the agent wants it).
    pub connection_string: String,
    pub password: String,
    pub db: std::path::PathBuf,
}

impl OptimaStandin {
    /// Serves `db` (seeded with `products` products when missing) on a free port.
    pub fn start(db: &Path, products: usize, log_dir: &Path) -> anyhow::Result<OptimaStandin> {
        let password = random_secret();
        let port = free_port()?;
        let mut command = Command::new(workspace_bin("optima-standin")?);
        command
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--seed-products", &products.to_string()])
            .env("OPTIMA_STANDIN_PASSWORD", &password);
        let mut process = Process::spawn(
            "optima-standin",
            command,
            &log_dir.join("optima-standin.log"),
        )?;
        let line = process.wait_for_log("connection: ", Duration::from_secs(120))?;
        let ado = line
            .split_once("connection: ")
            .map(|(_, ado)| ado.trim().to_owned())
            .context("no connection string printed")?;
        let connection_string = ado.replace(&format!("password={password};"), "");
        Ok(OptimaStandin {
            process,
            connection_string,
            password,
            db: db.to_owned(),
        })
    }

    /// Runs the office simulator against the same database for `seconds`.
    pub fn simulate(&self, rate: f64, seconds: f64, log_dir: &Path) -> anyhow::Result<Process> {
        let mut command = Command::new(workspace_bin("optima-standin")?);
        command.arg("simulate").arg("--db").arg(&self.db).args([
            "--rate",
            &rate.to_string(),
            "--duration",
            &seconds.to_string(),
        ]);
        Process::spawn(
            "office simulator",
            command,
            &log_dir.join("office-simulator.log"),
        )
    }
}

/// The WooCommerce stand-in.
pub struct WooStandinProcess {
    pub process: Process,
    pub base_url: String,
    pub consumer_key: String,
    pub consumer_secret: String,
}

impl WooStandinProcess {
    /// Serves on a free port; `state` keeps the shop across restarts.
    pub fn start(state: Option<&Path>, log_dir: &Path) -> anyhow::Result<WooStandinProcess> {
        let port = free_port()?;
        let consumer_key = format!("ck_{}", random_secret());
        let consumer_secret = format!("cs_{}", random_secret());
        let mut command = Command::new(workspace_bin("woo-standin")?);
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--key", &consumer_key, "--secret", &consumer_secret]);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        let mut process = Process::spawn("woo-standin", command, &log_dir.join("woo-standin.log"))?;
        let line = process.wait_for_log("listening: ", Duration::from_secs(30))?;
        let base_url = line
            .split_once("listening: ")
            .map(|(_, url)| url.trim().to_owned())
            .context("no URL printed")?;
        Ok(WooStandinProcess {
            process,
            base_url,
            consumer_key,
            consumer_secret,
        })
    }
}
