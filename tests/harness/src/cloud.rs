//! The cloud side on loopback: the emulator, the stack deployed into it,
//! and the functions' local host serving it. Used by the local run and by
//! every end-to-end test, so they start it the same way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use local_host::StackDescription;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::emulator::Emulator;
use crate::paths::workspace_bin;
use crate::process::Process;
use crate::stack::deploy_local_template;

pub struct LocalCloud {
    pub emulator: Emulator,
    pub stack: StackDescription,
    pub stack_file: PathBuf,
    pub host: Process,
    pub admin_url: String,
    pub admin_token: String,
    /// The webhook Function URL on loopback (shops post to `<url>/<shop id>`).
    pub webhook_url: Option<String>,
    /// An access key of the stack's `AgentUser`, as an AWS credentials file:
    /// the agent runs as that user, as in an office.
    pub agent_credentials: PathBuf,
}

/// A random token, for credentials the local run makes up.
pub fn random_secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

impl LocalCloud {
    /// Starts the emulator, deploys `stack_name`, starts the local host.
    /// State files and logs go to `dir`.
    pub fn start(dir: &Path, stack_name: &str) -> anyhow::Result<LocalCloud> {
        Self::start_with(dir, stack_name, None)
    }

    /// With shops: `(ShopsConfig JSON, ShopSecrets JSON)`, passed to the
    /// deploy command through files so secrets stay off command lines.
    pub fn start_with(
        dir: &Path,
        stack_name: &str,
        shops: Option<(String, String)>,
    ) -> anyhow::Result<LocalCloud> {
        Self::start_with_host_args(dir, stack_name, shops, &[])
    }

    /// With extra `local-host` arguments, e.g. `["--schedule-every", "poller=2"]`.
    pub fn start_with_host_args(
        dir: &Path,
        stack_name: &str,
        shops: Option<(String, String)>,
        host_args: &[&str],
    ) -> anyhow::Result<LocalCloud> {
        Self::start_with_parameters(dir, stack_name, shops, host_args, &[])
    }

    /// With extra stack parameters too, e.g. `["OrderPollMaxPages=1"]`.
    pub fn start_with_parameters(
        dir: &Path,
        stack_name: &str,
        shops: Option<(String, String)>,
        host_args: &[&str],
        stack_parameters: &[&str],
    ) -> anyhow::Result<LocalCloud> {
        Self::start_from_template(dir, stack_name, shops, host_args, stack_parameters, None)
    }

    /// From another template than `infra/template.yaml` (e.g. one grant removed).
    pub fn start_from_template(
        dir: &Path,
        stack_name: &str,
        shops: Option<(String, String)>,
        host_args: &[&str],
        stack_parameters: &[&str],
        template: Option<&Path>,
    ) -> anyhow::Result<LocalCloud> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let emulator = Emulator::start(dir)?;
        let stack_file = dir.join("stack.json");
        let mut parameters: Vec<String> =
            stack_parameters.iter().map(|p| (*p).to_owned()).collect();
        if let Some((config, secrets)) = shops {
            let config_file = dir.join("shops.json");
            let secrets_file = dir.join("shop-secrets.json");
            std::fs::write(&config_file, config)?;
            std::fs::write(&secrets_file, secrets)?;
            #[cfg(unix)]
            std::fs::set_permissions(
                &secrets_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )?;
            parameters.push(format!("ShopsConfig=@{}", config_file.display()));
            parameters.push(format!("ShopSecrets=@{}", secrets_file.display()));
        }
        let stack = deploy_local_template(
            &emulator.endpoint(),
            stack_name,
            &stack_file,
            &parameters,
            template,
        )?;
        let agent_credentials = dir.join("agent-aws-credentials");
        issue_agent_key(&emulator.endpoint(), stack_name, &agent_credentials)?;
        let admin_token = random_secret();
        // The host assumes each function's role as it starts (the roles trust
        // only Lambda, so before enforcement); from then on every call of the
        // functions and the agent is checked against their own policies.
        let host = Self::start_host(&emulator, &stack_file, &admin_token, dir, host_args)?;
        emulator.enforce_iam()?;
        let mut cloud = LocalCloud {
            emulator,
            stack,
            stack_file,
            host,
            admin_url: String::new(),
            admin_token,
            webhook_url: None,
            agent_credentials,
        };
        cloud.admin_url = cloud.read_url(dir, "admin")?;
        cloud.webhook_url = cloud.read_url(dir, "webhook").ok();
        Ok(cloud)
    }

    fn start_host(
        emulator: &Emulator,
        stack_file: &Path,
        token: &str,
        dir: &Path,
        host_args: &[&str],
    ) -> anyhow::Result<Process> {
        let urls_file = dir.join("urls.json");
        let _ = std::fs::remove_file(&urls_file);
        let mut command = Command::new(workspace_bin("local-host")?);
        command
            .arg("--stack")
            .arg(stack_file)
            .arg("--urls-to")
            .arg(&urls_file)
            .args(host_args)
            .envs(emulator.aws_env())
            .env("ADMIN_TOKEN", token)
            .env("RUST_LOG", "info,functions=debug");
        let mut host = Process::spawn("functions host", command, &dir.join("functions.log"))?;
        host.wait_for_log("url: admin", Duration::from_secs(30))?;
        Ok(host)
    }

    fn read_url(&self, dir: &Path, function: &str) -> anyhow::Result<String> {
        let urls: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("urls.json"))?)?;
        urls[function]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the local host serves no {function} URL"))
    }

    /// A one-time sign-in link to the console for operator `email` (made
    /// when missing), as `deploy.py console-invite` gives one in AWS: the
    /// token is in the fragment, never sent to a server.
    pub async fn console_invite(&self, email: &str) -> anyhow::Result<String> {
        use secrecy::ExposeSecret as _;
        let config = crate::emulator::sdk_config(&self.emulator.endpoint()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = self.stack.output("StateTableName")?.to_owned();
        let log = functions::console::log::ActivityLog::new(dynamodb.clone(), table.clone());
        let auth = functions::console::auth::Auth::new(dynamodb, table, log);
        let token = auth.invite(email, chrono::Utc::now()).await?;
        Ok(format!(
            "{}/console/link#{}",
            self.admin_url,
            token.expose_secret()
        ))
    }

    /// The first operator, in Polish, signed in through the console's
    /// one-time link with a password set on the way (what a new office
    /// does), waiting for the overview.
    pub async fn first_operator_in(
        &self,
        browser: &crate::browser::Browser,
        email: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        let wait = Duration::from_secs(10);
        browser
            .open(&format!("{}/console/?lang=pl", self.admin_url))
            .await?;
        browser.open(&self.console_invite(email).await?).await?;
        browser.wait_for_url("/console/password", wait).await?;
        browser.fill("Nowe hasło", password).await?;
        browser.fill("Powtórz nowe hasło", password).await?;
        browser.click_button("Zapisz hasło").await?;
        browser.wait_for_text("Agenci w biurze", wait).await
    }

    /// `GET /status` with the admin credential.
    pub async fn status(&self) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/status", self.admin_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await?;
        let code = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(code.is_success(), "/status answered {code}: {body}");
        Ok(body)
    }

    /// Messages visible or in flight in the ERP events and shop-ops queues
    /// (an unreadable count counts as one: not yet quiet).
    pub async fn queued_messages(&self) -> anyhow::Result<u64> {
        let status = self.status().await?;
        Ok(["erp_events", "shop_ops"]
            .iter()
            .map(|q| {
                status["queues"][q]["visible"].as_u64().unwrap_or(1)
                    + status["queues"][q]["in_flight"].as_u64().unwrap_or(1)
            })
            .sum())
    }

    /// The order `order_id` as `/status` lists it under `parked_orders`, if
    /// it is listed.
    pub async fn parked_order(&self, order_id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let status = self.status().await?;
        Ok(status["parked_orders"].as_array().and_then(|a| {
            a.iter()
                .find(|p| p["order_id"].as_str() == Some(order_id))
                .cloned()
        }))
    }

    /// Asks the admin URL to send a parked order again
    /// (`POST /orders/{shop}/{order id}/retry`); returns its answer.
    pub async fn retry_order(
        &self,
        shop: &str,
        order_id: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::new()
            .post(format!("{}/orders/{shop}/{order_id}/retry", self.admin_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await?;
        let code = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(code.is_success(), "retry answered {code}: {body}");
        Ok(body)
    }

    /// An agent configuration file pointing at this stack.
    pub fn write_agent_config(
        &self,
        path: &Path,
        agent_id: &str,
        sql_connection: &str,
        heartbeat_seconds: u64,
    ) -> anyhow::Result<()> {
        self.write_agent_config_with(path, agent_id, sql_connection, heartbeat_seconds, "")
    }

    /// With extra TOML appended (e.g. a `[sync]` section).
    pub fn write_agent_config_with(
        &self,
        path: &Path,
        agent_id: &str,
        sql_connection: &str,
        heartbeat_seconds: u64,
        extra: &str,
    ) -> anyhow::Result<()> {
        let state = path.with_file_name(format!("{agent_id}-state.sqlite"));
        let text = format!(
            "agent_id = \"{agent_id}\"\n\n[aws]\nevents_queue_url = \"{}\"\ncommands_queue_url = \"{}\"\ncredentials_file = \"{}\"\n\n[sql]\nconnection_string = \"{sql_connection}\"\nconnect_timeout_seconds = 2\n\n[store]\npath = \"{}\"\n\n[heartbeat]\ninterval_seconds = {heartbeat_seconds}\n{extra}",
            self.stack.output("EventsQueueUrl")?,
            self.stack.output("CommandsQueueUrl")?,
            self.agent_credentials
                .display()
                .to_string()
                .replace('\\', "/"),
            state.display().to_string().replace('\\', "/"),
        );
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// `infra/deploy.py agent-key`: a new access key of the stack's agent user,
/// written to `to` as an AWS credentials file (mode 600).
fn issue_agent_key(endpoint: &str, stack: &str, to: &Path) -> anyhow::Result<()> {
    let output = crate::stack::deploy_command(endpoint)?
        .args(["agent-key", "--stack", stack, "--to"])
        .arg(to)
        .output()
        .context("running infra/deploy.py agent-key")?;
    anyhow::ensure!(
        output.status.success(),
        "infra/deploy.py agent-key failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Messages on an SQS queue, visible or in flight (received and not yet
/// deleted). A count the emulator does not report is an error, not 0.
pub async fn messages_held(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<u64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let kinds = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .set_attribute_names(Some(kinds.to_vec()))
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    kinds.iter().try_fold(0u64, |held, kind| {
        let count = attributes
            .get(kind)
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{queue_url}: no {kind:?}"))?;
        Ok(held + count)
    })
}

/// Where the cloud stands in agent `agent`'s current life: `(incarnation,
/// last sequence applied)`, read from the state table (`pk = sequences`).
pub async fn applied_life(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    agent: &str,
) -> anyhow::Result<Option<(String, u64)>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let get = |sk: String| {
        dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S("sequences".into()))
            .key("sk", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
    };
    let Some(agent_item) = get(agent.to_owned()).await?.item else {
        return Ok(None);
    };
    let Some(life) = agent_item
        .get("incarnation")
        .and_then(|v| v.as_s().ok())
        .cloned()
    else {
        return Ok(None);
    };
    let last = get(format!("{agent}#{life}"))
        .await?
        .item
        .and_then(|item| item.get("last_seq")?.as_n().ok()?.parse::<u64>().ok());
    Ok(last.map(|last| (life, last)))
}

/// Starts the agent binary with `config`, reaching AWS at `aws_endpoint`.
/// Its credentials come from the configuration's `aws.credentials_file`
/// (the agent user's key, [`LocalCloud::write_agent_config`]) or from
/// `extra_env`, never from the harness's administrator key.
pub fn start_agent(
    config: &Path,
    aws_endpoint: &str,
    log: &Path,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Process> {
    let mut command = Command::new(workspace_bin("agent")?);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .envs(crate::emulator::agent_env_for(aws_endpoint))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .envs(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    Process::spawn("agent", command, log)
}
