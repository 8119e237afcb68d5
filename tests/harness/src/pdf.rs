//! A PDF's text as a reader sees it, by poppler's `pdftotext` (Debian's
//! poppler-utils, which `.ci/run` installs; installed here too when the
//! test runs as root with apt-get, as on a fresh Debian machine).

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

fn present() -> bool {
    Command::new("pdftotext")
        .arg("-v")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Makes sure `pdftotext` runs, installing poppler-utils once if it can.
fn ensure() -> anyhow::Result<()> {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        if present() {
            return true;
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
        if root && std::path::Path::new("/usr/bin/apt-get").exists() {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            let _ = Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "poppler-utils",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        present()
    });
    if !available {
        bail!("pdftotext is missing and could not be installed: install poppler-utils");
    }
    Ok(())
}

/// The text of `pdf`, laid out as on the page (`pdftotext -layout`).
pub fn text(pdf: &[u8]) -> anyhow::Result<String> {
    ensure()?;
    let dir = crate::TestDir::new()?;
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf)?;
    let output = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .context("running pdftotext")?;
    if !output.status.success() {
        bail!(
            "pdftotext refused the file: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
