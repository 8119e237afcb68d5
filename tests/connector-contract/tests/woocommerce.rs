//! WooCommerce (REST v3) and its stand-in (`tests/woo-standin`) under the
//! connector contract.
//!
//! Documented examples: `examples/woocommerce/retrieve-an-order-727.json`
//! is the "Retrieve an order" JSON response example of the WooCommerce
//! REST API documentation (woocommerce/woocommerce-rest-api-docs,
//! `source/includes/wp-api-v3/_orders.md`), byte for byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use connector_contract::{Credentials, Example, OrderView, Platform, Shown, contract_suite};
use contract::OrderStage;
use functions::shop::woocommerce::{WooCommerce, WooConfig};
use functions::shop::{Connector, RequestGate, Secret, ShopItemId};
use rust_decimal::Decimal;
use woo_standin::{NewOrder, NewProduct, WooOptions, WooStandin};

struct Woo {
    standin: WooStandin,
    /// Requests before this sequence number are not counted.
    counted_from: AtomicU64,
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl Woo {
    async fn start() -> anyhow::Result<Woo> {
        let standin = WooStandin::start(WooOptions {
            consumer_key: "ck_contract".into(),
            consumer_secret: "cs_contract".into(),
            ..WooOptions::default()
        })
        .await?;
        Ok(Woo {
            standin,
            counted_from: AtomicU64::new(0),
        })
    }

    fn with_secret(&self, secret: &str, gate: Arc<dyn RequestGate>) -> anyhow::Result<Connector> {
        let mut config = WooConfig::new(
            self.standin.base_url(),
            self.standin.consumer_key(),
            Secret::new(secret),
        );
        config.settings.timeout = TIMEOUT;
        Ok(WooCommerce::new(config)?.with_gate(gate).connector())
    }

    fn id(id: &str) -> anyhow::Result<u64> {
        id.parse()
            .with_context(|| format!("`{id}` is not a WooCommerce order id"))
    }
}

impl Platform for Woo {
    const NAME: &'static str = "woocommerce";
    const CREDENTIALS: Credentials = Credentials::Static;

    fn connector(&self, gate: Arc<dyn RequestGate>) -> anyhow::Result<Connector> {
        self.with_secret(self.standin.consumer_secret(), gate)
    }

    fn connector_with_wrong_credentials(
        &self,
        gate: Arc<dyn RequestGate>,
    ) -> anyhow::Result<Connector> {
        self.with_secret("cs_wrong", gate)
    }

    fn request_timeout(&self) -> Duration {
        TIMEOUT
    }

    async fn add_products(&self, skus: &[String]) -> anyhow::Result<()> {
        for sku in skus {
            self.standin.add_product(NewProduct {
                sku: sku.clone(),
                name: format!("Produkt {sku}"),
                regular_price: "10.00".into(),
                stock_quantity: Some(5),
                ..NewProduct::default()
            })?;
        }
        Ok(())
    }

    async fn shown(&self, sku: &str) -> anyhow::Result<Option<Shown>> {
        let Some(product) = self.standin.product_by_sku(sku) else {
            return Ok(None);
        };
        Ok(Some(Shown {
            price: product.regular_price.parse::<Decimal>()?,
            stock: product.stock_quantity,
        }))
    }

    fn unknown_item(&self) -> ShopItemId {
        ShopItemId::product("990001")
    }

    async fn place_orders(&self, sku: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let order = self.standin.place_order(NewOrder {
                line_items: vec![(sku.to_owned(), 1)],
                ..NewOrder::default()
            })?;
            ids.push(order.id.to_string());
        }
        Ok(ids)
    }

    async fn change_order(&self, id: &str) -> anyhow::Result<()> {
        self.standin.set_order_status(Self::id(id)?, "on-hold")?;
        Ok(())
    }

    async fn order_view(&self, id: &str) -> anyhow::Result<OrderView> {
        let id = Self::id(id)?;
        let order = self.standin.order(id).context("the order")?;
        Ok(OrderView {
            status: order.status,
            texts: self
                .standin
                .order_notes(id)
                .into_iter()
                .filter(|note| note.customer_note)
                .map(|note| note.note)
                .collect(),
        })
    }

    fn status_after(&self, stage: OrderStage) -> Option<String> {
        match stage {
            OrderStage::Accepted => None,
            OrderStage::Invoiced => Some("processing".into()),
            OrderStage::Shipped => Some("completed".into()),
            OrderStage::Cancelled => Some("cancelled".into()),
        }
    }

    fn examples(&self) -> Vec<Example> {
        vec![Example {
            source: "WooCommerce REST API docs, Retrieve an order (id 727)",
            body: include_bytes!("../examples/woocommerce/retrieve-an-order-727.json").to_vec(),
            // The example charges a US state tax: 0.45 on 6.00 is 7.5 %, which
            // no Polish rate gives. Refused with the line and the figures,
            // not booked at the nearest rate (8 %), as it once was.
            check: |result| match result {
                Err(err) => {
                    let text = err.to_string();
                    anyhow::ensure!(
                        text.contains("line_items[0].total_tax")
                            && text.contains("0.45 on 6.00 is 7.50 %"),
                        "refused for another reason: {text}"
                    );
                    Ok(())
                }
                Ok(order) => anyhow::bail!("booked with VAT {:?}", order.lines[0].vat),
            },
        }]
    }

    fn signed(&self, body: &[u8], secret: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let signature = functions::shop::woo_order::sign(secret.as_bytes(), body);
        for (name, value) in [
            ("x-wc-webhook-signature", signature.as_str()),
            ("x-wc-webhook-topic", "order.updated"),
            ("x-wc-webhook-resource", "order"),
            ("x-wc-webhook-event", "updated"),
            ("x-wc-webhook-delivery-id", "contract-1"),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        headers
    }

    fn signature_header(&self) -> &'static str {
        "x-wc-webhook-signature"
    }

    async fn fail_next(&self, n: u32, status: u16, retry_after: Option<u64>) {
        let faults = self.standin.faults();
        let mut config = faults.config();
        config.fail_next = n;
        config.fail_status = status;
        config.fail_retry_after = retry_after;
        faults.set_config(config);
    }

    async fn hang_next(&self, delay: Duration) {
        self.standin.faults().hang_next(1, delay);
    }

    async fn expire_credentials(&self) -> anyhow::Result<()> {
        anyhow::bail!("WooCommerce keys do not expire")
    }

    async fn refreshes(&self) -> anyhow::Result<usize> {
        Ok(0)
    }

    async fn request_times(&self) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let from = self.counted_from.load(Ordering::SeqCst);
        self.standin
            .requests()
            .into_iter()
            .filter(|r| r.seq >= from && r.path.contains("/wp-json/wc/"))
            .map(|r| {
                DateTime::parse_from_rfc3339(&r.at)
                    .map(|at| at.with_timezone(&Utc))
                    .with_context(|| format!("request time `{}`", r.at))
            })
            .collect()
    }

    async fn clear_requests(&self) {
        let next = self
            .standin
            .requests()
            .iter()
            .map(|r| r.seq + 1)
            .max()
            .unwrap_or(0);
        self.counted_from.store(next, Ordering::SeqCst);
    }
}

contract_suite!(Woo::start());
