//! Offers (research notes §4.1, §4.4): `GET /sale/offers` with its filters and paging,
//! `GET`/`PATCH /sale/product-offers/{offerId}` (per-seller minute limits, optional 202 +
//! operation polling, 409 while an edit is pending, stock 0 ends an ACTIVE offer).

use std::str::FromStr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::oauth::Caller;
use crate::state::{Shared, State as Market};
use crate::util::{ApiError, Params, money, parse_price, ts, uuid, vnd_json};

/// Publication statuses of an offer.
pub const PUBLICATION_STATUSES: [&str; 4] = ["INACTIVE", "ACTIVE", "ACTIVATING", "ENDED"];

/// An offer as the stand-in keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Numeric string.
    pub id: String,
    pub seller_id: String,
    pub name: String,
    /// `external.id`: the seller's SKU ("signature").
    pub external_id: Option<String>,
    pub price: Decimal,
    pub currency: String,
    pub available: i64,
    pub sold: i64,
    /// INACTIVE, ACTIVE, ACTIVATING, ENDED.
    pub status: String,
    /// Archived offers are invisible to the API and fail command tasks with OFFER_NOT_FOUND.
    pub archived: bool,
    pub category_id: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
}

/// An offer to seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewOffer {
    /// Explicit id (numeric string); generated when None.
    pub id: Option<String>,
    /// The seller; the default seller when None.
    pub seller_id: Option<String>,
    pub name: String,
    /// SKU.
    pub external_id: Option<String>,
    /// `"123.45"`.
    pub price: String,
    /// Default PLN.
    pub currency: Option<String>,
    pub available: i64,
    /// Default ACTIVE.
    pub status: Option<String>,
    pub archived: bool,
    pub category_id: Option<String>,
}

impl NewOffer {
    /// An ACTIVE offer with a SKU, a price and stock.
    pub fn new(sku: &str, name: &str, price: &str, available: i64) -> NewOffer {
        NewOffer {
            name: name.into(),
            external_id: Some(sku.into()),
            price: price.into(),
            available,
            ..NewOffer::default()
        }
    }
}

/// A pending asynchronous PATCH (202).
#[derive(Debug, Clone)]
pub struct PatchOp {
    pub id: String,
    pub offer_id: String,
    pub available: Option<i64>,
    pub price: Option<(Decimal, String)>,
    pub due: DateTime<Utc>,
    pub done: bool,
}

/// Adds an offer (library and control API).
pub fn add(m: &mut Market, default_seller: &str, n: &NewOffer) -> Result<Offer, ApiError> {
    let price = parse_price(
        &json!({"amount": n.price, "currency": n.currency.clone().unwrap_or_else(|| "PLN".into())}),
    )
    .map_err(ApiError::validation)?;
    let status = n.status.clone().unwrap_or_else(|| "ACTIVE".into());
    if !PUBLICATION_STATUSES.contains(&status.as_str()) {
        return Err(ApiError::validation(format!("unknown status {status}")));
    }
    let id = match &n.id {
        Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => id.clone(),
        Some(id) => {
            return Err(ApiError::validation(format!(
                "offer id {id} is not numeric"
            )));
        }
        None => {
            let id = m.next_offer_id;
            m.next_offer_id += 1;
            id.to_string()
        }
    };
    if m.offers.contains_key(&id) {
        return Err(ApiError::new(409, "CONFLICT", format!("offer {id} exists")));
    }
    let now = m.now();
    let offer = Offer {
        id: id.clone(),
        seller_id: n
            .seller_id
            .clone()
            .unwrap_or_else(|| default_seller.to_string()),
        name: n.name.clone(),
        external_id: n.external_id.clone(),
        price: price.0,
        currency: price.1,
        available: n.available.max(0),
        sold: 0,
        status: status.clone(),
        archived: n.archived,
        category_id: n.category_id.clone().unwrap_or_else(|| "20285".into()),
        created_at: now,
        started_at: (status == "ACTIVE").then_some(now),
    };
    m.offers.insert(id, offer.clone());
    Ok(offer)
}

/// Sets the stock of an offer; 0 ends an ACTIVE offer.
pub fn set_stock(o: &mut Offer, available: i64, ends: bool) {
    o.available = available.max(0);
    if o.available == 0 && ends && o.status == "ACTIVE" {
        o.status = "ENDED".into();
    }
}

/// One item of `GET /sale/offers`.
pub fn list_item(o: &Offer) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "category": {"id": o.category_id},
        "primaryImage": null,
        "sellingMode": {"format": "BUY_NOW", "price": money(o.price, &o.currency), "minimalPrice": null, "startingPrice": null},
        "saleInfo": {"currentPrice": null, "biddersCount": null},
        "stats": {"watchersCount": 0, "visitsCount": 0},
        "stock": {"available": o.available, "sold": o.sold},
        "publication": {"status": o.status, "startingAt": null, "startedAt": o.started_at.map(ts), "endingAt": null, "endedAt": null},
        "afterSalesServices": null,
        "additionalServices": null,
        "external": o.external_id.as_ref().map(|e| json!({"id": e})),
        "delivery": {"shippingRates": null},
    })
}

/// The product-offer shape (`GET`/`PATCH /sale/product-offers/{id}`).
pub fn product_offer(o: &Offer) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "category": {"id": o.category_id},
        "external": o.external_id.as_ref().map(|e| json!({"id": e})),
        "sellingMode": {"format": "BUY_NOW", "price": money(o.price, &o.currency)},
        "stock": {"available": o.available, "unit": "UNIT"},
        "publication": {"status": o.status, "startedAt": o.started_at.map(ts)},
        "createdAt": ts(o.created_at),
        "updatedAt": ts(o.created_at),
    })
}

pub(crate) fn seller_of(c: &Caller) -> Result<&str, ApiError> {
    c.seller_id
        .as_deref()
        .ok_or_else(|| ApiError::new(403, "AccessDenied", "Access is denied"))
}

/// `GET /sale/offers`
pub async fn list_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Response {
    match list(&shared, &caller, &Params::from_query(uri.query())) {
        Ok(v) => vnd_json(200, &v),
        Err(e) => e.into_response(),
    }
}

fn list(shared: &Shared, caller: &Caller, p: &Params) -> Result<Value, ApiError> {
    let seller = seller_of(caller)?;
    let limit = p.int("limit", 20, 1, 1000, 400)?;
    let offset = p.int("offset", 0, 0, 9_999_999, 400)?;
    if offset + limit > 10_000_000 {
        return Err(ApiError::bad_request(
            "Offset and limit parameters exceed maximal result size of 10000000 items",
        ));
    }
    let external = p.all("external.id");
    if external.len() > 100 {
        return Err(ApiError::bad_request(
            "Too many values of parameter 'external.id': at most 100 are allowed",
        ));
    }
    if let Some(long) = external.iter().find(|e| e.chars().count() > 100) {
        return Err(ApiError::bad_request(format!(
            "Parameter 'external.id' value '{long}' is longer than 100 characters"
        )));
    }
    let ids = p.all("offer.id");
    let statuses = p.all("publication.status");
    if let Some(bad) = statuses
        .iter()
        .find(|s| !PUBLICATION_STATUSES.contains(&s.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid value '{bad}' of parameter 'publication.status'"
        )));
    }
    let name = p.get("name").map(str::to_lowercase);
    let m = shared.st();
    let mut found: Vec<&Offer> = m
        .offers
        .values()
        .filter(|o| o.seller_id == seller && !o.archived)
        .filter(|o| ids.is_empty() || ids.contains(&o.id))
        .filter(|o| {
            external.is_empty() || o.external_id.as_ref().is_some_and(|e| external.contains(e))
        })
        .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
        .filter(|o| {
            name.as_ref()
                .is_none_or(|n| o.name.to_lowercase().contains(n))
        })
        .collect();
    // Newest first (creation time, then id).
    found.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.len().cmp(&a.id.len()).then_with(|| b.id.cmp(&a.id)))
    });
    let total = found.len();
    let page: Vec<Value> = found
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(list_item)
        .collect();
    Ok(json!({"offers": page, "count": page.len(), "totalCount": total}))
}

fn offer_not_found(id: &str) -> ApiError {
    ApiError::not_found("NOT_FOUND", format!("Offer {id} not found"))
}

fn visible<'a>(m: &'a Market, id: &str, seller: &str) -> Result<&'a Offer, ApiError> {
    match m.offers.get(id) {
        Some(o) if o.archived => Err(offer_not_found(id)),
        Some(o) if o.seller_id != seller => Err(ApiError::new(
            403,
            "AccessDenied",
            "You cannot access this offer",
        )),
        Some(o) => Ok(o),
        None => Err(offer_not_found(id)),
    }
}

fn too_many() -> ApiError {
    ApiError::new(
        429,
        "TooManyRequestsException",
        "Too many requests for this seller; the limit is per minute",
    )
}

/// `GET /sale/product-offers/{offerId}`
pub async fn get_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let r = (|| {
        let seller = seller_of(&caller)?;
        let mut m = shared.st();
        let now = m.now();
        let limit = m.cfg.offer_get_per_minute as u64;
        if !m
            .limits
            .seller_try("get", seller, now, Duration::minutes(1), limit, 1)
        {
            return Err(too_many());
        }
        Ok(product_offer(visible(&m, &id, seller)?))
    })();
    match r {
        Ok(v) => vnd_json(200, &v),
        Err(e) => e.into_response(),
    }
}

/// `PATCH /sale/product-offers/{offerId}`
pub async fn patch_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match patch(&shared, &caller, &id, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn patch(shared: &Shared, caller: &Caller, id: &str, body: &[u8]) -> Result<Response, ApiError> {
    let seller = seller_of(caller)?;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
    let mut m = shared.st();
    let now = m.now();
    let limit = m.cfg.offer_patch_per_minute as u64;
    if !m
        .limits
        .seller_try("patch", seller, now, Duration::minutes(1), limit, 1)
    {
        return Err(too_many());
    }
    visible(&m, id, seller)?;
    if m.patch_ops.values().any(|op| op.offer_id == id && !op.done) {
        return Err(ApiError::new(
            409,
            "OPERATION_IN_PROGRESS",
            "The previous change of this offer is still being processed",
        ));
    }
    let available = match v.pointer("/stock/available") {
        None | Some(Value::Null) => None,
        Some(n) => match n.as_i64() {
            Some(q) if q >= 0 => Some(q),
            _ => {
                return Err(ApiError::validation(
                    "stock.available must be a whole number not less than 0",
                )
                .with_path("stock.available"));
            }
        },
    };
    let price = match v.pointer("/sellingMode/price") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            parse_price(p).map_err(|e| ApiError::validation(e).with_path("sellingMode.price"))?,
        ),
    };
    if let Some((_, cur)) = &price
        && m.offers.get(id).is_some_and(|o| &o.currency != cur)
    {
        return Err(ApiError::validation(format!(
            "Currency {cur} does not match the offer's currency"
        ))
        .with_path("sellingMode.price.currency"));
    }
    if m.cfg.patch_async {
        let op = PatchOp {
            id: uuid(),
            offer_id: id.to_string(),
            available,
            price,
            due: now + Duration::milliseconds(m.cfg.patch_async_ms as i64),
            done: false,
        };
        let location = format!(
            "{}/sale/product-offers/{id}/operations/{}",
            shared.api_base, op.id
        );
        let retry = m.cfg.patch_async_retry_after_secs;
        let offer = m.offers.get(id).map(product_offer).unwrap_or(Value::Null);
        m.patch_ops.insert(op.id.clone(), op);
        let mut resp = vnd_json(202, &offer);
        if let Ok(h) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, h);
        }
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(resp);
    }
    let Some(o) = m.offers.get_mut(id) else {
        return Err(offer_not_found(id));
    };
    apply(o, available, price, true);
    Ok(vnd_json(200, &product_offer(o)))
}

fn apply(o: &mut Offer, available: Option<i64>, price: Option<(Decimal, String)>, ends: bool) {
    if let Some(q) = available {
        set_stock(o, q, ends);
    }
    if let Some((p, _)) = price {
        o.price = p;
    }
}

/// Finishes pending PATCH edits that are due.
pub fn settle(m: &mut Market, now: DateTime<Utc>) {
    let due: Vec<String> = m
        .patch_ops
        .values()
        .filter(|op| !op.done && op.due <= now)
        .map(|op| op.id.clone())
        .collect();
    for id in due {
        let Some(op) = m.patch_ops.get_mut(&id) else {
            continue;
        };
        op.done = true;
        let (offer_id, available, price) = (op.offer_id.clone(), op.available, op.price.clone());
        if let Some(o) = m.offers.get_mut(&offer_id) {
            apply(o, available, price, true);
        }
    }
}

/// `GET /sale/product-offers/{offerId}/operations/{operationId}`: 202 while pending, 303 with
/// `Location` when done.
pub async fn operation_handler(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((id, op_id)): Path<(String, String)>,
) -> Response {
    let r = (|| {
        let seller = seller_of(&caller)?;
        let m = shared.st();
        visible(&m, &id, seller)?;
        let op = m
            .patch_ops
            .get(&op_id)
            .filter(|op| op.offer_id == id)
            .ok_or_else(|| ApiError::not_found("NOT_FOUND", "Operation not found"))?;
        let resp = if op.done {
            let mut r = vnd_json(303, &json!({}));
            if let Ok(h) =
                HeaderValue::from_str(&format!("{}/sale/product-offers/{id}", shared.api_base))
            {
                r.headers_mut().insert(header::LOCATION, h);
            }
            r
        } else {
            let mut r = vnd_json(202, &json!({}));
            if let Ok(h) = HeaderValue::from_str(&format!(
                "{}/sale/product-offers/{id}/operations/{op_id}",
                shared.api_base
            )) {
                r.headers_mut().insert(header::LOCATION, h);
            }
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(m.cfg.patch_async_retry_after_secs),
            );
            r
        };
        Ok::<Response, ApiError>(resp)
    })();
    r.unwrap_or_else(|e| e.into_response())
}

/// Parses an amount for library callers (`"12.34"`).
pub fn decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s.trim()).ok()
}
