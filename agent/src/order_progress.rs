//! The follower: what became of written orders in Optima, reported once per
//! change of stage (accepted, invoiced, shipped, cancelled) or new tracking
//! number, through the outbox. It reads each order's document chain every
//! few seconds ([`crate::optima::order_document::document_chains`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use contract::{MAX_BODY_BYTES, OrderProgress, OrderStage, Payload};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::optima::order_document::LinkedDocument;
use crate::order_intake::{OrderWriter, Orders};
use crate::store::TrackedOrder;

/// Orders checked per round of the follower (the least recently checked).
const ORDERS_PER_ROUND: usize = 2_000;
/// Days after it was written that an order is followed at most.
const FOLLOW_DAYS: i64 = 60;

impl<W: OrderWriter> Orders<W> {
    /// One round of the follower: reports what changed; returns how many.
    pub async fn follow_once(&self) -> Result<usize, String> {
        let now = Utc::now();
        let stopped = self
            .store
            .stop_following_before(now - chrono::Duration::days(FOLLOW_DAYS))
            .map_err(|e| e.to_string())?;
        if stopped > 0 {
            info!(
                orders = stopped,
                days = FOLLOW_DAYS,
                "orders no longer followed: written more than the following period ago"
            );
        }
        self.follow_corrections(now).await?;
        let open = self
            .store
            .orders_to_check(ORDERS_PER_ROUND, now)
            .map_err(|e| e.to_string())?;
        if open.is_empty() {
            return Ok(0);
        }
        let roots: Vec<i64> = open.iter().map(|o| o.document_id).collect();
        let chains = self
            .writer
            .lock()
            .await
            .chains(&roots)
            .await
            .map_err(|e| e.to_string())?;
        let invoice_ids: Vec<i64> = open
            .iter()
            .filter_map(|o| chains.get(&o.document_id))
            .flatten()
            .filter(|d| is_invoice(d))
            .map(|d| d.id)
            .collect();
        let invoices = if invoice_ids.is_empty() {
            HashMap::new()
        } else {
            self.writer
                .lock()
                .await
                .invoices(&invoice_ids)
                .await
                .map_err(|e| e.to_string())?
        };
        // Orders not yet realised: the ERP's checks before realising them.
        let waiting: Vec<i64> = open
            .iter()
            .filter(|o| {
                chains
                    .get(&o.document_id)
                    .and_then(|chain| progress_of(o, chain))
                    .is_some_and(|p| p.stage == OrderStage::Accepted)
            })
            .map(|o| o.document_id)
            .collect();
        let checks = if waiting.is_empty() {
            HashMap::new()
        } else {
            self.writer
                .lock()
                .await
                .realisation_checks(&waiting)
                .await
                .map_err(|e| e.to_string())?
        };
        let mut reported = 0;
        for order in &open {
            let Some(chain) = chains.get(&order.document_id) else {
                // The document is gone (deleted from the buffer in Optima):
                // nothing more will happen to it.
                warn!(order = %order.key, document = %order.document_number, "the order's document is no longer in Optima; no longer followed");
                self.store
                    .stop_following(&order.key)
                    .map_err(|e| e.to_string())?;
                continue;
            };
            let Some(mut progress) = progress_of(order, chain) else {
                continue;
            };
            progress.invoices = chain
                .iter()
                .filter(|d| is_invoice(d))
                .filter_map(|d| invoices.get(&d.id).cloned())
                .collect();
            if progress.stage == OrderStage::Accepted {
                progress.realisation = checks.get(&order.document_id).cloned();
            }
            // An invoice's KSeF number arrives later, on Optima's schedule:
            // it is news of its own.
            let summary = format!(
                "{:?}|{}|{}|{}|{}",
                progress.stage,
                progress.tracking_number.as_deref().unwrap_or(""),
                progress.documents.join(","),
                progress
                    .invoices
                    .iter()
                    .map(|i| format!("{}={}", i.number, i.ksef_number.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(","),
                // Stock arriving or a remark cleared is news too.
                serde_json::to_string(&progress.realisation).unwrap_or_default()
            );
            if order.reported.as_deref() == Some(summary.as_str()) {
                continue;
            }
            // Followed until shipped with a waybill, every invoice has its
            // KSeF number and nothing it became is left in the buffer (a
            // correction being prepared), or the following period ends. A correction
            // made later follows it again (`follow_corrections`).
            let is_final = matches!(progress.stage, OrderStage::Cancelled)
                || (progress.stage == OrderStage::Shipped
                    && progress.tracking_number.is_some()
                    && progress.invoices.iter().all(|i| i.ksef_number.is_some())
                    && !chain
                        .iter()
                        .any(|d| d.id != order.document_id && d.in_buffer && !d.cancelled));
            info!(order = %order.key, stage = ?progress.stage, tracking = ?progress.tracking_number, "order progress");
            let coalesce = format!("order_progress:{}", order.key);
            self.store
                .enqueue(
                    &self.agent_id,
                    Payload::OrderProgress(progress),
                    Some(&coalesce),
                    MAX_BODY_BYTES,
                    Utc::now(),
                )
                .map_err(|e| e.to_string())?;
            let documents: Vec<i64> = chain.iter().map(|d| d.id).collect();
            self.store
                .remember_documents(&order.key, &documents)
                .map_err(|e| e.to_string())?;
            self.store
                .order_reported(&order.key, &summary, is_final, Utc::now())
                .map_err(|e| e.to_string())?;
            reported += 1;
        }
        if reported > 0 {
            self.outbox_changed.notify_one();
        }
        Ok(reported)
    }
}

impl<W: OrderWriter> Orders<W> {
    /// Follows again the finished orders whose documents got a correction
    /// since the last round (a return weeks after shipping).
    async fn follow_corrections(&self, now: chrono::DateTime<Utc>) -> Result<(), String> {
        let after = match self
            .store
            .cursor(CORRECTIONS_CURSOR)
            .map_err(|e| e.to_string())?
        {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|e| format!("the corrections cursor {text:?} is unreadable: {e}"))?,
            ),
            None => None,
        };
        let crate::optima::invoice::CorrectionsRead { corrections, next } = self
            .writer
            .lock()
            .await
            .corrections_after(after)
            .await
            .map_err(|e| e.to_string())?;
        if !corrections.is_empty() {
            for key in self
                .store
                .reopen_corrected(&corrections, now)
                .map_err(|e| e.to_string())?
            {
                info!(order = %key, "a correction in Optima: the order is followed again");
            }
        }
        if let Some(next) = next
            && Some(next) != after
        {
            self.store
                .set_cursor(CORRECTIONS_CURSOR, &next.to_string())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The agent store's cursor: the last Optima document id looked at for
/// corrections.
const CORRECTIONS_CURSOR: &str = "corrections_after_document";

const CLASS_FS: i32 = 302;
const CLASS_PA: i32 = 305;
const CLASS_WZ: i32 = 306;

/// An approved invoice of the chain: what the buyer gets a copy of.
fn is_invoice(document: &LinkedDocument) -> bool {
    document.class == CLASS_FS && !document.in_buffer && !document.cancelled
}

/// Where an order stands, from its document and what it was realised into.
pub fn progress_of(order: &TrackedOrder, chain: &[LinkedDocument]) -> Option<OrderProgress> {
    let root = chain.iter().find(|d| d.id == order.document_id)?;
    let live: Vec<&LinkedDocument> = chain.iter().filter(|d| !d.cancelled).collect();
    let stage = if root.cancelled {
        OrderStage::Cancelled
    } else if live.iter().any(|d| d.class == CLASS_WZ) {
        OrderStage::Shipped
    } else if live
        .iter()
        .any(|d| matches!(d.class, CLASS_FS | CLASS_PA) && !d.in_buffer)
    {
        OrderStage::Invoiced
    } else {
        OrderStage::Accepted
    };
    let tracked = live.iter().rev().find(|d| d.tracking.is_some());
    let tracking_number = tracked.and_then(|d| d.tracking.clone());
    let carrier = tracked.and_then(|d| d.carrier.clone());
    Some(OrderProgress {
        shop: order.shop.clone(),
        order_id: order.order_id.clone(),
        stage,
        tracking_number,
        carrier,
        documents: chain.iter().map(|d| d.number.clone()).collect(),
        invoices: Vec::new(),
        realisation: None,
        observed_at: Utc::now(),
    })
}

/// Follows written orders until cancelled.
pub async fn follow<W: OrderWriter>(orders: Orders<W>, every: Duration, cancel: CancellationToken) {
    let mut backoff = crate::retry::Backoff::new(every, Duration::from_secs(60));
    let mut delay = every;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        match orders.follow_once().await {
            Ok(n) => {
                if n > 0 {
                    debug!(reported = n, "order progress queued");
                }
                backoff.reset();
                delay = every;
            }
            Err(err) => {
                delay = backoff.next_delay();
                warn!(error = %err, retry_in = ?delay, "cannot check order progress; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: i64, class: i32, tracking: Option<&str>) -> LinkedDocument {
        LinkedDocument {
            id,
            class,
            number: format!("D/{id}"),
            tracking: tracking.map(str::to_owned),
            carrier: None,
            cancelled: false,
            in_buffer: false,
        }
    }

    fn tracked() -> TrackedOrder {
        TrackedOrder {
            key: "s:1".into(),
            shop: "s".into(),
            order_id: "1".into(),
            document_id: 10,
            document_number: "RO/1/2026".into(),
            reported: None,
        }
    }

    #[test]
    fn stages_follow_the_document_chain() {
        let order = tracked();
        let ro = doc(10, 308, None);
        assert_eq!(
            progress_of(&order, std::slice::from_ref(&ro))
                .unwrap()
                .stage,
            OrderStage::Accepted
        );
        let fs = doc(11, CLASS_FS, None);
        assert_eq!(
            progress_of(&order, &[ro.clone(), fs.clone()])
                .unwrap()
                .stage,
            OrderStage::Invoiced
        );
        let wz = doc(12, CLASS_WZ, Some("PL123"));
        let shipped = progress_of(&order, &[ro.clone(), fs, wz]).unwrap();
        assert_eq!(shipped.stage, OrderStage::Shipped);
        assert_eq!(shipped.tracking_number.as_deref(), Some("PL123"));
        assert_eq!(shipped.documents, ["D/10", "D/11", "D/12"]);
        let mut cancelled = ro;
        cancelled.cancelled = true;
        assert_eq!(
            progress_of(&order, &[cancelled]).unwrap().stage,
            OrderStage::Cancelled
        );
        assert!(progress_of(&order, &[doc(99, 308, None)]).is_none());
    }
}
