//! Discovery: `GET /wp-json/` (site index with `namespaces`) and `GET /wp-json/wc/v3` (the
//! namespace's routes with their methods and argument names), the way connectors detect whether a
//! shop supports e.g. `modified_after` on `/orders`. Argument schemas are reduced to `type`,
//! `required` and, where it matters, `enum`/`maximum`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::json::{self, JsonText};
use crate::orders::ORDER_STATUSES;
use crate::products::{PRODUCT_STATUSES, PRODUCT_TYPES};
use crate::shared::Shared;

fn arg(ty: &str) -> Value {
    json!({"type": ty, "required": false})
}

fn collection_args(extra: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    m.insert(
        "context".into(),
        json!({"type": "string", "required": false, "enum": ["view", "edit"], "default": "view"}),
    );
    m.insert(
        "page".into(),
        json!({"type": "integer", "required": false, "default": 1, "minimum": 1}),
    );
    m.insert(
        "per_page".into(),
        json!({"type": "integer", "required": false, "default": 10, "minimum": 1, "maximum": 100}),
    );
    m.insert("search".into(), arg("string"));
    for key in ["after", "before", "modified_after", "modified_before"] {
        m.insert(
            key.into(),
            json!({"type": "string", "format": "date-time", "required": false}),
        );
    }
    m.insert(
        "dates_are_gmt".into(),
        json!({"type": "boolean", "required": false, "default": false}),
    );
    for key in ["exclude", "include"] {
        m.insert(
            key.into(),
            json!({"type": "array", "items": {"type": "integer"}, "required": false}),
        );
    }
    m.insert("offset".into(), arg("integer"));
    m.insert(
        "order".into(),
        json!({"type": "string", "required": false, "enum": ["asc", "desc"], "default": "desc"}),
    );
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

fn route(namespace: &str, methods: &[&str], endpoints: Vec<Value>) -> Value {
    json!({"namespace": namespace, "methods": methods, "endpoints": endpoints})
}

fn routes(shared: &Shared, tracking: bool) -> Map<String, Value> {
    let ns = "wc/v3";
    let item = |methods: &[&str]| {
        route(
            ns,
            methods,
            vec![
                json!({"methods": methods, "args": {"id": {"type": "integer", "required": false}}}),
            ],
        )
    };
    let batch = || {
        route(
            ns,
            &["POST", "PUT", "PATCH"],
            vec![
                json!({"methods": ["POST", "PUT", "PATCH"], "args": {"create": arg("array"), "update": arg("array"), "delete": arg("array")}}),
            ],
        )
    };
    let mut product_statuses = vec!["any", "future", "trash"];
    product_statuses.extend_from_slice(PRODUCT_STATUSES);
    let mut order_statuses = vec!["any"];
    order_statuses.extend_from_slice(ORDER_STATUSES);
    let products_get = collection_args(&[
        ("sku", arg("string")),
        (
            "status",
            json!({"type": "string", "required": false, "enum": product_statuses, "default": "any"}),
        ),
        (
            "type",
            json!({"type": "string", "required": false, "enum": PRODUCT_TYPES}),
        ),
        (
            "parent",
            json!({"type": "array", "items": {"type": "integer"}, "required": false}),
        ),
        ("category", arg("string")),
        (
            "stock_status",
            json!({"type": "string", "required": false, "enum": ["instock", "outofstock", "onbackorder"]}),
        ),
        ("on_sale", arg("boolean")),
        (
            "orderby",
            json!({"type": "string", "required": false, "default": "date", "enum": ["date", "modified", "id", "include", "title", "slug", "price", "popularity", "rating", "menu_order"]}),
        ),
    ]);
    let orders_get = collection_args(&[
        (
            "status",
            json!({"type": "array", "items": {"type": "string", "enum": order_statuses}, "required": false, "default": "any"}),
        ),
        ("customer", arg("integer")),
        ("product", arg("integer")),
        (
            "orderby",
            json!({"type": "string", "required": false, "default": "date", "enum": ["date", "modified", "id", "include", "title", "slug"]}),
        ),
    ]);
    let mut r = Map::new();
    r.insert(format!("/{ns}"), route(ns, &["GET"], vec![json!({"methods": ["GET"], "args": {"namespace": {"default": ns, "required": false}}})]));
    r.insert(
        format!("/{ns}/products"),
        route(
            ns,
            &["GET", "POST"],
            vec![
                json!({"methods": ["GET"], "args": products_get}),
                json!({"methods": ["POST"], "args": {}}),
            ],
        ),
    );
    r.insert(format!("/{ns}/products/batch"), batch());
    r.insert(
        format!("/{ns}/products/(?P<id>[\\d]+)"),
        item(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
    );
    r.insert(
        format!("/{ns}/products/(?P<product_id>[\\d]+)/variations"),
        route(ns, &["GET", "POST"], vec![]),
    );
    r.insert(
        format!("/{ns}/products/(?P<product_id>[\\d]+)/variations/batch"),
        batch(),
    );
    r.insert(
        format!("/{ns}/products/(?P<product_id>[\\d]+)/variations/(?P<id>[\\d]+)"),
        item(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
    );
    r.insert(
        format!("/{ns}/orders"),
        route(
            ns,
            &["GET", "POST"],
            vec![
                json!({"methods": ["GET"], "args": orders_get}),
                json!({"methods": ["POST"], "args": {}}),
            ],
        ),
    );
    r.insert(format!("/{ns}/orders/batch"), batch());
    r.insert(
        format!("/{ns}/orders/(?P<id>[\\d]+)"),
        item(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
    );
    r.insert(
        format!("/{ns}/orders/(?P<order_id>[\\d]+)/refunds"),
        route(ns, &["GET", "POST"], vec![]),
    );
    r.insert(
        format!("/{ns}/orders/(?P<order_id>[\\d]+)/refunds/(?P<id>[\\d]+)"),
        item(&["GET"]),
    );
    r.insert(format!("/{ns}/refunds"), route(ns, &["GET"], vec![]));
    r.insert(
        format!("/{ns}/orders/(?P<order_id>[\\d]+)/notes"),
        route(ns, &["GET", "POST"], vec![]),
    );
    r.insert(
        format!("/{ns}/orders/(?P<order_id>[\\d]+)/notes/(?P<id>[\\d]+)"),
        item(&["GET", "DELETE"]),
    );
    r.insert(
        format!("/{ns}/coupons"),
        route(ns, &["GET", "POST"], vec![]),
    );
    r.insert(format!("/{ns}/coupons/(?P<id>[\\d]+)"), item(&["GET"]));
    r.insert(
        format!("/{ns}/webhooks"),
        route(ns, &["GET", "POST"], vec![]),
    );
    r.insert(
        format!("/{ns}/webhooks/(?P<id>[\\d]+)"),
        item(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
    );
    if tracking {
        let tns = "wc-shipment-tracking/v3";
        r.insert(
            format!("/{tns}/orders/(?P<order_id>[\\d]+)/shipment-trackings"),
            route(tns, &["GET", "POST"], vec![]),
        );
        r.insert(
            format!("/{tns}/orders/(?P<order_id>[\\d]+)/shipment-trackings/(?P<id>[\\w-]+)"),
            route(tns, &["GET", "DELETE"], vec![]),
        );
    }
    let _ = shared;
    r
}

/// `GET /wp-json/wc/v3`
pub async fn namespace_index(State(shared): State<Arc<Shared>>) -> Response {
    let tracking = shared.shipment_tracking;
    let routes: Map<String, Value> = routes(&shared, tracking)
        .into_iter()
        .filter(|(k, _)| k.starts_with("/wc/v3"))
        .collect();
    let body = json::object(&[
        ("namespace", json::text(&"wc/v3")),
        ("routes", json::text(&routes)),
    ]);
    body.into_response()
}

/// `GET /wp-json/`
pub async fn site_index(State(shared): State<Arc<Shared>>) -> Response {
    let tracking = shared.shipment_tracking;
    let mut namespaces = vec!["wp/v2", "wc/v3", "wc/v2", "wc/v1", "wc/store/v1"];
    if tracking {
        namespaces.push("wc-shipment-tracking/v3");
    }
    let home = format!("{}/", shared.base_url);
    let body: JsonText = json::object(&[
        ("name", json::text(&"WooCommerce stand-in")),
        ("description", json::text(&"woo-standin")),
        ("url", json::text(&shared.base_url)),
        ("home", json::text(&home)),
        (
            "gmt_offset",
            json::text(&(f64::from(shared.clock.offset_minutes) / 60.0)),
        ),
        ("timezone_string", json::text(&"")),
        ("namespaces", json::text(&namespaces)),
        ("authentication", "[]".to_string()),
        ("routes", json::text(&routes(&shared, tracking))),
    ]);
    body.into_response()
}
