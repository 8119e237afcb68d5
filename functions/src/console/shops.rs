//! `/console/shops`: each shop's settings (its `SHOPS` entry) edited in a
//! form, checked by the same code the deploy's `ShopsConfig` is, saved as
//! a new version in the state table ([`crate::shop_settings`]) and taking
//! effect in every function within [`crate::shop_settings::CACHE`]; the
//! versions with who saved them, any of which can be restored; and the
//! shop's credentials, write-only: the page says only whether each is set.
//!
//! A shop's id and platform are not editable (they key everything);
//! adding or removing a shop stays with the deploy.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::admin::Admin;
use crate::console::auth::{self, Lang, SignedIn};
use crate::console::pages::{layout, page, percent, when};
use crate::shop_settings::{SettingsVersion, changes, check};
use crate::shops::ShopConfig;
use crate::shops::credential_fields;

/// Versions the history shows.
const HISTORY: i32 = 50;

pub fn routes() -> Router<Arc<Admin>> {
    Router::new()
        .route("/console/shops", get(list))
        .route("/console/shops/{shop}", get(shop_page).post(save))
        .route("/console/shops/{shop}/restore", post(restore))
        .route("/console/shops/{shop}/credentials", post(credentials))
}

async fn list(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let mut rows = Vec::new();
    for shop in &admin.shops.shops {
        rows.push((shop, admin.shop_settings.current(&shop.id).await));
    }
    let body = html! {
        p { (lang.t(
            "Ustawienia zapisane tutaj zastępują wpis sklepu z parametru ShopsConfig i działają w ciągu minuty, bez wdrożenia.",
            "Settings saved here replace the shop's entry of the ShopsConfig parameter and take effect within a minute, without a deploy."
        )) }
        table {
            thead { tr {
                th scope="col" { (lang.t("Sklep", "Shop")) }
                th scope="col" { (lang.t("Platforma", "Platform")) }
                th scope="col" { (lang.t("Wersja", "Version")) }
                th scope="col" { (lang.t("Kto, kiedy", "Who, when")) }
            } }
            tbody {
                @for (shop, current) in &rows {
                    tr {
                        th scope="row" { a href=(format!("/console/shops/{}", percent(&shop.id))) { (shop.id) } }
                        td { (shop.platform.name()) }
                        @match current {
                            Ok(Some(current)) => {
                                td { (current.version) }
                                td { (current.by) ", " (when(current.at)) }
                            }
                            Ok(None) => {
                                td { (lang.t("z wdrożenia (ShopsConfig)", "from the deploy (ShopsConfig)")) }
                                td { "—" }
                            }
                            Err(err) => td colspan="2" class="error" { (err.to_string()) },
                        }
                    }
                }
            }
        }
    };
    page(layout(lang, lang.t("Sklepy", "Shops"), &who, "shops", body))
}

/// The form's fields, as text: what the form holds of a shop's entry,
/// and `rest`, the entry without them (JSON).
#[derive(Debug, Default, Clone, PartialEq)]
struct Fields {
    price_list: String,
    warehouses: String,
    shop_prices: String,
    rounding: String,
    safety_buffer: String,
    order_trigger: String,
    stale_policy: String,
    stale_threshold: String,
    /// `erp_mapping`'s maps as lines `method = name`, and its defaults.
    payment_forms: String,
    default_payment_form: String,
    shipping_services: String,
    default_shipping_service: String,
    rest: String,
}

/// The fields of `rules` the form holds.
const RULE_FIELDS: [&str; 5] = [
    "price_list",
    "warehouses",
    "shop_prices",
    "rounding",
    "safety_buffer",
];

fn text_of(value: Option<&Value>, default: &str) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => default.to_owned(),
        Some(other) => other.to_string(),
    }
}

impl Fields {
    /// A shop's entry split into the form's fields.
    fn of(entry: &Value) -> Fields {
        let mut rest = entry.as_object().cloned().unwrap_or_default();
        for key in [
            "id",
            "platform",
            "order_trigger",
            "stale_policy",
            "erp_mapping",
        ] {
            rest.remove(key);
        }
        let rules = entry.get("rules");
        if let Some(Value::Object(rest_rules)) = rest.get_mut("rules") {
            for key in RULE_FIELDS {
                rest_rules.remove(key);
            }
        }
        let rule = |key: &str, default: &str| text_of(rules.and_then(|r| r.get(key)), default);
        let warehouses = rules
            .and_then(|r| r.get("warehouses"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|w| text_of(Some(w), ""))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let stale = entry.get("stale_policy");
        let erp = entry.get("erp_mapping");
        let erp_text = |key: &str| text_of(erp.and_then(|m| m.get(key)), "");
        let erp_lines = |key: &str| {
            erp.and_then(|m| m.get(key))
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .map(|(method, name)| format!("{method} = {}", text_of(Some(name), "")))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        };
        Fields {
            price_list: rule("price_list", ""),
            warehouses,
            shop_prices: rule("shop_prices", "gross"),
            rounding: rule("rounding", "grosz"),
            safety_buffer: rule("safety_buffer", "0"),
            order_trigger: text_of(entry.get("order_trigger"), "paid"),
            stale_policy: text_of(stale.and_then(|s| s.get("policy")), "hold"),
            stale_threshold: text_of(stale.and_then(|s| s.get("threshold")), ""),
            payment_forms: erp_lines("payment_forms"),
            default_payment_form: erp_text("default_payment_form"),
            shipping_services: erp_lines("shipping_services"),
            default_shipping_service: erp_text("default_shipping_service"),
            rest: serde_json::to_string_pretty(&Value::Object(rest)).unwrap_or_default(),
        }
    }

    fn from_form(form: &[(String, String)]) -> Fields {
        let get = |name: &str| auth::field(form, name).unwrap_or_default().to_owned();
        Fields {
            price_list: get("price_list"),
            warehouses: get("warehouses"),
            shop_prices: get("shop_prices"),
            rounding: get("rounding"),
            safety_buffer: get("safety_buffer"),
            order_trigger: get("order_trigger"),
            stale_policy: get("stale_policy"),
            stale_threshold: get("stale_threshold"),
            payment_forms: get("payment_forms"),
            default_payment_form: get("default_payment_form"),
            shipping_services: get("shipping_services"),
            default_shipping_service: get("default_shipping_service"),
            rest: get("rest"),
        }
    }

    /// The shop's entry these fields make, on `current` (its id and
    /// platform, and whether a field left at its default was written);
    /// or what is wrong with them, in words.
    fn entry(&self, current: &Value) -> Result<Value, String> {
        let rest = match self.rest.trim() {
            "" => Value::Object(Map::new()),
            text => serde_json::from_str::<Value>(text)
                .map_err(|e| format!("the other settings (JSON): {e}"))?,
        };
        let Value::Object(mut entry) = rest else {
            return Err("the other settings (JSON) must be an object { … }".into());
        };
        for key in ["id", "platform"] {
            if let Some(value) = current.get(key) {
                entry.insert(key.to_owned(), value.clone());
            }
        }
        let mut rules = match entry.remove("rules") {
            Some(Value::Object(rules)) => rules,
            None => Map::new(),
            Some(_) => return Err("rules in the other settings must be an object".into()),
        };
        let had = |path: &[&str]| path.iter().try_fold(current, |v, key| v.get(key)).is_some();
        rules.insert("price_list".into(), json!(self.price_list.trim()));
        let warehouses: Vec<&str> = self
            .warehouses
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        rules.insert("warehouses".into(), json!(warehouses));
        for (key, value, default) in [
            ("shop_prices", self.shop_prices.trim(), "gross"),
            ("rounding", self.rounding.trim(), "grosz"),
        ] {
            if value != default || had(&["rules", key]) {
                rules.insert(key.into(), json!(value));
            }
        }
        let buffer = self.safety_buffer.trim();
        let number = |what: &str, text: &str| match serde_json::from_str::<Value>(text) {
            Ok(Value::Number(n)) => Ok(n),
            _ => Err(format!("{what}: `{text}` is not a number")),
        };
        let buffer = if buffer.is_empty() { "0" } else { buffer };
        // A decimal, written as text (as `ShopsConfig` has it).
        let number_of = number("safety buffer", buffer)?;
        if number_of.as_f64() != Some(0.0) || had(&["rules", "safety_buffer"]) {
            rules.insert("safety_buffer".into(), json!(buffer));
        }
        entry.insert("rules".into(), Value::Object(rules));
        let trigger = self.order_trigger.trim();
        if trigger != "paid" || had(&["order_trigger"]) {
            entry.insert("order_trigger".into(), json!(trigger));
        }
        match self.stale_policy.trim() {
            "hold" if !had(&["stale_policy"]) => {}
            "hold" => {
                entry.insert("stale_policy".into(), json!({"policy": "hold"}));
            }
            policy => {
                let threshold = number("stale-stock threshold", self.stale_threshold.trim())?;
                entry.insert(
                    "stale_policy".into(),
                    json!({"policy": policy, "threshold": threshold}),
                );
            }
        }
        let mut erp = Map::new();
        for (key, lines, what) in [
            ("payment_forms", &self.payment_forms, "payment forms"),
            (
                "shipping_services",
                &self.shipping_services,
                "delivery services",
            ),
        ] {
            let map = method_lines(lines, what)?;
            if !map.is_empty() {
                erp.insert(key.into(), Value::Object(map));
            }
        }
        for (key, value) in [
            ("default_payment_form", &self.default_payment_form),
            ("default_shipping_service", &self.default_shipping_service),
        ] {
            if !value.trim().is_empty() {
                erp.insert(key.into(), json!(value.trim()));
            }
        }
        if !erp.is_empty() || had(&["erp_mapping"]) {
            entry.insert("erp_mapping".into(), Value::Object(erp));
        }
        Ok(Value::Object(entry))
    }
}

/// Lines `method = name` (blank lines skipped) as a JSON object; `what`
/// names the field in a problem.
fn method_lines(text: &str, what: &str) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((method, name)) = line.split_once('=') else {
            return Err(format!(
                "{what}, line {}: `{line}` is not `shop method = Optima name`",
                number + 1
            ));
        };
        let method = method.trim();
        if map.insert(method.to_owned(), json!(name.trim())).is_some() {
            return Err(format!("{what}: the method `{method}` is there twice"));
        }
    }
    Ok(map)
}

#[derive(Debug, Default, Deserialize)]
struct ShopQuery {
    saved: Option<u64>,
    credentials: Option<String>,
}

/// What the page shows a shop with: its current entry and version.
struct Current {
    config: ShopConfig,
    entry: Value,
    version: u64,
}

async fn current(admin: &Admin, id: &str) -> Result<Option<Current>, String> {
    let Some(config) = admin.shops.get(id) else {
        return Ok(None);
    };
    let stored = admin
        .shop_settings
        .current(id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(match stored {
        Some(stored) => Current {
            config: check(config, stored.settings.clone()).unwrap_or_else(|_| config.clone()),
            entry: stored.settings,
            version: stored.version,
        },
        None => Current {
            config: config.clone(),
            entry: admin.shops.written(id).cloned().unwrap_or(Value::Null),
            version: 0,
        },
    }))
}

async fn shop_page(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    Query(query): Query<ShopQuery>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let notice = match (query.saved, query.credentials.as_deref()) {
        (Some(version), _) => Some(format!(
            "{}{version}",
            lang.t("Zapisano wersję ", "Saved version ")
        )),
        (_, Some("")) => Some(
            lang.t("Dane dostępowe bez zmian.", "Credentials unchanged.")
                .to_owned(),
        ),
        (_, Some(fields)) => Some(format!(
            "{}{fields}",
            lang.t("Zmieniono dane dostępowe: ", "Credentials changed: ")
        )),
        _ => None,
    };
    render(&admin, &who, lang, &id, None, notice).await
}

/// The shop's page; `submitted` a refused form, with its problem.
async fn render(
    admin: &Admin,
    who: &SignedIn,
    lang: Lang,
    id: &str,
    submitted: Option<(Fields, String)>,
    notice: Option<String>,
) -> Response {
    let shop = match current(admin, id).await {
        Ok(Some(shop)) => shop,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such shop").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err).into_response(),
    };
    let history = admin.shop_settings.history(id, HISTORY).await;
    let set = match &admin.credentials {
        Some(secret) => Some(secret.which_set(&shop.config).await),
        None => None,
    };
    let refused = submitted.is_some();
    let (fields, problem) = match submitted {
        Some((fields, problem)) => (fields, Some(problem)),
        None => (Fields::of(&shop.entry), None),
    };
    let action = format!("/console/shops/{}", percent(id));
    let body = html! {
        @if let Some(notice) = &notice {
            p class="notice" role="status" { (notice) }
        }
        p {
            (lang.t("Platforma: ", "Platform: ")) (shop.config.platform.name()) ". "
            @if shop.version == 0 {
                (lang.t("Ustawienia z wdrożenia (ShopsConfig).", "Settings from the deploy (ShopsConfig)."))
            } @else {
                (lang.t("Wersja ", "Version ")) (shop.version) "."
            }
        }
        section aria-labelledby="settings" {
            h2 id="settings" { (lang.t("Ustawienia", "Settings")) }
            @if let Some(problem) = &problem {
                p class="error" role="alert" id="problem" {
                    (lang.t("Nie zapisano: ", "Not saved: ")) (problem)
                }
            }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="version" value=(shop.version);
                (text_field("price_list", lang.t("Cennik w Optimie", "Optima price list"), &fields.price_list))
                (text_field("warehouses", lang.t("Magazyny (po przecinku)", "Warehouses (comma-separated)"), &fields.warehouses))
                (select_field("shop_prices", lang.t("Ceny w sklepie", "Shop prices"), &fields.shop_prices,
                    &[("gross", lang.t("brutto", "gross")), ("net", lang.t("netto", "net"))]))
                (select_field("rounding", lang.t("Zaokrąglanie", "Rounding"), &fields.rounding,
                    &[("grosz", lang.t("do grosza", "to the grosz")), ("ending_99", lang.t("do końcówki ,99", "to an ,99 ending"))]))
                (text_field("safety_buffer", lang.t("Bufor bezpieczeństwa (sztuk)", "Safety buffer (units)"), &fields.safety_buffer))
                (text_field("order_trigger", lang.t("Kiedy zamówienie idzie do Optimy (placed, paid, status:<nazwa>)", "When an order goes to Optima (placed, paid, status:<name>)"), &fields.order_trigger))
                (select_field("stale_policy", lang.t("Gdy dane z Optimy są nieaktualne", "While Optima's data is stale"), &fields.stale_policy,
                    &[("hold", lang.t("zostaw stany", "leave the stock")), ("zero_low_stock", lang.t("pokaż 0 przy niskim stanie", "show 0 for low stock"))]))
                (text_field("stale_threshold", lang.t("Próg niskiego stanu", "Low-stock threshold"), &fields.stale_threshold))
                fieldset {
                    legend { (lang.t("Płatność i dostawa w Optimie", "Payment and delivery in Optima")) }
                    p { (lang.t(
                        "Ma pierwszeństwo przed [orders] w konfiguracji agenta; czego tu nie ma, mapuje agent. Jedna para w wierszu: metoda sklepu = nazwa w Optimie.",
                        "Comes before [orders] in the agent's configuration; what is not here the agent maps. One pair a line: shop method = name in Optima."
                    )) }
                    (lines_field("payment_forms", lang.t("Formy płatności (np. bacs = przelew)", "Payment forms (e.g. bacs = przelew)"), &fields.payment_forms))
                    (text_field("default_payment_form", lang.t("Forma płatności dla pozostałych metod", "Payment form for other methods"), &fields.default_payment_form))
                    (lines_field("shipping_services", lang.t("Usługi dostawy: metoda = kod usługi (np. flat_rate = TRANSPORT)", "Delivery services: method = service item SKU (e.g. flat_rate = TRANSPORT)"), &fields.shipping_services))
                    (text_field("default_shipping_service", lang.t("Usługa dla pozostałych metod dostawy", "Service item for other delivery methods"), &fields.default_shipping_service))
                }
                div {
                    label for="rest" { (lang.t(
                        "Pozostałe ustawienia (JSON: adres, pozostałe reguły, limity zapytań rate_limits, ustawienia platformy)",
                        "Other settings (JSON: address, the other rules, rate_limits, the platform's settings)"
                    )) }
                    textarea id="rest" name="rest" rows="14" cols="70" spellcheck="false" { (fields.rest) }
                }
                (text_field("note", lang.t("Notatka (opcjonalnie)", "Note (optional)"), ""))
                button type="submit" { (lang.t("Zapisz nową wersję", "Save a new version")) }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { (lang.t("Historia wersji", "Version history")) }
            @match &history {
                Err(err) => p class="error" role="alert" { (err.to_string()) },
                Ok(versions) if versions.is_empty() => p { (lang.t("Nic jeszcze nie zapisano w konsoli.", "Nothing saved in the console yet.")) },
                Ok(versions) => table {
                    thead { tr {
                        th scope="col" { (lang.t("Wersja", "Version")) }
                        th scope="col" { (lang.t("Kto", "Who")) }
                        th scope="col" { (lang.t("Kiedy", "When")) }
                        th scope="col" { (lang.t("Zmiany", "Changes")) }
                        th scope="col" { (lang.t("Przywróć", "Restore")) }
                    } }
                    tbody {
                        @for version in versions {
                            (history_row(lang, who, &action, version, shop.version))
                        }
                    }
                },
            }
        }
        section aria-labelledby="credentials" {
            h2 id="credentials" { (lang.t("Dane dostępowe", "Credentials")) }
            p { (lang.t(
                "Zapisane wartości nigdy nie są pokazywane. Puste pole: bez zmian. Funkcje biorą nowe dane w ciągu minuty, bez wdrożenia.",
                "Stored values are never shown. An empty field: unchanged. The functions take new credentials within a minute, without a deploy."
            )) }
            @match &set {
                None => p { (lang.t("Ta instalacja nie ma sekretu z danymi dostępowymi (SHOP_SECRETS_ARN).", "This installation has no credentials secret (SHOP_SECRETS_ARN).")) },
                Some(Err(err)) => p class="error" role="alert" { (err) },
                Some(Ok(fields)) => form method="post" action=(format!("{action}/credentials")) autocomplete="off" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    @for (field, is_set) in fields {
                        div {
                            label for=(format!("cred-{field}")) {
                                (field) " ("
                                @if *is_set { (lang.t("ustawione", "set")) } @else { (lang.t("nieustawione", "not set")) }
                                ")"
                            }
                            input id=(format!("cred-{field}")) name=(field) type="password" autocomplete="new-password" value="";
                        }
                    }
                    button type="submit" { (lang.t("Zapisz dane dostępowe", "Save the credentials")) }
                },
            }
        }
    };
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    auth::html_page(
        status,
        layout(
            lang,
            &format!("{} {id}", lang.t("Sklep", "Shop")),
            who,
            "shops",
            body,
        ),
    )
}

fn history_row(
    lang: Lang,
    who: &SignedIn,
    action: &str,
    version: &SettingsVersion,
    current: u64,
) -> Markup {
    html! {
        tr {
            th scope="row" { (version.version) }
            td { (version.by) }
            td { (when(version.at)) }
            td { (version.note) }
            td {
                @if version.version == current {
                    (lang.t("obecna", "current"))
                } @else {
                    form method="post" action=(format!("{action}/restore")) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        input type="hidden" name="restore" value=(version.version);
                        input type="hidden" name="version" value=(current);
                        button type="submit" { (lang.t("Przywróć wersję ", "Restore version ")) (version.version) }
                    }
                }
            }
        }
    }
}

fn text_field(name: &str, label: &str, value: &str) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            input id=(name) name=(name) type="text" value=(value);
        }
    }
}

fn lines_field(name: &str, label: &str, value: &str) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="4" cols="50" spellcheck="false" { (value) }
        }
    }
}

fn select_field(name: &str, label: &str, value: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (option, shown) in options {
                    option value=(option) selected[*option == value] { (shown) }
                }
            }
        }
    }
}

/// Saves `entry` as the shop's next version after `expected`, logged with
/// what changed; the new version's number or the problem in words.
async fn store(
    admin: &Admin,
    who: &SignedIn,
    shop: &Current,
    id: &str,
    expected: u64,
    entry: Value,
    note: &str,
) -> Result<u64, String> {
    check(&shop.config, entry.clone())?;
    let changed = changes(&shop.entry, &entry);
    let summary = match changed.is_empty() {
        true => "nothing changed".to_owned(),
        false => changed.join("; "),
    };
    let note = match note.trim() {
        "" => summary.clone(),
        note => format!("{note} ({summary})"),
    };
    let version = admin
        .shop_settings
        .save(id, expected, &entry, &who.email, &note)
        .await
        .map_err(|e| e.to_string())?;
    admin
        .record(
            who,
            "shop settings changed",
            id,
            format!("version {version}: {summary}"),
        )
        .await;
    Ok(version)
}

async fn save(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of(&headers, raw.as_deref());
    let form = auth::parse_form(&body);
    let fields = Fields::from_form(&form);
    let shop = match current(&admin, &id).await {
        Ok(Some(shop)) => shop,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such shop").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err).into_response(),
    };
    let expected = auth::field(&form, "version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let note = auth::field(&form, "note").unwrap_or_default();
    let outcome = match fields.entry(&shop.entry) {
        Ok(entry) => store(&admin, &who, &shop, &id, expected, entry, note).await,
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(version) => Redirect::to(&format!("/console/shops/{}?saved={version}", percent(&id)))
            .into_response(),
        Err(problem) => render(&admin, &who, lang, &id, Some((fields, problem)), None).await,
    }
}

/// A new version with an older one's content.
async fn restore(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = auth::parse_form(&body);
    let number = |name: &str| auth::field(&form, name).and_then(|v| v.parse::<u64>().ok());
    let (Some(wanted), Some(expected)) = (number("restore"), number("version")) else {
        return (StatusCode::BAD_REQUEST, "which version to restore?").into_response();
    };
    let shop = match current(&admin, &id).await {
        Ok(Some(shop)) => shop,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such shop").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err).into_response(),
    };
    let old = match admin.shop_settings.version(&id, wanted).await {
        Ok(Some(old)) => old,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such version").into_response(),
        Err(err) => return (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    };
    let note = format!("restored version {wanted}");
    match store(&admin, &who, &shop, &id, expected, old.settings, &note).await {
        Ok(version) => Redirect::to(&format!("/console/shops/{}?saved={version}", percent(&id)))
            .into_response(),
        Err(problem) => (StatusCode::CONFLICT, problem).into_response(),
    }
}

/// Writes the non-empty credential fields into the shop's entry of the
/// credentials secret; logs which fields changed, never their values.
async fn credentials(
    State(admin): State<Arc<Admin>>,
    Extension(who): Extension<SignedIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(secret) = &admin.credentials else {
        return (StatusCode::NOT_FOUND, "no credentials secret").into_response();
    };
    let Some(shop) = admin.shops.get(&id) else {
        return (StatusCode::NOT_FOUND, "no such shop").into_response();
    };
    let form = auth::parse_form(&body);
    let changed: Vec<(String, String)> = credential_fields(shop.platform.name())
        .iter()
        .filter_map(|field| {
            let value = auth::field(&form, field)?.trim();
            (!value.is_empty()).then(|| ((*field).to_owned(), value.to_owned()))
        })
        .collect();
    match secret.update(shop, &changed).await {
        Ok(names) => {
            if !names.is_empty() {
                admin
                    .record(
                        &who,
                        "shop credentials changed",
                        &id,
                        format!("fields: {}", names.join(", ")),
                    )
                    .await;
            }
            Redirect::to(&format!(
                "/console/shops/{}?credentials={}",
                percent(&id),
                names.join(",")
            ))
            .into_response()
        }
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, problem).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Value {
        json!({
            "id": "sklep", "platform": "woocommerce", "base_url": "https://sklep.example.pl",
            "rules": {"price_list": "Detaliczna", "warehouses": ["MAG", "SKLEP"], "units": {"szt": "pcs"}},
            "rate_limits": {"requests": {"tokens": 5, "per_seconds": 1}},
        })
    }

    #[test]
    fn the_form_gives_back_the_entry_it_was_made_of() {
        let fields = Fields::of(&entry());
        assert_eq!(fields.warehouses, "MAG, SKLEP");
        assert_eq!(fields.safety_buffer, "0");
        assert_eq!(fields.order_trigger, "paid");
        assert!(!fields.rest.contains("price_list"), "{}", fields.rest);
        assert!(fields.rest.contains("rate_limits"), "{}", fields.rest);
        assert_eq!(fields.entry(&entry()), Ok(entry()));
    }

    #[test]
    fn the_payment_and_delivery_mapping_is_edited_as_lines_and_checked_by_the_parser() {
        let mut fields = Fields::of(&entry());
        assert_eq!(fields.payment_forms, "");
        fields.payment_forms = "bacs = karta\n\n cod=pobranie ".into();
        fields.default_shipping_service = " TRANSPORT ".into();
        let changed = fields.entry(&entry()).expect("an entry");
        assert_eq!(
            changed["erp_mapping"],
            json!({"payment_forms": {"bacs": "karta", "cod": "pobranie"}, "default_shipping_service": "TRANSPORT"})
        );
        assert_eq!(
            changes(&entry(), &changed),
            vec![
                "erp_mapping.default_shipping_service: — → TRANSPORT",
                "erp_mapping.payment_forms.bacs: — → karta",
                "erp_mapping.payment_forms.cod: — → pobranie",
            ]
        );
        // Read back into the form as it was written.
        let again = Fields::of(&changed);
        assert_eq!(again.payment_forms, "bacs = karta\ncod = pobranie");
        assert!(!again.rest.contains("erp_mapping"), "{}", again.rest);
        assert_eq!(again.entry(&changed), Ok(changed.clone()));

        // Cleared: an empty mapping, the agent's applies again.
        let mut cleared = again.clone();
        cleared.payment_forms.clear();
        cleared.default_shipping_service.clear();
        let entry_cleared = cleared.entry(&changed).expect("an entry");
        assert_eq!(entry_cleared["erp_mapping"], json!({}));

        let mut wrong = again.clone();
        wrong.payment_forms = "bacs: karta".into();
        let err = wrong.entry(&changed).expect_err("no =");
        assert!(err.contains("payment forms, line 1"), "{err}");
        wrong.payment_forms = "bacs = karta\nbacs = przelew".into();
        let err = wrong.entry(&changed).expect_err("twice");
        assert!(err.contains("`bacs` is there twice"), "{err}");

        // What Optima cannot hold is the parser's to refuse.
        let shop = crate::shops::read_shop(entry()).expect("a shop");
        let mut long = again;
        long.default_payment_form = "przelew natychmiastowy".into();
        let err = check(&shop, long.entry(&changed).expect("an entry")).expect_err("too long");
        assert!(err.contains("Optima keeps 20"), "{err}");
    }

    #[test]
    fn the_form_writes_what_changed_and_refuses_what_is_not_a_number() {
        let mut fields = Fields::of(&entry());
        fields.safety_buffer = "3".into();
        fields.stale_policy = "zero_low_stock".into();
        fields.stale_threshold = "2".into();
        let changed = fields.entry(&entry()).expect("an entry");
        assert_eq!(
            changes(&entry(), &changed),
            vec![
                "rules.safety_buffer: — → 3",
                "stale_policy.policy: — → zero_low_stock",
                "stale_policy.threshold: — → 2",
            ]
        );
        fields.safety_buffer = "dużo".into();
        let err = fields.entry(&entry()).expect_err("not a number");
        assert!(
            err.contains("safety buffer: `dużo` is not a number"),
            "{err}"
        );
        fields.safety_buffer = "1".into();
        fields.rest = "[1]".into();
        assert!(fields.entry(&entry()).is_err());
    }
}
