//! E-mail alerts: what needs a person, mailed through the stack's alarm
//! topic (SNS; its e-mail subscriptions deliver) or, where the stack names
//! a sender and recipients, by SES, at most once an hour for the same
//! cause, each with a link to the console page that shows it.
//!
//! The causes ([`Cause`]): an order parked, a shop refusing our
//! credentials, an office agent gone silent, messages in a dead-letter
//! queue. The watchdog finds them (it runs every minute) and hands them
//! to [`Alerts::notify_all`].
//!
//! On the wire: one item per cause, `pk = "alert"`, `sk = <cause key>`
//! ([`Cause::key`]), with `sent_ms` (when its last mail went) and
//! `expires_at` (TTL, a day on). A run reads the whole partition once
//! (one Query), decides per cause whether a mail is due ([`due`]: none
//! sent, or the last over an hour ago), and claims it with a PutItem that
//! holds only if the item is still what it read: of two runs that decide
//! alike, one claim fails and only the other mails. A claim whose mail
//! then fails to publish is given back, so the next run tries again.
//!
//! A shop's 401/403 is recorded where every shop call passes
//! ([`crate::ratelimit::RateLimiter::call_shop`], [`record_refusal`]):
//! `pk = "shop-refused"`, `sk = <shop>`, `at_ms`, `detail`. A shop refused
//! within the last [`REFUSAL_FRESH`] counts as refusing now.
//!
//! Mails go through SNS by default: the topic's e-mail subscription is the
//! one list of who is told, and nothing else needs setting up. Where the
//! stack sets `AlertEmailFrom` and `AlertEmailTo` (`ALERT_EMAIL_FROM`,
//! `ALERT_EMAIL_TO`, comma-separated), the same mail goes by SES v2
//! `SendEmail` from that address to those recipients instead: a real
//! sender and no SNS footer with an unsubscribe link. The template lets the
//! function send only from that address's identity and only to those
//! recipients. SNS takes an ASCII subject of under 100 characters, so the
//! subject is Polish without diacritics ([`ascii_subject`]), by either
//! route, so a mail reads the same; the body keeps them, with an English
//! line under each Polish one.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use thiserror::Error;
use tracing::{info, warn};

use crate::Deadline;
use crate::aws::{Clients, describe_error};
use crate::dynamo::{get_n, get_s, n, s};
use crate::env::{EnvError, FunctionEnv};

/// The least time between two mails about the same cause.
pub const RESEND_AFTER: Duration = Duration::hours(1);

/// A shop refused this recently counts as refusing now: shop-push hands a
/// refused message back with a back-off of up to 15 minutes and the
/// poller asks every few minutes, so a shop that still refuses is
/// recorded again well within it.
pub const REFUSAL_FRESH: Duration = Duration::minutes(30);

/// At most this many mails a run: a hundred orders parked at once mail
/// over a few minutes, not in one burst past the invocation's time.
pub const MAX_MAILS_PER_RUN: usize = 20;

/// Time one mail needs (a claim and a publish).
const MAIL_RESERVE: StdDuration = StdDuration::from_secs(1);

/// SNS takes subjects of fewer than 100 characters.
const SUBJECT_MAX: usize = 99;

/// What a person is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// An order that will not reach the ERP until someone acts.
    OrderParked {
        shop: String,
        order: String,
        /// The number the shop shows (the mail's; not part of the key).
        number: String,
    },
    /// A shop answers 401/403 to our credentials.
    ShopRefusedCredentials { shop: String },
    /// An office agent has not reported within the stale time.
    AgentStale { agent: String },
    /// Messages wait in a dead-letter queue.
    DlqHasMessages { queue: String },
}

impl Cause {
    /// The cause's item key: one mail an hour per key.
    pub fn key(&self) -> String {
        match self {
            Cause::OrderParked { shop, order, .. } => format!("order#{shop}#{order}"),
            Cause::ShopRefusedCredentials { shop } => format!("shop-refused#{shop}"),
            Cause::AgentStale { agent } => format!("agent-stale#{agent}"),
            Cause::DlqHasMessages { queue } => format!("dlq#{queue}"),
        }
    }

    /// The console page that shows it, under the console's root
    /// (`…/console`): an order's own page, else the overview.
    pub fn page(&self) -> String {
        match self {
            Cause::OrderParked { shop, order, .. } => {
                format!("/orders/{}/{}", segment(shop), segment(order))
            }
            _ => "/".to_owned(),
        }
    }
}

/// What a path segment leaves unescaped: letters, digits and `-_.~` (as
/// the console's own links).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A cause with what the mail says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub cause: Cause,
    /// The particulars, as the system has them (a reason, a time, a count).
    pub detail: String,
}

/// One mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// ASCII, under 100 characters (SNS's rule).
    pub subject: String,
    pub body: String,
}

/// The mail for `alert`; `console_url` is the console's root (empty: no link).
pub fn compose(alert: &Alert, console_url: &str) -> Mail {
    let (subject, polish, english) = match &alert.cause {
        Cause::OrderParked { shop, number, .. } => (
            format!("Zamówienie wstrzymane: {shop} nr {number}"),
            format!(
                "Zamówienie nr {number} ze sklepu {shop} jest wstrzymane: nie trafi do Optimy, dopóki ktoś nie usunie przyczyny i nie wyśle go ponownie."
            ),
            format!(
                "Order {number} from shop {shop} is parked: it will not reach Optima until someone fixes the cause and sends it again."
            ),
        ),
        Cause::ShopRefusedCredentials { shop } => (
            format!("Sklep {shop} odrzuca dane logowania"),
            format!(
                "Sklep {shop} odrzuca nasze dane logowania (401/403): zmiany stanów, cen i zamówień do niego nie docierają. Sprawdź klucz API w sklepie i w sekrecie stosu."
            ),
            format!(
                "Shop {shop} refuses our credentials (401/403): stock, price and order updates do not reach it. Check the API key in the shop and in the stack's secret."
            ),
        ),
        Cause::AgentStale { agent } => (
            format!("Agent {agent} nie odpowiada"),
            format!(
                "Agent {agent} w biurze przestał się zgłaszać: dane z Optimy nie docierają do sklepów, a zamówienia do Optimy."
            ),
            format!(
                "The office agent {agent} stopped reporting: Optima's data does not reach the shops, nor orders Optima."
            ),
        ),
        Cause::DlqHasMessages { queue } => (
            format!("Komunikaty w kolejce błędów {queue}"),
            format!(
                "W kolejce błędów {queue} czekają komunikaty, których nie udało się przetworzyć mimo ponowień."
            ),
            format!("Messages wait in the dead-letter queue {queue}: they failed every retry."),
        ),
    };
    let mut body = format!("{polish}\n{english}\n");
    if !alert.detail.trim().is_empty() {
        body.push_str(&format!("\nSzczegóły / Details: {}\n", alert.detail.trim()));
    }
    let root = console_url.trim().trim_end_matches('/');
    if !root.is_empty() {
        body.push_str(&format!(
            "\nPanel / Console: {root}{}\n",
            alert.cause.page()
        ));
    }
    body.push_str(
        "\nTa sama przyczyna wraca w wiadomości najwyżej raz na godzinę.\nThe same cause is mailed at most once an hour.\n",
    );
    Mail {
        subject: ascii_subject(&subject),
        body,
    }
}

/// A subject SNS takes: Polish letters without their marks, anything else
/// outside printable ASCII as `?`, line breaks as spaces, at most 99
/// characters, starting with a letter, digit or punctuation.
pub fn ascii_subject(text: &str) -> String {
    let plain: String = text
        .chars()
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
            c if c.is_ascii_graphic() || c == ' ' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect();
    let trimmed = plain.trim_start();
    let subject: String = trimmed.chars().take(SUBJECT_MAX).collect();
    if subject.is_empty() {
        "Alert".to_owned()
    } else {
        subject
    }
}

/// Whether a mail about a cause last mailed at `last_sent_ms` (none: never)
/// is due at `now`.
pub fn due(last_sent_ms: Option<i64>, now: DateTime<Utc>) -> bool {
    last_sent_ms.is_none_or(|sent| sent <= (now - RESEND_AFTER).timestamp_millis())
}

#[derive(Debug, Error)]
pub enum AlertError {
    #[error("DynamoDB {operation} on {table} failed: {message}")]
    Dynamo {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("publishing to {topic} failed: {message}")]
    Publish { topic: String, message: String },
    #[error("sending the mail by SES from {from} failed: {message}")]
    SesSend { from: String, message: String },
}

/// What notifying did with one cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    /// Mailed now.
    Sent,
    /// Mailed within the hour (by this run's predecessor or a racing run).
    AlreadySent,
}

/// What one run's alerts came to (the watchdog's summary).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Cause keys mailed now.
    pub sent: Vec<String>,
    /// Causes present but mailed within the hour.
    pub quiet: usize,
    /// Causes left for the next run (the per-run cap, or out of time).
    pub deferred: usize,
    pub errors: Vec<String>,
}

/// Where the mail goes.
#[derive(Debug, Clone)]
enum Mailer {
    /// The alarm topic: its subscriptions deliver.
    Topic {
        sns: aws_sdk_sns::Client,
        topic_arn: String,
    },
    /// SES v2, from one address to a fixed list.
    Ses {
        ses: aws_sdk_sesv2::Client,
        from: String,
        to: Vec<String>,
    },
}

/// How the mail goes, the console's address and the alerts' items.
#[derive(Debug, Clone)]
pub struct Alerts {
    mailer: Mailer,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    console_url: String,
}

impl Alerts {
    /// By SES when `ALERT_EMAIL_FROM` and `ALERT_EMAIL_TO` (comma-separated)
    /// are both set, else to `ALARM_TOPIC_ARN` (empty or unset as well: no
    /// alerts, `None`); `CONSOLE_URL` (the console's root; empty: mails
    /// without a link) and `STATE_TABLE`.
    pub fn from_env(clients: &Clients, env: &FunctionEnv) -> Result<Option<Alerts>, EnvError> {
        let from = env
            .get("ALERT_EMAIL_FROM")
            .map(str::trim)
            .unwrap_or_default();
        let to = recipients(env.get("ALERT_EMAIL_TO").unwrap_or_default());
        let mailer = if !from.is_empty() && !to.is_empty() {
            Mailer::Ses {
                ses: clients.ses.clone(),
                from: from.to_owned(),
                to,
            }
        } else {
            if !from.is_empty() || !to.is_empty() {
                // The template grants SES only with both set: the topic it is.
                warn!(
                    "ALERT_EMAIL_FROM and ALERT_EMAIL_TO go together; with one alone the alerts go to the alarm topic"
                );
            }
            let Some(topic_arn) = env.get("ALARM_TOPIC_ARN").map(str::trim) else {
                return Ok(None);
            };
            Mailer::Topic {
                sns: clients.sns.clone(),
                topic_arn: topic_arn.to_owned(),
            }
        };
        Ok(Some(Alerts {
            mailer,
            dynamodb: clients.dynamodb.clone(),
            table: env.required("STATE_TABLE")?,
            console_url: env.get("CONSOLE_URL").unwrap_or_default().trim().to_owned(),
        }))
    }

    /// Sends one mail the configured way.
    async fn send(&self, mail: &Mail) -> Result<(), AlertError> {
        match &self.mailer {
            Mailer::Topic { sns, topic_arn } => sns
                .publish()
                .topic_arn(topic_arn)
                .subject(&mail.subject)
                .message(&mail.body)
                .send()
                .await
                .map(|_| ())
                .map_err(|err| AlertError::Publish {
                    topic: topic_arn.clone(),
                    message: describe_error(&err),
                }),
            Mailer::Ses { ses, from, to } => {
                let failed = |message: String| AlertError::SesSend {
                    from: from.clone(),
                    message,
                };
                let text = |data: &str| {
                    aws_sdk_sesv2::types::Content::builder()
                        .data(data)
                        .charset("UTF-8")
                        .build()
                        .map_err(|err| failed(err.to_string()))
                };
                let message = aws_sdk_sesv2::types::Message::builder()
                    .subject(text(&mail.subject)?)
                    .body(
                        aws_sdk_sesv2::types::Body::builder()
                            .text(text(&mail.body)?)
                            .build(),
                    )
                    .build();
                ses.send_email()
                    .from_email_address(from)
                    .destination(
                        aws_sdk_sesv2::types::Destination::builder()
                            .set_to_addresses(Some(to.clone()))
                            .build(),
                    )
                    .content(
                        aws_sdk_sesv2::types::EmailContent::builder()
                            .simple(message)
                            .build(),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|err| failed(describe_error(&err)))
            }
        }
    }

    fn dynamo_error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> AlertError {
        AlertError::Dynamo {
            operation,
            table: self.table.clone(),
            message: describe_error(err),
        }
    }

    /// Every cause's last mail: cause key → `sent_ms`.
    pub async fn sent(&self) -> Result<HashMap<String, i64>, AlertError> {
        let mut sent = HashMap::new();
        let mut start = None;
        loop {
            let out = self
                .dynamodb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s("alert"))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.dynamo_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                if let (Some(key), Some(at)) = (get_s(&item, "sk"), get_n::<i64>(&item, "sent_ms"))
                {
                    sent.insert(key.to_owned(), at);
                }
            }
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(sent),
            }
        }
    }

    /// Mails `alert` unless its cause was mailed within the hour:
    /// `previous` is its `sent_ms` as [`Alerts::sent`] read it.
    pub async fn notify(
        &self,
        alert: &Alert,
        previous: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Notified, AlertError> {
        if !due(previous, now) {
            return Ok(Notified::AlreadySent);
        }
        let key = alert.cause.key();
        let now_ms = now.timestamp_millis();
        let claim = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", s("alert"))
            .item("sk", s(&key))
            .item("sent_ms", n(now_ms))
            .item("expires_at", n((now + Duration::days(1)).timestamp()));
        // Only over what was read: a racing run that claimed first changed it.
        let claim = match previous {
            None => claim.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => claim
                .condition_expression("sent_ms = :previous")
                .expression_attribute_values(":previous", n(previous)),
        };
        match crate::dynamo::written(claim.send().await) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Notified::AlreadySent),
            Err(err) => return Err(self.dynamo_error("PutItem", &err)),
        }
        let mail = compose(alert, &self.console_url);
        if let Err(error) = self.send(&mail).await {
            self.release(&key, now_ms).await;
            return Err(error);
        }
        info!(cause = %key, subject = %mail.subject, "alert mailed");
        Ok(Notified::Sent)
    }

    /// Gives a claim back after its mail failed, so the next run mails.
    /// Best effort: a claim left behind only delays the mail an hour.
    async fn release(&self, key: &str, sent_ms: i64) {
        let released = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .key("pk", s("alert"))
            .key("sk", s(key))
            .condition_expression("sent_ms = :sent")
            .expression_attribute_values(":sent", n(sent_ms))
            .send()
            .await;
        if let Err(err) = crate::dynamo::written(released) {
            warn!(cause = %key, error = %describe_error(&err), "cannot give back an alert's claim; its next mail waits an hour");
        }
    }

    /// Mails each alert that is due, at most [`MAX_MAILS_PER_RUN`] and
    /// while `deadline` leaves time; never fails (errors are logged and
    /// summed up).
    pub async fn notify_all(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Summary {
        let mut summary = Summary::default();
        let sent = match self.sent().await {
            Ok(sent) => sent,
            Err(err) => {
                warn!(error = %err, "cannot read when alerts were last mailed; none sent this run");
                summary.errors.push(err.to_string());
                summary.deferred = alerts.len();
                return summary;
            }
        };
        for alert in alerts {
            let key = alert.cause.key();
            let previous = sent.get(&key).copied();
            if !due(previous, now) {
                summary.quiet += 1;
                continue;
            }
            if summary.sent.len() >= MAX_MAILS_PER_RUN || !deadline.allows(MAIL_RESERVE) {
                summary.deferred += 1;
                continue;
            }
            match self.notify(alert, previous, now).await {
                Ok(Notified::Sent) => summary.sent.push(key),
                Ok(Notified::AlreadySent) => summary.quiet += 1,
                Err(err) => {
                    warn!(cause = %key, error = %err, "alert not mailed; the next run tries again");
                    summary.errors.push(err.to_string());
                }
            }
        }
        summary
    }

    /// Shops that refused our credentials since `now - REFUSAL_FRESH`,
    /// each with when and what it said.
    pub async fn refusing_shops(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>, String)>, AlertError> {
        let out = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(REFUSED_PK))
            .send()
            .await
            .map_err(|e| self.dynamo_error("Query", &e))?;
        let since = now - REFUSAL_FRESH;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                let shop = get_s(item, "sk")?.to_owned();
                let at = get_n::<i64>(item, "at_ms").and_then(DateTime::from_timestamp_millis)?;
                let detail = get_s(item, "detail").unwrap_or_default().to_owned();
                (at > since).then_some((shop, at, detail))
            })
            .collect())
    }
}

/// The recipients in `ALERT_EMAIL_TO`: comma-separated, blanks dropped.
fn recipients(listed: &str) -> Vec<String> {
    listed
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The partition of shops' credential refusals.
const REFUSED_PK: &str = "shop-refused";

/// Records that `shop` refused our credentials (a 401/403) with what it
/// said, for the watchdog's alert. Best effort: a failure is logged.
pub async fn record_refusal(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    shop: &str,
    detail: &str,
) {
    let now = Utc::now();
    let detail: String = detail.chars().take(500).collect();
    let put = client
        .put_item()
        .table_name(table)
        .item("pk", s(REFUSED_PK))
        .item("sk", s(shop))
        .item("at_ms", n(now.timestamp_millis()))
        .item("detail", AttributeValue::S(detail))
        .item("expires_at", n((now + Duration::days(1)).timestamp()))
        .send()
        .await;
    if let Err(err) = put {
        warn!(%shop, error = %describe_error(&err), "cannot record the shop's refusal of our credentials for the alert");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn parked() -> Alert {
        Alert {
            cause: Cause::OrderParked {
                shop: "sklep".into(),
                order: "41 7".into(),
                number: "1024".into(),
            },
            detail: "the order has no shipping address".into(),
        }
    }

    #[test]
    fn recipients_are_the_listed_addresses_without_blanks() {
        assert_eq!(
            recipients("a@example.pl,b@example.pl"),
            ["a@example.pl", "b@example.pl"]
        );
        assert_eq!(recipients(" a@example.pl , ,"), ["a@example.pl"]);
        assert!(recipients("").is_empty() && recipients(" , ").is_empty());
    }

    #[test]
    fn a_cause_is_due_when_never_mailed_or_mailed_an_hour_ago_or_more() {
        let now = at("2026-11-20T12:00:00Z");
        assert!(due(None, now), "never mailed");
        let hour_ago = (now - Duration::hours(1)).timestamp_millis();
        assert!(due(Some(hour_ago), now), "exactly an hour ago");
        assert!(
            !due(Some(hour_ago + 1), now),
            "a millisecond short of the hour"
        );
        assert!(
            !due(Some(now.timestamp_millis()), now),
            "mailed this very run"
        );
        // A clock that stepped back never makes a mail due early.
        assert!(!due(Some(now.timestamp_millis() + 60_000), now));
    }

    #[test]
    fn each_cause_has_its_own_key_and_the_order_number_is_not_part_of_it() {
        let keys = [
            parked().cause.key(),
            Cause::ShopRefusedCredentials {
                shop: "sklep".into(),
            }
            .key(),
            Cause::AgentStale {
                agent: "sklep".into(),
            }
            .key(),
            Cause::DlqHasMessages {
                queue: "sklep".into(),
            }
            .key(),
        ];
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), 4, "{keys:?}");
        let renumbered = Cause::OrderParked {
            shop: "sklep".into(),
            order: "41 7".into(),
            number: "other".into(),
        };
        assert_eq!(renumbered.key(), parked().cause.key());
    }

    #[test]
    fn a_parked_order_mails_in_polish_then_english_with_its_own_page() {
        let mail = compose(
            &parked(),
            "https://abc.lambda-url.eu-central-1.on.aws/console/",
        );
        assert_eq!(mail.subject, "Zamowienie wstrzymane: sklep nr 1024");
        let lines: Vec<&str> = mail.body.lines().collect();
        assert!(
            lines[0].starts_with("Zamówienie nr 1024 ze sklepu sklep jest wstrzymane"),
            "{}",
            mail.body
        );
        assert!(
            lines[1].starts_with("Order 1024 from shop sklep is parked"),
            "{}",
            mail.body
        );
        assert!(
            mail.body
                .contains("Szczegóły / Details: the order has no shipping address")
        );
        // The order id escaped as a path segment; one slash between root and page.
        assert!(
            mail.body.contains(
                "Panel / Console: https://abc.lambda-url.eu-central-1.on.aws/console/orders/sklep/41%207\n"
            ),
            "{}",
            mail.body
        );
        assert!(mail.body.contains("najwyżej raz na godzinę"));
        assert!(mail.body.contains("at most once an hour"));
    }

    #[test]
    fn agents_queues_and_shops_link_the_overview_and_no_address_means_no_link() {
        for cause in [
            Cause::AgentStale {
                agent: "biuro".into(),
            },
            Cause::DlqHasMessages {
                queue: "erp_commands_dlq".into(),
            },
            Cause::ShopRefusedCredentials {
                shop: "sklep".into(),
            },
        ] {
            let alert = Alert {
                cause,
                detail: String::new(),
            };
            let mail = compose(&alert, "http://127.0.0.1:9001/console");
            assert!(
                mail.body
                    .contains("Panel / Console: http://127.0.0.1:9001/console/\n"),
                "{}",
                mail.body
            );
            assert!(!mail.body.contains("Szczegóły"), "no empty details line");
            let unlinked = compose(&alert, "  ");
            assert!(!unlinked.body.contains("Panel"), "{}", unlinked.body);
        }
        let dlq = compose(
            &Alert {
                cause: Cause::DlqHasMessages {
                    queue: "erp_commands_dlq".into(),
                },
                detail: "3".into(),
            },
            "",
        );
        assert_eq!(dlq.subject, "Komunikaty w kolejce bledow erp_commands_dlq");
        assert!(dlq.body.contains("W kolejce błędów erp_commands_dlq"));
        assert!(dlq.body.contains("dead-letter queue erp_commands_dlq"));
    }

    #[test]
    fn subjects_are_ascii_under_a_hundred_characters_without_line_breaks() {
        assert_eq!(
            ascii_subject("Zażółć gęślą jaźń ŻÓŁW"),
            "Zazolc gesla jazn ZOLW"
        );
        assert_eq!(ascii_subject("a\nb\tc — d"), "a b c ? d");
        assert_eq!(ascii_subject("   "), "Alert");
        let long = ascii_subject(&format!("Sklep {} odrzuca", "ś".repeat(300)));
        assert_eq!(long.chars().count(), 99);
        assert!(long.is_ascii());
        // A shop id of any text cannot break the rule.
        let odd = compose(
            &Alert {
                cause: Cause::ShopRefusedCredentials {
                    shop: "\n\u{1F600}sklep".into(),
                },
                detail: String::new(),
            },
            "",
        );
        assert!(
            odd.subject.is_ascii() && !odd.subject.contains('\n'),
            "{}",
            odd.subject
        );
    }
}
