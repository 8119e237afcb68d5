//! The browser module (`harness::browser`) against a real headless
//! Chromium, on a few pages this test serves itself on 127.0.0.1: a form
//! that posts to a second page, a page with an unlabelled input and faint
//! text, a page without lang, title or alt, a keyboard trap and a long page.
//!
//! Needs Debian's chromium and chromium-driver (`.ci/run` installs them);
//! without them it prints `skipped:`, and fails under `CI=true`.
//! Screenshots are kept in `target/browser-screenshots/`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use harness::browser::{Browser, Rule, Viewport, png_size, screenshot_dir};

const WAIT: Duration = Duration::from_secs(10);

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(lang: &str, title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html{lang}><head><meta charset=\"utf-8\">{title}\
         <style>body {{ font-family: sans-serif; color: #222; background: #fff; margin: 2em; }}\
         button {{ color: #fff; background: #1a5fb4; border: 0; padding: .5em 1em; }}</style>\
         </head><body>{body}</body></html>"
    ))
}

async fn sign_in() -> Html<String> {
    page(
        " lang=\"en\"",
        "<title>Sign in</title>",
        "<h1>Sign in</h1>\
         <form method=\"post\" action=\"/hello\">\
         <p><label for=\"name\">Your name</label> <input id=\"name\" name=\"name\"></p>\
         <input type=\"email\" name=\"username\" autocomplete=\"username\" hidden>\
         <p><label>Shop <select name=\"shop\"><option>WooCommerce</option><option>Allegro</option></select></label></p>\
         <p><button type=\"submit\">Say hello</button></p>\
         </form>\
         <p><img alt=\"A blue square\" width=\"16\" height=\"16\" src=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='16' height='16'%3E%3Crect width='16' height='16' fill='%231a5fb4'/%3E%3C/svg%3E\"></p>",
    )
}

async fn hello(body: String) -> impl IntoResponse {
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let greeting = format!(
        "<h1>Hello, {}!</h1><p>Your shop: {}</p><p><a href=\"/\">Back</a></p>",
        escape(&field("name")),
        escape(&field("shop"))
    );
    (
        [(
            header::SET_COOKIE,
            "greeted=yes; Path=/; HttpOnly; SameSite=Lax",
        )],
        page(" lang=\"en\"", "<title>Hello</title>", &greeting),
    )
}

async fn bad() -> Html<String> {
    page(
        " lang=\"en\"",
        "<title>Bad</title>",
        "<h1>A page with two faults</h1>\
         <p id=\"faint\" style=\"color: #aaaaaa\">This grey text is too faint to read.</p>\
         <p><label for=\"fine\">Labelled</label> <input id=\"fine\"></p>\
         <p><input id=\"nameless\" name=\"nameless\"></p>",
    )
}

async fn bare() -> Html<String> {
    page(
        "",
        "",
        "<p>No language, no title, an image without alt:</p>\
         <img id=\"picture\" width=\"8\" height=\"8\" src=\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='8' height='8'/%3E\">",
    )
}

async fn trap() -> Html<String> {
    page(
        " lang=\"en\"",
        "<title>Trap</title>",
        "<p><input aria-label=\"Trap\" id=\"trap\" \
         onkeydown=\"if (event.key === 'Tab') event.preventDefault()\"></p>\
         <p><button id=\"after\">Never reached</button></p>",
    )
}

async fn long() -> Html<String> {
    page(
        " lang=\"en\"",
        "<title>Long</title>",
        "<h1>Top</h1><div style=\"height: 2400px; background: linear-gradient(#fff, #1a5fb4)\"></div><p>Bottom</p>",
    )
}

/// Serves the pages on a free port of 127.0.0.1; the base URL.
async fn serve() -> anyhow::Result<String> {
    let app = Router::new()
        .route("/", get(sign_in))
        .route("/hello", post(hello))
        .route("/bad", get(bad))
        .route("/bare", get(bare))
        .route("/trap", get(trap))
        .route("/long", get(long));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{address}"))
}

fn check_png(path: &Path, width: u32, height: u32) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let size = png_size(&bytes)?;
    ensure!(
        size == (width, height),
        "{} is {size:?}, not {width}x{height}",
        path.display()
    );
    Ok(())
}

/// Processes whose command line mentions `profile` (Chromium's).
fn running_on(profile: &Path) -> Vec<String> {
    let needle = profile.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_is_filled_and_posted_in_a_real_chromium() -> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    let started = Instant::now();
    let Some(browser) = Browser::start(dir.path()).await? else {
        return Ok(());
    };
    eprintln!("browser ready in {:?}", started.elapsed());
    let base = serve().await?;
    let shots = screenshot_dir("browser-screenshots");

    browser.open(&format!("{base}/")).await?;
    ensure!(browser.title().await? == "Sign in");
    let form = browser.screenshot(&shots, "sign-in").await?;
    check_png(&form, 1280, 900)?;

    browser.fill("Your name", "Zofia Gęślą-Żółć").await?;
    browser.fill("Shop", "Allegro").await?;
    let missing = browser
        .click_button("Log out")
        .await
        .err()
        .context("a button that is not there was clicked")?;
    ensure!(
        format!("{missing:#}").contains("\"Say hello\""),
        "the error names the buttons there are: {missing:#}"
    );
    browser.click_button("Say hello").await?;
    browser
        .wait_for_text("Hello, Zofia Gęślą-Żółć!", WAIT)
        .await?;
    ensure!(browser.current_url().await? == format!("{base}/hello"));
    ensure!(browser.text().await?.contains("Your shop: Allegro"));
    ensure!(
        browser.find_by_text("Your shop").await?.text().await? == "Your shop: Allegro",
        "find_by_text gives the innermost element"
    );
    let cookies = browser.cookies().await?;
    let greeted = cookies
        .iter()
        .find(|c| c.name == "greeted")
        .with_context(|| format!("no cookie `greeted` in {cookies:?}"))?;
    ensure!(greeted.value == "yes" && greeted.http_only && !greeted.secure);
    ensure!(greeted.same_site.as_deref() == Some("Lax") && greeted.path.as_deref() == Some("/"));
    ensure!(greeted.expires_unix.is_none(), "a session cookie");
    check_png(&browser.screenshot(&shots, "hello").await?, 1280, 900)?;

    // A phone's viewport on demand, and a page taller than the window.
    browser.set_viewport(Viewport::PHONE).await?;
    check_png(&browser.screenshot(&shots, "hello-phone").await?, 390, 844)?;
    browser.set_viewport(Viewport::DESKTOP).await?;
    browser.open(&format!("{base}/long")).await?;
    let long = browser
        .screenshot_full_page(&shots, "long-full-page")
        .await?;
    let (width, height) = png_size(&std::fs::read(&long)?)?;
    ensure!(
        width == 1280 && height > 2400,
        "the whole page: {width}x{height}"
    );

    // Dropped without quit: Chromium goes too.
    let profile = browser.profile().to_path_buf();
    ensure!(
        !running_on(&profile).is_empty(),
        "Chromium runs on its profile"
    );
    drop(browser);
    let left = running_on(&profile);
    ensure!(left.is_empty(), "left running after drop: {left:?}");
    eprintln!("done in {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_checks_find_what_is_wrong_and_nothing_on_a_good_page()
-> anyhow::Result<()> {
    let dir = harness::TestDir::new()?;
    let started = Instant::now();
    let Some(browser) = Browser::start(dir.path()).await? else {
        return Ok(());
    };
    let base = serve().await?;
    let shots = screenshot_dir("browser-screenshots");

    // The good page: nothing found, and something was looked at.
    browser.open(&format!("{base}/")).await?;
    let good = browser.accessibility().await?;
    good.ensure_none()?;
    ensure!(
        good.checked.controls == 2 && good.checked.images == 1 && good.checked.texts >= 4,
        "{:?}",
        good.checked
    );
    ensure!(
        good.tab_order.len() == 3
            && good.tab_order[0].starts_with("input#name")
            && good.tab_order[1].starts_with("select[name=\"shop\"]")
            && good.tab_order[2].starts_with("button[type=\"submit\"] \"Say hello\""),
        "Tab goes to the name, the shop, then the button: {:?}",
        good.tab_order
    );

    // The bad page: the unlabelled input and the faint text, nothing else.
    browser.open(&format!("{base}/bad")).await?;
    browser.screenshot(&shots, "bad").await?;
    let bad = browser.accessibility().await?;
    let rules: Vec<Rule> = bad.findings.iter().map(|f| f.rule).collect();
    ensure!(
        rules == [Rule::Label, Rule::Contrast],
        "{:#?}",
        bad.findings
    );
    ensure!(bad.findings[0].element == "input#nameless[name=\"nameless\"]");
    ensure!(
        bad.findings[1].element == "p#faint"
            && bad.findings[1]
                .detail
                .starts_with("contrast 2.32:1, needs 4.5:1"),
        "{}",
        bad.findings[1]
    );
    let error = bad.ensure_none().err().context("findings pass")?;
    ensure!(format!("{error}").contains("2 accessibility finding(s) on"));

    // No lang, no title, an image without alt.
    browser.open(&format!("{base}/bare")).await?;
    let bare = browser.accessibility().await?;
    let rules: Vec<Rule> = bare.findings.iter().map(|f| f.rule).collect();
    ensure!(
        rules == [Rule::Lang, Rule::Title, Rule::Alt],
        "{:#?}",
        bare.findings
    );

    // A keyboard trap: the button after it is never reached.
    browser.open(&format!("{base}/trap")).await?;
    let trap = browser.accessibility().await?;
    ensure!(
        trap.findings.len() == 1
            && trap.findings[0].rule == Rule::Tab
            && trap.findings[0].element.starts_with("button#after"),
        "{:#?}",
        trap.findings
    );

    browser.quit().await?;
    eprintln!("done in {:?}", started.elapsed());
    Ok(())
}
