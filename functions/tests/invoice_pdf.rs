//! The invoice PDF rendered for real and read back with poppler
//! (`pdftotext -layout`, `pdftoppm`): what a buyer's PDF viewer shows and
//! what a copy-paste or a bookkeeping import extracts. Every expected amount
//! is worked out by hand here, never by the code under test.
//!
//! Needs poppler-utils; installs it when root with apt-get, else skips
//! (fails under CI=true).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use chrono::{NaiveDate, NaiveDateTime};
use contract::{ExchangeRate, Invoice, InvoiceLine, Party, VatRate, VatSummary};
use functions::invoice_pdf::render_invoice;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

// ---------------------------------------------------------------------------
// poppler

fn poppler_present() -> bool {
    ["pdftotext", "pdftoppm"].iter().all(|tool| {
        Command::new(tool)
            .arg("-v")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// Whether poppler can be used; installs it once when root with apt-get.
fn poppler() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        if poppler_present() {
            return true;
        }
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
        if is_root && Path::new("/usr/bin/apt-get").exists() {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            let _ = Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "poppler-utils",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        poppler_present()
    });
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("pdftotext/pdftoppm missing: install poppler-utils");
        }
        eprintln!(
            "skipped: install poppler-utils (pdftotext, pdftoppm) to run the invoice PDF tests"
        );
    }
    available
}

/// A rendered invoice and what poppler makes of it.
struct Rendered {
    pdf: Vec<u8>,
    dir: tempfile::TempDir,
    pdf_path: PathBuf,
    /// One text per page, U+00A0 read as a plain space.
    pages: Vec<String>,
}

impl Rendered {
    fn text(&self) -> String {
        self.pages.join("\n")
    }

    fn assert_shows(&self, expected: &str) {
        let text = self.text();
        assert!(
            text.contains(expected),
            "the PDF's text lacks {expected:?}; it reads:\n{text}"
        );
    }

    fn assert_lacks(&self, unexpected: &str) {
        let text = self.text();
        assert!(
            !text.contains(unexpected),
            "the PDF's text shows {unexpected:?} but should not; it reads:\n{text}"
        );
    }

    /// Rasterises every page; returns the PNG files.
    fn pngs(&self, dpi: u32) -> Vec<PathBuf> {
        let prefix = self.dir.path().join("page");
        let status = Command::new("pdftoppm")
            .args(["-png", "-r", &dpi.to_string()])
            .arg(&self.pdf_path)
            .arg(&prefix)
            .status()
            .unwrap();
        assert!(status.success(), "pdftoppm failed on the PDF");
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "png"))
            .collect();
        pngs.sort();
        pngs
    }
}

fn render(invoice: &Invoice) -> Rendered {
    let pdf = render_invoice(invoice).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("invoice.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let text_path = dir.path().join("invoice.txt");
    let output = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&pdf_path)
        .arg(&text_path)
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "pdftotext complained: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&text_path)
        .unwrap()
        .replace('\u{a0}', " ");
    // pdftotext ends each page with a form feed.
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    if pages.last().is_some_and(|last| last.trim().is_empty()) {
        pages.pop();
    }
    Rendered {
        pdf,
        dir,
        pdf_path,
        pages,
    }
}

// ---------------------------------------------------------------------------
// Invoices built by hand

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn seller() -> Party {
    Party {
        name: "Zażółć Gęślą Jaźń sp. z o.o.".into(),
        nip: Some("7251234567".into()),
        nip_country: None,
        street: "ul. Źródlana 5/7".into(),
        postcode: "90-001".into(),
        city: "Łódź".into(),
        country: "".into(),
    }
}

fn company_buyer() -> Party {
    Party {
        name: "Świętokrzyskie Żłobki Łączne S.A.".into(),
        nip: Some("5260001246".into()),
        nip_country: Some("PL".into()),
        street: "ul. Ćmielowska 12 m. 3".into(),
        postcode: "25-001".into(),
        city: "Kielce".into(),
        country: "Polska".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn line(
    position: u32,
    name: &str,
    quantity: Decimal,
    unit_net_price: Decimal,
    discount_percent: Decimal,
    vat: VatRate,
    net: Decimal,
    gross: Decimal,
) -> InvoiceLine {
    InvoiceLine {
        position,
        name: name.into(),
        code: format!("KOD-{position}"),
        unit: "szt.".into(),
        quantity,
        unit_net_price,
        discount_percent,
        vat,
        net,
        gross,
    }
}

fn pct(rate: Decimal) -> VatRate {
    VatRate::Percent(rate)
}

/// Three lines at two rates, with a KSeF number.
///
/// 3 × 33,33 = 99,99 net; 99,99 × 1,23 = 122,9877 → 122,99 gross.
/// 2 × 45,00 = 90,00 net at 5 %; 90,00 × 1,05 = 94,50 gross.
/// 1 × 1 234,56 net; × 1,23 = 1 518,5088 → 1 518,51 gross.
/// 23 %: net 99,99 + 1 234,56 = 1 334,55; VAT 1 334,55 × 0,23 = 306,9465
///       → 306,95; gross 1 641,50 (= 122,99 + 1 518,51).
/// 5 %: 90,00 / 4,50 / 94,50.
/// Totals: net 1 424,55; VAT 311,45; gross 1 736,00.
fn typical_invoice() -> Invoice {
    Invoice {
        document_id: 1201,
        number: "FS/12/2026".into(),
        corrects: None,
        correction_reason: None,
        corrected_issued_on: None,
        corrected_ksef_number: None,
        issued_on: date("2026-03-02"),
        sold_on: date("2026-02-28"),
        seller: seller(),
        buyer: company_buyer(),
        payment_form: "przelew".into(),
        payment_due: date("2026-03-16"),
        currency: "".into(),
        exchange_rate: None,
        lines: vec![
            line(
                1,
                "Kółko zębate ąćęłńóśźż",
                dec!(3),
                dec!(33.33),
                dec!(0),
                pct(dec!(23)),
                dec!(99.99),
                dec!(122.99),
            ),
            line(
                2,
                "Książka ĄĆĘŁŃÓŚŹŻ",
                dec!(2.000),
                dec!(45),
                dec!(0),
                pct(dec!(5)),
                dec!(90.00),
                dec!(94.50),
            ),
            line(
                3,
                "Usługa montażu",
                dec!(1),
                dec!(1234.56),
                dec!(0),
                pct(dec!(23)),
                dec!(1234.56),
                dec!(1518.51),
            ),
        ],
        vat_summary: vec![
            VatSummary {
                rate: pct(dec!(23)),
                net: dec!(1334.55),
                vat: dec!(306.95),
                gross: dec!(1641.50),
            },
            VatSummary {
                rate: pct(dec!(5)),
                net: dec!(90.00),
                vat: dec!(4.50),
                gross: dec!(94.50),
            },
        ],
        total_net: dec!(1424.55),
        total_vat: dec!(311.45),
        total_gross: dec!(1736.00),
        split_payment: false,
        cash_accounting: false,
        ksef_number: Some("7251234567-20260302-4F3A2B1C0D9E-AB".into()),
        ksef_accepted_at: Some(
            NaiveDateTime::parse_from_str("2026-03-02 10:15:00", "%Y-%m-%d %H:%M:%S").unwrap(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn a_typical_invoice_shows_every_field_to_the_grosz() {
    if !poppler() {
        return;
    }
    let rendered = render(&typical_invoice());
    for expected in [
        "Faktura VAT FS/12/2026",
        "Numer KSeF: 7251234567-20260302-4F3A2B1C0D9E-AB",
        "Data przyjęcia w KSeF: 2026-03-02 10:15:00",
        "Data wystawienia: 2026-03-02",
        "Data sprzedaży: 2026-02-28",
        "Sprzedawca",
        "Zażółć Gęślą Jaźń sp. z o.o.",
        "ul. Źródlana 5/7",
        "90-001 Łódź",
        "NIP: 7251234567",
        "Nabywca",
        "Świętokrzyskie Żłobki Łączne S.A.",
        "ul. Ćmielowska 12 m. 3",
        "25-001 Kielce",
        // A Polish buyer: no "PL" before the NIP.
        "NIP: 5260001246",
        "Lp.",
        "Nazwa",
        "Ilość",
        "J.m.",
        "VAT",
        // Polish letters extracted intact, lower and upper case.
        "Kółko zębate ąćęłńóśźż",
        "Książka ĄĆĘŁŃÓŚŹŻ",
        "Usługa montażu",
        "szt.",
        "33,33",
        "99,99",
        "122,99",
        "45,00",
        "90,00",
        "94,50",
        "1 234,56",
        "1 518,51",
        "23%",
        "5%",
        "Stawka",
        "Netto",
        "Brutto",
        "Razem",
        "1 334,55",
        "306,95",
        "1 641,50",
        "4,50",
        "1 424,55",
        "311,45",
        "1 736,00",
        "Do zapłaty: 1 736,00 PLN",
        "Forma płatności: przelew",
        "Termin płatności: 2026-03-16",
        "Strona 1 z 1",
    ] {
        rendered.assert_shows(expected);
    }
    // The quantity "2.000" prints as "2", the line's position before it.
    let book_row = rendered
        .text()
        .lines()
        .find(|row| row.contains("Książka"))
        .unwrap()
        .to_string();
    let cells: Vec<&str> = book_row.split_whitespace().collect();
    assert_eq!(cells[0], "2", "{book_row}");
    assert!(
        cells.contains(&"2") && !book_row.contains("2,000"),
        "{book_row}"
    );
    // Polska is not printed as a country; no discount column without discounts;
    // none of the conditional notes.
    for absent in [
        "Polska",
        "PL5260001246",
        "Rabat",
        "oczekuje na nadanie",
        "mechanizm podzielonej płatności",
        "metoda kasowa",
        "Kurs waluty",
        "VAT w PLN",
        "Faktura korygująca",
    ] {
        rendered.assert_lacks(absent);
    }
}

#[test]
fn ksef_number_pending_then_assigned() {
    if !poppler() {
        return;
    }
    let mut pending = typical_invoice();
    pending.ksef_number = None;
    pending.ksef_accepted_at = None;
    let before = render(&pending);
    before.assert_shows("Numer KSeF: oczekuje na nadanie");
    before.assert_lacks("7251234567-20260302-4F3A2B1C0D9E-AB");
    before.assert_lacks("Data przyjęcia w KSeF");

    let after = render(&typical_invoice());
    after.assert_shows("Numer KSeF: 7251234567-20260302-4F3A2B1C0D9E-AB");
    after.assert_lacks("oczekuje na nadanie");
}

/// A correction returning one of the three gears, with a 10 % discount on
/// a replacement, split payment and cash accounting.
///
/// Returned: −1 × 33,33 = −33,33 net; × 1,23 = −40,9959 → −41,00 gross.
/// Replacement: 1 × 50,00 − 10 % = 45,00 net; × 1,23 = 55,35 gross.
/// 23 %: net 11,67; VAT 11,67 × 0,23 = 2,6841 → 2,68; gross 14,35
///       (= −41,00 + 55,35).
#[test]
fn a_correction_shows_what_it_corrects_and_why() {
    if !poppler() {
        return;
    }
    let mut invoice = typical_invoice();
    invoice.number = "FSKOR/3/2026".into();
    invoice.corrects = Some("FS/12/2026".into());
    invoice.correction_reason = Some("Zwrot towaru – uszkodzona przesyłka".into());
    invoice.corrected_issued_on = Some(date("2026-03-02"));
    invoice.corrected_ksef_number = Some("7251801126-20260302-0A1B2C3D4E5F-60".into());
    invoice.split_payment = true;
    invoice.cash_accounting = true;
    invoice.lines = vec![
        line(
            1,
            "Kółko zębate (zwrot)",
            dec!(-1),
            dec!(33.33),
            dec!(0),
            pct(dec!(23)),
            dec!(-33.33),
            dec!(-41.00),
        ),
        line(
            2,
            "Kółko zębate wzmocnione",
            dec!(1),
            dec!(50),
            dec!(10),
            pct(dec!(23)),
            dec!(45.00),
            dec!(55.35),
        ),
    ];
    invoice.vat_summary = vec![VatSummary {
        rate: pct(dec!(23)),
        net: dec!(11.67),
        vat: dec!(2.68),
        gross: dec!(14.35),
    }];
    invoice.total_net = dec!(11.67);
    invoice.total_vat = dec!(2.68);
    invoice.total_gross = dec!(14.35);

    let rendered = render(&invoice);
    for expected in [
        "Faktura korygująca FSKOR/3/2026",
        "do faktury FS/12/2026 z dnia 2026-03-02",
        "Numer KSeF faktury korygowanej: 7251801126-20260302-0A1B2C3D4E5F-60",
        "Przyczyna korekty: Zwrot towaru – uszkodzona przesyłka",
        "-1",
        "-33,33",
        "-41,00",
        "50,00",
        "Rabat",
        "10",
        "45,00",
        "55,35",
        "11,67",
        "2,68",
        "Do zapłaty: 14,35 PLN",
        "mechanizm podzielonej płatności",
        "metoda kasowa",
    ] {
        rendered.assert_shows(expected);
    }
    rendered.assert_lacks("Faktura VAT FS");
}

/// In euro to a German company: 1 × 100,00 EUR at 23 % = 23,00 EUR VAT;
/// at 4,3210 PLN/EUR that is 23,00 × 4,3210 = 99,383 → 99,38 PLN.
#[test]
fn a_foreign_currency_invoice_shows_its_rate_and_vat_in_pln() {
    if !poppler() {
        return;
    }
    let mut invoice = typical_invoice();
    invoice.currency = "EUR".into();
    invoice.exchange_rate = Some(ExchangeRate {
        rate: dec!(4.321),
        date: date("2026-02-27"),
        total_vat_pln: dec!(99.38),
    });
    invoice.buyer = Party {
        name: "Müller & Söhne GmbH".into(),
        nip: Some("123456789".into()),
        nip_country: Some("DE".into()),
        street: "Königstraße 1".into(),
        postcode: "70173".into(),
        city: "Stuttgart".into(),
        country: "Niemcy".into(),
    };
    invoice.lines = vec![line(
        1,
        "Łożysko kulkowe",
        dec!(1),
        dec!(100),
        dec!(0),
        pct(dec!(23)),
        dec!(100),
        dec!(123),
    )];
    invoice.vat_summary = vec![VatSummary {
        rate: pct(dec!(23)),
        net: dec!(100),
        vat: dec!(23),
        gross: dec!(123),
    }];
    invoice.total_net = dec!(100);
    invoice.total_vat = dec!(23);
    invoice.total_gross = dec!(123);

    let rendered = render(&invoice);
    for expected in [
        "Kurs waluty: 1 EUR = 4,3210 PLN z dnia 2026-02-27",
        "VAT w PLN: 99,38 PLN",
        "Do zapłaty: 123,00 EUR",
        "Müller & Söhne GmbH",
        "Königstraße 1",
        "70173 Stuttgart",
        "Niemcy",
        "NIP: DE123456789",
        "100,00",
        "23,00",
    ] {
        rendered.assert_shows(expected);
    }
}

/// 300 lines of 1 × 10,00 at 23 % (12,30 gross each): 3 000,00 net,
/// 690,00 VAT, 3 690,00 gross.
fn long_invoice() -> Invoice {
    let mut invoice = typical_invoice();
    invoice.lines = (1..=300)
        .map(|position| {
            line(
                position,
                &format!("Towar nr {position} – żółta łódź"),
                dec!(1),
                dec!(10),
                dec!(0),
                pct(dec!(23)),
                dec!(10),
                dec!(12.30),
            )
        })
        .collect();
    invoice.vat_summary = vec![VatSummary {
        rate: pct(dec!(23)),
        net: dec!(3000),
        vat: dec!(690),
        gross: dec!(3690),
    }];
    invoice.total_net = dec!(3000);
    invoice.total_vat = dec!(690);
    invoice.total_gross = dec!(3690);
    invoice
}

#[test]
fn three_hundred_lines_span_pages_with_the_totals_last_and_stay_under_2_mb() {
    if !poppler() {
        return;
    }
    let rendered = render(&long_invoice());
    eprintln!(
        "300-line invoice: {} bytes, {} pages",
        rendered.pdf.len(),
        rendered.pages.len()
    );
    assert!(
        rendered.pdf.len() < 2 * 1024 * 1024,
        "{} bytes",
        rendered.pdf.len()
    );
    let page_count = rendered.pages.len();
    assert!(page_count >= 4, "300 lines on {page_count} pages");

    for (index, page) in rendered.pages.iter().enumerate() {
        let footer = format!("Strona {} z {page_count}", index + 1);
        assert!(
            page.contains(&footer),
            "page {} lacks {footer:?}",
            index + 1
        );
        assert!(
            page.contains("Wartość"),
            "page {} lacks the table header",
            index + 1
        );
    }
    let last = &rendered.pages[page_count - 1];
    for expected in [
        "Towar nr 300 – żółta łódź",
        "Razem",
        "3 000,00",
        "690,00",
        "3 690,00",
        "Do zapłaty: 3 690,00 PLN",
    ] {
        assert!(
            last.contains(expected),
            "the last page lacks {expected:?}:\n{last}"
        );
    }
    assert!(!rendered.pages[0].contains("Towar nr 300 –"));
    assert!(!rendered.pages[0].contains("Razem"));
    // Every line is there, once, in order.
    let text = rendered.text();
    let mut from = 0;
    for position in 1..=300 {
        let needle = format!("Towar nr {position} – żółta łódź");
        let found = text[from..]
            .find(&needle)
            .unwrap_or_else(|| panic!("line {position} missing or out of order"));
        from += found + needle.len();
    }

    let pngs = rendered.pngs(50);
    assert_eq!(pngs.len(), page_count, "one PNG per page");
    for png in &pngs {
        let bytes = std::fs::read(png).unwrap();
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
            "{png:?}"
        );
    }
}

#[test]
fn the_same_invoice_gives_the_same_bytes() {
    let first = render_invoice(&typical_invoice()).unwrap();
    let second = render_invoice(&typical_invoice()).unwrap();
    assert!(first == second, "two renderings of one invoice differ");
    let third = render_invoice(&long_invoice()).unwrap();
    assert!(third == render_invoice(&long_invoice()).unwrap());
    // No viewer-visible timestamps either.
    let raw = String::from_utf8_lossy(&first);
    assert!(!raw.contains("CreationDate") && !raw.contains("ModDate"));
}

/// Data from outside may be empty, absurdly long or huge: a PDF still comes
/// out, and a long name is wrapped, never cut.
#[test]
fn hostile_data_still_renders_and_long_names_are_never_cut() {
    if !poppler() {
        return;
    }
    let mut empty = typical_invoice();
    empty.number = String::new();
    empty.seller = Party::default();
    empty.buyer = Party::default();
    empty.payment_form = String::new();
    empty.currency = String::new();
    empty.lines = Vec::new();
    empty.vat_summary = Vec::new();
    empty.total_net = Decimal::ZERO;
    empty.total_vat = Decimal::ZERO;
    empty.total_gross = Decimal::ZERO;
    let rendered = render(&empty);
    rendered.assert_shows("Do zapłaty: 0,00 PLN");
    assert_eq!(rendered.pngs(30).len(), 1);

    let mut wild = typical_invoice();
    // Words w0001 … w1500: taller than one page in the name column.
    let long_name: Vec<String> = (1..=1500).map(|word| format!("w{word:04}")).collect();
    let unbroken = "Ż".repeat(400);
    wild.lines = vec![
        line(
            1,
            &long_name.join(" "),
            Decimal::MAX,
            Decimal::MAX,
            dec!(0.0001),
            pct(dec!(23)),
            Decimal::MAX,
            Decimal::MIN,
        ),
        line(
            2,
            &unbroken,
            dec!(0.00001),
            dec!(0.00001),
            dec!(0),
            VatRate::Exempt,
            dec!(0),
            dec!(0),
        ),
        line(
            3,
            "tab\tnew\nline 漢字 😀 \u{0}",
            dec!(1),
            dec!(1),
            dec!(0),
            VatRate::ReverseCharge,
            dec!(1),
            dec!(1),
        ),
    ];
    wild.seller.name = "Bardzo długa nazwa sprzedawcy ".repeat(40);
    wild.total_gross = Decimal::MAX;
    let rendered = render(&wild);
    assert!(
        rendered.pages.len() >= 2,
        "a name taller than a page goes on over the next"
    );
    let text = rendered.text();
    let mut from = 0;
    for word in &long_name {
        let found = text[from..]
            .find(word.as_str())
            .unwrap_or_else(|| panic!("{word} of the long name missing or out of order"));
        from += found + word.len();
    }
    let letters: usize = text.matches('Ż').count();
    assert!(
        letters >= 400,
        "only {letters} of 400 letters of the unbroken name extracted"
    );
    // Decimal::MAX, grouped: 79 228 162 514 264 337 593 543 950 335,00.
    rendered.assert_shows("79 228 162 514 264 337 593 543 950 335,00");
    rendered.assert_shows("-79 228 162 514 264 337 593 543 950 335,00");
    rendered.assert_shows("odwrotne obciążenie");
    assert!(
        text.split_whitespace().any(|word| word == "zw"),
        "the exempt rate is not shown as zw"
    );
}

/// Writes docs/images/invoice-example.png when WRITE_INVOICE_EXAMPLE=1;
/// otherwise only checks that the typical invoice rasterises.
#[test]
fn typical_invoice_rasterises_and_can_be_pictured_for_the_docs() {
    if !poppler() {
        return;
    }
    let rendered = render(&typical_invoice());
    let pngs = rendered.pngs(80);
    assert_eq!(pngs.len(), 1);
    let png = std::fs::read(&pngs[0]).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    eprintln!("typical invoice: {} bytes of PDF", rendered.pdf.len());
    if std::env::var("WRITE_INVOICE_EXAMPLE").as_deref() == Ok("1") {
        let target =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images/invoice-example.png");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, &png).unwrap();
        eprintln!("wrote {}", target.display());
    }
}
