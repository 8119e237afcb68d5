//! Batch commands (research notes §4.2, §4.3, [CMD]): `PUT /sale/offer-quantity-change-commands/
//! {commandId}` and `PUT /sale/offer-price-change-commands/{commandId}`, their reports and task
//! lists.
//!
//! The PUT is validated synchronously (422/400) and answers 201 with a `GeneralReport` whose
//! `taskCount` is all zeros. The tasks run `command_delay_ms` later (settled lazily on the next
//! state access): each offer becomes SUCCESS or FAIL (`OFFER_NOT_FOUND` for unknown, archived or
//! foreign offers), `taskCount` fills in and `completedAt` is set. A commandId is single-use: the
//! same body again returns the original report (no second run), a different body gets 409
//! `COMMAND_ALREADY_REGISTERED_WITH_DIFFERENT_CONTENT`.

use std::str::FromStr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::oauth::Caller;
use crate::offers::{seller_of, set_stock};
use crate::state::{Shared, State as Market};
use crate::util::{ApiError, Params, is_uuid, parse_price, ts, vnd_json};

/// Which command family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Quantity,
    Price,
}

impl Family {
    fn field(self) -> &'static str {
        match self {
            Family::Quantity => "quantity",
            Family::Price => "price",
        }
    }
}

/// The change a command makes to each offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    Fixed(i64),
    Gain(i64),
    FixedPrice(Decimal, String),
    IncreasePrice(Decimal),
    DecreasePrice(Decimal),
    IncreasePercentage(Decimal),
    DecreasePercentage(Decimal),
}

/// One offer's task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub offer_id: String,
    /// NEW, SUCCESS, FAIL.
    pub status: String,
    pub message: String,
    pub errors: Vec<Value>,
    pub scheduled_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A registered command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: String,
    pub family: Family,
    pub seller_id: String,
    /// The body as sent (compared on a repeated PUT).
    pub body: Value,
    pub change: Change,
    pub created_at: DateTime<Utc>,
    pub due: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub tasks: Vec<Task>,
}

impl Command {
    /// The `GeneralReport`.
    pub fn report(&self) -> Value {
        let (total, success, failed) = if self.completed_at.is_some() {
            (
                self.tasks.len(),
                self.tasks.iter().filter(|t| t.status == "SUCCESS").count(),
                self.tasks.iter().filter(|t| t.status == "FAIL").count(),
            )
        } else {
            (0, 0, 0)
        };
        json!({
            "id": self.id,
            "createdAt": ts(self.created_at),
            "completedAt": self.completed_at.map(ts),
            "taskCount": {"total": total, "success": success, "failed": failed},
        })
    }
}

fn task_json(t: &Task, field: &str) -> Value {
    json!({
        "offer": {"id": t.offer_id},
        "field": field,
        "status": t.status,
        "message": t.message,
        "errors": t.errors,
        "scheduledAt": ts(t.scheduled_at),
        "finishedAt": t.finished_at.map(ts),
    })
}

fn command_not_found() -> ApiError {
    ApiError::not_found("COMMAND_NOT_FOUND", "Command not found.").with_path("")
}

fn parse_family(s: &str) -> Family {
    if s.contains("price") {
        Family::Price
    } else {
        Family::Quantity
    }
}

/// `PUT /sale/offer-{quantity,price}-change-commands/{commandId}`
pub async fn put_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let family = parse_family(uri.path());
    match put(&shared, &caller, family, &id, &body) {
        Ok((status, v)) => vnd_json(status, &v),
        Err(e) => e.into_response(),
    }
}

fn put(
    shared: &Shared,
    caller: &Caller,
    family: Family,
    id: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let seller = seller_of(caller)?;
    if !is_uuid(id) {
        return Err(ApiError::validation(format!(
            "Command id '{id}' is not a valid UUID"
        )));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
    let mut m = shared.st();
    if let Some(existing) = m.commands.get(&(family, id.to_string())) {
        if existing.body == v && existing.seller_id == seller {
            return Ok((m.cfg.repeat_command_status, existing.report()));
        }
        return Err(ApiError::new(
            409,
            "COMMAND_ALREADY_REGISTERED_WITH_DIFFERENT_CONTENT",
            "Command with the given id but with different content is already registered.",
        )
        .with_path(""));
    }
    let change = match family {
        Family::Quantity => quantity_change(&v)?,
        Family::Price => price_change(&v)?,
    };
    let offers = criteria(&v, m.cfg.command_max_offers)?;
    let now = m.now();
    let (per_min, per_hour, kinds) = match family {
        Family::Quantity => (
            m.cfg.quantity_changes_per_minute,
            m.cfg.quantity_changes_per_hour,
            ("qty-min", "qty-hour"),
        ),
        Family::Price => (
            m.cfg.price_changes_per_minute,
            m.cfg.price_changes_per_hour,
            ("price-min", "price-hour"),
        ),
    };
    if !m
        .limits
        .seller_try_pair(kinds, seller, now, per_min, per_hour, offers.len() as u64)
    {
        return Err(ApiError::new(
            429,
            "TooManyRequestsException",
            format!("Limit of offer changes exceeded: {per_min} per minute or {per_hour} per hour"),
        ));
    }
    // An omission stands for a report Allegro left incomplete: the offer
    // gets no task and is not changed.
    let offers: Vec<String> = offers
        .into_iter()
        .filter(|offer| !m.task_omissions.remove(offer))
        .collect();
    let cmd = Command {
        id: id.to_string(),
        family,
        seller_id: seller.to_string(),
        body: v,
        change,
        created_at: now,
        due: now + Duration::milliseconds(m.cfg.command_delay_ms as i64),
        completed_at: None,
        tasks: offers
            .into_iter()
            .map(|offer_id| Task {
                offer_id,
                status: "NEW".into(),
                message: String::new(),
                errors: Vec::new(),
                scheduled_at: now,
                finished_at: None,
            })
            .collect(),
    };
    let report = cmd.report();
    match family {
        Family::Quantity => m.counters.quantity_commands += 1,
        Family::Price => m.counters.price_commands += 1,
    }
    m.commands.insert((family, id.to_string()), cmd);
    m.command_order.push((family, id.to_string()));
    Ok((201, report))
}

fn quantity_change(v: &Value) -> Result<Change, ApiError> {
    let m = v
        .get("modification")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            ApiError::validation("modification is required").with_path("modification")
        })?;
    let value = m.get("value").and_then(Value::as_i64);
    match m.get("changeType").and_then(Value::as_str) {
        Some("FIXED") => match value {
            Some(q) if q >= 0 => Ok(Change::Fixed(q)),
            _ => Err(ApiError::validation(
                "modification.value must be a whole number not less than 0 for changeType FIXED",
            )
            .with_path("modification.value")),
        },
        Some("GAIN") => value.map(Change::Gain).ok_or_else(|| {
            ApiError::validation("modification.value must be a whole number for changeType GAIN")
                .with_path("modification.value")
        }),
        other => Err(ApiError::validation(format!(
            "modification.changeType must be FIXED or GAIN, got {}",
            other.unwrap_or("nothing")
        ))
        .with_path("modification.changeType")),
    }
}

fn price_change(v: &Value) -> Result<Change, ApiError> {
    let m = v
        .get("modification")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            ApiError::validation("modification is required").with_path("modification")
        })?;
    if let Some(mp) = m.get("marketplaceId")
        && !mp.is_null()
        && !mp.as_str().is_some_and(|s| s.starts_with("allegro-"))
    {
        return Err(
            ApiError::validation("modification.marketplaceId is not a marketplace")
                .with_path("modification.marketplaceId"),
        );
    }
    let price = |key: &str| {
        let p = m.get(key).ok_or_else(|| {
            ApiError::validation(format!("modification.{key} is required"))
                .with_path(format!("modification.{key}"))
        })?;
        parse_price(p).map_err(|e| ApiError::validation(e).with_path(format!("modification.{key}")))
    };
    let pct = || {
        let raw = m.get("percentage").and_then(Value::as_str).ok_or_else(|| {
            ApiError::validation("modification.percentage must be a string such as \"10\"")
                .with_path("modification.percentage")
        })?;
        match Decimal::from_str(raw.trim()) {
            Ok(d) if d > Decimal::ZERO && d.scale() <= 2 => Ok(d),
            _ => Err(ApiError::validation(format!(
                "modification.percentage '{raw}' is not a positive number"
            ))
            .with_path("modification.percentage")),
        }
    };
    match m.get("type").and_then(Value::as_str) {
        Some("FIXED_PRICE") => price("price").map(|(d, c)| Change::FixedPrice(d, c)),
        Some("INCREASE_PRICE") => price("value").map(|(d, _)| Change::IncreasePrice(d)),
        Some("DECREASE_PRICE") => price("value").map(|(d, _)| Change::DecreasePrice(d)),
        Some("INCREASE_PERCENTAGE") => pct().map(Change::IncreasePercentage),
        Some("DECREASE_PERCENTAGE") => {
            let d = pct()?;
            if d >= Decimal::ONE_HUNDRED {
                return Err(ApiError::validation("modification.percentage must be below 100")
                    .with_path("modification.percentage"));
            }
            Ok(Change::DecreasePercentage(d))
        }
        other => Err(ApiError::validation(format!(
            "modification.type must be one of FIXED_PRICE, INCREASE_PRICE, DECREASE_PRICE, INCREASE_PERCENTAGE, DECREASE_PERCENTAGE, got {}",
            other.unwrap_or("nothing")
        ))
        .with_path("modification.type")),
    }
}

fn criteria(v: &Value, max: usize) -> Result<Vec<String>, ApiError> {
    let list = v
        .get("offerCriteria")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::validation("offerCriteria must be a non-empty list")
                .with_path("offerCriteria")
        })?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        if c.get("type").and_then(Value::as_str) != Some("CONTAINS_OFFERS") {
            return Err(
                ApiError::validation("offerCriteria.type must be CONTAINS_OFFERS")
                    .with_path(format!("offerCriteria[{i}].type")),
            );
        }
        let offers = c
            .get("offers")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ApiError::validation("offerCriteria.offers must be a non-empty list")
                    .with_path(format!("offerCriteria[{i}].offers"))
            })?;
        if offers.len() > max {
            return Err(ApiError::validation(format!(
                "offerCriteria.offers: at most {max} offers are allowed"
            ))
            .with_path(format!("offerCriteria[{i}].offers")));
        }
        for o in offers {
            let id = match o.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(ApiError::validation("offerCriteria.offers.id is required")
                        .with_path(format!("offerCriteria[{i}].offers")));
                }
            };
            out.push(id);
        }
    }
    if out.len() > max {
        return Err(ApiError::validation(format!(
            "At most {max} offers are allowed in one command"
        ))
        .with_path("offerCriteria"));
    }
    Ok(out)
}

fn task_error(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message, "details": null, "path": null, "userMessage": message})
}

/// Runs every command that is due, oldest first.
pub fn settle(m: &mut Market, now: DateTime<Utc>) {
    let due: Vec<(Family, String)> = m
        .command_order
        .iter()
        .filter(|k| {
            m.commands
                .get(*k)
                .is_some_and(|c| c.completed_at.is_none() && c.due <= now)
        })
        .cloned()
        .collect();
    for key in due {
        let Some(mut cmd) = m.commands.remove(&key) else {
            continue;
        };
        let ends = m.cfg.fixed_zero_ends_offer;
        for t in cmd.tasks.iter_mut() {
            let outcome = run_task(m, &cmd.seller_id, &cmd.change, &t.offer_id, ends);
            t.finished_at = Some(cmd.due);
            match outcome {
                Ok(()) => t.status = "SUCCESS".into(),
                Err((code, message)) => {
                    t.status = "FAIL".into();
                    t.message = message.clone();
                    t.errors = vec![task_error(&code, &message)];
                }
            }
        }
        cmd.completed_at = Some(cmd.due);
        m.counters.commands_completed += 1;
        m.commands.insert(key, cmd);
    }
}

fn run_task(
    m: &mut Market,
    seller: &str,
    change: &Change,
    offer_id: &str,
    ends: bool,
) -> Result<(), (String, String)> {
    let not_found = || {
        (
            "OFFER_NOT_FOUND".to_string(),
            "Offer not found.".to_string(),
        )
    };
    match m.offers.get(offer_id) {
        Some(o) if !o.archived && o.seller_id == seller => {}
        _ => return Err(not_found()),
    }
    if let Some(injected) = m.task_failures.remove(offer_id) {
        return Err(injected);
    }
    let Some(o) = m.offers.get_mut(offer_id) else {
        return Err(not_found());
    };
    match change {
        Change::Fixed(q) => set_stock(o, *q, ends),
        Change::Gain(d) => {
            let q = o.available + d;
            if q < 0 {
                return Err((
                    "ATTEMPT_TO_CHANGE_OFFER_QUANTITY_TO_INVALID_VALUE".into(),
                    format!("Offer quantity cannot be changed to {q}."),
                ));
            }
            set_stock(o, q, ends);
        }
        other => {
            let hundred = Decimal::ONE_HUNDRED;
            let new = match other {
                Change::FixedPrice(p, cur) => {
                    if cur != &o.currency {
                        return Err((
                            "INVALID_CURRENCY".into(),
                            format!(
                                "Currency {cur} does not match the offer's currency {}.",
                                o.currency
                            ),
                        ));
                    }
                    *p
                }
                Change::IncreasePrice(d) => o.price + d,
                Change::DecreasePrice(d) => o.price - d,
                Change::IncreasePercentage(p) => o.price * (hundred + p) / hundred,
                Change::DecreasePercentage(p) => o.price * (hundred - p) / hundred,
                Change::Fixed(_) | Change::Gain(_) => o.price,
            }
            .round_dp(2);
            if new <= Decimal::ZERO {
                return Err((
                    "INVALID_PRICE".into(),
                    "The resulting price must be greater than 0.".into(),
                ));
            }
            o.price = new;
        }
    }
    Ok(())
}

/// `GET /sale/offer-{quantity,price}-change-commands/{commandId}`
pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let family = parse_family(uri.path());
    let r = (|| {
        let seller = seller_of(&caller)?;
        let m = shared.st();
        let c = m
            .commands
            .get(&(family, id.clone()))
            .filter(|c| c.seller_id == seller)
            .ok_or_else(command_not_found)?;
        Ok::<Value, ApiError>(c.report())
    })();
    match r {
        Ok(v) => vnd_json(200, &v),
        Err(e) => e.into_response(),
    }
}

/// `GET /sale/offer-{quantity,price}-change-commands/{commandId}/tasks?limit&offset`
pub async fn tasks_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let family = parse_family(uri.path());
    let p = Params::from_query(uri.query());
    let r = (|| {
        let seller = seller_of(&caller)?;
        let limit = p.int("limit", 100, 1, 1000, 422)?;
        let offset = p.int("offset", 0, 0, 999, 422)?;
        let m = shared.st();
        let c = m
            .commands
            .get(&(family, id.clone()))
            .filter(|c| c.seller_id == seller)
            .ok_or_else(command_not_found)?;
        let tasks: Vec<Value> = c
            .tasks
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|t| task_json(t, family.field()))
            .collect();
        Ok::<Value, ApiError>(json!({ "tasks": tasks }))
    })();
    match r {
        Ok(v) => vnd_json(200, &v),
        Err(e) => e.into_response(),
    }
}
