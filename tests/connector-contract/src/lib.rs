//! The contract every shop connector and its stand-in pass.
//!
//! A platform's test file implements [`Platform`] over its stand-in (start
//! it, seed it, break it, read what it holds) and runs every case below
//! with [`contract_suite!`]. The cases name no platform: what differs is
//! said by the platform ([`Platform::status_after`], [`Credentials`],
//! its [`Example`]s). Each case asserts what the shop received or answered,
//! never what the connector believes.
//!
//! Cases:
//! - [`lookups_by_sku`]: 250 SKUs found exactly, a missing one absent;
//! - [`batch_writes_with_per_item_refusals`]: one unknown item refused in
//!   place while the rest land, read back from the shop;
//! - [`paging_over_500_orders_with_concurrent_changes`]: every order seen
//!   while orders change and arrive between pages, and what changed seen
//!   again from where the listing ended;
//! - [`documented_examples`]: the platform's own example payloads;
//! - [`webhook_signatures`]: good, tampered, wrong secret, unsigned, no
//!   secret configured;
//! - [`errors_say_what_to_do`]: 429 with and without `Retry-After` (and
//!   the gate told), 5xx, a timeout, then back to work;
//! - [`credentials`]: refused credentials are an auth error; refreshing
//!   credentials are refreshed when they expire;
//! - [`order_updates`]: a stage, a cancellation, a tracking number, an
//!   invoice, as the platform shows them;
//! - [`never_more_requests_than_the_limit`]: at most the limit in any
//!   window at the shop, every request admitted by the gate first.

pub mod gate;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use contract::OrderStage;
use functions::mapping::ProductChanges;
use functions::shop::{
    Connector, Delivery, FeedPosition, ItemOutcome, OrderUpdate, PageToken, RawOrder, Rejection,
    RequestGate, Secret, ShopError, ShopItemId, UpdateOutcome,
};
use rust_decimal::Decimal;

pub use gate::LocalGate;

/// How a platform's credentials behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// Keys that stay valid until someone revokes them (WooCommerce).
    Static,
    /// Access tokens that expire and are refreshed (Allegro, Shoper).
    Refreshing,
}

/// What a shop shows of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub price: Decimal,
    pub stock: Option<i64>,
}

/// What a shop shows of an order.
#[derive(Debug, Clone, Default)]
pub struct OrderView {
    /// The platform's status, as it names it.
    pub status: String,
    /// Everything the buyer is shown as text (notes, tracking, invoices).
    pub texts: Vec<String>,
}

/// One of the platform's documented example payloads and what must
/// become of it.
pub struct Example {
    /// Where it comes from (the platform's public documentation).
    pub source: &'static str,
    pub body: Vec<u8>,
    pub check: fn(Result<contract::Order, functions::shop::OrderParseError>) -> anyhow::Result<()>,
}

/// A platform's test adapter over its stand-in.
#[allow(async_fn_in_trait)]
pub trait Platform: Sized {
    /// The connector's `platform`.
    const NAME: &'static str;
    const CREDENTIALS: Credentials;

    /// The connector, every request through `gate`.
    fn connector(&self, gate: Arc<dyn RequestGate>) -> anyhow::Result<Connector>;
    /// The connector with credentials the shop refuses.
    fn connector_with_wrong_credentials(
        &self,
        gate: Arc<dyn RequestGate>,
    ) -> anyhow::Result<Connector>;
    /// The connector's timeout per request.
    fn request_timeout(&self) -> Duration;

    /// Products with these SKUs, at 10.00 with 5 in stock.
    async fn add_products(&self, skus: &[String]) -> anyhow::Result<()>;
    async fn shown(&self, sku: &str) -> anyhow::Result<Option<Shown>>;
    /// An item id the shop does not have.
    fn unknown_item(&self) -> ShopItemId;

    /// `n` orders of one `sku` each, as buyers place them; their ids.
    async fn place_orders(&self, sku: &str, n: usize) -> anyhow::Result<Vec<String>>;
    /// A change to an order that its feed must show again.
    async fn change_order(&self, id: &str) -> anyhow::Result<()>;
    async fn order_view(&self, id: &str) -> anyhow::Result<OrderView>;
    /// How far back a time position is read again (the poller's overlap).
    fn overlap(&self) -> chrono::Duration {
        chrono::Duration::seconds(300)
    }
    /// The platform status an ERP stage sets with the default settings;
    /// `None`: the stage shows nothing.
    fn status_after(&self, stage: OrderStage) -> Option<String>;

    fn examples(&self) -> Vec<Example>;
    /// The headers the platform sends with a webhook `body` signed with `secret`.
    fn signed(&self, body: &[u8], secret: &str) -> http::HeaderMap;
    /// The header that carries the signature.
    fn signature_header(&self) -> &'static str;

    /// The next `n` API requests answer `status`, with `Retry-After` if given.
    async fn fail_next(&self, n: u32, status: u16, retry_after: Option<u64>);
    /// The next API request takes `delay` to answer.
    async fn hang_next(&self, delay: Duration);
    /// Expires the access token (refreshing platforms).
    async fn expire_credentials(&self) -> anyhow::Result<()>;
    /// Token refreshes the stand-in has granted.
    async fn refreshes(&self) -> anyhow::Result<usize>;

    /// When each API request reached the stand-in, since the last clear.
    async fn request_times(&self) -> anyhow::Result<Vec<DateTime<Utc>>>;
    async fn clear_requests(&self);
}

/// Every case as a test of the calling file, for one platform: `start` is
/// an async expression giving `anyhow::Result<P>`.
#[macro_export]
macro_rules! contract_suite {
    ($start:expr) => {
        $crate::contract_suite!(@case $start, lookups_by_sku);
        $crate::contract_suite!(@case $start, batch_writes_with_per_item_refusals);
        $crate::contract_suite!(@case $start, paging_over_500_orders_with_concurrent_changes);
        $crate::contract_suite!(@case $start, documented_examples);
        $crate::contract_suite!(@case $start, webhook_signatures);
        $crate::contract_suite!(@case $start, errors_say_what_to_do);
        $crate::contract_suite!(@case $start, credentials);
        $crate::contract_suite!(@case $start, order_updates);
        $crate::contract_suite!(@case $start, never_more_requests_than_the_limit);
    };
    (@case $start:expr, $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() -> anyhow::Result<()> {
            let platform = $start.await?;
            $crate::$case(&platform).await
        }
    };
}

fn skus(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn unlimited() -> Arc<LocalGate> {
    Arc::new(LocalGate::unlimited())
}

/// 250 SKUs found, each once and exactly; one the shop lacks absent.
pub async fn lookups_by_sku<P: Platform>(p: &P) -> anyhow::Result<()> {
    let skus = skus("LOOK", 250);
    p.add_products(&skus).await?;
    let connector = p.connector(unlimited())?;
    let sink = connector.catalogue.context("a catalogue sink")?;
    let mut wanted = skus.clone();
    wanted.push("LOOK-MISSING".into());
    // A SKU that is a prefix of others must not match them.
    wanted.push("LOOK-00".into());
    let ids = sink.lookup_ids(&wanted).await?;
    ensure!(ids.len() == 250, "{} of 250 found: {ids:?}", ids.len());
    for sku in &skus {
        ensure!(ids.contains_key(sku), "{sku} not found");
    }
    ensure!(!ids.contains_key("LOOK-MISSING") && !ids.contains_key("LOOK-00"));
    let distinct: HashSet<_> = ids.values().collect();
    ensure!(distinct.len() == 250, "two SKUs share an id");
    Ok(())
}

fn change(price: Decimal, stock: i64) -> ProductChanges {
    ProductChanges {
        regular_price: Some(price),
        stock_quantity: Some(stock),
        ..ProductChanges::default()
    }
}

/// A batch with one item the shop does not have: that item is refused in
/// place with a reason, the others land, read back from the shop.
pub async fn batch_writes_with_per_item_refusals<P: Platform>(p: &P) -> anyhow::Result<()> {
    let skus = skus("BATCH", 9);
    p.add_products(&skus).await?;
    let connector = p.connector(unlimited())?;
    let sink = connector.catalogue.context("a catalogue sink")?;
    ensure!(
        sink.max_batch() >= 10,
        "a batch of {} items",
        sink.max_batch()
    );
    let ids = sink.lookup_ids(&skus).await?;
    let mut items = Vec::new();
    for (i, sku) in skus.iter().enumerate() {
        let id = ids.get(sku).context("looked up")?.clone();
        items.push((id, change(Decimal::new(1234 + i as i64, 2), i as i64)));
    }
    items.insert(4, (p.unknown_item(), change(Decimal::new(999, 2), 1)));
    let outcomes = sink.write_products(&items).await?;
    ensure!(
        outcomes.len() == 10,
        "{} outcomes for 10 items",
        outcomes.len()
    );
    match &outcomes[4] {
        ItemOutcome::Rejected { code, message } => ensure!(
            !code.is_empty() && !message.is_empty(),
            "a refusal without a reason"
        ),
        other => bail!("the unknown item answered {other:?}"),
    }
    for (i, sku) in skus.iter().enumerate() {
        let at = if i < 4 { i } else { i + 1 };
        ensure!(outcomes[at].is_ok(), "{sku}: {:?}", outcomes[at]);
        let shown = p.shown(sku).await?.context("still in the shop")?;
        ensure!(
            shown
                == Shown {
                    price: Decimal::new(1234 + i as i64, 2),
                    stock: Some(i as i64)
                },
            "{sku} shows {shown:?}"
        );
    }
    Ok(())
}

/// What one pass over the feed saw.
#[derive(Debug, Default)]
struct Pass {
    pages: usize,
    /// Order id → the statuses seen, in order.
    seen: BTreeMap<String, Vec<String>>,
    newest: Option<FeedPosition>,
}

async fn read_feed<P: Platform>(
    connector: &Connector,
    from: &FeedPosition,
    mut between_pages: impl AsyncFnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Pass> {
    let source = connector.orders.as_ref().context("an order source")?;
    let mut pass = Pass::default();
    let mut page: Option<PageToken> = None;
    loop {
        let listed = source.list_orders(from, page.as_ref()).await?;
        pass.pages += 1;
        ensure!(pass.pages <= 100, "more than 100 pages");
        for raw in listed.orders {
            let order = source
                .normalise_order(P::NAME, &raw)
                .with_context(|| format!("order {} normalises", raw.id))?;
            let position = raw.position.unwrap_or(FeedPosition::Time(order.revision));
            pass.newest = Some(match pass.newest.take() {
                Some(at) => at.later(position),
                None => position,
            });
            pass.seen
                .entry(order.order_id.clone())
                .or_default()
                .push(order.status.clone());
        }
        if let Some(end) = listed.end {
            pass.newest = Some(match pass.newest.take() {
                Some(at) => at.later(end),
                None => end,
            });
        }
        match listed.next {
            Some(next) => page = Some(next),
            None => return Ok(pass),
        }
        between_pages(pass.pages).await?;
    }
}

/// 500 orders listed page by page from a position taken before they were
/// placed, while between pages one order already read and one not yet
/// read change and three new ones arrive: every one of the 500 is seen,
/// and a second listing from where the first ended (a time read back
/// over the overlap) shows each change and each new order as the shop
/// holds it now.
pub async fn paging_over_500_orders_with_concurrent_changes<P: Platform>(
    p: &P,
) -> anyhow::Result<()> {
    p.add_products(&["PAGE-1".to_owned()]).await?;
    let connector = p.connector(unlimited())?;
    let source = connector.orders.clone().context("an order source")?;
    let start = source
        .start(Utc::now() - chrono::Duration::minutes(1))
        .await?;
    let placed = p.place_orders("PAGE-1", 500).await?;
    ensure!(placed.len() == 500);
    let (read_early, read_late) = (placed[10].clone(), placed[480].clone());
    let mut arrived = Vec::new();
    let first = read_feed::<P>(&connector, &start, async |page| {
        if page == 1 {
            p.change_order(&read_early).await?;
            p.change_order(&read_late).await?;
            arrived = p.place_orders("PAGE-1", 3).await?;
        }
        Ok(())
    })
    .await?;
    ensure!(first.pages >= 2, "500 orders on {} page", first.pages);
    let missing: Vec<_> = placed
        .iter()
        .filter(|id| !first.seen.contains_key(*id))
        .collect();
    ensure!(
        missing.is_empty(),
        "{} of 500 orders never listed: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let end = first.newest.clone().context("a position after the pass")?;
    let resume = match end {
        FeedPosition::Time(at) => FeedPosition::Time(at - p.overlap()),
        journal => journal,
    };
    let second = read_feed::<P>(&connector, &resume, async |_| Ok(())).await?;
    for id in [&read_early, &read_late].into_iter().chain(arrived.iter()) {
        let now = p.order_view(id).await?.status;
        let last_seen = second
            .seen
            .get(id)
            .or_else(|| first.seen.get(id))
            .and_then(|statuses| statuses.last())
            .with_context(|| format!("order {id} never listed"))?;
        ensure!(
            *last_seen == now,
            "order {id} is {now} in the shop, last listed as {last_seen}"
        );
    }
    Ok(())
}

/// The platform's documented example payloads normalise as each says.
pub async fn documented_examples<P: Platform>(p: &P) -> anyhow::Result<()> {
    let connector = p.connector(unlimited())?;
    let source = connector.orders.context("an order source")?;
    let examples = p.examples();
    ensure!(!examples.is_empty(), "no documented example");
    for example in examples {
        let raw = RawOrder {
            id: "example".into(),
            body: example.body.clone(),
            position: None,
        };
        (example.check)(source.normalise_order(P::NAME, &raw))
            .with_context(|| format!("example from {}", example.source))?;
    }
    Ok(())
}

/// A delivery signed with the shop's secret is an order; a tampered body,
/// another secret, no signature or no secret configured are refused.
pub async fn webhook_signatures<P: Platform>(p: &P) -> anyhow::Result<()> {
    let connector = p.connector(unlimited())?;
    let Some(verifier) = connector.webhooks.as_ref() else {
        // A poll-only platform: no webhook reaches an order.
        ensure!(connector.capabilities().webhooks == false);
        return Ok(());
    };
    let body = p
        .examples()
        .first()
        .context("an example body")?
        .body
        .clone();
    let secret = Secret::new("whsec-contract-1");
    let headers = p.signed(&body, "whsec-contract-1");
    let now = Utc::now();
    match verifier.verify(&headers, &body, Some(&secret), now) {
        Ok(Delivery::Order(raw)) => ensure!(raw.body == body, "the body changed on the way"),
        other => bail!("a good signature: {other:?}"),
    }
    let mut tampered = body.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    ensure!(
        matches!(
            verifier.verify(&headers, &tampered, Some(&secret), now),
            Err(Rejection::BadSignature(_))
        ),
        "a tampered body passed"
    );
    ensure!(
        matches!(
            verifier.verify(&headers, &body, Some(&Secret::new("whsec-other")), now),
            Err(Rejection::BadSignature(_))
        ),
        "another secret passed"
    );
    let mut unsigned = headers.clone();
    unsigned.remove(p.signature_header());
    ensure!(
        matches!(
            verifier.verify(&unsigned, &body, Some(&secret), now),
            Err(Rejection::MissingSignature(_))
        ),
        "an unsigned order passed"
    );
    ensure!(
        matches!(
            verifier.verify(&headers, &body, None, now),
            Err(Rejection::NoSecret)
        ),
        "an order passed without a secret configured"
    );
    Ok(())
}

/// 429 with `Retry-After` and without, 5xx and a timeout each answer the
/// error that says what to do, the gate hears of each 429, and the next
/// call works.
pub async fn errors_say_what_to_do<P: Platform>(p: &P) -> anyhow::Result<()> {
    let skus = skus("ERR", 3);
    p.add_products(&skus).await?;
    let gate = Arc::new(LocalGate::unlimited());
    let connector = p.connector(gate.clone())?;
    let sink = connector.catalogue.context("a catalogue sink")?;

    p.fail_next(1, 429, Some(1)).await;
    match sink.lookup_ids(&skus).await {
        Err(ShopError::RateLimited { retry_after }) => ensure!(
            retry_after == Some(Duration::from_secs(1)),
            "Retry-After read as {retry_after:?}"
        ),
        other => bail!("a 429 with Retry-After: {other:?}"),
    }
    p.fail_next(1, 429, None).await;
    match sink.lookup_ids(&skus).await {
        Err(ShopError::RateLimited { retry_after: None }) => {}
        other => bail!("a 429 without Retry-After: {other:?}"),
    }
    ensure!(
        gate.penalties() == vec![Some(Duration::from_secs(1)), None],
        "the gate heard {:?}",
        gate.penalties()
    );
    for status in [500, 502, 503] {
        p.fail_next(1, status, None).await;
        match sink.lookup_ids(&skus).await {
            Err(ShopError::Transient(_)) => {}
            other => bail!("a {status}: {other:?}"),
        }
    }
    p.hang_next(p.request_timeout() + Duration::from_secs(2))
        .await;
    let asked = Instant::now();
    match sink.lookup_ids(&skus).await {
        Err(ShopError::Transient(_)) => {}
        other => bail!("a request past the timeout: {other:?}"),
    }
    ensure!(
        asked.elapsed() < p.request_timeout() + Duration::from_secs(2),
        "the timeout took {:?}",
        asked.elapsed()
    );
    let ids = sink.lookup_ids(&skus).await?;
    ensure!(ids.len() == 3, "after the faults: {ids:?}");
    Ok(())
}

/// Refused credentials are an auth error (nothing works until a person
/// acts); refreshing credentials that expire are refreshed and the call
/// goes through.
pub async fn credentials<P: Platform>(p: &P) -> anyhow::Result<()> {
    let skus = skus("CRED", 2);
    p.add_products(&skus).await?;
    let wrong = p.connector_with_wrong_credentials(unlimited())?;
    match wrong
        .catalogue
        .context("a catalogue sink")?
        .lookup_ids(&skus)
        .await
    {
        Err(ShopError::Auth(_)) => {}
        other => bail!("refused credentials: {other:?}"),
    }
    if P::CREDENTIALS == Credentials::Refreshing {
        let connector = p.connector(unlimited())?;
        let sink = connector.catalogue.context("a catalogue sink")?;
        sink.lookup_ids(&skus).await?;
        let before = p.refreshes().await?;
        p.expire_credentials().await?;
        let ids = sink.lookup_ids(&skus).await?;
        ensure!(ids.len() == 2, "after the token expired: {ids:?}");
        ensure!(
            p.refreshes().await? > before,
            "the expired token was not refreshed"
        );
    }
    Ok(())
}

/// Each update shows as the platform shows it; one that maps to nothing
/// says so; a tracking number applied twice is safe.
pub async fn order_updates<P: Platform>(p: &P) -> anyhow::Result<()> {
    p.add_products(&["UPD-1".to_owned()]).await?;
    let ids = p.place_orders("UPD-1", 2).await?;
    let connector = p.connector(unlimited())?;
    let updater = connector.updates.context("an order updater")?;
    for stage in [
        OrderStage::Accepted,
        OrderStage::Invoiced,
        OrderStage::Shipped,
    ] {
        let outcome = updater
            .apply_order_update(&ids[0], &OrderUpdate::Stage { stage })
            .await?;
        match p.status_after(stage) {
            Some(status) => {
                ensure!(
                    matches!(outcome, UpdateOutcome::Applied(_)),
                    "{stage:?}: {outcome:?}"
                );
                let now = p.order_view(&ids[0]).await?.status;
                ensure!(now == status, "{stage:?} shows {now}, expected {status}");
            }
            None => ensure!(
                outcome == UpdateOutcome::NotApplicable,
                "{stage:?} maps to nothing: {outcome:?}"
            ),
        }
    }
    if updater.supports("tracking") {
        let tracking = OrderUpdate::Tracking {
            number: "PL0001234567".into(),
            carrier: Some("InPost".into()),
        };
        updater.apply_order_update(&ids[0], &tracking).await?;
        updater.apply_order_update(&ids[0], &tracking).await?;
        let view = p.order_view(&ids[0]).await?;
        let shown = view
            .texts
            .iter()
            .filter(|t| t.contains("PL0001234567"))
            .count();
        ensure!(shown == 1, "the tracking number shown once: {view:?}");
    }
    if updater.supports("invoice") {
        // The buyer's link serves a real PDF (a platform may upload it);
        // the second delivery is a redelivery and adds nothing.
        let link = serve_invoice_pdf().await?;
        let invoice = OrderUpdate::Invoice {
            number: "FS/1/2026".into(),
            link: link.clone(),
            corrects: None,
        };
        updater.apply_order_update(&ids[0], &invoice).await?;
        updater.apply_order_update(&ids[0], &invoice).await?;
        let view = p.order_view(&ids[0]).await?;
        let shown: Vec<&String> = view
            .texts
            .iter()
            .filter(|t| t.contains(&link) || t.contains("FS/1/2026"))
            .collect();
        ensure!(shown.len() == 1, "the invoice shown once: {view:?}");
        // A correction of it (a return) goes beside it, once too.
        let correction_link = serve_invoice_pdf().await?;
        let correction = OrderUpdate::Invoice {
            number: "FSKOR/1/2026".into(),
            link: correction_link.clone(),
            corrects: Some("FS/1/2026".into()),
        };
        updater.apply_order_update(&ids[0], &correction).await?;
        updater.apply_order_update(&ids[0], &correction).await?;
        let view = p.order_view(&ids[0]).await?;
        let corrections = view
            .texts
            .iter()
            .filter(|t| t.contains("FSKOR/1/2026"))
            .count();
        let invoices = view
            .texts
            .iter()
            .filter(|t| t.contains("FS/1/2026") && !t.contains("FSKOR/1/2026"))
            .count();
        ensure!(
            corrections == 1 && invoices == 1,
            "the invoice and its correction shown once each: {view:?}"
        );
    }
    ensure!(updater.supports("cancel"), "every platform cancels");
    updater
        .apply_order_update(&ids[1], &OrderUpdate::Cancel)
        .await?;
    if let Some(status) = p.status_after(OrderStage::Cancelled) {
        let now = p.order_view(&ids[1]).await?.status;
        ensure!(now == status, "a cancelled order shows {now}");
    }
    Ok(())
}

/// With the limit at 5 a second, lookups, batch writes and order pages
/// never reach the shop more than 5 times in any second, and each request
/// the shop saw was admitted by the gate first.
pub async fn never_more_requests_than_the_limit<P: Platform>(p: &P) -> anyhow::Result<()> {
    const LIMIT: usize = 5;
    let skus = skus("RATE", 250);
    p.add_products(&skus).await?;
    p.add_products(&["RATE-ORD".to_owned()]).await?;
    let orders_from = Utc::now() - chrono::Duration::minutes(1);
    p.place_orders("RATE-ORD", 150).await?;
    p.clear_requests().await;
    let gate = Arc::new(LocalGate::limited(LIMIT, Duration::from_secs(1)));
    let connector = p.connector(gate.clone())?;
    let sink = connector.catalogue.clone().context("a catalogue sink")?;
    let ids = sink.lookup_ids(&skus).await?;
    let items: Vec<_> = skus
        .iter()
        .filter_map(|sku| ids.get(sku))
        .map(|id| (id.clone(), change(Decimal::new(2500, 2), 7)))
        .collect();
    for chunk in items.chunks(sink.max_batch()) {
        sink.write_products(chunk).await?;
    }
    let source = connector.orders.clone().context("an order source")?;
    let from = source.start(orders_from).await?;
    read_feed::<P>(&connector, &from, async |_| Ok(())).await?;

    let mut times = p.request_times().await?;
    times.sort();
    ensure!(
        times.len() == gate.admitted(),
        "{} requests reached the shop, {} were admitted",
        times.len(),
        gate.admitted()
    );
    ensure!(times.len() > LIMIT, "only {} requests", times.len());
    let second = chrono::Duration::seconds(1);
    let busiest = times
        .iter()
        .enumerate()
        .map(|(i, at)| times[i..].iter().take_while(|t| **t - *at < second).count())
        .max()
        .unwrap_or(0);
    ensure!(
        busiest <= LIMIT,
        "{busiest} requests within one second at a limit of {LIMIT}"
    );
    Ok(())
}

/// A buyer's invoice link on 127.0.0.1 serving a small PDF, for as long as
/// the test runs.
async fn serve_invoice_pdf() -> anyhow::Result<String> {
    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/invoice/{token}",
        axum::routing::get(|| async { ([(http::header::CONTENT_TYPE, "application/pdf")], PDF) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!(
        "http://{address}/invoice/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd"
    ))
}
