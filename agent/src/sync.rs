//! Sync passes: read Optima, project, stage what changed.
//!
//! Three triggers, as the seeds ask: documents changed since the
//! `TrN_TS_Mod` cursor (and products since `Twr_TS_Mod`) re-read only the
//! items on them, every `sync.poll_seconds`; interval passes per data kind;
//! and forced passes, whole or per area or SKU (the `agent sync` command and
//! the cloud's force-sync command). A pass only stages records (see
//! [`crate::store`]); the sender batches and sends them.

use std::collections::BTreeSet;

use chrono::{Duration as ChronoDuration, NaiveDateTime, Utc};
use contract::SyncArea;
use tracing::{debug, info};

use crate::optima;
use crate::sql::{SqlClient, SqlError};
use crate::store::{RecordKind, Staged, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which products a pass covers.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Skus(Vec<String>),
    Ids(Vec<i32>),
}

/// What a pass did, per kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub items: usize,
    pub products: Staged,
    pub prices: Staged,
    pub stock: Staged,
}

impl PassReport {
    pub fn changed(&self) -> usize {
        self.products.changed + self.prices.changed + self.stock.changed
    }

    fn add(&mut self, other: PassReport) {
        self.items += other.items;
        for (mine, theirs) in [
            (&mut self.products, other.products),
            (&mut self.prices, other.prices),
            (&mut self.stock, other.stock),
        ] {
            mine.read += theirs.read;
            mine.changed += theirs.changed;
        }
    }
}

const PAGE: usize = 500;
const DOCUMENT_CURSOR: &str = "documents_ts_mod";
const PRODUCT_CURSOR: &str = "products_ts_mod";
/// A cursor keeps its stamp's full precision: SQL Server's `datetime` ticks
/// in 1/300 s, and a cursor cut to the millisecond sits just below the
/// newest stamp, which `> cursor` then finds (and moves the cursor to)
/// on every poll.
const CURSOR_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";
/// Less than one `datetime` tick (1/300 s), more than its rounding.
const CURSOR_TICK_MARGIN: ChronoDuration = ChronoDuration::milliseconds(2);

/// Reads the given areas for a set of product ids and stages what changed.
async fn read_and_stage(
    sql: &mut SqlClient,
    store: &Store,
    areas: &BTreeSet<SyncArea>,
    ids: &[i32],
    ignore_hashes: bool,
    price_list_key: optima::PriceListKey,
) -> Result<PassReport, SyncError> {
    let now = Utc::now();
    let mut report = PassReport {
        items: ids.len(),
        ..PassReport::default()
    };
    if ids.is_empty() {
        return Ok(report);
    }
    if areas.contains(&SyncArea::Catalogue) {
        let groups = optima::group_paths(sql).await?;
        let products = optima::products(sql, ids, &groups).await?;
        let keyed: Vec<_> = products.into_iter().map(|p| (p.sku.clone(), p)).collect();
        report.products = store.stage(RecordKind::Products, &keyed, ignore_hashes, now)?;
    }
    if areas.contains(&SyncArea::Prices) {
        let prices = optima::prices(sql, ids, price_list_key).await?;
        let keyed: Vec<_> = prices
            .into_iter()
            .map(|p| (format!("{}|{}", p.sku, p.price_list), p))
            .collect();
        report.prices = store.stage(RecordKind::Prices, &keyed, ignore_hashes, now)?;
    }
    if areas.contains(&SyncArea::Stock) {
        let stock = optima::stock(sql, ids, now).await?;
        let keyed: Vec<_> = stock
            .into_iter()
            .map(|s| (format!("{}|{}", s.sku, s.warehouse), s))
            .collect();
        report.stock = store.stage(RecordKind::Stock, &keyed, ignore_hashes, now)?;
    }
    Ok(report)
}

/// A full or scoped pass over the given areas. `progress(done, total)` is
/// called after each page (total is unknown, `None`, for whole-catalogue passes).
pub async fn pass(
    sql: &mut SqlClient,
    store: &Store,
    areas: &[SyncArea],
    scope: &Scope,
    ignore_hashes: bool,
    price_list_key: optima::PriceListKey,
    mut progress: impl FnMut(usize, Option<usize>),
) -> Result<PassReport, SyncError> {
    let areas: BTreeSet<SyncArea> = if areas.is_empty() {
        [SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock].into()
    } else {
        areas.iter().copied().collect()
    };
    let mut report = PassReport::default();
    match scope {
        Scope::All => {
            let mut after = 0;
            loop {
                let ids = optima::product_ids_page(sql, after, PAGE).await?;
                let Some(&last) = ids.last() else { break };
                after = last;
                report.add(
                    read_and_stage(sql, store, &areas, &ids, ignore_hashes, price_list_key).await?,
                );
                progress(report.items, None);
            }
        }
        Scope::Skus(skus) => {
            let ids = optima::product_ids_for_skus(sql, skus).await?;
            report.add(
                read_and_stage(sql, store, &areas, &ids, ignore_hashes, price_list_key).await?,
            );
            progress(report.items, Some(ids.len()));
        }
        Scope::Ids(ids) => {
            for chunk in ids.chunks(PAGE) {
                report.add(
                    read_and_stage(sql, store, &areas, chunk, ignore_hashes, price_list_key)
                        .await?,
                );
                progress(report.items, Some(ids.len()));
            }
        }
    }
    info!(
        areas = ?areas,
        items = report.items,
        changed = report.changed(),
        products = report.products.changed,
        prices = report.prices.changed,
        stock = report.stock.changed,
        "pass done"
    );
    Ok(report)
}

fn parse_cursor(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, CURSOR_FORMAT).ok()
}

/// When each cursor last moved, by the server's clock, in this process.
///
/// A row can turn up stamped before a cursor after the cursor passed it (a
/// transaction that commits after a later one, equal stamps, a workstation
/// whose clock lags): the overlap is for those, and they arrive within
/// `overlap` of the cursor's move. So a poll re-reads the overlap only until
/// `overlap` has passed since the cursor last moved; after that it asks for
/// newer stamps only, and an idle office costs a clock read and two empty
/// queries, not the items of its last documents re-read every poll. Kept in
/// memory: after a restart every cursor counts as just moved, so the first
/// polls re-read the overlap (what a crash may have left unread).
#[derive(Debug, Default)]
pub struct CursorMoves(
    std::collections::HashMap<&'static str, NaiveDateTime>,
    /// When products were last polled (they are polled less often).
    Option<std::time::Instant>,
);

impl CursorMoves {
    /// Stores cursor `name` at `stamp`, moved at the server's `now`.
    fn set(
        &mut self,
        store: &Store,
        name: &'static str,
        stamp: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<(), SyncError> {
        store.set_cursor(name, &stamp.format(CURSOR_FORMAT).to_string())?;
        self.0.insert(name, now);
        Ok(())
    }
}

/// The document/product cursor poll: items on documents changed since the
/// cursor get their stock (and prices) re-read; products changed get their
/// card re-read. Cursors are the newest stamps seen, kept in the store; while
/// a cursor moved within the last `overlap`, the poll starts `overlap`
/// earlier (see [`CursorMoves`]), and hashes make the re-read free to send.
///
/// Products are polled at most every `product_every`: Optima has no index
/// on `Twr_TS_Mod`, so that poll reads the whole of `CDN.Towary`, where the
/// document poll only seeks.
pub async fn poll_changes(
    sql: &mut SqlClient,
    store: &Store,
    overlap: ChronoDuration,
    moves: &mut CursorMoves,
    price_list_key: optima::PriceListKey,
    product_every: std::time::Duration,
) -> Result<PassReport, SyncError> {
    let (report, cost) = optima::costed(async {
        let server_now = optima::server_now(sql).await?;
        let mut report = PassReport::default();
        for (name, areas) in [
            (DOCUMENT_CURSOR, vec![SyncArea::Stock, SyncArea::Prices]),
            (
                PRODUCT_CURSOR,
                vec![SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock],
            ),
        ] {
            if name == PRODUCT_CURSOR {
                if moves.1.is_some_and(|at| at.elapsed() < product_every) {
                    continue;
                }
                moves.1 = Some(std::time::Instant::now());
            }
            let Some(cursor) = store.cursor(name)?.as_deref().and_then(parse_cursor) else {
                // First run: start from now; the initial full pass covers the past.
                moves.set(store, name, server_now, server_now)?;
                continue;
            };
            let moved_at = *moves.0.entry(name).or_insert(server_now);
            let since = if server_now <= moved_at + overlap {
                cursor - overlap
            } else {
                // `TS_Mod` is a `datetime` (1/300 s ticks): a newer stamp is at
                // least 3.3 ms later. Asking for 2 ms past the cursor skips the
                // cursor's own row however the server compares a `datetime`
                // column with our `datetime2` parameter (SQL Server 2016 widens
                // the column to 100 ns, where the cursor, read back and sent
                // again, can sit a fraction of a tick below it).
                cursor + CURSOR_TICK_MARGIN
            };
            let (ids, newest) = if name == DOCUMENT_CURSOR {
                optima::items_on_documents_since(sql, since).await?
            } else {
                optima::products_modified_since(sql, since).await?
            };
            let areas: BTreeSet<SyncArea> = areas.into_iter().collect();
            report.add(read_and_stage(sql, store, &areas, &ids, false, price_list_key).await?);
            if let Some(newest) = newest.filter(|n| *n > cursor) {
                moves.set(store, name, newest, server_now)?;
            }
        }
        Ok::<_, SyncError>(report)
    })
    .await;
    let report = report?;
    debug!(
        items = report.items,
        changed = report.changed(),
        statements = cost.statements,
        rows = cost.rows,
        "cursor poll"
    );
    Ok(report)
}

/// Forced passes asked for and not started yet, merged into one: a
/// request never waits for a slot (the commands loop, orders included,
/// goes on while a long pass runs), and ten requests during a pass make
/// one pass after it, not ten.
#[derive(Debug, Default)]
pub struct ForceRequests {
    waiting: std::sync::Mutex<Option<contract::ForceSync>>,
    asked: tokio::sync::Notify,
}

impl ForceRequests {
    pub fn ask(&self, request: contract::ForceSync) {
        self.put_back(request);
        self.asked.notify_one();
    }

    /// A request that could not run yet (another sync held the lease, or
    /// SQL Server failed), for the next round: merged with any asked
    /// meanwhile, and not waking the loop, which waits its usual while.
    pub fn put_back(&self, request: contract::ForceSync) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match waiting.as_mut() {
            Some(earlier) => earlier.merge(request),
            None => *waiting = Some(request),
        }
    }

    /// The merged request, if any, leaving none waiting.
    pub fn take(&self) -> Option<contract::ForceSync> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Until a request is asked (at once if one was asked since the last wait).
    pub async fn asked(&self) {
        self.asked.notified().await
    }
}

/// The sync loop of the running agent: an initial full pass, then cursor
/// polls every `poll_seconds`, interval passes per area, and forced passes
/// from the commands queue. SQL Server errors drop the connection and back
/// off; the loop never ends before shutdown.
pub async fn run(
    config: crate::config::AgentConfig,
    store: std::sync::Arc<Store>,
    outbox_changed: std::sync::Arc<tokio::sync::Notify>,
    forced: std::sync::Arc<ForceRequests>,
    cancel: tokio_util::sync::CancellationToken,
) {
    use std::time::{Duration, Instant};
    // The same holder across restarts, so a service killed inside a pass
    // takes its own lease back at once instead of waiting for it to expire.
    let holder = format!("service:{}", config.agent_id);
    let sync = config.sync.clone();
    // The catalogue first: the cloud maps prices and stock onto product cards.
    let intervals = [
        (
            SyncArea::Catalogue,
            Duration::from_secs(sync.catalogue_minutes * 60),
        ),
        (
            SyncArea::Prices,
            Duration::from_secs(sync.prices_minutes * 60),
        ),
        (
            SyncArea::Stock,
            Duration::from_secs(sync.stock_minutes * 60),
        ),
    ];
    // None = never ran: every area gets a full pass at start.
    let mut last_pass: std::collections::HashMap<SyncArea, Instant> =
        std::collections::HashMap::new();
    let mut sql: Option<SqlClient> = None;
    let mut backoff = crate::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let overlap = ChronoDuration::seconds(sync.overlap_seconds as i64);
    let mut cursor_moves = CursorMoves::default();
    loop {
        if sql.is_none() {
            match crate::sql::connect(&config.sql_target()).await {
                Ok(client) => {
                    if backoff.reset() {
                        info!("SQL Server reachable again; syncing");
                    }
                    sql = Some(client);
                }
                Err(err) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in = ?wait, "cannot reach SQL Server; the sync waits");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            }
        }
        let Some(client) = sql.as_mut() else { continue };
        // One lease for every pass, shared with `agent sync`: a manual and
        // an automatic sync never run at the same time.
        let mut result: Result<usize, SyncError> = Ok(0);
        // Forced passes first: someone is waiting for them.
        if let Some(request) = forced.take() {
            let scope = if request.skus.is_empty() {
                Scope::All
            } else {
                Scope::Skus(request.skus.clone())
            };
            let ran = leased(
                &store,
                &holder,
                pass(
                    client,
                    &store,
                    &request.areas,
                    &scope,
                    request.ignore_hashes,
                    config.sync.price_list_key,
                    |_, _| {},
                ),
            )
            .await;
            result = match ran {
                Ok(Some(report)) => Ok(report.changed()),
                Ok(None) => {
                    forced.put_back(request);
                    Ok(0)
                }
                Err(err) => {
                    forced.put_back(request);
                    Err(err)
                }
            };
        }
        for (area, every) in intervals {
            if result.is_err() {
                break;
            }
            if last_pass.get(&area).is_some_and(|at| at.elapsed() < every) {
                continue;
            }
            match leased(
                &store,
                &holder,
                pass(
                    client,
                    &store,
                    &[area],
                    &Scope::All,
                    false,
                    sync.price_list_key,
                    |_, _| {},
                ),
            )
            .await
            {
                Ok(Some(report)) => {
                    last_pass.insert(area, Instant::now());
                    result = result.map(|staged| staged + report.changed());
                }
                // Another sync holds the lease: this pass is still due.
                Ok(None) => {}
                Err(err) => result = Err(err),
            }
        }
        if result.is_ok() {
            // Add the poll's changes to the passes': any change wakes the sender.
            let staged = result.as_ref().copied().unwrap_or(0);
            let poll = poll_changes(
                client,
                &store,
                overlap,
                &mut cursor_moves,
                sync.price_list_key,
                Duration::from_secs(sync.product_poll_seconds),
            );
            result = leased(&store, &holder, poll)
                .await
                .map(|r| staged + r.map(|r| r.changed()).unwrap_or(0));
        }
        match result {
            Ok(changed) => {
                if changed > 0 {
                    outbox_changed.notify_one();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "sync pass failed; reconnecting to SQL Server");
                sql = None;
                continue;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = forced.asked() => {}
            _ = tokio::time::sleep(Duration::from_secs_f64(sync.poll_seconds)) => {}
        }
    }
}

/// The lease every sync pass runs under.
pub const SYNC_LEASE: &str = "sync";
/// How long a lease lasts without renewal: a holder that died frees it by then.
const LEASE_TTL: ChronoDuration = ChronoDuration::seconds(90);

/// Runs `work` under the store's sync lease (one sync at a time, across the
/// service and `agent sync`), renewing it while the work runs.
/// `Ok(None)` when another holder has it.
pub async fn leased<T>(
    store: &Store,
    holder: &str,
    work: impl std::future::Future<Output = Result<T, SyncError>>,
) -> Result<Option<T>, SyncError> {
    let now = Utc::now();
    if !store.take_lease(SYNC_LEASE, holder, now, now + LEASE_TTL)? {
        debug!(
            lease = SYNC_LEASE,
            "another sync is running; waiting for it"
        );
        return Ok(None);
    }
    let renew = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            let now = Utc::now();
            if let Err(err) = store.take_lease(SYNC_LEASE, holder, now, now + LEASE_TTL) {
                tracing::warn!(error = %err, "cannot renew the sync lease");
            }
        }
    };
    let result = tokio::select! {
        result = work => result,
        never = renew => match never {},
    };
    store.release_lease(SYNC_LEASE, holder)?;
    result.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(read: usize, changed: usize) -> Staged {
        Staged { read, changed }
    }

    #[test]
    fn reports_add_up_per_kind_and_count_what_changed() {
        let mut report = PassReport {
            items: 2,
            products: staged(2, 1),
            prices: staged(3, 2),
            stock: staged(4, 3),
        };
        assert_eq!(report.changed(), 6);
        report.add(PassReport {
            items: 5,
            products: staged(10, 20),
            prices: staged(30, 40),
            stock: staged(50, 60),
        });
        assert_eq!(
            report,
            PassReport {
                items: 7,
                products: staged(12, 21),
                prices: staged(33, 42),
                stock: staged(54, 63),
            }
        );
        assert_eq!(report.changed(), 126);
    }

    fn force(areas: &[SyncArea], skus: &[&str]) -> contract::ForceSync {
        contract::ForceSync {
            areas: areas.to_vec(),
            skus: skus.iter().map(|s| s.to_string()).collect(),
            ignore_hashes: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn forced_passes_asked_meanwhile_become_one_and_a_put_back_one_waits_its_turn() {
        let requests = ForceRequests::default();
        assert_eq!(requests.take(), None);
        requests.ask(force(&[SyncArea::Stock], &["A"]));
        requests.ask(force(&[SyncArea::Prices], &["B"]));
        // Asked: the sync loop wakes at once.
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), requests.asked()).await;
        assert!(woke.is_ok(), "not woken by a request");
        assert_eq!(
            requests.take(),
            Some(force(&[SyncArea::Prices, SyncArea::Stock], &["A", "B"]))
        );
        assert_eq!(requests.take(), None, "taken: none left");
        // Put back (another sync held the lease): kept for the next round,
        // merged with one put back meanwhile, and the loop is not woken.
        requests.put_back(force(&[SyncArea::Stock], &["A"]));
        requests.put_back(force(&[SyncArea::Stock], &["C"]));
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), requests.asked()).await;
        assert!(woke.is_err(), "a put-back request woke the loop");
        assert_eq!(
            requests.take(),
            Some(force(&[SyncArea::Stock], &["A", "C"]))
        );
    }

    #[tokio::test]
    async fn a_sync_runs_only_under_the_lease_and_frees_it_however_it_ends() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("state.sqlite"))?;
        let now = Utc::now();
        assert!(store.take_lease(SYNC_LEASE, "service:biuro", now, now + LEASE_TTL)?);
        let mut ran = false;
        let got = leased(&store, "cli:1", async {
            ran = true;
            Ok::<_, SyncError>(7)
        })
        .await?;
        assert_eq!(got, None, "another holder has the lease");
        assert!(!ran, "the work ran without the lease");
        // Its holder runs, and frees it when done.
        assert_eq!(
            leased(&store, "service:biuro", async { Ok::<_, SyncError>(7) }).await?,
            Some(7)
        );
        // A failed pass frees it too.
        let failed = leased(&store, "cli:1", async {
            Err::<u8, _>(SyncError::Store(StoreError::Poisoned))
        })
        .await;
        assert!(matches!(
            failed,
            Err(SyncError::Store(StoreError::Poisoned))
        ));
        assert_eq!(
            leased(&store, "service:biuro", async { Ok::<_, SyncError>(8) }).await?,
            Some(8)
        );
        Ok(())
    }

    #[test]
    fn a_cursor_keeps_its_stamp_to_the_tick() {
        let third_of_a_tick = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
            .and_then(|d| d.and_hms_nano_opt(17, 0, 0, 3_333_333));
        let whole_second =
            chrono::NaiveDate::from_ymd_opt(2026, 12, 4).and_then(|d| d.and_hms_opt(17, 0, 0));
        for stamp in [third_of_a_tick, whole_second].into_iter().flatten() {
            let text = stamp.format(CURSOR_FORMAT).to_string();
            assert_eq!(parse_cursor(&text), Some(stamp), "{text}");
        }
        // Cursors stored by earlier versions, to the millisecond, still read.
        assert!(parse_cursor("2026-12-04T17:00:00.003").is_some());
    }
}
