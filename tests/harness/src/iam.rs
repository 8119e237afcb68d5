//! The IAM action audit: what each identity of a deployed stack really
//! called (every check the emulator made, [`crate::emulator::Emulator::iam_calls_file`])
//! against what its policy grants (the deployed policies, from the stack
//! description). Both sides are read from the running system, not from a
//! hand-kept list: the calls are the requests the functions' and the agent's
//! SDK clients made, after the emulator turned each into its IAM action
//! (batch and transaction calls into their per-item actions, as AWS does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use local_host::StackDescription;
use serde::Deserialize;

/// One IAM check the emulator made.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    pub enforced: bool,
}

/// Every check recorded so far (lines that do not parse are reported).
pub fn read_calls(path: &Path) -> anyhow::Result<Vec<Call>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the emulator's IAM log {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .with_context(|| format!("an IAM log line that is not a check: {line}"))
        })
        .collect()
}

/// An action on a resource, the resource by its name (the ARN's last part).
pub type Permission = (String, String);

/// One identity of the stack: a function (its role) or the office agent (its user).
#[derive(Debug, Default)]
pub struct Identity {
    pub granted: BTreeSet<Permission>,
    /// Called and allowed.
    pub called: BTreeSet<Permission>,
    /// Called and refused (or called before IAM was enforced and not granted).
    pub refused: BTreeSet<Permission>,
}

impl Identity {
    /// Called but not granted: fails in AWS.
    pub fn missing(&self) -> BTreeSet<Permission> {
        self.refused
            .iter()
            .chain(self.called.iter())
            .filter(|p| !self.granted.contains(*p))
            .cloned()
            .collect()
    }

    /// Granted but never called.
    pub fn unused(&self) -> BTreeSet<Permission> {
        self.granted.difference(&self.called).cloned().collect()
    }
}

/// The resource's name: a queue's or table's name, `table/index/…` kept whole.
fn resource_name(arn: &str) -> String {
    if let Some((_, table)) = arn.split_once(":table/") {
        return table.to_owned();
    }
    arn.rsplit(':').next().unwrap_or(arn).to_owned()
}

/// Identity name ("webhook", …, "agent") → granted and called permissions.
pub fn audit(
    stack: &StackDescription,
    calls: &[Call],
) -> anyhow::Result<BTreeMap<String, Identity>> {
    let mut identities: BTreeMap<String, Identity> = BTreeMap::new();
    // Principal ARN prefix or suffix → identity name.
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    for (name, function) in &stack.functions {
        let role_arn = function
            .role_arn
            .as_deref()
            .with_context(|| format!("the stack description names no role for {name}"))?;
        let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
        roles.insert(format!(":assumed-role/{role}/"), name.clone());
        identities.entry(name.clone()).or_default().granted = grants(&function.grants);
    }
    let agent = stack
        .agent_user
        .as_ref()
        .context("the stack description names no agent user")?;
    identities.entry("agent".into()).or_default().granted = grants(&agent.grants);
    let agent_principal = format!(":user/{}", agent.name);

    for call in calls {
        let who = if call.principal.ends_with(&agent_principal) {
            Some("agent".to_owned())
        } else {
            roles
                .iter()
                .find(|(marker, _)| call.principal.contains(marker.as_str()))
                .map(|(_, name)| name.clone())
        };
        // The administrator (deploy, tests' own checks) is not audited.
        let Some(who) = who else { continue };
        let identity = identities.entry(who).or_default();
        let permission = (call.action.clone(), resource_name(&call.resource));
        if call.allowed {
            identity.called.insert(permission);
        } else {
            identity.refused.insert(permission);
        }
    }
    Ok(identities)
}

fn grants(grants: &[local_host::stack::Grant]) -> BTreeSet<Permission> {
    grants
        .iter()
        .flat_map(|g| {
            g.actions.iter().flat_map(move |action| {
                g.resources
                    .iter()
                    .map(move |resource| (action.clone(), resource_name(resource)))
            })
        })
        .collect()
}
