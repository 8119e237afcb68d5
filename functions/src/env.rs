//! A function's configuration: the environment variables the template sets.
//!
//! Handlers read their settings from a [`FunctionEnv`] map rather than the
//! process environment so the local host can run several functions, each
//! with its own variables, in one process.

use std::collections::BTreeMap;
use std::str::FromStr;

use secrecy::SecretString;
use thiserror::Error;

use crate::aws::{Clients, describe_error};

#[derive(Debug, Error)]
pub enum EnvError {
    #[error("environment variable {0} is missing (infra/template.yaml sets it for this function)")]
    Missing(&'static str),
    #[error("environment variable {name} = `{value}` is invalid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot read the secret {name} names: {message}")]
    Secret { name: &'static str, message: String },
}

/// The environment of one function, and the shop credentials once read.
#[derive(Debug, Clone, Default)]
pub struct FunctionEnv {
    vars: BTreeMap<String, String>,
    shop_secrets: Option<SecretString>,
    /// The secret's version (Secrets Manager's `VersionId`) they are.
    shop_secrets_version: Option<String>,
}

impl FunctionEnv {
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars())
    }

    pub fn from_map(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        FunctionEnv {
            vars: vars.into_iter().collect(),
            shop_secrets: None,
            shop_secrets_version: None,
        }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// Reads the shop credentials (JSON) from the Secrets Manager secret
    /// `SHOP_SECRETS_ARN` names at cold start: they are never in an
    /// environment variable, and are kept as a [`SecretString`] (zeroed on
    /// drop, redacted in `Debug`). Without `SHOP_SECRETS_ARN` there are none.
    /// A warm function reads them again when the console changes them
    /// ([`crate::shop_settings::ShopsSource`]).
    pub async fn with_shop_secrets(mut self, clients: &Clients) -> Result<Self, EnvError> {
        let Some(arn) = self.get("SHOP_SECRETS_ARN").map(str::to_owned) else {
            return Ok(self);
        };
        let answer = clients
            .secrets
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| EnvError::Secret {
                name: "SHOP_SECRETS_ARN",
                message: describe_error(&e),
            })?;
        let value = answer.secret_string.ok_or(EnvError::Secret {
            name: "SHOP_SECRETS_ARN",
            message: "the secret holds no text".into(),
        })?;
        self.shop_secrets = Some(SecretString::from(value));
        self.shop_secrets_version = answer.version_id;
        Ok(self)
    }

    /// Shop credentials (JSON) at hand, for tests and tools.
    pub fn set_shop_secrets(&mut self, json: impl Into<String>) {
        self.shop_secrets = Some(SecretString::from(json.into()));
    }

    /// The shop credentials, once [`with_shop_secrets`](Self::with_shop_secrets) read them.
    pub fn shop_secrets(&self) -> Option<&SecretString> {
        self.shop_secrets.as_ref()
    }

    /// The version of the credentials secret [`shop_secrets`](Self::shop_secrets) are.
    pub fn shop_secrets_version(&self) -> Option<&str> {
        self.shop_secrets_version.as_deref()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or(EnvError::Missing(name))
    }

    /// A required variable parsed as `T`; `expected` says what a valid value looks like.
    pub fn parsed<T: FromStr>(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<T, EnvError> {
        let value = self.required(name)?;
        value.parse().map_err(|_| EnvError::Invalid {
            name,
            value,
            expected,
        })
    }
}
