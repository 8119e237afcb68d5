//! Credentials that rotate: an OAuth access token and the refresh token
//! that renews it (Allegro rotates both on every refresh and kills the
//! pair before at once), kept where every instance calling the shop finds
//! them, with a lease so that one instance refreshes at a time. In the
//! cloud the store is the shop's own secret ([`crate::token_secrets`]).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Secret, ShopError};

/// A seller's access token and the refresh token that renews it.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: Secret,
    pub refresh: Secret,
}

/// Where a shop's token pair is kept, shared by every instance that
/// calls Allegro for the shop, with a lease so that one refreshes at a
/// time.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The pair stored last; `None` before the first authorisation.
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenPair>, ShopError>>;
    /// Stores a new pair (the one before it is dead).
    fn save<'a>(&'a self, pair: &'a TokenPair) -> BoxFuture<'a, Result<(), ShopError>>;
    /// Takes the right to refresh for `hold`; `false` while another
    /// holder has it.
    fn lease(&self, hold: Duration) -> BoxFuture<'_, Result<bool, ShopError>>;
    /// Gives the lease back.
    fn release(&self) -> BoxFuture<'_, ()>;
}

/// A token store in memory: tests, and one process holding one shop.
#[derive(Debug, Default)]
pub struct MemoryTokens {
    pair: Mutex<Option<TokenPair>>,
    leased_until: Mutex<Option<std::time::Instant>>,
}

impl MemoryTokens {
    pub fn new(pair: Option<TokenPair>) -> Self {
        MemoryTokens {
            pair: Mutex::new(pair),
            leased_until: Mutex::new(None),
        }
    }

    fn pair(&self) -> std::sync::MutexGuard<'_, Option<TokenPair>> {
        self.pair.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenStore for MemoryTokens {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenPair>, ShopError>> {
        let pair = self.pair().clone();
        Box::pin(async move { Ok(pair) })
    }

    fn save<'a>(&'a self, pair: &'a TokenPair) -> BoxFuture<'a, Result<(), ShopError>> {
        *self.pair() = Some(pair.clone());
        Box::pin(async { Ok(()) })
    }

    fn lease(&self, hold: Duration) -> BoxFuture<'_, Result<bool, ShopError>> {
        let now = std::time::Instant::now();
        let mut until = self.leased_until.lock().unwrap_or_else(|e| e.into_inner());
        let free = until.is_none_or(|t| t <= now);
        if free {
            *until = Some(now + hold);
        }
        Box::pin(async move { Ok(free) })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        *self.leased_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Box::pin(async {})
    }
}

/// No store: a function without `TOKEN_SECRET_PREFIX`. Every use says so.
#[derive(Debug)]
pub struct NoTokenStore;

impl NoTokenStore {
    fn error() -> ShopError {
        ShopError::Auth("this function has no token store (TOKEN_SECRET_PREFIX is not set)".into())
    }
}

impl TokenStore for NoTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenPair>, ShopError>> {
        Box::pin(async { Err(Self::error()) })
    }

    fn save<'a>(&'a self, _pair: &'a TokenPair) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Err(Self::error()) })
    }

    fn lease(&self, _hold: Duration) -> BoxFuture<'_, Result<bool, ShopError>> {
        Box::pin(async { Err(Self::error()) })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
