//! Reading Optima's rows without a panic. tiberius's `Row::get` panics when a
//! column's SQL type is not the one asked for (`get::<i16>` on a tinyint), and
//! Optima's widths differ from what a reader may assume (`TwC_Typ` is tinyint,
//! `TrN_Anulowany` int). So every value is read from the type the server
//! reports: integers of any width widen to `i64`, and a missing column or a
//! value of another kind is an error that names table and column.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use tiberius::{ColumnData, FromSql, Row};

use crate::sql::SqlError;

/// One row of `table` (the name is only for error messages).
pub struct Cells<'a> {
    row: &'a Row,
    table: &'static str,
}

fn decode_error(table: &str, column: &str, problem: impl std::fmt::Display) -> SqlError {
    SqlError::Unexpected(format!(
        "cannot read {table}.{column}: {problem} (the database differs from the Optima schema the agent knows; `agent doctor --schema-report` tells how)"
    ))
}

impl<'a> Cells<'a> {
    pub fn new(row: &'a Row, table: &'static str) -> Self {
        Cells { row, table }
    }

    fn data(&self, column: &str) -> Result<&'a ColumnData<'static>, SqlError> {
        self.row
            .get_column_data(column)
            .map_err(|e| decode_error(self.table, column, e))
    }

    fn error(&self, column: &str, problem: impl std::fmt::Display) -> SqlError {
        decode_error(self.table, column, problem)
    }

    /// An integer column of any width (tinyint, smallint, int, bigint, bit).
    pub fn int(&self, column: &str) -> Result<Option<i64>, SqlError> {
        Ok(match self.data(column)? {
            ColumnData::U8(v) => v.map(i64::from),
            ColumnData::I16(v) => v.map(i64::from),
            ColumnData::I32(v) => v.map(i64::from),
            ColumnData::I64(v) => *v,
            ColumnData::Bit(v) => v.map(i64::from),
            other => {
                return Err(self.error(
                    column,
                    format!("expected an integer, found {}", kind(other)),
                ));
            }
        })
    }

    /// An integer that must be present.
    pub fn int_required(&self, column: &str) -> Result<i64, SqlError> {
        self.int(column)?
            .ok_or_else(|| self.error(column, "is NULL"))
    }

    /// An id column (int in Optima), as `i32` for binding back.
    pub fn id(&self, column: &str) -> Result<Option<i32>, SqlError> {
        self.int(column)?
            .map(|v| {
                i32::try_from(v).map_err(|_| self.error(column, format!("{v} is not an int id")))
            })
            .transpose()
    }

    pub fn id_required(&self, column: &str) -> Result<i32, SqlError> {
        self.id(column)?
            .ok_or_else(|| self.error(column, "is NULL"))
    }

    /// A text column (char, varchar, nchar, nvarchar, text).
    pub fn text(&self, column: &str) -> Result<Option<&'a str>, SqlError> {
        match self.data(column)? {
            ColumnData::String(v) => Ok(v.as_deref()),
            other => Err(self.error(column, format!("expected text, found {}", kind(other)))),
        }
    }

    /// A text column where NULL reads as empty, trimmed.
    pub fn text_or_empty(&self, column: &str) -> Result<String, SqlError> {
        Ok(self.text(column)?.unwrap_or_default().trim().to_owned())
    }

    /// A decimal, numeric or money column (integers widen).
    pub fn decimal(&self, column: &str) -> Result<Option<Decimal>, SqlError> {
        let data = self.data(column)?;
        match data {
            ColumnData::Numeric(_) => Decimal::from_sql(data).map_err(|e| self.error(column, e)),
            _ => match self.int(column) {
                Ok(v) => Ok(v.map(Decimal::from)),
                Err(_) => {
                    Err(self.error(column, format!("expected a decimal, found {}", kind(data))))
                }
            },
        }
    }

    /// A datetime, smalldatetime, datetime2 or date column.
    pub fn datetime(&self, column: &str) -> Result<Option<NaiveDateTime>, SqlError> {
        let data = self.data(column)?;
        match data {
            ColumnData::DateTime(_) | ColumnData::SmallDateTime(_) | ColumnData::DateTime2(_) => {
                NaiveDateTime::from_sql(data).map_err(|e| self.error(column, e))
            }
            ColumnData::Date(_) => Ok(chrono::NaiveDate::from_sql(data)
                .map_err(|e| self.error(column, e))?
                .map(|d| d.and_time(chrono::NaiveTime::MIN))),
            other => Err(self.error(column, format!("expected a date, found {}", kind(other)))),
        }
    }
}

/// The SQL kind of a value, for error messages.
fn kind(data: &ColumnData<'_>) -> &'static str {
    match data {
        ColumnData::U8(_) => "tinyint",
        ColumnData::I16(_) => "smallint",
        ColumnData::I32(_) => "int",
        ColumnData::I64(_) => "bigint",
        ColumnData::F32(_) => "real",
        ColumnData::F64(_) => "float",
        ColumnData::Bit(_) => "bit",
        ColumnData::String(_) => "text",
        ColumnData::Guid(_) => "uniqueidentifier",
        ColumnData::Binary(_) => "binary",
        ColumnData::Numeric(_) => "decimal",
        ColumnData::Xml(_) => "xml",
        ColumnData::DateTime(_) => "datetime",
        ColumnData::SmallDateTime(_) => "smalldatetime",
        ColumnData::Time(_) => "time",
        ColumnData::Date(_) => "date",
        ColumnData::DateTime2(_) => "datetime2",
        ColumnData::DateTimeOffset(_) => "datetimeoffset",
    }
}
