//! The stack description written by `infra/deploy.py --describe-to`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct StackDescription {
    pub stack: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub functions: BTreeMap<String, FunctionDescription>,
    #[serde(default)]
    pub agent_user: Option<AgentUser>,
    #[serde(default)]
    pub event_sources: Vec<EventSource>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub function_urls: Vec<FunctionUrl>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionDescription {
    pub name: String,
    pub timeout_seconds: u64,
    /// Values as the API returned them (some emulators keep numbers as numbers).
    pub environment: BTreeMap<String, serde_json::Value>,
    /// The function's execution role; the host runs the function under it.
    pub role_arn: Option<String>,
    /// What the role's own policies allow (for the action audit).
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// One Allow statement of a deployed policy, resources as ARNs.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// The office agent's IAM user and what its policy allows.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentUser {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl FunctionDescription {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }

    pub fn environment(&self) -> Vec<(String, String)> {
        self.environment
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSource {
    pub name: String,
    pub function: String,
    pub queue_url: String,
    pub queue_arn: Option<String>,
    pub fifo: bool,
    pub visibility_timeout_seconds: u64,
    pub batch_size: usize,
    pub batching_window_seconds: u64,
    pub report_batch_item_failures: bool,
    /// True when Lambda itself polls this queue: a local host must not.
    pub managed_by_lambda: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub function: String,
    pub expression: String,
    pub input: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionUrl {
    pub name: String,
    pub function: String,
    pub auth: String,
    pub url: Option<String>,
    /// Why AWS answers 403 to everyone at this public URL (its function's
    /// resource policy lacks a permission), read from the deployed policy
    /// by `deploy.py`; the local host refuses the same way.
    #[serde(default)]
    pub refused_because: Option<String>,
}

impl StackDescription {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the stack description {}", path.display()))?;
        let stack: StackDescription = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a stack description from infra/deploy.py",
                path.display()
            )
        })?;
        if let Some(source) = stack.event_sources.iter().find(|s| s.managed_by_lambda) {
            return Err(anyhow!(
                "event source {} is managed by Lambda in stack {}: deploy with --local-host so the local host does not race it for messages",
                source.name,
                stack.stack
            ));
        }
        Ok(stack)
    }

    pub fn function(&self, name: &str) -> anyhow::Result<&FunctionDescription> {
        self.functions
            .get(name)
            .ok_or_else(|| anyhow!("stack {} has no function with handler `{name}`", self.stack))
    }

    /// A stack output by key, e.g. `EventsQueueUrl`.
    pub fn output(&self, key: &str) -> anyhow::Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("stack {} has no output {key}", self.stack))
    }
}
