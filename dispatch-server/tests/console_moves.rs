//! Batched moves for consoles (`subscribe` with `"moves": "batched"`, docs/protocol.md): over
//! real sockets against a real server, a batching console gets responders' moves in
//! `responders_moved` frames and every other event as numbered frames, while a console that did
//! not ask still gets one `responder_moved` frame per move.

mod common;

use common::{fall, Client, TestServer, CENTRE};
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn on_duty(server: &TestServer, id: &str) -> Client {
    let mut c = server.connect(id).await;
    let (r, _) = c
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    c
}

fn position(dlat: f64) -> Value {
    json!({"lat": CENTRE.lat + dlat, "lon": CENTRE.lon})
}

#[tokio::test]
async fn a_batching_console_gets_moves_in_responders_moved_frames_and_numbered_events_as_before() {
    let server = TestServer::start().await;
    let mut batched = server.connect("OP1").await;
    let (snap, _) = batched
        .request(json!({"type": "subscribe", "moves": "batched"}), "s")
        .await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let mut each = server.connect("OP1").await;
    let (snap, _) = each.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");

    let mut v1 = on_duty(&server, "V1").await;
    let mut v2 = on_duty(&server, "V2").await;
    v1.send(json!({"type": "location", "position": position(0.0011)}))
        .await;
    v2.send(json!({"type": "location", "position": position(-0.0012)}))
        .await;

    // The batching console: both moves, in one or two `responders_moved` frames, and never a
    // `responder_moved` frame.
    let mut seen: BTreeMap<String, f64> = BTreeMap::new();
    while seen.len() < 2 {
        let (batch, skipped) = batched.recv_until("responders_moved", |_| true).await;
        assert!(
            skipped.iter().all(|f| f["type"] != "responder_moved"),
            "a batching console got a single move: {skipped:?}"
        );
        assert!(
            batch.get("seq").is_none(),
            "batches are not numbered: {batch}"
        );
        let moves = batch["moves"].as_array().expect("moves");
        assert!(!moves.is_empty(), "no empty batches: {batch}");
        let newest = moves.iter().map(|m| m["at"].as_i64().unwrap()).max();
        assert_eq!(batch["at"].as_i64(), newest, "`at` is the newest entry's");
        for m in moves {
            let id = m["responder_id"].as_str().unwrap().to_string();
            seen.insert(id, m["position"]["lat"].as_f64().unwrap());
        }
    }
    assert!(
        (seen["V1"] - (CENTRE.lat + 0.0011)).abs() < 1e-9,
        "{seen:?}"
    );
    assert!(
        (seen["V2"] - (CENTRE.lat - 0.0012)).abs() < 1e-9,
        "{seen:?}"
    );

    // The console that did not ask: one numbered `responder_moved` per move, as before.
    let mut singles = BTreeMap::new();
    while singles.len() < 2 {
        let (moved, _) = each.recv_until("responder_moved", |_| true).await;
        assert!(moved["seq"].as_u64().is_some(), "{moved}");
        singles.insert(moved["responder_id"].as_str().unwrap().to_string(), moved);
    }

    // Everything else still comes numbered to the batching console.
    let mut gw = server.connect("GW1").await;
    let (ack, _) = gw.request(fall("moves-1", "E1"), "a").await;
    assert_eq!(ack["type"], "alert_accepted", "{ack}");
    let (opened, skipped) = batched.recv_until("incident_opened", |_| true).await;
    assert!(opened["seq"].as_u64().is_some(), "{opened}");
    assert!(skipped.iter().all(|f| f["type"] != "responder_moved"));

    // A bad `moves` is refused, naming the field; the subscription stays as it was.
    let (err, _) = batched
        .request(json!({"type": "subscribe", "moves": "sometimes"}), "bad")
        .await;
    assert_eq!(
        (&err["type"], &err["code"]),
        (&json!("error"), &json!("bad_field")),
        "{err}"
    );
    assert!(
        err["message"].as_str().unwrap_or("").contains("sometimes"),
        "{err}"
    );
    // (another responder: V1's next move would be inside the one-per-second throttle)
    let mut v3 = on_duty(&server, "V3").await;
    v3.send(json!({"type": "location", "position": position(0.0031)}))
        .await;
    let (batch, _) = batched
        .recv_until("responders_moved", |b| {
            b["moves"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["responder_id"] == "V3"))
        })
        .await;
    assert_eq!(batch["type"], "responders_moved");
    server.stop().await;
}
