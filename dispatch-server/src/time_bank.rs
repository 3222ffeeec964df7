//! The time bank over HTTP: a volunteer's statement, and redemptions recorded by care managers
//! (operators with the `care` role). A redemption is an engine command
//! (`Command::RedeemTimeBank`), journaled before it is answered like every other.
//!
//! | method and path | who | answer |
//! | --- | --- | --- |
//! | `GET /v1/responders/{id}/time-bank` | `care` operators, and that responder | 200, the statement (`entries` with the running balance) |
//! | `POST /v1/responders/{id}/time-bank/redemptions` | `care` operators | 201 `{"responder_id", "entry", "balance_minutes"}` |
//!
//! The balance never goes below zero unless the body says `"override_negative": true`; such a
//! redemption is logged at WARN and its entry says `"override_negative": true`.

use crate::engine_task::Refusal;
use crate::http::{authenticate, error, object_body, operator_with, refusal_response, AppState};
use crate::metrics as m;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::ids::ResponderId;
use dispatch_core::model::Actor;
use dispatch_core::roster::{OperatorRole, Principal};
use dispatch_core::timebank::{check_redemption, LedgerEntry};
use serde_json::{json, Map, Value};

/// The largest redemption body (the note is at most 200 bytes).
pub const BODY_BYTES: usize = 4096;

/// The time-bank routes (merged into the router in http.rs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/responders/{id}/time-bank", get(statement))
        .route("/v1/responders/{id}/time-bank/redemptions", post(redeem))
}

async fn statement(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let responder_id = ResponderId::from(id);
    match authenticate(&state, &headers, &uri) {
        Ok(Principal::Responder(me)) if me == responder_id => {}
        Ok(Principal::Operator(_)) => {
            if let Err(r) = operator_with(&state, &headers, &uri, OperatorRole::Care, "") {
                return *r;
            }
        }
        Ok(_) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a time bank is readable by care managers and by its own responder",
            )
        }
        Err(r) => return *r,
    }
    match state.engine.time_bank(responder_id.clone()).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => unknown(&responder_id),
        Err(e) => refusal_response(&e),
    }
}

fn unknown(id: &ResponderId) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "unknown_responder",
        format!("unknown responder {id}"),
    )
}

fn bad_field(message: impl Into<String>) -> Box<Response> {
    m::frame_rejected("bad_field");
    Box::new(error(StatusCode::BAD_REQUEST, "bad_field", message))
}

/// A redemption's fields, each checked and named when wrong.
struct Body {
    minutes: u32,
    note: String,
    override_negative: bool,
}

fn parse(map: Map<String, Value>) -> Result<Body, Box<Response>> {
    if let Some(k) = map
        .keys()
        .find(|k| !["minutes", "note", "override_negative"].contains(&k.as_str()))
    {
        return Err(bad_field(format!("unknown field `{k}`")));
    }
    let minutes = match map.get("minutes") {
        None => return Err(bad_field("minutes: required")),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad_field(format!("minutes: {v} is not a whole number of minutes")))?,
    };
    let note = match map.get("note") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_field("note: not a string")),
    };
    let override_negative = match map.get("override_negative") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_field("override_negative: not true or false")),
    };
    check_redemption(minutes, &note).map_err(bad_field)?;
    Ok(Body {
        minutes,
        note,
        override_negative,
    })
}

async fn redeem(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Response {
    let operator = match operator_with(
        &state,
        &headers,
        &uri,
        OperatorRole::Care,
        "redemptions are recorded by care managers (operators)",
    ) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let map = match object_body(body, BODY_BYTES, "a redemption body").await {
        Ok(map) => map,
        Err(r) => return r,
    };
    let body = match parse(map) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let responder_id = ResponderId::from(id);
    let cmd = Command::RedeemTimeBank {
        by: Actor::Operator(operator.clone()),
        responder_id: responder_id.clone(),
        minutes: body.minutes,
        note: body.note,
        override_negative: body.override_negative,
    };
    let entry = match state.engine.command(cmd).await {
        Ok(Reply::TimeBankRedeemed { entry }) => entry,
        Ok(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the engine did not answer a redemption",
            )
        }
        Err(Refusal::Engine(CommandError::UnknownResponder(_))) => return unknown(&responder_id),
        Err(Refusal::Engine(e @ CommandError::InsufficientBalance { .. })) => {
            return error(StatusCode::CONFLICT, e.code(), e.to_string())
        }
        Err(e) => return refusal_response(&e),
    };
    let balance = entry.balance_minutes();
    if let LedgerEntry::Redemption {
        override_negative: true,
        minutes,
        ..
    } = &entry
    {
        tracing::warn!(
            responder = %responder_id, %operator, minutes, balance_minutes = balance,
            "time-bank redemption overrode the balance: it is now negative"
        );
    } else {
        tracing::info!(
            responder = %responder_id, %operator, balance_minutes = balance,
            "time-bank redemption recorded"
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "responder_id": responder_id,
            "entry": entry,
            "balance_minutes": balance,
        })),
    )
        .into_response()
}
