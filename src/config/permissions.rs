//! Who may read the files the exporter is pointed to. Files holding a secret in
//! clear (password files, private keys) should be readable by the exporter's
//! account only; like libpq for the pgpass file, the exporter says so when
//! group or others have any access. The configuration files hold none: inline
//! passwords are refused (they come from password_file, the environment or
//! pgpass), and the web configuration holds bcrypt hashes and the paths of its
//! certificate and key. Their group may read them, as the packages install the
//! configuration (0640, root, the service's group); others' access, or the
//! group's right to change them, is still reported.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tracing::warn;

/// What a file holds, and so who besides its owner may have access to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// A secret in clear: nobody but the owner (0600 or less).
    Secret,
    /// Settings without a secret in clear: the owner, and its group may read
    /// (0640 or less).
    Settings,
}

impl Holds {
    /// The mode bits that should not be set.
    fn forbidden(self) -> u32 {
        match self {
            Holds::Secret => 0o077,
            Holds::Settings => 0o027,
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Holds::Secret => {
                "file is accessible by group or others; it should be readable by the exporter's \
                 account only (chmod 0600)"
            }
            Holds::Settings => {
                "file is accessible by others or writable by its group; it should be readable \
                 by the exporter's account or group only (chmod 0640)"
            }
        }
    }
}

/// True when `path` has any of the access bits that `holds` forbids: for a
/// secret, any access by group or others (mode & 0o077, libpq's rule).
pub fn is_exposed(path: &Path, holds: Holds) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & holds.forbidden() != 0)
}

/// Warns (at start-up and on every reload) when `path` is exposed; `what`
/// names the setting that points to it.
pub fn warn_if_exposed(what: &str, path: &Path, holds: Holds) {
    if is_exposed(path, holds) {
        warn!(key = what, path = %path.display(), "{}", holds.advice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_for_the_owner_and_settings_for_its_group_too() {
        let f = tempfile::NamedTempFile::new().unwrap();
        // (mode, exposed as a secret, exposed as settings)
        for (mode, secret, settings) in [
            (0o600, false, false),
            (0o400, false, false),
            // As the packages install the configuration: root's, the group reads.
            (0o640, true, false),
            (0o440, true, false),
            (0o650, true, false),
            (0o660, true, true),
            (0o604, true, true),
            (0o644, true, true),
            (0o601, true, true),
        ] {
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(is_exposed(f.path(), Holds::Secret), secret, "{mode:o}");
            assert_eq!(is_exposed(f.path(), Holds::Settings), settings, "{mode:o}");
        }
        for holds in [Holds::Secret, Holds::Settings] {
            assert!(!is_exposed(Path::new("/nonexistent/file"), holds));
        }
    }
}
