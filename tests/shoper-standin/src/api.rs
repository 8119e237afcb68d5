//! Routing of `/webapi/rest/<resource>[/<id>]` (shared by single calls and `/bulk`
//! sub-requests), scopes, and `/bulk` itself (docs §5).
//!
//! Unknown resource (or extra path segments) → 400 `invalid_request` (live status; the body
//! is *unverified*); a method the resource lacks → 405; a right the token lacks → 403
//! `insufficient_scope`. Success is 200 for every method: collections, objects, the new id of
//! a POST, `1` for PUT and DELETE.
//!
//! `/bulk` takes up to [`crate::Config::bulk_max_operations`] (25) operations
//! `{"id","path":"/webapi/rest/...","method","body"?,"params"?}` and runs them in order, each
//! with its own outcome: `{"errors":bool,"items":[{"code","body","id"}]}`. A failing operation
//! does not stop the others and nothing is rolled back. More than 25 → 400 `invalid_request`
//! (*unverified*: the SDK refuses client-side).

use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::query::Page;
use crate::state::State;
use crate::util::{Params, flag};
use crate::{catalog, orders, webhooks};

/// An HTTP method the API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "DELETE" => Verb::Delete,
            _ => return None,
        })
    }

    /// The right a scope must grant.
    fn right(self) -> &'static str {
        match self {
            Verb::Get | Verb::Head => "read",
            Verb::Post => "create",
            Verb::Put => "edit",
            Verb::Delete => "delete",
        }
    }
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// (count, page, pages) for collections (`X-Shop-Result-*`).
    pub result: Option<(usize, usize, usize)>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            result: None,
        }
    }

    fn page(p: Page) -> Answer {
        Answer {
            status: 200,
            body: p.body(),
            result: Some((p.count, p.page, p.pages)),
        }
    }
}

fn unknown(path: &str) -> ApiError {
    ApiError::invalid(format!("Nieznany zasób '{path}'"))
}

/// What a path names: the scope area and which methods it takes.
struct Route<'a> {
    resource: &'a str,
    id: Option<&'a str>,
    tail: Vec<&'a str>,
}

fn area(resource: &str) -> Option<&'static str> {
    match resource {
        "products" | "product-stocks" => Some("products"),
        "orders" | "order-products" | "parcels" | "statuses" | "object-mtime" => Some("orders"),
        "webhooks" => Some("webhooks"),
        _ => None,
    }
}

fn allowed(r: &Route<'_>, verb: Verb) -> bool {
    let read = matches!(verb, Verb::Get | Verb::Head);
    match (r.resource, r.id.is_some()) {
        ("statuses" | "application-config" | "object-mtime" | "warehouses", _) => read,
        ("bulk", false) => verb == Verb::Post,
        (_, false) => read || verb == Verb::Post,
        (_, true) => read || matches!(verb, Verb::Put | Verb::Delete),
    }
}

const RESOURCES: [&str; 12] = [
    "products",
    "product-stocks",
    "orders",
    "order-products",
    "statuses",
    "parcels",
    "webhooks",
    "application-config",
    "object-mtime",
    "warehouses",
    "bulk",
    "auth",
];

/// Runs one API call (a single request or a bulk sub-request).
pub fn dispatch(
    m: &mut State,
    caller: &Caller,
    verb: Verb,
    path: &str,
    params: &Params,
    body: Option<&Value>,
) -> Result<Answer, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(resource) = segs.first().copied() else {
        return Err(unknown(path));
    };
    if !RESOURCES.contains(&resource) {
        return Err(unknown(path));
    }
    let route = Route {
        resource,
        id: segs.get(1).copied(),
        tail: segs.iter().skip(2).copied().collect(),
    };
    if resource == "auth" {
        // Only reachable from /bulk: logging in is not a sub-request.
        return Err(ApiError::invalid(
            "Operacja niedozwolona w zapytaniu zbiorczym",
        ));
    }
    if resource != "object-mtime" && !route.tail.is_empty() {
        return Err(unknown(path));
    }
    if !allowed(&route, verb) {
        return Err(ApiError::method_not_allowed());
    }
    if let Some(a) = area(resource)
        && !caller.may(a, verb.right())
    {
        m.counters.forbidden += 1;
        return Err(ApiError::insufficient_scope());
    }
    let read = matches!(verb, Verb::Get | Verb::Head);
    let id = route.id;
    match resource {
        "products" => match (verb, id) {
            (_, None) if read => catalog::products_list(m, params).map(Answer::page),
            (Verb::Post, None) => catalog::product_post(m, body).map(Answer::ok),
            (_, Some(i)) if read => catalog::product_get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => catalog::product_put(m, i, body).map(Answer::ok),
            (_, Some(i)) => catalog::product_delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "product-stocks" => match (verb, id) {
            (_, None) if read => catalog::stocks_list(m, params).map(Answer::page),
            (Verb::Post, None) => catalog::stock_post(m, body).map(Answer::ok),
            (_, Some(i)) if read => catalog::stock_get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => catalog::stock_put(m, i, body).map(Answer::ok),
            (_, Some(i)) => catalog::stock_delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "orders" => match (verb, id) {
            (_, None) if read => orders::orders_list(m, params).map(Answer::page),
            (Verb::Post, None) => orders::order_post(m, body).map(Answer::ok),
            (_, Some(i)) if read => orders::order_get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => orders::order_put(m, i, body).map(Answer::ok),
            (_, Some(i)) => orders::order_delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "order-products" => match (verb, id) {
            (_, None) if read => orders::lines_list(m, params).map(Answer::page),
            (Verb::Post, None) => orders::line_post(m, body).map(Answer::ok),
            (_, Some(i)) if read => orders::line_get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => orders::line_put(m, i, body).map(Answer::ok),
            (_, Some(i)) => orders::line_delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "parcels" => match (verb, id) {
            (_, None) if read => orders::parcels_list(m, params).map(Answer::page),
            (Verb::Post, None) => orders::parcel_post(m, body).map(Answer::ok),
            (_, Some(i)) if read => orders::parcel_get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => orders::parcel_put(m, i, body).map(Answer::ok),
            (_, Some(i)) => orders::parcel_delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "webhooks" => match (verb, id) {
            (_, None) if read => webhooks::list(m, params).map(Answer::page),
            (Verb::Post, None) => webhooks::post(m, body).map(Answer::ok),
            (_, Some(i)) if read => webhooks::get(m, i).map(Answer::ok),
            (Verb::Put, Some(i)) => webhooks::put(m, i, body).map(Answer::ok),
            (_, Some(i)) => webhooks::delete(m, i).map(Answer::ok),
            _ => Err(ApiError::method_not_allowed()),
        },
        "statuses" => match id {
            None => orders::statuses_list(m, params).map(Answer::page),
            Some(i) => orders::status_get(m, i).map(Answer::ok),
        },
        "application-config" => match id {
            None => Ok(Answer::ok(application_config(m))),
            Some(_) => Err(unknown(path)),
        },
        "object-mtime" => match (id, route.tail.as_slice()) {
            // `?object=product` is not how it works (live: 501 with a bare code).
            (None, _) => Err(ApiError::bare(501, "invalid_request")),
            (Some(_), []) => Err(ApiError::new(500, "server_error", "Internal server error")),
            (Some(object), [oid]) => orders::mtime(m, object, oid).map(Answer::ok),
            _ => Err(unknown(path)),
        },
        "warehouses" => {
            if m.cfg.warehouses_enabled {
                Ok(Answer::page(Page {
                    count: 0,
                    page: 1,
                    pages: 0,
                    list: Vec::new(),
                }))
            } else {
                Err(ApiError::invalid("Warehouses module is disabled"))
            }
        }
        "bulk" => bulk(m, caller, body),
        _ => Err(unknown(path)),
    }
}

/// `GET /application-config`.
pub fn application_config(m: &State) -> Value {
    json!({
        "locale_timezone": m.cfg.locale_timezone,
        "locale_default_currency_id": "1",
        "locale_default_currency_code": "PLN",
        "locale_default_language": "pl_PL",
        "shopping_update_stock_on_buy": flag(m.cfg.shopping_update_stock_on_buy),
        "shopping_parcel_send_status_id": m.cfg.parcel_send_status_id.to_string(),
        "warehouses_enabled": m.cfg.warehouses_enabled,
        "application_version": m.cfg.shop_version,
    })
}

/// The cost of a call in bucket units.
pub fn cost(m: &State, path: &str, body: Option<&Value>) -> u32 {
    let is_bulk = path.split('/').find(|s| !s.is_empty()) == Some("bulk");
    if is_bulk && m.cfg.bulk_cost_per_operation {
        match body {
            Some(Value::Array(ops)) => (ops.len() as u32).max(1),
            _ => 1,
        }
    } else {
        1
    }
}

fn item(code: u16, body: Value, id: &Value) -> Value {
    json!({"code": code, "body": body, "id": id})
}

/// `POST /bulk`.
fn bulk(m: &mut State, caller: &Caller, body: Option<&Value>) -> Result<Answer, ApiError> {
    let Some(Value::Array(ops)) = body else {
        return Err(ApiError::invalid("Niepoprawny format danych"));
    };
    if ops.is_empty() {
        return Err(ApiError::invalid("Brak operacji"));
    }
    if ops.len() > m.cfg.bulk_max_operations {
        return Err(ApiError::invalid(m.cfg.bulk_too_many_description.clone()));
    }
    m.counters.bulk_calls += 1;
    m.counters.bulk_operations += ops.len() as u64;
    let mut items = Vec::with_capacity(ops.len());
    let mut errors = false;
    for op in ops {
        let id = op.get("id").cloned().unwrap_or(Value::Null);
        let out = run_op(m, caller, op);
        let (code, body) = match out {
            Ok(a) => (a.status, a.body),
            Err(e) => {
                errors = true;
                (e.status, e.body())
            }
        };
        items.push(item(code, body, &id));
    }
    Ok(Answer {
        status: if errors {
            m.cfg.bulk_status_with_errors
        } else {
            200
        },
        body: json!({"errors": errors, "items": items}),
        result: None,
    })
}

fn run_op(m: &mut State, caller: &Caller, op: &Value) -> Result<Answer, ApiError> {
    let Value::Object(o) = op else {
        return Err(ApiError::invalid("Niepoprawny format operacji"));
    };
    let Some(full) = o.get("path").and_then(Value::as_str) else {
        return Err(ApiError::invalid(
            "Wartość pola 'path' jest niepoprawna: Pole wymagane",
        ));
    };
    let Some(verb) = o
        .get("method")
        .and_then(Value::as_str)
        .and_then(Verb::parse)
    else {
        return Err(ApiError::invalid(
            "Wartość pola 'method' jest niepoprawna: Dozwolone wartości: GET, POST, PUT, DELETE",
        ));
    };
    if verb == Verb::Head {
        return Err(ApiError::method_not_allowed());
    }
    let (path, query) = match full.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (full, None),
    };
    let Some(path) = path
        .strip_prefix("/webapi/rest/")
        .or_else(|| path.strip_prefix("webapi/rest/"))
    else {
        return Err(unknown(path));
    };
    if path.split('/').find(|s| !s.is_empty()) == Some("bulk") {
        return Err(ApiError::invalid(
            "Operacja niedozwolona w zapytaniu zbiorczym",
        ));
    }
    let mut params = Params::from_query(query);
    if let Some(p) = o.get("params") {
        match Params::from_json(p) {
            Ok(extra) => params.0.extend(extra.0),
            Err(e) => return Err(ApiError::invalid(e)),
        }
    }
    let body = o.get("body");
    dispatch(m, caller, verb, path, &params, body)
}
