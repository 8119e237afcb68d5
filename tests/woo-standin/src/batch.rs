//! `POST /<resource>/batch`: `create`/`update`/`delete` arrays, at most
//! `woocommerce_rest_batch_items_limit` (100) items in total (else 413
//! `woocommerce_rest_request_entity_too_large`), and per-item errors in place:
//! `{"id": N, "error": {"code", "message", "data": {"status"}}}` while the other items succeed.
//! As in `WC_REST_Controller::batch_items`, items are not schema-validated (values are PHP-cast)
//! and a delete id of 0 is skipped.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::json::{self, JsonText};
use crate::params::BATCH_ITEM;
use crate::shared::Shared;
use crate::state::{Event, ShopState};

type ItemResult = Result<(JsonText, Vec<Event>), ApiError>;

/// Runs a batch under one lock of the shop.
pub fn run<C, U, D>(
    shared: &Shared,
    params: &Map<String, Value>,
    mut create: C,
    mut update: U,
    mut delete: D,
) -> Result<(JsonText, Vec<Event>), ApiError>
where
    C: FnMut(&mut ShopState, &Map<String, Value>) -> ItemResult,
    U: FnMut(&mut ShopState, u64, &Map<String, Value>) -> ItemResult,
    D: FnMut(&mut ShopState, u64) -> ItemResult,
{
    let mut errs = Vec::new();
    let mut lists: [Vec<Value>; 3] = Default::default();
    for (i, key) in ["create", "update", "delete"].iter().enumerate() {
        match params.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => lists[i] = a.clone(),
            Some(_) => errs.push((
                key.to_string(),
                format!("{key} is not of type array."),
                "rest_invalid_type".to_string(),
            )),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid_params(&errs));
    }
    let total: usize = lists.iter().map(Vec::len).sum();
    let limit = shared.settings.batch_limit;
    if total > limit {
        return Err(ApiError::new(
            413,
            "woocommerce_rest_request_entity_too_large",
            format!("Unable to accept more than {limit} items for this request."),
        ));
    }
    let [creates, updates, deletes] = lists;
    let mut out: Vec<(&str, String)> = Vec::new();
    let mut events = Vec::new();
    let mut shop = shared.shop();
    let empty = Map::new();

    // Items skip schema validation (see `params::BATCH_ITEM`).
    let mark = |item: &Value| {
        let mut m = item.as_object().unwrap_or(&empty).clone();
        m.insert(BATCH_ITEM.to_string(), Value::Bool(true));
        m
    };
    if !creates.is_empty() {
        let mut results = Vec::new();
        for item in &creates {
            let obj = mark(item);
            results.push(item_result(create(&mut shop, &obj), 0, &mut events));
        }
        out.push(("create", json::array(results).0));
    }
    if !updates.is_empty() {
        let mut results = Vec::new();
        for item in &updates {
            let obj = mark(item);
            let id = obj
                .get("id")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(0);
            results.push(item_result(update(&mut shop, id, &obj), id, &mut events));
        }
        out.push(("update", json::array(results).0));
    }
    if !deletes.is_empty() {
        let mut results = Vec::new();
        for item in &deletes {
            let id = item
                .as_u64()
                .or_else(|| item.as_str().and_then(|s| s.parse().ok()))
                .or_else(|| item.get("id").and_then(Value::as_u64))
                .unwrap_or(0);
            // `(int) $id === 0` is skipped without an entry.
            if id == 0 {
                continue;
            }
            results.push(item_result(delete(&mut shop, id), id, &mut events));
        }
        out.push(("delete", json::array(results).0));
    }
    if out.is_empty() {
        // PHP's empty array.
        return Ok((JsonText("[]".into()), events));
    }
    Ok((json::object(&out), events))
}

fn item_result(r: ItemResult, id: u64, events: &mut Vec<Event>) -> JsonText {
    match r {
        Ok((v, ev)) => {
            events.extend(ev);
            v
        }
        Err(e) => json::object(&[("id", id.to_string()), ("error", e.to_json_text())]),
    }
}
