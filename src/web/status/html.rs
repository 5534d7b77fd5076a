//! Pieces of HTML the status page is written with: escaped text, names cut
//! with the whole name as a tooltip, times.

use crate::model::time;
use std::fmt;

/// Text or an attribute value, escaped: names come from the database
/// (roles, applications, queries) and may hold markup.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Characters of a name shown in a tile or a table cell; longer ones are cut.
const NAME_CHARS: usize = 24;

/// A role or application name, cut to [`NAME_CHARS`] with an ellipsis and the
/// whole name as its tooltip when longer.
pub struct Name<'a>(pub &'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let too_long = self.0.chars().nth(NAME_CHARS).is_some();
        match self.0.char_indices().nth(NAME_CHARS - 1) {
            Some((end, _)) if too_long => write!(
                f,
                "<span class=\"cut\" title=\"{}\">{}…</span>",
                Esc(self.0),
                Esc(&self.0[..end])
            ),
            _ => write!(f, "{}", Esc(self.0)),
        }
    }
}

/// A moment: date, time and zone (UTC here; the page's script shows it in
/// the reader's own zone).
pub struct Time(pub f64);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\" data-unix=\"{}\">{}</time>",
            time::rfc3339(self.0),
            self.0,
            time::readable(self.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_long_ones_cut_with_a_tooltip() {
        assert_eq!(
            Esc("<b a='1'>&\"").to_string(),
            "&lt;b a=&#39;1&#39;&gt;&amp;&quot;"
        );
        assert_eq!(Name("psql").to_string(), "psql");
        let long = format!("{}<x>", "é".repeat(30));
        assert_eq!(
            Name(&long).to_string(),
            format!(
                "<span class=\"cut\" title=\"{}&lt;x&gt;\">{}…</span>",
                "é".repeat(30),
                "é".repeat(NAME_CHARS - 1)
            )
        );
        assert_eq!(
            Name(&"a".repeat(NAME_CHARS)).to_string(),
            "a".repeat(NAME_CHARS)
        );
    }
}
