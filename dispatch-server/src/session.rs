//! One WebSocket client: reads frames, enforces its role, size and rate limits, talks to the
//! engine task, and writes replies and pushed frames. Generic over a `Sink`/`Stream` of
//! [`WsFrame`]s so tests can drive it without a socket; `http.rs` adapts axum's WebSocket.
//!
//! A bad frame gets an `error` frame and the session goes on; only an oversize frame (close
//! 1009), a stuck writer, a full responder queue or shutdown end it. The responder id of every
//! responder command comes from the token, never from the frame.

use crate::auth::{Credential, GridIndex, Principal, RightsIndex, TokenIndex};
use crate::engine_task::{EngineHandle, Refusal};
use crate::fanout::{ConsoleFrame, Frame, ResponderOutbox, ResponderRegistry, SubscribeReq};
use crate::metrics as m;
use crate::moves::{self, MoveBuffer};
use crate::wire::{self, AlertAccepted, ClientMessage, Filter, MovesMode, Role, ServerMessage};
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::geo::LatLon;
use dispatch_core::roster::OperatorRole;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A WebSocket frame, independent of the WebSocket library.
#[derive(Debug, Clone, PartialEq)]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Close codes the server uses.
pub mod close {
    /// Going away: the server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame larger than the limit.
    pub const TOO_BIG: u16 = 1009;
    /// Try again later: the client could not keep up with its queue.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Another connection with the same responder token replaced this one.
    pub const SUPERSEDED: u16 = 4000;
    /// No frame (not even a ping) from the client for the idle timeout.
    pub const IDLE: u16 = 4001;
    /// The session's token no longer opens the service: a new token was issued for the
    /// person (the old one is revoked) or the person was retired.
    pub const REVOKED: u16 = 4003;
}

/// Why reading the next frame failed, as the session needs to know it (the WebSocket
/// library's own errors are mapped in `http.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// A frame or message larger than the library's limit: close 1009.
    TooBig,
    /// A text frame that is not UTF-8: close 1007.
    BadUtf8,
    /// The connection broke (or any other protocol error): no close frame can help.
    Other(String),
}

impl Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::TooBig => f.write_str("frame too large"),
            ReadFailure::BadUtf8 => f.write_str("text frame is not UTF-8"),
            ReadFailure::Other(e) => f.write_str(e),
        }
    }
}

/// Per-session limits (see `Limits` in lib.rs for the defaults and why).
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_frame_bytes: usize,
    /// Sustained frames per second a client may send.
    pub rate_per_s: f64,
    /// Frames a client may send in a burst above the sustained rate.
    pub rate_burst: f64,
    /// Frames waiting to go to a responder's phone.
    pub responder_queue: usize,
    /// Frames waiting to go to a console.
    pub console_queue: usize,
    /// A write that takes longer than this ends the session (a client that stopped reading).
    pub write_timeout: Duration,
    /// A session that sends no frame at all for this long is closed with 4001. The server
    /// pings after half of it, so a live client's automatic pong keeps the session.
    pub idle_timeout: Duration,
    /// `[min_lat, min_lon, max_lat, max_lon]`: `location` positions outside it are refused
    /// `off_map` (`None`: only (0, 0) is refused). `run` sets it from the roster.
    pub area: Option<[f64; 4]>,
}

/// Everything a session needs.
#[derive(Debug, Clone)]
pub struct SessionCtx {
    pub principal: Principal,
    /// The token the session was opened with, checked again whenever the roster's tokens
    /// change (a revoked token closes the session with 4003).
    pub credential: Credential,
    /// A device's bearer token, kept only on a node of one region among several (cluster
    /// mode): an alert for another region's elder is sent there with it (`cluster/regions.rs`).
    pub bearer: Option<Arc<str>>,
    pub tokens: Arc<TokenIndex>,
    pub engine: EngineHandle,
    pub registry: Arc<ResponderRegistry>,
    pub limits: SessionLimits,
    pub shutdown: CancellationToken,
    /// Unique per connection (responder registry entries are owned by one connection).
    pub session_no: u64,
    /// The roster's grids (for `unknown_grid` in a console filter), as they are now.
    pub grids: Arc<GridIndex>,
    /// Each operator's rights: every operator message needs `dispatch`, checked per message,
    /// and a console whose operator loses it is unsubscribed at once.
    pub rights: Arc<RightsIndex>,
}

/// A token bucket (per WebSocket session, and per device for `POST /v1/alerts`).
#[derive(Debug)]
pub struct RateLimit {
    tokens: f64,
    last: Instant,
    rate_per_s: f64,
    burst: f64,
}

impl RateLimit {
    pub fn new(rate_per_s: f64, burst: f64) -> RateLimit {
        RateLimit {
            tokens: burst,
            last: Instant::now(),
            rate_per_s,
            burst,
        }
    }

    /// Whole seconds until the next request would be allowed (at least 1), for `Retry-After`.
    pub fn retry_after_s(&self) -> u64 {
        if self.rate_per_s <= 0.0 {
            return 60;
        }
        ((1.0 - self.tokens).max(0.0) / self.rate_per_s)
            .ceil()
            .max(1.0) as u64
    }

    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why a session ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    Shutdown,
    TooBig,
    BadUtf8,
    Idle,
    WriteStuck,
    QueueOverflow,
    Superseded,
    ReadError,
    Revoked,
}

/// A console's subscription.
struct Console {
    rx: mpsc::Receiver<ConsoleFrame>,
    filter: Filter,
    lagged: Arc<AtomicBool>,
    /// The seq the console has been brought up to (resubscription resumes from it).
    seq: u64,
    /// Its moves, for a console subscribed with `"moves": "batched"` (moves.rs).
    moves: Option<Arc<MoveBuffer>>,
    /// Its first frame (snapshot or `resumed`) was sent: batches of moves may follow.
    started: bool,
}

struct Session<S> {
    sink: S,
    ctx: SessionCtx,
    console: Option<Console>,
}

/// Tells the engine a responder's phone session opened or closed (journaled like any
/// command): a phone gone longer than the grace period is not offered jobs.
async fn presence(ctx: &SessionCtx, id: &dispatch_core::ids::ResponderId, online: bool) {
    let cmd = Command::Presence {
        responder_id: id.clone(),
        session: ctx.session_no,
        online,
    };
    if let Err(e) = ctx.engine.command(cmd).await {
        tracing::debug!(responder = %id, online, error = %e, "presence not recorded");
    }
}

/// Runs one session to its end.
pub async fn run_session<S, R>(sink: S, mut stream: R, ctx: SessionCtx) -> Ended
where
    S: Sink<WsFrame> + Unpin,
    S::Error: Display,
    R: Stream<Item = Result<WsFrame, ReadFailure>> + Unpin,
{
    let role = Role::from(&ctx.principal);
    m::session_opened(role);
    let mut responder_rx: Option<mpsc::Receiver<Frame>> = None;
    if let Principal::Responder(id) = &ctx.principal {
        let (tx, rx) = mpsc::channel(ctx.limits.responder_queue.max(1));
        // A newer phone replaces an older one: the old session's queue closes and it ends.
        ctx.registry.insert(
            id.clone(),
            ResponderOutbox {
                tx,
                session_no: ctx.session_no,
            },
        );
        responder_rx = Some(rx);
        presence(&ctx, id, true).await;
    }
    let mut rate = RateLimit::new(ctx.limits.rate_per_s, ctx.limits.rate_burst);
    let shutdown = ctx.shutdown.clone();
    // Keepalive: after half the idle timeout without a frame the server pings (browsers and
    // WebSocket libraries answer by themselves); a client that still sends nothing, not even
    // that pong, by the full timeout is gone or stuck, and is closed with 4001.
    let half_idle = ctx.limits.idle_timeout / 2;
    let mut pinged = false;
    let idle = tokio::time::sleep(half_idle);
    tokio::pin!(idle);
    // Batched moves go out on this tick (polled only while a batching console is started).
    let mut moves_tick = tokio::time::interval(moves::BATCH_INTERVAL);
    moves_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut credential = ctx.credential.clone();
    let mut rights_changed = ctx.rights.watch();
    let mut s = Session {
        sink,
        ctx,
        console: None,
    };
    let welcome = ServerMessage::Welcome {
        role,
        id: s.ctx.principal.id().to_string(),
        protocol: "dispatch.v1",
    };
    let mut ended = s.send(welcome.encode()).await.err();
    if let (None, Principal::Responder(id)) = (&ended, &s.ctx.principal) {
        // A phone that reconnects is told its open offer or assignment again (through its
        // queue, after the welcome). Busy: it still gets every new frame; the job it holds
        // is also in the incident it can fetch.
        if let Err(e) = s
            .ctx
            .engine
            .responder_joined(id.clone(), s.ctx.session_no)
            .await
        {
            tracing::debug!(error = %e, "could not ask for the open job");
        }
    }
    while ended.is_none() {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = s.close(close::GOING_AWAY, "server shutting down").await;
                ended = Some(Ended::Shutdown);
            }
            () = credential.changed() => {
                if !s.ctx.tokens.holds(&credential, &s.ctx.principal) {
                    m::frame_rejected("revoked");
                    let _ = s.close(close::REVOKED, "token revoked or person retired").await;
                    ended = Some(Ended::Revoked);
                }
            }
            () = changed(&mut rights_changed) => {
                // An operator whose `dispatch` role was withdrawn stops receiving the stream
                // at once (the session stays: a later change may give the role back).
                if let (Some(_), Principal::Operator(o)) = (&s.console, &s.ctx.principal) {
                    let rights = s.ctx.rights.of(o);
                    if let Err(why) = crate::http::missing_role(rights, o, OperatorRole::Dispatch) {
                        s.console = None;
                        let frame = ServerMessage::error(None, "missing_role", why);
                        ended = s.reply(frame).await.err();
                    }
                }
            }
            () = &mut idle => {
                if pinged {
                    m::frame_rejected("idle");
                    let _ = s.close(close::IDLE, "idle: no frame, not even a pong").await;
                    ended = Some(Ended::Idle);
                } else {
                    pinged = true;
                    idle.as_mut().reset(Instant::now() + half_idle);
                    ended = s.send_frame(WsFrame::Ping(Vec::new())).await.err();
                }
            }
            frame = recv_opt(&mut responder_rx) => match frame {
                Some(text) => ended = s.send(text.to_string()).await.err(),
                None => {
                    let superseded = match &s.ctx.principal {
                        Principal::Responder(id) => s.ctx.registry.get(id).is_some_and(|o| o.session_no != s.ctx.session_no),
                        _ => false,
                    };
                    let (code, why) = if superseded {
                        (close::SUPERSEDED, Ended::Superseded)
                    } else {
                        (close::TRY_AGAIN_LATER, Ended::QueueOverflow)
                    };
                    let _ = s.close(code, "reconnect").await;
                    ended = Some(why);
                }
            },
            _ = moves_tick.tick(), if s.console.as_ref().is_some_and(|c| c.started && c.moves.is_some()) => {
                // Before the console's queue in this biased order: at most twenty a second, so
                // a busy queue cannot hold positions back, nor can these starve the queue.
                let batch = s.console.as_ref().and_then(|c| c.moves.as_ref()).and_then(|b| b.take());
                if let Some(msg) = batch {
                    ended = s.reply(msg).await.err();
                }
            }
            frame = recv_console(&mut s.console) => match frame {
                Some(f) => {
                    if let Some(c) = &mut s.console {
                        c.seq = c.seq.max(f.seq);
                        c.started = true;
                    }
                    ended = s.send(f.text.to_string()).await.err();
                }
                None => ended = s.console_closed().await.err(),
            },
            incoming = stream.next() => {
            pinged = false;
            idle.as_mut().reset(Instant::now() + half_idle);
            match incoming {
                None | Some(Ok(WsFrame::Close(_))) => ended = Some(Ended::ClientClosed),
                Some(Err(ReadFailure::TooBig)) => {
                    m::frame_rejected("too_big");
                    let _ = s.close(close::TOO_BIG, "frame too large").await;
                    ended = Some(Ended::TooBig);
                }
                Some(Err(ReadFailure::BadUtf8)) => {
                    m::frame_rejected("bad_utf8");
                    let _ = s.close(close::INVALID_PAYLOAD, "text frame is not UTF-8").await;
                    ended = Some(Ended::BadUtf8);
                }
                Some(Err(ReadFailure::Other(e))) => {
                    tracing::debug!(error = %e, "websocket read failed");
                    ended = Some(Ended::ReadError);
                }
                Some(Ok(WsFrame::Text(text))) => {
                    if text.len() > s.ctx.limits.max_frame_bytes {
                        m::frame_rejected("too_big");
                        let _ = s.close(close::TOO_BIG, "frame too large").await;
                        ended = Some(Ended::TooBig);
                    } else if !rate.allow() {
                        m::frame_rejected("rate_limited");
                        let id = wire::parse_client(&text).id;
                        ended = s.reply(ServerMessage::error(id, "rate_limited", "too many frames; slow down")).await.err();
                    } else {
                        ended = s.handle_text(&text).await.err();
                    }
                }
                Some(Ok(WsFrame::Binary(b))) => {
                    if b.len() > s.ctx.limits.max_frame_bytes {
                        m::frame_rejected("too_big");
                        let _ = s.close(close::TOO_BIG, "frame too large").await;
                        ended = Some(Ended::TooBig);
                    } else {
                        m::frame_rejected("bad_json");
                        ended = s.reply(ServerMessage::error(None, "bad_json", "binary frames are not supported; send JSON text")).await.err();
                    }
                }
                Some(Ok(WsFrame::Ping(_) | WsFrame::Pong(_))) => {}
            }
            }
        }
    }
    if let Principal::Responder(id) = &s.ctx.principal {
        let no = s.ctx.session_no;
        // Only the live session's end means the phone is gone (a newer one replaced it
        // otherwise).
        if s.ctx
            .registry
            .remove_if(id, |_, o| o.session_no == no)
            .is_some()
        {
            presence(&s.ctx, id, false).await;
        }
    }
    m::session_closed(role);
    let ended = ended.unwrap_or(Ended::ClientClosed);
    tracing::debug!(
        role = role.as_str(),
        id = s.ctx.principal.id(),
        ?ended,
        "session ended"
    );
    ended
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<Frame>>) -> Option<Frame> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_console(c: &mut Option<Console>) -> Option<ConsoleFrame> {
    match c {
        Some(c) => c.rx.recv().await,
        None => std::future::pending().await,
    }
}

impl<S> Session<S>
where
    S: Sink<WsFrame> + Unpin,
    S::Error: Display,
{
    async fn send(&mut self, text: String) -> Result<(), Ended> {
        self.send_frame(WsFrame::Text(text)).await
    }

    async fn send_frame(&mut self, frame: WsFrame) -> Result<(), Ended> {
        match tokio::time::timeout(self.ctx.limits.write_timeout, self.sink.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "websocket write failed");
                Err(Ended::ReadError)
            }
            Err(_) => Err(Ended::WriteStuck),
        }
    }

    async fn reply(&mut self, msg: ServerMessage) -> Result<(), Ended> {
        self.send(msg.encode()).await
    }

    async fn close(&mut self, code: u16, reason: &str) -> Result<(), Ended> {
        let frame = WsFrame::Close(Some((code, reason.to_string())));
        match tokio::time::timeout(self.ctx.limits.write_timeout, self.sink.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ended::WriteStuck),
        }
    }

    /// The console's queue closed: the fanout dropped it for lagging (resubscribe from the
    /// last seq it has, which replays or sends a fresh snapshot), or the engine stopped.
    async fn console_closed(&mut self) -> Result<(), Ended> {
        let Some(c) = self.console.take() else {
            return Ok(());
        };
        if !c.lagged.load(Ordering::SeqCst) {
            return self
                .reply(ServerMessage::error(
                    None,
                    "unavailable",
                    "the event stream stopped",
                ))
                .await;
        }
        tracing::info!(
            operator = self.ctx.principal.id(),
            seq = c.seq,
            "console lagged; resubscribing"
        );
        let mode = if c.moves.is_some() {
            MovesMode::Batched
        } else {
            MovesMode::Each
        };
        self.subscribe(c.filter, Some(c.seq), None, true, mode)
            .await
    }

    async fn subscribe(
        &mut self,
        filter: Filter,
        last_seq: Option<u64>,
        re: Option<Value>,
        after_lag: bool,
        mode: MovesMode,
    ) -> Result<(), Ended> {
        let (tx, rx) = mpsc::channel(self.ctx.limits.console_queue.max(2));
        let lagged = Arc::new(AtomicBool::new(false));
        let moves = (mode == MovesMode::Batched).then(|| Arc::new(MoveBuffer::default()));
        let req = SubscribeReq {
            filter: filter.clone(),
            last_seq,
            re: re.clone(),
            tx,
            lagged: lagged.clone(),
            after_lag,
            moves: moves.clone(),
        };
        match self.ctx.engine.subscribe(req).await {
            Ok(()) => {
                self.console = Some(Console {
                    rx,
                    filter,
                    lagged,
                    seq: last_seq.unwrap_or(0),
                    moves,
                    started: false,
                });
                Ok(())
            }
            Err(e) => {
                self.reply(ServerMessage::error(re, e.code(), e.to_string()))
                    .await
            }
        }
    }

    async fn handle_text(&mut self, text: &str) -> Result<(), Ended> {
        let incoming = wire::parse_client(text);
        let re = incoming.id;
        let msg = match incoming.message {
            Ok(msg) => msg,
            Err(e) => {
                m::frame_rejected(e.code);
                return self
                    .reply(ServerMessage::error(re, e.code, e.message))
                    .await;
            }
        };
        if let Some(role) = msg.role() {
            if role != Role::from(&self.ctx.principal) {
                m::frame_rejected("forbidden");
                let why = format!(
                    "a {} may not send `{}`",
                    Role::from(&self.ctx.principal).as_str(),
                    message_type(&msg)
                );
                return self.reply(ServerMessage::error(re, "forbidden", why)).await;
            }
            if let (Role::Operator, Principal::Operator(o)) = (role, &self.ctx.principal) {
                let rights = self.ctx.rights.of(o);
                if let Err(why) = crate::http::missing_role(rights, o, msg.operator_role()) {
                    return self
                        .reply(ServerMessage::error(re, "missing_role", why))
                        .await;
                }
            }
        }
        let cmd = match self.command_of(msg, re.clone()).await? {
            Some(cmd) => cmd,
            None => return Ok(()),
        };
        let is_alert = matches!(cmd, Command::Alert(_));
        let alert_id = match &cmd {
            Command::Alert(a) => Some(a.alert_id.clone()),
            _ => None,
        };
        match self.ctx.engine.command(cmd).await {
            Ok(Reply::AlertAccepted {
                incident_id,
                duplicate,
                merged,
                problem,
            }) => {
                m::alert_accepted(duplicate);
                let Some(alert_id) = alert_id else {
                    return self.reply(ServerMessage::Ack { re }).await;
                };
                match AlertAccepted::reply(
                    re,
                    alert_id,
                    incident_id,
                    duplicate,
                    merged,
                    problem.as_ref(),
                ) {
                    Ok(body) => {
                        let text = serde_json::to_string(&body).unwrap_or_default();
                        self.send(text).await
                    }
                    Err(frame) => {
                        tracing::warn!(%incident_id, "alert kept for an operator: not dispatchable");
                        self.reply(*frame).await
                    }
                }
            }
            Ok(_) => self.reply(ServerMessage::Ack { re }).await,
            Err(e) => {
                if is_alert {
                    tracing::warn!(error = %e, "alert refused");
                }
                self.reply(refusal(re, &e)).await
            }
        }
    }

    /// The engine command of a message, with the caller's identity bound from the token;
    /// `None` when the message was handled here (or refused with an error frame).
    async fn command_of(
        &mut self,
        msg: ClientMessage,
        re: Option<Value>,
    ) -> Result<Option<Command>, Ended> {
        use ClientMessage as C;
        let p = self.ctx.principal.clone();
        let cmd = match (msg, &p) {
            (C::Ping, _) => {
                self.reply(ServerMessage::Pong { re }).await?;
                return Ok(None);
            }
            (C::Alert(body), Principal::Device(device_id)) => {
                m::alert_received("ws");
                if let Some(token) = &self.ctx.bearer {
                    let elsewhere =
                        crate::cluster::regions::alert_elsewhere(token, &body, re.clone()).await;
                    if let Some(frame) = elsewhere {
                        self.send(frame).await?;
                        return Ok(None);
                    }
                }
                match body.into_command(device_id.clone()) {
                    Ok(cmd) => cmd,
                    Err(e) => {
                        m::frame_rejected(e.code);
                        self.reply(ServerMessage::error(re, e.code, e.message))
                            .await?;
                        return Ok(None);
                    }
                }
            }
            (C::CancelAlert { alert_id }, Principal::Device(device_id)) => Command::CancelAlert {
                alert_id,
                device_id: device_id.clone(),
            },
            (C::CheckIn { elder_id }, Principal::Device(device_id)) => Command::CheckIn {
                elder_id,
                device_id: device_id.clone(),
            },
            (C::Location { position }, Principal::Responder(r)) => {
                match position
                    .to_wgs84()
                    .and_then(|p| on_map(p, self.ctx.limits.area))
                {
                    Ok(p) => {
                        m::location_frame();
                        self.ctx.engine.location(r.clone(), p)
                    }
                    Err(e) => {
                        m::frame_rejected(e.code);
                        self.reply(ServerMessage::error(re, e.code, e.message))
                            .await?;
                    }
                }
                return Ok(None);
            }
            (C::Availability { status }, Principal::Responder(r)) => Command::SetAvailability {
                responder_id: r.clone(),
                status,
            },
            (C::Accept { offer_id }, Principal::Responder(r)) => Command::Accept {
                responder_id: r.clone(),
                offer_id,
            },
            (C::Decline { offer_id }, Principal::Responder(r)) => Command::Decline {
                responder_id: r.clone(),
                offer_id,
            },
            (C::Arrived { incident_id }, Principal::Responder(r)) => Command::Arrived {
                responder_id: r.clone(),
                incident_id,
            },
            (C::Complete { incident_id }, Principal::Responder(r)) => Command::Complete {
                responder_id: r.clone(),
                incident_id,
            },
            (C::RequestAmbulance { incident_id }, Principal::Responder(r)) => {
                Command::RequestAmbulance {
                    responder_id: r.clone(),
                    incident_id,
                }
            }
            (
                C::Subscribe {
                    filter,
                    last_seq,
                    moves,
                },
                Principal::Operator(_),
            ) => {
                let grids = self.ctx.grids.get();
                let unknown = filter
                    .grids
                    .iter()
                    .flatten()
                    .find(|g| !grids.contains_key(*g));
                if let Some(g) = unknown {
                    m::frame_rejected("unknown_grid");
                    let why = format!("no grid `{g}` on the roster");
                    self.reply(ServerMessage::error(re, "unknown_grid", why))
                        .await?;
                    return Ok(None);
                }
                self.subscribe(filter, last_seq, re, false, moves).await?;
                return Ok(None);
            }
            (
                C::Assign {
                    incident_id,
                    responder_id,
                },
                Principal::Operator(o),
            ) => Command::Assign {
                operator_id: o.clone(),
                incident_id,
                responder_id,
            },
            (
                C::Cancel {
                    incident_id,
                    reason,
                },
                Principal::Operator(o),
            ) => Command::Cancel {
                operator_id: o.clone(),
                incident_id,
                reason,
            },
            (C::Resolve { incident_id, note }, Principal::Operator(o)) => Command::Resolve {
                operator_id: o.clone(),
                incident_id,
                note,
            },
            (C::Candidates { incident_id, limit }, Principal::Operator(_)) => {
                let limit = limit.unwrap_or(10);
                let msg = match self.ctx.engine.candidates(incident_id, limit).await {
                    Ok(Some(candidates)) => ServerMessage::Candidates {
                        re,
                        incident_id,
                        candidates,
                    },
                    Ok(None) => ServerMessage::error(
                        re,
                        "unknown_incident",
                        format!("no open incident {incident_id}"),
                    ),
                    Err(e) => refusal(re, &e),
                };
                self.reply(msg).await?;
                return Ok(None);
            }
            (
                C::People {
                    op,
                    entry,
                    entry_id,
                    body,
                },
                Principal::Operator(o),
            ) => {
                let by = dispatch_core::model::Actor::Operator(o.clone());
                let done = match body.map(crate::people::object).transpose() {
                    Ok(body) => {
                        let engine = &self.ctx.engine;
                        crate::people::perform(engine, by, op, entry, entry_id.as_deref(), body)
                            .await
                    }
                    Err(r) => Err(r),
                };
                let msg = match done {
                    Ok((status, body)) => ServerMessage::PeopleResult {
                        re,
                        status: status.as_u16(),
                        body,
                    },
                    Err(r) => ServerMessage::error(re, r.code, r.message),
                };
                self.reply(msg).await?;
                return Ok(None);
            }
            // Role mismatches were refused before; this arm keeps the match total.
            (msg, _) => {
                self.reply(ServerMessage::error(
                    re,
                    "forbidden",
                    format!("not allowed: `{}`", message_type(&msg)),
                ))
                .await?;
                return Ok(None);
            }
        };
        Ok(Some(cmd))
    }
}

/// Resolves when the watched table changed (never, once its sender is gone).
async fn changed(rx: &mut tokio::sync::watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Refuses (0, 0) (a phone without a fix often reports it) and, when known, any position
/// outside the service area.
pub fn on_map(p: LatLon, area: Option<[f64; 4]>) -> Result<LatLon, wire::WireError> {
    let outside = match area {
        Some([lat0, lon0, lat1, lon1]) => {
            p.lat < lat0 || p.lat > lat1 || p.lon < lon0 || p.lon > lon1
        }
        None => false,
    };
    if (p.lat == 0.0 && p.lon == 0.0) || outside {
        return Err(wire::WireError::new(
            "off_map",
            format!("position {p} is outside the service area"),
        ));
    }
    Ok(p)
}

/// The error frame of a refusal.
pub fn refusal(re: Option<Value>, e: &Refusal) -> ServerMessage {
    let mut msg = ServerMessage::error(re, e.code(), e.to_string());
    if let (
        Refusal::Engine(CommandError::Resting { until, .. }),
        ServerMessage::Error { resting_until, .. },
    ) = (e, &mut msg)
    {
        *resting_until = Some(*until);
    }
    msg
}

fn message_type(msg: &ClientMessage) -> &'static str {
    msg.into()
}
