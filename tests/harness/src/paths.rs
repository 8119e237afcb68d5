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
    if let Some(source) = changed_since_built(&path, &dir.join(format!("{name}.d"))) {
        bail!(
            "{} is older than {}: the test would run old code. Run the whole test suite (`cargo test --workspace`) or `cargo build --workspace --bins` first",
            path.display(),
            source.display()
        );
    }
    Ok(path)
}

/// A source file the binary was built from that changed after it was
/// built, from cargo's dep-info file beside it (`<name>.d`: the binary,
/// a colon, then every source file, spaces in paths escaped). `cargo test
/// -p harness` alone builds no other package's binary, and would otherwise
/// run the last one built. Without a dep-info file nothing is said.
fn changed_since_built(binary: &Path, dep_info: &Path) -> Option<PathBuf> {
    let built = binary.metadata().and_then(|m| m.modified()).ok()?;
    let text = std::fs::read_to_string(dep_info).ok()?;
    let (_, sources) = text.lines().next()?.split_once(": ")?;
    let mut path = String::new();
    let mut chars = sources.chars().peekable();
    let mut paths = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                path.push(' ');
                chars.next();
            }
            ' ' => paths.push(std::mem::take(&mut path)),
            c => path.push(c),
        }
    }
    paths.push(path);
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .find(|source| {
            source
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|changed| changed > built)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_older_than_one_of_its_sources_is_stale() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = dir.path().join("with space.rs");
        let other = dir.path().join("main.rs");
        let binary = dir.path().join("agent");
        std::fs::write(&other, "")?;
        std::fs::write(&source, "")?;
        std::fs::write(&binary, "")?;
        let dep_info = dir.path().join("agent.d");
        std::fs::write(
            &dep_info,
            format!(
                "{}: {} {}\n",
                binary.display(),
                other.display(),
                source.display().to_string().replace(' ', "\\ ")
            ),
        )?;
        let later = |path: &Path, secs| -> anyhow::Result<()> {
            let file = std::fs::File::options().write(true).open(path)?;
            file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(secs))?;
            Ok(())
        };
        later(&binary, 10)?;
        assert_eq!(changed_since_built(&binary, &dep_info), None);
        later(&source, 20)?;
        assert_eq!(changed_since_built(&binary, &dep_info), Some(source));
        // No dep-info: nothing to say.
        assert_eq!(changed_since_built(&binary, &dir.path().join("x.d")), None);
        Ok(())
    }
}
