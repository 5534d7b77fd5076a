//! Who may read the files the exporter is pointed to: the configuration, the
//! web configuration, password files and private keys.
//!
//! What is warned about: a file that others (neither its owner nor its
//! group) can read, or its group can change. A file only its owner and
//! group can read is not: that is how the packages install the
//! configuration (0640, root, the service's group), and how a password file
//! is best given to a service (it reads it and cannot change it). Nor is a
//! file in a directory others cannot enter (the demo's own password file,
//! in a 0700 directory): nobody else can reach it, whatever its mode.
//!
//! When: once per file and state. A reload, which reads every file again,
//! says nothing new unless the file's mode, owner or content changed since
//! the warning (then it is a new state and said again); a file that became
//! private is forgotten, so exposing it again is reported again. A restart
//! says it once more: a warning only ever given once in a deployment's life
//! would be lost in old logs.
//!
//! The pgpass file keeps libpq's own rule (any group or other access: the
//! file is ignored), since the exporter reads it as libpq would.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing::warn;

/// Why `path`'s access deserves a warning, if it does.
pub fn exposure(path: &Path) -> Option<&'static str> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o007 != 0 && reachable_by_others(path) {
        return Some(
            "file is accessible by others; it should be readable by the exporter's account or \
             group only (chmod 0640, or 0600)",
        );
    }
    if mode & 0o020 != 0 {
        return Some(
            "file is writable by its group; it should be readable by the exporter's account or \
             group only (chmod 0640, or 0600)",
        );
    }
    None
}

/// True when every directory above `path` lets others pass (o+x).
fn reachable_by_others(path: &Path) -> bool {
    let Ok(full) = std::fs::canonicalize(path) else {
        return false;
    };
    full.ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Warns once per state of the file (see the module) when `path` is
/// exposed; `what` names the setting that points to it.
pub fn warn_if_exposed(what: &str, path: &Path) {
    match exposure(path) {
        Some(advice) => once(
            Said::Exposed,
            path,
            || warn!(key = what, path = %path.display(), mode = %mode_of(path), "{advice}"),
        ),
        None => forget(Said::Exposed, path),
    }
}

/// libpq's rule for the pgpass file: ignored when group or others have any
/// access to it.
pub fn libpq_ignores(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Says that the pgpass file at `path` is ignored, once per state of it.
pub fn warn_pgpass_ignored(path: &Path) {
    once(Said::PgpassIgnored, path, || {
        warn!(path = %path.display(), mode = %mode_of(path),
              "password file has group or world access and is ignored; permissions should be \
               u=rw (0600) or less")
    });
}

fn mode_of(path: &Path) -> String {
    std::fs::metadata(path).map_or_else(
        |_| "?".into(),
        |m| format!("{:04o}", m.permissions().mode() & 0o7777),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Said {
    Exposed,
    PgpassIgnored,
}

/// What makes a file's state new: mode, owner, group, which file and its content.
type FileState = (u32, u32, u32, u64, i64, i64, u64);

fn state(path: &Path) -> Option<FileState> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.mode(),
        m.uid(),
        m.gid(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.len(),
    ))
}

type Memory = HashMap<(Said, PathBuf), FileState>;

static SAID: Mutex<Option<Memory>> = Mutex::new(None);

fn memory() -> std::sync::MutexGuard<'static, Option<Memory>> {
    SAID.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `say` unless it was run for this file in its present state.
fn once(what: Said, path: &Path, say: impl FnOnce()) {
    let Some(now) = state(path) else { return };
    let mut memory = memory();
    let said = memory.get_or_insert_with(HashMap::new);
    if said.insert((what, path.to_owned()), now) != Some(now) {
        say();
    }
}

fn forget(what: Said, path: &Path) {
    if let Some(said) = memory().as_mut() {
        said.remove(&(what, path.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn others_and_group_writers_are_exposure_the_group_reading_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // Others may pass the directory for the first cases.
        chmod(dir.path(), 0o711);
        let f = dir.path().join("secret");
        std::fs::write(&f, "pw").unwrap();
        for (mode, exposed) in [
            (0o600, false),
            (0o400, false),
            // As the packages install the configuration: root's, the group reads.
            (0o640, false),
            (0o440, false),
            (0o650, false),
            (0o660, true),
            (0o604, true),
            (0o644, true),
            (0o601, true),
        ] {
            chmod(&f, mode);
            assert_eq!(exposure(&f).is_some(), exposed, "{mode:o}");
        }
        assert_eq!(exposure(Path::new("/nonexistent/file")), None);
        // In a directory others cannot enter, others' bits reach nobody.
        chmod(dir.path(), 0o700);
        chmod(&f, 0o644);
        assert_eq!(exposure(&f), None);
        chmod(&f, 0o664);
        assert!(exposure(&f).unwrap().contains("writable by its group"));
        assert!(libpq_ignores(&f));
        chmod(&f, 0o600);
        assert!(!libpq_ignores(&f));
    }

    #[test]
    fn a_warning_is_said_once_per_state_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("conf");
        std::fs::write(&f, "a").unwrap();
        let count = std::cell::Cell::new(0);
        let say = || once(Said::Exposed, &f, || count.set(count.get() + 1));
        say();
        say();
        assert_eq!(count.get(), 1, "the same state again");
        chmod(&f, 0o604);
        say();
        assert_eq!(count.get(), 2, "a new mode");
        std::fs::write(&f, "changed content").unwrap();
        say();
        assert_eq!(count.get(), 3, "a new content");
        forget(Said::Exposed, &f);
        say();
        assert_eq!(count.get(), 4, "forgotten once private");
    }
}
