//! `/console/account`: the operator's own account, where TOTP goes on and
//! off.
//!
//! Turning it on: `POST /console/account/totp` makes a fresh secret, keeps
//! it as the operator's enrolment (15 minutes) and shows it once, as base32
//! text and as the `otpauth://` URI's QR code; `POST .../confirm` with a
//! right code from the app turns it on (that code's step counts as used)
//! and, as a new password does, ends the operator's other sessions.
//! Turning it off (`POST .../off`) needs the password and a current code,
//! both checked under the sign-in's rate limits.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};
use secrecy::SecretString;

use super::totp::{CodeChecked, TotpSecret, code_field, qr_figure, qr_svg};
use super::{
    Auth, Checked, Current, Lang, Operator, SignedIn, client_address, field, form_lang, html_page,
    page, read_form, see_other, throttled, unavailable, with_session,
};

/// How long an enrolment waits for its confirming code.
const ENROLMENT_VALID: Duration = Duration::minutes(15);

/// What the account page shows about TOTP.
enum TotpState<'a> {
    On {
        since: Option<DateTime<Utc>>,
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

fn state_of(operator: &Operator, now: DateTime<Utc>) -> TotpState<'static> {
    if operator.totp.is_some() {
        TotpState::On {
            since: operator.totp_enabled_at,
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
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    let now = auth.now();
    let email = signed_in.email.clone();
    let operator = match auth.operator(&email).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return see_other("/console/signin"),
        Err(err) => return unavailable(lang, &err),
    };
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
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    let now = auth.now();
    let email = signed_in.email.clone();
    let address = client_address(&parts.extensions);
    let operator = match auth.operator(&email).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return see_other("/console/signin"),
        Err(err) => return unavailable(lang, &err),
    };
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
    let epoch = match auth.enable_totp(&email, secret, step, now).await {
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
        format!("confirmed from {address}; the operator's other sessions ended"),
    )
    .await;
    with_session(see_other("/console/account"), &session)
}

pub(super) async fn turn_off(
    State(auth): State<Arc<Auth>>,
    Extension(signed_in): Extension<SignedIn>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some(form) = read_form(body).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let lang = form_lang(&parts.headers, &form);
    let now = auth.now();
    let email = signed_in.email.clone();
    let address = client_address(&parts.extensions);
    let operator = match auth.operator(&email).await {
        Ok(Some(operator)) => operator,
        Ok(None) => return see_other("/console/signin"),
        Err(err) => return unavailable(lang, &err),
    };
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
                    return off_throttled(&auth, lang, &email, &address, until, by).await;
                }
                Err(err) => return unavailable(lang, &err),
            }
        }
        Ok(Checked::Wrong { .. }) => Some("wrong password"),
        Ok(Checked::Throttled { until, by }) => {
            return off_throttled(&auth, lang, &email, &address, until, by).await;
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

async fn off_throttled(
    auth: &Auth,
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
        "totp off throttled",
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
            TotpState::On { since } => {
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

/// Base32 in groups of four, easier to copy by hand (apps ignore spaces).
fn grouped(base32: &str) -> String {
    base32
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
