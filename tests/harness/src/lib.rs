//! Starts the real pieces of the system on 127.0.0.1, for the local run
//! (`cargo run -p harness --bin local-sync`), the end-to-end tests and the
//! benchmarks. Nothing here is a mock: each piece is the project's own
//! binary or the pinned AWS emulator, started as a process.
//!
//! Map of the crate:
//! - [`paths`]: where the repository, the built binaries and the venv are.
//! - [`venv`]: the project-local Python venv with the pinned emulator and
//!   linter, installed on first use.
//! - [`process`]: a child process that is killed when dropped, with its
//!   output in a log file.
//! - [`emulator`]: the AWS emulator on a free port.
//! - [`stack`]: deploying `infra/template.yaml` with `infra/deploy.py`.
//! - [`gate`]: a TCP proxy a test can cut and restore (a network outage).

pub mod cloud;
pub mod emulator;
pub mod gate;
pub mod lambda_api;
pub mod paths;
pub mod process;
pub mod stack;
pub mod standins;
pub mod venv;

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
