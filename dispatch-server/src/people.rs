//! People management over HTTP (operators): responders, elders, grids, operators and device
//! gateways added, read, edited and retired at run time, and tokens issued. Every change is an
//! engine command (`Upsert*`, `Retire*`), so it is validated exactly as the roster file is and
//! journaled before it is answered; the token index and the grids of console filters follow
//! the engine's roster (auth.rs), so a token issued anew revokes the old one at once and open
//! sessions holding it are closed (4003).
//!
//! | method and path | answer |
//! | --- | --- |
//! | `POST /v1/responders`, `/v1/elders`, `/v1/grids` | 201, the stored entry; 409 if the id exists |
//! | `POST /v1/operators`, `/v1/devices` | 201, the stored entry and its first `token`, shown once |
//! | `GET /v1/{kind}/{id}` | 200, the entry; 404 if unknown |
//! | `PATCH /v1/{kind}/{id}` | 200, the stored entry (the body's fields replace the entry's) |
//! | `DELETE /v1/{kind}/{id}` | 200 `{"retired": id}` (the engine refuses what would break an open incident, and an elder with kin bound) |
//! | `POST /v1/{responders,operators,devices}/{id}/tokens` | 201 `{"token": …}`, once; earlier tokens stop working |
//! | `POST /v1/roster/import[?dry_run=true]` | 200, what a roster file changed (or would change): each change a journaled command |
//!
//! Entries are shown without their token digest (`has_token` says whether one is set), and a
//! body may not set `token_sha256`: tokens are only issued by the server.
//!
//! The same operations reach a console over the WebSocket as `people` messages, answered by
//! `people_result` with the status and body HTTP would answer, or by an `error` frame with the
//! same code ([`perform`] serves both).

use crate::auth::token_digest;
use crate::engine_task::{EngineHandle, Expect, Refusal, RosterRef};
use crate::http::{bounded_body, error, operator_with, refusal_status, AppState};
use crate::metrics as m;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dispatch_core::command::Command;
use dispatch_core::error::CommandError;
use dispatch_core::ids::{DeviceId, ElderId, GridId, OperatorId, ResponderId};
use dispatch_core::model::Actor;
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, ImportStep, OperatorRecord, OperatorRole,
    ResponderRecord, Roster, RosterFile,
};
use rand::RngCore;
use serde_json::{json, Map, Value};

/// The largest body a people request may have.
pub const BODY_BYTES: usize = 64 * 1024;

/// The largest roster file an import may send (a city of 100,000 elders and 100,000
/// volunteers is about 70 MB).
pub const IMPORT_BYTES: usize = 128 * 1024 * 1024;

/// The kinds of roster entries managed here, as their paths name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Responder,
    Elder,
    Grid,
    Operator,
    Device,
}

impl Kind {
    fn entry(self, id: &str) -> RosterRef {
        match self {
            Kind::Responder => RosterRef::Responder(ResponderId::from(id)),
            Kind::Elder => RosterRef::Elder(ElderId::from(id)),
            Kind::Grid => RosterRef::Grid(GridId::from(id)),
            Kind::Operator => RosterRef::Operator(OperatorId::from(id)),
            Kind::Device => RosterRef::Device(DeviceId::from(id)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Responder => "responder",
            Kind::Elder => "elder",
            Kind::Grid => "grid",
            Kind::Operator => "operator",
            Kind::Device => "device",
        }
    }

    /// Whether an entry of this kind cannot exist without a token (operators and devices:
    /// created with one, answered once).
    fn needs_token(self) -> bool {
        matches!(self, Kind::Operator | Kind::Device)
    }

    /// The engine command that stores `body` (a whole entry), or a 400 naming the field.
    fn upsert(self, by: Actor, body: Value) -> Result<Command, Refused> {
        let bad = |e: serde_json::Error| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "bad_field",
                format!("not a valid {}: {e}", self.name()),
            )
        };
        Ok(match self {
            Kind::Responder => Command::UpsertResponder {
                by,
                responder: serde_json::from_value::<ResponderRecord>(body).map_err(bad)?,
            },
            Kind::Elder => Command::UpsertElder {
                by,
                elder: serde_json::from_value::<ElderRecord>(body).map_err(bad)?,
            },
            Kind::Grid => Command::UpsertGrid {
                by,
                grid: serde_json::from_value::<GridRecord>(body).map_err(bad)?,
            },
            Kind::Operator => Command::UpsertOperator {
                by,
                operator: serde_json::from_value::<OperatorRecord>(body).map_err(bad)?,
            },
            Kind::Device => Command::UpsertDevice {
                by,
                device: serde_json::from_value::<DeviceRecord>(body).map_err(bad)?,
            },
        })
    }

    fn retire(self, by: Actor, id: &str) -> Command {
        match self {
            Kind::Responder => Command::RetireResponder {
                by,
                responder_id: ResponderId::from(id),
            },
            Kind::Elder => Command::RetireElder {
                by,
                elder_id: ElderId::from(id),
            },
            Kind::Grid => Command::RetireGrid {
                by,
                grid_id: GridId::from(id),
            },
            Kind::Operator => Command::RetireOperator {
                by,
                operator_id: OperatorId::from(id),
            },
            Kind::Device => Command::RetireDevice {
                by,
                device_id: DeviceId::from(id),
            },
        }
    }
}

/// The people routes (merged into the router in http.rs).
pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for (kind, path) in [
        (Kind::Responder, "/v1/responders"),
        (Kind::Elder, "/v1/elders"),
        (Kind::Grid, "/v1/grids"),
        (Kind::Operator, "/v1/operators"),
        (Kind::Device, "/v1/devices"),
    ] {
        r = r
            .route(path, post(move |st, h, u, b| create(kind, st, h, u, b)))
            .route(
                &format!("{path}/{{id}}"),
                get(move |st, h, u, id| read(kind, st, h, u, id))
                    .patch(move |st, h, u, id, b| change(kind, st, h, u, id, b))
                    .delete(move |st, h, u, id| retire(kind, st, h, u, id)),
            );
    }
    for (kind, path) in [
        (Kind::Responder, "/v1/responders/{id}/tokens"),
        (Kind::Operator, "/v1/operators/{id}/tokens"),
        (Kind::Device, "/v1/devices/{id}/tokens"),
    ] {
        r = r.route(
            path,
            post(move |st, h, u, id| issue_token(kind, st, h, u, id)),
        );
    }
    r.route("/v1/roster/import", post(import))
}

/// What a people request may do (the WebSocket's `op`; HTTP says it with its method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /v1/{kind}`
    Create,
    /// `GET /v1/{kind}/{id}`
    Read,
    /// `PATCH /v1/{kind}/{id}`
    Change,
    /// `DELETE /v1/{kind}/{id}`
    Retire,
    /// `POST /v1/{kind}/{id}/tokens`
    IssueToken,
}

/// A people request refused: the HTTP status, the error code and the message (an `error`
/// frame with the same code on the WebSocket).
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            status,
            code,
            message: message.into(),
        }
    }

    fn of(e: &Refusal) -> Refused {
        Refused::new(refusal_status(e), e.code(), e.to_string())
    }

    fn response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

/// The calling operator with the `people` role, or the response to send (403
/// `missing_role` for an operator without it).
fn operator(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Actor, Box<Response>> {
    operator_with(
        state,
        headers,
        uri,
        OperatorRole::People,
        "people management needs an operator token",
    )
    .map(Actor::Operator)
}

/// A JSON object body of at most [`BODY_BYTES`].
async fn object_body(body: axum::body::Body) -> Result<Map<String, Value>, Refused> {
    let bytes = axum::body::to_bytes(body, BODY_BYTES).await.map_err(|_| {
        m::frame_rejected("too_big");
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            format!("a people request body is at most {BODY_BYTES} bytes"),
        )
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => object(v),
        Err(e) => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// A request body: a JSON object that does not set `token_sha256`.
pub fn object(body: Value) -> Result<Map<String, Value>, Refused> {
    let Value::Object(map) = body else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "the body must be a JSON object",
        ));
    };
    if map.contains_key("token_sha256") {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_field",
            "`token_sha256` cannot be set: issue a token with POST /v1/responders/{id}/tokens",
        ));
    }
    Ok(map)
}

/// An entry as operators see it: a token digest replaced by `has_token`.
fn shown(kind: Kind, mut entry: Value) -> Value {
    if let Some(map) = entry.as_object_mut() {
        let digest = map.remove("token_sha256");
        if matches!(kind, Kind::Responder | Kind::Operator | Kind::Device) {
            let has = digest.is_some_and(|d| !d.is_null());
            map.insert("has_token".into(), Value::Bool(has));
        }
    }
    entry
}

/// An engine refusal about `entry` as an answer naming it: unknown entries are 404, a conflict
/// 409, the rest as elsewhere (422 for what the roster's rules refuse).
fn refused(entry: &RosterRef, e: &Refusal) -> Refused {
    let (status, code) = match (e, entry) {
        // The entry itself is unknown (an unknown id it refers to is a 422 below).
        (Refusal::Engine(c @ CommandError::UnknownResponder(_)), RosterRef::Responder(_))
        | (Refusal::Engine(c @ CommandError::UnknownElder(_)), RosterRef::Elder(_))
        | (Refusal::Engine(c @ CommandError::UnknownGrid(_)), RosterRef::Grid(_)) => {
            (StatusCode::NOT_FOUND, c.code())
        }
        (Refusal::Engine(c @ CommandError::LastPeopleOperator(_)), _) => {
            (StatusCode::CONFLICT, c.code())
        }
        (Refusal::Engine(c), _) => (StatusCode::UNPROCESSABLE_ENTITY, c.code()),
        (Refusal::Conflict(_), _) => (StatusCode::CONFLICT, e.code()),
        (other, _) => return Refused::of(other),
    };
    Refused::new(status, code, format!("{entry}: {e}"))
}

/// The entry as the roster holds it now (digest included), or a 404 naming it.
async fn current(engine: &EngineHandle, entry: &RosterRef) -> Result<Value, Refused> {
    match engine.roster_entry(entry.clone()).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "unknown",
            format!("no {entry}"),
        )),
        Err(e) => Err(Refused::of(&e)),
    }
}

/// Runs `cmd` about `entry` if `expect` holds when its turn comes; the refusal names `entry`.
async fn run(
    engine: &EngineHandle,
    entry: &RosterRef,
    expect: Expect,
    cmd: Command,
) -> Result<(), Refused> {
    engine
        .command_if(expect, cmd)
        .await
        .map(drop)
        .map_err(|e| refused(entry, &e))
}

/// One people request by operator `by` (who holds the `people` role: the caller checked),
/// for HTTP and the WebSocket alike: the status and body to answer.
pub async fn perform(
    engine: &EngineHandle,
    by: Actor,
    op: Op,
    kind: Kind,
    id: Option<&str>,
    body: Option<Map<String, Value>>,
) -> Result<(StatusCode, Value), Refused> {
    let need_id = || {
        id.ok_or_else(|| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "bad_field",
                format!("this request needs the {}'s `id`", kind.name()),
            )
        })
    };
    let need_body = |body: Option<Map<String, Value>>| {
        body.ok_or_else(|| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "bad_field",
                "this request needs a `body` object",
            )
        })
    };
    let id_given = id;
    match op {
        Op::Create => {
            let mut map = need_body(body)?;
            let Some(id) = map.get("id").and_then(Value::as_str).map(str::to_owned) else {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    format!("a {} needs a string `id`", kind.name()),
                ));
            };
            if id_given.is_some_and(|given| given != id) {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    format!("`entry_id` {id_given:?} is not the body's `id` {id:?}"),
                ));
            }
            let entry = kind.entry(&id);
            let token = kind.needs_token().then(new_token);
            if let Some(t) = &token {
                map.insert("token_sha256".into(), Value::String(token_digest(t)));
            }
            let cmd = kind.upsert(by, Value::Object(map))?;
            run(engine, &entry, Expect::Absent(entry.clone()), cmd).await?;
            let mut answer = shown(kind, current(engine, &entry).await?);
            if let Some(t) = token {
                answer["token"] = Value::String(t);
            }
            Ok((StatusCode::CREATED, answer))
        }
        Op::Read => {
            let entry = kind.entry(need_id()?);
            Ok((StatusCode::OK, shown(kind, current(engine, &entry).await?)))
        }
        Op::Change => {
            let id = need_id()?;
            let patch = need_body(body)?;
            if patch.get("id").is_some_and(|v| v.as_str() != Some(id)) {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    "`id` cannot be changed (retire the entry and add a new one)",
                ));
            }
            let entry = kind.entry(id);
            let now = current(engine, &entry).await?;
            let mut merged = now.as_object().cloned().unwrap_or_default();
            merged.extend(patch);
            let cmd = kind.upsert(by, Value::Object(merged))?;
            run(engine, &entry, Expect::Unchanged(entry.clone(), now), cmd).await?;
            Ok((StatusCode::OK, shown(kind, current(engine, &entry).await?)))
        }
        Op::Retire => {
            let id = need_id()?;
            let entry = kind.entry(id);
            current(engine, &entry).await?; // 404 for an unknown id, whatever its kind
            run(engine, &entry, Expect::Nothing, kind.retire(by, id)).await?;
            Ok((StatusCode::OK, json!({ "retired": id })))
        }
        Op::IssueToken => {
            let id = need_id()?;
            if kind == Kind::Elder || kind == Kind::Grid {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    format!("a {} has no token", kind.name()),
                ));
            }
            let entry = kind.entry(id);
            let now = current(engine, &entry).await?;
            let token = new_token();
            let mut record = now.clone();
            record["token_sha256"] = Value::String(token_digest(&token));
            let cmd = kind.upsert(by.clone(), record)?;
            run(engine, &entry, Expect::Unchanged(entry.clone(), now), cmd).await?;
            if let Actor::Operator(operator) = &by {
                tracing::info!(entry = %entry, %operator, "token issued; earlier tokens revoked");
            }
            Ok((StatusCode::CREATED, json!({ "id": id, "token": token })))
        }
    }
}

/// An HTTP people request: the operator checked, the body read, then [`perform`].
async fn over_http(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    op: Op,
    kind: Kind,
    id: Option<&str>,
    body: Option<axum::body::Body>,
) -> Response {
    let by = match operator(state, headers, uri) {
        Ok(by) => by,
        Err(refusal) => return *refusal,
    };
    let body = match body {
        Some(b) => match object_body(b).await {
            Ok(map) => Some(map),
            Err(r) => return r.response(),
        },
        None => None,
    };
    match perform(&state.engine, by, op, kind, id, body).await {
        Ok((status, answer)) => (status, Json(answer)).into_response(),
        Err(r) => r.response(),
    }
}

async fn create(
    kind: Kind,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    over_http(&state, &headers, &uri, Op::Create, kind, None, Some(body)).await
}

async fn read(
    kind: Kind,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    over_http(&state, &headers, &uri, Op::Read, kind, Some(&id), None).await
}

async fn change(
    kind: Kind,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Response {
    over_http(
        &state,
        &headers,
        &uri,
        Op::Change,
        kind,
        Some(&id),
        Some(body),
    )
    .await
}

async fn retire(
    kind: Kind,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    over_http(&state, &headers, &uri, Op::Retire, kind, Some(&id), None).await
}

/// A new token: 32 random bytes, hex. `rand::rng()` is a cryptographically secure generator
/// seeded from the operating system.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

async fn issue_token(
    kind: Kind,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    over_http(
        &state,
        &headers,
        &uri,
        Op::IssueToken,
        kind,
        Some(&id),
        None,
    )
    .await
}

/// `POST /v1/roster/import`: a roster file applied to the running service as the journaled
/// changes that make its roster equal to the file (docs/deploy.md, "Changing the roster
/// file"). The file is checked whole first (as at start: a 400 or 422 naming the entry, and
/// nothing changed); then each change is one command, validated and journaled like any other
/// (positions are checked then), and the answer lists what was applied and what the engine
/// refused, with why (retiring an elder who has an open incident, for example). With
/// `?dry_run=true` nothing is applied: the answer lists what would be.
async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let by = match operator(&state, &headers, &uri) {
        Ok(by) => by,
        Err(refusal) => return *refusal,
    };
    // A misspelt parameter must not turn a preview into the real import: anything but
    // `dry_run=true|false|1|0` is refused.
    let mut dry_run = false;
    for kv in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
    {
        dry_run = match kv {
            "dry_run=true" | "dry_run=1" => true,
            "dry_run=false" | "dry_run=0" => false,
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_field",
                    format!("unknown query `{other}`: the only one is dry_run=true or false"),
                )
            }
        };
    }
    let bytes = match bounded_body(body, IMPORT_BYTES, "a roster file to import").await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let file: RosterFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_field",
                format!("not a roster file: {e}"),
            )
        }
    };
    if let Err(e) = Roster::from_file(file.clone(), &|_| Ok(())) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("the roster file is refused, nothing was changed: {e}"),
        );
    }
    // A node of one region in cluster mode imports that region's part of the file only: the
    // other regions' people belong to their own engines.
    let file = match crate::cluster::regions::local_part(&file) {
        Ok(f) => f,
        Err(why) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("the roster file is refused, nothing was changed: {why}"),
            )
        }
    };
    let service = match state.engine.roster_file().await {
        Ok(r) => r,
        Err(e) => return Refused::of(&e).response(),
    };
    let steps = file.import_steps(&service, &by);
    let name = |s: &ImportStep| json!({"entry": s.entry, "id": s.id, "change": s.change});
    if dry_run {
        let changes: Vec<Value> = steps.iter().map(name).collect();
        return Json(json!({"dry_run": true, "changes": changes})).into_response();
    }
    let (mut applied, mut refused) = (Vec::new(), Vec::new());
    for step in steps {
        match state.engine.command(step.command.clone()).await {
            Ok(_) => applied.push(name(&step)),
            Err(e) => {
                let mut v = name(&step);
                v["code"] = json!(e.code());
                v["message"] = json!(e.to_string());
                refused.push(v);
            }
        }
    }
    if let Actor::Operator(operator) = &by {
        tracing::info!(
            %operator,
            applied = applied.len(),
            refused = refused.len(),
            "roster file imported"
        );
    }
    Json(json!({"dry_run": false, "applied": applied, "refused": refused})).into_response()
}
