//! Requests for another region: a node runs one region's engine (`--region`), but devices and
//! phones connect to any node, so what belongs to another region goes to that region's
//! active engine, found through its lease:
//! - a device's alert for an elder of another region (`POST /v1/alerts`, or an `alert` frame on
//!   its WebSocket, `alert_elsewhere`) is forwarded (NATS request/reply, the same path a
//!   standby forwards by, `forward.rs`): the answer is that engine's, given once the alert is
//!   durable in that region's stream;
//! - a responder's WebSocket (their token says who they are, and so their region) is proxied
//!   to their region's active node, marked so that it is not routed again there.
//!
//! Everything else (operators' requests, a device's other frames) and anybody the roster file
//! does not place (people added at run time) is this node's region's. The directory is read
//! from the roster file, which is the same on every node, so a request is routed once: what a
//! region's engine is forwarded it serves itself (`forward::serve` runs its requests past this
//! layer).

use super::forward::{self, Holder, Standby};
use super::{lease_key, parse_lease};
use crate::auth::{bearer_token, token_digest};
use crate::listener::ConnInfo;
use async_nats::jetstream::kv;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use dispatch_core::journal::RegionId;
use dispatch_core::roster::{RegionMap, RosterFile};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

/// Who is in which region, and how to reach the other regions' engines.
#[derive(Clone)]
pub struct Directory {
    /// The region this node's engine is (or may become) active for.
    pub local: RegionId,
    pub map: Arc<RegionMap>,
    /// Responders' token digests → their region.
    pub tokens: Arc<HashMap<String, RegionId>>,
    /// Devices' token digests: only a device's alert body is read here (anything else goes on
    /// to the handler, which refuses it as it would on any node).
    pub devices: Arc<HashSet<String>>,
    /// `--alert-body-bytes`: the same bound the handler reads an alert body with.
    pub alert_body_bytes: usize,
    pub client: async_nats::Client,
    pub leases: kv::Store,
}

impl Directory {
    pub fn new(
        roster: &RosterFile,
        map: RegionMap,
        local: RegionId,
        client: async_nats::Client,
        leases: kv::Store,
        alert_body_bytes: usize,
    ) -> Directory {
        let tokens = roster
            .responders
            .iter()
            .filter_map(|r| {
                let region = map.of_responder(&r.id)?;
                Some((r.token_sha256.as_ref()?.to_ascii_lowercase(), region))
            })
            .collect();
        let devices = roster
            .devices
            .iter()
            .map(|d| d.token_sha256.to_ascii_lowercase())
            .collect();
        Directory {
            local,
            map: Arc::new(map),
            tokens: Arc::new(tokens),
            devices: Arc::new(devices),
            alert_body_bytes,
            client,
            leases,
        }
    }

    /// Whether the roster file has more than one region (else nothing is ever routed).
    fn routes(&self) -> bool {
        self.map.regions().nth(1).is_some()
    }

    /// The region's active node as its lease names it now (`None`: no engine holds it).
    async fn holder(&self, region: RegionId) -> Option<Holder> {
        match self.leases.entry(lease_key(region)).await {
            Ok(e) => parse_lease(e),
            Err(e) => {
                tracing::warn!(region = region.0, error = %e, "reading another region's lease");
                None
            }
        }
    }

    /// What forwarding to `region` needs: the forwarding side of `forward.rs`, pointed there.
    async fn standby_for(&self, region: RegionId) -> Standby {
        Standby {
            client: self.client.clone(),
            region,
            active: Arc::new(Mutex::new(self.holder(region).await)),
            // Another region's request, forwarded by whichever server this node runs: it
            // waits for that region's answer (or the request's timeout) whatever this node
            // does meanwhile.
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }
}

static DIRECTORY: OnceLock<Directory> = OnceLock::new();

/// What of roster `file` this node's engine holds: in cluster mode, the part of this node's
/// region (an import through a node changes that region only); else the whole file. A file
/// without this node's region is refused.
pub fn local_part(file: &RosterFile) -> Result<RosterFile, String> {
    let Some(dir) = DIRECTORY.get() else {
        return Ok(file.clone());
    };
    let map = file.region_map().map_err(|e| e.to_string())?;
    if !map.contains(dir.local) {
        let have: Vec<String> = map.regions().map(|r| r.0.to_string()).collect();
        return Err(format!(
            "this node runs region {}, which the file does not have (it has {})",
            dir.local.0,
            have.join(", ")
        ));
    }
    Ok(file.region_slice(&map, dir.local))
}

/// Set once by `cluster::serve`, before any router is built.
pub(super) fn set(directory: Directory) {
    let _ = DIRECTORY.set(directory);
}

/// Whether this node routes alerts to other regions (cluster mode with several regions).
pub fn routes_alerts() -> bool {
    DIRECTORY.get().is_some_and(Directory::routes)
}

/// A device's WebSocket `alert` for another region's elder: sent to that region's engine as
/// `POST /v1/alerts` with the device's token (the path a forwarded HTTP alert takes), and its
/// answer returned as the frame to send (`re` added). `None`: the alert is this region's.
pub async fn alert_elsewhere(
    token: &str,
    body: &crate::wire::AlertBody,
    re: Option<serde_json::Value>,
) -> Option<String> {
    let dir = DIRECTORY.get().filter(|d| d.routes())?;
    let region = dir
        .map
        .of_elder(&body.elder_id)
        .filter(|r| *r != dir.local)?;
    let json = serde_json::to_vec(body).ok()?;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/alerts")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(json))
        .ok()?;
    let answer = forward::forward(State(dir.standby_for(region).await), None, req).await;
    let bytes = axum::body::to_bytes(answer.into_body(), forward::MAX_BODY)
        .await
        .ok();
    let mut frame = bytes
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| {
            serde_json::to_value(crate::wire::ServerMessage::error(
                None,
                "unavailable",
                "the elder's region did not answer; send the alert again",
            ))
            .unwrap_or_default()
        });
    if let (Some(obj), Some(re)) = (frame.as_object_mut(), re) {
        obj.insert("re".into(), re);
    }
    Some(frame.to_string())
}

/// `app` with requests for other regions sent there (unchanged in embedded mode and with one
/// region).
pub fn wrap(app: axum::Router) -> axum::Router {
    match DIRECTORY.get() {
        Some(d) if d.routes() => app.layer(axum::middleware::from_fn_with_state(d.clone(), route)),
        _ => app,
    }
}

/// The layer: an alert or a responder's session of another region goes there; the rest on.
async fn route(State(dir): State<Directory>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v1/alerts" && req.method() == Method::POST {
        return route_alert(dir, req, next).await;
    }
    // A session this layer (on another node) already proxied here is this region's.
    if req.uri().path() == "/v1/ws" && !req.headers().contains_key(forward::PROXIED) {
        let region = bearer_token(req.headers(), req.uri().query())
            .and_then(|t| dir.tokens.get(&token_digest(&t)).copied());
        if let Some(region) = region.filter(|r| *r != dir.local) {
            let (mut parts, _) = req.into_parts();
            let info = connect_info(&parts.extensions);
            let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(ws) => ws,
                Err(refused) => return axum::response::IntoResponse::into_response(refused),
            };
            let standby = dir.standby_for(region).await;
            return forward::websocket(State(standby), info, ws, parts.headers, parts.uri).await;
        }
    }
    next.run(req).await
}

/// The listener's record of the connection, as `forward.rs` takes it (to mark it
/// authenticated once the other region's engine accepted the credentials).
fn connect_info(
    extensions: &axum::http::Extensions,
) -> Option<axum::Extension<ConnectInfo<ConnInfo>>> {
    extensions
        .get::<ConnectInfo<ConnInfo>>()
        .cloned()
        .map(axum::Extension)
}

/// Reads the alert's `elder_id` (a body that is not an alert is left for the handler to
/// refuse) and forwards it when the elder is another region's.
async fn route_alert(dir: Directory, req: Request, next: Next) -> Response {
    let device = bearer_token(req.headers(), req.uri().query())
        .is_some_and(|t| dir.devices.contains(&token_digest(&t)));
    if !device {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match crate::http::bounded_body(body, dir.alert_body_bytes, "an alert body").await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let region = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let elder = v.get("elder_id")?.as_str()?.to_string();
            dir.map.of_elder(&elder.into())
        });
    let req = Request::from_parts(parts, Body::from(bytes));
    match region.filter(|r| *r != dir.local) {
        Some(region) => {
            let info = connect_info(req.extensions());
            forward::forward(State(dir.standby_for(region).await), info, req).await
        }
        None => next.run(req).await,
    }
}
