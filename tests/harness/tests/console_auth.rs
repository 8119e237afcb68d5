//! The console's sign-in against the AWS emulator, through its own routes
//! served on loopback as the local host serves the admin router (so
//! without connect info: every caller here is the address `unknown`),
//! with a clock the tests move: a sign-in link works once and only within
//! 30 minutes; passwords shorter than 12 characters are refused; a wrong
//! password and an unknown e-mail get the same page after the same work;
//! the sixth failure for an account is throttled even with the right
//! password; sessions end when idle, when old, on sign-out and when the
//! password changes elsewhere; a POST needs the session's CSRF token.

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
