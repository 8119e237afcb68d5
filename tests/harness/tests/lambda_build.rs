//! The function zips run on Lambda's provided.al2023 runtime: no binary
//! needs a glibc newer than Amazon Linux 2023's 2.34. The zips are built by
//! `infra/deploy.py build` (CI builds one small function for arm64, see
//! .ci/run); this checks every zip found in `build/functions/`, and that
//! the checker itself catches a binary that needs too new a glibc.

use std::path::PathBuf;
use std::process::Command;

use anyhow::ensure;
use harness::paths::{repo_root, workspace_bin};
use harness::venv;

fn check_glibc(args: &[&str], files: &[PathBuf]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(venv::ensure()?.join("python"))
        .arg(repo_root().join("infra/check_glibc.py"))
        .args(args)
        .args(files)
        .output()?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn the_glibc_check_catches_a_binary_that_needs_a_newer_glibc() -> anyhow::Result<()> {
    // The host-built agent needs at least GLIBC_2.18 (any Rust binary does).
    let agent = workspace_bin("agent")?;
    let (ok, said) = check_glibc(&["--max", "2.17"], std::slice::from_ref(&agent))?;
    ensure!(!ok && said.contains("FAIL"), "{said}");
    Ok(())
}

#[test]
fn every_built_function_zip_needs_at_most_amazon_linux_2023_glibc() -> anyhow::Result<()> {
    let root = repo_root().join("build/functions");
    let mut zips = Vec::new();
    for arch in ["arm64", "x86_64"] {
        if let Ok(entries) = std::fs::read_dir(root.join(arch)) {
            zips.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "zip")),
            );
        }
    }
    if zips.is_empty() {
        let reason = "no function zips in build/functions/ (infra/deploy.py build)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            anyhow::bail!("CI builds one with .ci/run, but {reason}");
        }
        eprintln!("skipped: {reason}");
        return Ok(());
    }
    let (ok, said) = check_glibc(&[], &zips)?;
    println!("{said}");
    ensure!(ok, "{said}");
    Ok(())
}
