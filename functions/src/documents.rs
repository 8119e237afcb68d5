//! The buyer's documents: each invoice's PDF kept in S3 under an
//! unguessable token of its own, and opened by the buyer at
//! `<webhook Function URL>/invoice/<token>` (no credential, no listing).
//!
//! The object's key is the token's SHA-256, so the bucket never holds a
//! token and the function that serves a link needs nothing but
//! `s3:GetObject` on `invoices/*`. The token of an invoice is kept in the
//! state table (`invoices#<shop>`, `<order id>#<document id>`): a second
//! rendering (the KSeF number arrived) replaces the PDF under the same
//! link.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use chrono::Utc;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::dynamo::{get_bool, get_s, n, s, written};

/// Bytes of randomness in a token (43 characters of base64url).
const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;
/// Where invoices live in the bucket (the lifecycle rule's prefix).
const PREFIX: &str = "invoices/";

#[derive(Debug, Error)]
pub enum DocumentsError {
    #[error("S3 {operation} on {bucket}: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        message: String,
    },
    #[error("DynamoDB {operation}: {message}")]
    State {
        operation: &'static str,
        message: String,
    },
}

/// A new link token: 256 random bits, base64url without padding.
pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The object key of a token; `None` for text that is not a token (such a
/// link is answered like an unknown one).
pub fn object_key(token: &str) -> Option<String> {
    let well_formed = token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| {
        format!(
            "{PREFIX}{}.pdf",
            hex::encode(Sha256::digest(token.as_bytes()))
        )
    })
}

/// The file name a buyer's browser offers: the invoice number with its
/// slashes made safe, e.g. `FS_12_2026.pdf`.
pub fn file_name(number: &str) -> String {
    let safe: String = number
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.pdf", safe.trim_matches('_'))
}

/// The invoices' bucket.
#[derive(Clone, Debug)]
pub struct InvoiceFiles {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// A stored PDF and the name it is offered under.
pub struct StoredFile {
    pub bytes: Vec<u8>,
    pub file_name: String,
}

impl InvoiceFiles {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        InvoiceFiles {
            s3,
            bucket: bucket.into(),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> DocumentsError {
        DocumentsError::S3 {
            operation,
            bucket: self.bucket.clone(),
            message: crate::aws::describe_error(err),
        }
    }

    /// Stores (or replaces) the PDF behind `token`.
    pub async fn put(&self, token: &str, pdf: Vec<u8>, number: &str) -> Result<(), DocumentsError> {
        let Some(key) = object_key(token) else {
            return Err(DocumentsError::S3 {
                operation: "PutObject",
                bucket: self.bucket.clone(),
                message: "not a document token".into(),
            });
        };
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/pdf")
            .metadata("file-name", file_name(number))
            .body(ByteStream::from(pdf))
            .send()
            .await
            .map_err(|e| self.error("PutObject", &e))?;
        Ok(())
    }

    /// The PDF behind `token`; `None` when there is none (or the text is
    /// not a token).
    pub async fn get(&self, token: &str) -> Result<Option<StoredFile>, DocumentsError> {
        let Some(key) = object_key(token) else {
            return Ok(None);
        };
        let answer = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(self.error("GetObject", &err)),
        };
        let file_name = answer
            .metadata()
            .and_then(|m| m.get("file-name"))
            .cloned()
            .unwrap_or_else(|| "faktura.pdf".into());
        let bytes = answer
            .body
            .collect()
            .await
            .map_err(|e| self.error("GetObject", &e))?
            .into_bytes()
            .to_vec();
        Ok(Some(StoredFile { bytes, file_name }))
    }
}

/// What the state table holds of one invoice of an order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvoiceRecord {
    pub token: String,
    /// The KSeF number the stored PDF shows ('' before KSeF's).
    pub rendered_ksef: Option<String>,
    /// The number the stored PDF shows (none before the first rendering).
    pub rendered_number: Option<String>,
    /// The link went to the shop.
    pub link_queued: bool,
}

/// The invoices' records in the state table.
#[derive(Clone, Debug)]
pub struct InvoiceRecords {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Days a link (and its record) lives: the bucket's lifecycle rule.
    keep_days: i64,
}

impl InvoiceRecords {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, keep_days: i64) -> Self {
        InvoiceRecords {
            client,
            table: table.into(),
            keep_days,
        }
    }

    fn key(shop: &str, order_id: &str, document_id: i64) -> [(&'static str, AttributeValue); 2] {
        [
            ("pk", s(format!("invoices#{shop}"))),
            ("sk", s(format!("{order_id}#{document_id}"))),
        ]
    }

    fn error(operation: &'static str, err: &(dyn std::error::Error + 'static)) -> DocumentsError {
        DocumentsError::State {
            operation,
            message: crate::aws::describe_error(err),
        }
    }

    /// The invoice's record, made with a new token when there is none yet
    /// (two deliveries at once agree on the first one's token). One read
    /// once it exists.
    pub async fn get_or_create(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
    ) -> Result<InvoiceRecord, DocumentsError> {
        if let Some(record) = self.get(shop, order_id, document_id).await? {
            return Ok(record);
        }
        let token = new_token();
        let expires = Utc::now().timestamp() + self.keep_days * 86_400;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("token", s(&token))
            .item("expires_at", n(expires))
            .condition_expression("attribute_not_exists(pk)");
        for (name, value) in Self::key(shop, order_id, document_id) {
            put = put.item(name, value);
        }
        match written(put.send().await).map_err(|e| Self::error("PutItem", &e))? {
            Some(_) => Ok(InvoiceRecord {
                token,
                ..InvoiceRecord::default()
            }),
            // Another delivery made it meanwhile: its token stands.
            None => {
                self.get(shop, order_id, document_id)
                    .await?
                    .ok_or_else(|| DocumentsError::State {
                        operation: "GetItem",
                        message: format!("invoice record {shop}/{order_id}/{document_id} vanished"),
                    })
            }
        }
    }

    async fn get(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
    ) -> Result<Option<InvoiceRecord>, DocumentsError> {
        let mut get = self
            .client
            .get_item()
            .table_name(&self.table)
            .consistent_read(true);
        for (name, value) in Self::key(shop, order_id, document_id) {
            get = get.key(name, value);
        }
        let item = get
            .send()
            .await
            .map_err(|e| Self::error("GetItem", &e))?
            .item;
        Ok(item.as_ref().map(record_of))
    }

    /// An order's invoices' records by document id, oldest document first
    /// (one Query on the shop's partition, by the order's key prefix).
    pub async fn for_order(
        &self,
        shop: &str,
        order_id: &str,
    ) -> Result<Vec<(i64, InvoiceRecord)>, DocumentsError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :order)")
                .expression_attribute_values(":pk", s(format!("invoices#{shop}")))
                .expression_attribute_values(":order", s(format!("{order_id}#")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Self::error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                let document = crate::dynamo::get_s(&item, "sk")
                    .and_then(|sk| sk.rsplit_once('#'))
                    .and_then(|(_, id)| id.parse::<i64>().ok());
                if let Some(document) = document {
                    found.push((document, record_of(&item)));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        found.sort_by_key(|(document, _)| *document);
        Ok(found)
    }

    /// Records what the stored PDF shows.
    pub async fn rendered(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
        number: &str,
        ksef: Option<&str>,
    ) -> Result<(), DocumentsError> {
        self.update(
            shop,
            order_id,
            document_id,
            "SET rendered_number = :number, rendered_ksef = :ksef",
            &[
                (":number", s(number)),
                (":ksef", s(ksef.unwrap_or_default())),
            ],
        )
        .await
    }

    /// Records that the link went to the shop.
    pub async fn link_queued(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
    ) -> Result<(), DocumentsError> {
        self.update(
            shop,
            order_id,
            document_id,
            "SET link_queued = :yes",
            &[(":yes", AttributeValue::Bool(true))],
        )
        .await
    }

    async fn update(
        &self,
        shop: &str,
        order_id: &str,
        document_id: i64,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<(), DocumentsError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (name, value) in Self::key(shop, order_id, document_id) {
            update = update.key(name, value);
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        update
            .send()
            .await
            .map_err(|e| Self::error("UpdateItem", &e))?;
        Ok(())
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> InvoiceRecord {
    InvoiceRecord {
        token: get_s(item, "token").unwrap_or_default().to_owned(),
        rendered_ksef: get_s(item, "rendered_ksef").map(str::to_owned),
        rendered_number: get_s(item, "rendered_number").map(str::to_owned),
        link_queued: get_bool(item, "link_queued"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_long_random_and_its_key_names_only_its_hash() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_CHARS);
        let key = object_key(&a).unwrap();
        assert!(
            key.starts_with("invoices/") && key.ends_with(".pdf"),
            "{key}"
        );
        assert!(!key.contains(&a));
        assert_eq!(key.len(), "invoices/".len() + 64 + ".pdf".len());
    }

    #[test]
    fn text_that_is_not_a_token_has_no_key() {
        let token = new_token();
        for bad in [
            "",
            &token[1..],
            &format!("{token}A"),
            &format!("{}/", &token[1..]),
            &format!("{}.", &token[1..]),
            "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(object_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_file_name_is_the_number_made_safe() {
        assert_eq!(file_name("FS/12/2026"), "FS_12_2026.pdf");
        assert_eq!(file_name("FSKOR/3/MAG/2026"), "FSKOR_3_MAG_2026.pdf");
        assert_eq!(file_name("\"x\"\r\n"), "x.pdf");
    }
}
