//! Operator roles and time-bank redemptions (issue 15), over real HTTP and WebSocket: a
//! restricted operator is refused (403 `missing_role`, naming the role) what its roles do not
//! allow and nothing changes, and does what they allow; an operator in the old format (no
//! `roles`) has every right; roles are set over `/v1/operators` and the last operator who may
//! manage people stays; a care manager's redemption lowers the balance, is refused beyond it
//! unless overridden, refuses bad input naming the field, and survives a kill -9 of a real
//! `dispatch serve` and a restart (as do roles, which `dispatch roster export` writes out).

mod common;

use common::{digest, fall, token, Served, TestServer};
use dispatch_core::roster::{OperatorRecord, RosterFile};
use dispatch_server::engine_task::VolatileJournal;
use dispatch_server::Limits;
use serde_json::{json, Value};
use std::process::Command;

/// The test roster with OP1 as it always was (no `roles`: every right), OP2 restricted to
/// dispatch, PM1 to people management and CM1 to care (the time bank).
fn roster() -> RosterFile {
    let mut r = common::roster();
    let with_roles = |id: &str, roles: &[&str]| OperatorRecord {
        roles: Some(roles.iter().map(|s| s.to_string()).collect()),
        ..OperatorRecord::new(id, digest(&token(id)))
    };
    r.operators.retain(|o| o.id.as_str() == "OP1");
    r.operators.push(with_roles("OP2", &["dispatch"]));
    r.operators.push(with_roles("PM1", &["people"]));
    r.operators.push(with_roles("CM1", &["care"]));
    r
}

async fn start() -> TestServer {
    TestServer::start_with(
        roster(),
        Limits::default(),
        Box::new(VolatileJournal::default()),
    )
    .await
}

/// One request with `who`'s token.
async fn as_(
    server: &TestServer,
    who: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server
        .http(method, path, Some(&token(who)), body.as_ref())
        .await
}

/// Asserts a 403 `missing_role` that names `role`.
fn assert_missing(answer: (u16, Value), role: &str) {
    let (s, body) = answer;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["code"], "missing_role", "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains(&format!("`{role}`")), "{body}");
}

fn grid(id: &str) -> Option<Value> {
    Some(json!({"id": id, "name": id}))
}

#[tokio::test]
async fn a_restricted_operator_is_refused_what_its_roles_do_not_allow() {
    let server = start().await;
    // Dispatch only: no people management, no time bank; nothing changed.
    assert_missing(
        as_(&server, "OP2", "POST", "/v1/grids", grid("G7")).await,
        "people",
    );
    assert_missing(
        as_(&server, "OP2", "POST", "/v1/responders/V1/tokens", None).await,
        "people",
    );
    assert_missing(
        as_(&server, "OP2", "GET", "/v1/responders/V1/time-bank", None).await,
        "care",
    );
    let (s, _) = as_(&server, "OP1", "GET", "/v1/grids/G7", None).await;
    assert_eq!(s, 404, "the refused create changed nothing");
    assert_eq!(server.upgrade_status(&token("V1")).await, 101);
    // ... but the stream and incident actions.
    let mut console = server.connect("OP2").await;
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("roles-1", "E1"), "1").await;
    let incident = acc["incident_id"].clone();
    let (s, view) = as_(
        &server,
        "OP2",
        "GET",
        &format!("/v1/incidents/{incident}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{view}");
    let (r, _) = console
        .request(
            json!({"type": "cancel", "incident_id": incident, "reason": "test"}),
            "c",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");

    // People only: manages people, but neither the stream nor incidents nor the time bank.
    let (s, g) = as_(&server, "PM1", "POST", "/v1/grids", grid("G8")).await;
    assert_eq!(s, 201, "{g}");
    assert_missing(
        as_(
            &server,
            "PM1",
            "GET",
            &format!("/v1/incidents/{incident}"),
            None,
        )
        .await,
        "dispatch",
    );
    assert_missing(
        as_(
            &server,
            "PM1",
            "POST",
            "/v1/responders/V1/time-bank/redemptions",
            Some(json!({"minutes": 1, "override_negative": true})),
        )
        .await,
        "care",
    );
    let mut pm = server.connect("PM1").await;
    for (i, msg) in [
        json!({"type": "subscribe"}),
        json!({"type": "resolve", "incident_id": incident, "note": "x"}),
        json!({"type": "candidates", "incident_id": incident}),
    ]
    .into_iter()
    .enumerate()
    {
        let (r, _) = pm.request(msg, &format!("pm{i}")).await;
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["code"], "missing_role", "{r}");
        assert!(r["message"].as_str().unwrap().contains("`dispatch`"), "{r}");
    }
    // The session is still open and still refuses (ping is anyone's).
    let (r, _) = pm.request(json!({"type": "ping"}), "p").await;
    assert_eq!(r["type"], "pong", "{r}");

    // Care only: the time bank, nothing else.
    let (s, bank) = as_(&server, "CM1", "GET", "/v1/responders/V1/time-bank", None).await;
    assert_eq!(s, 200, "{bank}");
    assert_missing(
        as_(&server, "CM1", "GET", "/v1/responders/V1", None).await,
        "people",
    );
    server.stop().await;
}

#[tokio::test]
async fn an_operator_in_the_old_format_has_every_right() {
    let server = start().await;
    // OP1 has no `roles` field: people, dispatch and care.
    let (s, g) = as_(&server, "OP1", "POST", "/v1/grids", grid("G7")).await;
    assert_eq!(s, 201, "{g}");
    let (s, stored) = as_(&server, "OP1", "GET", "/v1/operators/OP1", None).await;
    assert_eq!(s, 200, "{stored}");
    assert!(stored.get("roles").is_none(), "{stored}");
    let mut console = server.connect("OP1").await;
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let (s, bank) = as_(&server, "OP1", "GET", "/v1/responders/V1/time-bank", None).await;
    assert_eq!(s, 200, "{bank}");
    let (s, r) = as_(
        &server,
        "OP1",
        "POST",
        "/v1/responders/V1/time-bank/redemptions",
        Some(json!({"minutes": 5, "note": "old-format operator", "override_negative": true})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    server.stop().await;
}

#[tokio::test]
async fn roles_are_set_over_http_and_the_last_people_operator_stays() {
    let server = start().await;
    // A new operator with roles; an unknown role is refused naming the entry and field.
    let (s, op3) = as_(
        &server,
        "PM1",
        "POST",
        "/v1/operators",
        Some(json!({"id": "OP3", "roles": ["care"]})),
    )
    .await;
    assert_eq!(s, 201, "{op3}");
    assert_eq!(op3["roles"], json!(["care"]), "{op3}");
    let (s, bad) = as_(
        &server,
        "PM1",
        "POST",
        "/v1/operators",
        Some(json!({"id": "OP4", "roles": ["dispatch", "admin"]})),
    )
    .await;
    assert_eq!(s, 422, "{bad}");
    let message = bad["message"].as_str().unwrap();
    assert!(
        message.contains("OP4") && message.contains("roles") && message.contains("admin"),
        "{bad}"
    );
    let (s, _) = as_(&server, "PM1", "GET", "/v1/operators/OP4", None).await;
    assert_eq!(s, 404);
    let (s, bad) = as_(
        &server,
        "PM1",
        "PATCH",
        "/v1/operators/OP3",
        Some(json!({"roles": "care"})),
    )
    .await;
    assert_eq!(s, 400, "{bad}");

    // OP2's console stops receiving the stream the moment `dispatch` is taken away, and the
    // role given back works at once.
    let mut console = server.connect("OP2").await;
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let (s, op2) = as_(
        &server,
        "PM1",
        "PATCH",
        "/v1/operators/OP2",
        Some(json!({"roles": ["people"]})),
    )
    .await;
    assert_eq!((s, &op2["roles"]), (200, &json!(["people"])), "{op2}");
    let (stopped, _) = console.recv_until("error", |_| true).await;
    assert_eq!(stopped["code"], "missing_role", "{stopped}");
    let (s, g) = as_(&server, "OP2", "POST", "/v1/grids", grid("G9")).await;
    assert_eq!(s, 201, "OP2 manages people now: {g}");
    let (s, _) = as_(
        &server,
        "OP2",
        "PATCH",
        "/v1/operators/OP2",
        Some(json!({"roles": null})),
    )
    .await;
    assert_eq!(s, 200);
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s2").await;
    assert_eq!(
        snap["type"], "snapshot",
        "no roles again: every right: {snap}"
    );

    // OP1, OP2 and PM1 may manage people; retire two, and the third stays.
    for id in ["OP1", "OP2"] {
        let (s, body) = as_(
            &server,
            "PM1",
            "DELETE",
            &format!("/v1/operators/{id}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    for (method, body) in [
        ("PATCH", Some(json!({"roles": ["dispatch", "care"]}))),
        ("DELETE", None),
    ] {
        let (s, refused) = as_(&server, "PM1", method, "/v1/operators/PM1", body).await;
        assert_eq!(s, 409, "{method}: {refused}");
        assert_eq!(refused["code"], "last_people_operator", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("last operator"),
            "{refused}"
        );
    }
    let (s, pm1) = as_(&server, "PM1", "GET", "/v1/operators/PM1", None).await;
    assert_eq!((s, &pm1["roles"]), (200, &json!(["people"])), "{pm1}");
    // Others' roles still change freely.
    let (s, _) = as_(
        &server,
        "PM1",
        "PATCH",
        "/v1/operators/OP3",
        Some(json!({"roles": ["dispatch"]})),
    )
    .await;
    assert_eq!(s, 200);
    server.stop().await;
}

/// V1 does one job (the only volunteer on duty): returns the minutes credited.
async fn earn(server: &TestServer, alert_id: &str) -> i64 {
    let mut phone = server.connect("V1").await;
    let (r, _) = phone
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall(alert_id, "E1"), "1").await;
    let incident = acc["incident_id"].clone();
    let (offer, _) = phone.recv_until("offer", |_| true).await;
    let (r, _) = phone
        .request(
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "acc",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (r, _) = phone
        .request(json!({"type": "arrived", "incident_id": incident}), "arr")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    // At least a millisecond on scene: a credit is rounded up to whole minutes.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (r, _) = phone
        .request(json!({"type": "complete", "incident_id": incident}), "done")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (credit, _) = phone.recv_until("time_bank_credited", |_| true).await;
    credit["minutes"].as_i64().expect("minutes")
}

const REDEEM: &str = "/v1/responders/V1/time-bank/redemptions";
const BANK: &str = "/v1/responders/V1/time-bank";

#[tokio::test]
async fn a_redemption_lowers_the_balance_and_never_below_zero_without_the_override() {
    let server = start().await;
    let earned = earn(&server, "earn-1").await;
    assert!(earned >= 1, "{earned}");

    // Within the balance: 201 with the entry and the new balance.
    let (s, r) = as_(
        &server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": 1, "note": "a haircut for his mother"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["balance_minutes"], earned - 1, "{r}");
    assert_eq!(r["entry"]["kind"], "redemption", "{r}");
    assert_eq!(r["entry"]["by"], "CM1", "{r}");
    assert_eq!(r["entry"]["override_negative"], false, "{r}");

    // Beyond it: refused, nothing recorded ...
    let (_, before) = as_(&server, "CM1", "GET", BANK, None).await;
    let (s, refused) = as_(
        &server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": earned, "note": "too much"})),
    )
    .await;
    assert_eq!(s, 409, "{refused}");
    assert_eq!(refused["code"], "insufficient_balance", "{refused}");
    let (_, after) = as_(&server, "CM1", "GET", BANK, None).await;
    assert_eq!(before, after);
    // ... unless overridden, which the entry records.
    let (s, r) = as_(
        &server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": earned, "note": "agreed by the committee", "override_negative": true})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["balance_minutes"], -1, "{r}");
    assert_eq!(r["entry"]["override_negative"], true, "{r}");

    // The statement: both kinds in order, each with the running balance; `history` keeps the
    // credits alone; the volunteer reads it too.
    let (s, bank) = as_(&server, "V1", "GET", BANK, None).await;
    assert_eq!(s, 200, "{bank}");
    assert_eq!(bank["balance_minutes"], -1, "{bank}");
    let kinds: Vec<&str> = bank["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["credit", "redemption", "redemption"], "{bank}");
    let running: Vec<i64> = bank["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["balance_minutes"].as_i64().unwrap())
        .collect();
    assert_eq!(running, [earned, earned - 1, -1], "{bank}");
    assert_eq!(bank["history"].as_array().map(Vec::len), Some(1), "{bank}");
    server.stop().await;
}

#[tokio::test]
async fn bad_redemptions_are_refused_naming_the_field_and_change_nothing() {
    let server = start().await;
    let (_, before) = as_(&server, "CM1", "GET", BANK, None).await;
    let long = "x".repeat(201);
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            REDEEM,
            json!({"minutes": 0, "override_negative": true}),
            400,
            "minutes",
        ),
        (
            REDEEM,
            json!({"minutes": 100_001, "override_negative": true}),
            400,
            "minutes",
        ),
        (
            REDEEM,
            json!({"minutes": -5, "override_negative": true}),
            400,
            "minutes",
        ),
        (
            REDEEM,
            json!({"minutes": 1.5, "override_negative": true}),
            400,
            "minutes",
        ),
        (REDEEM, json!({"override_negative": true}), 400, "minutes"),
        (
            REDEEM,
            json!({"minutes": 1, "note": long, "override_negative": true}),
            400,
            "note",
        ),
        (
            REDEEM,
            json!({"minutes": 1, "note": 7, "override_negative": true}),
            400,
            "note",
        ),
        (
            REDEEM,
            json!({"minutes": 1, "override_negative": "yes"}),
            400,
            "override_negative",
        ),
        (REDEEM, json!({"minutes": 1, "hours": 2}), 400, "hours"),
        (REDEEM, json!([1]), 400, "object"),
        (
            "/v1/responders/V404/time-bank/redemptions",
            json!({"minutes": 1, "override_negative": true}),
            404,
            "V404",
        ),
    ];
    for (path, body, status, named) in cases {
        let (s, answer) = as_(&server, "CM1", "POST", path, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(named),
            "{body}: {answer}"
        );
    }
    // The bounds themselves are accepted.
    let edge = "é".repeat(100);
    let (s, r) = as_(
        &server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": 100_000, "note": edge, "override_negative": true})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    // A responder may read their statement, not record a redemption, nor read another's.
    let (s, _) = as_(
        &server,
        "V1",
        "POST",
        REDEEM,
        Some(json!({"minutes": 1, "override_negative": true})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = as_(&server, "V2", "GET", BANK, None).await;
    assert_eq!(s, 403);
    let (s, _) = server
        .http("POST", REDEEM, None, Some(&json!({"minutes": 1})))
        .await;
    assert_eq!(s, 401);
    let (_, after) = as_(&server, "CM1", "GET", BANK, None).await;
    assert_eq!(
        after["entries"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    assert_eq!(before["entries"], json!([]), "{before}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redemptions_and_roles_survive_a_kill_9_and_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let roster_path = dir.path().join("roster.json");
    std::fs::write(&roster_path, serde_json::to_vec(&roster()).unwrap()).unwrap();
    let data_dir = dir.path().join("data");

    let served = Served::start(&data_dir, &roster_path, &[]);
    let earned = earn(&served.server, "kill9-earn").await;
    let (s, r) = as_(
        &served.server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": 1, "note": "before the crash"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    // An override is logged at WARN (and recorded in the entry).
    let logged_yet = |text: &str| served.log.lock().unwrap().iter().any(|l| l.contains(text));
    assert!(!logged_yet("overrode the balance"));
    let (s, r) = as_(
        &served.server,
        "CM1",
        "POST",
        REDEEM,
        Some(json!({"minutes": earned, "note": "overdrawn", "override_negative": true})),
    )
    .await;
    assert_eq!(
        (s, &r["entry"]["override_negative"]),
        (201, &json!(true)),
        "{r}"
    );
    assert!(served.logged("overrode the balance").await);
    let (s, _) = as_(
        &served.server,
        "PM1",
        "PATCH",
        "/v1/operators/OP2",
        Some(json!({"roles": ["dispatch", "care"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, before) = as_(&served.server, "CM1", "GET", BANK, None).await;
    drop(served); // kill -9

    let served = Served::start(&data_dir, &roster_path, &[]);
    let (s, after) = as_(&served.server, "CM1", "GET", BANK, None).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after, before);
    assert_eq!(after["balance_minutes"], -1, "{after}");
    assert_eq!(after["entries"][1]["note"], "before the crash", "{after}");
    assert_eq!(after["entries"][2]["override_negative"], true, "{after}");
    // OP2's new role is there: it reads the time bank now, and still may not manage people.
    let (s, _) = as_(&served.server, "OP2", "GET", BANK, None).await;
    assert_eq!(s, 200);
    assert_missing(
        as_(&served.server, "OP2", "GET", "/v1/operators/OP2", None).await,
        "people",
    );

    // `dispatch roster export` writes the roles out; old-format OP1 stays without the field.
    let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["roster", "export", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: RosterFile = serde_json::from_slice(&out.stdout).expect("a roster file");
    let roles = |id: &str| {
        exported
            .operators
            .iter()
            .find(|o| o.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} exported"))
            .roles
            .clone()
    };
    assert_eq!(roles("OP1"), None);
    assert_eq!(roles("OP2"), Some(vec!["dispatch".into(), "care".into()]));
    assert_eq!(roles("PM1"), Some(vec!["people".into()]));
}
