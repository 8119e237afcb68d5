//! Optima's tables as the stand-in holds them: every column with its SQL
//! Server type, nullability, identity and default; keys, unique constraints
//! and indexes; foreign keys; and the `*_TS_Mod` maintenance. One definition
//! produces the SQLite DDL, the T-SQL DDL (`sql/schema.sql`), the
//! COLMETADATA of result sets, and the catalog views (`sys.*`,
//! `INFORMATION_SCHEMA.*`).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::types::SqlType;

/// The database name the stand-in serves (an Optima company database).
pub const DATABASE_NAME: &str = "CDN_Firma";
/// SQL Server 2019's compatibility level.
pub const COMPATIBILITY_LEVEL: i64 = 150;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// `Some("now")` = the current local time, else a literal.
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKind {
    /// PRIMARY KEY constraint: a duplicate is error 2627.
    PrimaryKey,
    /// UNIQUE constraint: error 2627.
    Constraint,
    /// UNIQUE index: error 2601.
    Index,
}

#[derive(Debug, Clone)]
pub struct Unique {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub kind: UniqueKind,
    /// A filtered index `WHERE col IS NOT NULL` (several NULLs allowed).
    pub not_null_filter: bool,
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub name: &'static str,
    pub column: &'static str,
    pub ref_table: &'static str,
    pub ref_column: &'static str,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub schema: &'static str,
    pub name: &'static str,
    pub columns: Vec<Column>,
    pub uniques: Vec<Unique>,
    pub indexes: Vec<(&'static str, Vec<&'static str>)>,
    pub foreign_keys: Vec<ForeignKey>,
    /// (timestamp column, key column) kept current on UPDATE by a trigger.
    pub ts_mod: Option<(&'static str, &'static str)>,
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
}

/// Builds a table from compact column specs: `"name type [null] [identity] [default X]"`.
struct B(Table);

fn table(schema: &'static str, name: &'static str, cols: &[&'static str]) -> B {
    let columns = cols
        .iter()
        .map(|spec| {
            let mut parts = spec.split_whitespace();
            let name = parts.next().unwrap_or_default();
            let ty_text = parts.next().unwrap_or_default();
            let rest: Vec<&'static str> = parts.collect();
            let ty = SqlType::parse(ty_text).unwrap_or(SqlType::NVarChar(None));
            let default = rest
                .iter()
                .position(|p| *p == "default")
                .and_then(|i| rest.get(i + 1).copied());
            Column {
                name,
                ty,
                nullable: rest.contains(&"null"),
                identity: rest.contains(&"identity"),
                default,
            }
        })
        .collect();
    B(Table {
        schema,
        name,
        columns,
        uniques: Vec::new(),
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
        ts_mod: None,
        system: schema != "CDN",
        object_id: 0,
    })
}

impl B {
    fn pk(mut self, name: &'static str, cols: &[&'static str]) -> Self {
        self.0.uniques.push(Unique {
            name,
            columns: cols.to_vec(),
            kind: UniqueKind::PrimaryKey,
            not_null_filter: false,
        });
        self
    }
    fn unique(mut self, name: &'static str, kind: UniqueKind, cols: &[&'static str]) -> Self {
        self.0.uniques.push(Unique {
            name,
            columns: cols.to_vec(),
            kind,
            not_null_filter: false,
        });
        self
    }
    fn unique_not_null(mut self, name: &'static str, col: &'static str) -> Self {
        self.0.uniques.push(Unique {
            name,
            columns: vec![col],
            kind: UniqueKind::Index,
            not_null_filter: true,
        });
        self
    }
    fn index(mut self, name: &'static str, cols: &[&'static str]) -> Self {
        self.0.indexes.push((name, cols.to_vec()));
        self
    }
    fn fk(
        mut self,
        name: &'static str,
        column: &'static str,
        ref_table: &'static str,
        ref_column: &'static str,
    ) -> Self {
        self.0.foreign_keys.push(ForeignKey {
            name,
            column,
            ref_table,
            ref_column,
        });
        self
    }
    fn ts_mod(mut self, ts: &'static str, key: &'static str) -> Self {
        self.0.ts_mod = Some((ts, key));
        self
    }
}

fn build() -> Vec<Table> {
    use UniqueKind::*;
    let mut v = vec![
        table(
            "CDN",
            "TwrGrupy",
            &[
                "TwG_TwGID int identity",
                "TwG_GIDTyp smallint",
                "TwG_GIDNumer int",
                "TwG_GrONumer int",
                "TwG_Kod varchar(50)",
                "TwG_Nazwa nvarchar(255) null",
            ],
        )
        .pk("PK_TwrGrupy", &["TwG_TwGID"])
        .unique(
            "TwGGIDTyp",
            Index,
            &["TwG_GIDTyp", "TwG_GIDNumer", "TwG_GrONumer"],
        ),
        table(
            "CDN",
            "DefCeny",
            &[
                "DfC_DfCId int identity",
                "DfC_Lp smallint",
                "DfC_Typ smallint",
                "DfC_Nazwa nvarchar(35)",
                "DfC_Nieaktywna tinyint default 0",
            ],
        )
        .pk("PK_DefCeny", &["DfC_DfCId"])
        .unique("DfCNazwa", Index, &["DfC_Nazwa"]),
        table(
            "CDN",
            "Magazyny",
            &[
                "Mag_MagId int identity",
                "Mag_Symbol varchar(20)",
                "Mag_Nazwa nvarchar(50)",
                "Mag_Typ tinyint default 1",
                "Mag_NieAktywny tinyint default 0",
                "Mag_TS_Mod datetime default now",
            ],
        )
        .pk("PK_Magazyny", &["Mag_MagId"])
        .unique("MagSymbol", Index, &["Mag_Symbol"])
        .ts_mod("Mag_TS_Mod", "Mag_MagId"),
        table(
            "CDN",
            "Towary",
            &[
                "Twr_TwrId int identity",
                "Twr_Kod varchar(50)",
                "Twr_Nazwa nvarchar(255)",
                "Twr_NumerKat varchar(40) null",
                "Twr_EAN varchar(40) null",
                "Twr_Opis nvarchar(max) null",
                "Twr_JM nvarchar(20)",
                "Twr_TwGGIDNumer int default 0",
                "Twr_TwCNumer int default 2",
                "Twr_Stawka decimal(5,2)",
                "Twr_Flaga smallint default 2",
                "Twr_Typ smallint default 1",
                "Twr_NieAktywny tinyint default 0",
                "Twr_TS_Zal datetime default now",
                "Twr_TS_Mod datetime default now",
            ],
        )
        .pk("PK_Towary", &["Twr_TwrId"])
        .unique("TwrKod", Index, &["Twr_Kod"])
        .index("TwrEANIdx", &["Twr_EAN"])
        .index("TwrTSMod", &["Twr_TS_Mod"])
        .ts_mod("Twr_TS_Mod", "Twr_TwrId"),
        table(
            "CDN",
            "TwrJMZ",
            &[
                "TwJZ_TwJZId int identity",
                "TwJZ_TwrID int",
                "TwJZ_JM nvarchar(20)",
                "TwJZ_JMPrzelicznikL decimal(15,2)",
                "TwJZ_JMPrzelicznikM decimal(7,0)",
            ],
        )
        .pk("PK_TwrJMZ", &["TwJZ_TwJZId"])
        .unique("TwJZTwrJM", Index, &["TwJZ_TwrID", "TwJZ_JM"])
        .fk("FK_TwJZ_Towary", "TwJZ_TwrID", "Towary", "Twr_TwrId"),
        table(
            "CDN",
            "TwrEan",
            &[
                "TwE_TwEID int identity",
                "TwE_TwrID int",
                "TwE_EAN varchar(40)",
            ],
        )
        .pk("PK_TwrEan", &["TwE_TwEID"])
        .index("TwEEAN", &["TwE_EAN"])
        .fk("FK_TwE_Towary", "TwE_TwrID", "Towary", "Twr_TwrId"),
        table(
            "CDN",
            "TwrCeny",
            &[
                "TwC_TwCID int identity",
                "TwC_TwrID int",
                "TwC_TwCNumer int",
                "TwC_Typ smallint",
                "TwC_Wartosc decimal(17,4)",
                "TwC_Zaokraglenie decimal(7,4) default 0.01",
                "TwC_Waluta varchar(3) default PLN",
            ],
        )
        .pk("PK_TwrCeny", &["TwC_TwCID"])
        .unique(
            "UQ_TwrCeny_TwrNumer",
            Constraint,
            &["TwC_TwrID", "TwC_TwCNumer"],
        )
        .fk("FK_TwC_Towary", "TwC_TwrID", "Towary", "Twr_TwrId")
        .fk("FK_TwC_DefCeny", "TwC_TwCNumer", "DefCeny", "DfC_DfCId"),
        table(
            "CDN",
            "TwrIlosci",
            &[
                "TwI_TwIId int identity",
                "TwI_TwrId int",
                "TwI_MagId int null",
                "TwI_Data datetime",
                "TwI_Ilosc decimal(15,4)",
                "TwI_Rezerwacje decimal(15,4) default 0",
                "TwI_Zamowienia decimal(15,4) default 0",
                "TwI_Wartosc decimal(15,2) default 0",
            ],
        )
        .pk("PK_TwrIlosci", &["TwI_TwIId"])
        .unique(
            "TwITwrMagData",
            Index,
            &["TwI_TwrId", "TwI_MagId", "TwI_Data"],
        )
        .fk("FK_TwI_Towary", "TwI_TwrId", "Towary", "Twr_TwrId")
        .fk("FK_TwI_Magazyny", "TwI_MagId", "Magazyny", "Mag_MagId"),
        table(
            "CDN",
            "TwrZasoby",
            &[
                "TwZ_TwZId int identity",
                "TwZ_TwrId int",
                "TwZ_MagId int",
                "TwZ_TrNId int null",
                "TwZ_Data datetime",
                "TwZ_Ilosc decimal(15,4)",
                "TwZ_Cena decimal(17,4)",
            ],
        )
        .pk("PK_TwrZasoby", &["TwZ_TwZId"])
        .index("TwZTwrMag", &["TwZ_TwrId", "TwZ_MagId"])
        .fk("FK_TwZ_Towary", "TwZ_TwrId", "Towary", "Twr_TwrId"),
        table(
            "CDN",
            "Kontrahenci",
            &[
                "Knt_KntId int identity",
                "Knt_Kod varchar(20)",
                "Knt_Nazwa1 nvarchar(50)",
                "Knt_Nazwa2 nvarchar(50) null",
                "Knt_Ulica nvarchar(40) null",
                "Knt_NrDomu nvarchar(10) null",
                "Knt_NrLokalu nvarchar(10) null",
                "Knt_Miasto nvarchar(40) null",
                "Knt_KodPocztowy varchar(10) null",
                "Knt_Kraj nvarchar(40) null",
                "Knt_NipKraj varchar(2) null",
                "Knt_Nip nvarchar(20) null",
                "Knt_Email nvarchar(127) null",
                "Knt_Telefon1 nvarchar(20) null",
                "Knt_Ceny smallint default 2",
                "Knt_Export smallint default 0",
                "Knt_ImportRowId varchar(36) null",
                "Knt_NieAktywny tinyint default 0",
                "Knt_TS_Zal datetime default now",
                "Knt_TS_Mod datetime default now",
            ],
        )
        .pk("PK_Kontrahenci", &["Knt_KntId"])
        .unique("KntKod", Index, &["Knt_Kod"])
        .unique_not_null("KntImportRowId", "Knt_ImportRowId")
        .index("KntTSMod", &["Knt_TS_Mod"])
        .ts_mod("Knt_TS_Mod", "Knt_KntId"),
        table(
            "CDN",
            "DokDefinicje",
            &[
                "DDf_DDfID int identity",
                "DDf_Symbol varchar(5)",
                "DDf_Klasa int",
                "DDf_Nazwa nvarchar(50)",
                "DDf_Numeracja nvarchar(50)",
                "DDf_Nieaktywna tinyint default 0",
            ],
        )
        .pk("PK_DokDefinicje", &["DDf_DDfID"])
        .unique("DDfSymbol", Index, &["DDf_Symbol"]),
        table(
            "CDN",
            "TraNag",
            &[
                "TrN_TrNID int identity",
                "TrN_DDfId int",
                "TrN_TypDokumentu int",
                "TrN_Rodzaj int",
                "TrN_NumerNr int",
                "TrN_NumerPelny nvarchar(30)",
                "TrN_NumerObcy varchar(256) null",
                "TrN_DataDok datetime",
                "TrN_DataWys datetime null",
                "TrN_Bufor smallint default 0",
                "TrN_Anulowany smallint default 0",
                "TrN_PodID int null",
                "TrN_MagZrdId int",
                "TrN_RazemNetto decimal(15,2) default 0",
                "TrN_RazemVAT decimal(15,2) default 0",
                "TrN_RazemBrutto decimal(15,2) default 0",
                "TrN_ImportRowId varchar(36) null",
                "TrN_eSklepZrodlo smallint default 0",
                "TrN_ZwroconoCalaIlosc smallint default 0",
                "TrN_NrPrzesylki varchar(100) null",
                "TrN_TypNB smallint default 1",
                "TrN_FPlId int null",
                "TrN_Opis nvarchar(1024) null",
                "TrN_OdbNazwa1 nvarchar(50) null",
                "TrN_OdbUlica nvarchar(40) null",
                "TrN_OdbMiasto nvarchar(40) null",
                "TrN_OdbKodPocztowy varchar(10) null",
                "TrN_OdbKraj nvarchar(40) null",
                "TrN_OdbTelefon nvarchar(20) null",
                "TrN_TS_Zal datetime default now",
                "TrN_TS_Mod datetime default now",
            ],
        )
        .pk("PK_TraNag", &["TrN_TrNID"])
        .unique_not_null("TrNImportRowId", "TrN_ImportRowId")
        .unique("TrNNumer", Index, &["TrN_DDfId", "TrN_NumerPelny"])
        .index("TrNTSMod", &["TrN_TS_Mod"])
        .index("TrNNumerObcy", &["TrN_NumerObcy"])
        .fk(
            "FK_TrN_DokDefinicje",
            "TrN_DDfId",
            "DokDefinicje",
            "DDf_DDfID",
        )
        .fk("FK_TrN_Magazyny", "TrN_MagZrdId", "Magazyny", "Mag_MagId")
        .fk(
            "FK_TrN_Kontrahenci",
            "TrN_PodID",
            "Kontrahenci",
            "Knt_KntId",
        )
        .ts_mod("TrN_TS_Mod", "TrN_TrNID"),
        table(
            "CDN",
            "TraElem",
            &[
                "TrE_TrEID int identity",
                "TrE_TrNId int",
                "TrE_Lp int",
                "TrE_Aktywny smallint default 1",
                "TrE_TwrId int",
                "TrE_MagId int",
                "TrE_TwrKod varchar(50)",
                "TrE_TwrNazwa nvarchar(255)",
                "TrE_Stawka decimal(5,2)",
                "TrE_JM nvarchar(20)",
                "TrE_Ilosc decimal(15,4)",
                "TrE_Cena0 decimal(17,4) default 0",
                "TrE_Rabat decimal(5,2) default 0",
                "TrE_CenaW decimal(17,4)",
                "TrE_WartoscNetto decimal(15,2)",
                "TrE_WartoscBrutto decimal(15,2)",
            ],
        )
        .pk("PK_TraElem", &["TrE_TrEID"])
        .unique("TrELp", Index, &["TrE_TrNId", "TrE_Lp"])
        .index("TrETwr", &["TrE_TwrId"])
        .fk("FK_TrE_TraNag", "TrE_TrNId", "TraNag", "TrN_TrNID")
        .fk("FK_TrE_Towary", "TrE_TwrId", "Towary", "Twr_TwrId"),
        table(
            "CDN",
            "TraVat",
            &[
                "TrV_TrVId int identity",
                "TrV_TrNId int",
                "TrV_Stawka decimal(5,2)",
                "TrV_Netto decimal(15,2)",
                "TrV_VAT decimal(15,2)",
            ],
        )
        .pk("PK_TraVat", &["TrV_TrVId"])
        .unique("TrVStawka", Index, &["TrV_TrNId", "TrV_Stawka"])
        .fk("FK_TrV_TraNag", "TrV_TrNId", "TraNag", "TrN_TrNID"),
        table(
            "CDN",
            "FormyPlatnosci",
            &[
                "FPl_FPlId int identity",
                "FPl_Nazwa nvarchar(40)",
                "FPl_Typ smallint default 1",
                "FPl_Termin smallint default 0",
            ],
        )
        .pk("PK_FormyPlatnosci", &["FPl_FPlId"])
        .unique("FPlNazwa", Index, &["FPl_Nazwa"]),
        table(
            "CDN",
            "TraNagRelacje",
            &[
                "TrR_TrRId int identity",
                "TrR_TrNId int",
                "TrR_TrNTyp int",
                "TrR_FaId int",
                "TrR_FaTyp int",
            ],
        )
        .pk("PK_TraNagRelacje", &["TrR_TrRId"])
        .index("TrRTrN", &["TrR_TrNId"])
        .fk("FK_TrR_TraNag", "TrR_TrNId", "TraNag", "TrN_TrNID"),
        // Catalog views, rebuilt in memory on every connection.
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
            ],
        ),
    ];
    v.iter_mut()
        .enumerate()
        .for_each(|(i, b)| b.0.object_id = 1_000_000 + 16 * i as i64);
    v.into_iter().map(|b| b.0).collect()
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
        let mut m = HashMap::new();
        for t in tables() {
            for c in &t.columns {
                m.entry(c.name.to_ascii_lowercase()).or_insert((t, c));
            }
        }
        m
    })
}

/// Looks up a column by name anywhere in the schema.
pub fn find_column(name: &str) -> Option<(&'static Table, &'static Column)> {
    column_index().get(&name.to_ascii_lowercase()).copied()
}

const NOW_SQLITE: &str = "strftime('%Y-%m-%d %H:%M:%f','now','localtime')";

fn sqlite_default(c: &Column) -> Option<String> {
    c.default.map(|d| match d {
        "now" => format!("({NOW_SQLITE})"),
        d if d.parse::<f64>().is_ok() => d.to_string(),
        d => format!("'{d}'"),
    })
}

/// The SQLite DDL of one table, in schema `db` (the attached CDN file).
pub fn sqlite_ddl(t: &Table, db: &str) -> Vec<String> {
    let mut cols = Vec::new();
    for c in &t.columns {
        let mut s = if c.identity {
            format!("\"{}\" INTEGER PRIMARY KEY AUTOINCREMENT", c.name)
        } else {
            format!("\"{}\" {}", c.name, c.ty.sqlite_decl())
        };
        if !c.nullable && !c.identity {
            s.push_str(" NOT NULL");
        }
        if c.ty.is_string() {
            s.push_str(" COLLATE POLISH_CI_AS");
        }
        if let Some(d) = sqlite_default(c) {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        let n = c.name;
        match c.ty {
            SqlType::VarChar(Some(len)) | SqlType::NVarChar(Some(len)) => s.push_str(&format!(
                " CONSTRAINT \"len:{n}:{len}\" CHECK (length(\"{n}\") <= {len})"
            )),
            SqlType::Decimal(p, sc) => s.push_str(&format!(
                " CONSTRAINT \"prec:{n}:{p}:{sc}\" CHECK (typeof(\"{n}\") IN ('integer','real','null') AND abs(\"{n}\") < 1e{})",
                p - sc
            )),
            SqlType::Int | SqlType::SmallInt | SqlType::TinyInt | SqlType::BigInt | SqlType::Bit
                if !c.identity =>
            {
                let (lo, hi) = c.ty.int_range().unwrap_or((i64::MIN, i64::MAX));
                s.push_str(&format!(
                    " CONSTRAINT \"range:{n}:{}\" CHECK (typeof(\"{n}\") IN ('integer','null') AND \"{n}\" BETWEEN {lo} AND {hi})",
                    c.ty.sql_name()
                ))
            }
            _ => {}
        }
        cols.push(s);
    }
    for u in &t.uniques {
        if u.kind == UniqueKind::Constraint {
            cols.push(format!(
                "CONSTRAINT \"{}\" UNIQUE ({})",
                u.name,
                u.columns.join(", ")
            ));
        }
    }
    for fk in &t.foreign_keys {
        cols.push(format!(
            "CONSTRAINT \"{}\" FOREIGN KEY (\"{}\") REFERENCES \"{}\"(\"{}\")",
            fk.name, fk.column, fk.ref_table, fk.ref_column
        ));
    }
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {db}.\"{}\" (\n  {}\n)",
        t.name,
        cols.join(",\n  ")
    )];
    for u in &t.uniques {
        if u.kind == UniqueKind::Index {
            out.push(format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {db}.\"{}\" ON \"{}\" ({}){}",
                u.name,
                t.name,
                u.columns.join(", "),
                if u.not_null_filter {
                    format!(" WHERE {} IS NOT NULL", u.columns.join(" IS NOT NULL AND "))
                } else {
                    String::new()
                }
            ));
        }
    }
    for (name, cols) in &t.indexes {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {db}.\"{name}\" ON \"{}\" ({})",
            t.name,
            cols.join(", ")
        ));
    }
    if let Some((ts, key)) = t.ts_mod {
        out.push(format!(
            "CREATE TRIGGER IF NOT EXISTS {db}.\"{tn}_TS_Mod\" AFTER UPDATE ON \"{tn}\" FOR EACH ROW WHEN NEW.\"{ts}\" IS OLD.\"{ts}\" \
             BEGIN UPDATE \"{tn}\" SET \"{ts}\" = {NOW_SQLITE} WHERE \"{key}\" = NEW.\"{key}\"; END",
            tn = t.name
        ));
    }
    out
}

/// The T-SQL DDL of the whole CDN schema (tables, keys, indexes, triggers),
/// as committed in `sql/schema.sql`.
pub fn tsql_ddl() -> String {
    let mut s = String::new();
    s.push_str("-- Comarch ERP Optima tables as the optima-standin holds them.\n");
    s.push_str("-- Generated by `optima-standin tsql --schema-only`; do not edit by hand.\n");
    // Filtered indexes need these options (sqlcmd starts with QUOTED_IDENTIFIER OFF).
    s.push_str("SET ANSI_NULLS ON;\nSET QUOTED_IDENTIFIER ON;\nGO\n");
    s.push_str("IF SCHEMA_ID(N'CDN') IS NULL EXEC(N'CREATE SCHEMA CDN');\nGO\n\n");
    for t in cdn_tables() {
        let mut cols = Vec::new();
        for c in &t.columns {
            let mut line = format!("    [{}] {}", c.name, c.ty.sql_name());
            if c.identity {
                line.push_str(" IDENTITY(1,1)");
            }
            line.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
            if let Some(d) = c.default {
                let d = match d {
                    "now" => "(getdate())".to_string(),
                    d if d.parse::<f64>().is_ok() => format!("(({d}))"),
                    d => format!("('{d}')"),
                };
                line.push_str(&format!(
                    " CONSTRAINT [DF_{}_{}] DEFAULT {d}",
                    t.name, c.name
                ));
            }
            cols.push(line);
        }
        for u in &t.uniques {
            match u.kind {
                UniqueKind::PrimaryKey => cols.push(format!(
                    "    CONSTRAINT [{}] PRIMARY KEY CLUSTERED ({})",
                    u.name,
                    bracket(&u.columns)
                )),
                UniqueKind::Constraint => cols.push(format!(
                    "    CONSTRAINT [{}] UNIQUE ({})",
                    u.name,
                    bracket(&u.columns)
                )),
                UniqueKind::Index => {}
            }
        }
        s.push_str(&format!(
            "IF OBJECT_ID(N'CDN.{n}', N'U') IS NULL\nCREATE TABLE CDN.[{n}] (\n{}\n);\nGO\n",
            cols.join(",\n"),
            n = t.name
        ));
        for u in &t.uniques {
            if u.kind == UniqueKind::Index {
                s.push_str(&format!(
                    "CREATE UNIQUE NONCLUSTERED INDEX [{}] ON CDN.[{}] ({}){};\nGO\n",
                    u.name,
                    t.name,
                    bracket(&u.columns),
                    if u.not_null_filter {
                        format!(
                            " WHERE [{}] IS NOT NULL",
                            u.columns.join("] IS NOT NULL AND [")
                        )
                    } else {
                        String::new()
                    }
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
    for t in cdn_tables() {
        for fk in &t.foreign_keys {
            s.push_str(&format!(
                "ALTER TABLE CDN.[{}] ADD CONSTRAINT [{}] FOREIGN KEY ([{}]) REFERENCES CDN.[{}] ([{}]);\nGO\n",
                t.name, fk.name, fk.column, fk.ref_table, fk.ref_column
            ));
        }
    }
    s.push('\n');
    for t in cdn_tables() {
        if let Some((ts, key)) = t.ts_mod {
            s.push_str(&format!(
                "CREATE TRIGGER CDN.[{n}_TS_Mod] ON CDN.[{n}] AFTER UPDATE AS\nBEGIN\n    SET NOCOUNT ON;\n    IF NOT UPDATE([{ts}])\n        UPDATE t SET [{ts}] = GETDATE() FROM CDN.[{n}] t JOIN inserted i ON i.[{key}] = t.[{key}];\nEND;\nGO\n",
                n = t.name
            ));
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
    fn every_column_has_a_real_type_and_names_are_unique() {
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
    }
}
