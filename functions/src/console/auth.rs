//! Sign-in for the console (a public URL): operators, passwords, one-time
//! sign-in links, sessions, CSRF tokens and sign-in rate limits.
//!
//! How an operator gets in:
//! - **A one-time link** ([`Auth::invite`]: the first sign-in, and a
//!   forgotten password): `<console>/console/link#<token>`. The token is in
//!   the fragment, which browsers never send; `GET /console/link` serves a
//!   page whose script (`/console/static/link.js`, no inline script, so the
//!   strict CSP holds) reads it, clears it from the address bar and posts
//!   it. The post deletes the link (conditionally: once) and starts a
//!   session. Such a session may set a password without the current one
//!   during the link's 30 minutes.
//! - **A password** (`POST /console/signin`): argon2id, verified on a
//!   blocking thread; an unknown e-mail is verified against a dummy hash
//!   with the same parameters, so it takes as long and answers the same.
//! - **And a code, when the operator turned TOTP on** ([`totp`], set up
//!   on `/console/account`, [`account`]): a right password or a redeemed
//!   link gives no session but a pending sign-in (5 minutes, once, in its
//!   own `__Host-` cookie); `/console/signin/code` asks for the
//!   authenticator's code and only a right, unused one starts the session;
//!   one of the operator's ten one-time backup codes ([`backup_codes`])
//!   does too, for an operator without their phone.
//!
//! Rate limits: every password check first takes a slot in two fixed
//! 15-minute windows, the account's (5) and the client address's (20), by a
//! conditional `ADD` (so parallel guesses cannot all pass a read-then-write
//! check); a right password gives its slots back. A full window refuses
//! without checking the password and says until when. TOTP codes checked
//! at sign-in, to turn TOTP off or to make new backup codes, and backup
//! codes at sign-in, take slots in the same windows.
//!
//! The client address: in AWS, lambda_http's request context (the Function
//! URL's `requestContext.http.sourceIp`, the TCP peer AWS saw); else the
//! socket's peer when the server was started with connect info; else
//! `unknown` (the local host's `axum::serve` gives neither, so all local
//! callers share one bucket). `X-Forwarded-For` is never read: anyone can
//! write it. IPv6 addresses count by their /64, which one client usually
//! holds whole. Behind a proxy (CloudFront) this would be the proxy's
//! address: then read its header here, and only that.
//!
//! Sessions: a 256-bit id in the cookie `__Host-console` (Path=/, HttpOnly,
//! Secure, SameSite=Strict); the table keeps only its SHA-256. Idle timeout
//! 12 h (`last_seen`, written at most once a minute), absolute 7 days. A
//! password change bumps the operator's `session_epoch`: sessions of an
//! older epoch are refused (the changing one is replaced by a new one).
//! [`require_session`] lets through a live session, and for anything but
//! GET/HEAD only with the session's CSRF token in the form's `csrf` field.
//!
//! Items (state table; TTL deletion is lazy, so every read checks times):
//! - `pk = operator#<email>`, `sk = operator`: `email`, `created_at`,
//!   `password_hash` (PHC, absent until set), `password_changed_at`,
//!   `session_epoch`; with TOTP on `totp_secret` (base32), `totp_enabled_at`
//!   and `totp_last_step` (the last accepted code's step: older or equal
//!   steps are refused), `totp_backup_codes` (a string set of the unspent
//!   backup codes' SHA-256) and `totp_backup_codes_at`; during an
//!   enrolment `totp_enrolment` (base32) and `totp_enrolment_expires`.
//! - `pk = signin-link#<sha256 hex of token>`, `sk = link`: `email`,
//!   `created_at`, `expires`, `ttl`.
//! - `pk = session#<sha256 hex of id>`, `sk = session`: `email`, `csrf`,
//!   `created_at`, `last_seen`, `by_link`, `session_epoch`, `ttl`.
//! - `pk = signin-pending#<sha256 hex of token>`, `sk = pending`: `email`,
//!   `csrf`, `by_link`, `session_epoch`, `created_at`, `expires`, `ttl`.
//! - `pk = signin-failures#account#<email>` or
//!   `signin-failures#address#<address>`, `sk = <window start, epoch s>`:
//!   `failures`, `ttl`.
//!
//! Times are epoch milliseconds, `ttl` epoch seconds. The activity log
//! records sign-ins, refusals (never a password, a token, a code or a
//! TOTP secret), throttling, links redeemed or refused, sign-outs, password
//! changes, TOTP turned on or off, refused codes, backup codes made and
//! each one used.

mod account;
mod backup_codes;
mod totp;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, SameSite};
use maud::{DOCTYPE, Markup, html};
/// What [`Auth::invite`] gives, and how to read it, for callers outside
/// this crate (a command printing the first operator's link, tests).
pub use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::console::log::{ActivityLog, LogEntry};
use crate::dynamo::{get_bool, get_n, get_s, get_time, n, s, written};
use crate::state::StateError;

/// The session cookie's name (`__Host-`: the browser keeps it only when
/// Secure, Path=/ and without Domain).
pub const SESSION_COOKIE: &str = "__Host-console";
/// The stylesheet every console page links.
pub const CSS_PATH: &str = "/console/static/console.css";
/// The script of the sign-in link's page.
pub const LINK_SCRIPT_PATH: &str = "/console/static/link.js";
/// The Content-Security-Policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
/// A password's least length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// A password's greatest length (bounds the hashing work a request can ask).
pub const MAX_PASSWORD_CHARS: usize = 512;

/// How long a sign-in link is valid.
const LINK_VALID: Duration = Duration::minutes(30);
/// A session unused this long has ended.
const SESSION_IDLE: Duration = Duration::hours(12);
/// A session this old has ended, however used.
const SESSION_MAX: Duration = Duration::days(7);
/// `last_seen` is written at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);
/// The rate limits' fixed window, in seconds.
const WINDOW_SECONDS: i64 = 15 * 60;
/// Failed password checks an account may have in a window.
const ACCOUNT_FAILURES: i64 = 5;
/// Failed password checks a client address may have in a window.
const ADDRESS_FAILURES: i64 = 20;
/// The largest form body read.
const FORM_LIMIT: usize = 16 * 1024;
/// An e-mail's greatest length (RFC 5321's path limit less the brackets).
const MAX_EMAIL_CHARS: usize = 254;
/// Random bytes in a link's token and a session's id (256 bits).
const TOKEN_BYTES: usize = 32;

/// Verified when there is no such operator or no password yet, so that the
/// answer takes as long as a real check: the hash of 32 random bytes
/// nobody kept, with [`Params::DEFAULT`] (the parameters new hashes get).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$AKBeqnA7qi3K20muqMDODA$aF3nGnyQuuyEU7tnTUp86V8jBmWLNqD3ZlUvdon5nQo";

/// The operator a request runs for, put into the request's extensions by
/// [`require_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The operator's e-mail (their name in the log).
    pub email: String,
    /// The session's CSRF token: every form carries it as `csrf`.
    pub csrf: String,
}

/// The session behind a request (beside [`SignedIn`], for the pages here).
#[derive(Debug, Clone)]
struct Current {
    /// The session item's key.
    key: String,
    by_link: bool,
    created_at: DateTime<Utc>,
}

/// What time it is (a test sets its own).
type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Auth {
    client: aws_sdk_dynamodb::Client,
    table: String,
    log: ActivityLog,
    clock: Clock,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// An operator as stored.
#[derive(Debug, Clone)]
struct Operator {
    email: String,
    password_hash: Option<String>,
    session_epoch: i64,
    /// The second factor's secret, when TOTP is on.
    totp: Option<totp::TotpSecret>,
    totp_enabled_at: Option<DateTime<Utc>>,
    /// An enrolment begun and not yet confirmed: its secret, valid until.
    totp_enrolment: Option<(totp::TotpSecret, DateTime<Utc>)>,
    /// Backup codes not yet used.
    backup_codes_left: usize,
}

/// A live session as stored.
#[derive(Debug, Clone)]
struct Session {
    key: String,
    email: String,
    csrf: String,
    created_at: DateTime<Utc>,
    by_link: bool,
}

/// A session just started: the id goes into the cookie, never elsewhere.
struct NewSession {
    id: SecretString,
}

/// One slot taken in a rate-limit window.
struct Slot {
    pk: String,
    sk: String,
}

/// A rate-limited check's slots: the account's and the address's.
enum Slots {
    Taken {
        account: Slot,
        address: Slot,
    },
    /// A window is full: nothing taken.
    Full {
        until: DateTime<Utc>,
        /// "account" or "address".
        by: &'static str,
    },
}

/// The outcome of a password check.
enum Checked {
    /// Too many failures: not checked.
    Throttled {
        until: DateTime<Utc>,
        /// "account" or "address".
        by: &'static str,
    },
    /// No such operator, no password yet, or a wrong one.
    Wrong {
        known: bool,
    },
    Right,
}

impl Auth {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        log: ActivityLog,
    ) -> Self {
        Auth {
            client,
            table: table.into(),
            log,
            clock: Arc::new(Utc::now),
        }
    }

    /// The same with another clock (tests move time forward).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn error(
        &self,
        operation: &'static str,
        err: &(dyn std::error::Error + 'static),
    ) -> StateError {
        StateError::dynamo(operation, &self.table, err)
    }

    /// Makes the operator if there is none with this e-mail and gives a
    /// one-time sign-in token, valid 30 minutes (the part after `#` in
    /// `<console>/console/link#<token>`). The caller logs who asked for it.
    pub async fn invite(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretString, StateError> {
        let email = normalize_email(email);
        if !plausible_email(&email) {
            return Err(StateError::Malformed {
                key: "operator".into(),
                problem:
                    "an operator is named by an e-mail address (name@domain, up to 254 characters)"
                        .into(),
            });
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("operator#{email}")))
            .key("sk", s("operator"))
            .update_expression(
                "SET email = if_not_exists(email, :email), created_at = if_not_exists(created_at, :now)",
            )
            .expression_attribute_values(":email", s(&email))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", &e))?;
        let token = random_token();
        let expires = now + LINK_VALID;
        let stored = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key(
                    "pk",
                    s(format!("signin-link#{}", sha256_hex(token.expose_secret()))),
                )
                .key("sk", s("link"))
                .update_expression(
                    "SET email = :email, created_at = :now, expires = :expires, #ttl = :ttl",
                )
                .condition_expression("attribute_not_exists(pk)")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":email", s(&email))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":expires", n(expires.timestamp_millis()))
                .expression_attribute_values(":ttl", n(expires.timestamp()))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        if stored.is_none() {
            // 256 random bits met an existing token: never in practice.
            return Err(StateError::Malformed {
                key: "signin-link".into(),
                problem: "a new token collided with a stored one".into(),
            });
        }
        Ok(token)
    }

    async fn operator(&self, email: &str) -> Result<Option<Operator>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("operator#{email}")))
            .key("sk", s("operator"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        Ok(out.item.map(|item| Operator {
            email: get_s(&item, "email").unwrap_or(email).to_owned(),
            password_hash: get_s(&item, "password_hash").map(str::to_owned),
            session_epoch: get_n(&item, "session_epoch").unwrap_or(0),
            totp: get_s(&item, "totp_secret").map(totp::TotpSecret::stored),
            totp_enabled_at: get_time(&item, "totp_enabled_at"),
            totp_enrolment: get_s(&item, "totp_enrolment")
                .zip(get_time(&item, "totp_enrolment_expires"))
                .map(|(secret, until)| (totp::TotpSecret::stored(secret), until)),
            backup_codes_left: backup_codes::left_in(&item),
        }))
    }

    /// Stores a new password hash and ends every session of the operator
    /// (their epoch moves on); the new epoch, `None` without such operator.
    async fn set_password(
        &self,
        email: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression(
                    "SET password_hash = :hash, password_changed_at = :now ADD session_epoch :one",
                )
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":hash", s(hash))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.map(|out| {
            out.attributes
                .as_ref()
                .and_then(|item| get_n(item, "session_epoch"))
                .unwrap_or(0)
        }))
    }

    /// Deletes the link (once: of two concurrent redemptions one wins);
    /// its operator's e-mail when it existed and had not expired.
    async fn take_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StateError> {
        let out = written(
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(format!("signin-link#{}", sha256_hex(token))))
                .key("sk", s("link"))
                .condition_expression("attribute_exists(pk)")
                .return_values(ReturnValue::AllOld)
                .send()
                .await,
        )
        .map_err(|e| self.error("DeleteItem", &e))?;
        let Some(item) = out.and_then(|out| out.attributes) else {
            return Ok(None);
        };
        let live = get_time(&item, "expires").is_some_and(|expires| now < expires);
        Ok(get_s(&item, "email").filter(|_| live).map(str::to_owned))
    }

    async fn start_session(
        &self,
        email: &str,
        session_epoch: i64,
        by_link: bool,
        now: DateTime<Utc>,
    ) -> Result<NewSession, StateError> {
        let id = random_token();
        let csrf = random_token();
        let stored = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(session_key(id.expose_secret())))
                .key("sk", s("session"))
                .update_expression(
                    "SET email = :email, csrf = :csrf, created_at = :now, last_seen = :now, by_link = :by_link, session_epoch = :epoch, #ttl = :ttl",
                )
                .condition_expression("attribute_not_exists(pk)")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":email", s(email))
                .expression_attribute_values(":csrf", s(csrf.expose_secret()))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":by_link", AttributeValue::Bool(by_link))
                .expression_attribute_values(":epoch", n(session_epoch))
                .expression_attribute_values(":ttl", n(session_ttl(now, now)))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        if stored.is_none() {
            return Err(StateError::Malformed {
                key: "session".into(),
                problem: "a new session id collided with a stored one".into(),
            });
        }
        Ok(NewSession { id })
    }

    /// The live session the request's cookie names, its `last_seen`
    /// brought up to date; an ended one is deleted.
    async fn session_of(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StateError> {
        let Some(id) = session_cookie(headers) else {
            return Ok(None);
        };
        let key = session_key(&id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&key))
            .key("sk", s("session"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let (Some(email), Some(csrf), Some(created_at), Some(last_seen)) = (
            get_s(&item, "email"),
            get_s(&item, "csrf"),
            get_time(&item, "created_at"),
            get_time(&item, "last_seen"),
        ) else {
            tracing::warn!("a console session item is unreadable; ended");
            self.end_session(&key).await?;
            return Ok(None);
        };
        if now - last_seen >= SESSION_IDLE || now - created_at >= SESSION_MAX {
            self.end_session(&key).await?;
            return Ok(None);
        }
        let epoch: i64 = get_n(&item, "session_epoch").unwrap_or(0);
        let current = self
            .operator(email)
            .await?
            .is_some_and(|operator| operator.session_epoch == epoch);
        if !current {
            // The password changed since (or the operator is gone).
            self.end_session(&key).await?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_EVERY {
            let touched = written(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(&key))
                    .key("sk", s("session"))
                    .update_expression("SET last_seen = :now, #ttl = :ttl")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":now", n(now.timestamp_millis()))
                    .expression_attribute_values(":ttl", n(session_ttl(created_at, now)))
                    .send()
                    .await,
            )
            .map_err(|e| self.error("UpdateItem", &e))?;
            if touched.is_none() {
                // Signed out meanwhile.
                return Ok(None);
            }
        }
        Ok(Some(Session {
            key,
            email: email.to_owned(),
            csrf: csrf.to_owned(),
            created_at,
            by_link: get_bool(&item, "by_link"),
        }))
    }

    async fn end_session(&self, key: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .key("sk", s("session"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("DeleteItem", &e))
    }

    /// Takes a slot in the scope's current window; `None` when the window
    /// is full (nothing taken).
    async fn take_slot(
        &self,
        scope: &str,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Slot>, StateError> {
        let (start, end) = window(now);
        let slot = Slot {
            pk: format!("signin-failures#{scope}"),
            sk: start.to_string(),
        };
        let taken = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&slot.pk))
                .key("sk", s(&slot.sk))
                .update_expression("ADD failures :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(failures) OR failures < :max")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max))
                .expression_attribute_values(":ttl", n(end.timestamp() + 3600))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(taken.map(|_| slot))
    }

    /// Gives a slot back (the password was right); a failure only costs
    /// the operator one attempt of their window, so it is logged, not fatal.
    async fn give_back(&self, slot: Slot) {
        let result = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&slot.pk))
                .key("sk", s(&slot.sk))
                .update_expression("ADD failures :minus")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":minus", n(-1))
                .send()
                .await,
        );
        if let Err(err) = result {
            let err = self.error("UpdateItem", &err);
            tracing::warn!(error = %err, "a sign-in rate-limit slot could not be given back");
        }
    }

    /// Takes a slot in the account's window and one in the address's, or
    /// none when either is full.
    async fn take_slots(
        &self,
        email: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<Slots, StateError> {
        let until = window(now).1;
        let Some(account) = self
            .take_slot(&format!("account#{email}"), ACCOUNT_FAILURES, now)
            .await?
        else {
            return Ok(Slots::Full {
                until,
                by: "account",
            });
        };
        match self
            .take_slot(&format!("address#{address}"), ADDRESS_FAILURES, now)
            .await
        {
            Ok(Some(address)) => Ok(Slots::Taken { account, address }),
            Ok(None) => {
                self.give_back(account).await;
                Ok(Slots::Full {
                    until,
                    by: "address",
                })
            }
            Err(err) => {
                self.give_back(account).await;
                Err(err)
            }
        }
    }

    /// Checks an operator's password under the rate limits: the slots are
    /// taken before the check and given back when it was right.
    async fn check_password(
        &self,
        email: &str,
        address: &str,
        password: SecretString,
        now: DateTime<Utc>,
    ) -> Result<Checked, StateError> {
        let (account, address) = match self.take_slots(email, address, now).await? {
            Slots::Taken { account, address } => (account, address),
            Slots::Full { until, by } => return Ok(Checked::Throttled { until, by }),
        };
        let operator = match self.operator(email).await {
            Ok(operator) => operator,
            Err(err) => {
                self.give_back(account).await;
                self.give_back(address).await;
                return Err(err);
            }
        };
        let known = operator.is_some();
        let hash = operator.and_then(|operator| operator.password_hash);
        if verify_password(hash, password).await {
            self.give_back(account).await;
            self.give_back(address).await;
            Ok(Checked::Right)
        } else {
            Ok(Checked::Wrong { known })
        }
    }

    /// Writes an entry of the activity log; a failure is logged, not fatal
    /// (the sign-in itself happened or not either way).
    async fn record(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        subject: &str,
        detail: String,
    ) {
        let entry = LogEntry {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        };
        if let Err(err) = self.log.record(entry).await {
            tracing::warn!(error = %err, action, "the console's activity log could not record an entry");
        }
    }
}

/// The sign-in pages: `/console/signin`, `/console/signin/code`,
/// `/console/link`, `/console/signout`, `/console/password`,
/// `/console/account` (and its TOTP forms), and the static files `/console/static/console.css`
/// and `/console/static/link.js`. Every response carries
/// [`security_headers`].
pub fn routes(auth: Arc<Auth>) -> Router {
    let signed_in = Router::new()
        .route("/console/signout", post(sign_out))
        .route(
            "/console/password",
            get(password_page).post(change_password),
        )
        .route("/console/account", get(account::account_page))
        .route("/console/account/totp", post(account::begin_enrolment))
        .route(
            "/console/account/totp/confirm",
            post(account::confirm_enrolment),
        )
        .route("/console/account/totp/off", post(account::turn_off))
        .route(
            "/console/account/totp/backup-codes",
            post(account::renew_backup_codes),
        )
        .route_layer(middleware::from_fn_with_state(
            auth.clone(),
            require_session,
        ));
    Router::new()
        .route("/console/signin", get(sign_in_page).post(sign_in))
        .route(
            totp::CODE_PATH,
            get(totp::code_page).post(totp::sign_in_code),
        )
        .route("/console/link", get(link_page).post(redeem_link))
        .route(LINK_SCRIPT_PATH, get(link_script))
        .route(CSS_PATH, get(stylesheet))
        .merge(signed_in)
        .layer(middleware::from_fn(with_security_headers))
        .with_state(auth)
}

/// Lets a request with a live session through with [`SignedIn`] in its
/// extensions (a POST also needs the session's CSRF token in the form's
/// `csrf` field); others go to the sign-in page (GET) or get 403 (POST).
/// Its responses, the pages' included, carry [`security_headers`].
pub async fn require_session(
    State(auth): State<Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = guard(&auth, request, next).await;
    security_headers(response.headers_mut());
    response
}

async fn guard(auth: &Auth, request: Request, next: Next) -> Response {
    let lang = Lang::of(request.headers(), request.uri().query());
    let now = auth.now();
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let session = match auth.session_of(request.headers(), now).await {
        Ok(session) => session,
        Err(err) => return unavailable(lang, &err),
    };
    let Some(session) = session else {
        return if safe {
            see_other("/console/signin")
        } else {
            forbidden(lang)
        };
    };
    let mut request = if safe {
        request
    } else {
        let (parts, body) = request.into_parts();
        if !is_form(&parts.headers) {
            return forbidden(lang);
        }
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let form = parse_form(&bytes);
        let presented = field(&form, "csrf").unwrap_or_default();
        let matches: bool = presented.as_bytes().ct_eq(session.csrf.as_bytes()).into();
        if !matches {
            return forbidden(lang);
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    request.extensions_mut().insert(SignedIn {
        email: session.email.clone(),
        csrf: session.csrf.clone(),
    });
    request.extensions_mut().insert(Current {
        key: session.key,
        by_link: session.by_link,
        created_at: session.created_at,
    });
    next.run(request).await
}

/// Sets the console's security headers: the strict
/// [`CONTENT_SECURITY_POLICY`], `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer`, `Cache-Control: no-store`.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// [`security_headers`] as a middleware:
/// `router.layer(axum::middleware::from_fn(with_security_headers))`.
pub async fn with_security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    security_headers(response.headers_mut());
    response
}

/// The caller's address for the rate limits (see the module's doc): never
/// from a header the caller writes.
pub fn client_address(extensions: &axum::http::Extensions) -> String {
    use lambda_http::request::RequestContext;
    let from_lambda = match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = from_lambda {
        return match ip.trim().parse::<IpAddr>() {
            Ok(ip) => address_key(ip),
            Err(_) => ip.chars().take(64).collect(),
        };
    }
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return address_key(peer.ip());
    }
    "unknown".to_owned()
}

/// An IPv4 address as it is; an IPv6 one by its /64.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The cookie that keeps the language a page was asked in (`?lang=`).
pub const LANG_COOKIE: &str = "console_lang";

/// Keeps the language a page was asked in (`?lang=`) in [`LANG_COOKIE`],
/// so the next pages (and the sign-in's redirects) speak it too.
pub async fn remember_language(request: Request, next: Next) -> Response {
    let asked = Lang::asked(request.uri().query());
    let mut response = next.run(request).await;
    if let Some(lang) = asked {
        let cookie = cookie::Cookie::build((LANG_COOKIE, lang.code()))
            .path("/console")
            .secure(true)
            .http_only(true)
            .same_site(cookie::SameSite::Strict)
            .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The language of a console page: `?lang=pl|en` when given, else the one
/// kept in [`LANG_COOKIE`], else the first of Polish and English in
/// `Accept-Language` by preference, else Polish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Pl,
    En,
}

impl Lang {
    pub fn of(headers: &HeaderMap, query: Option<&str>) -> Lang {
        let kept = || cookie_value(headers, LANG_COOKIE).and_then(|code| Lang::from_code(&code));
        Lang::asked(query).or_else(kept).unwrap_or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
                .unwrap_or(Lang::Pl)
        })
    }

    /// The language `?lang=` asks for, if it asks.
    pub fn asked(query: Option<&str>) -> Option<Lang> {
        query.and_then(|q| field(&parse_form(q.as_bytes()), "lang").and_then(Lang::from_code))
    }

    /// `pl` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Pl => "pl",
            Lang::En => "en",
        }
    }

    /// The text in this language.
    pub fn t(self, pl: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Pl => pl,
            Lang::En => en,
        }
    }

    fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "pl" => Some(Lang::Pl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            let Some(lang) = Lang::from_code(primary) else {
                continue;
            };
            let quality = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality > 0.0 && best.is_none_or(|(b, _)| quality > b) {
                best = Some((quality, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }
}

/// A form a signed-in operator posted about their own account, read the
/// one way every such handler reads it.
struct OwnForm {
    form: Vec<(String, String)>,
    lang: Lang,
    now: DateTime<Utc>,
    /// The client's address (for the log and the rate limits).
    address: String,
    /// The signed-in operator, as stored now.
    operator: Operator,
}

/// The prologue of every handler of an operator's own account (password,
/// TOTP, backup codes): reads the form, picks the answer's language, checks
/// the form's CSRF token and looks up the signed-in operator. `Err` is the
/// answer to give instead: a body too large, a stale form, an operator no
/// longer there (to the sign-in page), the table out of reach.
///
/// [`require_session`] has checked the token already; it is checked again
/// here so that none of these handlers can be mounted without the check.
async fn signed_in_operator(
    auth: &Auth,
    signed_in: &SignedIn,
    request: Request,
) -> Result<OwnForm, Response> {
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    };
    let lang = form_lang(&parts.headers, &form);
    let presented = field(&form, "csrf").unwrap_or_default();
    let matches: bool = presented.as_bytes().ct_eq(signed_in.csrf.as_bytes()).into();
    if !matches {
        return Err(forbidden(lang));
    }
    let operator = match auth.operator(&signed_in.email).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return Err(see_other("/console/signin")),
        Err(err) => return Err(unavailable(lang, &err)),
    };
    Ok(OwnForm {
        lang,
        now: auth.now(),
        address: client_address(&parts.extensions),
        operator,
        form,
    })
}

// ---- handlers ----

async fn sign_in_page(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let lang = Lang::of(&headers, uri.query());
    html_page(StatusCode::OK, sign_in_form(lang, "", None))
}

async fn sign_in(State(auth): State<Arc<Auth>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    if cross_site(&parts.headers) {
        return forbidden(lang);
    }
    let address = client_address(&parts.extensions);
    let email = normalize_email(field(&form, "email").unwrap_or_default());
    let password = SecretString::from(field(&form, "password").unwrap_or_default().to_owned());
    let now = auth.now();
    let checked = match auth.check_password(&email, &address, password, now).await {
        Ok(checked) => checked,
        Err(err) => return unavailable(lang, &err),
    };
    match checked {
        Checked::Throttled { until, by } => {
            auth.record(
                now,
                &email,
                "sign-in throttled",
                &email,
                format!(
                    "too many failed sign-ins for the {by}, from {address}; refused until {until}"
                ),
            )
            .await;
            throttled(lang, &email, until, now)
        }
        Checked::Wrong { known } => {
            let why = if known {
                "wrong password (or none set yet)"
            } else {
                "no such operator"
            };
            auth.record(
                now,
                &email,
                "sign-in refused",
                &email,
                format!("{why}, from {address}"),
            )
            .await;
            let message = lang.t(
                "Nieprawidłowy e-mail lub hasło.",
                "Wrong e-mail or password.",
            );
            html_page(
                StatusCode::UNAUTHORIZED,
                sign_in_form(lang, &email, Some(message)),
            )
        }
        Checked::Right => {
            let operator = match auth.operator(&email).await {
                Ok(Some(operator)) => operator,
                Ok(None) => {
                    return unavailable(
                        lang,
                        &StateError::NotYet("the operator was removed".into()),
                    );
                }
                Err(err) => return unavailable(lang, &err),
            };
            if operator.totp.is_some() {
                return totp::ask_for_code(&auth, lang, &operator, false, &address, now).await;
            }
            end_presented_session(&auth, &parts.headers).await;
            let session = match auth
                .start_session(&operator.email, operator.session_epoch, false, now)
                .await
            {
                Ok(session) => session,
                Err(err) => return unavailable(lang, &err),
            };
            auth.record(
                now,
                &email,
                "sign-in",
                &email,
                format!("password, from {address}"),
            )
            .await;
            with_session(see_other("/console/"), &session)
        }
    }
}

async fn link_page(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let lang = Lang::of(&headers, uri.query());
    let content = html! {
        h1 { (lang.t("Logowanie jednorazowym linkiem", "Signing in with a one-time link")) }
        form id="link-form" method="post" action="/console/link" {
            input type="hidden" name="lang" value=(lang.code());
            input type="hidden" name="token" value="";
            p { (lang.t("Trwa logowanie…", "Signing in…")) }
        }
        p id="link-missing" class="error" hidden {
            (lang.t("Ten adres nie zawiera linku logowania. Otwórz cały link z wiadomości.",
                    "This address holds no sign-in link. Open the whole link from the message."))
        }
        noscript {
            p class="error" {
                (lang.t("Logowanie linkiem wymaga JavaScriptu.", "Signing in with a link needs JavaScript."))
            }
        }
        script src=(LINK_SCRIPT_PATH) defer {}
    };
    html_page(
        StatusCode::OK,
        page(lang, lang.t("Logowanie", "Sign in"), content),
    )
}

async fn redeem_link(State(auth): State<Arc<Auth>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    if cross_site(&parts.headers) {
        return forbidden(lang);
    }
    let address = client_address(&parts.extensions);
    let now = auth.now();
    let token = field(&form, "token").unwrap_or_default();
    let taken = if token.is_empty() || token.len() > 128 {
        Ok(None)
    } else {
        auth.take_link(token, now).await
    };
    let operator = match taken {
        Ok(Some(email)) => match auth.operator(&email).await {
            Ok(operator) => operator,
            Err(err) => return unavailable(lang, &err),
        },
        Ok(None) => None,
        Err(err) => return unavailable(lang, &err),
    };
    let Some(operator) = operator else {
        auth.record(
            now,
            "anonymous",
            "sign-in link refused",
            &address,
            format!("used, expired or unknown, from {address}"),
        )
        .await;
        return link_refused(lang);
    };
    if operator.totp.is_some() {
        // The link alone is not enough: the code comes first.
        auth.record(
            now,
            &operator.email,
            "sign-in link redeemed",
            &operator.email,
            format!("from {address}; the TOTP code is asked next"),
        )
        .await;
        return totp::ask_for_code(&auth, lang, &operator, true, &address, now).await;
    }
    end_presented_session(&auth, &parts.headers).await;
    let session = match auth
        .start_session(&operator.email, operator.session_epoch, true, now)
        .await
    {
        Ok(session) => session,
        Err(err) => return unavailable(lang, &err),
    };
    auth.record(
        now,
        &operator.email,
        "sign-in link redeemed",
        &operator.email,
        format!("from {address}"),
    )
    .await;
    with_session(see_other(after_link(&operator)), &session)
}

/// Where a link's sign-in goes: the console, or to set a first password.
fn after_link(operator: &Operator) -> &'static str {
    if operator.password_hash.is_some() {
        "/console/"
    } else {
        "/console/password"
    }
}

async fn sign_out(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::of(&headers, None);
    let now = auth.now();
    if let Err(err) = auth.end_session(&current.key).await {
        return unavailable(lang, &err);
    }
    auth.record(
        now,
        &signed_in.email,
        "sign-out",
        &signed_in.email,
        String::new(),
    )
    .await;
    let mut response = see_other("/console/signin");
    let mut removal = session_cookie_of("");
    removal.make_removal();
    set_cookie(&mut response, &removal);
    response
}

async fn password_page(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let lang = Lang::of(&headers, uri.query());
    let operator = match auth.operator(&signed_in.email).await {
        Ok(operator) => operator,
        Err(err) => return unavailable(lang, &err),
    };
    let needs_current = needs_current_password(operator.as_ref(), &current, auth.now());
    html_page(
        StatusCode::OK,
        password_form(lang, &signed_in, needs_current, None),
    )
}

async fn change_password(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    Extension(current): Extension<Current>,
    request: Request,
) -> Response {
    let OwnForm {
        form,
        lang,
        now,
        address,
        operator,
    } = match signed_in_operator(&auth, &signed_in, request).await {
        Ok(own) => own,
        Err(refused) => return refused,
    };
    let email = signed_in.email.clone();
    let needs_current = needs_current_password(Some(&operator), &current, now);
    let new = field(&form, "new_password").unwrap_or_default();
    let repeated = field(&form, "repeat_password").unwrap_or_default();
    let refuse = |message: &'static str| {
        html_page(
            StatusCode::BAD_REQUEST,
            password_form(lang, &signed_in, needs_current, Some(message)),
        )
    };
    let chars = new.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return refuse(lang.t(
            "Hasło musi mieć co najmniej 12 znaków.",
            "The password must have at least 12 characters.",
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return refuse(lang.t(
            "Hasło może mieć najwyżej 512 znaków.",
            "The password may have at most 512 characters.",
        ));
    }
    if new != repeated {
        return refuse(lang.t(
            "Powtórzone hasło jest inne niż nowe.",
            "The repeated password differs from the new one.",
        ));
    }
    if needs_current {
        let presented = SecretString::from(
            field(&form, "current_password")
                .unwrap_or_default()
                .to_owned(),
        );
        match auth.check_password(&email, &address, presented, now).await {
            Ok(Checked::Right) => {}
            Ok(Checked::Wrong { .. }) => {
                auth.record(
                    now,
                    &email,
                    "password change refused",
                    &email,
                    format!("wrong current password, from {address}"),
                )
                .await;
                return html_page(
                    StatusCode::UNAUTHORIZED,
                    password_form(
                        lang,
                        &signed_in,
                        needs_current,
                        Some(lang.t(
                            "Obecne hasło jest nieprawidłowe.",
                            "The current password is wrong.",
                        )),
                    ),
                );
            }
            Ok(Checked::Throttled { until, by }) => {
                auth.record(
                    now,
                    &email,
                    "password change throttled",
                    &email,
                    format!("too many failed password checks for the {by}, from {address}; refused until {until}"),
                )
                .await;
                return throttled(lang, &email, until, now);
            }
            Err(err) => return unavailable(lang, &err),
        }
    }
    let Some(hash) = hash_password(SecretString::from(new.to_owned())).await else {
        tracing::error!("a password could not be hashed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let epoch = match auth.set_password(&email, &hash, now).await {
        Ok(Some(epoch)) => epoch,
        Ok(None) => return see_other("/console/signin"),
        Err(err) => return unavailable(lang, &err),
    };
    // The epoch moved on: every session of the operator, this one
    // included, has ended; this one goes on as a new session.
    if let Err(err) = auth.end_session(&current.key).await {
        tracing::warn!(error = %err, "the replaced console session could not be deleted");
    }
    let session = match auth.start_session(&email, epoch, false, now).await {
        Ok(session) => session,
        Err(err) => return unavailable(lang, &err),
    };
    let detail = if operator.password_hash.is_some() {
        "changed; the operator's other sessions ended"
    } else {
        "first password set"
    };
    auth.record(now, &email, "password changed", &email, detail.to_owned())
        .await;
    with_session(see_other("/console/"), &session)
}

async fn link_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/console/link.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console/console.css"),
    )
        .into_response()
}

// ---- pages ----

/// A console page: the document, its head (title, viewport, the
/// stylesheet) and `body`; the sign-in's pages and the console's share it.
pub(crate) fn document(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (lang.t("Konsola", "Console")) }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body { (body) }
        }
    }
}

fn page(lang: Lang, title: &str, content: Markup) -> Markup {
    document(lang, title, html! { main class="narrow" { (content) } })
}

fn sign_in_form(lang: Lang, email: &str, message: Option<&str>) -> Markup {
    let content = html! {
        h1 { (lang.t("Logowanie do konsoli", "Sign in to the console")) }
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
        form method="post" action="/console/signin" {
            input type="hidden" name="lang" value=(lang.code());
            label for="email" { "E-mail" }
            input id="email" name="email" type="email" autocomplete="username" required value=(email);
            label for="password" { (lang.t("Hasło", "Password")) }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" { (lang.t("Zaloguj się", "Sign in")) }
        }
        p class="hint" {
            (lang.t("Nie pamiętasz hasła? Poproś innego operatora o link logowania.",
                    "Forgot your password? Ask another operator for a sign-in link."))
        }
        (language_switch(lang, "/console/signin"))
    };
    page(lang, lang.t("Logowanie", "Sign in"), content)
}

fn password_form(
    lang: Lang,
    signed_in: &SignedIn,
    needs_current: bool,
    message: Option<&str>,
) -> Markup {
    let content = html! {
        h1 { (lang.t("Hasło", "Password")) }
        p class="muted" { (signed_in.email) }
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
        form method="post" action="/console/password" {
            input type="hidden" name="csrf" value=(signed_in.csrf);
            input type="hidden" name="lang" value=(lang.code());
            input type="email" name="username" autocomplete="username" value=(signed_in.email) hidden;
            @if needs_current {
                label for="current_password" { (lang.t("Obecne hasło", "Current password")) }
                input id="current_password" name="current_password" type="password" autocomplete="current-password" required;
            }
            label for="new_password" { (lang.t("Nowe hasło", "New password")) }
            input id="new_password" name="new_password" type="password" autocomplete="new-password"
                minlength=(MIN_PASSWORD_CHARS) maxlength=(MAX_PASSWORD_CHARS) required aria-describedby="password-hint";
            p id="password-hint" class="hint" {
                (lang.t("Co najmniej 12 znaków; najlepiej kilka niezwiązanych słów.",
                        "At least 12 characters; a few unrelated words work well."))
            }
            label for="repeat_password" { (lang.t("Powtórz nowe hasło", "Repeat the new password")) }
            input id="repeat_password" name="repeat_password" type="password" autocomplete="new-password"
                minlength=(MIN_PASSWORD_CHARS) maxlength=(MAX_PASSWORD_CHARS) required;
            button type="submit" { (lang.t("Zapisz hasło", "Save the password")) }
        }
        p class="hint" {
            (lang.t("Po zmianie hasła inne sesje tego konta zostaną zakończone.",
                    "Changing the password ends this account's other sessions."))
        }
    };
    page(lang, lang.t("Hasło", "Password"), content)
}

fn language_switch(lang: Lang, path: &str) -> Markup {
    html! {
        p class="lang" {
            @match lang {
                Lang::Pl => a href={ (path) "?lang=en" } hreflang="en" lang="en" { "English" },
                Lang::En => a href={ (path) "?lang=pl" } hreflang="pl" lang="pl" { "Polski" },
            }
        }
    }
}

fn link_refused(lang: Lang) -> Response {
    let content = html! {
        h1 { (lang.t("Link jest nieważny", "The link is not valid")) }
        p class="error" role="alert" {
            (lang.t("Ten link logowania został już użyty, wygasł albo nie istnieje. Poproś o nowy.",
                    "This sign-in link was used already, has expired or does not exist. Ask for a new one."))
        }
        p { a href="/console/signin" { (lang.t("Logowanie hasłem", "Sign in with a password")) } }
    };
    html_page(
        StatusCode::FORBIDDEN,
        page(
            lang,
            lang.t("Link jest nieważny", "The link is not valid"),
            content,
        ),
    )
}

fn throttled(lang: Lang, email: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Response {
    let local = until
        .with_timezone(&chrono_tz::Europe::Warsaw)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let message = match lang {
        Lang::Pl => format!("Zbyt wiele nieudanych prób logowania. Spróbuj ponownie po {local}."),
        Lang::En => format!("Too many failed sign-ins. Try again after {local} (Polish time)."),
    };
    let mut response = html_page(
        StatusCode::TOO_MANY_REQUESTS,
        sign_in_form(lang, email, Some(&message)),
    );
    let seconds = (until - now).num_seconds().max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn forbidden(lang: Lang) -> Response {
    let content = html! {
        h1 { (lang.t("Odmowa", "Refused")) }
        p class="error" role="alert" {
            (lang.t("Ten formularz jest nieaktualny albo sesja się skończyła. Wróć, odśwież stronę i spróbuj ponownie.",
                    "This form is stale or the session has ended. Go back, reload the page and try again."))
        }
        p { a href="/console/signin" { (lang.t("Logowanie", "Sign in")) } }
    };
    html_page(
        StatusCode::FORBIDDEN,
        page(lang, lang.t("Odmowa", "Refused"), content),
    )
}

fn unavailable(lang: Lang, err: &StateError) -> Response {
    tracing::error!(error = %err, "the console's sign-in could not reach its state");
    let content = html! {
        h1 { (lang.t("Chwilowy problem", "A passing problem")) }
        p class="error" role="alert" {
            (lang.t("Konsola nie może teraz sprawdzić logowania. Spróbuj ponownie za chwilę.",
                    "The console cannot check sign-ins just now. Try again in a moment."))
        }
    };
    html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            lang,
            lang.t("Chwilowy problem", "A passing problem"),
            content,
        ),
    )
}

pub(crate) fn html_page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

// ---- sessions' cookie ----

fn session_cookie_of(value: &str) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .build()
}

fn set_cookie(response: &mut Response, cookie: &Cookie<'_>) {
    match HeaderValue::from_str(&cookie.to_string()) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Err(_) => {
            *response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
}

fn with_session(mut response: Response, session: &NewSession) -> Response {
    set_cookie(
        &mut response,
        &session_cookie_of(session.id.expose_secret()),
    );
    response
}

/// The value of the request's cookie `name`, if it has one.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// The session id in the request's cookies, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE).filter(|id| !id.is_empty() && id.len() <= 128)
}

/// Ends the session the request already had (signing in again replaces it).
async fn end_presented_session(auth: &Auth, headers: &HeaderMap) {
    if let Some(id) = session_cookie(headers)
        && let Err(err) = auth.end_session(&session_key(&id)).await
    {
        tracing::warn!(error = %err, "a replaced console session could not be deleted");
    }
}

fn session_key(id: &str) -> String {
    format!("session#{}", sha256_hex(id))
}

/// When a session's item may go: its idle end or its absolute end.
fn session_ttl(created_at: DateTime<Utc>, last_seen: DateTime<Utc>) -> i64 {
    (last_seen + SESSION_IDLE)
        .min(created_at + SESSION_MAX)
        .timestamp()
}

/// A session started by a link within the link's validity may set a
/// password without the current one; so may an operator with none.
fn needs_current_password(
    operator: Option<&Operator>,
    current: &Current,
    now: DateTime<Utc>,
) -> bool {
    let has_password = operator.is_some_and(|o| o.password_hash.is_some());
    let fresh_link = current.by_link && now - current.created_at < LINK_VALID;
    has_password && !fresh_link
}

// ---- passwords ----

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// A new PHC string (argon2id, a random salt), on a blocking thread.
async fn hash_password(password: SecretString) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let salt: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt).ok()?;
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .ok()
            .map(|hash| hash.to_string())
    })
    .await
    .ok()
    .flatten()
}

/// Whether the password matches the stored hash, on a blocking thread.
/// Without a hash (no such operator, no password yet) or with an
/// unreadable one the dummy hash is verified, so every answer costs the
/// same, and the answer is no.
async fn verify_password(hash: Option<String>, password: SecretString) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().and_then(|h| PasswordHash::new(h).ok());
        let real = stored.is_some();
        let Some(against) = stored.or_else(|| PasswordHash::new(DUMMY_HASH).ok()) else {
            return false;
        };
        let matches = hasher()
            .verify_password(password.expose_secret().as_bytes(), &against)
            .is_ok();
        matches && real
    })
    .await
    .unwrap_or(false)
}

// ---- small pieces ----

/// 256 random bits, base64url.
fn random_token() -> SecretString {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn normalize_email(email: &str) -> String {
    email
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_EMAIL_CHARS)
        .collect()
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The window `now` falls in: its start (epoch seconds) and its end.
fn window(now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let start = now.timestamp().div_euclid(WINDOW_SECONDS) * WINDOW_SECONDS;
    let end = DateTime::from_timestamp(start + WINDOW_SECONDS, 0).unwrap_or(now);
    (start, end)
}

/// A request another site made a browser send (`Sec-Fetch-Site`): a form
/// of another site must not sign someone in.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn read_form(body: Body) -> Option<Vec<(String, String)>> {
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.ok()?;
    Some(parse_form(&bytes))
}

/// The language of a form's answer: its `lang` field, else the headers'.
fn form_lang(headers: &HeaderMap, form: &[(String, String)]) -> Lang {
    field(form, "lang")
        .and_then(Lang::from_code)
        .unwrap_or_else(|| Lang::of(headers, None))
}

/// `application/x-www-form-urlencoded` fields, in order (`+` is a space;
/// a `%` not followed by two hex digits stays as it is; bytes that are not
/// UTF-8 become U+FFFD).
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of a field.
pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_percent_escapes_and_plus() {
        let form =
            parse_form(b"email=ala%40example.pl&password=a+b%2Bc%zz%&empty=&lone&csrf=x&csrf=y");
        assert_eq!(field(&form, "email"), Some("ala@example.pl"));
        assert_eq!(field(&form, "password"), Some("a b+c%zz%"));
        assert_eq!(field(&form, "empty"), Some(""));
        assert_eq!(field(&form, "lone"), Some(""));
        assert_eq!(field(&form, "csrf"), Some("x"));
        assert_eq!(field(&form, "missing"), None);
        assert_eq!(
            field(&parse_form(b"a=%C5%BC%C3%B3%C5%82w"), "a"),
            Some("żółw")
        );
        assert_eq!(field(&parse_form(b"a=%+1"), "a"), Some("% 1"));
    }

    #[test]
    fn the_language_follows_the_query_then_accept_language_then_polish() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::of(&headers, None), Lang::Pl);
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE,en-GB;q=0.8,pl;q=0.5"),
        );
        assert_eq!(Lang::of(&headers, None), Lang::En);
        assert_eq!(Lang::of(&headers, Some("lang=pl")), Lang::Pl);
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en;q=0.3, pl-PL"),
        );
        assert_eq!(Lang::of(&headers, None), Lang::Pl);
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr, de;q=0.9"),
        );
        assert_eq!(Lang::of(&headers, Some("x=1&lang=en")), Lang::En);
        assert_eq!(Lang::of(&headers, Some("lang=xx")), Lang::Pl);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_new_hash_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("the constant parses");
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        let params = Params::try_from(&dummy).expect("its parameters parse");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (
                Params::DEFAULT.m_cost(),
                Params::DEFAULT.t_cost(),
                Params::DEFAULT.p_cost()
            )
        );
    }

    #[test]
    fn the_address_comes_from_lambdas_context_never_from_forwarded_for() {
        use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
        use lambda_http::request::RequestContext;

        let mut request = Request::new(Body::empty());
        request
            .headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(client_address(request.extensions()), "unknown");

        let peer: SocketAddr = "192.0.2.7:51000".parse().expect("an address");
        request.extensions_mut().insert(ConnectInfo(peer));
        assert_eq!(client_address(request.extensions()), "192.0.2.7");

        let mut context = ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("2001:db8:1:2:3:4:5:6".into());
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(context));
        assert_eq!(client_address(request.extensions()), "2001:db8:1:2::/64");
    }

    #[test]
    fn windows_are_fixed_quarter_hours() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("a time")
                .with_timezone(&Utc)
        };
        let (start, end) = window(at("2026-12-07T10:14:59Z"));
        assert_eq!(start, at("2026-12-07T10:00:00Z").timestamp());
        assert_eq!(end, at("2026-12-07T10:15:00Z"));
        assert_eq!(
            window(at("2026-12-07T10:15:00Z")).1,
            at("2026-12-07T10:30:00Z")
        );
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ala@Example.PL "), "ala@example.pl");
        assert!(plausible_email("ala@example.pl"));
        for bad in [
            "",
            "ala",
            "@example.pl",
            "ala@",
            "ala@pl",
            "a la@example.pl",
            "a@b@c.pl",
            "ala@.pl",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_session_item_goes_at_its_idle_or_absolute_end() {
        let created = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        assert_eq!(
            session_ttl(created, created),
            (created + SESSION_IDLE).timestamp()
        );
        let late = created + Duration::days(6) + Duration::hours(20);
        assert_eq!(
            session_ttl(created, late),
            (created + SESSION_MAX).timestamp()
        );
    }
}
