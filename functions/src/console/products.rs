//! `/console/products`: per SKU what Optima says (name, prices per list,
//! stock per warehouse, when it last changed) and what each shop should
//! show and was last seen to hold, with why it is parked there; the
//! products parked in any shop, with **Sync now** for one or a selection.
//!
//! A product is found by its SKU (one BatchGetItem of its items), the
//! parked ones from their own partition: no page scans the table.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use contract::ForceSync;
use maud::{Markup, html};
use serde::Deserialize;

use crate::admin::Admin;
use crate::catalog::SkuState;
use crate::console::auth::{self, Lang, SignedIn};
use crate::console::pages::{layout, page, when};

/// SKUs one Sync now may name (one command; the agent reads them in one pass).
const MAX_SELECTED: usize = 500;

pub fn routes() -> Router<Arc<Admin>> {
    Router::new()
        .route("/console/products", get(products))
        .route("/console/products/sync", post(sync_now))
}

#[derive(Debug, Default, Deserialize)]
struct ProductsQuery {
    sku: Option<String>,
    synced: Option<usize>,
}

async fn products(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Query(query): Query<ProductsQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let sku = query
        .sku
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let shop_ids: Vec<String> = admin.shops.shops.iter().map(|s| s.id.clone()).collect();
    let found = match sku {
        Some(sku) => Some(
            admin
                .catalog
                .load_many(&[sku.to_owned()], &shop_ids)
                .await
                .map(|mut states| states.remove(sku).unwrap_or_default()),
        ),
        None => None,
    };
    let parked = admin.catalog.parked_records(200).await;
    let body = html! {
        @if let Some(count) = query.synced {
            p class="notice" role="status" {
                (lang.t("Poproszono agentów o ponowne wysłanie produktów: ", "The agents were asked to send the products again: ")) (count)
            }
        }
        form method="get" action="/console/products" role="search" {
            label for="sku" { (lang.t("Kod produktu (SKU)", "Product code (SKU)")) }
            input id="sku" name="sku" type="search" value=[sku];
            button type="submit" { (lang.t("Pokaż", "Show")) }
        }
        @if let (Some(sku), Some(found)) = (sku, &found) {
            @match found {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(state) => (product(lang, &who, sku, state, &shop_ids)),
            }
        }
        section aria-labelledby="parked" {
            h2 id="parked" { (lang.t("Produkty wstrzymane w sklepach", "Products parked in shops")) }
            @match &parked {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(parked) if parked.is_empty() => p { (lang.t("Żaden produkt nie jest wstrzymany.", "No product is parked.")) },
                Ok(parked) => form method="post" action="/console/products/sync" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    table {
                        thead { tr {
                            th scope="col" { (lang.t("Wybierz", "Select")) }
                            th scope="col" { "SKU" }
                            th scope="col" { (lang.t("Sklep", "Shop")) }
                            th scope="col" { (lang.t("Dlaczego", "Why")) }
                        } }
                        tbody {
                            @for (i, record) in parked.iter().enumerate() {
                                tr {
                                    td {
                                        input type="checkbox" id=(format!("pick-{i}")) name="sku" value=(record.sku);
                                        label for=(format!("pick-{i}")) class="visually-hidden" { (lang.t("Wybierz ", "Select ")) (record.sku) }
                                    }
                                    td { a href=(format!("/console/products?sku={}", crate::console::pages::percent(&record.sku))) { (record.sku) } }
                                    td { (record.shop) }
                                    td { (record.reasons.join("; ")) }
                                }
                            }
                        }
                    }
                    button type="submit" { (lang.t("Synchronizuj zaznaczone teraz", "Sync the selected now")) }
                },
            }
        }
    };
    page(layout(
        lang,
        lang.t("Produkty", "Products"),
        &who,
        "products",
        body,
    ))
}

/// One SKU: the ERP's records, and per shop what it should show, what it
/// holds, and why it is parked.
fn product(lang: Lang, who: &SignedIn, sku: &str, state: &SkuState, shops: &[String]) -> Markup {
    if state.records.is_empty() && state.rev == 0 {
        return html! {
            p role="status" { (lang.t("Optima nie przysłała jeszcze produktu o kodzie ", "Optima has sent no product with the code ")) (sku) "." }
        };
    }
    let erp = state.erp(sku);
    html! {
        section aria-labelledby="product" {
            h2 id="product" { (sku) }
            @match &erp {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(erp) => {
                    h3 { (lang.t("W Optimie", "In Optima")) }
                    dl {
                        @if let Some(product) = &erp.product {
                            dt { (lang.t("Nazwa", "Name")) } dd { (product.name) }
                            dt { (lang.t("Aktywny", "Active")) } dd { @if product.active { (lang.t("tak", "yes")) } @else { (lang.t("nie", "no")) } }
                            dt { "EAN" } dd { (product.ean.as_deref().unwrap_or("—")) }
                            dt { (lang.t("Grupa", "Group")) } dd { (product.group_path.join(" / ")) }
                        }
                        @for price in &erp.prices {
                            dt { (lang.t("Cena ", "Price ")) (price.price_list) }
                            dd { (price.value.round_dp(2)) " " (price.currency) }
                        }
                        @for stock in &erp.stock {
                            dt { (lang.t("Magazyn ", "Warehouse ")) (stock.warehouse) }
                            dd { (stock.quantity.normalize()) (lang.t(", zarezerwowane ", ", reserved ")) (stock.reserved.normalize()) }
                        }
                        @if let Some(newest) = erp.newest {
                            dt { (lang.t("Ostatnia zmiana", "Last changed")) } dd { (when(newest)) }
                        }
                    }
                }
            }
            h3 { (lang.t("W sklepach", "In the shops")) }
            table {
                thead { tr {
                    th scope="col" { (lang.t("Sklep", "Shop")) }
                    th scope="col" { (lang.t("Powinien pokazać", "Should show")) }
                    th scope="col" { (lang.t("Pokazuje", "Shows")) }
                    th scope="col" { (lang.t("Wstrzymany, bo", "Parked because")) }
                } }
                tbody {
                    @for shop in shops {
                        tr {
                            th scope="row" { (shop) }
                            td {
                                @match state.queued.get(shop) {
                                    Some((queued, _)) => {
                                        (lang.t("stan ", "stock ")) (opt(queued.stock_quantity))
                                        (lang.t(", cena ", ", price ")) (opt(queued.regular_price))
                                        ", " @if queued.visible { (lang.t("widoczny", "visible")) } @else { (lang.t("ukryty", "hidden")) }
                                    }
                                    None => "—",
                                }
                            }
                            td {
                                @match state.held.get(shop) {
                                    Some(held) => {
                                        (lang.t("stan ", "stock ")) (opt(held.stock_quantity))
                                        (lang.t(", cena ", ", price ")) (opt(held.regular_price))
                                        @if let Some(visible) = held.visible {
                                            ", " @if visible { (lang.t("widoczny", "visible")) } @else { (lang.t("ukryty", "hidden")) }
                                        }
                                    }
                                    None => (lang.t("nic jeszcze nie potwierdził", "nothing confirmed yet")),
                                }
                            }
                            td { (state.parked.get(shop).map(|r| r.join("; ")).unwrap_or_default()) }
                        }
                    }
                }
            }
            form method="post" action="/console/products/sync" {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="sku" value=(sku);
                button type="submit" { (lang.t("Synchronizuj teraz", "Sync now")) }
            }
        }
    }
}

fn opt(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// Sync now: the agents read these SKUs in every area and send them even
/// unchanged.
async fn sync_now(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    body: Bytes,
) -> Response {
    let form = auth::parse_form(&body);
    let mut skus: Vec<String> = form
        .iter()
        .filter(|(key, _)| key == "sku")
        .map(|(_, sku)| sku.trim().to_owned())
        .filter(|sku| !sku.is_empty())
        .collect();
    skus.sort();
    skus.dedup();
    if skus.is_empty() {
        return Redirect::to("/console/products").into_response();
    }
    if skus.len() > MAX_SELECTED {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "at most {MAX_SELECTED} products at once; use the whole offer on the Sync page"
            ),
        )
            .into_response();
    }
    let count = skus.len();
    let subject = skus.join(", ");
    let outcome = admin
        .force_sync(ForceSync {
            areas: Vec::new(),
            skus,
            ignore_hashes: true,
        })
        .await;
    let detail = match &outcome {
        Ok(agents) => format!("asked {}", agents.join(", ")),
        Err(err) => err.to_string(),
    };
    admin.record(&who, "product sync", &subject, detail).await;
    match outcome {
        Ok(_) if count == 1 => Redirect::to(&format!(
            "/console/products?synced=1&sku={}",
            crate::console::pages::percent(&subject)
        ))
        .into_response(),
        Ok(_) => Redirect::to(&format!("/console/products?synced={count}")).into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}
