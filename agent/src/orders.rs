//! Shop orders into Optima, and their progress back to the cloud.
//!
//! A create-order command is written through an [`OrderWriter`] (today the
//! SQL one in [`crate::optima::orders`]; Optima's XML import or COM API can
//! take its place behind the same trait). The answer, written or parked,
//! goes to the outbox before the command is deleted from the queue, so a
//! crash anywhere means a redelivery, which finds the order written and
//! answers the same. While Optima is unreachable the command stays in the
//! queue and nothing is acknowledged.
//!
//! The follower checks the documents of written orders every few seconds
//! and reports a change of stage (accepted, invoiced, shipped, cancelled) or
//! a new tracking number, once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use contract::{
    CancelOrder, MAX_BODY_BYTES, Order, OrderAck, OrderAckOutcome, OrderProgress, OrderStage,
    Payload,
};
use thiserror::Error;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::AgentConfig;
use crate::optima::orders::{LinkedDocument, Withdrawal, WriteResult, WriteSettings};
use crate::sql::{SqlClient, SqlError};
use crate::store::{Store, TrackedOrder};

#[derive(Debug, Error)]
pub enum WriteError {
    /// Try again later: the ERP cannot be reached, or a lock timed out.
    #[error("Optima is unavailable: {0}")]
    Unavailable(String),
    /// The ERP refused the document; retrying the same will not help.
    #[error("Optima rejected the document: {0}")]
    Rejected(String),
}

/// Writes orders into the ERP and reads what became of them.
pub trait OrderWriter: Send {
    /// Writes the order once: a second call for the same order finds it.
    fn write(
        &mut self,
        order: &Order,
    ) -> impl Future<Output = Result<WriteResult, WriteError>> + Send;

    /// Succeeds when the ERP can be written to again.
    fn reachable(&mut self) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Takes the order's document out of the ERP after the shop cancelled
    /// it, where the ERP allows that; a second call finds it gone.
    fn withdraw(
        &mut self,
        cancel: &CancelOrder,
    ) -> impl Future<Output = Result<Withdrawal, WriteError>> + Send;

    /// Each root document with the documents it was realised into.
    fn chains(
        &mut self,
        roots: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, Vec<LinkedDocument>>, WriteError>> + Send;
}

/// The direct SQL writer, on its own connection (reconnected after a failure).
pub struct SqlOrderWriter {
    config: AgentConfig,
    settings: WriteSettings,
    client: Option<SqlClient>,
}

impl SqlOrderWriter {
    pub fn new(config: AgentConfig, settings: WriteSettings) -> Self {
        SqlOrderWriter {
            config,
            settings,
            client: None,
        }
    }

    async fn client(&mut self) -> Result<&mut SqlClient, WriteError> {
        if self.client.is_none() {
            let client = crate::sql::connect(&self.config)
                .await
                .map_err(|e| WriteError::Unavailable(e.to_string()))?;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| WriteError::Unavailable("no connection".into()))
    }

    fn classify(&mut self, err: SqlError) -> WriteError {
        // Deadlock victim, lock timeout: the office held a lock; retry.
        if let SqlError::Server(tiberius::error::Error::Server(token)) = &err
            && !matches!(token.code(), 1205 | 1222)
        {
            return WriteError::Rejected(err.to_string());
        }
        self.client = None;
        WriteError::Unavailable(err.to_string())
    }
}

impl OrderWriter for SqlOrderWriter {
    async fn reachable(&mut self) -> Result<(), WriteError> {
        let client = self.client().await?;
        let answered = match client.simple_query("SELECT 1").await {
            Ok(stream) => stream.into_results().await.map(|_| ()),
            Err(e) => Err(e),
        };
        answered.map_err(|e| self.classify(SqlError::Server(e)))
    }

    async fn write(&mut self, order: &Order) -> Result<WriteResult, WriteError> {
        let settings = self.settings.clone();
        let client = self.client().await?;
        let result = crate::optima::orders::write_order(client, order, &settings).await;
        result.map_err(|e| self.classify(e))
    }

    async fn withdraw(&mut self, cancel: &CancelOrder) -> Result<Withdrawal, WriteError> {
        let client = self.client().await?;
        let result =
            crate::optima::orders::withdraw_order(client, &cancel.key(), &cancel.shop_status).await;
        result.map_err(|e| self.classify(e))
    }

    async fn chains(
        &mut self,
        roots: &[i64],
    ) -> Result<HashMap<i64, Vec<LinkedDocument>>, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::orders::document_chains(client, roots).await;
        result.map_err(|e| self.classify(e))
    }
}

/// What became of a create-order command.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Answered (written, found written, or parked): delete the command.
    Done,
    /// Leave the command in the queue and try again once the ERP is back.
    RetryLater(String),
}

/// Orders: the writer shared by the command consumer and the follower.
pub struct Orders<W: OrderWriter> {
    writer: Arc<Mutex<W>>,
    store: Arc<Store>,
    agent_id: String,
    outbox_changed: Arc<Notify>,
}

impl<W: OrderWriter> Clone for Orders<W> {
    fn clone(&self) -> Self {
        Orders {
            writer: self.writer.clone(),
            store: self.store.clone(),
            agent_id: self.agent_id.clone(),
            outbox_changed: self.outbox_changed.clone(),
        }
    }
}

impl<W: OrderWriter> Orders<W> {
    pub fn new(
        writer: W,
        store: Arc<Store>,
        agent_id: String,
        outbox_changed: Arc<Notify>,
    ) -> Self {
        Orders {
            writer: Arc::new(Mutex::new(writer)),
            store,
            agent_id,
            outbox_changed,
        }
    }

    pub async fn reachable(&self) -> Result<(), WriteError> {
        self.writer.lock().await.reachable().await
    }

    /// Writes the order (or finds it written, or parks it) and queues the answer.
    pub async fn create(&self, order: &Order) -> Handled {
        let result = self.writer.lock().await.write(order).await;
        let outcome = match result {
            Ok(WriteResult::Written {
                document_id,
                document_number,
                already,
            }) => {
                crate::failpoint::hit("order_after_commit");
                if already {
                    info!(order = %order.key(), document = %document_number, "order already in Optima (a redelivery): answering again");
                } else {
                    info!(order = %order.key(), document = %document_number, lines = order.lines.len(), gross = %order.total_gross, "order written into Optima");
                }
                if let Err(err) = self.store.track_order(
                    &order.shop,
                    &order.order_id,
                    document_id,
                    &document_number,
                    Utc::now(),
                ) {
                    return Handled::RetryLater(err.to_string());
                }
                OrderAckOutcome::Written {
                    document_id,
                    document_number,
                }
            }
            Ok(WriteResult::Parked(reason)) => {
                warn!(order = %order.key(), %reason, "order parked: not written into Optima");
                OrderAckOutcome::Parked { reason }
            }
            Err(WriteError::Rejected(reason)) => {
                warn!(order = %order.key(), %reason, "Optima refused the order; parked");
                OrderAckOutcome::Parked {
                    reason: format!("Optima rejected the document: {reason}"),
                }
            }
            Err(WriteError::Unavailable(reason)) => return Handled::RetryLater(reason),
        };
        self.answer(OrderAck {
            shop: order.shop.clone(),
            order_id: order.order_id.clone(),
            revision: order.revision,
            outcome,
        })
    }

    /// Takes a shop-cancelled order's document out of Optima (or holds it
    /// for a person) and queues the answer; the order is no longer followed
    /// once its document is gone.
    pub async fn cancel(&self, cancel: &CancelOrder) -> Handled {
        let key = cancel.key();
        let result = self.writer.lock().await.withdraw(cancel).await;
        let outcome = match result {
            Ok(Withdrawal::Withdrawn(document_number)) => {
                match &document_number {
                    Some(number) => {
                        info!(order = %key, document = %number, "order cancelled in the shop: its buffered document was deleted from Optima")
                    }
                    None => {
                        info!(order = %key, "order cancelled in the shop: Optima holds no document for it")
                    }
                }
                if let Err(err) = self
                    .store
                    .order_reported(&key, "withdrawn", true, Utc::now())
                {
                    return Handled::RetryLater(err.to_string());
                }
                OrderAckOutcome::Withdrawn { document_number }
            }
            Ok(Withdrawal::Held {
                document_number,
                reason,
            }) => {
                warn!(order = %key, document = %document_number, %reason, "order cancelled in the shop, but its document stays in Optima");
                OrderAckOutcome::CancelHeld {
                    document_number,
                    reason,
                }
            }
            Err(WriteError::Rejected(reason)) => {
                warn!(order = %key, %reason, "Optima refused to delete the cancelled order's document; held for a person");
                OrderAckOutcome::CancelHeld {
                    document_number: String::new(),
                    reason: format!(
                        "the order was {} in the shop, but Optima refused to delete its document: {reason}",
                        cancel.shop_status
                    ),
                }
            }
            Err(WriteError::Unavailable(reason)) => return Handled::RetryLater(reason),
        };
        self.answer(OrderAck {
            shop: cancel.shop.clone(),
            order_id: cancel.order_id.clone(),
            revision: Utc::now(),
            outcome,
        })
    }

    /// Queues an answer to an order command (the command is deleted only
    /// once this is in the outbox).
    fn answer(&self, ack: OrderAck) -> Handled {
        let coalesce = format!("order_ack:{}:{}", ack.shop, ack.order_id);
        match self.store.enqueue(
            &self.agent_id,
            Payload::OrderAck(ack),
            Some(&coalesce),
            MAX_BODY_BYTES,
            Utc::now(),
        ) {
            Ok(_) => {
                self.outbox_changed.notify_one();
                Handled::Done
            }
            Err(err) => Handled::RetryLater(format!("cannot queue the answer: {err}")),
        }
    }

    /// One round of the follower: reports what changed; returns how many.
    pub async fn follow_once(&self) -> Result<usize, String> {
        let open = self.store.open_orders(2_000).map_err(|e| e.to_string())?;
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
        let mut reported = 0;
        for order in &open {
            let Some(chain) = chains.get(&order.document_id) else {
                continue;
            };
            let Some(progress) = progress_of(order, chain) else {
                continue;
            };
            let summary = format!(
                "{:?}|{}|{}",
                progress.stage,
                progress.tracking_number.as_deref().unwrap_or(""),
                progress.documents.join(",")
            );
            if order.reported.as_deref() == Some(summary.as_str()) {
                continue;
            }
            let is_final = matches!(progress.stage, OrderStage::Cancelled)
                || (progress.stage == OrderStage::Shipped && progress.tracking_number.is_some());
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

const CLASS_FS: i32 = 302;
const CLASS_PA: i32 = 305;
const CLASS_WZ: i32 = 306;

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
    let tracking_number = live.iter().rev().find_map(|d| d.tracking.clone());
    Some(OrderProgress {
        shop: order.shop.clone(),
        order_id: order.order_id.clone(),
        stage,
        tracking_number,
        documents: chain.iter().map(|d| d.number.clone()).collect(),
        observed_at: Utc::now(),
    })
}

/// Follows written orders until cancelled.
pub async fn follow<W: OrderWriter>(orders: Orders<W>, every: Duration, cancel: CancellationToken) {
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
                delay = every;
            }
            Err(err) => {
                warn!(error = %err, "cannot check order progress; retrying");
                delay = (delay * 2).min(Duration::from_secs(60));
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
