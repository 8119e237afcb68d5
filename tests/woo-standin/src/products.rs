//! Products: the JSON shape of `/wc/v3/products`, validation the way WooCommerce does it, list
//! filters (`sku=A,B`, `status`, `modified_after`, ...), `POST /products/batch` with the 100-item
//! limit and per-item errors.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::SiteClock;
use crate::error::ApiError;
use crate::json::{JsonText, with_links};
use crate::pagination::{Page, paged_response};
use crate::params::{Fields, Query, body_params, wc_format_decimal};
use crate::shared::Shared;
use crate::state::{Event, ShopState, slugify};
use crate::tax;

/// A category (or tag) reference inside a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermRef {
    pub id: u64,
    pub name: String,
    pub slug: String,
}

/// `meta_data` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaData {
    pub id: u64,
    pub key: String,
    pub value: Value,
}

/// Product dimensions (strings, as WooCommerce returns them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dimensions {
    pub length: String,
    pub width: String,
    pub height: String,
}

/// A product (or a variation, `type: "variation"`) in WooCommerce's REST shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub permalink: String,
    pub date_created: String,
    pub date_created_gmt: String,
    pub date_modified: String,
    pub date_modified_gmt: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub featured: bool,
    pub catalog_visibility: String,
    pub description: String,
    pub short_description: String,
    pub sku: String,
    pub price: String,
    pub regular_price: String,
    pub sale_price: String,
    pub on_sale: bool,
    pub purchasable: bool,
    pub total_sales: i64,
    #[serde(rename = "virtual")]
    pub is_virtual: bool,
    pub downloadable: bool,
    pub tax_status: String,
    pub tax_class: String,
    pub manage_stock: bool,
    pub stock_quantity: Option<i64>,
    pub backorders: String,
    pub backorders_allowed: bool,
    pub backordered: bool,
    pub low_stock_amount: Option<i64>,
    pub sold_individually: bool,
    pub weight: String,
    pub dimensions: Dimensions,
    pub shipping_required: bool,
    pub shipping_taxable: bool,
    pub shipping_class: String,
    pub shipping_class_id: u64,
    pub parent_id: u64,
    pub categories: Vec<TermRef>,
    pub tags: Vec<TermRef>,
    pub images: Vec<Value>,
    pub attributes: Vec<Value>,
    pub default_attributes: Vec<Value>,
    pub variations: Vec<u64>,
    pub grouped_products: Vec<u64>,
    pub menu_order: i64,
    pub price_html: String,
    pub related_ids: Vec<u64>,
    pub meta_data: Vec<MetaData>,
    pub stock_status: String,
    pub has_options: bool,
}

/// A product to add through the library (`WooStandin::add_product`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    /// Gross price as WooCommerce stores it, e.g. `"123.00"`.
    pub regular_price: String,
    pub sale_price: String,
    pub stock_quantity: Option<i64>,
    pub manage_stock: bool,
    /// `publish` (default), `draft`, `private`, `pending`.
    pub status: String,
    pub catalog_visibility: String,
    /// `""` (23 %), `reduced-rate` (8 %), `super-reduced-rate` (5 %), `zero-rate` (0 %).
    pub tax_class: String,
    /// `simple` (default) or `variable`.
    #[serde(rename = "type")]
    pub kind: String,
    pub category_ids: Vec<u64>,
}

impl Default for NewProduct {
    fn default() -> Self {
        NewProduct {
            sku: String::new(),
            name: String::new(),
            regular_price: String::new(),
            sale_price: String::new(),
            stock_quantity: None,
            manage_stock: true,
            status: "publish".into(),
            catalog_visibility: "visible".into(),
            tax_class: String::new(),
            kind: "simple".into(),
            category_ids: Vec::new(),
        }
    }
}

impl NewProduct {
    /// The equivalent `POST /products` body.
    pub fn to_body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sku".into(), json!(self.sku));
        m.insert("name".into(), json!(self.name));
        m.insert("regular_price".into(), json!(self.regular_price));
        if !self.sale_price.is_empty() {
            m.insert("sale_price".into(), json!(self.sale_price));
        }
        m.insert("manage_stock".into(), json!(self.manage_stock));
        if let Some(q) = self.stock_quantity {
            m.insert("stock_quantity".into(), json!(q));
        }
        m.insert("status".into(), json!(self.status));
        m.insert("catalog_visibility".into(), json!(self.catalog_visibility));
        m.insert("tax_class".into(), json!(self.tax_class));
        m.insert("type".into(), json!(self.kind));
        if !self.category_ids.is_empty() {
            let cats: Vec<Value> = self
                .category_ids
                .iter()
                .map(|id| json!({"id": id}))
                .collect();
            m.insert("categories".into(), Value::Array(cats));
        }
        m
    }
}

pub const PRODUCT_STATUSES: &[&str] = &["draft", "pending", "private", "publish"];
pub const PRODUCT_TYPES: &[&str] = &["simple", "grouped", "external", "variable"];
pub const VISIBILITIES: &[&str] = &["visible", "catalog", "search", "hidden"];
pub const STOCK_STATUSES: &[&str] = &["instock", "outofstock", "onbackorder"];
pub const BACKORDERS: &[&str] = &["no", "notify", "yes"];
pub const TAX_STATUSES: &[&str] = &["taxable", "shipping", "none"];

impl Product {
    /// A blank product as `new WC_Product_Simple()` would save it.
    pub fn blank(id: u64, clock: &SiteClock) -> Product {
        let (local, gmt) = clock.now_pair();
        Product {
            id,
            name: String::new(),
            slug: String::new(),
            permalink: String::new(),
            date_created: local.clone(),
            date_created_gmt: gmt.clone(),
            date_modified: local,
            date_modified_gmt: gmt,
            kind: "simple".into(),
            status: "publish".into(),
            featured: false,
            catalog_visibility: "visible".into(),
            description: String::new(),
            short_description: String::new(),
            sku: String::new(),
            price: String::new(),
            regular_price: String::new(),
            sale_price: String::new(),
            on_sale: false,
            purchasable: false,
            total_sales: 0,
            is_virtual: false,
            downloadable: false,
            tax_status: "taxable".into(),
            tax_class: String::new(),
            manage_stock: false,
            stock_quantity: None,
            backorders: "no".into(),
            backorders_allowed: false,
            backordered: false,
            low_stock_amount: None,
            sold_individually: false,
            weight: String::new(),
            dimensions: Dimensions::default(),
            shipping_required: true,
            shipping_taxable: true,
            shipping_class: String::new(),
            shipping_class_id: 0,
            parent_id: 0,
            categories: Vec::new(),
            tags: Vec::new(),
            images: Vec::new(),
            attributes: Vec::new(),
            default_attributes: Vec::new(),
            variations: Vec::new(),
            grouped_products: Vec::new(),
            menu_order: 0,
            price_html: String::new(),
            related_ids: Vec::new(),
            meta_data: Vec::new(),
            stock_status: "instock".into(),
            has_options: false,
        }
    }

    /// The gross (or net, per shop setting) unit price as a decimal; `None` if unpriced.
    pub fn price_decimal(&self) -> Option<Decimal> {
        self.price.parse().ok()
    }

    /// Recomputes `price`, `on_sale`, `purchasable`, stock flags, `price_html`.
    pub fn refresh_derived(&mut self, currency_symbol: &str) {
        let regular: Option<Decimal> = self.regular_price.parse().ok();
        let sale: Option<Decimal> = self.sale_price.parse().ok();
        self.on_sale = match (sale, regular) {
            (Some(s), Some(r)) => s < r,
            (Some(_), None) => true,
            _ => false,
        };
        self.price = if self.on_sale {
            self.sale_price.clone()
        } else {
            self.regular_price.clone()
        };
        self.purchasable = !self.price.is_empty() && self.status != "trash";
        if self.manage_stock {
            let qty = self.stock_quantity.unwrap_or(0);
            self.stock_quantity = Some(qty);
            self.stock_status = if qty > 0 {
                "instock".into()
            } else if self.backorders != "no" {
                "onbackorder".into()
            } else {
                "outofstock".into()
            };
        } else {
            self.stock_quantity = None;
        }
        self.backorders_allowed = self.backorders != "no";
        self.backordered =
            self.manage_stock && self.backorders_allowed && self.stock_quantity.unwrap_or(0) <= 0;
        self.has_options = self.kind == "variable";
        self.price_html = match self.price_decimal() {
            Some(p) => format!(
                "<span class=\"woocommerce-Price-amount amount\"><bdi>{}&nbsp;<span class=\"woocommerce-Price-currencySymbol\">{}</span></bdi></span>",
                format!("{:.2}", p.round_dp(2)).replace('.', ","),
                currency_symbol
            ),
            None => String::new(),
        };
    }

    /// Marks the product modified now.
    pub fn touch(&mut self, clock: &SiteClock) {
        let (local, gmt) = clock.now_pair();
        self.date_modified = local;
        self.date_modified_gmt = gmt;
    }
}

/// The product with `_links`, as the API returns it.
pub fn product_json(p: &Product, api_root: &str) -> JsonText {
    let mut links = json!({
        "self": [{"href": format!("{api_root}/products/{}", p.id)}],
        "collection": [{"href": format!("{api_root}/products")}],
    });
    if p.parent_id != 0
        && let Value::Object(l) = &mut links
    {
        l.insert(
            "up".into(),
            json!([{"href": format!("{api_root}/products/{}", p.parent_id)}]),
        );
    }
    with_links(p, &links)
}

/// Applies a create/update body to a product (validation first, nothing applied on error).
pub fn apply_input(
    shop: &ShopState,
    p: &mut Product,
    body: &Map<String, Value>,
    base_url: &str,
    tax_rates: &[tax::TaxRate],
) -> Result<(), ApiError> {
    let mut f = Fields::new(body);
    let name = f.string("name");
    let kind = f.enum_str("type", PRODUCT_TYPES);
    let status = f.enum_str("status", PRODUCT_STATUSES);
    let featured = f.boolean("featured");
    let visibility = f.enum_str("catalog_visibility", VISIBILITIES);
    let description = f.string("description");
    let short_description = f.string("short_description");
    let sku = f.string("sku");
    let regular_price = f.string("regular_price");
    let sale_price = f.string("sale_price");
    let is_virtual = f.boolean("virtual");
    let downloadable = f.boolean("downloadable");
    let tax_status = f.enum_str("tax_status", TAX_STATUSES);
    let tax_class = f.string("tax_class");
    let manage_stock = f.boolean("manage_stock");
    let stock_quantity = if f.raw("stock_quantity").is_some_and(Value::is_null) {
        None
    } else {
        f.integer("stock_quantity")
    };
    let inventory_delta = f.integer("inventory_delta");
    let stock_status = f.enum_str("stock_status", STOCK_STATUSES);
    let backorders = f.enum_str("backorders", BACKORDERS);
    let weight = f.string("weight");
    let menu_order = f.integer("menu_order");
    let parent_id = f.id("parent_id");
    let sold_individually = f.boolean("sold_individually");
    let low_stock_amount = f.integer("low_stock_amount");
    let categories = f
        .array("categories")
        .map(|a| term_ids(a, "categories", &mut f));
    let meta = f.array("meta_data").cloned();
    let attributes = f.array("attributes").cloned();
    let slug = f.string("slug");
    f.finish()?;

    if let Some(sku) = &sku {
        let sku = sku.trim();
        if !sku.is_empty() && shop.products.ids_with_sku(sku).any(|id| id != p.id) {
            return Err(
                ApiError::new(400, "product_invalid_sku", "Invalid or duplicated SKU.")
                    .with("resource_id", json!(shop.id_by_sku(sku).unwrap_or(0)))
                    .with("unique_sku", json!(format!("{sku}-1"))),
            );
        }
    }

    if let Some(v) = name {
        p.name = v;
    }
    if let Some(v) = kind {
        p.kind = v;
    }
    if let Some(v) = status {
        p.status = v;
    }
    if let Some(v) = featured {
        p.featured = v;
    }
    if let Some(v) = visibility {
        p.catalog_visibility = v;
    }
    if let Some(v) = description {
        p.description = v;
    }
    if let Some(v) = short_description {
        p.short_description = v;
    }
    if let Some(v) = sku {
        p.sku = v.trim().to_string();
    }
    if let Some(v) = regular_price {
        p.regular_price = wc_format_decimal(&v);
    }
    if let Some(v) = sale_price {
        p.sale_price = wc_format_decimal(&v);
    }
    if let Some(v) = is_virtual {
        p.is_virtual = v;
        p.shipping_required = !v;
    }
    if let Some(v) = downloadable {
        p.downloadable = v;
    }
    if let Some(v) = tax_status {
        p.tax_status = v;
    }
    if let Some(v) = tax_class {
        // WC_Product::set_tax_class silently falls back to the standard class.
        p.tax_class = if tax::valid_class(tax_rates, &v) && v != "standard" {
            v
        } else {
            String::new()
        };
    }
    if let Some(v) = manage_stock {
        p.manage_stock = v;
    }
    // As WC_REST_Products_Controller: stock_quantity (or inventory_delta) only counts when the
    // product manages stock; otherwise it is silently ignored.
    if p.manage_stock {
        if body.contains_key("stock_quantity") {
            p.stock_quantity = stock_quantity;
        } else if let Some(delta) = inventory_delta {
            p.stock_quantity = Some(p.stock_quantity.unwrap_or(0).saturating_add(delta));
        }
    }
    if let Some(v) = backorders {
        p.backorders = v;
    }
    if let Some(v) = stock_status
        && !p.manage_stock
    {
        p.stock_status = v;
    }
    if let Some(v) = weight {
        p.weight = v;
    }
    if let Some(v) = menu_order {
        p.menu_order = v;
    }
    if let Some(v) = parent_id {
        p.parent_id = v;
    }
    if let Some(v) = sold_individually {
        p.sold_individually = v;
    }
    if body.contains_key("low_stock_amount") {
        p.low_stock_amount = low_stock_amount;
    }
    if let Some(ids) = categories {
        p.categories = ids
            .iter()
            .filter_map(|id| shop.categories.get(id).cloned())
            .collect();
    }
    if let Some(attrs) = attributes {
        p.attributes = attrs;
    }
    if let Some(meta) = meta {
        apply_meta(&mut p.meta_data, &meta, p.id * 100);
    }
    if p.categories.is_empty() && p.kind != "variation" {
        p.categories = shop.categories.get(&15).cloned().into_iter().collect();
    }
    let wanted_slug = slug
        .map(|s| slugify(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if p.slug.is_empty() {
                slugify(&p.name)
            } else {
                p.slug.clone()
            }
        });
    p.slug = unique_slug(shop, p.id, &wanted_slug);
    p.permalink = format!("{base_url}/product/{}/", p.slug);
    Ok(())
}

fn term_ids(items: &[Value], key: &str, f: &mut Fields<'_>) -> Vec<u64> {
    let mut ids = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get("id").and_then(Value::as_u64) {
            Some(id) => ids.push(id),
            None => f.errors.push((
                format!("{key}[{i}][id]"),
                format!("{key}[{i}][id] is not of type integer."),
                "rest_invalid_type".into(),
            )),
        }
    }
    ids
}

/// Merges `meta_data` input (`{key, value}` or `{id, key, value}`) into existing meta.
pub fn apply_meta(meta: &mut Vec<MetaData>, input: &[Value], id_base: u64) {
    for item in input {
        let Some(key) = item.get("key").and_then(Value::as_str) else {
            continue;
        };
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        match meta.iter_mut().find(|m| m.key == key) {
            Some(m) => m.value = value,
            None => {
                let id = id_base + meta.len() as u64 + 1;
                meta.push(MetaData {
                    id,
                    key: key.to_string(),
                    value,
                });
            }
        }
    }
}

fn unique_slug(shop: &ShopState, id: u64, wanted: &str) -> String {
    let base = if wanted.is_empty() {
        id.to_string()
    } else {
        wanted.to_string()
    };
    let taken = |s: &str| shop.products.slug_taken(s, id);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| !taken(s))
        .unwrap_or(base)
}

/// `POST /products` logic, shared by the REST handler, batch and the library.
pub fn create(
    shared: &Shared,
    shop: &mut ShopState,
    body: &Map<String, Value>,
) -> Result<(Product, Vec<Event>), ApiError> {
    if body
        .get("id")
        .is_some_and(|v| v.as_u64().is_some_and(|n| n > 0))
    {
        return Err(ApiError::new(
            400,
            "woocommerce_rest_product_exists",
            "Cannot create existing product.",
        ));
    }
    let id = shop.next_post_id;
    let mut p = Product::blank(id, &shared.clock);
    apply_input(
        shop,
        &mut p,
        body,
        &shared.base_url,
        &shared.settings.tax_rates,
    )?;
    shop.alloc_post_id();
    p.refresh_derived(&shared.settings.currency_symbol);
    shop.products.insert(id, p.clone());
    Ok((p, vec![Event::new("product", "created", id)]))
}

/// `PUT /products/{id}` logic. Like WooCommerce (`wc_get_product` does not check the type), a
/// variation id works here too.
pub fn update(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    body: &Map<String, Value>,
) -> Result<(Product, Vec<Event>), ApiError> {
    let Some(mut p) = shop.products.get(&id).cloned() else {
        return Err(ApiError::invalid_id("product", 400));
    };
    if p.kind == "variation" {
        let mut body = body.clone();
        body.remove("type");
        body.remove("parent_id");
        apply_input(
            shop,
            &mut p,
            &body,
            &shared.base_url,
            &shared.settings.tax_rates,
        )?;
    } else {
        apply_input(
            shop,
            &mut p,
            body,
            &shared.base_url,
            &shared.settings.tax_rates,
        )?;
    }
    p.touch(&shared.clock);
    p.refresh_derived(&shared.settings.currency_symbol);
    shop.products.insert(id, p.clone());
    Ok((p, vec![Event::new("product", "updated", id)]))
}

/// `DELETE /products/{id}` logic (`force=false` moves to trash).
pub fn delete(
    shared: &Shared,
    shop: &mut ShopState,
    id: u64,
    force: bool,
) -> Result<(Product, Vec<Event>), ApiError> {
    let Some(p) = shop.products.get(&id).cloned() else {
        return Err(ApiError::invalid_id("product", 404));
    };
    if force {
        shop.products.remove(&id);
        for v in &p.variations {
            shop.products.remove(v);
        }
        if let Some(parent) = shop.products.get_mut(&p.parent_id) {
            parent.variations.retain(|v| *v != id);
        }
        Ok((p, vec![Event::new("product", "deleted", id)]))
    } else {
        if p.status == "trash" {
            return Err(ApiError::new(
                410,
                "woocommerce_rest_already_trashed",
                format!("The product with ID {id} has already been deleted."),
            ));
        }
        let mut t = p;
        t.status = "trash".into();
        t.touch(&shared.clock);
        t.refresh_derived(&shared.settings.currency_symbol);
        shop.products.insert(id, t.clone());
        Ok((t, vec![Event::new("product", "deleted", id)]))
    }
}

/// Filters, orders and pages the product list.
fn list(shared: &Shared, shop: &ShopState, q: &Query) -> Result<(Vec<JsonText>, Page), ApiError> {
    let mut errs = Vec::new();
    let page = Page::from_query(q, &mut errs);
    let status = q.enum_str(
        "status",
        "any",
        &[
            "any", "future", "trash", "draft", "pending", "private", "publish",
        ],
        &mut errs,
    );
    let kind = q.get("type").map(str::to_string);
    if let Some(k) = &kind
        && !PRODUCT_TYPES.contains(&k.as_str())
    {
        errs.push((
            "type".into(),
            crate::params::not_one_of("type", PRODUCT_TYPES),
            "rest_not_in_enum".into(),
        ));
    }
    let orderby = q.enum_str(
        "orderby",
        "date",
        &[
            "date",
            "modified",
            "id",
            "include",
            "title",
            "slug",
            "price",
            "popularity",
            "rating",
            "menu_order",
        ],
        &mut errs,
    );
    let order = q.enum_str("order", "desc", &["asc", "desc"], &mut errs);
    let include = q.id_list("include", &mut errs);
    let exclude = q.id_list("exclude", &mut errs);
    let parent = q.id_list("parent", &mut errs);
    let category = q.get("category").and_then(|c| c.parse::<u64>().ok());
    let stock_status = q.get("stock_status").map(str::to_string);
    let on_sale = q.boolean("on_sale", &mut errs);
    let gmt = q.boolean("dates_are_gmt", &mut errs).unwrap_or(false);
    let dates = crate::pagination::DateFilters::from_query(q, &shared.clock, gmt, &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::invalid_params(&errs));
    }
    // `_sku IN (…)` over the comma-separated parts; with several parts the whole string is
    // included too (a SKU that itself contains a comma still matches). Only the whole value is
    // trimmed (`sanitize_text_field`), not the parts: "A, B" does not find "B".
    let skus: Option<Vec<String>> = q.get("sku").map(|s| {
        let s = s.trim();
        let mut parts: Vec<String> = s
            .split(',')
            .map(str::to_string)
            .filter(|x| !x.is_empty())
            .collect();
        if parts.len() > 1 {
            parts.push(s.to_string());
        }
        parts
    });
    let search = q.get("search").map(str::to_lowercase);
    let with_variations = shared.settings.sku_lookup_includes_variations && skus.is_some();

    // With a SKU filter only the products holding one of those SKUs can match: take them from
    // the SKU lookup instead of the whole catalogue (trashed ones are added back for
    // `status=trash`, which the lookup leaves out).
    let candidates: Box<dyn Iterator<Item = &Product>> = match &skus {
        Some(parts) => {
            let ids: BTreeSet<u64> = parts
                .iter()
                .flat_map(|sku| shop.products.ids_with_sku_any_status(sku))
                .collect();
            Box::new(ids.into_iter().filter_map(|id| shop.products.get(&id)))
        }
        None => Box::new(shop.products.values()),
    };
    let mut items: Vec<&Product> = candidates
        .filter(|p| p.kind != "variation" || with_variations)
        .filter(|p| match status.as_str() {
            "any" => p.status != "trash",
            s => p.status == s,
        })
        .filter(|p| kind.as_ref().is_none_or(|k| &p.kind == k))
        .filter(|p| skus.as_ref().is_none_or(|s| s.contains(&p.sku)))
        .filter(|p| include.is_empty() || include.contains(&p.id))
        .filter(|p| !exclude.contains(&p.id))
        .filter(|p| parent.is_empty() || parent.contains(&p.parent_id))
        .filter(|p| category.is_none_or(|c| p.categories.iter().any(|t| t.id == c)))
        .filter(|p| stock_status.as_ref().is_none_or(|s| &p.stock_status == s))
        .filter(|p| on_sale.is_none_or(|o| p.on_sale == o))
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                p.name.to_lowercase().contains(s) || p.sku.to_lowercase().contains(s)
            })
        })
        .filter(|p| dates.matches(&p.date_created_gmt, &p.date_modified_gmt))
        .collect();

    items.sort_by(|a, b| {
        let primary = match orderby.as_str() {
            "id" => a.id.cmp(&b.id),
            "include" => {
                let pos = |id: u64| include.iter().position(|x| *x == id).unwrap_or(usize::MAX);
                pos(a.id).cmp(&pos(b.id))
            }
            "title" => a.name.cmp(&b.name),
            "slug" => a.slug.cmp(&b.slug),
            "modified" => a.date_modified_gmt.cmp(&b.date_modified_gmt),
            "price" => a
                .price_decimal()
                .unwrap_or_default()
                .cmp(&b.price_decimal().unwrap_or_default()),
            "popularity" => a.total_sales.cmp(&b.total_sales),
            "menu_order" => a.menu_order.cmp(&b.menu_order),
            _ => a.date_created_gmt.cmp(&b.date_created_gmt),
        };
        let o = primary.then(a.id.cmp(&b.id));
        if order == "asc" || orderby == "include" {
            o
        } else {
            o.reverse()
        }
    });
    let total = items.len();
    let root = shared.api_root();
    let slice: Vec<JsonText> = page
        .slice(&items)
        .iter()
        .map(|p| product_json(p, &root))
        .collect();
    Ok((slice, page.with_total(total)))
}

// ---- handlers -------------------------------------------------------------------------------

pub async fn list_handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let result = {
        let shop = shared.shop();
        list(&shared, &shop, &q)
    };
    match result {
        Ok((items, page)) => {
            paged_response(&format!("{}/products", shared.api_root()), &q, &page, items)
        }
        Err(e) => e.into_response(),
    }
}

pub async fn get_handler(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let shop = shared.shop();
    match shop.products.get(&id) {
        // A variation id is served too, in the product shape (type "variation").
        Some(p) => product_json(p, &shared.api_root()).into_response(),
        _ => ApiError::invalid_id("product", 404).into_response(),
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
        create(&shared, &mut shop, &params)
    };
    match result {
        Ok((p, events)) => {
            shared.after_write(events);
            let json = product_json(&p, &shared.api_root());
            let location = format!("/wp-json/wc/v3/products/{}", p.id);
            (
                StatusCode::CREATED,
                [(axum::http::header::LOCATION, location)],
                json,
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn update_handler(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let params = match body_params(&headers, &body, &q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut shop = shared.shop();
        update(&shared, &mut shop, id, &params)
    };
    match result {
        Ok((p, events)) => {
            shared.after_write(events);
            product_json(&p, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn delete_handler(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::no_route().into_response();
    };
    let q = Query::parse(raw.as_deref());
    let mut errs = Vec::new();
    let force = q.boolean("force", &mut errs).unwrap_or(false);
    if !errs.is_empty() {
        return ApiError::invalid_params(&errs).into_response();
    }
    let result = {
        let mut shop = shared.shop();
        delete(&shared, &mut shop, id, force)
    };
    match result {
        Ok((p, events)) => {
            shared.after_write(events);
            product_json(&p, &shared.api_root()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /products/batch`.
pub async fn batch_handler(
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
    let root = shared.api_root();
    let result = crate::batch::run(
        &shared,
        &params,
        |shop, item| create(&shared, shop, item).map(|(p, e)| (product_json(&p, &root), e)),
        |shop, id, item| update(&shared, shop, id, item).map(|(p, e)| (product_json(&p, &root), e)),
        |shop, id| delete(&shared, shop, id, true).map(|(p, e)| (product_json(&p, &root), e)),
    );
    match result {
        Ok((json, events)) => {
            shared.after_write(events);
            json.into_response()
        }
        Err(e) => e.into_response(),
    }
}
