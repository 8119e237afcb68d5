//! A deterministic Polish company: product groups, products with EAN-13
//! codes, units and VAT rates, three warehouses, price lists, dated stock
//! rows with reservations from open ROs, customers with valid NIPs, some
//! documents, and deliberately bad rows a sync must park (see [`BAD_SKUS`]).
//! Dates are relative to the day of seeding; everything else depends only on
//! the seed.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::db;
use crate::error::{Error, Result};
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

/// Price lists: (id, Lp, type 1 net / 2 gross, name).
pub const PRICE_LISTS: [(i64, i64, i64, &str); 3] = [
    (1, 1, 1, "Zakupu"),
    (2, 2, 2, "Detaliczna"),
    (3, 3, 1, "Hurtowa"),
];

/// Document definitions: (symbol, class/type, name).
pub const DOC_DEFS: [(&str, i64, &str); 6] = [
    ("FS", 302, "Faktura sprzedaży"),
    ("PA", 305, "Paragon"),
    ("WZ", 306, "Wydanie zewnętrzne"),
    ("PZ", 307, "Przyjęcie zewnętrzne"),
    ("RO", 308, "Rezerwacja odbiorcy"),
    ("ZD", 309, "Zamówienie u dostawcy"),
];

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

fn fill(conn: &Connection, opts: &SeedOptions) -> Result<SeedReport> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let now = chrono::Local::now().naive_local();
    let today = now.date().and_hms_opt(8, 0, 0).unwrap_or(now);
    let at = |days: i64, mins: i64| -> String {
        format_datetime(&(today - Duration::days(days) + Duration::minutes(mins)))
    };

    for (sym, name) in WAREHOUSES {
        conn.execute(
            "INSERT INTO CDN.Magazyny (Mag_Symbol, Mag_Nazwa, Mag_TS_Mod) VALUES (?1, ?2, ?3)",
            params![sym, name, at(400, 0)],
        )?;
    }
    for (id, lp, typ, name) in PRICE_LISTS {
        conn.execute(
            "INSERT INTO CDN.DefCeny (DfC_DfCId, DfC_Lp, DfC_Typ, DfC_Nazwa) VALUES (?1, ?2, ?3, ?4)",
            params![id, lp, typ, name],
        )?;
    }
    for (sym, class, name) in DOC_DEFS {
        conn.execute(
            "INSERT INTO CDN.DokDefinicje (DDf_Symbol, DDf_Klasa, DDf_Nazwa, DDf_Numeracja) VALUES (?1, ?2, ?3, '@symbol/@numer/@rok')",
            params![sym, class, name],
        )?;
    }

    // Group tree: root (0) → category → subcategory → leaf (product line).
    conn.execute(
        "INSERT INTO CDN.TwrGrupy (TwG_TwGID, TwG_GIDTyp, TwG_GIDNumer, TwG_GrONumer, TwG_Kod, TwG_Nazwa) VALUES (0, -16, 0, 0, 'Grupy', 'Grupy towarów')",
        [],
    )?;
    let mut gid = 0i64;
    let mut add_group = |parent: i64, kod: &str, name: &str| -> Result<i64> {
        gid += 1;
        conn.execute(
            "INSERT INTO CDN.TwrGrupy (TwG_TwGID, TwG_GIDTyp, TwG_GIDNumer, TwG_GrONumer, TwG_Kod, TwG_Nazwa) VALUES (?1, -16, ?1, ?2, ?3, ?4)",
            params![gid, parent, kod, name],
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

    let mut ins_twr = conn.prepare(
        "INSERT INTO CDN.Towary (Twr_Kod, Twr_Nazwa, Twr_NumerKat, Twr_EAN, Twr_Opis, Twr_JM, Twr_TwGGIDNumer, Twr_TwCNumer, Twr_Stawka, Twr_Flaga, Twr_Typ, Twr_NieAktywny, Twr_TS_Zal, Twr_TS_Mod) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 2, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut ins_cena = conn.prepare(
        "INSERT INTO CDN.TwrCeny (TwC_TwrID, TwC_TwCNumer, TwC_Typ, TwC_Wartosc) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut ins_il = conn.prepare(
        "INSERT INTO CDN.TwrIlosci (TwI_TwrId, TwI_MagId, TwI_Data, TwI_Ilosc, TwI_Rezerwacje, TwI_Zamowienia, TwI_Wartosc) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
    )?;
    let mut ins_zas = conn.prepare(
        "INSERT INTO CDN.TwrZasoby (TwZ_TwrId, TwZ_MagId, TwZ_Data, TwZ_Ilosc, TwZ_Cena) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let normal = opts.products - BAD_SKUS.len();
    let mut first_ean = String::new();
    let mut stock_rows = 0usize;
    // (twr id, mag id, current qty) for reservations later
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
        let mut ean: Option<String> = Some(format!("{e12}{}", ean13_check(&e12)));
        if i == 0 {
            first_ean = ean.clone().unwrap_or_default();
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
                "BAD-NO-EAN" => ean = None,
                "BAD-DUP-EAN" => ean = Some(first_ean.clone()),
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
        let opis: Option<String> = if rng.random_range(0..3) == 0 {
            None
        } else {
            Some(format!(
                "{name}. Produkt kategorii „{}”, jakość sprawdzona.",
                c.name
            ))
        };
        let created = at(rng.random_range(30..400), rng.random_range(0..600));
        let modified = at(rng.random_range(1..30), rng.random_range(0..600));
        ins_twr.execute(params![
            kod,
            name,
            format!(
                "KAT-{}",
                ascii_fold(&noun.chars().take(3).collect::<String>()).to_uppercase()
            ),
            ean,
            opis,
            c.unit,
            leaf,
            stawka.to_string(),
            flaga,
            if service { 0 } else { 1 },
            inactive as i64,
            created,
            modified
        ])?;
        let id = conn.last_insert_rowid();
        ins_cena.execute(params![id, 1, 1, purchase.to_string()])?;
        ins_cena.execute(params![id, 2, 2, retail_gross.to_string()])?;
        ins_cena.execute(params![id, 3, 1, wholesale.to_string()])?;
        if service {
            continue;
        }
        // Stock: MAG always, SKLEP half, HURT a third; 1–3 dated rows each.
        let mut total = Decimal::ZERO;
        let mut latest_day = 1000i64;
        for (mag, share) in [(1i64, 100), (2, 50), (3, 33)] {
            if mag != 1 && rng.random_range(0..100) >= share {
                continue;
            }
            let n = rng.random_range(1..=3);
            let mut qty = Decimal::ZERO;
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
                ins_il.execute(params![
                    id,
                    mag,
                    at(day, mag * 7),
                    qty.to_string(),
                    "0",
                    (qty * purchase).round_dp(2).to_string()
                ])?;
                stock_rows += 1;
                latest_day = latest_day.min(day);
            }
            if qty > Decimal::ZERO {
                ins_zas.execute(params![
                    id,
                    mag,
                    at(20, 0),
                    qty.to_string(),
                    purchase.to_string()
                ])?;
            }
            total += qty;
            stocked.push((id, mag, qty, purchase));
            // A planned delivery dated in the future: not current stock yet.
            if mag == 1 && rng.random_range(0..100) == 0 {
                ins_il.execute(params![
                    id,
                    mag,
                    format_datetime(&(today + Duration::days(7))),
                    (qty + Decimal::from(100)).to_string(),
                    "0",
                    "0"
                ])?;
                stock_rows += 1;
            }
        }
        ins_il.execute(params![
            id,
            Option::<i64>::None,
            at(latest_day, 30),
            total.to_string(),
            "0",
            "0"
        ])?;
        stock_rows += 1;
    }
    drop((ins_twr, ins_il, ins_zas));

    // Extra units and barcodes for some products.
    conn.execute(
        "INSERT INTO CDN.TwrJMZ (TwJZ_TwrID, TwJZ_JM, TwJZ_JMPrzelicznikL, TwJZ_JMPrzelicznikM) \
         SELECT Twr_TwrId, 'karton', 12, 1 FROM CDN.Towary WHERE Twr_JM = 'szt.' AND Twr_TwrId % 10 = 0",
        [],
    )?;
    conn.execute(
        "INSERT INTO CDN.TwrEan (TwE_TwrID, TwE_EAN) SELECT Twr_TwrId, '2' || substr(Twr_EAN, 2) FROM CDN.Towary WHERE Twr_EAN IS NOT NULL AND Twr_TwrId % 20 = 0",
        [],
    )?;

    // Customers.
    let customers = 500usize;
    let mut ins_knt = conn.prepare(
        "INSERT INTO CDN.Kontrahenci (Knt_Kod, Knt_Nazwa1, Knt_Nazwa2, Knt_Ulica, Knt_NrDomu, Knt_Miasto, Knt_KodPocztowy, Knt_Kraj, Knt_NipKraj, Knt_Nip, Knt_Email, Knt_Telefon1, Knt_Ceny, Knt_Export, Knt_TS_Zal, Knt_TS_Mod) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
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
            Some(COMPANY_KINDS[k % COMPANY_KINDS.len()])
        } else {
            None
        };
        let nip = if company {
            Some(random_nip(&mut rng))
        } else {
            None
        };
        let kod = format!("K{:05}", k + 1);
        ins_knt.execute(params![
            kod,
            name1,
            name2,
            format!("ul. {}", STREETS[rng.random_range(0..STREETS.len())]),
            rng.random_range(1..200).to_string(),
            if eu { "Berlin" } else { city },
            if eu {
                "10115".to_string()
            } else {
                format!("{zip}-{:03}", rng.random_range(0..1000))
            },
            if eu { "Niemcy" } else { "Polska" },
            if eu { "DE" } else { "PL" },
            nip,
            format!("{}@example.pl", ascii_fold(&kod).to_lowercase()),
            format!(
                "+48 {} {:03} {:03}",
                rng.random_range(500..900),
                rng.random_range(0..1000),
                rng.random_range(0..1000)
            ),
            if company { 3 } else { 2 },
            if eu { 3 } else { 0 },
            at(rng.random_range(30..800), 0),
            at(rng.random_range(1..30), 0)
        ])?;
    }
    drop(ins_knt);
    // The collective customer for private buyers (Optima's "klient detaliczny").
    conn.execute(
        "INSERT INTO CDN.Kontrahenci (Knt_Kod, Knt_Nazwa1, Knt_Kraj, Knt_Ceny, Knt_TS_Zal, Knt_TS_Mod) VALUES ('DETAL', 'Klient detaliczny', 'Polska', 2, ?1, ?1)",
        params![at(800, 0)],
    )?;
    // Payment forms and the shipping service that shop orders map to.
    for (name, typ, days) in PAYMENT_FORMS {
        conn.execute(
            "INSERT INTO CDN.FormyPlatnosci (FPl_Nazwa, FPl_Typ, FPl_Termin) VALUES (?1, ?2, ?3)",
            params![name, typ, days],
        )?;
    }
    conn.execute(
        "INSERT INTO CDN.Towary (Twr_Kod, Twr_Nazwa, Twr_JM, Twr_TwGGIDNumer, Twr_TwCNumer, Twr_Stawka, Twr_Flaga, Twr_Typ, Twr_NieAktywny, Twr_TS_Zal, Twr_TS_Mod) \
         VALUES (?1, 'Usługa transportowa', 'usł.', 0, 2, 23, 2, 0, 0, ?2, ?2)",
        params![SHIPPING_SERVICE_SKU, at(800, 0)],
    )?;

    // Documents: open ROs (reservations), and a history of sales and deliveries.
    let mut docs = 0usize;
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
            let knt = (rng.random_range(0..customers) + 1) as i64;
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
            let id = crate::simulator::insert_document(
                conn,
                sym,
                mag,
                Some(knt),
                &items,
                bufor,
                None,
                when,
            )?;
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
            let _ = id;
        }
    }
    let _: NaiveDateTime = now;
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
