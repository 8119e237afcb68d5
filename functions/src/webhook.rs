//! `webhook`: the shops' order webhooks, on a Function URL (auth NONE: the
//! platform's signature is the credential). Each shop has its own path,
//! `POST <function url>/<shop id>`, and its own webhook secret (in the shop
//! credentials secret). The shop's platform verifies the delivery
//! ([`crate::shop::WebhookVerifier`]) and reads the order
//! ([`crate::shop::OrderSource`]); this module names no platform.
//!
//! Answers (JSON):
//! - 200 for an order stored (or already stored), for a platform's
//!   unsigned address check (WooCommerce's creation ping), and for signed
//!   deliveries of topics that are not orders or that change nothing for
//!   the ERP: platforms disable a webhook after a few failed deliveries in
//!   a row, so only a real failure may count as one;
//! - 401 for a missing or wrong signature (checked in constant time on the
//!   raw body), or a shop with no webhook secret;
//! - 404 for a shop whose platform has no webhooks (it is polled);
//! - 400 for an unknown shop or a body that is not a usable order
//!   (not UTF-8, not JSON, a required field missing, an absurd quantity);
//! - 413 for a body over [`MAX_BODY_BYTES`];
//! - 503 only when the order could not be stored (DynamoDB unavailable).
//!
//! Nothing is stored unless the signature holds and the order is valid.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use contract::Order;
use serde_json::json;
use tracing::{info, warn};

use crate::aws::Clients;
use crate::catalog::Catalog;
use crate::documents::InvoiceFiles;
use crate::env::{EnvError, FunctionEnv};
use crate::orders::{OrderIntake, OrderStore, VatError, complete_vat};
use crate::shop::{self, Connector, OrderParseError, VatStated};
use crate::shop_settings::BuiltFromShops;
use crate::shops::Shops;

/// The largest body taken: real orders are a few kilobytes; a thousand lines fit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a delivery is, once checked (pure: no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The platform checking the address.
    Ping { id: String },
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
    #[error("the shop's platform ({0}) sends no webhooks; its orders are polled")]
    NoWebhooks(&'static str),
    #[error(transparent)]
    Unverified(#[from] shop::Rejection),
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Malformed(#[from] OrderParseError),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::UnknownShop(_) | Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::NoWebhooks(_) => StatusCode::NOT_FOUND,
            Rejection::Unverified(_) => StatusCode::UNAUTHORIZED,
            Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// The shops' connectors as the webhook uses them: verifiers and order
/// readers, no HTTP requests (so no rate limits).
#[derive(Debug, Clone)]
pub struct Checker {
    shops: Shops,
    connectors: HashMap<String, Connector>,
}

impl Checker {
    pub fn new(shops: Shops) -> Result<Self, crate::shops::ShopsError> {
        let connectors = shops
            .shops
            .iter()
            .map(|shop| Ok((shop.id.clone(), shops.connector(&shop.id, None)?)))
            .collect::<Result<_, crate::shops::ShopsError>>()?;
        Ok(Checker { shops, connectors })
    }

    pub fn shops(&self) -> &Shops {
        &self.shops
    }

    /// How a shop's platform states VAT on its orders.
    fn vat_stated(&self, shop: &str) -> VatStated {
        self.connectors
            .get(shop)
            .and_then(|c| c.orders.as_ref())
            .map_or(VatStated::PerLine, |source| source.vat_stated())
    }

    /// The header a shop's platform sends its delivery id in, if any.
    fn delivery_id_header(&self, shop: &str) -> Option<&'static str> {
        self.connectors
            .get(shop)?
            .webhooks
            .as_ref()?
            .delivery_id_header()
    }

    /// Checks one delivery for `shop` at `now`: signature, ping, topic, order.
    pub fn check(
        &self,
        shop: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, Rejection> {
        let unknown = || Rejection::UnknownShop(shop.chars().take(64).collect());
        self.shops.get(shop).ok_or_else(unknown)?;
        let connector = self.connectors.get(shop).ok_or_else(unknown)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(Rejection::TooLarge);
        }
        let (Some(verifier), Some(source)) = (&connector.webhooks, &connector.orders) else {
            return Err(Rejection::NoWebhooks(connector.platform));
        };
        let raw = match verifier.verify(headers, body, self.shops.webhook_secret(shop), now)? {
            shop::Delivery::Ping { id } => return Ok(Delivery::Ping { id }),
            shop::Delivery::Ignored { topic } => return Ok(Delivery::Ignored { topic }),
            shop::Delivery::Order(raw) => raw,
        };
        let order = source.normalise_order(shop, &raw)?;
        crate::orders::command_body(&order)?;
        Ok(Delivery::Order(Box::new(order)))
    }
}

/// What `webhook` needs, built once at cold start.
#[derive(Debug)]
pub struct Webhook {
    /// Built again when the shops change (a webhook secret saved in the
    /// console).
    checker: BuiltFromShops<Checker>,
    /// The shops with the console's saved settings (the order trigger).
    shops: crate::shop_settings::ShopsSource,
    intake: OrderIntake,
    catalog: Catalog,
    /// The buyers' invoices, served at `/invoice/<token>`.
    invoice_files: InvoiceFiles,
}

impl Webhook {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let shops = Shops::from_env(env, true).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops with credentials in the SHOP_SECRETS_ARN secret",
        })?;
        let retention_days = env.parsed("RETENTION_DAYS", "a whole number of days")?;
        let table = env.required("STATE_TABLE")?;
        let store = OrderStore::new(clients.dynamodb.clone(), table.clone(), retention_days);
        let catalog = Catalog::new(clients.dynamodb.clone(), table);
        let source = crate::shop_settings::ShopsSource::from_env(shops, clients, env);
        let checker = BuiltFromShops::new(source.now(), |shops| Checker::new(shops.clone()))
            .map_err(|e| EnvError::Invalid {
                name: "SHOPS",
                value: e.to_string(),
                expected: "a usable shop address and credentials",
            })?;
        Ok(Webhook {
            checker,
            shops: source,
            catalog,
            invoice_files: InvoiceFiles::new(clients.s3.clone(), env.required("DOCUMENTS_BUCKET")?),
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
            .route("/invoice/{token}", get(invoice))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::new(self))
    }
}

/// A buyer opens an invoice: the PDF behind the token, or the same 404 for
/// a token that is unknown, expired or not a token at all.
async fn invoice(State(webhook): State<Arc<Webhook>>, Path(token): Path<String>) -> Response {
    match webhook.invoice_files.get(&token).await {
        Ok(Some(file)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{}\"", file.file_name),
                ),
                // A later copy (with the KSeF number) replaces it.
                (header::CACHE_CONTROL, "private, no-cache".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
            file.bytes,
        )
            .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "Nie ma takiego dokumentu. / No such document.\n",
        )
            .into_response(),
        Err(err) => {
            warn!(error = %err, "an invoice could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "30")],
                "Dokument chwilowo niedostępny. / The document is not available right now.\n",
            )
                .into_response()
        }
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
    // Credentials or settings saved in the console, at most CACHE old.
    let shops = webhook.shops.refresh().await;
    let checker = webhook.checker.for_shops(&shops);
    let delivery_id = checker
        .delivery_id_header(&shop)
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(80)
        .collect::<String>();
    let delivery = match checker.check(&shop, &headers, &body, Utc::now()) {
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
        Delivery::Ping { id } => {
            info!(%shop, ping = %id, "webhook ping");
            (StatusCode::OK, Json(json!({"ok": true, "ping": id}))).into_response()
        }
        Delivery::Ignored { topic } => {
            info!(%shop, %topic, %delivery_id, "webhook topic not for the ERP; acknowledged");
            (StatusCode::OK, Json(json!({"ok": true, "ignored": topic}))).into_response()
        }
        Delivery::Order(mut order) => {
            if let VatStated::NotStated { delivery } = checker.vat_stated(&shop) {
                match complete_vat(&webhook.catalog, &mut order, delivery).await {
                    Ok(()) => {}
                    Err(VatError::Store(err)) => {
                        warn!(order = %order.key(), error = %err, "the catalogue could not be read for the order's VAT; NOT stored");
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"error": "the order could not be stored; try again"})),
                        )
                            .into_response();
                    }
                    Err(err) => {
                        warn!(order = %order.key(), reason = %err, "webhook order refused");
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"error": err.to_string()})),
                        )
                            .into_response();
                    }
                }
            }
            let Some(config) = shops.get(&shop) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const SECRET: &str = "whsec-router";

    /// The webhook with clients that reach nothing: every answer here is
    /// given before the intake would store anything.
    fn router() -> Router {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .build();
        let clients = Clients::from_config(&config);
        let mut env = FunctionEnv::from_map(
            [
                (
                    "SHOPS",
                    r#"[{"id":"sklep","platform":"woocommerce","base_url":"http://127.0.0.1:9","rules":{"price_list":"Detaliczna","warehouses":["MAG"]}}]"#,
                ),
                ("RETENTION_DAYS", "30"),
                ("STATE_TABLE", "state"),
                ("COMMANDS_QUEUE_URL", "http://127.0.0.1:9/queue/commands.fifo"),
                ("DOCUMENTS_BUCKET", "documents"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env.set_shop_secrets(format!(
            r#"{{"sklep":{{"consumer_key":"ck","consumer_secret":"cs","webhook_secret":"{SECRET}"}}}}"#
        ));
        Webhook::new(&clients, &env)
            .expect("a webhook from valid settings")
            .router()
    }

    async fn post(
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router()
            .oneshot(request.body(Body::from(body)).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn signed(body: &[u8], topic: &str) -> Vec<(&'static str, String)> {
        vec![
            (
                "x-wc-webhook-signature",
                crate::shop::woo_order::sign(SECRET.as_bytes(), body),
            ),
            ("x-wc-webhook-topic", topic.to_owned()),
        ]
    }

    #[tokio::test]
    async fn an_invoice_link_that_is_not_a_token_is_not_found_and_a_dead_store_says_so() {
        let get = |path: String| async move {
            let response = router()
                .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
                .await
                .expect("an answer");
            (
                response.status(),
                response.headers().get("retry-after").cloned(),
            )
        };
        for path in ["/invoice/short", "/invoice/..%2F..%2Fsecret", "/invoice/"] {
            assert_eq!(
                get(path.to_owned()).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        // A well-formed token asks S3, which here is 127.0.0.1:9.
        let token = crate::documents::new_token();
        let (status, retry_after) = get(format!("/invoice/{token}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some());
    }

    #[tokio::test]
    async fn each_refusal_has_its_status_and_reason_and_pings_and_other_topics_are_acknowledged() {
        let (status, answer) = post("/", &[], b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"].as_str().unwrap_or("").contains("shop id"),
            "{answer}"
        );

        let (status, answer) = post("/nowhere", &[], b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], "unknown shop `nowhere`");

        let (status, answer) = post("/sklep", &[], br#"{"id":1}"#.to_vec()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer["error"], "X-WC-Webhook-Signature is missing");

        let (status, answer) = post("/sklep", &[], b"webhook_id=15".to_vec()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["ping"], "15");

        let body = br#"{"id":3}"#.to_vec();
        let headers = signed(&body, "product.updated");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = post("/sklep", &headers, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["ignored"], "product.updated");

        let body = br#"{"id":"#.to_vec();
        let headers = signed(&body, "order.updated");
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = post("/sklep", &headers, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or("")
                .contains("not a WooCommerce order"),
            "{answer}"
        );

        let (status, _) = post("/sklep", &[], vec![b' '; MAX_BODY_BYTES + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
        let shops = {
            let mut env = FunctionEnv::from_map([(
                "SHOPS".to_owned(),
                r#"[{"id":"sklep","platform":"woocommerce","base_url":"http://127.0.0.1:9","rules":{"price_list":"Detaliczna","warehouses":["MAG"]}}]"#.to_owned(),
            )]);
            env.set_shop_secrets(format!(
                r#"{{"sklep":{{"consumer_key":"ck","consumer_secret":"cs","webhook_secret":"{SECRET}"}}}}"#
            ));
            Shops::from_env(&env, true).expect("shops")
        };
        let checker = Checker::new(shops).expect("a checker");
        let headers = HeaderMap::new();
        let at_limit = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(
            checker.check("sklep", &headers, &at_limit, Utc::now()),
            Err(Rejection::Unverified(shop::Rejection::MissingSignature(
                "X-WC-Webhook-Signature"
            )))
        );
        let over = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            checker.check("sklep", &headers, &over, Utc::now()),
            Err(Rejection::TooLarge)
        );
    }
}
