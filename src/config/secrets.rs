//! Passwords: from a file (warned about when others may read it, see
//! `permissions`) or, as
//! libpq does, from the pgpass file.

use super::{invalid, permissions, ConfigError, Secret};
use std::path::Path;

pub(super) fn read_password_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    permissions::warn_if_exposed(key, path);
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(password))
}

/// libpq's password file (`PGPASSFILE`, default `~/.pgpass`).
pub(super) mod pgpass {
    use crate::config::permissions;
    use std::path::PathBuf;

    pub fn lookup(host: &str, port: u16, database: &str, user: &str) -> Option<String> {
        let path = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
        if permissions::libpq_ignores(&path) {
            // libpq ignores such a file; so do we, saying why.
            permissions::warn_pgpass_ignored(&path);
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        find(&text, host, &port.to_string(), database, user)
    }

    /// First matching `host:port:database:user:password` line; `*` matches
    /// anything, `\:` and `\\` are escapes.
    pub fn find(text: &str, host: &str, port: &str, database: &str, user: &str) -> Option<String> {
        let wanted = [host, port, database, user];
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(split_fields)
            .find(|f| {
                f.len() == 5
                    && f[..4]
                        .iter()
                        .zip(wanted)
                        .all(|(have, want)| have == "*" || have == want)
            })
            .map(|mut f| f.remove(4))
    }

    fn split_fields(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => fields.last_mut().unwrap().extend(chars.next()),
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }
}
