//! `GET /api/v2/logs`, `GET /api/v2/logs/{id}`, `GET /api/v2/users/{id}/logs`.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_domain::Timestamp;
use callsign_store::{LogEvent, LogPaging, LogQuery};
use serde::Deserialize;
use serde_json::Value;

use super::Path;
use super::{Mgmt, Paging, ReadLogs};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Query;

pub fn routes() -> Router<AppState> {
    Router::new().route("/logs", get(list)).route("/logs/{id}", get(read)).route("/users/{id}/logs", get(user_logs))
}

pub fn render(e: &LogEvent) -> Value {
    callsign_core::log_streams::wire(e)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: Option<String>,
    from: Option<String>,
    #[serde(deserialize_with = "super::lenient")]
    take: Option<u32>,
    #[serde(flatten)]
    paging: Paging,
}

/// What `q` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct LogFilter {
    event_type: Option<String>,
    user_id: Option<String>,
    /// At or after.
    since: Option<Timestamp>,
    /// Strictly before.
    before: Option<Timestamp>,
}

/// The supported subset of Auth0's log search syntax: `type:X`, `user_id:"Y"` and `date:[A TO B]`, joined by `AND`.
fn parse_q(q: &str) -> Result<LogFilter, ApiError> {
    let mut filter = LogFilter::default();
    let normalized = q.replace(" and ", " AND ");
    for term in normalized.split(" AND ").map(str::trim).filter(|t| !t.is_empty()) {
        let (field, value) = term.split_once(':').ok_or_else(|| {
            ApiError::invalid_query(format!("Query validation error: 'cannot parse `{term}`; use field:value'."))
        })?;
        let unquoted = value.trim().trim_matches('"').to_owned();
        match field.trim() {
            "type" => filter.event_type = Some(unquoted),
            "user_id" => filter.user_id = Some(unquoted),
            "date" => (filter.since, filter.before) = date_range(value.trim())?,
            other => {
                return Err(ApiError::invalid_query(format!(
                    "Query validation error: 'searching by `{other}` is not supported; use type, user_id or date'."
                )));
            }
        }
    }
    Ok(filter)
}

const DAY_MS: i64 = 86_400_000;

/// A Lucene range over dates, as Auth0 reads it: `[A TO B]` includes both ends, `{A TO B}` excludes them (the
/// brackets may be mixed), `*` leaves an end open. A bound is a day (`2026-12-01`, UTC, the whole day) or an
/// instant (RFC 3339, `2026-12-01T10:00:00Z`). The answer is half-open: at or after the first, before the second.
fn date_range(value: &str) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let bad = || {
        ApiError::invalid_query(format!(
            "Query validation error: 'date takes a range such as date:[2026-12-01 TO 2026-12-02] (`[` `]` include \
             the ends, `{{` `}}` exclude them, `*` leaves one open); `{value}` is not one'."
        ))
    };
    let mut chars = value.chars();
    let (open, close) = (chars.next().ok_or_else(bad)?, chars.next_back().ok_or_else(bad)?);
    let inclusive_from = match open {
        '[' => true,
        '{' => false,
        _ => return Err(bad()),
    };
    let inclusive_to = match close {
        ']' => true,
        '}' => false,
        _ => return Err(bad()),
    };
    let (from, to) = chars.as_str().split_once(" TO ").ok_or_else(bad)?;
    let from = bound(from)?;
    let to = bound(to)?;
    // (start, length): a day lasts a day, an instant one millisecond.
    let since = from.map(|(start, len)| Timestamp(if inclusive_from { start } else { start.saturating_add(len) }));
    let before = to.map(|(start, len)| Timestamp(if inclusive_to { start.saturating_add(len) } else { start }));
    Ok((since, before))
}

/// One end of a date range: its start in milliseconds and how long it lasts; `None` for `*`.
fn bound(text: &str) -> Result<Option<(i64, i64)>, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim().trim_matches('"');
    if text == "*" {
        return Ok(None);
    }
    // A day is the instant its UTC midnight starts, lasting a day.
    if text.len() == 10
        && let Ok(t) = time::OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339)
    {
        return Ok(Some((t.unix_timestamp().saturating_mul(1000), DAY_MS)));
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        let ms = i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX);
        return Ok(Some((ms, 1)));
    }
    Err(ApiError::invalid_query(format!(
        "Query validation error: '`{text}` is not a date (YYYY-MM-DD), a date and time (RFC 3339, e.g. \
         2026-12-01T10:00:00Z) or *'."
    )))
}

async fn run(app: &AppState, q: ListQuery, forced_user: Option<String>) -> Result<Value, ApiError> {
    let filter = match &q.q {
        Some(s) => parse_q(s)?,
        None => LogFilter::default(),
    };
    let paging = if q.from.is_some() || q.take.is_some() {
        let take = q.take.unwrap_or(50);
        if take == 0 || take > 100 {
            return Err(ApiError::invalid_query("Query validation error: 'take' must be between 1 and 100."));
        }
        LogPaging::From { from: q.from.clone(), take }
    } else {
        LogPaging::Page(q.paging.page()?)
    };
    let checkpoint = matches!(paging, LogPaging::From { .. });
    let LogFilter { event_type, user_id, since, before } = filter;
    let query = LogQuery { event_type, user_id: forced_user.or(user_id), since, before, paging };
    let listed = app.store.list_logs(&query).await?;
    let items: Vec<Value> = listed.items.iter().map(render).collect();
    Ok(if checkpoint { Value::Array(items) } else { q.paging.wrap("logs", items, listed.total) })
}

async fn list(
    _: Mgmt<ReadLogs>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run(&app, q, None).await?))
}

async fn user_logs(
    _: Mgmt<ReadLogs>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run(&app, q, Some(id)).await?))
}

async fn read(_: Mgmt<ReadLogs>, State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let e = app.store.get_log(&id).await?.ok_or_else(|| ApiError::not_found("Log not found."))?;
    Ok(Json(render(&e)))
}

#[cfg(test)]
mod tests {
    use super::{LogFilter, Timestamp, parse_q};

    /// 2026-12-01T00:00:00Z.
    const DEC_1: i64 = 1_796_083_200_000;
    const DAY: i64 = super::DAY_MS;

    fn range(q: &str) -> (Option<i64>, Option<i64>) {
        let f = parse_q(q).unwrap_or_else(|e| panic!("{q}: {e:?}"));
        (f.since.map(|t| t.0), f.before.map(|t| t.0))
    }

    #[test]
    fn q_syntax() {
        let only_type = LogFilter { event_type: Some("s".into()), ..LogFilter::default() };
        assert_eq!(parse_q("type:s").unwrap(), only_type);
        assert_eq!(
            parse_q("type:\"fp\" AND user_id:\"auth0|abc\"").unwrap(),
            LogFilter { event_type: Some("fp".into()), user_id: Some("auth0|abc".into()), ..LogFilter::default() }
        );
        assert!(parse_q("ip:1.2.3.4").is_err());
    }

    #[test]
    fn date_ranges_are_half_open_in_utc() {
        assert_eq!(range("date:[2026-12-01 TO 2026-12-02]"), (Some(DEC_1), Some(DEC_1 + 2 * DAY)));
        assert_eq!(range("date:{2026-12-01 TO 2026-12-03}"), (Some(DEC_1 + DAY), Some(DEC_1 + 2 * DAY)));
        assert_eq!(range("date:[2026-12-01 TO 2026-12-03}"), (Some(DEC_1), Some(DEC_1 + 2 * DAY)));
        assert_eq!(range("date:[* TO 2026-12-01]"), (None, Some(DEC_1 + DAY)));
        assert_eq!(range("date:[2026-12-01 TO *]"), (Some(DEC_1), None));
        assert_eq!(
            range("date:[2026-12-01T10:00:00Z TO \"2026-12-01T11:00:00.500+01:00\"]"),
            (Some(DEC_1 + 36_000_000), Some(DEC_1 + 36_000_501))
        );
        assert_eq!(range("date:{2026-12-01T10:00:00Z TO *]").0, Some(DEC_1 + 36_000_001));
        let f = parse_q("type:s AND date:[2026-12-01 TO *]").unwrap();
        assert_eq!((f.event_type.as_deref(), f.since), (Some("s"), Some(Timestamp(DEC_1))));
    }

    #[test]
    fn bad_date_ranges_are_refused() {
        for q in [
            "date:2026-12-01",
            "date:[2026-12-01 2026-12-02]",
            "date:[2026-12-01 TO 2026-12-02",
            "date:(2026-12-01 TO 2026-12-02)",
            "date:[2026-13-01 TO *]",
            "date:[yesterday TO *]",
            "date:[2026-12-01 to 2026-12-02]",
            "date:",
        ] {
            assert!(parse_q(q).is_err(), "{q} was accepted");
        }
    }
}
