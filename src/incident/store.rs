//! The last episodes, in memory and, when `incidents.file` is set, appended
//! to a JSON-lines file: one line when an episode starts and one, the whole
//! record again, when it ends, so a crash loses at most the end. The file is
//! rotated to `<file>.1` by size and read back at start; a line that cannot
//! be read (a crash in the middle of a write) is skipped with a warning.

use crate::config::IncidentSettings;
use crate::model::incident::Incident;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing::warn;

pub struct Store {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Oldest first.
    episodes: VecDeque<Incident>,
    keep: usize,
    file: Option<LogFile>,
    /// Changes with every change of `episodes`, for callers that cache.
    generation: u64,
}

struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    /// Open for appending; `None` after a write failed (retried next time).
    file: Option<File>,
    size: u64,
    /// Whether the last write failed: warn once per run of failures.
    failing: bool,
}

impl Store {
    /// Episodes in memory only (`top`, tests).
    pub fn in_memory(keep: usize) -> Store {
        Store::with(keep, None, VecDeque::new())
    }

    /// The store `settings` ask for, with the episodes the file (and its
    /// rotated predecessor) already holds, the last `keep` of them.
    pub fn open(settings: &IncidentSettings) -> Store {
        let Some(path) = &settings.file else {
            return Store::in_memory(settings.keep);
        };
        let mut episodes = read_back(path);
        while episodes.len() > settings.keep {
            episodes.pop_front();
        }
        let file = LogFile {
            path: path.clone(),
            max_bytes: settings.file_max_bytes,
            file: None,
            size: std::fs::metadata(path).map_or(0, |m| m.len()),
            failing: false,
        };
        Store::with(settings.keep, Some(file), episodes)
    }

    fn with(keep: usize, file: Option<LogFile>, episodes: VecDeque<Incident>) -> Store {
        Store {
            inner: Mutex::new(Inner {
                episodes,
                keep,
                file,
                generation: 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new episode (and appends it to the file).
    pub fn start(&self, incident: Incident) {
        let mut inner = self.lock();
        inner.append(&incident);
        inner.episodes.push_back(incident);
        while inner.episodes.len() > inner.keep {
            inner.episodes.pop_front();
        }
        inner.generation += 1;
    }

    /// Changes an episode in memory (the figures of a lasting episode).
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Incident)) {
        let mut inner = self.lock();
        if let Some(i) = inner.episodes.iter_mut().rev().find(|i| i.id == id) {
            change(i);
            inner.generation += 1;
        }
    }

    /// Ends an episode (and appends its final record); returns it.
    pub fn end(&self, id: &str, at: f64) -> Option<Incident> {
        let mut inner = self.lock();
        let i = inner.episodes.iter_mut().rev().find(|i| i.id == id)?;
        i.ended_at = Some(at);
        let done = i.clone();
        inner.append(&done);
        inner.generation += 1;
        Some(done)
    }

    /// The episodes kept, newest first.
    pub fn list(&self) -> Vec<Incident> {
        self.lock().episodes.iter().rev().cloned().collect()
    }

    /// Changes whenever the list does.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }
}

impl Inner {
    fn append(&mut self, incident: &Incident) {
        let Some(log) = &mut self.file else { return };
        // Serialising plain data cannot fail.
        let mut line = serde_json::to_vec(incident).unwrap_or_default();
        line.push(b'\n');
        match log.write(&line) {
            Ok(()) => log.failing = false,
            Err(e) => {
                if !log.failing {
                    warn!(path = %log.path.display(), error = %e,
                          "cannot append to the incidents file; incidents are kept in memory");
                }
                log.failing = true;
                log.file = None;
            }
        }
    }
}

impl LogFile {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.file = None;
            std::fs::rename(&self.path, rotated(&self.path))?;
            self.size = 0;
        }
        if self.file.is_none() {
            self.file = Some(append_only(&self.path)?);
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// The file episodes are rotated to.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Opened for appending, created readable by the exporter's account only:
/// with query text enabled the records can carry secrets.
fn append_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The episodes of the rotated file and the file, oldest first, the later
/// line of an episode (its end) replacing the earlier.
pub fn read_back(path: &Path) -> VecDeque<Incident> {
    let mut episodes: VecDeque<Incident> = VecDeque::new();
    for file in [rotated(path), path.to_owned()] {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Incident>(line) {
                Ok(i) => match episodes.iter_mut().rev().find(|e| e.id == i.id) {
                    Some(known) => *known = i,
                    None => episodes.push_back(i),
                },
                Err(e) => warn!(path = %file.display(), line = n + 1, error = %e,
                                "skipping an incident line that cannot be read"),
            }
        }
    }
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figures::Slots;
    use crate::model::view::CatalogView;

    fn incident(id: &str, started_at: f64) -> Incident {
        Incident {
            id: id.to_owned(),
            cluster: "c".into(),
            started_at,
            last_below_at: started_at,
            ended_at: None,
            threshold: 0.0,
            instance: CatalogView {
                content: 1,
                dbid: 3,
                role: 'p',
                preferred_role: 'p',
                status: 'u',
                mode: 's',
                hostname: "sdw1".into(),
                address: "10.0.0.1".into(),
                port: 6001,
            },
            figures: Slots::default(),
            rounds: 1,
            lowest_headroom: 0.0,
            peak_used: 25.0,
            sessions: Vec::new(),
            refusals: Vec::new(),
        }
    }

    fn settings(dir: &Path, keep: usize, max: u64) -> IncidentSettings {
        IncidentSettings {
            keep,
            file: Some(dir.join("incidents.jsonl")),
            file_max_bytes: max,
            ..IncidentSettings::default()
        }
    }

    #[test]
    fn episodes_survive_a_restart_and_the_last_n_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 2, 1 << 20);
        let store = Store::open(&s);
        for k in 0..3 {
            store.start(incident(&format!("c/1/{k}"), f64::from(k)));
        }
        store.end("c/1/2", 9.0);
        let back = Store::open(&s).list();
        let ids: Vec<&str> = back.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c/1/2", "c/1/1"]);
        assert_eq!(back[0].ended_at, Some(9.0));
        assert_eq!(back[1].ended_at, None);
    }

    #[test]
    fn a_truncated_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 10, 1 << 20);
        Store::open(&s).start(incident("c/1/1", 1.0));
        let path = s.file.as_ref().unwrap();
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(br#"{"id":"c/1/2","cluster":"c","start"#)
            .unwrap();
        let back = Store::open(&s).list();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].id, "c/1/1");
    }

    #[test]
    fn the_file_rotates_by_size_and_both_parts_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_vec(&incident("c/1/0", 0.0)).unwrap().len() as u64 + 1;
        let s = settings(dir.path(), 10, line * 2);
        let store = Store::open(&s);
        for k in 0..3 {
            store.start(incident(&format!("c/1/{k}"), f64::from(k)));
        }
        let path = s.file.as_ref().unwrap();
        assert!(rotated(path).exists());
        assert!(std::fs::metadata(path).unwrap().len() <= line * 2);
        assert_eq!(Store::open(&s).list().len(), 3);
    }
}
