//! `simulator live` against a real server (real engine, real Porto Alegre roads, 127.0.0.1:0)
//! for a bounded 20 s of wall clock with a speedup: alerts go out, offers are accepted,
//! responders walk their routes, arrive and complete, and the server's own view (an operator
//! WebSocket and `GET /v1/incidents/{id}`) agrees with the simulator's summary. And when the
//! server restarts under it, every phone and gateway comes back by itself.

use dispatch_core::engine::Engine;
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::RosterFile;
use dispatch_server::engine_task::VolatileJournal;
use dispatch_server::{Config, Limits};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use simulator::behaviour::BehaviourParams;
use simulator::credentials::Tokens;
use simulator::hexgrid::Hexgrid;
use simulator::live::{run_live, LiveParams};
use simulator::roads::Map;
use simulator::scenario::{generate, Scenario, ScenarioParams};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// What an operator saw on the event stream.
#[derive(Default, Debug)]
struct Seen {
    by_type: BTreeMap<String, u64>,
    resolved: BTreeSet<u64>,
    offered_to: BTreeSet<String>,
    errors: Vec<Value>,
}

async fn watch_as_operator(
    url: String,
    token: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let ws = simulator::ws_client::connect(&url, &token).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(
        json!({"type": "subscribe", "id": "s"}).to_string().into(),
    ))
    .await
    .unwrap();
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            msg = rx.next() => {
                let Some(Ok(Message::Text(t))) = msg else {
                    if matches!(msg, None | Some(Err(_))) { break }
                    continue;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let ty = v["type"].as_str().unwrap_or("").to_string();
                match ty.as_str() {
                    "error" => seen.errors.push(v.clone()),
                    "incident_resolved" => {
                        seen.resolved.insert(v["incident_id"].as_u64().unwrap());
                    }
                    "offer_sent" => {
                        seen.offered_to.insert(v["responder_id"].as_str().unwrap().to_string());
                    }
                    _ => {}
                }
                *seen.by_type.entry(ty).or_default() += 1;
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    seen
}

/// `GET path` with the operator's bearer token; (status line, JSON body).
async fn get(addr: std::net::SocketAddr, path: &str, token: &str) -> (String, Value) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A small generated world on the real map, with its tokens.
fn world(seed: u64) -> (Map, Scenario, Tokens) {
    let grid_text =
        std::fs::read_to_string(dispatch_core::testdata::porto_alegre_hexgrid()).unwrap();
    let grid = Hexgrid::parse(&grid_text).unwrap();
    let map = Map::from_pbf(std::io::BufReader::new(
        std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf()).unwrap(),
    ))
    .unwrap();
    let params = ScenarioParams {
        seed,
        hours: 0.1,
        elders: 80,
        volunteers: 60,
        ambulances: 3,
        ..ScenarioParams::default()
    };
    let mut scenario = generate(&grid, &params, &|p| map.snap_home(p)).unwrap();
    let tokens = simulator::credentials::issue(&mut scenario.roster, params.seed);
    (map, scenario, tokens)
}

/// A real server (fresh engine, volatile journal) on `listener`; send on the channel to stop it.
fn serve(
    map: &Map,
    roster: &RosterFile,
    listener: tokio::net::TcpListener,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), impl std::fmt::Debug>>,
) {
    let engine = Engine::new(
        map.net.clone(),
        roster.clone(),
        dispatch_server::serve_cmd::server_policy(PolicyConfig::default().foot_profile_kmh),
    )
    .unwrap();
    let config = Config {
        engine: Box::new(engine),
        roster: roster.clone(),
        journal: Box::new(VolatileJournal::default()),
        limits: Limits::default(),
        site: Default::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dispatch_server::run(config, listener, async move {
        let _ = stopped.await;
    }));
    (stop, server)
}

#[test]
fn a_live_day_dispatches_walks_arrives_and_resolves() {
    let (map, scenario, tokens) = world(21);
    let op_token = tokens.operators.values().next().unwrap().clone();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (server_stop, server) = serve(&map, &scenario.roster, listener);
        let url = format!("ws://{addr}/v1/ws");
        let (watch_stop, watch_rx) = tokio::sync::watch::channel(false);
        let operator = tokio::spawn(watch_as_operator(url.clone(), op_token.clone(), watch_rx));

        // Fast enough that a 20 s run sees whole incidents: travel and on-scene time 60x,
        // answers within two seconds, one to two minutes on scene (one to two seconds here).
        let live = LiveParams {
            seed: 21,
            alerts_per_min: 30.0,
            speedup: 60.0,
            max_duration_s: 20.0,
            connect_over_s: 1.0,
            summary_every_s: 5.0,
            leave_free: vec!["V00001".into()],
            behaviour: BehaviourParams {
                accept_share: 0.8,
                decline_share: 0.1,
                accept_delay_s: (0.5, 2.0),
                decline_delay_s: (0.5, 1.5),
                emergency_service_min: (1.0, 2.0),
                help_service_min: (1.0, 2.0),
                welfare_visit_min: (1.0, 2.0),
                ..BehaviourParams::default()
            },
            ..LiveParams::new(url)
        };
        let summary = run_live(live, &scenario.roster, &tokens, std::future::pending())
            .await
            .unwrap();
        eprintln!("{}", summary.line());
        // Let the last events reach the operator, then stop watching.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = watch_stop.send(true);
        let seen = operator.await.unwrap();
        eprintln!("{seen:?}");

        // The simulator's side: a whole day in miniature, with no protocol errors.
        assert_eq!(summary.errors, BTreeMap::new(), "{}", summary.line());
        assert_eq!(summary.phones, scenario.roster.responders.len() as u64 - 1);
        assert!(summary.alerts_sent >= 3, "{}", summary.line());
        assert_eq!(summary.alerts_acknowledged, summary.alerts_sent);
        assert!(
            summary.offers > 0 && summary.accepts > 0,
            "{}",
            summary.line()
        );
        assert!(summary.assignments > 0, "{}", summary.line());
        assert!(summary.arrivals > 0, "{}", summary.line());
        assert!(summary.completions > 0, "{}", summary.line());
        assert_eq!(summary.disconnects, 0);

        // The server's side, from the operator stream: the same story.
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        let n = |t: &str| seen.by_type.get(t).copied().unwrap_or(0);
        assert!(n("incident_opened") >= 1, "{seen:?}");
        assert!(n("incident_opened") <= summary.alerts_acknowledged);
        assert!(n("offer_sent") >= summary.offers, "{seen:?}");
        assert!(n("assigned") >= summary.assignments, "{seen:?}");
        // An arrival can race the incident closing under it (counted as a race, not sent twice).
        assert!(n("responder_arrived") >= 1, "{seen:?}");
        assert!(
            n("responder_arrived") + summary.races >= summary.arrivals,
            "{seen:?}"
        );
        assert!(n("responder_moved") > 0, "{seen:?}");
        assert!(!seen.resolved.is_empty(), "{seen:?}");
        // The volunteer left to a person was never on duty, so never asked.
        assert!(!seen.offered_to.contains("V00001"), "{seen:?}");

        // And each resolved incident's record says who came and that a responder closed it.
        for id in &seen.resolved {
            let (status, body) = get(addr, &format!("/v1/incidents/{id}"), &op_token).await;
            assert!(status.contains(" 200"), "{status} {body}");
            assert_eq!(body["summary"]["status"], "resolved", "{body}");
            let types: Vec<&str> = body["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event"]["type"].as_str().unwrap_or(""))
                .collect();
            for t in [
                "incident_opened",
                "assigned",
                "responder_arrived",
                "incident_resolved",
            ] {
                assert!(types.contains(&t), "incident {id}: no {t} in {types:?}");
            }
            let resolved = body["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["event"]["type"] == "incident_resolved")
                .unwrap();
            assert_eq!(resolved["event"]["by"]["role"], "responder", "{resolved}");
        }

        let _ = server_stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    });
}

/// The operator's snapshot: responders by status `state`.
async fn states(url: &str, token: &str) -> BTreeMap<String, u64> {
    let ws = simulator::ws_client::connect(url, token).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(
        json!({"type": "subscribe", "id": "s"}).to_string().into(),
    ))
    .await
    .unwrap();
    let snapshot = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Message::Text(t))) = rx.next().await {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "snapshot" {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap();
    let _ = tx.send(Message::Close(None)).await;
    let mut by_state = BTreeMap::new();
    for r in snapshot["state"]["responders"].as_array().unwrap() {
        let state = r["status"]["state"].as_str().unwrap_or("?").to_string();
        *by_state.entry(state).or_default() += 1;
    }
    by_state
}

#[test]
fn phones_and_gateways_come_back_after_a_server_restart() {
    let (map, scenario, tokens) = world(22);
    let op_token = tokens.operators.values().next().unwrap().clone();
    let phones = scenario.roster.responders.len() as u64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_a, server_a) = serve(&map, &scenario.roster, listener);
        let url = format!("ws://{addr}/v1/ws");
        // No alerts: nobody is on a job the restarted (volatile) server would not know.
        let live = LiveParams {
            seed: 22,
            alerts_per_min: 0.0,
            max_duration_s: 14.0,
            connect_over_s: 1.0,
            wander_every_s: 2.0,
            summary_every_s: 0.0,
            ..LiveParams::new(url.clone())
        };
        let (roster, toks) = (scenario.roster.clone(), tokens.clone());
        let sim =
            tokio::spawn(
                async move { run_live(live, &roster, &toks, std::future::pending()).await },
            );
        tokio::time::sleep(Duration::from_secs(4)).await;
        let before = states(&url, &op_token).await;
        assert_eq!(before.get("available"), Some(&phones), "{before:?}");

        // The restart: every socket is closed, then a fresh server listens on the same port.
        let _ = stop_a.send(());
        server_a.await.unwrap().unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (stop_b, server_b) = serve(&map, &scenario.roster, listener);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = states(&url, &op_token).await;
        assert_eq!(after.get("available"), Some(&phones), "{after:?}");

        let summary = sim.await.unwrap().unwrap();
        eprintln!("{}", summary.line());
        assert_eq!(summary.errors, BTreeMap::new(), "{}", summary.line());
        let gateways = LiveParams::new("").gateways as u64;
        assert_eq!(summary.disconnects, phones + gateways, "{}", summary.line());
        assert_eq!(summary.reconnects, phones + gateways, "{}", summary.line());
        assert_eq!(summary.phones, phones);
        let _ = stop_b.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server_b).await;
    });
}
