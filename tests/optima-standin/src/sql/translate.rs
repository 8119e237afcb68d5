//! T-SQL → SQLite: parse with sqlparser's `MsSqlDialect`, check the names
//! against the schema, rewrite the supported subset, print for SQLite.
//! Anything outside the subset fails with an error that names it
//! (docs/optima-standin.md lists the subset).

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    CastKind, DataType, Expr, FromTable, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, JoinOperator, LimitClause, ObjectName,
    ObjectNamePart, Offset, OffsetRows, OutputClause, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableObject, TopQuantity, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use super::infer::{self, OutCol, ParamTypes};
use crate::error::SqlError;
use crate::schema::{self, Table};

/// What kind of SQL statement runs on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
}

/// One translated statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// SQL for SQLite. `columns`: statically typed result columns (None for
    /// wildcards: then named and typed from SQLite's column names).
    Sql {
        sql: String,
        kind: Kind,
        returns_rows: bool,
        columns: Option<Vec<OutCol>>,
        target: Option<&'static Table>,
        /// For a one-row INSERT: column (lower case) → the inserted value's
        /// source, to name the duplicate key value in errors 2601/2627.
        inserted: Vec<(String, KeySource)>,
        /// Types of aliased expressions anywhere in the statement (lower-case
        /// alias → type, nullable), for columns of derived tables and CTEs.
        aliases: std::collections::HashMap<String, (crate::types::SqlType, bool)>,
        /// The tables the statement reads (every table of a SELECT; for
        /// INSERT/UPDATE/DELETE the others than the target), for SELECT
        /// permission.
        reads: Vec<&'static Table>,
        /// `OUTPUT ... INTO @table (cols)`: the RETURNING rows go into the
        /// table variable instead of to the client.
        output_into: Option<OutputInto>,
    },
    /// `DECLARE @name TABLE (...)`: a table variable for the rest of the
    /// batch (a SQLite temp table).
    DeclareTable {
        name: String,
        columns: Vec<(String, crate::types::SqlType)>,
    },
    Begin,
    Commit,
    Rollback,
    SetNoCount(bool),
    SetLockTimeout(i64),
    /// A SET option accepted without effect.
    Noop,
}

/// Where `OUTPUT ... INTO` puts its rows.
#[derive(Debug, Clone)]
pub struct OutputInto {
    /// The SQLite table (`temp."@IDS"`).
    pub table: String,
    /// The target columns; empty = all, in order.
    pub columns: Vec<String>,
}

/// The SQLite temp table of a table variable (`@ids` → `temp."@IDS"`).
pub fn table_var_sqlite(name: &str) -> String {
    format!("temp.\"{}\"", name.to_ascii_uppercase())
}

/// Where an inserted value comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Param(String),
    Literal(String),
}

fn inserted_values(ins: &sqlparser::ast::Insert) -> Vec<(String, KeySource)> {
    let Some(src) = &ins.source else {
        return Vec::new();
    };
    let SetExpr::Values(v) = src.body.as_ref() else {
        return Vec::new();
    };
    if v.rows.len() != 1 {
        return Vec::new();
    }
    let row = &v.rows[0];
    let exprs: Vec<&Expr> = row.iter().collect();
    ins.columns
        .iter()
        .zip(exprs)
        .filter_map(|(c, e)| {
            let col = c
                .to_string()
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_ascii_lowercase();
            let src = match e {
                Expr::Identifier(i) if i.value.starts_with('@') => {
                    KeySource::Param(i.value.to_ascii_uppercase())
                }
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::NationalStringLiteral(s) => {
                        KeySource::Literal(s.clone())
                    }
                    Value::Number(n, _) => KeySource::Literal(n.clone()),
                    _ => return None,
                },
                _ => return None,
            };
            Some((col, src))
        })
        .collect()
}

/// Lock and other table hints that are dropped (SQLite's own locking
/// serialises writers; readers see committed data, as READ COMMITTED).
const TABLE_HINTS: &[&str] = &[
    "NOLOCK",
    "UPDLOCK",
    "HOLDLOCK",
    "ROWLOCK",
    "READPAST",
    "READCOMMITTED",
    "READUNCOMMITTED",
    "REPEATABLEREAD",
    "SERIALIZABLE",
    "TABLOCK",
    "TABLOCKX",
    "PAGLOCK",
    "XLOCK",
    "NOWAIT",
];

/// Removes query hints `OPTION ( ... )` (outside strings and brackets),
/// which sqlparser does not parse after ORDER BY; SQLite has no use for them.
pub fn strip_query_hints(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let (mut in_str, mut in_br) = (false, false);
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            in_str = c != '\'';
            out.push(c);
            i += 1;
            continue;
        }
        if in_br {
            in_br = c != ']';
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '\'' => in_str = true,
            '[' => in_br = true,
            _ => {}
        }
        let word_start = i == 0
            || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '@');
        if word_start && i + 6 <= chars.len() {
            let w: String = chars[i..i + 6].iter().collect();
            if w.eq_ignore_ascii_case("OPTION") {
                let mut j = i + 6;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '(' {
                    let mut depth = 0;
                    let mut k = j;
                    while k < chars.len() {
                        match chars[k] {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                    if k < chars.len() {
                        out.push(' ');
                        i = k + 1;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Translates a T-SQL batch.
pub fn translate(sql: &str, params: &ParamTypes) -> Result<Vec<Stmt>, SqlError> {
    let sql = strip_query_hints(sql);
    let statements = Parser::new(&MsSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(parse_error)?;
    let mut table_vars = HashSet::new();
    statements
        .into_iter()
        .map(|s| translate_statement(s, params, &mut table_vars))
        .collect()
}

/// `DECLARE @t TABLE (...)`; scalar variables are outside the subset.
fn translate_declare(
    stmts: &[sqlparser::ast::Declare],
    table_vars: &mut HashSet<String>,
) -> Result<Stmt, SqlError> {
    let [d] = stmts else {
        return Err(SqlError::unsupported("DECLARE of several variables"));
    };
    let (Some(DataType::Table(Some(cols))), [name]) = (&d.data_type, d.names.as_slice()) else {
        return Err(SqlError::unsupported("DECLARE of a scalar variable"));
    };
    let key = name.value.to_ascii_uppercase();
    if !table_vars.insert(key.clone()) {
        return Err(SqlError::new(
            134,
            15,
            format!(
                "The variable name '{}' has already been declared. Variable names must be unique within a query batch or stored procedure.",
                name.value
            ),
        ));
    }
    let mut columns = Vec::new();
    for c in cols {
        let text = c.data_type.to_string();
        let ty = crate::types::SqlType::parse(&text)
            .ok_or_else(|| SqlError::unsupported(format!("table variable column type {text}")))?;
        columns.push((c.name.value.clone(), ty));
    }
    Ok(Stmt::DeclareTable { name: key, columns })
}

fn parse_error(e: ParserError) -> SqlError {
    let text = e.to_string();
    let near = text
        .split("found: ")
        .nth(1)
        .map(|s| s.split(" at Line").next().unwrap_or(s).trim().to_string())
        .unwrap_or_else(|| text.clone());
    let near = near.trim_matches('"').to_string();
    if near == "EOF" {
        return SqlError::new(
            102,
            15,
            "Incorrect syntax near the end of the batch.".to_string(),
        );
    }
    SqlError::syntax(&near)
}

fn statement_name(s: &Statement) -> String {
    let text = s.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("statement").to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "DECLARE" | "EXEC" | "EXECUTE" | "SET" => {
            format!(
                "{} {}",
                first,
                words.next().unwrap_or("").to_ascii_uppercase()
            )
        }
        _ => first,
    }
}

fn translate_statement(
    mut st: Statement,
    params: &ParamTypes,
    table_vars: &mut HashSet<String>,
) -> Result<Stmt, SqlError> {
    match &st {
        Statement::Declare { stmts } => return translate_declare(stmts, table_vars),
        Statement::StartTransaction { .. } => return Ok(Stmt::Begin),
        Statement::Commit { .. } => return Ok(Stmt::Commit),
        Statement::Rollback {
            savepoint: None, ..
        } => return Ok(Stmt::Rollback),
        Statement::Set(set) => return translate_set(set, &st),
        _ => {}
    }
    let mut alias_types = AliasTypes {
        params,
        map: Default::default(),
    };
    let _ = sqlparser::ast::Visit::visit(&st, &mut alias_types);
    let aliases = alias_types.map;
    let inserted = match &st {
        Statement::Insert(ins) => inserted_values(ins),
        _ => Vec::new(),
    };
    let mut output_into = None;
    let (kind, columns, target, returns_rows) = match &mut st {
        Statement::Query(q) => {
            if let SetExpr::Select(s) = q.body.as_ref()
                && s.into.is_some()
            {
                return Err(SqlError::unsupported("SELECT ... INTO"));
            }
            if q.for_clause.is_some() {
                return Err(SqlError::unsupported("FOR XML/FOR JSON"));
            }
            let cols = infer::query_columns(&q.body, params);
            (Kind::Select, cols, None, true)
        }
        Statement::Insert(ins) => {
            let TableObject::TableName(name) = &ins.table else {
                return Err(SqlError::unsupported("INSERT INTO a table function"));
            };
            let table = resolve_table(name)?;
            for c in &ins.columns {
                let cname = c.to_string();
                let cname = cname.trim_matches(|c| c == '[' || c == ']' || c == '"');
                if let Some(col) = table.column(cname) {
                    if col.computed.is_some() {
                        return Err(SqlError::computed_column(col.name));
                    }
                    if col.identity {
                        return Err(SqlError::new(
                            544,
                            16,
                            format!(
                                "Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.",
                                table.name
                            ),
                        ));
                    }
                } else {
                    return Err(SqlError::invalid_column(cname));
                }
            }
            let (cols, into) = output_to_returning(
                &mut ins.output,
                &mut ins.returning,
                "INSERTED",
                params,
                table,
                table_vars,
            )?;
            output_into = into;
            (Kind::Insert, cols.clone(), Some(table), cols.is_some())
        }
        Statement::Update(up) => {
            if up.from.is_some() {
                return Err(SqlError::unsupported("UPDATE ... FROM"));
            }
            if !up.table.joins.is_empty() {
                return Err(SqlError::unsupported("UPDATE with a join"));
            }
            let table = match &up.table.relation {
                TableFactor::Table { name, .. } => resolve_table(name)?,
                _ => return Err(SqlError::unsupported("UPDATE of a derived table")),
            };
            for a in &up.assignments {
                let names: Vec<&ObjectName> = match &a.target {
                    sqlparser::ast::AssignmentTarget::ColumnName(n) => vec![n],
                    sqlparser::ast::AssignmentTarget::Tuple(v) => v.iter().collect(),
                };
                for n in names {
                    let cname = match n.0.last() {
                        Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
                        Some(other) => other.to_string(),
                        None => continue,
                    };
                    match table.column(&cname) {
                        Some(c) if c.computed.is_some() => {
                            return Err(SqlError::computed_column(c.name));
                        }
                        Some(c) if c.identity => {
                            return Err(SqlError::new(
                                8102,
                                16,
                                format!("Cannot update identity column '{}'.", c.name),
                            ));
                        }
                        Some(_) => {}
                        None => return Err(SqlError::invalid_column(&cname)),
                    }
                }
            }
            let (cols, into) = output_to_returning(
                &mut up.output,
                &mut up.returning,
                "INSERTED",
                params,
                table,
                table_vars,
            )?;
            output_into = into;
            (Kind::Update, cols.clone(), Some(table), cols.is_some())
        }
        Statement::Delete(del) => {
            if !del.tables.is_empty() || del.using.is_some() {
                return Err(SqlError::unsupported("DELETE with several tables"));
            }
            let from = match &del.from {
                FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v) => v,
            };
            if from.len() != 1 || !from[0].joins.is_empty() {
                return Err(SqlError::unsupported("DELETE with a join"));
            }
            let table = match &from[0].relation {
                TableFactor::Table { name, .. } => resolve_table(name)?,
                _ => return Err(SqlError::unsupported("DELETE from a derived table")),
            };
            let (cols, into) = output_to_returning(
                &mut del.output,
                &mut del.returning,
                "DELETED",
                params,
                table,
                table_vars,
            )?;
            output_into = into;
            (Kind::Delete, cols.clone(), Some(table), cols.is_some())
        }
        other => return Err(SqlError::unsupported(statement_name(other))),
    };
    // Names: CTEs first, then every relation must be a known table.
    let mut ctes = CteCollector::default();
    let _ = st.visit(&mut ctes);
    let mut rw = Rewriter {
        ctes: ctes.0,
        tables: Vec::new(),
        table_vars: table_vars.clone(),
    };
    if let ControlFlow::Break(e) = st.visit(&mut rw) {
        return Err(e);
    }
    let mut reads: Vec<&'static Table> = Vec::new();
    for t in rw.tables {
        let is_target = target.is_some_and(|x| std::ptr::eq(x, t));
        if !is_target && !reads.iter().any(|r| std::ptr::eq(*r, t)) {
            reads.push(t);
        }
    }
    Ok(Stmt::Sql {
        sql: st.to_string(),
        kind,
        returns_rows,
        columns,
        target,
        inserted,
        aliases,
        reads,
        output_into,
    })
}

struct AliasTypes<'a> {
    params: &'a ParamTypes,
    map: std::collections::HashMap<String, (crate::types::SqlType, bool)>,
}

impl sqlparser::ast::Visitor for AliasTypes<'_> {
    type Break = ();
    fn pre_visit_select(&mut self, s: &sqlparser::ast::Select) -> ControlFlow<()> {
        for item in &s.projection {
            if let SelectItem::ExprWithAlias { expr, alias } = item
                && let (Some(t), n) = infer::infer(expr, self.params)
            {
                self.map
                    .entry(alias.value.to_ascii_lowercase())
                    .or_insert((t, n));
            }
        }
        ControlFlow::Continue(())
    }
}

fn translate_set(set: &sqlparser::ast::Set, st: &Statement) -> Result<Stmt, SqlError> {
    use sqlparser::ast::{Set, SetSessionParamKind};
    match set {
        Set::SetTransaction { .. } => Ok(Stmt::Noop),
        Set::SetSessionParam(SetSessionParamKind::Generic(g)) => {
            let name = g.names.join(" ").to_ascii_uppercase();
            let value = g.value.to_ascii_uppercase();
            match name.as_str() {
                "NOCOUNT" => Ok(Stmt::SetNoCount(value == "ON")),
                "LOCK_TIMEOUT" => value
                    .parse::<i64>()
                    .map(Stmt::SetLockTimeout)
                    .map_err(|_| SqlError::syntax(&g.value)),
                "IMPLICIT_TRANSACTIONS" if value == "ON" => {
                    Err(SqlError::unsupported("SET IMPLICIT_TRANSACTIONS ON"))
                }
                "XACT_ABORT"
                | "ANSI_NULLS"
                | "ANSI_PADDING"
                | "ANSI_WARNINGS"
                | "ARITHABORT"
                | "CONCAT_NULL_YIELDS_NULL"
                | "QUOTED_IDENTIFIER"
                | "ANSI_NULL_DFLT_ON"
                | "ANSI_DEFAULTS"
                | "CURSOR_CLOSE_ON_COMMIT"
                | "IMPLICIT_TRANSACTIONS"
                | "TEXTSIZE"
                | "DATEFORMAT"
                | "DATEFIRST"
                | "LANGUAGE"
                | "DEADLOCK_PRIORITY"
                | "NUMERIC_ROUNDABORT"
                | "ARITHIGNORE"
                | "NOEXEC"
                | "FMTONLY"
                    if !(name == "NOEXEC" || name == "FMTONLY") || value == "OFF" =>
                {
                    Ok(Stmt::Noop)
                }
                _ => Err(SqlError::unsupported(format!("SET {name}"))),
            }
        }
        Set::SetSessionParam(_) => Ok(Stmt::Noop),
        _ => Err(SqlError::unsupported(statement_name(st))),
    }
}

/// Moves `OUTPUT INSERTED.x` into SQLite's `RETURNING x`. Without `INTO`
/// the target must have no triggers (SQL Server's error 334); `INTO` takes a
/// table variable of the batch.
fn output_to_returning(
    output: &mut Option<OutputClause>,
    returning: &mut Option<Vec<SelectItem>>,
    pseudo: &str,
    params: &ParamTypes,
    target: &Table,
    table_vars: &HashSet<String>,
) -> Result<(Option<Vec<OutCol>>, Option<OutputInto>), SqlError> {
    let Some(out) = output.take() else {
        if returning.is_some() {
            return Err(SqlError::syntax("RETURNING"));
        }
        return Ok((None, None));
    };
    let OutputClause::Output {
        select_items,
        into_table,
        ..
    } = out
    else {
        return Err(SqlError::syntax("RETURNING"));
    };
    let into = match into_table {
        None if !target.triggers.is_empty() => {
            return Err(SqlError::new(
                334,
                16,
                format!(
                    "The target table '{}' of the DML statement cannot have any enabled triggers if the statement contains an OUTPUT clause without INTO clause.",
                    target.full_name()
                ),
            ));
        }
        None => None,
        Some(into) => Some(output_into_target(&into, table_vars)?),
    };
    let mut items = Vec::new();
    for item in select_items {
        let strip = |e: Expr| -> Result<Expr, SqlError> {
            match e {
                Expr::CompoundIdentifier(mut v) if v.len() == 2 => {
                    if v[0].value.eq_ignore_ascii_case(pseudo) {
                        Ok(Expr::Identifier(v.remove(1)))
                    } else {
                        Err(SqlError::unsupported(format!(
                            "OUTPUT {}.{}",
                            v[0].value.to_ascii_uppercase(),
                            v[1].value
                        )))
                    }
                }
                Expr::Identifier(i) => Ok(Expr::Identifier(i)),
                other => Err(SqlError::unsupported(format!("OUTPUT {other}"))),
            }
        };
        items.push(match item {
            SelectItem::UnnamedExpr(e) => SelectItem::UnnamedExpr(strip(e)?),
            SelectItem::ExprWithAlias { expr, alias } => SelectItem::ExprWithAlias {
                expr: strip(expr)?,
                alias,
            },
            SelectItem::QualifiedWildcard(_, opts) => SelectItem::Wildcard(opts),
            other => other,
        });
    }
    let cols = infer::projection(&items, params);
    *returning = Some(items);
    Ok((cols, into))
}

/// The table variable (and its column list) of `OUTPUT ... INTO`.
fn output_into_target(
    into: &sqlparser::ast::SelectInto,
    table_vars: &HashSet<String>,
) -> Result<OutputInto, SqlError> {
    let [target] = into.targets.as_slice() else {
        return Err(SqlError::unsupported("OUTPUT ... INTO several targets"));
    };
    let (name, columns) = match target {
        Expr::Identifier(i) => (i.value.clone(), Vec::new()),
        // `@ids (id)` parses as a call.
        Expr::Function(f) => {
            let name = f.name.to_string();
            let cols = fn_args(f)?
                .into_iter()
                .map(|e| match e {
                    Expr::Identifier(i) => Ok(i.value),
                    other => Err(SqlError::syntax(&other.to_string())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (name, cols)
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "OUTPUT ... INTO {other} (only table variables)"
            )));
        }
    };
    if !name.starts_with('@') {
        return Err(SqlError::unsupported(format!(
            "OUTPUT ... INTO {name} (only table variables)"
        )));
    }
    if !table_vars.contains(&name.to_ascii_uppercase()) {
        return Err(must_declare_table(&name));
    }
    Ok(OutputInto {
        table: table_var_sqlite(&name),
        columns,
    })
}

/// Error 1087, a table variable used without DECLARE.
fn must_declare_table(name: &str) -> SqlError {
    SqlError::new(
        1087,
        15,
        format!("Must declare the table variable \"{name}\"."),
    )
}

/// Resolves a table name to the schema; unknown names are error 208.
fn resolve_table(name: &ObjectName) -> Result<&'static Table, SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect();
    let display = parts.join(".");
    let (schema_name, table) = match parts.as_slice() {
        [s, t] => (s.as_str(), t.as_str()),
        [db, s, t] if db.eq_ignore_ascii_case(schema::DATABASE_NAME) => (s.as_str(), t.as_str()),
        _ => return Err(SqlError::invalid_object(&display)),
    };
    schema::find_table(schema_name, table).ok_or_else(|| SqlError::invalid_object(&display))
}

#[derive(Default)]
struct CteCollector(HashSet<String>);

impl VisitorMut for CteCollector {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            if w.recursive {
                // allowed: SQLite supports recursive CTEs
            }
            for c in &w.cte_tables {
                self.0.insert(c.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter {
    ctes: HashSet<String>,
    /// Table variables declared earlier in the batch (upper case).
    table_vars: HashSet<String>,
    /// Every table named, in order (with repeats).
    tables: Vec<&'static Table>,
}

fn ident(s: &str) -> Ident {
    Ident::new(s)
}

fn func(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(ident(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn string(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).into())
}

fn number(n: i64) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).into())
}

fn cast(e: Expr, dt: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(e),
        data_type: dt,
        format: None,
    }
}

/// CAST(e AS t) for SQLite, with SQL Server's semantics.
fn convert_to(e: Expr, dt: &DataType) -> Result<Expr, SqlError> {
    use crate::types::SqlType as T;
    let text = dt.to_string();
    let ty = crate::types::SqlType::parse(&text).or(if text.eq_ignore_ascii_case("uuid") {
        Some(T::UniqueIdentifier)
    } else {
        None
    });
    let Some(ty) = ty else {
        return Err(SqlError::unsupported(format!("CAST to {text}")));
    };
    Ok(match ty {
        T::VarChar(Some(n)) | T::NVarChar(Some(n)) => func(
            "substr",
            vec![cast(e, DataType::Text), number(1), number(n as i64)],
        ),
        T::VarChar(None) | T::NVarChar(None) => cast(e, DataType::Text),
        T::Int | T::BigInt | T::SmallInt | T::TinyInt => {
            func("ss_int", vec![e, string(&ty.sql_name())])
        }
        T::Bit => func("ss_int", vec![e, string("bit")]),
        T::Decimal(p, s) => func("ss_decimal", vec![e, number(p as i64), number(s as i64)]),
        T::Float => cast(e, DataType::Real),
        T::DateTime | T::DateTime2(_) => func("ss_datetime", vec![e]),
        T::Date => func("ss_date", vec![e]),
        T::UniqueIdentifier => func("ss_guid", vec![e]),
        T::VarBinary(_) => cast(e, DataType::Blob(None)),
        T::Variant => e,
    })
}

fn fn_args(f: &Function) -> Result<Vec<Expr>, SqlError> {
    match &f.args {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok(Expr::Identifier(ident("*"))),
                other => Err(SqlError::unsupported(format!("function argument {other}"))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(SqlError::unsupported("function over a subquery")),
    }
}

fn is_string_expr(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(
            v.value,
            Value::SingleQuotedString(_) | Value::NationalStringLiteral(_)
        ),
        Expr::Nested(e) => is_string_expr(e),
        Expr::BinaryOp {
            op: sqlparser::ast::BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Function(f) => {
            let n = f.name.to_string().to_ascii_lowercase();
            matches!(
                n.as_str(),
                "substr" | "upper" | "lower" | "ltrim" | "rtrim" | "trim" | "replace"
            )
        }
        Expr::Cast { data_type, .. } => matches!(data_type, DataType::Text),
        _ => matches!(
            infer::infer(e, &ParamTypes::new()).0,
            Some(t) if t.is_string()
        ),
    }
}

fn date_part(e: &Expr) -> Result<String, SqlError> {
    let name = match e {
        Expr::Identifier(i) => i.value.to_ascii_lowercase(),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.to_ascii_lowercase(),
            other => other.to_string(),
        },
        other => other.to_string().to_ascii_lowercase(),
    };
    let unit = match name.as_str() {
        "year" | "yy" | "yyyy" => "year",
        "quarter" | "qq" | "q" => "quarter",
        "month" | "mm" | "m" => "month",
        "dayofyear" | "dy" | "y" | "day" | "dd" | "d" | "weekday" | "dw" | "w" => "day",
        "week" | "wk" | "ww" => "week",
        "hour" | "hh" => "hour",
        "minute" | "mi" | "n" => "minute",
        "second" | "ss" | "s" => "second",
        "millisecond" | "ms" => "millisecond",
        other => return Err(SqlError::unsupported(format!("date part {other}"))),
    };
    Ok(unit.to_string())
}

impl Rewriter {
    fn rewrite_function(&self, f: &Function) -> Result<Expr, SqlError> {
        let name = f.name.to_string().to_ascii_uppercase();
        let name = name.trim_matches(|c| c == '[' || c == ']').to_string();
        if f.over.is_some() {
            return match name.as_str() {
                "ROW_NUMBER" | "RANK" | "DENSE_RANK" | "SUM" | "COUNT" | "MIN" | "MAX" | "AVG"
                | "LAG" | "LEAD" | "FIRST_VALUE" | "LAST_VALUE" => Ok(Expr::Function(f.clone())),
                _ => Err(SqlError::unsupported(format!("window function {name}"))),
            };
        }
        let a = fn_args(f)?;
        let argc = a.len();
        let need = |n: usize| -> Result<(), SqlError> {
            if argc == n {
                Ok(())
            } else {
                Err(SqlError::new(
                    174,
                    15,
                    format!(
                        "The {} function requires {n} argument(s).",
                        name.to_ascii_lowercase()
                    ),
                ))
            }
        };
        let same = |n: &str| -> Expr {
            let mut g = f.clone();
            g.name = ObjectName(vec![ObjectNamePart::Identifier(ident(n))]);
            Expr::Function(g)
        };
        Ok(match name.as_str() {
            "SUM" if matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment.is_none()) => {
                same("ss_sum")
            }
            "COUNT" | "SUM" | "MIN" | "MAX" | "AVG" | "COALESCE" | "UPPER" | "LOWER" | "LTRIM"
            | "RTRIM" | "TRIM" | "ABS" | "REPLACE" | "NULLIF" => same(&name),
            "COUNT_BIG" => same("COUNT"),
            "ROUND" => {
                if argc == 3 {
                    return Err(SqlError::unsupported("ROUND with a function argument"));
                }
                same("ROUND")
            }
            "FLOOR" => func("ss_floor", a),
            "CEILING" => func("ss_ceiling", a),
            "ISNULL" => {
                need(2)?;
                func("IFNULL", a)
            }
            "LEN" => {
                need(1)?;
                func("ss_len", a)
            }
            "SUBSTRING" => {
                need(3)?;
                func("substr", a)
            }
            "LEFT" => {
                need(2)?;
                let mut a = a;
                let n = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let s = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                func("substr", vec![s, number(1), n])
            }
            "RIGHT" => {
                need(2)?;
                func("ss_right", a)
            }
            "CHARINDEX" => {
                if argc != 2 {
                    return Err(SqlError::unsupported("CHARINDEX with a start position"));
                }
                let mut a = a;
                let hay = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let needle = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                func("instr", vec![hay, needle])
            }
            "CONCAT" => func("ss_concat", a),
            "GETDATE" | "CURRENT_TIMESTAMP" | "SYSDATETIME" => {
                need(0)?;
                func("ss_now", vec![])
            }
            "GETUTCDATE" | "SYSUTCDATETIME" => {
                need(0)?;
                func("ss_utcnow", vec![])
            }
            "DATEADD" => {
                need(3)?;
                let mut a = a;
                let d = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let n = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let unit = date_part(&a[0])?;
                func("ss_dateadd", vec![string(&unit), n, d])
            }
            "DATEDIFF" => {
                need(3)?;
                let mut a = a;
                let d2 = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let d1 = a.pop().unwrap_or(Expr::Value(Value::Null.into()));
                let unit = date_part(&a[0])?;
                func("ss_datediff", vec![string(&unit), d1, d2])
            }
            "YEAR" | "MONTH" | "DAY" => {
                need(1)?;
                let mut a = a;
                a.insert(0, string(&name.to_ascii_lowercase()));
                func("ss_datepart", a)
            }
            "DATEPART" => {
                need(2)?;
                let mut a = a;
                a[0] = string(&date_part(&a[0])?);
                func("ss_datepart", a)
            }
            "SCOPE_IDENTITY" => {
                need(0)?;
                func("ss_scope_identity", vec![])
            }
            "NEWID" => func("ss_newid", vec![]),
            "DB_NAME" => func("ss_db_name", vec![]),
            "DB_ID" => func("ss_db_id", a),
            "SERVERPROPERTY" => {
                need(1)?;
                func("ss_serverproperty", a)
            }
            "DATABASEPROPERTYEX" => {
                need(2)?;
                func("ss_databasepropertyex", a)
            }
            "OBJECT_ID" => func("ss_object_id", a),
            "SCHEMA_ID" => func("ss_schema_id", a),
            "SCHEMA_NAME" => func("ss_schema_name", a),
            "SUSER_SNAME" | "USER_NAME" | "SUSER_NAME" => func("ss_user_name", vec![]),
            "IIF" => {
                need(3)?;
                func("IIF", a)
            }
            other => return Err(SqlError::unsupported(format!("function {other}"))),
        })
    }
}

impl VisitorMut for Rewriter {
    type Break = SqlError;

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<SqlError> {
        if name.0.len() == 1 {
            let n = name.to_string();
            let bare = n.trim_matches(|c| c == '[' || c == ']');
            if self.ctes.contains(&bare.to_ascii_lowercase()) {
                return ControlFlow::Continue(());
            }
            if bare.starts_with('@') {
                let key = bare.to_ascii_uppercase();
                if !self.table_vars.contains(&key) {
                    return ControlFlow::Break(must_declare_table(bare));
                }
                *name = ObjectName(vec![
                    ObjectNamePart::Identifier(ident("temp")),
                    ObjectNamePart::Identifier(Ident::with_quote('"', key)),
                ]);
                return ControlFlow::Continue(());
            }
            return ControlFlow::Break(SqlError::invalid_object(bare));
        }
        match resolve_table(name) {
            Ok(t) => {
                self.tables.push(t);
                *name = ObjectName(vec![
                    ObjectNamePart::Identifier(ident(t.schema)),
                    ObjectNamePart::Identifier(Ident::with_quote('"', t.name)),
                ]);
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<SqlError> {
        match tf {
            TableFactor::Table {
                with_hints,
                alias,
                args,
                ..
            } => {
                if args.is_some() {
                    return ControlFlow::Break(SqlError::unsupported("table-valued function"));
                }
                for h in with_hints.iter() {
                    let h = h.to_string().to_ascii_uppercase();
                    let word = h.split_whitespace().next().unwrap_or("").to_string();
                    if !TABLE_HINTS.contains(&word.as_str()) {
                        return ControlFlow::Break(SqlError::unsupported(format!(
                            "table hint {h}"
                        )));
                    }
                }
                with_hints.clear();
                // `OPTION (RECOMPILE)` after a table parses as its alias:
                // a query hint, dropped.
                if alias
                    .as_ref()
                    .is_some_and(|a| a.name.value.eq_ignore_ascii_case("OPTION"))
                {
                    *alias = None;
                }
                if let Some(a) = alias
                    && !a.columns.is_empty()
                    && a.columns
                        .iter()
                        .all(|c| TABLE_HINTS.contains(&c.name.value.to_ascii_uppercase().as_str()))
                {
                    a.columns.clear();
                }
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => ControlFlow::Break(SqlError::unsupported(format!(
                "FROM source {}",
                other.to_string().split_whitespace().next().unwrap_or("")
            ))),
        }
    }

    fn pre_visit_select(&mut self, s: &mut sqlparser::ast::Select) -> ControlFlow<SqlError> {
        for twj in &s.from {
            for j in &twj.joins {
                match &j.join_operator {
                    JoinOperator::CrossApply | JoinOperator::OuterApply => {
                        return ControlFlow::Break(SqlError::unsupported("CROSS/OUTER APPLY"));
                    }
                    JoinOperator::FullOuter(_) => {}
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<SqlError> {
        // TOP (n) → LIMIT n
        let mut top_limit = None;
        if let SetExpr::Select(s) = q.body.as_mut()
            && let Some(top) = s.top.take()
        {
            if top.percent || top.with_ties {
                return ControlFlow::Break(SqlError::unsupported("TOP ... PERCENT/WITH TIES"));
            }
            top_limit = match top.quantity {
                Some(TopQuantity::Expr(e)) => Some(e),
                Some(TopQuantity::Constant(n)) => Some(number(n as i64)),
                None => None,
            };
        }
        // OFFSET n ROWS FETCH NEXT m ROWS ONLY → LIMIT m OFFSET n
        let fetch = q.fetch.take();
        if let Some(f) = &fetch
            && (f.percent || f.with_ties)
        {
            return ControlFlow::Break(SqlError::unsupported("FETCH ... PERCENT/WITH TIES"));
        }
        let (mut limit, mut offset) = (None, None);
        if let Some(lc) = q.limit_clause.take() {
            match lc {
                LimitClause::LimitOffset {
                    limit: l,
                    offset: o,
                    ..
                } => {
                    limit = l;
                    offset = o.map(|o| o.value);
                }
                other => {
                    return ControlFlow::Break(SqlError::unsupported(other.to_string()));
                }
            }
        }
        if let Some(f) = fetch {
            limit = f.quantity;
        }
        if limit.is_none() {
            limit = top_limit;
        }
        if limit.is_some() || offset.is_some() {
            q.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(limit.unwrap_or_else(|| number(-1))),
                offset: offset.take().map(|value| Offset {
                    value,
                    rows: OffsetRows::None,
                }),
                limit_by: vec![],
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<SqlError> {
        let replacement = match e {
            Expr::Identifier(i) if i.value.starts_with("@@") => {
                let name = i.value.to_ascii_uppercase();
                if name == "@@IDENTITY" {
                    *e = func("last_insert_rowid", vec![]);
                    return ControlFlow::Continue(());
                }
                if name == "@@ROWCOUNT" {
                    *e = func("changes", vec![]);
                    return ControlFlow::Continue(());
                }
                if infer::global_var_type(&name).is_none() {
                    return ControlFlow::Break(SqlError::unsupported(format!("variable {name}")));
                }
                Some(func("ss_global", vec![string(&name)]))
            }
            Expr::Identifier(i) if i.value.starts_with('@') => {
                i.value = i.value.to_ascii_uppercase();
                None
            }
            Expr::Value(v) => match &v.value {
                Value::NationalStringLiteral(s) => {
                    Some(Expr::Value(Value::SingleQuotedString(s.clone()).into()))
                }
                Value::DoubleQuotedString(s) => Some(Expr::Identifier(Ident::with_quote('"', s))),
                _ => None,
            },
            Expr::Function(f) => match self.rewrite_function(f) {
                Ok(x) => Some(x),
                Err(err) => return ControlFlow::Break(err),
            },
            Expr::Cast {
                expr, data_type, ..
            } => match convert_to((**expr).clone(), data_type) {
                Ok(x) => Some(x),
                Err(err) => return ControlFlow::Break(err),
            },
            Expr::Convert {
                expr,
                data_type: Some(dt),
                styles,
                ..
            } => {
                if !styles.is_empty() {
                    return ControlFlow::Break(SqlError::unsupported("CONVERT with a style"));
                }
                match convert_to((**expr).clone(), dt) {
                    Ok(x) => Some(x),
                    Err(err) => return ControlFlow::Break(err),
                }
            }
            Expr::Collate { expr, .. } => Some((**expr).clone()),
            Expr::BinaryOp { left, op, right }
                if *op == sqlparser::ast::BinaryOperator::Plus
                    && (is_string_expr(left) || is_string_expr(right)) =>
            {
                Some(Expr::BinaryOp {
                    left: left.clone(),
                    op: sqlparser::ast::BinaryOperator::StringConcat,
                    right: right.clone(),
                })
            }
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> String {
        match translate(sql, &ParamTypes::new()) {
            Ok(mut v) => match v.remove(0) {
                Stmt::Sql { sql, .. } => sql,
                other => format!("{other:?}"),
            },
            Err(e) => format!("ERR {}", e.number),
        }
    }

    #[test]
    fn rewrites_the_subset() {
        assert_eq!(
            one(
                "SELECT TOP (5) [Twr_Kod] FROM CDN.Towary WITH (NOLOCK) WHERE Twr_Kod = CAST(@P1 AS varchar(50))"
            ),
            "SELECT [Twr_Kod] FROM CDN.\"Towary\" WHERE Twr_Kod = substr(CAST(@P1 AS TEXT), 1, 50) LIMIT 5"
        );
        assert_eq!(
            one(
                "SELECT Twr_Kod FROM CDN.Towary ORDER BY Twr_Kod OFFSET 10 ROWS FETCH NEXT 5 ROWS ONLY"
            ),
            "SELECT Twr_Kod FROM CDN.\"Towary\" ORDER BY Twr_Kod LIMIT 5 OFFSET 10"
        );
        // A table without triggers takes OUTPUT without INTO.
        assert!(
            one("INSERT INTO CDN.TraVat (TrV_TrNID) OUTPUT INSERTED.TrV_TrVID VALUES (1)")
                .ends_with("RETURNING TrV_TrVID")
        );
    }

    #[test]
    fn refusals_and_table_variables() {
        // OUTPUT without INTO on a table with triggers: 334.
        assert_eq!(
            one("INSERT INTO CDN.Magazyny (Mag_Symbol) OUTPUT INSERTED.Mag_MagId VALUES ('X')"),
            "ERR 334"
        );
        assert_eq!(
            one(
                "UPDATE CDN.TraNag SET TrN_Bufor = 0 OUTPUT INSERTED.TrN_TrNID WHERE TrN_TrNID = 1"
            ),
            "ERR 334"
        );
        // A computed column written: 271.
        assert_eq!(
            one("INSERT INTO CDN.TraNag (TrN_NumerPelny) VALUES ('RO/1/2026')"),
            "ERR 271"
        );
        assert_eq!(one("UPDATE CDN.TraNag SET TrN_NumerPelny = 'x'"), "ERR 271");
        assert_eq!(one("UPDATE CDN.TraNag SET TrN_Nope = 1"), "ERR 207");
        // A table variable must be declared first (1087).
        assert_eq!(one("SELECT id FROM @ids"), "ERR 1087");
        let v = translate(
            "DECLARE @ids TABLE (id int); INSERT INTO CDN.TraNag (TrN_Bufor) OUTPUT INSERTED.TrN_TrNID INTO @ids (id) VALUES (1); SELECT id FROM @ids;",
            &ParamTypes::new(),
        )
        .unwrap();
        assert!(matches!(&v[0], Stmt::DeclareTable { name, .. } if name == "@IDS"));
        match &v[1] {
            Stmt::Sql {
                sql, output_into, ..
            } => {
                assert!(sql.ends_with("RETURNING TrN_TrNID"), "{sql}");
                let into = output_into.as_ref().unwrap();
                assert_eq!(into.table, "temp.\"@IDS\"");
                assert_eq!(into.columns, vec!["id".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        match &v[2] {
            Stmt::Sql { sql, .. } => assert_eq!(sql, "SELECT id FROM temp.\"@IDS\""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn query_hints_are_dropped() {
        assert_eq!(
            strip_query_hints(
                "SELECT 'OPTION (x)', [OPTION] FROM t ORDER BY a OPTION (RECOMPILE, MAXDOP 1);"
            ),
            "SELECT 'OPTION (x)', [OPTION] FROM t ORDER BY a  ;"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(one("SELECT * FROM CDN.Nope"), "ERR 208");
        assert_eq!(one("SELECT * FROM Towary"), "ERR 208");
        assert_eq!(one("SELEC 1"), "ERR 102");
        let e = translate(
            "MERGE CDN.Towary AS t USING CDN.Towary AS s ON 1=1 WHEN MATCHED THEN DELETE;",
            &ParamTypes::new(),
        )
        .unwrap_err();
        assert!(e.message.contains("MERGE"), "{}", e.message);
    }
}
