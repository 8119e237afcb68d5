//! A real headless Chromium driven through WebDriver, for tests of the
//! pages a person uses (the operator's console): open a page, fill a
//! labelled field, click a button by its words, wait for text, read
//! cookies, save screenshots, and check the page's accessibility.
//!
//! What starts: Debian's `chromedriver` (package chromium-driver) on a free
//! port of 127.0.0.1, as a [`Process`] leading its own process group, with
//! its log in the test's folder; it starts Debian's `chromium` with
//! [`CHROMIUM_FLAGS`] and a fresh profile (`--user-data-dir`) in the
//! test's folder. The client is `fantoccini` over plain HTTP (no TLS: the
//! driver is on loopback).
//!
//! When Chromium or chromedriver is missing, [`Browser::start`] prints
//! `skipped: …` and gives `None`, except under `CI=true`, where it fails:
//! `.ci/run` installs both (`apt-get install chromium chromium-driver`).
//!
//! Dropping a [`Browser`] ends its session and kills whatever is left of
//! chromedriver and Chromium (their process group, and any process still
//! running on the browser's profile); [`Browser::quit`] does the same and
//! says whether the session ended cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::ElementRef;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use fantoccini::elements::Element;
pub use fantoccini::key::Key;

use crate::process::{Process, tail};

/// Chromium's flags. Headless, and as root (CI and the sessions run as
/// root) without the sandbox, which refuses root. No GPU on these
/// machines. This machine's network is closed, and Chromium's own
/// connections (QUIC, component updates, sync, field trials, safe
/// browsing lists: `--disable-background-networking`) are refused many at
/// a time at every start, so they are switched off. A device scale factor
/// of 1 makes a screenshot's pixels the window's CSS pixels.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-device-scale-factor=1",
];

/// How long a page may take to load, and a script to run, before the
/// command fails.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How WebDriver names an element reference in JSON (W3C WebDriver, 12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

const ACCESSIBILITY_JS: &str = include_str!("browser/accessibility.js");
const FOCUS_JS: &str = include_str!("browser/focus.js");
const FIND_JS: &str = include_str!("browser/find.js");

/// The size of the page's viewport in CSS pixels (the screenshot's size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

impl Viewport {
    /// A laptop's browser window.
    pub const DESKTOP: Viewport = Viewport {
        width: 1280,
        height: 900,
    };
    /// A phone held upright (an iPhone 12 to 15's CSS size).
    pub const PHONE: Viewport = Viewport {
        width: 390,
        height: 844,
    };
}

/// The two programs a browser test needs.
#[derive(Clone, Debug)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver: `CHROMIUM` and `CHROMEDRIVER` when
/// set, else `chromium` and `chromedriver` on `PATH` (Debian's
/// `/usr/bin/chromium`, `/usr/bin/chromedriver`). `Err` says what is
/// missing and how to install it.
pub fn tools() -> Result<Tools, String> {
    let chromium = program("CHROMIUM", "chromium");
    let chromedriver = program("CHROMEDRIVER", "chromedriver");
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok(Tools {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => {
            let missing: Vec<&str> = [
                chromium.is_none().then_some("chromium"),
                chromedriver.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let verb = if missing.len() > 1 { "are" } else { "is" };
            Err(format!(
                "{} {verb} not installed (apt-get install chromium chromium-driver; .ci/run does)",
                missing.join(" and ")
            ))
        }
    }
}

/// `$variable` when set, else `name` found on `PATH`.
fn program(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// In CI (`CI=true`) a missing browser is a failure, elsewhere a printed skip.
pub fn skip_or_fail(reason: &str) -> anyhow::Result<()> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!("CI must run the browser tests, but {reason}");
    }
    eprintln!("skipped: {reason}");
    Ok(())
}

/// Where a test keeps its screenshots after it ends: `<target>/<name>`
/// (the target folder the test binary was built in, e.g.
/// `target/console-screenshots`).
pub fn screenshot_dir(name: &str) -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| crate::paths::repo_root().join("target"));
    target.join(name)
}

/// The width and height a PNG file says it has (its IHDR chunk).
pub fn png_size(png: &[u8]) -> anyhow::Result<(u32, u32)> {
    if !png.starts_with(PNG_SIGNATURE) || png.len() < 24 || &png[12..16] != b"IHDR" {
        bail!("not a PNG ({} bytes)", png.len());
    }
    let number = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Ok((number(16), number(20)))
}

/// A cookie as the browser holds it (WebDriver's Get All Cookies: HttpOnly
/// ones included, which a page's script cannot see).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieInfo {
    pub name: String,
    pub value: String,
    pub domain: Option<String>,
    pub path: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// "Strict", "Lax" or "None", when the browser reports it.
    pub same_site: Option<String>,
    /// When it expires (seconds since 1970); `None` for a session cookie.
    pub expires_unix: Option<i64>,
}

/// What an accessibility check found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// `<html>` has no `lang`.
    Lang,
    /// No `<title>`, or an empty one.
    Title,
    /// An `input`, `select` or `textarea` without a label, aria-label or
    /// aria-labelledby.
    Label,
    /// An image without `alt`.
    Alt,
    /// Text below 4.5:1 (3:1 when large) against its background.
    Contrast,
    /// A focusable element that Tab never reaches.
    Tab,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Finding {
    pub rule: Rule,
    /// The element, as `tag#id[name][type]`.
    pub element: String,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}: {}", self.rule, self.element, self.detail)
    }
}

/// How much each check looked at (a check that found nothing on a page
/// with nothing to check proves little).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Checked {
    pub controls: u32,
    pub images: u32,
    /// Elements with text whose contrast was measured.
    pub texts: u32,
    /// Elements with text over an image or gradient, not measured.
    pub unmeasured_texts: u32,
    /// Elements Tab should reach.
    pub focusable: u32,
}

/// Where Tab goes on a page, from the top.
#[derive(Clone, Debug, Default)]
pub struct TabOrder {
    /// Each element the focus went to, in order (`tag#id[name][type] "words"`).
    pub stops: Vec<String>,
    /// The elements that should be reachable, in document order.
    pub focusable: Vec<String>,
    /// Those of them never reached.
    pub findings: Vec<Finding>,
}

/// The accessibility checks of one page.
#[derive(Clone, Debug, Default)]
pub struct Accessibility {
    pub url: String,
    pub findings: Vec<Finding>,
    pub checked: Checked,
    pub tab_order: Vec<String>,
}

impl Accessibility {
    /// The findings of one rule.
    pub fn of(&self, rule: Rule) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.rule == rule).collect()
    }

    /// Fails listing every finding, when there is one.
    pub fn ensure_none(&self) -> anyhow::Result<()> {
        if self.findings.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = self.findings.iter().map(|f| format!("  {f}")).collect();
        bail!(
            "{} accessibility finding(s) on {}:\n{}",
            self.findings.len(),
            self.url,
            list.join("\n")
        )
    }
}

#[derive(Deserialize)]
struct PageChecks {
    findings: Vec<Finding>,
    checked: Checked,
}

#[derive(Deserialize)]
struct FocusTarget {
    id: u64,
    group: String,
    element: String,
}

#[derive(Deserialize)]
struct Focused {
    id: u64,
    element: String,
}

/// A headless Chromium and the chromedriver that drives it.
pub struct Browser {
    client: Option<Client>,
    driver: Process,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// A browser with a [`Viewport::DESKTOP`] window, its logs and profile
    /// in `dir`; `None` (after printing `skipped: …`) when Chromium or
    /// chromedriver is missing, an error instead under `CI=true`.
    pub async fn start(dir: &Path) -> anyhow::Result<Option<Browser>> {
        Browser::start_with(dir, Viewport::DESKTOP).await
    }

    /// [`Browser::start`] with another window size ([`Viewport::PHONE`]).
    pub async fn start_with(dir: &Path, viewport: Viewport) -> anyhow::Result<Option<Browser>> {
        match tools() {
            Ok(tools) => Browser::launch(&tools, dir, viewport).await.map(Some),
            Err(reason) => {
                skip_or_fail(&reason)?;
                Ok(None)
            }
        }
    }

    /// Starts chromedriver and a session on these programs (no skipping).
    pub async fn launch(tools: &Tools, dir: &Path, viewport: Viewport) -> anyhow::Result<Browser> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile-")
            .tempdir_in(dir)
            .with_context(|| format!("creating a Chromium profile in {}", dir.display()))?
            .keep();
        let (driver, port) = start_driver(tools, dir).await?;

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!(
            "--window-size={},{}",
            viewport.width, viewport.height
        ));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
            },
        });
        let Value::Object(capabilities) = capabilities else {
            bail!("capabilities are not a JSON object");
        };
        let url = format!("http://127.0.0.1:{port}");
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(error) => bail!(
                "chromedriver at {url} could not start {} ({error}); chromedriver's log ({}):\n{}",
                tools.chromium.display(),
                driver.log_path().display(),
                tail(&driver.log_text())
            ),
        };
        let session = client
            .session_id()
            .await
            .context("asking chromedriver for the session's id")?
            .context("chromedriver gave no session id")?;
        let browser = Browser {
            client: Some(client),
            driver,
            port,
            session,
            profile,
        };
        browser
            .client()?
            .update_timeouts(TimeoutConfiguration::new(
                Some(SCRIPT_TIMEOUT),
                Some(PAGE_LOAD_TIMEOUT),
                Some(Duration::ZERO),
            ))
            .await
            .context("setting the session's timeouts")?;
        browser.set_viewport(viewport).await?;
        Ok(browser)
    }

    /// The WebDriver client, for what this module does not wrap.
    pub fn client(&self) -> anyhow::Result<&Client> {
        self.client.as_ref().context("the browser has quit")
    }

    /// The browser's profile (`--user-data-dir`), a fresh folder in the
    /// test's folder.
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// chromedriver's log file.
    pub fn driver_log(&self) -> &Path {
        self.driver.log_path()
    }

    /// Makes the page's viewport exactly `viewport` (the window is resized
    /// until its inner size matches).
    pub async fn set_viewport(&self, viewport: Viewport) -> anyhow::Result<()> {
        let client = self.client()?;
        let (mut width, mut height) = (viewport.width, viewport.height);
        for _ in 0..3 {
            client
                .set_window_size(width, height)
                .await
                .context("resizing the window")?;
            let inner = self.viewport().await?;
            if inner == viewport {
                return Ok(());
            }
            // The window's frame, if any, is the difference.
            width = (width + viewport.width).saturating_sub(inner.width);
            height = (height + viewport.height).saturating_sub(inner.height);
        }
        let inner = self.viewport().await?;
        bail!("asked for a {viewport:?} viewport, the window gives {inner:?}")
    }

    /// The viewport's size now (`window.innerWidth`, `innerHeight`).
    pub async fn viewport(&self) -> anyhow::Result<Viewport> {
        let size = self
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await?;
        let number = |i: usize| {
            size.get(i)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .with_context(|| format!("the viewport's size is not two numbers: {size}"))
        };
        Ok(Viewport {
            width: number(0)?,
            height: number(1)?,
        })
    }

    /// Goes to `url` and waits for it to load.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.client()?
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        let url = self
            .client()?
            .current_url()
            .await
            .context("asking for the current URL")?;
        Ok(url.to_string())
    }

    pub async fn title(&self) -> anyhow::Result<String> {
        self.client()?
            .title()
            .await
            .context("asking for the page's title")
    }

    /// The page's text as rendered (`document.body.innerText`: hidden
    /// elements left out, blocks on their own lines).
    pub async fn text(&self) -> anyhow::Result<String> {
        let text = self
            .execute(
                "return document.body ? document.body.innerText : document.documentElement.innerText;",
                vec![],
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML as it is now (the DOM serialised, not the source).
    pub async fn html(&self) -> anyhow::Result<String> {
        self.client()?
            .source()
            .await
            .context("reading the page's HTML")
    }

    /// Runs `script` (a function body; `return` gives the result) in the
    /// page with `args` as `arguments`.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let first_line = script.lines().next().unwrap_or_default();
        self.client()?
            .execute(script, args)
            .await
            .with_context(|| format!("running a script in the page ({first_line} …)"))
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client()?
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no element matches `{css}`"))
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        self.client()?
            .find_all(Locator::Css(css))
            .await
            .with_context(|| format!("looking for `{css}`"))
    }

    /// The `input`, `select` or `textarea` with this label (its `<label>`,
    /// aria-label or aria-labelledby; the exact words, else the one label
    /// containing them).
    pub async fn find_by_label(&self, label: &str) -> anyhow::Result<Element> {
        self.find_as("label", label).await
    }

    /// The innermost element whose text holds `text` (the one whose text
    /// is exactly `text` first).
    pub async fn find_by_text(&self, text: &str) -> anyhow::Result<Element> {
        self.find_as("text", text).await
    }

    /// Types `value` into the field labelled `label`, replacing what it
    /// held; for a `select`, picks the option whose text is `value`.
    pub async fn fill(&self, label: &str, value: &str) -> anyhow::Result<()> {
        let field = self.find_by_label(label).await?;
        let tag = field
            .tag_name()
            .await
            .with_context(|| format!("reading the field labelled `{label}`"))?;
        if tag.eq_ignore_ascii_case("select") {
            return field
                .select_by_label(value)
                .await
                .with_context(|| format!("choosing `{value}` in `{label}`"));
        }
        field
            .clear()
            .await
            .with_context(|| format!("clearing the field labelled `{label}`"))?;
        field
            .send_keys(value)
            .await
            .with_context(|| format!("typing into the field labelled `{label}`"))
    }

    /// Clicks the button (`button`, `input type=submit|button|reset`,
    /// `role=button`) whose words are `text`.
    pub async fn click_button(&self, text: &str) -> anyhow::Result<()> {
        let button = self.find_as("button", text).await?;
        button
            .click()
            .await
            .with_context(|| format!("clicking the button `{text}`"))
    }

    /// Clicks the link whose words are `text`.
    pub async fn click_link(&self, text: &str) -> anyhow::Result<()> {
        let link = self.find_as("link", text).await?;
        link.click()
            .await
            .with_context(|| format!("clicking the link `{text}`"))
    }

    async fn find_as(&self, how: &str, words: &str) -> anyhow::Result<Element> {
        let found = self
            .execute(FIND_JS, vec![json!(how), json!(words)])
            .await?;
        if let Some(missing) = found.get("missing").and_then(Value::as_str) {
            let url = self.current_url().await.unwrap_or_default();
            bail!("{missing} ({url})");
        }
        let id = found
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .with_context(|| format!("finding {how} `{words}` gave no element: {found}"))?;
        Ok(Element::from_element_id(
            self.client()?.clone(),
            ElementRef::from(id.to_owned()),
        ))
    }

    /// Waits until the page's text holds `text`, polling every 100 ms;
    /// fails after `timeout` with the URL and what the page says.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // A page being replaced may refuse a script for a moment.
            let last = self.text().await;
            if last.as_ref().is_ok_and(|page| page.contains(text)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                let page = match last {
                    Ok(page) => page,
                    Err(error) => format!("(unreadable: {error:#})"),
                };
                bail!(
                    "`{text}` did not appear within {timeout:?} on {url}; the page says:\n{page}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the current URL holds `part` (after a redirect, say).
    pub async fn wait_for_url(&self, part: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if let Ok(url) = &url
                && url.contains(part)
            {
                return Ok(url.clone());
            }
            if Instant::now() > deadline {
                bail!("the URL did not come to hold `{part}` within {timeout:?}: {url:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The cookies of the current page's site.
    pub async fn cookies(&self) -> anyhow::Result<Vec<CookieInfo>> {
        let cookies = self
            .client()?
            .get_all_cookies()
            .await
            .context("reading the cookies")?;
        Ok(cookies
            .iter()
            .map(|cookie| CookieInfo {
                name: cookie.name().to_owned(),
                value: cookie.value().to_owned(),
                domain: cookie.domain().map(str::to_owned),
                path: cookie.path().map(str::to_owned),
                secure: cookie.secure().unwrap_or(false),
                http_only: cookie.http_only().unwrap_or(false),
                same_site: cookie.same_site().map(|s| s.to_string()),
                expires_unix: cookie.expires_datetime().map(|t| t.unix_timestamp()),
            })
            .collect())
    }

    /// Saves what the viewport shows as `<dir>/<name>.png` (the folder is
    /// made when missing) and gives the file's path.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let png = self
            .client()?
            .screenshot()
            .await
            .context("taking a screenshot")?;
        save_png(&png, dir, name)
    }

    /// Saves the whole page, below the fold too, as `<dir>/<name>.png`
    /// (Chromium's own capture through chromedriver's DevTools command).
    pub async fn screenshot_full_page(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let metrics = self.devtools("Page.getLayoutMetrics", json!({})).await?;
        let size = |key: &str| {
            metrics
                .pointer(&format!("/cssContentSize/{key}"))
                .and_then(Value::as_f64)
                .with_context(|| format!("the page's layout has no {key}: {metrics}"))
        };
        // As wide as the window (the content's width leaves out the
        // scrollbar, which the taller capture no longer needs).
        let window = self.viewport().await?;
        let width = size("width")?.max(f64::from(window.width));
        let height = size("height")?.max(f64::from(window.height));
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await?;
        let data = shot
            .get("data")
            .and_then(Value::as_str)
            .with_context(|| format!("the capture has no data: {shot}"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("decoding the capture")?;
        save_png(&png, dir, name)
    }

    /// A Chrome DevTools Protocol command through chromedriver
    /// (`POST /session/{id}/goog/cdp/execute`).
    async fn devtools(&self, command: &str, params: Value) -> anyhow::Result<Value> {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/goog/cdp/execute",
            self.port, self.session
        );
        let response = reqwest::Client::new()
            .post(&url)
            .json(&json!({"cmd": command, "params": params}))
            .send()
            .await
            .with_context(|| format!("sending {command} to chromedriver"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("reading chromedriver's answer to {command}"))?;
        if !status.is_success() {
            bail!("chromedriver refused {command} ({status}): {body}");
        }
        Ok(body.get("value").cloned().unwrap_or(Value::Null))
    }

    /// Presses Tab from the top of the page until the focus leaves the
    /// page or comes back round, recording where it goes; every focusable
    /// element never reached is a [`Rule::Tab`] finding.
    pub async fn tab_order(&self) -> anyhow::Result<TabOrder> {
        let targets: Vec<FocusTarget> =
            serde_json::from_value(self.execute(FOCUS_JS, vec![json!("start")]).await?)
                .context("reading the page's focusable elements")?;
        let mut reached: Vec<u64> = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..targets.len() * 2 + 2 {
            self.press(Key::Tab).await?;
            let focused: Option<Focused> =
                serde_json::from_value(self.execute(FOCUS_JS, vec![json!("active")]).await?)
                    .context("reading the focused element")?;
            let Some(focused) = focused else { break };
            if reached.first() == Some(&focused.id) {
                break;
            }
            reached.push(focused.id);
            stops.push(focused.element);
        }
        self.execute(FOCUS_JS, vec![json!("finish")]).await?;

        let mut findings = Vec::new();
        for target in &targets {
            let group_reached = targets
                .iter()
                .filter(|other| other.group == target.group)
                .any(|other| reached.contains(&other.id));
            let first_of_group = targets
                .iter()
                .find(|other| other.group == target.group)
                .is_some_and(|first| first.id == target.id);
            if !group_reached && first_of_group {
                findings.push(Finding {
                    rule: Rule::Tab,
                    element: target.element.clone(),
                    detail: format!(
                        "never focused by Tab from the top of the page ({} stops: {})",
                        stops.len(),
                        stops.join(", ")
                    ),
                });
            }
        }
        Ok(TabOrder {
            stops,
            focusable: targets.into_iter().map(|t| t.element).collect(),
            findings,
        })
    }

    /// Presses and releases one key (to the focused element).
    pub async fn press(&self, key: Key) -> anyhow::Result<()> {
        let value: char = key.into();
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client()?
            .perform_actions(keys)
            .await
            .context("pressing a key")
    }

    /// The accessibility checks of the current page: `lang`, `<title>`,
    /// labels of form controls, `alt` of images, text contrast (WCAG 2.2
    /// 1.4.3 from computed styles) and the Tab order. A page passes when
    /// `findings` is empty ([`Accessibility::ensure_none`]).
    pub async fn accessibility(&self) -> anyhow::Result<Accessibility> {
        let checks: PageChecks =
            serde_json::from_value(self.execute(ACCESSIBILITY_JS, vec![]).await?)
                .context("reading the accessibility checks' answer")?;
        let tab = self.tab_order().await?;
        let mut checked = checks.checked;
        checked.focusable = u32::try_from(tab.focusable.len()).unwrap_or(u32::MAX);
        let mut findings = checks.findings;
        findings.extend(tab.findings);
        Ok(Accessibility {
            url: self.current_url().await?,
            findings,
            checked,
            tab_order: tab.stops,
        })
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        let ended = match self.client.take() {
            Some(client) => client.close().await.context("ending the WebDriver session"),
            None => Ok(()),
        };
        self.stop_processes();
        ended
    }

    /// Kills what is left: chromedriver's process group (Chromium is
    /// started inside it), any process still running on this browser's
    /// profile, and chromedriver itself.
    fn stop_processes(&mut self) {
        if let Some(pid) = self.driver.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .output();
        }
        for pid in processes_using(&self.profile) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        self.driver.kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.client.take().is_some() {
            // No runtime may be at hand here: end the session over a plain
            // blocking request, so that Chromium quits as it should.
            delete_session(self.port, &self.session);
        }
        self.stop_processes();
    }
}

/// Starts chromedriver on a free port and waits for it to be ready;
/// tries three ports, another process may take a free one first.
async fn start_driver(tools: &Tools, dir: &Path) -> anyhow::Result<(Process, u16)> {
    let mut last_error = None;
    for _ in 0..3 {
        let port = crate::free_port()?;
        let mut command = Command::new(&tools.chromedriver);
        command.arg(format!("--port={port}"));
        // Its own process group, so that Chromium and its helpers can be
        // killed with it.
        command.process_group(0);
        let log = dir.join(format!("chromedriver-{port}.log"));
        let mut driver = Process::spawn("chromedriver", command, &log)?;
        match wait_ready(&mut driver, port).await {
            Ok(()) => return Ok((driver, port)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
}

/// Polls chromedriver's `/status` until it says ready (20 s at most).
async fn wait_ready(driver: &mut Process, port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("making an HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = http.get(&url).send().await
            && let Ok(status) = response.json::<Value>().await
            && status.pointer("/value/ready") == Some(&Value::Bool(true))
        {
            return Ok(());
        }
        if !driver.is_running() {
            bail!(
                "chromedriver exited before it was ready on port {port}:\n{}",
                tail(&driver.log_text())
            );
        }
        if Instant::now() > deadline {
            bail!(
                "chromedriver was not ready on port {port} within 20 s:\n{}",
                tail(&driver.log_text())
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `DELETE /session/{id}` to chromedriver, blocking, bounded to a few
/// seconds. chromedriver answers once Chromium has quit, and may keep the
/// connection open after: the answer's first bytes are waited for, what
/// it says does not matter (the processes are killed next).
fn delete_session(port: u16, session: &str) {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = [0u8; 512];
        let _ = stream.read(&mut answer);
    }
}

/// Processes whose command line names `profile` (Chromium's, by its
/// `--user-data-dir`).
fn processes_using(profile: &Path) -> Vec<u32> {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == needle.as_bytes())
            })
        })
        .collect()
}

fn save_png(png: &[u8], dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    png_size(png).context("the browser's screenshot")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = if name.ends_with(".png") {
        name.to_owned()
    } else {
        format!("{name}.png")
    };
    let path = dir.join(file);
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
