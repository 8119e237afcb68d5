//! Optima's tables as the stand-in holds them, generated from the real
//! schema: `agent/schema/optima-tables.json` (the agent ships what it expects of Optima) is the part of
//! `shared/reference/optima-real-schema.json` (an EF Core model scaffolded
//! from live Optima company databases) that the project needs, vendored by
//! `optima-standin extract-schema`. Every column with its SQL Server type,
//! nullability, identity, default and computed expression; the primary key,
//! unique and plain indexes; the trigger names; and the `*_TS_Mod`
//! maintenance. One definition produces the SQLite DDL, the T-SQL DDL
//! (`sql/schema.sql`), the COLMETADATA of result sets and the catalog views
//! (`sys.*`, `INFORMATION_SCHEMA.*`).
//!
//! What the file does not say, and what the stand-in assumes instead
//! (docs/optima-standin.md lists them):
//! - a numeric NOT NULL column listed without a default has `DEFAULT 0`:
//!   EF Core leaves out a default equal to the CLR default
//!   (dotnet/efcore#37381);
//! - `(short` / `(byte` is a default whose cast the extraction cut
//!   (`(short)1`); EF Core scaffolds only non-CLR-default values, so 1;
//! - a single int primary key named after its own table (`Twr_TwrId`) is
//!   IDENTITY;
//! - `TrN_NumerPelny` is `CDN.FN_NUMERPELNY(TrN_NumerNr, TrN_NumerString)`,
//!   whose body is not public: emulated as `TrN_NumerString` with `@numerS`
//!   replaced by the number; other computed columns that call Optima's
//!   functions are NULL.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::types::SqlType;

/// The database name the stand-in serves (an Optima company database).
pub const DATABASE_NAME: &str = "CDN_Firma";
/// SQL Server 2019's compatibility level.
pub const COMPATIBILITY_LEVEL: i64 = 150;

/// The vendored part of the real schema (same JSON shape as the reference).
pub const VENDORED_JSON: &str = include_str!("../../../agent/schema/optima-tables.json");

/// The tables the stand-in holds (the project reads, writes or imitates them).
pub const TABLE_NAMES: [&str; 21] = [
    "CDN.Towary",
    "CDN.TwrGrupy",
    "CDN.TwrEan",
    "CDN.TwrCeny",
    "CDN.DefCeny",
    "CDN.TwrIlosci",
    "CDN.Magazyny",
    "CDN.TwrJMZ",
    "CDN.TwrZasoby",
    "CDN.Kontrahenci",
    "CDN.DokDefinicje",
    "CDN.TraNag",
    "CDN.TraElem",
    "CDN.TraVat",
    "CDN.FormyPlatnosci",
    "CDN.TraNagRelacje",
    "CDN.SenditZleceniePrzesylki",
    "CDN.SenditPaczki",
    "CDN.TwrTSModEsklep",
    "CDN.TraNagTSModEsklep",
    // The company stamp a document names (`TrN_PCID`): the seller on an invoice.
    "CDN.Pieczatki",
];

/// The vendored file's text from the full reference schema: the tables of
/// [`TABLE_NAMES`] unchanged, pretty-printed, keys in order.
pub fn extract(full_json: &str) -> Result<String, String> {
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(full_json).map_err(|e| format!("not the schema JSON: {e}"))?;
    let mut out = BTreeMap::new();
    for name in TABLE_NAMES {
        let t = all
            .get(name)
            .ok_or_else(|| format!("{name} is not in the schema"))?;
        out.insert(name, t.clone());
    }
    let mut s = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    s.push('\n');
    Ok(s)
}

#[derive(Debug, Deserialize)]
struct RawColumn {
    column: String,
    #[serde(rename = "type")]
    ty: String,
    nullable: bool,
    default: Option<String>,
    computed: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawIndex {
    name: String,
    columns: Vec<String>,
    unique: bool,
}

#[derive(Debug, Deserialize)]
struct RawTable {
    columns: Vec<RawColumn>,
    primary_key: Vec<String>,
    indexes: Vec<RawIndex>,
    triggers: Vec<String>,
}

fn raw() -> &'static BTreeMap<String, RawTable> {
    static RAW: OnceLock<BTreeMap<String, RawTable>> = OnceLock::new();
    RAW.get_or_init(|| match serde_json::from_str(VENDORED_JSON) {
        Ok(t) => t,
        Err(e) => {
            // The embedded file is checked by the tests; this is unreachable
            // in a tested build, and an empty schema fails loudly on use.
            tracing::error!(error = %e, "agent/schema/optima-tables.json does not parse");
            BTreeMap::new()
        }
    })
}

/// A column default, as SQL Server would apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnDefault {
    /// A string literal (`''` in Optima).
    Text(String),
    /// A number; on a datetime column, days after 1900-01-01 (SQL Server's 0).
    Number(String),
}

impl ColumnDefault {
    /// The definition as SQL Server's catalogs show it
    /// (`INFORMATION_SCHEMA.COLUMNS.COLUMN_DEFAULT`): `((0))`, `('')`.
    pub fn definition(&self) -> String {
        match self {
            ColumnDefault::Text(text) => format!("('{}')", text.replace('\'', "''")),
            ColumnDefault::Number(number) => format!("(({number}))"),
        }
    }
}

/// A computed column: its expression in Optima, and how the stand-in
/// computes it (in SQLite and in the T-SQL script).
#[derive(Debug, Clone)]
pub struct Computed {
    pub optima: &'static str,
    pub sqlite: String,
    pub tsql: String,
    /// False when the value is NULL because Optima's function is not public.
    pub emulated: bool,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub ty: SqlType,
    /// The type as the real schema writes it (`decimal(15, 2)`).
    pub decl: &'static str,
    pub nullable: bool,
    pub identity: bool,
    pub default: Option<ColumnDefault>,
    pub computed: Option<Computed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKind {
    /// PRIMARY KEY constraint: a duplicate is error 2627.
    PrimaryKey,
    /// UNIQUE index: error 2601.
    Index,
}

#[derive(Debug, Clone)]
pub struct Unique {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub kind: UniqueKind,
}

/// The `*_TS_Mod` stamp the stand-in keeps current on UPDATE, standing for
/// Optima's `*_InsertUpdate_Trigger` (whose body is not public).
#[derive(Debug, Clone)]
pub struct TsMod {
    pub column: &'static str,
    pub key: &'static str,
    /// The Optima trigger it stands for.
    pub trigger: &'static str,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub schema: &'static str,
    pub name: &'static str,
    pub columns: Vec<Column>,
    pub uniques: Vec<Unique>,
    /// Non-unique indexes, exactly those of the real schema.
    pub indexes: Vec<(&'static str, Vec<&'static str>)>,
    /// Optima's trigger names on the table (markers: their bodies are not
    /// public). A table with any refuses `OUTPUT` without `INTO` (334).
    pub triggers: Vec<&'static str>,
    pub ts_mod: Option<TsMod>,
    /// A system catalog view (sys.*, INFORMATION_SCHEMA.*), per connection.
    pub system: bool,
    /// A stable object id (as OBJECT_ID returns).
    pub object_id: i64,
}

impl Table {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn identity(&self) -> Option<&Column> {
        self.columns.iter().find(|c| c.identity)
    }
    /// The columns an INSERT may name (not computed).
    pub fn writable_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.computed.is_none())
    }
}

/// The SQL type of a real-schema type text; types outside [`SqlType`] map
/// to the nearest one that stores the same values.
fn sql_type(decl: &str) -> SqlType {
    let d = decl.trim().to_ascii_lowercase();
    let base = d.split('(').next().unwrap_or("").trim();
    match base {
        "image" | "timestamp" | "rowversion" => SqlType::VarBinary(None),
        "text" => SqlType::VarChar(None),
        "ntext" | "xml" => SqlType::NVarChar(None),
        _ => SqlType::parse(&d).unwrap_or(SqlType::NVarChar(None)),
    }
}

/// Normalises a default as the JSON writes it (C# literals from the
/// scaffolded model).
fn column_default(raw: &str, ty: SqlType) -> Option<ColumnDefault> {
    let r = raw.trim();
    if r == "\"\"" || r == "''" {
        return Some(ColumnDefault::Text(String::new()));
    }
    // The extraction cut a cast such as `(short)1`; EF Core scaffolds only
    // defaults other than the CLR default (0), so the value is 1.
    if r == "(short" || r == "(byte" {
        return Some(ColumnDefault::Number("1".into()));
    }
    let r = r.trim_start_matches('(').trim_end_matches(')');
    let r = r.trim_end_matches(['m', 'M', 'L', 'f', 'd']);
    if r.parse::<f64>().is_ok() {
        return Some(ColumnDefault::Number(r.to_string()));
    }
    if let Some(s) = r.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Some(ColumnDefault::Text(s.to_string()));
    }
    tracing::warn!(default = raw, ty = %ty, "unknown default in the schema; none applied");
    None
}

fn is_numeric(ty: SqlType) -> bool {
    matches!(
        ty,
        SqlType::Int
            | SqlType::BigInt
            | SqlType::SmallInt
            | SqlType::TinyInt
            | SqlType::Bit
            | SqlType::Decimal(..)
            | SqlType::Float
    )
}

/// How the stand-in computes a computed column: `FN_NUMERPELNY` emulated,
/// plain expressions over columns kept, other Optima functions NULL.
fn computed(expr: &'static str, ty: SqlType, decl: &str, names: &[&str]) -> Computed {
    let lower = expr.to_ascii_lowercase();
    let bare = lower.replace(['[', ']'], "");
    if let Some(args) = bare
        .split("fn_numerpelny(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
    {
        let cols: Vec<String> = args
            .split(',')
            .map(|a| {
                let a = a.trim();
                names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(a))
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| a.to_string())
            })
            .collect();
        if let [nr, string] = cols.as_slice() {
            // Assumption: the number replaces the token `@numerS`, unpadded.
            return Computed {
                optima: expr,
                sqlite: format!("replace(\"{string}\", '@numerS', \"{nr}\")"),
                tsql: format!(
                    "CONVERT({decl}, REPLACE([{string}], '@numerS', CONVERT(varchar(11), [{nr}])))"
                ),
                emulated: true,
            };
        }
    }
    // A constant date, `CONVERT([datetime],'2999-12-31',(120))` (the stamp
    // in force, `PC_Aktualna`), becomes the stored text of that date.
    if let Some(plain) = constant_dates(expr)
        && !calls_a_function(&plain.to_ascii_lowercase())
    {
        return Computed {
            optima: expr,
            sqlite: plain.replace(['[', ']'], "\""),
            tsql: expr.to_string(),
            emulated: true,
        };
    }
    // A call of anything but REPLACE (Optima's functions, CONVERT) is not
    // reproduced: the column is NULL.
    let calls_other = calls_a_function(&lower);
    if calls_other || lower.contains("[cdn]") {
        let null_tsql = format!("CONVERT({decl}, NULL)");
        return Computed {
            optima: expr,
            sqlite: "NULL".into(),
            tsql: null_tsql,
            emulated: false,
        };
    }
    let mut sqlite = expr.replace(['[', ']'], "\"");
    if ty.is_string() {
        sqlite = sqlite.replace('+', "||");
    }
    Computed {
        optima: expr,
        sqlite,
        tsql: expr.to_string(),
        emulated: true,
    }
}

/// Whether a (lower-case) expression calls anything but REPLACE.
fn calls_a_function(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    chars.iter().enumerate().any(|(i, c)| {
        if *c != '(' || i == 0 {
            return false;
        }
        let mut j = i;
        while j > 0 && (chars[j - 1].is_ascii_alphanumeric() || chars[j - 1] == '_') {
            j -= 1;
        }
        let word: String = chars[j..i].iter().collect();
        !word.is_empty() && word != "replace" && word != "in"
    })
}

/// The expression with each `CONVERT([datetime],'YYYY-MM-DD',(120))`
/// replaced by that day as the stand-in stores a datetime; `None` when it
/// has none.
fn constant_dates(expr: &str) -> Option<String> {
    const CALL: &str = "convert([datetime],'";
    let mut out = String::new();
    let mut rest = expr;
    let mut found = false;
    while let Some(at) = rest.to_ascii_lowercase().find(CALL) {
        let after = &rest[at + CALL.len()..];
        let day = after.get(..10)?;
        let tail = after.get(10..)?.strip_prefix("',(120))")?;
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        out.push_str(&rest[..at]);
        out.push_str(&format!("'{day} 00:00:00.000'"));
        rest = tail;
        found = true;
    }
    out.push_str(rest);
    found.then_some(out)
}

/// A single int primary key named after its own table (`Twr_TwrId`,
/// `TrN_TrNID`) is IDENTITY; one naming another table's row
/// (`TwTS_TwrId`) is not.
fn is_identity(table: &RawTable, col: &RawColumn) -> bool {
    if table.primary_key.len() != 1 || !table.primary_key[0].eq_ignore_ascii_case(&col.column) {
        return false;
    }
    if sql_type(&col.ty) != SqlType::Int {
        return false;
    }
    match col.column.split_once('_') {
        Some((prefix, rest)) => rest.eq_ignore_ascii_case(&format!("{prefix}id")),
        None => false,
    }
}

fn cdn_table(full: &'static str, t: &'static RawTable) -> Table {
    let name = full.strip_prefix("CDN.").unwrap_or(full);
    let names: Vec<&str> = t.columns.iter().map(|c| c.column.as_str()).collect();
    let columns: Vec<Column> = t
        .columns
        .iter()
        .map(|c| {
            let ty = sql_type(&c.ty);
            let identity = is_identity(t, c);
            let in_pk = t
                .primary_key
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.column));
            let computed = c
                .computed
                .as_deref()
                .map(|e| computed(e, ty, &c.ty, &names));
            let default = match (&c.default, &computed) {
                (_, Some(_)) => None,
                (Some(d), None) => column_default(d, ty),
                // EF Core left out DEFAULT 0 (the CLR default): assumed.
                (None, None) if !c.nullable && is_numeric(ty) && !in_pk => {
                    Some(ColumnDefault::Number("0".into()))
                }
                (None, None) => None,
            };
            Column {
                name: c.column.as_str(),
                ty,
                decl: c.ty.as_str(),
                nullable: c.nullable,
                identity,
                default,
                computed,
            }
        })
        .collect();
    let mut uniques = Vec::new();
    if !t.primary_key.is_empty() {
        uniques.push(Unique {
            name: pk_name(name),
            columns: t.primary_key.iter().map(|s| s.as_str()).collect(),
            kind: UniqueKind::PrimaryKey,
        });
    }
    let mut indexes = Vec::new();
    for i in &t.indexes {
        let cols: Vec<&'static str> = i.columns.iter().map(|s| s.as_str()).collect();
        if i.unique {
            uniques.push(Unique {
                name: i.name.as_str(),
                columns: cols,
                kind: UniqueKind::Index,
            });
        } else {
            indexes.push((i.name.as_str(), cols));
        }
    }
    let triggers: Vec<&'static str> = t.triggers.iter().map(|s| s.as_str()).collect();
    let ts_col = columns
        .iter()
        .find(|c| c.name.to_ascii_lowercase().ends_with("_ts_mod"))
        .map(|c| c.name);
    let trigger = triggers
        .iter()
        .find(|n| n.to_ascii_lowercase().contains("insertupdate"))
        .or(triggers.first())
        .copied();
    let ts_mod = match (ts_col, trigger, t.primary_key.as_slice()) {
        (Some(column), Some(trigger), [key]) => Some(TsMod {
            column,
            key: key.as_str(),
            trigger,
        }),
        _ => None,
    };
    Table {
        schema: "CDN",
        name,
        columns,
        uniques,
        indexes,
        triggers,
        ts_mod,
        system: false,
        object_id: 0,
    }
}

/// The primary key's constraint name (the real schema does not give it).
fn pk_name(table: &str) -> &'static str {
    static NAMES: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        raw()
            .keys()
            .map(|k| {
                let t = k.strip_prefix("CDN.").unwrap_or(k);
                let s: &'static str = Box::leak(format!("PK_{t}").into_boxed_str());
                (t.to_string(), s)
            })
            .collect()
    });
    names.get(table).copied().unwrap_or("PK")
}

/// Builds a catalog view from compact column specs: `"name type [null]"`.
fn table(schema: &'static str, name: &'static str, cols: &[&'static str]) -> Table {
    let columns = cols
        .iter()
        .map(|spec| {
            let mut parts = spec.split_whitespace();
            let name = parts.next().unwrap_or_default();
            let ty_text = parts.next().unwrap_or_default();
            let rest: Vec<&'static str> = parts.collect();
            Column {
                name,
                ty: SqlType::parse(ty_text).unwrap_or(SqlType::NVarChar(None)),
                decl: ty_text,
                nullable: rest.contains(&"null"),
                identity: false,
                default: None,
                computed: None,
            }
        })
        .collect();
    Table {
        schema,
        name,
        columns,
        uniques: Vec::new(),
        indexes: Vec::new(),
        triggers: Vec::new(),
        ts_mod: None,
        system: true,
        object_id: 0,
    }
}

fn build() -> Vec<Table> {
    let mut v: Vec<Table> = raw().iter().map(|(k, t)| cdn_table(k, t)).collect();
    v.extend(catalog());
    for (i, t) in v.iter_mut().enumerate() {
        t.object_id = 1_000_000 + 16 * i as i64;
    }
    v
}

fn catalog() -> Vec<Table> {
    vec![
        table(
            "sys",
            "databases",
            &[
                "name nvarchar(128)",
                "database_id int",
                "compatibility_level tinyint",
                "collation_name nvarchar(128) null",
                "state_desc nvarchar(60) null",
            ],
        ),
        table("sys", "schemas", &["name nvarchar(128)", "schema_id int"]),
        table(
            "sys",
            "tables",
            &[
                "name nvarchar(128)",
                "object_id int",
                "schema_id int",
                "type varchar(2)",
                "type_desc nvarchar(60)",
            ],
        ),
        table(
            "sys",
            "objects",
            &[
                "name nvarchar(128)",
                "object_id int",
                "schema_id int",
                "type varchar(2)",
                "type_desc nvarchar(60)",
            ],
        ),
        table(
            "sys",
            "columns",
            &[
                "object_id int",
                "name nvarchar(128)",
                "column_id int",
                "max_length smallint",
                "precision tinyint",
                "scale tinyint",
                "is_nullable bit",
                "is_identity bit",
            ],
        ),
        table(
            "INFORMATION_SCHEMA",
            "TABLES",
            &[
                "TABLE_CATALOG nvarchar(128)",
                "TABLE_SCHEMA nvarchar(128)",
                "TABLE_NAME nvarchar(128)",
                "TABLE_TYPE varchar(10)",
            ],
        ),
        table(
            "INFORMATION_SCHEMA",
            "COLUMNS",
            &[
                "TABLE_CATALOG nvarchar(128)",
                "TABLE_SCHEMA nvarchar(128)",
                "TABLE_NAME nvarchar(128)",
                "COLUMN_NAME nvarchar(128)",
                "ORDINAL_POSITION int",
                "IS_NULLABLE varchar(3)",
                "DATA_TYPE nvarchar(128)",
                "CHARACTER_MAXIMUM_LENGTH int null",
                "NUMERIC_PRECISION tinyint null",
                "NUMERIC_SCALE int null",
                "COLUMN_DEFAULT nvarchar(4000) null",
            ],
        ),
        table(
            "sys",
            "triggers",
            &[
                "name nvarchar(128)",
                "object_id int",
                "parent_class tinyint",
                "parent_id int",
                "type varchar(2)",
                "type_desc nvarchar(60)",
                "is_disabled bit",
                "is_instead_of_trigger bit",
            ],
        ),
    ]
}

/// All tables, CDN ones first.
pub fn tables() -> &'static [Table] {
    static T: OnceLock<Vec<Table>> = OnceLock::new();
    T.get_or_init(build)
}

/// The CDN (Optima) tables only.
pub fn cdn_tables() -> impl Iterator<Item = &'static Table> {
    tables().iter().filter(|t| !t.system)
}

/// Finds a table by schema and name (case-insensitive).
pub fn find_table(schema: &str, name: &str) -> Option<&'static Table> {
    tables()
        .iter()
        .find(|t| t.schema.eq_ignore_ascii_case(schema) && t.name.eq_ignore_ascii_case(name))
}

/// Finds a table by its name alone (SQLite reports constraint failures so).
pub fn find_table_by_name(name: &str) -> Option<&'static Table> {
    tables().iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Column name (lower case) → (table, column). Optima's column names carry a
/// table prefix, so a name identifies its column across the database.
pub fn column_index() -> &'static HashMap<String, (&'static Table, &'static Column)> {
    static M: OnceLock<HashMap<String, (&'static Table, &'static Column)>> = OnceLock::new();
    M.get_or_init(|| {
        let mut m: HashMap<String, (&'static Table, &'static Column)> = HashMap::new();
        // A name that two tables give different types (sys.columns.is_nullable
        // is a bit, INFORMATION_SCHEMA.COLUMNS.IS_NULLABLE a varchar(3)) says
        // nothing about the type by itself: left out, so such a column is
        // typed by its declaration instead.
        let mut ambiguous = std::collections::HashSet::new();
        for t in tables() {
            for c in &t.columns {
                let key = c.name.to_ascii_lowercase();
                match m.get(&key) {
                    Some((_, seen)) if seen.ty != c.ty => {
                        ambiguous.insert(key);
                    }
                    Some(_) => {}
                    None => {
                        m.insert(key, (t, c));
                    }
                }
            }
        }
        for key in ambiguous {
            m.remove(&key);
        }
        m
    })
}

/// Looks up a column by name anywhere in the schema (not a name two tables
/// type differently).
pub fn find_column(name: &str) -> Option<(&'static Table, &'static Column)> {
    column_index().get(&name.to_ascii_lowercase()).copied()
}

const NOW_SQLITE: &str = "strftime('%Y-%m-%d %H:%M:%f','now','localtime')";

fn is_date(ty: SqlType) -> bool {
    matches!(
        ty,
        SqlType::DateTime | SqlType::DateTime2(_) | SqlType::Date
    )
}

fn sqlite_default(c: &Column) -> Option<String> {
    Some(match c.default.as_ref()? {
        ColumnDefault::Text(s) => format!("'{}'", s.replace('\'', "''")),
        ColumnDefault::Number(n) if is_date(c.ty) => {
            // SQL Server reads a number as days after 1900-01-01.
            let days = n.parse::<f64>().unwrap_or(0.0) as i64;
            let base = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
            let d = base + chrono::Duration::days(days);
            format!("'{} 00:00:00.000'", d.format("%Y-%m-%d"))
        }
        ColumnDefault::Number(n) => n.clone(),
    })
}

/// The SQLite name of an index: index names share SQLite's namespace with
/// tables (Optima has an index `TwrEAN` and a table `TwrEan`), so prefixed.
pub fn sqlite_index_name(table: &str, index: &str) -> String {
    format!("{table}__{index}")
}

/// The SQLite DDL of one table, in schema `db` (the attached CDN file).
pub fn sqlite_ddl(t: &Table, db: &str) -> Vec<String> {
    let mut cols = Vec::new();
    for c in &t.columns {
        let n = c.name;
        let collate = if c.ty.is_string() {
            " COLLATE POLISH_CI_AS"
        } else {
            ""
        };
        if c.identity {
            cols.push(format!("\"{n}\" INTEGER PRIMARY KEY AUTOINCREMENT"));
            continue;
        }
        if let Some(comp) = &c.computed {
            cols.push(format!(
                "\"{n}\" {} GENERATED ALWAYS AS ({}) VIRTUAL{collate}",
                c.ty.sqlite_decl(),
                comp.sqlite
            ));
            continue;
        }
        let mut s = format!("\"{n}\" {}", c.ty.sqlite_decl());
        if !c.nullable {
            s.push_str(" NOT NULL");
        }
        s.push_str(collate);
        if let Some(d) = sqlite_default(c) {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        // Constraint names carry what map_error needs to raise SQL Server's
        // error; a conversion check comes before the range check.
        match c.ty {
            SqlType::VarChar(Some(len)) | SqlType::NVarChar(Some(len)) => s.push_str(&format!(
                " CONSTRAINT \"len:{n}:{len}\" CHECK (length(\"{n}\") <= {len})"
            )),
            SqlType::Decimal(p, sc) => s.push_str(&format!(
                " CONSTRAINT \"conv:{n}:{ty}\" CHECK (typeof(\"{n}\") IN ('integer','real','null')) \
                 CONSTRAINT \"prec:{n}:{p}:{sc}\" CHECK (abs(\"{n}\") < 1e{})",
                p - sc,
                ty = c.ty.sql_name()
            )),
            SqlType::Int | SqlType::SmallInt | SqlType::TinyInt | SqlType::BigInt | SqlType::Bit => {
                let (lo, hi) = c.ty.int_range().unwrap_or((i64::MIN, i64::MAX));
                s.push_str(&format!(
                    " CONSTRAINT \"conv:{n}:{ty}\" CHECK (typeof(\"{n}\") IN ('integer','null')) \
                     CONSTRAINT \"range:{n}:{ty}\" CHECK (\"{n}\" BETWEEN {lo} AND {hi})",
                    ty = c.ty.sql_name()
                ))
            }
            _ => {}
        }
        cols.push(s);
    }
    for u in &t.uniques {
        if u.kind == UniqueKind::PrimaryKey && t.identity().is_none() {
            cols.push(format!("PRIMARY KEY ({})", quoted(&u.columns)));
        }
    }
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {db}.\"{}\" (\n  {}\n)",
        t.name,
        cols.join(",\n  ")
    )];
    for u in &t.uniques {
        if u.kind != UniqueKind::Index {
            continue;
        }
        // SQL Server's unique index holds one NULL (NULLs are equal there,
        // distinct in SQLite): a nullable column is indexed as ifnull(c, X'').
        let keys: Vec<String> = u
            .columns
            .iter()
            .map(|name| match t.column(name) {
                Some(c) if c.nullable || c.computed.is_some() => format!(
                    "ifnull(\"{name}\", X''){}",
                    if c.ty.is_string() {
                        " COLLATE POLISH_CI_AS"
                    } else {
                        ""
                    }
                ),
                _ => format!("\"{name}\""),
            })
            .collect();
        out.push(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {db}.\"{}\" ON \"{}\" ({})",
            sqlite_index_name(t.name, u.name),
            t.name,
            keys.join(", ")
        ));
    }
    for (name, cols) in &t.indexes {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {db}.\"{}\" ON \"{}\" ({})",
            sqlite_index_name(t.name, name),
            t.name,
            quoted(cols)
        ));
    }
    if let Some(ts) = &t.ts_mod {
        out.push(format!(
            "CREATE TRIGGER IF NOT EXISTS {db}.\"{trg}\" AFTER UPDATE ON \"{tn}\" FOR EACH ROW WHEN NEW.\"{c}\" IS OLD.\"{c}\" \
             BEGIN UPDATE \"{tn}\" SET \"{c}\" = {NOW_SQLITE} WHERE \"{k}\" = NEW.\"{k}\"; END",
            trg = ts.trigger,
            tn = t.name,
            c = ts.column,
            k = ts.key
        ));
    }
    out
}

fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tsql_default(c: &Column) -> Option<String> {
    Some(match c.default.as_ref()? {
        ColumnDefault::Text(s) if matches!(c.ty, SqlType::NVarChar(_)) => {
            format!("(N'{}')", s.replace('\'', "''"))
        }
        ColumnDefault::Text(s) => format!("('{}')", s.replace('\'', "''")),
        ColumnDefault::Number(n) => format!("(({n}))"),
    })
}

/// The DML events of a marker trigger, from its name.
fn trigger_events(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    let mut ev = Vec::new();
    if n.contains("insert") {
        ev.push("INSERT");
    }
    if n.contains("update") {
        ev.push("UPDATE");
    }
    if n.contains("delete") {
        ev.push("DELETE");
    }
    if ev.is_empty() {
        ev = vec!["INSERT", "UPDATE", "DELETE"];
    }
    ev.join(", ")
}

/// The T-SQL DDL of the whole CDN schema (tables, keys, indexes, triggers),
/// as committed in `sql/schema.sql`.
pub fn tsql_ddl() -> String {
    let mut s = String::new();
    s.push_str("-- Comarch ERP Optima tables as the optima-standin holds them, generated from\n");
    s.push_str(
        "-- tests/optima-standin/schema/optima-tables.json (the real schema's columns, keys,\n",
    );
    s.push_str(
        "-- indexes and trigger names). Generated by `optima-standin tsql --schema-only`;\n",
    );
    s.push_str("-- do not edit by hand.\n");
    s.push_str("SET ANSI_NULLS ON;\nSET QUOTED_IDENTIFIER ON;\nGO\n");
    s.push_str("IF SCHEMA_ID(N'CDN') IS NULL EXEC(N'CREATE SCHEMA CDN');\nGO\n\n");
    for t in cdn_tables() {
        let mut cols = Vec::new();
        for c in &t.columns {
            if let Some(comp) = &c.computed {
                let note = if comp.emulated {
                    String::new()
                } else {
                    " -- Optima's function is not public: NULL".to_string()
                };
                cols.push(format!("    [{}] AS ({}){note}", c.name, comp.tsql));
                continue;
            }
            let mut line = format!("    [{}] {}", c.name, c.decl);
            if c.identity {
                line.push_str(" IDENTITY(1,1)");
            }
            line.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
            if let Some(d) = tsql_default(c) {
                line.push_str(&format!(
                    " CONSTRAINT [DF_{}_{}] DEFAULT {d}",
                    t.name, c.name
                ));
            }
            cols.push(line);
        }
        for u in &t.uniques {
            if u.kind == UniqueKind::PrimaryKey {
                cols.push(format!(
                    "    CONSTRAINT [{}] PRIMARY KEY CLUSTERED ({})",
                    u.name,
                    bracket(&u.columns)
                ));
            }
        }
        // A computed column's line may end in a comment: commas go first.
        let body = cols
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == cols.len() {
                    l.clone()
                } else if let Some((code, note)) = l.split_once(" --") {
                    format!("{code}, --{note}")
                } else {
                    format!("{l},")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        s.push_str(&format!(
            "IF OBJECT_ID(N'CDN.{n}', N'U') IS NULL\nCREATE TABLE CDN.[{n}] (\n{body}\n);\nGO\n",
            n = t.name
        ));
        for u in &t.uniques {
            if u.kind == UniqueKind::Index {
                s.push_str(&format!(
                    "CREATE UNIQUE NONCLUSTERED INDEX [{}] ON CDN.[{}] ({});\nGO\n",
                    u.name,
                    t.name,
                    bracket(&u.columns)
                ));
            }
        }
        for (name, cols) in &t.indexes {
            s.push_str(&format!(
                "CREATE NONCLUSTERED INDEX [{name}] ON CDN.[{}] ({});\nGO\n",
                t.name,
                bracket(cols)
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "-- Triggers: Optima's names, not its bodies (they are not public). The\n\
         -- *_InsertUpdate_Trigger of a table with a *_TS_Mod column keeps the stamp\n\
         -- current on UPDATE, as the stand-in emulates it; the others do nothing and\n\
         -- are here so that OUTPUT without INTO fails (error 334) as it does in Optima.\n",
    );
    for t in cdn_tables() {
        for trg in &t.triggers {
            let body = match &t.ts_mod {
                Some(ts) if ts.trigger == *trg => format!(
                    "CREATE TRIGGER CDN.[{trg}] ON CDN.[{n}] AFTER UPDATE AS\nBEGIN\n    SET NOCOUNT ON;\n    IF NOT UPDATE([{c}])\n        UPDATE t SET [{c}] = GETDATE() FROM CDN.[{n}] t JOIN inserted i ON i.[{k}] = t.[{k}];\nEND;\nGO\n",
                    n = t.name,
                    c = ts.column,
                    k = ts.key
                ),
                _ => format!(
                    "CREATE TRIGGER CDN.[{trg}] ON CDN.[{n}] AFTER {} AS\nBEGIN\n    SET NOCOUNT ON;\nEND;\nGO\n",
                    trigger_events(trg),
                    n = t.name
                ),
            };
            s.push_str(&body);
        }
    }
    s
}

fn bracket(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("[{c}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_schema_parses_into_every_table() {
        assert_eq!(cdn_tables().count(), TABLE_NAMES.len());
        let mut seen = std::collections::HashSet::new();
        for t in cdn_tables() {
            for c in &t.columns {
                assert!(seen.insert(c.name.to_ascii_lowercase()), "{}", c.name);
            }
        }
        assert_eq!(
            find_column("twr_kod").map(|(_, c)| c.ty),
            Some(SqlType::VarChar(Some(50)))
        );
        assert_eq!(
            find_column("TwC_Wartosc").map(|(_, c)| c.ty),
            Some(SqlType::Decimal(17, 4))
        );
        assert_eq!(
            find_column("TwC_Typ").map(|(_, c)| c.ty),
            Some(SqlType::TinyInt)
        );
    }

    #[test]
    fn the_sqlite_ddl_creates_and_refuses_like_sql_server() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.create_collation("POLISH_CI_AS", |a: &str, b: &str| {
            a.to_lowercase().cmp(&b.to_lowercase())
        })
        .unwrap();
        conn.execute_batch("ATTACH ':memory:' AS CDN").unwrap();
        for t in cdn_tables() {
            for s in sqlite_ddl(t, "CDN") {
                conn.execute_batch(&s)
                    .unwrap_or_else(|e| panic!("{e}: {s}"));
            }
        }
        let err = |sql: &str| conn.execute(sql, []).unwrap_err().to_string();
        // A conversion fails before the range check.
        assert!(
            err("INSERT INTO CDN.TraVat (TrV_Flaga, TrV_TrNID) VALUES ('abc', 1)")
                .contains("conv:TrV_Flaga:smallint"),
        );
        assert!(
            err("INSERT INTO CDN.TraVat (TrV_Flaga, TrV_TrNID) VALUES (70000, 1)")
                .contains("range:TrV_Flaga:smallint"),
        );
        assert!(
            err("INSERT INTO CDN.TraVat (TrV_Netto, TrV_TrNID) VALUES ('x', 1)")
                .contains("conv:TrV_Netto:decimal(15,2)"),
        );
        // The emulated full number.
        conn.execute("INSERT INTO CDN.TraVat (TrV_TrNID) VALUES (1)", [])
            .unwrap();
        // One NULL per unique index, as in SQL Server.
        conn.execute(
            "INSERT INTO CDN.FormyPlatnosci (FPl_Nazwa) VALUES ('a')",
            [],
        )
        .unwrap();
        let e = err("INSERT INTO CDN.FormyPlatnosci (FPl_Nazwa) VALUES ('b')");
        assert!(e.contains("FormyPlatnosci__FPlGUID"), "{e}");
    }

    #[test]
    fn identities_defaults_and_computed_columns() {
        let nag = find_table("CDN", "TraNag").unwrap();
        assert!(nag.column("TrN_TrNID").unwrap().identity);
        let pelny = nag.column("TrN_NumerPelny").unwrap();
        assert!(pelny.computed.as_ref().unwrap().emulated);
        assert!(
            !nag.column("TrN_StatusString")
                .unwrap()
                .computed
                .as_ref()
                .unwrap()
                .emulated
        );
        assert_eq!(
            nag.column("TrN_Anulowany").unwrap().default,
            Some(ColumnDefault::Number("0".into()))
        );
        assert_eq!(nag.column("TrN_DataWys").unwrap().default, None);
        assert_eq!(
            nag.column("TrN_NrListuPrzewozowego").unwrap().default,
            Some(ColumnDefault::Text(String::new()))
        );
        assert_eq!(
            nag.ts_mod.as_ref().unwrap().trigger,
            "TraNag_InsertUpdate_Trigger"
        );
        assert!(nag.indexes.iter().all(|(_, c)| c != &vec!["TrN_TS_Mod"]));
        let esklep = find_table("CDN", "TwrTSModEsklep").unwrap();
        assert!(esklep.identity().is_none());
        let knt = find_table("CDN", "Kontrahenci").unwrap();
        assert_eq!(
            knt.column("Knt_PodmiotTyp").unwrap().default,
            Some(ColumnDefault::Number("1".into()))
        );
        let twr = find_table("CDN", "Towary").unwrap();
        assert_eq!(
            twr.column("Twr_JMPrzelicznikL").unwrap().default,
            Some(ColumnDefault::Number("1".into()))
        );
        assert!(find_table("CDN", "TwrCeny").unwrap().ts_mod.is_none());
    }
}
