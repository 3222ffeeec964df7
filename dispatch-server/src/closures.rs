//! Roads that change, over HTTP: dispatchers (or a feed holding a dispatcher's token) lay a
//! closure or a slowdown for a time window and lift it; consoles draw them. Laying and lifting
//! are engine commands (`close_road`, `reopen_road`), journaled before they are answered; from
//! that moment every ETA, ranking and offer route honours them (`road::closure`).
//!
//! | method and path | who | answer |
//! | --- | --- | --- |
//! | `GET /v1/closures` | operators (`dispatch` or `care`) | 200, a GeoJSON FeatureCollection: one feature per closure, its covered roads as a MultiLineString |
//! | `POST /v1/closures` | `dispatch` operators | 201, the closure's feature; 400 `bad_field` / `bad_json`; 413 `too_big`; 422 `invalid` (ends in the past, covers no road, …) |
//! | `DELETE /v1/closures/{id}` | `dispatch` operators | 204; 404 `unknown_closure` |

use crate::engine_task::Refusal;
use crate::http::{
    error, object_body, operator_with, operator_with_any, refusal_response, AppState,
};
use crate::metrics as m;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use dispatch_core::closures::{ClosureView, RoadClosure};
use dispatch_core::command::Command;
use dispatch_core::error::CommandError;
use dispatch_core::model::Actor;
use dispatch_core::roster::OperatorRole;
use serde_json::{json, Value};

/// The largest closure body: 1,000 points of a polygon or line with room to spare.
pub const BODY_BYTES: usize = 96 * 1024;

const FIELDS: [&str; 7] = [
    "closure_id",
    "area",
    "effect",
    "modes",
    "starts_at",
    "ends_at",
    "reason",
];

/// The closure routes (merged into the router in http.rs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/closures", get(list).post(lay))
        .route("/v1/closures/{id}", delete(lift))
}

/// One closure as a GeoJSON feature.
pub fn feature(v: &ClosureView) -> Value {
    let lines: Vec<Value> = v
        .lines
        .iter()
        .map(|[a, b]| json!([[a.lon, a.lat], [b.lon, b.lat]]))
        .collect();
    let mut props = serde_json::to_value(&v.laid.closure).unwrap_or_default();
    if let Some(o) = props.as_object_mut() {
        o.insert(
            "by".into(),
            serde_json::to_value(&v.laid.by).unwrap_or_default(),
        );
        o.insert("laid_at".into(), json!(v.laid.laid_at));
        o.insert("holding".into(), json!(v.laid.holding));
        o.insert("car_segments".into(), json!(v.car_segments));
        o.insert("foot_segments".into(), json!(v.foot_segments));
    }
    json!({
        "type": "Feature",
        "id": v.laid.closure.closure_id,
        "geometry": {"type": "MultiLineString", "coordinates": lines},
        "properties": props,
    })
}

async fn list(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = operator_with_any(
        &state,
        &headers,
        &uri,
        &[OperatorRole::Dispatch, OperatorRole::Care],
        "road closures are shown to operators",
    ) {
        return *r;
    }
    match state.engine.road_closures().await {
        Ok(views) => Json(json!({
            "type": "FeatureCollection",
            "features": views.iter().map(feature).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => refusal_response(&e),
    }
}

/// The calling operator if they may lay and lift closures (the `dispatch` role).
fn dispatcher(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<dispatch_core::ids::OperatorId, Box<Response>> {
    operator_with(
        state,
        headers,
        uri,
        OperatorRole::Dispatch,
        "road closures are laid and lifted by dispatchers (operators)",
    )
}

fn bad_field(message: impl Into<String>) -> Response {
    m::frame_rejected("bad_field");
    error(StatusCode::BAD_REQUEST, "bad_field", message)
}

async fn lay(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let operator = match dispatcher(&state, &headers, &uri) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let map = match object_body(body, BODY_BYTES, "a closure body").await {
        Ok(map) => map,
        Err(r) => return r,
    };
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return bad_field(format!("unknown field `{k}`"));
    }
    let closure: RoadClosure = match serde_json::from_value(Value::Object(map)) {
        Ok(c) => c,
        Err(e) => return bad_field(e.to_string()),
    };
    let id = closure.closure_id.clone();
    let cmd = Command::CloseRoad {
        by: Actor::Operator(operator.clone()),
        closure,
    };
    if let Err(e) = state.engine.command(cmd).await {
        return refusal_response(&e);
    }
    tracing::info!(closure = %id, %operator, "road closure laid");
    match state.engine.road_closures().await {
        Ok(views) => match views.iter().find(|v| v.laid.closure.closure_id == id) {
            Some(v) => (StatusCode::CREATED, Json(feature(v))).into_response(),
            // Laid and already lifted by a later command: it was laid all the same.
            None => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        },
        Err(e) => refusal_response(&e),
    }
}

async fn lift(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let operator = match dispatcher(&state, &headers, &uri) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let cmd = Command::ReopenRoad {
        by: Actor::Operator(operator.clone()),
        closure_id: id.clone(),
    };
    match state.engine.command(cmd).await {
        Ok(_) => {
            tracing::info!(closure = %id, %operator, "road closure lifted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(Refusal::Engine(e @ CommandError::UnknownClosure(_))) => {
            error(StatusCode::NOT_FOUND, e.code(), e.to_string())
        }
        Err(e) => refusal_response(&e),
    }
}
