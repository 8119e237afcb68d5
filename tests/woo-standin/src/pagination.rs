//! Collections: `per_page` (1..=100, default 10), `page`, `offset`, the `X-WP-Total` and
//! `X-WP-TotalPages` headers and the `Link` header (`rel="prev"`/`rel="next"`), plus the date
//! filters `after`/`before`/`modified_after`/`modified_before` (exclusive, second precision) with
//! `dates_are_gmt`. [`Collection`] is the whole set `WC_REST_CRUD_Controller::get_collection_params`
//! gives orders and refunds (the order, the id filters, the dates, the page), read and applied
//! once for both.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::clock::SiteClock;
use crate::json::JsonText;
use crate::params::Query;

/// `orderby` of `WC_REST_CRUD_Controller::get_collection_params` (orders, refunds).
pub const CRUD_ORDERBY: &[&str] = &["date", "id", "include", "title", "slug", "modified"];

/// A page request and, after filtering, the total.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub per_page: usize,
    pub page: usize,
    pub offset: Option<usize>,
    pub total: usize,
}

impl Page {
    pub fn from_query(q: &Query, errs: &mut Vec<(String, String, String)>) -> Page {
        let per_page = q.int("per_page", 10, 1, Some(100), errs);
        let page = q.int("page", 1, 1, None, errs);
        let offset = q
            .get("offset")
            .is_some()
            .then(|| q.int("offset", 0, 0, None, errs));
        Page {
            per_page: usize::try_from(per_page).unwrap_or(10),
            page: usize::try_from(page).unwrap_or(1),
            offset: offset.and_then(|o| usize::try_from(o).ok()),
            total: 0,
        }
    }

    pub fn with_total(mut self, total: usize) -> Page {
        self.total = total;
        self
    }

    fn start(&self) -> usize {
        self.offset
            .unwrap_or_else(|| (self.page.saturating_sub(1)).saturating_mul(self.per_page))
    }

    pub fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.start().min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        &items[start..end]
    }

    pub fn total_pages(&self) -> usize {
        self.total.div_ceil(self.per_page.max(1))
    }
}

/// A JSON array response with WP's collection headers.
pub fn paged_response(collection: &str, q: &Query, page: &Page, items: Vec<JsonText>) -> Response {
    let mut resp = crate::json::array(items).into_response();
    let total_pages = page.total_pages();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&page.total.to_string()) {
        headers.insert("x-wp-total", v);
    }
    if let Ok(v) = HeaderValue::from_str(&total_pages.to_string()) {
        headers.insert("x-wp-totalpages", v);
    }
    let link_to = |n: usize| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &q.0 {
            if k != "page" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("page", &n.to_string());
        format!("<{collection}?{}>", ser.finish())
    };
    let mut links = Vec::new();
    if page.page > 1 {
        let prev = (page.page - 1).min(total_pages.max(1));
        links.push(format!("{}; rel=\"prev\"", link_to(prev)));
    }
    if page.page < total_pages {
        links.push(format!("{}; rel=\"next\"", link_to(page.page + 1)));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        headers.insert("link", v);
    }
    resp
}

/// Created/modified date filters.
#[derive(Debug, Clone, Default)]
pub struct DateFilters {
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
}

impl DateFilters {
    pub fn from_query(
        q: &Query,
        clock: &SiteClock,
        gmt: bool,
        errs: &mut Vec<(String, String, String)>,
    ) -> DateFilters {
        let mut get = |key: &str| {
            let raw = q.get(key)?;
            match clock.parse_param(raw, gmt) {
                Some(t) => Some(t),
                None => {
                    errs.push((
                        key.into(),
                        "Invalid date.".into(),
                        "rest_invalid_date".into(),
                    ));
                    None
                }
            }
        };
        DateFilters {
            after: get("after"),
            before: get("before"),
            modified_after: get("modified_after"),
            modified_before: get("modified_before"),
        }
    }

    /// Whether a resource with these `_gmt` dates passes.
    pub fn matches(&self, created_gmt: &str, modified_gmt: &str) -> bool {
        let created = SiteClock::parse_gmt(created_gmt);
        let modified = SiteClock::parse_gmt(modified_gmt);
        let after = |bound: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>| match (bound, t) {
            (Some(b), Some(t)) => t > b,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let before = |bound: Option<DateTime<Utc>>, t: Option<DateTime<Utc>>| match (bound, t) {
            (Some(b), Some(t)) => t < b,
            (Some(_), None) => false,
            (None, _) => true,
        };
        after(self.after, created)
            && before(self.before, created)
            && after(self.modified_after, modified)
            && before(self.modified_before, modified)
    }
}

/// What a collection sorts and filters on.
pub trait Listed {
    fn id(&self) -> u64;
    fn parent_id(&self) -> u64;
    fn created_gmt(&self) -> &str;
    fn modified_gmt(&self) -> &str;
}

/// The collection parameters of WooCommerce's CRUD controllers: `page`/`per_page`/`offset`,
/// `order` (default `desc`), `orderby` (default `date`), `include`/`exclude`,
/// `parent`/`parent_exclude`, the date filters and `dates_are_gmt`. Invalid values are collected
/// as `rest_invalid_param` entries.
#[derive(Debug, Clone)]
pub struct Collection {
    pub page: Page,
    pub orderby: String,
    pub ascending: bool,
    pub include: Vec<u64>,
    pub exclude: Vec<u64>,
    pub parent: Vec<u64>,
    pub parent_exclude: Vec<u64>,
    pub dates: DateFilters,
}

impl Collection {
    pub fn from_query(
        q: &Query,
        clock: &SiteClock,
        orderby: &[&str],
        errs: &mut Vec<(String, String, String)>,
    ) -> Collection {
        let page = Page::from_query(q, errs);
        let by = q.enum_str("orderby", "date", orderby, errs);
        let order = q.enum_str("order", "desc", &["asc", "desc"], errs);
        let include = q.id_list("include", errs);
        let exclude = q.id_list("exclude", errs);
        let parent = q.id_list("parent", errs);
        let parent_exclude = q.id_list("parent_exclude", errs);
        let gmt = q.boolean("dates_are_gmt", errs).unwrap_or(false);
        let dates = DateFilters::from_query(q, clock, gmt, errs);
        Collection {
            page,
            orderby: by,
            ascending: order == "asc",
            include,
            exclude,
            parent,
            parent_exclude,
            dates,
        }
    }

    /// Whether an item passes the id, parent and date filters.
    pub fn admits<T: Listed + ?Sized>(&self, item: &T) -> bool {
        let id = item.id();
        (self.include.is_empty() || self.include.contains(&id))
            && !self.exclude.contains(&id)
            && (self.parent.is_empty() || self.parent.contains(&item.parent_id()))
            && !self.parent_exclude.contains(&item.parent_id())
            && self.dates.matches(item.created_gmt(), item.modified_gmt())
    }

    /// Sorts as WP_Query does: `date` and `modified` are `… ID` (ties by id, in the same
    /// direction), `include` keeps the order of `include` whatever `order` says, `title` and
    /// `slug` fall back to the id (*stand-in*: titles are not kept).
    pub fn sort<T: Listed + ?Sized>(&self, items: &mut [&T]) {
        items.sort_by(|a, b| {
            let primary = match self.orderby.as_str() {
                "include" => {
                    let pos = |id: u64| {
                        self.include
                            .iter()
                            .position(|x| *x == id)
                            .unwrap_or(usize::MAX)
                    };
                    pos(a.id()).cmp(&pos(b.id()))
                }
                "modified" => a.modified_gmt().cmp(b.modified_gmt()),
                "date" => a.created_gmt().cmp(b.created_gmt()),
                _ => std::cmp::Ordering::Equal,
            };
            let o = primary.then(a.id().cmp(&b.id()));
            if self.ascending || self.orderby == "include" {
                o
            } else {
                o.reverse()
            }
        });
    }

    /// Filters, sorts and pages `items`: the page's items and the page with its total.
    pub fn apply<'a, T: Listed + ?Sized>(
        &self,
        items: impl IntoIterator<Item = &'a T>,
    ) -> (Vec<&'a T>, Page) {
        let mut found: Vec<&T> = items.into_iter().filter(|i| self.admits(*i)).collect();
        self.sort(&mut found);
        let total = found.len();
        let page = self.page.with_total(total);
        (page.slice(&found).to_vec(), page)
    }
}
