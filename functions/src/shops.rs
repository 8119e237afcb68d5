//! The shops one deployment serves: each with its platform, mapping rules,
//! rate limit and credentials.
//!
//! Non-secret settings come from `SHOPS` (JSON, the template's `ShopsConfig`
//! parameter); credentials (JSON, keyed by shop id) from the Secrets
//! Manager secret `SHOP_SECRETS_ARN` names, read once at cold start
//! ([`FunctionEnv::with_shop_secrets`]). Secrets never reach a log, an
//! environment variable or the stack.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::env::FunctionEnv;
use crate::mapping::ShopRules;
use crate::ratelimit::{RateLimiter, ShopGate};
use crate::shop::woocommerce::{WooCommerce, WooConfig};
use crate::shop::{RequestGate, Secret, ShopConnector};

#[derive(Debug, Error)]
pub enum ShopsError {
    #[error("SHOPS is not valid shop configuration: {0}")]
    Config(String),
    #[error("shop `{shop}`: {problem}")]
    Shop { shop: String, problem: String },
}

/// One shop, as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    /// Our name for the shop, e.g. "sklep-glowny" (letters, digits, - and _).
    pub id: String,
    /// "woocommerce" (others follow).
    pub platform: String,
    pub base_url: String,
    pub rules: ShopRules,
    /// Requests per second the shop's host tolerates, and the burst.
    #[serde(default = "default_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_rate")]
    pub burst: u32,
    /// What the shop shows while the agent is silent (its data is stale).
    #[serde(default)]
    pub stale_policy: StalePolicy,
    /// When an order goes to the ERP (default: paid or processing).
    #[serde(default)]
    pub order_trigger: OrderTrigger,
    /// ERP stage → shop status set when the agent reports it; merged over
    /// [`default_stage_status`]; an empty string turns a stage off.
    #[serde(default)]
    pub order_stage_status: BTreeMap<String, String>,
    /// Order meta data keys that may hold the buyer's NIP, tried in order.
    #[serde(default = "default_nip_keys")]
    pub nip_meta_keys: Vec<String>,
    /// The customer note that carries a tracking number; `{tracking}` is
    /// replaced by the number.
    #[serde(default = "default_tracking_note")]
    pub tracking_note: String,
    /// Shop statuses that close an order. When the ERP already has the
    /// order, it is taken out of Optima (a buffered document is deleted)
    /// or held for a person; and the ERP's progress never moves a closed
    /// order to another status (which would also take its stock again).
    #[serde(default = "default_closed_statuses")]
    pub order_closed_statuses: Vec<String>,
    /// The agent (its `agent_id`) that writes this shop's orders into
    /// Optima: its order commands name it and travel in its queue group,
    /// so no other agent of the stack (another company's database, one
    /// without `[orders]`) takes or holds them. Unset: whichever agent
    /// takes them, for a stack with one agent.
    #[serde(default)]
    pub orders_agent: Option<String>,
}

impl ShopConfig {
    /// The commands queue group of this shop's order commands: the
    /// writing agent's (with its other commands), else the shop's own.
    pub fn order_command_group(&self) -> String {
        match &self.orders_agent {
            Some(agent) => crate::ingest::agent_command_group(agent),
            None => self.id.clone(),
        }
    }
}

fn default_closed_statuses() -> Vec<String> {
    crate::shop::woo_order::DEFAULT_CLOSED_STATUSES
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn default_tracking_note() -> String {
    "Numer przesyłki: {tracking}".into()
}

fn default_nip_keys() -> Vec<String> {
    [
        "_billing_nip",
        "billing_nip",
        "_nip",
        "nip",
        "_billing_vat_number",
        "vat_number",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// A stage's name on the wire and in `order_stage_status`.
pub fn stage_name(stage: contract::OrderStage) -> &'static str {
    use contract::OrderStage::*;
    match stage {
        Accepted => "accepted",
        Invoiced => "invoiced",
        Shipped => "shipped",
        Cancelled => "cancelled",
    }
}

/// The shop status each ERP stage (by name) sets unless configured
/// otherwise. An accepted reservation changes nothing: the order already is
/// what the trigger made it (setting `processing` would claim an unpaid
/// order paid).
pub fn default_stage_status(stage: &str) -> Option<&'static str> {
    match stage {
        "invoiced" => Some("processing"),
        "shipped" => Some("completed"),
        "cancelled" => Some("cancelled"),
        _ => None,
    }
}

impl ShopConfig {
    /// The shop status to set for an ERP stage (by name), if any.
    pub fn status_for(&self, stage: &str) -> Option<String> {
        match self.order_stage_status.get(stage) {
            Some(status) if status.trim().is_empty() => None,
            Some(status) => Some(status.trim().to_owned()),
            None => default_stage_status(stage).map(str::to_owned),
        }
    }

    pub fn normalise_options(&self) -> crate::shop::woo_order::NormaliseOptions {
        crate::shop::woo_order::NormaliseOptions {
            nip_meta_keys: self.nip_meta_keys.clone(),
            closed_statuses: self.order_closed_statuses.clone(),
        }
    }
}

/// When a shop order becomes an ERP command, per shop (`order_trigger`):
/// `"placed"` (any live order: placed, awaiting payment, paid, completed;
/// in WooCommerce pending, on-hold, processing, completed), `"paid"` (the
/// default: paid or completed, or marked paid and not cancelled), or
/// `"status:<name>"` (exactly that platform status, e.g. `"status:on-hold"`).
/// Whatever the trigger, an order goes to the ERP once: later revisions
/// are stored but send nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderTrigger {
    Placed,
    #[default]
    Paid,
    Status(String),
}

impl OrderTrigger {
    pub fn parse(text: &str) -> Result<OrderTrigger, String> {
        match text.trim() {
            "placed" => Ok(OrderTrigger::Placed),
            "paid" => Ok(OrderTrigger::Paid),
            other => match other.strip_prefix("status:") {
                Some(status) if !status.trim().is_empty() => {
                    Ok(OrderTrigger::Status(status.trim().to_owned()))
                }
                _ => Err(format!(
                    "order_trigger `{other}`: expected placed, paid or status:<name>"
                )),
            },
        }
    }

    /// Whether an order in this state goes to the ERP: read from the
    /// neutral lifecycle, except `status:<name>`, which is the platform's own.
    pub fn passes(&self, order: &contract::Order) -> bool {
        use contract::OrderState::*;
        match self {
            OrderTrigger::Placed => {
                matches!(order.state, Placed | AwaitingPayment | Paid | Completed)
            }
            OrderTrigger::Paid => {
                matches!(order.state, Paid | Completed) || (order.paid && order.state != Cancelled)
            }
            OrderTrigger::Status(status) => order.status == *status,
        }
    }
}

impl<'de> Deserialize<'de> for OrderTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OrderTrigger::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_rate() -> u32 {
    2
}

/// What to do with a shop's stock while the ERP's data is stale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum StalePolicy {
    /// Leave the shop as it is.
    #[default]
    Hold,
    /// Show 0 for every product with at most `threshold` in stock, so the
    /// last units cannot be sold twice; restored when the agent is back.
    ZeroLowStock { threshold: i64 },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopSecret {
    consumer_key: String,
    consumer_secret: Secret,
    /// The secret of the shop's order webhooks (the `webhook` function
    /// verifies their signatures with it).
    #[serde(default)]
    webhook_secret: Option<Secret>,
}

/// Every configured shop.
#[derive(Debug, Clone, Default)]
pub struct Shops {
    pub shops: Vec<ShopConfig>,
    secrets: BTreeMap<String, (String, Secret)>,
    webhook_secrets: BTreeMap<String, Secret>,
}

impl Shops {
    /// Reads `SHOPS` and, when `with_secrets`, the credentials [`FunctionEnv::with_shop_secrets`] read.
    pub fn from_env(env: &FunctionEnv, with_secrets: bool) -> Result<Shops, ShopsError> {
        let text = env.get("SHOPS").unwrap_or("[]");
        let shops: Vec<ShopConfig> =
            serde_json::from_str(text).map_err(|e| ShopsError::Config(e.to_string()))?;
        for shop in &shops {
            let problem = |p: String| ShopsError::Shop {
                shop: shop.id.clone(),
                problem: p,
            };
            if shop.id.is_empty()
                || !shop
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(problem("the id must be letters, digits, - and _".into()));
            }
            if shop.platform != "woocommerce" {
                return Err(problem(format!(
                    "platform `{}` is not supported (woocommerce is)",
                    shop.platform
                )));
            }
            if shop.requests_per_second == 0 || shop.burst == 0 {
                return Err(problem(
                    "requests_per_second and burst must be at least 1".into(),
                ));
            }
            shop.rules.validate().map_err(|e| problem(e.to_string()))?;
            if let Some(key) = shop
                .order_stage_status
                .keys()
                .find(|k| !["accepted", "invoiced", "shipped", "cancelled"].contains(&k.as_str()))
            {
                return Err(problem(format!(
                    "order_stage_status: `{key}` is not a stage (accepted, invoiced, shipped, cancelled)"
                )));
            }
        }
        let mut secrets = BTreeMap::new();
        let mut webhook_secrets = BTreeMap::new();
        if with_secrets {
            let text = env
                .shop_secrets()
                .map(secrecy::ExposeSecret::expose_secret)
                .unwrap_or("{}");
            let parsed: BTreeMap<String, ShopSecret> = serde_json::from_str(text)
                // The text may hold secrets: never echo it.
                .map_err(|_| ShopsError::Config("the shop credentials secret is not a JSON object of {consumer_key, consumer_secret, webhook_secret} per shop".into()))?;
            for shop in &shops {
                let secret = parsed.get(&shop.id).ok_or_else(|| ShopsError::Shop {
                    shop: shop.id.clone(),
                    problem: "no credentials in the shop credentials secret".into(),
                })?;
                secrets.insert(
                    shop.id.clone(),
                    (secret.consumer_key.clone(), secret.consumer_secret.clone()),
                );
                if let Some(webhook) = &secret.webhook_secret
                    && !webhook.expose().is_empty()
                {
                    webhook_secrets.insert(shop.id.clone(), webhook.clone());
                }
            }
        }
        Ok(Shops {
            shops,
            secrets,
            webhook_secrets,
        })
    }

    /// The secret a shop's webhooks are signed with, if configured.
    pub fn webhook_secret(&self, id: &str) -> Option<&Secret> {
        self.webhook_secrets.get(id)
    }

    pub fn get(&self, id: &str) -> Option<&ShopConfig> {
        self.shops.iter().find(|s| s.id == id)
    }

    /// Every shop's connector, each request paced by the shop's shared
    /// bucket in `limiter` (waiting at most `max_wait` for a token).
    pub fn connectors(
        &self,
        limiter: &RateLimiter,
        max_wait: Duration,
    ) -> Result<HashMap<String, Arc<dyn ShopConnector>>, ShopsError> {
        self.shops
            .iter()
            .map(|shop| {
                let gate = ShopGate::new(
                    limiter.clone(),
                    shop.id.clone(),
                    shop.requests_per_second,
                    shop.burst,
                    max_wait,
                );
                Ok((shop.id.clone(), self.connector(&shop.id, Arc::new(gate))?))
            })
            .collect()
    }

    /// The connector for a shop (needs its credentials); every request it
    /// sends takes a token from `gate` first.
    pub fn connector(
        &self,
        id: &str,
        gate: Arc<dyn RequestGate>,
    ) -> Result<Arc<dyn ShopConnector>, ShopsError> {
        let shop = self.get(id).ok_or_else(|| ShopsError::Shop {
            shop: id.to_owned(),
            problem: "not configured".into(),
        })?;
        let (key, secret) = self.secrets.get(id).ok_or_else(|| ShopsError::Shop {
            shop: id.to_owned(),
            problem: "no credentials loaded".into(),
        })?;
        let connector = WooCommerce::new(WooConfig::new(
            shop.base_url.clone(),
            key.clone(),
            secret.clone(),
        ))
        .map_err(|e| ShopsError::Shop {
            shop: id.to_owned(),
            problem: e.to_string(),
        })?
        .with_gate(gate);
        Ok(Arc::new(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;

    /// Every status WooCommerce core knows, and a plugin's own.
    const STATUSES: [&str; 10] = [
        "pending",
        "on-hold",
        "processing",
        "completed",
        "cancelled",
        "refunded",
        "failed",
        "checkout-draft",
        "trash",
        "awaiting-shipment",
    ];

    fn order(status: &str, paid: bool) -> contract::Order {
        let at = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).unwrap();
        contract::Order {
            shop: "sklep".into(),
            order_id: "1".into(),
            number: "1".into(),
            revision: at,
            placed_at: at,
            status: status.into(),
            state: crate::shop::woo_order::state_of(status, &[]),
            paid,
            currency: "PLN".into(),
            payment_method: "bacs".into(),
            buyer: contract::Buyer::default(),
            lines: Vec::new(),
            shipping: None,
            discount_gross: Decimal::ZERO,
            total_net: Decimal::ZERO,
            total_vat: Decimal::ZERO,
            total_gross: Decimal::ZERO,
            customer_note: None,
        }
    }

    /// The (status, paid) pairs that send a command under `trigger`.
    fn sending(trigger: &OrderTrigger) -> Vec<(&'static str, bool)> {
        let mut out = Vec::new();
        for status in STATUSES {
            for paid in [false, true] {
                if trigger.passes(&order(status, paid)) {
                    out.push((status, paid));
                }
            }
        }
        out
    }

    fn trigger_of(json: &str) -> OrderTrigger {
        let shop: serde_json::Value = serde_json::json!({
            "id": "sklep",
            "platform": "woocommerce",
            "base_url": "https://sklep.example.pl",
            "rules": {"price_list": "Detaliczna", "warehouses": ["MAG"]},
        });
        let mut shop = shop;
        if !json.is_empty() {
            shop["order_trigger"] = serde_json::Value::String(json.into());
        }
        let config: ShopConfig = serde_json::from_value(shop).expect("a valid shop");
        config.order_trigger
    }

    #[test]
    fn paid_is_the_default_trigger() {
        assert_eq!(trigger_of(""), OrderTrigger::Paid);
        assert_eq!(trigger_of("paid"), OrderTrigger::Paid);
    }

    #[test]
    fn paid_sends_paid_or_processing_or_completed_orders_that_are_still_live() {
        assert_eq!(
            sending(&OrderTrigger::Paid),
            vec![
                // A paid order still in pending (payment_complete not yet run).
                ("pending", true),
                // A bank transfer marked paid while on hold.
                ("on-hold", true),
                // Cash on delivery: processing at once, unpaid.
                ("processing", false),
                ("processing", true),
                ("completed", false),
                ("completed", true),
                ("checkout-draft", true),
                // A plugin's own status, once paid.
                ("awaiting-shipment", true),
            ]
        );
        // Dead orders never go, paid or not.
        for status in ["cancelled", "refunded", "failed", "trash"] {
            assert!(!OrderTrigger::Paid.passes(&order(status, true)), "{status}");
        }
        // An unpaid bank transfer waits.
        assert!(!OrderTrigger::Paid.passes(&order("on-hold", false)));
        assert!(!OrderTrigger::Paid.passes(&order("pending", false)));
    }

    #[test]
    fn placed_sends_every_live_order_paid_or_not() {
        let trigger = trigger_of("placed");
        assert_eq!(trigger, OrderTrigger::Placed);
        assert_eq!(
            sending(&trigger),
            vec![
                ("pending", false),
                ("pending", true),
                ("on-hold", false),
                ("on-hold", true),
                ("processing", false),
                ("processing", true),
                ("completed", false),
                ("completed", true),
            ]
        );
        // Not a draft, a plugin status, or a dead order, even paid.
        for status in [
            "checkout-draft",
            "awaiting-shipment",
            "cancelled",
            "refunded",
            "failed",
            "trash",
        ] {
            assert!(!trigger.passes(&order(status, true)), "{status}");
        }
    }

    #[test]
    fn a_status_trigger_sends_exactly_that_status_paid_or_not() {
        let trigger = trigger_of(" status:on-hold ");
        assert_eq!(trigger, OrderTrigger::Status("on-hold".into()));
        assert_eq!(
            sending(&trigger),
            vec![("on-hold", false), ("on-hold", true)]
        );
        // Not even processing or completed: exactly the configured status.
        assert!(!trigger.passes(&order("processing", true)));
        assert!(!trigger.passes(&order("completed", true)));

        let custom = trigger_of("status:awaiting-shipment");
        assert_eq!(
            sending(&custom),
            vec![("awaiting-shipment", false), ("awaiting-shipment", true)]
        );
        let completed = trigger_of("status:completed");
        assert_eq!(
            sending(&completed),
            vec![("completed", false), ("completed", true)]
        );
    }

    #[test]
    fn the_trigger_reads_the_neutral_state_whatever_the_platform_calls_it() {
        use contract::OrderState;
        let mut allegro = order("READY_FOR_PROCESSING", false);
        allegro.state = OrderState::Paid;
        assert!(OrderTrigger::Paid.passes(&allegro));
        assert!(OrderTrigger::Placed.passes(&allegro));
        allegro.state = OrderState::AwaitingPayment;
        assert!(!OrderTrigger::Paid.passes(&allegro));
        assert!(OrderTrigger::Placed.passes(&allegro));
        allegro.state = OrderState::Cancelled;
        allegro.paid = true;
        assert!(!OrderTrigger::Paid.passes(&allegro));
        assert!(!OrderTrigger::Placed.passes(&allegro));
        // `status:` is the platform's own name.
        assert!(OrderTrigger::Status("READY_FOR_PROCESSING".into()).passes(&allegro));
    }

    #[test]
    fn a_configured_closing_status_cancels_and_the_defaults_give_way_to_it() {
        use crate::shop::woo_order::state_of;
        use contract::OrderState;
        assert_eq!(state_of("refunded", &[]), OrderState::Cancelled);
        let closed = vec!["cancelled".to_owned(), "zwrot".to_owned()];
        assert_eq!(state_of("zwrot", &closed), OrderState::Cancelled);
        // Not in the configured list: refunded is then left to a person.
        assert_eq!(state_of("refunded", &closed), OrderState::Other);
        assert_eq!(state_of("on-hold", &closed), OrderState::AwaitingPayment);
        assert_eq!(state_of("processing", &closed), OrderState::Paid);
        assert_eq!(state_of("completed", &closed), OrderState::Completed);
    }

    #[test]
    fn an_unknown_trigger_is_refused_at_start() {
        for text in ["", "status:", "status: ", "paid ", "on-hold", "Paid"] {
            let parsed = OrderTrigger::parse(text);
            // "paid " trims to paid; the rest are errors.
            if text.trim() == "paid" {
                assert_eq!(parsed, Ok(OrderTrigger::Paid));
            } else {
                assert!(parsed.is_err(), "`{text}` should be refused: {parsed:?}");
            }
        }
        let shop = serde_json::json!({
            "id": "sklep", "platform": "woocommerce", "base_url": "https://sklep.example.pl",
            "rules": {"price_list": "Detaliczna", "warehouses": ["MAG"]},
            "order_trigger": "when-paid",
        });
        let err = serde_json::from_value::<ShopConfig>(shop).unwrap_err();
        assert!(err.to_string().contains("placed, paid or status:"), "{err}");
    }
}
