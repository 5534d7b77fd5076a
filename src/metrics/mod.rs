//! Metric families and the text exposition: collectors write samples into a
//! [`Writer`], which keeps each family's lines together so the body can be
//! encoded once per round and served as is.

use crate::model::view::{ClusterView, Document};
use axum::body::Bytes;
use prometheus::{Encoder, TextEncoder};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// A metric family: name, help text and type.
#[derive(Debug)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

impl Desc {
    pub const fn gauge(name: &'static str, help: &'static str) -> Desc {
        Desc {
            name,
            help,
            kind: Kind::Gauge,
        }
    }

    pub const fn counter(name: &'static str, help: &'static str) -> Desc {
        Desc {
            name,
            help,
            kind: Kind::Counter,
        }
    }
}

/// Escapes a label value for the text format.
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders `name="value",...` for a fixed set of labels, once.
pub fn render_labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(value, &mut out);
        out.push('"');
    }
    out
}

/// Collects samples grouped by family, in the order families first appear.
#[derive(Default)]
pub struct Writer {
    families: Vec<(&'static Desc, String)>,
    index: HashMap<&'static str, usize>,
}

impl Writer {
    fn body(&mut self, desc: &'static Desc) -> &mut String {
        let i = *self.index.entry(desc.name).or_insert_with(|| {
            self.families.push((desc, String::new()));
            self.families.len() - 1
        });
        &mut self.families[i].1
    }

    /// One sample: `labels` is a pre-rendered label list (may be empty),
    /// `extra` are further labels of this sample.
    pub fn sample(
        &mut self,
        desc: &'static Desc,
        labels: &str,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let body = self.body(desc);
        body.push_str(desc.name);
        if !labels.is_empty() || !extra.is_empty() {
            body.push('{');
            body.push_str(labels);
            for (i, (name, v)) in extra.iter().enumerate() {
                if i > 0 || !labels.is_empty() {
                    body.push(',');
                }
                body.push_str(name);
                body.push_str("=\"");
                escape_label_value(v, body);
                body.push('"');
            }
            body.push('}');
        }
        body.push(' ');
        write_value(body, value);
        body.push('\n');
    }

    /// Appends another writer's samples (e.g. a second cluster's).
    pub fn merge(&mut self, other: &Writer) {
        for (desc, lines) in &other.families {
            self.body(desc).push_str(lines);
        }
    }

    /// The text exposition (format 0.0.4).
    pub fn encode(&self) -> String {
        let size = self.families.iter().map(|(_, b)| b.len() + 128).sum();
        let mut out = String::with_capacity(size);
        for (desc, lines) in &self.families {
            let kind = match desc.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {} {}", desc.name, desc.help);
            let _ = writeln!(out, "# TYPE {} {kind}", desc.name);
            out.push_str(lines);
        }
        out
    }
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

static BUILD_INFO: Desc = Desc::gauge(
    "greenplum_exporter_build_info",
    "The exporter's version; always 1.",
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
    /// The exposition, with a number that changes with every re-encoding.
    body: RwLock<(u64, Bytes)>,
    /// The same, gzipped at the first request that asks for it after a change.
    gzip: Mutex<(u64, Bytes)>,
    /// The exporter process's own CPU, memory and file descriptors, encoded
    /// into the body with every round.
    process: prometheus::Registry,
    /// The same rounds as JSON for `/api/v1/instances`, encoded at the first
    /// request after a round (nobody may look at it), with the round it is of.
    json: Mutex<(u64, Bytes)>,
    ready: AtomicBool,
}

struct State {
    /// Configured clusters; `None` until a cluster's first round.
    clusters: BTreeMap<String, Option<(Writer, ClusterView)>>,
    /// Counts changes of `clusters`, so the JSON knows when it is stale.
    generation: u64,
    reload_ok: bool,
    loaded_at: SystemTime,
}

impl Snapshot {
    pub fn new(clusters: impl IntoIterator<Item = String>) -> Snapshot {
        let snapshot = Snapshot {
            state: Mutex::new(State {
                clusters: clusters.into_iter().map(|c| (c, None)).collect(),
                generation: 1,
                reload_ok: true,
                loaded_at: SystemTime::now(),
            }),
            body: RwLock::new((0, Bytes::new())),
            gzip: Mutex::new((0, Bytes::new())),
            process: process_registry(),
            json: Mutex::new((0, Bytes::new())),
            ready: AtomicBool::new(false),
        };
        snapshot.encode(&snapshot.lock());
        snapshot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces one cluster's samples and re-encodes the body. Ignored for a
    /// cluster no longer configured (its last round ended after a reload).
    pub fn publish(&self, cluster: &str, samples: Writer, view: ClusterView) {
        let mut state = self.lock();
        let Some(slot) = state.clusters.get_mut(cluster) else {
            return;
        };
        *slot = Some((samples, view));
        state.generation += 1;
        if state.clusters.values().all(Option::is_some) {
            self.ready.store(true, Ordering::Release);
        }
        self.encode(&state);
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
        state.generation += 1;
        self.encode(&state);
    }

    /// Records the result of a configuration reload.
    pub fn reloaded(&self, ok: bool) {
        let mut state = self.lock();
        state.reload_ok = ok;
        if ok {
            state.loaded_at = SystemTime::now();
        }
        self.encode(&state);
    }

    fn encode(&self, state: &State) {
        let mut all = Writer::default();
        let version = render_labels(&[("version", env!("CARGO_PKG_VERSION"))]);
        all.sample(&BUILD_INFO, &version, &[], 1.0);
        all.sample(&RELOAD_OK, "", &[], f64::from(u8::from(state.reload_ok)));
        let loaded = state
            .loaded_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        all.sample(&RELOAD_TIME, "", &[], loaded);
        for (w, _) in state.clusters.values().flatten() {
            all.merge(w);
        }
        let mut text = all.encode().into_bytes();
        // Encoding a handful of process gauges into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.process.gather(), &mut text);
        let mut body = self.body.write().unwrap_or_else(|e| e.into_inner());
        *body = (body.0 + 1, Bytes::from(text));
    }

    /// The encoded exposition of the latest rounds (cheap to clone).
    pub fn body(&self) -> Bytes {
        self.body
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// [`Snapshot::body`] gzipped, compressed once per round at most: a
    /// large cluster's body is megabytes, which Prometheus asks for gzipped.
    pub fn body_gzip(&self) -> Bytes {
        let (generation, body) = self.body.read().unwrap_or_else(|e| e.into_inner()).clone();
        // Held while compressing: concurrent scrapes wait rather than repeat the work.
        let mut cached = self.gzip.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != generation {
            *cached = (generation, Bytes::from(gzip(&body)));
        }
        cached.1.clone()
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
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads back one label value of the text format, strictly: the only
    /// escapes are `\\`, `\"` and `\n`, and the value ends at an unescaped quote.
    fn unescape(rendered: &str) -> Option<(String, &str)> {
        let mut out = String::new();
        let mut chars = rendered.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '"' => return Some((out, &rendered[i + 1..])),
                '\n' => return None,
                c => out.push(c),
            }
        }
        None
    }

    #[test]
    fn gzip_body_is_the_body_compressed_once_per_change() {
        use std::io::Read;
        let snapshot = Snapshot::new(["c".to_owned()]);
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

    proptest! {
        /// Names from the database, arbitrary bytes decoded leniently as the
        /// collectors do, survive the exposition unchanged and on one line.
        #[test]
        fn label_values_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            static D: Desc = Desc::gauge("greenplum_test", "t");
            let value = String::from_utf8_lossy(&bytes).into_owned();
            let mut w = Writer::default();
            w.sample(&D, &render_labels(&[("cluster", "c")]), &[("usename", &value)], 1.0);
            let text = w.encode();
            let line = text.lines().nth(2).unwrap();
            prop_assert_eq!(text.lines().count(), 3);
            let rest = line.strip_prefix("greenplum_test{cluster=\"c\",usename=\"").unwrap();
            let (back, tail) = unescape(rest).unwrap();
            prop_assert_eq!(back, value);
            prop_assert_eq!(tail, "} 1");
        }
    }

    static A: Desc = Desc::gauge("greenplum_test_a", "A test gauge.");
    static B: Desc = Desc::counter("greenplum_test_b_total", "A test counter.");

    #[test]
    fn families_stay_together_and_values_are_exact() {
        let labels = render_labels(&[("cluster", "c\"1"), ("content", "0")]);
        let mut w = Writer::default();
        w.sample(&A, &labels, &[("state", "idle")], 7.0);
        w.sample(&B, "", &[], 3.0);
        w.sample(&A, &labels, &[("state", "active")], 0.25);
        assert_eq!(
            w.encode(),
            "# HELP greenplum_test_a A test gauge.\n# TYPE greenplum_test_a gauge\n\
             greenplum_test_a{cluster=\"c\\\"1\",content=\"0\",state=\"idle\"} 7\n\
             greenplum_test_a{cluster=\"c\\\"1\",content=\"0\",state=\"active\"} 0.25\n\
             # HELP greenplum_test_b_total A test counter.\n# TYPE greenplum_test_b_total counter\n\
             greenplum_test_b_total 3\n"
        );
    }
}
