//! The latest round of every configured cluster, merged and encoded once per
//! round: `/metrics`, its gzipped form and the JSON of `/api/v1/instances` are
//! served from here, so scrapes cost the databases nothing.

use super::peaks::{Observation, Peaks};
use crate::incident::store::Store;
use crate::metrics::{render_labels, Desc, Writer};
use crate::model::incident::IncidentDocument;
use crate::model::view::{ClusterView, Document};
use axum::body::Bytes;
use prometheus::{Encoder, TextEncoder};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

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
    /// The exposition, plain (pieces shared with the clusters' samples) and
    /// gzipped, compressed once per round off the request path: a scrape
    /// only clones handles.
    body: RwLock<Encoded>,
    /// The exporter process's own CPU, memory and file descriptors, encoded
    /// into the body with every round.
    process: prometheus::Registry,
    /// The same rounds as JSON for `/api/v1/instances`, encoded at the first
    /// request after a round (nobody may look at it), with the round it is of.
    json: Mutex<(u64, Bytes)>,
    ready: AtomicBool,
    /// The incidents of every cluster.
    incidents: Arc<Store>,
    /// `/api/v1/incidents`, encoded when asked after a change, with the
    /// store's generation it is of.
    incidents_json: Mutex<(u64, Bytes)>,
    /// The peaks section as last written, plain and gzipped, with the
    /// peaks' generation it is of.
    peaks_text: Mutex<(u64, Bytes, Option<Bytes>)>,
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

#[derive(Default)]
struct Encoded {
    /// [`State::encodings`] when it was encoded: an older one never replaces it.
    encoding: u64,
    plain: Arc<[Bytes]>,
    gzip: Bytes,
}

struct State {
    /// Counts encodings of the body.
    encodings: u64,
    /// Configured clusters; `None` until a cluster's first round.
    /// The samples are shared with encodings in progress, which run
    /// outside the lock.
    clusters: BTreeMap<String, Option<(Arc<Writer>, ClusterView)>>,
    /// Each cluster's peaks between scrapes.
    peaks: BTreeMap<String, Peaks>,
    /// Counts changes of `peaks` (a round, or a scrape that started a new
    /// interval), so a scrape that changes nothing reuses the last text.
    peaks_generation: u64,
    /// Counts changes of `clusters`, so the JSON knows when it is stale.
    generation: u64,
    reload_ok: bool,
    loaded_at: SystemTime,
}

impl Snapshot {
    pub fn new(clusters: impl IntoIterator<Item = String>, incidents: Arc<Store>) -> Snapshot {
        let snapshot = Snapshot {
            state: Mutex::new(State {
                encodings: 0,
                clusters: clusters.into_iter().map(|c| (c, None)).collect(),
                peaks: BTreeMap::new(),
                peaks_generation: 1,
                generation: 1,
                reload_ok: true,
                loaded_at: SystemTime::now(),
            }),
            body: RwLock::new(Encoded::default()),
            process: process_registry(),
            json: Mutex::new((0, Bytes::new())),
            ready: AtomicBool::new(false),
            incidents,
            incidents_json: Mutex::new((0, Bytes::new())),
            peaks_text: Mutex::new((0, Bytes::new(), None)),
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
        *slot = Some((Arc::new(samples), view));
        state
            .peaks
            .entry(cluster.to_owned())
            .or_insert_with(|| Peaks::new(peak_window))
            .observe(Instant::now(), observations, peak_window);
        state.peaks_generation += 1;
        state.generation += 1;
        if state.clusters.values().all(Option::is_some) {
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

    /// The exposition of `pending`, numbered, as pieces: each family's header
    /// and the clusters' own text of it, shared rather than copied.
    fn encode(&self, pending: Pending) -> (u64, Vec<Bytes>) {
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
        let writers: Vec<Arc<Writer>> = std::iter::once(Arc::new(own))
            .chain(pending.writers)
            .collect();
        let mut process = Vec::new();
        // Encoding a handful of process gauges into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.process.gather(), &mut process);
        let pieces = Writer::encode_shared(&writers, Bytes::from(process));
        (pending.encoding, pieces)
    }

    /// Compresses an encoding (outside the state's lock, so scrapes do not
    /// wait for it) and serves it, unless a later one is served already.
    fn store(&self, (encoding, pieces): (u64, Vec<Bytes>)) {
        let gzip = Bytes::from(gzip(&pieces));
        let mut body = self.body.write().unwrap_or_else(|e| e.into_inner());
        if encoding > body.encoding {
            *body = Encoded {
                encoding,
                plain: pieces.into(),
                gzip,
            };
        }
    }

    /// What a scrape of `/metrics` gets, as pieces to send one after the
    /// other: the latest rounds' exposition (encoded and gzipped once per
    /// round), then the peaks, which depend on when the
    /// previous scrape was. A gzip stream may hold several members, so the
    /// peaks are a second, small gzip member. Nothing is copied.
    pub fn scrape(&self, gzip_wanted: bool) -> Vec<Bytes> {
        let mut pieces = match gzip_wanted {
            true => vec![self.body_gzip()],
            false => self.encoded().plain.to_vec(),
        };
        pieces.push(self.peaks(gzip_wanted));
        pieces
    }

    /// The peaks section, written again only when the peaks changed since
    /// it was last written (a round, or the start of a new interval).
    fn peaks(&self, gzip_wanted: bool) -> Bytes {
        // Always the state first, then the cache: one lock order.
        let mut state = self.lock();
        let mut cached = self.peaks_text.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != state.peaks_generation {
            let mut w = Writer::default();
            let mut changed = false;
            for p in state.peaks.values_mut() {
                changed |= p.scrape(&mut w);
            }
            *cached = (state.peaks_generation, Bytes::from(w.encode()), None);
            if changed {
                state.peaks_generation += 1;
            }
        }
        if !gzip_wanted || cached.1.is_empty() {
            return cached.1.clone();
        }
        let text = cached.1.clone();
        cached
            .2
            .get_or_insert_with(|| Bytes::from(gzip(&[text])))
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

    /// The encoded exposition of the latest rounds in one buffer (a copy;
    /// scrapes are served its pieces).
    pub fn body(&self) -> Bytes {
        Bytes::from(self.encoded().plain.concat())
    }

    /// [`Snapshot::body`] gzipped (compressed once per round, when it was
    /// encoded): a large cluster's body is megabytes, which Prometheus asks for gzipped.
    pub fn body_gzip(&self) -> Bytes {
        self.encoded().gzip.clone()
    }

    fn encoded(&self) -> std::sync::RwLockReadGuard<'_, Encoded> {
        self.body.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest rounds as JSON (`{"clusters": [...]}`, see [`ClusterView`]).
    pub fn json(&self) -> Bytes {
        // Always the state first, then the cache: one lock order.
        let state = self.lock();
        let mut cached = self.json.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != state.generation {
            let clusters = state.clusters.values().flatten().map(|(_, v)| v).collect();
            // Serialising plain data into a Vec cannot fail.
            let json = serde_json::to_vec(&Document { clusters }).unwrap_or_default();
            *cached = (state.generation, Bytes::from(json));
        }
        cached.1.clone()
    }

    /// True once every configured cluster has completed a round.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

fn process_registry() -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    registry
        .register(Box::new(collector))
        .expect("a fresh registry accepts the process collector");
    registry
}

/// Fast compression: the body is mostly repeated label sets, which even the
/// lowest level shrinks about tenfold.
fn gzip(pieces: &[Bytes]) -> Vec<u8> {
    use std::io::Write;
    let size: usize = pieces.iter().map(Bytes::len).sum();
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(size / 8), flate2::Compression::fast());
    for piece in pieces {
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(piece);
    }
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_body_is_the_body_compressed_once_per_change() {
        use std::io::Read;
        let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)));
        let gz = snapshot.body_gzip();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &snapshot.body()[..]);
        assert!(plain.contains("greenplum_exporter_build_info"));
        assert!(plain.contains("process_cpu_seconds_total"));
        // Same bytes (the cached buffer) until the body changes.
        assert_eq!(snapshot.body_gzip().as_ptr(), gz.as_ptr());
        snapshot.reloaded(false);
        assert_ne!(snapshot.body_gzip().as_ptr(), gz.as_ptr());
    }

    #[test]
    fn a_scrape_is_the_body_then_the_peaks_written_once_per_change() {
        use std::io::Read;
        let snapshot = Snapshot::new(["c".to_owned()], Arc::new(Store::in_memory(1)));
        let view = ClusterView {
            cluster: "c".into(),
            family: None,
            version: None,
            round_finished_at: None,
            instances: Vec::new(),
            not_collected: Vec::new(),
            attribution: None,
        };
        let round = |used: f64| {
            vec![Observation {
                labels: "cluster=\"c\",content=\"0\"".into(),
                used,
                headroom: 25.0 - used,
            }]
        };
        snapshot.publish("c", Writer::default(), view.clone(), round(25.0), None);
        snapshot.publish("c", Writer::default(), view, round(1.0), None);
        let pieces = snapshot.scrape(false);
        let (peaks, body) = pieces.split_last().unwrap();
        assert_eq!(body.concat(), snapshot.body());
        let text = String::from_utf8(peaks.to_vec()).unwrap();
        assert!(
            text.contains("greenplum_connections_used_peak{cluster=\"c\",content=\"0\"} 25\n"),
            "{text}"
        );
        // The next scrape starts a new interval; the one after writes nothing new.
        let next = snapshot.scrape(false).pop().unwrap();
        assert!(String::from_utf8_lossy(&next).contains("_peak{cluster=\"c\",content=\"0\"} 1\n"));
        let again = snapshot.scrape(false).pop().unwrap();
        assert_eq!(again.as_ptr(), next.as_ptr());
        // Gzipped: two members, which decode to the same text.
        let [gz_body, gz_peaks] = <[Bytes; 2]>::try_from(snapshot.scrape(true)).unwrap();
        let mut both = gz_body.to_vec();
        both.extend_from_slice(&gz_peaks);
        let mut plain = String::new();
        flate2::read::MultiGzDecoder::new(&both[..])
            .read_to_string(&mut plain)
            .unwrap();
        let mut expected = snapshot.body().to_vec();
        expected.extend_from_slice(&again);
        assert_eq!(plain.as_bytes(), &expected[..]);
    }
}
