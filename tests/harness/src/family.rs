/// The Greenplum family an emulated cluster imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Greenplum 5/6 and Greengage 6: utility mode through `gp_session_role`.
    Gp6,
    /// Greenplum 7, Greengage 7 and Apache Cloudberry: utility mode through `gp_role`.
    Gp7,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Gp6, Family::Gp7];

    /// Value of the `gpemu.family` server setting.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gp6 => "gp6",
            Family::Gp7 => "gp7",
        }
    }

    /// The per-connection setting that selects the session role.
    pub fn role_setting(self) -> &'static str {
        match self {
            Family::Gp6 => "gp_session_role",
            Family::Gp7 => "gp_role",
        }
    }

    /// Startup options for a utility-mode connection.
    pub fn utility_options(self) -> String {
        format!("-c {}=utility", self.role_setting())
    }

    /// Startup options of the other family, which this family refuses.
    pub fn wrong_family_utility_options(self) -> String {
        match self {
            Family::Gp6 => Family::Gp7.utility_options(),
            Family::Gp7 => Family::Gp6.utility_options(),
        }
    }

    /// Startup options of a query executor (QE) of coordinator session `session_id`.
    pub fn executor_options(self, session_id: i32, writer: bool) -> String {
        format!(
            "-c {}=execute -c gp_session_id={session_id} -c gp_is_writer={}",
            self.role_setting(),
            if writer { "on" } else { "off" }
        )
    }

    /// Per-database SQL that gives the catalog views this family's shape.
    pub(crate) fn setup_sql(self) -> &'static str {
        match self {
            Family::Gp6 => include_str!("../../gpemu/sql/gp6.sql"),
            Family::Gp7 => include_str!("../../gpemu/sql/gp7.sql"),
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gp6" => Ok(Family::Gp6),
            "gp7" => Ok(Family::Gp7),
            other => Err(format!("unknown family {other:?} (expected gp6 or gp7)")),
        }
    }
}
