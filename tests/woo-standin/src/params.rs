//! Request parameters the way WordPress validates them against a route's schema: query strings
//! (`a=1&b[]=2`), JSON bodies (with query params merged under them, JSON wins), type checks that
//! answer `rest_invalid_param` with `params`/`details`, and `rest_invalid_json`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Parsed query string. `key[]=a&key[]=b` becomes `key = "a,b"` (WP's list parsing).
#[derive(Debug, Clone, Default)]
pub struct Query(pub BTreeMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        if let Some(raw) = raw {
            for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
                let key = k.trim_end_matches("[]").to_string();
                match map.get_mut(&key) {
                    Some(existing) if k.ends_with("[]") => {
                        existing.push(',');
                        existing.push_str(&v);
                    }
                    _ => {
                        map.insert(key, v.into_owned());
                    }
                }
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// An integer parameter with bounds, WP style (`per_page must be between 1 (inclusive) and 100 (inclusive)`).
    pub fn int(
        &self,
        key: &str,
        default: i64,
        min: i64,
        max: Option<i64>,
        errs: &mut Vec<(String, String, String)>,
    ) -> i64 {
        let Some(raw) = self.get(key) else {
            return default;
        };
        let Some(n) = parse_integer(raw) else {
            errs.push((
                key.into(),
                format!("{key} is not of type integer."),
                "rest_invalid_type".into(),
            ));
            return default;
        };
        let out_of_bounds = n < min || max.is_some_and(|m| n > m);
        if out_of_bounds {
            let msg = match max {
                Some(m) => format!("{key} must be between {min} (inclusive) and {m} (inclusive)"),
                None => format!("{key} must be greater than or equal to {min}"),
            };
            errs.push((key.into(), msg, "rest_out_of_bounds".into()));
            return default;
        }
        n
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`).
    pub fn boolean(&self, key: &str, errs: &mut Vec<(String, String, String)>) -> Option<bool> {
        let raw = self.get(key)?;
        match parse_bool(&Value::String(raw.to_string())) {
            Some(b) => Some(b),
            None => {
                errs.push((
                    key.into(),
                    format!("{key} is not of type boolean."),
                    "rest_invalid_type".into(),
                ));
                None
            }
        }
    }

    /// A string parameter restricted to an enum.
    pub fn enum_str(
        &self,
        key: &str,
        default: &str,
        allowed: &[&str],
        errs: &mut Vec<(String, String, String)>,
    ) -> String {
        match self.get(key) {
            None => default.to_string(),
            Some(v) if allowed.contains(&v) => v.to_string(),
            Some(_) => {
                errs.push((
                    key.into(),
                    not_one_of(key, allowed),
                    "rest_not_in_enum".into(),
                ));
                default.to_string()
            }
        }
    }

    /// A comma-separated list of ids.
    pub fn id_list(&self, key: &str, errs: &mut Vec<(String, String, String)>) -> Vec<u64> {
        let Some(raw) = self.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u64>() {
                Ok(n) => out.push(n),
                Err(_) => {
                    errs.push((
                        format!("{key}[0]"),
                        format!("{key}[0] is not of type integer."),
                        "rest_invalid_type".into(),
                    ));
                    break;
                }
            }
        }
        out
    }
}

/// `x is not one of a, b, c.`
pub fn not_one_of(key: &str, allowed: &[&str]) -> String {
    format!("{key} is not one of {}.", allowed.join(", "))
}

/// WP's `rest_is_integer`: an integer number or a numeric string with no fraction.
pub fn parse_integer(raw: &str) -> Option<i64> {
    let t = raw.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    // "5.0" is an integer for WP.
    let d: rust_decimal::Decimal = t.parse().ok()?;
    if d.fract().is_zero() {
        rust_decimal::prelude::ToPrimitive::to_i64(&d.trunc())
    } else {
        None
    }
}

/// WP's `rest_is_boolean` / `rest_sanitize_boolean`.
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The request's parameters the way `WP_REST_Request` sees them: the body is read as JSON only
/// with a JSON `Content-Type` (anything else sent as JSON is silently ignored, as WordPress
/// does), as PHP-style form fields with `application/x-www-form-urlencoded`
/// (`billing[city]=…`, `line_items[0][sku]=…`); query parameters are merged underneath
/// (`consumer_key`/`consumer_secret` excluded), the body wins.
pub fn body_params(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    query: &Query,
) -> Result<Map<String, Value>, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let empty = body.iter().all(u8::is_ascii_whitespace);
    let mut map = if empty {
        Map::new()
    } else if content_type.starts_with("application/json") || content_type.contains("+json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Map::new(),
            Err(e) => {
                return Err(
                    ApiError::new(400, "rest_invalid_json", "Invalid JSON body passed.")
                        .with("json_error_code", json!(4))
                        .with("json_error_message", json!(e.to_string())),
                );
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        php_form(body)
    } else {
        Map::new()
    };
    for (k, v) in &query.0 {
        if k == "consumer_key" || k == "consumer_secret" || map.contains_key(k) {
            continue;
        }
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(map)
}

/// PHP's parsing of form bodies: `a[b][c]=v` nests, `a[]=v` appends, objects whose keys are all
/// numbers become arrays.
fn php_form(body: &[u8]) -> Map<String, Value> {
    let mut root = Value::Object(Map::new());
    for (k, v) in form_urlencoded::parse(body) {
        let mut path: Vec<String> = Vec::new();
        let (head, rest) = match k.find('[') {
            Some(i) => (k[..i].to_string(), &k[i..]),
            None => (k.to_string(), ""),
        };
        if head.is_empty() {
            continue;
        }
        path.push(head);
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else {
                break;
            };
            path.push(stripped[..end].to_string());
            rest = &stripped[end + 1..];
        }
        let mut node = &mut root;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let Value::Object(m) = node else {
                break;
            };
            let key = if seg.is_empty() {
                m.len().to_string()
            } else {
                seg.clone()
            };
            if last {
                m.insert(key, Value::String(v.to_string()));
                break;
            }
            let entry = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = entry;
        }
    }
    match numeric_to_arrays(root) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn numeric_to_arrays(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let all_numeric = !m.is_empty() && m.keys().all(|k| k.parse::<usize>().is_ok());
            if all_numeric {
                let mut items: Vec<(usize, Value)> = m
                    .into_iter()
                    .map(|(k, v)| (k.parse::<usize>().unwrap_or(0), numeric_to_arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k, numeric_to_arrays(v)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// Marker key the batch endpoints put into each item: WooCommerce's `batch_items` calls
/// `create_item`/`update_item` directly, so the route's schema validation never runs and values
/// reach the setters PHP-cast (a number where a string belongs is simply accepted).
pub const BATCH_ITEM: &str = "__woo_standin_batch_item";

/// Schema-style reader over a JSON object; collects `rest_invalid_param` entries. In batch items
/// (see [`BATCH_ITEM`]) strings, integers and booleans are coerced like PHP instead.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
    lenient: bool,
    pub errors: Vec<(String, String, String)>,
}

/// PHP `intval`: leading integer of a string, 0 if none.
fn php_intval(s: &str) -> i64 {
    let t = s.trim_start();
    let mut end = 0;
    for (i, c) in t.char_indices() {
        if c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')) {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    t[..end].parse().unwrap_or(0)
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            prefix: String::new(),
            lenient: obj.contains_key(BATCH_ITEM),
            errors: Vec::new(),
        }
    }

    /// A reader for a nested object; errors are reported as `parent[key]`.
    pub fn nested(obj: &'a Map<String, Value>, prefix: &str) -> Self {
        Fields {
            obj,
            prefix: prefix.to_string(),
            lenient: false,
            errors: Vec::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    fn type_error(&mut self, key: &str, ty: &str) {
        let name = self.name(key);
        self.errors.push((
            name.clone(),
            format!("{name} is not of type {ty}."),
            "rest_invalid_type".into(),
        ));
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key)
    }

    /// A `string` field (numbers are rejected, as WP does).
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.obj.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) if self.lenient => Some(n.to_string()),
            Value::Bool(b) if self.lenient => Some(if *b { "1".into() } else { String::new() }),
            Value::Null if self.lenient => Some(String::new()),
            _ => {
                self.type_error(key, "string");
                None
            }
        }
    }

    /// An `integer` field (numeric strings accepted).
    pub fn integer(&mut self, key: &str) -> Option<i64> {
        let v = self.obj.get(key)?;
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().and_then(|f| parse_integer(&f.to_string()))),
            Value::String(s) => parse_integer(s),
            _ => None,
        };
        if self.lenient && parsed.is_none() {
            return Some(match v {
                Value::String(s) => php_intval(s),
                Value::Bool(true) => 1,
                _ => 0,
            });
        }
        if parsed.is_none() {
            self.type_error(key, "integer");
        }
        parsed
    }

    /// A non-negative id.
    pub fn id(&mut self, key: &str) -> Option<u64> {
        let n = self.integer(key)?;
        match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let name = self.name(key);
                self.errors.push((
                    name.clone(),
                    format!("{name} must be greater than or equal to 0"),
                    "rest_out_of_bounds".into(),
                ));
                None
            }
        }
    }

    /// A `boolean` field.
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        let v = self.obj.get(key)?;
        if self.lenient {
            // wc_string_to_bool
            return Some(match v {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_i64() == Some(1),
                Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "1"),
                _ => false,
            });
        }
        let b = parse_bool(v);
        if b.is_none() {
            self.type_error(key, "boolean");
        }
        b
    }

    /// A string field restricted to an enum.
    pub fn enum_str(&mut self, key: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(key)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            let name = self.name(key);
            self.errors.push((
                name.clone(),
                not_one_of(&name, allowed),
                "rest_not_in_enum".into(),
            ));
            None
        }
    }

    /// An `object` field.
    pub fn object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        match self.obj.get(key)? {
            Value::Object(m) => Some(m),
            _ => {
                self.type_error(key, "object");
                None
            }
        }
    }

    /// An `array` field.
    pub fn array(&mut self, key: &str) -> Option<&'a Vec<Value>> {
        match self.obj.get(key)? {
            Value::Array(a) => Some(a),
            _ => {
                self.type_error(key, "array");
                None
            }
        }
    }

    /// Merges another reader's errors.
    pub fn absorb(&mut self, other: Fields<'_>) {
        self.errors.extend(other.errors);
    }

    /// `Err(rest_invalid_param)` if anything failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_params(&self.errors))
        }
    }
}

/// `wc_format_decimal` as WooCommerce applies it to prices: keeps digits, `-` and the last `.`;
/// everything else (letters, spaces, commas with the default `.` separator) is dropped.
pub fn wc_format_decimal(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    let last_dot = chars.iter().rposition(|c| *c == '.');
    chars
        .iter()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || **c == '-' || (**c == '.' && Some(*i) == last_dot))
        .map(|(_, c)| *c)
        .collect()
}
