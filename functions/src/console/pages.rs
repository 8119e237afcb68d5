//! The console's pages, server-rendered (maud escapes every value):
//! - `/console/` overview: each agent, each shop, the queues, what is
//!   configured wrong;
//! - `/console/orders`: parked orders with the reason and **Send again**,
//!   orders waiting to be realised with what blocks them, buyers' returns;
//!   a search by order number;
//! - `/console/orders/{shop}/{order}`: one order as the office and the buyer
//!   see it: its state, the ERP's documents, the tracking number, each
//!   invoice and correction with its PDF link and KSeF number, its returns;
//! - `/console/log`: what happened, newest first, filterable.
//!
//! Every page needs a signed-in operator ([`auth::require_session`]); a
//! form carries the session's CSRF token; every action goes to the log
//! with its operator. Polish by default, English with `?lang=en` (kept in
//! a cookie, [`auth::remember_language`]) or the browser's language.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::admin::{Admin, or_noted};
use crate::console::auth::{self, Lang, SignedIn};

/// The console's pages, behind the sign-in, and the sign-in pages.
pub fn routes(admin: Arc<Admin>) -> Router {
    let pages = Router::new()
        .route("/console/", get(overview))
        .route("/console/orders", get(orders))
        .route("/console/orders/{shop}/{order_id}", get(order))
        .route("/console/orders/{shop}/{order_id}/retry", post(send_again))
        .route("/console/log", get(log))
        .merge(crate::console::products::routes())
        .merge(crate::console::sync::routes())
        .merge(crate::console::shops::routes())
        .layer(middleware::from_fn_with_state(
            admin.console_auth.clone(),
            auth::require_session,
        ))
        .with_state(admin.clone());
    pages
        .merge(auth::routes(admin.console_auth.clone()))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .layer(middleware::from_fn(auth::remember_language))
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    q: Option<String>,
    sent: Option<String>,
    shop: Option<String>,
    state: Option<String>,
    /// Orders received before this time (epoch ms): the next page.
    before: Option<i64>,
}

/// A page as a response (the sign-in's middleware adds the security
/// headers to every page behind it).
pub(crate) fn page(markup: Markup) -> Response {
    auth::html_page(StatusCode::OK, markup)
}

/// The frame of every page: the menu, the operator and sign-out, the
/// language switch.
pub(crate) fn layout(
    lang: Lang,
    title: &str,
    who: &SignedIn,
    active: &str,
    body: Markup,
) -> Markup {
    let item = |href: &str, label: &str, name: &str| {
        html! {
            li {
                @if name == active {
                    a href=(href) aria-current="page" { (label) }
                } @else {
                    a href=(href) { (label) }
                }
            }
        }
    };
    auth::document(
        lang,
        title,
        html! {
        header {
            nav aria-label=(lang.t("Menu", "Menu")) {
                ul {
                    (item("/console/", lang.t("Przegląd", "Overview"), "overview"))
                    (item("/console/orders", lang.t("Zamówienia", "Orders"), "orders"))
                    (item("/console/products", lang.t("Produkty", "Products"), "products"))
                    (item("/console/sync", lang.t("Synchronizacja", "Sync"), "sync"))
                    (item("/console/shops", lang.t("Sklepy", "Shops"), "shops"))
                    (item("/console/log", lang.t("Dziennik", "Log"), "log"))
                    (item("/console/account", lang.t("Konto", "Account"), "account"))
                }
            }
            div class="who" {
                span { (who.email) }
                @match lang {
                    Lang::Pl => a href="?lang=en" lang="en" { "English" },
                    Lang::En => a href="?lang=pl" lang="pl" { "Polski" },
                }
                form method="post" action="/console/signout" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    button type="submit" { (lang.t("Wyloguj", "Sign out")) }
                }
            }
        }
        main {
            h1 { (title) }
            (body)
        }
        },
    )
}

pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Overview: agents, shops, queues, what is wrong.
async fn overview(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let report = admin.report().await;
    let body = html! {
        @for warning in &report.warnings {
            p class="warning" role="alert" { (warning) }
        }
        @for error in &report.errors {
            p class="error" role="alert" { (lang.t("Nie udało się odczytać: ", "Could not read: ")) (error) }
        }
        section aria-labelledby="agents" {
            h2 id="agents" { (lang.t("Agenci w biurze", "Office agents")) }
            @if report.agents.is_empty() {
                p { (lang.t("Żaden agent się jeszcze nie zgłosił.", "No agent has reported yet.")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t("Agent", "Agent")) }
                        th scope="col" { (lang.t("Ostatnio", "Last seen")) }
                        th scope="col" { "SQL Server" }
                        th scope="col" { (lang.t("Do wysłania", "Outbox")) }
                        th scope="col" { (lang.t("Wersja", "Version")) }
                    } }
                    tbody {
                        @for agent in &report.agents {
                            tr class=[agent.stale.then_some("stale")] {
                                th scope="row" { (agent.status.agent_id) }
                                td {
                                    (when(agent.status.last_seen))
                                    @if agent.stale { " — " strong { (lang.t("nie odpowiada", "stale")) } }
                                }
                                td {
                                    @if agent.status.sql_server_reachable {
                                        (lang.t("dostępny", "reachable"))
                                    } @else {
                                        strong { (lang.t("niedostępny", "unreachable")) }
                                        @if let Some(error) = &agent.status.sql_error { ": " (error) }
                                    }
                                }
                                td { (agent.status.outbox_depth) }
                                td { (agent.status.agent_version) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="shops" {
            h2 id="shops" { (lang.t("Sklepy", "Shops")) }
            table {
                thead { tr {
                    th scope="col" { (lang.t("Sklep", "Shop")) }
                    th scope="col" { (lang.t("Platforma", "Platform")) }
                    th scope="col" { (lang.t("Gdy agent milczy", "When the agent is silent")) }
                    th scope="col" { (lang.t("Produkty na 0", "Products held at 0")) }
                } }
                tbody {
                    @for shop in &admin.shops.shops {
                        @let zeroed = report.shops.iter().find(|s| s["shop"] == shop.id.as_str());
                        tr {
                            th scope="row" { (shop.id) }
                            td { (shop.platform.name()) }
                            td {
                                @match shop.stale_policy {
                                    crate::shops::StalePolicy::Hold => (lang.t("zostawić stan", "hold the stock")),
                                    crate::shops::StalePolicy::ZeroLowStock { threshold } => {
                                        (lang.t("0 przy stanie do ", "0 at stock up to ")) (threshold)
                                    }
                                }
                            }
                            td { (zeroed.and_then(|z| z["zeroed_products"].as_u64()).unwrap_or(0)) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="queues" {
            h2 id="queues" { (lang.t("Kolejki", "Queues")) }
            table {
                thead { tr {
                    th scope="col" { (lang.t("Kolejka", "Queue")) }
                    th scope="col" { (lang.t("Czeka", "Waiting")) }
                    th scope="col" { (lang.t("W obsłudze", "In flight")) }
                } }
                tbody {
                    @for (name, depth) in &report.queues {
                        tr class=[(name.ends_with("_dlq") && depth["visible"].as_u64().unwrap_or(0) > 0).then_some("alarm")] {
                            th scope="row" { (name) }
                            td { (depth["visible"].as_u64().map_or("?".into(), |v| v.to_string())) }
                            td { (depth["in_flight"].as_u64().map_or("?".into(), |v| v.to_string())) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="attention" {
            h2 id="attention" { (lang.t("Do wyjaśnienia", "Needs attention")) }
            ul {
                li { a href="/console/orders" { (lang.t("Wstrzymane zamówienia: ", "Parked orders: ")) (report.parked_orders.len()) } }
                li { (lang.t("Wstrzymane produkty: ", "Parked products: ")) (report.parked_records.len()) }
                li { (lang.t("Wstrzymane komunikaty: ", "Parked messages: ")) (report.parked.len()) }
                li { a href="/console/orders#returns" { (lang.t("Zwroty do korekty: ", "Returns to correct: ")) (report.returns.iter().filter(|r| r.corrections.is_empty()).count()) } }
            }
        }
    };
    page(layout(
        lang,
        lang.t("Przegląd", "Overview"),
        &who,
        "overview",
        body,
    ))
}

/// Orders: parked (with Send again), waiting to be realised, returns.
async fn orders(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Query(query): Query<PageQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let wanted = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let all_shops: Vec<String> = admin.shops.shops.iter().map(|s| s.id.clone()).collect();
    let shops: Vec<String> = match query.shop.as_deref().filter(|s| !s.is_empty()) {
        Some(shop) => all_shops.iter().filter(|s| *s == shop).cloned().collect(),
        None => all_shops.clone(),
    };
    let state_filter = query.state.as_deref().and_then(OrderState::named);
    // Found by keys and listings, never a scan: the search by its terms (and
    // the shop's own id), else the newest received.
    let listed =
        match wanted {
            Some(text) => {
                let mut found = admin.orders.find(&shops, text, PAGE_ORDERS).await;
                if let Ok(found) = &mut found {
                    for shop in &shops {
                        if let Ok(Some(stored)) = admin.orders.get(shop, text).await
                            && !found.iter().any(|o| {
                                o.order.shop == *shop && o.order.order_id == stored.order.order_id
                            })
                        {
                            found.insert(0, stored);
                        }
                    }
                }
                found
            }
            // Parked ones have their own listing; other states are looked for
            // among the newest, a few pages back at most.
            None if state_filter == Some(OrderState::Parked) => {
                admin.orders.parked_orders(&shops, PAGE_ORDERS).await
            }
            None => {
                let mut kept = Vec::new();
                let mut before = query.before;
                let mut result = Ok(());
                for _ in 0..FILTER_PAGES {
                    match admin.orders.recent(&shops, before, PAGE_ORDERS).await {
                        Ok(page) => {
                            let full = page.len() == PAGE_ORDERS;
                            before = page.last().map(|o| o.received_ms).filter(|ms| *ms > 0);
                            kept.extend(page.into_iter().filter(|o| {
                                state_filter.is_none_or(|want| OrderState::of(o) == want)
                            }));
                            if !full
                                || before.is_none()
                                || kept.len() >= PAGE_ORDERS
                                || state_filter.is_none()
                            {
                                break;
                            }
                        }
                        Err(err) => {
                            result = Err(err);
                            break;
                        }
                    }
                }
                kept.truncate(PAGE_ORDERS);
                result.map(|()| kept)
            }
        };
    let older = match (&listed, wanted, state_filter) {
        (Ok(orders), None, None) if orders.len() == PAGE_ORDERS => {
            orders.last().map(|o| o.received_ms).filter(|ms| *ms > 0)
        }
        _ => None,
    };
    let (parked_orders, awaiting, returns) = futures::join!(
        admin.orders.parked(200),
        admin.orders.awaiting_realisation_list(200),
        admin.returns_of_all_shops(200),
    );
    let mut errors = Vec::new();
    let parked_orders = or_noted(parked_orders, &mut errors);
    let awaiting = or_noted(awaiting, &mut errors);
    let returns = or_noted(returns, &mut errors);
    let body = html! {
        @for error in &errors {
            p class="error" role="alert" { (lang.t("Nie udało się odczytać: ", "Could not read: ")) (error) }
        }
        form method="get" action="/console/orders" role="search" {
            label for="q" { (lang.t("Szukaj: numer zamówienia, e-mail, nazwisko kupującego lub SKU", "Search: order number, e-mail, buyer's surname or SKU")) }
            input id="q" name="q" type="search" value=[wanted];
            label for="shop" { (lang.t("Sklep", "Shop")) }
            select id="shop" name="shop" {
                option value="" { (lang.t("wszystkie", "all")) }
                @for shop in &all_shops {
                    option value=(shop) selected[query.shop.as_deref() == Some(shop.as_str())] { (shop) }
                }
            }
            label for="state" { (lang.t("Stan", "State")) }
            select id="state" name="state" {
                option value="" { (lang.t("każdy", "any")) }
                @for state in OrderState::ALL {
                    option value=(state.name()) selected[state_filter == Some(state)] { (state.words(lang)) }
                }
            }
            button type="submit" { (lang.t("Pokaż", "Show")) }
        }
        section aria-labelledby="listed" {
            h2 id="listed" {
                @if wanted.is_some() { (lang.t("Znalezione", "Found")) } @else { (lang.t("Ostatnie zamówienia", "Latest orders")) }
            }
            @match &listed {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(orders) if orders.is_empty() => p {
                    @if let Some(text) = wanted {
                        (lang.t("Nic nie pasuje do: ", "Nothing matches: ")) (text)
                    } @else {
                        (lang.t("Brak zamówień.", "No orders."))
                    }
                },
                Ok(orders) => div class="table-wrap" { table {
                    thead { tr {
                        th scope="col" { (lang.t("Zamówienie", "Order")) }
                        th scope="col" { (lang.t("Kupujący", "Buyer")) }
                        th scope="col" { (lang.t("Złożone", "Placed")) }
                        th scope="col" { (lang.t("Stan", "State")) }
                        th scope="col" { (lang.t("Dokument w Optimie", "Document in Optima")) }
                        th scope="col" { (lang.t("Przesyłka", "Tracking")) }
                    } }
                    tbody {
                        @for stored in orders {
                            tr {
                                th scope="row" { a href=(order_href(&stored.order.shop, &stored.order.order_id)) { (stored.order.shop) " / " (stored.order.number) } }
                                td { (stored.order.buyer.billing.name) }
                                td { (when(stored.order.placed_at)) }
                                td { (order_state_words(lang, stored)) }
                                td { (stored.erp_document_number.as_deref().unwrap_or("—")) }
                                td { (stored.tracking.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                } },
            }
            @if let Some(before) = older {
                p { a href=(format!("/console/orders?before={before}{}{}",
                        query.shop.as_deref().map(|s| format!("&shop={}", percent(s))).unwrap_or_default(),
                        query.state.as_deref().map(|s| format!("&state={}", percent(s))).unwrap_or_default()))
                    { (lang.t("Starsze", "Older")) } }
            }
        }
        section aria-labelledby="parked" {
            h2 id="parked" { (lang.t("Wstrzymane", "Parked")) }
            @if parked_orders.is_empty() {
                p { (lang.t("Żadne zamówienie nie czeka na wyjaśnienie.", "No order is parked.")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t("Sklep", "Shop")) }
                        th scope="col" { (lang.t("Zamówienie", "Order")) }
                        th scope="col" { (lang.t("Powód", "Reason")) }
                        th scope="col" { (lang.t("Od", "Since")) }
                        th scope="col" { (lang.t("Akcja", "Action")) }
                    } }
                    tbody {
                        @for parked in &parked_orders {
                            tr {
                                td { (parked.shop) }
                                th scope="row" { a href=(order_href(&parked.shop, &parked.order_id)) { (parked.number) } }
                                td { (parked.reason) }
                                td { (when(parked.parked_at)) }
                                td {
                                    form method="post" action=(format!("{}/retry", order_href(&parked.shop, &parked.order_id))) {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        button type="submit" aria-label=(format!("{} {}", lang.t("Wyślij ponownie", "Send again"), parked.number)) {
                                            (lang.t("Wyślij ponownie", "Send again"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p class="hint" { (lang.t(
                    "Najpierw usuń przyczynę w Optimie (np. dodaj towar o tym kodzie), potem wyślij ponownie.",
                    "Fix the cause in Optima first (e.g. add the product with that code), then send it again.")) }
            }
        }
        section aria-labelledby="awaiting" {
            h2 id="awaiting" { (lang.t("Do realizacji w Optimie", "Waiting to be realised in Optima")) }
            @if awaiting.is_empty() {
                p { (lang.t("Nic nie czeka.", "Nothing waits.")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t("Zamówienie", "Order")) }
                        th scope="col" { (lang.t("Dokument", "Document")) }
                        th scope="col" { (lang.t("Stan", "State")) }
                    } }
                    tbody {
                        @for waiting in &awaiting {
                            tr {
                                th scope="row" { a href=(order_href(&waiting.shop, &waiting.order_id)) { (waiting.shop) " / " (waiting.number) } }
                                td { (waiting.document) }
                                td {
                                    @if waiting.ready {
                                        (lang.t("gotowe do realizacji", "ready to realise"))
                                    } @else {
                                        (waiting.blocked_by.join("; "))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="returns" {
            h2 id="returns" { (lang.t("Zwroty", "Returns")) }
            @if returns.is_empty() {
                p { (lang.t("Brak zwrotów.", "No returns.")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t("Zamówienie", "Order")) }
                        th scope="col" { (lang.t("Towary", "Items")) }
                        th scope="col" { (lang.t("Korekta", "Correction")) }
                    } }
                    tbody {
                        @for returned in &returns {
                            tr {
                                th scope="row" { a href=(order_href(&returned.shop, &returned.shop_return.order_id)) { (returned.shop) " / " (returned.shop_return.order_id) } }
                                td {
                                    @for item in &returned.shop_return.items {
                                        (item.quantity) " × " (item.sku.as_deref().unwrap_or(&item.name)) br;
                                    }
                                }
                                td {
                                    @if returned.corrections.is_empty() {
                                        strong { (lang.t("potrzebna korekta w Optimie", "needs a correction in Optima")) }
                                    } @else {
                                        (returned.corrections.join(", "))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(layout(
        lang,
        lang.t("Zamówienia", "Orders"),
        &who,
        "orders",
        body,
    ))
}

fn order_href(shop: &str, order_id: &str) -> String {
    format!("/console/orders/{}/{}", percent(shop), percent(order_id))
}

/// What a path segment leaves unescaped: letters, digits and `-_.~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment, escaped (ids are the shop's, not ours).
pub(crate) fn percent(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// One order: state, documents, tracking, invoices with their links and
/// KSeF numbers, returns.
async fn order(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path((shop, order_id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let stored = match admin.orders.get(&shop, &order_id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            let body = html! { p { (lang.t("Nie ma takiego zamówienia (albo wygasło).", "No such order (or it expired).")) } };
            return auth::html_page(
                StatusCode::NOT_FOUND,
                layout(lang, &order_id, &who, "orders", body),
            );
        }
        Err(err) => {
            let body = html! { p class="error" role="alert" { (err.to_string()) } };
            return auth::html_page(
                StatusCode::SERVICE_UNAVAILABLE,
                layout(lang, &order_id, &who, "orders", body),
            );
        }
    };
    let invoices = admin
        .invoices
        .for_order(&shop, &order_id)
        .await
        .unwrap_or_default();
    let returns: Vec<_> = admin
        .returns
        .list(&shop, 200)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.shop_return.order_id == order_id)
        .collect();
    let state = order_state_words(lang, &stored);
    let title = format!("{} {}", lang.t("Zamówienie", "Order"), stored.order.number);
    let body = html! {
        @if query.sent.is_some() {
            p class="notice" role="status" { (lang.t("Wysłane ponownie do Optimy.", "Sent to Optima again.")) }
        }
        dl {
            dt { (lang.t("Sklep", "Shop")) } dd { (shop) }
            dt { (lang.t("Stan", "State")) } dd { (state) }
            dt { (lang.t("Status w sklepie", "Shop status")) } dd { (stored.order.status) }
            dt { (lang.t("Dokument w Optimie", "Document in Optima")) }
            dd { (stored.erp_document_number.as_deref().unwrap_or("—")) }
            dt { (lang.t("Dokumenty", "Documents")) }
            dd { @if stored.documents.is_empty() { "—" } @else { (stored.documents.join(", ")) } }
            dt { (lang.t("Numer przesyłki", "Tracking number")) }
            dd { (stored.tracking.as_deref().unwrap_or("—")) }
            dt { (lang.t("Ponowne wysłania", "Sent again")) } dd { (stored.retries) }
        }
        @if stored.parked_reason.is_some() {
            form method="post" action=(format!("{}/retry", order_href(&shop, &order_id))) {
                input type="hidden" name="csrf" value=(who.csrf);
                button type="submit" { (lang.t("Wyślij ponownie", "Send again")) }
            }
        }
        section aria-labelledby="invoices" {
            h2 id="invoices" { (lang.t("Faktury dla kupującego", "The buyer's invoices")) }
            @if invoices.is_empty() {
                p { (lang.t("Jeszcze żadnej.", "None yet.")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { (lang.t("Numer", "Number")) }
                        th scope="col" { (lang.t("Numer KSeF", "KSeF number")) }
                        th scope="col" { "PDF" }
                    } }
                    tbody {
                        @for (_, record) in &invoices {
                            tr {
                                th scope="row" { (record.rendered_number.as_deref().unwrap_or("…")) }
                                td {
                                    @match record.rendered_ksef.as_deref().filter(|k| !k.is_empty()) {
                                        Some(ksef) => (ksef),
                                        None => (lang.t("oczekuje na nadanie", "awaiting KSeF")),
                                    }
                                }
                                td {
                                    @if admin.document_link_base.is_empty() {
                                        (lang.t("link jeszcze nieznany", "link not known yet"))
                                    } @else {
                                        a href=(format!("{}/invoice/{}", admin.document_link_base, record.token)) rel="noreferrer" {
                                            (lang.t("otwórz", "open"))
                                        }
                                        @if record.link_queued { " " (lang.t("(wysłany do sklepu)", "(sent to the shop)")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !returns.is_empty() {
            section aria-labelledby="order-returns" {
                h2 id="order-returns" { (lang.t("Zwroty", "Returns")) }
                ul {
                    @for returned in &returns {
                        li {
                            (when(returned.shop_return.created_at)) ": "
                            @for item in &returned.shop_return.items {
                                (item.quantity) " × " (item.sku.as_deref().unwrap_or(&item.name)) " "
                            }
                            "— "
                            @if returned.corrections.is_empty() {
                                strong { (lang.t("potrzebna korekta w Optimie", "needs a correction in Optima")) }
                            } @else {
                                (lang.t("korekta: ", "correction: ")) (returned.corrections.join(", "))
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="lines" {
            h2 id="lines" { (lang.t("Pozycje", "Lines")) }
            table {
                thead { tr {
                    th scope="col" { "SKU" }
                    th scope="col" { (lang.t("Nazwa", "Name")) }
                    th scope="col" { (lang.t("Ilość", "Quantity")) }
                } }
                tbody {
                    @for line in &stored.order.lines {
                        tr {
                            td { (line.sku) }
                            td { (line.name) }
                            td { (line.quantity) }
                        }
                    }
                }
            }
        }
    };
    page(layout(lang, &title, &who, "orders", body))
}

/// Orders a page lists.
const PAGE_ORDERS: usize = 50;
/// Pages of the newest orders a state filter reads through at most.
const FILTER_PAGES: usize = 4;

/// Where an order is, for the list's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderState {
    Received,
    Parked,
    InOptima,
    Realised,
    Closed,
}

impl OrderState {
    const ALL: [OrderState; 5] = [
        OrderState::Received,
        OrderState::Parked,
        OrderState::InOptima,
        OrderState::Realised,
        OrderState::Closed,
    ];

    fn name(self) -> &'static str {
        match self {
            OrderState::Received => "received",
            OrderState::Parked => "parked",
            OrderState::InOptima => "in_optima",
            OrderState::Realised => "realised",
            OrderState::Closed => "closed",
        }
    }

    fn named(name: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|s| s.name() == name)
    }

    fn words(self, lang: Lang) -> &'static str {
        match self {
            OrderState::Received => lang.t(
                "przyjęte, jeszcze nie w Optimie",
                "received, not in Optima yet",
            ),
            OrderState::Parked => lang.t("wstrzymane", "parked"),
            OrderState::InOptima => lang.t("w Optimie", "in Optima"),
            OrderState::Realised => lang.t("zrealizowane", "realised"),
            OrderState::Closed => lang.t(
                "anulowane lub zamknięte w sklepie",
                "cancelled or closed in the shop",
            ),
        }
    }

    fn of(stored: &crate::orders::StoredOrder) -> OrderState {
        let stage = stored.stage.as_deref();
        if stored.order.state.is_closed() || stored.withdrawn || stage == Some("cancelled") {
            OrderState::Closed
        } else if stored.parked_reason.is_some() {
            OrderState::Parked
        } else if matches!(stage, Some("invoiced" | "shipped")) {
            OrderState::Realised
        } else if stored.erp_document_number.is_some() || stage.is_some() {
            OrderState::InOptima
        } else {
            OrderState::Received
        }
    }
}

/// An order's state in words: parked with its reason, the ERP's stage,
/// closed in the shop, in Optima, queued, received.
fn order_state_words(lang: Lang, stored: &crate::orders::StoredOrder) -> String {
    if let Some(reason) = &stored.parked_reason {
        format!("{}: {reason}", lang.t("wstrzymane", "parked"))
    } else if let Some(stage) = &stored.stage {
        stage_words(lang, stage).to_owned()
    } else if stored.order.state.is_closed() {
        format!(
            "{} ({})",
            lang.t("zamknięte w sklepie", "closed in the shop"),
            stored.order.status
        )
    } else if stored.erp_document_number.is_some() {
        lang.t("w Optimie", "in Optima").to_owned()
    } else if stored.command_rev_ms.is_some() {
        lang.t("w kolejce do Optimy", "queued for Optima")
            .to_owned()
    } else {
        lang.t("przyjęte", "received").to_owned()
    }
}

fn stage_words(lang: Lang, stage: &str) -> &'static str {
    match stage {
        "accepted" => lang.t("w Optimie, przed realizacją", "in Optima, not realised yet"),
        "invoiced" => lang.t("zafakturowane", "invoiced"),
        "shipped" => lang.t("wysłane", "shipped"),
        "cancelled" => lang.t("anulowane", "cancelled"),
        _ => lang.t("w Optimie", "in Optima"),
    }
}

/// Send again: the parked order goes to Optima once more (after the
/// operator fixed the cause), logged with the operator. The form's CSRF
/// token was checked by the sign-in's middleware.
async fn send_again(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path((shop, order_id)): Path<(String, String)>,
) -> Response {
    let Some(config) = admin.shops.get(&shop) else {
        return (StatusCode::NOT_FOUND, "no such shop").into_response();
    };
    let intake = crate::orders::OrderIntake::new(
        admin.orders.clone(),
        admin.clients.sqs.clone(),
        admin.commands_queue_url(),
    );
    let outcome = intake.retry(config, &order_id).await;
    let detail = match &outcome {
        Ok(retried) => format!("{retried:?}"),
        Err(err) => err.to_string(),
    };
    admin
        .record(
            &who,
            "order sent again",
            &format!("{shop}/{order_id}"),
            detail,
        )
        .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("{}?sent=1", order_href(&shop, &order_id))).into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

/// The log: newest first, filterable.
async fn log(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Query(query): Query<PageQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let filter = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let entries = admin.log.newest(Utc::now(), 7, 200, filter).await;
    let body = html! {
        form method="get" action="/console/log" role="search" {
            label for="q" { (lang.t("Szukaj w dzienniku", "Search the log")) }
            input id="q" name="q" type="search" value=[filter];
            button type="submit" { (lang.t("Szukaj", "Search")) }
        }
        @match &entries {
            Err(err) => p class="error" role="alert" { (err.to_string()) },
            Ok(entries) if entries.is_empty() => p { (lang.t("Pusto.", "Nothing.")) },
            Ok(entries) => table {
                thead { tr {
                    th scope="col" { (lang.t("Kiedy", "When")) }
                    th scope="col" { (lang.t("Kto", "Who")) }
                    th scope="col" { (lang.t("Co", "What")) }
                    th scope="col" { (lang.t("Czego dotyczy", "Subject")) }
                    th scope="col" { (lang.t("Szczegóły", "Details")) }
                } }
                tbody {
                    @for entry in entries {
                        tr {
                            td { (when(entry.at)) }
                            td { (entry.actor) }
                            td { (entry.action) }
                            td { (entry.subject) }
                            td { (entry.detail) }
                        }
                    }
                }
            },
        }
    };
    page(layout(lang, lang.t("Dziennik", "Log"), &who, "log", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shops_ids_are_escaped_in_links() {
        assert_eq!(order_href("sklep", "12"), "/console/orders/sklep/12");
        assert_eq!(
            order_href("a b", "x/../y?z"),
            "/console/orders/a%20b/x%2F..%2Fy%3Fz"
        );
    }
}
