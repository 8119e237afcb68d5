//! The shop's state behind one mutex, the stand-in's clock, and the context shared by the
//! handlers. Changes that Shoper announces by webhook push a [`Notice`] into the outbox;
//! [`Shared::with`] turns the outbox into signed deliveries once the state is unlocked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Token, User};
use crate::catalog::{Product, Stock};
use crate::config::Config;
use crate::delivery::{DeliveryJob, DeliveryLog};
use crate::faults::FaultState;
use crate::limits::Buckets;
use crate::orders::{Order, OrderLine, Parcel, Status, default_statuses};
use crate::requests::RequestLog;
use crate::webhooks::{self, Webhook};

/// Counters a test can read (`GET /__standin/counters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Tokens minted (`/auth` and panel).
    pub tokens_issued: u64,
    /// `/auth` calls refused.
    pub auth_failures: u64,
    /// API requests refused with 401 / 403 / 429.
    pub unauthorized: u64,
    pub forbidden: u64,
    pub rate_limited: u64,
    /// `/bulk` calls and the sub-requests they carried.
    pub bulk_calls: u64,
    pub bulk_operations: u64,
    /// Stock writes through the API (`PUT /product-stocks`, `PUT /products` with `stock`).
    pub stock_writes: u64,
    /// Webhook notices queued (one per event per webhook).
    pub webhooks_queued: u64,
}

/// A change Shoper announces by webhook: the event name and the object's body at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `order.create`, `order.edit`, `order.paid`, `order.status`, `order.delete`,
    /// `parcel.create`, `parcel.dispatch`, `product.create`, `product.edit`, `product.delete`.
    pub event: String,
    pub payload: Value,
}

/// Everything the shop holds.
pub struct State {
    pub cfg: Config,
    /// Added to the wall clock (tests move time forward).
    pub clock_offset: Duration,
    /// When set, the clock stands still at this instant (plus the offset).
    pub frozen_at: Option<DateTime<Utc>>,
    pub users: BTreeMap<String, User>,
    pub tokens: HashMap<String, Token>,
    /// Customer accounts (`user_id` of orders must be one of them).
    pub customers: BTreeSet<u64>,
    pub products: BTreeMap<u64, Product>,
    pub stocks: BTreeMap<u64, Stock>,
    pub next_product_id: u64,
    pub next_stock_id: u64,
    pub statuses: BTreeMap<u64, Status>,
    pub orders: BTreeMap<u64, Order>,
    pub lines: BTreeMap<u64, OrderLine>,
    pub next_order_id: u64,
    pub next_line_id: u64,
    pub parcels: BTreeMap<u64, Parcel>,
    pub next_parcel_id: u64,
    pub webhooks: BTreeMap<u64, Webhook>,
    pub next_webhook_id: u64,
    pub buckets: Buckets,
    pub outbox: Vec<Notice>,
    pub counters: Counters,
}

impl State {
    pub fn new(cfg: Config) -> State {
        State {
            cfg,
            clock_offset: Duration::zero(),
            frozen_at: None,
            users: BTreeMap::new(),
            tokens: HashMap::new(),
            customers: [1, 2].into_iter().collect(),
            products: BTreeMap::new(),
            stocks: BTreeMap::new(),
            next_product_id: 1,
            next_stock_id: 1,
            statuses: default_statuses(),
            orders: BTreeMap::new(),
            lines: BTreeMap::new(),
            next_order_id: 1,
            next_line_id: 1,
            parcels: BTreeMap::new(),
            next_parcel_id: 1,
            webhooks: BTreeMap::new(),
            next_webhook_id: 1,
            buckets: Buckets::default(),
            outbox: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// The stand-in's clock: the wall clock (or the frozen instant) plus the test offset, in
    /// whole seconds like Shoper's timestamps.
    pub fn now(&self) -> DateTime<Utc> {
        (self.frozen_at.unwrap_or_else(Utc::now) + self.clock_offset).trunc_subsecs(0)
    }

    /// The stand-in's clock with milliseconds (the bucket leaks continuously).
    pub fn now_precise(&self) -> DateTime<Utc> {
        self.frozen_at.unwrap_or_else(Utc::now) + self.clock_offset
    }

    /// A timestamp in Shoper's naive shop-local format.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        crate::util::naive(t, &self.cfg.locale_timezone)
    }

    /// Queues a webhook notice.
    pub fn emit(&mut self, event: &str, payload: Value) {
        self.outbox.push(Notice {
            event: event.into(),
            payload,
        });
    }
}

/// Context shared by the handlers.
pub struct Shared {
    /// The default WebAPI user.
    pub login: String,
    pub password: String,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// `X-Shop-Domain` of deliveries.
    pub shop_domain: String,
    /// `X-Shop-License` of deliveries (and the AppStore secret derivation).
    pub license: String,
    pub state: Mutex<State>,
    pub faults: Mutex<FaultState>,
    pub requests: Mutex<RequestLog>,
    pub deliveries: Arc<Mutex<DeliveryLog>>,
    pub delivered: Arc<tokio::sync::Notify>,
    pub outbox_tx: tokio::sync::mpsc::UnboundedSender<DeliveryJob>,
}

impl Shared {
    /// Locks the state.
    pub fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs `f` on the state, then sends the webhooks its changes announced.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, jobs) = {
            let mut m = lock(&self.state);
            let out = f(&mut m);
            let notices = std::mem::take(&mut m.outbox);
            let jobs = if notices.is_empty() {
                Vec::new()
            } else {
                let mut faults = lock(&self.faults);
                webhooks::jobs(
                    &mut m,
                    &mut faults,
                    notices,
                    &self.shop_domain,
                    &self.license,
                )
            };
            (out, jobs)
        };
        for job in jobs {
            if let Err(e) = self.outbox_tx.send(job) {
                tracing::warn!("shoper-standin: webhook worker gone: {e}");
            }
        }
        out
    }
}

/// Locks a mutex, recovering from poisoning (a panicked handler must not wedge the stand-in).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
