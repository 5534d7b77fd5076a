//! Peaks between scrapes. A segment can fill up and drain again between two
//! Prometheus scrapes (idle reader gangs go after about 18 s); these series
//! keep the highest `used` and the lowest ordinary headroom that any round
//! saw, either since the previous scrape of `/metrics` (the default) or, with
//! `peak_window` (several Prometheus servers scraping), over that window.
//! They are written at scrape time, after the round's cached body.

use crate::metrics::{Desc, Writer};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

static PEAK_USED: Desc = Desc::gauge(
    "greenplum_connections_used_peak",
    "Highest greenplum_connections_used of any round since the previous scrape of /metrics \
     (or within peak_window when configured).",
);
static MIN_HEADROOM: Desc = Desc::gauge(
    "greenplum_connections_headroom_ordinary_min",
    "Lowest greenplum_connections_headroom_ordinary of any round since the previous scrape of \
     /metrics (or within peak_window when configured).",
);

/// One collected instance's figures in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Its pre-rendered instance labels.
    pub labels: String,
    pub used: f64,
    pub headroom: f64,
}

/// One cluster's peaks, by instance labels.
#[derive(Debug, Default)]
pub struct Peaks {
    window: Option<Duration>,
    instances: BTreeMap<String, Track>,
}

#[derive(Debug)]
struct Track {
    /// The latest round's figures: what a scrape serves when no round ran
    /// since the previous one.
    latest: (f64, f64),
    /// The highest used and lowest headroom of the rounds since the previous
    /// scrape; `None` when none ran since.
    peak: Option<(f64, f64)>,
    /// With a window: each round's figures within it, oldest first.
    rounds: VecDeque<(Instant, f64, f64)>,
}

impl Peaks {
    /// `window`: `None` for "since the previous scrape".
    pub fn new(window: Option<Duration>) -> Peaks {
        Peaks {
            window,
            instances: BTreeMap::new(),
        }
    }

    /// Follows a round that ended at `now`. Instances it did not collect are
    /// dropped: no figure older than the last round is served as current.
    pub fn observe(&mut self, now: Instant, round: Vec<Observation>, window: Option<Duration>) {
        if window != self.window {
            *self = Peaks::new(window);
        }
        let mut next = BTreeMap::new();
        for o in round {
            let figures = (o.used, o.headroom);
            let mut track = self.instances.remove(&o.labels).unwrap_or(Track {
                latest: figures,
                peak: None,
                rounds: VecDeque::new(),
            });
            track.latest = figures;
            track.peak = Some(track.peak.map_or(figures, |(used, headroom)| {
                (used.max(o.used), headroom.min(o.headroom))
            }));
            if let Some(w) = self.window {
                track.rounds.push_back((now, o.used, o.headroom));
                while track.rounds.front().is_some_and(|r| now - r.0 > w) {
                    track.rounds.pop_front();
                }
            }
            next.insert(o.labels, track);
        }
        self.instances = next;
    }

    /// Writes each instance's peaks. Since-the-previous-scrape peaks then
    /// start over with the next round: a round already served is never
    /// served again, and a scrape before any new round serves the latest
    /// round's figures, the current ones. Returns whether the next scrape
    /// before a round writes other figures than this one.
    pub fn scrape(&mut self, w: &mut Writer) -> bool {
        let mut changed = false;
        for (labels, t) in &mut self.instances {
            let (used, headroom) = match self.window {
                None => {
                    let served = t.peak.take().unwrap_or(t.latest);
                    changed |= served != t.latest;
                    served
                }
                Some(_) => t
                    .rounds
                    .iter()
                    .fold(t.latest, |(u, h), r| (u.max(r.1), h.min(r.2))),
            };
            w.sample(&PEAK_USED, labels, &[], used);
            w.sample(&MIN_HEADROOM, labels, &[], headroom);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(used: f64, headroom: f64) -> Vec<Observation> {
        vec![Observation {
            labels: "content=\"1\"".into(),
            used,
            headroom,
        }]
    }

    fn scraped(p: &mut Peaks) -> String {
        let mut w = Writer::default();
        p.scrape(&mut w);
        w.encode()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_burst_between_scrapes_shows_once_then_the_interval_starts_over() {
        let t0 = Instant::now();
        let mut p = Peaks::new(None);
        p.observe(t0, round(5.0, 20.0), None);
        p.observe(t0, round(25.0, 0.0), None);
        p.observe(t0, round(6.0, 19.0), None);
        assert_eq!(
            scraped(&mut p),
            "greenplum_connections_used_peak{content=\"1\"} 25 \
             greenplum_connections_headroom_ordinary_min{content=\"1\"} 0"
        );
        assert_eq!(
            scraped(&mut p),
            "greenplum_connections_used_peak{content=\"1\"} 6 \
             greenplum_connections_headroom_ordinary_min{content=\"1\"} 19"
        );
    }

    /// A burst in the latest round before a scrape: that scrape serves it;
    /// the next one, after rounds with no exhausted one among them, serves
    /// those rounds' figures, not the burst again.
    #[test]
    fn a_burst_served_once_is_not_served_by_the_next_scrape() {
        let t0 = Instant::now();
        let mut p = Peaks::new(None);
        p.observe(t0, round(5.0, 20.0), None);
        p.observe(t0, round(25.0, 0.0), None);
        assert_eq!(
            scraped(&mut p),
            "greenplum_connections_used_peak{content=\"1\"} 25 \
             greenplum_connections_headroom_ordinary_min{content=\"1\"} 0"
        );
        p.observe(t0, round(6.0, 19.0), None);
        p.observe(t0, round(4.0, 21.0), None);
        assert_eq!(
            scraped(&mut p),
            "greenplum_connections_used_peak{content=\"1\"} 6 \
             greenplum_connections_headroom_ordinary_min{content=\"1\"} 19"
        );
        // No round since: the current figures, those of the latest round.
        assert_eq!(
            scraped(&mut p),
            "greenplum_connections_used_peak{content=\"1\"} 4 \
             greenplum_connections_headroom_ordinary_min{content=\"1\"} 21"
        );
    }

    #[test]
    fn with_a_window_every_scraper_sees_the_burst_until_it_leaves_the_window() {
        let t0 = Instant::now();
        let w = Some(Duration::from_secs(60));
        let mut p = Peaks::new(w);
        p.observe(t0, round(25.0, 0.0), w);
        p.observe(t0 + Duration::from_secs(30), round(6.0, 19.0), w);
        let first = scraped(&mut p);
        assert_eq!(scraped(&mut p), first, "a second scraper sees the same");
        assert!(first.contains("used_peak{content=\"1\"} 25"), "{first}");
        p.observe(t0 + Duration::from_secs(90), round(7.0, 18.0), w);
        let later = scraped(&mut p);
        assert!(later.contains("used_peak{content=\"1\"} 7"), "{later}");
    }

    #[test]
    fn an_instance_not_collected_has_no_peak() {
        let mut p = Peaks::new(None);
        p.observe(Instant::now(), round(25.0, 0.0), None);
        p.observe(Instant::now(), Vec::new(), None);
        assert_eq!(scraped(&mut p), "");
    }
}
