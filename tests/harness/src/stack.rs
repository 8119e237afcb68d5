//! Deploying `infra/template.yaml` with the project's deploy command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use local_host::StackDescription;

use crate::paths::repo_root;
use crate::venv;

/// Runs `infra/deploy.py deploy --local-host` against `endpoint` and returns
/// the description it wrote (also kept at `describe_to`).
pub fn deploy_local(
    endpoint: &str,
    stack: &str,
    describe_to: &Path,
    parameters: &[String],
) -> anyhow::Result<StackDescription> {
    deploy_local_template(endpoint, stack, describe_to, parameters, None)
}

/// As [`deploy_local`], from `template` instead of `infra/template.yaml`.
pub fn deploy_local_template(
    endpoint: &str,
    stack: &str,
    describe_to: &Path,
    parameters: &[String],
    template: Option<&Path>,
) -> anyhow::Result<StackDescription> {
    let mut command = deploy_command(endpoint)?;
    if let Some(template) = template {
        command.arg("--template").arg(template);
    }
    command
        .args([
            "deploy",
            "--stack",
            stack,
            "--local-host",
            "--placeholder-artifacts",
            "--describe-to",
        ])
        .arg(describe_to);
    for parameter in parameters {
        command.args(["--parameter", parameter]);
    }
    let output = command.output().context("running infra/deploy.py")?;
    if !output.status.success() {
        bail!(
            "infra/deploy.py deploy failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    StackDescription::load(describe_to)
}

/// `python infra/deploy.py --endpoint-url ENDPOINT` with the emulator's AWS variables.
pub fn deploy_command(endpoint: &str) -> anyhow::Result<Command> {
    let bin = venv::ensure()?;
    let mut command = Command::new(bin.join("python"));
    command
        .arg(deploy_script())
        .args(["--endpoint-url", endpoint])
        .envs(crate::emulator::aws_env_for(endpoint));
    Ok(command)
}

pub fn deploy_script() -> PathBuf {
    repo_root().join("infra/deploy.py")
}

pub fn template_path() -> PathBuf {
    repo_root().join("infra/template.yaml")
}
