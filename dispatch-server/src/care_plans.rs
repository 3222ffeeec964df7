//! The care plans' compliance report over HTTP, for care managers (operators with the `care`
//! role). The plans themselves travel in the elder record (`POST`/`PATCH /v1/elders`,
//! `people.rs`); the report is computed by the engine (`Engine::care_compliance`, a pure
//! function of its record of occurrences) and read like every other view.
//!
//! | method and path | who | answer |
//! | --- | --- | --- |
//! | `GET /v1/care-plans/compliance[?at=…]` | `care` operators | 200, the report (docs/protocol.md, "Care plans") |
//!
//! `at` asks about another moment: milliseconds since the epoch, or RFC 3339
//! (`2026-12-07T09:00:00Z`, `2026-12-07T06:00:00-03:00`).

use crate::http::{error, operator_with, refusal_response, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dispatch_core::care_plan::days_from_civil;
use dispatch_core::roster::OperatorRole;
use dispatch_core::time::Timestamp;

/// The care-plan routes (merged into the router in http.rs).
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/care-plans/compliance", get(compliance))
}

async fn compliance(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = operator_with(
        &state,
        &headers,
        &uri,
        OperatorRole::Care,
        "the compliance report is for care managers (operators)",
    ) {
        return *r;
    }
    let mut at = None;
    for (k, v) in crate::http::query_pairs(&uri) {
        match k {
            "at" => match parse_at(&percent_decode(v)) {
                Some(t) => at = Some(t),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_field",
                        format!("at: {v:?} is neither milliseconds since the epoch nor RFC 3339"),
                    )
                }
            },
            // The token may come in the query (browsers).
            "access_token" => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    format!("unknown query parameter `{other}`"),
                )
            }
        }
    }
    match state.engine.care_compliance(at).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => refusal_response(&e),
    }
}

/// `%2B` → `+`, `%3A` → `:` (what a client encoding an RFC 3339 time sends).
fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the epoch, or an RFC 3339 date-time (`Z` or `±HH:MM`, optional
/// fraction of a second).
pub fn parse_at(s: &str) -> Option<Timestamp> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(Timestamp(ms));
    }
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n];
        ms = digits
            .bytes()
            .take(3)
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0i64, |a, c| a * 10 + i64::from(c - b'0'));
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = rest.get(1..)?;
            if t.len() != 5 || t.as_bytes()[2] != b':' {
                return None;
            }
            let (oh, om): (i64, i64) = (t[..2].parse().ok()?, t[3..].parse().ok()?);
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let local = ((days * 24 + h) * 60 + mi) * 60 + sec;
    Some(Timestamp((local - offset_min * 60) * 1000 + ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_milliseconds_or_rfc3339() {
        assert_eq!(
            parse_at("1765098000000"),
            Some(Timestamp(1_765_098_000_000))
        );
        // 2025-12-07T09:00:00Z.
        assert_eq!(
            parse_at("2025-12-07T09:00:00Z"),
            Some(Timestamp(1_765_098_000_000))
        );
        assert_eq!(
            parse_at("2025-12-07T06:00:00.250-03:00"),
            Some(Timestamp(1_765_098_000_250))
        );
        assert_eq!(
            parse_at(&percent_decode("2025-12-07T10%3A00%3A00%2B01%3A00")),
            Some(Timestamp(1_765_098_000_000))
        );
        for bad in [
            "",
            "yesterday",
            "2025-12-07",
            "2025-13-07T09:00:00Z",
            "2025-12-07T09:00:00",
        ] {
            assert_eq!(parse_at(bad), None, "{bad}");
        }
    }
}
