//! How a shop's payment and delivery methods become Optima's, per shop:
//! the `erp_mapping` of its settings (`ShopsConfig`, edited, versioned
//! and restored on the console's Shops page like the rest of them).
//!
//! The cloud writes what it maps into the order's create command
//! ([`contract::Order::payment_form`], [`contract::Shipping::service_sku`])
//! from the shop's settings as they are when the command goes out, and the
//! agent prefers that to its own `[orders]` mapping, which stays the
//! fallback for whatever this mapping leaves out (and for installs that
//! map in the agent). Whether a name exists in Optima is only known in
//! the office: an unknown one parks the order there with its reason.

use std::collections::BTreeMap;

use contract::Order;
use serde::Deserialize;

/// `FPl_Nazwa` is nvarchar(20) in Optima's schema.
const PAYMENT_FORM_CHARS: usize = 20;
/// `Twr_Kod` is varchar(50).
const SERVICE_SKU_CHARS: usize = 50;

/// A shop's mapping of its payment and delivery methods to Optima's; the
/// same names as the agent's `[orders]` keys, so one reads like the other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErpMapping {
    /// The shop's payment method id (e.g. `bacs`, `cod`) → the name of an
    /// Optima payment form (`FPl_Nazwa`).
    #[serde(default)]
    pub payment_forms: BTreeMap<String, String>,
    /// For a payment method `payment_forms` does not name.
    #[serde(default)]
    pub default_payment_form: Option<String>,
    /// The shop's shipping method id (e.g. `flat_rate`) → the SKU of an
    /// Optima service item the delivery is billed as.
    #[serde(default)]
    pub shipping_services: BTreeMap<String, String>,
    /// For a shipping method `shipping_services` does not name.
    #[serde(default)]
    pub default_shipping_service: Option<String>,
}

impl ErpMapping {
    /// What is wrong with the mapping, in words (None: nothing).
    pub fn problem(&self) -> Option<String> {
        let named = [
            (
                "payment_forms",
                &self.payment_forms,
                &self.default_payment_form,
                "default_payment_form",
                "payment form name",
                PAYMENT_FORM_CHARS,
            ),
            (
                "shipping_services",
                &self.shipping_services,
                &self.default_shipping_service,
                "default_shipping_service",
                "service item SKU",
                SERVICE_SKU_CHARS,
            ),
        ];
        for (field, map, default, default_field, what, limit) in named {
            for (method, name) in map {
                if let Some(problem) = text_problem(method, usize::MAX) {
                    return Some(format!("{field}: the method id `{method}` {problem}"));
                }
                if let Some(problem) = text_problem(name, limit) {
                    return Some(format!("{field}.{method}: the {what} `{name}` {problem}"));
                }
            }
            if let Some(problem) = default.as_deref().and_then(|d| text_problem(d, limit)) {
                return Some(format!(
                    "{default_field}: the {what} `{}` {problem}",
                    default.as_deref().unwrap_or_default()
                ));
            }
        }
        None
    }

    /// The payment form an order's payment method maps to, if any.
    pub fn payment_form(&self, method: &str) -> Option<&str> {
        self.payment_forms
            .get(method)
            .or(self.default_payment_form.as_ref())
            .map(String::as_str)
    }

    /// The service item SKU a shipping method maps to, if any.
    pub fn shipping_service(&self, method: &str) -> Option<&str> {
        self.shipping_services
            .get(method)
            .or(self.default_shipping_service.as_ref())
            .map(String::as_str)
    }

    /// The order as its create command carries it: with the payment form
    /// and service item this mapping gives (what it does not map stays
    /// absent, for the agent's own mapping to decide).
    pub fn applied_to(&self, order: &Order) -> Order {
        let mut mapped = order.clone();
        mapped.payment_form = self.payment_form(&order.payment_method).map(str::to_owned);
        if let Some(shipping) = mapped.shipping.as_mut() {
            shipping.service_sku = self.shipping_service(&shipping.method).map(str::to_owned);
        }
        mapped
    }
}

/// Why a method id or an Optima name cannot be used as written: the agent
/// compares them exactly, so a stray space would never match.
fn text_problem(text: &str, limit: usize) -> Option<String> {
    if text.trim().is_empty() {
        return Some("is empty".into());
    }
    if text.trim() != text {
        return Some("begins or ends with a space".into());
    }
    let chars = text.chars().count();
    (chars > limit).then(|| format!("is {chars} characters long (Optima keeps {limit})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(value: serde_json::Value) -> Result<ErpMapping, String> {
        let mapping: ErpMapping = serde_json::from_value(value).map_err(|e| e.to_string())?;
        match mapping.problem() {
            Some(problem) => Err(problem),
            None => Ok(mapping),
        }
    }

    #[test]
    fn a_method_maps_to_its_name_else_the_default_else_nothing() {
        let mapping = mapping(json!({
            "payment_forms": {"bacs": "przelew", "cod": "pobranie"},
            "default_payment_form": "karta",
            "shipping_services": {"flat_rate": "KURIER"},
        }))
        .expect("a mapping");
        assert_eq!(mapping.payment_form("bacs"), Some("przelew"));
        assert_eq!(mapping.payment_form("przelewy24"), Some("karta"));
        assert_eq!(mapping.shipping_service("flat_rate"), Some("KURIER"));
        assert_eq!(mapping.shipping_service("local_pickup"), None);
        assert_eq!(ErpMapping::default().payment_form("bacs"), None);
    }

    #[test]
    fn names_optima_cannot_hold_are_refused_with_the_field() {
        for (value, expected) in [
            (
                json!({"payment_forms": {"bacs": ""}}),
                "payment_forms.bacs: the payment form name `` is empty",
            ),
            (
                json!({"payment_forms": {"bacs": "przelew "}}),
                "begins or ends with a space",
            ),
            (
                json!({"payment_forms": {" bacs": "przelew"}}),
                "payment_forms: the method id ` bacs` begins or ends with a space",
            ),
            (
                json!({"default_payment_form": "przelew natychmiastowy"}),
                "default_payment_form: the payment form name `przelew natychmiastowy` is 22 characters long (Optima keeps 20)",
            ),
            (
                json!({"shipping_services": {"flat_rate": "K".repeat(51)}}),
                "is 51 characters long (Optima keeps 50)",
            ),
            (
                json!({"default_shipping_service": "  "}),
                "default_shipping_service: the service item SKU `  ` is empty",
            ),
            (json!({"fee_services": {}}), "unknown field"),
        ] {
            let err = mapping(value.clone()).expect_err(&value.to_string());
            assert!(err.contains(expected), "{value}: {err}");
        }
        // Twenty characters of Polish are twenty, not their bytes.
        assert!(mapping(json!({"default_payment_form": "płatność przy odbior"})).is_ok());
    }
}
