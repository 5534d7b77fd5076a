//! Greenplum families: how to recognise one and what differs between them.

use regex::Regex;
use std::sync::OnceLock;

/// The family of a cluster decides the utility-mode option and the catalog
/// shape the collectors' SQL is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Greenplum 5/6, Greengage 6 (PostgreSQL 8.3/9.4 base): `gp_session_role`.
    Gp6,
    /// Greenplum 7, Greengage 7, Apache Cloudberry (PostgreSQL 12+ base): `gp_role`.
    Gp7,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gp6 => "gp6",
            Family::Gp7 => "gp7",
        }
    }

    /// The setting that puts a session in utility mode: no dispatch to the
    /// segments, so the exporter never takes slots it does not hold itself.
    pub fn utility_setting(self) -> &'static str {
        match self {
            Family::Gp6 => "gp_session_role",
            Family::Gp7 => "gp_role",
        }
    }

    /// [`Family::utility_setting`] as a startup option.
    pub fn utility_option(self) -> String {
        format!("-c {}=utility", self.utility_setting())
    }

    /// `idle_in_transaction_session_timeout` came with PostgreSQL 9.6: GP7
    /// has it, GP6 (9.4) does not. On GP6 the exporter never leaves a
    /// transaction open anyway: it runs single autocommit statements, and a
    /// connection whose statement misses its deadline is closed.
    pub fn has_idle_in_transaction_timeout(self) -> bool {
        match self {
            Family::Gp6 => false,
            Family::Gp7 => true,
        }
    }

    /// The family of a server from the `server_version` it reports at
    /// login (`9.4.26` on Greenplum 6, `12.12` on Greenplum 7, `14.4` on
    /// Cloudberry): the PostgreSQL base decides both the utility-mode option
    /// and the catalog shape. Before PostgreSQL 12, `gp_session_role`.
    pub fn from_server_version(server_version: &str) -> Option<Family> {
        let digits: String = server_version
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let major: u32 = digits.parse().ok()?;
        Some(if major < 12 { Family::Gp6 } else { Family::Gp7 })
    }
}

/// The product and version found in `version()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    pub product: String,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    /// Parses `version()` output such as
    /// `PostgreSQL 9.4.26 (Greenplum Database 6.24.3 build ...) on ...`.
    pub fn parse(version: &str) -> Option<ServerVersion> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(
                r"\((Greenplum Database|Apache Cloudberry|Cloudberry Database|Greengage Database) ([0-9]+)\.([0-9]+)\.([0-9]+)",
            )
            .expect("valid regex")
        });
        let caps = re.captures(version)?;
        Some(ServerVersion {
            product: caps[1].to_owned(),
            major: caps[2].parse().ok()?,
            minor: caps[3].parse().ok()?,
            patch: caps[4].parse().ok()?,
        })
    }

    /// Greenplum and Greengage before 7 use `gp_session_role`; 7 and every
    /// Cloudberry release use `gp_role`.
    pub fn family(&self) -> Family {
        if !self.is_cloudberry() && self.major < 7 {
            Family::Gp6
        } else {
            Family::Gp7
        }
    }

    /// Greenplum and Greengage 6 and later (PostgreSQL 9.4+), and every
    /// Cloudberry release. Greenplum 5 is PostgreSQL 8.3: its
    /// `pg_stat_activity` has no `state` column, and it has neither `FILTER`
    /// nor `LATERAL`, which the collectors' SQL needs.
    pub fn is_supported(&self) -> bool {
        self.is_cloudberry() || self.major >= MIN_SUPPORTED_MAJOR
    }

    fn is_cloudberry(&self) -> bool {
        self.product.contains("Cloudberry")
    }
}

/// The oldest Greenplum (and Greengage) major version the exporter supports.
pub const MIN_SUPPORTED_MAJOR: u32 = 6;

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}.{}.{}",
            self.product, self.major, self.minor, self.patch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_real_version_strings() {
        let cases = [
            ("PostgreSQL 9.4.26 (Greenplum Database 6.24.3 build commit:abc) on x86_64-unknown-linux-gnu", Family::Gp6, 6),
            ("PostgreSQL 8.3.23 (Greenplum Database 5.29.1 build commit:x) on x86_64", Family::Gp6, 5),
            ("PostgreSQL 12.12 (Greenplum Database 7.0.0 build commit:x) on x86_64-pc-linux-gnu", Family::Gp7, 7),
            ("PostgreSQL 14.4 (Apache Cloudberry 1.6.0 build 1) on x86_64-pc-linux-gnu", Family::Gp7, 1),
            ("PostgreSQL 14.4 (Cloudberry Database 1.5.4 build 1) on x86_64", Family::Gp7, 1),
            ("PostgreSQL 9.4.26 (Greengage Database 6.28.0 build 1) on x86_64", Family::Gp6, 6),
            ("PostgreSQL 12.22 (Greengage Database 7.3.0 build 1) on x86_64", Family::Gp7, 7),
        ];
        for (text, family, major) in cases {
            let v = ServerVersion::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(v.family(), family, "{text}");
            assert_eq!(v.major, major, "{text}");
        }
    }

    #[test]
    fn families_from_the_server_version_a_login_reports() {
        let cases = [
            ("9.4.26", Some(Family::Gp6)),  // Greenplum 6.24.3, Greengage 6
            ("8.3.23", Some(Family::Gp6)),  // Greenplum 5
            ("12", Some(Family::Gp7)),      // the MatrixDB-based Greenplum 7
            ("12.12", Some(Family::Gp7)),   // Greenplum 7.0.0
            ("14.4", Some(Family::Gp7)),    // Cloudberry
            ("15devel", Some(Family::Gp7)), // a development build
            ("", None),
            ("unknown", None),
        ];
        for (reported, family) in cases {
            assert_eq!(
                Family::from_server_version(reported),
                family,
                "{reported:?}"
            );
        }
    }

    #[test]
    fn greenplum_5_is_not_supported_and_6_on_is() {
        let v = |text: &str| ServerVersion::parse(text).unwrap();
        let gp5 = v("PostgreSQL 8.3.23 (Greenplum Database 5.29.1 build commit:x) on x86_64");
        assert!(!gp5.is_supported());
        assert_eq!(gp5.to_string(), "Greenplum Database 5.29.1");
        assert!(v("PostgreSQL 9.4.26 (Greenplum Database 6.0.0 build x) on x").is_supported());
        assert!(v("PostgreSQL 9.4.26 (Greengage Database 6.28.0 build 1) on x").is_supported());
        assert!(v("PostgreSQL 12.12 (Greenplum Database 7.0.0 build x) on x").is_supported());
        assert!(v("PostgreSQL 14.4 (Apache Cloudberry 1.6.0 build 1) on x").is_supported());
    }

    #[test]
    fn plain_postgresql_is_not_a_greenplum_family() {
        assert_eq!(
            ServerVersion::parse(
                "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu"
            ),
            None
        );
    }
}
