//! The local host: every function of a deployed stack in one process.
//!
//! An emulator cannot run Lambda code here, so this host does what Lambda
//! would: it reads the stack description that `infra/deploy.py
//! --describe-to` wrote (function environments, queue triggers, schedules,
//! Function URLs, all resolved from `infra/template.yaml`), builds each
//! function from its own environment, and then
//! - polls each event-source queue as Lambda's SQS poller does
//!   ([`sqs_source`]),
//! - runs each scheduled function on its `rate(...)` ([`schedule`]),
//! - serves each Function URL on loopback.
//!
//! The handlers are the very ones the AWS binaries run, and each runs
//! under its own execution role, as in Lambda: the host assumes the role the
//! stack gives the function (STS `AssumeRole` with the credentials it was
//! started with) and builds that function's clients, and its queue pollers,
//! with the role's temporary credentials. So a call the template does not
//! allow fails here as it would in AWS, wherever IAM is enforced.

pub mod schedule;
pub mod sqs_source;
pub mod stack;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use functions::Deadline;
use functions::admin::Admin;
use functions::aws::Clients;
use functions::env::FunctionEnv;
use functions::ingest::Ingest;
use functions::poller::Poller;
use functions::shop_push::ShopPush;
use functions::watchdog::Watchdog;
use functions::webhook::Webhook;
pub use stack::StackDescription;

/// Settings of the host itself (not of the functions).
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Address Function URLs listen on; port 0 picks free ports.
    pub bind: SocketAddr,
    /// Fixed ports per function URL name (e.g. "admin" → 9001); others are free ports.
    pub url_ports: BTreeMap<String, u16>,
    /// The bearer token admin endpoints require locally (AWS uses IAM auth instead).
    pub admin_token: String,
    /// Runs a scheduled function this often instead of its `rate(...)`
    /// (tests and the local run want the poller in seconds, not minutes).
    pub schedule_every: BTreeMap<String, std::time::Duration>,
}

/// A running host.
pub struct LocalHost {
    urls: BTreeMap<String, String>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl LocalHost {
    /// Builds every function and starts its triggers.
    pub async fn start(
        stack: &StackDescription,
        options: HostOptions,
    ) -> anyhow::Result<LocalHost> {
        let roles = assume_roles(&functions::aws::load_config().await, stack).await?;
        let clients_of = |function: &str| {
            roles
                .get(function)
                .with_context(|| format!("stack {} has no function `{function}`", stack.stack))
        };
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut urls = BTreeMap::new();
        // The URLs are bound first: a function's environment may name one
        // (ingest gives buyers links to the webhook's).
        let mut listeners = Vec::new();
        for url in &stack.function_urls {
            let mut addr = options.bind;
            addr.set_port(options.url_ports.get(&url.function).copied().unwrap_or(0));
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the {} Function URL to {addr}", url.function))?;
            let base = format!("http://{}", listener.local_addr()?);
            urls.insert(url.function.clone(), base);
            listeners.push((url, listener));
        }

        for source in &stack.event_sources {
            let env = function_env(stack, &source.function, &options, &urls)?
                .with_shop_secrets(clients_of(&source.function)?)
                .await
                .with_context(|| format!("reading {}'s shop credentials", source.function))?;
            let timeout = stack.function(&source.function)?.timeout();
            let handler: sqs_source::SqsHandler = match source.function.as_str() {
                "ingest" => {
                    let ingest = Arc::new(
                        Ingest::new(clients_of("ingest")?, &env).context("configuring ingest")?,
                    );
                    Arc::new(move |event| {
                        let ingest = ingest.clone();
                        Box::pin(async move { ingest.handle(event).await })
                    })
                }
                "shop-push" => {
                    let push = Arc::new(
                        ShopPush::new(clients_of("shop-push")?, &env)
                            .context("configuring shop-push")?,
                    );
                    Arc::new(move |event| {
                        let push = push.clone();
                        // As Lambda's context.deadline: the invocation's timeout from now.
                        let deadline = Deadline::after(timeout);
                        Box::pin(async move { push.handle_until(event, deadline).await })
                    })
                }
                other => bail!(
                    "the stack routes a queue to `{other}`, which this build has no SQS handler for"
                ),
            };
            // Lambda polls with the function's role, not its own.
            let sqs = clients_of(&source.function)?.sqs.clone();
            sqs_source::check_queue(source, &sqs, timeout).await?;
            info!(function = %source.function, queue = %source.queue_url, batch_size = source.batch_size, "polling queue");
            tasks.spawn(sqs_source::run(
                source.clone(),
                sqs,
                handler,
                timeout,
                cancel.clone(),
            ));
        }

        for sched in &stack.schedules {
            let env = function_env(stack, &sched.function, &options, &urls)?
                .with_shop_secrets(clients_of(&sched.function)?)
                .await
                .with_context(|| format!("reading {}'s shop credentials", sched.function))?;
            let timeout = stack.function(&sched.function)?.timeout();
            let every = match options.schedule_every.get(&sched.function) {
                Some(every) => *every,
                None => schedule::parse_rate(&sched.expression)?,
            };
            let handler: schedule::ScheduledHandler = match sched.function.as_str() {
                "watchdog" => {
                    let watchdog = Arc::new(
                        Watchdog::new(clients_of("watchdog")?, &env)
                            .context("configuring watchdog")?,
                    );
                    Arc::new(move |input| {
                        let watchdog = watchdog.clone();
                        let deadline = Deadline::after(timeout);
                        Box::pin(async move { watchdog.handle_until(input, deadline).await })
                    })
                }
                "poller" => {
                    let poller = Arc::new(
                        Poller::new(clients_of("poller")?, &env).context("configuring poller")?,
                    );
                    Arc::new(move |input| {
                        let poller = poller.clone();
                        let deadline = Deadline::after(timeout);
                        Box::pin(async move { poller.handle_until(input, deadline).await })
                    })
                }
                other => bail!(
                    "the stack schedules `{other}`, which this build has no scheduled handler for"
                ),
            };
            info!(function = %sched.function, every = ?every, "scheduled");
            tasks.spawn(schedule::run(
                sched.clone(),
                every,
                handler,
                timeout,
                cancel.clone(),
            ));
        }

        for (url, listener) in listeners {
            let env = function_env(stack, &url.function, &options, &urls)?
                .with_shop_secrets(clients_of(&url.function)?)
                .await
                .with_context(|| format!("reading {}'s shop credentials", url.function))?;
            let router = match url.function.as_str() {
                "admin" => Admin::new(clients_of("admin")?, &env)
                    .context("configuring admin")?
                    .router(),
                "webhook" => Webhook::new(clients_of("webhook")?, &env)
                    .context("configuring webhook")?
                    .router(),
                other => bail!(
                    "the stack gives `{other}` a Function URL, which this build has no router for"
                ),
            };
            let router = match &url.refused_because {
                None => router,
                Some(reason) => {
                    // What AWS answers when the resource policy refuses.
                    tracing::warn!(function = %url.function, %reason, "every request to this Function URL is refused, as AWS would");
                    axum::Router::new().fallback(|| async {
                        (
                            axum::http::StatusCode::FORBIDDEN,
                            axum::Json(serde_json::json!({"Message": "Forbidden"})),
                        )
                    })
                }
            };
            info!(function = %url.function, url = %urls[&url.function], "serving Function URL");
            let cancel = cancel.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(cancel.cancelled_owned())
                    .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "Function URL server stopped");
                }
            });
        }
        Ok(LocalHost {
            urls,
            cancel,
            tasks,
        })
    }

    /// Function name → base URL of its Function URL on loopback.
    pub fn urls(&self) -> &BTreeMap<String, String> {
        &self.urls
    }

    /// Stops polling and serving, letting in-flight invocations finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until a task ends (it should not) or ctrl-c.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.tasks.join_next() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        self.shutdown().await;
    }
}

/// Each function's clients, signed with the temporary credentials of the
/// role the stack gives it. They are assumed once and kept for the life of
/// the host: the roles trust only the Lambda service, so a local run assumes
/// them while it sets up, before it turns IAM enforcement on (tests/harness).
async fn assume_roles(
    base: &aws_config::SdkConfig,
    stack: &StackDescription,
) -> anyhow::Result<BTreeMap<String, Clients>> {
    let sts = aws_sdk_sts::Client::new(base);
    let mut clients = BTreeMap::new();
    for (function, description) in &stack.functions {
        let role = description.role_arn.as_deref().with_context(|| {
            format!(
                "the stack description names no role for `{function}`: describe the stack again with infra/deploy.py"
            )
        })?;
        let assumed = sts
            .assume_role()
            .role_arn(role)
            .role_session_name(format!("local-host-{function}"))
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "assuming {function}'s role {role}: {}",
                    functions::aws::describe_error(&e)
                )
            })?;
        let credentials = assumed
            .credentials()
            .with_context(|| format!("STS returned no credentials for {role}"))?;
        let credentials = aws_sdk_sqs::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "local-host-assumed-role",
        );
        let config = base
            .to_builder()
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        info!(function = %function, role = %role, "running under its role");
        clients.insert(function.clone(), Clients::from_config(&config));
    }
    Ok(clients)
}

/// The function's environment from the stack, plus what only the local host sets.
fn function_env(
    stack: &StackDescription,
    function: &str,
    options: &HostOptions,
    urls: &BTreeMap<String, String>,
) -> anyhow::Result<FunctionEnv> {
    let variables = stack.function(function)?.environment();
    let names_link_base = variables.iter().any(|(k, _)| k == "DOCUMENT_LINK_BASE");
    let names_console = variables.iter().any(|(k, _)| k == "CONSOLE_URL");
    let mut env = FunctionEnv::from_map(variables);
    // Buyers' invoice links point at this host's webhook URL (in AWS the
    // deploy command sets the Function URL's).
    if names_link_base && let Some(webhook) = urls.get("webhook") {
        env.set("DOCUMENT_LINK_BASE", webhook.clone());
    }
    // The alerts link this host's console (in AWS the deploy command sets
    // the admin Function URL's).
    if names_console && let Some(admin) = urls.get("admin") {
        env.set("CONSOLE_URL", format!("{admin}/console/"));
    }
    if function == "admin" {
        // AWS checks IAM auth on the Function URL; loopback checks a token.
        env.set("ADMIN_AUTH", "token");
        env.set("ADMIN_TOKEN", options.admin_token.clone());
    }
    Ok(env)
}
