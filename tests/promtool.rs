//! The monitoring artefacts without a running server: promtool on the rules, their
//! unit tests and the example Prometheus configuration; the Kubernetes copy of the
//! rules; runbook sections; the dashboard's metric names and variables.

mod monitoring;

use monitoring::{dashboard, dashboard_queries, repo_path, rules, variable, yaml, RULES_FILE};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use yaml_rust2::Yaml;

/// Runs promtool in the repository root; panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .expect("running promtool (Debian package prometheus; `bash scripts/test` installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

fn rule_test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_path("tests/rules"))
        .expect("tests/rules")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .map(|n| format!("tests/rules/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit tests in tests/rules");
    files
}

fn alerts() -> Vec<Yaml> {
    rules()
        .into_iter()
        .filter(|r| !r["alert"].is_badvalue())
        .collect()
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what} is missing or not a string"))
}

#[test]
fn rules_file_passes_promtool_check() {
    let out = promtool(&["check", "rules", RULES_FILE]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_unit_tests_pass() {
    let files = rule_test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    promtool(&args);
}

#[test]
fn example_prometheus_config_passes_promtool_and_loads_the_rules() {
    let out = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    // check config also checks every rule file the configuration loads.
    assert!(out.contains("greenplum-segments.rules.yml"), "{out}");
    let config = yaml("deploy/prometheus/prometheus.yml");
    let job = str_of(&config["scrape_configs"][0]["job_name"], "job_name");
    // GreenplumExporterDown selects the scrape job by name.
    let down = alerts()
        .into_iter()
        .find(|a| a["alert"].as_str() == Some("GreenplumExporterDown"))
        .expect("GreenplumExporterDown");
    assert!(
        str_of(&down["expr"], "expr").contains(&format!("job=\"{job}\"")),
        "GreenplumExporterDown must select job {job}"
    );
}

#[test]
fn kubernetes_prometheusrule_holds_the_same_groups() {
    let rules = yaml(RULES_FILE);
    let crd = yaml("deploy/kubernetes/prometheusrule.yaml");
    assert_eq!(str_of(&crd["kind"], "kind"), "PrometheusRule");
    assert!(!rules["groups"].is_badvalue());
    assert!(
        rules["groups"] == crd["spec"]["groups"],
        "deploy/kubernetes/prometheusrule.yaml differs from {RULES_FILE}: run scripts/prometheusrule"
    );
}

#[test]
fn every_alert_is_complete_and_has_a_runbook_section() {
    let runbook = monitoring::read("docs/runbook.md");
    let alerts = alerts();
    assert!(alerts.len() >= 13, "{} alerts", alerts.len());
    for a in &alerts {
        let name = str_of(&a["alert"], "alert");
        assert!(!a["for"].is_badvalue(), "{name}: no `for`");
        let severity = str_of(&a["labels"]["severity"], "severity");
        assert!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity}"
        );
        let ann = &a["annotations"];
        assert!(!str_of(&ann["summary"], "summary").is_empty(), "{name}");
        let description = str_of(&ann["description"], "description");
        let labels: &[&str] = if name.starts_with("GreenplumExporter") {
            // About the exporter, not a segment.
            &["instance"]
        } else if name == "GreenplumSegmentSlotsOvercommitted" {
            // About the configuration of a whole cluster.
            &["cluster"]
        } else {
            &["cluster", "content", "dbid", "hostname", "port"]
        };
        for label in labels {
            assert!(
                description.contains(&format!("$labels.{label}")),
                "{name}: description does not name {label}"
            );
        }
        // Samples name an instance by cluster and content only: its dbid,
        // host and port come from the join with greenplum_instance_info.
        // (Or they are of greenplum_instance_info alone.)
        if labels.contains(&"hostname") {
            let expr = str_of(&a["expr"], "expr");
            let info_alone = metric_names(expr) == ["greenplum_instance_info".to_owned()].into();
            assert!(
                info_alone
                    || (expr.contains("group_left") && expr.contains("greenplum_instance_info")),
                "{name}: no join with greenplum_instance_info: {expr}"
            );
        }
        let url = str_of(&ann["runbook_url"], "runbook_url");
        let anchor = format!("docs/runbook.md#{}", name.to_lowercase());
        assert!(url.ends_with(&anchor), "{name}: runbook_url {url}");
        // GitHub derives the anchor from the heading.
        assert!(
            runbook.lines().any(|l| l == format!("## {name}")),
            "docs/runbook.md has no section `## {name}`"
        );
    }
}

#[test]
fn every_alert_has_firing_and_quiet_unit_tests() {
    // alertname -> (a case expecting it, a case expecting nothing)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for file in rule_test_files() {
        let doc = yaml(&file);
        let loaded = doc["rule_files"].as_vec().expect("rule_files");
        assert!(
            loaded
                .iter()
                .any(|f| f.as_str().is_some_and(|f| f.ends_with(RULES_FILE))),
            "{file} does not load {RULES_FILE}"
        );
        for group in doc["tests"].as_vec().expect("tests") {
            for case in group["alert_rule_test"].as_vec().into_iter().flatten() {
                let name = str_of(&case["alertname"], "alertname").to_owned();
                let firing = case["exp_alerts"].as_vec().is_some_and(|v| !v.is_empty());
                let entry = seen.entry(name).or_default();
                if firing {
                    entry.0 = true;
                } else {
                    entry.1 = true;
                }
            }
        }
    }
    for a in alerts() {
        let name = str_of(&a["alert"], "alert");
        let (firing, quiet) = seen.get(name).copied().unwrap_or_default();
        assert!(firing, "{name}: no unit test where it fires");
        assert!(quiet, "{name}: no unit test where it stays quiet");
    }
}

/// Metric names in docs/metrics.md tables.
fn documented_metrics() -> BTreeSet<String> {
    let row = Regex::new(r"^\| `(greenplum_[a-z_]+)` \|").unwrap();
    let names: BTreeSet<String> = monitoring::read("docs/metrics.md")
        .lines()
        .filter_map(|l| row.captures(l).map(|c| c[1].to_owned()))
        .collect();
    assert!(names.len() > 30, "parsed only {names:?}");
    names
}

/// Metric names a PromQL expression uses (string literals ignored).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let strings = Regex::new(r#""[^"]*""#).unwrap();
    let name = Regex::new(r"(?-u:\b)greenplum[a-z_:]*").unwrap();
    let code = strings.replace_all(expr, "\"\"");
    name.find_iter(&code)
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[test]
fn rules_and_dashboard_use_only_documented_metrics() {
    let mut known = documented_metrics();
    let recorded: Vec<String> = rules()
        .iter()
        .filter_map(|r| r["record"].as_str().map(str::to_owned))
        .collect();
    known.extend(recorded.iter().cloned());
    for r in rules() {
        let expr = str_of(&r["expr"], "expr");
        for m in metric_names(expr) {
            assert!(known.contains(&m), "rule uses unknown metric {m}: {expr}");
        }
    }
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() > 20, "{} queries", queries.len());
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: no greenplum metric in {expr}");
        for m in names {
            assert!(known.contains(&m), "{title}: unknown metric {m}");
            used.insert(m);
        }
    }
    for r in &recorded {
        assert!(
            used.contains(r),
            "recording rule {r} is not on the dashboard"
        );
    }
}

#[test]
fn dashboard_filters_by_its_variables() {
    let d = dashboard();
    let ds = variable(&d, "datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in ["cluster", "hostname", "content"] {
        let v = variable(&d, name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["multi"], true, "{name}");
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        let q = v["query"].as_str().expect("query");
        assert!(q.starts_with("label_values("), "{name}: {q}");
    }
    // Series without per-instance labels: only the cluster filter applies to them.
    let cluster_level =
        Regex::new(r"^greenplum_(catalog_instances|cluster_info|exporter_.*|cluster:.*|segment_backends_by_.*|session_.*|config_.*)$").unwrap();
    let check_ds = |p: &serde_json::Value| {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    };
    for p in d["panels"].as_array().unwrap() {
        if p["type"] != "row" {
            check_ds(p);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            check_ds(t);
        }
    }
    for (title, expr) in dashboard_queries(&d) {
        // Every selector of the expression, not just one of them, is filtered:
        // an instance's samples by content, and, since they carry no host,
        // joined with greenplum_instance_info filtered by host.
        let names = metric_names(&expr);
        let per_instance = names
            .iter()
            .any(|m| !cluster_level.is_match(m) && m != "greenplum_instance_info");
        if per_instance {
            assert!(
                names.contains("greenplum_instance_info"),
                "{title}: per-instance series not joined with greenplum_instance_info"
            );
        }
        for m in names {
            let filters: &[&str] = if cluster_level.is_match(&m) {
                &["cluster=~\"$cluster\""]
            } else if m == "greenplum_instance_info" {
                &["cluster=~\"$cluster\"", "hostname=~\"$hostname\""]
            } else {
                &["cluster=~\"$cluster\"", "content=~\"$content\""]
            };
            let selector = Regex::new(&format!(r"(?-u:\b){m}\{{([^}}]*)\}}")).unwrap();
            let found: Vec<_> = selector.captures_iter(&expr).collect();
            assert!(!found.is_empty(), "{title}: {m} without a selector");
            for c in found {
                for f in filters {
                    assert!(c[1].contains(f), "{title}: {m} not filtered by {f}");
                }
            }
        }
    }
}
