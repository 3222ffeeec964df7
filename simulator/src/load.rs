//! `simulator load`: load over the wire against a running `dispatch serve`, as a black-box
//! client (plain JSON frames, no server types): responder phones that move and answer offers,
//! device gateways that send alerts open-loop at a target rate, and a subscribed console.
//!
//! Latencies are measured from each alert's *scheduled* send time, not from when it was
//! actually written, so a sender that falls behind a slow server shows the delay instead of
//! hiding it (the coordinated-omission correction). Runs are bounded in alert count and wall
//! time, and only loopback targets are accepted.

use crate::credentials::Tokens;
pub use crate::ws_client::check_loopback;
use crate::ws_client::{connect, frame_type, is_race, Socket};
use anyhow::{bail, Context as _};
use dispatch_core::roster::RosterFile;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::Message;

/// What to throw at the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadParams {
    /// `ws://127.0.0.1:PORT/v1/ws` (loopback only).
    pub url: String,
    /// Responder phones to connect (taken from the roster in order, ambulances included).
    pub responders: usize,
    /// Alerts to send in total, spread evenly over the device gateways.
    pub alerts: usize,
    /// Target alert rate, per second, over all gateways (open loop).
    pub alerts_per_s: f64,
    /// Location updates per second per responder phone.
    pub location_hz: f64,
    /// Chance a responder accepts an offer (the rest decline).
    pub accept_share: f64,
    /// Hard wall-clock bound for the whole run, seconds.
    pub max_duration_s: f64,
    /// After the last alert, how long to wait for its acknowledgement and offers, seconds.
    pub grace_s: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub params: LoadParams,
    pub responders_connected: usize,
    pub alerts_sent: u64,
    pub alerts_acknowledged: u64,
    /// Alerts sent but never acknowledged before the run ended.
    pub alerts_lost: u64,
    pub duplicates: u64,
    /// From scheduled send to `alert_accepted` (includes the server's fsync).
    pub alert_to_ack: Latency,
    /// From scheduled send to the first `offer` for its incident on any responder socket.
    pub alert_to_offer: Latency,
    pub incidents_offered: u64,
    /// Incidents the acknowledgements named (alerts that joined one count once).
    #[serde(default)]
    pub incidents_opened: u64,
    /// Of the incidents opened but not offered before the run ended, those the console was
    /// told why (`no_responder_available` and its reason): queued, not forgotten.
    #[serde(default)]
    pub incidents_unoffered_told_why: u64,
    /// Incidents opened that were neither offered within the run nor said to be waiting for
    /// want of a responder: what "every incident offered or queued with a reason" counts.
    /// Found from the incidents themselves, not from the counts above (an offer can name an
    /// incident whose alert was never acknowledged).
    #[serde(default)]
    pub incidents_unoffered_untold: u64,
    pub offers_received: u64,
    pub location_updates_sent: u64,
    /// Location frames written per second during the window (client side: the server may
    /// coalesce them, newest wins).
    pub location_updates_per_s: f64,
    /// Location pings the server itself took per second in the window (its
    /// `dispatch_location_frames_total`, read from `/metrics`); `None` if unreadable.
    #[serde(default)]
    pub server_location_frames_per_s: Option<f64>,
    pub alerts_acknowledged_per_s: f64,
    pub console_events: u64,
    /// Seconds spent connecting the phones, before the measurement window.
    pub connect_s: f64,
    /// The measurement window: from the first scheduled alert (all phones connected) to the end.
    pub window_s: f64,
    /// `error` frames by code, plus `connect`, `socket` and `protocol` for client-side failures.
    pub errors: std::collections::BTreeMap<String, u64>,
    pub wall_s: f64,
}

impl LoadReport {
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn to_markdown(&self) -> String {
        let a = &self.alert_to_ack;
        let o = &self.alert_to_offer;
        format!(
            "# Load summary\n\n\
             Target `{}`: {} responders connected, {} alerts at {}/s, locations at {} Hz per phone.\n\n\
             | metric | value |\n| --- | --- |\n\
             | alerts sent / acknowledged / lost | {} / {} / {} |\n\
             | alert → ack p50 / p90 / p99 / max (ms) | {:.1} / {:.1} / {:.1} / {:.1} |\n\
             | alert → first offer p50 / p90 / p99 / max (ms) | {:.1} / {:.1} / {:.1} / {:.1} (n = {}) |\n\
             | incidents opened / offered / not offered, told why / not offered, not told | {} / {} / {} / {} |\n\
             | acknowledged alerts per second | {:.0} |\n\
             | location updates sent (per second in the window) | {} ({:.0}) |\n\
             | location updates taken by the server per second (its own counter) | {} |\n\
             | offers received | {} |\n\
             | console events | {} |\n\
             | errors | {} {:?} |\n\
             | wall time, of which connecting (s) | {:.1}, {:.1} |\n\n\
             Latencies run from each alert's scheduled send time (coordinated omission corrected).\n",
            self.params.url,
            self.responders_connected,
            self.params.alerts,
            self.params.alerts_per_s,
            self.params.location_hz,
            self.alerts_sent,
            self.alerts_acknowledged,
            self.alerts_lost,
            a.p50_ms,
            a.p90_ms,
            a.p99_ms,
            a.max_ms,
            o.p50_ms,
            o.p90_ms,
            o.p99_ms,
            o.max_ms,
            o.count,
            self.incidents_opened,
            self.incidents_offered,
            self.incidents_unoffered_told_why,
            self.incidents_unoffered_untold,
            self.alerts_acknowledged_per_s,
            self.location_updates_sent,
            self.location_updates_per_s,
            self.server_location_frames_per_s
                .map_or("unknown".to_string(), |v| format!("{v:.0}")),
            self.offers_received,
            self.console_events,
            self.total_errors(),
            self.errors,
            self.wall_s,
            self.connect_s,
        )
    }
}

const LOCATION_FRAMES: &str = "dispatch_location_frames_total";

/// One unlabelled counter from the server's `/metrics` (same host and port as the
/// WebSocket URL), by a plain HTTP/1.1 GET. `None` if it cannot be read.
pub async fn server_counter(ws_url: &str, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uri: Uri = ws_url.parse().ok()?;
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(80);
    let get = async {
        let mut tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    let body = tokio::time::timeout(Duration::from_secs(5), get)
        .await
        .ok()??;
    if !body.starts_with("HTTP/1.1 200") {
        return None;
    }
    // A counter never incremented yet is not rendered: that reads as zero.
    Some(
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0),
    )
}

/// Shared measurements; short critical sections only.
#[derive(Default)]
struct Recorder {
    scheduled: HashMap<String, Instant>,
    incident_scheduled: HashMap<u64, Instant>,
    first_offer: HashMap<u64, Instant>,
    /// Incidents the console was told found nobody to ask (`no_responder_available`).
    told_why: std::collections::HashSet<u64>,
    ack: Option<Histogram<u64>>,
    errors: std::collections::BTreeMap<String, u64>,
    acked: u64,
    duplicates: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    locations: AtomicU64,
    offers: AtomicU64,
    console_events: AtomicU64,
}

struct Shared {
    rec: Mutex<Recorder>,
    counters: Counters,
}

impl Shared {
    fn error(&self, code: &str) {
        let mut r = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        *r.errors.entry(code.to_string()).or_default() += 1;
    }
}

/// Runs the load and returns what it measured. Bounded by `max_duration_s` of wall time.
pub async fn run_load(
    params: LoadParams,
    roster: &RosterFile,
    tokens: &Tokens,
) -> anyhow::Result<LoadReport> {
    check_loopback(&params.url)?;
    if params.alerts_per_s.is_nan() || params.alerts_per_s <= 0.0 {
        bail!("alerts_per_s must be positive");
    }
    let shared = Arc::new(Shared {
        rec: Mutex::new(Recorder::default()),
        counters: Counters::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // Phones start reporting together once all are connected, so the window measures a
    // steady state rather than a ramp.
    let (go_tx, go_rx) = watch::channel(None::<tokio::time::Instant>);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();

    // Console first, so it sees everything.
    let (op_id, op_token) = tokens
        .operators
        .iter()
        .next()
        .context("the tokens file has no operator")?;
    let console = connect(&params.url, op_token)
        .await
        .with_context(|| format!("operator {op_id}"))?;
    tasks.spawn(run_console(console, shared.clone(), stop_rx.clone()));

    // Responder phones, connected 64 at a time (ten thousand one by one takes too long).
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut connecting = tokio::task::JoinSet::new();
    for (n, r) in roster.responders.iter().take(params.responders).enumerate() {
        let Some(token) = tokens.responders.get(r.id.as_str()).cloned() else {
            shared.error("no_token");
            continue;
        };
        let (url, gate) = (params.url.clone(), gate.clone());
        let home = (r.home.lat, r.home.lon);
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (n as u64 + 1, home, connect(&url, &token).await)
        });
    }
    let mut connected = 0usize;
    // The time bound covers connecting too: phones not connected by the deadline are counted.
    let deadline = started + Duration::from_secs_f64(params.max_duration_s);
    loop {
        let joined = tokio::time::timeout_at(deadline.into(), connecting.join_next()).await;
        match joined {
            Ok(Some(Ok((seed, home, Ok(ws))))) => {
                connected += 1;
                tasks.spawn(run_responder(
                    ws,
                    home,
                    seed,
                    params.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                    go_rx.clone(),
                ));
            }
            Ok(Some(_)) => shared.error("connect"),
            Ok(None) => break,
            Err(_) => {
                let left = connecting.len() as u64;
                connecting.abort_all();
                let mut r = shared.rec.lock().unwrap_or_else(|e| e.into_inner());
                *r.errors.entry("connect_timeout".into()).or_default() += left;
                break;
            }
        }
    }

    // Device gateways: alerts open loop, each gateway its share of the schedule.
    let devices: Vec<(&String, &String)> = tokens.devices.iter().collect();
    if devices.is_empty() {
        bail!("the tokens file has no device");
    }
    let elders: Vec<String> = roster.elders.iter().map(|e| e.id.to_string()).collect();
    if elders.is_empty() {
        bail!("the roster has no elder to raise alerts for");
    }
    let connect_s = started.elapsed().as_secs_f64();
    let t0 = Instant::now() + Duration::from_millis(200);
    let _ = go_tx.send(Some(t0.into()));
    let gap = Duration::from_secs_f64(1.0 / params.alerts_per_s);
    let run_tag = format!(
        "{:x}",
        t0.elapsed().as_nanos() ^ (std::process::id() as u128) ^ started.elapsed().as_nanos()
    );
    let mut device_tasks = tokio::task::JoinSet::new();
    for (d, (_id, token)) in devices.iter().enumerate() {
        let ws = connect(&params.url, token)
            .await
            .context("device gateway")?;
        let schedule: Vec<(usize, Instant)> = (d..params.alerts)
            .step_by(devices.len())
            .map(|i| (i, t0 + gap * i as u32))
            .collect();
        device_tasks.spawn(run_device(
            ws,
            schedule,
            elders.clone(),
            run_tag.clone(),
            shared.clone(),
            stop_rx.clone(),
        ));
    }

    // Location updates are counted from when every phone is connected (the measurement window).
    let locations_at_t0 = shared.counters.locations.load(Ordering::Relaxed);
    // The server's own count of location pings it took (parsed, checked, queued): the
    // "through the server" figure; the client's write rate above may run ahead of it.
    let server_at_t0 = server_counter(&params.url, LOCATION_FRAMES).await;
    let server_t0 = Instant::now();
    // Wait until every alert is acknowledged and has had its grace, or the hard bound.
    let last_scheduled = t0 + gap * params.alerts.saturating_sub(1) as u32;
    loop {
        let acked = shared.rec.lock().unwrap_or_else(|e| e.into_inner()).acked;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if acked as usize >= params.alerts
            && now >= last_scheduled + Duration::from_secs_f64(params.grace_s)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let window_s = t0.elapsed().as_secs_f64();
    let server_end = server_counter(&params.url, LOCATION_FRAMES).await;
    let server_window_s = server_t0.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let guard = Duration::from_secs(5);
    let _ = tokio::time::timeout(guard, async {
        while device_tasks.join_next().await.is_some() {}
        while tasks.join_next().await.is_some() {}
    })
    .await;
    device_tasks.abort_all();
    tasks.abort_all();

    let rec = shared.rec.lock().unwrap_or_else(|e| e.into_inner());
    let mut offer_h = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    for (incident, at) in &rec.first_offer {
        if let Some(s) = rec.incident_scheduled.get(incident) {
            let _ = offer_h.record(at.saturating_duration_since(*s).as_micros() as u64);
        }
    }
    let empty = Histogram::<u64>::new(3).expect("valid");
    let ack_h = rec.ack.as_ref().unwrap_or(&empty);
    let sent = shared.counters.sent.load(Ordering::Relaxed);
    let unoffered: Vec<&u64> = rec
        .incident_scheduled
        .keys()
        .filter(|i| !rec.first_offer.contains_key(i))
        .collect();
    let told_why = unoffered
        .iter()
        .filter(|&&i| rec.told_why.contains(i))
        .count() as u64;
    let locations = shared.counters.locations.load(Ordering::Relaxed);
    let window_locations = locations.saturating_sub(locations_at_t0);
    Ok(LoadReport {
        params,
        responders_connected: connected,
        alerts_sent: sent,
        alerts_acknowledged: rec.acked,
        alerts_lost: sent.saturating_sub(rec.acked),
        duplicates: rec.duplicates,
        alert_to_ack: Latency::of(ack_h),
        alert_to_offer: Latency::of(&offer_h),
        incidents_offered: rec.first_offer.len() as u64,
        incidents_opened: rec.incident_scheduled.len() as u64,
        incidents_unoffered_told_why: told_why,
        incidents_unoffered_untold: unoffered.len() as u64 - told_why,
        offers_received: shared.counters.offers.load(Ordering::Relaxed),
        location_updates_sent: locations,
        location_updates_per_s: window_locations as f64 / window_s.max(1e-9),
        server_location_frames_per_s: match (server_at_t0, server_end) {
            (Some(a), Some(b)) => Some((b - a).max(0.0) / server_window_s.max(1e-9)),
            _ => None,
        },
        alerts_acknowledged_per_s: rec.acked as f64 / window_s.max(1e-9),
        connect_s,
        window_s,
        console_events: shared.counters.console_events.load(Ordering::Relaxed),
        errors: rec.errors.clone(),
        wall_s,
    })
}

async fn run_device(
    ws: Socket,
    schedule: Vec<(usize, Instant)>,
    elders: Vec<String>,
    tag: String,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut tx, mut rx) = ws.split();
    let reader_shared = shared.clone();
    let reader = tokio::spawn(async move {
        while let Some(msg) = rx.next().await {
            let Ok(Message::Text(text)) = msg else {
                if msg.is_err() {
                    reader_shared.error("socket");
                    break;
                }
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                reader_shared.error("protocol");
                continue;
            };
            match frame_type(&v) {
                "alert_accepted" => {
                    let now = Instant::now();
                    let alert_id = v.get("alert_id").and_then(Value::as_str).unwrap_or("");
                    let incident = v.get("incident_id").and_then(Value::as_u64);
                    let mut r = reader_shared.rec.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(s) = r.scheduled.get(alert_id).copied() {
                        r.acked += 1;
                        if v.get("duplicate").and_then(Value::as_bool) == Some(true) {
                            r.duplicates += 1;
                        }
                        let h = r
                            .ack
                            .get_or_insert_with(|| Histogram::new(3).expect("valid"));
                        let _ = h.record(now.saturating_duration_since(s).as_micros() as u64);
                        if let Some(i) = incident {
                            r.incident_scheduled.entry(i).or_insert(s);
                        }
                    }
                }
                "error" => {
                    let code = v.get("code").and_then(Value::as_str).unwrap_or("unknown");
                    reader_shared.error(code);
                }
                _ => {}
            }
        }
    });
    for (i, at) in schedule {
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = stop.changed() => break,
        }
        let alert_id = format!("load-{tag}-{i}");
        let elder = &elders[i % elders.len()];
        let detected_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let frame = json!({"type": "alert", "id": i, "alert_id": alert_id, "kind": "fall",
                           "elder_id": elder, "detected_at": detected_at});
        shared
            .rec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .scheduled
            .insert(alert_id, at);
        if tx
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            shared.error("socket");
            break;
        }
        shared.counters.sent.fetch_add(1, Ordering::Relaxed);
    }
    let _ = stop.wait_for(|s| *s).await;
    let _ = tx.send(Message::Close(None)).await;
    reader.abort();
}

async fn run_responder(
    ws: Socket,
    home: (f64, f64),
    seed: u64,
    params: LoadParams,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut go: watch::Receiver<Option<tokio::time::Instant>>,
) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut tx, mut rx) = ws.split();
    let send = |v: Value| Message::Text(v.to_string().into());
    if tx
        .send(send(json!({"type": "availability", "status": "available"})))
        .await
        .is_err()
    {
        shared.error("socket");
        return;
    }
    let period = Duration::from_secs_f64(1.0 / params.location_hz.max(0.001));
    // Phones do not all report on the same tick.
    let start = match go.wait_for(Option::is_some).await {
        Ok(g) => g.unwrap_or_else(tokio::time::Instant::now),
        Err(_) => return,
    };
    let first = start + period.mul_f64(rng.random::<f64>());
    let mut tick = tokio::time::interval_at(first, period);
    let mut pos = home;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick(), if params.location_hz > 0.0 => {
                // A few metres of wandering around home.
                pos.0 = home.0 + rng.random_range(-0.0003..0.0003);
                pos.1 = home.1 + rng.random_range(-0.0003..0.0003);
                let f = json!({"type": "location", "position": {"lat": pos.0, "lon": pos.1}});
                if tx.send(send(f)).await.is_err() { shared.error("socket"); break; }
                shared.counters.locations.fetch_add(1, Ordering::Relaxed);
            }
            msg = rx.next() => {
                let Some(msg) = msg else { break };
                let Ok(Message::Text(text)) = msg else {
                    if msg.is_err() { shared.error("socket"); break; }
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { shared.error("protocol"); continue };
                match frame_type(&v) {
                    "offer" => {
                        let now = Instant::now();
                        shared.counters.offers.fetch_add(1, Ordering::Relaxed);
                        if let Some(i) = v.get("incident_id").and_then(Value::as_u64) {
                            shared.rec.lock().unwrap_or_else(|e| e.into_inner()).first_offer.entry(i).or_insert(now);
                        }
                        let offer_id = v.get("offer_id").cloned().unwrap_or(Value::Null);
                        let kind = if rng.random_bool(params.accept_share.clamp(0.0, 1.0)) { "accept" } else { "decline" };
                        if tx.send(send(json!({"type": kind, "offer_id": offer_id}))).await.is_err() { shared.error("socket"); break; }
                    }
                    "assigned" => {
                        // On scene at once and done: keeps responders free for more offers.
                        let incident_id = v.get("incident_id").cloned().unwrap_or(Value::Null);
                        for kind in ["arrived", "complete"] {
                            if tx.send(send(json!({"type": kind, "incident_id": incident_id}))).await.is_err() {
                                shared.error("socket");
                                break;
                            }
                        }
                    }
                    "error" => {
                        let code = v.get("code").and_then(Value::as_str).unwrap_or("unknown");
                        // Racing an expiry or a withdrawal is normal for a phone, not a failure.
                        if !is_race(code) {
                            shared.error(code);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

async fn run_console(ws: Socket, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let (mut tx, mut rx) = ws.split();
    if tx
        .send(Message::Text(
            json!({"type": "subscribe", "id": "console"})
                .to_string()
                .into(),
        ))
        .await
        .is_err()
    {
        shared.error("socket");
        return;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = rx.next() => {
                let Some(msg) = msg else { break };
                match msg {
                    Ok(Message::Text(text)) => {
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { shared.error("protocol"); continue };
                        if v.get("seq").is_some() && frame_type(&v) != "snapshot" {
                            shared.counters.console_events.fetch_add(1, Ordering::Relaxed);
                            if frame_type(&v) == "no_responder_available" {
                                if let Some(i) = v.get("incident_id").and_then(Value::as_u64) {
                                    shared.rec.lock().unwrap_or_else(|e| e.into_inner()).told_why.insert(i);
                                }
                            }
                        } else if frame_type(&v) == "error" {
                            shared.error(v.get("code").and_then(Value::as_str).unwrap_or("unknown"));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => { shared.error("socket"); break; }
                }
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}
