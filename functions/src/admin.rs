//! `admin`: the admin Function URL.
//!
//! `GET /status` answers JSON: every agent's last-seen time, clock skew and
//! health, whether it counts as stale, the depth of every queue and DLQ,
//! and the parked messages. `POST /orders/{shop}/{order id}/retry` sends a
//! parked order to the ERP again, once what parked it is fixed.
//!
//! The URL is public (the console's pages have their own sign-in), so the
//! JSON routes need a bearer token: in AWS an API token that
//! `infra/deploy.py api-token` made, of which the state table keeps only
//! the SHA-256 (`ADMIN_AUTH=tokens`; `pk = api-token#<hex>`); locally also
//! the one token from configuration (`ADMIN_AUTH=token`, `ADMIN_TOKEN`),
//! compared in constant time.

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use axum::extract::Path;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::aws::{Clients, describe_error};
use crate::catalog::{Catalog, ParkedRecord};
use crate::env::{EnvError, FunctionEnv};
use crate::state::{AgentStatus, ParkedMessage, StateTable};

/// How admin requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// A bearer token whose SHA-256 is in the state table.
    Tokens,
    /// That, or the one token from configuration (local use).
    Token(String),
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Tokens => f.write_str("Tokens"),
            // Never print the token.
            AdminAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// The state table's key of an API token (only its SHA-256 is stored).
pub fn api_token_key(token: &str) -> String {
    use sha2::Digest;
    format!(
        "api-token#{}",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    )
}

/// Why a forced pass could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum ForceSyncError {
    #[error("no agent has reported yet: there is nobody to ask for a pass")]
    NoAgent,
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("the commands queue did not take the request: {0}")]
    Queue(String),
}

/// One queue the status reports on, named by its environment variable.
const QUEUES: [(&str, &str); 6] = [
    ("erp_events", "EVENTS_QUEUE_URL"),
    ("erp_events_dlq", "EVENTS_DLQ_URL"),
    ("erp_commands", "COMMANDS_QUEUE_URL"),
    ("erp_commands_dlq", "COMMANDS_DLQ_URL"),
    ("shop_ops", "SHOP_OPS_QUEUE_URL"),
    ("shop_ops_dlq", "SHOP_OPS_DLQ_URL"),
];

#[derive(Debug)]
pub struct Admin {
    pub(crate) clients: Clients,
    pub(crate) state: StateTable,
    pub(crate) catalog: Catalog,
    pub(crate) orders: crate::orders::OrderStore,
    pub(crate) returns: crate::returns::ReturnStore,
    pub(crate) shops: crate::shops::Shops,
    pub(crate) queues: Vec<(&'static str, String)>,
    pub(crate) stale_after: chrono::Duration,
    auth: AdminAuth,
    /// The console's sign-in and sessions.
    pub(crate) console_auth: Arc<crate::console::auth::Auth>,
    /// What operators did, newest first.
    pub(crate) log: crate::console::log::ActivityLog,
    /// The invoices' records, for an order's page.
    pub(crate) invoices: crate::documents::InvoiceRecords,
    /// Where buyers open their invoices (the webhook's Function URL); empty
    /// until the deploy command sets it.
    pub(crate) document_link_base: String,
    /// Each shop's emergency switch.
    pub(crate) emergency: crate::emergency::Emergency,
    /// The shops' settings saved in the console (the Shops page).
    pub(crate) shop_settings: crate::shop_settings::ShopSettings,
    /// The shop credentials secret (`SHOP_SECRETS_ARN`), written by the
    /// Shops page and never read back to it.
    pub(crate) credentials: Option<crate::shop_settings::CredentialsSecret>,
}

impl Admin {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let queues = QUEUES
            .iter()
            .map(|(name, var)| Ok((*name, env.required(var)?)))
            .collect::<Result<Vec<_>, EnvError>>()?;
        let stale_after: i64 =
            env.parsed("AGENT_STALE_AFTER_SECONDS", "a whole number of seconds")?;
        let auth = match env.required("ADMIN_AUTH")?.as_str() {
            "tokens" => AdminAuth::Tokens,
            "token" => {
                let token = env.required("ADMIN_TOKEN")?;
                if token.len() < 16 {
                    return Err(EnvError::Invalid {
                        name: "ADMIN_TOKEN",
                        value: "<redacted>".into(),
                        expected: "at least 16 characters",
                    });
                }
                AdminAuth::Token(token)
            }
            other => {
                return Err(EnvError::Invalid {
                    name: "ADMIN_AUTH",
                    value: other.to_owned(),
                    expected: "`tokens` (API tokens from `deploy.py api-token`) or `token` (ADMIN_TOKEN, local use)",
                });
            }
        };
        let table = env.required("STATE_TABLE")?;
        let log = crate::console::log::ActivityLog::new(clients.dynamodb.clone(), table.clone());
        Ok(Admin {
            console_auth: Arc::new(crate::console::auth::Auth::new(
                clients.dynamodb.clone(),
                table.clone(),
                log.clone(),
            )),
            log,
            invoices: crate::documents::InvoiceRecords::new(
                clients.dynamodb.clone(),
                table.clone(),
                env.parsed("INVOICE_LINK_DAYS", "a whole number of days")?,
            ),
            document_link_base: env
                .get("DOCUMENT_LINK_BASE")
                .unwrap_or_default()
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            emergency: crate::emergency::Emergency::new(clients.dynamodb.clone(), table.clone()),
            shop_settings: crate::shop_settings::ShopSettings::new(
                clients.dynamodb.clone(),
                table.clone(),
            ),
            credentials: env.get("SHOP_SECRETS_ARN").map(|arn| {
                crate::shop_settings::CredentialsSecret::new(
                    clients.secrets.clone(),
                    arn,
                    crate::shop_settings::CredentialsRecord::new(
                        clients.dynamodb.clone(),
                        table.clone(),
                    ),
                )
            }),
            clients: clients.clone(),
            state: StateTable::new(clients.dynamodb.clone(), env.required("STATE_TABLE")?, 30),
            catalog: Catalog::new(clients.dynamodb.clone(), env.required("STATE_TABLE")?),
            orders: crate::orders::OrderStore::new(
                clients.dynamodb.clone(),
                env.required("STATE_TABLE")?,
                30,
            ),
            returns: crate::returns::ReturnStore::new(
                clients.dynamodb.clone(),
                env.required("STATE_TABLE")?,
            ),
            shops: crate::shops::Shops::from_env(env, false).map_err(|e| EnvError::Invalid {
                name: "SHOPS",
                value: e.to_string(),
                expected: "a JSON list of shops (see docs/OPERATIONS.md)",
            })?,
            queues,
            stale_after: chrono::Duration::seconds(stale_after),
            auth,
        })
    }

    /// The router: the same in AWS (under lambda_http) and locally
    /// (axum::serve). The JSON routes need the admin credential; the
    /// console's pages (`/console/…`) their own sign-in.
    pub fn router(self) -> Router {
        let admin = Arc::new(self);
        let api = Router::new()
            .route("/status", get(status))
            .route("/orders/{shop}/{order_id}/retry", post(retry_order))
            .layer(middleware::from_fn_with_state(
                admin.clone(),
                require_credential,
            ))
            .with_state(admin.clone());
        api.merge(crate::console::pages::routes(admin))
    }

    /// Asks every agent the table knows for a forced pass (the console's
    /// Sync and Sync now); returns the agents asked. An agent that is away
    /// finds the request waiting in its group of the commands queue.
    pub(crate) async fn force_sync(
        &self,
        request: contract::ForceSync,
    ) -> Result<Vec<String>, ForceSyncError> {
        let agents = self.state.agents().await?;
        if agents.is_empty() {
            return Err(ForceSyncError::NoAgent);
        }
        let mut asked = Vec::new();
        for agent in agents {
            let envelope = contract::Envelope::new(
                "cloud",
                0,
                Utc::now(),
                contract::Payload::ForceSync(request.clone()),
            )
            .addressed_to(&agent.agent_id);
            let body = crate::agent_versions::command_body(
                self.state.client(),
                self.state.name(),
                &envelope,
            )
            .await?;
            self.clients
                .sqs
                .send_message()
                .queue_url(self.commands_queue_url())
                .message_body(body)
                .message_group_id(crate::ingest::agent_command_group(&agent.agent_id))
                .message_deduplication_id(format!("force-{}", uuid::Uuid::new_v4().simple()))
                .send()
                .await
                .map_err(|e| ForceSyncError::Queue(describe_error(&e)))?;
            asked.push(agent.agent_id);
        }
        Ok(asked)
    }

    /// The commands queue's URL (a parked order sent again goes there).
    pub(crate) fn commands_queue_url(&self) -> String {
        self.queues
            .iter()
            .find(|(name, _)| *name == "erp_commands")
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    }
}

/// Sends a parked order to the ERP again.
async fn retry_order(
    State(admin): State<Arc<Admin>>,
    Path((shop, order_id)): Path<(String, String)>,
) -> Response {
    let Some(config) = admin.shops.get(&shop) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no shop `{}` is configured", shop.chars().take(64).collect::<String>())})),
        )
            .into_response();
    };
    let intake = crate::orders::OrderIntake::new(
        admin.orders.clone(),
        admin.clients.sqs.clone(),
        admin.commands_queue_url(),
    );
    match intake.retry(config, &order_id).await {
        Ok(retried) => {
            let status = match retried {
                crate::orders::Retried::Sent | crate::orders::Retried::Pending => StatusCode::OK,
                crate::orders::Retried::NotStored => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            tracing::info!(%shop, order = %order_id, ?retried, "retry of a parked order asked for");
            (status, Json(json!({"retried": retried}))).into_response()
        }
        Err(err) => {
            tracing::warn!(%shop, order = %order_id, error = %err, "retry of a parked order failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": err.to_string()})),
            )
                .into_response()
        }
    }
}

async fn require_credential(
    State(admin): State<Arc<Admin>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let configured = match &admin.auth {
        AdminAuth::Token(expected) => presented.as_bytes().ct_eq(expected.as_bytes()).into(),
        AdminAuth::Tokens => false,
    };
    let allowed = configured
        || (!presented.is_empty() && {
            match admin.api_token_known(presented).await {
                Ok(known) => known,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot check an API token");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"error": "the credential cannot be checked now; try again"})),
                    )
                        .into_response();
                }
            }
        });
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "a valid API token is required (infra/deploy.py api-token)"})),
        )
            .into_response();
    }
    next.run(request).await
}

impl Admin {
    /// Whether a bearer token is one `deploy.py api-token` made and nobody
    /// revoked.
    async fn api_token_known(&self, token: &str) -> Result<bool, crate::state::StateError> {
        let out = self
            .state
            .client()
            .get_item()
            .table_name(self.state.name())
            .key("pk", crate::dynamo::s(api_token_key(token)))
            .key("sk", crate::dynamo::s("token"))
            .send()
            .await
            .map_err(|e| crate::state::StateError::dynamo("GetItem", self.state.name(), &e))?;
        Ok(out.item.is_some())
    }
}

#[derive(Serialize)]
pub(crate) struct QueueDepth {
    url: String,
    pub(crate) visible: Option<u64>,
    pub(crate) in_flight: Option<u64>,
    pub(crate) delayed: Option<u64>,
    pub(crate) error: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AgentView {
    #[serde(flatten)]
    pub(crate) status: AgentStatus,
    pub(crate) seconds_since_seen: i64,
    pub(crate) stale: bool,
}

#[derive(Serialize)]
pub(crate) struct Status {
    pub(crate) now: DateTime<Utc>,
    pub(crate) agents: Vec<AgentView>,
    pub(crate) queues: serde_json::Map<String, serde_json::Value>,
    pub(crate) parked: Vec<ParkedMessage>,
    /// Products a shop cannot show in full, with the reasons (first 200).
    pub(crate) parked_records: Vec<ParkedRecord>,
    /// Shop orders the agent parked (unknown SKU, …) or the shop refused
    /// an update of, with the reasons (first 200).
    pub(crate) parked_orders: Vec<crate::orders::ParkedOrder>,
    /// Orders the ERP holds unrealised, each ready or with what blocks it
    /// (the buyer's remark, goods short, not paid) (first 200).
    pub(crate) awaiting_realisation: Vec<crate::orders::AwaitingRealisation>,
    /// Buyers' returns the shops reported, each needing a correction in
    /// the ERP (newest first, 200 a shop).
    pub(crate) returns: Vec<crate::returns::ReportedReturn>,
    /// Each shop's stale-stock policy and how many products it holds at 0.
    pub(crate) shops: Vec<serde_json::Value>,
    /// What is configured wrong, in words and with what to change.
    pub(crate) warnings: Vec<String>,
    pub(crate) errors: Vec<String>,
}

/// What was read, or nothing with the error noted for the page.
pub(crate) fn or_noted<T: Default>(
    result: Result<T, crate::state::StateError>,
    errors: &mut Vec<String>,
) -> T {
    result.unwrap_or_else(|err| {
        errors.push(err.to_string());
        T::default()
    })
}

/// Orders wait in the commands queue but every live agent says it does
/// not write orders (no `[orders]` section): nothing will take them.
fn orders_without_a_writer(agents: &[AgentView], commands_waiting: u64) -> Option<String> {
    let live: Vec<&AgentView> = agents.iter().filter(|a| !a.stale).collect();
    let nobody = !live.is_empty() && live.iter().all(|a| a.status.takes_orders == Some(false));
    (commands_waiting > 0 && nobody).then(|| {
        format!(
            "{commands_waiting} command(s) wait in the commands queue, but no agent writes orders ({}): add an [orders] section (warehouse, default_payment_form, default_shipping_service; docs/INSTALL.md) to the agent's configuration and restart it",
            live.iter()
                .map(|a| a.status.agent_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> QueueDepth {
    let answer = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await;
    match answer {
        Ok(out) => {
            let attrs = out.attributes.unwrap_or_default();
            let read = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok());
            QueueDepth {
                url: url.to_owned(),
                visible: read(QueueAttributeName::ApproximateNumberOfMessages),
                in_flight: read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                delayed: read(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
                error: None,
            }
        }
        Err(err) => QueueDepth {
            url: url.to_owned(),
            visible: None,
            in_flight: None,
            delayed: None,
            error: Some(describe_error(&err)),
        },
    }
}

async fn status(State(admin): State<Arc<Admin>>) -> Response {
    let report = admin.report().await;
    let code = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

impl Admin {
    /// Every shop's buyers' returns, newest first, `limit` a shop.
    pub(crate) async fn returns_of_all_shops(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::returns::ReportedReturn>, crate::state::StateError> {
        let mut returns = Vec::new();
        for shop in &self.shops.shops {
            returns.extend(self.returns.list(&shop.id, limit).await?);
        }
        Ok(returns)
    }

    /// What `/status` answers and the console's pages show.
    pub(crate) async fn report(&self) -> Status {
        let admin = self;
        let now = Utc::now();
        let mut errors = Vec::new();
        // Every read at once: the page waits for the slowest, not the sum.
        let (agents, depths, parked, parked_records, parked_orders, awaiting, returns, shops) = futures::join!(
            admin.state.agents(),
            futures::future::join_all(
                admin
                    .queues
                    .iter()
                    .map(|(_, url)| queue_depth(&admin.clients.sqs, url)),
            ),
            admin.state.parked(),
            admin.catalog.parked_records(200),
            admin.orders.parked(200),
            admin.orders.awaiting_realisation_list(200),
            admin.returns_of_all_shops(200),
            crate::watchdog::Watchdog::zeroed(&admin.catalog, &admin.shops),
        );
        let agents = or_noted(agents, &mut errors);
        let parked = or_noted(parked, &mut errors);
        let parked_records = or_noted(parked_records, &mut errors);
        let parked_orders = or_noted(parked_orders, &mut errors);
        let awaiting_realisation = or_noted(awaiting, &mut errors);
        let returns = or_noted(returns, &mut errors);
        let agents: Vec<AgentView> = agents
            .into_iter()
            .map(|status: AgentStatus| {
                let since = now - status.last_seen;
                AgentView {
                    seconds_since_seen: since.num_seconds(),
                    stale: since > admin.stale_after || status.marked_stale,
                    status,
                }
            })
            .collect();
        let commands_waiting = admin
            .queues
            .iter()
            .zip(&depths)
            .find(|((name, _), _)| *name == "erp_commands")
            .map(|(_, d)| d.visible.unwrap_or(0) + d.in_flight.unwrap_or(0))
            .unwrap_or(0);
        let warnings: Vec<String> = orders_without_a_writer(&agents, commands_waiting)
            .into_iter()
            .collect();
        let mut queues = serde_json::Map::new();
        for ((name, _), depth) in admin.queues.iter().zip(depths) {
            queues.insert(
                (*name).to_owned(),
                serde_json::to_value(depth).unwrap_or_default(),
            );
        }
        Status {
            now,
            agents,
            queues,
            parked,
            parked_records,
            parked_orders,
            awaiting_realisation,
            returns,
            shops,
            warnings,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, takes_orders: Option<bool>, stale: bool) -> AgentView {
        AgentView {
            status: AgentStatus {
                agent_id: id.into(),
                agent_version: "0".into(),
                contract_max_version: None,
                last_seen: Utc::now(),
                agent_clock: Utc::now(),
                clock_skew_seconds: 0.0,
                last_seq: 0,
                sql_server_reachable: true,
                sql_error: None,
                outbox_depth: 0,
                takes_orders,
                marked_stale: stale,
                incarnation: None,
                rejected_records: 0,
                rejected_latest: None,
            },
            seconds_since_seen: 0,
            stale,
        }
    }

    #[test]
    fn waiting_orders_with_no_agent_that_writes_them_are_a_warning_naming_the_fix() {
        let without = [view("biuro", Some(false), false)];
        let warning = orders_without_a_writer(&without, 2).unwrap();
        assert!(
            warning.contains("[orders]") && warning.contains("biuro"),
            "{warning}"
        );
        assert_eq!(orders_without_a_writer(&without, 0), None, "nothing waits");
        let one_writes = [
            view("biuro", Some(false), false),
            view("sklep", Some(true), false),
        ];
        assert_eq!(orders_without_a_writer(&one_writes, 2), None);
        // An old agent that does not say is given the benefit of the doubt.
        assert_eq!(
            orders_without_a_writer(&[view("stary", None, false)], 2),
            None
        );
        // A stale writer does not count; the live one without [orders] is named.
        let stale_writer = [
            view("biuro", Some(false), false),
            view("sklep", Some(true), true),
        ];
        assert!(orders_without_a_writer(&stale_writer, 1).is_some());
    }
}
