//! Any node answers HTTP: a node that is not the active engine of the region forwards the
//! request over NATS request/reply to the node that is, which runs it through its own router
//! (the same authentication, limits and handlers as a request made to it directly) and sends
//! the answer back. So an alert `POST`ed to any live node is acknowledged once it is durable in
//! the region's stream; while no engine holds the region the answer is `503` with
//! `Retry-After`, never a false acknowledgement.
//!
//! The request travels as a NATS message to the subject of the node the lease names
//! (`dispatch.r<r>.http.<node>`, so an engine that lost the region and does not know it yet gets
//! nothing): the body as payload; method, path and query, and every header but the hop-by-hop
//! ones as message headers. The answer: the body as payload, the status and the headers back.
//!
//! WebSocket sessions are proxied: a standby opens a session of its own to the active node's
//! advertised address (written in the lease) with the client's credentials, and only once
//! that upgrade succeeded does it accept the client's, so a refusal (401, 503) is the active
//! node's own answer; then it copies frames both ways until either side closes. With no active
//! node known, the client gets an `unavailable` frame and close 1013 (try again later).

use crate::listener::ConnInfo;
use async_nats::header::HeaderMap as NatsHeaders;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatch_core::journal::RegionId;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use tower::ServiceExt;

const METHOD: &str = "Dispatch-Method";
/// On a WebSocket upgrade this node proxies to another: the session is the receiving node's
/// region's, not to be routed again (`regions.rs`).
pub const PROXIED: &str = "dispatch-proxied";
const URI: &str = "Dispatch-Uri";
const STATUS: &str = "Dispatch-Status";
/// Headers of one connection, not of the request (RFC 9110 §7.6.1), and those the receiving
/// side sets itself: never forwarded either way.
const HOP_BY_HOP: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
];
/// Forwarded requests the active node runs at once; more are answered `503 busy`.
const MAX_IN_FLIGHT: usize = 512;
/// Largest forwarded body, either way: under NATS's default `max_payload` (1 MiB). The active
/// node applies its own, smaller limits (`--alert-body-bytes`) as to any request.
pub const MAX_BODY: usize = 900 * 1024;
/// How long a forwarding node waits for the active node's answer: longer than an alert can
/// take to become durable under load (the journal's own waits are bounded by the lease).
pub const WAIT: Duration = Duration::from_secs(10);

fn subject(region: RegionId, node: &str) -> String {
    format!("dispatch.r{}.http.{node}", region.0)
}

fn forwarded(name: &header::HeaderName) -> bool {
    !HOP_BY_HOP.contains(name)
}

/// The router of the engine this process runs, once `crate::run` has built it.
static LOCAL_APP: OnceLock<axum::Router> = OnceLock::new();

/// Called by `crate::run`: in cluster mode, forwarded requests are served by this router.
pub fn set_local_app(app: &axum::Router) {
    let _ = LOCAL_APP.set(app.clone());
}

/// The active node as the lease names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    /// Its `--advertise` address (HOST:PORT).
    pub addr: String,
}

/// What a standby's router shares: the NATS client, its region, and the active node as last
/// read from the lease (`None`: no engine holds the region).
#[derive(Clone)]
pub struct Standby {
    pub client: async_nats::Client,
    pub region: RegionId,
    pub active: Arc<Mutex<Option<Holder>>>,
    /// Cancelled when this node stops forwarding (it takes the region over, or stops): a
    /// request still waiting for the old active node is answered 503 then, not dropped with
    /// the connection when the standby server's grace runs out.
    pub stop: tokio_util::sync::CancellationToken,
}

impl Standby {
    fn holder(&self) -> Option<Holder> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The forwarding side (a node that is not active): the fallback of its router.
pub async fn forward(
    State(standby): State<Standby>,
    info: Option<axum::Extension<ConnectInfo<ConnInfo>>>,
    req: Request,
) -> Response {
    let Some(holder) = standby.holder() else {
        return no_active();
    };
    let (client, region) = (standby.client, standby.region);
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return crate::http::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_big",
                format!("a forwarded request body is at most {MAX_BODY} bytes"),
            )
        }
    };
    let mut headers = NatsHeaders::new();
    headers.insert(METHOD, parts.method.as_str());
    headers.insert(URI, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, v) in parts.headers.iter().filter(|(n, _)| forwarded(n)) {
        if let Ok(v) = v.to_str() {
            headers.append(name.as_str(), v);
        }
    }
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(body)
        .timeout(Some(WAIT));
    let sent = client.send_request(subject(region, &holder.node), request);
    let reply = tokio::select! {
        r = sent => match r {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, node = holder.node, "forwarding to the active engine");
                return no_active();
            }
        },
        _ = standby.stop.cancelled() => return no_active(),
    };
    crate::metrics::cluster_forwarded();
    let h = reply.headers.as_ref();
    let status = h
        .and_then(|h| h.get(STATUS))
        .and_then(|v| v.as_str().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    // The active node knew the credentials: this connection is a client's, not a probe's.
    if status != StatusCode::UNAUTHORIZED {
        if let Some(axum::Extension(ConnectInfo(info))) = &info {
            info.authenticated();
        }
    }
    let mut response = (status, Body::from(reply.payload)).into_response();
    if let Some(h) = h {
        for (name, values) in h.iter() {
            let Ok(name) = header::HeaderName::from_bytes(AsRef::<str>::as_ref(name).as_bytes())
            else {
                continue;
            };
            if name.as_str().eq_ignore_ascii_case(STATUS) || !forwarded(&name) {
                continue;
            }
            for v in values {
                if let Ok(v) = HeaderValue::from_str(v.as_str()) {
                    response.headers_mut().append(name.clone(), v);
                }
            }
        }
    }
    response
}

/// No engine holds the region (or it did not answer in time): nothing was acknowledged.
fn no_active() -> Response {
    let mut r = crate::http::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "no engine holds the region just now (a takeover is under way); try again",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The active side: answers requests forwarded to this node with the local router, until
/// `stop`; at most `MAX_IN_FLIGHT` at once.
pub async fn serve(
    client: async_nats::Client,
    region: RegionId,
    node: String,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut requests = client.subscribe(subject(region, &node)).await?;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let app = loop {
        if let Some(app) = LOCAL_APP.get() {
            break app.clone();
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = requests.next() => match m { Some(m) => m, None => return Ok(()) },
        };
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            let mut headers = NatsHeaders::new();
            headers.insert(STATUS, "503");
            headers.insert(header::CONTENT_TYPE.as_str(), "application/json");
            headers.insert(header::RETRY_AFTER.as_str(), "1");
            let body = crate::wire::ServerMessage::error(
                None,
                "busy",
                "too many forwarded requests at once; try again",
            )
            .encode();
            let _ = client
                .publish_with_headers(reply, headers, body.into())
                .await;
            continue;
        };
        let (client, app) = (client.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let (headers, payload) = answer(app, &msg).await;
            if let Err(e) = client.publish_with_headers(reply, headers, payload).await {
                tracing::warn!(error = %e, "answering a forwarded request");
            }
        });
    }
}

async fn answer(app: axum::Router, msg: &async_nats::Message) -> (NatsHeaders, axum::body::Bytes) {
    let h = msg.headers.as_ref();
    let get = |name: &str| h.and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
    let mut builder = Request::builder()
        .method(get(METHOD).unwrap_or_else(|| "GET".into()).as_str())
        .uri(get(URI).unwrap_or_else(|| "/".into()));
    if let Some(h) = h {
        for (name, values) in h.iter() {
            let Ok(name) = header::HeaderName::from_bytes(AsRef::<str>::as_ref(name).as_bytes())
            else {
                continue;
            };
            if name.as_str().eq_ignore_ascii_case(METHOD)
                || name.as_str().eq_ignore_ascii_case(URI)
                || !forwarded(&name)
            {
                continue;
            }
            for v in values {
                builder = builder.header(name.clone(), v.as_str());
            }
        }
    }
    let response = match builder.body(Body::from(msg.payload.clone())) {
        Ok(req) => match app.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        Err(e) => crate::http::error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("a forwarded request could not be rebuilt: {e}"),
        ),
    };
    let (parts, body) = response.into_parts();
    let mut headers = NatsHeaders::new();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        // Too big to go back over NATS: say so rather than send a truncated or empty body.
        headers.insert(STATUS, "502");
        headers.insert(header::CONTENT_TYPE.as_str(), "application/json");
        let body = crate::wire::ServerMessage::error(
            None,
            "too_big",
            format!("the answer is over {MAX_BODY} bytes, more than a forwarded answer may be; ask the active node directly"),
        )
        .encode();
        return (headers, body.into());
    };
    headers.insert(STATUS, parts.status.as_u16().to_string().as_str());
    for (name, v) in parts.headers.iter().filter(|(n, _)| forwarded(n)) {
        if let Ok(v) = v.to_str() {
            headers.append(name.as_str(), v);
        }
    }
    (headers, body)
}

/// A WebSocket opened on a standby: proxied to the active node (see the module's comment).
pub async fn websocket(
    State(standby): State<Standby>,
    info: Option<axum::Extension<ConnectInfo<ConnInfo>>>,
    ws: WebSocketUpgrade,
    req_headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let Some(active) = standby.holder() else {
        return refuse_ws(ws);
    };
    let url = format!(
        "ws://{}/v1/ws{}",
        active.addr,
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut upstream_req = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(_) => return refuse_ws(ws),
    };
    if let Some(auth) = req_headers.get(header::AUTHORIZATION) {
        upstream_req
            .headers_mut()
            .insert(header::AUTHORIZATION, auth.clone());
    }
    upstream_req
        .headers_mut()
        .insert(PROXIED, HeaderValue::from_static("1"));
    let connected =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(upstream_req)).await;
    let upstream = match connected {
        Ok(Ok((upstream, _))) => upstream,
        // The active node's own refusal (a wrong token: 401), passed on before any upgrade.
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let (parts, body) = resp.into_parts();
            return (parts.status, Body::from(body.unwrap_or_default())).into_response();
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "proxying a WebSocket to the active node");
            return refuse_ws(ws);
        }
        Err(_) => return refuse_ws(ws),
    };
    if let Some(axum::Extension(ConnectInfo(info))) = &info {
        info.authenticated();
    }
    crate::metrics::cluster_proxied_session();
    ws.on_upgrade(move |socket| pipe(socket, upstream))
}

/// No engine to proxy to: an `unavailable` frame, then close 1013 (try again later).
fn refuse_ws(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let frame = crate::wire::ServerMessage::error(
            None,
            "unavailable",
            "no engine holds the region just now (a takeover is under way); reconnect",
        )
        .encode();
        let _ = socket.send(Message::Text(frame.into())).await;
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1013,
                reason: "no active engine".into(),
            })))
            .await;
    })
}

/// Copies frames both ways until either side closes or fails; the other side is then closed
/// too (1012, service restart, when the active node went away without a close).
async fn pipe(
    client: WebSocket,
    upstream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) {
    use futures_util::SinkExt;
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut down_tx, mut down_rx) = client.split();
    loop {
        tokio::select! {
            m = down_rx.next() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    _ => { let _ = up_tx.close().await; return; }
                };
                let closing = matches!(m, Message::Close(_));
                if up_tx.send(to_upstream(m)).await.is_err() || closing {
                    return;
                }
            }
            m = up_rx.next() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    _ => {
                        let _ = down_tx
                            .send(Message::Close(Some(CloseFrame { code: 1012, reason: "the active engine went away".into() })))
                            .await;
                        return;
                    }
                };
                let Some(m) = to_client(m) else { continue };
                let closing = matches!(m, Message::Close(_));
                if down_tx.send(m).await.is_err() || closing {
                    return;
                }
            }
        }
    }
}

fn to_upstream(m: Message) -> tungstenite::Message {
    match m {
        Message::Text(t) => tungstenite::Message::text(t.as_str()),
        Message::Binary(b) => tungstenite::Message::Binary(b),
        Message::Ping(b) => tungstenite::Message::Ping(b),
        Message::Pong(b) => tungstenite::Message::Pong(b),
        Message::Close(c) => {
            tungstenite::Message::Close(c.map(|c| tungstenite::protocol::CloseFrame {
                code: c.code.into(),
                reason: c.reason.as_str().into(),
            }))
        }
    }
}

fn to_client(m: tungstenite::Message) -> Option<Message> {
    Some(match m {
        tungstenite::Message::Text(t) => Message::Text(t.as_str().into()),
        tungstenite::Message::Binary(b) => Message::Binary(b),
        tungstenite::Message::Ping(b) => Message::Ping(b),
        tungstenite::Message::Pong(b) => Message::Pong(b),
        tungstenite::Message::Close(c) => Message::Close(c.map(|c| CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}
