//! Metric families and the text exposition: collectors write samples into a
//! [`Writer`], which keeps each family's lines together so the body can be
//! encoded once per round and served as is. Uses nothing else of the crate.

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

    /// The text exposition (format 0.0.4).
    pub fn encode(&self) -> String {
        Writer::encode_all(&[self])
    }

    /// The text exposition of several writers' samples (e.g. one per
    /// cluster) as one, each family once, in the order families first
    /// appear; written into one buffer of the final size, without merging
    /// the writers into a copy first.
    pub fn encode_all(writers: &[&Writer]) -> String {
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
            write_header(&mut out, desc);
            for (w, f) in parts {
                out.push_str(&writers[w].families[f].1);
            }
        }
        out
    }

    /// The same exposition as [`Writer::encode_all`], as pieces to send one
    /// after the other: each family's header, then the writers' own text of
    /// it, shared with the writers rather than copied (at a thousand
    /// segments a copy is megabytes, alive as long as the body is served).
    pub fn encode_shared(writers: &[Arc<Writer>], tail: Bytes) -> Vec<Bytes> {
        let refs: Vec<&Writer> = writers.iter().map(|w| &**w).collect();
        let layout = layout(&refs);
        let mut pieces = Vec::with_capacity(layout.len() * (1 + writers.len()) + 1);
        for (desc, parts) in layout {
            let mut header = String::with_capacity(header_size(desc));
            write_header(&mut header, desc);
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

fn write_header(out: &mut String, desc: &Desc) {
    let kind = match desc.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    let _ = writeln!(out, "# HELP {} {}", desc.name, desc.help);
    let _ = writeln!(out, "# TYPE {} {kind}", desc.name);
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
            Writer::encode_all(&[&one, &two]),
            "# HELP greenplum_test_a A test gauge.\n# TYPE greenplum_test_a gauge\n\
             greenplum_test_a{cluster=\"a\"} 1\ngreenplum_test_a{cluster=\"b\"} 3\n\
             # HELP greenplum_test_b_total A test counter.\n# TYPE greenplum_test_b_total counter\n\
             greenplum_test_b_total 2\n"
        );
        // The same text as pieces; the samples' pieces are the writers' own.
        let text_of_a_in_one = one.families[0].1.as_ptr();
        let (one, two) = (Arc::new(one), Arc::new(two));
        let pieces = Writer::encode_shared(&[one.clone(), two.clone()], Bytes::from("# t\n"));
        assert_eq!(
            pieces.concat(),
            (Writer::encode_all(&[&one, &two]) + "# t\n").into_bytes()
        );
        assert!(pieces.iter().any(|p| p.as_ptr() == text_of_a_in_one));
    }
}
