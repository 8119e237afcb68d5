//! Allegro (REST API) and its stand-in (`tests/allegro-standin`) under the
//! connector contract.
//!
//! Documented examples: `examples/allegro/checkout-form-spec.json` is the
//! `CheckoutForm` example of Allegro's public OpenAPI description
//! (docs/platforms/allegro.md §3.3 says where), assembled from the
//! schema's example values.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use allegro_standin::{AllegroOptions, AllegroStandin, NewOffer, NewOrder};
use anyhow::Context;
use chrono::{DateTime, Utc};
use connector_contract::{Credentials, Example, OrderView, Platform, Shown, contract_suite};
use contract::OrderStage;
use functions::shop::allegro::{
    Allegro, AllegroConfig, AllegroCredentials, AllegroSettings, MemoryTokens, TokenPair,
};
use functions::shop::{Connector, RequestGate, Secret, ShopItemId};
use rust_decimal::Decimal;

struct AllegroShop {
    standin: AllegroStandin,
    /// The seller's tokens, shared by every connector of the test (as
    /// the shop's token secret is by every Lambda instance).
    tokens: Arc<MemoryTokens>,
    counted_from: AtomicU64,
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl AllegroShop {
    async fn start() -> anyhow::Result<AllegroShop> {
        let mut options = AllegroOptions::default();
        // Commands finish on their first look.
        options.config.command_delay_ms = 0;
        let standin = AllegroStandin::start(options).await?;
        let pair = standin.issue_tokens(standin.seller_id());
        let tokens = Arc::new(MemoryTokens::new(Some(TokenPair {
            access: Secret::new(pair.access_token),
            refresh: Secret::new(pair.refresh_token.context("a refresh token")?),
        })));
        Ok(AllegroShop {
            standin,
            tokens,
            counted_from: AtomicU64::new(0),
        })
    }

    fn build(
        &self,
        secret: &str,
        tokens: Arc<MemoryTokens>,
        gate: Arc<dyn RequestGate>,
    ) -> anyhow::Result<Connector> {
        let settings = AllegroSettings {
            auth_url: self.standin.auth_url(),
            timeout: TIMEOUT,
            command_poll: Duration::from_millis(50),
            ..AllegroSettings::default()
        };
        let config = AllegroConfig {
            base_url: self.standin.api_url(),
            credentials: AllegroCredentials {
                client_id: self.standin.client_id().to_owned(),
                client_secret: Secret::new(secret),
            },
            tokens,
            settings,
        };
        Ok(Allegro::new(config)?.with_gate(gate).connector())
    }

    fn offer_of(&self, sku: &str) -> anyhow::Result<allegro_standin::Offer> {
        self.standin
            .offers_by_sku(sku)
            .into_iter()
            .next()
            .with_context(|| format!("no offer for {sku}"))
    }
}

impl Platform for AllegroShop {
    const NAME: &'static str = "allegro";
    const CREDENTIALS: Credentials = Credentials::Refreshing;

    fn connector(&self, gate: Arc<dyn RequestGate>) -> anyhow::Result<Connector> {
        self.build(self.standin.client_secret(), self.tokens.clone(), gate)
    }

    /// A seller's authorisation that was revoked: the token and its
    /// refresh are refused.
    fn connector_with_wrong_credentials(
        &self,
        gate: Arc<dyn RequestGate>,
    ) -> anyhow::Result<Connector> {
        let revoked = Arc::new(MemoryTokens::new(Some(TokenPair {
            access: Secret::new("eyJhbGciOiJub25lIn0.e30.revoked"),
            refresh: Secret::new("revoked-refresh-token"),
        })));
        self.build("wrong-client-secret", revoked, gate)
    }

    fn request_timeout(&self) -> Duration {
        TIMEOUT
    }

    async fn add_products(&self, skus: &[String]) -> anyhow::Result<()> {
        for sku in skus {
            self.standin
                .add_offer(NewOffer::new(sku, &format!("Produkt {sku}"), "10.00", 5))?;
        }
        Ok(())
    }

    async fn shown(&self, sku: &str) -> anyhow::Result<Option<Shown>> {
        Ok(self.standin.offers_by_sku(sku).first().map(|offer| Shown {
            price: offer.price,
            stock: Some(offer.available),
        }))
    }

    fn unknown_item(&self) -> ShopItemId {
        ShopItemId::product("77777777777")
    }

    async fn place_orders(&self, sku: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let offer = self.offer_of(sku)?;
        // The seller keeps the offer in stock for the buyers.
        self.standin
            .edit_offer(&offer.id, |o| o.available = o.available.max(0) + n as i64);
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.standin.place_order(NewOrder::one(&offer.id, 1))?.id);
        }
        Ok(ids)
    }

    async fn change_order(&self, id: &str) -> anyhow::Result<()> {
        self.standin
            .buyer_modify_order(id, "Proszę o fakturę na firmę")?;
        Ok(())
    }

    async fn order_view(&self, id: &str) -> anyhow::Result<OrderView> {
        let order = self.standin.order(id).context("the order")?;
        Ok(OrderView {
            status: format!("{}/{}", order.status, order.fulfillment_status),
            texts: order
                .shipments
                .iter()
                .map(|s| format!("{} {}", s.carrier_id, s.waybill))
                .chain(order.invoices.iter().map(|i| {
                    format!(
                        "invoice {} ({} bytes)",
                        i.invoice_number.as_deref().unwrap_or(""),
                        i.file_size.unwrap_or(0)
                    )
                }))
                .collect(),
        })
    }

    fn status_after(&self, stage: OrderStage) -> Option<String> {
        match stage {
            OrderStage::Accepted => Some("READY_FOR_PROCESSING/PROCESSING".into()),
            OrderStage::Invoiced => None,
            OrderStage::Shipped => Some("READY_FOR_PROCESSING/SENT".into()),
            OrderStage::Cancelled => Some("READY_FOR_PROCESSING/CANCELLED".into()),
        }
    }

    fn examples(&self) -> Vec<Example> {
        vec![Example {
            source: "Allegro REST API (OpenAPI), the CheckoutForm example",
            body: include_bytes!("../examples/allegro/checkout-form-spec.json").to_vec(),
            // Gross prices as Allegro states them; VAT is the ERP's
            // (completed from the catalogue before the order goes on).
            check: |result| {
                let order = result?;
                anyhow::ensure!(order.order_id == "29738e61-7f6a-11e8-ac45-09db60ede9d6");
                anyhow::ensure!(order.lines.len() == 1, "{:?}", order.lines);
                anyhow::ensure!(order.lines[0].sku == "AH-129834");
                anyhow::ensure!(order.lines[0].total_gross == Decimal::new(12345, 2));
                anyhow::ensure!(
                    order.total_gross == Decimal::new(13544, 2),
                    "total {}",
                    order.total_gross
                );
                Ok(())
            },
        }]
    }

    fn signed(&self, _body: &[u8], _secret: &str) -> http::HeaderMap {
        // Allegro sends no webhooks: the suite's webhook case checks that
        // the connector has no verifier.
        http::HeaderMap::new()
    }

    fn signature_header(&self) -> &'static str {
        "none"
    }

    async fn fail_next(&self, n: u32, status: u16, retry_after: Option<u64>) {
        let faults = self.standin.faults();
        let mut config = faults.config();
        config.fail_next = n;
        config.fail_status = status;
        config.path_contains = None;
        config.fail_retry_after = retry_after;
        faults.set_config(config);
    }

    async fn hang_next(&self, delay: Duration) {
        self.standin.faults().hang_next(1, delay);
    }

    async fn expire_credentials(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.standin.expire_access_tokens() > 0, "no live token");
        Ok(())
    }

    async fn refreshes(&self) -> anyhow::Result<usize> {
        Ok(self.standin.counters().refreshes as usize)
    }

    async fn request_times(&self) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let from = self.counted_from.load(Ordering::SeqCst);
        self.standin
            .requests()
            .into_iter()
            .filter(|r| r.seq >= from && !r.path.starts_with("/auth/"))
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

contract_suite!(AllegroShop::start());
