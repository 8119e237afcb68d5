//! The SQS transport: the agent's only connection to the cloud, outbound.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

use crate::config::AgentConfig;
use crate::store::OutboxEntry;

#[derive(Clone, Debug)]
pub struct Transport {
    client: aws_sdk_sqs::Client,
    events_queue_url: String,
    commands_queue_url: Option<String>,
    /// Seconds a received command stays invisible to other receives.
    commands_visibility_seconds: Option<i32>,
    agent_id: String,
}

/// A command as received: its body and the handle to delete it with.
#[derive(Debug, Clone)]
pub struct ReceivedCommand {
    pub body: String,
    pub receipt_handle: String,
    /// SQS's `ApproximateReceiveCount`, this receive included (1 if absent).
    pub receive_count: u32,
}

impl Transport {
    /// Standard AWS configuration (`AWS_ENDPOINT_URL`, credentials chain),
    /// with region and profile from the agent's configuration when given.
    pub async fn new(config: &AgentConfig) -> Transport {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // The sender retries forever with its own back-off; the SDK
            // should fail fast so the agent can say what is wrong.
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        loader = with_agent_settings(loader, config);
        let shared = loader.load().await;
        Transport {
            client: aws_sdk_sqs::Client::new(&shared),
            events_queue_url: config.aws.events_queue_url.clone(),
            commands_queue_url: config.aws.commands_queue_url.clone(),
            commands_visibility_seconds: config
                .orders
                .as_ref()
                .map(|o| i32::try_from(o.command_visibility_seconds).unwrap_or(i32::MAX)),
            agent_id: config.agent_id.clone(),
        }
    }

    /// Sends one outbox entry to the events queue. One FIFO group per agent
    /// keeps its messages in order. The deduplication id is agent, sequence
    /// and a digest of the body: the same entry sent again after a crash is
    /// dropped by SQS within its 5-minute window (and by the cloud's own
    /// sequence check after that), while a *different* message under a
    /// number already used (a state file restored from a backup, a new life
    /// numbered from 1) reaches the cloud, which can then tell the agent.
    /// With agent + sequence alone SQS accepted and silently dropped those.
    pub async fn send_event(&self, entry: &OutboxEntry) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.events_queue_url)
            .message_body(&entry.body)
            .message_group_id(&self.agent_id)
            .message_deduplication_id(event_deduplication_id(&self.agent_id, entry))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| describe(&err))
    }
}

/// `<agent>-<seq>-<16 hex of the body's SHA-256>`: at most 102 of the 128
/// characters SQS allows (agent ids are at most 64).
fn event_deduplication_id(agent_id: &str, entry: &OutboxEntry) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(entry.body.as_bytes());
    format!("{agent_id}-{}-{}", entry.seq, hex::encode(&digest[..8]))
}

impl Transport {
    /// Sends a heartbeat in its own lane (contract version 2 on): its own
    /// FIFO group, so it never waits behind the agent's data, and a unique
    /// deduplication id (it takes no sequence number of its own).
    pub async fn send_heartbeat(&self, body: &str) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.events_queue_url)
            .message_body(body)
            .message_group_id(contract::heartbeat_group(&self.agent_id))
            .message_deduplication_id(format!(
                "{}-hb-{}",
                self.agent_id,
                uuid::Uuid::new_v4().simple()
            ))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| describe(&err))
    }

    /// The SQS client, for `agent doctor`'s probes.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    /// The same queues through another client (one with an interceptor).
    pub fn with_client(&self, client: aws_sdk_sqs::Client) -> Transport {
        Transport {
            client,
            ..self.clone()
        }
    }

    pub fn has_commands_queue(&self) -> bool {
        self.commands_queue_url.is_some()
    }

    /// Long-polls the commands queue (up to 20 s).
    pub async fn receive_commands(&self) -> Result<Vec<ReceivedCommand>, String> {
        let Some(url) = &self.commands_queue_url else {
            return Ok(Vec::new());
        };
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(20)
            .set_visibility_timeout(self.commands_visibility_seconds)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .map_err(|err| describe(&err))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedCommand {
                    body: m.body?,
                    receipt_handle: m.receipt_handle?,
                    receive_count,
                })
            })
            .collect())
    }

    /// Makes a received command visible again after `seconds`.
    pub async fn change_command_visibility(
        &self,
        receipt_handle: &str,
        seconds: i32,
    ) -> Result<(), String> {
        let Some(url) = &self.commands_queue_url else {
            return Ok(());
        };
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| describe(&err))
    }

    pub async fn delete_command(&self, receipt_handle: &str) -> Result<(), String> {
        let Some(url) = &self.commands_queue_url else {
            return Ok(());
        };
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| describe(&err))
    }
}

/// Region, profile and credentials file from the agent's configuration,
/// over the standard AWS configuration.
pub fn with_agent_settings(
    mut loader: aws_config::ConfigLoader,
    config: &AgentConfig,
) -> aws_config::ConfigLoader {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    if let Some(region) = &config.aws.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(file) = &config.aws.credentials_file {
        loader = loader
            .profile_files(
                EnvConfigFiles::builder()
                    .with_file(EnvConfigFileKind::Credentials, file)
                    .build(),
            )
            .profile_name(config.aws.profile.as_deref().unwrap_or("default"));
    } else if let Some(profile) = &config.aws.profile {
        loader = loader.profile_name(profile);
    }
    loader
}

/// An SDK error with its causes (the top-level text alone says "dispatch failure").
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, body: &str) -> OutboxEntry {
        OutboxEntry {
            seq,
            kind: "stock".into(),
            body: body.into(),
        }
    }

    #[test]
    fn the_same_entry_dedups_and_another_body_under_its_number_does_not() {
        let sent = event_deduplication_id("biuro", &entry(6, "progress: accepted"));
        assert_eq!(
            sent,
            event_deduplication_id("biuro", &entry(6, "progress: accepted")),
            "a resend after a crash is the same message"
        );
        assert_ne!(
            sent,
            event_deduplication_id("biuro", &entry(6, "progress: shipped")),
            "a restored state's own message under a used number"
        );
        let longest = event_deduplication_id(&"a".repeat(64), &entry(u64::MAX, "x"));
        assert!(longest.len() <= 128, "{} characters", longest.len());
    }
}
