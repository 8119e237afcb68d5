//! The shops one deployment serves: each with its platform and the
//! platform's settings, mapping rules, rate limits and credentials.
//!
//! Non-secret settings come from `SHOPS` (JSON, the template's `ShopsConfig`
//! parameter); credentials (JSON, keyed by shop id) from the Secrets
//! Manager secret `SHOP_SECRETS_ARN` names, read at cold start
//! ([`FunctionEnv::with_shop_secrets`]) and again when the console changes
//! it ([`crate::shop_settings::ShopsSource`]). Secrets never reach a log,
//! an environment variable or the stack.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

use crate::aws::Clients;
use crate::env::FunctionEnv;
use crate::erp_mapping::ErpMapping;
use crate::mapping::ShopRules;
use crate::ratelimit::{RateLimiter, ShopGate};
use crate::shop::allegro::{Allegro, AllegroConfig, AllegroCredentials, AllegroSettings};
use crate::shop::shoper::{Shoper, ShoperConfig, ShoperCredentials, ShoperSettings};
use crate::shop::tokens::TokenStore;
use crate::shop::woocommerce::{WooCommerce, WooConfig, WooCredentials, WooSettings};
use crate::shop::{Connector, REQUESTS, RateLimit, RequestGate, Secret};
use crate::token_secrets::SecretTokens;

#[derive(Debug, Error)]
pub enum ShopsError {
    #[error("SHOPS is not valid shop configuration: {0}")]
    Config(String),
    #[error("shop `{shop}`: {problem}")]
    Shop { shop: String, problem: String },
}

/// One shop, as configured: what every platform has, and its platform's
/// own settings ([`PlatformSettings`]).
///
/// On the wire (`SHOPS`, a JSON list): `id`, `platform`, `base_url`,
/// `rules`, optional `rate_limits`, `stale_policy`, `order_trigger`,
/// `orders_agent`, `erp_mapping` ([`ErpMapping`]), and `settings` (the
/// platform's, each with a default).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ShopWire")]
pub struct ShopConfig {
    /// Our name for the shop, e.g. "sklep-glowny" (letters, digits, - and _).
    pub id: String,
    pub base_url: String,
    pub rules: ShopRules,
    /// Each of the platform's named limits ([`crate::shop::REQUESTS`] and
    /// the platform's others), the platform's defaults merged with the
    /// configured `rate_limits`.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// What the shop shows while the agent is silent (its data is stale).
    pub stale_policy: StalePolicy,
    /// When an order goes to the ERP (default: paid).
    pub order_trigger: OrderTrigger,
    /// The agent (its `agent_id`) that writes this shop's orders into
    /// Optima: its order commands name it and travel in its queue group,
    /// so no other agent of the stack (another company's database, one
    /// without `[orders]`) takes or holds them. Unset: whichever agent
    /// takes them, for a stack with one agent.
    pub orders_agent: Option<String>,
    /// The shop's payment and delivery methods → Optima's, written into
    /// its order commands (empty: the agent's `[orders]` mapping decides).
    pub erp_mapping: ErpMapping,
    /// The platform and its own settings.
    pub platform: PlatformSettings,
}

/// The shop configuration as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopWire {
    id: String,
    /// "woocommerce".
    platform: String,
    base_url: String,
    rules: ShopRules,
    #[serde(default)]
    rate_limits: BTreeMap<String, RateLimit>,
    #[serde(default)]
    stale_policy: StalePolicy,
    #[serde(default)]
    order_trigger: OrderTrigger,
    #[serde(default)]
    orders_agent: Option<String>,
    #[serde(default)]
    erp_mapping: ErpMapping,
    #[serde(default)]
    settings: Option<serde_json::Value>,
}

/// Each platform's own settings: the one place a platform is named in
/// the configuration.
#[derive(Debug, Clone)]
pub enum PlatformSettings {
    WooCommerce(WooSettings),
    Allegro(AllegroSettings),
    Shoper(ShoperSettings),
}

/// Each platform's credentials, as the shop credentials secret holds
/// them (JSON, keyed by shop id).
#[derive(Debug, Clone)]
pub enum PlatformCredentials {
    WooCommerce(WooCredentials),
    Allegro(AllegroCredentials),
    Shoper(ShoperCredentials),
}

/// The fields of a platform's entry in the credentials secret (the
/// console's Shops page sets them, write-only; it never shows them).
pub fn credential_fields(platform: &str) -> &'static [&'static str] {
    match platform {
        "woocommerce" => &["consumer_key", "consumer_secret", "webhook_secret"],
        "allegro" => &["client_id", "client_secret"],
        "shoper" => &["login", "password", "webhook_secret"],
        _ => &[],
    }
}

impl PlatformSettings {
    /// The platform's name, as `platform` says it.
    pub fn name(&self) -> &'static str {
        match self {
            PlatformSettings::WooCommerce(_) => "woocommerce",
            PlatformSettings::Allegro(_) => "allegro",
            PlatformSettings::Shoper(_) => "shoper",
        }
    }

    /// The platform's settings read from `settings` (absent: the defaults).
    fn read(platform: &str, settings: Option<serde_json::Value>) -> Result<Self, String> {
        let settings = settings.unwrap_or_else(|| serde_json::json!({}));
        match platform {
            "woocommerce" => {
                let woo: WooSettings =
                    serde_json::from_value(settings).map_err(|e| format!("settings: {e}"))?;
                if let Some(problem) = woo.problem() {
                    return Err(format!("settings: {problem}"));
                }
                Ok(PlatformSettings::WooCommerce(woo))
            }
            "allegro" => {
                let allegro: AllegroSettings =
                    serde_json::from_value(settings).map_err(|e| format!("settings: {e}"))?;
                if let Some(problem) = allegro.problem() {
                    return Err(format!("settings: {problem}"));
                }
                Ok(PlatformSettings::Allegro(allegro))
            }
            "shoper" => {
                let shoper: ShoperSettings =
                    serde_json::from_value(settings).map_err(|e| format!("settings: {e}"))?;
                if let Some(problem) = shoper.problem() {
                    return Err(format!("settings: {problem}"));
                }
                Ok(PlatformSettings::Shoper(shoper))
            }
            other => Err(format!(
                "platform `{other}` is not supported (woocommerce, allegro and shoper are)"
            )),
        }
    }

    /// The platform's limits and their defaults: every request costs one
    /// [`crate::shop::REQUESTS`]. A WooCommerce host has none of its own
    /// (core WooCommerce has no limiter): two a second is kind to shared
    /// hosting.
    fn default_limits(&self) -> BTreeMap<String, RateLimit> {
        match self {
            PlatformSettings::WooCommerce(_) => {
                BTreeMap::from([(REQUESTS.to_owned(), RateLimit::per_second(2))])
            }
            // Allegro: 9,000 requests a minute per application (shared by
            // every seller of it) and 9,000 offer changes a minute per seller.
            PlatformSettings::Allegro(_) => BTreeMap::from([
                (REQUESTS.to_owned(), RateLimit::per_minute(9_000)),
                (
                    crate::shop::allegro::OFFER_CHANGES.to_owned(),
                    RateLimit::per_minute(9_000),
                ),
            ]),
            // Shoper: a bucket of 10 requests that empties by 2 a second
            // (docs/platforms/shoper.md §8).
            PlatformSettings::Shoper(_) => {
                BTreeMap::from([(REQUESTS.to_owned(), RateLimit::per_second(2).with_burst(10))])
            }
        }
    }

    /// The credentials in the shape this platform's are (never echoed:
    /// the text holds secrets).
    fn credentials(&self, value: serde_json::Value) -> Result<PlatformCredentials, String> {
        match self {
            PlatformSettings::WooCommerce(_) => serde_json::from_value(value)
                .map(PlatformCredentials::WooCommerce)
                .map_err(|_| {
                    "the credentials are not {consumer_key, consumer_secret, webhook_secret}"
                        .to_owned()
                }),
            PlatformSettings::Allegro(_) => serde_json::from_value(value)
                .map(PlatformCredentials::Allegro)
                .map_err(|_| "the credentials are not {client_id, client_secret}".to_owned()),
            PlatformSettings::Shoper(_) => serde_json::from_value(value)
                .map(PlatformCredentials::Shoper)
                .map_err(|_| {
                    "the credentials are not {login, password, webhook_secret}".to_owned()
                }),
        }
    }

    /// The connector of a shop of this platform.
    fn connector(
        &self,
        shop: &ShopConfig,
        credentials: &PlatformCredentials,
        gate: Option<Arc<dyn RequestGate>>,
        tokens: Option<Arc<dyn TokenStore>>,
    ) -> Result<Connector, String> {
        match (self, credentials) {
            (PlatformSettings::WooCommerce(settings), PlatformCredentials::WooCommerce(creds)) => {
                let config = WooConfig {
                    base_url: shop.base_url.clone(),
                    consumer_key: creds.consumer_key.clone(),
                    consumer_secret: creds.consumer_secret.clone(),
                    settings: settings.clone(),
                };
                let woo = WooCommerce::new(config).map_err(|e| e.to_string())?;
                Ok(match gate {
                    Some(gate) => woo.with_gate(gate),
                    None => woo,
                }
                .connector())
            }
            (PlatformSettings::Allegro(settings), PlatformCredentials::Allegro(creds)) => {
                // A function that never calls the shop (the webhook) has no
                // store; one that does and lacks it says so on its first call.
                let tokens = tokens.unwrap_or_else(|| Arc::new(crate::shop::tokens::NoTokenStore));
                let allegro = Allegro::new(AllegroConfig {
                    base_url: shop.base_url.clone(),
                    credentials: creds.clone(),
                    tokens,
                    settings: settings.clone(),
                })
                .map_err(|e| e.to_string())?;
                Ok(match gate {
                    Some(gate) => allegro.with_gate(gate),
                    None => allegro,
                }
                .connector())
            }
            (PlatformSettings::Shoper(settings), PlatformCredentials::Shoper(creds)) => {
                let shoper = Shoper::new(ShoperConfig {
                    base_url: shop.base_url.clone(),
                    credentials: creds.clone(),
                    settings: settings.clone(),
                })
                .map_err(|e| e.to_string())?;
                Ok(match gate {
                    Some(gate) => shoper.with_gate(gate),
                    None => shoper,
                }
                .connector())
            }
            _ => Err(format!("the credentials are not {}'s", self.name())),
        }
    }

    /// Limits the platform counts per application rather than per shop,
    /// with their shared bucket: Allegro's `requests` (9,000 a minute for
    /// every seller of one client id together).
    fn shared_buckets(credentials: &PlatformCredentials) -> Vec<(&'static str, String)> {
        match credentials {
            PlatformCredentials::Allegro(creds) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(creds.client_id.trim().as_bytes());
                vec![(
                    REQUESTS,
                    format!("allegro-app#{}", &hex::encode(digest)[..16]),
                )]
            }
            PlatformCredentials::WooCommerce(_) | PlatformCredentials::Shoper(_) => Vec::new(),
        }
    }

    /// The secret the shop's webhooks are signed with, if configured.
    fn webhook_secret(credentials: &PlatformCredentials) -> Option<&Secret> {
        match credentials {
            PlatformCredentials::WooCommerce(creds) => creds
                .webhook_secret
                .as_ref()
                .filter(|secret| !secret.expose().is_empty()),
            PlatformCredentials::Allegro(_) => None,
            PlatformCredentials::Shoper(creds) => creds
                .webhook_secret
                .as_ref()
                .filter(|secret| !secret.expose().is_empty()),
        }
    }
}

impl TryFrom<ShopWire> for ShopConfig {
    type Error = String;

    fn try_from(wire: ShopWire) -> Result<Self, String> {
        let platform = PlatformSettings::read(&wire.platform, wire.settings)?;
        let mut rate_limits = platform.default_limits();
        for (name, limit) in wire.rate_limits {
            if !rate_limits.contains_key(&name) {
                return Err(format!(
                    "rate_limits: `{name}` is not a limit of {} ({})",
                    platform.name(),
                    rate_limits.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if let Some(problem) = limit.problem() {
                return Err(format!("rate_limits.{name}: {problem}"));
            }
            rate_limits.insert(name, limit);
        }
        if let Some(problem) = wire.erp_mapping.problem() {
            return Err(format!("erp_mapping: {problem}"));
        }
        Ok(ShopConfig {
            id: wire.id,
            base_url: wire.base_url,
            rules: wire.rules,
            rate_limits,
            stale_policy: wire.stale_policy,
            order_trigger: wire.order_trigger,
            orders_agent: wire.orders_agent,
            erp_mapping: wire.erp_mapping,
            platform,
        })
    }
}

/// Each shop's credentials out of the credentials secret's text (JSON,
/// keyed by shop id; none: an empty object). The text may hold secrets:
/// no problem echoes it.
fn read_credentials(
    shops: &[ShopConfig],
    secret: Option<&SecretString>,
) -> Result<BTreeMap<String, PlatformCredentials>, ShopsError> {
    let text = secret.map(ExposeSecret::expose_secret).unwrap_or("{}");
    let mut parsed: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| {
            ShopsError::Config(
                "the shop credentials secret is not a JSON object of credentials per shop".into(),
            )
        })?;
    let mut credentials = BTreeMap::new();
    for shop in shops {
        let problem = |p: String| ShopsError::Shop {
            shop: shop.id.clone(),
            problem: p,
        };
        let value = parsed
            .remove(&shop.id)
            .ok_or_else(|| problem("no credentials in the shop credentials secret".into()))?;
        credentials.insert(
            shop.id.clone(),
            shop.platform.credentials(value).map_err(problem)?,
        );
    }
    Ok(credentials)
}

/// One shop's entry of `SHOPS` read and checked: what the deploy and the
/// console's Shops page both take.
pub fn read_shop(entry: serde_json::Value) -> Result<ShopConfig, ShopsError> {
    let id = entry
        .get("id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let shop: ShopConfig = serde_json::from_value(entry).map_err(|e| match id.is_empty() {
        true => ShopsError::Config(e.to_string()),
        false => ShopsError::Shop {
            shop: id.clone(),
            problem: e.to_string(),
        },
    })?;
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
    shop.rules.validate().map_err(|e| problem(e.to_string()))?;
    Ok(shop)
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

/// The stage of a name [`stage_name`] gives.
pub fn stage_named(name: &str) -> Option<contract::OrderStage> {
    use contract::OrderStage::*;
    [Accepted, Invoiced, Shipped, Cancelled]
        .into_iter()
        .find(|stage| stage_name(*stage) == name)
}

/// A stage's name on the wire and in a platform's stage mapping.
pub fn stage_name(stage: contract::OrderStage) -> &'static str {
    use contract::OrderStage::*;
    match stage {
        Accepted => "accepted",
        Invoiced => "invoiced",
        Shipped => "shipped",
        Cancelled => "cancelled",
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

/// Every configured shop.
#[derive(Debug, Clone, Default)]
pub struct Shops {
    pub shops: Vec<ShopConfig>,
    credentials: BTreeMap<String, PlatformCredentials>,
    tokens: Option<TokenStores>,
    /// Each shop's entry as written (`SHOPS`, or the console's stored
    /// settings that replaced it: [`Shops::with_settings`]).
    written: BTreeMap<String, serde_json::Value>,
}

/// Where platforms whose tokens rotate (Allegro) keep them.
#[derive(Clone)]
pub enum TokenStores {
    /// Each shop's own secret `<prefix>-token-<shop>`, the refresh lease
    /// in the state table ([`SecretTokens`]).
    Secrets {
        clients: Clients,
        table: String,
        prefix: String,
    },
    /// A store per shop, given (tests).
    Given(BTreeMap<String, Arc<dyn TokenStore>>),
}

impl std::fmt::Debug for TokenStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenStores::Secrets { prefix, .. } => {
                write!(f, "TokenStores::Secrets({prefix}-token-*)")
            }
            TokenStores::Given(stores) => write!(f, "TokenStores::Given({:?})", stores.keys()),
        }
    }
}

impl TokenStores {
    /// The cloud's stores, when the function has `TOKEN_SECRET_PREFIX`.
    pub fn from_env(env: &FunctionEnv, clients: &Clients) -> Option<TokenStores> {
        Some(TokenStores::Secrets {
            clients: clients.clone(),
            table: env.get("STATE_TABLE")?.to_owned(),
            prefix: env.get("TOKEN_SECRET_PREFIX")?.to_owned(),
        })
    }

    fn store(&self, shop: &str) -> Option<Arc<dyn TokenStore>> {
        match self {
            TokenStores::Secrets {
                clients,
                table,
                prefix,
            } => Some(Arc::new(SecretTokens::new(
                clients.clone(),
                table,
                prefix,
                shop,
            ))),
            TokenStores::Given(stores) => stores.get(shop).cloned(),
        }
    }
}

impl Shops {
    /// Reads `SHOPS` and, when `with_secrets`, the credentials [`FunctionEnv::with_shop_secrets`] read.
    pub fn from_env(env: &FunctionEnv, with_secrets: bool) -> Result<Shops, ShopsError> {
        let text = env.get("SHOPS").unwrap_or("[]");
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| ShopsError::Config(e.to_string()))?;
        let mut shops = Vec::new();
        let mut written = BTreeMap::new();
        for entry in entries {
            let shop = read_shop(entry.clone())?;
            written.insert(shop.id.clone(), entry);
            shops.push(shop);
        }
        let credentials = match with_secrets {
            true => read_credentials(&shops, env.shop_secrets())?,
            false => BTreeMap::new(),
        };
        Ok(Shops {
            shops,
            credentials,
            tokens: None,
            written,
        })
    }

    /// A shop's entry as written: the JSON object its settings are.
    pub fn written(&self, id: &str) -> Option<&serde_json::Value> {
        self.written.get(id)
    }

    /// Whether both are the same shops as written (every entry equal).
    pub fn same_entries(&self, other: &Shops) -> bool {
        self.written == other.written
    }

    /// These shops with `other`'s credentials.
    pub fn with_credentials_of(&self, other: &Shops) -> Shops {
        let mut shops = self.clone();
        shops.credentials = other.credentials.clone();
        shops
    }

    /// Whether these shops were read with their credentials.
    pub fn holds_credentials(&self) -> bool {
        !self.credentials.is_empty()
    }

    /// These shops with the credentials `secret` (the credentials secret's
    /// text, read again after the console changed it) holds in place of
    /// theirs; refused, never echoing it, when a shop's are missing or not
    /// in its platform's shape.
    pub fn with_credentials(&self, secret: &SecretString) -> Result<Shops, ShopsError> {
        let mut shops = self.clone();
        shops.credentials = read_credentials(&self.shops, Some(secret))?;
        Ok(shops)
    }

    /// These shops with the `stored` settings (by shop id, each a whole
    /// entry) in place of their entries; the credentials stay. An entry
    /// that does not read, or names another id or platform, leaves the
    /// shop as it was: the problems come back to be logged.
    pub fn with_settings(
        &self,
        stored: &BTreeMap<String, serde_json::Value>,
    ) -> (Shops, Vec<ShopsError>) {
        let mut shops = self.clone();
        let mut problems = Vec::new();
        for (id, entry) in stored {
            let Some(slot) = shops.shops.iter_mut().find(|s| s.id == *id) else {
                continue;
            };
            match read_shop(entry.clone()) {
                Ok(shop) if shop.id == slot.id && shop.platform.name() == slot.platform.name() => {
                    *slot = shop;
                    shops.written.insert(id.clone(), entry.clone());
                }
                Ok(_) => problems.push(ShopsError::Shop {
                    shop: id.clone(),
                    problem: "the stored settings name another id or platform".into(),
                }),
                Err(err) => problems.push(err),
            }
        }
        (shops, problems)
    }

    /// Whether `credentials` (one shop's entry of the credentials secret)
    /// are in the shape the shop's platform takes; the problem never
    /// echoes them.
    pub fn check_credentials(
        shop: &ShopConfig,
        credentials: serde_json::Value,
    ) -> Result<(), String> {
        shop.platform.credentials(credentials).map(|_| ())
    }

    /// Where shops whose tokens rotate keep them.
    pub fn with_token_stores(mut self, tokens: Option<TokenStores>) -> Self {
        self.tokens = tokens;
        self
    }

    /// The secret a shop's webhooks are signed with, if configured.
    pub fn webhook_secret(&self, id: &str) -> Option<&Secret> {
        self.credentials
            .get(id)
            .and_then(PlatformSettings::webhook_secret)
    }

    pub fn get(&self, id: &str) -> Option<&ShopConfig> {
        self.shops.iter().find(|s| s.id == id)
    }

    /// Every shop's connector, each request paced by the shop's shared
    /// buckets in `limiter` (waiting at most `max_wait` for a token).
    pub fn connectors(
        &self,
        limiter: &RateLimiter,
        max_wait: Duration,
    ) -> Result<HashMap<String, Connector>, ShopsError> {
        self.shops
            .iter()
            .map(|shop| {
                let gate = self.gate(shop, limiter, max_wait);
                Ok((
                    shop.id.clone(),
                    self.connector(&shop.id, Some(Arc::new(gate)))?,
                ))
            })
            .collect()
    }

    /// The gate a shop's requests pass: its own buckets, and the buckets
    /// of the limits its platform counts per application.
    pub fn gate(&self, shop: &ShopConfig, limiter: &RateLimiter, max_wait: Duration) -> ShopGate {
        let gate = ShopGate::new(
            limiter.clone(),
            shop.id.clone(),
            shop.rate_limits.clone(),
            max_wait,
        );
        let shared = self
            .credentials
            .get(&shop.id)
            .map(PlatformSettings::shared_buckets)
            .unwrap_or_default();
        shared
            .into_iter()
            .fold(gate, |gate, (limit, key)| gate.sharing(limit, key))
    }

    /// The connector for a shop (needs its credentials); with a `gate`,
    /// every request it sends asks the gate first. Without one (the
    /// webhook, which sends none) nothing is paced.
    pub fn connector(
        &self,
        id: &str,
        gate: Option<Arc<dyn RequestGate>>,
    ) -> Result<Connector, ShopsError> {
        let problem = |p: &str| ShopsError::Shop {
            shop: id.to_owned(),
            problem: p.to_owned(),
        };
        let shop = self.get(id).ok_or_else(|| problem("not configured"))?;
        let credentials = self
            .credentials
            .get(id)
            .ok_or_else(|| problem("no credentials loaded"))?;
        let tokens = self.tokens.as_ref().and_then(|t| t.store(id));
        shop.platform
            .connector(shop, credentials, gate, tokens)
            .map_err(|p| problem(&p))
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
            payment_form: None,
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

    fn shop_json(extra: serde_json::Value) -> serde_json::Value {
        let mut shop = serde_json::json!({
            "id": "sklep", "platform": "woocommerce", "base_url": "https://sklep.example.pl",
            "rules": {"price_list": "Detaliczna", "warehouses": ["MAG"]},
        });
        if let (Some(shop), Some(extra)) = (shop.as_object_mut(), extra.as_object()) {
            shop.extend(extra.clone());
        }
        shop
    }

    #[test]
    fn an_allegro_shop_reads_its_settings_limits_and_credentials() {
        let shop: ShopConfig = serde_json::from_value(shop_json(serde_json::json!({
            "platform": "allegro",
            "base_url": "https://api.allegro.pl",
            "settings": {"order_stage_status": {"invoiced": "PROCESSING"}, "delivery_vat_percent": 8},
        })))
        .expect("an Allegro shop");
        let PlatformSettings::Allegro(allegro) = &shop.platform else {
            panic!("an Allegro shop")
        };
        assert_eq!(
            allegro.status_for("invoiced").as_deref(),
            Some("PROCESSING")
        );
        assert_eq!(allegro.status_for("shipped").as_deref(), Some("SENT"));
        assert_eq!(shop.rate_limits[REQUESTS], RateLimit::per_minute(9_000));
        assert_eq!(
            shop.rate_limits[crate::shop::allegro::OFFER_CHANGES],
            RateLimit::per_minute(9_000)
        );
        let err = serde_json::from_value::<ShopConfig>(shop_json(serde_json::json!({
            "platform": "allegro",
            "settings": {"order_stage_status": {"shipped": "RETURNED"}},
        })))
        .expect_err("Allegro sets RETURNED itself");
        assert!(err.to_string().contains("RETURNED"), "{err}");

        let mut env = FunctionEnv::default();
        env.set(
            "SHOPS",
            serde_json::json!([shop_json(serde_json::json!({
                "platform": "allegro",
                "base_url": "https://api.allegro.pl",
            }))])
            .to_string(),
        );
        env.set_shop_secrets(
            r#"{"sklep": {"consumer_key": "ck", "consumer_secret": "cs"}}"#.to_owned(),
        );
        let err = Shops::from_env(&env, true).expect_err("WooCommerce keys for an Allegro shop");
        assert!(
            err.to_string().contains("client_id, client_secret"),
            "{err}"
        );
        env.set_shop_secrets(
            r#"{"sklep": {"client_id": "app", "client_secret": "s3cret"}}"#.to_owned(),
        );
        let shops = Shops::from_env(&env, true).expect("Allegro credentials");
        let store: Arc<dyn TokenStore> = Arc::new(crate::shop::tokens::MemoryTokens::default());
        let shops = shops.with_token_stores(Some(TokenStores::Given(BTreeMap::from([(
            "sklep".to_owned(),
            store,
        )]))));
        let connector = shops
            .connector("sklep", None)
            .expect("an Allegro connector");
        assert_eq!(connector.platform, "allegro");
        assert!(!connector.capabilities().webhooks);
    }

    #[test]
    fn allegro_shops_of_one_application_share_its_request_bucket() {
        let allegro = |id: &str| {
            let mut shop = shop_json(serde_json::json!({
                "platform": "allegro",
                "base_url": "https://api.allegro.pl",
            }));
            shop["id"] = id.into();
            shop
        };
        let mut env = FunctionEnv::default();
        env.set(
            "SHOPS",
            serde_json::json!([
                allegro("sprzedawca-a"),
                allegro("sprzedawca-b"),
                allegro("inna-aplikacja")
            ])
            .to_string(),
        );
        env.set_shop_secrets(
            serde_json::json!({
                "sprzedawca-a": {"client_id": "app-1", "client_secret": "s"},
                "sprzedawca-b": {"client_id": "app-1", "client_secret": "s"},
                "inna-aplikacja": {"client_id": "app-2", "client_secret": "s"},
            })
            .to_string(),
        );
        let shops = Shops::from_env(&env, true).expect("three Allegro shops");
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let limiter = RateLimiter::new(aws_sdk_dynamodb::Client::from_conf(config), "state");
        let gate = |id: &str| {
            shops.gate(
                shops.get(id).expect("configured"),
                &limiter,
                Duration::from_secs(1),
            )
        };
        let (a, b, other) = (
            gate("sprzedawca-a"),
            gate("sprzedawca-b"),
            gate("inna-aplikacja"),
        );
        assert_eq!(a.bucket_of(REQUESTS), b.bucket_of(REQUESTS));
        assert!(a.bucket_of(REQUESTS).starts_with("allegro-app#"));
        assert!(
            !a.bucket_of(REQUESTS).contains("app-1"),
            "the client id is not a key"
        );
        assert_ne!(a.bucket_of(REQUESTS), other.bucket_of(REQUESTS));
        // Offer changes are each seller's own.
        let changes = crate::shop::allegro::OFFER_CHANGES;
        assert_eq!(a.bucket_of(changes), "sprzedawca-a#offer_changes");
        assert_ne!(a.bucket_of(changes), b.bucket_of(changes));
    }

    #[test]
    fn a_shoper_shop_reads_its_settings_bucket_and_credentials() {
        let shop: ShopConfig = serde_json::from_value(shop_json(serde_json::json!({
            "platform": "shoper",
            "base_url": "https://sklep123.shoparena.pl",
            "settings": {"order_stage_status": {"shipped": 7}},
        })))
        .expect("a Shoper shop");
        assert!(matches!(shop.platform, PlatformSettings::Shoper(_)));
        assert_eq!(
            shop.rate_limits[REQUESTS],
            RateLimit::per_second(2).with_burst(10)
        );
        let mut env = FunctionEnv::default();
        env.set(
            "SHOPS",
            serde_json::json!([shop_json(serde_json::json!({
                "platform": "shoper",
                "base_url": "https://sklep123.shoparena.pl",
            }))])
            .to_string(),
        );
        env.set_shop_secrets(
            r#"{"sklep": {"login": "api", "password": "h4slo", "webhook_secret": "klucz"}}"#
                .to_owned(),
        );
        let shops = Shops::from_env(&env, true).expect("Shoper credentials");
        assert_eq!(
            shops.webhook_secret("sklep").map(Secret::expose),
            Some("klucz")
        );
        let connector = shops.connector("sklep", None).expect("a Shoper connector");
        assert_eq!(connector.platform, "shoper");
        assert!(connector.capabilities().webhooks);
    }

    #[test]
    fn a_platforms_settings_and_limits_default_and_are_checked() {
        let plain: ShopConfig = serde_json::from_value(shop_json(serde_json::json!({})))
            .expect("a shop without settings");
        let PlatformSettings::WooCommerce(woo) = &plain.platform else {
            panic!("a WooCommerce shop")
        };
        assert_eq!(woo.batch_limit, 100);
        assert_eq!(woo.status_for("shipped").as_deref(), Some("completed"));
        assert_eq!(woo.status_for("accepted"), None);
        assert_eq!(
            plain.rate_limits,
            BTreeMap::from([(REQUESTS.to_owned(), RateLimit::per_second(2))])
        );

        let tuned: ShopConfig = serde_json::from_value(shop_json(serde_json::json!({
            "rate_limits": {"requests": {"tokens": 100, "per_seconds": 60, "burst": 10}},
            "settings": {"order_stage_status": {"shipped": "wyslane", "invoiced": ""}},
        })))
        .expect("a shop with settings");
        let PlatformSettings::WooCommerce(woo) = &tuned.platform else {
            panic!("a WooCommerce shop")
        };
        assert_eq!(woo.status_for("shipped").as_deref(), Some("wyslane"));
        assert_eq!(woo.status_for("invoiced"), None);
        assert_eq!(
            tuned.rate_limits[REQUESTS],
            RateLimit::per_minute(100).with_burst(10)
        );

        for (extra, expected) in [
            (serde_json::json!({"platform": "magento"}), "not supported"),
            (
                serde_json::json!({"rate_limits": {"offer_edits": {"tokens": 1, "per_seconds": 1}}}),
                "not a limit of woocommerce",
            ),
            (
                serde_json::json!({"rate_limits": {"requests": {"tokens": 0, "per_seconds": 1}}}),
                "tokens must be at least 1",
            ),
            (
                serde_json::json!({"rate_limits": {"requests": {"tokens": 5, "per_seconds": 0}}}),
                "per_seconds must be at least 1",
            ),
            (
                serde_json::json!({"settings": {"order_stage_status": {"paid": "x"}}}),
                "not a stage",
            ),
            (
                serde_json::json!({"settings": {"batch_limit": 0}}),
                "batch_limit",
            ),
            (
                serde_json::json!({"settings": {"timeot": 5}}),
                "unknown field",
            ),
            (
                serde_json::json!({"requests_per_second": 5}),
                "unknown field",
            ),
        ] {
            let err = serde_json::from_value::<ShopConfig>(shop_json(extra.clone()))
                .expect_err(&extra.to_string());
            assert!(err.to_string().contains(expected), "{extra}: {err}");
        }
    }

    #[test]
    fn a_shops_erp_mapping_is_optional_read_and_checked() {
        let plain: ShopConfig =
            serde_json::from_value(shop_json(serde_json::json!({}))).expect("no mapping");
        assert_eq!(plain.erp_mapping, ErpMapping::default());

        let mapped: ShopConfig = serde_json::from_value(shop_json(serde_json::json!({
            "erp_mapping": {
                "payment_forms": {"bacs": "przelew", "cod": "pobranie"},
                "default_payment_form": "karta",
                "shipping_services": {"flat_rate": "KURIER"},
                "default_shipping_service": "TRANSPORT",
            },
        })))
        .expect("a mapping");
        assert_eq!(mapped.erp_mapping.payment_form("cod"), Some("pobranie"));
        assert_eq!(mapped.erp_mapping.payment_form("przelewy24"), Some("karta"));
        assert_eq!(
            mapped.erp_mapping.shipping_service("local_pickup"),
            Some("TRANSPORT")
        );

        let order = mapped.erp_mapping.applied_to(&order("processing", true));
        assert_eq!(order.payment_form.as_deref(), Some("przelew"));
        assert_eq!(
            plain.erp_mapping.applied_to(&order).payment_form,
            None,
            "no mapping in the shop's settings: the agent's decides"
        );

        for (mapping, expected) in [
            (
                serde_json::json!({"payment_forms": {"bacs": " przelew"}}),
                "erp_mapping: payment_forms.bacs: the payment form name ` przelew` begins or ends with a space",
            ),
            (
                serde_json::json!({"default_payment_form": "x".repeat(21)}),
                "erp_mapping: default_payment_form",
            ),
            (
                serde_json::json!({"shipping_services": {"": "KURIER"}}),
                "erp_mapping: shipping_services: the method id `` is empty",
            ),
            (
                serde_json::json!({"payment_form": {"bacs": "przelew"}}),
                "unknown field `payment_form`",
            ),
            (serde_json::json!(["przelew"]), "expected a map"),
        ] {
            let err = read_shop(shop_json(
                serde_json::json!({"erp_mapping": mapping.clone()}),
            ))
            .expect_err(&mapping.to_string());
            assert!(err.to_string().contains(expected), "{mapping}: {err}");
        }
    }

    #[test]
    fn credentials_in_the_wrong_shape_are_refused_without_echoing_them() {
        let mut env = FunctionEnv::from_map([(
            "SHOPS".to_owned(),
            serde_json::Value::Array(vec![shop_json(serde_json::json!({}))]).to_string(),
        )]);
        env.set_shop_secrets(r#"{"sklep": {"api_key": "sekret-123"}}"#.to_owned());
        let err = Shops::from_env(&env, true).expect_err("wrong credentials shape");
        let text = err.to_string();
        assert!(text.contains("consumer_key"), "{text}");
        assert!(!text.contains("sekret-123"), "{text}");
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
