//! The ERP's part of the checks Comarch's own shop sync makes before an
//! order is realised (seed 004): the buyer's remark still on the order, and
//! the goods in the order's warehouse for every line. The third check,
//! paid, is the shop's and is made in the cloud. Realising stays Optima's
//! (its conversion of ROs into FS/PA and WZ): nothing here writes.

use std::collections::HashMap;

use contract::{RealisationCheck, ShortLine};
use rust_decimal::Decimal;
use tiberius::Query;

use super::cells::Cells;
use super::order_document::buyer_remark;
use super::{IDS_PER_STATEMENT, fetch, placeholders};
use crate::sql::{SqlClient, SqlError};

/// For each order document among `ids`: its remark and the lines its
/// warehouse cannot cover. Free stock is the latest `TwrIlosci` row's
/// `TwI_Ilosc − TwI_Rezerwacje − TwI_RezerwacjeZlecenia`, plus the line
/// itself when the document is confirmed (then it is among the
/// reservations). Services (`TrE_TwrTyp` 0) need no stock. Other orders
/// still in the buffer are not counted against it.
pub async fn checks(
    client: &mut SqlClient,
    ids: &[i64],
) -> Result<HashMap<i64, RealisationCheck>, SqlError> {
    let ids: Vec<i32> = ids
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .collect();
    let mut found: HashMap<i64, RealisationCheck> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let latest = "FROM CDN.TwrIlosci i WHERE i.TwI_TwrId = e.TrE_TwrId AND i.TwI_MagId = n.TrN_MagZrdId \
                      AND i.TwI_Data <= GETDATE() ORDER BY i.TwI_Data DESC";
        let mut query = Query::new(format!(
            "SELECT n.TrN_TrNID, n.TrN_Opis, n.TrN_Bufor, m.Mag_Symbol, e.TrE_TwrKod, e.TrE_TwrTyp, e.TrE_Ilosc, \
             (SELECT TOP 1 i.TwI_Ilosc {latest}) AS on_hand, \
             (SELECT TOP 1 i.TwI_Rezerwacje + i.TwI_RezerwacjeZlecenia {latest}) AS reserved \
             FROM CDN.TraNag n \
             LEFT JOIN CDN.TraElem e ON e.TrE_TrNId = n.TrN_TrNID \
             LEFT JOIN CDN.Magazyny m ON m.Mag_MagId = n.TrN_MagZrdId \
             WHERE n.TrN_TrNID IN ({}) ORDER BY n.TrN_TrNID, e.TrE_Lp",
            placeholders(1, chunk.len())
        ));
        for id in chunk {
            query.bind(*id);
        }
        for row in fetch(client, query).await? {
            let cells = Cells::new(&row, "CDN.TraNag");
            let document = cells.int_required("TrN_TrNID")?;
            let check = found.entry(document).or_insert_with(|| RealisationCheck {
                remark: None,
                short: Vec::new(),
            });
            if check.remark.is_none() {
                check.remark = buyer_remark(&cells.text_or_empty("TrN_Opis")?).map(str::to_owned);
            }
            let sku = cells.text_or_empty("TrE_TwrKod")?;
            if sku.is_empty() || cells.int("TrE_TwrTyp")?.unwrap_or(1) == 0 {
                continue;
            }
            let needed = cells.decimal("TrE_Ilosc")?.unwrap_or_default();
            let confirmed = cells.int("TrN_Bufor")?.unwrap_or(0) == 0;
            let free = cells.decimal("on_hand")?.unwrap_or_default()
                - cells.decimal("reserved")?.unwrap_or_default();
            let available = if confirmed { free + needed } else { free };
            if available < needed {
                check.short.push(ShortLine {
                    sku,
                    warehouse: cells.text_or_empty("Mag_Symbol")?,
                    needed: needed.normalize(),
                    available: available.max(Decimal::ZERO).normalize(),
                });
            }
        }
    }
    Ok(found)
}
