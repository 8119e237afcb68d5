//! Product categories: `GET/POST /products/categories`, `GET /products/categories/{id}`.
//!
//! As WordPress terms: their own id sequence, a parent, a slug unique across the taxonomy
//! (`-2`, `-3`… appended), and a name unique under its parent (`term_exists`, 400, with the
//! existing term's id in `data.resource_id`, which is how a client finds it after a race).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::json::{JsonText, with_links};
use crate::pagination::{Page, paged_response};
use crate::params::{Fields, Query, body_params};
use crate::products::TermRef;
use crate::shared::Shared;
use crate::state::{ShopState, slugify};

/// A category in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub parent: u64,
    pub description: String,
    pub display: &'static str,
    pub image: Option<Value>,
    pub menu_order: u64,
    pub count: usize,
}

fn category(shop: &ShopState, term: &TermRef) -> Category {
    Category {
        id: term.id,
        name: term.name.clone(),
        slug: term.slug.clone(),
        parent: shop.category_parents.get(&term.id).copied().unwrap_or(0),
        description: String::new(),
        display: "default",
        image: None,
        menu_order: 0,
        count: shop
            .products
            .values()
            .filter(|p| p.status != "trash" && p.categories.iter().any(|c| c.id == term.id))
            .count(),
    }
}

fn category_json(c: &Category, root: &str) -> JsonText {
    let links = json!({"self": [{"href": format!("{root}/products/categories/{}", c.id)}],
                       "collection": [{"href": format!("{root}/products/categories")}]});
    with_links(c, &links)
}

/// `POST /products/categories` logic.
pub fn create(shop: &mut ShopState, body: &Map<String, Value>) -> Result<Category, ApiError> {
    let mut f = Fields::new(body);
    let name = f.string("name");
    let slug = f.string("slug");
    let parent = f.id("parent").unwrap_or(0);
    let _ = f.string("description");
    f.finish()?;
    let Some(name) = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Err(ApiError::missing_params(&["name"]));
    };
    if parent != 0 && !shop.categories.contains_key(&parent) {
        return Err(ApiError::new(
            400,
            "woocommerce_rest_term_invalid",
            "Parent resource does not exist.",
        ));
    }
    if let Some(existing) = shop.categories.values().find(|t| {
        t.name.to_lowercase() == name.to_lowercase()
            && shop.category_parents.get(&t.id).copied().unwrap_or(0) == parent
    }) {
        return Err(ApiError::new(
            400,
            "term_exists",
            "A term with the name provided already exists with this parent.",
        )
        .with("resource_id", json!(existing.id)));
    }
    let base = slugify(slug.as_deref().unwrap_or(&name));
    let mut slug = base.clone();
    let mut n = 2;
    while shop.categories.values().any(|t| t.slug == slug) {
        slug = format!("{base}-{n}");
        n += 1;
    }
    let id = shop.alloc_term_id();
    let term = TermRef { id, name, slug };
    shop.categories.insert(id, term.clone());
    if parent != 0 {
        shop.category_parents.insert(id, parent);
    }
    Ok(category(shop, &term))
}

pub async fn list_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let page = Page::from_query(&q, &mut errs);
    let parent = q
        .get("parent")
        .map(|_| q.int("parent", 0, 0, None, &mut errs));
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let search = q.get("search").map(str::to_lowercase);
    let slug = q.get("slug").map(str::to_owned);
    let root = shared.api_root();
    let (items, page) = {
        let shop = shared.shop();
        let all: Vec<Category> = shop
            .categories
            .values()
            .map(|t| category(&shop, t))
            .filter(|c| parent.is_none_or(|p| c.parent == p as u64))
            .filter(|c| slug.as_ref().is_none_or(|s| &c.slug == s))
            .filter(|c| {
                search
                    .as_ref()
                    .is_none_or(|s| c.name.to_lowercase().contains(s.as_str()))
            })
            .collect();
        let total = all.len();
        let items: Vec<JsonText> = page
            .slice(&all)
            .iter()
            .map(|c| category_json(c, &root))
            .collect();
        (items, page.with_total(total))
    };
    paged_response(&format!("{root}/products/categories"), &q, &page, items)
}

pub async fn get_handler(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    match shop.categories.get(&id) {
        Some(t) => category_json(&category(&shop, t), &shared.api_root()).into_response(),
        None => ApiError::new(
            404,
            "woocommerce_rest_term_invalid",
            "Resource does not exist.",
        )
        .into_response(),
    }
}

pub async fn create_handler(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        create(&mut shop, &params)
    };
    match result {
        Ok(c) => {
            shared.after_write(Vec::new());
            (StatusCode::CREATED, category_json(&c, &shared.api_root())).into_response()
        }
        Err(e) => e.into_response(),
    }
}
