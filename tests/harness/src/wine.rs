//! Running the Windows build of the agent under Wine (Debian's `wine64`).
//!
//! Debian 12's Wine is 8.0; Rust's standard library (1.78+) imports
//! `ProcessPrng` from `bcryptprimitives.dll`, which Windows 10 / Server 2016
//! and Wine 8.13+ have and Wine 8.0 does not, so the prefix gets a
//! test-only shim built from `tests/wine/bcryptprimitives.c` with mingw.
//! Nothing here is shipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::paths::repo_root;

pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Why the Windows agent cannot be run here, or how to run it.
pub enum Availability {
    Ready(Wine),
    Missing(String),
}

pub struct Wine {
    pub wine: PathBuf,
    pub prefix: PathBuf,
    pub exe: PathBuf,
}

/// The target folder this test binary was built into.
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test>
    exe.ancestors().nth(3).map(Path::to_path_buf)
}

/// The Windows agent binary: `AGENT_WINDOWS_EXE`, else the newest of the
/// release and debug builds in the target folder.
pub fn windows_exe() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AGENT_WINDOWS_EXE") {
        return Some(PathBuf::from(path));
    }
    let target = target_dir()?.join(WINDOWS_TARGET);
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("agent.exe"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

fn find_wine() -> Option<PathBuf> {
    for candidate in ["/usr/lib/wine/wine64", "/usr/bin/wine64", "/usr/bin/wine"] {
        if Path::new(candidate).is_file() {
            return Some(candidate.into());
        }
    }
    None
}

/// Finds Wine and the Windows build and prepares a prefix in `dir`.
pub fn prepare(dir: &Path) -> anyhow::Result<Availability> {
    let Some(wine) = find_wine() else {
        return Ok(Availability::Missing(
            "Wine is not installed (apt-get install wine64; .ci/run does)".into(),
        ));
    };
    let Some(exe) = windows_exe() else {
        return Ok(Availability::Missing(format!(
            "the Windows agent is not built (cargo build -p agent --release --target {WINDOWS_TARGET}; .ci/run does)"
        )));
    };
    let prefix = dir.join("wineprefix");
    let boot = Command::new(&wine)
        .args(["cmd", "/c", "ver"])
        .env("WINEPREFIX", &prefix)
        .env("WINEDEBUG", "-all")
        .output()
        .context("starting wine")?;
    let system32 = prefix.join("drive_c/windows/system32");
    if !system32.is_dir() {
        bail!(
            "wine did not create its prefix ({}): {}",
            boot.status,
            String::from_utf8_lossy(&boot.stderr)
        );
    }
    let shim = system32.join("bcryptprimitives.dll");
    if !shim.is_file() {
        let source = repo_root().join("tests/wine");
        let out = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(&shim)
            .arg(source.join("bcryptprimitives.c"))
            .arg(source.join("bcryptprimitives.def"))
            .arg("-lbcrypt")
            .output()
            .context("running x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)")?;
        if !out.status.success() {
            bail!(
                "building the bcryptprimitives shim failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(Availability::Ready(Wine { wine, prefix, exe }))
}

impl Wine {
    /// `agent.exe ARGS` under Wine, quiet.
    pub fn agent(&self) -> Command {
        let mut command = Command::new(&self.wine);
        command
            .arg(&self.exe)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all");
        command
    }
}

/// In CI (`CI=true`) a missing piece is a failure, elsewhere a printed skip.
pub fn skip_or_fail(reason: &str) -> anyhow::Result<()> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!("CI must run the Windows agent under Wine, but {reason}");
    }
    eprintln!("skipped: {reason}");
    Ok(())
}
