//! Collections: `per_page` (1..=100, default 10), `page`, `offset`, the `X-WP-Total` and
//! `X-WP-TotalPages` headers and the `Link` header (`rel="prev"`/`rel="next"`), plus the date
//! filters `after`/`before`/`modified_after`/`modified_before` (exclusive, second precision) with
//! `dates_are_gmt`.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::clock::SiteClock;
use crate::json::JsonText;
use crate::params::Query;

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
