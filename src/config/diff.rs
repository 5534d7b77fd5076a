//! What a reload changed, as the keys the user writes: for the log line
//! that says the reload was applied. Passwords are named, never shown.

use super::{ClusterConfig, Settings};
use std::fmt::Debug;

/// The changes from `old` to `new`, one phrase each, e.g.
/// `cluster "prod": scrape_interval 15s -> 5s`; empty when nothing changed.
pub fn changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if old.web.listen_addresses != new.web.listen_addresses {
        out.push(format!(
            "web.listen_address {} -> {} (after a restart)",
            addresses(&old.web.listen_addresses),
            addresses(&new.web.listen_addresses)
        ));
    }
    if old.web.telemetry_path != new.web.telemetry_path {
        out.push(format!(
            "web.telemetry_path {} -> {} (after a restart)",
            old.web.telemetry_path, new.web.telemetry_path
        ));
    }
    incidents(old, new, &mut out);
    for c in &old.clusters {
        if !new.clusters.iter().any(|n| n.name == c.name) {
            out.push(format!("cluster {:?} removed", c.name));
        }
    }
    for c in &new.clusters {
        match old.clusters.iter().find(|o| o.name == c.name) {
            None => out.push(format!("cluster {:?} added", c.name)),
            Some(o) => cluster(o, c, &mut out),
        }
    }
    out
}

fn addresses(a: &[std::net::SocketAddr]) -> String {
    let all: Vec<String> = a.iter().map(ToString::to_string).collect();
    all.join(",")
}

/// `key old -> new` when they differ.
fn field<T: PartialEq + Debug>(out: &mut Vec<String>, prefix: &str, key: &str, old: &T, new: &T) {
    if old != new {
        out.push(format!("{prefix}{key} {old:?} -> {new:?}"));
    }
}

fn incidents(old: &Settings, new: &Settings, out: &mut Vec<String>) {
    let (o, n, p) = (&old.incidents, &new.incidents, "incidents.");
    field(out, p, "threshold", &o.threshold, &n.threshold);
    field(
        out,
        p,
        "end_after_rounds",
        &o.end_after_rounds,
        &n.end_after_rounds,
    );
    field(out, p, "keep", &o.keep, &n.keep);
    field(out, p, "sessions", &o.sessions, &n.sessions);
    if o.file != n.file {
        out.push(format!(
            "{p}file {:?} -> {:?} (after a restart)",
            o.file, n.file
        ));
    }
    field(
        out,
        p,
        "file_max_bytes",
        &o.file_max_bytes,
        &n.file_max_bytes,
    );
    field(
        out,
        p,
        "query_text_max_chars",
        &o.query_text_chars,
        &n.query_text_chars,
    );
}

fn cluster(o: &ClusterConfig, n: &ClusterConfig, out: &mut Vec<String>) {
    let p = &format!("cluster {:?}: ", n.name);
    field(out, p, "host", &o.host, &n.host);
    field(out, p, "port", &o.port, &n.port);
    field(out, p, "database", &o.database, &n.database);
    field(out, p, "user", &o.user, &n.user);
    if o.password != n.password {
        out.push(format!("{p}password changed"));
    }
    field(out, p, "family", &o.family, &n.family);
    field(
        out,
        p,
        "scrape_interval",
        &o.scrape_interval,
        &n.scrape_interval,
    );
    field(
        out,
        p,
        "instance_timeout",
        &o.instance_timeout,
        &n.instance_timeout,
    );
    field(
        out,
        p,
        "topology_refresh",
        &o.topology_refresh,
        &n.topology_refresh,
    );
    field(out, p, "concurrency", &o.concurrency, &n.concurrency);
    field(out, p, "pool_size", &o.pool_size, &n.pool_size);
    if o.collectors != n.collectors {
        let names = |c: &[super::CollectorName]| {
            let all: Vec<&str> = c.iter().map(|c| c.name()).collect();
            format!("[{}]", all.join(","))
        };
        out.push(format!(
            "{p}collectors {} -> {}",
            names(&o.collectors),
            names(&n.collectors)
        ));
    }
    field(out, p, "top_n", &o.top_n, &n.top_n);
    field(
        out,
        p,
        "prepared_age_threshold",
        &o.prepared_age_threshold,
        &n.prepared_age_threshold,
    );
    field(
        out,
        p,
        "replication_lag_threshold_bytes",
        &o.replication_lag_threshold_bytes,
        &n.replication_lag_threshold_bytes,
    );
    field(
        out,
        p,
        "statement_timeout",
        &o.statement_timeout,
        &n.statement_timeout,
    );
    field(out, p, "lock_timeout", &o.lock_timeout, &n.lock_timeout);
    field(
        out,
        p,
        "connect_timeout",
        &o.connect_timeout,
        &n.connect_timeout,
    );
    if o.tls != n.tls {
        out.push(format!(
            "{p}TLS (sslmode, its files or their content) changed"
        ));
    }
    field(out, p, "peak_window", &o.peak_window, &n.peak_window);
    field(
        out,
        p,
        "log_max_bytes_per_round",
        &o.log_max_bytes_per_round,
        &n.log_max_bytes_per_round,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Overrides, Secret};
    use std::time::Duration;

    fn settings() -> Settings {
        load(&Overrides {
            coordinator_dsn: Some("host=mdw password=pw-first".into()),
            ..Overrides::default()
        })
        .unwrap()
    }

    #[test]
    fn a_reload_names_each_change_and_no_password() {
        let old = settings();
        assert_eq!(changes(&old, &old), Vec::<String>::new());
        let mut new = old.clone();
        let c = &mut new.clusters[0];
        c.scrape_interval = Duration::from_secs(5);
        c.password = Some(Secret::new("pw-second"));
        c.collectors.pop();
        new.incidents.keep = 7;
        let mut added = c.clone();
        added.name = "edw".into();
        new.clusters.push(added);
        let said = changes(&old, &new);
        assert_eq!(
            said,
            [
                "incidents.keep 100 -> 7",
                "cluster \"mdw\": password changed",
                "cluster \"mdw\": scrape_interval 15s -> 5s",
                "cluster \"mdw\": collectors [connections,prepared,locks,settings,sessions,\
                 replication,topology] -> [connections,prepared,locks,settings,sessions,\
                 replication]",
                "cluster \"edw\" added",
            ]
        );
        assert!(!said.join(" ").contains("pw-"));
        assert_eq!(changes(&new, &old)[1], "cluster \"edw\" removed");
    }
}
