//! The AWS emulator (moto's server, pinned in `infra/requirements.txt`, run
//! through `infra/moto_server_fast.py`) on a free loopback port. Everything
//! reaches it only through the standard AWS configuration ([`Emulator::aws_env`]), as it would reach LocalStack or AWS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::process::{Process, tail};
use crate::{free_port, venv};

pub const REGION: &str = "eu-central-1";

pub struct Emulator {
    pub port: u16,
    process: Process,
}

impl Emulator {
    /// Installs the venv if needed, starts the server, waits until it answers.
    pub fn start(log_dir: &Path) -> anyhow::Result<Emulator> {
        let bin = venv::ensure()?;
        let port = free_port()?;
        // moto's server with its two O(table) hot paths fixed; see the script.
        let mut command = Command::new(bin.join("python"));
        command
            .arg(crate::paths::repo_root().join("infra/moto_server_fast.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut process =
            Process::spawn("aws-emulator", command, &log_dir.join("aws-emulator.log"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !process.is_running() {
                bail!(
                    "the AWS emulator exited at start:\n{}",
                    tail(&process.log_text())
                );
            }
            if Instant::now() > deadline {
                bail!("the AWS emulator did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Emulator { port, process })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The standard AWS variables pointing at this emulator (any key works there).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        aws_env_for(&self.endpoint())
    }

    pub fn stop(&mut self) {
        self.process.kill();
    }
}

/// The standard AWS variables for an endpoint; nothing emulator-specific.
pub fn aws_env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// An SDK config for tests that talk to the emulator directly.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local",
            "local-secret",
            None,
            None,
            "harness",
        ))
        .load()
        .await
}
