//! Headless Chromium (Debian `chromium`, installed by scripts/test) as the
//! tests run it: the flags known to work on this machine, and a page kept
//! open over the DevTools protocol while a test changes the world around
//! it, read with JavaScript.
//!
//! The protocol runs over `--remote-debugging-pipe`: Chromium reads commands
//! on fd 3 and writes answers on fd 4, each a JSON text ended by a NUL byte.
//! A shell gives it our stdin and stdout pipes as those descriptors.

#![allow(dead_code)] // each test binary uses a different part of this module

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Flags of every run: without the background-networking ones Chromium
/// tries hosts this machine cannot reach.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// How long one answer of the browser may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A page open in a headless Chromium; the browser is killed on drop.
pub struct Page {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Page {
    /// Opens `url` in a new browser, with `env` added to its environment
    /// (`TZ`, say), and waits until the page has loaded.
    pub async fn open(url: &str, env: &[(&str, &str)]) -> Result<Page> {
        let mut page = Page::start(env).await?;
        page.navigate(url).await?;
        // Loaded, and the page asked for rather than the blank one before it.
        let loaded = format!("complete {url}");
        page.wait_for(
            "document.readyState + ' ' + location.href",
            Duration::from_secs(30),
            |s| s == loaded,
        )
        .await?;
        Ok(page)
    }

    /// The HTML of `url` as a browser with script disabled has it, once
    /// the whole page is parsed (`end` is its last text).
    pub async fn html_without_script(url: &str, end: &str) -> Result<String> {
        let mut page = Page::start(&[]).await?;
        let session = page.session.clone();
        page.call(
            Some(&session),
            "Emulation.setScriptExecutionDisabled",
            json!({ "value": true }),
        )
        .await?;
        page.navigate(url).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Read through the DOM domain: evaluating script is what is off.
            // While the page still loads, a node read may be gone already.
            let html = page.outer_html(&session).await.unwrap_or_default();
            if html.contains(end) {
                return Ok(html);
            }
            if Instant::now() > deadline {
                bail!("{url} not parsed to {end:?} in 30 s:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The document's HTML, through the DOM domain.
    async fn outer_html(&mut self, session: &str) -> Result<String> {
        let doc = self
            .call(Some(session), "DOM.getDocument", json!({}))
            .await?;
        let node = doc["root"]["nodeId"].clone();
        let html = self
            .call(Some(session), "DOM.getOuterHTML", json!({ "nodeId": node }))
            .await?;
        Ok(html["outerHTML"].as_str().unwrap_or("").to_owned())
    }

    async fn navigate(&mut self, url: &str) -> Result<()> {
        let session = self.session.clone();
        let r = self
            .call(Some(&session), "Page.navigate", json!({ "url": url }))
            .await?;
        if let Some(e) = r.get("errorText") {
            bail!("navigating to {url}: {e}");
        }
        Ok(())
    }

    /// A browser with one blank page attached.
    async fn start(env: &[(&str, &str)]) -> Result<Page> {
        let profile = tempfile::tempdir()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg("chromium")
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--remote-debugging-pipe", "about:blank"])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context(
            "running chromium (Debian package chromium; `bash scripts/test` installs it)",
        )?;
        let mut page = Page {
            to: child.stdin.take().context("stdin")?,
            from: BufReader::new(child.stdout.take().context("stdout")?),
            child,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = page
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = page
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": id, "flatten": true }),
            )
            .await?;
        page.session = attached["sessionId"]
            .as_str()
            .context("sessionId")?
            .to_owned();
        Ok(page)
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let session = self.session.clone();
        let answer = self
            .call(
                Some(&session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        if let Some(e) = answer.get("exceptionDetails") {
            bail!("{expression} threw: {e}");
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Evaluates `expression` every 50 ms until `pred` holds for its value
    /// (as text), for up to `limit`; returns that value.
    pub async fn wait_for(
        &mut self,
        expression: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression).await?;
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            if pred(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("timed out after {limit:?}: {expression} is {text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's DOM as HTML.
    pub async fn dom(&mut self) -> Result<String> {
        let html = self.eval("document.documentElement.outerHTML").await?;
        Ok(html.as_str().context("outerHTML")?.to_owned())
    }

    /// One protocol command and its result, the events before it skipped.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message)?;
        bytes.push(0);
        self.to.write_all(&bytes).await?;
        self.to.flush().await?;
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let mut raw = Vec::new();
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.from.read_until(0, &mut raw))
                .await
                .with_context(|| {
                    format!("chromium did not answer {method} in {ANSWER_TIMEOUT:?}")
                })??;
            if n == 0 {
                let status = self.child.try_wait()?;
                bail!("chromium closed the pipe ({status:?}) before answering {method}");
            }
            if raw.last() == Some(&0) {
                raw.pop();
            }
            let answer: Value = serde_json::from_slice(&raw)?;
            if answer["id"] != id {
                continue;
            }
            if let Some(e) = answer.get("error") {
                bail!("{method}: {e}");
            }
            return Ok(answer["result"].clone());
        }
    }
}
