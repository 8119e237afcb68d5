//! `agent doctor --schema-report FILE`: for every table and column the agent
//! relies on, what the database has against what the agent expects (type,
//! NULL, default, computed, triggers), with a verdict per line, read from the
//! system catalogs only. An integrator runs it on a client's Optima and sends
//! the file back: it is the evidence the public schema lacks (which numeric
//! NOT NULL columns carry a DEFAULT, trigger names per version).
//!
//! What the agent expects is Optima's real schema for those tables
//! (`agent/schema/optima-tables.json`, taken from
//! `shared/reference/optima-real-schema.json`), compiled in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use tiberius::Query;

use crate::optima::cells::Cells;
use crate::sql::{SqlClient, SqlError};

/// Optima's real schema for the tables the agent reads and writes.
const EXPECTED: &str = include_str!("../schema/optima-tables.json");

#[derive(Debug, Deserialize)]
struct ExpectedTable {
    columns: Vec<ExpectedColumn>,
    #[serde(default)]
    triggers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ExpectedColumn {
    column: String,
    #[serde(rename = "type")]
    ty: String,
    nullable: bool,
    default: Option<String>,
    computed: Option<String>,
}

/// A column as the database has it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundColumn {
    pub ty: String,
    pub nullable: bool,
    pub default: Option<String>,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub table: String,
    pub item: String,
    pub expected: String,
    pub found: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Differs in a way the agent tolerates (a longer text, an extra default).
    Note,
    /// Differs in a way that can stop a read or a write.
    Problem,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Note => "NOTE",
            Verdict::Problem => "PROBLEM",
        }
    }
}

fn normalise_type(ty: &str) -> String {
    ty.to_ascii_lowercase().replace(' ', "")
}

fn describe(ty: &str, nullable: bool, default: Option<&str>) -> String {
    let mut text = format!(
        "{} {}",
        normalise_type(ty),
        if nullable { "NULL" } else { "NOT NULL" }
    );
    if let Some(d) = default {
        let _ = write!(text, " DEFAULT {d}");
    }
    text
}

/// Compares one table's expected columns with what the database has.
pub fn compare_table(
    table: &str,
    expected_columns: &[(String, String, bool, Option<String>, bool)],
    found: &BTreeMap<String, FoundColumn>,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for (name, ty, nullable, default, computed) in expected_columns {
        let expected = if *computed {
            format!("{} computed", normalise_type(ty))
        } else {
            describe(ty, *nullable, default.as_deref())
        };
        let Some(have) = found.get(&name.to_ascii_lowercase()) else {
            lines.push(Line {
                table: table.to_owned(),
                item: name.clone(),
                expected,
                found: "missing".into(),
                verdict: Verdict::Problem,
            });
            continue;
        };
        let found_text = describe(&have.ty, have.nullable, have.default.as_deref());
        let verdict = if *computed {
            Verdict::Ok
        } else if normalise_type(&have.ty) != normalise_type(ty) {
            Verdict::Problem
        } else if have.nullable != *nullable {
            // NULL where we expect NOT NULL is harmless for writes; NOT
            // NULL where we expect NULL may refuse a write that leaves it out.
            if have.nullable {
                Verdict::Note
            } else {
                Verdict::Problem
            }
        } else if default.is_none() && have.default.is_some() {
            // The evidence the public schema lacks: a (numeric) DEFAULT.
            Verdict::Note
        } else {
            Verdict::Ok
        };
        lines.push(Line {
            table: table.to_owned(),
            item: name.clone(),
            expected,
            found: found_text,
            verdict,
        });
    }
    for (name, have) in found {
        if !expected_columns
            .iter()
            .any(|(e, ..)| e.eq_ignore_ascii_case(name))
        {
            lines.push(Line {
                table: table.to_owned(),
                item: name.clone(),
                expected: "absent".into(),
                found: describe(&have.ty, have.nullable, have.default.as_deref()),
                // A column Optima added: harmless unless NOT NULL without a default.
                verdict: if !have.nullable && have.default.is_none() {
                    Verdict::Problem
                } else {
                    Verdict::Note
                },
            });
        }
    }
    lines
}

/// Reads the catalogs and writes the report as text (one tab-separated line
/// per column and trigger, then a summary).
pub async fn report(client: &mut SqlClient) -> Result<(String, usize), SqlError> {
    let expected: BTreeMap<String, ExpectedTable> = serde_json::from_str(EXPECTED)
        .map_err(|e| SqlError::Unexpected(format!("the agent's schema is unreadable: {e}")))?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for (full, table) in &expected {
        let name = full.trim_start_matches("CDN.");
        let mut query = Query::new(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, COLUMN_DEFAULT \
             FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'CDN' AND TABLE_NAME = @P1 ORDER BY ORDINAL_POSITION",
        );
        query.bind(name);
        let rows = query.query(client).await?.into_first_result().await?;
        let mut found = BTreeMap::new();
        for row in &rows {
            let cells = Cells::new(row, "INFORMATION_SCHEMA.COLUMNS");
            let data_type = cells.text_or_empty("DATA_TYPE")?.to_ascii_lowercase();
            let ty = match data_type.as_str() {
                "varchar" | "nvarchar" | "char" | "nchar" | "varbinary" | "binary" => {
                    match cells.int("CHARACTER_MAXIMUM_LENGTH")? {
                        Some(-1) => format!("{data_type}(max)"),
                        Some(n) => format!("{data_type}({n})"),
                        None => data_type.clone(),
                    }
                }
                "decimal" | "numeric" => format!(
                    "{data_type}({},{})",
                    cells.int("NUMERIC_PRECISION")?.unwrap_or(18),
                    cells.int("NUMERIC_SCALE")?.unwrap_or(0)
                ),
                _ => data_type.clone(),
            };
            found.insert(
                cells.text_or_empty("COLUMN_NAME")?.to_ascii_lowercase(),
                FoundColumn {
                    ty,
                    nullable: cells
                        .text_or_empty("IS_NULLABLE")?
                        .eq_ignore_ascii_case("YES"),
                    default: cells
                        .text("COLUMN_DEFAULT")
                        .ok()
                        .flatten()
                        .map(str::to_owned),
                },
            );
        }
        if found.is_empty() {
            lines.push(Line {
                table: full.clone(),
                item: "(table)".into(),
                expected: "present".into(),
                found: "missing or not readable by this login".into(),
                verdict: Verdict::Problem,
            });
            continue;
        }
        let columns: Vec<(String, String, bool, Option<String>, bool)> = table
            .columns
            .iter()
            .map(|c| {
                (
                    c.column.clone(),
                    c.ty.clone(),
                    c.nullable,
                    c.default.clone(),
                    c.computed.is_some(),
                )
            })
            .collect();
        lines.extend(compare_table(full, &columns, &found));
        // Triggers: names only (bodies are Optima's).
        let mut query = Query::new(
            "SELECT tr.name AS trigger_name, tr.is_disabled FROM sys.triggers tr JOIN sys.tables tb ON tb.object_id = tr.parent_id WHERE tb.name = @P1",
        );
        query.bind(name);
        match query.query(client).await {
            Ok(stream) => {
                let rows = stream.into_first_result().await?;
                let mut have = Vec::new();
                for row in &rows {
                    let cells = Cells::new(row, "sys.triggers");
                    have.push((
                        cells.text_or_empty("trigger_name")?,
                        cells.int("is_disabled")?.unwrap_or(0) != 0,
                    ));
                }
                for trigger in &table.triggers {
                    let found = have.iter().find(|(n, _)| n.eq_ignore_ascii_case(trigger));
                    lines.push(Line {
                        table: full.clone(),
                        item: format!("trigger {trigger}"),
                        expected: "enabled".into(),
                        found: match found {
                            Some((_, false)) => "enabled".into(),
                            Some((_, true)) => "disabled".into(),
                            None => "absent".into(),
                        },
                        verdict: if found.is_some() {
                            Verdict::Ok
                        } else {
                            Verdict::Note
                        },
                    });
                }
            }
            Err(err) => notes.push(format!("{full}: triggers not readable: {err}")),
        }
    }
    let problems = lines
        .iter()
        .filter(|l| l.verdict == Verdict::Problem)
        .count();
    let mut text = String::from("table\tcolumn or trigger\texpected\tfound\tverdict\n");
    for line in &lines {
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}",
            line.table,
            line.item,
            line.expected,
            line.found,
            line.verdict.as_str()
        );
    }
    for note in notes {
        let _ = writeln!(text, "# {note}");
    }
    let _ = writeln!(
        text,
        "# {} lines, {problems} problem(s), {} note(s)",
        lines.len(),
        lines.iter().filter(|l| l.verdict == Verdict::Note).count()
    );
    Ok((text, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: &str, nullable: bool, default: Option<&str>) -> FoundColumn {
        FoundColumn {
            ty: ty.into(),
            nullable,
            default: default.map(str::to_owned),
        }
    }

    #[test]
    fn each_difference_gets_its_verdict() {
        let expected = vec![
            ("A_Int".to_owned(), "int".to_owned(), false, None, false),
            (
                "A_Dec".to_owned(),
                "decimal(15, 2)".to_owned(),
                false,
                None,
                false,
            ),
            (
                "A_Txt".to_owned(),
                "nvarchar(50)".to_owned(),
                false,
                None,
                false,
            ),
            ("A_Gone".to_owned(), "int".to_owned(), true, None, false),
            (
                "A_Calc".to_owned(),
                "nvarchar(30)".to_owned(),
                true,
                None,
                true,
            ),
        ];
        let mut found = BTreeMap::new();
        found.insert("a_int".into(), col("int", false, None));
        found.insert("a_dec".into(), col("decimal(15,2)", false, Some("((0))")));
        found.insert("a_txt".into(), col("nvarchar(40)", false, None));
        found.insert("a_calc".into(), col("nvarchar(30)", true, None));
        found.insert("a_new".into(), col("int", false, None));
        let lines = compare_table("CDN.T", &expected, &found);
        let verdict = |item: &str| {
            lines
                .iter()
                .find(|l| l.item.eq_ignore_ascii_case(item))
                .map(|l| l.verdict)
        };
        assert_eq!(verdict("A_Int"), Some(Verdict::Ok));
        assert_eq!(
            verdict("A_Dec"),
            Some(Verdict::Note),
            "a DEFAULT the public schema lacks"
        );
        assert_eq!(verdict("A_Txt"), Some(Verdict::Problem), "another length");
        assert_eq!(verdict("A_Gone"), Some(Verdict::Problem), "missing");
        assert_eq!(verdict("A_Calc"), Some(Verdict::Ok));
        assert_eq!(
            verdict("a_new"),
            Some(Verdict::Problem),
            "new NOT NULL without default"
        );
    }

    #[test]
    fn the_compiled_in_schema_covers_every_table_the_doctor_checks() {
        let expected: BTreeMap<String, ExpectedTable> = serde_json::from_str(EXPECTED).unwrap();
        for table in crate::doctor::OPTIMA_TABLES {
            assert!(expected.contains_key(&format!("CDN.{table}")), "{table}");
        }
    }
}
