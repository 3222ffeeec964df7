//! Limits over real sockets (issue 14, docs/limits.md): close codes 1009 and 1007, refusals
//! for unknown grids and off-map positions, size limits checked before the journal, HTTP body
//! and rate limits, the idle and handshake timeouts, shedding of idle unauthenticated
//! connections, and the disk budget in `/healthz`.

mod common;

use common::{fall, token, TestServer, GUARD};
use dispatch_core::roster::DeviceRecord;
use dispatch_server::engine_task::VolatileJournal;
use dispatch_server::journal::{Journal, JournalOptions};
use dispatch_server::Limits;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

async fn start(limits: Limits) -> TestServer {
    TestServer::start_with(
        common::roster(),
        limits,
        Box::new(VolatileJournal::default()),
    )
    .await
}

#[tokio::test]
async fn every_oversize_frame_closes_with_1009() {
    let server = TestServer::start().await;
    // Just over the 64 KiB limit, and over what used to be the library's 256 KiB limit (which
    // dropped the connection without a code).
    for size in [64 * 1024 + 1, 300 * 1024, 2 * 1024 * 1024] {
        let mut gw = server.connect("GW1").await;
        gw.send_text("x".repeat(size)).await;
        assert_eq!(gw.closed_with().await, Some(1009), "a {size}-byte frame");
        let mut gw = server.connect("GW1").await;
        let _ = gw.ws.send(Message::binary(vec![0u8; size])).await;
        assert_eq!(
            gw.closed_with().await,
            Some(1009),
            "a {size}-byte binary frame"
        );
    }
    // The service is still there.
    let mut gw = server.connect("GW1").await;
    let (r, _) = gw.request(json!({"type": "ping"}), "p").await;
    assert_eq!(r["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start().await;
    let mut gw = server.connect("GW1").await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    gw.ws.send(Message::Frame(bad)).await.expect("send");
    assert_eq!(gw.closed_with().await, Some(1007));
    server.stop().await;
}

#[tokio::test]
async fn a_subscribe_naming_an_unknown_grid_is_refused() {
    let server = TestServer::start().await;
    let mut op = server.connect("OP1").await;
    let (r, _) = op
        .request(
            json!({"type": "subscribe", "filter": {"grids": ["G1", "G404"]}}),
            "s",
        )
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "unknown_grid", "{r}");
    assert!(r["message"].as_str().unwrap().contains("G404"), "{r}");
    // Known grids subscribe.
    op.send(json!({"type": "subscribe", "filter": {"grids": ["G1"]}}))
        .await;
    let (snap, _) = op.recv_until("snapshot", |_| true).await;
    assert!(snap["state"].is_object(), "{snap}");
    server.stop().await;
}

#[tokio::test]
async fn a_location_off_the_map_is_refused_off_map() {
    let server = TestServer::start().await;
    let mut v1 = server.connect("V1").await;
    for (lat, lon) in [(0.0, 0.0), (40.4, -3.7), (-30.03, -45.0)] {
        let (r, _) = v1
            .request(
                json!({"type": "location", "position": {"lat": lat, "lon": lon}}),
                "l",
            )
            .await;
        assert_eq!(r["code"], "off_map", "({lat}, {lon}): {r}");
    }
    // Without an id too (the fast path) the refusal comes back.
    v1.send(json!({"type": "location", "position": {"lat": 0.0, "lon": 0.0}}))
        .await;
    let r = v1.recv().await;
    assert_eq!(r["code"], "off_map", "{r}");
    // A position in the city is taken silently (as before).
    v1.send(json!({"type": "location", "position": {"lat": -30.031, "lon": -51.221}}))
        .await;
    let (r, skipped) = v1.request(json!({"type": "ping"}), "p").await;
    assert_eq!(r["type"], "pong");
    assert!(skipped.iter().all(|f| f["type"] != "error"), "{skipped:?}");
    server.stop().await;
}

/// Whether any file under the journal directory contains `needle` (files that vanish while
/// listed, such as a replaced snapshot's temporary, are skipped).
fn journal_contains(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir)
        .expect("data dir")
        .flatten()
        .any(|e| {
            let path = e.path();
            if path.is_dir() {
                return journal_contains(&path, needle);
            }
            std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
}

#[tokio::test]
async fn oversize_strings_are_refused_naming_the_field_and_the_journal_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).expect("journal");
    let server =
        TestServer::start_with(common::roster(), Limits::default(), Box::new(journal)).await;
    let mut gw = server.connect("GW1").await;
    let mut op = server.connect("OP1").await;
    // One accepted alert first, so that the journal has its segment and an incident exists.
    let (r, _) = gw.request(fall("ok-1", "E1"), "a").await;
    assert_eq!(r["type"], "alert_accepted", "{r}");
    let incident = r["incident_id"].clone();
    // (The durable LSN is no measure here: the engine's own dispatch rounds and timers
    // write records in the background. The refused strings themselves must be absent.)
    let long = "a".repeat(129);
    let text = "n".repeat(1_001);
    let grids: Vec<String> = (0..1_001).map(|i| format!("G{i}")).collect();
    let refused = [
        (false, fall(&long, "E1"), "alert_id"),
        (false, fall("", "E1"), "alert_id"),
        (false, fall("ok-2", &long), "elder_id"),
        (
            false,
            json!({"type": "cancel_alert", "alert_id": long}),
            "alert_id",
        ),
        (
            false,
            json!({"type": "check_in", "elder_id": long}),
            "elder_id",
        ),
        (
            true,
            json!({"type": "cancel", "incident_id": incident, "reason": text}),
            "reason",
        ),
        (
            true,
            json!({"type": "resolve", "incident_id": incident, "note": text}),
            "note",
        ),
        (
            true,
            json!({"type": "assign", "incident_id": incident, "responder_id": long}),
            "responder_id",
        ),
        (
            true,
            json!({"type": "subscribe", "filter": {"grids": grids}}),
            "filter.grids",
        ),
    ];
    for (operator, msg, field) in refused {
        let client = if operator { &mut op } else { &mut gw };
        let (r, _) = client.request(msg, "big").await;
        assert_eq!(r["code"], "bad_field", "{field}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains(field),
            "{field}: {r}"
        );
    }
    // An oversize request id is refused and not echoed.
    gw.send(json!({"type": "ping", "id": long})).await;
    let r = gw.recv().await;
    assert_eq!(r["code"], "bad_field", "{r}");
    assert!(r.get("re").is_none(), "{r}");
    // Over HTTP too.
    let (s, r) = server
        .post_alert("GW1", &fall(&"b".repeat(1_500), "E1"))
        .await;
    assert_eq!((s, r["code"].as_str()), (400, Some("bad_field")), "{r}");
    assert!(r["message"].as_str().unwrap().contains("alert_id"), "{r}");
    for refused in [&long, &text, &"b".repeat(1_500)] {
        assert!(
            !journal_contains(dir.path(), refused),
            "a refused string was journaled"
        );
    }
    // Exactly at the limits is fine, and does grow the journal (the measure can fail).
    let (r, _) = gw.request(fall(&"c".repeat(128), "E1"), "ok").await;
    assert_eq!(r["type"], "alert_accepted", "{r}");
    assert!(
        journal_contains(dir.path(), &"c".repeat(128)),
        "the check can see records"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_alert_body_over_the_limit_is_413() {
    let server = TestServer::start().await;
    let mut big = fall("big-body", "E1");
    big["pad"] = json!("p".repeat(17 * 1024));
    let (s, r) = server.post_alert("GW1", &big).await;
    assert_eq!(s, 413, "{r}");
    assert_eq!(r["code"], "too_big", "{r}");
    // Under the limit (unknown fields are ignored) it is taken.
    big["pad"] = json!("p".repeat(8 * 1024));
    let (s, r) = server.post_alert("GW1", &big).await;
    assert_eq!(s, 202, "{r}");
    server.stop().await;
}

/// One request on its own connection; returns the status and the head.
async fn post_raw(server: &TestServer, id: &str, body: &Value) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr).await.expect("tcp");
    let body = body.to_string();
    let req = format!(
        "POST /v1/alerts HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        token(id),
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, text)
}

#[tokio::test]
async fn a_device_over_its_http_rate_gets_429_and_another_device_is_unaffected() {
    let mut roster = common::roster();
    roster.devices.push(DeviceRecord {
        id: "GW2".into(),
        token_sha256: common::digest(&token("GW2")),
    });
    let limits = Limits {
        http_rate_per_s: 0.5,
        http_rate_burst: 5.0,
        ..Limits::default()
    };
    let server = TestServer::start_with(roster, limits, Box::new(VolatileJournal::default())).await;
    let (mut a_ok, mut a_429) = (0, 0);
    for i in 0..20 {
        // GW1 floods (same elder, distinct ids); GW2 sends one alert per round.
        let (s, head) = post_raw(&server, "GW1", &fall(&format!("a-{i}"), "E1")).await;
        match s {
            202 => a_ok += 1,
            429 => {
                a_429 += 1;
                let retry = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("retry-after: ")
                            .map(str::to_owned)
                    })
                    .expect("Retry-After");
                assert!(retry.trim().parse::<u64>().expect("seconds") >= 1, "{head}");
                assert!(head.contains("rate_limited"), "{head}");
            }
            _ => panic!("{head}"),
        }
        if i % 4 == 0 {
            let (s, head) = post_raw(&server, "GW2", &fall(&format!("b-{i}"), "E2")).await;
            assert_eq!(s, 202, "GW2 is not limited by GW1's flood: {head}");
        }
    }
    assert!(
        (5..=7).contains(&a_ok),
        "the burst, and at most what refilled: {a_ok}"
    );
    assert_eq!(a_ok + a_429, 20);
    server.stop().await;
}

#[tokio::test]
async fn a_session_that_does_not_answer_the_keepalive_ping_is_closed_with_4001() {
    let mut limits = Limits::default();
    limits.session.idle_timeout = Duration::from_millis(400);
    let server = start(limits).await;
    // A client that reads answers the server's pings by itself and stays.
    let mut live = server.connect("OP1").await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while let Ok(frame) = tokio::time::timeout_at(until, live.ws.next()).await {
        match frame.expect("open").expect("frame") {
            Message::Ping(_) => pings += 1,
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
    assert!(pings >= 1, "the server pinged a silent client");
    let (r, _) = live.request(json!({"type": "ping"}), "p").await;
    assert_eq!(r["type"], "pong");
    // A client that reads nothing (so never pongs) is closed with 4001.
    let mut stuck = server.connect("GW1").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(stuck.closed_with().await, Some(4001));
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_says_nothing_is_closed_by_the_handshake_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits).await;
    // Nothing at all, and half a request line: both are closed (EOF or reset), not held.
    let mut silent = TcpStream::connect(server.addr).await.expect("tcp");
    let mut slow = TcpStream::connect(server.addr).await.expect("tcp");
    slow.write_all(b"GET /healthz HT").await.expect("write");
    for s in [&mut silent, &mut slow] {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(GUARD, s.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
    }
    // An authenticated WebSocket session outlives the handshake timeout (it pings).
    let mut gw = server.connect("GW1").await;
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (r, _) = gw.request(json!({"type": "ping"}), &format!("p{i}")).await;
        assert_eq!(r["type"], "pong");
    }
    server.stop().await;
}

#[tokio::test]
async fn idle_unauthenticated_connections_past_the_per_address_cap_are_shed_oldest_first() {
    let limits = Limits {
        max_unauthenticated_per_ip: 8,
        ..Limits::default()
    };
    let server = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(server.addr).await.expect("tcp"));
    }
    // A new client that speaks at once is served despite the 40 idle ones.
    let (s, h) = server.http("GET", "/healthz", None, None).await;
    assert_eq!(s, 200, "{h}");
    // The oldest idle connections were closed by the server.
    let mut closed = 0;
    for s in idle.iter_mut().take(30) {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(GUARD, s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 30);
    server.stop().await;
}

#[tokio::test]
async fn healthz_is_degraded_when_free_space_is_below_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        data_dir: Some(dir.path().to_path_buf()),
        disk_min_free_bytes: 0,
        disk_min_free_percent: 0.0,
        ..Limits::default()
    };
    let server = start(limits.clone()).await;
    let (s, h) = server.http("GET", "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")), "{h}");
    assert!(h["disk"]["free_bytes"].as_u64().expect("free") > 0, "{h}");
    assert_eq!(h["disk"]["degraded"], false, "{h}");
    server.stop().await;
    let server = start(Limits {
        disk_min_free_bytes: u64::MAX,
        ..limits
    })
    .await;
    let (s, h) = server.http("GET", "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (200, Some("degraded")), "{h}");
    assert_eq!(h["disk"]["degraded"], true, "{h}");
    server.stop().await;
}
