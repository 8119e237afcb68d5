//! The project-local Python venv (`.venv/`) with the pinned AWS emulator and
//! template linter from `infra/requirements.txt`, installed on first use and
//! again when that file changes. Concurrent test processes wait on a file
//! lock rather than install twice.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::paths::repo_root;

/// The venv's `bin/` folder, ready to use.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let root = repo_root();
    let venv = root.join(".venv");
    let bin = venv.join("bin");
    let requirements = root.join("infra/requirements.txt");
    let wanted = hex::encode(Sha256::digest(
        std::fs::read(&requirements)
            .with_context(|| format!("reading {}", requirements.display()))?,
    ));
    let stamp = venv.join(".requirements.sha256");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted) {
        return Ok(bin);
    }
    let lock_path = root.join(".venv.lock");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().context("locking the venv installation")?;
    // Another process may have finished it while we waited.
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted) {
        return Ok(bin);
    }
    eprintln!(
        "setting up the Python venv in {} (emulator and linter, about a minute, once)",
        venv.display()
    );
    if !bin.join("python").exists() {
        create_venv(&venv)?;
    }
    let status = Command::new(bin.join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip could not install {}: {status}", requirements.display());
    }
    std::fs::write(&stamp, &wanted)?;
    drop(lock);
    Ok(bin)
}

fn create_venv(venv: &std::path::Path) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(venv)
        .status();
    if made.as_ref().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    // Debian splits venv support into python3-venv; install it where we may.
    let _ = std::fs::remove_dir_all(venv);
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root {
        eprintln!("`{python} -m venv` failed; installing Debian's python3-venv with apt-get");
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv"])
            .status()
            .is_ok_and(|s| s.success());
        if ok
            && Command::new(&python)
                .args(["-m", "venv"])
                .arg(venv)
                .status()
                .is_ok_and(|s| s.success())
        {
            return Ok(());
        }
    }
    bail!(
        "cannot create a Python venv with `{python} -m venv`: on Debian install python3-venv (sudo apt-get install python3-venv)"
    )
}
