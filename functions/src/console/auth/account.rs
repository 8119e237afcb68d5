//! `/console/account`: the operator's own account, where TOTP goes on and
//! off.
//!
//! Turning it on: `POST /console/account/totp` makes a fresh secret, keeps
//! it as the operator's enrolment (15 minutes) and shows it once, as base32
//! text and as the `otpauth://` URI's QR code; `POST .../confirm` with a
//! right code from the app turns it on (that code's step counts as used)
//! and, as a new password does, ends the operator's other sessions.
//! Turning it on also makes the first ten backup codes, shown once on the
//! page the confirmation answers with. `POST .../backup-codes` makes a new
//! set (the old one stops working) and needs the password or a current
//! code. Turning it off (`POST .../off`) needs the password and a current
//! code. Every password and code here is checked under the sign-in's rate
//! limits.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};
use secrecy::SecretString;

use super::backup_codes::{BackupCodes, CODES_PER_SET, shown_once};
use super::totp::{CodeChecked, TotpSecret, code_field, qr_figure, qr_svg};
use super::{
    Auth, Checked, Current, Lang, OwnForm, SignedIn, field, html_page, page, see_other,
    signed_in_operator, throttled, unavailable, with_session,
};

/// How long an enrolment waits for its confirming code.
const ENROLMENT_VALID: Duration = Duration::minutes(15);

/// What the account page shows about TOTP.
enum TotpState<'a> {
    On {
        since: Option<DateTime<Utc>>,
        backup_codes_left: usize,
    },
    /// An enrolment to confirm; its secret is shown only on the page that
    /// began it (`Some` there).
    Confirming {
        secret: Option<(&'a TotpSecret, String)>,
    },
    Off {
        has_password: bool,
    },
}

fn state_of(operator: &super::Operator, now: DateTime<Utc>) -> TotpState<'static> {
    if operator.totp.is_some() {
        TotpState::On {
            since: operator.totp_enabled_at,
            backup_codes_left: operator.backup_codes_left,
        }
    } else if operator
        .totp_enrolment
        .as_ref()
        .is_some_and(|(_, until)| now < *until)
    {
        TotpState::Confirming { secret: None }
    } else {
        TotpState::Off {
            has_password: operator.password_hash.is_some(),
        }
    }
}

pub(super) async fn account_page(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let lang = Lang::of(&headers, uri.query());
    let operator = match auth.operator(&signed_in.email).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return see_other("/console/signin"),
        Err(err) => return unavailable(lang, &err),
    };
    let state = state_of(&operator, auth.now());
    html_page(
        StatusCode::OK,
        account_markup(lang, &signed_in, &state, None),
    )
}

pub(super) async fn begin_enrolment(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    request: Request,
) -> Response {
    let OwnForm {
        lang,
        now,
        operator,
        ..
    } = match signed_in_operator(&auth, &signed_in, request).await {
        Ok(own) => own,
        Err(refused) => return refused,
    };
    let email = signed_in.email.clone();
    let refuse = |status: StatusCode, message: &'static str| {
        let state = state_of(&operator, now);
        html_page(
            status,
            account_markup(lang, &signed_in, &state, Some(message)),
        )
    };
    if operator.totp.is_some() {
        return refuse(
            StatusCode::CONFLICT,
            lang.t(
                "Weryfikacja dwuetapowa jest już włączona.",
                "Two-step verification is on already.",
            ),
        );
    }
    if operator.password_hash.is_none() {
        return refuse(
            StatusCode::BAD_REQUEST,
            lang.t(
                "Najpierw ustaw hasło: kod z aplikacji jest drugim krokiem po nim.",
                "Set a password first: the app's code is the step after it.",
            ),
        );
    }
    let secret = TotpSecret::generate();
    let Some(uri) = secret.uri(&email) else {
        tracing::error!("an otpauth URI could not be made for an operator's e-mail");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(svg) = qr_svg(&uri) else {
        tracing::error!("an otpauth URI did not fit a QR code");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match auth
        .begin_enrolment(&email, &secret, now + ENROLMENT_VALID)
        .await
    {
        Ok(true) => {}
        Ok(false) => return see_other("/console/account"),
        Err(err) => return unavailable(lang, &err),
    }
    auth.record(
        now,
        &email,
        "totp enrolment started",
        &email,
        "a new secret shown; on once a code confirms it".to_owned(),
    )
    .await;
    let state = TotpState::Confirming {
        secret: Some((&secret, svg)),
    };
    html_page(
        StatusCode::OK,
        account_markup(lang, &signed_in, &state, None),
    )
}

pub(super) async fn confirm_enrolment(
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
    let enrolment = operator
        .totp_enrolment
        .as_ref()
        .filter(|(_, until)| now < *until)
        .filter(|_| operator.totp.is_none());
    let Some((secret, _)) = enrolment else {
        let state = state_of(&operator, now);
        return html_page(
            StatusCode::BAD_REQUEST,
            account_markup(
                lang,
                &signed_in,
                &state,
                Some(lang.t(
                    "Nie ma włączania do potwierdzenia (mogło wygasnąć). Zacznij od nowa.",
                    "There is no enrolment to confirm (it may have expired). Start again.",
                )),
            ),
        );
    };
    let code = field(&form, "code").unwrap_or_default();
    let Some(step) = secret.step_of(code, now) else {
        auth.record(
            now,
            &email,
            "totp confirmation refused",
            &email,
            format!("wrong TOTP code, from {address}"),
        )
        .await;
        let state = TotpState::Confirming { secret: None };
        return html_page(
            StatusCode::BAD_REQUEST,
            account_markup(
                lang,
                &signed_in,
                &state,
                Some(lang.t(
                    "Nieprawidłowy kod: weryfikacja dwuetapowa nie jest włączona. Sprawdź czas w telefonie albo zacznij od nowa.",
                    "Wrong code: two-step verification is not on. Check the phone's clock or start again.",
                )),
            ),
        );
    };
    let backup_codes = BackupCodes::generate(&email);
    let epoch = match auth
        .enable_totp(&email, secret, step, &backup_codes, now)
        .await
    {
        Ok(Some(epoch)) => epoch,
        Ok(None) => return see_other("/console/account"),
        Err(err) => return unavailable(lang, &err),
    };
    // The epoch moved on: the operator's other sessions have ended; this
    // one goes on as a new session.
    if let Err(err) = auth.end_session(&current.key).await {
        tracing::warn!(error = %err, "the replaced console session could not be deleted");
    }
    let session = match auth.start_session(&email, epoch, false, now).await {
        Ok(session) => session,
        Err(err) => return unavailable(lang, &err),
    };
    auth.record(
        now,
        &email,
        "totp on",
        &email,
        format!(
            "confirmed from {address}; {CODES_PER_SET} backup codes made; the operator's other sessions ended"
        ),
    )
    .await;
    // The codes show on this answer only (no redirect to a page that
    // could show them again).
    with_session(
        html_page(
            StatusCode::OK,
            codes_markup(lang, &signed_in, &backup_codes, true),
        ),
        &session,
    )
}

/// `POST /console/account/totp/backup-codes`: a new set of backup codes,
/// the old one gone, for an operator with TOTP on who gives the password
/// or a current code (either proves more than the session alone).
pub(super) async fn renew_backup_codes(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
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
    let Some(secret) = operator.totp.clone() else {
        return see_other("/console/account");
    };
    let password = field(&form, "password").unwrap_or_default();
    let refusal = if password.is_empty() {
        let code = field(&form, "code").unwrap_or_default();
        match auth.check_code(&email, &secret, &address, code, now).await {
            Ok(CodeChecked::Right) => None,
            Ok(CodeChecked::Wrong) => Some("wrong TOTP code"),
            Ok(CodeChecked::Replayed) => Some("TOTP code used already"),
            Ok(CodeChecked::Throttled { until, by }) => {
                return account_throttled(
                    &auth,
                    "backup codes throttled",
                    lang,
                    &email,
                    &address,
                    until,
                    by,
                )
                .await;
            }
            Err(err) => return unavailable(lang, &err),
        }
    } else {
        let password = SecretString::from(password.to_owned());
        match auth.check_password(&email, &address, password, now).await {
            Ok(Checked::Right) => None,
            Ok(Checked::Wrong { .. }) => Some("wrong password"),
            Ok(Checked::Throttled { until, by }) => {
                return account_throttled(
                    &auth,
                    "backup codes throttled",
                    lang,
                    &email,
                    &address,
                    until,
                    by,
                )
                .await;
            }
            Err(err) => return unavailable(lang, &err),
        }
    };
    if let Some(why) = refusal {
        auth.record(
            now,
            &email,
            "backup codes refused",
            &email,
            format!("{why}, from {address}"),
        )
        .await;
        let state = state_of(&operator, now);
        return html_page(
            StatusCode::UNAUTHORIZED,
            account_markup(
                lang,
                &signed_in,
                &state,
                Some(lang.t(
                    "Hasło albo kod jest nieprawidłowy: kody zapasowe są bez zmian.",
                    "The password or the code is wrong: the backup codes are unchanged.",
                )),
            ),
        );
    }
    let backup_codes = BackupCodes::generate(&email);
    match auth
        .replace_backup_codes(&email, &secret, &backup_codes, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return see_other("/console/account"),
        Err(err) => return unavailable(lang, &err),
    }
    let by = if password.is_empty() {
        "TOTP code"
    } else {
        "password"
    };
    auth.record(
        now,
        &email,
        "backup codes renewed",
        &email,
        format!(
            "{CODES_PER_SET} new backup codes (the {} earlier ones no longer work), by {by}, from {address}",
            operator.backup_codes_left
        ),
    )
    .await;
    html_page(
        StatusCode::OK,
        codes_markup(lang, &signed_in, &backup_codes, false),
    )
}

pub(super) async fn turn_off(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
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
    let Some(secret) = operator.totp.clone() else {
        return see_other("/console/account");
    };
    let password = SecretString::from(field(&form, "password").unwrap_or_default().to_owned());
    let refusal = match auth.check_password(&email, &address, password, now).await {
        Ok(Checked::Right) => {
            let code = field(&form, "code").unwrap_or_default();
            match auth.check_code(&email, &secret, &address, code, now).await {
                Ok(CodeChecked::Right) => None,
                Ok(CodeChecked::Wrong) => Some("wrong TOTP code"),
                Ok(CodeChecked::Replayed) => Some("TOTP code used already"),
                Ok(CodeChecked::Throttled { until, by }) => {
                    return account_throttled(
                        &auth,
                        "totp off throttled",
                        lang,
                        &email,
                        &address,
                        until,
                        by,
                    )
                    .await;
                }
                Err(err) => return unavailable(lang, &err),
            }
        }
        Ok(Checked::Wrong { .. }) => Some("wrong password"),
        Ok(Checked::Throttled { until, by }) => {
            return account_throttled(
                &auth,
                "totp off throttled",
                lang,
                &email,
                &address,
                until,
                by,
            )
            .await;
        }
        Err(err) => return unavailable(lang, &err),
    };
    if let Some(why) = refusal {
        auth.record(
            now,
            &email,
            "totp off refused",
            &email,
            format!("{why}, from {address}"),
        )
        .await;
        let state = state_of(&operator, now);
        return html_page(
            StatusCode::UNAUTHORIZED,
            account_markup(
                lang,
                &signed_in,
                &state,
                Some(lang.t(
                    "Hasło albo kod jest nieprawidłowy: weryfikacja dwuetapowa jest nadal włączona.",
                    "The password or the code is wrong: two-step verification is still on.",
                )),
            ),
        );
    }
    if let Err(err) = auth.disable_totp(&email, &secret).await {
        return unavailable(lang, &err);
    }
    auth.record(
        now,
        &email,
        "totp off",
        &email,
        format!("password and code, from {address}"),
    )
    .await;
    see_other("/console/account")
}

/// Too many failed checks of the account's forms (TOTP off, new backup
/// codes): refused until the window ends.
async fn account_throttled(
    auth: &Auth,
    action: &str,
    lang: Lang,
    email: &str,
    address: &str,
    until: DateTime<Utc>,
    by: &str,
) -> Response {
    let now = auth.now();
    auth.record(
        now,
        email,
        action,
        email,
        format!("too many failed checks for the {by}, from {address}; refused until {until}"),
    )
    .await;
    throttled(lang, email, until, now)
}

fn account_markup(
    lang: Lang,
    signed_in: &SignedIn,
    state: &TotpState<'_>,
    message: Option<&str>,
) -> Markup {
    let title = lang.t("Konto", "Account");
    let content = html! {
        h1 { (title) }
        p class="muted" { (signed_in.email) }
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
        h2 { (lang.t("Weryfikacja dwuetapowa (TOTP)", "Two-step verification (TOTP)")) }
        @match state {
            TotpState::On { since, backup_codes_left } => {
                p class="notice" role="status" {
                    (lang.t("Włączona: po haśle albo linku logowania konsola prosi o kod z aplikacji.",
                            "On: after the password or a sign-in link the console asks for the app's code."))
                    @if let Some(since) = since {
                        " " (lang.t("Od", "Since")) " "
                        (since.with_timezone(&chrono_tz::Europe::Warsaw).format("%Y-%m-%d %H:%M"))
                        "."
                    }
                }
                form method="post" action="/console/account/totp/off" {
                    input type="hidden" name="csrf" value=(signed_in.csrf);
                    input type="hidden" name="lang" value=(lang.code());
                    input type="email" name="username" autocomplete="username" value=(signed_in.email) hidden;
                    label for="off_password" { (lang.t("Hasło", "Password")) }
                    input id="off_password" name="password" type="password" autocomplete="current-password" required;
                    (code_field(lang, "off_code"))
                    button type="submit" class="secondary" { (lang.t("Wyłącz weryfikację dwuetapową", "Turn two-step verification off")) }
                }
                (backup_codes_section(lang, signed_in, *backup_codes_left))
            }
            TotpState::Confirming { secret } => {
                @if let Some((secret, svg)) = secret {
                    p {
                        (lang.t("Zeskanuj kod QR aplikacją uwierzytelniającą (np. Aegis, Google Authenticator, 1Password) albo wpisz w niej klucz poniżej. Klucz jest pokazywany tylko teraz.",
                                "Scan the QR code with an authenticator app (e.g. Aegis, Google Authenticator, 1Password) or type the key below into it. The key is shown only now."))
                    }
                    (qr_figure(lang, svg))
                    p {
                        (lang.t("Klucz: ", "Key: "))
                        code id="totp-secret" { (grouped(secret.base32())) }
                    }
                } @else {
                    p {
                        (lang.t("Włączanie czeka na potwierdzenie kodem z aplikacji. Jeśli nie masz klucza w aplikacji, zacznij od nowa: dostaniesz nowy.",
                                "The enrolment waits for a code from the app. If the app does not hold the key, start again: you will get a new one."))
                    }
                }
                form method="post" action="/console/account/totp/confirm" {
                    input type="hidden" name="csrf" value=(signed_in.csrf);
                    input type="hidden" name="lang" value=(lang.code());
                    (code_field(lang, "confirm_code"))
                    button type="submit" { (lang.t("Potwierdź i włącz", "Confirm and turn on")) }
                }
                form method="post" action="/console/account/totp" {
                    input type="hidden" name="csrf" value=(signed_in.csrf);
                    input type="hidden" name="lang" value=(lang.code());
                    button type="submit" class="secondary" { (lang.t("Zacznij od nowa z nowym kluczem", "Start again with a new key")) }
                }
            }
            TotpState::Off { has_password } => {
                p {
                    (lang.t("Wyłączona. Po włączeniu logowanie wymaga, oprócz hasła albo linku, 6-cyfrowego kodu z aplikacji w telefonie.",
                            "Off. Once on, signing in needs, besides the password or a link, a 6-digit code from an app on your phone."))
                }
                @if *has_password {
                    form method="post" action="/console/account/totp" {
                        input type="hidden" name="csrf" value=(signed_in.csrf);
                        input type="hidden" name="lang" value=(lang.code());
                        button type="submit" { (lang.t("Włącz weryfikację dwuetapową", "Turn two-step verification on")) }
                    }
                } @else {
                    p class="hint" {
                        (lang.t("Najpierw ", "First "))
                        a href="/console/password" { (lang.t("ustaw hasło", "set a password")) }
                        "."
                    }
                }
            }
        }
        p { a href="/console/password" { (lang.t("Zmień hasło", "Change the password")) } }
        p { a href="/console/" { (lang.t("Konsola", "Console")) } }
    };
    page(lang, title, content)
}

/// How many backup codes are left, and the form that makes a new set.
fn backup_codes_section(lang: Lang, signed_in: &SignedIn, left: usize) -> Markup {
    html! {
        h3 { (lang.t("Kody zapasowe", "Backup codes")) }
        p id="backup-codes-left" {
            (lang.t("Niewykorzystane kody zapasowe: ", "Unused backup codes: "))
            strong { (left) } " / " (CODES_PER_SET) "."
        }
        @if left <= 3 {
            p class="hint" {
                (lang.t("Zostało niewiele kodów: utwórz nowe, zanim się skończą.",
                        "Few codes are left: make new ones before they run out."))
            }
        }
        form method="post" action="/console/account/totp/backup-codes" {
            input type="hidden" name="csrf" value=(signed_in.csrf);
            input type="hidden" name="lang" value=(lang.code());
            p class="hint" {
                (lang.t("Nowe kody zastępują wszystkie dotychczasowe. Podaj hasło albo aktualny kod z aplikacji.",
                        "New codes replace all the earlier ones. Give the password or a current code from the app."))
            }
            label for="renew_password" { (lang.t("Hasło", "Password")) }
            input id="renew_password" name="password" type="password" autocomplete="current-password";
            label for="renew_code" { (lang.t("albo kod z aplikacji", "or the app's code")) }
            input id="renew_code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                pattern="[0-9 ]{6,7}" minlength="6" maxlength="7";
            button type="submit" class="secondary" { (lang.t("Utwórz nowe kody zapasowe", "Make new backup codes")) }
        }
    }
}

/// The answer that shows a new set of backup codes, once: no forms (the
/// session may be new, with a new CSRF token), a way on to the account.
fn codes_markup(
    lang: Lang,
    signed_in: &SignedIn,
    codes: &BackupCodes,
    totp_just_on: bool,
) -> Markup {
    let title = lang.t("Kody zapasowe", "Backup codes");
    let content = html! {
        h1 { (title) }
        p class="muted" { (signed_in.email) }
        @if totp_just_on {
            p class="notice" role="status" {
                (lang.t("Weryfikacja dwuetapowa jest włączona.", "Two-step verification is on."))
            }
        }
        (shown_once(lang, codes))
        p { a href="/console/account" { (lang.t("Zapisałem kody: wróć do konta", "I saved the codes: back to the account")) } }
    };
    page(lang, title, content)
}

/// Base32 in groups of four, easier to copy by hand (apps ignore spaces).
fn grouped(base32: &str) -> String {
    base32
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
