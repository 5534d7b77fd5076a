//! Metric families and the text exposition: collectors write samples into a
//! [`Writer`], which keeps each family's lines together so the body can be
//! encoded once per round and served as is. Uses nothing else of the crate.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

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
        Writer::encode_all(&[self], "")
    }

    /// The text exposition of several writers' samples (e.g. one per
    /// cluster) as one, each family once, in the order families first
    /// appear, then `tail` (exposition encoded elsewhere); written into one
    /// buffer of the final size, without merging the writers into a copy
    /// first or growing the buffer (a copy of megabytes) for the tail.
    pub fn encode_all(writers: &[&Writer], tail: &str) -> String {
        let mut order: Vec<&'static Desc> = Vec::new();
        let mut seen: HashSet<&'static str> = HashSet::new();
        for w in writers {
            for (desc, _) in &w.families {
                if seen.insert(desc.name) {
                    order.push(desc);
                }
            }
        }
        let lines = |desc: &'static Desc| {
            writers
                .iter()
                .filter_map(move |w| w.index.get(desc.name).map(|&i| w.families[i].1.as_str()))
        };
        let size: usize = order
            .iter()
            .map(|d| 2 * d.name.len() + d.help.len() + 32 + lines(d).map(str::len).sum::<usize>())
            .sum();
        let mut out = String::with_capacity(size + tail.len());
        for desc in order {
            let kind = match desc.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {} {}", desc.name, desc.help);
            let _ = writeln!(out, "# TYPE {} {kind}", desc.name);
            for part in lines(desc) {
                out.push_str(part);
            }
        }
        out.push_str(tail);
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
            Writer::encode_all(&[&one, &two], ""),
            "# HELP greenplum_test_a A test gauge.\n# TYPE greenplum_test_a gauge\n\
             greenplum_test_a{cluster=\"a\"} 1\ngreenplum_test_a{cluster=\"b\"} 3\n\
             # HELP greenplum_test_b_total A test counter.\n# TYPE greenplum_test_b_total counter\n\
             greenplum_test_b_total 2\n"
        );
    }
}
