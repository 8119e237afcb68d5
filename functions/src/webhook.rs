//! `webhook`: the shops' order webhooks, on a Function URL (auth NONE: the
//! platform's signature is the credential). Each shop has its own path,
//! `POST <function url>/<shop id>`, and its own webhook secret
//! (`webhook_secret` in the shop credentials secret).
//!
//! Answers (JSON):
//! - 200 for an order stored (or already stored), for WooCommerce's
//!   creation ping (`webhook_id=N`, unsigned), and for signed deliveries of
//!   topics that are not orders or that change nothing for the ERP
//!   (`order.deleted`): WooCommerce disables a webhook after a few failed
//!   deliveries in a row, so only a real failure may count as one;
//! - 401 for a missing or wrong `X-WC-Webhook-Signature` (checked in
//!   constant time on the raw body);
//! - 400 for an unknown shop or a body that is not a usable order
//!   (not UTF-8, not JSON, a required field missing, an absurd quantity);
//! - 413 for a body over [`MAX_BODY_BYTES`];
//! - 503 only when the order could not be stored (DynamoDB unavailable).
//!
//! Nothing is stored unless the signature holds and the order is valid.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use contract::Order;
use serde_json::json;
use tracing::{info, warn};

use crate::aws::Clients;
use crate::env::{EnvError, FunctionEnv};
use crate::orders::{OrderIntake, OrderStore};
use crate::shop::woo_order::{OrderParseError, parse_order, ping_webhook_id, verify_signature};
use crate::shops::Shops;

/// The largest body taken: real orders are a few kilobytes; a thousand lines fit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a delivery is, once checked (pure: no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// WooCommerce's creation ping.
    Ping { webhook_id: u64 },
    /// A signed delivery that is not for the ERP (another topic, a deletion).
    Ignored { topic: String },
    /// A signed, valid order.
    Order(Box<Order>),
}

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("unknown shop `{0}`")]
    UnknownShop(String),
    #[error("the shop has no webhook secret configured")]
    NoSecret,
    #[error("X-WC-Webhook-Signature is missing")]
    MissingSignature,
    #[error("X-WC-Webhook-Signature does not match the body")]
    BadSignature,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Malformed(#[from] OrderParseError),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::UnknownShop(_) | Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::NoSecret | Rejection::MissingSignature | Rejection::BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks one delivery for `shop`: signature, ping, topic, order.
pub fn check(
    shops: &Shops,
    shop: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, Rejection> {
    let config = shops
        .get(shop)
        .ok_or_else(|| Rejection::UnknownShop(shop.chars().take(64).collect()))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::TooLarge);
    }
    let signature = header(headers, "x-wc-webhook-signature");
    let Some(signature) = signature else {
        // The creation ping is the one unsigned delivery WooCommerce sends.
        if let Some(webhook_id) = ping_webhook_id(body) {
            return Ok(Delivery::Ping { webhook_id });
        }
        return Err(Rejection::MissingSignature);
    };
    let secret = shops.webhook_secret(shop).ok_or(Rejection::NoSecret)?;
    if !verify_signature(secret.expose().as_bytes(), body, signature) {
        return Err(Rejection::BadSignature);
    }
    let topic = header(headers, "x-wc-webhook-topic")
        .unwrap_or("order.updated")
        .trim()
        .to_owned();
    if !matches!(
        topic.as_str(),
        "order.created" | "order.updated" | "order.restored"
    ) {
        return Ok(Delivery::Ignored { topic });
    }
    let order = parse_order(shop, body, &config.normalise_options())?;
    crate::orders::command_body(&order)?;
    Ok(Delivery::Order(Box::new(order)))
}

/// What `webhook` needs, built once at cold start.
#[derive(Debug)]
pub struct Webhook {
    shops: Shops,
    intake: OrderIntake,
}

impl Webhook {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let shops = Shops::from_env(env, true).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops with credentials in the SHOP_SECRETS_ARN secret",
        })?;
        let retention_days = env.parsed("RETENTION_DAYS", "a whole number of days")?;
        let store = OrderStore::new(
            clients.dynamodb.clone(),
            env.required("STATE_TABLE")?,
            retention_days,
        );
        Ok(Webhook {
            shops,
            intake: OrderIntake::new(
                store,
                clients.sqs.clone(),
                env.required("COMMANDS_QUEUE_URL")?,
            ),
        })
    }

    /// The router: the same in AWS (under lambda_http) and locally.
    pub fn router(self) -> Router {
        Router::new()
            .route("/{shop}", post(deliver))
            .route("/", post(no_shop))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::new(self))
    }
}

async fn no_shop() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "the webhook URL must end in the shop id: <url>/<shop id>"})),
    )
        .into_response()
}

async fn deliver(
    State(webhook): State<Arc<Webhook>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delivery_id = header(&headers, "x-wc-webhook-delivery-id")
        .unwrap_or("-")
        .chars()
        .take(80)
        .collect::<String>();
    let delivery = match check(&webhook.shops, &shop, &headers, &body) {
        Ok(delivery) => delivery,
        Err(rejection) => {
            warn!(shop = %shop.chars().take(64).collect::<String>(), %delivery_id, bytes = body.len(), reason = %rejection, "webhook refused");
            return (
                rejection.status(),
                Json(json!({"error": rejection.to_string()})),
            )
                .into_response();
        }
    };
    match delivery {
        Delivery::Ping { webhook_id } => {
            info!(%shop, webhook_id, "webhook ping");
            (
                StatusCode::OK,
                Json(json!({"ok": true, "ping": webhook_id})),
            )
                .into_response()
        }
        Delivery::Ignored { topic } => {
            info!(%shop, %topic, %delivery_id, "webhook topic not for the ERP; acknowledged");
            (StatusCode::OK, Json(json!({"ok": true, "ignored": topic}))).into_response()
        }
        Delivery::Order(order) => {
            let Some(config) = webhook.shops.get(&shop) else {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "unknown shop"})),
                )
                    .into_response();
            };
            match webhook.intake.accept(config, &order).await {
                Ok(accepted) => {
                    info!(order = %order.key(), revision = %order.revision, %delivery_id, stored = accepted.stored, command_sent = accepted.command_sent, cancel_sent = accepted.cancel_sent, command_pending = accepted.command_pending, "webhook order");
                    (
                        StatusCode::OK,
                        Json(json!({
                            "ok": true,
                            "order": order.key(),
                            "stored": accepted.stored,
                            "command_sent": accepted.command_sent,
                            "cancel_sent": accepted.cancel_sent,
                            "command_pending": accepted.command_pending,
                        })),
                    )
                        .into_response()
                }
                Err(err) => {
                    // The one case worth a 5xx: the order is not kept. The
                    // poller still finds it once the table is back.
                    warn!(order = %order.key(), error = %err, "webhook order NOT stored");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"error": "the order could not be stored; try again"})),
                    )
                        .into_response()
                }
            }
        }
    }
}
