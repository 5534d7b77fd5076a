//! Metric families and the exposition: collectors write samples into a
//! [`Writer`], which keeps each family's lines together so the body can be
//! encoded once per round and served as is, in the text format (0.0.4) or
//! OpenMetrics 1.0. The two differ only in the family lines (`# HELP`,
//! `# TYPE`) and OpenMetrics' closing `# EOF`: sample lines are the same
//! bytes, so both share them. Uses nothing else of the crate.

use bytes::Bytes;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

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

    /// A counter; its name must end in `_total` (checked at compile time
    /// for the statics it makes), which OpenMetrics requires of a counter's
    /// samples and leaves out of its family name.
    pub const fn counter(name: &'static str, help: &'static str) -> Desc {
        assert!(ends_with(name, "_total"), "a counter's name ends in _total");
        Desc {
            name,
            help,
            kind: Kind::Counter,
        }
    }

    /// The family's name in `format`: OpenMetrics names a counter without
    /// its samples' `_total`.
    pub fn family_name(&self, format: Format) -> &'static str {
        match (self.kind, format) {
            (Kind::Counter, Format::OpenMetrics) => &self.name[..self.name.len() - "_total".len()],
            _ => self.name,
        }
    }
}

const fn ends_with(s: &str, suffix: &str) -> bool {
    let (s, suffix) = (s.as_bytes(), suffix.as_bytes());
    if s.len() < suffix.len() {
        return false;
    }
    let mut i = 0;
    while i < suffix.len() {
        if s[s.len() - suffix.len() + i] != suffix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The exposition formats `/metrics` negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Text, Format::OpenMetrics];

    pub fn index(self) -> usize {
        self as usize
    }

    /// What ends the exposition: `# EOF` for OpenMetrics, nothing for text.
    pub fn end(self) -> &'static str {
        match self {
            Format::Text => "",
            Format::OpenMetrics => "# EOF\n",
        }
    }
}

/// The text format of the process collector (the `prometheus` crate's
/// encoder) in `format`: its counters' family lines without `_total`, and
/// help texts with OpenMetrics' escape of `"`. Sample lines stay as they are.
pub fn from_text_format(text: &str, format: Format) -> String {
    if format == Format::Text {
        return text.to_owned();
    }
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let family = |name: &str| match counters.contains(&name) {
        true => name.strip_suffix("_total").unwrap_or(name).to_owned(),
        false => name.to_owned(),
    };
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = write!(out, "# HELP {} ", family(name));
            for c in help.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('\n');
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let _ = writeln!(out, "# TYPE {} {kind}", family(name));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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

    /// The text exposition (format 0.0.4).
    pub fn encode(&self) -> String {
        Writer::encode_all(&[self], Format::Text)
    }

    /// The samples in `format`, without OpenMetrics' `# EOF` (the caller
    /// ends the exposition).
    pub fn encode_as(&self, format: Format) -> String {
        Writer::encode_all(&[self], format)
    }

    /// The exposition of several writers' samples (e.g. one per cluster) as
    /// one, each family once, in the order families first appear; written
    /// into one buffer of the final size, without merging the writers into
    /// a copy first.
    pub fn encode_all(writers: &[&Writer], format: Format) -> String {
        let layout = layout(writers);
        let size: usize = layout
            .iter()
            .map(|(d, parts)| {
                header_size(d)
                    + parts
                        .iter()
                        .map(|&(w, f)| writers[w].families[f].1.len())
                        .sum::<usize>()
            })
            .sum();
        let mut out = String::with_capacity(size);
        for (desc, parts) in layout {
            write_header(&mut out, desc, format);
            for (w, f) in parts {
                out.push_str(&writers[w].families[f].1);
            }
        }
        out
    }

    /// The same exposition as [`Writer::encode_all`], as pieces to send one
    /// after the other: each family's header, then the writers' own text of
    /// it, shared with the writers rather than copied (at a thousand
    /// segments a copy is megabytes, alive as long as the body is served),
    /// then `tail`. The pieces of both formats share the samples' text.
    pub fn encode_shared(writers: &[Arc<Writer>], tail: Bytes, format: Format) -> Vec<Bytes> {
        let refs: Vec<&Writer> = writers.iter().map(|w| &**w).collect();
        let layout = layout(&refs);
        let mut pieces = Vec::with_capacity(layout.len() * (1 + writers.len()) + 1);
        for (desc, parts) in layout {
            let mut header = String::with_capacity(header_size(desc));
            write_header(&mut header, desc, format);
            pieces.push(Bytes::from(header));
            for (w, f) in parts {
                pieces.push(Bytes::from_owner(FamilyText(writers[w].clone(), f)));
            }
        }
        pieces.push(tail);
        pieces
    }
}

/// One family's samples of a shared writer, as bytes to send.
struct FamilyText(Arc<Writer>, usize);

impl AsRef<[u8]> for FamilyText {
    fn as_ref(&self) -> &[u8] {
        self.0.families[self.1].1.as_bytes()
    }
}

/// The families of `writers`, each once in the order they first appear,
/// with where each writer's text of it is: (writer, family) indices.
fn layout(writers: &[&Writer]) -> Vec<(&'static Desc, Vec<(usize, usize)>)> {
    let mut order: Vec<(&'static Desc, Vec<(usize, usize)>)> = Vec::new();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for (w, writer) in writers.iter().enumerate() {
        for (f, (desc, _)) in writer.families.iter().enumerate() {
            let i = *seen.entry(desc.name).or_insert_with(|| {
                order.push((desc, Vec::new()));
                order.len() - 1
            });
            order[i].1.push((w, f));
        }
    }
    order
}

fn header_size(desc: &Desc) -> usize {
    2 * desc.name.len() + desc.help.len() + 32
}

fn write_header(out: &mut String, desc: &Desc, format: Format) {
    let kind = match desc.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    let name = desc.family_name(format);
    let _ = write!(out, "# HELP {name} ");
    for c in desc.help.chars() {
        match (c, format) {
            ('\\', _) => out.push_str("\\\\"),
            ('\n', _) => out.push_str("\\n"),
            ('"', Format::OpenMetrics) => out.push_str("\\\""),
            (c, _) => out.push(c),
        }
    }
    let _ = writeln!(out, "\n# TYPE {name} {kind}");
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

    #[test]
    fn several_writers_encode_as_one_with_each_family_once() {
        let (mut one, mut two) = (Writer::default(), Writer::default());
        one.sample(&A, "cluster=\"a\"", &[], 1.0);
        two.sample(&B, "", &[], 2.0);
        two.sample(&A, "cluster=\"b\"", &[], 3.0);
        assert_eq!(
            Writer::encode_all(&[&one, &two], Format::Text),
            "# HELP greenplum_test_a A test gauge.\n# TYPE greenplum_test_a gauge\n\
             greenplum_test_a{cluster=\"a\"} 1\ngreenplum_test_a{cluster=\"b\"} 3\n\
             # HELP greenplum_test_b_total A test counter.\n# TYPE greenplum_test_b_total counter\n\
             greenplum_test_b_total 2\n"
        );
        // The same text as pieces; the samples' pieces are the writers' own.
        let text_of_a_in_one = one.families[0].1.as_ptr();
        let (one, two) = (Arc::new(one), Arc::new(two));
        let writers = [one.clone(), two.clone()];
        let pieces = Writer::encode_shared(&writers, Bytes::from("# t\n"), Format::Text);
        assert_eq!(
            pieces.concat(),
            (Writer::encode_all(&[&one, &two], Format::Text) + "# t\n").into_bytes()
        );
        assert!(pieces.iter().any(|p| p.as_ptr() == text_of_a_in_one));
        let om = Writer::encode_shared(&writers, Bytes::new(), Format::OpenMetrics);
        assert!(om.iter().any(|p| p.as_ptr() == text_of_a_in_one));
    }

    #[test]
    fn openmetrics_names_a_counter_family_without_total_and_escapes_quotes_in_help() {
        static Q: Desc = Desc::gauge("greenplum_test_q", "Join on role=\"p\" \\ here.");
        let mut w = Writer::default();
        w.sample(&B, "", &[], 3.0);
        w.sample(&Q, "", &[], 1.0);
        assert_eq!(
            w.encode_as(Format::OpenMetrics),
            "# HELP greenplum_test_b A test counter.\n# TYPE greenplum_test_b counter\n\
             greenplum_test_b_total 3\n\
             # HELP greenplum_test_q Join on role=\\\"p\\\" \\\\ here.\n\
             # TYPE greenplum_test_q gauge\ngreenplum_test_q 1\n"
        );
        assert_eq!(
            w.encode(),
            "# HELP greenplum_test_b_total A test counter.\n# TYPE greenplum_test_b_total counter\n\
             greenplum_test_b_total 3\n\
             # HELP greenplum_test_q Join on role=\"p\" \\\\ here.\n\
             # TYPE greenplum_test_q gauge\ngreenplum_test_q 1\n"
        );
        let process = "# HELP process_cpu_seconds_total Total \"CPU\" time.\n\
                       # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n\
                       # HELP process_threads Threads.\n# TYPE process_threads gauge\n\
                       process_threads 2\n";
        assert_eq!(
            from_text_format(process, Format::OpenMetrics),
            "# HELP process_cpu_seconds Total \\\"CPU\\\" time.\n\
             # TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 1.5\n\
             # HELP process_threads Threads.\n# TYPE process_threads gauge\nprocess_threads 2\n"
        );
        assert_eq!(from_text_format(process, Format::Text), process);
    }
}
