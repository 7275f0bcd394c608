//! Headless Chromium for tests/api/browser.rs, through one `chromedriver` per test binary.
//!
//! Debian's `chromium` and `chromium-driver` must be installed (`.ci/run` installs them). When
//! they are missing a browser test prints SKIPPED and passes, except under CI (`CI` set), where
//! it fails.

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The WebDriver URL of the test binary's one chromedriver, started on first use; `None` (after
/// printing SKIPPED) when chromium is not installed outside CI.
pub fn webdriver() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let installed = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
        if !installed {
            let message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";
            assert!(std::env::var_os("CI").is_none(), "{message}; CI must run the browser tests");
            eprintln!("\n********** SKIPPED: {message} **********\n");
            return None;
        }
        Some(start_chromedriver())
    })
    .as_deref()
}

fn start_chromedriver() -> String {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    // Started from a thread that lives as long as the process, with PDEATHSIG so chromedriver
    // (and the browsers it started) end when the test binary does.
    std::thread::spawn(move || {
        let mut command = Command::new(CHROMEDRIVER);
        command.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start chromedriver");
        let _ = child.wait();
    });
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return url;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not listen on {port}");
}

/// A fresh headless browser (own profile directory, no network of its own to the outside),
/// logging the browser console so [`console_errors`] can read it.
pub async fn browser(webdriver: &str) -> Client {
    let profile = std::env::temp_dir().join(format!("roster-chromium-{}", uuid::Uuid::new_v4().simple()));
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,800",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities: Capabilities = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
    }))
    .unwrap();
    // chromedriver is on loopback: plain HTTP, no TLS provider to choose.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities).connect(webdriver).await.expect("start a chromium session")
}

/// chromedriver's `se/log` extension: the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

/// The console messages at level SEVERE (errors, CSP violations, failed loads) since the
/// last call.
pub async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("read the browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits (up to 20 s) for an element matching `css`.
pub async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Waits (up to 20 s) until the script `condition` returns true.
pub async fn until(client: &Client, what: &str, condition: &str) {
    for _ in 0..200 {
        if client.execute(condition, vec![]).await.expect("run a script") == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Fills `css`'s input with `text`.
pub async fn fill(client: &Client, css: &str, text: &str) {
    let input = find(client, css).await;
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

/// Loads the vendored axe-core into the page and returns its serious and critical violations
/// (ids and the selectors of their nodes).
pub async fn axe_violations(client: &Client) -> Vec<String> {
    let script = r#"
        const done = arguments[arguments.length - 1];
        const run = () => axe.run(document, { resultTypes: ["violations"] }).then((r) => done(
            r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
              .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)));
        if (window.axe) return run();
        const s = document.createElement("script");
        s.src = "/assets/vendor/axe-core-4.10.3/axe.min.js";
        s.onload = run;
        document.head.append(s);
    "#;
    let found = client.execute_async(script, vec![]).await.expect("run axe");
    serde_json::from_value(found).expect("a list of violations")
}

/// Writes a PNG of the page to `docs/screenshots/<name>` when `ROSTER_SCREENSHOTS` is set.
pub async fn screenshot(client: &Client, name: &str) {
    if std::env::var_os("ROSTER_SCREENSHOTS").is_none() {
        return;
    }
    let png = client.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Clicks the element matching `css`, finding it again if the page re-rendered it between
/// the look-up and the click (live updates replace table rows).
pub async fn click(client: &Client, css: &str) {
    for _ in 0..20 {
        match find(client, css).await.click().await {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(e)) if e.error == fantoccini::error::ErrorStatus::StaleElementReference => continue,
            Err(e) => panic!("click {css}: {e}"),
        }
    }
    panic!("{css} kept being replaced");
}

/// Chooses `value` in the `<select>` matching `css`, re-finding it like [`click`].
pub async fn choose(client: &Client, css: &str, value: &str) {
    for _ in 0..20 {
        match find(client, css).await.select_by_value(value).await {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(e)) if e.error == fantoccini::error::ErrorStatus::StaleElementReference => continue,
            Err(e) => panic!("choose {value} in {css}: {e}"),
        }
    }
    panic!("{css} kept being replaced");
}
