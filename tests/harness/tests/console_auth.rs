//! The console's sign-in against the AWS emulator, through its own routes
//! served on loopback as the local host serves the admin router (so
//! without connect info: every caller here is the address `unknown`),
//! with a clock the tests move: a sign-in link works once and only within
//! 30 minutes; passwords shorter than 12 characters are refused; a wrong
//! password and an unknown e-mail get the same page after the same work;
//! the sixth failure for an account is throttled even with the right
//! password; sessions end when idle, when old, on sign-out and when the
//! password changes elsewhere; a POST needs the session's CSRF token.
//! With TOTP on (turned on by a confirming code, off by password and
//! code), neither a password nor a link alone gives a session: the code's
//! step does, once, within one step either way, and wrong codes count as
//! failed sign-ins. The tests compute codes themselves, with the totp
//! crate, from the secret the enrolment's page showed. Turning TOTP on
//! shows ten backup codes once; each signs in once in place of the app's
//! code (two sign-ins racing with one code: one wins), under the same rate
//! limits, and a new set makes the old one useless.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, ensure};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use axum::Router;
use axum::extract::Extension;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use functions::console::auth::{self, Auth, ExposeSecret, SignedIn};
use functions::console::log::ActivityLog;
use harness::TestDir;
use harness::emulator::{Emulator, sdk_config};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

const TABLE: &str = "console-auth-test";
const PASSWORD: &str = "zielony konik 2026";
const PENDING_COOKIE: &str = "__Host-console-pending";
const CODE_PATH: &str = "/console/signin/code";

struct Bench {
    _emulator: Emulator,
    auth: Arc<Auth>,
    log: ActivityLog,
    clock: Arc<Mutex<DateTime<Utc>>>,
    base: String,
    http: reqwest::Client,
}

impl Bench {
    async fn start(dir: &std::path::Path) -> anyhow::Result<Bench> {
        let emulator = Emulator::start(dir)?;
        let client = aws_sdk_dynamodb::Client::new(&sdk_config(&emulator.endpoint()).await);
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        client
            .create_table()
            .table_name(TABLE)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .context("creating the table")?;
        let clock = Arc::new(Mutex::new(
            DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z")?.with_timezone(&Utc),
        ));
        let log = ActivityLog::new(client.clone(), TABLE);
        let shared = clock.clone();
        let auth = Arc::new(
            Auth::new(client, TABLE, log.clone())
                .with_clock(move || shared.lock().map(|now| *now).unwrap_or_else(|_| Utc::now())),
        );
        // The lead's pages stand-ins: one page and one form behind the
        // session, as the console's router puts them.
        let pages = Router::new()
            .route("/console/", get(home))
            .route("/console/echo", post(echo))
            .layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                auth::require_session,
            ));
        let app = auth::routes(auth.clone()).merge(pages);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Bench {
            _emulator: emulator,
            auth,
            log,
            clock,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock
            .lock()
            .map(|now| *now)
            .unwrap_or_else(|_| Utc::now())
    }

    fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.clock.lock() {
            *now += by;
        }
    }

    /// A sign-in link's token for the operator (made if missing).
    async fn invite(&self, email: &str) -> anyhow::Result<String> {
        let token = self.auth.invite(email, self.now()).await?;
        Ok(token.expose_secret().to_owned())
    }

    async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("__Host-console={cookie}"));
        }
        Answer::of(request.send().await?).await
    }

    /// A form posted with these cookies (name, value).
    async fn post_cookies(
        &self,
        path: &str,
        cookies: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if !cookies.is_empty() {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, header.join("; "));
        }
        Answer::of(request.send().await?).await
    }

    async fn get_cookies(&self, path: &str, cookies: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if !cookies.is_empty() {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, header.join("; "));
        }
        Answer::of(request.send().await?).await
    }

    /// Turns TOTP on for the session's operator: the secret the page
    /// showed (base32) and the session that goes on (the old one ended).
    async fn enrol(&self, cookie: &str) -> anyhow::Result<(String, String)> {
        let (secret, session, _) = self.enrol_with_codes(cookie).await?;
        Ok((secret, session))
    }

    /// As [`Bench::enrol`], with the backup codes the confirmation showed.
    async fn enrol_with_codes(
        &self,
        cookie: &str,
    ) -> anyhow::Result<(String, String, Vec<String>)> {
        let csrf = self.csrf(cookie).await?;
        let page = self
            .post_form("/console/account/totp", Some(cookie), &[("csrf", &csrf)])
            .await?;
        ensure!(
            page.status == StatusCode::OK,
            "starting the enrolment: {} {}",
            page.status,
            page.body
        );
        let secret = shown_secret(&page.body)?;
        let confirmed = self
            .post_form(
                "/console/account/totp/confirm",
                Some(cookie),
                &[("csrf", &csrf), ("code", &code(&secret, self.now())?)],
            )
            .await?;
        ensure!(
            confirmed.status == StatusCode::OK,
            "confirming the enrolment: {} {}",
            confirmed.status,
            confirmed.body
        );
        let codes = shown_backup_codes(&confirmed.body)?;
        Ok((secret, confirmed.session()?, codes))
    }

    /// The password's step: the pending sign-in's cookie (no session yet).
    async fn password_step(&self, email: &str) -> anyhow::Result<String> {
        let answer = self.sign_in(email, PASSWORD).await?;
        ensure!(
            answer.status == StatusCode::SEE_OTHER && answer.location() == CODE_PATH,
            "the password's step: {} {} {}",
            answer.status,
            answer.location(),
            answer.body
        );
        ensure!(answer.set_cookie().is_none(), "a session before the code");
        answer.cookie(PENDING_COOKIE)
    }

    /// Posts a code on the second step's page, as a browser does: the
    /// page first (for its CSRF token), then the form.
    async fn post_code(&self, pending: &str, code: &str) -> anyhow::Result<Answer> {
        let page = self
            .get_cookies(CODE_PATH, &[(PENDING_COOKIE, pending)])
            .await?;
        ensure!(
            page.status == StatusCode::OK,
            "the code's page: {} {}",
            page.status,
            page.body
        );
        ensure!(page.has_security_headers());
        labelled(&page.body)?;
        let csrf = hidden(&page.body, "csrf")?;
        self.post_cookies(
            CODE_PATH,
            &[(PENDING_COOKIE, pending)],
            &[("csrf", &csrf), ("code", code)],
        )
        .await
    }

    /// Posts a backup code on the second step's page, as a browser does.
    async fn post_backup_code(&self, pending: &str, backup_code: &str) -> anyhow::Result<Answer> {
        let page = self
            .get_cookies(CODE_PATH, &[(PENDING_COOKIE, pending)])
            .await?;
        ensure!(
            page.status == StatusCode::OK,
            "the code's page: {} {}",
            page.status,
            page.body
        );
        let csrf = hidden(&page.body, "csrf")?;
        self.post_cookies(
            CODE_PATH,
            &[(PENDING_COOKIE, pending)],
            &[("csrf", &csrf), ("backup_code", backup_code)],
        )
        .await
    }

    /// How many backup codes the account page says are left.
    async fn backup_codes_left(&self, cookie: &str) -> anyhow::Result<usize> {
        let page = self.get("/console/account", Some(cookie)).await?;
        let (_, rest) = page
            .body
            .split_once(r#"id="backup-codes-left""#)
            .with_context(|| format!("no backup codes count on the account page: {}", page.body))?;
        let (_, count) = rest.split_once("<strong>").context("no count")?;
        let (count, _) = count.split_once("</strong>").context("no count's end")?;
        Ok(count.parse()?)
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> anyhow::Result<Answer> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("__Host-console={cookie}"));
        }
        Answer::of(request.send().await?).await
    }

    /// Redeems a link: the session's cookie and where it went.
    async fn redeem(&self, token: &str) -> anyhow::Result<(String, String)> {
        let answer = self
            .post_form("/console/link", None, &[("token", token)])
            .await?;
        ensure!(
            answer.status == StatusCode::SEE_OTHER,
            "redeeming a link: {} {}",
            answer.status,
            answer.body
        );
        Ok((answer.session()?, answer.location()))
    }

    /// An operator with a password (by a link), and the link's session.
    async fn operator_with_password(&self, email: &str) -> anyhow::Result<String> {
        let (cookie, _) = self.redeem(&self.invite(email).await?).await?;
        let csrf = self.csrf(&cookie).await?;
        let answer = self
            .post_form(
                "/console/password",
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("new_password", PASSWORD),
                    ("repeat_password", PASSWORD),
                ],
            )
            .await?;
        ensure!(
            answer.status == StatusCode::SEE_OTHER,
            "setting a password: {} {}",
            answer.status,
            answer.body
        );
        answer.session()
    }

    async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<Answer> {
        self.post_form(
            "/console/signin",
            None,
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// The session's CSRF token, as the pages see it.
    async fn csrf(&self, cookie: &str) -> anyhow::Result<String> {
        let answer = self.get("/console/", Some(cookie)).await?;
        ensure!(
            answer.status == StatusCode::OK,
            "the session's page: {} {}",
            answer.status,
            answer.body
        );
        answer
            .body
            .split_once(" csrf=")
            .map(|(_, csrf)| csrf.trim().to_owned())
            .context("no CSRF token on the page")
    }

    /// Whether the cookie still opens the console's page.
    async fn signed_in(&self, cookie: &str) -> anyhow::Result<bool> {
        let answer = self.get("/console/", Some(cookie)).await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            StatusCode::SEE_OTHER if answer.location() == "/console/signin" => Ok(false),
            other => anyhow::bail!("the console's page answered {other}: {}", answer.body),
        }
    }

    /// The log's entries with this action, newest first.
    async fn logged(&self, action: &str) -> anyhow::Result<Vec<functions::console::log::LogEntry>> {
        Ok(self
            .log
            .newest(self.now(), 9, 1000, None)
            .await?
            .into_iter()
            .filter(|entry| entry.action == action)
            .collect())
    }
}

async fn home(Extension(who): Extension<SignedIn>) -> String {
    format!("signed in as {} csrf={}", who.email, who.csrf)
}

/// The form's body as the handler gets it (the middleware read it first).
async fn echo(Extension(who): Extension<SignedIn>, body: String) -> String {
    format!("{}: {body}", who.email)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> anyhow::Result<Answer> {
        Ok(Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await?,
        })
    }

    fn location(&self) -> String {
        self.header(header::LOCATION)
    }

    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The `Set-Cookie` of the session cookie, as attributes.
    fn set_cookie(&self) -> Option<Vec<String>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__Host-console="))
            .map(|v| v.split(';').map(|part| part.trim().to_owned()).collect())
    }

    /// The new session's id.
    fn session(&self) -> anyhow::Result<String> {
        let cookie = self.set_cookie().context("no session cookie set")?;
        let value = cookie
            .first()
            .and_then(|pair| pair.strip_prefix("__Host-console="))
            .unwrap_or_default();
        ensure!(!value.is_empty(), "an empty session cookie: {cookie:?}");
        Ok(value.to_owned())
    }

    /// The value a `Set-Cookie` gives the cookie `name`.
    fn cookie(&self, name: &str) -> anyhow::Result<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("no cookie {name} set"))
    }

    /// The `Set-Cookie` of the cookie `name`, as attributes.
    fn cookie_attributes(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').map(|part| part.trim().to_owned()).collect())
            .unwrap_or_default()
    }

    fn has_security_headers(&self) -> bool {
        self.header(header::CONTENT_SECURITY_POLICY) == auth::CONTENT_SECURITY_POLICY
            && self.header(header::X_CONTENT_TYPE_OPTIONS) == "nosniff"
            && self.header(header::REFERRER_POLICY) == "no-referrer"
            && self.header(header::CACHE_CONTROL) == "no-store"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_works_once_and_only_within_thirty_minutes() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;

    // The page the link opens: its script is a file of ours, nothing inline,
    // and the token is never asked for in the URL.
    let page = bench.get("/console/link", None).await?;
    ensure!(page.status == StatusCode::OK && page.has_security_headers());
    ensure!(
        page.body
            .contains(r#"<script src="/console/static/link.js" defer></script>"#),
        "{}",
        page.body
    );
    ensure!(page.body.matches("<script").count() == 1);
    let script = bench.get("/console/static/link.js", None).await?;
    ensure!(script.status == StatusCode::OK && script.has_security_headers());
    ensure!(
        script
            .header(header::CONTENT_TYPE)
            .starts_with("text/javascript")
    );
    for needed in ["location.hash", "history.replaceState", "form.submit()"] {
        ensure!(script.body.contains(needed), "link.js lacks {needed}");
    }
    let css = bench.get(auth::CSS_PATH, None).await?;
    ensure!(
        css.status == StatusCode::OK && css.header(header::CONTENT_TYPE).starts_with("text/css")
    );

    let token = bench.invite("  Ala@Example.PL ").await?;
    ensure!(token.len() == 43, "256 bits in base64url: {token}");
    let (cookie, next) = bench.redeem(&token).await?;
    ensure!(next == "/console/password", "no password yet: {next}");
    ensure!(bench.signed_in(&cookie).await?);
    let home = bench.get("/console/", Some(&cookie)).await?;
    ensure!(
        home.body.starts_with("signed in as ala@example.pl "),
        "{}",
        home.body
    );

    // Once only: the same token again, an unknown one and an expired one
    // all get one and the same refusal.
    let again = bench
        .post_form("/console/link", None, &[("token", &token)])
        .await?;
    ensure!(again.status == StatusCode::FORBIDDEN && again.set_cookie().is_none());
    ensure!(again.body.contains("Link jest nieważny"), "{}", again.body);
    let unknown = bench
        .post_form("/console/link", None, &[("token", "A".repeat(43).as_str())])
        .await?;
    let late = bench.invite("ala@example.pl").await?;
    bench.advance(Duration::minutes(30));
    let expired = bench
        .post_form("/console/link", None, &[("token", &late)])
        .await?;
    for refusal in [&unknown, &expired] {
        ensure!(refusal.status == again.status && refusal.body == again.body);
        ensure!(refusal.set_cookie().is_none());
    }
    // Just within 30 minutes works; the operator now counts as known.
    let in_time = bench.invite("ala@example.pl").await?;
    bench.advance(Duration::minutes(29) + Duration::seconds(59));
    let (_, next) = bench.redeem(&in_time).await?;
    ensure!(next == "/console/password");

    ensure!(bench.logged("sign-in link redeemed").await?.len() == 2);
    let refused = bench.logged("sign-in link refused").await?;
    ensure!(refused.len() == 3, "{refused:?}");
    for entry in &refused {
        for secret in [&token, &late] {
            ensure!(
                !format!("{entry:?}").contains(secret.as_str()),
                "a token in the log"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_sign_in_and_refusals_say_nothing_about_who_exists() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let (cookie, _) = bench.redeem(&bench.invite("ola@example.pl").await?).await?;
    let csrf = bench.csrf(&cookie).await?;

    // Eleven characters are too few (counted as characters, not bytes).
    let short = "żółć żółć ż";
    ensure!(short.chars().count() == 11 && short.len() > 12);
    let refused = bench
        .post_form(
            "/console/password",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("new_password", short),
                ("repeat_password", short),
            ],
        )
        .await?;
    ensure!(
        refused.status == StatusCode::BAD_REQUEST,
        "{}",
        refused.status
    );
    ensure!(
        refused.body.contains("co najmniej 12 znaków"),
        "{}",
        refused.body
    );
    ensure!(refused.set_cookie().is_none());
    ensure!(bench.sign_in("ola@example.pl", short).await?.status == StatusCode::UNAUTHORIZED);

    let twelve = "żółć żółć żó";
    let set = bench
        .post_form(
            "/console/password",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("new_password", twelve),
                ("repeat_password", twelve),
            ],
        )
        .await?;
    ensure!(set.status == StatusCode::SEE_OTHER && set.location() == "/console/");

    // Signing in by password, the e-mail in any case.
    let signed = bench.sign_in("Ola@Example.pl", twelve).await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER,
        "{} {}",
        signed.status,
        signed.body
    );
    ensure!(signed.location() == "/console/" && signed.has_security_headers());
    ensure!(bench.signed_in(&signed.session()?).await?);

    // A wrong password and an unknown e-mail: the same page, after as long.
    let started = Instant::now();
    let wrong = bench
        .sign_in("ola@example.pl", "nie to hasło wcale")
        .await?;
    let wrong_took = started.elapsed();
    let started = Instant::now();
    let nobody = bench
        .sign_in("ewa@example.pl", "nie to hasło wcale")
        .await?;
    let nobody_took = started.elapsed();
    ensure!(wrong.status == StatusCode::UNAUTHORIZED && nobody.status == wrong.status);
    ensure!(wrong.set_cookie().is_none() && nobody.set_cookie().is_none());
    ensure!(
        wrong.body.replace("ola@example.pl", "@") == nobody.body.replace("ewa@example.pl", "@"),
        "different pages:\n{}\n{}",
        wrong.body,
        nobody.body
    );
    ensure!(wrong.body.contains("Nieprawidłowy e-mail lub hasło."));
    // The unknown e-mail's answer verified a hash too (a real check takes
    // hundreds of times a table read here); the bound leaves room for a
    // busy machine.
    ensure!(
        nobody_took * 3 >= wrong_took,
        "an unknown e-mail took {nobody_took:?}, a wrong password {wrong_took:?}"
    );

    // English when asked; the log says who, never the passwords.
    let english = bench
        .post_form(
            "/console/signin",
            None,
            &[
                ("email", "ewa@example.pl"),
                ("password", "x"),
                ("lang", "en"),
            ],
        )
        .await?;
    ensure!(english.body.contains("Wrong e-mail or password."));
    let refusals = bench.logged("sign-in refused").await?;
    ensure!(refusals.len() == 4, "{refusals:?}");
    ensure!(refusals.iter().any(|e| e.subject == "ewa@example.pl"));
    let everything = format!("{:?}", bench.log.newest(bench.now(), 2, 1000, None).await?);
    for secret in [short, twelve, "nie to hasło wcale"] {
        ensure!(!everything.contains(secret), "a password in the log");
    }
    ensure!(bench.logged("sign-in").await?.len() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_failure_for_an_account_is_throttled_even_with_the_right_password()
-> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    bench.operator_with_password("jan@example.pl").await?;
    bench.advance(Duration::minutes(15));

    for attempt in 1..=5 {
        let wrong = bench.sign_in("jan@example.pl", "zgadywane hasło 1").await?;
        ensure!(
            wrong.status == StatusCode::UNAUTHORIZED,
            "failure {attempt}: {}",
            wrong.status
        );
    }
    let right = bench.sign_in("jan@example.pl", PASSWORD).await?;
    ensure!(
        right.status == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        right.status
    );
    ensure!(right.set_cookie().is_none());
    ensure!(
        right.body.contains("Spróbuj ponownie po "),
        "{}",
        right.body
    );
    let retry_after: i64 = right.header(header::RETRY_AFTER).parse()?;
    ensure!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    ensure!(bench.logged("sign-in throttled").await?.len() == 1);

    // The next window lets the right password in.
    bench.advance(Duration::seconds(retry_after));
    let right = bench.sign_in("jan@example.pl", PASSWORD).await?;
    ensure!(right.status == StatusCode::SEE_OTHER, "{}", right.status);
    ensure!(bench.signed_in(&right.session()?).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_idle_old_signed_out_or_by_a_password_change_and_posts_need_the_csrf_token()
-> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let (cookie, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;

    // The cookie: __Host- prefix, whole site, not for scripts, HTTPS only,
    // never sent by another site; no Domain (which __Host- forbids).
    let answer = bench
        .post_form(
            "/console/link",
            None,
            &[("token", &bench.invite("ula@example.pl").await?)],
        )
        .await?;
    let attributes = answer.set_cookie().context("no cookie")?;
    let mut rest: Vec<String> = attributes.iter().skip(1).cloned().collect();
    rest.sort();
    ensure!(
        rest == ["HttpOnly", "Path=/", "SameSite=Strict", "Secure"],
        "{attributes:?}"
    );
    let other = answer.session()?;

    // Without a session: a page sends to the sign-in, a post is refused.
    let page = bench.get("/console/", None).await?;
    ensure!(page.status == StatusCode::SEE_OTHER && page.location() == "/console/signin");
    ensure!(page.has_security_headers());
    let post = bench
        .post_form("/console/echo", None, &[("csrf", "x")])
        .await?;
    ensure!(post.status == StatusCode::FORBIDDEN && post.has_security_headers());
    let junk = bench.get("/console/", Some("not-a-session")).await?;
    ensure!(junk.status == StatusCode::SEE_OTHER);

    // With one: a post needs its own CSRF token, and the handler still
    // gets the whole form.
    let csrf = bench.csrf(&cookie).await?;
    ensure!(csrf.len() >= 22, "at least 128 bits: {csrf}");
    let none = bench
        .post_form("/console/echo", Some(&cookie), &[("x", "1")])
        .await?;
    ensure!(none.status == StatusCode::FORBIDDEN, "{}", none.status);
    let others = bench.csrf(&other).await?;
    let wrong = bench
        .post_form(
            "/console/echo",
            Some(&cookie),
            &[("csrf", &others), ("x", "1")],
        )
        .await?;
    ensure!(wrong.status == StatusCode::FORBIDDEN, "{}", wrong.status);
    let json = bench
        .http
        .post(format!("{}/console/echo", bench.base))
        .header(header::COOKIE, format!("__Host-console={cookie}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"csrf":"{csrf}"}}"#))
        .send()
        .await?;
    ensure!(json.status() == StatusCode::FORBIDDEN, "{}", json.status());
    let right = bench
        .post_form(
            "/console/echo",
            Some(&cookie),
            &[("csrf", &csrf), ("x", "1 2")],
        )
        .await?;
    ensure!(
        right.status == StatusCode::OK,
        "{} {}",
        right.status,
        right.body
    );
    ensure!(
        right.body == format!("ula@example.pl: csrf={csrf}&x=1+2"),
        "{}",
        right.body
    );
    ensure!(right.has_security_headers());

    // Idle: 11 h apart keeps a session; 12 h without a request ends it.
    bench.advance(Duration::hours(11));
    ensure!(bench.signed_in(&cookie).await?);
    bench.advance(Duration::hours(11));
    ensure!(bench.signed_in(&cookie).await?, "22 h old, 11 h idle");
    ensure!(!bench.signed_in(&other).await?, "22 h idle");
    bench.advance(Duration::hours(12));
    ensure!(!bench.signed_in(&cookie).await?, "12 h idle");
    ensure!(!bench.signed_in(&cookie).await?, "ended stays ended");

    // Absolute: used every 11 h, a session still ends after 7 days.
    let (cookie, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;
    let started = bench.now();
    while bench.now() + Duration::hours(11) < started + Duration::days(7) {
        bench.advance(Duration::hours(11));
        ensure!(bench.signed_in(&cookie).await?, "at {}", bench.now());
    }
    bench.advance(Duration::hours(11));
    ensure!(!bench.signed_in(&cookie).await?, "older than 7 days");

    // Sign-out ends the session and clears the cookie.
    let (cookie, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;
    let csrf = bench.csrf(&cookie).await?;
    let out = bench
        .post_form("/console/signout", Some(&cookie), &[("x", "1")])
        .await?;
    ensure!(
        out.status == StatusCode::FORBIDDEN,
        "sign-out needs the CSRF token too"
    );
    let out = bench
        .post_form("/console/signout", Some(&cookie), &[("csrf", &csrf)])
        .await?;
    ensure!(out.status == StatusCode::SEE_OTHER && out.location() == "/console/signin");
    let cleared = out.set_cookie().context("the cookie is not cleared")?;
    ensure!(
        cleared.first().map(String::as_str) == Some("__Host-console=")
            && cleared.iter().any(|a| a == "Max-Age=0"),
        "{cleared:?}"
    );
    ensure!(!bench.signed_in(&cookie).await?);
    ensure!(bench.logged("sign-out").await?.len() == 1);

    // A password change ends the operator's other sessions, not the one
    // that changed it (which goes on under a new id).
    let (changing, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;
    let (elsewhere, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;
    let (someone_else, _) = bench
        .redeem(&bench.invite("piotr@example.pl").await?)
        .await?;
    let csrf = bench.csrf(&changing).await?;
    let changed = bench
        .post_form(
            "/console/password",
            Some(&changing),
            &[
                ("csrf", &csrf),
                ("new_password", PASSWORD),
                ("repeat_password", PASSWORD),
            ],
        )
        .await?;
    ensure!(
        changed.status == StatusCode::SEE_OTHER,
        "{} {}",
        changed.status,
        changed.body
    );
    let renewed = changed.session()?;
    ensure!(
        bench.signed_in(&renewed).await?,
        "the changing session goes on"
    );
    ensure!(
        !bench.signed_in(&elsewhere).await?,
        "another session of the operator"
    );
    ensure!(!bench.signed_in(&changing).await?, "the replaced id");
    ensure!(
        bench.signed_in(&someone_else).await?,
        "another operator's session"
    );
    ensure!(bench.logged("password changed").await?.len() == 1);

    // Past the link's 30 minutes, a link's session needs the current
    // password to change it.
    let (late_link, _) = bench.redeem(&bench.invite("ula@example.pl").await?).await?;
    bench.advance(Duration::minutes(31));
    let csrf = bench.csrf(&late_link).await?;
    let second = "niebieski konik 2027";
    let without = bench
        .post_form(
            "/console/password",
            Some(&late_link),
            &[
                ("csrf", &csrf),
                ("new_password", second),
                ("repeat_password", second),
            ],
        )
        .await?;
    ensure!(
        without.status == StatusCode::UNAUTHORIZED,
        "{}",
        without.status
    );
    let with = bench
        .post_form(
            "/console/password",
            Some(&late_link),
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", second),
                ("repeat_password", second),
            ],
        )
        .await?;
    ensure!(
        with.status == StatusCode::SEE_OTHER,
        "{} {}",
        with.status,
        with.body
    );
    ensure!(bench.sign_in("ula@example.pl", second).await?.status == StatusCode::SEE_OTHER);
    Ok(())
}

// ---- TOTP ----

/// The generator the operator's app would hold for this base32 secret.
fn authenticator(secret: &str) -> anyhow::Result<totp_rs::Totp> {
    let secret = totp_rs::Secret::try_from_base32(secret)
        .map_err(|err| anyhow::anyhow!("the page's secret is not base32: {err:?}"))?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .map_err(|err| anyhow::anyhow!("an RFC 6238 generator for the secret: {err:?}"))
}

/// The app's code at `at`.
fn code(secret: &str, at: DateTime<Utc>) -> anyhow::Result<String> {
    let seconds = u64::try_from(at.timestamp())?;
    Ok(authenticator(secret)?.generate(seconds).to_string())
}

/// A code that is none of the three the server accepts at `at`.
fn wrong_code(secret: &str, at: DateTime<Utc>) -> anyhow::Result<String> {
    let near = [
        code(secret, at - Duration::seconds(30))?,
        code(secret, at)?,
        code(secret, at + Duration::seconds(30))?,
    ];
    Ok(["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|candidate| !near.iter().any(|c| c == candidate))
        .unwrap_or("444444")
        .to_owned())
}

/// The secret the enrolment's page showed, as text (without its spaces).
fn shown_secret(body: &str) -> anyhow::Result<String> {
    let (_, rest) = body
        .split_once(r#"<code id="totp-secret">"#)
        .context("no secret on the enrolment's page")?;
    let (shown, _) = rest.split_once("</code>").context("an unclosed secret")?;
    let secret: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
    ensure!(
        secret.len() == 32 && secret.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7')),
        "160 bits in base32: {secret}"
    );
    Ok(secret)
}

/// The backup codes a page showed (`<ol id="backup-codes">`).
fn shown_backup_codes(body: &str) -> anyhow::Result<Vec<String>> {
    let (_, rest) = body
        .split_once(r#"<ol id="backup-codes">"#)
        .with_context(|| format!("no backup codes on the page: {body}"))?;
    let (list, _) = rest.split_once("</ol>").context("an unclosed list")?;
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .filter_map(|part| part.split_once("</code>").map(|(code, _)| code.to_owned()))
        .collect();
    ensure!(codes.len() == 10, "ten codes: {codes:?}");
    for code in &codes {
        ensure!(
            code.len() == 11
                && code.chars().nth(5) == Some('-')
                && code
                    .chars()
                    .filter(|c| *c != '-')
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "a code as xxxxx-xxxxx: {code}"
        );
    }
    Ok(codes)
}

/// A hidden field's value.
fn hidden(body: &str, name: &str) -> anyhow::Result<String> {
    let (_, rest) = body
        .split_once(&format!(r#"name="{name}" value=""#))
        .with_context(|| format!("no field {name} on the page"))?;
    Ok(rest.split('"').next().unwrap_or_default().to_owned())
}

/// Every visible `input` with an id has a `<label for=…>` (what the
/// browser's accessibility check asks of the console's forms).
fn labelled(body: &str) -> anyhow::Result<()> {
    for input in body.split("<input").skip(1) {
        let tag = input.split('>').next().unwrap_or_default();
        if tag.contains(r#"type="hidden""#) || tag.contains(" hidden") {
            continue;
        }
        let id = tag
            .split_once(r#"id=""#)
            .and_then(|(_, rest)| rest.split('"').next())
            .with_context(|| format!("an input without an id: {tag}"))?;
        ensure!(
            body.contains(&format!(r#"<label for="{id}">"#)),
            "no label for {id}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_goes_on_only_with_a_right_code_and_then_a_password_alone_gives_no_session()
-> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let cookie = bench.operator_with_password("ala@example.pl").await?;

    // Off at first, with a button to start.
    let account = bench.get("/console/account", Some(&cookie)).await?;
    ensure!(account.status == StatusCode::OK && account.has_security_headers());
    ensure!(
        account.body.contains("Wyłączona.")
            && account.body.contains(r#"action="/console/account/totp""#),
        "{}",
        account.body
    );
    let english = bench.get("/console/account?lang=en", Some(&cookie)).await?;
    ensure!(english.body.contains("Turn two-step verification on"));

    // Starting needs the CSRF token; then the secret shows once, as text
    // and as a QR code drawn inline.
    let csrf = bench.csrf(&cookie).await?;
    let forged = bench
        .post_form("/console/account/totp", Some(&cookie), &[("x", "1")])
        .await?;
    ensure!(forged.status == StatusCode::FORBIDDEN, "{}", forged.status);
    let page = bench
        .post_form("/console/account/totp", Some(&cookie), &[("csrf", &csrf)])
        .await?;
    ensure!(page.status == StatusCode::OK && page.has_security_headers());
    let secret = shown_secret(&page.body)?;
    ensure!(page.body.contains("<svg ") && page.body.contains(r#"role="img""#));
    ensure!(!page.body.contains("<?xml"), "an XML prolog inside HTML");
    labelled(&page.body)?;
    let again = bench.get("/console/account", Some(&cookie)).await?;
    ensure!(
        !again.body.contains(&secret) && !again.body.contains("totp-secret"),
        "the secret shown a second time"
    );
    ensure!(again.body.contains("/console/account/totp/confirm"));

    // A wrong code leaves it off: the password alone still signs in.
    let wrong = bench
        .post_form(
            "/console/account/totp/confirm",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("code", &wrong_code(&secret, bench.now())?),
            ],
        )
        .await?;
    ensure!(wrong.status == StatusCode::BAD_REQUEST, "{}", wrong.status);
    ensure!(wrong.body.contains("Nieprawidłowy kod"), "{}", wrong.body);
    ensure!(wrong.set_cookie().is_none());
    let plain = bench.sign_in("ala@example.pl", PASSWORD).await?;
    ensure!(
        plain.status == StatusCode::SEE_OTHER && plain.location() == "/console/",
        "{} {}",
        plain.status,
        plain.location()
    );
    let other_session = plain.session()?;
    ensure!(bench.logged("totp confirmation refused").await?.len() == 1);
    ensure!(bench.logged("totp on").await?.is_empty());

    // The right code turns it on; like a new password it ends the
    // operator's other sessions and renews this one.
    bench.advance(Duration::seconds(30));
    let right = bench
        .post_form(
            "/console/account/totp/confirm",
            Some(&cookie),
            &[("csrf", &csrf), ("code", &code(&secret, bench.now())?)],
        )
        .await?;
    ensure!(
        right.status == StatusCode::OK,
        "{} {}",
        right.status,
        right.body
    );
    let backup_codes = shown_backup_codes(&right.body)?;
    let renewed = right.session()?;
    ensure!(bench.signed_in(&renewed).await?);
    ensure!(!bench.signed_in(&cookie).await?, "the replaced session");
    ensure!(!bench.signed_in(&other_session).await?, "another session");
    let on = bench.get("/console/account", Some(&renewed)).await?;
    ensure!(on.body.contains("Włączona"), "{}", on.body);
    ensure!(
        backup_codes.iter().all(|c| !on.body.contains(c.as_str())),
        "backup codes shown a second time"
    );
    labelled(&on.body)?;
    ensure!(bench.logged("totp on").await?.len() == 1);

    // Now the password leads to the code's step: a pending sign-in in its
    // own cookie, no session.
    bench.advance(Duration::seconds(30));
    let answer = bench.sign_in("ala@example.pl", PASSWORD).await?;
    ensure!(answer.status == StatusCode::SEE_OTHER && answer.location() == CODE_PATH);
    ensure!(
        answer.set_cookie().is_none(),
        "a session after the password alone"
    );
    let mut attributes = answer.cookie_attributes(PENDING_COOKIE);
    ensure!(!attributes.is_empty(), "no pending cookie");
    let pending = answer.cookie(PENDING_COOKIE)?;
    attributes.remove(0);
    attributes.sort();
    ensure!(
        attributes
            == [
                "HttpOnly",
                "Max-Age=300",
                "Path=/",
                "SameSite=Strict",
                "Secure"
            ],
        "{attributes:?}"
    );
    ensure!(
        !bench.signed_in(&pending).await?,
        "the pending token is no session"
    );
    // The code's page wants the pending cookie.
    let without = bench.get(CODE_PATH, None).await?;
    ensure!(without.status == StatusCode::SEE_OTHER && without.location() == "/console/signin");
    // Its form wants the page's CSRF token.
    let forged = bench
        .post_cookies(
            CODE_PATH,
            &[(PENDING_COOKIE, &pending)],
            &[("csrf", "x"), ("code", &code(&secret, bench.now())?)],
        )
        .await?;
    ensure!(forged.status == StatusCode::FORBIDDEN, "{}", forged.status);

    // The right code gives the session; the pending sign-in is gone.
    let signed = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER && signed.location() == "/console/",
        "{} {}",
        signed.status,
        signed.body
    );
    ensure!(bench.signed_in(&signed.session()?).await?);
    ensure!(
        signed
            .cookie_attributes(PENDING_COOKIE)
            .iter()
            .any(|a| a == "Max-Age=0"),
        "the pending cookie is not cleared"
    );
    let reused = bench
        .get_cookies(CODE_PATH, &[(PENDING_COOKIE, &pending)])
        .await?;
    ensure!(
        reused.status == StatusCode::SEE_OTHER,
        "a pending sign-in used twice"
    );

    // The log has the steps, never the secret.
    ensure!(bench.logged("sign-in code asked").await?.len() == 1);
    let signed_in = bench.logged("sign-in").await?;
    ensure!(
        signed_in
            .first()
            .is_some_and(|e| e.detail.starts_with("password and TOTP code")),
        "{signed_in:?}"
    );
    let everything = format!("{:?}", bench.log.newest(bench.now(), 2, 1000, None).await?);
    ensure!(!everything.contains(&secret), "the TOTP secret in the log");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_works_once_and_only_within_a_step_either_way() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let cookie = bench.operator_with_password("ewa@example.pl").await?;
    let (secret, _) = bench.enrol(&cookie).await?;

    // The code that confirmed the enrolment is used already.
    let pending = bench.password_step("ewa@example.pl").await?;
    let replayed = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        replayed.status == StatusCode::UNAUTHORIZED,
        "the confirming code again: {}",
        replayed.status
    );
    ensure!(replayed.set_cookie().is_none());
    ensure!(
        replayed.body.contains("Nieprawidłowy kod"),
        "{}",
        replayed.body
    );

    // The next step's code works, once.
    bench.advance(Duration::seconds(30));
    let fresh = code(&secret, bench.now())?;
    let signed = bench.post_code(&pending, &fresh).await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER,
        "{} {}",
        signed.status,
        signed.body
    );
    ensure!(bench.signed_in(&signed.session()?).await?);
    let pending = bench.password_step("ewa@example.pl").await?;
    let again = bench.post_code(&pending, &fresh).await?;
    ensure!(
        again.status == StatusCode::UNAUTHORIZED,
        "a replayed code: {}",
        again.status
    );
    ensure!(
        again.set_cookie().is_none(),
        "a session from a replayed code"
    );
    let refused = bench.logged("sign-in code refused").await?;
    ensure!(
        refused.len() == 2
            && refused
                .iter()
                .all(|e| e.detail.starts_with("TOTP code used already")),
        "{refused:?}"
    );
    for entry in &refused {
        ensure!(!entry.detail.contains(&fresh), "a code in the log");
    }

    // Two steps later that step's code is too old; one step old is not.
    bench.advance(Duration::seconds(60));
    let two_old = code(&secret, bench.now() - Duration::seconds(60))?;
    let late = bench.post_code(&pending, &two_old).await?;
    ensure!(
        late.status == StatusCode::UNAUTHORIZED,
        "a code two steps old: {}",
        late.status
    );
    ensure!(late.set_cookie().is_none());
    let one_old = code(&secret, bench.now() - Duration::seconds(30))?;
    let in_time = bench.post_code(&pending, &one_old).await?;
    ensure!(
        in_time.status == StatusCode::SEE_OTHER,
        "a code one step old: {} {}",
        in_time.status,
        in_time.body
    );
    // ... and once it is used, the current step's code (later) still works,
    // while the one before it (earlier than the last used) does not.
    let pending = bench.password_step("ewa@example.pl").await?;
    let earlier = code(&secret, bench.now() - Duration::seconds(30))?;
    ensure!(bench.post_code(&pending, &earlier).await?.status == StatusCode::UNAUTHORIZED);
    let now = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        now.status == StatusCode::SEE_OTHER,
        "{} {}",
        now.status,
        now.body
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_as_failed_sign_ins_toward_the_accounts_limit() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let cookie = bench.operator_with_password("jan@example.pl").await?;
    let (secret, _) = bench.enrol(&cookie).await?;
    bench.advance(Duration::minutes(15));

    // The password right (its slots given back), then five wrong codes.
    let pending = bench.password_step("jan@example.pl").await?;
    for attempt in 1..=5 {
        let wrong = bench
            .post_code(&pending, &wrong_code(&secret, bench.now())?)
            .await?;
        ensure!(
            wrong.status == StatusCode::UNAUTHORIZED,
            "wrong code {attempt}: {}",
            wrong.status
        );
    }
    ensure!(bench.logged("sign-in code refused").await?.len() == 5);

    // The sixth try is throttled even with the right code, and the pending
    // sign-in ends; so is the password meanwhile.
    let right = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        right.status == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        right.status
    );
    ensure!(right.set_cookie().is_none());
    ensure!(
        right.body.contains("Spróbuj ponownie po "),
        "{}",
        right.body
    );
    ensure!(bench.logged("sign-in throttled").await?.len() == 1);
    let gone = bench
        .get_cookies(CODE_PATH, &[(PENDING_COOKIE, &pending)])
        .await?;
    ensure!(
        gone.status == StatusCode::SEE_OTHER,
        "the throttled pending sign-in lives on"
    );
    let password = bench.sign_in("jan@example.pl", PASSWORD).await?;
    ensure!(
        password.status == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        password.status
    );

    // The next window lets the password and a right code in.
    let retry_after: i64 = right.header(header::RETRY_AFTER).parse()?;
    bench.advance(Duration::seconds(retry_after));
    let pending = bench.password_step("jan@example.pl").await?;
    let signed = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER,
        "{} {}",
        signed.status,
        signed.body
    );
    ensure!(bench.signed_in(&signed.session()?).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_of_an_operator_with_totp_still_asks_for_the_code() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let cookie = bench.operator_with_password("ola@example.pl").await?;
    let (secret, _) = bench.enrol(&cookie).await?;
    bench.advance(Duration::seconds(30));

    let token = bench.invite("ola@example.pl").await?;
    let answer = bench
        .post_form("/console/link", None, &[("token", &token)])
        .await?;
    ensure!(
        answer.status == StatusCode::SEE_OTHER && answer.location() == CODE_PATH,
        "{} {} {}",
        answer.status,
        answer.location(),
        answer.body
    );
    ensure!(
        answer.set_cookie().is_none(),
        "a session from the link alone"
    );
    let pending = answer.cookie(PENDING_COOKIE)?;
    ensure!(!bench.signed_in(&pending).await?);
    // The link is spent either way.
    let again = bench
        .post_form("/console/link", None, &[("token", &token)])
        .await?;
    ensure!(again.status == StatusCode::FORBIDDEN);

    let wrong = bench
        .post_code(&pending, &wrong_code(&secret, bench.now())?)
        .await?;
    ensure!(wrong.status == StatusCode::UNAUTHORIZED && wrong.set_cookie().is_none());
    let signed = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER && signed.location() == "/console/",
        "{} {}",
        signed.status,
        signed.body
    );
    let session = signed.session()?;
    ensure!(bench.signed_in(&session).await?);
    // A link's session: within the link's 30 minutes it may set a password
    // without the current one, as without TOTP.
    let csrf = bench.csrf(&session).await?;
    let form = bench.get("/console/password", Some(&session)).await?;
    ensure!(!form.body.contains("current_password"), "{}", form.body);
    let changed = bench
        .post_form(
            "/console/password",
            Some(&session),
            &[
                ("csrf", &csrf),
                ("new_password", "inny konik 2027"),
                ("repeat_password", "inny konik 2027"),
            ],
        )
        .await?;
    ensure!(
        changed.status == StatusCode::SEE_OTHER,
        "{} {}",
        changed.status,
        changed.body
    );

    let redeemed = bench.logged("sign-in link redeemed").await?;
    ensure!(
        redeemed
            .first()
            .is_some_and(|e| e.detail.ends_with("the TOTP code is asked next")),
        "{redeemed:?}"
    );
    let signed_in = bench.logged("sign-in").await?;
    ensure!(
        signed_in
            .first()
            .is_some_and(|e| e.detail.starts_with("sign-in link and TOTP code")),
        "{signed_in:?}"
    );
    ensure!(bench.logged("sign-in code refused").await?.len() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_totp_off_needs_the_password_and_a_current_code() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let cookie = bench.operator_with_password("piotr@example.pl").await?;
    let (secret, _) = bench.enrol(&cookie).await?;
    // A session made the way it now goes: the password, then a code.
    bench.advance(Duration::seconds(30));
    let pending = bench.password_step("piotr@example.pl").await?;
    let cookie = bench
        .post_code(&pending, &code(&secret, bench.now())?)
        .await?
        .session()?;
    bench.advance(Duration::seconds(30));
    let csrf = bench.csrf(&cookie).await?;
    let off = |password: &'static str, code: String| {
        let csrf = csrf.clone();
        let cookie = cookie.clone();
        let bench = &bench;
        async move {
            bench
                .post_form(
                    "/console/account/totp/off",
                    Some(&cookie),
                    &[("csrf", &csrf), ("password", password), ("code", &code)],
                )
                .await
        }
    };

    let wrong_password = off("nie to hasło wcale", code(&secret, bench.now())?).await?;
    ensure!(
        wrong_password.status == StatusCode::UNAUTHORIZED,
        "{}",
        wrong_password.status
    );
    let wrong = off(PASSWORD, wrong_code(&secret, bench.now())?).await?;
    ensure!(wrong.status == StatusCode::UNAUTHORIZED, "{}", wrong.status);
    ensure!(wrong.body.contains("nadal włączona"), "{}", wrong.body);
    let no_code = off(PASSWORD, String::new()).await?;
    ensure!(
        no_code.status == StatusCode::UNAUTHORIZED,
        "{}",
        no_code.status
    );
    let forged = bench
        .post_form(
            "/console/account/totp/off",
            Some(&cookie),
            &[
                ("password", PASSWORD),
                ("code", &code(&secret, bench.now())?),
            ],
        )
        .await?;
    ensure!(forged.status == StatusCode::FORBIDDEN, "{}", forged.status);
    ensure!(bench.logged("totp off refused").await?.len() == 3);
    ensure!(bench.logged("totp off").await?.is_empty());
    ensure!(
        bench
            .get("/console/account", Some(&cookie))
            .await?
            .body
            .contains("Włączona"),
        "still on"
    );

    let done = off(PASSWORD, code(&secret, bench.now())?).await?;
    ensure!(
        done.status == StatusCode::SEE_OTHER && done.location() == "/console/account",
        "{} {}",
        done.status,
        done.body
    );
    ensure!(bench.logged("totp off").await?.len() == 1);
    let account = bench.get("/console/account", Some(&cookie)).await?;
    ensure!(account.body.contains("Wyłączona."), "{}", account.body);
    // The password alone signs in again.
    let plain = bench.sign_in("piotr@example.pl", PASSWORD).await?;
    ensure!(
        plain.status == StatusCode::SEE_OTHER && plain.location() == "/console/",
        "{} {}",
        plain.status,
        plain.location()
    );
    ensure!(bench.signed_in(&plain.session()?).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_code_signs_in_once_and_a_new_set_ends_the_old_one() -> anyhow::Result<()> {
    let dir = TestDir::new()?;
    let bench = Bench::start(dir.path()).await?;
    let email = "ola@example.pl";
    let cookie = bench.operator_with_password(email).await?;

    // Turning TOTP on shows ten codes once; the account page then counts
    // them and never shows them again.
    let (secret, session, codes) = bench.enrol_with_codes(&cookie).await?;
    let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
    ensure!(distinct.len() == 10, "{codes:?}");
    ensure!(bench.backup_codes_left(&session).await? == 10);
    let account = bench.get("/console/account", Some(&session)).await?;
    ensure!(
        codes.iter().all(|c| !account.body.contains(c.as_str())),
        "a backup code on the account page"
    );
    labelled(&account.body)?;
    let english = bench
        .get("/console/account?lang=en", Some(&session))
        .await?;
    ensure!(
        english.body.contains("Make new backup codes"),
        "{}",
        english.body
    );

    // A backup code instead of the app's code: a session, once. Typed in
    // capitals and without the dash it is the same code.
    bench.advance(Duration::seconds(30));
    let first = &codes[0];
    let pending = bench.password_step(email).await?;
    let page = bench
        .get_cookies(CODE_PATH, &[(PENDING_COOKIE, &pending)])
        .await?;
    labelled(&page.body)?;
    ensure!(page.body.contains(r#"name="backup_code""#), "{}", page.body);
    let signed = bench
        .post_backup_code(&pending, &first.replace('-', "").to_uppercase())
        .await?;
    ensure!(
        signed.status == StatusCode::SEE_OTHER && signed.location() == "/console/",
        "a backup code: {} {}",
        signed.status,
        signed.body
    );
    let by_backup = signed.session()?;
    ensure!(bench.signed_in(&by_backup).await?);
    ensure!(bench.backup_codes_left(&by_backup).await? == 9);
    let used = bench.logged("backup code used").await?;
    ensure!(
        used.len() == 1 && used[0].actor == email && used[0].detail.contains("9 left"),
        "{used:?}"
    );
    let signed_in = bench.logged("sign-in").await?;
    ensure!(
        signed_in
            .first()
            .is_some_and(|e| e.detail.starts_with("password and backup code")),
        "{signed_in:?}"
    );

    // The same code a second time: refused, no session.
    let pending = bench.password_step(email).await?;
    let again = bench.post_backup_code(&pending, first).await?;
    ensure!(
        again.status == StatusCode::UNAUTHORIZED,
        "a backup code used twice: {} {}",
        again.status,
        again.body
    );
    ensure!(again.set_cookie().is_none(), "a session from a used code");
    ensure!(again.body.contains("kod zapasowy"), "{}", again.body);
    ensure!(bench.logged("backup code used").await?.len() == 1);
    let refused = bench.logged("sign-in code refused").await?;
    ensure!(
        refused
            .first()
            .is_some_and(|e| e.detail.starts_with("backup code wrong or used already")),
        "{refused:?}"
    );

    // Two sign-ins racing with one code: exactly one gets in.
    let second = &codes[1];
    let (one, other) = (
        bench.password_step(email).await?,
        bench.password_step(email).await?,
    );
    let (one, other) = tokio::join!(
        bench.post_backup_code(&one, second),
        bench.post_backup_code(&other, second)
    );
    let statuses = [one?.status, other?.status];
    ensure!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count()
            == 1
            && statuses.contains(&StatusCode::UNAUTHORIZED),
        "one code, two sign-ins: {statuses:?}"
    );
    ensure!(bench.backup_codes_left(&by_backup).await? == 8);

    // A new set needs the password or a current code...
    bench.advance(Duration::minutes(15));
    let csrf = bench.csrf(&by_backup).await?;
    let wrong = bench
        .post_form(
            "/console/account/totp/backup-codes",
            Some(&by_backup),
            &[("csrf", &csrf), ("password", "not the password")],
        )
        .await?;
    ensure!(wrong.status == StatusCode::UNAUTHORIZED, "{}", wrong.status);
    ensure!(bench.logged("backup codes refused").await?.len() == 1);
    let forged = bench
        .post_form(
            "/console/account/totp/backup-codes",
            Some(&by_backup),
            &[("password", PASSWORD)],
        )
        .await?;
    ensure!(forged.status == StatusCode::FORBIDDEN, "{}", forged.status);
    bench.advance(Duration::seconds(30));
    let renewed = bench
        .post_form(
            "/console/account/totp/backup-codes",
            Some(&by_backup),
            &[("csrf", &csrf), ("code", &code(&secret, bench.now())?)],
        )
        .await?;
    ensure!(
        renewed.status == StatusCode::OK,
        "{} {}",
        renewed.status,
        renewed.body
    );
    let new_codes = shown_backup_codes(&renewed.body)?;
    ensure!(new_codes.iter().all(|c| !codes.contains(c)), "a code kept");
    ensure!(bench.backup_codes_left(&by_backup).await? == 10);
    ensure!(bench.logged("backup codes renewed").await?.len() == 1);
    // ... by password too.
    let by_password = bench
        .post_form(
            "/console/account/totp/backup-codes",
            Some(&by_backup),
            &[("csrf", &csrf), ("password", PASSWORD)],
        )
        .await?;
    ensure!(
        by_password.status == StatusCode::OK,
        "{}",
        by_password.status
    );
    let newest = shown_backup_codes(&by_password.body)?;

    // ... and the earlier sets' unused codes no longer work; the newest do.
    let pending = bench.password_step(email).await?;
    for old in [&codes[2], &new_codes[0]] {
        let stale = bench.post_backup_code(&pending, old).await?;
        ensure!(
            stale.status == StatusCode::UNAUTHORIZED,
            "a code of a replaced set: {}",
            stale.status
        );
    }
    let fresh = bench.post_backup_code(&pending, &newest[0]).await?;
    ensure!(
        fresh.status == StatusCode::SEE_OTHER,
        "{} {}",
        fresh.status,
        fresh.body
    );
    ensure!(bench.signed_in(&fresh.session()?).await?);

    // Wrong backup codes count toward the account's limit like wrong app
    // codes: the sixth try is throttled even with a right code.
    bench.advance(Duration::minutes(15));
    let pending = bench.password_step(email).await?;
    for attempt in 1..=5 {
        let wrong = bench.post_backup_code(&pending, "aaaaa-aaaaa").await?;
        ensure!(
            wrong.status == StatusCode::UNAUTHORIZED,
            "wrong backup code {attempt}: {}",
            wrong.status
        );
    }
    let throttled = bench.post_backup_code(&pending, &newest[1]).await?;
    ensure!(
        throttled.status == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.status
    );

    // No code, old or new, is in the log.
    let everything = format!("{:?}", bench.log.newest(bench.now(), 2, 1000, None).await?);
    for shown in codes.iter().chain(&new_codes).chain(&newest) {
        ensure!(
            !everything.contains(shown.as_str()) && !everything.contains(&shown.replace('-', "")),
            "a backup code in the log"
        );
    }
    Ok(())
}
