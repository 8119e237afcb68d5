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

/// The folder the local run keeps its state in (`.local/`, ignored by git).
pub fn local_dir() -> PathBuf {
    repo_root().join(".local")
}
