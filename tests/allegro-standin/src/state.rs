//! The marketplace's state behind one mutex, the stand-in's clock, and the shared context.
//!
//! Asynchronous work (commands, pending PATCH edits) is *settled lazily*: every time the state
//! is locked, whatever is due by the stand-in's clock is finished first. A test that moves the
//! clock ([`crate::AllegroStandin::advance_clock`]) therefore sees the outcome at once, without
//! background timers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::commands::{self, Command, Family};
use crate::config::Config;
use crate::events::Event;
use crate::faults::FaultState;
use crate::limits::LimitState;
use crate::oauth::OAuthState;
use crate::offers::{Offer, PatchOp};
use crate::orders::{CustomerReturn, Order};
use crate::requests::RequestLog;

/// Counters a test can read (`GET /__standin/counters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Device codes handed out.
    pub device_codes: u64,
    /// Token-endpoint polls with the device grant.
    pub device_polls: u64,
    /// Device codes exchanged for tokens.
    pub device_exchanges: u64,
    /// Successful refresh-token grants.
    pub refreshes: u64,
    /// Refused refresh-token grants (400 invalid_grant).
    pub refresh_failures: u64,
    /// Refreshes that used a refresh token already used once (inside the grace).
    pub refresh_reuses: u64,
    /// client_credentials tokens issued.
    pub client_credentials: u64,
    /// Access tokens minted in total.
    pub tokens_minted: u64,
    /// API requests refused with 401 / 403 / 406 / 429.
    pub unauthorized: u64,
    pub forbidden: u64,
    pub not_acceptable: u64,
    pub rate_limited: u64,
    /// Commands accepted (per family) and executed.
    pub quantity_commands: u64,
    pub price_commands: u64,
    pub commands_completed: u64,
}

/// Everything the marketplace holds.
pub struct State {
    pub cfg: Config,
    /// Added to the wall clock (tests move time forward).
    pub clock_offset: Duration,
    pub oauth: OAuthState,
    pub offers: BTreeMap<String, Offer>,
    pub next_offer_id: u64,
    pub commands: HashMap<(Family, String), Command>,
    /// Command keys in the order they were registered (execution order).
    pub command_order: Vec<(Family, String)>,
    /// One-shot task failures per offer id: (code, message).
    pub task_failures: HashMap<String, (String, String)>,
    /// One-shot omissions: the next command with this offer has no task for it.
    pub task_omissions: HashSet<String>,
    pub patch_ops: HashMap<String, PatchOp>,
    pub orders: HashMap<String, Order>,
    pub events: Vec<Event>,
    pub last_event_id: u64,
    pub returns: Vec<CustomerReturn>,
    pub limits: LimitState,
    pub counters: Counters,
}

impl State {
    pub fn new(cfg: Config) -> State {
        State {
            cfg,
            clock_offset: Duration::zero(),
            oauth: OAuthState::default(),
            offers: BTreeMap::new(),
            next_offer_id: 17_000_000_001,
            commands: HashMap::new(),
            command_order: Vec::new(),
            task_failures: HashMap::new(),
            task_omissions: HashSet::new(),
            patch_ops: HashMap::new(),
            orders: HashMap::new(),
            events: Vec::new(),
            last_event_id: 0,
            returns: Vec::new(),
            limits: LimitState::default(),
            counters: Counters::default(),
        }
    }

    /// The stand-in's clock: wall clock plus the test offset, in whole milliseconds (the
    /// precision Allegro's timestamps have, so `updatedAt.lte=<a timestamp it gave>` matches).
    pub fn now(&self) -> DateTime<Utc> {
        (Utc::now() + self.clock_offset).trunc_subsecs(3)
    }

    /// Finishes whatever is due: commands past their delay, pending PATCH edits.
    pub fn settle(&mut self) {
        let now = self.now();
        commands::settle(self, now);
        crate::offers::settle(self, now);
    }
}

/// Context shared by the handlers.
pub struct Shared {
    pub client_id: String,
    pub client_secret: String,
    pub seller_id: String,
    pub seller_login: String,
    pub api_base: String,
    pub auth_base: String,
    pub state: Mutex<State>,
    pub faults: Mutex<FaultState>,
    pub requests: Mutex<RequestLog>,
}

impl Shared {
    /// Locks the state after settling what is due.
    pub fn st(&self) -> MutexGuard<'_, State> {
        let mut g = lock(&self.state);
        g.settle();
        g
    }
}

/// Locks a mutex, recovering from poisoning (a panicked handler must not wedge the stand-in).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
