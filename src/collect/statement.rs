//! The one statement an instance costs per round: the enabled collectors'
//! SQL joined with `UNION ALL`, run over the instance's pooled connection,
//! and its rows decoded into [`Row`]s.

use super::{tag, Row, COLLECTORS};
use crate::config::CollectorName;
use crate::db::pool::Checkout;
use crate::db::pool::Pool;
use crate::model::error::ScrapeError;
use crate::model::family::Family;
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
        .filter(|c| enabled.contains(&c.name()))
        .map(|c| format!("SELECT * FROM (\n{}\n) AS {}", c.sql(family), tag(c.name())))
        .collect();
    if parts.is_empty() {
        return LIVENESS_ONLY.to_owned();
    }
    parts.join("\nUNION ALL\n")
}

/// The values of the statement's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub stale_after_seconds: f64,
    pub query_text_chars: u32,
}

/// Runs the round's single statement on one instance.
pub async fn run(pool: &Pool, sql: &str, params: Params) -> Result<Vec<Row>, ScrapeError> {
    let client = Checkout::get(pool).await?;
    let result = async {
        let types = [Type::FLOAT8, Type::INT4];
        let statement = client.prepare_typed_cached(sql, &types).await?;
        let query_text_chars = i32::try_from(params.query_text_chars).unwrap_or(i32::MAX);
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&params.stale_after_seconds, &query_text_chars];
        let rows = client.query(&statement, &values).await?;
        rows.iter().map(decode_row).collect()
    }
    .await;
    client.release();
    result
}

fn decode_row(r: &tokio_postgres::Row) -> Result<Row, ScrapeError> {
    let text = |i: usize| -> Result<String, ScrapeError> {
        Ok(r.try_get::<_, Option<LossyText>>(i)?
            .map(|t| t.0)
            .unwrap_or_default())
    };
    Ok(Row {
        collector: text(0)?,
        item: text(1)?,
        labels: r
            .try_get::<_, Option<Vec<LossyText>>>(2)?
            .map(|v| v.into_iter().map(|t| t.0).collect())
            .unwrap_or_default(),
        value: r.try_get::<_, Option<f64>>(3)?.unwrap_or(0.0),
    })
}

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
