//! # allegro-standin — a local stand-in of Allegro's REST API
//!
//! An HTTP server on 127.0.0.1 that behaves like `api.allegro.pl` and `allegro.pl/auth/oauth`
//! closely enough to test the connector against Allegro's real behaviour, refusals included
//! (docs/platforms/allegro.md, section 7 "Stand-in checklist"). Tests start it in-process with
//! [`AllegroStandin::start`]; the `allegro-standin` binary runs it for the local run. A control
//! API under `/__standin` (no auth) and this handle seed offers, place and cancel orders,
//! approve device codes, expire tokens, move the clock, inject faults and read the request log.
//!
//! Map of the crate:
//! - [`AllegroStandin`], [`AllegroOptions`], [`Faults`] — this file
//! - `server` — routers and the pipeline (faults → auth → client limit → Accept → scope →
//!   Content-Type → handler; `Trace-Id`; request log)
//! - `oauth` — device flow, refresh rotation with grace, client_credentials, bearer checks
//! - `offers`, `commands` — `/sale/offers`, `/sale/product-offers`, quantity/price commands
//! - `orders`, `events` — checkout forms, fulfillment, shipments, carriers, invoices, returns,
//!   the event journal and its stats
//! - `limits`, `faults`, `requests` — sliding windows, fault injection, request log
//! - `config` — [`Config`]: lifetimes, limits, delays, switches for *unverified* behaviour
//! - `state`, `util`, `control` — state and clock, error bodies and helpers, `/__standin`

// Handlers answer errors as whole HTTP responses; their size does not matter here.
#![allow(clippy::result_large_err)]

mod commands;
mod config;
mod control;
mod events;
mod faults;
mod limits;
mod oauth;
mod offers;
mod orders;
mod requests;
mod server;
mod state;
mod util;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use commands::{Change, Command, Family, Task};
pub use config::Config;
pub use events::{EVENT_TYPES, Event};
pub use faults::FaultConfig;
pub use oauth::{DEFAULT_SCOPES, DEVICE_GRANT, Device, DeviceState, TokenPair};
pub use offers::{NewOffer, Offer};
pub use orders::{
    CARRIERS, CustomerReturn, FulfillmentChange, Invoice, LineItem, NewCompany, NewLine, NewOrder,
    Order, Payment, Shipment,
};
pub use requests::RequestRecord;
pub use state::Counters;
pub use util::{ApiError, BETA, VND};

use crate::faults::FaultState;
use crate::requests::RequestLog;
use crate::state::{Shared, State, lock};

/// Errors of the library handle.
#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    /// A listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A library call was refused the way the API would refuse it.
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// Result of library calls.
pub type Result<T> = std::result::Result<T, StandinError>;

/// How to start the stand-in.
#[derive(Debug, Clone)]
pub struct AllegroOptions {
    /// API address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve `/auth/oauth/*` on this second address (like `allegro.pl` next to
    /// `api.allegro.pl`). None: on the API listener.
    pub auth_listen: Option<SocketAddr>,
    pub client_id: String,
    pub client_secret: String,
    /// The seller device codes are approved for by default (a numeric user id).
    pub seller_id: String,
    pub seller_login: String,
    pub config: Config,
    /// Seed for fault probabilities.
    pub seed: u64,
}

impl Default for AllegroOptions {
    fn default() -> Self {
        AllegroOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth_listen: None,
            client_id: "standin-client-id".into(),
            client_secret: "standin-client-secret".into(),
            seller_id: "437848322".into(),
            seller_login: "StandinSeller".into(),
            config: Config::default(),
            seed: 0x5eed,
        }
    }
}

/// A running stand-in.
pub struct AllegroStandin {
    shared: Arc<Shared>,
    addr: SocketAddr,
    auth_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StandinError::Bind { addr, source })
}

fn local(l: &tokio::net::TcpListener, addr: SocketAddr) -> Result<SocketAddr> {
    l.local_addr()
        .map_err(|source| StandinError::Bind { addr, source })
}

impl AllegroStandin {
    /// Binds and serves in the background.
    pub async fn start(opts: AllegroOptions) -> Result<AllegroStandin> {
        let listener = bind(opts.listen).await?;
        let addr = local(&listener, opts.listen)?;
        let auth_listener = match opts.auth_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let auth_addr = match (&auth_listener, opts.auth_listen) {
            (Some(l), Some(a)) => local(l, a)?,
            _ => addr,
        };
        let shared = Arc::new(Shared {
            client_id: opts.client_id.clone(),
            client_secret: opts.client_secret.clone(),
            seller_id: opts.seller_id.clone(),
            seller_login: opts.seller_login.clone(),
            api_base: format!("http://{addr}"),
            auth_base: format!("http://{auth_addr}"),
            state: Mutex::new(State::new(opts.config.clone())),
            faults: Mutex::new(FaultState::new(opts.seed)),
            requests: Mutex::new(RequestLog::default()),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        let app = server::router(Arc::clone(&shared), auth_listener.is_none());
        servers.push(spawn_server(listener, app, stop_rx.clone()));
        if let Some(l) = auth_listener {
            servers.push(spawn_server(
                l,
                server::auth_router(Arc::clone(&shared)),
                stop_rx,
            ));
        }
        tracing::info!(%addr, %auth_addr, "allegro-standin listening");
        Ok(AllegroStandin {
            shared,
            addr,
            auth_addr,
            stop,
            servers,
        })
    }

    /// `http://127.0.0.1:PORT`: the API root (paths such as `/sale/offers` go under it).
    pub fn api_url(&self) -> String {
        self.shared.api_base.clone()
    }

    /// The OAuth root (`/auth/oauth/device`, `/auth/oauth/token` go under it); the API root
    /// unless [`AllegroOptions::auth_listen`] was set.
    pub fn auth_url(&self) -> String {
        self.shared.auth_base.clone()
    }

    /// `http://127.0.0.1:PORT/__standin`
    pub fn control_url(&self) -> String {
        format!("{}/__standin", self.shared.api_base)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn auth_addr(&self) -> SocketAddr {
        self.auth_addr
    }

    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    /// The default seller's user id.
    pub fn seller_id(&self) -> &str {
        &self.shared.seller_id
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.st()
    }

    // ------------------------------------------------------------ config and clock

    pub fn config(&self) -> Config {
        self.st().cfg.clone()
    }

    pub fn set_config(&self, cfg: Config) {
        self.st().cfg = cfg;
    }

    /// Changes some settings: `standin.configure(|c| c.refresh_grace_secs = 2)`.
    pub fn configure(&self, f: impl FnOnce(&mut Config)) {
        f(&mut self.st().cfg);
    }

    /// The stand-in's clock (wall clock plus what tests advanced).
    pub fn now(&self) -> DateTime<Utc> {
        self.st().now()
    }

    /// Moves the stand-in's clock forward: tokens, device codes, grace windows, limits,
    /// command delays and event retention all follow it.
    pub fn advance_clock(&self, d: Duration) {
        let mut m = lock(&self.shared.state);
        m.clock_offset += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        m.settle();
    }

    /// Forgets every limit window and client block.
    pub fn reset_limits(&self) {
        self.st().limits.clear();
    }

    // ------------------------------------------------------------ OAuth

    /// Device authorisations handed out so far.
    pub fn devices(&self) -> Vec<Device> {
        self.st().oauth.devices.values().cloned().collect()
    }

    /// Approves a device code (user code, with or without spaces, or device code) for the
    /// default seller. False when no pending code matches.
    pub fn approve_device(&self, code: &str) -> bool {
        let seller = self.shared.seller_id.clone();
        oauth::approve(&mut self.st(), code, &seller)
    }

    /// Approves a device code for another seller.
    pub fn approve_device_for(&self, code: &str, seller_id: &str) -> bool {
        oauth::approve(&mut self.st(), code, seller_id)
    }

    /// The user refuses the device code.
    pub fn deny_device(&self, code: &str) -> bool {
        oauth::deny(&mut self.st(), code)
    }

    /// Mints a token pair for a seller without the device flow (a new session).
    pub fn issue_tokens(&self, seller_id: &str) -> TokenPair {
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        let client = self.shared.client_id.clone();
        oauth::issue_pair(&mut self.st(), &client, seller_id, &scopes, None)
    }

    /// Mints a token pair with the given scopes.
    pub fn issue_tokens_with_scopes(&self, seller_id: &str, scopes: &[&str]) -> TokenPair {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let client = self.shared.client_id.clone();
        oauth::issue_pair(&mut self.st(), &client, seller_id, &scopes, None)
    }

    /// Expires one access token now (the next call with it gets 401 `Access token expired`).
    pub fn expire_access_token(&self, token: &str) -> bool {
        oauth::expire_access(&mut self.st(), Some(token)) > 0
    }

    /// Expires every live access token; returns how many.
    pub fn expire_access_tokens(&self) -> usize {
        oauth::expire_access(&mut self.st(), None)
    }

    /// Expires one refresh token now.
    pub fn expire_refresh_token(&self, token: &str) -> bool {
        oauth::expire_refresh(&mut self.st(), Some(token)) > 0
    }

    /// Counters (refreshes, device polls, refusals, commands...).
    pub fn counters(&self) -> Counters {
        self.st().counters.clone()
    }

    // ------------------------------------------------------------ offers and commands

    /// Seeds an offer.
    pub fn add_offer(&self, o: NewOffer) -> Result<Offer> {
        let seller = self.shared.seller_id.clone();
        Ok(offers::add(&mut self.st(), &seller, &o)?)
    }

    pub fn offer(&self, id: &str) -> Option<Offer> {
        self.st().offers.get(id).cloned()
    }

    /// Offers whose `external.id` is `sku`.
    pub fn offers_by_sku(&self, sku: &str) -> Vec<Offer> {
        self.st()
            .offers
            .values()
            .filter(|o| o.external_id.as_deref() == Some(sku))
            .cloned()
            .collect()
    }

    pub fn offers(&self) -> Vec<Offer> {
        self.st().offers.values().cloned().collect()
    }

    /// Changes an offer as the seller would on the website.
    pub fn edit_offer(&self, id: &str, f: impl FnOnce(&mut Offer)) -> bool {
        match self.st().offers.get_mut(id) {
            Some(o) => {
                f(o);
                true
            }
            None => false,
        }
    }

    /// Registered commands, oldest first.
    pub fn commands(&self) -> Vec<Command> {
        let m = self.st();
        m.command_order
            .iter()
            .filter_map(|k| m.commands.get(k).cloned())
            .collect()
    }

    /// The next task for `offer_id` fails with this code and message (e.g.
    /// `EXCEPTION_DURING_OFFER_QUANTITY_UPDATE`).
    pub fn fail_next_task(&self, offer_id: &str, code: &str, message: &str) {
        self.st()
            .task_failures
            .insert(offer_id.into(), (code.into(), message.into()));
    }

    /// The next command with `offer_id` leaves it out of its tasks and does
    /// not change it: a report Allegro left incomplete.
    pub fn omit_next_task(&self, offer_id: &str) {
        self.st().task_omissions.insert(offer_id.into());
    }

    // ------------------------------------------------------------ orders and events

    /// Places an order as a buyer (BOUGHT → FILLED_IN → READY_FOR_PROCESSING unless
    /// `stop_at`), taking stock off the offers.
    pub fn place_order(&self, o: NewOrder) -> Result<Order> {
        let seller = self.shared.seller_id.clone();
        Ok(orders::place(&mut self.st(), &seller, &o)?)
    }

    /// The buyer moves an order to its next stage.
    pub fn advance_order(&self, id: &str) -> Result<Order> {
        Ok(orders::advance(&mut self.st(), id)?)
    }

    /// The buyer cancels (BUYER_CANCELLED).
    pub fn cancel_order(&self, id: &str) -> Result<Order> {
        Ok(orders::cancel(&mut self.st(), id, false)?)
    }

    /// Allegro cancels (AUTO_CANCELLED).
    pub fn auto_cancel_order(&self, id: &str) -> Result<Order> {
        Ok(orders::cancel(&mut self.st(), id, true)?)
    }

    /// The buyer changes the order (BUYER_MODIFIED; new revision and updatedAt).
    pub fn buyer_modify_order(&self, id: &str, message: &str) -> Result<Order> {
        Ok(orders::buyer_modify(&mut self.st(), id, message)?)
    }

    /// An order with what the seller set (fulfillment status and history, shipments,
    /// invoices).
    pub fn order(&self, id: &str) -> Option<Order> {
        self.st().orders.get(id).cloned()
    }

    pub fn orders(&self) -> Vec<Order> {
        self.st().orders.values().cloned().collect()
    }

    /// The whole journal (including events past retention), oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.st().events.clone()
    }

    /// Appends another READY_FOR_PROCESSING for an order (a duplicate).
    pub fn inject_duplicate_ready(&self, order_id: &str) -> Result<Event> {
        self.inject_event(order_id, "READY_FOR_PROCESSING", None)
    }

    /// Appends an event whose `occurredAt` is earlier than the previous event's (new id).
    pub fn inject_out_of_order(&self, order_id: &str, kind: &str) -> Result<Event> {
        let earlier = {
            let m = self.st();
            m.events
                .last()
                .map(|e| e.occurred_at)
                .unwrap_or_else(|| m.now())
                - chrono::Duration::seconds(1)
        };
        self.inject_event(order_id, kind, Some(earlier))
    }

    /// Appends a late event: any type, any `occurredAt` (typically long ago), new id.
    pub fn insert_late_event(
        &self,
        order_id: &str,
        kind: &str,
        occurred_at: DateTime<Utc>,
    ) -> Result<Event> {
        self.inject_event(order_id, kind, Some(occurred_at))
    }

    fn inject_event(
        &self,
        order_id: &str,
        kind: &str,
        occurred_at: Option<DateTime<Utc>>,
    ) -> Result<Event> {
        if !EVENT_TYPES.contains(&kind) {
            return Err(ApiError::validation(format!("unknown event type {kind}")).into());
        }
        let mut m = self.st();
        let order = m
            .orders
            .get(order_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("NOT_FOUND", format!("order {order_id}")))?;
        Ok(events::push(&mut m, &order, kind, occurred_at))
    }

    /// Adds a customer return for an order.
    pub fn add_customer_return(&self, order_id: &str, status: &str) -> Result<CustomerReturn> {
        Ok(orders::add_return(&mut self.st(), order_id, status)?)
    }

    // ------------------------------------------------------------ log and faults

    /// Request log (last 10 000 API and OAuth requests), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).all()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Fault switches.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            let _ = s.await;
        }
    }
}

fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut rx: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("allegro-standin server error: {e}");
        }
    })
}

/// Fault switches of a running stand-in (cheap to clone).
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    fn edit(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut lock(&self.shared.faults).cfg);
    }

    pub fn config(&self) -> FaultConfig {
        lock(&self.shared.faults).cfg.clone()
    }

    pub fn set_config(&self, cfg: FaultConfig) {
        lock(&self.shared.faults).cfg = cfg;
    }

    pub fn clear(&self) {
        self.set_config(FaultConfig::default());
    }

    /// The next `n` requests answer `status` unprocessed.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
            c.path_contains = None;
        });
    }

    /// Like `fail_next`, only for paths containing `path_contains`.
    pub fn fail_next_matching(&self, n: u32, status: u16, path_contains: &str) {
        self.edit(|c| {
            c.fail_next = n;
            c.fail_status = status;
            c.path_contains = Some(path_contains.into());
        });
    }

    /// Each request answers `status` with probability `p`.
    pub fn set_error_probability(&self, p: f64, status: u16) {
        self.edit(|c| {
            c.fail_probability = p;
            c.fail_status = status;
        });
    }

    /// The next `n` requests are processed, then hang for `d`.
    pub fn hang_next(&self, n: u32, d: Duration) {
        self.edit(|c| {
            c.hang_next = n;
            c.hang_ms = d.as_millis() as u64;
        });
    }

    /// Latency added to every request.
    pub fn set_latency(&self, d: Duration) {
        self.edit(|c| c.latency_ms = d.as_millis() as u64);
    }
}
