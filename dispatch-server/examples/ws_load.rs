//! Load over real sockets, in one process: location updates per second through the server
//! (WebSocket + JSON + engine), and alert → offer latency on the responders' sockets with the
//! real journal (group-committed fsync) in a temporary directory.
//!
//! `cargo run --release -p dispatch-server --example ws_load -- [responders] [seconds] [alerts] [alerts_per_s]`

use dispatch_core::engine::Engine;
use dispatch_core::geo::LatLon;
use dispatch_core::matching::RoadTimes;
use dispatch_core::model::{ResponderKind, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{RoadConfig, RoadNetwork};
use dispatch_core::roster::{DeviceRecord, ElderRecord, GridRecord, ResponderRecord, RosterFile};
use dispatch_server::auth::token_digest;
use dispatch_server::journal::{Journal, JournalOptions};
use dispatch_server::{Config, Limits};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A fixed-seed xorshift, so every run places people the same way.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A point in central Porto Alegre, east of the river.
    fn point(&mut self) -> LatLon {
        LatLon {
            lat: -30.07 + 0.06 * self.unit(),
            lon: -51.21 + 0.06 * self.unit(),
        }
    }
}

/// 4 KiB socket buffers, as the server's (the 128 KiB default is zeroed on every read).
fn small() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let responders = *args.first().unwrap_or(&1000) as usize;
    let seconds = *args.get(1).unwrap_or(&5);
    let alerts = *args.get(2).unwrap_or(&200) as usize;
    let alerts_per_s = *args.get(3).unwrap_or(&100);

    let t = Instant::now();
    let file = std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf())?;
    let config = RoadConfig::default();
    let net = RoadNetwork::from_pbf(std::io::BufReader::new(file), &config)?;
    eprintln!("map: {:.1} s", t.elapsed().as_secs_f64());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let roster = RosterFile {
        regions: Vec::new(),
        grids: vec![GridRecord {
            id: "G".into(),
            name: String::new(),
        }],
        responders: (0..responders)
            .map(|i| ResponderRecord {
                kin_of: Vec::new(),
                id: format!("V{i}").into(),
                kind: ResponderKind::Volunteer,
                travel_mode: TravelMode::Foot,
                walk_kmh: None,
                home: rng.point(),
                grid_id: Some("G".into()),
                skills: vec![],
                token_sha256: Some(token_digest(&format!("v{i}"))),
            })
            .collect(),
        elders: (0..alerts)
            .map(|i| ElderRecord {
                id: format!("E{i}").into(),
                home: rng.point(),
                grid_id: "G".into(),
                care_level: 2,
                paired_responders: vec![],
                details: Default::default(),
                care_plan: Vec::new(),
                check_in_by: None,
                family: vec![],
            })
            .collect(),
        operators: vec![],
        devices: vec![DeviceRecord {
            id: "GW".into(),
            token_sha256: token_digest("gw"),
        }],
    };
    let times = Arc::new(RoadTimes::new(Arc::new(net), config.foot_kmh));
    // The engine alone, in process, for comparison with the figure through the server.
    {
        use dispatch_core::command::Command;
        use dispatch_core::time::Timestamp;
        let mut e =
            Engine::with_travel_times(times.clone(), roster.clone(), PolicyConfig::default())?;
        let ids: Vec<_> = roster.responders.iter().map(|r| r.id.clone()).collect();
        for id in &ids {
            e.handle_command(
                Timestamp(1),
                Command::SetAvailability {
                    responder_id: id.clone(),
                    status: dispatch_core::model::Availability::Available,
                },
            )?;
        }
        let mut r = Rng(42);
        let n = 20_000;
        let t = Instant::now();
        for i in 0..n {
            let _ = e.handle_command(
                Timestamp(2 + i as i64),
                Command::Location {
                    responder_id: ids[i % ids.len()].clone(),
                    position: r.point(),
                },
            );
            while e.poll_event().is_some() {}
        }
        println!(
            "engine alone: {:.0} location updates/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
    let engine = Engine::with_travel_times(
        times,
        roster.clone(),
        dispatch_server::serve_cmd::server_policy(config.foot_kmh),
    )?;
    let dir = tempfile::tempdir()?;
    // LOAD_VOLATILE=1: no journal at all, to see what the disk path costs.
    let journal: Box<dyn dispatch_server::engine_task::JournalSink> =
        if std::env::var_os("LOAD_VOLATILE").is_some() {
            Box::new(dispatch_server::engine_task::VolatileJournal::default())
        } else {
            Box::new(Journal::open(dir.path(), JournalOptions::default())?.0)
        };
    let mut limits = Limits::default();
    limits.session.rate_per_s = 1e9;
    limits.session.rate_burst = 1e9;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dispatch_server::run(
        Config {
            engine: Box::new(engine),
            roster,
            journal,
            limits,
            site: Default::default(),
        },
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    // Connect every responder and put them on duty.
    let url = format!("ws://{addr}/v1/ws");
    let offers: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let sent = Arc::new(AtomicU64::new(0));
    // A watch, not a Notify: a task that starts waiting after the signal still sees it.
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let deadline = Arc::new(Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    for i in 0..responders {
        let mut req = url.clone().into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer v{i}").parse()?);
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(req, Some(small()), false).await?;
        let (mut tx, mut rx) = ws.split();
        tx.send(Message::text(
            json!({"type":"availability","status":"available","id":1}).to_string(),
        ))
        .await?;
        // welcome + ack
        for _ in 0..2 {
            rx.next().await;
        }
        let offers = offers.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(t))) = rx.next().await {
                if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                    if v["type"] == "offer" {
                        let id = v["incident_id"].as_u64().unwrap_or(0);
                        offers
                            .lock()
                            .unwrap()
                            .entry(id)
                            .or_insert_with(Instant::now);
                    }
                }
            }
        });
        let (sent, mut go, deadline) = (sent.clone(), go.clone(), deadline.clone());
        let mut rng = Rng(0x1234_5678 + i as u64);
        tasks.push(tokio::spawn(async move {
            let _ = go.wait_for(|g| *g).await;
            let end = deadline.lock().unwrap().expect("set before go");
            let mut n = 0u64;
            while Instant::now() < end {
                let p = rng.point();
                let frame =
                    json!({"type":"location","position":{"lat":p.lat,"lon":p.lon}}).to_string();
                if tx.send(Message::text(frame)).await.is_err() {
                    break;
                }
                n += 1;
            }
            sent.fetch_add(n, Ordering::Relaxed);
            tx
        }));
    }
    eprintln!("{responders} responders connected and available");

    // Phase 1: alerts at a fixed rate on an otherwise idle server, latency to the first offer
    // on a responder's socket.
    let mut req = url.clone().into_client_request()?;
    req.headers_mut()
        .insert("authorization", "Bearer gw".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut gtx, mut grx) = ws.split();
    grx.next().await; // welcome
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let incident_of: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let replies = {
        let incident_of = incident_of.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while n < alerts {
                let Some(Ok(Message::Text(t))) = grx.next().await else {
                    break;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                if v["type"] == "alert_accepted" {
                    let id = v["incident_id"].as_u64().unwrap_or(0);
                    incident_of
                        .lock()
                        .unwrap()
                        .insert(id, v["alert_id"].as_str().unwrap_or("").to_string());
                    n += 1;
                } else {
                    eprintln!("alert reply: {v}");
                    n += 1;
                }
            }
        })
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / alerts_per_s as f64));
    for i in 0..alerts {
        tick.tick().await;
        let id = format!("load-{i}");
        let frame = json!({"type":"alert","alert_id":id,"kind":"fall","elder_id":format!("E{i}"),"detected_at":0});
        sent_at.lock().unwrap().insert(id, Instant::now());
        gtx.send(Message::text(frame.to_string())).await?;
    }
    replies.await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lat_ms: Vec<f64> = {
        let offers = offers.lock().unwrap();
        let sent_at = sent_at.lock().unwrap();
        incident_of
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(inc, alert)| {
                Some(
                    offers
                        .get(inc)?
                        .duration_since(*sent_at.get(alert)?)
                        .as_secs_f64()
                        * 1e3,
                )
            })
            .collect()
    };
    lat_ms.sort_by(f64::total_cmp);
    println!(
        "alert -> first offer on a responder socket ({alerts} alerts at {alerts_per_s}/s, real journal): n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        lat_ms.len(),
        pct(&lat_ms, 0.5),
        pct(&lat_ms, 0.99),
        lat_ms.last().copied().unwrap_or(f64::NAN)
    );
    // Phase 2: location updates (after the alerts, so their backlog cannot delay them).
    let before = applied();
    let taken_before = metric("dispatch_location_frames_total ");
    *deadline.lock().unwrap() = Some(Instant::now() + Duration::from_secs(seconds));
    let t = Instant::now();
    go_tx.send_replace(true);
    let mut sinks = Vec::new();
    for task in tasks {
        sinks.push(task.await?);
    }
    let elapsed = t.elapsed().as_secs_f64();
    // Let the engine take what is queued, then read the counter.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = applied();
    let taken = metric("dispatch_location_frames_total ") - taken_before;
    let total = sent.load(Ordering::Relaxed);
    println!(
        "locations: {responders} sockets, {seconds} s: {:.0} frames/s written by the clients; {:.0}/s taken by the server; {:.0} engine location updates/s (newest-wins coalescing)",
        total as f64 / elapsed,
        taken / elapsed,
        (after - before) / elapsed
    );

    drop(sinks);
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Location commands the engine accepted so far (from the process's metrics).
fn applied() -> f64 {
    metric(r#"dispatch_commands_accepted_total{kind="location"} "#)
}

/// One sample of the process's metrics, by its line prefix (0 if not rendered yet).
fn metric(prefix: &str) -> f64 {
    let text = dispatch_server::metrics::prometheus()
        .map(|h| h.render())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
