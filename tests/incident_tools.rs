//! The incident tools on a cluster in trouble: one segment filled with
//! ordinary clients and a lock wait on another. `top` (table, JSON and the
//! exit status of `--fail-below`), `/api/v1/instances`, and the status page
//! as headless Chromium renders it.

mod browser;
mod support;

use anyhow::{bail, ensure, Context, Result};
use gpemu_harness::{Cluster, ClusterSpec, Dispatch, Family, InstanceSettings, Login, WaitReason};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::{config_for, Exporter, EXPORTER};

const SEG: InstanceSettings = InstanceSettings::SEGMENT;
/// The status page's colour for a segment with (almost) no slot left: `--alert`.
const ALERT_BACKGROUND: &str = "rgb(246, 204, 204)";

fn top(config: &Path, args: &[&str]) -> Result<Output> {
    Command::new(EXPORTER)
        .arg("top")
        .arg(format!("--config.file={}", config.display()))
        .args(args)
        .output()
        .context("running top")
}

fn write_config(dir: &Path, cluster: &Cluster) -> Result<PathBuf> {
    let path = dir.join("top.toml");
    std::fs::write(&path, config_for(cluster, ""))?;
    Ok(path)
}

/// The table's rows as whitespace-separated fields, by content id.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .skip_while(|l| !l.starts_with("CONTENT"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|c| c.parse::<i16>().is_ok()))
        .collect()
}

fn instance(json: &Value, content: i64) -> &Value {
    json["clusters"][0]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["catalog"]["content"] == content)
        .unwrap_or_else(|| panic!("no content {content} in {json}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_the_full_segment_first_and_fails_below_a_threshold() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 2).start()?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &cluster)?;
    let filled = cluster.fill(1).await?;
    let _lock = cluster.lock_wait(0).await?;
    let ordinary = SEG.ordinary_slots() as usize;
    assert_eq!(filled.len(), ordinary);

    let out = top(&config, &[])?;
    let table = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table_rows = rows(&table);
    assert_eq!(table_rows.len(), 3, "{table}");
    // Lowest headroom first: the full segment, with top's own superuser
    // session in a reserved slot on top of the clients.
    let full = &table_rows[0];
    assert_eq!(full[0], "1", "{table}");
    assert_eq!(
        full[3],
        format!("{}/{}", ordinary + 1, SEG.max_connections),
        "{table}"
    );
    assert_eq!(full[4], "0", "{table}");
    assert!(table.contains(&format!("app_user {ordinary}")), "{table}");
    let seg0 = table_rows
        .iter()
        .find(|r| r[0] == "0")
        .context("content 0")?;
    assert_eq!(seg0[7], "1", "one lock waiter on content 0: {table}");
    assert!(table_rows.iter().any(|r| r[0] == "-1"), "{table}");
    assert!(
        table.starts_with("cluster test  gp6  3/3 instances collected"),
        "{table}"
    );

    let out = top(&config, &["--json"])?;
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout)?;
    let seg1 = instance(&json, 1);
    assert_eq!(seg1["up"], true);
    assert_eq!(seg1["connections"]["headroom_ordinary"], 0.0);
    assert_eq!(seg1["connections"]["used"], (ordinary + 1) as f64);
    assert_eq!(
        seg1["top_users"][0],
        serde_json::json!(["app_user", ordinary as f64])
    );
    assert_eq!(instance(&json, 0)["locks"]["waiting"], 1.0);

    // For cron: below the threshold exits 1, naming the instance.
    let out = top(&config, &["--fail-below", "1"])?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("test content 1 (dbid 3): 0 ordinary slots left, below 1"),
        "{stderr}"
    );
    let out = top(&config, &["--fail-below", "0"])?;
    assert_eq!(out.status.code(), Some(0));

    drop(filled);
    cluster.stop(0)?;
    let out = top(&config, &["--fail-below", "1"])?;
    assert_eq!(out.status.code(), Some(3), "a segment not collected");
    let table = String::from_utf8(out.stdout)?;
    let first = &rows(&table)[0];
    assert_eq!(
        first[0], "0",
        "the instance not collected comes first: {table}"
    );
    assert!(table.contains("NOT COLLECTED: connect"), "{table}");

    // The coordinator unreachable with the family fixed in the configuration:
    // top says the configured family, not "unknown".
    cluster.stop(-1)?;
    let fixed = dir.path().join("fixed.toml");
    std::fs::write(&fixed, config_for(&cluster, "family = \"gp6\"\n"))?;
    let out = top(&fixed, &[])?;
    let table = String::from_utf8(out.stdout)?;
    assert!(
        table.starts_with("cluster test  gp6  0/1 instances collected"),
        "{table}"
    );
    Ok(())
}

/// Client backends on every instance, the counting session left out.
async fn backends(cluster: &Cluster) -> Result<Vec<i64>> {
    let mut counts = Vec::new();
    for inst in cluster.instances() {
        counts.push(
            cluster
                .query_i64(
                    inst.content,
                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
                )
                .await?,
        );
    }
    Ok(counts)
}

/// During an incident `top --from` reads the running exporter's API: the
/// same table as `top`, and not one connection to any instance (it is given
/// no configuration at all, so it could not even find the cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_from_a_running_exporter_takes_no_slot() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp7, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    exporter
        .wait_for("all collected", |m| {
            (-1..2).all(|c| m.seg("greenplum_connections_used", c, &[]) == Some(1.0))
        })
        .await?;
    let url = format!("http://127.0.0.1:{}", exporter.port);
    let before = backends(&cluster).await?;

    // Watching for a while: the instances never see it.
    let mut watching = Command::new(EXPORTER)
        .args(["top", "--from", &url, "--watch", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(backends(&cluster).await?, before, "while top --from runs");
    }
    watching.kill()?;
    watching.wait()?;

    let out = Command::new(EXPORTER)
        .args(["top", "--from", &url])
        .output()?;
    let from = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{from}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(backends(&cluster).await?, before, "after top --from");

    // The same table as top's own round, whose own session adds one backend
    // to every instance.
    let dir = tempfile::tempdir()?;
    let own = top(&write_config(dir.path(), &cluster)?, &[])?;
    let own = String::from_utf8(own.stdout)?;
    assert_eq!(own.lines().next(), from.lines().next(), "{own}\n{from}");
    let (own_rows, from_rows) = (rows(&own), rows(&from));
    assert_eq!(own_rows.len(), 3, "{own}");
    assert_eq!(from_rows.len(), own_rows.len(), "{from}");
    for (o, f) in own_rows.iter().zip(&from_rows) {
        assert_eq!(o[..3], f[..3], "content, role, host:port\n{own}\n{from}");
        let max = if o[0] == "-1" {
            InstanceSettings::COORDINATOR.max_connections
        } else {
            SEG.max_connections
        };
        assert_eq!(f[3], format!("1/{max}"), "{from}");
        assert_eq!(o[3], format!("2/{max}"), "{own}");
    }

    let out = Command::new(EXPORTER)
        .args(["top", "--from", &url, "--incidents"])
        .output()?;
    assert_eq!(String::from_utf8(out.stdout)?, "no incidents recorded\n");
    let out = Command::new(EXPORTER)
        .args(["top", "--from", "http://127.0.0.1:1"])
        .output()?;
    assert_eq!(out.status.code(), Some(4), "no exporter there");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_the_full_segment_in_the_alert_colour() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp7, 2).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let _filled = cluster.fill(1).await?;
    exporter
        .wait_for("content 1 full", |m| {
            m.seg("greenplum_connections_headroom_ordinary", 1, &[]) == Some(0.0)
        })
        .await?;

    // The JSON the page reads: the same round as /metrics.
    let (status, body) = exporter.get("/api/v1/instances").await?;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body)?;
    assert_eq!(json["clusters"][0]["cluster"], "test");
    assert_eq!(json["clusters"][0]["family"], "gp7");
    assert_eq!(instance(&json, 1)["connections"]["headroom_ordinary"], 0.0);
    assert_eq!(instance(&json, 0)["connections"]["headroom_ordinary"], 24.0);
    assert_eq!(instance(&json, -1)["up"], true);

    let url = format!("http://127.0.0.1:{}/", exporter.port);
    let dom = chromium(&["--dump-dom"], &url).await?;
    let tile = |content: i16| -> Result<String> {
        let start = dom
            .find(&format!("data-content=\"{content}\""))
            .with_context(|| format!("no tile for content {content}:\n{dom}"))?;
        let open = dom[..start].rfind('<').context("tile start")?;
        let end = dom[start..].find('>').context("tile end")? + start;
        Ok(dom[open..=end].to_owned())
    };
    let full = tile(1)?;
    assert!(full.contains("data-level=\"alert\""), "{full}");
    assert!(
        full.contains(&format!("data-rendered-background=\"{ALERT_BACKGROUND}\"")),
        "{full}"
    );
    let fine = tile(0)?;
    assert!(fine.contains("data-level=\"ok\""), "{fine}");
    assert!(!fine.contains(ALERT_BACKGROUND), "{fine}");
    assert!(dom.contains("href=\"/metrics\""));

    // Kept as a test artefact for a human look.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    screenshot(&url, &shot).await
}

/// Rounds of headroom each instance view carries (`HISTORY_ROUNDS` in
/// src/round/digest.rs): the points of a full line.
const HISTORY_ROUNDS: usize = 40;
/// The limits of the segment the incident filled, which the demo gives content 0.
const INCIDENT_SEGMENT: InstanceSettings = InstanceSettings {
    max_connections: 30,
    superuser_reserved_connections: 10,
    ..SEG
};

/// Polls `/api/v1/instances` (it resets no peak, unlike `/metrics`) until
/// `pred` holds, for up to `limit`.
async fn wait_api(
    exporter: &Exporter,
    what: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        // Nothing to read while the exporter starts.
        let doc = match exporter.get("/api/v1/instances").await {
            Ok((_, body)) => serde_json::from_str(&body)?,
            Err(_) => Value::Null,
        };
        if pred(&doc) {
            return Ok(doc);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The element of the dumped DOM that starts at the tag holding `marker`,
/// up to its closing tag (elements of the same name nested in it included).
fn element<'a>(dom: &'a str, marker: &str) -> Result<&'a str> {
    let at = dom
        .find(marker)
        .with_context(|| format!("no {marker}:\n{dom}"))?;
    let open = dom[..=at].rfind('<').context("element start")?;
    let name: String = dom[open + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let (start, end) = (format!("<{name}"), format!("</{name}>"));
    let mut depth = 0;
    let mut pos = open;
    loop {
        let next_open = dom[pos + 1..].find(&start).map(|i| i + pos + 1);
        let next_close = dom[pos + 1..]
            .find(&end)
            .map(|i| i + pos + 1)
            .context("element end")?;
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                pos = o;
            }
            _ if depth == 0 => return Ok(&dom[open..next_close + end.len()]),
            _ => {
                depth -= 1;
                pos = next_close;
            }
        }
    }
}

/// An attribute of the first element in `html` that has it.
fn attribute<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = html.find(&key)? + key.len();
    Some(&html[at..at + html[at..].find('"')?])
}

/// The incident replayed as `bash scripts/demo replay` replays it: content 0
/// with the incident's limits (30 connections, 10 reserved) filled by five
/// distributed sessions, a sixth refused, all released a few rounds later.
/// The status page then draws every instance's headroom line and marks the
/// recorded episode on content 0's only; the list under the grid names it
/// with its sessions; waiting backends show on their tile, and coordinator
/// sessions queued for a resource group on the coordinator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_draws_headroom_and_marks_the_replayed_incident() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 2)
        .settings_for(0, INCIDENT_SEGMENT)
        .start()?;
    let config = config_for(&cluster, "") + "\n[incidents]\nend_after_rounds = 2\n";
    let exporter = Exporter::start(&config)?;
    let instances = |doc: &Value| doc["clusters"][0]["instances"].as_array().cloned();
    // A full history first: then every line has the same points whenever
    // the page reads it, and the episode stays inside the window.
    wait_api(
        &exporter,
        "full histories",
        Duration::from_secs(90),
        |doc| {
            instances(doc).is_some_and(|all| {
                all.len() == 3
                    && all.iter().all(|i| {
                        i["headroom_history"].as_array().map(Vec::len) == Some(HISTORY_ROUNDS)
                    })
            })
        },
    )
    .await?;

    let burst = cluster.fill_with_sessions(0, 3).await?;
    // The incident's numbers: five sessions, 19 executors and the exporter.
    assert_eq!(burst.executors, [4, 4, 4, 4, 3]);
    let burst_sessions = burst.held.sessions.clone();
    // Full for three rounds, so the episode is more than a sliver on the line.
    let full = |doc: &Value| {
        instances(doc)
            .and_then(|all| all.into_iter().find(|i| i["catalog"]["content"] == 0))
            .and_then(|i| i["headroom_history"].as_array().cloned())
            .is_some_and(|h| h.iter().rev().take(3).all(|p| p[1] == 0.0))
    };
    wait_api(&exporter, "content 0 full", Duration::from_secs(30), full).await?;
    drop(burst);
    // A lock wait on content 1 (on the table the sessions read, so only now).
    let _lock = cluster.lock_wait(1).await?;
    let ended = || async {
        let (_, body) = exporter.get("/api/v1/incidents").await?;
        let doc: Value = serde_json::from_str(&body)?;
        anyhow::Ok(doc["incidents"][0]["ended_at"].is_f64().then_some(doc))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let incidents = loop {
        if let Some(doc) = ended().await? {
            break doc;
        }
        ensure!(std::time::Instant::now() < deadline, "no incident ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let list = incidents["incidents"].as_array().context("incidents")?;
    assert_eq!(list.len(), 1, "{incidents}");
    assert_eq!(list[0]["instance"]["content"], 0, "{incidents}");
    let id = list[0]["id"].as_str().context("id")?;

    // Three coordinator sessions queued for a resource group (declared to the
    // emulation: docs/emulation.md), once the exporter has counted them.
    let _queued = cluster
        .waiting_sessions(-1, 3, WaitReason::ResourceGroup, Login::Ordinary)
        .await?;
    let queued = |doc: &Value| {
        instances(doc)
            .and_then(|all| all.into_iter().find(|i| i["catalog"]["content"] == -1))
            .is_some_and(|c| {
                c["waiting"]
                    .as_array()
                    .is_some_and(|w| w.contains(&serde_json::json!(["resource_group", 3.0])))
            })
    };
    wait_api(
        &exporter,
        "queued sessions",
        Duration::from_secs(30),
        queued,
    )
    .await?;
    let url = format!("http://127.0.0.1:{}/", exporter.port);
    // `top` says the same in a line of its own.
    let top = Command::new(EXPORTER)
        .args(["top", "--from", &url])
        .output()?;
    let top = String::from_utf8(top.stdout)?;
    assert!(
        top.contains("3 coordinator sessions queued for a resource group: each holds a coordinator slot, no segment gangs"),
        "{top}"
    );
    let dom = chromium(&["--dump-dom"], &url).await?;
    for content in [-1, 0, 1] {
        let tile = element(&dom, &format!("data-content=\"{content}\""))?;
        let line = element(tile, "class=\"spark\"")?;
        let points = attribute(line, "points").context("no polyline")?;
        assert_eq!(
            points.split_whitespace().count(),
            HISTORY_ROUNDS,
            "content {content}: {line}"
        );
        assert_eq!(
            attribute(line, "data-points"),
            Some(HISTORY_ROUNDS.to_string().as_str())
        );
        let label = attribute(line, "aria-label").context("aria-label")?;
        assert!(
            label.starts_with("Ordinary headroom went from ")
                && label.contains(&format!("over the last {HISTORY_ROUNDS} rounds")),
            "{label}"
        );
        let episodes = if content == 0 { 1 } else { 0 };
        assert_eq!(
            attribute(line, "data-episodes"),
            Some(episodes.to_string().as_str()),
            "content {content}: {line}"
        );
        assert_eq!(
            line.matches("class=\"episode\"").count(),
            episodes,
            "{line}"
        );
        if content == 0 {
            assert!(line.contains(&format!("data-incident=\"{id}\"")), "{line}");
            assert!(
                label.contains("(lowest 0 of 20); 1 recorded incident marked"),
                "{label}"
            );
        }
        // The lock wait of the harness, in words, on content 1 only.
        assert_eq!(tile.contains("waiting: lock 1"), content == 1, "{tile}");
        assert_eq!(
            tile.contains(
                "3 sessions queued for a resource group: each holds a coordinator slot, no segment gangs"
            ),
            content == -1,
            "{tile}"
        );
        if content == -1 {
            assert!(
                !tile.contains("waiting:"),
                "queued sessions are not listed twice: {tile}"
            );
        }
    }
    let row = element(&dom, &format!("<tr data-incident=\"{id}\""))?;
    assert!(row.contains("seg 0 · dbid 2"), "{row}");
    let first = burst_sessions[0];
    assert!(
        row.contains(&format!(
            "sess {first} app_user (gpemu_harness) idle in transaction: 4 backends here, 8 in all"
        )),
        "{row}"
    );
    assert_eq!(row.matches("backends here").count(), 5, "{row}");

    // Kept as a test artefact for a human look.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page-incident.png");
    screenshot(&url, &shot).await?;

    Ok(())
}

/// Text as a dumped DOM writes it between tags.
fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The figures line of a collected instance's tile, from its API view.
fn figures_line(i: &Value) -> String {
    let c = |name: &str| i["connections"][name].as_f64().unwrap_or(f64::NAN);
    format!(
        "{}/{} used · {} free",
        c("used"),
        c("max_connections"),
        c("headroom_ordinary")
    )
}

/// An application name longer than a tile or a cell shows.
const LONG_APPLICATION: &str = "nightly_revenue_reconciliation_loader_v2";

/// The page as the server writes it (script disabled): every instance's
/// tile with its figures, the dates with their zone, a long application name
/// cut with the whole name as tooltip, a segment's executors explained. With
/// a segment stopped: its tile says why, in the words `top` uses, and with
/// script the times are in the reader's zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_is_written_by_the_server_and_says_why_an_instance_is_down() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp7, 2).start()?;
    // A writer and a reader on every segment, of a session with a long name.
    let session = Dispatch {
        application_name: LONG_APPLICATION,
        ..Dispatch::new(1)
    };
    let _session = cluster.dispatch(&session).await?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let listed = |doc: &Value| {
        doc["clusters"][0]["attribution"]["sessions"][0]["application_name"] == LONG_APPLICATION
    };
    let doc = wait_api(
        &exporter,
        "the session attributed",
        Duration::from_secs(30),
        listed,
    )
    .await?;
    let url = format!("http://127.0.0.1:{}/", exporter.port);

    let dom = browser::Page::html_without_script(&url, "</script>").await?;
    assert!(!dom.contains("Waiting for"), "{dom}");
    for content in [-1, 0, 1] {
        let tile = element(&dom, &format!("data-content=\"{content}\""))?;
        assert_eq!(attribute(tile, "data-level"), Some("ok"), "{tile}");
        let view = instance(&doc, content.into());
        assert!(tile.contains(&figures_line(view)), "{view}\n{tile}");
        // A segment's executors have no application_name: said, not "-".
        let executors = "query executors</abbr> 2";
        assert_eq!(tile.contains(executors), content >= 0, "{tile}");
        assert!(!tile.contains(" - "), "{tile}");
    }
    let meta = element(&dom, "class=\"meta\"")?;
    assert!(meta.starts_with("<p class=\"meta\">gp7 · "), "{meta}");
    let when = regex::Regex::new(
        r#"figures of the round ended <time datetime="[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z" data-unix="[0-9.]+">[0-9]{4}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] UTC</time>"#,
    )?;
    assert!(when.is_match(meta), "{meta}");
    assert!(!dom.contains("family unknown"), "{meta}");
    // Cut to 23 characters and an ellipsis, the whole name as tooltip.
    let cut: String = LONG_APPLICATION.chars().take(23).collect();
    let cell = format!("<span class=\"cut\" title=\"{LONG_APPLICATION}\">{cut}…</span>");
    let sessions = element(&dom, ">Coordinator sessions holding most segment backends<")?;
    assert!(sessions.contains("Coordinator sessions"), "{sessions}");
    assert!(dom.contains(&format!("<td>{cell}</td>")), "{dom}");

    // Content 1 stopped: its tile says why, as `top` does.
    cluster.stop(1)?;
    let down = |doc: &Value| {
        doc["clusters"][0]["instances"]
            .as_array()
            .is_some_and(|all| {
                all.iter()
                    .any(|i| i["catalog"]["content"] == 1 && i["up"] == false)
            })
    };
    wait_api(&exporter, "content 1 down", Duration::from_secs(30), down).await?;
    // The message may change from one round to the next (the connection
    // closed, then refused): the page and `top` are read between two reads
    // of the API that agree.
    let error_now = || async {
        let (_, body) = exporter.get("/api/v1/instances").await?;
        let doc: Value = serde_json::from_str(&body)?;
        anyhow::Ok(instance(&doc, 1)["error"].clone())
    };
    let mut tries = 0;
    let (error, top, dom) = loop {
        tries += 1;
        ensure!(tries <= 5, "the error of content 1 changes every round");
        let before = error_now().await?;
        let top = Command::new(EXPORTER)
            .args(["top", "--from", &url])
            .output()?;
        let dom = chromium_with(&["--dump-dom"], &[("TZ", "Asia/Tokyo")], &url).await?;
        if error_now().await? == before {
            break (before, String::from_utf8(top.stdout)?, dom);
        }
    };
    let (kind, message) = (
        error["kind"].as_str().context("kind")?,
        error["message"].as_str().context("message")?,
    );
    assert!(!message.is_empty(), "{error}");
    assert!(
        top.contains(&format!("NOT COLLECTED: {kind} {message}")),
        "{top}"
    );
    let tile = element(&dom, "data-content=\"1\"")?;
    assert_eq!(attribute(tile, "data-level"), Some("down"), "{tile}");
    let why = format!("not collected: {kind}: {}", html_text(message));
    assert!(tile.contains(&why), "{why}\n{tile}");
    // With script, times in the reader's zone (Tokyo: UTC+9, no summer time).
    let local = regex::Regex::new(
        r#"<time datetime="[0-9]{4}-[0-9][0-9]-[0-9][0-9]T([0-9][0-9]):[0-9][0-9]:[0-9][0-9]Z" data-unix="[0-9.]+">[0-9]{4}-[0-9][0-9]-[0-9][0-9] ([0-9][0-9]):[0-9][0-9]:[0-9][0-9] GMT\+9</time>"#,
    )?;
    let times = local
        .captures(&dom)
        .with_context(|| format!("no local time:\n{dom}"))?;
    let (utc, tokyo): (u32, u32) = (times[1].parse()?, times[2].parse()?);
    assert_eq!(tokyo, (utc + 9) % 24, "{}", &times[0]);
    Ok(())
}

/// The coordinator unreachable from the start: the page says what it does
/// not know, and why the coordinator was not collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_says_what_is_unknown_while_the_coordinator_is_unreachable() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 1).start()?;
    cluster.stop(-1)?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let failed = |doc: &Value| doc["clusters"][0]["instances"][0]["error"]["message"].is_string();
    let doc = wait_api(
        &exporter,
        "the coordinator failing",
        Duration::from_secs(30),
        failed,
    )
    .await?;
    let error = &instance(&doc, -1)["error"];
    let url = format!("http://127.0.0.1:{}/", exporter.port);
    let dom = browser::Page::html_without_script(&url, "</script>").await?;
    let meta = element(&dom, "class=\"meta\"")?;
    assert!(
        meta.starts_with("<p class=\"meta\">family not detected yet (the coordinator was not reached) · figures of the round ended "),
        "{meta}"
    );
    assert!(
        !meta.contains("· ·") && !dom.contains("family unknown"),
        "{meta}"
    );
    let tile = element(&dom, "data-content=\"-1\"")?;
    assert_eq!(attribute(tile, "data-level"), Some("down"), "{tile}");
    let why = format!(
        "not collected: {}: {}",
        error["kind"].as_str().context("kind")?,
        html_text(error["message"].as_str().context("message")?)
    );
    assert!(tile.contains(&why), "{why}\n{tile}");
    Ok(())
}

fn unix_millis() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A page left open while the exporter stops: within two collection
/// intervals it says it is not updating, keeps the last figures, and once
/// they are older than two intervals says so of the cluster too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_raises_a_stale_banner_when_the_exporter_stops() -> Result<()> {
    let cluster = ClusterSpec::new(Family::Gp6, 1).start()?;
    let exporter = Exporter::start(&config_for(&cluster, ""))?;
    let up = |doc: &Value| {
        doc["clusters"][0]["instances"]
            .as_array()
            .is_some_and(|all| all.len() == 2 && all.iter().all(|i| i["up"] == true))
    };
    let doc = wait_api(&exporter, "all collected", Duration::from_secs(30), up).await?;
    let interval_ms = doc["clusters"][0]["interval_seconds"]
        .as_f64()
        .context("interval")?
        * 1000.0;
    assert_eq!(interval_ms, 1000.0, "config_for's scrape_interval");
    let url = format!("http://127.0.0.1:{}/", exporter.port);
    let mut page = browser::Page::open(&url, &[]).await?;
    // The script has replaced the figures at least once.
    let limit = Duration::from_secs(20);
    page.wait_for("document.body.dataset.updated || ''", limit, |s| {
        !s.is_empty()
    })
    .await?;
    assert_eq!(
        page.eval("document.getElementById('stale').hidden").await?,
        true
    );

    // The figures the page shows now (nothing changes on this cluster).
    let (_, body) = exporter.get("/api/v1/instances").await?;
    let doc: Value = serde_json::from_str(&body)?;
    let stopped_at = unix_millis();
    drop(exporter);
    let since = page
        .wait_for("document.body.dataset.staleSince || ''", limit, |s| {
            !s.is_empty()
        })
        .await?;
    let after = since.parse::<f64>()? - stopped_at;
    eprintln!(
        "stale banner {after:.0} ms after the exporter was stopped (interval {interval_ms} ms)"
    );
    assert!(
        after <= 2.0 * interval_ms,
        "the banner came {after} ms after the exporter stopped"
    );
    let banner = page
        .eval("document.getElementById('stale').hidden ? '' : document.getElementById('stale').textContent")
        .await?;
    let banner = banner.as_str().unwrap_or("");
    assert!(
        banner.starts_with("Not updating: the exporter has not answered since "),
        "{banner}"
    );
    // The last figures stay, their age going on.
    let dom = page.dom().await?;
    for content in [-1, 0] {
        let tile = element(&dom, &format!("data-content=\"{content}\""))?;
        assert!(
            tile.contains(&figures_line(instance(&doc, content))),
            "{tile}"
        );
    }
    let old = page
        .wait_for(
            "document.querySelector('section .round-stale').hidden ? '' : document.querySelector('section .round-stale').textContent",
            limit,
            |s| !s.is_empty(),
        )
        .await?;
    assert!(
        old.starts_with("Stale: no collection round has ended for ")
            && old.contains("(one is due every 1 s)"),
        "{old}"
    );
    Ok(())
}

/// Takes a screenshot of `url` into `shot` and checks it has content.
async fn screenshot(url: &str, shot: &Path) -> Result<()> {
    let _ = std::fs::remove_file(shot);
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
        url,
    )
    .await?;
    let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
    ensure!(
        size > 10_000,
        "screenshot {} has {size} bytes",
        shot.display()
    );
    eprintln!("status page screenshot: {}", shot.display());
    Ok(())
}

/// Runs headless Chromium (Debian `chromium`, installed by scripts/test) on
/// `url`, giving the page's script time to fetch and draw.
async fn chromium(args: &[&str], url: &str) -> Result<String> {
    chromium_with(args, &[], url).await
}

/// [`chromium`] with `env` added to the browser's environment.
async fn chromium_with(args: &[&str], env: &[(&str, &str)], url: &str) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args(browser::FLAGS)
        .arg("--virtual-time-budget=10000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .context("chromium did not finish in 90 s")?
        .context("running chromium (Debian package chromium; `bash scripts/test` installs it)")?;
    if !out.status.success() {
        bail!(
            "chromium failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
