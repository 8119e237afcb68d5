//! AWS clients, built once per process from the standard configuration.
//!
//! Nothing here knows whether it talks to AWS, LocalStack or moto: the SDK
//! reads `AWS_ENDPOINT_URL`, the region and the credentials itself.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The clients every function may need.
#[derive(Clone, Debug)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub s3: aws_sdk_s3::Client,
    /// The alarm topic (the watchdog's e-mail alerts).
    pub sns: aws_sdk_sns::Client,
    /// The alerts' mail where the stack names a sender (alerts.rs).
    pub ses: aws_sdk_sesv2::Client,
}

impl Clients {
    pub async fn from_env() -> Self {
        Clients::from_config(&load_config().await)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Clients {
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            s3: s3_client(config),
            sns: aws_sdk_sns::Client::new(config),
            ses: aws_sdk_sesv2::Client::new(config),
        }
    }
}

/// S3 by path (`endpoint/bucket/key`) where an endpoint is set: an
/// emulator on 127.0.0.1 has no per-bucket host names. AWS itself is
/// addressed by bucket host name, as it advises.
fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// The standard configuration (endpoint, region, credentials from the
/// environment or profile) with the functions' retry and timeout settings.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        // Fail fast to the caller, which retries with its own back-off:
        // a handler must not sit in SDK retries past its timeout.
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(25))
                .build(),
        )
        .load()
        .await
}

/// An SDK error with its whole source chain, for logs and status pages.
pub fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
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
