//! The shops one deployment serves: each with its platform, mapping rules,
//! rate limit and credentials.
//!
//! Non-secret settings come from `SHOPS` (JSON, the template's `ShopsConfig`
//! parameter); credentials from `SHOP_SECRETS` (JSON, the `NoEcho`
//! `ShopSecrets` parameter), keyed by shop id. Secrets never reach a log.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use crate::env::FunctionEnv;
use crate::mapping::ShopRules;
use crate::shop::woocommerce::{WooCommerce, WooConfig};
use crate::shop::{Secret, ShopConnector};

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
}

/// Every configured shop.
#[derive(Debug, Clone, Default)]
pub struct Shops {
    pub shops: Vec<ShopConfig>,
    secrets: BTreeMap<String, (String, Secret)>,
}

impl Shops {
    /// Reads `SHOPS` and, when `with_secrets`, `SHOP_SECRETS`.
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
        }
        let mut secrets = BTreeMap::new();
        if with_secrets {
            let text = env.get("SHOP_SECRETS").unwrap_or("{}");
            let parsed: BTreeMap<String, ShopSecret> = serde_json::from_str(text)
                // The text may hold secrets: never echo it.
                .map_err(|_| ShopsError::Config("SHOP_SECRETS is not a JSON object of {consumer_key, consumer_secret} per shop".into()))?;
            for shop in &shops {
                let secret = parsed.get(&shop.id).ok_or_else(|| ShopsError::Shop {
                    shop: shop.id.clone(),
                    problem: "no credentials in SHOP_SECRETS".into(),
                })?;
                secrets.insert(
                    shop.id.clone(),
                    (secret.consumer_key.clone(), secret.consumer_secret.clone()),
                );
            }
        }
        Ok(Shops { shops, secrets })
    }

    pub fn get(&self, id: &str) -> Option<&ShopConfig> {
        self.shops.iter().find(|s| s.id == id)
    }

    /// The connector for a shop (needs its credentials).
    pub fn connector(&self, id: &str) -> Result<Arc<dyn ShopConnector>, ShopsError> {
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
        })?;
        Ok(Arc::new(connector))
    }
}
