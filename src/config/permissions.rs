//! Files holding secrets (passwords, private keys, the configuration) should
//! be readable by the exporter's account only; like libpq for the pgpass
//! file, the exporter says so when group or others have any access.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tracing::warn;

/// True when group or others have any access to `path` (mode & 0o077).
pub fn is_exposed(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Warns (at start-up and on every reload) when `path` is exposed; `what`
/// names the setting that points to it.
pub fn warn_if_exposed(what: &str, path: &Path) {
    if is_exposed(path) {
        warn!(
            key = what,
            path = %path.display(),
            "file is accessible by group or others; it should be readable by the exporter's \
             account only (chmod 0600)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_or_other_access_is_exposed() {
        let f = tempfile::NamedTempFile::new().unwrap();
        for (mode, exposed) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(is_exposed(f.path()), exposed, "{mode:o}");
        }
        assert!(!is_exposed(Path::new("/nonexistent/file")));
    }
}
