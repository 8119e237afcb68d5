//! The optional second factor: RFC 6238 codes (HMAC-SHA-1, 6 digits,
//! 30-second steps, the step before and after accepted for a clock that
//! drifts), and the sign-in's second step that asks for one.
//!
//! The secret: 160 random bits, kept base32 in the operator's item and in
//! memory only inside a [`SecretString`] (so `Debug` and the log never
//! show it); it leaves the server once, on the enrolment's page.
//!
//! A code is good once: the operator's item keeps the step of the last
//! accepted code (`totp_last_step`), and a code is accepted only by a
//! conditional write that moves it forward, so a replayed code, or one
//! older than the last used, is refused even when two requests race.
//!
//! The second step: a right password (or a redeemed link) of an operator
//! with TOTP on starts a pending sign-in, not a session: a 256-bit token in
//! the cookie `__Host-console-pending` (5 minutes; the table keeps its
//! SHA-256, the operator, whether it came by link, the operator's session
//! epoch and a CSRF token for the code's form). `POST /console/signin/code`
//! checks the code under the same rate limits as passwords (a wrong or
//! replayed code costs a slot of the account's and the address's windows),
//! and a right one deletes the pending sign-in (conditionally: once) and
//! starts the session. The same page takes a backup code instead
//! ([`super::backup_codes`]): spent by a conditional write, under the same
//! rate limits, each use in the activity log.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, SameSite};
use maud::{Markup, PreEscaped, html};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::backup_codes::{BackupChecked, BackupCodes, CODES_ATTRIBUTE, backup_code_field};
use super::{
    Auth, Lang, Operator, Slots, StateError, after_link, cookie_value, cross_site,
    end_presented_session, field, form_lang, html_page, page, random_token, read_form, see_other,
    set_cookie, sha256_hex, throttled, unavailable, with_session,
};
use crate::dynamo::{get_bool, get_n, get_s, get_time, n, s, written};

/// The second step's page and form.
pub(super) const CODE_PATH: &str = "/console/signin/code";
/// The pending sign-in's cookie (`__Host-`: Secure, Path=/, no Domain).
const PENDING_COOKIE: &str = "__Host-console-pending";
/// How long a pending sign-in waits for its code.
const PENDING_VALID: Duration = Duration::minutes(5);
/// The name authenticator apps show above the operator's e-mail.
const ISSUER: &str = "Optima Sync";
/// Random bytes in a secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;

/// A TOTP secret, base32 (RFC 4648, no padding). Never logged: `Debug`
/// says only that there is one.
#[derive(Clone)]
pub(super) struct TotpSecret(SecretString);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    /// 160 fresh random bits.
    pub(super) fn generate() -> TotpSecret {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        TotpSecret(SecretString::from(
            totp_rs::Secret::new_stack(bytes).to_base32(),
        ))
    }

    /// One read from the table.
    pub(super) fn stored(base32: &str) -> TotpSecret {
        TotpSecret(SecretString::from(base32.to_owned()))
    }

    /// The base32 text (for the table and the enrolment's page only).
    pub(super) fn base32(&self) -> &str {
        self.0.expose_secret()
    }

    /// The generator for this secret; `None` for a stored value that is not
    /// base32 or too short (refused as a wrong code, never a panic).
    fn generator(&self, account: Option<&str>) -> Option<totp_rs::Totp> {
        let secret = totp_rs::Secret::try_from_base32(self.base32()).ok()?;
        let mut builder = totp_rs::Builder::new().with_secret(secret);
        if let Some(account) = account {
            builder = builder.with_account_name(account).with_issuer(Some(ISSUER));
        }
        builder.build().ok()
    }

    /// The step of the code when it is right at `now` (the current step,
    /// the one before or the one after); `None` when it is not, or is not
    /// six digits (spaces ignored).
    pub(super) fn step_of(&self, code: &str, now: DateTime<Utc>) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seconds = u64::try_from(now.timestamp()).ok()?;
        self.generator(None)?.check(&code, seconds)
    }

    /// The `otpauth://totp/...` URI an authenticator app reads from the QR
    /// code; `None` for an e-mail the URI cannot carry (a `:` in it).
    pub(super) fn uri(&self, email: &str) -> Option<String> {
        self.generator(Some(email))?.to_url().ok()
    }
}

/// The URI as an SVG QR code, ready to put inline in a page (no XML
/// prolog; only shapes, no text, no style attribute the CSP would block).
pub(super) fn qr_svg(uri: &str) -> Option<String> {
    use qrcode::render::svg;
    let code =
        qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_owned())
}

/// A sign-in waiting for its code.
#[derive(Debug, Clone)]
struct Pending {
    key: String,
    email: String,
    csrf: String,
    by_link: bool,
    session_epoch: i64,
}

/// What a code checked under the rate limits came to.
pub(super) enum CodeChecked {
    Right,
    /// Not the current step's code, nor the one before or after.
    Wrong,
    /// Right, but its step (or a later one) was used already.
    Replayed,
    Throttled {
        until: DateTime<Utc>,
        by: &'static str,
    },
}

/// The sign-in's second step, by the app's code or a backup code.
enum SecondStep {
    /// Right; with a backup code, how many the operator has left.
    Right { backup_left: Option<usize> },
    /// Refused, and why (for the log).
    Refused(&'static str),
    Throttled {
        until: DateTime<Utc>,
        by: &'static str,
    },
}

impl From<CodeChecked> for SecondStep {
    fn from(checked: CodeChecked) -> SecondStep {
        match checked {
            CodeChecked::Right => SecondStep::Right { backup_left: None },
            CodeChecked::Wrong => SecondStep::Refused("wrong TOTP code"),
            CodeChecked::Replayed => SecondStep::Refused("TOTP code used already"),
            CodeChecked::Throttled { until, by } => SecondStep::Throttled { until, by },
        }
    }
}

impl From<BackupChecked> for SecondStep {
    fn from(checked: BackupChecked) -> SecondStep {
        match checked {
            BackupChecked::Right { left } => SecondStep::Right {
                backup_left: Some(left),
            },
            BackupChecked::WrongOrUsed => SecondStep::Refused("backup code wrong or used already"),
            BackupChecked::Throttled { until, by } => SecondStep::Throttled { until, by },
        }
    }
}

impl Auth {
    /// Keeps a new enrolment's secret (not on yet), valid `until`; false
    /// when the operator is gone or has TOTP on already.
    pub(super) async fn begin_enrolment(
        &self,
        email: &str,
        secret: &TotpSecret,
        until: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression("SET totp_enrolment = :secret, totp_enrolment_expires = :until")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(totp_secret)")
                .expression_attribute_values(":secret", s(secret.base32()))
                .expression_attribute_values(":until", n(until.timestamp_millis()))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.is_some())
    }

    /// Turns TOTP on with the enrolment's secret, its confirming code's
    /// step as the last used one and a first set of backup codes, and ends
    /// the operator's sessions (their epoch moves on, as for a new
    /// password); the new epoch, `None` when the enrolment is no longer the
    /// one confirmed.
    pub(super) async fn enable_totp(
        &self,
        email: &str,
        secret: &TotpSecret,
        step: u64,
        backup_codes: &BackupCodes,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression(
                    "SET totp_secret = :secret, totp_enabled_at = :now, totp_last_step = :step, \
                     #codes = :codes, totp_backup_codes_at = :now \
                     REMOVE totp_enrolment, totp_enrolment_expires ADD session_epoch :one",
                )
                .condition_expression(
                    "totp_enrolment = :secret AND attribute_not_exists(totp_secret)",
                )
                .expression_attribute_names("#codes", CODES_ATTRIBUTE)
                .expression_attribute_values(":codes", backup_codes.stored())
                .expression_attribute_values(":secret", s(secret.base32()))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":step", n(step))
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

    /// Turns TOTP off, its backup codes with it; false when it was off
    /// already or its secret changed.
    pub(super) async fn disable_totp(
        &self,
        email: &str,
        secret: &TotpSecret,
    ) -> Result<bool, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression(
                    "REMOVE totp_secret, totp_enabled_at, totp_last_step, #codes, totp_backup_codes_at",
                )
                .expression_attribute_names("#codes", CODES_ATTRIBUTE)
                .condition_expression("totp_secret = :secret")
                .expression_attribute_values(":secret", s(secret.base32()))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.is_some())
    }

    /// Uses a code's step: true when it is later than the last used one
    /// (which it becomes), false for a replay (or TOTP turned off meanwhile).
    async fn use_step(
        &self,
        email: &str,
        secret: &TotpSecret,
        step: u64,
    ) -> Result<bool, StateError> {
        let out = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("operator#{email}")))
                .key("sk", s("operator"))
                .update_expression("SET totp_last_step = :step")
                .condition_expression(
                    "totp_secret = :secret AND (attribute_not_exists(totp_last_step) OR totp_last_step < :step)",
                )
                .expression_attribute_values(":secret", s(secret.base32()))
                .expression_attribute_values(":step", n(step))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        Ok(out.is_some())
    }

    /// Checks an operator's code under the rate limits (the slots are
    /// taken first and given back only for a right, unused code), and
    /// uses its step when it is right.
    pub(super) async fn check_code(
        &self,
        email: &str,
        secret: &TotpSecret,
        address: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeChecked, StateError> {
        let (account, address) = match self.take_slots(email, address, now).await? {
            Slots::Taken { account, address } => (account, address),
            Slots::Full { until, by } => return Ok(CodeChecked::Throttled { until, by }),
        };
        let Some(step) = secret.step_of(code, now) else {
            return Ok(CodeChecked::Wrong);
        };
        let fresh = match self.use_step(email, secret, step).await {
            Ok(fresh) => fresh,
            Err(err) => {
                self.give_back(account).await;
                self.give_back(address).await;
                return Err(err);
            }
        };
        if !fresh {
            return Ok(CodeChecked::Replayed);
        }
        self.give_back(account).await;
        self.give_back(address).await;
        Ok(CodeChecked::Right)
    }

    /// Starts a pending sign-in; its token goes into the cookie only.
    async fn start_pending(
        &self,
        operator: &Operator,
        by_link: bool,
        now: DateTime<Utc>,
    ) -> Result<SecretString, StateError> {
        let token = random_token();
        let csrf = random_token();
        let expires = now + PENDING_VALID;
        let stored = written(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pending_key(token.expose_secret())))
                .key("sk", s("pending"))
                .update_expression(
                    "SET email = :email, csrf = :csrf, by_link = :by_link, session_epoch = :epoch, created_at = :now, expires = :expires, #ttl = :ttl",
                )
                .condition_expression("attribute_not_exists(pk)")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":email", s(&operator.email))
                .expression_attribute_values(":csrf", s(csrf.expose_secret()))
                .expression_attribute_values(":by_link", AttributeValue::Bool(by_link))
                .expression_attribute_values(":epoch", n(operator.session_epoch))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":expires", n(expires.timestamp_millis()))
                .expression_attribute_values(":ttl", n(expires.timestamp()))
                .send()
                .await,
        )
        .map_err(|e| self.error("UpdateItem", &e))?;
        if stored.is_none() {
            return Err(StateError::Malformed {
                key: "signin-pending".into(),
                problem: "a new token collided with a stored one".into(),
            });
        }
        Ok(token)
    }

    /// The live pending sign-in the request's cookie names.
    async fn pending_of(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Option<Pending>, StateError> {
        let Some(token) = cookie_value(headers, PENDING_COOKIE)
            .filter(|token| !token.is_empty() && token.len() <= 128)
        else {
            return Ok(None);
        };
        let key = pending_key(&token);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&key))
            .key("sk", s("pending"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let live = get_time(&item, "expires").is_some_and(|expires| now < expires);
        let (Some(email), Some(csrf)) = (get_s(&item, "email"), get_s(&item, "csrf")) else {
            return Ok(None);
        };
        if !live {
            return Ok(None);
        }
        Ok(Some(Pending {
            key,
            email: email.to_owned(),
            csrf: csrf.to_owned(),
            by_link: get_bool(&item, "by_link"),
            session_epoch: get_n(&item, "session_epoch").unwrap_or(0),
        }))
    }

    /// Deletes a pending sign-in; true for the one request that did.
    async fn take_pending(&self, key: &str) -> Result<bool, StateError> {
        let out = written(
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .key("sk", s("pending"))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await,
        )
        .map_err(|e| self.error("DeleteItem", &e))?;
        Ok(out.is_some())
    }
}

fn pending_key(token: &str) -> String {
    format!("signin-pending#{}", sha256_hex(token))
}

fn pending_cookie(value: &str) -> Cookie<'static> {
    Cookie::build((PENDING_COOKIE, value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(PENDING_VALID.num_seconds()))
        .build()
}

fn without_pending(mut response: Response) -> Response {
    let mut removal = pending_cookie("");
    removal.make_removal();
    set_cookie(&mut response, &removal);
    response
}

/// The password (or the link) was right and the operator has TOTP on: a
/// pending sign-in, and the browser sent to the code's page.
pub(super) async fn ask_for_code(
    auth: &Auth,
    lang: Lang,
    operator: &Operator,
    by_link: bool,
    address: &str,
    now: DateTime<Utc>,
) -> Response {
    let token = match auth.start_pending(operator, by_link, now).await {
        Ok(token) => token,
        Err(err) => return unavailable(lang, &err),
    };
    if !by_link {
        auth.record(
            now,
            &operator.email,
            "sign-in code asked",
            &operator.email,
            format!("password right, from {address}; the TOTP code is asked next"),
        )
        .await;
    }
    let mut response = see_other(CODE_PATH);
    set_cookie(&mut response, &pending_cookie(token.expose_secret()));
    response
}

pub(super) async fn code_page(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let lang = Lang::of(&headers, uri.query());
    match auth.pending_of(&headers, auth.now()).await {
        Ok(Some(pending)) => html_page(StatusCode::OK, code_form(lang, &pending.csrf, None)),
        Ok(None) => without_pending(see_other("/console/signin")),
        Err(err) => unavailable(lang, &err),
    }
}

pub(super) async fn sign_in_code(State(auth): State<Arc<Auth>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    if cross_site(&parts.headers) {
        return super::forbidden(lang);
    }
    let now = auth.now();
    let address = super::client_address(&parts.extensions);
    let pending = match auth.pending_of(&parts.headers, now).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return without_pending(expired(lang)),
        Err(err) => return unavailable(lang, &err),
    };
    let presented = field(&form, "csrf").unwrap_or_default();
    let matches: bool = presented.as_bytes().ct_eq(pending.csrf.as_bytes()).into();
    if !matches {
        return super::forbidden(lang);
    }
    let email = pending.email.clone();
    let operator = match auth.operator(&email).await {
        Ok(operator) => operator,
        Err(err) => return unavailable(lang, &err),
    };
    // The password changed, or TOTP went off, since the first step: start
    // again.
    let Some((operator, secret)) = operator
        .filter(|operator| operator.session_epoch == pending.session_epoch)
        .and_then(|operator| operator.totp.clone().map(|secret| (operator, secret)))
    else {
        if let Err(err) = auth.take_pending(&pending.key).await {
            tracing::warn!(error = %err, "a stale pending sign-in could not be deleted");
        }
        return without_pending(expired(lang));
    };
    let how = if pending.by_link {
        "sign-in link"
    } else {
        "password"
    };
    // A backup code when the operator typed one, else the app's code.
    let backup = field(&form, "backup_code").filter(|typed| !typed.trim().is_empty());
    let second = match backup {
        Some(typed) => auth
            .check_backup_code(&email, &secret, &address, typed, now)
            .await
            .map(SecondStep::from),
        None => {
            let code = field(&form, "code").unwrap_or_default();
            auth.check_code(&email, &secret, &address, code, now)
                .await
                .map(SecondStep::from)
        }
    };
    let second = match second {
        Ok(second) => second,
        Err(err) => return unavailable(lang, &err),
    };
    let (why, backup_left) = match second {
        SecondStep::Right { backup_left } => (None, backup_left),
        SecondStep::Refused(why) => (Some(why), None),
        SecondStep::Throttled { until, by } => {
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
            if let Err(err) = auth.take_pending(&pending.key).await {
                tracing::warn!(error = %err, "a throttled pending sign-in could not be deleted");
            }
            return without_pending(throttled(lang, &email, until, now));
        }
    };
    if let Some(why) = why {
        auth.record(
            now,
            &email,
            "sign-in code refused",
            &email,
            format!("{why} after the {how}, from {address}"),
        )
        .await;
        let message = if backup.is_some() {
            lang.t(
                "Nieprawidłowy albo już użyty kod zapasowy (każdy działa tylko raz).",
                "A wrong or used backup code (each works once).",
            )
        } else {
            lang.t(
                "Nieprawidłowy kod. Wpisz aktualny kod z aplikacji (każdy kod działa tylko raz).",
                "Wrong code. Enter the current code from the app (each code works once).",
            )
        };
        return html_page(
            StatusCode::UNAUTHORIZED,
            code_form(lang, &pending.csrf, Some(message)),
        );
    }
    match auth.take_pending(&pending.key).await {
        Ok(true) => {}
        Ok(false) => return without_pending(expired(lang)),
        Err(err) => return unavailable(lang, &err),
    }
    end_presented_session(&auth, &parts.headers).await;
    let session = match auth
        .start_session(&email, operator.session_epoch, pending.by_link, now)
        .await
    {
        Ok(session) => session,
        Err(err) => return unavailable(lang, &err),
    };
    let factor = match backup_left {
        Some(left) => {
            auth.record(
                now,
                &email,
                "backup code used",
                &email,
                format!("at sign-in after the {how}, from {address}; {left} left"),
            )
            .await;
            "backup code"
        }
        None => "TOTP code",
    };
    auth.record(
        now,
        &email,
        "sign-in",
        &email,
        format!("{how} and {factor}, from {address}"),
    )
    .await;
    let next = if pending.by_link {
        after_link(&operator)
    } else {
        "/console/"
    };
    without_pending(with_session(see_other(next), &session))
}

/// The code field, shared by the sign-in's second step and the account's
/// forms.
pub(super) fn code_field(lang: Lang, id: &str) -> Markup {
    html! {
        label for=(id) { (lang.t("Kod z aplikacji uwierzytelniającej", "Code from the authenticator app")) }
        input id=(id) name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
            pattern="[0-9 ]{6,7}" minlength="6" maxlength="7" required;
    }
}

fn code_form(lang: Lang, csrf: &str, message: Option<&str>) -> Markup {
    let content = html! {
        h1 { (lang.t("Weryfikacja dwuetapowa", "Two-step verification")) }
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
        p {
            (lang.t("Otwórz aplikację uwierzytelniającą i wpisz 6-cyfrowy kod dla konsoli.",
                    "Open your authenticator app and enter the console's 6-digit code."))
        }
        form method="post" action=(CODE_PATH) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="lang" value=(lang.code());
            (code_field(lang, "code"))
            button type="submit" { (lang.t("Potwierdź", "Confirm")) }
        }
        h2 { (lang.t("Nie masz telefonu?", "No phone at hand?")) }
        form method="post" action=(CODE_PATH) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="lang" value=(lang.code());
            (backup_code_field(lang, "backup_code"))
            button type="submit" class="secondary" { (lang.t("Użyj kodu zapasowego", "Use a backup code")) }
        }
        p class="hint" {
            (lang.t("Masz na to 5 minut. Bez aplikacji i kodów zapasowych poproś innego operatora o pomoc.",
                    "You have 5 minutes. Without the app and backup codes, ask another operator for help."))
        }
        p { a href="/console/signin" { (lang.t("Zacznij od nowa", "Start again")) } }
    };
    page(
        lang,
        lang.t("Weryfikacja dwuetapowa", "Two-step verification"),
        content,
    )
}

fn expired(lang: Lang) -> Response {
    let content = html! {
        h1 { (lang.t("Logowanie wygasło", "The sign-in has expired")) }
        p class="error" role="alert" {
            (lang.t("Ten etap logowania wygasł albo został już użyty. Zaloguj się ponownie.",
                    "This sign-in step has expired or was used already. Sign in again."))
        }
        p { a href="/console/signin" { (lang.t("Logowanie", "Sign in")) } }
    };
    html_page(
        StatusCode::FORBIDDEN,
        page(
            lang,
            lang.t("Logowanie wygasło", "The sign-in has expired"),
            content,
        ),
    )
}

/// The QR code in a figure an assistive technology can name.
pub(super) fn qr_figure(lang: Lang, svg: &str) -> Markup {
    html! {
        figure class="qr" {
            div role="img" aria-label=(lang.t("Kod QR do zeskanowania aplikacją uwierzytelniającą",
                                              "A QR code to scan with the authenticator app")) {
                (PreEscaped(svg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("a time")
    }

    /// RFC 6238's appendix B secret ("12345678901234567890") and its SHA-1
    /// vectors, cut to 6 digits.
    #[test]
    fn codes_follow_rfc_6238_and_the_neighbouring_steps() {
        let secret = TotpSecret::stored("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(secret.step_of("287082", at(59)), Some(1));
        assert_eq!(
            secret.step_of("081804", at(1_111_111_109)),
            Some(37_037_036)
        );
        assert_eq!(
            secret.step_of("050471", at(1_111_111_111)),
            Some(37_037_037)
        );
        assert_eq!(
            secret.step_of("005924", at(1_234_567_890)),
            Some(41_152_263)
        );
        assert_eq!(
            secret.step_of("005 924", at(1_234_567_890)),
            Some(41_152_263)
        );
        // The step before and after count; two steps off does not.
        assert_eq!(
            secret.step_of("005924", at(1_234_567_890 + 30)),
            Some(41_152_263)
        );
        assert_eq!(
            secret.step_of("005924", at(1_234_567_890 - 30)),
            Some(41_152_263)
        );
        assert_eq!(secret.step_of("005924", at(1_234_567_890 + 60)), None);
        assert_eq!(secret.step_of("005924", at(1_234_567_890 - 60)), None);
        for bad in ["", "00592", "0059244", "00592a", "-05924"] {
            assert_eq!(secret.step_of(bad, at(1_234_567_890)), None, "{bad}");
        }
        assert_eq!(
            TotpSecret::stored("not base32!").step_of("050471", at(59)),
            None
        );
    }

    #[test]
    fn a_new_secret_has_160_bits_and_never_shows_in_debug() {
        let secret = TotpSecret::generate();
        assert_eq!(secret.base32().len(), 32);
        assert_ne!(secret.base32(), TotpSecret::generate().base32());
        let debug = format!("{secret:?}");
        assert!(!debug.contains(secret.base32()), "{debug}");
        let uri = secret.uri("ala@example.pl").expect("a URI");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", secret.base32())),
            "{uri}"
        );
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style") && !svg.contains(secret.base32()));
    }
}
