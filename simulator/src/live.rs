//! `simulator live`: a simulated day in wall-clock time against a running `dispatch serve`, for
//! the demo and the console: responder phones connect, go on duty and wander near home; device
//! gateways send the scenario generator's alert streams (falls, help of every service, missed
//! check-ins, some "I'm OK" cancels) at a modest rate; simulated responders answer offers with
//! the virtual-time run's behaviour (accept, decline or stay silent, keyed seeded draws),
//! travel along the `route` of their `assigned` frame, arrive, stay on scene and complete.
//!
//! Bounded: loopback targets only, a cap on phones, a wall-clock limit, bounded reconnect
//! attempts with backoff when the server goes away (a restart), and a one-line summary every
//! `summary_every_s`. `--speedup` shortens travel and on-scene time (not reaction times).

use crate::behaviour::{along, keyed_rng, uniform, BehaviourParams};
use crate::credentials::Tokens;
use crate::scenario::{alert_schedule, ScenarioParams, ScheduledAlert, VIRTUAL_EPOCH};
use crate::ws_client::{
    check_loopback, connect_with_retry, error_code, frame_type, is_race, Retry, CLOSE_REPLACED,
};
use anyhow::{bail, Context as _};
use dispatch_core::geo::LatLon;
use dispatch_core::model::{AlertKind, ServiceKind};
use dispatch_core::roster::RosterFile;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What to simulate, how fast, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveParams {
    /// `ws://127.0.0.1:PORT/v1/ws` (loopback only).
    pub url: String,
    /// Seeds the alert streams and every responder's decisions.
    pub seed: u64,
    /// Alerts per minute over all kinds, split in the scenario generator's proportions.
    pub alerts_per_min: f64,
    /// Travel and on-scene time run this many times faster than life (reaction times do not).
    pub speedup: f64,
    /// Hard wall-clock bound of the run, seconds.
    pub max_duration_s: f64,
    /// Most responder phones simulated (the roster's first, in order, minus `leave_free`).
    pub max_phones: usize,
    /// Device gateway connections the alerts are spread over.
    pub gateways: usize,
    /// Responders the simulator leaves alone (a person drives them in the responder app).
    pub leave_free: Vec<String>,
    /// Shares, delays, pace and on-scene minutes (`behaviour.rs`).
    pub behaviour: BehaviourParams,
    /// An idle phone reports a position near home about this often (seconds).
    pub wander_every_s: f64,
    /// A travelling phone reports its position this often (seconds of wall time).
    pub moving_every_s: f64,
    /// Phones connect spread over this many seconds; alerts start after.
    pub connect_over_s: f64,
    /// A summary line on stderr this often (seconds); 0 for none.
    pub summary_every_s: f64,
    /// Reconnect attempts per dropped socket.
    pub retry: Retry,
}

impl LiveParams {
    /// Defaults for a loopback server at `url`.
    pub fn new(url: impl Into<String>) -> LiveParams {
        LiveParams {
            url: url.into(),
            seed: 1,
            alerts_per_min: 2.0,
            speedup: 1.0,
            max_duration_s: 86_400.0,
            max_phones: 5_000,
            gateways: 4,
            leave_free: Vec::new(),
            behaviour: BehaviourParams::default(),
            wander_every_s: 20.0,
            moving_every_s: 2.0,
            connect_over_s: 10.0,
            summary_every_s: 30.0,
            retry: Retry::default(),
        }
    }
}

/// What happened so far (the periodic line and the returned result).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveSummary {
    pub elapsed_s: f64,
    /// Phones simulated, and connected at the moment of the summary.
    pub phones: u64,
    pub phones_connected: u64,
    pub alerts_sent: u64,
    pub alerts_acknowledged: u64,
    pub cancels_sent: u64,
    pub offers: u64,
    pub accepts: u64,
    pub declines: u64,
    /// Offers left to expire (phone in a pocket).
    pub silent: u64,
    pub assignments: u64,
    pub arrivals: u64,
    pub completions: u64,
    /// Incidents a simulated responder was told were closed (resolved or cancelled).
    pub closed_seen: u64,
    /// Sockets that dropped (server restart) and came back.
    pub disconnects: u64,
    pub reconnects: u64,
    /// Connection attempts that failed and were retried (the server restarting).
    pub connect_retries: u64,
    /// Phones taken over by another connection with the same token (close code 4000).
    pub replaced: u64,
    /// Refusals that are honest races (a reply crossing an expiry, a closed incident).
    pub races: u64,
    /// `error` frames by code, plus `gave_up` (every reconnect attempt failed) and `protocol`
    /// (an unreadable frame).
    pub errors: BTreeMap<String, u64>,
}

impl LiveSummary {
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// One line for the log.
    pub fn line(&self) -> String {
        format!(
            "{:>6.0} s | phones {}/{} | alerts {} sent, {} acked, {} cancelled | offers {} \
             (accept {}, decline {}, silent {}) | assigned {}, arrived {}, completed {} | \
             disconnects {}, reconnects {} ({} failed attempts) | races {} | errors {} {:?}",
            self.elapsed_s,
            self.phones_connected,
            self.phones,
            self.alerts_sent,
            self.alerts_acknowledged,
            self.cancels_sent,
            self.offers,
            self.accepts,
            self.declines,
            self.silent,
            self.assignments,
            self.arrivals,
            self.completions,
            self.disconnects,
            self.reconnects,
            self.connect_retries,
            self.races,
            self.total_errors(),
            self.errors,
        )
    }
}

#[derive(Default)]
struct Stats {
    phones: AtomicU64,
    phones_connected: AtomicU64,
    alerts_sent: AtomicU64,
    alerts_acknowledged: AtomicU64,
    cancels_sent: AtomicU64,
    offers: AtomicU64,
    accepts: AtomicU64,
    declines: AtomicU64,
    silent: AtomicU64,
    assignments: AtomicU64,
    arrivals: AtomicU64,
    completions: AtomicU64,
    closed_seen: AtomicU64,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
    connect_retries: AtomicU64,
    replaced: AtomicU64,
    races: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One (re)connection of a phone or a gateway, counted the same way for both: failed
/// attempts are retries, giving up is an error (unless stopping), a later round a reconnect.
struct Connecting<'a> {
    url: &'a str,
    token: &'a str,
    retry: Retry,
    round: u32,
    stats: &'a Stats,
}

impl Connecting<'_> {
    async fn connect(
        self,
        jitter_rng: &mut ChaCha8Rng,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<crate::ws_client::Socket> {
        let stats = self.stats;
        let ws = connect_with_retry(
            self.url,
            self.token,
            self.retry,
            &mut || jitter_rng.random::<f64>(),
            stop,
            &mut |_| bump(&stats.connect_retries),
        )
        .await;
        let Some(ws) = ws else {
            if !*stop.borrow() {
                stats.error("gave_up");
            }
            return None;
        };
        if self.round > 0 {
            bump(&stats.reconnects);
        }
        Some(ws)
    }
}

impl Stats {
    fn error(&self, code: &str) {
        let mut e = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *e.entry(code.to_string()).or_default() += 1;
    }

    fn summary(&self, elapsed_s: f64) -> LiveSummary {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LiveSummary {
            elapsed_s,
            phones: g(&self.phones),
            phones_connected: g(&self.phones_connected),
            alerts_sent: g(&self.alerts_sent),
            alerts_acknowledged: g(&self.alerts_acknowledged),
            cancels_sent: g(&self.cancels_sent),
            offers: g(&self.offers),
            accepts: g(&self.accepts),
            declines: g(&self.declines),
            silent: g(&self.silent),
            assignments: g(&self.assignments),
            arrivals: g(&self.arrivals),
            completions: g(&self.completions),
            closed_seen: g(&self.closed_seen),
            disconnects: g(&self.disconnects),
            reconnects: g(&self.reconnects),
            connect_retries: g(&self.connect_retries),
            replaced: g(&self.replaced),
            races: g(&self.races),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The alert streams of a live run of `duration_s` seconds: the scenario generator's four
/// Poisson streams on the roster's elders, their rates scaled together to `alerts_per_min`.
/// Times are offsets from the start of the run.
pub fn live_alerts(
    roster: &RosterFile,
    seed: u64,
    alerts_per_min: f64,
    duration_s: f64,
) -> anyhow::Result<Vec<(Duration, ScheduledAlert)>> {
    if !(alerts_per_min >= 0.0 && alerts_per_min.is_finite()) {
        bail!("alerts per minute must be a non-negative number, got {alerts_per_min}");
    }
    if roster.elders.is_empty() {
        bail!("the roster has no elder to raise alerts for");
    }
    if alerts_per_min == 0.0 || duration_s <= 0.0 {
        return Ok(Vec::new());
    }
    let d = ScenarioParams::default();
    let base = d.falls_per_hour
        + d.rescue_calls_per_hour
        + d.service_calls_per_hour
        + d.missed_check_ins_per_hour;
    let k = alerts_per_min * 60.0 / base;
    let params = ScenarioParams {
        seed,
        hours: duration_s / 3600.0,
        falls_per_hour: d.falls_per_hour * k,
        rescue_calls_per_hour: d.rescue_calls_per_hour * k,
        service_calls_per_hour: d.service_calls_per_hour * k,
        missed_check_ins_per_hour: d.missed_check_ins_per_hour * k,
        ..d
    };
    let start = VIRTUAL_EPOCH;
    let end = start.plus_ms((duration_s * 1000.0).round() as u64);
    let mut rng = keyed_rng(seed, &[b"live-alerts"]);
    Ok(
        alert_schedule(&roster.elders, &params, start, end, &mut rng)
            .into_iter()
            .map(|a| (Duration::from_millis(a.at.ms_since(start)), a))
            .collect(),
    )
}

/// One simulated responder's phone: what it will do next, as a pure state machine (frames
/// in, frames out), so the socket loop around it stays small.
struct Phone {
    id: String,
    home: LatLon,
    pos: LatLon,
    seed: u64,
    behaviour: Arc<BehaviourParams>,
    speedup: f64,
    wander_every: Duration,
    moving_every: Duration,
    rng: ChaCha8Rng,
    /// Replies to send: (when, offer_id, accept).
    replies: Vec<(Instant, u64, bool)>,
    job: Option<Job>,
    next_wander: Instant,
    requests: u64,
}

struct Job {
    incident_id: u64,
    route: Vec<LatLon>,
    started: Instant,
    travel: Duration,
    on_scene: Duration,
    next_ping: Instant,
    /// Set once arrived: when to complete.
    complete_at: Option<Instant>,
}

fn position(v: &Value) -> Option<LatLon> {
    Some(LatLon {
        lat: v.get("lat")?.as_f64()?,
        lon: v.get("lon")?.as_f64()?,
    })
}

fn pos_json(p: LatLon) -> Value {
    json!({"lat": p.lat, "lon": p.lon})
}

impl Phone {
    fn new(id: &str, home: LatLon, params: &LiveParams, behaviour: Arc<BehaviourParams>) -> Phone {
        let mut rng = keyed_rng(params.seed, &[b"live-phone", id.as_bytes()]);
        let wander_every = Duration::from_secs_f64(params.wander_every_s.max(1.0));
        let first = wander_every.mul_f64(rng.random::<f64>());
        Phone {
            id: id.to_string(),
            home,
            pos: home,
            seed: params.seed,
            behaviour,
            speedup: params.speedup,
            wander_every,
            moving_every: Duration::from_secs_f64(params.moving_every_s.max(0.2)),
            rng,
            replies: Vec::new(),
            job: None,
            next_wander: Instant::now() + first,
            requests: 0,
        }
    }

    fn request(&mut self, v: Value) -> Value {
        self.requests += 1;
        let mut v = v;
        v["id"] = json!(self.requests);
        v
    }

    /// Frames on going on duty (a fresh connection of a phone not on a job).
    fn on_duty(&mut self) -> Vec<Value> {
        if self.job.is_some() {
            return Vec::new();
        }
        vec![
            json!({"type": "location", "position": pos_json(self.pos)}),
            self.request(json!({"type": "availability", "status": "available"})),
        ]
    }

    fn next_due(&self) -> Instant {
        let mut next = match &self.job {
            Some(j) => match j.complete_at {
                Some(t) => t,
                None => j.next_ping.min(j.started + j.travel),
            },
            None => self.next_wander,
        };
        for (t, _, _) in &self.replies {
            next = next.min(*t);
        }
        next
    }

    fn on_frame(&mut self, v: &Value, now: Instant, out: &mut Vec<Value>, stats: &Stats) {
        let u64_of = |k: &str| v.get(k).and_then(Value::as_u64);
        match frame_type(v) {
            "offer" => {
                let (Some(offer_id), Some(incident_id)) =
                    (u64_of("offer_id"), u64_of("incident_id"))
                else {
                    stats.error("protocol");
                    return;
                };
                // A reconnect resends the open offer: it is already decided.
                if self.replies.iter().any(|r| r.1 == offer_id) {
                    return;
                }
                bump(&stats.offers);
                let mut rng = keyed_rng(
                    self.seed,
                    &[
                        b"live-offer",
                        self.id.as_bytes(),
                        &incident_id.to_le_bytes(),
                        &offer_id.to_le_bytes(),
                    ],
                );
                let b = &self.behaviour;
                let x: f64 = rng.random();
                let (accept, delay) = if x < b.accept_share {
                    (true, uniform(&mut rng, b.accept_delay_s))
                } else if x < b.accept_share + b.decline_share {
                    (false, uniform(&mut rng, b.decline_delay_s))
                } else {
                    bump(&stats.silent);
                    return;
                };
                self.replies.push((
                    now + Duration::from_secs_f64(delay.max(0.0)),
                    offer_id,
                    accept,
                ));
            }
            "offer_withdrawn" => {
                if let Some(offer_id) = u64_of("offer_id") {
                    self.replies.retain(|r| r.1 != offer_id);
                }
            }
            "assigned" => {
                let Some(incident_id) = u64_of("incident_id") else {
                    stats.error("protocol");
                    return;
                };
                // A reconnect resends the job being worked on: keep the progress.
                if self
                    .job
                    .as_ref()
                    .is_some_and(|j| j.incident_id == incident_id)
                {
                    return;
                }
                bump(&stats.assignments);
                self.replies.clear();
                let mut route: Vec<LatLon> = v
                    .get("route")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(position).collect())
                    .unwrap_or_default();
                if route.is_empty() {
                    route.push(self.pos);
                    if let Some(p) = v.get("position").and_then(position) {
                        route.push(p);
                    }
                }
                let eta_s = v.get("eta_s").and_then(Value::as_f64).unwrap_or(0.0);
                let kind: AlertKind = v
                    .get("kind")
                    .and_then(|k| serde_json::from_value(k.clone()).ok())
                    .unwrap_or(AlertKind::Fall);
                let service: Option<ServiceKind> = v
                    .get("service")
                    .and_then(|k| serde_json::from_value(k.clone()).ok());
                let key = incident_id.to_le_bytes();
                let b = &self.behaviour;
                let mut rng = keyed_rng(self.seed, &[b"live-job", self.id.as_bytes(), &key]);
                let pace = uniform(&mut rng, b.pace_factor);
                let minutes = uniform(&mut rng, b.service_min(kind, service));
                let speedup = self.speedup.max(1e-3);
                self.job = Some(Job {
                    incident_id,
                    route,
                    started: now,
                    travel: Duration::from_secs_f64((eta_s * pace / speedup).clamp(0.0, 86_400.0)),
                    on_scene: Duration::from_secs_f64(
                        (minutes * 60.0 / speedup).clamp(0.0, 86_400.0),
                    ),
                    next_ping: now + self.moving_every,
                    complete_at: None,
                });
                self.on_due(now, out, stats);
            }
            "incident_closed" => {
                let id = u64_of("incident_id");
                if self.job.as_ref().is_some_and(|j| Some(j.incident_id) == id) {
                    bump(&stats.closed_seen);
                    self.job = None;
                    self.next_wander = now + self.wander_every;
                }
            }
            "error" => {
                let code = error_code(v);
                if is_race(code) {
                    bump(&stats.races);
                } else {
                    stats.error(code);
                }
            }
            _ => {}
        }
    }

    fn on_due(&mut self, now: Instant, out: &mut Vec<Value>, stats: &Stats) {
        let due: Vec<(u64, bool)> = self
            .replies
            .iter()
            .filter(|r| r.0 <= now)
            .map(|r| (r.1, r.2))
            .collect();
        self.replies.retain(|r| r.0 > now);
        for (offer_id, accept) in due {
            let kind = if accept { "accept" } else { "decline" };
            bump(if accept {
                &stats.accepts
            } else {
                &stats.declines
            });
            let f = self.request(json!({"type": kind, "offer_id": offer_id}));
            out.push(f);
        }
        if let Some(job) = &mut self.job {
            if let Some(at) = job.complete_at {
                if now >= at {
                    let id = job.incident_id;
                    self.job = None;
                    self.next_wander = now + self.wander_every;
                    bump(&stats.completions);
                    let f = self.request(json!({"type": "complete", "incident_id": id}));
                    out.push(f);
                }
            } else if now >= job.started + job.travel {
                let at = *job.route.last().unwrap_or(&self.pos);
                self.pos = at;
                job.complete_at = Some(now + job.on_scene);
                let id = job.incident_id;
                bump(&stats.arrivals);
                out.push(json!({"type": "location", "position": pos_json(at)}));
                let f = self.request(json!({"type": "arrived", "incident_id": id}));
                out.push(f);
            } else if now >= job.next_ping {
                let f = now.duration_since(job.started).as_secs_f64()
                    / job.travel.as_secs_f64().max(1e-9);
                self.pos = along(&job.route, f);
                job.next_ping = now + self.moving_every;
                out.push(json!({"type": "location", "position": pos_json(self.pos)}));
            }
        } else if now >= self.next_wander {
            // A few tens of metres around home: errands, the garden, the neighbour's.
            self.pos = LatLon {
                lat: self.home.lat + self.rng.random_range(-0.0003..0.0003),
                lon: self.home.lon + self.rng.random_range(-0.0003..0.0003),
            };
            let jitter = self.rng.random_range(0.75..1.25);
            self.next_wander = now + self.wander_every.mul_f64(jitter);
            out.push(json!({"type": "location", "position": pos_json(self.pos)}));
        }
    }
}

/// How a connection ended.
enum End {
    Stop,
    Dropped,
    Replaced,
}

/// Most times one phone or gateway comes back after its socket dropped.
const MAX_RECONNECTS: u32 = 100;

async fn run_phone(
    mut phone: Phone,
    url: String,
    token: String,
    start_at: Instant,
    retry: Retry,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::time::sleep_until(start_at) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    for round in 0..=MAX_RECONNECTS {
        let mut jitter_rng = keyed_rng(phone.seed, &[b"live-jitter", phone.id.as_bytes()]);
        let Some(ws) = (Connecting {
            url: &url,
            token: &token,
            retry,
            round,
            stats: &stats,
        })
        .connect(&mut jitter_rng, &mut stop)
        .await
        else {
            return;
        };
        bump(&stats.phones_connected);
        let (mut tx, mut rx) = ws.split();
        let mut out = phone.on_duty();
        let end = 'conn: loop {
            for f in out.drain(..) {
                if tx.send(Message::Text(f.to_string().into())).await.is_err() {
                    break 'conn End::Dropped;
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break 'conn End::Stop,
                _ = tokio::time::sleep_until(phone.next_due()) => {
                    phone.on_due(Instant::now(), &mut out, &stats);
                }
                msg = rx.next() => match msg {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(text.as_str()) {
                        Ok(v) => phone.on_frame(&v, Instant::now(), &mut out, &stats),
                        Err(_) => stats.error("protocol"),
                    },
                    Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == CLOSE_REPLACED => {
                        break 'conn End::Replaced;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break 'conn End::Dropped,
                },
            }
        };
        stats.phones_connected.fetch_sub(1, Ordering::Relaxed);
        match end {
            End::Stop => {
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
            End::Replaced => {
                bump(&stats.replaced);
                return;
            }
            End::Dropped => bump(&stats.disconnects),
        }
        // The server went away (a restart): come back after a short, spread-out pause.
        let pause = Duration::from_millis(200 + jitter_rng.random_range(0..800));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One thing a gateway sends at its time.
enum Send {
    Alert(ScheduledAlert),
    Cancel(String),
}

fn alert_frame(a: &ScheduledAlert, alert_id: &str) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut f = json!({
        "type": "alert", "id": alert_id, "alert_id": alert_id, "kind": a.alert.kind,
        "elder_id": a.alert.elder_id.as_str(),
        // A wearable detects about a second before the gateway forwards.
        "detected_at": now_ms - 1_000,
        "ambulance_requested": a.alert.ambulance_requested,
    });
    if let Some(s) = a.alert.service {
        f["service"] = json!(s);
    }
    if let Some(p) = a.alert.position {
        f["position"] = pos_json(p);
    }
    f
}

async fn run_gateway(
    schedule: Vec<(Instant, Send)>,
    url: String,
    token: String,
    seed: u64,
    retry: Retry,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut jitter_rng = keyed_rng(seed, &[b"live-gateway-jitter", token.as_bytes()]);
    // Alerts sent and not yet acknowledged (durable): resent after a reconnect, which the
    // server's `alert_id` key makes harmless.
    let mut unacked: HashMap<String, Value> = HashMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    let mut items = schedule.into_iter().peekable();
    for round in 0..=MAX_RECONNECTS {
        let Some(ws) = (Connecting {
            url: &url,
            token: &token,
            retry,
            round,
            stats: &stats,
        })
        .connect(&mut jitter_rng, &mut stop)
        .await
        else {
            return;
        };
        let (mut tx, mut rx) = ws.split();
        let mut out: Vec<Value> = unacked.values().cloned().collect();
        let end = 'conn: loop {
            for f in out.drain(..) {
                if tx.send(Message::Text(f.to_string().into())).await.is_err() {
                    break 'conn End::Dropped;
                }
            }
            let next_at = items.peek().map(|(t, _)| *t);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break 'conn End::Stop,
                _ = tokio::time::sleep_until(next_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if next_at.is_some() => {
                    let Some((_, item)) = items.next() else { continue };
                    match item {
                        Send::Alert(a) => {
                            let f = alert_frame(&a, a.alert.alert_id.as_str());
                            unacked.insert(a.alert.alert_id.as_str().to_string(), f.clone());
                            bump(&stats.alerts_sent);
                            out.push(f);
                        }
                        Send::Cancel(alert_id) => {
                            // "I'm OK" only for an alert the server has taken.
                            if acked.contains(&alert_id) {
                                bump(&stats.cancels_sent);
                                out.push(json!({"type": "cancel_alert", "id": format!("cancel-{alert_id}"), "alert_id": alert_id}));
                            }
                        }
                    }
                }
                msg = rx.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                            stats.error("protocol");
                            continue;
                        };
                        match frame_type(&v) {
                            "alert_accepted" => {
                                let id = v.get("alert_id").and_then(Value::as_str).unwrap_or("");
                                if unacked.remove(id).is_some() {
                                    bump(&stats.alerts_acknowledged);
                                    acked.insert(id.to_string());
                                }
                            }
                            "error" => {
                                let code = error_code(&v);
                                let cancel = v.get("re").and_then(Value::as_str).is_some_and(|r| r.starts_with("cancel-"));
                                // An "I'm OK" after the visit is over is refused, and that is fine.
                                if cancel || is_race(code) {
                                    bump(&stats.races);
                                } else {
                                    stats.error(code);
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break 'conn End::Dropped,
                },
            }
        };
        match end {
            End::Stop => {
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
            End::Replaced => return,
            End::Dropped => bump(&stats.disconnects),
        }
        let pause = Duration::from_millis(200 + jitter_rng.random_range(0..800));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Runs the live simulation until `max_duration_s` passes or `shutdown` completes, then
/// closes every socket and returns the final summary.
pub async fn run_live(
    params: LiveParams,
    roster: &RosterFile,
    tokens: &Tokens,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<LiveSummary> {
    check_loopback(&params.url)?;
    if !(params.speedup > 0.0 && params.speedup.is_finite()) {
        bail!("speedup must be a positive number, got {}", params.speedup);
    }
    if !(params.max_duration_s > 0.0 && params.max_duration_s.is_finite()) {
        bail!(
            "max duration must be a positive number of seconds, got {}",
            params.max_duration_s
        );
    }
    for id in &params.leave_free {
        if !roster.responders.iter().any(|r| r.id.as_str() == id) {
            bail!("--leave-free {id}: no such responder on the roster");
        }
    }
    let started = Instant::now();
    let alerts_start = started + Duration::from_secs_f64(params.connect_over_s.max(0.0));
    let alerts = live_alerts(
        roster,
        params.seed,
        params.alerts_per_min,
        params.max_duration_s,
    )?;
    let devices: Vec<&String> = tokens.devices.values().collect();
    if devices.is_empty() {
        bail!("the tokens file has no device gateway");
    }
    let phones: Vec<(&dispatch_core::roster::ResponderRecord, &String)> = roster
        .responders
        .iter()
        .filter(|r| !params.leave_free.iter().any(|f| f == r.id.as_str()))
        .take(params.max_phones)
        .map(|r| {
            tokens
                .responders
                .get(r.id.as_str())
                .map(|t| (r, t))
                .with_context(|| {
                    format!(
                        "the tokens file has no token for responder {}: is it this roster's?",
                        r.id
                    )
                })
        })
        .collect::<anyhow::Result<_>>()?;

    let stats = Arc::new(Stats::default());
    stats.phones.store(phones.len() as u64, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let behaviour = Arc::new(params.behaviour.clone());
    let n = phones.len().max(1) as f64;
    for (i, (r, token)) in phones.iter().enumerate() {
        let phone = Phone::new(r.id.as_str(), r.home, &params, behaviour.clone());
        let start_at =
            started + Duration::from_secs_f64(params.connect_over_s.max(0.0) * i as f64 / n);
        tasks.spawn(run_phone(
            phone,
            params.url.clone(),
            (*token).clone(),
            start_at,
            params.retry,
            stats.clone(),
            stop_rx.clone(),
        ));
    }

    // Alert ids unique per run, so a second run against the same server opens new incidents.
    let run_tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let gateways = params.gateways.clamp(1, devices.len());
    let mut schedules: Vec<Vec<(Instant, Send)>> = (0..gateways).map(|_| Vec::new()).collect();
    for (i, (offset, mut a)) in alerts.into_iter().enumerate() {
        let id = format!("live-{}-{run_tag}-{}", params.seed, a.alert.alert_id);
        a.alert.alert_id = id.clone().into();
        let g = &mut schedules[i % gateways];
        if let Some(c) = a.cancel_at {
            let after = Duration::from_millis(c.ms_since(a.at));
            g.push((alerts_start + offset + after, Send::Cancel(id)));
        }
        g.push((alerts_start + offset, Send::Alert(a)));
    }
    for (g, mut schedule) in schedules.into_iter().enumerate() {
        schedule.sort_by_key(|(t, _)| *t);
        tasks.spawn(run_gateway(
            schedule,
            params.url.clone(),
            devices[g].clone(),
            params.seed,
            params.retry,
            stats.clone(),
            stop_rx.clone(),
        ));
    }

    let deadline = started + Duration::from_secs_f64(params.max_duration_s);
    let every = (params.summary_every_s > 0.0)
        .then(|| Duration::from_secs_f64(params.summary_every_s.max(1.0)));
    let mut next_line = every.map(|e| started + e);
    tokio::pin!(shutdown);
    loop {
        let wake = next_line.map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                if let (Some(t), Some(e)) = (next_line, every) {
                    if now >= t {
                        let s = stats.summary(started.elapsed().as_secs_f64());
                        eprintln!("simulator live: {}", s.line());
                        next_line = Some(t + e);
                    }
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(stats.summary(started.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_core::ids::ElderId;
    use dispatch_core::roster::ElderRecord;

    fn phone() -> Phone {
        let mut p = LiveParams::new("ws://127.0.0.1:1/v1/ws");
        p.speedup = 10.0;
        Phone::new(
            "V1",
            LatLon {
                lat: -30.03,
                lon: -51.22,
            },
            &p,
            Arc::new(BehaviourParams {
                accept_share: 1.0,
                decline_share: 0.0,
                accept_delay_s: (1.0, 2.0),
                pace_factor: (1.0, 1.0),
                emergency_service_min: (10.0, 10.0),
                ..BehaviourParams::default()
            }),
        )
    }

    #[tokio::test]
    async fn a_phone_accepts_travels_arrives_and_completes() {
        let stats = Stats::default();
        let mut p = phone();
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.on_frame(
            &json!({"type": "offer", "offer_id": 5, "incident_id": 7}),
            t0,
            &mut out,
            &stats,
        );
        assert!(out.is_empty());
        let due = p.next_due();
        assert!(due >= t0 + Duration::from_secs(1) && due < t0 + Duration::from_secs(2));
        p.on_due(due, &mut out, &stats);
        assert_eq!(out[0]["type"], "accept");
        assert_eq!(out[0]["offer_id"], 5);
        out.clear();
        // 100 s of walking at speedup 10: 10 s; 10 min on scene: 60 s.
        let route = json!([{"lat": -30.03, "lon": -51.22}, {"lat": -30.03, "lon": -51.21}]);
        let t1 = t0 + Duration::from_secs(3);
        p.on_frame(
            &json!({"type": "assigned", "incident_id": 7, "kind": "fall", "service": null,
                    "eta_s": 100, "route": route}),
            t1,
            &mut out,
            &stats,
        );
        // A resend after a reconnect does not restart the trip.
        p.on_frame(
            &json!({"type": "assigned", "incident_id": 7, "eta_s": 100, "route": route}),
            t1 + Duration::from_secs(1),
            &mut out,
            &stats,
        );
        assert_eq!(stats.assignments.load(Ordering::Relaxed), 1);
        let mut t = t1;
        let mut moves = 0;
        while stats.arrivals.load(Ordering::Relaxed) == 0 {
            t = p.next_due();
            assert!(t <= t1 + Duration::from_secs(10), "late");
            p.on_due(t, &mut out, &stats);
            moves += out.iter().filter(|f| f["type"] == "location").count();
            out.retain(|f| f["type"] != "location");
        }
        assert!(t >= t1 + Duration::from_secs(10));
        assert!(moves >= 4, "{moves}");
        assert_eq!(out[0]["type"], "arrived");
        assert_eq!(p.pos.lon, -51.21);
        out.clear();
        let done = p.next_due();
        assert_eq!(done, t + Duration::from_secs(60));
        p.on_due(done, &mut out, &stats);
        assert_eq!(out[0]["type"], "complete");
        assert_eq!(out[0]["incident_id"], 7);
        assert!(p.job.is_none());
    }

    #[tokio::test]
    async fn a_withdrawn_offer_gets_no_reply_and_a_closed_incident_stops_the_trip() {
        let stats = Stats::default();
        let mut p = phone();
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.on_frame(
            &json!({"type": "offer", "offer_id": 5, "incident_id": 7}),
            t0,
            &mut out,
            &stats,
        );
        p.on_frame(
            &json!({"type": "offer_withdrawn", "offer_id": 5, "incident_id": 7, "reason": "filled"}),
            t0,
            &mut out,
            &stats,
        );
        p.on_due(t0 + Duration::from_secs(5), &mut out, &stats);
        assert!(out.iter().all(|f| f["type"] != "accept"));
        p.on_frame(
            &json!({"type": "assigned", "incident_id": 8, "eta_s": 1000, "route": []}),
            t0,
            &mut out,
            &stats,
        );
        p.on_frame(
            &json!({"type": "incident_closed", "incident_id": 8, "status": "cancelled"}),
            t0,
            &mut out,
            &stats,
        );
        assert!(p.job.is_none());
        p.on_frame(
            &json!({"type": "error", "code": "offer_closed"}),
            t0,
            &mut out,
            &stats,
        );
        p.on_frame(
            &json!({"type": "error", "code": "bad_field"}),
            t0,
            &mut out,
            &stats,
        );
        assert_eq!(stats.races.load(Ordering::Relaxed), 1);
        assert_eq!(stats.summary(0.0).errors["bad_field"], 1);
    }

    #[test]
    fn live_alerts_follow_the_rate_and_the_seed() {
        let roster = RosterFile {
            elders: (1..=20)
                .map(|i| ElderRecord {
                    id: ElderId::from(format!("E{i}")),
                    home: LatLon {
                        lat: -30.03,
                        lon: -51.22,
                    },
                    grid_id: "G1".into(),
                    care_level: (i % 5 + 1) as u8,
                    paired_responders: vec![],
                    details: Default::default(),
                    care_plan: Vec::new(),
                    check_in_by: None,
                    family: vec![],
                })
                .collect(),
            ..RosterFile::default()
        };
        // 6 per minute for 10 hours: 3600 expected (sd 60).
        let a = live_alerts(&roster, 3, 6.0, 36_000.0).unwrap();
        let b = live_alerts(&roster, 3, 6.0, 36_000.0).unwrap();
        assert!((a.len() as f64 - 3600.0).abs() < 300.0, "{}", a.len());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && x.1 == y.1));
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        let kinds: HashSet<_> = a.iter().map(|x| x.1.alert.kind).collect();
        assert_eq!(kinds.len(), 3, "falls, help and missed check-ins");
        assert!(live_alerts(&roster, 3, -1.0, 10.0).is_err());
        assert!(live_alerts(&RosterFile::default(), 3, 1.0, 10.0).is_err());
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_connecting() {
        let roster = RosterFile::default();
        let tokens = Tokens::default();
        let remote = LiveParams::new("ws://10.0.0.1:8080/v1/ws");
        let err = run_live(remote, &roster, &tokens, async {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("non-loopback"), "{err}");
        let mut p = LiveParams::new("ws://127.0.0.1:1/v1/ws");
        p.leave_free = vec!["V404".into()];
        let err = run_live(p, &roster, &tokens, async {}).await.unwrap_err();
        assert!(err.to_string().contains("V404"), "{err}");
        let mut p = LiveParams::new("ws://127.0.0.1:1/v1/ws");
        p.speedup = 0.0;
        assert!(run_live(p, &roster, &tokens, async {}).await.is_err());
    }
}
