//! A shop's rotating tokens in the cloud: the pair in the shop's own
//! Secrets Manager secret (`<prefix>-token-<shop>`, created on the first
//! save; the functions may read and write only secrets of that name), and
//! the refresh lease as a state-table item (`pk = token-lease#<shop>`) put
//! on condition that no live lease exists. The pair never passes through
//! the state table, a log or an environment variable.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::aws::{Clients, describe_error};
use crate::dynamo::{n, s, written};
use crate::shop::tokens::{TokenPair, TokenStore};
use crate::shop::{Secret, ShopError};

/// The token store of one shop.
#[derive(Debug, Clone)]
pub struct SecretTokens {
    clients: Clients,
    table: String,
    secret_name: String,
    lease_key: String,
    /// This instance, as the lease's holder.
    holder: String,
}

/// The secret's JSON.
#[derive(Serialize, Deserialize)]
struct Stored {
    access_token: String,
    refresh_token: String,
}

/// The name of a shop's token secret.
pub fn secret_name(prefix: &str, shop: &str) -> String {
    format!("{prefix}-token-{shop}")
}

impl SecretTokens {
    pub fn new(clients: Clients, table: impl Into<String>, prefix: &str, shop: &str) -> Self {
        SecretTokens {
            clients,
            table: table.into(),
            secret_name: secret_name(prefix, shop),
            lease_key: format!("token-lease#{shop}"),
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn unreachable(&self, what: &str, err: &(dyn std::error::Error + 'static)) -> ShopError {
        ShopError::Transient(format!(
            "{what} the token secret {}: {}",
            self.secret_name,
            describe_error(err)
        ))
    }

    async fn load_pair(&self) -> Result<Option<TokenPair>, ShopError> {
        let answer = self
            .clients
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_name)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(self.unreachable("cannot read", &err)),
        };
        let text = answer.secret_string.unwrap_or_default();
        // Never echo the text: it is the tokens.
        let stored: Stored = serde_json::from_str(&text).map_err(|_| {
            ShopError::Auth(format!(
                "the token secret {} is not {{access_token, refresh_token}}: authorise the shop again",
                self.secret_name
            ))
        })?;
        Ok(Some(TokenPair {
            access: Secret::new(stored.access_token),
            refresh: Secret::new(stored.refresh_token),
        }))
    }

    async fn save_pair(&self, pair: &TokenPair) -> Result<(), ShopError> {
        let text = serde_json::to_string(&Stored {
            access_token: pair.access.expose().to_owned(),
            refresh_token: pair.refresh.expose().to_owned(),
        })
        .map_err(|e| ShopError::Permanent(format!("token pair: {e}")))?;
        let put = self
            .clients
            .secrets
            .put_secret_value()
            .secret_id(&self.secret_name)
            .secret_string(&text)
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.clients
                    .secrets
                    .create_secret()
                    .name(&self.secret_name)
                    .description("A shop's OAuth tokens, rotated by the functions")
                    .secret_string(&text)
                    .send()
                    .await
                    .map_err(|e| self.unreachable("cannot create", &e))?;
                Ok(())
            }
            Err(err) => Err(self.unreachable("cannot write", &err)),
        }
    }

    fn key(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(&self.lease_key)),
            ("sk".to_owned(), s("lease")),
        ])
    }

    async fn take_lease(&self, hold: Duration) -> Result<bool, ShopError> {
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::seconds(30));
        let mut item = self.key();
        item.insert("holder".into(), s(&self.holder));
        item.insert("until_ms".into(), n(until.timestamp_millis()));
        // The table's TTL removes leases left behind.
        item.insert("expires_at".into(), n(until.timestamp() + 3600));
        let put = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR until_ms < :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        written(put)
            .map(|done| done.is_some())
            .map_err(|e| ShopError::Transient(format!("token lease: {}", describe_error(&e))))
    }

    async fn give_back(&self) {
        let deleted = self
            .clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(&self.holder))
            .send()
            .await;
        if let Err(err) = written(deleted) {
            // It lapses by itself.
            tracing::warn!(error = %describe_error(&err), "token lease not given back");
        }
    }
}

impl TokenStore for SecretTokens {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenPair>, ShopError>> {
        Box::pin(self.load_pair())
    }

    fn save<'a>(&'a self, pair: &'a TokenPair) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(self.save_pair(pair))
    }

    fn lease(&self, hold: Duration) -> BoxFuture<'_, Result<bool, ShopError>> {
        Box::pin(self.take_lease(hold))
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.give_back())
    }
}
