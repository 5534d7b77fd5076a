//! The monitoring artefacts as the tests read them: the rules file, the Grafana
//! dashboard's queries and how Grafana would expand them.

#![allow(dead_code)] // tests/promtool.rs and tests/e2e.rs use different parts

use serde_json::Value;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

pub const RULES_FILE: &str = "deploy/prometheus/greenplum-segments.rules.yml";
pub const DASHBOARD_FILE: &str = "grafana/dashboards/greenplum-segments.json";

/// A file of the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The single YAML document of a file.
pub fn yaml(relative: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{relative}: expected one YAML document");
    docs.remove(0)
}

/// Every rule of the rules file (recording rules and alerts), in order.
pub fn rules() -> Vec<Yaml> {
    let doc = yaml(RULES_FILE);
    let groups = doc["groups"].as_vec().expect("groups");
    groups
        .iter()
        .flat_map(|g| g["rules"].as_vec().expect("rules").clone())
        .collect()
}

pub fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD_FILE)).expect("the dashboard is JSON")
}

/// `(panel title, PromQL)` of every query target, rows' nested panels included.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_else(|| {
                    panic!("panel {title:?}: target without a PromQL expr: {t}")
                });
                out.push((title.clone(), expr.to_owned()));
            }
            walk(p["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    out
}

/// `(panel title, PromQL)` of the dashboard's first screen: the panels above
/// its second row's header.
pub fn first_row_queries(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"].as_array().expect("panels");
    let y = |p: &Value| p["gridPos"]["y"].as_i64().expect("gridPos.y");
    let second_row = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .nth(1)
        .map(y)
        .expect("a second row");
    let first: Vec<Value> = panels
        .iter()
        .filter(|p| p["type"] != "row" && y(p) < second_row)
        .cloned()
        .collect();
    dashboard_queries(&serde_json::json!({ "panels": first }))
}

/// The dashboard's template variables by name.
pub fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no dashboard variable {name}"))
}

/// A dashboard query as Grafana sends it with every variable at "All" (`.*`).
pub fn expand(expr: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$cluster", ".*")
        .replace("$hostname", ".*")
        .replace("$content", ".*");
    assert!(!out.contains('$'), "unexpanded variable in {expr}");
    out
}

/// `label_values(selector, label)` of a query variable as a PromQL query that
/// returns one series per value.
pub fn label_values_query(query: &str) -> String {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(selector, label): {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    format!("count by ({}) ({})", label.trim(), expand(selector.trim()))
}
