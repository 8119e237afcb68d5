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
//! - [`iam`]: the IAM action audit (what each identity called against what
//!   its policy grants).
//! - [`wine`]: the Windows build of the agent under Wine.
//! - [`expected`]: what the shop must show for the ERP's records.
//! - [`aws_proxy`]: a proxy in front of the emulator that refuses or throttles.
//! - [`campaign`]: the fault campaign and its invariant checker
//!   (`cargo run -p harness --bin fault-campaign`).
//! - [`browser`]: a headless Chromium driven through chromedriver, with
//!   screenshots and accessibility checks (the console's browser tests).

pub mod aws_proxy;
pub mod bench;
pub mod browser;
pub mod campaign;
pub mod cloud;
pub mod emulator;
pub mod expected;
pub mod gate;
pub mod iam;
pub mod lambda_api;
pub mod paths;
pub mod pdf;
pub mod process;
pub mod stack;
pub mod standins;
pub mod venv;
pub mod wine;

/// The `[orders]` section of the local run's agent: orders from the local
/// shop become ROs in the stand-in's main warehouse, private buyers on the
/// collective customer, WooCommerce's payment methods on Optima's forms,
/// and the cash-on-delivery fee ("Pobranie") a line of the stand-in's one
/// service item (a real office maps each fee to its own service).
pub const LOCAL_ORDERS_TOML: &str = "\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\ncollective_customer = \"DETAL\"\n\n[orders.payment_forms]\nbacs = \"przelew\"\ncod = \"pobranie\"\n\n[orders.fee_services]\nPobranie = \"TRANSPORT\"\n";

/// A test's folder for its logs and state, deleted when the test ends;
/// with `E2E_KEEP` set it is kept, and its path printed, for a look after
/// a failure.
pub struct TestDir {
    path: std::path::PathBuf,
    _delete: Option<tempfile::TempDir>,
}

impl TestDir {
    pub fn new() -> anyhow::Result<TestDir> {
        let tmp = tempfile::tempdir()?;
        if std::env::var_os("E2E_KEEP").is_some() {
            let path = tmp.keep();
            eprintln!("E2E_KEEP: logs and state in {}", path.display());
            return Ok(TestDir {
                path,
                _delete: None,
            });
        }
        Ok(TestDir {
            path: tmp.path().to_path_buf(),
            _delete: Some(tmp),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `check` every 100 ms until it yields a value, or fails after `timeout`
/// naming `what` it waited for.
pub async fn wait_for<F, Fut, T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
