//! One INSERT into an Optima table, built column by column.
//!
//! Optima's tables have many NOT NULL columns without a default, so an INSERT
//! must name every one of them (SQL Server error 515 otherwise); the writer
//! sets the columns that carry meaning and names the rest in groups ("zero",
//! "empty") so that each value has a stated source. The new row's id comes
//! back through `OUTPUT … INTO` a table variable: the tables the agent writes
//! have triggers, and SQL Server refuses `OUTPUT` without `INTO` on those
//! (error 334).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use tiberius::Query;

/// A column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Text(String),
    Decimal(Decimal),
    DateTime(NaiveDateTime),
    Null,
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Decimal> for Value {
    fn from(v: Decimal) -> Self {
        Value::Decimal(v)
    }
}
impl From<NaiveDateTime> for Value {
    fn from(v: NaiveDateTime) -> Self {
        Value::DateTime(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// An INSERT of one row into `table`.
#[derive(Debug, Clone)]
pub struct Insert {
    table: &'static str,
    columns: Vec<(&'static str, Value)>,
}

impl Insert {
    pub fn into(table: &'static str) -> Self {
        Insert {
            table,
            columns: Vec::new(),
        }
    }

    /// Sets a column (a later set of the same column replaces the value).
    pub fn set(&mut self, column: &'static str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self
            .columns
            .iter_mut()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
        {
            Some(slot) => slot.1 = value,
            None => self.columns.push((column, value)),
        }
        self
    }

    /// Columns whose value is 0 (flags off, amounts of features not used).
    pub fn zero(&mut self, columns: &[&'static str]) -> &mut Self {
        for c in columns {
            self.set(c, 0i64);
        }
        self
    }

    /// Text columns that stay empty (`''`, Optima's value for an unused text).
    pub fn empty(&mut self, columns: &[&'static str]) -> &mut Self {
        for c in columns {
            self.set(c, "");
        }
        self
    }

    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The columns named, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(c, _)| *c)
    }

    pub fn value(&self, column: &str) -> Option<&Value> {
        self.columns
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
            .map(|(_, v)| v)
    }

    /// The statement and its parameters. With `returning`, the batch also
    /// declares `@ids`, routes `INSERTED.<returning>` into it and selects it
    /// back as `id`.
    pub fn query(&self, returning: Option<&str>) -> Query<'static> {
        let names: Vec<&str> = self.columns.iter().map(|(c, _)| *c).collect();
        let mut values = Vec::with_capacity(self.columns.len());
        let mut params = 0;
        for (_, v) in &self.columns {
            match v {
                // Constants go inline: fewer parameters, and NULL/0 need no type.
                Value::Null => values.push("NULL".to_owned()),
                Value::Int(i) => values.push(i.to_string()),
                _ => {
                    params += 1;
                    values.push(format!("@P{params}"));
                }
            }
        }
        let insert = format!(
            "INSERT INTO {} ({}){} VALUES ({})",
            self.table,
            names.join(", "),
            returning
                .map(|c| format!(" OUTPUT INSERTED.{c} INTO @ids (id)"))
                .unwrap_or_default(),
            values.join(", ")
        );
        let sql = match returning {
            Some(_) => format!("DECLARE @ids TABLE (id int); {insert}; SELECT id FROM @ids;"),
            None => insert,
        };
        let mut query = Query::new(sql);
        for (_, v) in &self.columns {
            match v {
                Value::Text(s) => query.bind(s.clone()),
                Value::Decimal(d) => query.bind(*d),
                Value::DateTime(t) => query.bind(*t),
                Value::Int(_) | Value::Null => {}
            }
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_go_inline_and_the_id_comes_back_through_a_table_variable() {
        let mut insert = Insert::into("CDN.TraVat");
        insert
            .set("TrV_TrNID", 7)
            .set("TrV_Netto", Decimal::new(1000, 2))
            .empty(&["TrV_X"])
            .set("TrV_Y", Option::<i32>::None);
        let sql = format!("{:?}", insert.query(Some("TrV_TrVID")));
        assert!(sql.contains("DECLARE @ids TABLE (id int); INSERT INTO CDN.TraVat (TrV_TrNID, TrV_Netto, TrV_X, TrV_Y) OUTPUT INSERTED.TrV_TrVID INTO @ids (id) VALUES (7, @P1, @P2, NULL); SELECT id FROM @ids;"), "{sql}");
        insert.set("TrV_TrNID", 8);
        assert_eq!(insert.value("trv_trnid"), Some(&Value::Int(8)));
        assert_eq!(insert.column_names().count(), 4);
    }
}
