//! The HTTP side on the one port: the WebSocket upgrade at `/v1/ws` (authenticated before the
//! 101), `POST /v1/alerts`, the incident read, `/healthz` and `/metrics`; people management
//! (`people.rs`) and the time bank (`time_bank.rs`) are merged in.
//!
//! HTTP auth: the same bearer tokens as the WebSocket. Alerts need a device token; incident
//! timelines an operator with the `dispatch` role (operator roles: `roster/roles.rs`;
//! `operator_with` checks them for every operator route). `/healthz` and `/metrics` are open (they reveal no person's data and are
//! scraped by infrastructure).

use crate::auth::{bearer_token, Credential, GridIndex, Principal, RightsIndex, TokenIndex};
use crate::engine_task::{EngineHandle, Refusal};
use crate::fanout::ResponderRegistry;
use crate::metrics as m;
use crate::session::{self, RateLimit, ReadFailure, SessionCtx, SessionLimits, WsFrame};
use crate::wire::{AlertAccepted, AlertBody, Role, ServerMessage};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dashmap::DashMap;
use dispatch_core::command::Reply;
use dispatch_core::ids::DeviceId;
use dispatch_core::ids::{IncidentId, OperatorId};
use dispatch_core::roster::{OperatorRole, Rights};
use futures_util::{SinkExt, StreamExt};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub tokens: Arc<TokenIndex>,
    pub registry: Arc<ResponderRegistry>,
    pub session_limits: SessionLimits,
    /// The roster's grids (console filters naming another are refused `unknown_grid`).
    pub grids: Arc<GridIndex>,
    /// Each operator's rights (their roster `roles`), checked by every operator request.
    pub rights: Arc<RightsIndex>,
    /// Cancelled when the server stops: sessions close with 1001.
    pub shutdown: CancellationToken,
    /// Every WebSocket session, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Numbers connections (a responder's registry entry belongs to one connection).
    pub session_counter: Arc<AtomicU64>,
    pub prometheus: Option<PrometheusHandle>,
    pub http_limits: HttpLimits,
    /// `POST /v1/alerts` token buckets, one per device (keys are roster ids only: a request
    /// is authenticated before it gets a bucket, so the map is bounded by the roster).
    pub alert_buckets: Arc<DashMap<DeviceId, RateLimit>>,
    /// Free space in the data dir for `/healthz` (`None`: not watched).
    pub disk: Option<Arc<crate::disk_budget::DiskBudget>>,
    /// The latest live coverage (`coverage.rs`), for `GET /v1/coverage`.
    pub coverage: Arc<crate::coverage::CoverageCell>,
}

/// The HTTP side's limits (docs/limits.md).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub alert_body_bytes: usize,
    pub rate_per_s: f64,
    pub rate_burst: f64,
}

/// The router.
pub fn router(state: AppState) -> Router {
    let auth_state = state.clone();
    Router::new()
        .route("/v1/ws", get(ws_upgrade))
        .route("/v1/alerts", post(post_alert))
        .route("/v1/incidents/{id}", get(get_incident))
        .route("/v1/whoami", get(whoami))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::people::routes())
        .merge(crate::time_bank::routes())
        .merge(crate::care_plans::routes())
        .merge(crate::coverage::routes())
        .merge(crate::closures::routes())
        .layer(axum::middleware::from_fn_with_state(
            auth_state,
            mark_authenticated,
        ))
        .with_state(state)
}

/// A request with a valid token marks its connection authenticated (`listener.rs`): the
/// connection leaves the unauthenticated bounds and its handshake timeout.
async fn mark_authenticated(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::listener::ConnInfo>>()
    {
        let known = bearer_token(req.headers(), req.uri().query())
            .is_some_and(|t| state.tokens.authenticate(&t).is_some());
        if known {
            info.0.authenticated();
        }
    }
    next.run(req).await
}

/// A request's query as `(key, value)` pairs, not decoded (`a=1&b` → `("a","1"), ("b","")`).
pub(crate) fn query_pairs(uri: &Uri) -> impl Iterator<Item = (&str, &str)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// An error response with the protocol's error body.
pub(crate) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    let body = ServerMessage::error(None, code, message).encode();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A request body that is one JSON object of at most `limit` bytes: else the `413` `too_big`
/// (saying so of `what`) or the `400` `bad_json`.
pub(crate) async fn object_body(
    body: axum::body::Body,
    limit: usize,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Response> {
    let bytes = bounded_body(body, limit, what).await?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "the body must be a JSON object",
        )),
    }
}

/// A request body of at most `limit` bytes, or the `413` `too_big` saying so of `what`.
pub(crate) async fn bounded_body(
    body: axum::body::Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        m::frame_rejected("too_big");
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            format!("{what} is at most {limit} bytes"),
        )
    })
}

pub(crate) fn refusal_response(e: &Refusal) -> Response {
    error(refusal_status(e), e.code(), e.to_string())
}

/// The HTTP status of an engine task's refusal.
pub(crate) fn refusal_status(e: &Refusal) -> StatusCode {
    match e {
        Refusal::Busy | Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Engine(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::Conflict(_) => StatusCode::CONFLICT,
    }
}

/// The calling operator if they hold `role`: else the 401 (no or unknown token), or a 403
/// `forbidden` (not an operator: `not_operator` says what needs one) or `missing_role`
/// naming the role.
pub(crate) fn operator_with(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    role: OperatorRole,
    not_operator: &str,
) -> Result<OperatorId, Box<Response>> {
    operator_with_any(state, headers, uri, &[role], not_operator)
}

/// The calling operator if they hold at least one of `roles` (a route open to dispatchers
/// and care managers alike); the refusals as [`operator_with`]'s, naming the first role.
pub(crate) fn operator_with_any(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    roles: &[OperatorRole],
    not_operator: &str,
) -> Result<OperatorId, Box<Response>> {
    match authenticate(state, headers, uri)? {
        Principal::Operator(o) => {
            let rights = state.rights.of(&o);
            if roles.iter().any(|&r| rights.has(r)) {
                return Ok(o);
            }
            let first = roles.first().copied().unwrap_or(OperatorRole::Dispatch);
            let mut message = missing_role(rights, &o, first).err().unwrap_or_default();
            if roles.len() > 1 {
                let names: Vec<String> = roles.iter().map(|r| format!("`{r}`")).collect();
                message = format!("{message}; any of {} will do", names.join(", "));
            }
            Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "missing_role",
                message,
            )))
        }
        _ => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            not_operator.to_string(),
        ))),
    }
}

/// The refusal text when `rights` lack `role` (shared with the operator WebSocket).
pub(crate) fn missing_role(
    rights: Rights,
    o: &OperatorId,
    role: OperatorRole,
) -> Result<(), String> {
    if rights.has(role) {
        return Ok(());
    }
    m::frame_rejected("missing_role");
    let held = rights.names();
    Err(format!(
        "operator {o} lacks the `{role}` role (roles held: {})",
        if held.is_empty() {
            "none".to_string()
        } else {
            held.join(", ")
        }
    ))
}

/// The caller, or the 401 to send.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Principal, Box<Response>> {
    credential(state, headers, uri).map(|(p, _)| p)
}

/// The caller and the credential a session keeps, or the 401 to send.
fn credential(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Principal, Credential), Box<Response>> {
    let Some(token) = bearer_token(headers, uri.query()) else {
        m::http_unauthorized();
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required (Authorization header or access_token query)",
        )));
    };
    state.tokens.credential(&token).ok_or_else(|| {
        m::http_unauthorized();
        Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown token",
        ))
    })
}

async fn ws_upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    // Authenticated before the upgrade: a refused client never gets a 101.
    let (principal, credential) = match credential(&state, &headers, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    // The library's limit is ours: a larger frame or message is a read error the adapter
    // below maps to `ReadFailure::TooBig`, and the session closes with 1009 and a reason.
    let lib_limit = state.session_limits.max_frame_bytes.max(1024);
    let session_no = state.session_counter.fetch_add(1, Ordering::Relaxed);
    let bearer = match &principal {
        Principal::Device(_) if crate::cluster::regions::routes_alerts() => {
            bearer_token(&headers, uri.query()).map(Arc::from)
        }
        _ => None,
    };
    let ctx = SessionCtx {
        principal,
        credential,
        bearer,
        tokens: state.tokens.clone(),
        engine: state.engine.clone(),
        registry: state.registry.clone(),
        limits: state.session_limits,
        shutdown: state.shutdown.clone(),
        session_no,
        grids: state.grids.clone(),
        rights: state.rights.clone(),
    };
    let tracker = state.sessions.clone();
    // Small buffers: a phone's frames are a few hundred bytes, and with the library's
    // 128 KiB defaults ten thousand phones held 1.3 GB and every read zeroed 128 KiB. The
    // buffers still grow for a larger frame (up to the frame limit).
    ws.max_message_size(lib_limit)
        .max_frame_size(lib_limit)
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES)
        .on_upgrade(move |socket| tracker.track_future(serve_socket(socket, ctx)))
}

/// Initial read and write buffer of a WebSocket connection.
const WS_BUFFER_BYTES: usize = 4096;

/// Adapts axum's WebSocket to the session's frames.
async fn serve_socket(socket: WebSocket, ctx: SessionCtx) {
    let (sink, stream) = socket.split();
    let sink = Box::pin(sink.with(|f: WsFrame| async move {
        Ok::<Message, axum::Error>(match f {
            WsFrame::Text(t) => Message::Text(t.into()),
            WsFrame::Binary(b) => Message::Binary(b.into()),
            WsFrame::Ping(b) => Message::Ping(b.into()),
            WsFrame::Pong(b) => Message::Pong(b.into()),
            WsFrame::Close(c) => Message::Close(c.map(|(code, reason)| CloseFrame {
                code,
                reason: reason.into(),
            })),
        })
    }));
    let stream = stream.map(|m| {
        m.map_err(read_failure).map(|m| match m {
            Message::Text(t) => WsFrame::Text(t.as_str().to_owned()),
            Message::Binary(b) => WsFrame::Binary(b.to_vec()),
            Message::Ping(b) => WsFrame::Ping(b.to_vec()),
            Message::Pong(b) => WsFrame::Pong(b.to_vec()),
            Message::Close(c) => WsFrame::Close(c.map(|c| (c.code, c.reason.as_str().to_owned()))),
        })
    });
    session::run_session(sink, stream, ctx).await;
}

/// What a read error of the WebSocket library means for the session: a frame or message
/// over the size limit (close 1009), a text frame that is not UTF-8 (close 1007), or a broken
/// connection. axum wraps tungstenite's error; the versions are the same (Cargo.lock).
fn read_failure(e: axum::Error) -> ReadFailure {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => ReadFailure::TooBig,
        Some(WsError::Utf8(_)) => ReadFailure::BadUtf8,
        _ => ReadFailure::Other(inner.to_string()),
    }
}

async fn post_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Body,
) -> Response {
    let device_id = match authenticate(&state, &headers, &uri) {
        Ok(Principal::Device(d)) => d,
        Ok(_) => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "alerts need a device token",
            )
        }
        Err(r) => return *r,
    };
    m::alert_received("http");
    // Rate first: a device over its rate costs no body read, no parse, no engine time, and
    // only its own bucket (another device's alerts never wait behind it).
    let retry_after = {
        let limits = state.http_limits;
        let mut bucket = state
            .alert_buckets
            .entry(device_id.clone())
            .or_insert_with(|| RateLimit::new(limits.rate_per_s, limits.rate_burst));
        (!bucket.allow()).then(|| bucket.retry_after_s())
    };
    if let Some(secs) = retry_after {
        m::frame_rejected("rate_limited");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {}/s (burst {}) alerts from this device; retry after {secs} s",
                state.http_limits.rate_per_s, state.http_limits.rate_burst
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return r;
    }
    let limit = state.http_limits.alert_body_bytes;
    let body = match bounded_body(body, limit, "an alert body").await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let alert: AlertBody = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            m::frame_rejected("bad_field");
            return error(StatusCode::BAD_REQUEST, "bad_field", e.to_string());
        }
    };
    let alert_id = alert.alert_id.clone();
    let cmd = match alert.into_command(device_id) {
        Ok(c) => c,
        Err(e) => {
            m::frame_rejected(e.code);
            return error(StatusCode::BAD_REQUEST, e.code, e.message);
        }
    };
    match state.engine.command(cmd).await {
        Ok(Reply::AlertAccepted {
            incident_id,
            duplicate,
            merged,
            problem,
        }) => {
            m::alert_accepted(duplicate);
            match AlertAccepted::reply(
                None,
                alert_id,
                incident_id,
                duplicate,
                merged,
                problem.as_ref(),
            ) {
                Ok(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
                // Kept and durable, but not dispatched: 422 tells the device what was wrong.
                Err(frame) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    [(header::CONTENT_TYPE, "application/json")],
                    frame.encode(),
                )
                    .into_response(),
            }
        }
        Ok(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the engine did not answer an alert",
        ),
        Err(e) => refusal_response(&e),
    }
}

/// `7` or `I7`.
fn parse_incident_id(s: &str) -> Option<IncidentId> {
    s.strip_prefix('I')
        .unwrap_or(s)
        .parse()
        .ok()
        .map(IncidentId)
}

async fn get_incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = operator_with(
        &state,
        &headers,
        &uri,
        OperatorRole::Dispatch,
        "incident timelines need an operator token",
    ) {
        return *r;
    }
    let Some(incident_id) = parse_incident_id(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_field",
            format!("`{id}` is not an incident id"),
        );
    };
    match state.engine.incident(incident_id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_incident",
            format!(
                "unknown incident {incident_id} (incidents closed more than 24 h ago are \
                 forgotten by the service; `dispatch export` reads their history from the journal)"
            ),
        ),
        Err(e) => refusal_response(&e),
    }
}

/// Who a bearer token belongs to (an operator with their roles now): what a browser app asks
/// before it opens its WebSocket, because a refused upgrade shows a browser only a close. A
/// wrong, revoked or missing token is the usual `401`. It reads the token tables alone, not the
/// engine.
async fn whoami(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let who = match authenticate(&state, &headers, &uri) {
        Ok(who) => who,
        Err(r) => return *r,
    };
    // the role as `welcome` names it; an operator's roles as the people routes name them
    let mut me = serde_json::json!({ "role": Role::from(&who), "id": who.id() });
    if let Principal::Operator(o) = &who {
        me["roles"] = serde_json::json!(state.rights.of(o).names());
    }
    Json(me).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let d = state.engine.durability();
    let running = state.engine.is_running();
    let disk = state.disk.as_ref().and_then(|b| match b.check() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read free disk space");
            None
        }
    });
    let healthy = d.failed.is_none() && running;
    let status = match (healthy, disk.is_some_and(|s| s.degraded)) {
        (false, _) => "failing",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let body = serde_json::json!({
        "status": status,
        "engine": if running { "running" } else { "stopped" },
        "journal": { "durable_lsn": d.lsn, "failed": d.failed },
        "disk": disk,
        "cluster": crate::cluster::status(),
    });
    let status = if d.failed.is_none() && running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.prometheus {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "metrics recorder not installed",
        ),
    }
}
