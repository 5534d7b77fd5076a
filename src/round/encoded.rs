//! One encoding of the exposition, in both formats `/metrics` negotiates:
//! each format's pieces (family lines of its own, sample text shared with
//! the clusters' writers and with the other format) and each one's gzip,
//! compressed once per encoding. The format scrapers asked for last is
//! compressed when the encoding is stored, off the request path; the other
//! at its first request, then shared by all who ask.

use crate::metrics::Format;
use axum::body::Bytes;
use std::sync::{Arc, OnceLock};

pub(super) struct Encoded {
    /// [`super::snapshot::Snapshot`]'s count of encodings when it was made:
    /// an older one never replaces it.
    pub(super) encoding: u64,
    /// By [`Format::index`].
    plain: [Arc<[Bytes]>; 2],
    gzip: [OnceLock<Bytes>; 2],
}

impl Default for Encoded {
    fn default() -> Self {
        Encoded {
            encoding: 0,
            plain: [Arc::from([]), Arc::from([])],
            gzip: [OnceLock::new(), OnceLock::new()],
        }
    }
}

impl Encoded {
    /// `pieces` by [`Format::index`]; `eager` is gzipped now.
    pub(super) fn new(encoding: u64, pieces: [Vec<Bytes>; 2], eager: Format) -> Encoded {
        let [text, om] = pieces;
        let encoded = Encoded {
            encoding,
            plain: [text.into(), om.into()],
            gzip: [OnceLock::new(), OnceLock::new()],
        };
        encoded.gzip(eager);
        encoded
    }

    /// The exposition in `format`, as pieces to send one after the other.
    pub(super) fn plain(&self, format: Format) -> &[Bytes] {
        &self.plain[format.index()]
    }

    /// [`Encoded::plain`] gzipped, compressed at its first request.
    pub(super) fn gzip(&self, format: Format) -> Bytes {
        self.gzip[format.index()]
            .get_or_init(|| Bytes::from(gzip(self.plain(format))))
            .clone()
    }
}

/// Fast compression: the body is mostly repeated label sets, which even the
/// lowest level shrinks about tenfold.
pub(super) fn gzip(pieces: &[Bytes]) -> Vec<u8> {
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

/// What ends a scrape in `format` (OpenMetrics' `# EOF`), plain or as a
/// gzip member of its own (a gzip stream may hold several).
pub(super) fn end(format: Format, gzipped: bool) -> Bytes {
    static EOF_GZIP: OnceLock<Bytes> = OnceLock::new();
    match (format.end(), gzipped) {
        ("", _) => Bytes::new(),
        (end, false) => Bytes::from_static(end.as_bytes()),
        (end, true) => EOF_GZIP
            .get_or_init(|| Bytes::from(gzip(&[Bytes::from_static(end.as_bytes())])))
            .clone(),
    }
}
