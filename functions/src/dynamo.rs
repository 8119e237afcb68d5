//! Small helpers for DynamoDB attribute values, shared by every module that
//! reads or writes the state table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A list of strings (other elements skipped); empty when absent.
pub fn get_strings(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|r| r.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

pub fn get_bool(item: &HashMap<String, AttributeValue>, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

/// A time stored as epoch milliseconds.
pub fn get_time(item: &HashMap<String, AttributeValue>, name: &str) -> Option<DateTime<Utc>> {
    get_n::<i64>(item, name).and_then(DateTime::from_timestamp_millis)
}

/// A DynamoDB operation error that can say "the condition failed".
pub trait ConditionalError {
    fn condition_failed(&self) -> bool;
}

impl ConditionalError for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// The outcome of a conditional write: `Some(output)` when it was written,
/// `None` when its condition failed (someone else got there first, or the
/// news was older), the error for anything else.
pub fn written<T, E: ConditionalError, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>, aws_sdk_dynamodb::error::SdkError<E, R>> {
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.as_service_error().is_some_and(E::condition_failed) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Items by key, in BatchGetItem calls of 100 keys (strongly consistent),
/// asking again (a bounded number of times) for keys DynamoDB leaves
/// unprocessed under load.
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<HashMap<String, AttributeValue>>,
) -> Result<Vec<HashMap<String, AttributeValue>>, crate::state::StateError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let mut items = Vec::new();
    for chunk in keys.chunks(100) {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .consistent_read(true)
            .build()
            .map_err(|e| crate::state::StateError::Malformed {
                key: "batch-get".into(),
                problem: e.to_string(),
            })?;
        for _ in 0..10 {
            let answer = client
                .batch_get_item()
                .request_items(table, request.clone())
                .send()
                .await
                .map_err(|e| crate::state::StateError::dynamo("BatchGetItem", table, &e))?;
            items.extend(
                answer
                    .responses
                    .unwrap_or_default()
                    .remove(table)
                    .unwrap_or_default(),
            );
            match answer.unprocessed_keys.and_then(|mut u| u.remove(table)) {
                Some(rest) if !rest.keys().is_empty() => request = rest,
                _ => break,
            }
        }
    }
    Ok(items)
}
