//! The latest round of every configured cluster, merged and encoded once per
//! round: `/metrics` (text or OpenMetrics, plain or gzipped) and the JSON of
//! `/api/v1/instances` are served from here, so scrapes cost the databases
//! nothing.

use super::encoded::{self, Encoded};
use super::peaks::{Observation, Peaks};
use crate::incident::store::Store;
use crate::metrics::{self, render_labels, Desc, Writer};
use crate::model::incident::IncidentDocument;
use crate::model::view::{ClusterView, Document};
use axum::body::Bytes;
use prometheus::{Encoder, TextEncoder};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// The formats a scrape may ask for (the HTTP side negotiates them).
pub use crate::metrics::Format;

static BUILD_INFO: Desc = Desc::gauge(
    "greenplum_exporter_build_info",
    "The exporter's version, git commit and build date; always 1.",
);
static RELOAD_OK: Desc = Desc::gauge(
    "greenplum_exporter_config_last_reload_successful",
    "1 when the last configuration reload (SIGHUP) was applied, 0 when it was refused.",
);
static RELOAD_TIME: Desc = Desc::gauge(
    "greenplum_exporter_config_last_reload_success_timestamp_seconds",
    "Unix time the configuration was last loaded successfully (start-up or reload).",
);

/// The latest round of every configured cluster, merged and encoded once per
/// round so that any number of scrapes costs the databases nothing.
pub struct Snapshot {
    state: Mutex<State>,
    /// The exposition in both formats, plain (pieces shared with the
    /// clusters' samples) and gzipped once per round: a scrape only clones
    /// handles.
    body: RwLock<Arc<Encoded>>,
    /// The format the last gzipped scrape asked for ([`Format::index`]):
    /// the next encoding is compressed in it off the request path.
    wanted: AtomicUsize,
    /// The exporter process's own CPU, memory and file descriptors, encoded
    /// into the body with every round; `None` with
    /// `--web.disable-exporter-metrics`, which also leaves out the build
    /// and reload series.
    process: Option<prometheus::Registry>,
    /// The same rounds as JSON for `/api/v1/instances`, encoded at the first
    /// request after a round (nobody may look at it), with the round it is of.
    json: Mutex<(u64, Bytes)>,
    ready: AtomicBool,
    /// The incidents of every cluster.
    incidents: Arc<Store>,
    /// `/api/v1/incidents`, encoded when asked after a change, with the
    /// store's generation it is of.
    incidents_json: Mutex<(u64, Bytes)>,
    /// The peaks section as last written, with the peaks' generation it is
    /// of: in each format, plain and gzipped.
    peaks_text: Mutex<(u64, [Bytes; 2], [Option<Bytes>; 2])>,
}

/// What one encoding of the body needs, taken under the state's lock.
struct Pending {
    /// Its number: [`Snapshot::store`] never serves an older one.
    encoding: u64,
    writers: Vec<Arc<Writer>>,
    reload_ok: bool,
    loaded_at: SystemTime,
}

impl Pending {
    fn of(state: &mut State) -> Pending {
        state.encodings += 1;
        Pending {
            encoding: state.encodings,
            writers: state
                .clusters
                .values()
                .flatten()
                .map(|(w, _)| w.clone())
                .collect(),
            reload_ok: state.reload_ok,
            loaded_at: state.loaded_at,
        }
    }
}

/// A cluster's latest round: its samples and its view, both shared.
type Round = (Arc<Writer>, Arc<ClusterView>);

struct State {
    /// Counts encodings of the body.
    encodings: u64,
    /// Configured clusters; `None` until a cluster's first round.
    /// The samples are shared with encodings in progress, which run
    /// outside the lock.
    clusters: BTreeMap<String, Option<Round>>,
    /// Each cluster's peaks between scrapes.
    peaks: BTreeMap<String, Peaks>,
    /// Counts changes of `peaks` (a round, or a scrape that started a new
    /// interval), so a scrape that changes nothing reuses the last text.
    peaks_generation: u64,
    /// Counts changes of `clusters`, so the JSON knows when it is stale.
    generation: u64,
    reload_ok: bool,
    loaded_at: SystemTime,
    /// Clusters of which an instance was collected at least once.
    collected: BTreeSet<String>,
}

impl Snapshot {
    /// `exporter_metrics`: serve the exporter's own series (process, build,
    /// reload); `--web.disable-exporter-metrics` turns them off.
    pub fn new(
        clusters: impl IntoIterator<Item = String>,
        incidents: Arc<Store>,
        exporter_metrics: bool,
    ) -> Snapshot {
        let snapshot = Snapshot {
            state: Mutex::new(State {
                encodings: 0,
                clusters: clusters.into_iter().map(|c| (c, None)).collect(),
                peaks: BTreeMap::new(),
                peaks_generation: 1,
                generation: 1,
                reload_ok: true,
                loaded_at: SystemTime::now(),
                collected: BTreeSet::new(),
            }),
            body: RwLock::new(Arc::new(Encoded::default())),
            wanted: AtomicUsize::new(Format::Text.index()),
            process: exporter_metrics.then(process_registry),
            json: Mutex::new((0, Bytes::new())),
            ready: AtomicBool::new(false),
            incidents,
            incidents_json: Mutex::new((0, Bytes::new())),
            peaks_text: Mutex::new((0, Default::default(), Default::default())),
        };
        snapshot.encode_and_store(snapshot.lock());
        snapshot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces one cluster's samples and re-encodes the body, and follows
    /// its peaks (over `peak_window`, or since the previous scrape). Ignored
    /// for a cluster no longer configured (its last round ended after a reload).
    pub fn publish(
        &self,
        cluster: &str,
        samples: Writer,
        view: ClusterView,
        observations: Vec<Observation>,
        peak_window: Option<Duration>,
    ) {
        let mut state = self.lock();
        let Some(slot) = state.clusters.get_mut(cluster) else {
            return;
        };
        let collected = view.instances.iter().any(|i| i.up == Some(true));
        *slot = Some((Arc::new(samples), Arc::new(view)));
        if collected {
            state.collected.insert(cluster.to_owned());
        }
        state
            .peaks
            .entry(cluster.to_owned())
            .or_insert_with(|| Peaks::new(peak_window))
            .observe(Instant::now(), observations, peak_window);
        state.peaks_generation += 1;
        state.generation += 1;
        if state.clusters.keys().all(|c| state.collected.contains(c)) {
            self.ready.store(true, Ordering::Release);
        }
        self.encode_and_store(state);
    }

    /// Sets the configured clusters after a reload: removed ones vanish from
    /// the body, new ones appear after their first round.
    pub fn expect_clusters(&self, names: impl IntoIterator<Item = String>) {
        let mut state = self.lock();
        let mut old = std::mem::take(&mut state.clusters);
        state.clusters = names
            .into_iter()
            .map(|n| {
                let samples = old.remove(&n).flatten();
                (n, samples)
            })
            .collect();
        let mut peaks = std::mem::take(&mut state.peaks);
        peaks.retain(|name, _| state.clusters.contains_key(name));
        state.peaks = peaks;
        state.generation += 1;
        self.encode_and_store(state);
    }

    /// Records the result of a configuration reload.
    pub fn reloaded(&self, ok: bool) {
        let mut state = self.lock();
        state.reload_ok = ok;
        if ok {
            state.loaded_at = SystemTime::now();
        }
        self.encode_and_store(state);
    }

    /// Encodes and serves the body of `state` after a change to it: what the
    /// encoding needs is taken under the lock, the encoding and the gzip run
    /// after it is released (at a thousand segments they take milliseconds,
    /// which scrapes, whose peaks need the lock, must not wait for).
    fn encode_and_store(&self, mut state: std::sync::MutexGuard<'_, State>) {
        let pending = Pending::of(&mut state);
        drop(state);
        self.store(self.encode(pending));
    }

    /// The exposition of `pending`, numbered, in both formats, as pieces:
    /// each family's header and the clusters' own text of it, shared rather
    /// than copied.
    fn encode(&self, pending: Pending) -> (u64, [Vec<Bytes>; 2]) {
        let mut writers: Vec<Arc<Writer>> = Vec::with_capacity(pending.writers.len() + 1);
        let mut process = Vec::new();
        if let Some(registry) = &self.process {
            writers.push(Arc::new(own_samples(&pending)));
            // Encoding a handful of process gauges into a Vec cannot fail.
            let _ = TextEncoder::new().encode(&registry.gather(), &mut process);
        }
        writers.extend(pending.writers);
        let process = String::from_utf8_lossy(&process);
        let pieces = Format::ALL.map(|format| {
            let tail = Bytes::from(metrics::from_text_format(&process, format));
            Writer::encode_shared(&writers, tail, format)
        });
        (pending.encoding, pieces)
    }

    /// Compresses an encoding in the format last asked for (outside the
    /// state's lock, so scrapes do not wait for it) and serves it, unless a
    /// later one is served already.
    fn store(&self, (encoding, pieces): (u64, [Vec<Bytes>; 2])) {
        let wanted = Format::ALL[self.wanted.load(Ordering::Relaxed)];
        let encoded = Arc::new(Encoded::new(encoding, pieces, wanted));
        let mut body = self.body.write().unwrap_or_else(|e| e.into_inner());
        if encoding > body.encoding {
            *body = encoded;
        }
    }

    /// What a scrape of `/metrics` in `format` gets, as pieces to send one
    /// after the other: the latest rounds' exposition (encoded and gzipped
    /// once per round), then the peaks, which depend on when the previous
    /// scrape was, then OpenMetrics' `# EOF`. A gzip stream may hold several
    /// members, so the peaks and the end are small gzip members of their
    /// own. Nothing is copied.
    pub fn scrape(&self, format: Format, gzip_wanted: bool) -> Vec<Bytes> {
        let encoded = self.encoded();
        let mut pieces = match gzip_wanted {
            true => {
                self.wanted.store(format.index(), Ordering::Relaxed);
                vec![encoded.gzip(format)]
            }
            false => encoded.plain(format).to_vec(),
        };
        pieces.push(self.peaks(format, gzip_wanted));
        if !format.end().is_empty() {
            pieces.push(encoded::end(format, gzip_wanted));
        }
        pieces
    }

    /// The peaks section, written again only when the peaks changed since
    /// it was last written (a round, or the start of a new interval).
    fn peaks(&self, format: Format, gzip_wanted: bool) -> Bytes {
        // Always the state first, then the cache: one lock order.
        let mut state = self.lock();
        let mut cached = self.peaks_text.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != state.peaks_generation {
            let mut w = Writer::default();
            let mut changed = false;
            for p in state.peaks.values_mut() {
                changed |= p.scrape(&mut w);
            }
            let text = Format::ALL.map(|f| Bytes::from(w.encode_as(f)));
            *cached = (state.peaks_generation, text, Default::default());
            if changed {
                state.peaks_generation += 1;
            }
        }
        let text = cached.1[format.index()].clone();
        if !gzip_wanted || text.is_empty() {
            return text;
        }
        cached.2[format.index()]
            .get_or_insert_with(|| Bytes::from(encoded::gzip(&[text])))
            .clone()
    }

    /// The recorded incidents as JSON (`{"incidents": [...]}`, newest first).
    pub fn incidents_json(&self) -> Bytes {
        let generation = self.incidents.generation();
        let mut cached = self
            .incidents_json
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if cached.0 != generation {
            let document = IncidentDocument {
                incidents: self.incidents.list(),
            };
            // Serialising plain data into a Vec cannot fail.
            let json = serde_json::to_vec(&document).unwrap_or_default();
            *cached = (generation, Bytes::from(json));
        }
        cached.1.clone()
    }

    /// Where the runners record incidents.
    pub fn incidents(&self) -> Arc<Store> {
        self.incidents.clone()
    }

    /// The encoded exposition of the latest rounds in the text format, in
    /// one buffer (a copy; scrapes are served its pieces), without the peaks.
    pub fn body(&self) -> Bytes {
        Bytes::from(self.encoded().plain(Format::Text).concat())
    }

    /// [`Snapshot::body`] gzipped (compressed once per round): a large
    /// cluster's body is megabytes, which Prometheus asks for gzipped.
    pub fn body_gzip(&self) -> Bytes {
        self.encoded().gzip(Format::Text)
    }

    fn encoded(&self) -> Arc<Encoded> {
        self.body.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The latest rounds as JSON (`{"clusters": [...]}`, see [`ClusterView`]).
    pub fn json(&self) -> Bytes {
        // Always the state first, then the cache: one lock order.
        let state = self.lock();
        let mut cached = self.json.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != state.generation {
            let clusters = state
                .clusters
                .values()
                .flatten()
                .map(|(_, v)| v.as_ref())
                .collect();
            // Serialising plain data into a Vec cannot fail.
            let json = serde_json::to_vec(&Document { clusters }).unwrap_or_default();
            *cached = (state.generation, Bytes::from(json));
        }
        cached.1.clone()
    }

    /// Every configured cluster with its latest round's view (`None` before
    /// its first round), by name: shared, not copied.
    pub fn views(&self) -> Vec<(String, Option<Arc<ClusterView>>)> {
        let state = self.lock();
        state
            .clusters
            .iter()
            .map(|(name, c)| (name.clone(), c.as_ref().map(|(_, v)| v.clone())))
            .collect()
    }

    /// True once an instance of every configured cluster was collected (a
    /// round whose coordinator could not be reached does not count); it
    /// stays true after, whatever the databases do.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The configured clusters of which no instance was collected yet.
    pub fn never_collected(&self) -> Vec<String> {
        let state = self.lock();
        let waiting = state
            .clusters
            .keys()
            .filter(|c| !state.collected.contains(*c));
        waiting.cloned().collect()
    }
}

/// The exporter's own series: build and configuration reloads.
fn own_samples(pending: &Pending) -> Writer {
    let mut own = Writer::default();
    let version = render_labels(&[
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", env!("GPSE_GIT_COMMIT")),
        ("build_date", env!("GPSE_BUILD_DATE")),
    ]);
    own.sample(&BUILD_INFO, &version, &[], 1.0);
    own.sample(&RELOAD_OK, "", &[], f64::from(u8::from(pending.reload_ok)));
    let loaded = pending
        .loaded_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    own.sample(&RELOAD_TIME, "", &[], loaded);
    own
}

fn process_registry() -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    registry
        .register(Box::new(collector))
        .expect("a fresh registry accepts the process collector");
    registry
}

#[cfg(test)]
mod tests;
