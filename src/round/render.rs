//! What a cluster's last round gives `/metrics` and the views: every
//! target's samples and view, the attribution join, the catalog series and
//! the cluster's own series (rounds, interval, family).

use super::peaks::Observation;
use super::target::{unix_seconds, Target};
use super::Runner;
use crate::collect::{self, lowest_headroom, sessions};
use crate::config::CollectorName;
use crate::metrics::{Desc, Writer};
use crate::model::catalog::SegmentRow;
use crate::model::view::{CatalogView, ClusterView, Name};

static CLUSTER_INFO: Desc = Desc::gauge(
    "greenplum_cluster_info",
    "The cluster's detected family, version() of the coordinator, and the address and port of \
     the active coordinator (the configured one, or its standby after gpactivatestandby).",
);
static RESERVED_USABLE: Desc = Desc::gauge(
    "greenplum_exporter_reserved_connections_usable",
    "1 when the exporter's role may use superuser_reserved_connections (superuser, or member of \
     pg_use_reserved_connections where that exists), so it still connects to a full segment; 0 when not.",
);
static ROUND_DURATION: Desc = Desc::gauge(
    "greenplum_exporter_round_duration_seconds",
    "Wall time of the cluster's last collection round.",
);
static INTERVAL: Desc = Desc::gauge(
    "greenplum_exporter_collect_interval_seconds",
    "The cluster's configured collection interval (scrape_interval).",
);
static ROUNDS: Desc = Desc::counter(
    "greenplum_exporter_rounds_total",
    "Collection rounds completed for the cluster.",
);
static ROUND_TIMESTAMP: Desc = Desc::gauge(
    "greenplum_exporter_last_round_timestamp_seconds",
    "Unix time the cluster's last round finished.",
);
static TARGETS: Desc = Desc::gauge(
    "greenplum_exporter_instances",
    "Instances the exporter tries to collect for the cluster (the coordinator and the primaries \
     of the catalog), whether they answer or not; sum(greenplum_up) is those collected.",
);
static PENDING: Desc = Desc::gauge(
    "greenplum_exporter_pending_collections",
    "Collections still running after their round's deadline (hung or very slow instances); \
     at most one per instance.",
);
static INSTANCE_INFO: Desc = Desc::gauge(
    "greenplum_instance_info",
    "One per catalog row (coordinator, primaries, mirrors, standby): what describes it. Samples \
     of collected instances carry only cluster and content; join them on(cluster, content) with \
     role=\"p\" for the acting primary, catalog series on(cluster, dbid).",
);
static LAG_THRESHOLD: Desc = Desc::gauge(
    "greenplum_replication_lag_threshold_bytes",
    "The cluster's configured replication_lag_threshold_bytes: the mirror replay lag the alert \
     GreenplumMirrorReplayLagHigh fires above.",
);
static TOPOLOGY_REFRESHES: Desc = Desc::counter(
    "greenplum_exporter_topology_refreshes_total",
    "Reads of gp_segment_configuration by result (success or error).",
);

impl Runner {
    /// This cluster's samples after the last round, the same figures as a
    /// view for the status page and `top`, and what the peaks follow. Once
    /// per round: the round's views move into the view, not copied.
    pub fn render(&mut self) -> (Writer, ClusterView, Vec<Observation>) {
        let mut w = Writer::default();
        let mut targets: Vec<&Target> = self.targets.values().collect();
        targets.sort_by_key(|t| (t.row.content, t.row.dbid));
        for t in &targets {
            t.render(&self.cfg, &mut w);
        }
        self.write_memory(&targets, &mut w);
        if let Some(attribution) = &self.digest.attribution {
            let collected = collected(&targets);
            let rows: Vec<_> = collected.iter().map(|(_, r)| *r).collect();
            let instances = collect::instance_rows(CollectorName::Sessions, &rows);
            let ctx = collect::ClusterCtx {
                labels: &self.cluster_labels,
                cluster: &self.cfg,
            };
            sessions::write(attribution, &instances, &ctx, &mut w);
            lowest_headroom::write(&attribution.lowest_headroom, &instances, &mut w);
        }
        if self.cfg.collector_enabled(CollectorName::Replication) {
            let collected = collected(&targets);
            let rows: Vec<_> = collected.iter().map(|(_, r)| *r).collect();
            collect::replication::write_disagreement(&self.catalog, &rows, &mut w);
        }
        if self.cfg.collector_enabled(CollectorName::Topology) {
            collect::topology::write(&self.catalog, &self.cfg.name, &self.cluster_labels, &mut w);
        }
        self.render_info(&targets, &mut w);
        self.render_cluster(&mut w);
        let observations = self
            .digest
            .instances
            .iter()
            .filter(|v| v.up == Some(true))
            .filter_map(|v| {
                let slots = v.connections.as_ref()?;
                let t = self.targets.get(&v.catalog.dbid)?;
                Some(Observation {
                    labels: t.labels.clone(),
                    used: slots.used,
                    headroom: slots.headroom_ordinary,
                })
            })
            .collect();
        let view = ClusterView {
            cluster: self.cfg.name.clone(),
            // The detected family, else the configured one (coordinator not reached yet).
            family: self
                .coordinator
                .as_ref()
                .map(|c| c.family)
                .or(self.cfg.family.fixed())
                .map(|f| Name::Borrowed(f.name())),
            version: self.coordinator.as_ref().map(|c| c.version.clone()),
            round_finished_at: self.stats.last_round_end.map(unix_seconds),
            interval_seconds: self.cfg.scrape_interval.as_secs_f64(),
            instances: self.instances_with_catalog(),
            not_collected: self
                .catalog
                .iter()
                .filter(|r| !r.is_scrape_target())
                .map(CatalogView::of)
                .collect(),
            attribution: self.digest.attribution.take(),
        };
        (w, view, observations)
    }

    /// The round's views, each instance's replication figures with its
    /// content's mirror row of the catalog.
    fn instances_with_catalog(&mut self) -> Vec<crate::model::view::InstanceView> {
        let mut instances = std::mem::take(&mut self.digest.instances);
        for v in &mut instances {
            if let Some(r) = v.replication.as_mut() {
                collect::replication::with_catalog(r, v.catalog.content, &self.catalog);
            }
        }
        instances
    }

    /// `greenplum_instance_info` of every catalog row; before the catalog
    /// was read, of the instances tried (the coordinator).
    fn render_info(&self, targets: &[&Target], w: &mut Writer) {
        let rows: Vec<&SegmentRow> = match self.catalog.is_empty() {
            true => targets.iter().map(|t| &t.row).collect(),
            false => self.catalog.iter().collect(),
        };
        for row in rows {
            let labels = [
                ("cluster", self.cfg.name.as_str()),
                ("content", &row.content.to_string()),
                ("dbid", &row.dbid.to_string()),
                ("role", &row.role.to_string()),
                ("preferred_role", &row.preferred_role.to_string()),
                ("hostname", &row.hostname),
                ("address", &row.address),
                ("port", &row.port.to_string()),
            ];
            w.sample(&INSTANCE_INFO, "", &labels, 1.0);
        }
    }

    fn render_cluster(&self, w: &mut Writer) {
        let l = &self.cluster_labels;
        if let Some(c) = &self.coordinator {
            let port = c.port.to_string();
            let labels = [
                ("family", c.family.name()),
                ("version", c.version.as_str()),
                ("coordinator_address", c.host.as_str()),
                ("coordinator_port", port.as_str()),
            ];
            w.sample(&CLUSTER_INFO, l, &labels, 1.0);
            w.sample(
                &RESERVED_USABLE,
                l,
                &[],
                f64::from(u8::from(c.reserved_usable)),
            );
        }
        w.sample(&ROUND_DURATION, l, &[], self.stats.last_round.as_secs_f64());
        w.sample(&INTERVAL, l, &[], self.cfg.scrape_interval.as_secs_f64());
        w.sample(&ROUNDS, l, &[], self.stats.rounds as f64);
        if let Some(ts) = self.stats.last_round_end {
            w.sample(&ROUND_TIMESTAMP, l, &[], unix_seconds(ts));
        }
        w.sample(&TARGETS, l, &[], self.targets.len() as f64);
        if self.cfg.collector_enabled(CollectorName::Replication) {
            let threshold = self.cfg.replication_lag_threshold_bytes as f64;
            w.sample(&LAG_THRESHOLD, l, &[], threshold);
        }
        let pending = self.targets.values().filter(|t| t.is_pending()).count();
        w.sample(&PENDING, l, &[], pending as f64);
        for (result, n) in [("success", self.refresh.ok), ("error", self.refresh.failed)] {
            w.sample(&TOPOLOGY_REFRESHES, l, &[("result", result)], n as f64);
        }
    }
}

/// The instances of `targets` collected this round, each with its index.
pub(super) fn collected<'a>(targets: &[&'a Target]) -> Vec<(usize, collect::Collected<'a>)> {
    targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, (t.labels.as_str(), t.row.content, t.rows_if_up()?))))
        .collect()
}
