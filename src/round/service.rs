//! The running exporter: one collection task per cluster, started, changed
//! and stopped as the configuration says (at start-up and on reload).

use crate::config::{ClusterConfig, Settings};
use crate::round::snapshot::Snapshot;
use crate::round::Runner;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

struct Running {
    config: watch::Sender<ClusterConfig>,
    task: JoinHandle<()>,
}

pub struct Service {
    settings: Settings,
    snapshot: Arc<Snapshot>,
    clusters: BTreeMap<String, Running>,
    shutdown: watch::Sender<bool>,
}

impl Service {
    pub fn start(settings: Settings, snapshot: Arc<Snapshot>) -> Service {
        let (shutdown, _) = watch::channel(false);
        let mut service = Service {
            settings: settings.clone(),
            snapshot,
            clusters: BTreeMap::new(),
            shutdown,
        };
        for cluster in settings.clusters {
            service.spawn(cluster);
        }
        service
    }

    fn spawn(&mut self, cfg: ClusterConfig) {
        let name = cfg.name.clone();
        let (config, config_rx) = watch::channel(cfg.clone());
        let runner = Runner::new(cfg, self.snapshot.incidents());
        info!(cluster = %name, "starting collection");
        let task =
            tokio::spawn(runner.run(self.snapshot.clone(), config_rx, self.shutdown.subscribe()));
        self.clusters.insert(name, Running { config, task });
    }

    /// Applies a reloaded configuration: new clusters start, removed ones
    /// stop, changed ones take the new settings between two rounds (keeping
    /// their connections unless connection settings changed).
    pub fn apply(&mut self, new: Settings) {
        if new.web != self.settings.web {
            warn!("web settings changed; they take effect after a restart");
        }
        let names: Vec<String> = self.clusters.keys().cloned().collect();
        for name in names {
            if !new.clusters.iter().any(|c| c.name == name) {
                if let Some(running) = self.clusters.remove(&name) {
                    info!(cluster = %name, "cluster removed from the configuration");
                    // Dropping the sender ends the runner after its current
                    // round; it closes its connections then.
                    drop(running.config);
                }
            }
        }
        for cfg in &new.clusters {
            match self.clusters.get(&cfg.name) {
                Some(running) => {
                    running.config.send_if_modified(|current| {
                        let changed = *current != *cfg;
                        if changed {
                            *current = cfg.clone();
                        }
                        changed
                    });
                }
                None => self.spawn(cfg.clone()),
            }
        }
        self.snapshot
            .expect_clusters(new.clusters.iter().map(|c| c.name.clone()));
        if new.incidents.file != self.settings.incidents.file {
            warn!("incidents.file changed; it takes effect after a restart");
        }
        self.settings = Settings {
            web: self.settings.web.clone(),
            incidents: new.incidents,
            clusters: new.clusters,
        };
    }

    /// Stops every cluster's collection (an in-flight round is abandoned) and
    /// waits until their connections are closed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for (_, running) in self.clusters {
            let _ = running.task.await;
        }
    }
}
