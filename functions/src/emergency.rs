//! The emergency switch (seed 003), per shop: a person in the office stops
//! what goes to a shop without a redeploy, from the console.
//!
//! - **Stop pushing**: `shop-push` drops the shop's product writes (stock,
//!   prices, catalogue) and says so in its log; buyers' order updates still
//!   go. Switching back asks every agent for a full pass that resends even
//!   unchanged records, so the shop catches up with everything dropped.
//! - **Show 0 stock**: every product the shop shows with stock goes to 0
//!   (the watchdog, page by page from the `held-stock` index, within a
//!   minute), and every stock write meanwhile is written as 0. Each zeroed
//!   SKU is remembered, and switching back puts back what the ERP last said.
//! - **Pause orders**: the shop's orders are still received and stored, but
//!   none goes to the ERP; switching back sends the ones that waited.
//!
//! One item per shop, `pk = shop#<id>`, `sk = emergency`; each change goes
//! to the console's log with its operator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dynamo::s;
use crate::state::StateError;

/// What happens to a shop's product writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Push {
    /// Written as the ERP says.
    #[default]
    Normal,
    /// Not written at all.
    Stopped,
    /// Stock written as 0 everywhere.
    ZeroStock,
}

impl Push {
    pub fn name(self) -> &'static str {
        match self {
            Push::Normal => "normal",
            Push::Stopped => "stopped",
            Push::ZeroStock => "zero_stock",
        }
    }

    pub fn named(name: &str) -> Option<Push> {
        [Push::Normal, Push::Stopped, Push::ZeroStock]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// A shop's switch as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    #[serde(default)]
    pub push: Push,
    #[serde(default)]
    pub pause_orders: bool,
    /// The operator who last changed it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// The watchdog finished zeroing what the shop showed (only while
    /// `push` is [`Push::ZeroStock`]); false again once it restored.
    #[serde(default)]
    pub zero_applied: bool,
    /// Bumped by every change; the watchdog records its progress only on
    /// the revision it read, so a switch changed meanwhile is not overwritten.
    #[serde(default)]
    pub revision: u64,
}

impl Switch {
    /// Anything but normal.
    pub fn engaged(&self) -> bool {
        self.push != Push::Normal || self.pause_orders
    }
}

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    #[serde(flatten)]
    switch: Switch,
}

const SK: &str = "emergency";

fn pk(shop: &str) -> String {
    format!("shop#{shop}")
}

/// The switches in the state table.
#[derive(Debug, Clone)]
pub struct Emergency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Emergency {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Emergency {
            client,
            table: table.into(),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::dynamo(operation, &self.table, err)
    }

    /// A shop's switch (normal when never set). Read strongly consistent:
    /// a person who just pressed it expects the next write to obey.
    pub async fn get(&self, shop: &str) -> Result<Switch, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk(shop)))
            .key("sk", s(SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        match out.item {
            None => Ok(Switch::default()),
            Some(item) => serde_dynamo::from_item::<_, Item>(item)
                .map(|item| item.switch)
                .map_err(|e| StateError::Malformed {
                    key: format!("{}/{SK}", pk(shop)),
                    problem: e.to_string(),
                }),
        }
    }

    /// Sets what a person chose (`None`: as stored); returns the switch
    /// before and after. `zero_applied` carries over (the watchdog
    /// decides it).
    pub async fn set(
        &self,
        shop: &str,
        push: Option<Push>,
        pause_orders: Option<bool>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(Switch, Switch), StateError> {
        let before = self.get(shop).await?;
        let after = Switch {
            push: push.unwrap_or(before.push),
            pause_orders: pause_orders.unwrap_or(before.pause_orders),
            changed_by: Some(by.to_owned()),
            changed_at: Some(at),
            zero_applied: before.zero_applied,
            revision: before.revision + 1,
        };
        self.put(shop, &after, before.revision).await?;
        Ok((before, after))
    }

    /// The watchdog finished zeroing (`true`) or restoring (`false`) for
    /// the switch it read; false when the switch changed meanwhile.
    pub async fn record_zero_applied(
        &self,
        shop: &str,
        read: &Switch,
        applied: bool,
    ) -> Result<bool, StateError> {
        let after = Switch {
            zero_applied: applied,
            revision: read.revision + 1,
            ..read.clone()
        };
        match self.put(shop, &after, read.revision).await {
            Ok(()) => Ok(true),
            Err(StateError::NotYet(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Writes `switch` if the stored revision is still `expected`
    /// (`StateError::NotYet` when it is not).
    async fn put(&self, shop: &str, switch: &Switch, expected: u64) -> Result<(), StateError> {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(Item {
            pk: pk(shop),
            sk: SK.into(),
            switch: switch.clone(),
        })
        .map_err(|e| StateError::Malformed {
            key: format!("{}/{SK}", pk(shop)),
            problem: e.to_string(),
        })?;
        let condition = if expected == 0 {
            "attribute_not_exists(pk) OR revision = :rev"
        } else {
            "revision = :rev"
        };
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":rev", crate::dynamo::n(expected))
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StateError::NotYet(format!(
                    "the emergency switch of `{shop}` changed meanwhile; read it again"
                )))
            }
            Err(err) => Err(self.error("PutItem", &err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_modes_read_back_from_their_names_and_nothing_else() {
        for push in [Push::Normal, Push::Stopped, Push::ZeroStock] {
            assert_eq!(Push::named(push.name()), Some(push));
        }
        assert_eq!(Push::named("zero"), None);
        assert!(!Switch::default().engaged());
        assert!(
            Switch {
                pause_orders: true,
                ..Switch::default()
            }
            .engaged()
        );
    }

    #[test]
    fn a_switch_stored_before_its_fields_existed_reads_as_normal() {
        let item: HashMap<String, AttributeValue> =
            HashMap::from([("pk".to_owned(), s("shop#sklep")), ("sk".to_owned(), s(SK))]);
        let read: Item = serde_dynamo::from_item(item).unwrap();
        assert_eq!(read.switch, Switch::default());
    }
}
