//! The one statement an instance costs per round: the enabled collectors'
//! SQL joined with `UNION ALL`, run over the instance's pooled connection,
//! and its rows decoded into [`Row`]s.

use super::{tag, Row, COLLECTORS};
use crate::config::CollectorName;
use crate::db::pool::Checkout;
use crate::db::pool::Pool;
use crate::model::error::ScrapeError;
use crate::model::family::Family;
use std::borrow::Cow;
use std::sync::Arc;
use tokio_postgres::types::{FromSql, Type};

/// Used when only catalog collectors are on: still proves the instance answers.
const LIVENESS_ONLY: &str = "SELECT NULL::text, NULL::text, NULL::text[], $1::float8 WHERE false";

/// The single statement run on every instance of a family each round. It takes
/// two parameters: `$1 float8`, the stale prepared-transaction age in seconds,
/// and `$2 int4`, the characters of coordinator sessions' query text to read
/// (0: none).
pub fn statement(family: Family, enabled: &[CollectorName]) -> String {
    let parts: Vec<String> = COLLECTORS
        .iter()
        .filter(|c| enabled.contains(&c.name()) && !c.sql(family).is_empty())
        .map(|c| format!("SELECT * FROM (\n{}\n) AS {}", c.sql(family), tag(c.name())))
        .collect();
    if parts.is_empty() {
        return LIVENESS_ONLY.to_owned();
    }
    compact(&parts.join("\nUNION ALL\n"))
}

/// The statement without its comments and indentation, for the wire: every
/// connection keeps buffers the size of the largest message it sent (the
/// statement, once, when it was prepared), and the comments are half the
/// text. Quoted literals and identifiers are kept as they are; each comment
/// or run of white space outside them becomes one space.
fn compact(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
                // A doubled quote inside is an escaped one: closing and
                // reopening gives the same text.
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                chars.by_ref().take_while(|&n| n != '\n').for_each(drop);
                space = true;
            }
            c if c.is_whitespace() => space = true,
            c => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
        }
    }
    out
}

/// The values of the statement's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub stale_after_seconds: f64,
    pub query_text_chars: u32,
}

/// The `log` collector's read of one instance: its family's privilege test and
/// the instance's follower.
#[derive(Clone)]
pub struct LogRead {
    pub sql: &'static str,
    pub follower: super::log::Shared,
}

/// Runs the round's single statement on one instance, then, with the `log`
/// collector, its log read on the same connection (whose failure costs only
/// that collector).
pub async fn run(
    pool: &Pool,
    sql: &Arc<str>,
    params: Params,
    log: Option<LogRead>,
) -> Result<Vec<Row>, ScrapeError> {
    let mut client = Checkout::get(pool).await?;
    let result = async {
        let types = [Type::FLOAT8, Type::INT4];
        let statement = client.prepared(sql, &types).await?;
        let query_text_chars = i32::try_from(params.query_text_chars).unwrap_or(i32::MAX);
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&params.stale_after_seconds, &query_text_chars];
        let rows = client.query(&statement, &values).await?;
        let mut rows: Vec<Row> = rows.iter().map(decode_row).collect::<Result<_, _>>()?;
        if let Some(log) = &log {
            let (more, error) = super::log::read(client.client(), log.sql, &log.follower).await;
            rows.extend(more);
            if let Some(e) = error {
                log.follower
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last_error = Some(e);
            }
        }
        Ok(rows)
    }
    .await;
    client.release();
    result
}

/// A row of the statement. The collector and item columns are the SQL's own
/// constants: they are matched to this crate's, so the thousands of rows a
/// large cluster gives per round cost no allocation for them.
fn decode_row(r: &tokio_postgres::Row) -> Result<Row, ScrapeError> {
    let collector = r.try_get::<_, Option<&str>>(0)?.unwrap_or_default();
    let item = r.try_get::<_, Option<&str>>(1)?.unwrap_or_default();
    Ok(Row {
        collector: COLLECTORS
            .iter()
            .map(|c| tag(c.name()))
            .find(|t| *t == collector)
            .unwrap_or(""),
        item: match ITEMS.binary_search(&item) {
            Ok(i) => Cow::Borrowed(ITEMS[i]),
            Err(_) => Cow::Owned(item.to_owned()),
        },
        labels: r
            .try_get::<_, Option<Vec<LossyText>>>(2)?
            .map(|v| v.into_iter().map(|t| t.0).collect())
            .unwrap_or_default(),
        value: r.try_get::<_, Option<f64>>(3)?.unwrap_or(0.0),
    })
}

/// Every item the collectors' SQL names, sorted: decoded without allocating.
/// (Another item still works, as an owned string.)
const ITEMS: [&str; 27] = [
    "blockers",
    "by_application",
    "by_database",
    "by_session",
    "by_user",
    "cached_segworkers_threshold",
    "coordinator_session",
    "count",
    "lag_bytes",
    "lag_seconds",
    "local",
    "longest_wait",
    "max",
    "max_connections",
    "numeric",
    "oldest_active",
    "oldest_age",
    "oldest_idle_in_transaction",
    "ordinary_slots",
    "stale",
    "state",
    "superuser_reserved_connections",
    "sync_state",
    "text",
    "waiters",
    "waiting",
    "walsenders",
];

/// Text decoded leniently: names from the database (roles, databases,
/// applications) may hold bytes that are not UTF-8 when a database uses
/// SQL_ASCII, and one such name must not cost the instance its figures.
struct LossyText(String);

impl<'a> FromSql<'a> for LossyText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(LossyText(String::from_utf8_lossy(raw).into_owned()))
    }

    /// A NULL element of a label array is an empty label value.
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(LossyText(String::new()))
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_drops_comments_and_spacing_but_not_quoted_text() {
        let sql = "-- heading\nSELECT  'a -- b',\n    \"x  y\", 'it''s'  -- why\nFROM t\n  WHERE n>-1 -- end";
        assert_eq!(
            compact(sql),
            "SELECT 'a -- b', \"x  y\", 'it''s' FROM t WHERE n>-1"
        );
    }

    #[test]
    fn the_statement_sent_is_compact() {
        for family in [Family::Gp6, Family::Gp7] {
            let all: Vec<CollectorName> = COLLECTORS.iter().map(|c| c.name()).collect();
            let sql = statement(family, &all);
            assert!(!sql.contains("--"), "{sql}");
            assert!(!sql.contains("  ") && !sql.contains('\n'), "{sql}");
            // Smaller than the connection's 8 kB write buffer, which a
            // larger statement doubles for the life of the connection.
            assert!(sql.len() < 7 * 1024, "{} bytes", sql.len());
        }
    }

    /// The items of `SELECT '<collector>', '<item>'` lines and of `VALUES` rows
    /// of every collector's SQL.
    fn items_in_sql() -> Vec<String> {
        let sql = [
            include_str!("connections.sql"),
            include_str!("locks_gp6.sql"),
            include_str!("locks_gp7.sql"),
            include_str!("prepared.sql"),
            include_str!("replication_gp6.sql"),
            include_str!("replication_gp7.sql"),
            include_str!("sessions.sql"),
            include_str!("settings.sql"),
        ]
        .concat();
        let select = regex::Regex::new(r"SELECT '[a-z]+', '([a-z_]+)'").unwrap();
        let values = regex::Regex::new(r"(?m)^\s*\('([a-z_]+)',").unwrap();
        select
            .captures_iter(&sql)
            .chain(values.captures_iter(&sql))
            .map(|c| c[1].to_owned())
            .collect()
    }

    #[test]
    fn every_item_of_the_sql_is_decoded_without_allocating() {
        assert!(ITEMS.windows(2).all(|w| w[0] < w[1]), "sorted, once each");
        let found = items_in_sql();
        assert!(found.len() >= 20, "{found:?}");
        for item in found {
            assert!(
                ITEMS.binary_search(&item.as_str()).is_ok(),
                "{item} not in ITEMS"
            );
        }
    }
}
