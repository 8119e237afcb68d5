//! A deterministic Polish company: product groups, products with EAN-13
//! codes, units and VAT rates, three warehouses, price lists, dated stock
//! rows with reservations from open ROs, customers with valid NIPs, some
//! documents, and deliberately bad rows a sync must park (see [`BAD_SKUS`]).
//! Dates are relative to the day of seeding; everything else depends only on
//! the seed.

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::db;
use crate::error::{Error, Result};
use crate::office;
use crate::types::format_datetime;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    /// Products in the catalogue, bad rows included (at least 10).
    pub products: usize,
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            products: 2000,
            seed: 1,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    pub products: usize,
    pub customers: usize,
    pub stock_rows: usize,
    pub documents: usize,
    pub bad_skus: Vec<String>,
}

/// SKUs of the deliberately bad rows: a zero retail price, no EAN, an EAN
/// that another product has, a negative stock in MAG, a 255-character name.
pub const BAD_SKUS: [&str; 5] = [
    "BAD-ZERO-PRICE",
    "BAD-NO-EAN",
    "BAD-DUP-EAN",
    "BAD-NEG-STOCK",
    "BAD-LONG-NAME",
];

/// Warehouses: (symbol, name). Their ids are 1, 2, 3.
pub const WAREHOUSES: [(&str, &str); 3] = [
    ("MAG", "Magazyn główny"),
    ("SKLEP", "Sklep stacjonarny — Łódź"),
    ("HURT", "Hurtownia Żerań"),
];

/// Price lists (`CDN.DefCeny`): (DfC_DfCId, DfC_Lp, DfC_Typ 1 net / 2 gross,
/// DfC_Nazwa). A price level was deleted (id 3), so the id and the Lp of
/// "Hurtowa" disagree; `TwC_TwCNumer` refers to `DfC_Lp`.
pub const PRICE_LISTS: [(i64, i64, i64, &str); 3] = [
    (1, 1, 1, "Zakupu"),
    (2, 2, 2, "Detaliczna"),
    (4, 3, 1, "Hurtowa"),
];

/// Document definitions (`CDN.DokDefinicje`), ids 1.. in this order:
/// (DDf_Symbol, DDf_Klasa, DDf_Nazwa, DDf_Numeracja, inactive). The first is
/// an old, inactive FS definition: `DDf_Symbol` is not unique in Optima.
pub const DOC_DEFS: [(&str, i64, &str, &str, bool); 8] = [
    (
        "FS",
        302,
        "Faktura sprzedaży (numeracja miesięczna)",
        "@symbol/@numerS/@miesiac/@rok_kal",
        true,
    ),
    (
        "FS",
        302,
        "Faktura sprzedaży",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
    ("PA", 305, "Paragon", "@symbol/@numerS/@rok_kal", false),
    (
        "WZ",
        306,
        "Wydanie zewnętrzne",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
    (
        "PZ",
        307,
        "Przyjęcie zewnętrzne",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
    (
        "RO",
        308,
        "Rezerwacja odbiorcy",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
    (
        "ZD",
        309,
        "Zamówienie u dostawcy",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
    // Corrections of sales invoices are of the invoice's class; the symbol
    // (at most 5 characters, `DDf_Symbol` varchar(5)) is the usual one in
    // Optima's lists (*unverified*).
    (
        "FSKOR",
        302,
        "Korekta faktury sprzedaży",
        "@symbol/@numerS/@rok_kal",
        false,
    ),
];

/// The supplier (`Knt_Kod`) deliveries (PZ) come from.
pub const SUPPLIER_CODE: &str = "DOSTAWCA";

/// The company (seller): name, NIP, street, house number, postcode, city.
pub const SELLER: (&str, &str, &str, &str, &str, &str) = (
    "Palarnia Kawy Wiśniewski sp. z o.o.",
    "7251801126",
    "ul. Piotrkowska",
    "120",
    "90-006",
    "Łódź",
);

/// Payment forms (`CDN.FormyPlatnosci`): name, type (1 cash, 2 transfer,
/// 3 card, 4 cash on delivery; the stand-in's guess), days to pay.
pub const PAYMENT_FORMS: [(&str, i64, i64); 5] = [
    ("gotówka", 1, 0),
    ("przelew", 2, 7),
    ("karta", 3, 0),
    ("pobranie", 4, 0),
    ("przelewy24", 2, 0),
];

/// The service item (`Twr_Typ = 0`) a shop's shipping becomes on a document.
pub const SHIPPING_SERVICE_SKU: &str = "TRANSPORT";

struct Category {
    code: &'static str,
    name: &'static str,
    subs: &'static [(&'static str, &'static [&'static str])],
    unit: &'static str,
    vat: &'static [&'static str],
    adjectives: &'static [&'static str],
}

const CATEGORIES: &[Category] = &[
    Category {
        code: "SPO",
        name: "Spożywcze",
        subs: &[
            (
                "Kawa i herbata",
                &[
                    "Kawa ziarnista",
                    "Kawa mielona",
                    "Herbata czarna",
                    "Herbata zielona",
                ],
            ),
            (
                "Słodycze",
                &["Czekolada gorzka", "Krówki", "Wafle", "Pierniki toruńskie"],
            ),
            (
                "Przyprawy",
                &[
                    "Pieprz czarny",
                    "Majeranek",
                    "Papryka słodka",
                    "Sól kłodawska",
                ],
            ),
        ],
        unit: "szt.",
        vat: &["5", "8", "23"],
        adjectives: &["łagodna", "pełna", "złota", "świeża", "domowa"],
    },
    Category {
        code: "CHE",
        name: "Chemia gospodarcza",
        subs: &[
            (
                "Środki czystości",
                &[
                    "Płyn do naczyń",
                    "Proszek do prania",
                    "Mydło",
                    "Żel pod prysznic",
                ],
            ),
            (
                "Papier",
                &["Ręcznik papierowy", "Chusteczki", "Papier toaletowy"],
            ),
        ],
        unit: "op.",
        vat: &["23"],
        adjectives: &["cytrynowy", "różany", "łagodny", "ekologiczny"],
    },
    Category {
        code: "NAR",
        name: "Narzędzia",
        subs: &[
            (
                "Ręczne",
                &[
                    "Młotek ślusarski",
                    "Śrubokręt płaski",
                    "Klucz nasadowy",
                    "Piła do drewna",
                ],
            ),
            (
                "Elektronarzędzia",
                &["Wiertarka udarowa", "Szlifierka kątowa", "Wkrętarka"],
            ),
        ],
        unit: "szt.",
        vat: &["23"],
        adjectives: &["profesjonalny", "wzmocniony", "zółty", "kompaktowy"],
    },
    Category {
        code: "ELE",
        name: "Elektryka",
        subs: &[
            (
                "Przewody",
                &["Przewód YDY", "Przewód OMY", "Kabel głośnikowy"],
            ),
            (
                "Oświetlenie",
                &["Żarówka LED", "Świetlówka", "Oprawa natynkowa"],
            ),
        ],
        unit: "m",
        vat: &["23"],
        adjectives: &["biały", "czarny", "ciepła barwa", "zimna barwa"],
    },
    Category {
        code: "OGR",
        name: "Ogród",
        subs: &[
            (
                "Nasiona",
                &["Nasiona marchwi", "Nasiona rzodkiewki", "Trawa sportowa"],
            ),
            (
                "Nawozy",
                &["Nawóz uniwersalny", "Ziemia kwiatowa", "Kora sosnowa"],
            ),
        ],
        unit: "kg",
        vat: &["8", "23"],
        adjectives: &["jesienny", "wiosenny", "ogrodowy"],
    },
    Category {
        code: "BIU",
        name: "Biuro i książki",
        subs: &[
            (
                "Artykuły biurowe",
                &[
                    "Długopis żelowy",
                    "Zeszyt w kratkę",
                    "Segregator",
                    "Zszywacz",
                ],
            ),
            (
                "Książki",
                &[
                    "Słownik ortograficzny",
                    "Atlas Polski",
                    "Poradnik księgowego",
                ],
            ),
        ],
        unit: "szt.",
        vat: &["0", "zw", "23"],
        adjectives: &["niebieski", "czerwony", "A4", "A5"],
    },
];

const CITIES: &[(&str, &str)] = &[
    ("Łódź", "90"),
    ("Kraków", "30"),
    ("Gdańsk", "80"),
    ("Wrocław", "50"),
    ("Poznań", "60"),
    ("Bielsko-Biała", "43"),
    ("Zielona Góra", "65"),
    ("Białystok", "15"),
    ("Częstochowa", "42"),
    ("Świnoujście", "72"),
];
const STREETS: &[&str] = &[
    "Świętokrzyska",
    "Piłsudskiego",
    "Żeromskiego",
    "Kościuszki",
    "Główna",
    "Łąkowa",
    "Mickiewicza",
    "Źródlana",
];
const SURNAMES: &[&str] = &[
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Król",
    "Żak",
    "Ślusarczyk",
];
const COMPANY_KINDS: &[&str] = &["Sp. z o.o.", "S.A.", "s.c.", "Sp.j.", "P.H.U.", "Hurtownia"];

/// The EAN-13 check digit of 12 digits.
pub fn ean13_check(digits12: &str) -> u32 {
    let sum: u32 = digits12
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d } else { d * 3 })
        .sum();
    (10 - sum % 10) % 10
}

/// True when a NIP's check digit is right.
pub fn nip_valid(nip: &str) -> bool {
    let d: Vec<u32> = nip.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 10 {
        return false;
    }
    let w = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    let s: u32 = d.iter().zip(w).map(|(a, b)| a * b).sum();
    s % 11 == d[9]
}

fn random_nip(rng: &mut StdRng) -> String {
    loop {
        let mut d: Vec<u32> = (0..9).map(|_| rng.random_range(0..10)).collect();
        if d[0] == 0 {
            d[0] = 1;
        }
        let w = [6, 5, 7, 2, 3, 4, 5, 6, 7];
        let c = d.iter().zip(w).map(|(a, b)| a * b).sum::<u32>() % 11;
        if c == 10 {
            continue;
        }
        d.push(c);
        return d
            .iter()
            .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
            .collect();
    }
}

fn money(rng: &mut StdRng, lo: i64, hi: i64) -> Decimal {
    Decimal::new(rng.random_range(lo..hi), 2)
}

fn vat_of(v: &str) -> (Decimal, i64) {
    match v {
        "zw" => (Decimal::ZERO, 1),
        v => (v.parse().unwrap_or(Decimal::from(23)), 2),
    }
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            'Ą' => 'A',
            'Ć' => 'C',
            'Ę' => 'E',
            'Ł' => 'L',
            'Ń' => 'N',
            'Ó' => 'O',
            'Ś' => 'S',
            'Ź' | 'Ż' => 'Z',
            c => c,
        })
        .collect()
}

/// Creates (or replaces) the database file and fills it.
pub fn seed_database(path: &Path, opts: &SeedOptions) -> Result<SeedReport> {
    if opts.products < 10 {
        return Err(Error::Other("at least 10 products are needed".into()));
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", path.display());
        if Path::new(&p).exists() {
            std::fs::remove_file(&p)?;
        }
    }
    let conn = db::open(path, Arc::new(Default::default()))?;
    conn.execute_batch("PRAGMA CDN.synchronous=OFF; BEGIN IMMEDIATE;")?;
    let report = fill(&conn, opts)?;
    conn.execute_batch(
        "COMMIT; PRAGMA CDN.synchronous=NORMAL; PRAGMA CDN.wal_checkpoint(TRUNCATE);",
    )?;
    Ok(report)
}

/// Adds `count` settled sales invoices from years ago to `TraNag`, copies
/// of one seeded FS header under their own numbers (`FS/<n>/2019`, stamped
/// in 2019), so a benchmark can measure the document poll against a
/// company's history (a busy office holds a million documents). Headers
/// only: a poll reads `TraNag`, and lines of documents nobody changes are
/// never read. Returns how many were added.
pub fn add_history_documents(path: &Path, count: usize) -> Result<usize> {
    let conn = db::open(path, Arc::new(Default::default()))?;
    let template: i64 = conn
        .query_row(
            "SELECT TrN_TrNID FROM CDN.TraNag WHERE TrN_TypDokumentu = 302 AND TrN_Bufor = 0 ORDER BY TrN_TrNID LIMIT 1",
            [],
            |r| r.get(0),
        )
        .map_err(|_| Error::Other("no settled FS in the seed to copy".into()))?;
    // Every stored column but the identity; computed ones are not stored.
    let mut columns: Vec<String> = Vec::new();
    {
        let mut info = conn.prepare("PRAGMA CDN.table_xinfo(TraNag)")?;
        let rows = info.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(6)?)))?;
        for row in rows {
            let (name, hidden) = row?;
            if hidden == 0 && name != "TrN_TrNID" {
                columns.push(name);
            }
        }
    }
    let overrides: &[(&str, &str)] = &[
        ("TrN_NumerString", "'FS/@numerS/2019'"),
        ("TrN_NumerNr", "n.i"),
        ("TrN_NumerObcy", "''"),
        ("TrN_ImportRowId", "printf('hist-%012d', n.i)"),
        (
            "TrN_DataDok",
            "datetime('2019-01-01', '+' || (n.i / 3000) || ' days')",
        ),
        (
            "TrN_DataWys",
            "datetime('2019-01-01', '+' || (n.i / 3000) || ' days')",
        ),
        (
            "TrN_DataOpe",
            "datetime('2019-01-01', '+' || (n.i / 3000) || ' days')",
        ),
        (
            "TrN_TS_Zal",
            "datetime('2019-01-01', '+' || (n.i * 10) || ' seconds')",
        ),
        (
            "TrN_TS_Mod",
            "datetime('2019-01-01', '+' || (n.i * 10) || ' seconds')",
        ),
    ];
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            overrides
                .iter()
                .find(|(name, _)| name == c)
                .map(|(_, expr)| (*expr).to_owned())
                .unwrap_or_else(|| format!("t.\"{c}\""))
        })
        .collect();
    let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let added = conn.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO CDN.TraNag ({}) SELECT {} FROM n, CDN.TraNag t WHERE t.TrN_TrNID = ?2",
            list.join(", "),
            select.join(", ")
        ),
        params![count as i64, template],
    )?;
    Ok(added)
}

/// A price (`CDN.TwrCeny`) of a product in list `numer` (`DfC_Lp`).
pub fn insert_price(
    conn: &Connection,
    twr: i64,
    numer: i64,
    typ: i64,
    value: Decimal,
) -> Result<i64> {
    office::insert(
        conn,
        "CDN.TwrCeny",
        &[
            ("TwC_TwrID", &twr),
            ("TwC_TwCNumer", &numer),
            ("TwC_Typ", &typ),
            ("TwC_Wartosc", &value.to_string()),
            ("TwC_Waluta", &"PLN"),
            ("TwC_Zaokraglenie", &"0.01"),
        ],
    )
}

/// A product's membership of its group (`TwG_GIDTyp = 16`), as Optima keeps
/// beside the group tree (`-16`).
fn group_membership(conn: &Connection, twr: i64, group: i64, kod: &str, name: &str) -> Result<()> {
    let (typ, parent_typ) = (16i64, -16i64);
    office::insert(
        conn,
        "CDN.TwrGrupy",
        &[
            ("TwG_GIDTyp", &typ),
            ("TwG_GIDNumer", &twr),
            ("TwG_GrOTyp", &parent_typ),
            ("TwG_GrONumer", &group),
            ("TwG_Kod", &kod),
            ("TwG_Nazwa", &name),
        ],
    )?;
    Ok(())
}

/// A dated stock row (`CDN.TwrIlosci`).
#[allow(clippy::too_many_arguments)]
fn stock_row(
    conn: &Connection,
    twr: i64,
    mag: Option<i64>,
    when: &str,
    qty: Decimal,
    reserved_orders: Decimal,
    value: Decimal,
) -> Result<()> {
    office::insert(
        conn,
        "CDN.TwrIlosci",
        &[
            ("TwI_TwrId", &twr),
            ("TwI_MagId", &mag),
            ("TwI_Data", &when),
            ("TwI_Ilosc", &qty.to_string()),
            ("TwI_RezerwacjeZlecenia", &reserved_orders.to_string()),
            ("TwI_Wartosc", &value.to_string()),
        ],
    )?;
    Ok(())
}

/// A customer card (`CDN.Kontrahenci`) with every text column filled
/// ('' where unknown) and `Knt_PodmiotTyp` 1.
#[allow(clippy::too_many_arguments)]
fn customer(
    conn: &Connection,
    kod: &str,
    name1: &str,
    name2: &str,
    street: &str,
    house: &str,
    city: &str,
    zip: &str,
    country: (&str, &str),
    nip: &str,
    email: &str,
    phone: &str,
    prices: i64,
    export: i64,
    supplier: bool,
    created: &str,
    modified: &str,
) -> Result<i64> {
    let nip_e = if nip.len() == 10 {
        format!("{}-{}-{}-{}", &nip[..3], &nip[3..6], &nip[6..8], &nip[8..])
    } else {
        nip.to_string()
    };
    let (one, zero) = (1i64, 0i64);
    let (odbiorca, dostawca) = if supplier {
        (&zero, &one)
    } else {
        (&one, &zero)
    };
    let country_nip = if nip.is_empty() { "" } else { country.1 };
    office::insert(
        conn,
        "CDN.Kontrahenci",
        &[
            ("Knt_Kod", &kod),
            ("Knt_Nazwa1", &name1),
            ("Knt_Nazwa2", &name2),
            ("Knt_Ulica", &street),
            ("Knt_NrDomu", &house),
            ("Knt_Miasto", &city),
            ("Knt_Poczta", &city),
            ("Knt_KodPocztowy", &zip),
            ("Knt_Kraj", &country.0),
            ("Knt_KrajISO", &country.1),
            ("Knt_NipKraj", &country_nip),
            ("Knt_Nip", &nip),
            ("Knt_NipE", &nip_e),
            ("Knt_Email", &email),
            ("Knt_Telefon1", &phone),
            ("Knt_Ceny", &prices),
            ("Knt_Export", &export),
            ("Knt_PodmiotTyp", &one),
            ("Knt_Rodzaj_Odbiorca", odbiorca),
            ("Knt_Rodzaj_Dostawca", dostawca),
            ("Knt_TS_Zal", &created),
            ("Knt_TS_Mod", &modified),
        ],
    )
}

fn fill(conn: &Connection, opts: &SeedOptions) -> Result<SeedReport> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let now = chrono::Local::now().naive_local();
    let today = now.date().and_hms_opt(8, 0, 0).unwrap_or(now);
    let at = |days: i64, mins: i64| -> String {
        format_datetime(&(today - Duration::days(days) + Duration::minutes(mins)))
    };
    let (zero, one, two) = (0i64, 1i64, 2i64);

    for (sym, name) in WAREHOUSES {
        let ts = at(400, 0);
        office::insert(
            conn,
            "CDN.Magazyny",
            &[
                ("Mag_Symbol", &sym),
                ("Mag_Nazwa", &name),
                ("Mag_Typ", &one),
                ("Mag_TwCNumer", &two),
                ("Mag_TS_Zal", &ts),
                ("Mag_TS_Mod", &ts),
            ],
        )?;
    }
    for (id, lp, typ, name) in PRICE_LISTS {
        office::insert(
            conn,
            "CDN.DefCeny",
            &[
                ("DfC_DfCId", &id),
                ("DfC_Lp", &lp),
                ("DfC_Typ", &typ),
                ("DfC_Nazwa", &name),
                ("DfC_Waluta", &"PLN"),
                ("DfC_Nieaktywna", &zero),
                ("DfC_Zaokraglenie", &"0.01"),
            ],
        )?;
    }
    for (sym, class, name, scheme, inactive) in DOC_DEFS {
        let ts = at(800, 0);
        office::insert(
            conn,
            "CDN.DokDefinicje",
            &[
                ("DDf_Symbol", &sym),
                ("DDf_Klasa", &class),
                ("DDf_Nazwa", &name),
                ("DDf_Numeracja", &scheme),
                ("DDf_Nieaktywna", &(inactive as i64)),
                ("DDf_TS_Zal", &ts),
                ("DDf_TS_Mod", &ts),
            ],
        )?;
    }

    // Group tree: root (0) → category → subcategory → leaf (product line).
    let group_typ = -16i64;
    office::insert(
        conn,
        "CDN.TwrGrupy",
        &[
            ("TwG_TwGID", &zero),
            ("TwG_GIDTyp", &group_typ),
            ("TwG_GIDNumer", &zero),
            ("TwG_GrOTyp", &group_typ),
            ("TwG_GrONumer", &zero),
            ("TwG_Kod", &"Grupy"),
            ("TwG_Nazwa", &"Grupy towarów"),
        ],
    )?;
    let mut gid = 0i64;
    let mut add_group = |parent: i64, kod: &str, name: &str| -> Result<i64> {
        gid += 1;
        office::insert(
            conn,
            "CDN.TwrGrupy",
            &[
                ("TwG_TwGID", &gid),
                ("TwG_GIDTyp", &group_typ),
                ("TwG_GIDNumer", &gid),
                ("TwG_GrOTyp", &group_typ),
                ("TwG_GrONumer", &parent),
                ("TwG_Kod", &kod),
                ("TwG_Nazwa", &name),
            ],
        )?;
        Ok(gid)
    };
    // leaves: (category index, leaf group id, product noun)
    let mut leaves: Vec<(usize, i64, &'static str)> = Vec::new();
    for (ci, c) in CATEGORIES.iter().enumerate() {
        let g1 = add_group(0, c.code, c.name)?;
        for (si, (sub, nouns)) in c.subs.iter().enumerate() {
            let g2 = add_group(g1, &format!("{}-{}", c.code, si + 1), sub)?;
            for (ni, noun) in nouns.iter().enumerate() {
                let g3 = add_group(g2, &format!("{}-{}-{}", c.code, si + 1, ni + 1), noun)?;
                leaves.push((ci, g3, noun));
            }
        }
    }

    let normal = opts.products - BAD_SKUS.len();
    let mut first_ean = String::new();
    let mut stock_rows = 0usize;
    // Delivery lots point at a delivery line (TraSElem is not held): ids
    // from here up stand for the seed's deliveries.
    let mut lot = 1_000_000i64;
    // (twr id, mag id, current qty, purchase price) for reservations later
    let mut stocked: Vec<(i64, i64, Decimal, Decimal)> = Vec::new();
    for i in 0..opts.products {
        let bad = if i >= normal {
            Some(BAD_SKUS[i - normal])
        } else {
            None
        };
        let (ci, leaf, noun) = leaves[rng.random_range(0..leaves.len())];
        let c = &CATEGORIES[ci];
        let adj = c.adjectives[rng.random_range(0..c.adjectives.len())];
        let size = match c.unit {
            "kg" => format!("{} kg", [1, 2, 5, 10, 25][rng.random_range(0..5)]),
            "m" => format!(
                "{}x{} mm²",
                [2, 3, 4, 5][rng.random_range(0..4)],
                ["1,5", "2,5", "4"][rng.random_range(0..3)]
            ),
            "op." => format!("{} szt.", [4, 6, 8, 12][rng.random_range(0..4)]),
            _ => format!("{} g", [100, 250, 500, 1000][rng.random_range(0..4)]),
        };
        let mut name = format!("{noun} {adj} {size}");
        let mut kod = format!("{}-{:06}", c.code, i + 1);
        let e12 = format!("590{:09}", rng.random_range(0..1_000_000_000u64));
        // Optima keeps '' for a product without a barcode.
        let mut ean = format!("{e12}{}", ean13_check(&e12));
        if i == 0 {
            first_ean = ean.clone();
        }
        let vat = c.vat[rng.random_range(0..c.vat.len())];
        let (stawka, flaga) = vat_of(vat);
        let purchase = money(&mut rng, 150, 50_000);
        let mut retail_gross =
            (purchase * Decimal::new(145, 2) * (Decimal::ONE + stawka / Decimal::from(100)))
                .round_dp(2);
        let wholesale = (purchase * Decimal::new(120, 2)).round_dp(2);
        let inactive = rng.random_range(0..100) < 2;
        let service = c.code == "BIU" && rng.random_range(0..100) < 3;
        let mut neg_stock = false;
        if let Some(b) = bad {
            kod = b.to_string();
            match b {
                "BAD-ZERO-PRICE" => retail_gross = Decimal::ZERO,
                "BAD-NO-EAN" => ean = String::new(),
                "BAD-DUP-EAN" => ean = first_ean.clone(),
                "BAD-NEG-STOCK" => neg_stock = true,
                "BAD-LONG-NAME" => {
                    let base = "Zestaw świąteczny łączony — żółć, gęś, źdźbło; ";
                    let mut s = String::new();
                    while s.chars().count() < 255 {
                        s.push_str(base);
                    }
                    name = s.chars().take(255).collect();
                }
                _ => {}
            }
        }
        let opis = if rng.random_range(0..3) == 0 {
            String::new()
        } else {
            format!("{name}. Produkt kategorii „{}”, jakość sprawdzona.", c.name)
        };
        let created = at(rng.random_range(30..400), rng.random_range(0..600));
        let modified = at(rng.random_range(1..30), rng.random_range(0..600));
        let numer_kat = format!(
            "KAT-{}",
            ascii_fold(&noun.chars().take(3).collect::<String>()).to_uppercase()
        );
        let stawka_s = stawka.to_string();
        let typ: i64 = if service { 0 } else { 1 };
        let id = office::insert(
            conn,
            "CDN.Towary",
            &[
                ("Twr_Kod", &kod),
                ("Twr_Nazwa", &name),
                ("Twr_NumerKat", &numer_kat),
                ("Twr_EAN", &ean),
                ("Twr_Opis", &opis),
                ("Twr_JM", &c.unit),
                ("Twr_TwGGIDNumer", &leaf),
                ("Twr_TwCNumer", &two),
                ("Twr_Stawka", &stawka_s),
                ("Twr_StawkaZak", &stawka_s),
                ("Twr_Flaga", &flaga),
                ("Twr_FlagaZak", &flaga),
                ("Twr_Typ", &typ),
                ("Twr_NieAktywny", &(inactive as i64)),
                ("Twr_TS_Zal", &created),
                ("Twr_TS_Mod", &modified),
            ],
        )?;
        group_membership(conn, id, leaf, &kod, &name)?;
        insert_price(conn, id, 1, 1, purchase)?;
        insert_price(conn, id, 2, 2, retail_gross)?;
        insert_price(conn, id, 3, 1, wholesale)?;
        if service {
            continue;
        }
        // Stock: MAG always, SKLEP half, HURT a third; 1–3 dated rows each.
        // Every seventh product has some stock reserved for service orders.
        let for_orders = id % 7 == 3;
        let (mut total, mut total_orders) = (Decimal::ZERO, Decimal::ZERO);
        let mut latest_day = 1000i64;
        for (mag, share) in [(1i64, 100), (2, 50), (3, 33)] {
            if mag != 1 && rng.random_range(0..100) >= share {
                continue;
            }
            let n = rng.random_range(1..=3);
            let mut qty = Decimal::ZERO;
            let mut orders = Decimal::ZERO;
            for k in 0..n {
                let day = [60, 20, 2][3 - n + k];
                qty = if c.unit == "kg" || c.unit == "m" {
                    Decimal::new(rng.random_range(0..500_000), 3)
                } else {
                    Decimal::from(rng.random_range(0..500))
                };
                if neg_stock && mag == 1 && k + 1 == n {
                    qty = Decimal::from(-5);
                }
                orders = if for_orders && mag == 1 && qty >= Decimal::from(2) {
                    Decimal::from(2)
                } else {
                    Decimal::ZERO
                };
                stock_row(
                    conn,
                    id,
                    Some(mag),
                    &at(day, mag * 7),
                    qty,
                    orders,
                    (qty * purchase).round_dp(2),
                )?;
                stock_rows += 1;
                latest_day = latest_day.min(day);
            }
            if qty > Decimal::ZERO {
                lot += 1;
                let (q, p) = (qty.to_string(), purchase.to_string());
                let w = (qty * purchase).round_dp(2).to_string();
                office::insert(
                    conn,
                    "CDN.TwrZasoby",
                    &[
                        ("TwZ_TwrId", &id),
                        ("TwZ_MagId", &mag),
                        ("TwZ_TrSIdDost", &lot),
                        ("TwZ_Data", &at(20, 0)),
                        ("TwZ_Ilosc", &q),
                        ("TwZ_Quan", &q),
                        ("TwZ_Cena", &p),
                        ("TwZ_Wartosc", &w),
                    ],
                )?;
            }
            total += qty;
            total_orders += orders;
            stocked.push((id, mag, qty - orders, purchase));
            // A planned delivery dated in the future: not current stock yet.
            if mag == 1 && rng.random_range(0..100) == 0 {
                stock_row(
                    conn,
                    id,
                    Some(mag),
                    &format_datetime(&(today + Duration::days(7))),
                    qty + Decimal::from(100),
                    orders,
                    Decimal::ZERO,
                )?;
                stock_rows += 1;
            }
        }
        stock_row(
            conn,
            id,
            None,
            &at(latest_day, 30),
            total,
            total_orders,
            Decimal::ZERO,
        )?;
        stock_rows += 1;
    }

    // Extra units and barcodes for some products.
    conn.execute(
        "INSERT INTO CDN.TwrJMZ (TwJZ_TwrID, TwJZ_JM, TwJZ_JMPrzelicznikL, TwJZ_JMPrzelicznikM) \
         SELECT Twr_TwrId, 'karton', 12, 1 FROM CDN.Towary WHERE Twr_JM = 'szt.' AND Twr_TwrId % 10 = 0",
        [],
    )?;
    conn.execute(
        "INSERT INTO CDN.TwrEan (TwE_TwrID, TwE_EAN, TwE_JM, TwE_Opis) SELECT Twr_TwrId, '2' || substr(Twr_EAN, 2), Twr_JM, '' FROM CDN.Towary WHERE Twr_EAN <> '' AND Twr_TwrId % 20 = 0",
        [],
    )?;

    // Customers.
    let customers = 500usize;
    for k in 0..customers {
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let (city, zip) = CITIES[rng.random_range(0..CITIES.len())];
        let company = k % 5 != 4;
        let eu = company && k % 25 == 3;
        let name1 = if company {
            format!(
                "{} {}",
                ["Firma Handlowa", "Zakład", "Sklep", "Przedsiębiorstwo"][k % 4],
                surname
            )
        } else {
            format!(
                "{} {}",
                ["Jan", "Małgorzata", "Łukasz", "Zofia", "Jerzy"][k % 5],
                surname
            )
        };
        let name2 = if company {
            COMPANY_KINDS[k % COMPANY_KINDS.len()]
        } else {
            ""
        };
        let nip = if company {
            random_nip(&mut rng)
        } else {
            String::new()
        };
        let kod = format!("K{:05}", k + 1);
        let street = format!("ul. {}", STREETS[rng.random_range(0..STREETS.len())]);
        let house = rng.random_range(1..200).to_string();
        let zip = if eu {
            "10115".to_string()
        } else {
            format!("{zip}-{:03}", rng.random_range(0..1000))
        };
        let phone = format!(
            "+48 {} {:03} {:03}",
            rng.random_range(500..900),
            rng.random_range(0..1000),
            rng.random_range(0..1000)
        );
        let created = at(rng.random_range(30..800), 0);
        let modified = at(rng.random_range(1..30), 0);
        customer(
            conn,
            &kod,
            &name1,
            name2,
            &street,
            &house,
            if eu { "Berlin" } else { city },
            &zip,
            if eu {
                ("Niemcy", "DE")
            } else {
                ("Polska", "PL")
            },
            &nip,
            &format!("{}@example.pl", ascii_fold(&kod).to_lowercase()),
            &phone,
            if company { 3 } else { 2 },
            if eu { 3 } else { 0 },
            false,
            &created,
            &modified,
        )?;
    }
    // The collective customer for private buyers (Optima's "klient
    // detaliczny") and the supplier of the deliveries.
    let old = at(800, 0);
    customer(
        conn,
        "DETAL",
        "Klient detaliczny",
        "",
        "",
        "",
        "",
        "",
        ("Polska", "PL"),
        "",
        "",
        "",
        2,
        0,
        false,
        &old,
        &old,
    )?;
    customer(
        conn,
        SUPPLIER_CODE,
        "Hurtownia Towarów Mazur",
        "Sp. z o.o.",
        "ul. Przemysłowa",
        "12",
        "Łódź",
        "90-001",
        ("Polska", "PL"),
        "5260250995",
        "zamowienia@hurtownia-mazur.example.pl",
        "+48 42 600 10 10",
        1,
        0,
        true,
        &old,
        &old,
    )?;
    // The company's stamp (`CDN.Pieczatki`), which documents name in
    // `TrN_PCID`: the seller on an invoice. The stamp in force runs to
    // 2999-12-31, which makes the computed `PC_Aktualna` 1 (real schema).
    let (since, until) = (at(400, 0), "2999-12-31 00:00:00.000".to_owned());
    office::insert(
        conn,
        "CDN.Pieczatki",
        &[
            ("PC_DataOd", &since),
            ("PC_DataDo", &until),
            ("PC_Nazwa1", &SELLER.0),
            ("PC_Nazwa2", &""),
            ("PC_Nazwa3", &""),
            ("PC_NipE", &SELLER.1),
            ("PC_NipKraj", &"PL"),
            ("PC_Ulica", &SELLER.2),
            ("PC_NrDomu", &SELLER.3),
            ("PC_NrLokalu", &""),
            ("PC_KodP", &SELLER.4),
            ("PC_Miasto", &SELLER.5),
            ("PC_Kraj", &"Polska"),
            ("PC_KrajISO", &"PL"),
            ("PC_Regon", &"472836190"),
            ("PC_OpeZalKod", &"ADMIN"),
            ("PC_OpeZalNazwisko", &"Administrator"),
            ("PC_OpeModKod", &"ADMIN"),
            ("PC_OpeModNazwisko", &"Administrator"),
            ("PC_TS_Zal", &since),
            ("PC_TS_Mod", &since),
        ],
    )?;
    // Payment forms and the shipping service that shop orders map to.
    for (name, typ, days) in PAYMENT_FORMS {
        office::insert(
            conn,
            "CDN.FormyPlatnosci",
            &[
                ("FPl_Nazwa", &name),
                ("FPl_Typ", &typ),
                ("FPl_Termin", &days),
            ],
        )?;
    }
    office::insert(
        conn,
        "CDN.Towary",
        &[
            ("Twr_Kod", &SHIPPING_SERVICE_SKU),
            ("Twr_Nazwa", &"Usługa transportowa"),
            ("Twr_JM", &"usł."),
            ("Twr_TwGGIDNumer", &zero),
            ("Twr_TwCNumer", &two),
            ("Twr_Stawka", &23i64),
            ("Twr_StawkaZak", &23i64),
            ("Twr_Flaga", &two),
            ("Twr_FlagaZak", &two),
            ("Twr_Typ", &zero),
            ("Twr_TS_Zal", &old),
            ("Twr_TS_Mod", &old),
        ],
    )?;

    // Documents: open ROs (reservations), and a history of sales and deliveries.
    let mut docs = 0usize;
    let supplier: i64 = conn.query_row(
        "SELECT Knt_KntId FROM CDN.Kontrahenci WHERE Knt_Kod = ?1",
        [SUPPLIER_CODE],
        |r| r.get(0),
    )?;
    let goods: Vec<(i64, i64, Decimal, Decimal)> = stocked
        .iter()
        .filter(|s| s.2 > Decimal::from(10))
        .copied()
        .collect();
    if !goods.is_empty() {
        for d in 0..40usize {
            let (sym, bufor) = match d % 8 {
                0..=2 => ("RO", 0),
                3 => ("RO", 1),
                4 => ("FS", 0),
                5 => ("PA", 0),
                6 => ("WZ", 0),
                _ => ("PZ", 0),
            };
            let knt = match sym {
                "PZ" => Some(supplier),
                "PA" => None,
                _ => Some((rng.random_range(0..customers) + 1) as i64),
            };
            let lines: Vec<(i64, i64, Decimal, Decimal)> = (0..rng.random_range(1..4))
                .map(|_| goods[rng.random_range(0..goods.len())])
                .collect();
            let mag = lines[0].1;
            let lines: Vec<_> = lines.into_iter().filter(|l| l.1 == mag).collect();
            let when = today - Duration::days(rng.random_range(1..20));
            let items: Vec<crate::simulator::Line> = lines
                .iter()
                .map(|l| crate::simulator::Line {
                    twr_id: l.0,
                    qty: Decimal::from(rng.random_range(1..4)),
                    price_net: None,
                })
                .collect();
            crate::simulator::insert_document(conn, sym, mag, knt, &items, bufor, None, when)?;
            docs += 1;
            if sym == "RO" && bufor == 0 {
                for it in &items {
                    conn.execute(
                        "UPDATE CDN.TwrIlosci SET TwI_Rezerwacje = TwI_Rezerwacje + ?3 \
                         WHERE TwI_TwIId IN (SELECT TwI_TwIId FROM CDN.TwrIlosci WHERE TwI_TwrId = ?1 AND (TwI_MagId = ?2 OR TwI_MagId IS NULL) \
                         AND TwI_Data = (SELECT max(TwI_Data) FROM CDN.TwrIlosci i2 WHERE i2.TwI_TwrId = ?1 AND i2.TwI_MagId IS CDN.TwrIlosci.TwI_MagId AND i2.TwI_Data <= ?4))",
                        params![it.twr_id, mag, it.qty.to_string(), format_datetime(&now)],
                    )?;
                }
            }
        }
    }
    Ok(SeedReport {
        products: opts.products,
        customers,
        stock_rows,
        documents: docs,
        bad_skus: BAD_SKUS.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        assert_eq!(ean13_check("590123412345"), 7);
        assert!(nip_valid("5260250995"));
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            assert!(nip_valid(&random_nip(&mut rng)));
        }
    }
}
