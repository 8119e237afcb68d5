//! `/console/sync`: forced passes per area (seed 004's manual sync: only
//! stock, only prices, the catalogue, everything, or the whole offer again
//! even where nothing changed), each one click; and each
//! shop's emergency switch (seed 003: stop pushing, show 0 stock, pause
//! orders), with who switched it and when. Every press goes to the log.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use contract::{ForceSync, SyncArea};
use maud::{Markup, html};
use serde::Deserialize;

use crate::admin::Admin;
use crate::console::auth::{self, Lang, SignedIn};
use crate::console::log::LogEntry;
use crate::console::pages::{layout, page, when};
use crate::emergency::{Push, Switch};

pub fn routes() -> Router<Arc<Admin>> {
    Router::new()
        .route("/console/sync", get(sync_page).post(force))
        .route("/console/emergency/{shop}", post(switch))
}

/// What a forced-pass button asks for, by its `pass` value.
fn pass_named(name: &str) -> Option<ForceSync> {
    let areas = |areas: &[SyncArea]| areas.to_vec();
    let (areas, ignore_hashes) = match name {
        "stock" => (areas(&[SyncArea::Stock]), false),
        "prices" => (areas(&[SyncArea::Prices]), false),
        "catalogue" => (areas(&[SyncArea::Catalogue]), false),
        "all" => (Vec::new(), false),
        "full" => (Vec::new(), true),
        _ => return None,
    };
    Some(ForceSync {
        areas,
        skus: Vec::new(),
        ignore_hashes,
    })
}

/// The buttons: `pass` value, label.
/// No button for customers: no agent sends customer cards yet (a buyer
/// becomes Optima's customer with the order), so a customers pass would
/// do nothing.
fn passes(lang: Lang) -> [(&'static str, &'static str); 5] {
    [
        ("stock", lang.t("Tylko stany", "Stock only")),
        ("prices", lang.t("Tylko ceny", "Prices only")),
        (
            "catalogue",
            lang.t(
                "Katalog (nazwy, grupy, VAT)",
                "Catalogue (names, groups, VAT)",
            ),
        ),
        (
            "all",
            lang.t("Wszystko, co się zmieniło", "Everything that changed"),
        ),
        (
            "full",
            lang.t(
                "Cała oferta od nowa (także bez zmian)",
                "The whole offer again (unchanged too)",
            ),
        ),
    ]
}

#[derive(Debug, Default, Deserialize)]
struct SyncQuery {
    asked: Option<String>,
    switched: Option<String>,
}

async fn sync_page(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Query(query): Query<SyncQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let agents = admin.state.agents().await;
    let mut switches = Vec::new();
    for shop in &admin.shops.shops {
        let waiting = admin
            .orders
            .paused(&shop.id, 200)
            .await
            .map(|ids| ids.len());
        switches.push((
            shop.id.clone(),
            admin.emergency.get(&shop.id).await,
            waiting,
        ));
    }
    let body = html! {
        @if let Some(asked) = &query.asked {
            p class="notice" role="status" {
                (lang.t("Poproszono agentów o przebieg: ", "The agents were asked for a pass: ")) (asked)
            }
        }
        @if let Some(shop) = &query.switched {
            p class="notice" role="status" {
                (lang.t("Przełącznik awaryjny sklepu zmieniony: ", "The shop's emergency switch changed: ")) (shop)
            }
        }
        section aria-labelledby="passes" {
            h2 id="passes" { (lang.t("Wymuś synchronizację", "Force a sync")) }
            p { (lang.t(
                "Agent w biurze czyta Optimę od razu, nie czekając na swój harmonogram. Zwykły przebieg wysyła tylko to, co się zmieniło; „cała oferta od nowa” wysyła każdy produkt jeszcze raz.",
                "The office agent reads Optima now instead of waiting for its schedule. A normal pass sends only what changed; \u{201c}the whole offer again\u{201d} sends every product once more."
            )) }
            @match &agents {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(agents) if agents.is_empty() => p class="warning" role="alert" {
                    (lang.t("Żaden agent się jeszcze nie zgłosił: nie ma kogo poprosić.", "No agent has reported yet: there is nobody to ask."))
                },
                Ok(agents) => p {
                    (lang.t("Agenci: ", "Agents: "))
                    @for (i, agent) in agents.iter().enumerate() {
                        @if i > 0 { ", " }
                        (agent.agent_id) " (" (lang.t("ostatnio ", "last seen ")) (when(agent.last_seen)) ")"
                    }
                },
            }
            ul class="buttons" {
                @for (pass, label) in passes(lang) {
                    li {
                        form method="post" action="/console/sync" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            input type="hidden" name="pass" value=(pass);
                            button type="submit" { (label) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="emergency" {
            h2 id="emergency" { (lang.t("Tryb awaryjny", "Emergency mode")) }
            p { (lang.t(
                "Na wypadek błędu w cenach lub stanach, inwentaryzacji albo przerwy w wysyłce. Zatrzymanie wysyłania wstrzymuje zmiany produktów w sklepie (zamówienia kupujących dalej dostają statusy); pokazanie zera ustawia stan 0 wszystkim produktom sklepu w ciągu minuty; wstrzymanie zamówień przyjmuje je, ale nie wysyła do Optimy. Powrót do normalnej pracy wysyła wszystko, co czekało.",
                "For a mistake in prices or stock, a stocktaking or a break in shipping. Stopping writes holds product changes back from the shop (buyers' orders still get their status); showing zero sets every product of the shop to 0 within a minute; pausing orders takes them in but sends none to Optima. Back to normal sends everything that waited."
            )) }
            @for (shop, switch, waiting) in &switches {
                (shop_switch(lang, &who, shop, switch, waiting))
            }
        }
    };
    page(layout(
        lang,
        lang.t("Synchronizacja", "Sync"),
        &who,
        "sync",
        body,
    ))
}

fn push_label(lang: Lang, push: Push) -> &'static str {
    match push {
        Push::Normal => lang.t("wysyłane normalnie", "written as usual"),
        Push::Stopped => lang.t("ZATRZYMANE", "STOPPED"),
        Push::ZeroStock => lang.t("WSZĘDZIE STAN 0", "0 STOCK EVERYWHERE"),
    }
}

fn shop_switch(
    lang: Lang,
    who: &SignedIn,
    shop: &str,
    switch: &Result<Switch, crate::state::StateError>,
    waiting: &Result<usize, crate::state::StateError>,
) -> Markup {
    let id = format!(
        "shop-{}",
        shop.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    html! {
        section class="shop" aria-labelledby=(id) {
            h3 id=(id) { (shop) }
            @match switch {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(switch) => {
                    dl {
                        dt { (lang.t("Zmiany produktów", "Product changes")) }
                        dd class=[switch.push.ne(&Push::Normal).then_some("warning")] {
                            (push_label(lang, switch.push))
                            @if switch.push == Push::ZeroStock {
                                " — " @if switch.zero_applied {
                                    (lang.t("wyzerowane", "zeroed"))
                                } @else {
                                    (lang.t("zerowanie w toku", "zeroing under way"))
                                }
                            }
                        }
                        dt { (lang.t("Zamówienia do Optimy", "Orders to Optima")) }
                        dd class=[switch.pause_orders.then_some("warning")] {
                            @if switch.pause_orders { (lang.t("WSTRZYMANE", "PAUSED")) } @else { (lang.t("wysyłane", "sent")) }
                        }
                        dt { (lang.t("Zamówienia czekające na wznowienie", "Orders waiting for the resume")) }
                        dd {
                            @match waiting {
                                Ok(count) => (count),
                                Err(err) => span class="error" { (err.to_string()) },
                            }
                        }
                        @if let (Some(by), Some(at)) = (&switch.changed_by, switch.changed_at) {
                            dt { (lang.t("Ostatnia zmiana", "Last changed")) }
                            dd { (by) ", " (when(at)) }
                        }
                    }
                    form method="post" action=(format!("/console/emergency/{}", crate::console::pages::percent(shop))) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        ul class="buttons" {
                            @if switch.push != Push::Stopped {
                                li { button type="submit" name="push" value="stopped" { (lang.t("Zatrzymaj wysyłanie do sklepu", "Stop writing to the shop")) } }
                            }
                            @if switch.push != Push::ZeroStock {
                                li { button type="submit" name="push" value="zero_stock" { (lang.t("Pokaż wszędzie stan 0", "Show 0 stock everywhere")) } }
                            }
                            @if switch.push != Push::Normal {
                                li { button type="submit" name="push" value="normal" { (lang.t("Wznów normalne wysyłanie", "Resume normal writes")) } }
                            }
                            @if switch.pause_orders {
                                li { button type="submit" name="pause_orders" value="off" { (lang.t("Wznów zamówienia", "Resume orders")) } }
                            } @else {
                                li { button type="submit" name="pause_orders" value="on" { (lang.t("Wstrzymaj zamówienia", "Pause orders")) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A forced-pass button.
async fn force(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    body: Bytes,
) -> Response {
    let form = auth::parse_form(&body);
    let name = auth::field(&form, "pass").unwrap_or_default();
    let Some(request) = pass_named(name) else {
        return (StatusCode::BAD_REQUEST, "unknown pass").into_response();
    };
    let outcome = admin.force_sync(request).await;
    let detail = match &outcome {
        Ok(agents) => format!("asked {}", agents.join(", ")),
        Err(err) => err.to_string(),
    };
    admin.record(&who, "forced sync", name, detail).await;
    match outcome {
        Ok(_) => Redirect::to(&format!("/console/sync?asked={name}")).into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

/// An emergency button: `push` and/or `pause_orders` change, the rest stays.
async fn switch(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Response {
    let Some(config) = admin.shops.get(&shop) else {
        return (StatusCode::NOT_FOUND, "no such shop").into_response();
    };
    let form = auth::parse_form(&body);
    // A button names what it changes; the rest stays as stored.
    let push = match auth::field(&form, "push") {
        None => None,
        Some(name) => match Push::named(name) {
            Some(push) => Some(push),
            None => return (StatusCode::BAD_REQUEST, "unknown mode").into_response(),
        },
    };
    let pause_orders = match auth::field(&form, "pause_orders") {
        None => None,
        Some("on") => Some(true),
        Some("off") => Some(false),
        Some(_) => return (StatusCode::BAD_REQUEST, "unknown pause").into_response(),
    };
    let (before, after) = match admin
        .emergency
        .set(&shop, push, pause_orders, &who.email, Utc::now())
        .await
    {
        Ok(changed) => changed,
        Err(err) => return (StatusCode::CONFLICT, err.to_string()).into_response(),
    };
    let (push, pause_orders) = (after.push, after.pause_orders);
    let mut detail = format!(
        "writes: {} → {}; orders: {} → {}",
        before.push.name(),
        push.name(),
        if before.pause_orders {
            "paused"
        } else {
            "sent"
        },
        if pause_orders { "paused" } else { "sent" },
    );
    if before.push == Push::Stopped && push != Push::Stopped {
        // What was dropped meanwhile: every product again.
        let catch_up = ForceSync {
            areas: vec![SyncArea::Catalogue, SyncArea::Prices, SyncArea::Stock],
            skus: Vec::new(),
            ignore_hashes: true,
        };
        match admin.force_sync(catch_up).await {
            Ok(agents) => detail.push_str(&format!("; full pass asked of {}", agents.join(", "))),
            Err(err) => detail.push_str(&format!("; the full pass could not be asked for ({err}): press \u{201c}the whole offer again\u{201d}")),
        }
    }
    if before.pause_orders && !pause_orders {
        let intake = crate::orders::OrderIntake::new(
            admin.orders.clone(),
            admin.clients.sqs.clone(),
            admin.commands_queue_url(),
        );
        match intake.release_paused(config).await {
            Ok(sent) => detail.push_str(&format!("; {sent} held order(s) sent to the ERP")),
            Err(err) => detail.push_str(&format!(
                "; held orders not all sent yet ({err}): press the button again"
            )),
        }
    }
    admin.record(&who, "emergency switch", &shop, detail).await;
    Redirect::to(&format!(
        "/console/sync?switched={}",
        crate::console::pages::percent(&shop)
    ))
    .into_response()
}

impl Admin {
    /// Writes an operator's action to the log; a failure is logged, not fatal.
    pub(crate) async fn record(&self, who: &SignedIn, action: &str, subject: &str, detail: String) {
        let entry = LogEntry {
            at: Utc::now(),
            actor: who.email.clone(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        };
        if let Err(err) = self.log.record(entry).await {
            tracing::warn!(error = %err, action, "the log could not record an operator's action");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_button_asks_for_the_pass_it_names() {
        for (pass, _) in passes(Lang::Pl) {
            assert!(pass_named(pass).is_some(), "{pass}");
        }
        let stock = pass_named("stock").unwrap();
        assert_eq!(stock.areas, [SyncArea::Stock]);
        assert!(!stock.ignore_hashes);
        let full = pass_named("full").unwrap();
        assert!(full.areas.is_empty() && full.skus.is_empty() && full.ignore_hashes);
        assert!(pass_named("everything").is_none());
        assert!(
            pass_named("customers").is_none(),
            "no agent sends customers"
        );
    }
}
