//! End-to-end tests of `dispatch serve` over real sockets: a real server on 127.0.0.1:0 with
//! the real engine, real tokio-tungstenite clients and plain HTTP/1.1 requests.

mod common;

use common::{fall, serve_args, serve_from, token, write_roster, Client, TestServer};
use dispatch_core::geo::{gcj02_to_bd09, haversine_m, LatLon};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Connects every responder and makes them available.
async fn on_duty(server: &TestServer, ids: &[&str]) -> BTreeMap<String, Client> {
    let mut out = BTreeMap::new();
    for id in ids {
        let mut c = server.connect(id).await;
        let (r, _) = c
            .request(json!({"type": "availability", "status": "available"}), "on")
            .await;
        assert_eq!(r["type"], "ack", "{r}");
        out.insert(id.to_string(), c);
    }
    out
}

async fn subscribed(server: &TestServer, id: &str, sub: Value) -> (Client, Value) {
    let mut op = server.connect(id).await;
    let (snap, _) = op.request(sub, "sub").await;
    (op, snap)
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

#[tokio::test]
async fn whole_flow_from_fall_to_time_bank() {
    let server = TestServer::start().await;
    let (mut op, snap) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(snap["reason"], "subscribe");
    let mut phones = on_duty(&server, &["V1", "V2", "V3", "V4", "A1"]).await;
    let mut gw = server.connect("GW1").await;

    // A fall for E1 (care level 4).
    let (acc, _) = gw.request(fall("fall-1", "E1"), "a1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");
    assert_eq!(acc["alert_id"], "fall-1");
    assert_eq!(acc["duplicate"], false);
    let incident = acc["incident_id"].as_u64().expect("incident id");

    // The console sees the incident open, the offers go out and the ambulance is assigned.
    let (opened, _) = op.recv_until("incident_opened", |_| true).await;
    assert_eq!(opened["incident_id"], incident);
    assert_eq!(
        opened["priority"].as_u64().map(|p| p >= 4),
        Some(true),
        "{opened}"
    );
    let mut offered = BTreeMap::new();
    let mut ambulance_assigned = false;
    let mut stream = vec![opened.clone()];
    while offered.len() < 3 || !ambulance_assigned {
        let e = op.recv().await;
        stream.push(e.clone());
        match e["type"].as_str() {
            Some("offer_sent") => {
                assert!(
                    !e["reason"].as_str().unwrap_or("").is_empty(),
                    "an offer carries its reason: {e}"
                );
                offered.insert(
                    e["responder_id"].as_str().unwrap().to_string(),
                    e["offer_id"].as_u64().unwrap(),
                );
            }
            Some("assigned") if e["role"] == "ambulance" => {
                assert_eq!(e["responder_id"], "A1");
                ambulance_assigned = true;
            }
            _ => {}
        }
    }
    assert!(
        offered.keys().all(|r| r.starts_with('V')),
        "offers go to volunteers: {offered:?}"
    );

    // Each offered volunteer gets an offer with only what the job needs about the elder.
    for (r, offer_id) in &offered {
        let phone = phones.get_mut(r).unwrap();
        let (offer, _) = phone.recv_until("offer", |_| true).await;
        assert_eq!(offer["offer_id"].as_u64(), Some(*offer_id));
        assert_eq!(offer["incident_id"], incident);
        let keys: BTreeSet<&str> = offer
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = [
            "type",
            "offer_id",
            "incident_id",
            "kind",
            "service",
            "priority",
            "position",
            "eta_s",
            "distance_m",
            "route",
            "expires_at",
        ]
        .into();
        assert_eq!(keys, allowed, "{offer}");
        assert!(
            !offer.to_string().contains("Maria"),
            "family details never reach a responder"
        );
        assert!(
            offer["route"].as_array().is_some_and(|r| r.len() >= 2),
            "{offer}"
        );
    }
    let (amb, _) = phones
        .get_mut("A1")
        .unwrap()
        .recv_until("assigned", |_| true)
        .await;
    assert_eq!(amb["incident_id"], incident);
    assert_eq!(amb["role"], "ambulance");

    // The first offered volunteer accepts; the others' offers are withdrawn.
    let (winner, win_offer) = offered.iter().next().map(|(r, o)| (r.clone(), *o)).unwrap();
    let phone = phones.get_mut(&winner).unwrap();
    let (ack, _) = phone
        .request(json!({"type": "accept", "offer_id": win_offer}), "acc")
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (assigned, _) = phone.recv_until("assigned", |_| true).await;
    assert_eq!(assigned["role"], "community");
    assert_eq!(assigned["incident_id"], incident);
    for (r, offer_id) in offered.iter().filter(|(r, _)| **r != winner) {
        let (w, _) = phones
            .get_mut(r)
            .unwrap()
            .recv_until("offer_withdrawn", |_| true)
            .await;
        assert_eq!(w["offer_id"].as_u64(), Some(*offer_id));
        assert_eq!(w["reason"], "filled");
    }

    // Arrived and complete, community responder then ambulance.
    for who in [winner.as_str(), "A1"] {
        let phone = phones.get_mut(who).unwrap();
        let (r, _) = phone
            .request(json!({"type": "arrived", "incident_id": incident}), "arr")
            .await;
        assert_eq!(r["type"], "ack", "{who} arrived: {r}");
        let (r, _) = phone
            .request(json!({"type": "complete", "incident_id": incident}), "done")
            .await;
        assert_eq!(r["type"], "ack", "{who} complete: {r}");
    }
    let (credit, _) = phones
        .get_mut(&winner)
        .unwrap()
        .recv_until("time_bank_credited", |_| true)
        .await;
    assert_eq!(credit["incident_id"], incident);
    // Back on duty at once is refused: a volunteer rests after an emergency, and the phone is
    // told until when (so it can say so to its person).
    let (again, _) = phones
        .get_mut(&winner)
        .unwrap()
        .request(
            json!({"type": "availability", "status": "available"}),
            "again",
        )
        .await;
    assert_eq!(again["type"], "error", "{again}");
    assert_eq!(again["code"], "invalid_transition", "{again}");
    let until = again["resting_until"].as_i64().expect("resting_until");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let rest = dispatch_core::policy::PolicyConfig::default().rest_after_emergency_ms as i64;
    assert!(
        until > now && until <= now + rest,
        "the rest ends within {rest} ms from now ({now}): {again}"
    );
    let (closed, _) = phones
        .get_mut("A1")
        .unwrap()
        .recv_until("incident_closed", |_| true)
        .await;
    assert_eq!(closed["status"], "resolved");

    // The console saw every step, in sequence.
    let (resolved, rest) = op.recv_until("incident_resolved", |_| true).await;
    stream.extend(rest);
    stream.push(resolved);
    let types: Vec<&str> = stream.iter().filter_map(|e| e["type"].as_str()).collect();
    for t in [
        "incident_opened",
        "offer_sent",
        "assigned",
        "offer_withdrawn",
        "responder_arrived",
        "time_bank_credited",
        "incident_resolved",
    ] {
        assert!(types.contains(&t), "console missed {t}: {types:?}");
    }
    let seqs: Vec<u64> = stream.iter().map(seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {seqs:?}"
    );

    // The time bank shows the credit.
    let path = format!("/v1/responders/{winner}/time-bank");
    let (status, bank) = server.http("GET", &path, Some(&token("OP1")), None).await;
    assert_eq!(status, 200, "{bank}");
    let minutes = credit["minutes"].as_u64().unwrap();
    assert_eq!(bank["balance_minutes"].as_u64(), Some(minutes), "{bank}");
    assert_eq!(bank["history"][0]["incident_id"], incident, "{bank}");
    // ... readable by that responder too, not by another.
    let (status, _) = server.http("GET", &path, Some(&token(&winner)), None).await;
    assert_eq!(status, 200);
    let (status, _) = server.http("GET", &path, Some(&token("V4")), None).await;
    assert_eq!(status, 403);

    // The incident's timeline has every step with its reason.
    let (status, view) = server
        .http(
            "GET",
            &format!("/v1/incidents/{incident}"),
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let timeline = view["timeline"].as_array().expect("timeline");
    let kinds: Vec<&str> = timeline
        .iter()
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    for t in [
        "incident_opened",
        "offer_sent",
        "assigned",
        "offer_withdrawn",
        "responder_arrived",
        "incident_resolved",
    ] {
        assert!(kinds.contains(&t), "timeline missed {t}: {kinds:?}");
    }
    for e in timeline {
        if matches!(
            e["event"]["type"].as_str(),
            Some("incident_opened" | "offer_sent" | "assigned" | "incident_resolved")
        ) {
            assert!(
                !e["event"]["reason"].as_str().unwrap_or("").is_empty(),
                "no reason: {e}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_refused_before_the_upgrade() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let server = TestServer::start().await;
    for auth in [None, Some("Bearer not-a-token"), Some("Basic Zm9vOmJhcg==")] {
        let mut req = server.ws_url().into_client_request().unwrap();
        if let Some(a) = auth {
            req.headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(Error::Http(resp)) => assert_eq!(resp.status(), 401, "{auth:?}"),
            other => panic!(
                "{auth:?}: expected 401, got {:?}",
                other.map(|(_, r)| r.status())
            ),
        }
    }
    // The query-string token, for browsers.
    let url = format!("{}?access_token={}", server.ws_url(), token("OP1"));
    let (_, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token accepted");
    assert_eq!(resp.status(), 101);
    // HTTP: no token 401, a token of the wrong role 403.
    let (s, body) = server.http("GET", "/v1/incidents/1", None, None).await;
    assert_eq!((s, body["code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = server
        .http("GET", "/v1/incidents/1", Some("nope"), None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = server
        .http("GET", "/v1/incidents/1", Some(&token("V1")), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = server.post_alert("OP1", &fall("x", "E1")).await;
    assert_eq!(s, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_responder_acts_only_for_itself_and_roles_are_enforced() {
    let server = TestServer::start().await;
    let mut phones = on_duty(&server, &["V1", "V2", "V3", "V4"]).await;
    let mut op = server.connect("OP1").await;
    op.request(json!({"type": "subscribe"}), "s").await;
    let mut gw = server.connect("GW1").await;
    gw.request(fall("f", "E1"), "a").await;
    let (sent, _) = op.recv_until("offer_sent", |_| true).await;
    let owner = sent["responder_id"].as_str().unwrap().to_string();
    let offer_id = sent["offer_id"].as_u64().unwrap();
    // Someone else tries to take it, even naming the owner in the frame.
    let thief = ["V1", "V2", "V3", "V4"]
        .into_iter()
        .find(|r| *r != owner)
        .unwrap();
    let phone = phones.get_mut(thief).unwrap();
    let (r, _) = phone
        .request(
            json!({"type": "accept", "offer_id": offer_id, "responder_id": owner}),
            "steal",
        )
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert!(
        matches!(r["code"].as_str(), Some("not_your_offer" | "unknown_offer")),
        "{r}"
    );
    // One role cannot act as another.
    let (r, _) = phone.request(fall("f2", "E1"), "x").await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{r}"
    );
    let (r, _) = gw
        .request(json!({"type": "accept", "offer_id": offer_id}), "y")
        .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let (r, _) = gw.request(json!({"type": "subscribe"}), "z").await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // The owner still can.
    let (r, _) = phones
        .get_mut(&owner)
        .unwrap()
        .request(json!({"type": "accept", "offer_id": offer_id}), "mine")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn a_resent_alert_is_a_duplicate_of_the_same_incident() {
    let server = TestServer::start().await;
    let mut gw = server.connect("GW1").await;
    let (first, _) = gw.request(fall("same-key", "E2"), "1").await;
    assert_eq!(first["duplicate"], false, "{first}");
    let (again, _) = gw.request(fall("same-key", "E2"), "2").await;
    assert_eq!(again["type"], "alert_accepted");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["incident_id"], first["incident_id"]);
    // The same alert over HTTP: 202, the same body.
    let (s, body) = server.post_alert("GW1", &fall("same-key", "E2")).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["type"], "alert_accepted");
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["incident_id"], first["incident_id"]);
    // A new one over HTTP opens a new incident.
    let (s, body) = server.post_alert("GW1", &fall("new-key", "E1")).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["duplicate"], false);
    assert_ne!(body["incident_id"], first["incident_id"]);
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_session_survives() {
    let server = TestServer::start().await;
    let mut gw = server.connect("GW1").await;
    gw.send_text("{not json".into()).await;
    let r = gw.recv().await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("bad_json")),
        "{r}"
    );
    let (r, _) = gw.request(json!({"type": "teleport"}), "t").await;
    assert_eq!(r["code"], "unknown_type", "{r}");
    let (r, _) = gw.request(json!({"type": "alert", "alert_id": "a", "kind": "tumble", "elder_id": "E1", "detected_at": 1}), "k").await;
    assert_eq!(r["code"], "bad_field", "{r}");
    let (r, _) = gw.request(json!({"type": "alert", "alert_id": "a", "kind": "help", "elder_id": "E1", "detected_at": 1}), "s").await;
    assert_eq!(r["code"], "bad_field", "help without a service: {r}");
    // (An alert for an unknown elder is kept for an operator: tests/mixed_requests.rs.)
    let (r, _) = gw
        .request(json!({"type": "alert", "alert_id": "a", "kind": "fall", "elder_id": "E1", "detected_at": 1, "position": {"lat": 123.0, "lon": 0.0}}), "p")
        .await;
    assert_eq!(r["code"], "bad_field", "{r}");
    // Still alive, and nothing changed: no incident was opened.
    let (r, _) = gw.request(json!({"type": "ping"}), "alive").await;
    assert_eq!(r["type"], "pong");
    let (_, snap) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    assert_eq!(
        snap["state"]["incidents"].as_array().map(Vec::len),
        Some(0),
        "{snap}"
    );
    assert_eq!(snap["seq"], 0, "no event was minted: {snap}");
    // An oversize frame closes with 1009.
    gw.send_text(format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    ))
    .await;
    assert_eq!(gw.closed_with().await, Some(1009));
    server.stop().await;
}

#[tokio::test]
async fn a_reconnecting_console_resumes_from_its_last_seq_and_misses_nothing() {
    let server = TestServer::start().await;
    let (mut watcher, _) = subscribed(&server, "OP2", json!({"type": "subscribe"})).await;
    let (mut op, snap) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    assert_eq!(snap["type"], "snapshot");
    let mut phones = on_duty(&server, &["V1", "V2"]).await;
    let mut gw = server.connect("GW1").await;
    gw.request(fall("r1", "E1"), "1").await;
    let (opened, _) = op.recv_until("incident_opened", |_| true).await;
    let last = seq(&opened);
    drop(op); // the console goes away

    // Meanwhile: more happens.
    gw.request(fall("r2", "E2"), "2").await;
    phones
        .get_mut("V1")
        .unwrap()
        .request(json!({"type": "availability", "status": "off_duty"}), "off")
        .await;
    let (marker, seen) = watcher
        .recv_until("responder_availability", |e| e["status"] == "off_duty")
        .await;
    let end = seq(&marker);
    // What the console that never left saw after `last` (moves are throttled, not replayed).
    let expected: Vec<u64> = seen
        .iter()
        .chain([&marker])
        .filter(|e| e["type"] != "responder_moved" && e["seq"].as_u64().is_some_and(|s| s > last))
        .map(seq)
        .collect();
    assert!(
        expected.len() >= 3,
        "the test makes things happen while away: {expected:?}"
    );

    // It comes back with its last seq: it gets exactly what it missed.
    let mut op = server.connect("OP1").await;
    let (resumed, _) = op
        .request(json!({"type": "subscribe", "last_seq": last}), "again")
        .await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["from_seq"], last);
    let mut got = Vec::new();
    while got.last().map(seq) != Some(end) {
        let e = op.recv().await;
        if e["type"] != "responder_moved" {
            got.push(e);
        }
    }
    assert_eq!(got.iter().map(seq).collect::<Vec<_>>(), expected);
    assert!(
        got.iter()
            .any(|e| e["type"] == "incident_opened" && e["elder_id"] == "E2"),
        "{got:?}"
    );

    // Too old a seq (or an unknown future one) gets a fresh snapshot instead.
    let (snap, _) = op
        .request(
            json!({"type": "subscribe", "last_seq": end + 1000}),
            "future",
        )
        .await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["reason"], "resume_unavailable");
    server.stop().await;
}

#[tokio::test]
async fn console_filters_select_by_priority_and_grid() {
    let server = TestServer::start().await;
    let (mut high, _) = subscribed(
        &server,
        "OP1",
        json!({"type": "subscribe", "filter": {"min_priority": 5}}),
    )
    .await;
    let (mut north, _) = subscribed(
        &server,
        "OP2",
        json!({"type": "subscribe", "filter": {"grids": ["G2"]}}),
    )
    .await;
    let mut gw = server.connect("GW1").await;
    // Falls are emergencies: E2 (level 2, grid G2) gets priority 4, E1 (level 4, G1) 5.
    let (low, _) = gw.request(fall("low", "E2"), "1").await;
    let (hi, _) = gw.request(fall("high", "E1"), "2").await;
    let (e, skipped) = high.recv_until("incident_opened", |_| true).await;
    assert_eq!(
        e["incident_id"], hi["incident_id"],
        "the first incident the high filter sees is E1's"
    );
    assert!(
        skipped
            .iter()
            .all(|s| s["incident_id"] != low["incident_id"]),
        "{skipped:?}"
    );
    let (e, _) = north.recv_until("incident_opened", |_| true).await;
    assert_eq!(e["incident_id"], low["incident_id"]);
    server.stop().await;
}

#[tokio::test]
async fn chinese_datums_are_converted_to_wgs84_at_the_edge() {
    let server = TestServer::start().await;
    let (mut op, _) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    let mut phones = on_duty(&server, &["V1"]).await;
    let truth = LatLon {
        lat: -30.0312,
        lon: -51.2187,
    };
    // BD-09 offsets positions everywhere (GCJ-02 is the identity outside China, so in Porto
    // Alegre BD-09 is GCJ-02 → BD-09 of the WGS84 position).
    let bd = gcj02_to_bd09(truth);
    assert!(
        haversine_m(bd, truth) > 100.0,
        "the test position really is offset"
    );
    phones
        .get_mut("V1")
        .unwrap()
        .send(
            json!({"type": "location", "position": {"lat": bd.lat, "lon": bd.lon, "crs": "bd09"}}),
        )
        .await;
    let (moved, _) = op.recv_until("responder_moved", |_| true).await;
    let got = LatLon {
        lat: moved["position"]["lat"].as_f64().unwrap(),
        lon: moved["position"]["lon"].as_f64().unwrap(),
    };
    assert!(haversine_m(got, truth) < 1.0, "{got:?} vs {truth:?}");
    // An alert in BD-09: the incident's position is WGS84.
    let mut gw = server.connect("GW1").await;
    let mut alert = fall("bd", "E1");
    alert["position"] = json!({"lat": bd.lat, "lon": bd.lon, "crs": "bd09"});
    gw.request(alert, "a").await;
    let (opened, _) = op.recv_until("incident_opened", |_| true).await;
    let got = LatLon {
        lat: opened["position"]["lat"].as_f64().unwrap(),
        lon: opened["position"]["lon"].as_f64().unwrap(),
    };
    assert!(haversine_m(got, truth) < 1.0, "{got:?} vs {truth:?}");
    // GCJ-02 outside China is WGS84 itself.
    let mut alert = fall("gcj", "E2");
    alert["position"] = json!({"lat": truth.lat, "lon": truth.lon, "crs": "gcj02"});
    gw.request(alert, "b").await;
    let (opened, _) = op
        .recv_until("incident_opened", |e| e["alert_id"] == "gcj")
        .await;
    assert_eq!(opened["position"]["lat"].as_f64(), Some(truth.lat));
    server.stop().await;
}

#[tokio::test]
async fn healthz_reports_ok() {
    let server = TestServer::start().await;
    let (s, body) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "ok");
    server.stop().await;
}

/// Connects with a tiny TCP receive buffer, so a client that does not read stalls the
/// server's writes to it after a few kilobytes.
async fn connect_stingy(server: &TestServer, id: &str) -> Client {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(id)).parse().unwrap(),
    );
    let (ws, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut c = Client {
        ws,
        id: id.to_string(),
    };
    assert_eq!(c.recv().await["type"], "welcome");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_never_reads_does_not_slow_the_others() {
    let mut limits = dispatch_server::Limits::default();
    // Room for the whole burst, so the reading console cannot lag however slowly this
    // machine runs it; the sleeper stalls on its socket (a few MB of kernel buffers) instead.
    limits.session.console_queue = 65_536;
    limits.session.rate_per_s = 1e6;
    limits.session.rate_burst = 1e6;
    limits.session.write_timeout = std::time::Duration::from_secs(1);
    let server = TestServer::start_with(
        common::roster(),
        limits,
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await;
    let mut sleeper = connect_stingy(&server, "OP2").await;
    let (snap, _) = sleeper.request(json!({"type": "subscribe"}), "s").await;
    let sleeper_start = seq(&snap);
    let (mut op, snap) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    let mut phones = on_duty(&server, &["V1", "V2", "V3", "V4"]).await;
    // The reading console reads all along, in its own task: every event, gap-free, up to
    // the end marker.
    let reader = tokio::spawn(async move {
        let mut at = seq(&snap);
        loop {
            let e = op.recv().await;
            if e["type"] == "responder_moved" {
                continue;
            }
            assert_eq!(seq(&e), at + 1, "gap-free stream: {e}");
            at = seq(&e);
            if e["type"] == "incident_opened" && e["alert_id"] == "end-marker" {
                return at;
            }
        }
    });

    // Thousands of events, pipelined; the sleeper reads none of them.
    const ROUNDS: usize = 8000;
    for phone in phones.values_mut() {
        for i in 0..ROUNDS {
            let status = if i % 2 == 0 { "off_duty" } else { "available" };
            phone
                .send(json!({"type": "availability", "status": status}))
                .await;
        }
    }
    for phone in phones.values_mut() {
        for _ in 0..ROUNDS {
            let r = phone.recv().await;
            assert_eq!(r["type"], "ack", "{r}");
        }
    }
    let mut gw = server.connect("GW1").await;
    gw.request(fall("end-marker", "E2"), "end").await;

    let at = tokio::time::timeout(common::GUARD, reader)
        .await
        .expect("reader in time")
        .expect("reader");
    assert!(
        at >= (4 * ROUNDS) as u64,
        "every toggle was an event: at {at}"
    );

    // The sleeper: whatever it got is never silently gappy. It either kept up, or was told
    // (a `snapshot` with reason `lagged` or a `resumed`) or was closed.
    let mut pos = sleeper_start;
    let mut told = false;
    loop {
        let next = tokio::time::timeout(
            common::GUARD,
            futures_util::StreamExt::next(&mut sleeper.ws),
        )
        .await;
        let Ok(Some(Ok(m))) = next else { break };
        let tokio_tungstenite::tungstenite::Message::Text(t) = m else {
            break;
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        match v["type"].as_str() {
            Some("snapshot") => {
                assert_eq!(v["reason"], "lagged", "{v}");
                told = true;
                pos = seq(&v);
            }
            Some("resumed") => {
                told = true;
                pos = v["from_seq"].as_u64().unwrap();
            }
            Some("responder_moved") => {}
            _ => {
                assert_eq!(seq(&v), pos + 1, "silent gap after {pos}: {v}");
                pos = seq(&v);
            }
        }
        if pos == at {
            break;
        }
    }
    eprintln!("sleeper reached seq {pos} of {at}; told it lagged: {told}");
    server.stop().await;
}

/// A journal whose durability the test releases by hand, telling how far it is appended and
/// which command each LSN holds.
#[derive(Default)]
struct HeldJournal {
    lsn: u64,
    durable: tokio::sync::watch::Sender<dispatch_server::engine_task::Durability>,
    appended: tokio::sync::watch::Sender<u64>,
    /// (lsn, the command as `{:?}`) for every command appended.
    seen: tokio::sync::watch::Sender<Vec<(u64, String)>>,
}

impl dispatch_server::engine_task::JournalSink for HeldJournal {
    fn command(
        &mut self,
        _now: dispatch_core::time::Timestamp,
        command: &dispatch_core::command::Command,
        _events: &[dispatch_core::event::EventRecord],
    ) -> anyhow::Result<u64> {
        self.lsn += 1;
        let lsn = self.lsn;
        self.appended.send_replace(lsn);
        self.seen
            .send_modify(|v| v.push((lsn, format!("{command:?}"))));
        Ok(lsn)
    }
    fn timeout(
        &mut self,
        _now: dispatch_core::time::Timestamp,
        _events: &[dispatch_core::event::EventRecord],
    ) -> anyhow::Result<u64> {
        self.lsn += 1;
        self.appended.send_replace(self.lsn);
        Ok(self.lsn)
    }
    fn durable(&self) -> tokio::sync::watch::Receiver<dispatch_server::engine_task::Durability> {
        self.durable.subscribe()
    }
    fn snapshot_due(&self) -> bool {
        false
    }
    fn snapshot(&mut self, _state: dispatch_core::engine::EngineState) -> anyhow::Result<()> {
        Ok(())
    }
    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn nothing_is_acknowledged_or_shown_before_it_is_durable() {
    use dispatch_server::engine_task::Durability;
    let durable = tokio::sync::watch::Sender::new(Durability::default());
    let appended = tokio::sync::watch::Sender::new(0u64);
    let journal = HeldJournal {
        durable: durable.clone(),
        appended: appended.clone(),
        ..HeldJournal::default()
    };
    let server = TestServer::start_with(
        common::roster(),
        dispatch_server::Limits::default(),
        Box::new(journal),
    )
    .await;
    let mut gw = server.connect("GW1").await;
    let mut op = server.connect("OP1").await;
    gw.send(json!({"type": "alert", "id": "held", "alert_id": "held", "kind": "fall", "elder_id": "E1", "detected_at": 1})).await;
    let mut appended_rx = appended.subscribe();
    tokio::time::timeout(common::GUARD, appended_rx.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();
    // The engine has decided and the record is appended but not durable: no acknowledgement,
    // and a console's snapshot waits too. (A bounded wait for something that must not come:
    // it can only miss a bug, never fail a correct server.)
    op.send(json!({"type": "subscribe", "id": "s"})).await;
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), gw.recv()).await;
    assert!(early.is_err(), "acknowledged before durable: {early:?}");
    let early = tokio::time::timeout(std::time::Duration::from_millis(100), op.recv()).await;
    assert!(early.is_err(), "console served before durable: {early:?}");
    // Durable: both go.
    let n = *appended.borrow();
    durable.send_replace(Durability {
        lsn: n,
        ..Durability::default()
    });
    let r = gw.recv().await;
    assert_eq!(
        (r["type"].as_str(), r["re"].as_str()),
        (Some("alert_accepted"), Some("held")),
        "{r}"
    );
    let snap = op.recv().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(
        snap["state"]["incidents"].as_array().map(Vec::len),
        Some(1),
        "{snap}"
    );
    server.stop().await;
}

/// A server on a `HeldJournal`, with the journal's watches.
struct Held {
    server: std::sync::Arc<TestServer>,
    durable: tokio::sync::watch::Sender<dispatch_server::engine_task::Durability>,
    appended: tokio::sync::watch::Sender<u64>,
    seen: tokio::sync::watch::Sender<Vec<(u64, String)>>,
}

impl Held {
    async fn start() -> Held {
        let journal = HeldJournal::default();
        let (durable, appended, seen) = (
            journal.durable.clone(),
            journal.appended.clone(),
            journal.seen.clone(),
        );
        let server = TestServer::start_with(
            common::roster(),
            dispatch_server::Limits::default(),
            Box::new(journal),
        )
        .await;
        Held {
            server: std::sync::Arc::new(server),
            durable,
            appended,
            seen,
        }
    }

    /// The LSN of the first command appended at index `from` or later whose `{:?}` holds
    /// `needle`, once there is one.
    async fn decided(&self, from: usize, needle: &str) -> u64 {
        let mut rx = self.seen.subscribe();
        let found = |v: &Vec<(u64, String)>| {
            v.get(from..)
                .and_then(|v| v.iter().find(|(_, c)| c.contains(needle)))
                .map(|(lsn, _)| *lsn)
        };
        let v = tokio::time::timeout(common::GUARD, rx.wait_for(|v| found(v).is_some()))
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` command was decided"))
            .unwrap();
        found(&v).unwrap()
    }

    /// Durable up to `lsn`.
    fn release(&self, lsn: u64) {
        self.durable
            .send_replace(dispatch_server::engine_task::Durability {
                lsn,
                ..Default::default()
            });
    }

    async fn stop(self) {
        if let Ok(server) = std::sync::Arc::try_unwrap(self.server) {
            server.stop().await;
        }
    }
}

/// Regression (a start-up burst of phones refused alerts `busy`): a phone's join was a read,
/// and a read stopped the engine task taking anything until every step before it was durable,
/// so each joining phone cost a whole journal round trip (in cluster mode, a replicated one).
/// Now the join is read at once and its resend released in order: commands behind it are
/// still decided while the journal holds, and nothing reaches the phone before it is durable.
#[tokio::test]
async fn a_phone_joining_does_not_stop_the_engine_until_the_journal_catches_up() {
    let held = Held::start().await;
    let server = held.server.clone();
    // A gateway's session waits for each answer before it reads its next frame: one
    // connection per alert.
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(server.connect("GW1").await);
    }
    gws[0].send(json!({"type": "alert", "id": "a1", "alert_id": "alert-one", "kind": "fall", "elder_id": "E1", "detected_at": 1})).await;
    held.decided(0, "alert-one").await;
    // The phone connects: its presence is decided, its welcome waits for that to be durable.
    let phone = tokio::spawn({
        let server = server.clone();
        async move { server.connect("V1").await }
    });
    let presence = held.decided(0, "Presence").await;
    gws[1].send(json!({"type": "alert", "id": "a2", "alert_id": "alert-two", "kind": "fall", "elder_id": "E2", "detected_at": 2})).await;
    held.decided(0, "alert-two").await;
    // Durable up to the presence only: the phone is welcomed and joins while alert-two is not
    // durable yet.
    held.release(presence);
    let mut phone = tokio::time::timeout(common::GUARD, phone)
        .await
        .expect("welcomed")
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    gws[2].send(json!({"type": "alert", "id": "a3", "alert_id": "alert-three", "kind": "fall", "elder_id": "E1", "detected_at": 3})).await;
    held.decided(0, "alert-three").await;
    // Nothing about alert-two or alert-three out before durable. (A bounded wait for
    // something that must not come.)
    let early = tokio::time::timeout(std::time::Duration::from_millis(200), phone.recv()).await;
    assert!(
        early.is_err(),
        "the phone was sent something before durable: {early:?}"
    );
    let early = tokio::time::timeout(std::time::Duration::from_millis(100), gws[2].recv()).await;
    assert!(early.is_err(), "acknowledged before durable: {early:?}");
    held.release(*held.appended.borrow() + 100);
    for (gw, id) in gws.iter_mut().zip(["a1", "a2", "a3"]) {
        let r = gw.recv().await;
        assert_eq!(
            (r["type"].as_str(), r["re"].as_str()),
            (Some("alert_accepted"), Some(id)),
            "{r}"
        );
    }
    drop((gws, phone, server));
    held.stop().await;
}

/// The other half of the regression above: what a reconnecting phone is sent again (its open
/// offer) is read when it joins but reaches it only once every step decided before the join
/// is durable, and then it does.
#[tokio::test]
async fn a_reconnecting_phone_is_sent_its_open_offer_only_once_what_came_before_is_durable() {
    use dispatch_server::engine_task::Durability;
    use std::sync::atomic::{AtomicBool, Ordering};
    let held = Held::start().await;
    let server = held.server.clone();
    // Until `hold`, everything appended is durable at once.
    let hold = std::sync::Arc::new(AtomicBool::new(false));
    let mirror = tokio::spawn({
        let (durable, mut appended, hold) = (
            held.durable.clone(),
            held.appended.subscribe(),
            hold.clone(),
        );
        async move {
            while appended.changed().await.is_ok() {
                if !hold.load(Ordering::SeqCst) {
                    let lsn = *appended.borrow();
                    durable.send_replace(Durability {
                        lsn,
                        ..Durability::default()
                    });
                }
            }
        }
    });
    let mut phone = server.connect("V1").await;
    phone
        .send(json!({"type": "availability", "id": "on", "status": "available"}))
        .await;
    phone.recv_until("ack", |v| v["re"] == "on").await;
    let mut gw = server.connect("GW1").await;
    let mut gw2 = server.connect("GW1").await;
    gw.send(json!({"type": "alert", "id": "a1", "alert_id": "alert-one", "kind": "fall", "elder_id": "E1", "detected_at": 1})).await;
    let (offer, _) = phone.recv_until("offer", |_| true).await;
    let incident = offer["incident_id"].clone();

    // Held from here. The phone reconnects: its presence is decided; then another alert.
    hold.store(true, Ordering::SeqCst);
    let mark = held.seen.borrow().len();
    let again = tokio::spawn({
        let server = server.clone();
        async move { server.connect("V1").await }
    });
    let presence = held.decided(mark, "online: true").await;
    gw2.send(json!({"type": "alert", "id": "a2", "alert_id": "alert-two", "kind": "fall", "elder_id": "E2", "detected_at": 2})).await;
    held.decided(mark, "alert-two").await;
    // Durable up to the presence: the phone is welcomed and joins while alert-two is not.
    held.release(presence);
    let mut again = tokio::time::timeout(common::GUARD, again)
        .await
        .expect("welcomed")
        .unwrap();
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), again.recv()).await;
    assert!(
        early.is_err(),
        "the phone was sent its offer again before what came before it was durable: {early:?}"
    );
    held.release(*held.appended.borrow() + 1_000);
    let (resent, _) = again
        .recv_until("offer", |v| v["incident_id"] == incident)
        .await;
    assert_eq!(resent["offer_id"], offer["offer_id"], "{resent}");
    mirror.abort();
    drop((phone, again, gw, gw2, server));
    held.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_broken_roster_or_map_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut roster = common::roster();
    roster.elders[0].grid_id = "G404".into();
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &roster),
    );
    let err = format!(
        "{:#}",
        dispatch_server::serve_cmd::open(&args)
            .err()
            .expect("refused")
    );
    assert!(err.contains("E1") && err.contains("G404"), "{err}");

    let junk = dir.path().join("junk.osm.pbf");
    std::fs::write(&junk, b"this is not a protocol buffer").unwrap();
    let args = serve_args(
        dir.path(),
        junk,
        write_roster(dir.path(), &common::roster()),
    );
    let err = format!(
        "{:#}",
        dispatch_server::serve_cmd::open(&args)
            .err()
            .expect("refused")
    );
    assert!(
        err.contains("reading map") && err.contains("junk.osm.pbf"),
        "{err}"
    );
}

#[tokio::test]
async fn an_acknowledged_alert_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &common::roster()),
    );
    let server = serve_from(&args).await;
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("before-restart", "E1"), "1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");
    let incident = acc["incident_id"].clone();
    server.stop().await;

    // Same data dir: the journal replays; the alert is known and its incident is there.
    let server = serve_from(&args).await;
    let mut gw = server.connect("GW1").await;
    let (again, _) = gw.request(fall("before-restart", "E1"), "2").await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["incident_id"], incident);
    let (s, view) = server
        .http(
            "GET",
            &format!("/v1/incidents/{incident}"),
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(
        view["timeline"][0]["event"]["type"], "incident_opened",
        "{view}"
    );
    server.stop().await;
}

/// Regression (fan-out kept its own copy of incident facts, learnt from live events only): after
/// a restart, a console filtered to one grid was sent every replayed incident in its snapshot.
#[tokio::test]
async fn a_filtered_snapshot_after_a_restart_holds_only_its_grids() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &common::roster()),
    );
    let server = serve_from(&args).await;
    let mut gw = server.connect("GW1").await;
    let (in_g1, _) = gw.request(fall("in-g1", "E1"), "1").await;
    let (in_g2, _) = gw.request(fall("in-g2", "E2"), "2").await;
    assert_eq!(in_g1["type"], "alert_accepted", "{in_g1}");
    assert_eq!(in_g2["type"], "alert_accepted", "{in_g2}");
    server.stop().await;

    let server = serve_from(&args).await;
    let ids = |snap: &Value| -> Vec<Value> {
        snap["state"]["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .map(|i| i["id"].clone())
            .collect()
    };
    let (_, north) = subscribed(
        &server,
        "OP1",
        json!({"type": "subscribe", "filter": {"grids": ["G2"]}}),
    )
    .await;
    assert_eq!(ids(&north), vec![in_g2["incident_id"].clone()], "{north}");
    let (_, all) = subscribed(&server, "OP2", json!({"type": "subscribe"})).await;
    assert_eq!(ids(&all).len(), 2, "{all}");
    server.stop().await;
}

/// People changed at run time (people.rs) are journaled: after a restart on the same data
/// directory the added volunteer and their issued token are there, the revoked token is not.
#[tokio::test]
async fn people_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &common::roster()),
    );
    let server = serve_from(&args).await;
    let op = token("OP1");
    let v9 = json!({"id": "V9", "kind": "volunteer", "travel_mode": "foot",
        "home": {"lat": common::CENTRE.lat, "lon": common::CENTRE.lon}, "grid_id": "G1"});
    let (s, body) = server
        .http("POST", "/v1/responders", Some(&op), Some(&v9))
        .await;
    assert_eq!(s, 201, "{body}");
    let mut issued = Vec::new();
    for _ in 0..2 {
        let (s, body) = server
            .http("POST", "/v1/responders/V9/tokens", Some(&op), None)
            .await;
        assert_eq!(s, 201, "{body}");
        issued.push(body["token"].as_str().unwrap().to_string());
    }
    server.stop().await;

    let server = serve_from(&args).await;
    let (s, body) = server
        .http("GET", "/v1/responders/V9", Some(&op), None)
        .await;
    assert_eq!((s, &body["has_token"]), (200, &json!(true)), "{body}");
    assert_eq!(server.upgrade_status(&issued[0]).await, 401);
    server.connect_with("V9", &issued[1]).await;

    // `dispatch roster export` reads the same roster from the data directory, while the
    // service runs on it: V9 with the digest of the token issued last, never the token.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["roster", "export", "--data-dir"])
        .arg(&args.data_dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: dispatch_core::roster::RosterFile =
        serde_json::from_slice(&out.stdout).expect("a roster file");
    let v9 = exported
        .responders
        .iter()
        .find(|r| r.id.as_str() == "V9")
        .expect("V9 exported");
    assert_eq!(
        v9.token_sha256.as_deref(),
        Some(dispatch_server::auth::token_digest(&issued[1]).as_str())
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&issued[1]));
    server.stop().await;
}

/// A journal whose disk is full.
struct FullDisk(tokio::sync::watch::Sender<dispatch_server::engine_task::Durability>);

impl dispatch_server::engine_task::JournalSink for FullDisk {
    fn command(
        &mut self,
        _now: dispatch_core::time::Timestamp,
        _command: &dispatch_core::command::Command,
        _events: &[dispatch_core::event::EventRecord],
    ) -> anyhow::Result<u64> {
        anyhow::bail!("No space left on device")
    }
    fn timeout(
        &mut self,
        _now: dispatch_core::time::Timestamp,
        _events: &[dispatch_core::event::EventRecord],
    ) -> anyhow::Result<u64> {
        anyhow::bail!("No space left on device")
    }
    fn durable(&self) -> tokio::sync::watch::Receiver<dispatch_server::engine_task::Durability> {
        self.0.subscribe()
    }
    fn snapshot_due(&self) -> bool {
        false
    }
    fn snapshot(&mut self, _state: dispatch_core::engine::EngineState) -> anyhow::Result<()> {
        Ok(())
    }
    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_journal_acknowledges_nothing_and_healthz_says_so() {
    let journal = FullDisk(tokio::sync::watch::Sender::new(Default::default()));
    let server = TestServer::start_with(
        common::roster(),
        dispatch_server::Limits::default(),
        Box::new(journal),
    )
    .await;
    let mut gw = server.connect("GW1").await;
    let (r, _) = gw.request(fall("lost", "E1"), "1").await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "{r}"
    );
    let (r, _) = gw.request(fall("lost-2", "E2"), "2").await;
    assert_eq!(r["code"], "unavailable", "{r}");
    let (s, body) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["status"], "failing");
    assert!(
        body["journal"]["failed"]
            .as_str()
            .is_some_and(|m| m.contains("No space")),
        "{body}"
    );
    server.stop().await;
}

/// A volunteer's phone that drops and reconnects (a lift, a tunnel, a flat battery) is sent
/// the offer it still holds, and once it accepted, the assignment it is working on; a phone
/// with no open job gets nothing extra.
#[tokio::test]
async fn a_reconnecting_phone_is_sent_its_open_offer_and_assignment_again() {
    let server = TestServer::start().await;
    let (mut op, _) = subscribed(&server, "OP1", json!({"type": "subscribe"})).await;
    let vols = ["V1", "V2", "V3", "V4"];
    let mut phones = on_duty(&server, &vols).await;
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("fall-r", "E1"), "a1").await;
    let incident = acc["incident_id"].as_u64().expect("incident id");
    let mut offered = BTreeSet::new();
    while offered.len() < 3 {
        let (e, _) = op.recv_until("offer_sent", |_| true).await;
        offered.insert(e["responder_id"].as_str().unwrap().to_string());
    }
    let who = offered.iter().next().unwrap().clone();
    let (offer, _) = phones
        .get_mut(&who)
        .unwrap()
        .recv_until("offer", |_| true)
        .await;
    assert_eq!(offer["incident_id"], incident);
    drop(phones.remove(&who));

    let mut again = server.connect(&who).await;
    let resent = again.recv().await;
    assert_eq!(resent["type"], "offer", "{resent}");
    assert_eq!(resent["offer_id"], offer["offer_id"]);
    assert_eq!(resent["incident_id"], incident);
    assert_eq!(resent["route"], offer["route"]);
    let (r, _) = again
        .request(
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "acc",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (assigned, _) = again.recv_until("assigned", |_| true).await;
    assert_eq!(assigned["incident_id"], incident);
    drop(again);

    let mut third = server.connect(&who).await;
    let resent = third.recv().await;
    assert_eq!(resent["type"], "assigned", "{resent}");
    assert_eq!(resent["incident_id"], incident);
    assert_eq!(resent["route"], assigned["route"]);

    // The volunteer who was never asked: after the welcome, the next frame is the reply.
    let idle = vols
        .iter()
        .find(|v| !offered.contains(**v))
        .expect("wave 1 asks three of four");
    drop(phones.remove(*idle));
    let mut idle_phone = server.connect(idle).await;
    idle_phone
        .send(json!({"type": "availability", "status": "available", "id": "x"}))
        .await;
    let first = idle_phone.recv().await;
    assert_eq!(first["re"], "x", "{first}");
    server.stop().await;
}
