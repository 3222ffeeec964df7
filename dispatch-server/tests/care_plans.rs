//! Care plans over real HTTP and WebSocket (issue 15): a care manager PATCHes an elder's plan,
//! the occurrence is offered to the planned volunteer over WebSocket, who accepts, arrives and
//! completes, and the compliance report counts it done on time; another elder's occurrence
//! nobody did is missed (`care_visit_missed` on the operator stream) and listed as not
//! visited; a bad plan is refused naming the field; a plan and its open occurrence survive a
//! kill -9 of a real `dispatch serve`.
//!
//! The server runs on the wall clock. So that a window closes within seconds, the test picks
//! the deployment's UTC offset (`utc_offset_s`, seconds) that makes the local time a few
//! seconds before noon, and plans windows that close at noon.

mod common;

use common::{roads, roster, token, Served, TestServer};
use dispatch_server::engine_task::VolatileJournal;
use dispatch_server::Limits;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_S: i64 = 86_400;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// The UTC offset (seconds, within ±12 h) at which the local time is `lead_s` seconds before
/// noon now.
fn offset_for_noon_in(lead_s: i64) -> i32 {
    let utc_s = now_ms().div_euclid(1000).rem_euclid(DAY_S);
    let target = 12 * 3600 - lead_s;
    let mut off = (target - utc_s).rem_euclid(DAY_S);
    if off > DAY_S / 2 {
        off -= DAY_S;
    }
    off as i32
}

/// A daily `kind` for the morning (00:00 to 12:00 local), asked first of `planned`.
fn morning(id: &str, kind: &str, planned: &str) -> Value {
    json!({
        "id": id,
        "kind": kind,
        "period": "day",
        "planned_responder": planned,
        "window": {"from": "00:00", "to": "12:00"}
    })
}

async fn as_op(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    server
        .http(method, path, Some(&token("OP1")), body.as_ref())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_visit_is_offered_done_and_counted_and_a_missed_call_is_reported() {
    // The map first (it takes a while to build), then the clock-sensitive part.
    let _ = roads();
    let lead_s = 15;
    let offset = offset_for_noon_in(lead_s);
    let noon_ms = now_ms() + lead_s * 1000;
    let policy = dispatch_core::policy::PolicyConfig {
        utc_offset_s: offset,
        care_missed_grace_ms: 1_000,
        ..dispatch_server::serve_cmd::server_policy(4.5)
    };
    let server = TestServer::start_policy(
        roster(),
        Limits::default(),
        Box::new(VolatileJournal::default()),
        policy,
    )
    .await;
    let mut console = server.connect("OP1").await;
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let mut v1 = server.connect("V1").await;
    let (r, _) = v1
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");

    // A bad plan is refused naming the item and field; nothing changes.
    let (s, err) = as_op(
        &server,
        "PATCH",
        "/v1/elders/E1",
        Some(json!({"care_plan": [morning("visit", "visit", "V99")]})),
    )
    .await;
    assert!((400..500).contains(&s), "{s} {err}");
    assert!(
        err.to_string()
            .contains("care_plan[0].planned_responder: unknown responder V99"),
        "{err}"
    );
    let (_, e1) = as_op(&server, "GET", "/v1/elders/E1", None).await;
    assert!(e1.get("care_plan").is_none(), "{e1}");

    // The care manager plans a morning visit to E1 by V1: the window is open (it is a few
    // seconds before noon), so the job opens now and V1 is asked first.
    let plan = json!([morning("visit", "visit", "V1")]);
    let (s, stored) = as_op(
        &server,
        "PATCH",
        "/v1/elders/E1",
        Some(json!({ "care_plan": plan })),
    )
    .await;
    assert_eq!(s, 200, "{stored}");
    assert_eq!(stored["care_plan"][0]["id"], "visit", "{stored}");
    let (_, e1) = as_op(&server, "GET", "/v1/elders/E1", None).await;
    assert_eq!(e1["care_plan"][0]["planned_responder"], "V1", "{e1}");
    let (opened, _) = console
        .recv_until("incident_opened", |e| e["elder_id"] == "E1")
        .await;
    assert_eq!(opened["kind"], "care_plan", "{opened}");
    let incident = opened["incident_id"].clone();
    let (offer, _) = v1.recv_until("offer", |_| true).await;
    assert_eq!(offer["incident_id"], incident, "{offer}");
    for (msg, id) in [
        (
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "acc",
        ),
        (json!({"type": "arrived", "incident_id": incident}), "arr"),
        (json!({"type": "complete", "incident_id": incident}), "done"),
    ] {
        let (r, _) = v1.request(msg, id).await;
        assert_eq!(r["type"], "ack", "{r}");
    }
    let (done, _) = console
        .recv_until("care_visit_done", |e| e["incident_id"] == incident)
        .await;
    assert_eq!(
        (&done["on_time"], &done["done_by"], &done["item_id"]),
        (&json!(true), &json!("V1"), &json!("visit")),
        "{done}"
    );

    // A morning call to E2 by V2, who is off duty: nobody can do it (a call asks only people
    // E2 knows, and E2 has nobody else).
    let (s, stored) = as_op(
        &server,
        "PATCH",
        "/v1/elders/E2",
        Some(json!({"care_plan": [morning("call", "call", "V2")]})),
    )
    .await;
    assert_eq!(s, 200, "{stored}");
    let (opened, _) = console
        .recv_until("incident_opened", |e| e["elder_id"] == "E2")
        .await;
    assert!(
        now_ms() < noon_ms,
        "too slow: the window closed before the test got here"
    );
    // Noon plus a second of grace: missed, on the operator stream, and the job cancelled.
    let (missed, _) = console
        .recv_until("care_visit_missed", |e| e["elder_id"] == "E2")
        .await;
    assert_eq!(missed["incident_id"], opened["incident_id"], "{missed}");
    assert_eq!(missed["planned_responder"], "V2", "{missed}");
    assert!(missed["at"].as_i64().unwrap() >= noon_ms, "{missed}");
    let (cancelled, _) = console
        .recv_until("incident_cancelled", |e| {
            e["incident_id"] == opened["incident_id"]
        })
        .await;
    assert!(
        cancelled["reason"].as_str().unwrap().contains("missed"),
        "{cancelled}"
    );

    // The report: G1 (E1) done on time, G2 (E2) missed; E2 is not visited.
    let (s, report) = as_op(&server, "GET", "/v1/care-plans/compliance", None).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["utc_offset_s"], offset);
    let week = |who: &str, id: &str| report[who][id]["week"].clone();
    assert_eq!(week("grids", "G1")["on_time"], 1, "{report}");
    assert_eq!(week("grids", "G1")["planned"], 1, "{report}");
    assert_eq!(week("grids", "G1")["on_time_share"], 1.0, "{report}");
    assert_eq!(week("grids", "G2")["missed"], 1, "{report}");
    assert_eq!(week("grids", "G2")["on_time_share"], 0.0, "{report}");
    assert_eq!(week("responders", "V1")["on_time"], 1, "{report}");
    assert_eq!(week("responders", "V2")["missed"], 1, "{report}");
    assert_eq!(report["month"]["from"], report["month"]["from"]);
    let nv = report["not_visited"].as_array().expect("not_visited");
    assert_eq!(nv.len(), 1, "{report}");
    assert_eq!(
        (&nv[0]["elder_id"], &nv[0]["grid_id"], &nv[0]["item_id"]),
        (&json!("E2"), &json!("G2"), &json!("call")),
        "{report}"
    );
    assert_eq!(nv[0]["last_done"], Value::Null, "{report}");
    assert!(nv[0]["overdue_ms"].as_u64().is_some(), "{report}");

    // Asked about a moment before the plans existed, the report is empty.
    let (s, before) = as_op(
        &server,
        "GET",
        &format!("/v1/care-plans/compliance?at={}", noon_ms - 3_600_000),
        None,
    )
    .await;
    assert_eq!(s, 200, "{before}");
    assert_eq!(before["not_visited"], json!([]), "{before}");
    assert_eq!(before["grids"], json!({}), "{before}");
    let (s, bad) = as_op(&server, "GET", "/v1/care-plans/compliance?at=soon", None).await;
    assert_eq!(s, 400, "{bad}");

    // Only care managers read it: a responder may not; OP1 (every right) may.
    let (s, _) = server
        .http("GET", "/v1/care-plans/compliance", Some(&token("V1")), None)
        .await;
    assert_eq!(s, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_and_its_open_occurrence_survive_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let roster_path = common::write_roster(dir.path(), &roster());
    let config = dir.path().join("policy.toml");
    // Local noon is 6 hours away: the morning's window stays open through the test.
    std::fs::write(
        &config,
        format!(
            "utc_offset_s = {}\ncare_missed_grace_ms = 1000\n",
            offset_for_noon_in(6 * 3600)
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");

    let served = Served::start(
        &data_dir,
        &roster_path,
        &["--config".as_ref(), config.as_os_str()],
    );
    let plan = json!([morning("visit", "visit", "V1")]);
    let (s, stored) = as_op(
        &served.server,
        "PATCH",
        "/v1/elders/E1",
        Some(json!({ "care_plan": plan })),
    )
    .await;
    assert_eq!(s, 200, "{stored}");
    let report = |r: &Value| (r["grids"].clone(), r["responders"].clone());
    let (s, before) = as_op(&served.server, "GET", "/v1/care-plans/compliance", None).await;
    assert_eq!(s, 200, "{before}");
    assert_eq!(before["grids"]["G1"]["week"]["pending"], 1, "{before}");
    drop(served); // kill -9

    let served = Served::start(
        &data_dir,
        &roster_path,
        &["--config".as_ref(), config.as_os_str()],
    );
    let (s, e1) = as_op(&served.server, "GET", "/v1/elders/E1", None).await;
    assert_eq!(s, 200, "{e1}");
    assert_eq!(e1["care_plan"], stored["care_plan"], "{e1}");
    assert_eq!(e1["care_plan"][0]["planned_responder"], "V1", "{e1}");
    // The same occurrence, still pending: not a second job for the same morning.
    let (s, after) = as_op(&served.server, "GET", "/v1/care-plans/compliance", None).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(report(&after), report(&before), "{after}");
}
