//! The AWS emulator (moto's server, pinned in `infra/requirements.txt`, run
//! through `infra/moto_server_fast.py`) on a free loopback port. Everything
//! reaches it only through the standard AWS configuration ([`Emulator::aws_env`]), as it would reach LocalStack or AWS.
//!
//! IAM: the emulator starts with IAM unchecked, so the deploy and the set-up
//! run freely; [`Emulator::enforce_iam`] then makes it check every request
//! against the caller's policies, as AWS does. The key `local`/`local-secret`
//! ([`aws_env_for`]) is the emulator's administrator, standing for the
//! deployer's own credentials; the functions and the agent use their own.
//! Every check is logged to [`Emulator::iam_calls_file`] for the action audit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{Process, tail};
use crate::{free_port, venv};

pub const REGION: &str = "eu-central-1";

pub struct Emulator {
    pub port: u16,
    process: Process,
    iam_calls: std::path::PathBuf,
    /// Refusals the test provokes on purpose (a narrowed template, a
    /// wrong identity): the end-of-test check lets them pass.
    refusals_expected: std::sync::atomic::AtomicBool,
}

impl Emulator {
    /// Installs the venv if needed, starts the server, waits until it answers.
    pub fn start(log_dir: &Path) -> anyhow::Result<Emulator> {
        let bin = venv::ensure()?;
        let iam_calls = log_dir.join("iam-calls.jsonl");
        // A free port can be taken by another test's process between the
        // check and moto's bind: then moto exits (and the port answers for
        // someone else). Seen as an emulator that listened, then was gone.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            // moto's server with its two O(table) hot paths fixed; see the script.
            let mut command = Command::new(bin.join("python"));
            command
                .arg(crate::paths::repo_root().join("infra/moto_server_fast.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("IAM_RECORD_FILE", &iam_calls)
                .env_remove("INITIAL_NO_AUTH_ACTION_COUNT");
            let mut process =
                Process::spawn("aws-emulator", command, &log_dir.join("aws-emulator.log"))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut exited = false;
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if !process.is_running() {
                    exited = true;
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the AWS emulator did not listen on port {port} within 30 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !exited {
                // Ours listens, not another process on a port it lost.
                std::thread::sleep(Duration::from_millis(300));
                exited = !process.is_running();
            }
            if !exited {
                return Ok(Emulator {
                    port,
                    process,
                    iam_calls,
                    refusals_expected: std::sync::atomic::AtomicBool::new(false),
                });
            }
            if attempt >= 3 {
                bail!(
                    "the AWS emulator exited at start:\n{}",
                    tail(&process.log_text())
                );
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The standard AWS variables pointing at this emulator (any key works there).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        aws_env_for(&self.endpoint())
    }

    /// From now on every request is checked against its caller's IAM
    /// policies (moto's own switch, `POST /moto-api/reset-auth` with the
    /// number of requests still let through unchecked).
    pub fn enforce_iam(&self) -> anyhow::Result<()> {
        let response = post(self.port, "/moto-api/reset-auth", "0")
            .context("asking the emulator to enforce IAM")?;
        anyhow::ensure!(
            response.contains("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"),
            "the emulator did not turn IAM checks on: {response}"
        );
        Ok(())
    }

    /// Each IAM check the emulator made, one JSON object a line:
    /// `principal`, `action`, `resource`, `allowed`, `enforced`.
    pub fn iam_calls_file(&self) -> &Path {
        &self.iam_calls
    }

    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// The test provokes refusals on purpose and judges them itself.
    pub fn expect_refusals(&self) {
        self.refusals_expected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The calls the emulator refused under enforced IAM, one line each
    /// (`principal action resource`, deduplicated): AWS would refuse each
    /// of them at a customer.
    pub fn refused_calls(&self) -> anyhow::Result<Vec<String>> {
        let calls = match crate::iam::read_calls(&self.iam_calls) {
            Ok(calls) => calls,
            Err(_) if !self.iam_calls.exists() => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let refused: std::collections::BTreeSet<String> = calls
            .into_iter()
            // The deployer's own key is allowed everything; its rare
            // refusal is the emulator's signature check (a scheduler
            // DELETE by `deploy.py destroy`), never a grant of the template.
            .filter(|call| {
                call.enforced && !call.allowed && !call.principal.ends_with(":user/local-admin")
            })
            .map(|call| format!("{} {} {}", call.principal, call.action, call.resource))
            .collect();
        Ok(refused.into_iter().collect())
    }
}

/// Every test that runs the stack under enforced IAM fails when anything
/// was refused that the test did not provoke: a refusal the product
/// survived here (a retry, the next poll) is one AWS makes at every
/// customer. Found this way: the webhook's missing `dynamodb:DeleteItem`
/// (a fixed parked order sent only by the next poll).
impl Drop for Emulator {
    fn drop(&mut self) {
        if std::thread::panicking()
            || self
                .refusals_expected
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        match self.refused_calls() {
            Ok(refused) if refused.is_empty() => {}
            Ok(refused) => panic!(
                "the emulator refused calls the template does not grant (AWS would refuse them too):\n  {}\n(IAM log: {})",
                refused.join("\n  "),
                self.iam_calls.display()
            ),
            Err(err) => panic!("reading the emulator's IAM log: {err:#}"),
        }
    }
}

/// A plain HTTP/1.1 POST (callers here are synchronous; no second runtime).
fn post(port: u16, path: &str, body: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
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

/// The standard AWS variables for an endpoint without credentials: for a
/// process that brings its own (the agent, from its credentials file).
pub fn agent_env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    aws_env_for(endpoint)
        .into_iter()
        .filter(|(key, _)| !matches!(*key, "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY"))
        .collect()
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
