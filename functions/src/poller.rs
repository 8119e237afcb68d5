//! `poller`: on a schedule, each shop's orders modified since its cursor,
//! through the same intake as the webhook ([`OrderIntake::accept`]), so a
//! lost webhook loses nothing and a duplicate does nothing.
//!
//! Per shop: `since` = the cursor ([`FeedPosition`]): a time less
//! `POLL_OVERLAP_SECONDS` (platform date filters are exclusive and at
//! second precision, and an order saved in the same second as the cursor
//! must not be missed), or a journal's position as it is; without a
//! cursor, where the platform's feed stood `POLL_INITIAL_LOOKBACK_MINUTES`
//! back from now (a new shop's history is not sent to the ERP). Pages are fetched one call at a time under the
//! shop's shared rate limit, each from the token the page before gave
//! ([`crate::shop::OrderSource`]); a platform that gives no orders is not
//! polled. The cursor becomes the newest
//! `date_modified_gmt` seen (the shop's clock, not ours), and only after
//! every page was taken in: after each page with pages left, where to go on
//! is recorded ([`PollResume`]), so a run that reaches `POLL_MAX_PAGES`
//! (50), its deadline (no page is started without room to take it in) or
//! an error leaves the next run to go on there with the same `since`; the
//! cursor never passes the revision of an order
//! stored whose command is not yet on the queue (a failed send), so the
//! next run sees that order again and sends it. An order the platform
//! sends that cannot be normalised is parked for a person and the rest
//! goes on.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::aws::Clients;
use crate::catalog::Catalog;
use crate::env::{EnvError, FunctionEnv};
use crate::orders::{OrderIntake, OrderStore, PollResume};
use crate::orders::{VatError, complete_vat};
use crate::ratelimit::{RateLimiter, ShopLimits};
use crate::returns::ReturnStore;
use crate::shop::{Connector, FeedPosition, OrderSource, VatStated};
use crate::shop_settings::BuiltFromShops;
use crate::shops::{ShopConfig, Shops};
use crate::state::StateTable;
use crate::{Deadline, HandlerError};

/// Pages read per shop and run at most (100 orders each), unless
/// `POLL_MAX_PAGES` says otherwise; a run that stops there with pages left
/// goes on from there the next time.
const MAX_PAGES: usize = 50;
/// No page is asked for with less than this left (or than the slowest page
/// of the run took): the time to fetch a page and take its orders in.
const PAGE_RESERVE: Duration = Duration::from_secs(5);
/// The longest a page waits for a rate-limit token.
const MAX_TOKEN_WAIT: Duration = Duration::from_secs(20);

pub struct Poller {
    shops: crate::shop_settings::ShopsSource,
    /// Built again when the shops change (credentials or settings saved
    /// in the console).
    connectors: BuiltFromShops<HashMap<String, Connector>>,
    intake: OrderIntake,
    store: OrderStore,
    state: StateTable,
    catalog: Catalog,
    returns: ReturnStore,
    limiter: RateLimiter,
    overlap: chrono::Duration,
    initial_lookback: chrono::Duration,
    max_pages: usize,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("shops", &self.connectors.now().keys())
            .field("overlap", &self.overlap)
            .finish()
    }
}

/// What one shop's poll did.
#[derive(Debug, Default, serde::Serialize)]
struct ShopPoll {
    shop: String,
    pages: usize,
    orders: usize,
    stored: usize,
    commands: usize,
    /// Orders whose command could not be queued yet (sent on a later run).
    pending: usize,
    parked: usize,
    /// Buyers' returns reported (kept for the office).
    returns: usize,
    error: Option<String>,
}

impl Poller {
    pub fn new(clients: &Clients, env: &FunctionEnv) -> Result<Self, EnvError> {
        let shops = Shops::from_env(env, true).map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a JSON list of shops with credentials in the SHOP_SECRETS_ARN secret",
        })?;
        // Allegro's rotating tokens: each shop's own secret.
        let shops = shops.with_token_stores(crate::shops::TokenStores::from_env(env, clients));
        let table = env.required("STATE_TABLE")?;
        let limiter = RateLimiter::new(clients.dynamodb.clone(), table.clone());
        let source = crate::shop_settings::ShopsSource::from_env(shops, clients, env);
        let pacer = limiter.clone();
        let connectors = BuiltFromShops::new(source.now(), move |shops| {
            shops.connectors(&pacer, MAX_TOKEN_WAIT)
        })
        .map_err(|e| EnvError::Invalid {
            name: "SHOPS",
            value: e.to_string(),
            expected: "a usable shop address and credentials",
        })?;
        let retention_days = env.parsed("RETENTION_DAYS", "a whole number of days")?;
        let overlap: i64 = match env.get("POLL_OVERLAP_SECONDS") {
            Some(_) => env.parsed("POLL_OVERLAP_SECONDS", "a whole number of seconds")?,
            None => 300,
        };
        let lookback: i64 = match env.get("POLL_INITIAL_LOOKBACK_MINUTES") {
            Some(_) => env.parsed("POLL_INITIAL_LOOKBACK_MINUTES", "a whole number of minutes")?,
            None => 60,
        };
        let max_pages: usize = match env.get("POLL_MAX_PAGES") {
            Some(_) => env.parsed("POLL_MAX_PAGES", "a whole number of pages")?,
            None => MAX_PAGES,
        };
        let store = OrderStore::new(clients.dynamodb.clone(), table.clone(), retention_days);
        Ok(Poller {
            shops: source,
            connectors,
            intake: OrderIntake::new(
                store.clone(),
                clients.sqs.clone(),
                env.required("COMMANDS_QUEUE_URL")?,
            ),
            store,
            state: StateTable::new(clients.dynamodb.clone(), table.clone(), retention_days),
            catalog: Catalog::new(clients.dynamodb.clone(), table.clone()),
            returns: ReturnStore::new(clients.dynamodb.clone(), table.clone()),
            limiter,
            overlap: chrono::Duration::seconds(overlap.max(1)),
            initial_lookback: chrono::Duration::minutes(lookback.max(1)),
            max_pages: max_pages.max(1),
        })
    }

    /// The handler without a time limit (tests, tools).
    pub async fn handle(&self, input: Value) -> Result<Value, HandlerError> {
        self.handle_until(input, Deadline::NONE).await
    }

    /// The handler: the schedule's input in, a summary per shop out. An
    /// error (after every shop was tried) makes the run count as failed.
    /// No page is asked for that `deadline` leaves no room to take in.
    pub async fn handle_until(
        &self,
        _input: Value,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        let mut summaries = Vec::new();
        let mut failed = Vec::new();
        // The console's saved shop settings (the order trigger), at most CACHE old.
        let shops = self.shops.refresh().await;
        self.connectors.for_shops(&shops);
        for shop in &shops.shops {
            let summary = self.poll_shop(shop, deadline).await;
            if let Some(error) = &summary.error {
                failed.push(format!("{}: {error}", shop.id));
            }
            summaries.push(summary);
        }
        if !failed.is_empty() {
            return Err(format!("poll failed for {}", failed.join("; ")).into());
        }
        Ok(json!({ "shops": summaries }))
    }

    /// The limits of a call made before the first page (a journal finding
    /// its start).
    fn start_limits(&self, deadline: Deadline) -> ShopLimits {
        let room = deadline
            .remaining()
            .map(|left| left.saturating_sub(Duration::from_secs(1)));
        ShopLimits {
            attempts: 3,
            max_token_wait: room.map_or(MAX_TOKEN_WAIT, |room| room.min(MAX_TOKEN_WAIT)),
        }
    }

    async fn poll_shop(&self, shop: &ShopConfig, deadline: Deadline) -> ShopPoll {
        let mut summary = ShopPoll {
            shop: shop.id.clone(),
            ..ShopPoll::default()
        };
        if let Err(error) = self.poll_pages(shop, &mut summary, deadline).await {
            warn!(shop = %shop.id, %error, "order poll failed; the cursor stays");
            summary.error = Some(error);
        } else if summary.orders > 0 {
            info!(shop = %shop.id, orders = summary.orders, stored = summary.stored, commands = summary.commands, "orders polled");
        }
        if summary.error.is_none()
            && let Err(error) = self.poll_returns(shop, &mut summary, deadline).await
        {
            warn!(shop = %shop.id, %error, "returns poll failed; read again next time");
            summary.error = Some(error);
        }
        summary
    }

    /// The shop's buyers' returns since the last read, kept for the office
    /// (a platform without returns is skipped).
    async fn poll_returns(
        &self,
        shop: &ShopConfig,
        summary: &mut ShopPoll,
        deadline: Deadline,
    ) -> Result<(), String> {
        let Some(source) = self
            .connectors
            .now()
            .get(&shop.id)
            .and_then(|connector| connector.returns.clone())
        else {
            return Ok(());
        };
        let mut after = self
            .returns
            .cursor(&shop.id)
            .await
            .map_err(|e| e.to_string())?;
        let since = Utc::now() - self.initial_lookback;
        for _ in 0..self.max_pages {
            if deadline.remaining().is_some_and(|left| left < PAGE_RESERVE) {
                break;
            }
            let page = source
                .list_returns(after.as_deref(), since)
                .await
                .map_err(|e| format!("listing returns: {e}"))?;
            for shop_return in &page.returns {
                self.returns
                    .record(&shop.id, shop_return)
                    .await
                    .map_err(|e| e.to_string())?;
                info!(shop = %shop.id, order = %shop_return.order_id, r#return = %shop_return.id, status = %shop_return.status, "a buyer's return: a correction is needed in the ERP");
                summary.returns += 1;
            }
            if let Some(last) = &page.after {
                self.returns
                    .set_cursor(&shop.id, last)
                    .await
                    .map_err(|e| e.to_string())?;
                after = Some(last.clone());
            }
            if !page.more {
                break;
            }
        }
        Ok(())
    }

    async fn poll_pages(
        &self,
        shop: &ShopConfig,
        summary: &mut ShopPoll,
        deadline: Deadline,
    ) -> Result<(), String> {
        let Some(connector) = self.connectors.now().get(&shop.id).cloned() else {
            return Err("no connector".to_owned());
        };
        let Some(source): Option<&dyn OrderSource> = connector.orders.as_deref() else {
            // A platform that gives no orders: nothing to poll.
            return Ok(());
        };
        let (cursor, resume) = self
            .store
            .poll_position(&shop.id)
            .await
            .map_err(|e| e.to_string())?;
        let resume_was_stored = resume.is_some();
        let (since, mut page, mut newest, mut oldest_pending) = match resume {
            Some(r) => (r.since, r.page, r.newest, r.oldest_pending),
            None => {
                let since = match cursor {
                    // Time filters are exclusive and to the second: read
                    // back over the overlap. A journal goes on from exactly
                    // where it stopped.
                    Some(FeedPosition::Time(at)) => FeedPosition::Time(at - self.overlap),
                    Some(journal) => journal,
                    None => {
                        let from = Utc::now() - self.initial_lookback;
                        self.limiter
                            .call_shop(&shop.id, self.start_limits(deadline), || source.start(from))
                            .await
                            .map_err(|e| e.to_string())?
                    }
                };
                (since, None, None, None)
            }
        };
        let mut read_to_the_end = false;
        let mut resume_saved = false;
        // What a page needs, as the slowest page of this run took.
        let mut page_time = PAGE_RESERVE;
        for _ in 0..self.max_pages {
            if !deadline.allows(page_time) {
                break;
            }
            let started = tokio::time::Instant::now();
            // The page may take what is left but a moment to say so; its
            // intake, cut short, is done again by the next run.
            let room = deadline
                .remaining()
                .map(|left| left.saturating_sub(Duration::from_secs(1)));
            let limits = ShopLimits {
                attempts: 3,
                max_token_wait: room.map_or(MAX_TOKEN_WAIT, |room| room.min(MAX_TOKEN_WAIT)),
            };
            let call = self.limiter.call_shop(&shop.id, limits, || {
                source.list_orders(&since, page.as_ref())
            });
            let listed = match room {
                Some(room) => tokio::time::timeout(room, call)
                    .await
                    .map_err(|_| "a page did not come before the deadline".to_owned())?,
                None => call.await,
            }
            .map_err(|e| e.to_string())?;
            summary.pages += 1;
            for raw in listed.orders {
                summary.orders += 1;
                let id = raw.id.clone();
                let order = match self.read_order(source, &shop.id, &raw).await {
                    Ok(order) => order,
                    Err(Unreadable::Later(err)) => return Err(err),
                    Err(Unreadable::Park(err)) => {
                        warn!(shop = %shop.id, order = %id, error = %err, "listed order cannot be normalised; parking");
                        summary.parked += 1;
                        self.state
                            .park(
                                "poller",
                                &format!("{}#{id}", shop.id),
                                "",
                                &format!("order {id} of shop {}: {err}", shop.id),
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                        continue;
                    }
                };
                let accepted = self
                    .intake
                    .accept(shop, &order)
                    .await
                    .map_err(|e| e.to_string())?;
                summary.stored += usize::from(accepted.stored);
                summary.commands +=
                    usize::from(accepted.command_sent) + usize::from(accepted.cancel_sent);
                // Where the feed shows this order again.
                let position = raw
                    .position
                    .clone()
                    .unwrap_or(FeedPosition::Time(order.revision));
                if accepted.command_pending {
                    summary.pending += 1;
                    oldest_pending = Some(match oldest_pending.take() {
                        Some(at) => at.earlier(position.clone()),
                        None => position.clone(),
                    });
                }
                newest = Some(match newest.take() {
                    Some(at) => at.later(position),
                    None => position,
                });
            }
            if let Some(end) = listed.end {
                newest = Some(match newest.take() {
                    Some(at) => at.later(end),
                    None => end,
                });
            }
            let Some(next) = listed.next else {
                read_to_the_end = true;
                break;
            };
            page = Some(next);
            page_time = page_time.max(started.elapsed());
            // Pages left: recorded after each page, so a run cut short
            // (deadline, error, timeout) goes on at the next page with the
            // same `since`; the cursor waits until every page was read.
            let resume = PollResume {
                since: since.clone(),
                page: page.clone(),
                newest: newest.clone(),
                oldest_pending: oldest_pending.clone(),
            };
            self.store
                .set_resume(&shop.id, Some(&resume))
                .await
                .map_err(|e| e.to_string())?;
            resume_saved = true;
        }
        if !read_to_the_end {
            let next_page = page.as_ref().map(|p| p.0.as_str()).unwrap_or("first");
            warn!(shop = %shop.id, pages = summary.pages, next_page, "more orders changed than one run reads; the next run goes on from here");
            return Ok(());
        }
        if resume_was_stored || resume_saved {
            self.store
                .set_resume(&shop.id, None)
                .await
                .map_err(|e| e.to_string())?;
        }
        if summary.pending > 0 {
            warn!(shop = %shop.id, pending = summary.pending, "orders stored whose command is not queued yet; the cursor holds for them");
        }
        if let Some(cursor) = next_cursor(newest, oldest_pending) {
            // Never moves back: an older cursor from an earlier run stays,
            // and still lets the pending order be seen.
            self.store
                .set_cursor(&shop.id, &cursor)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Why a listed order does not go on to the intake.
enum Unreadable {
    /// The order itself is unusable: parked for a person.
    Park(String),
    /// Something else failed (the catalogue): the run fails, the cursor stays.
    Later(String),
}

impl Poller {
    /// A listed order normalised, its VAT completed where the platform
    /// states none, and checked to fit a command.
    async fn read_order(
        &self,
        source: &dyn OrderSource,
        shop: &str,
        raw: &crate::shop::RawOrder,
    ) -> Result<contract::Order, Unreadable> {
        let mut order = source
            .normalise_order(shop, raw)
            .map_err(|e| Unreadable::Park(e.to_string()))?;
        if let VatStated::NotStated { delivery } = source.vat_stated() {
            match complete_vat(&self.catalog, &mut order, delivery).await {
                Ok(()) => {}
                Err(VatError::Store(err)) => return Err(Unreadable::Later(err.to_string())),
                Err(err) => return Err(Unreadable::Park(err.to_string())),
            }
        }
        crate::orders::command_body(&order).map_err(|e| Unreadable::Park(e.to_string()))?;
        Ok(order)
    }
}

/// The cursor after a run: the newest position seen, but not past an
/// order whose command is still pending (the next run's `since`, the cursor
/// less the overlap, or the journal position before it, then still
/// includes it).
pub fn next_cursor(
    newest: Option<FeedPosition>,
    oldest_pending: Option<FeedPosition>,
) -> Option<FeedPosition> {
    match (newest, oldest_pending) {
        (Some(newest), Some(pending)) => Some(newest.earlier(pending)),
        (newest, None) => newest,
        (None, Some(pending)) => Some(pending),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(seconds: i64) -> FeedPosition {
        FeedPosition::Time(DateTime::from_timestamp(1_750_000_000 + seconds, 0).unwrap())
    }

    fn event(id: &str) -> FeedPosition {
        FeedPosition::Journal(id.into())
    }

    #[test]
    fn a_journal_cursor_stops_before_a_pending_order_and_otherwise_reaches_the_pages_end() {
        assert_eq!(
            next_cursor(Some(event("0000000120")), Some(event("0000000100"))),
            Some(event("0000000100"))
        );
        assert_eq!(
            next_cursor(Some(event("0000000120")), None),
            Some(event("0000000120"))
        );
        // Fixed width: text order is feed order.
        assert!(event("0000000120").is_after(&event("0000000099")));
    }

    #[test]
    fn the_cursor_is_the_newest_revision_seen() {
        assert_eq!(next_cursor(None, None), None);
        assert_eq!(next_cursor(Some(at(50)), None), Some(at(50)));
    }

    #[test]
    fn the_cursor_does_not_pass_an_order_whose_command_is_pending() {
        assert_eq!(next_cursor(Some(at(50)), Some(at(10))), Some(at(10)));
        assert_eq!(next_cursor(Some(at(50)), Some(at(50))), Some(at(50)));
        assert_eq!(next_cursor(None, Some(at(10))), Some(at(10)));
    }
}
