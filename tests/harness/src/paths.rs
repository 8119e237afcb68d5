//! Where things are.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A binary of this workspace, built in the same profile as the running
/// executable (tests live in `target/<profile>/deps/`, binaries one up).
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{} is not built: run the whole test suite (`cargo test --workspace`) or `cargo build --workspace --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// Builds the binaries of `packages` in the running executable's profile,
/// so that `cargo run -p harness --bin local-sync` works on a fresh clone
/// (cargo builds only the binary it runs). `cargo run` names itself in
/// `CARGO`; the target directory follows `CARGO_TARGET_DIR` as usual.
pub fn build_bins(packages: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|d| d == "release");
    let mut command = std::process::Command::new(cargo);
    command.current_dir(repo_root()).args(["build", "--bins"]);
    if release {
        command.arg("--release");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo to build {packages:?}: {e}"))?;
    if !status.success() {
        bail!("building {packages:?} failed ({status}); see cargo's output above");
    }
    Ok(())
}

/// The folder the local run keeps its state in (`.local/`, ignored by git).
pub fn local_dir() -> PathBuf {
    repo_root().join(".local")
}
