//! The buyer's copy of an invoice (FS) or its correction (FSKOR) as a PDF:
//! A4, in Polish, with the fields of art. 106e of the VAT act that the
//! data carries (see `docs/INVOICES.md` for the mapping).
//!
//! The PDF is written with `pdf-writer`; the text is set in DejaVu Sans,
//! embedded as a subset (CID font, Identity-H) with a ToUnicode map so that
//! Polish letters both render and copy out intact. The output is
//! deterministic: no dates, no random ids, no hash-map order.
//!
//! Layout is a simple top-down flow: each piece of text is wrapped to its
//! width and a new page starts when the next piece does not fit; the lines
//! table repeats its header on every page and a line too tall for one page
//! goes on over the next. Amounts are printed as the data says them; nothing
//! is recomputed.

use std::collections::BTreeMap;
use std::io::Write;

use contract::{Invoice, InvoiceLine, Party, VatRate};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rust_decimal::{Decimal, RoundingStrategy};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId};

static REGULAR_TTF: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// Why an invoice could not be rendered. Input data never causes one: only
/// a broken embedded font or a failing compressor would.
#[derive(Debug, thiserror::Error)]
pub enum InvoicePdfError {
    #[error("the embedded font {font} cannot be read: {reason}")]
    Font { font: &'static str, reason: String },
    #[error("subsetting the embedded font {font} failed: {reason}")]
    Subset { font: &'static str, reason: String },
    #[error("compressing a PDF stream failed: {0}")]
    Compress(#[from] std::io::Error),
}

/// Renders the buyer's copy of `invoice` as a PDF.
pub fn render_invoice(invoice: &Invoice) -> Result<Vec<u8>, InvoicePdfError> {
    let mut doc = Document::new()?;
    doc.new_page();
    draw_heading(&mut doc, invoice);
    draw_parties(&mut doc, &invoice.seller, &invoice.buyer);
    // The last line goes with the totals: a page that shows them also shows it.
    let totals_height = vat_summary_height(invoice) + payment_height(&doc, invoice);
    draw_lines_table(&mut doc, &invoice.lines, totals_height);
    draw_vat_summary(&mut doc, invoice);
    draw_payment(&mut doc, invoice);
    doc.finish(&document_title(invoice), &invoice.number)
}

// ---------------------------------------------------------------------------
// Number formatting (Polish: comma for decimals, space between thousands).

/// Money with two decimals, e.g. "1 234,56". Exact for values with at most
/// two decimals; more are rounded half away from zero (never truncated).
pub fn format_money(amount: Decimal) -> String {
    format_fixed(amount, 2)
}

/// `amount` rounded half away from zero to `decimals` places and padded to
/// them, with the Polish separators.
fn format_fixed(amount: Decimal, decimals: u32) -> String {
    let mut rounded =
        amount.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    if rounded.is_zero() {
        // No "-0,00".
        rounded = Decimal::ZERO;
    }
    group_digits(&pad_decimals(&rounded.to_string(), decimals))
}

/// "12.5" → "12.50" for `decimals` = 2: padded as text, since rescaling a
/// value near the type's limit would round it.
fn pad_decimals(plain: &str, decimals: u32) -> String {
    let present = plain
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let missing = usize::try_from(decimals)
        .unwrap_or(0)
        .saturating_sub(present);
    let mut padded = plain.to_string();
    if missing > 0 && present == 0 {
        padded.push('.');
    }
    padded.extend(std::iter::repeat_n('0', missing));
    padded
}

/// A quantity or percentage: up to four decimals, trailing zeros dropped.
fn format_trimmed(amount: Decimal) -> String {
    let mut rounded = amount
        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    if rounded.is_zero() {
        rounded = Decimal::ZERO;
    }
    group_digits(&rounded.to_string())
}

/// A unit price: two decimals, or four when the price has more than two.
fn format_unit_price(price: Decimal) -> String {
    if price.round_dp(2) == price {
        format_fixed(price, 2)
    } else {
        format_fixed(price, 4)
    }
}

/// An exchange rate: at least four decimals (as NBP publishes them), all of
/// them when it has more.
fn format_exchange_rate(rate: Decimal) -> String {
    let scale = rate.normalize().scale().max(4);
    format_fixed(rate, scale)
}

/// "-1234567.89" → "-1 234 567,89".
fn group_digits(plain: &str) -> String {
    let (sign, unsigned) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain),
    };
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    let mut grouped = String::with_capacity(plain.len() + plain.len() / 3 + 1);
    grouped.push_str(sign);
    for (index, digit) in integer.chars().enumerate() {
        if index > 0 && (integer.len() - index) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push(',');
        grouped.push_str(fraction);
    }
    grouped
}

/// "23%", "5,5%", or the letters of a non-percentage rate ("zw", "np", "oo").
fn format_vat_rate(rate: &VatRate) -> String {
    match rate {
        VatRate::Percent(percent) => format!("{}%", format_trimmed(*percent)),
        other => other.to_string(),
    }
}

fn currency_code(invoice: &Invoice) -> &str {
    match invoice.currency.trim() {
        "" => "PLN",
        code => code,
    }
}

// ---------------------------------------------------------------------------
// The invoice's parts, top to bottom.

const TITLE_SIZE: f32 = 15.0;
const TEXT_SIZE: f32 = 9.0;
const SMALL_SIZE: f32 = 8.0;
const TABLE_SIZE: f32 = 7.5;

fn document_title(invoice: &Invoice) -> String {
    if invoice.is_correction() {
        format!("Faktura korygująca {}", invoice.number)
    } else {
        format!("Faktura VAT {}", invoice.number)
    }
}

fn draw_heading(doc: &mut Document, invoice: &Invoice) {
    doc.paragraph(
        &document_title(invoice),
        Style::Bold,
        TITLE_SIZE,
        CONTENT_WIDTH,
    );
    doc.gap(2.0);
    if let Some(corrected) = &invoice.corrects {
        let issued = invoice
            .corrected_issued_on
            .map(|d| format!(" z dnia {}", d.format("%Y-%m-%d")))
            .unwrap_or_default();
        doc.paragraph(
            &format!("do faktury {corrected}{issued}"),
            Style::Bold,
            TEXT_SIZE,
            CONTENT_WIDTH,
        );
        if let Some(number) = &invoice.corrected_ksef_number {
            doc.paragraph(
                &format!("Numer KSeF faktury korygowanej: {number}"),
                Style::Regular,
                TEXT_SIZE,
                CONTENT_WIDTH,
            );
        }
        let reason = invoice.correction_reason.as_deref().unwrap_or("").trim();
        let reason = if reason.is_empty() {
            "nie podano"
        } else {
            reason
        };
        doc.paragraph(
            &format!("Przyczyna korekty: {reason}"),
            Style::Regular,
            TEXT_SIZE,
            CONTENT_WIDTH,
        );
    }
    match &invoice.ksef_number {
        Some(number) => {
            doc.paragraph(
                &format!("Numer KSeF: {number}"),
                Style::Bold,
                TEXT_SIZE,
                CONTENT_WIDTH,
            );
            if let Some(accepted) = invoice.ksef_accepted_at {
                doc.paragraph(
                    &format!(
                        "Data przyjęcia w KSeF: {}",
                        accepted.format("%Y-%m-%d %H:%M:%S")
                    ),
                    Style::Regular,
                    TEXT_SIZE,
                    CONTENT_WIDTH,
                );
            }
        }
        None => {
            // Phase one: the buyer gets the invoice before KSeF numbers it;
            // the version with the number replaces this one.
            doc.paragraph(
                "Numer KSeF: oczekuje na nadanie",
                Style::Bold,
                TEXT_SIZE,
                CONTENT_WIDTH,
            );
        }
    }
    doc.paragraph(
        &format!("Data wystawienia: {}", invoice.issued_on.format("%Y-%m-%d")),
        Style::Regular,
        TEXT_SIZE,
        CONTENT_WIDTH,
    );
    doc.paragraph(
        &format!("Data sprzedaży: {}", invoice.sold_on.format("%Y-%m-%d")),
        Style::Regular,
        TEXT_SIZE,
        CONTENT_WIDTH,
    );
    doc.gap(10.0);
}

/// The lines of a party's block, below its heading.
fn party_lines(party: &Party, nip_always: bool) -> Vec<(Style, String)> {
    let mut lines = vec![(Style::Bold, party.name.clone())];
    if !party.street.trim().is_empty() {
        lines.push((Style::Regular, party.street.clone()));
    }
    let town = format!("{} {}", party.postcode.trim(), party.city.trim());
    if !town.trim().is_empty() {
        lines.push((Style::Regular, town.trim().to_string()));
    }
    let country = party.country.trim();
    if !country.is_empty() && !is_poland(country) {
        lines.push((Style::Regular, country.to_string()));
    }
    let nip = party.nip.as_deref().map(str::trim).unwrap_or("");
    let prefix = party
        .nip_country
        .as_deref()
        .map(str::trim)
        .filter(|prefix| !prefix.is_empty() && !prefix.eq_ignore_ascii_case("PL"))
        .unwrap_or("");
    if !nip.is_empty() || nip_always {
        lines.push((Style::Regular, format!("NIP: {prefix}{nip}")));
    }
    lines
}

fn is_poland(country: &str) -> bool {
    ["polska", "pl", "poland"]
        .iter()
        .any(|name| country.eq_ignore_ascii_case(name))
}

fn draw_parties(doc: &mut Document, seller: &Party, buyer: &Party) {
    let column_width = (CONTENT_WIDTH - 20.0) / 2.0;
    let buyer_x = MARGIN_LEFT + column_width + 20.0;
    let wrap_block = |doc: &Document, heading: &str, lines: Vec<(Style, String)>| {
        let mut wrapped = vec![(Style::Bold, heading.to_string())];
        for (style, text) in lines {
            for piece in doc.wrap(&text, style, TEXT_SIZE, column_width) {
                wrapped.push((style, piece));
            }
        }
        wrapped
    };
    let seller_lines = wrap_block(doc, "Sprzedawca", party_lines(seller, true));
    let buyer_lines = wrap_block(doc, "Nabywca", party_lines(buyer, false));
    let leading = TEXT_SIZE * LEADING_FACTOR;
    for row in 0..seller_lines.len().max(buyer_lines.len()) {
        doc.ensure_space(leading);
        let baseline = doc.y - TEXT_SIZE;
        if let Some((style, text)) = seller_lines.get(row) {
            doc.text(MARGIN_LEFT, baseline, *style, TEXT_SIZE, text);
        }
        if let Some((style, text)) = buyer_lines.get(row) {
            doc.text(buyer_x, baseline, *style, TEXT_SIZE, text);
        }
        doc.y -= leading;
        if row == 0 {
            doc.y -= 2.0;
        }
    }
    doc.gap(12.0);
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

struct Column {
    header: &'static str,
    width: f32,
    align: Align,
}

const CELL_PADDING: f32 = 3.0;

fn table_columns(with_discount: bool) -> Vec<Column> {
    let fixed = |header, width, align| Column {
        header,
        width,
        align,
    };
    let mut columns = vec![
        fixed("Lp.", 22.0, Align::Right),
        fixed("Nazwa", 0.0, Align::Left),
        fixed("Ilość", 44.0, Align::Right),
        fixed("J.m.", 30.0, Align::Left),
        fixed("Cena netto", 56.0, Align::Right),
    ];
    if with_discount {
        columns.push(fixed("Rabat %", 36.0, Align::Right));
    }
    columns.extend([
        fixed("Wartość netto", 64.0, Align::Right),
        fixed("VAT", 30.0, Align::Right),
        fixed("Wartość brutto", 64.0, Align::Right),
    ]);
    let taken: f32 = columns.iter().map(|column| column.width).sum();
    columns[1].width = CONTENT_WIDTH - taken;
    columns
}

fn line_cells(line: &InvoiceLine, with_discount: bool) -> Vec<String> {
    let mut cells = vec![
        line.position.to_string(),
        line.name.clone(),
        format_trimmed(line.quantity),
        line.unit.clone(),
        format_unit_price(line.unit_net_price),
    ];
    if with_discount {
        cells.push(format_trimmed(line.discount_percent));
    }
    cells.extend([
        format_money(line.net),
        format_vat_rate(&line.vat),
        format_money(line.gross),
    ]);
    cells
}

/// Index of the column whose text wraps (the name); the others are short.
const NAME_COLUMN: usize = 1;

/// The table of lines; `tail_height` is what must follow the last line on
/// its page (when a page can hold both).
fn draw_lines_table(doc: &mut Document, lines: &[InvoiceLine], tail_height: f32) {
    let with_discount = lines.iter().any(|line| !line.discount_percent.is_zero());
    let columns = table_columns(with_discount);
    let leading = TABLE_SIZE * LEADING_FACTOR;
    let header_height = table_header_height(doc, &columns);

    doc.ensure_space(header_height + leading + 2.0 * CELL_PADDING);
    draw_table_header(doc, &columns);
    for (index, line) in lines.iter().enumerate() {
        let is_last = index + 1 == lines.len();
        let cells = line_cells(line, with_discount);
        let name_width = columns[NAME_COLUMN].width - 2.0 * CELL_PADDING;
        let name_lines = doc.wrap(&cells[NAME_COLUMN], Style::Regular, TABLE_SIZE, name_width);
        // Other cells may wrap too (a long unit); the row is as tall as its tallest cell.
        let wrapped_cells: Vec<Vec<String>> = cells
            .iter()
            .zip(&columns)
            .enumerate()
            .map(|(index, (text, column))| {
                if index == NAME_COLUMN {
                    name_lines.clone()
                } else if column.align == Align::Left {
                    doc.wrap(
                        text,
                        Style::Regular,
                        TABLE_SIZE,
                        column.width - 2.0 * CELL_PADDING,
                    )
                } else {
                    vec![text.clone()]
                }
            })
            .collect();
        let row_lines = wrapped_cells.iter().map(Vec::len).max().unwrap_or(1).max(1);

        let mut drawn = 0;
        let mut on_fresh_page = false;
        while drawn < row_lines {
            let fit = doc.lines_that_fit(leading, 2.0 * CELL_PADDING);
            let left = row_lines - drawn;
            // A row that fits on one page is kept whole; a taller one goes on
            // over the next pages.
            let per_page = doc.lines_per_page(leading, 2.0 * CELL_PADDING, header_height);
            let keep_whole = drawn == 0 && left <= per_page;
            let tail_lines = (tail_height / leading).ceil() as usize;
            let keep_with_tail = is_last && keep_whole && left + tail_lines <= per_page;
            let needed = if keep_with_tail {
                left + tail_lines
            } else {
                left
            };
            if fit == 0 || (keep_whole && fit < needed && !on_fresh_page) {
                doc.new_page();
                draw_table_header(doc, &columns);
                on_fresh_page = true;
                continue;
            }
            let count = left.min(fit.max(1));
            draw_row_part(doc, &columns, &wrapped_cells, drawn, count, leading);
            drawn += count;
            on_fresh_page = false;
        }
    }
    doc.gap(TABLE_GAP_AFTER);
}

fn table_header_height(doc: &Document, columns: &[Column]) -> f32 {
    let lines = columns
        .iter()
        .map(|column| {
            doc.wrap(
                column.header,
                Style::Bold,
                TABLE_SIZE,
                column.width - 2.0 * CELL_PADDING,
            )
            .len()
        })
        .max()
        .unwrap_or(1);
    lines as f32 * TABLE_SIZE * LEADING_FACTOR + 2.0 * CELL_PADDING
}

fn draw_table_header(doc: &mut Document, columns: &[Column]) {
    let height = table_header_height(doc, columns);
    let top = doc.y;
    doc.fill_rect(MARGIN_LEFT, top - height, CONTENT_WIDTH, height, 0.88);
    let mut x = MARGIN_LEFT;
    for column in columns {
        let pieces = doc.wrap(
            column.header,
            Style::Bold,
            TABLE_SIZE,
            column.width - 2.0 * CELL_PADDING,
        );
        for (index, piece) in pieces.iter().enumerate() {
            let baseline =
                top - CELL_PADDING - TABLE_SIZE - index as f32 * TABLE_SIZE * LEADING_FACTOR;
            doc.cell_text(x, column, baseline, Style::Bold, piece);
        }
        x += column.width;
    }
    doc.y -= height;
}

/// Draws lines `first..first + count` of one row (the first part also
/// carries the short cells).
fn draw_row_part(
    doc: &mut Document,
    columns: &[Column],
    wrapped_cells: &[Vec<String>],
    first: usize,
    count: usize,
    leading: f32,
) {
    let top = doc.y;
    let mut x = MARGIN_LEFT;
    for (column, pieces) in columns.iter().zip(wrapped_cells) {
        for (offset, piece) in pieces.iter().skip(first).take(count).enumerate() {
            let baseline = top - CELL_PADDING - TABLE_SIZE - offset as f32 * leading;
            doc.cell_text(x, column, baseline, Style::Regular, piece);
        }
        x += column.width;
    }
    doc.y -= count as f32 * leading + 2.0 * CELL_PADDING;
    doc.hline(MARGIN_LEFT, MARGIN_LEFT + CONTENT_WIDTH, doc.y, 0.7);
}

const PAYMENT_HEADLINE_SIZE: f32 = 12.0;
const TABLE_GAP_AFTER: f32 = 10.0;

fn vat_summary_row_height() -> f32 {
    TEXT_SIZE * LEADING_FACTOR + 2.0 * CELL_PADDING
}

/// The summary's height with its heading and the gap before it.
fn vat_summary_height(invoice: &Invoice) -> f32 {
    let rows = invoice.vat_summary.len() + 2;
    TABLE_GAP_AFTER + TEXT_SIZE * LEADING_FACTOR + 2.0 + rows as f32 * vat_summary_row_height()
}

fn draw_vat_summary(doc: &mut Document, invoice: &Invoice) {
    let columns = [
        Column {
            header: "Stawka",
            width: 60.0,
            align: Align::Right,
        },
        Column {
            header: "Netto",
            width: 90.0,
            align: Align::Right,
        },
        Column {
            header: "VAT",
            width: 90.0,
            align: Align::Right,
        },
        Column {
            header: "Brutto",
            width: 90.0,
            align: Align::Right,
        },
    ];
    let table_width: f32 = columns.iter().map(|column| column.width).sum();
    let left = MARGIN_LEFT + CONTENT_WIDTH - table_width;
    let row_height = vat_summary_row_height();
    // Keep the summary together when it fits on one page.
    let whole = vat_summary_height(invoice) - TABLE_GAP_AFTER;
    if whole <= CONTENT_TOP - CONTENT_BOTTOM {
        doc.ensure_space(whole);
    }
    doc.ensure_space(TEXT_SIZE * LEADING_FACTOR + row_height);
    doc.text(
        left,
        doc.y - TEXT_SIZE,
        Style::Bold,
        TEXT_SIZE,
        "Podsumowanie według stawek VAT",
    );
    doc.y -= TEXT_SIZE * LEADING_FACTOR + 2.0;

    let draw_row = |doc: &mut Document, cells: [String; 4], style: Style, shaded: bool| {
        doc.ensure_space(row_height);
        let top = doc.y;
        if shaded {
            doc.fill_rect(left, top - row_height, table_width, row_height, 0.88);
        }
        let mut x = left;
        for (column, text) in columns.iter().zip(&cells) {
            doc.cell_text_sized(
                x,
                column,
                top - CELL_PADDING - TEXT_SIZE,
                style,
                TEXT_SIZE,
                text,
            );
            x += column.width;
        }
        doc.y -= row_height;
        doc.hline(left, left + table_width, doc.y, 0.7);
    };
    draw_row(
        doc,
        columns.each_ref().map(|column| column.header.to_string()),
        Style::Bold,
        true,
    );
    for rate in &invoice.vat_summary {
        draw_row(
            doc,
            [
                format_vat_rate(&rate.rate),
                format_money(rate.net),
                format_money(rate.vat),
                format_money(rate.gross),
            ],
            Style::Regular,
            false,
        );
    }
    draw_row(
        doc,
        [
            "Razem".to_string(),
            format_money(invoice.total_net),
            format_money(invoice.total_vat),
            format_money(invoice.total_gross),
        ],
        Style::Bold,
        false,
    );
    doc.gap(12.0);
}

/// What follows the summary: the amount due, payment terms and the
/// annotations the law asks for when they apply.
fn payment_notes(invoice: &Invoice) -> Vec<(Style, f32, String)> {
    let currency = currency_code(invoice);
    let mut notes: Vec<(Style, f32, String)> = vec![(
        Style::Bold,
        PAYMENT_HEADLINE_SIZE,
        format!(
            "Do zapłaty: {} {currency}",
            format_money(invoice.total_gross)
        ),
    )];
    notes.push((
        Style::Regular,
        TEXT_SIZE,
        format!("Forma płatności: {}", invoice.payment_form),
    ));
    notes.push((
        Style::Regular,
        TEXT_SIZE,
        format!(
            "Termin płatności: {}",
            invoice.payment_due.format("%Y-%m-%d")
        ),
    ));
    if let Some(exchange) = &invoice.exchange_rate {
        notes.push((
            Style::Regular,
            TEXT_SIZE,
            format!(
                "Kurs waluty: 1 {currency} = {} PLN z dnia {}",
                format_exchange_rate(exchange.rate),
                exchange.date.format("%Y-%m-%d"),
            ),
        ));
        notes.push((
            Style::Bold,
            TEXT_SIZE,
            format!("VAT w PLN: {} PLN", format_money(exchange.total_vat_pln)),
        ));
    }
    if invoice.split_payment {
        notes.push((
            Style::Bold,
            TEXT_SIZE,
            "mechanizm podzielonej płatności".to_string(),
        ));
    }
    if invoice.cash_accounting {
        notes.push((Style::Bold, TEXT_SIZE, "metoda kasowa".to_string()));
    }
    let reverse_charge = invoice
        .lines
        .iter()
        .any(|line| line.vat == VatRate::ReverseCharge)
        || invoice
            .vat_summary
            .iter()
            .any(|rate| rate.rate == VatRate::ReverseCharge);
    if reverse_charge {
        notes.push((Style::Bold, TEXT_SIZE, "odwrotne obciążenie".to_string()));
    }
    notes
}

fn payment_height(doc: &Document, invoice: &Invoice) -> f32 {
    payment_notes(invoice)
        .iter()
        .map(|(style, size, text)| {
            doc.wrap(text, *style, *size, CONTENT_WIDTH).len() as f32 * size * LEADING_FACTOR + 1.0
        })
        .sum()
}

fn draw_payment(doc: &mut Document, invoice: &Invoice) {
    let notes = payment_notes(invoice);
    for (style, size, text) in notes {
        doc.paragraph(&text, style, size, CONTENT_WIDTH);
        doc.gap(1.0);
    }
}

// ---------------------------------------------------------------------------
// The page model: A4 in points, a cursor moving down, a page per Content.

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN_LEFT: f32 = 40.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN_LEFT;
const CONTENT_TOP: f32 = PAGE_HEIGHT - 42.0;
/// Above the footer with the page number.
const CONTENT_BOTTOM: f32 = 50.0;
const FOOTER_BASELINE: f32 = 28.0;
const LEADING_FACTOR: f32 = 1.3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Regular,
    Bold,
}

struct Document {
    regular: EmbeddedFont,
    bold: EmbeddedFont,
    pages: Vec<Content>,
    /// The top of the free space on the current page.
    y: f32,
}

impl Document {
    fn new() -> Result<Document, InvoicePdfError> {
        Ok(Document {
            regular: EmbeddedFont::new("DejaVuSans", REGULAR_TTF, Name(b"F1"))?,
            bold: EmbeddedFont::new("DejaVuSans-Bold", BOLD_TTF, Name(b"F2"))?,
            pages: Vec::new(),
            y: CONTENT_TOP,
        })
    }

    fn font(&self, style: Style) -> &EmbeddedFont {
        match style {
            Style::Regular => &self.regular,
            Style::Bold => &self.bold,
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = CONTENT_TOP;
    }

    /// Starts a new page unless `height` fits above the bottom margin.
    fn ensure_space(&mut self, height: f32) {
        if self.y - height < CONTENT_BOTTOM && self.y < CONTENT_TOP {
            self.new_page();
        }
    }

    fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    /// How many lines of `leading` (plus `padding` once) fit on this page.
    fn lines_that_fit(&self, leading: f32, padding: f32) -> usize {
        let free = self.y - CONTENT_BOTTOM - padding;
        if free < leading {
            0
        } else {
            (free / leading).floor() as usize
        }
    }

    /// How many fit on a fresh page below a table header of `header_height`.
    fn lines_per_page(&self, leading: f32, padding: f32, header_height: f32) -> usize {
        let free = CONTENT_TOP - CONTENT_BOTTOM - header_height - padding;
        ((free / leading).floor() as usize).max(1)
    }

    fn text_width(&self, text: &str, style: Style, size: f32) -> f32 {
        self.font(style).width(text) * size
    }

    /// Wraps `text` into lines no wider than `width`, at spaces where it can
    /// and inside a word only when the word alone is too wide. Always at
    /// least one line; nothing is dropped.
    fn wrap(&self, text: &str, style: Style, size: f32, width: f32) -> Vec<String> {
        let text = clean_text(text);
        let mut lines = Vec::new();
        let mut current = String::new();
        for word in text.split(' ').filter(|word| !word.is_empty()) {
            let candidate = if current.is_empty() {
                word.to_string()
            } else {
                format!("{current} {word}")
            };
            if self.text_width(&candidate, style, size) <= width {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            // The word on its own line, split where it overflows.
            for ch in word.chars() {
                current.push(ch);
                if self.text_width(&current, style, size) > width && current.chars().count() > 1 {
                    current.pop();
                    lines.push(std::mem::take(&mut current));
                    current.push(ch);
                }
            }
        }
        if !current.is_empty() || lines.is_empty() {
            lines.push(current);
        }
        lines
    }

    /// A wrapped paragraph at the left margin, breaking pages as needed.
    fn paragraph(&mut self, text: &str, style: Style, size: f32, width: f32) {
        let leading = size * LEADING_FACTOR;
        for line in self.wrap(text, style, size, width) {
            self.ensure_space(leading);
            let baseline = self.y - size;
            self.text(MARGIN_LEFT, baseline, style, size, &line);
            self.y -= leading;
        }
    }

    /// Text in a table cell: left- or right-aligned within the padding; a
    /// value wider than its cell is set smaller rather than cut.
    fn cell_text(&mut self, x: f32, column: &Column, baseline: f32, style: Style, text: &str) {
        self.cell_text_sized(x, column, baseline, style, TABLE_SIZE, text);
    }

    fn cell_text_sized(
        &mut self,
        x: f32,
        column: &Column,
        baseline: f32,
        style: Style,
        size: f32,
        text: &str,
    ) {
        let room = column.width - 2.0 * CELL_PADDING;
        let natural = self.text_width(text, style, size);
        let size = if natural > room && natural > 0.0 {
            size * room / natural
        } else {
            size
        };
        let width = self.text_width(text, style, size);
        let start = match column.align {
            Align::Left => x + CELL_PADDING,
            Align::Right => x + column.width - CELL_PADDING - width,
        };
        self.text(start, baseline, style, size, text);
    }

    fn text(&mut self, x: f32, baseline: f32, style: Style, size: f32, text: &str) {
        let font = match style {
            Style::Regular => &mut self.regular,
            Style::Bold => &mut self.bold,
        };
        let encoded = font.encode(&clean_text(text));
        if encoded.is_empty() {
            return;
        }
        let Some(page) = self.pages.last_mut() else {
            return;
        };
        page.begin_text();
        page.set_font(font.resource, size);
        page.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, baseline]);
        page.show(Str(&encoded));
        page.end_text();
    }

    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32) {
        if let Some(page) = self.pages.last_mut() {
            page.set_fill_gray(gray);
            page.rect(x, y, width, height);
            page.fill_nonzero();
            page.set_fill_gray(0.0);
        }
    }

    fn hline(&mut self, from_x: f32, to_x: f32, y: f32, gray: f32) {
        if let Some(page) = self.pages.last_mut() {
            page.set_stroke_gray(gray);
            page.set_line_width(0.5);
            page.move_to(from_x, y);
            page.line_to(to_x, y);
            page.stroke();
            page.set_stroke_gray(0.0);
        }
    }

    /// Adds the footers ("Strona N z M") and writes the PDF.
    fn finish(mut self, title: &str, number: &str) -> Result<Vec<u8>, InvoicePdfError> {
        let page_count = self.pages.len();
        let mut pages = std::mem::take(&mut self.pages);
        for (index, page) in pages.iter_mut().enumerate() {
            self.pages.push(std::mem::replace(page, Content::new()));
            let label = format!("Strona {} z {}", index + 1, page_count);
            let width = self.text_width(&label, Style::Regular, SMALL_SIZE);
            self.text(
                MARGIN_LEFT,
                FOOTER_BASELINE,
                Style::Regular,
                SMALL_SIZE,
                number,
            );
            self.text(
                MARGIN_LEFT + CONTENT_WIDTH - width,
                FOOTER_BASELINE,
                Style::Regular,
                SMALL_SIZE,
                &label,
            );
        }

        let mut next_ref = Ref::new(1);
        let mut alloc = || next_ref.bump();
        let catalog_id = alloc();
        let page_tree_id = alloc();
        let info_id = alloc();
        let regular_refs = FontRefs::allocate(&mut alloc);
        let bold_refs = FontRefs::allocate(&mut alloc);
        let page_ids: Vec<(Ref, Ref)> = (0..self.pages.len()).map(|_| (alloc(), alloc())).collect();

        let mut pdf = Pdf::new();
        pdf.catalog(catalog_id).pages(page_tree_id);
        pdf.document_info(info_id).title(TextStr(title));
        pdf.pages(page_tree_id)
            .kids(page_ids.iter().map(|(page_id, _)| *page_id))
            .count(i32::try_from(page_ids.len()).unwrap_or(i32::MAX));
        for ((page_id, content_id), content) in page_ids.iter().zip(self.pages) {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
            page.parent(page_tree_id);
            page.contents(*content_id);
            page.resources()
                .fonts()
                .pair(self.regular.resource, regular_refs.type0)
                .pair(self.bold.resource, bold_refs.type0);
            page.finish();
            let compressed = deflate(&content.finish())?;
            pdf.stream(*content_id, &compressed)
                .filter(Filter::FlateDecode);
        }
        self.regular.write(&mut pdf, &regular_refs)?;
        self.bold.write(&mut pdf, &bold_refs)?;
        Ok(pdf.finish())
    }
}

/// Control characters (tabs, line breaks from a multi-line ERP field) as
/// plain spaces: the layout breaks lines itself.
fn clean_text(text: &str) -> String {
    text.chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect()
}

fn deflate(data: &[u8]) -> Result<Vec<u8>, InvoicePdfError> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

// ---------------------------------------------------------------------------
// The embedded font: glyphs used are collected while drawing, then the font
// is subset to them and written as a CID font with its widths and a
// ToUnicode map.

struct FontRefs {
    type0: Ref,
    cid: Ref,
    descriptor: Ref,
    file: Ref,
    to_unicode: Ref,
}

impl FontRefs {
    fn allocate(alloc: &mut impl FnMut() -> Ref) -> FontRefs {
        FontRefs {
            type0: alloc(),
            cid: alloc(),
            descriptor: alloc(),
            file: alloc(),
            to_unicode: alloc(),
        }
    }
}

struct EmbeddedFont {
    postscript_name: &'static str,
    data: &'static [u8],
    face: Face<'static>,
    resource: Name<'static>,
    /// Original glyph ids → ids in the subset (which are also the CIDs).
    remapper: GlyphRemapper,
    /// Subset glyph id → (original glyph id, the character it shows).
    used: BTreeMap<u16, (u16, char)>,
    /// Shown for a character the font lacks.
    fallback: (GlyphId, char),
}

impl EmbeddedFont {
    fn new(
        postscript_name: &'static str,
        data: &'static [u8],
        resource: Name<'static>,
    ) -> Result<EmbeddedFont, InvoicePdfError> {
        let face = Face::parse(data, 0).map_err(|error| InvoicePdfError::Font {
            font: postscript_name,
            reason: error.to_string(),
        })?;
        let fallback = ['\u{FFFD}', '?']
            .into_iter()
            .find_map(|ch| face.glyph_index(ch).map(|glyph| (glyph, ch)))
            .ok_or(InvoicePdfError::Font {
                font: postscript_name,
                reason: "no glyph for U+FFFD or '?'".to_string(),
            })?;
        Ok(EmbeddedFont {
            postscript_name,
            data,
            face,
            resource,
            remapper: GlyphRemapper::new(),
            used: BTreeMap::new(),
            fallback,
        })
    }

    fn glyph(&self, ch: char) -> (GlyphId, char) {
        self.face
            .glyph_index(ch)
            .map(|glyph| (glyph, ch))
            .unwrap_or(self.fallback)
    }

    /// Width of `text` at size 1.
    fn width(&self, text: &str) -> f32 {
        let units_per_em = f32::from(self.face.units_per_em().max(1));
        let units: u32 = text
            .chars()
            .map(|ch| u32::from(self.face.glyph_hor_advance(self.glyph(ch).0).unwrap_or(0)))
            .sum();
        units as f32 / units_per_em
    }

    /// The text as two-byte CIDs (Identity-H), recording the glyphs used.
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut encoded = Vec::with_capacity(text.len() * 2);
        for ch in text.chars() {
            let (glyph, shown) = self.glyph(ch);
            let cid = self.remapper.remap(glyph.0);
            self.used.entry(cid).or_insert((glyph.0, shown));
            encoded.extend_from_slice(&cid.to_be_bytes());
        }
        encoded
    }

    fn write(&self, pdf: &mut Pdf, refs: &FontRefs) -> Result<(), InvoicePdfError> {
        let subset = subsetter::subset(self.data, 0, &self.remapper).map_err(|error| {
            InvoicePdfError::Subset {
                font: self.postscript_name,
                reason: error.to_string(),
            }
        })?;
        let base_font = format!("{}+{}", self.subset_tag(), self.postscript_name);
        let base_font = Name(base_font.as_bytes());
        let system_info = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let scale = 1000.0 / f32::from(self.face.units_per_em().max(1));

        pdf.type0_font(refs.type0)
            .base_font(base_font)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(refs.cid)
            .to_unicode(refs.to_unicode);

        let mut cid_font = pdf.cid_font(refs.cid);
        cid_font
            .subtype(CidFontType::Type2)
            .base_font(base_font)
            .system_info(system_info)
            .font_descriptor(refs.descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        let mut widths = cid_font.widths();
        for (cid, (glyph, _)) in &self.used {
            let advance = self.face.glyph_hor_advance(GlyphId(*glyph)).unwrap_or(0);
            widths.consecutive(*cid, [f32::from(advance) * scale]);
        }
        widths.finish();
        cid_font.finish();

        let bbox = self.face.global_bounding_box();
        let scaled = |value: i16| f32::from(value) * scale;
        pdf.font_descriptor(refs.descriptor)
            .name(base_font)
            .flags(FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(
                scaled(bbox.x_min),
                scaled(bbox.y_min),
                scaled(bbox.x_max),
                scaled(bbox.y_max),
            ))
            .italic_angle(self.face.italic_angle())
            .ascent(scaled(self.face.ascender()))
            .descent(scaled(self.face.descender()))
            .cap_height(scaled(
                self.face.capital_height().unwrap_or(self.face.ascender()),
            ))
            .stem_v(80.0)
            .font_file2(refs.file);

        let compressed_font = deflate(&subset)?;
        pdf.stream(refs.file, &compressed_font)
            .filter(Filter::FlateDecode)
            .pair(
                Name(b"Length1"),
                i32::try_from(subset.len()).unwrap_or(i32::MAX),
            );

        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
        for (cid, (_, ch)) in &self.used {
            cmap.pair(*cid, *ch);
        }
        let compressed_cmap = deflate(&cmap.finish())?;
        pdf.cmap(refs.to_unicode, &compressed_cmap)
            .filter(Filter::FlateDecode);
        Ok(())
    }

    /// The six capital letters PDF prefixes a subset font's name with,
    /// derived from the glyphs used so equal input gives equal output.
    fn subset_tag(&self) -> String {
        // FNV-1a over the glyph ids.
        let mut hash: u32 = 0x811c_9dc5;
        for (glyph, _) in self.used.values() {
            for byte in glyph.to_be_bytes() {
                hash ^= u32::from(byte);
                hash = hash.wrapping_mul(0x0100_0193);
            }
        }
        (0..6)
            .map(|index| {
                let letter = (hash >> (index * 5)) % 26;
                char::from(b'A' + letter as u8)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_has_polish_separators_and_keeps_every_grosz() {
        assert_eq!(format_money(dec!(1234.56)), "1 234,56");
        assert_eq!(format_money(dec!(1234567.8)), "1 234 567,80");
        assert_eq!(format_money(dec!(0)), "0,00");
        assert_eq!(format_money(dec!(-0.001)), "0,00");
        assert_eq!(format_money(dec!(-1000)), "-1 000,00");
        assert_eq!(format_money(dec!(999.995)), "1 000,00");
        assert_eq!(format_money(dec!(0.125)), "0,13");
        assert_eq!(format_money(dec!(-0.125)), "-0,13");
        assert_eq!(format_money(dec!(100)), "100,00");
    }

    #[test]
    fn quantities_and_prices_drop_or_keep_decimals_as_told() {
        assert_eq!(format_trimmed(dec!(3.000)), "3");
        assert_eq!(format_trimmed(dec!(2.5)), "2,5");
        assert_eq!(format_trimmed(dec!(1.23456)), "1,2346");
        assert_eq!(format_trimmed(dec!(12000)), "12 000");
        assert_eq!(format_unit_price(dec!(33.33)), "33,33");
        assert_eq!(format_unit_price(dec!(0.1234)), "0,1234");
        assert_eq!(format_unit_price(dec!(0.123)), "0,1230");
        assert_eq!(format_exchange_rate(dec!(4.321)), "4,3210");
        assert_eq!(format_exchange_rate(dec!(4.321234)), "4,321234");
    }

    #[test]
    fn vat_rates_print_as_on_polish_invoices() {
        assert_eq!(format_vat_rate(&VatRate::Percent(dec!(23))), "23%");
        assert_eq!(format_vat_rate(&VatRate::Percent(dec!(5.5))), "5,5%");
        assert_eq!(format_vat_rate(&VatRate::Exempt), "zw");
        assert_eq!(format_vat_rate(&VatRate::NotSubject), "np");
        assert_eq!(format_vat_rate(&VatRate::ReverseCharge), "oo");
    }
}
