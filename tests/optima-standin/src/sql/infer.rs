//! Static typing of result columns: what SQL Server would put in COLMETADATA
//! for an expression, derived from the schema's declared column types and
//! SQL Server's rules for CAST, functions and decimal arithmetic.

use std::collections::HashMap;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr,
    UnaryOperator, Value,
};

use crate::schema;
use crate::types::SqlType;

/// A result column as the statement declares it: name and, when known
/// statically, its type and nullability.
#[derive(Debug, Clone)]
pub struct OutCol {
    pub name: String,
    pub ty: Option<SqlType>,
    pub nullable: bool,
}

/// Parameter name (upper case, with `@`) → declared type.
pub type ParamTypes = HashMap<String, SqlType>;

/// The output columns of a projection; `None` when it has a wildcard (the
/// executor then names columns as SQLite reports them).
pub fn projection(items: &[SelectItem], params: &ParamTypes) -> Option<Vec<OutCol>> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let (ty, nullable) = infer(e, params);
                out.push(OutCol {
                    name: expr_name(e),
                    ty,
                    nullable,
                });
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let (ty, nullable) = infer(expr, params);
                out.push(OutCol {
                    name: alias.value.clone(),
                    ty,
                    nullable,
                });
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The output columns of a query body (first SELECT of a set operation).
pub fn query_columns(body: &SetExpr, params: &ParamTypes) -> Option<Vec<OutCol>> {
    match body {
        SetExpr::Select(s) => projection(&s.projection, params),
        SetExpr::Query(q) => query_columns(&q.body, params),
        SetExpr::SetOperation { left, .. } => query_columns(left, params),
        _ => None,
    }
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(v) => v.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Nested(e) => expr_name(e),
        _ => String::new(),
    }
}

fn args(f: &sqlparser::ast::Function) -> Vec<&Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn as_decimal(t: SqlType) -> Option<(u8, u8)> {
    match t {
        SqlType::Decimal(p, s) => Some((p, s)),
        SqlType::TinyInt => Some((3, 0)),
        SqlType::SmallInt => Some((5, 0)),
        SqlType::Int => Some((10, 0)),
        SqlType::BigInt => Some((19, 0)),
        SqlType::Bit => Some((1, 0)),
        _ => None,
    }
}

fn int_rank(t: SqlType) -> Option<u8> {
    match t {
        SqlType::Bit => Some(0),
        SqlType::TinyInt => Some(1),
        SqlType::SmallInt => Some(2),
        SqlType::Int => Some(3),
        SqlType::BigInt => Some(4),
        _ => None,
    }
}

fn cap(p: i32, s: i32) -> SqlType {
    // SQL Server caps precision at 38, keeping at least 6 digits of scale.
    if p > 38 {
        let s = (s - (p - 38)).max(s.min(6));
        SqlType::Decimal(38, s.clamp(0, 38) as u8)
    } else {
        SqlType::Decimal(p.max(1) as u8, s.clamp(0, p.max(1)) as u8)
    }
}

/// Infers (type, nullable) of an expression; `None` type when unknown.
pub fn infer(e: &Expr, params: &ParamTypes) -> (Option<SqlType>, bool) {
    match e {
        Expr::Identifier(i) => {
            if i.value.starts_with("@@") {
                return (global_var_type(&i.value), false);
            }
            if i.value.starts_with('@') {
                return (params.get(&i.value.to_ascii_uppercase()).copied(), true);
            }
            column(&i.value)
        }
        Expr::CompoundIdentifier(v) => match v.last() {
            Some(i) => column(&i.value),
            None => (None, true),
        },
        Expr::Nested(e) => infer(e, params),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                if n.contains('.') {
                    let digits = n.chars().filter(|c| c.is_ascii_digit()).count() as u8;
                    let scale = n.split('.').nth(1).map(|s| s.len()).unwrap_or(0) as u8;
                    (Some(SqlType::Decimal(digits.max(1), scale)), false)
                } else if n.parse::<i32>().is_ok() {
                    (Some(SqlType::Int), false)
                } else {
                    (Some(SqlType::Decimal(n.len().clamp(1, 38) as u8, 0)), false)
                }
            }
            Value::SingleQuotedString(s) => (
                Some(SqlType::VarChar(Some(s.chars().count().max(1) as u16))),
                false,
            ),
            Value::NationalStringLiteral(s) => (
                Some(SqlType::NVarChar(Some(s.chars().count().max(1) as u16))),
                false,
            ),
            Value::Null => (Some(SqlType::Int), true),
            Value::Boolean(_) => (Some(SqlType::Bit), false),
            _ => (None, true),
        },
        Expr::Cast {
            data_type, expr, ..
        } => (
            SqlType::parse(&data_type.to_string()).or_else(|| custom_type(data_type)),
            infer(expr, params).1,
        ),
        Expr::Convert {
            data_type: Some(dt),
            expr,
            ..
        } => (SqlType::parse(&dt.to_string()), infer(expr, params).1),
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => infer(expr, params),
        Expr::BinaryOp { left, op, right } => {
            let (l, ln) = infer(left, params);
            let (r, rn) = infer(right, params);
            let nullable = ln || rn;
            let (Some(l), Some(r)) = (l, r) else {
                return (None, true);
            };
            if l.is_string() || r.is_string() {
                let n = |t: SqlType| t.max_chars().map(|n| n as u32);
                let len = match (n(l), n(r)) {
                    (Some(a), Some(b)) if a + b <= 4000 => Some((a + b) as u16),
                    _ => None,
                };
                let nv = matches!(l, SqlType::NVarChar(_)) || matches!(r, SqlType::NVarChar(_));
                return (
                    Some(if nv {
                        SqlType::NVarChar(len)
                    } else {
                        SqlType::VarChar(len.or(Some(8000)))
                    }),
                    nullable,
                );
            }
            if let (Some(a), Some(b)) = (int_rank(l), int_rank(r)) {
                let t = if a.max(b) == 4 {
                    SqlType::BigInt
                } else {
                    SqlType::Int
                };
                return (Some(t), nullable);
            }
            if matches!(l, SqlType::Float) || matches!(r, SqlType::Float) {
                return (Some(SqlType::Float), nullable);
            }
            let (Some((p1, s1)), Some((p2, s2))) = (as_decimal(l), as_decimal(r)) else {
                return (None, nullable);
            };
            let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
            let t = match op {
                BinaryOperator::Plus | BinaryOperator::Minus => {
                    let s = s1.max(s2);
                    cap(s + (p1 - s1).max(p2 - s2) + 1, s)
                }
                BinaryOperator::Multiply => cap(p1 + p2 + 1, s1 + s2),
                BinaryOperator::Divide => {
                    let s = 6.max(s1 + p2 + 1);
                    cap(p1 - s1 + s2 + s, s)
                }
                BinaryOperator::Modulo => {
                    let s = s1.max(s2);
                    cap((p1 - s1).min(p2 - s2) + s, s)
                }
                _ => return (None, nullable),
            };
            (Some(t), nullable)
        }
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            let first = conditions.first().map(|c| infer(&c.result, params));
            match first {
                Some((t, _)) => (t, true),
                None => else_result
                    .as_ref()
                    .map(|e| infer(e, params))
                    .unwrap_or((None, true)),
            }
        }
        Expr::Subquery(q) => (
            query_columns(&q.body, params).and_then(|c| c.first().and_then(|c| c.ty)),
            true,
        ),
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_uppercase();
            let a = args(f);
            let arg = |i: usize| a.get(i).map(|e| infer(e, params)).unwrap_or((None, true));
            match name.as_str() {
                "COUNT" => (Some(SqlType::Int), false),
                "COUNT_BIG" | "ROW_NUMBER" | "RANK" | "DENSE_RANK" => {
                    (Some(SqlType::BigInt), false)
                }
                "SUM" => match arg(0).0 {
                    Some(SqlType::Decimal(_, s)) => (Some(SqlType::Decimal(38, s)), true),
                    Some(SqlType::BigInt) => (Some(SqlType::BigInt), true),
                    Some(t) if int_rank(t).is_some() => (Some(SqlType::Int), true),
                    t => (t, true),
                },
                "AVG" => match arg(0).0 {
                    Some(SqlType::Decimal(_, s)) => (Some(SqlType::Decimal(38, s.max(6))), true),
                    t => (t, true),
                },
                "MIN" | "MAX" => (arg(0).0, true),
                "ISNULL" => {
                    let (t, n1) = arg(0);
                    let (t2, n2) = arg(1);
                    (t.or(t2), n1 && n2)
                }
                "COALESCE" => {
                    let mut nullable = true;
                    let mut ty = None;
                    for e in &a {
                        let (t, n) = infer(e, params);
                        ty = ty.or(t);
                        nullable &= n;
                    }
                    (ty, nullable)
                }
                "UPPER" | "LOWER" | "LTRIM" | "RTRIM" | "TRIM" | "SUBSTRING" | "LEFT" | "RIGHT"
                | "REPLACE" => (arg(0).0, arg(0).1),
                "ABS" | "ROUND" | "FLOOR" | "CEILING" => (arg(0).0, arg(0).1),
                "LEN" | "CHARINDEX" | "DATEDIFF" | "YEAR" | "MONTH" | "DAY" | "DATEPART" => {
                    (Some(SqlType::Int), true)
                }
                "CONCAT" => (Some(SqlType::NVarChar(Some(4000))), false),
                "GETDATE" | "GETUTCDATE" | "CURRENT_TIMESTAMP" => (Some(SqlType::DateTime), false),
                "SYSDATETIME" | "SYSUTCDATETIME" => (Some(SqlType::DateTime2(7)), false),
                "DATEADD" => match a.get(2).map(|e| infer(e, params).0) {
                    Some(Some(t @ (SqlType::DateTime | SqlType::DateTime2(_) | SqlType::Date))) => {
                        (Some(t), true)
                    }
                    _ => (Some(SqlType::DateTime), true),
                },
                "SCOPE_IDENTITY" | "IDENT_CURRENT" => (Some(SqlType::Decimal(38, 0)), true),
                "NEWID" => (Some(SqlType::UniqueIdentifier), false),
                "DB_NAME" | "SCHEMA_NAME" | "OBJECT_NAME" | "SUSER_SNAME" | "USER_NAME" => {
                    (Some(SqlType::NVarChar(Some(128))), true)
                }
                "SERVERPROPERTY" | "DATABASEPROPERTYEX" => (Some(SqlType::Variant), true),
                "OBJECT_ID" | "DB_ID" | "SCHEMA_ID" | "@@SPID" => (Some(SqlType::Int), true),
                _ => (None, true),
            }
        }
        Expr::IsNull(_) | Expr::IsNotNull(_) => (Some(SqlType::Bit), false),
        _ => (None, true),
    }
}

fn custom_type(dt: &sqlparser::ast::DataType) -> Option<SqlType> {
    let s = dt.to_string().to_ascii_lowercase();
    if s == "uuid" {
        Some(SqlType::UniqueIdentifier)
    } else {
        None
    }
}

fn column(name: &str) -> (Option<SqlType>, bool) {
    match schema::find_column(name) {
        Some((_, c)) => (Some(c.ty), c.nullable),
        None => (None, true),
    }
}

/// Types of `@@` variables.
pub fn global_var_type(name: &str) -> Option<SqlType> {
    Some(match name.to_ascii_uppercase().as_str() {
        "@@VERSION" => SqlType::NVarChar(Some(300)),
        "@@SERVERNAME" | "@@SERVICENAME" | "@@LANGUAGE" => SqlType::NVarChar(Some(128)),
        "@@SPID" | "@@TRANCOUNT" | "@@ROWCOUNT" | "@@ERROR" | "@@LOCK_TIMEOUT" => SqlType::Int,
        "@@IDENTITY" => SqlType::Decimal(38, 0),
        "@@MAX_PRECISION" | "@@OPTIONS" => SqlType::Int,
        _ => return None,
    })
}
