//! Collections (docs §1): `?limit=&page=&order=&filters=` → `{"count":"N","pages":P,"page":p,
//! "list":[...]}` plus `X-Shop-Result-Count/-Page/-Pages`.
//!
//! - `limit` 1..=`max_limit` (50); absent, unparsable, 0 or above the maximum → the default
//!   page size (10): `limit=51` answers 10 rows and no error (live).
//! - `page` from 1; past the end → an empty `list`.
//! - `order=<field> ASC|DESC`; a bare `order=<field>` sorts **descending** (live); `+field` /
//!   `-field`; repeated `order[]=`/`order[0]=`. Ties (and no `order`) go by the primary key
//!   ascending, so paging is stable.
//! - `filters` as JSON (`{"order_id":{">":123}}`, `{"product_id":{"in":[1,2]}}`,
//!   `{"email":"a@b"}`) and as brackets (`filters[order_id][>]=123`, `filters[product_id]=93`,
//!   `filters[product_id][in][]=1`); operators `=`, `!=`/`<>`, `>`, `>=`, `<`, `<=`, `in`,
//!   `not in`, `like` (`%`/`_`). Comparison is numeric when both sides are numbers, else on text
//!   without regard to case (MySQL's default collation). A field the resource does not
//!   support → 404 `invalid_request` (live on `/products`); an unknown operator → 400
//!   (*unverified*).
//!
//! Filters and sorting work on the rows as served (the wire JSON), so what a client sees is
//! what it filters on. Dotted names (`translations.name`) look into nested objects, skipping
//! a locale level when the key is not found directly.

use std::cmp::Ordering;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::Config;
use crate::error::ApiError;
use crate::util::Params;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    Like,
    NotLike,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "=" | "==" | "eq" => Op::Eq,
            "!=" | "<>" | "neq" => Op::Ne,
            ">" | "gt" => Op::Gt,
            ">=" | "gte" => Op::Ge,
            "<" | "lt" => Op::Lt,
            "<=" | "lte" => Op::Le,
            "in" => Op::In,
            "not in" => Op::NotIn,
            "like" => Op::Like,
            "not like" => Op::NotLike,
            _ => return None,
        })
    }
}

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub values: Vec<Value>,
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub limit: usize,
    pub page: usize,
    /// (field, ascending)
    pub order: Vec<(String, bool)>,
    pub filters: Vec<Filter>,
}

/// A page of rows with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub count: usize,
    pub page: usize,
    pub pages: usize,
    pub list: Vec<Value>,
}

impl Page {
    pub fn body(&self) -> Value {
        json!({
            "count": self.count.to_string(),
            "pages": self.pages,
            "page": self.page,
            "list": self.list,
        })
    }
}

fn brackets(key: &str) -> Option<Vec<String>> {
    let rest = key.strip_prefix("filters")?;
    let mut out = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        let inner = s.strip_prefix('[')?;
        let end = inner.find(']')?;
        out.push(inner[..end].to_string());
        s = &inner[end + 1..];
    }
    if out.is_empty() { None } else { Some(out) }
}

fn add(filters: &mut Vec<Filter>, field: &str, op: &str, v: Value) -> Result<(), ApiError> {
    let op = Op::parse(op)
        .ok_or_else(|| ApiError::invalid(format!("Nieobsługiwany operator '{op}'")))?;
    let values = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    filters.push(Filter {
        field: field.to_string(),
        op,
        values,
    });
    Ok(())
}

fn json_filters(text: &str, out: &mut Vec<Filter>) -> Result<(), ApiError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| ApiError::invalid("Wartość parametru 'filters' jest niepoprawna"))?;
    let Value::Object(m) = v else {
        return Err(ApiError::invalid(
            "Wartość parametru 'filters' jest niepoprawna",
        ));
    };
    for (field, cond) in m {
        match cond {
            Value::Object(ops) => {
                for (op, val) in ops {
                    add(out, &field, &op, val)?;
                }
            }
            Value::Array(items) => add(out, &field, "in", Value::Array(items))?,
            other => add(out, &field, "=", other)?,
        }
    }
    Ok(())
}

fn order_spec(raw: &str) -> Option<(String, bool)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Some(f) = raw.strip_prefix('+') {
        return Some((f.trim().to_string(), true));
    }
    if let Some(f) = raw.strip_prefix('-') {
        return Some((f.trim().to_string(), false));
    }
    let mut parts = raw.split_whitespace();
    let field = parts.next()?.to_string();
    let asc = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        Some("asc") => true,
        // A bare `order=field` sorts descending (live).
        _ => false,
    };
    Some((field, asc))
}

/// Parses the collection parameters; `filterable` lists the fields filters and `order` may use.
pub fn parse(params: &Params, cfg: &Config, filterable: &[&str]) -> Result<ListQuery, ApiError> {
    let max = cfg.max_limit.max(1) as usize;
    let default = (cfg.default_limit.max(1) as usize).min(max);
    let limit = params
        .get("limit")
        .and_then(|l| l.trim().parse::<usize>().ok())
        .filter(|l| (1..=max).contains(l))
        .unwrap_or(default);
    let page = params
        .get("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut order = Vec::new();
    let mut filters = Vec::new();
    // `in` lists given as filters[f][in][]=a&filters[f][in][]=b are collected per field.
    let mut bracket_lists: Vec<(String, String, Vec<Value>)> = Vec::new();
    for (k, v) in &params.0 {
        if k == "order" || k.starts_with("order[") {
            if let Some(spec) = order_spec(v) {
                order.push(spec);
            }
        } else if k == "filters" {
            json_filters(v, &mut filters)?;
        } else if let Some(segs) = brackets(k) {
            match segs.as_slice() {
                [field] => add(&mut filters, field, "=", Value::String(v.clone()))?,
                [field, op] => {
                    let val = if matches!(op.to_ascii_lowercase().as_str(), "in" | "not in") {
                        Value::Array(v.split(',').map(|s| Value::String(s.into())).collect())
                    } else {
                        Value::String(v.clone())
                    };
                    add(&mut filters, field, op, val)?
                }
                [field, op, _index] => {
                    match bracket_lists
                        .iter_mut()
                        .find(|(f, o, _)| f == field && o == op)
                    {
                        Some((_, _, list)) => list.push(Value::String(v.clone())),
                        None => bracket_lists.push((
                            field.clone(),
                            op.clone(),
                            vec![Value::String(v.clone())],
                        )),
                    }
                }
                _ => {
                    return Err(ApiError::invalid(
                        "Wartość parametru 'filters' jest niepoprawna",
                    ));
                }
            }
        }
    }
    for (field, op, list) in bracket_lists {
        add(&mut filters, &field, &op, Value::Array(list))?;
    }
    for f in &filters {
        if !filterable.contains(&f.field.as_str()) {
            return Err(ApiError::not_found());
        }
    }
    for (field, _) in &order {
        if !filterable.contains(&field.as_str()) {
            return Err(ApiError::invalid(format!(
                "Nie można sortować po polu '{field}'"
            )));
        }
    }
    Ok(ListQuery {
        limit,
        page,
        order,
        filters,
    })
}

/// Values found at a dotted path; a missing key descends into every child object once (so
/// `translations.name` finds `translations.pl_PL.name`).
fn lookup<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            if let Value::Object(m) = c {
                match m.get(seg) {
                    Some(x) => next.push(x),
                    None => {
                        for child in m.values() {
                            if let Some(x) = child.as_object().and_then(|o| o.get(seg)) {
                                next.push(x);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn num(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Decimal::from_str(s).ok()
}

/// Numeric when both are numbers, else text without regard to case; None sorts first.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (text(a), text(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match (num(&x), num(&y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
    }
}

/// SQL `LIKE` with `%` and `_`, without regard to case.
pub fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // dp[j] = whether v[..i] matches p[..j]
    let mut dp = vec![false; p.len() + 1];
    dp[0] = true;
    for j in 1..=p.len() {
        dp[j] = dp[j - 1] && p[j - 1] == '%';
    }
    for c in &v {
        let mut next = vec![false; p.len() + 1];
        for j in 1..=p.len() {
            next[j] = match p[j - 1] {
                '%' => next[j - 1] || dp[j],
                '_' => dp[j - 1],
                pc => dp[j - 1] && pc == *c,
            };
        }
        dp = next;
    }
    dp[p.len()]
}

fn matches_one(v: &Value, f: &Filter) -> bool {
    let first = f.values.first().cloned().unwrap_or(Value::Null);
    match f.op {
        Op::Eq => {
            if first.is_null() {
                v.is_null()
            } else {
                !v.is_null() && compare(v, &first) == Ordering::Equal
            }
        }
        Op::Ne => compare(v, &first) != Ordering::Equal,
        Op::Gt => !v.is_null() && compare(v, &first) == Ordering::Greater,
        Op::Ge => !v.is_null() && compare(v, &first) != Ordering::Less,
        Op::Lt => !v.is_null() && compare(v, &first) == Ordering::Less,
        Op::Le => !v.is_null() && compare(v, &first) != Ordering::Greater,
        Op::In => f
            .values
            .iter()
            .any(|x| !v.is_null() && compare(v, x) == Ordering::Equal),
        Op::NotIn => !f.values.iter().any(|x| compare(v, x) == Ordering::Equal),
        Op::Like => match (text(v), text(&first)) {
            (Some(s), Some(p)) => like(&s, &p),
            _ => false,
        },
        Op::NotLike => match (text(v), text(&first)) {
            (Some(s), Some(p)) => !like(&s, &p),
            _ => false,
        },
    }
}

fn matches(row: &Value, f: &Filter) -> bool {
    lookup(row, &f.field).iter().any(|v| matches_one(v, f))
}

fn sort_key<'a>(row: &'a Value, field: &str) -> &'a Value {
    lookup(row, field)
        .into_iter()
        .next()
        .unwrap_or(&Value::Null)
}

/// Filters, sorts and pages `rows`; `id_field` breaks ties (ascending).
pub fn run(rows: Vec<Value>, q: &ListQuery, id_field: &str) -> Page {
    let mut rows: Vec<Value> = rows
        .into_iter()
        .filter(|r| q.filters.iter().all(|f| matches(r, f)))
        .collect();
    rows.sort_by(|a, b| {
        for (field, asc) in &q.order {
            let o = compare(sort_key(a, field), sort_key(b, field));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        compare(sort_key(a, id_field), sort_key(b, id_field))
    });
    let count = rows.len();
    let pages = count.div_ceil(q.limit);
    let start = (q.page - 1).saturating_mul(q.limit);
    let list = rows.into_iter().skip(start).take(q.limit).collect();
    Page {
        count,
        page: q.page,
        pages,
        list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> ListQuery {
        match parse(
            &Params::parse(s),
            &Config::default(),
            &["id", "name", "translations.name"],
        ) {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn like_matches() {
        assert!(like("Koszulka Czerwona", "%czerwona"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
    }

    #[test]
    fn parses_both_filter_forms_and_orders() {
        let a = q("filters=%7B%22id%22%3A%7B%22%3E%22%3A5%7D%7D&order=id");
        assert_eq!(a.filters[0].op, Op::Gt);
        assert_eq!(a.order, vec![("id".to_string(), false)]);
        let b = q("filters[id][in][]=1&filters[id][in][]=2&order=id%20ASC&limit=51");
        assert_eq!(b.filters[0].op, Op::In);
        assert_eq!(b.filters[0].values.len(), 2);
        assert_eq!(b.order, vec![("id".to_string(), true)]);
        assert_eq!(b.limit, 10);
        let rows = vec![
            json!({"id": "1", "translations": {"pl_PL": {"name": "Alfa"}}}),
            json!({"id": "2", "translations": {"pl_PL": {"name": "Beta"}}}),
        ];
        let c = q("filters[translations.name][like]=%25et%25");
        assert_eq!(run(rows, &c, "id").count, 1);
        assert!(
            parse(
                &Params::parse("filters[code]=x"),
                &Config::default(),
                &["id"]
            )
            .is_err()
        );
    }
}
