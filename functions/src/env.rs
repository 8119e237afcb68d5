//! A function's configuration: the environment variables the template sets.
//!
//! Handlers read their settings from a [`FunctionEnv`] map rather than the
//! process environment so the local host can run several functions, each
//! with its own variables, in one process.

use std::collections::BTreeMap;
use std::str::FromStr;

use thiserror::Error;

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
}

/// The environment of one function.
#[derive(Debug, Clone, Default)]
pub struct FunctionEnv(BTreeMap<String, String>);

impl FunctionEnv {
    pub fn from_process() -> Self {
        FunctionEnv(std::env::vars().collect())
    }

    pub fn from_map(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        FunctionEnv(vars.into_iter().collect())
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
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
