//! Shop orders into Optima: the agent's side of "orders in".
//!
//! A create-order command is written through an [`OrderWriter`] (today the
//! SQL one in [`crate::optima::order_document`]; Optima's XML import or COM
//! API can take its place behind the same trait); a cancel-order command
//! takes a buffered document out again, or holds it for a person. The
//! answer goes to the outbox before the command is deleted from the queue,
//! so a crash anywhere means a redelivery, which finds the order written
//! (or gone) and answers the same. While Optima is unreachable the command
//! stays in the queue and nothing is acknowledged. What becomes of written
//! orders is followed by [`crate::order_progress`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use contract::{CancelOrder, MAX_BODY_BYTES, Order, OrderAck, OrderAckOutcome, Payload};
use thiserror::Error;
use tokio::sync::{Mutex, Notify};
use tracing::{info, warn};

use crate::config::AgentConfig;
use crate::erp_settings::ForeignCurrency;
use crate::exchange_rates::{ExchangeRate, NbpRates, RateError};
use crate::optima::order_document::{
    LinkedDocument, Withdrawal, WriteResult, WriteSettings, find_written, import_row_id, is_foreign,
};
use crate::sql::{SqlClient, SqlError};
use crate::store::Store;

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

    /// The invoices among these documents, as the buyer's copy shows them.
    fn invoices(
        &mut self,
        documents: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, contract::Invoice>, WriteError>> + Send;

    /// The ERP's checks before these order documents are realised.
    fn realisation_checks(
        &mut self,
        documents: &[i64],
    ) -> impl Future<Output = Result<HashMap<i64, contract::RealisationCheck>, WriteError>> + Send;

    /// Corrections made after document `after` (correction, corrected) and
    /// the id to go on from; with no `after`, none and where Optima is now.
    fn corrections_after(
        &mut self,
        after: Option<i64>,
    ) -> impl Future<Output = Result<crate::optima::invoice::CorrectionsRead, WriteError>> + Send;
}

/// The exchange rate an order is written at.
pub enum OrderRate {
    /// A złoty order, or foreign ones are parked (the writer says so).
    None,
    At(ExchangeRate),
    /// NBP has no rate for it: the order is parked with this reason.
    Parked(String),
}

#[derive(Debug, Error)]
pub enum RateLookupError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// NBP cannot be asked now: the order comes again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Looks up NBP rates for the document date SQL Server gives.
pub struct OrderRates {
    nbp_url: String,
    nbp: Option<NbpRates>,
}

impl OrderRates {
    pub fn new(nbp_url: &str) -> OrderRates {
        OrderRates {
            nbp_url: nbp_url.to_owned(),
            nbp: None,
        }
    }

    /// The rate `order` is written at, for today's date on SQL Server's
    /// clock (the document date the writer uses).
    pub async fn for_order(
        &mut self,
        client: &mut SqlClient,
        order: &Order,
        settings: &WriteSettings,
    ) -> Result<OrderRate, RateLookupError> {
        if !is_foreign(order) || settings.foreign_currency == ForeignCurrency::Park {
            return Ok(OrderRate::None);
        }
        let day = crate::optima::server_now(client).await?.date();
        let nbp = match &mut self.nbp {
            Some(nbp) => nbp,
            None => self.nbp.insert(
                NbpRates::new(&self.nbp_url)
                    .map_err(|e| RateLookupError::Unavailable(e.to_string()))?,
            ),
        };
        match nbp.rate_before(&order.currency, day).await {
            Ok(rate) => Ok(OrderRate::At(rate)),
            Err(RateError::NotPublished(reason)) => Ok(OrderRate::Parked(reason)),
            Err(err @ RateError::Unavailable(_)) => {
                Err(RateLookupError::Unavailable(err.to_string()))
            }
        }
    }
}

/// The direct SQL writer, on its own connection (reconnected after a failure).
pub struct SqlOrderWriter {
    config: AgentConfig,
    settings: WriteSettings,
    client: Option<SqlClient>,
    rates: OrderRates,
}

impl SqlOrderWriter {
    pub fn new(config: AgentConfig, settings: WriteSettings) -> Self {
        let nbp_url = config
            .orders
            .as_ref()
            .map_or(crate::exchange_rates::NBP_API, |o| o.nbp_url.as_str())
            .to_owned();
        SqlOrderWriter {
            config,
            settings,
            client: None,
            rates: OrderRates::new(&nbp_url),
        }
    }

    async fn client(&mut self) -> Result<&mut SqlClient, WriteError> {
        if self.client.is_none() {
            let client = crate::sql::connect(&self.config.sql_target())
                .await
                .map_err(|e| WriteError::Unavailable(e.to_string()))?;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| WriteError::Unavailable("no connection".into()))
    }

    fn classify(&mut self, err: SqlError) -> WriteError {
        if let SqlError::Server(tiberius::error::Error::Server(token)) = &err
            && !retryable(token.code())
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
        if is_foreign(order) && settings.foreign_currency == ForeignCurrency::Nbp {
            // A redelivery of a written order answers without asking NBP.
            let key = import_row_id(&order.key());
            let client = self.client().await?;
            let found = find_written(client, &key).await;
            if let Some((document_id, document_number)) = found.map_err(|e| self.classify(e))? {
                return Ok(WriteResult::Written {
                    document_id,
                    document_number,
                    already: true,
                });
            }
        }
        self.client().await?;
        let (Some(client), rates) = (self.client.as_mut(), &mut self.rates) else {
            return Err(WriteError::Unavailable("no connection".into()));
        };
        let rate = match rates.for_order(client, order, &settings).await {
            Ok(OrderRate::None) => None,
            Ok(OrderRate::At(rate)) => Some(rate),
            Ok(OrderRate::Parked(reason)) => return Ok(WriteResult::Parked(reason)),
            Err(RateLookupError::Sql(e)) => return Err(self.classify(e)),
            Err(RateLookupError::Unavailable(reason)) => {
                return Err(WriteError::Unavailable(reason));
            }
        };
        let client = self.client().await?;
        let result =
            crate::optima::order_document::write_order(client, order, &settings, rate.as_ref())
                .await;
        result.map_err(|e| self.classify(e))
    }

    async fn withdraw(&mut self, cancel: &CancelOrder) -> Result<Withdrawal, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::order_document::withdraw_order(
            client,
            &cancel.key(),
            &cancel.shop_status,
        )
        .await;
        result.map_err(|e| self.classify(e))
    }

    async fn chains(
        &mut self,
        roots: &[i64],
    ) -> Result<HashMap<i64, Vec<LinkedDocument>>, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::order_document::document_chains(client, roots).await;
        result.map_err(|e| self.classify(e))
    }

    async fn invoices(
        &mut self,
        documents: &[i64],
    ) -> Result<HashMap<i64, contract::Invoice>, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::invoice::invoices(client, documents).await;
        result.map_err(|e| self.classify(e))
    }

    async fn realisation_checks(
        &mut self,
        documents: &[i64],
    ) -> Result<HashMap<i64, contract::RealisationCheck>, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::realisation::checks(client, documents).await;
        result.map_err(|e| self.classify(e))
    }

    async fn corrections_after(
        &mut self,
        after: Option<i64>,
    ) -> Result<crate::optima::invoice::CorrectionsRead, WriteError> {
        let client = self.client().await?;
        let result = crate::optima::invoice::corrections_after(client, after).await;
        result.map_err(|e| self.classify(e))
    }
}

/// SQL Server errors that say "not now" rather than "not this document":
/// the order stays queued and is written again (after enough tries the
/// queue moves it to its DLQ, where an alarm fires). A duplicate key
/// (2601/2627) that is not the order's own key is the office numbering a
/// document at the same moment.
pub fn retryable(code: u32) -> bool {
    matches!(
        code,
        1205 // chosen as deadlock victim
            | 1222 // lock request timed out
            | 2601 | 2627 // duplicate key: a numbering race (the import key is found before)
            | 1204 // no more locks
            | 701 | 8645 // out of memory, waiting for memory
            | 9002 // transaction log full
            | 3960 // snapshot update conflict
            | 40613 | 40501 | 40197 // Azure SQL: database busy or failing over
    )
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
    pub(crate) writer: Arc<Mutex<W>>,
    pub(crate) store: Arc<Store>,
    pub(crate) agent_id: String,
    pub(crate) outbox_changed: Arc<Notify>,
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
}

#[cfg(test)]
mod tests {
    use super::retryable;

    /// A numbering race with the office or a full log waits and is tried
    /// again; a value the document cannot hold is parked at once.
    #[test]
    fn passing_troubles_are_retried_and_refusals_of_the_document_are_not() {
        for code in [1205, 1222, 2601, 2627, 9002] {
            assert!(retryable(code), "{code} is retried");
        }
        for code in [515, 2628, 245, 8114, 547, 207, 208] {
            assert!(!retryable(code), "{code} parks the order");
        }
    }
}
