//! People management at run time (`people.rs`, docs/protocol.md "People"): over real HTTP and
//! WebSocket, a care manager adds a volunteer, issues a token, and the volunteer is offered a
//! job; a token issued anew closes the open session (4003) and the old token is refused; a
//! retired volunteer loses their session and their token; bad requests change nothing.

mod common;

use common::{fall, token, TestServer, CENTRE};
use serde_json::{json, Value};

fn volunteer(id: &str, dlat: f64) -> Value {
    json!({
        "id": id,
        "kind": "volunteer",
        "travel_mode": "foot",
        "home": {"lat": CENTRE.lat + dlat, "lon": CENTRE.lon},
        "grid_id": "G1",
        "skills": ["first_aid"]
    })
}

async fn op(server: &TestServer, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    server.http(method, path, Some(&token("OP1")), body).await
}

/// Adds `id` and issues its first token.
async fn add_with_token(server: &TestServer, id: &str) -> String {
    let (s, stored) = op(
        server,
        "POST",
        "/v1/responders",
        Some(&volunteer(id, 0.001)),
    )
    .await;
    assert_eq!(s, 201, "{stored}");
    assert_eq!(stored["id"], id);
    assert_eq!(stored["has_token"], false, "{stored}");
    assert!(stored.get("token_sha256").is_none(), "{stored}");
    let (s, issued) = op(server, "POST", &format!("/v1/responders/{id}/tokens"), None).await;
    assert_eq!(s, 201, "{issued}");
    issued["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn an_added_volunteer_with_an_issued_token_is_offered_a_job() {
    let server = TestServer::start().await;
    let t = add_with_token(&server, "V9").await;
    let (s, stored) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!((s, &stored["has_token"]), (200, &json!(true)), "{stored}");

    // The roster's volunteers are off duty: the new one is the only community responder.
    let mut phone = server.connect_with("V9", &t).await;
    let (r, _) = phone
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("people-1", "E1"), "1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");
    let (offer, _) = phone.recv_until("offer", |_| true).await;
    assert_eq!(offer["incident_id"], acc["incident_id"], "{offer}");
    server.stop().await;
}

#[tokio::test]
async fn a_token_issued_anew_closes_the_open_session_and_refuses_the_old_token() {
    let server = TestServer::start().await;
    let first = add_with_token(&server, "V9").await;
    let mut phone = server.connect_with("V9", &first).await;
    let (s, issued) = op(&server, "POST", "/v1/responders/V9/tokens", None).await;
    assert_eq!(s, 201, "{issued}");
    let second = issued["token"].as_str().expect("token").to_string();
    assert_ne!(first, second);
    assert_eq!(phone.closed_with().await, Some(4003));
    assert_eq!(server.upgrade_status(&first).await, 401);
    // The new token opens a session, and other people's sessions were left alone.
    let mut again = server.connect_with("V9", &second).await;
    let (r, _) = again
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn a_retired_volunteer_loses_their_session_token_and_open_offer() {
    let server = TestServer::start().await;
    let t = add_with_token(&server, "V9").await;
    let mut console = server.connect("OP1").await;
    console.request(json!({"type": "subscribe"}), "s").await;
    let mut phone = server.connect_with("V9", &t).await;
    phone
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    let mut other = server.connect("V1").await;
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("people-r", "E1"), "1").await;
    let (offer, _) = phone.recv_until("offer", |_| true).await;
    assert_eq!(offer["incident_id"], acc["incident_id"], "{offer}");

    let (s, body) = op(&server, "DELETE", "/v1/responders/V9", None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(phone.closed_with().await, Some(4003));
    let (withdrawn, _) = console
        .recv_until("offer_withdrawn", |e| e["responder_id"] == "V9")
        .await;
    assert_eq!(withdrawn["offer_id"], offer["offer_id"], "{withdrawn}");
    assert_eq!(server.upgrade_status(&t).await, 401);
    let (s, _) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(s, 404);
    // V1's session is still open.
    let (r, _) = other
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn elders_and_grids_are_added_changed_and_retired() {
    let server = TestServer::start().await;
    let (s, g) = op(
        &server,
        "POST",
        "/v1/grids",
        Some(&json!({"id": "G3", "name": "Sul"})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let elder = json!({
        "id": "E7", "home": {"lat": CENTRE.lat - 0.002, "lon": CENTRE.lon},
        "grid_id": "G3", "care_level": 3, "paired_responders": ["V2"]
    });
    let (s, e) = op(&server, "POST", "/v1/elders", Some(&elder)).await;
    assert_eq!(s, 201, "{e}");
    assert_eq!(e["grid_id"], "G3");
    // A console may filter on the new grid at once.
    let mut console = server.connect("OP2").await;
    let (snap, _) = console
        .request(
            json!({"type": "subscribe", "filter": {"grids": ["G3"]}}),
            "s",
        )
        .await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    // A PATCH replaces only the fields it names.
    let (s, e) = op(
        &server,
        "PATCH",
        "/v1/elders/E7",
        Some(&json!({"care_level": 5})),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(
        (e["care_level"].clone(), e["grid_id"].clone()),
        (json!(5), json!("G3"))
    );
    // An alert for the new elder opens an incident the console filtered on G3 sees.
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("people-e7", "E7"), "1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");
    let (opened, _) = console.recv_until("incident_opened", |_| true).await;
    assert_eq!(opened["incident_id"], acc["incident_id"]);
    // The grid is in use: it cannot be retired; the elder with an open incident cannot either.
    let (s, body) = op(&server, "DELETE", "/v1/grids/G3", None).await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("E7"),
        "{body}"
    );
    let (s, body) = op(&server, "DELETE", "/v1/elders/E7", None).await;
    assert_eq!(s, 422, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn bad_people_requests_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let (_, before) = op(&server, "GET", "/v1/responders/V1", None).await;
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        // A duplicate id.
        ("POST", "/v1/responders", volunteer("V1", 0.0), 409, "V1"),
        // An unknown grid, named.
        (
            "POST",
            "/v1/responders",
            json!({"id": "V8", "kind": "volunteer", "travel_mode": "foot",
            "home": {"lat": CENTRE.lat, "lon": CENTRE.lon}, "grid_id": "G404"}),
            422,
            "G404",
        ),
        // A position off the map.
        (
            "POST",
            "/v1/elders",
            json!({"id": "E8", "home": {"lat": 10.0, "lon": 10.0},
            "grid_id": "G1", "care_level": 2}),
            422,
            "E8",
        ),
        // An unknown field, named.
        (
            "POST",
            "/v1/responders",
            json!({"id": "V8", "kind": "volunteer", "travel_mode": "foot",
            "home": {"lat": CENTRE.lat, "lon": CENTRE.lon}, "favourite_colour": "red"}),
            400,
            "favourite_colour",
        ),
        // A token digest cannot be set from outside.
        (
            "PATCH",
            "/v1/responders/V1",
            json!({"token_sha256": "00"}),
            400,
            "token_sha256",
        ),
        // The id cannot change.
        ("PATCH", "/v1/responders/V1", json!({"id": "V7"}), 400, "id"),
        // An unknown paired responder, named.
        (
            "PATCH",
            "/v1/elders/E1",
            json!({"paired_responders": ["V404"]}),
            422,
            "V404",
        ),
        // An elder's details are bounded, and the field is named.
        (
            "PATCH",
            "/v1/elders/E1",
            json!({"details": {"name": "x".repeat(1_001)}}),
            422,
            "details.name",
        ),
        (
            "PATCH",
            "/v1/elders/E1",
            json!({"details": {"nickname": "Lu"}}),
            400,
            "nickname",
        ),
        // Unknown entries.
        (
            "PATCH",
            "/v1/responders/V404",
            json!({"skills": []}),
            404,
            "V404",
        ),
        ("DELETE", "/v1/responders/V404", json!(null), 404, "V404"),
        ("GET", "/v1/elders/E404", json!(null), 404, "E404"),
    ];
    for (method, path, body, status, named) in cases {
        let body = (!body.is_null()).then_some(body);
        let (s, answer) = op(&server, method, path, body.as_ref()).await;
        assert_eq!(s, status, "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains(named), "{method} {path}: {answer}");
    }
    // Not an operator; no token; a body that is not an object; one too large.
    let (s, _) = server
        .http(
            "POST",
            "/v1/responders",
            Some(&token("V1")),
            Some(&volunteer("V8", 0.0)),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = server.http("GET", "/v1/responders/V1", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = op(&server, "POST", "/v1/grids", Some(&json!([1, 2]))).await;
    assert_eq!(s, 400);
    let big = json!({"id": "G9", "name": "x".repeat(dispatch_server::people::BODY_BYTES)});
    let (s, _) = op(&server, "POST", "/v1/grids", Some(&big)).await;
    assert_eq!(s, 413);

    let (_, after) = op(&server, "GET", "/v1/responders/V1", None).await;
    assert_eq!(before, after);
    for path in ["/v1/responders/V8", "/v1/elders/E8", "/v1/grids/G9"] {
        let (s, _) = op(&server, "GET", path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    // V1's token still works.
    assert_eq!(server.upgrade_status(&token("V1")).await, 101);
    server.stop().await;
}

/// The people behind the ids: an operator sets an elder's details; an offer carries none of
/// them; the volunteer who accepts is told the name, address and keyholders (not the medical
/// notes, never the family); the ambulance crew also the medical notes.
#[tokio::test]
async fn the_assigned_responder_is_told_who_is_at_the_door_and_an_offer_nothing() {
    let server = TestServer::start().await;
    let details = json!({"details": {
        "name": "Dona Lúcia Ferreira", "address": "Rua Fictícia 12, fundos",
        "phone": "+55 51 0000-1111", "languages": ["pt-BR"],
        "medical_notes": "anticoagulants; hip replaced 2019",
        "keyholders": ["Seu Jorge, casa 14"]
    }});
    let (s, e1) = op(&server, "PATCH", "/v1/elders/E1", Some(&details)).await;
    assert_eq!(s, 200, "{e1}");
    assert_eq!(e1["details"]["name"], "Dona Lúcia Ferreira");
    assert_eq!(
        e1["family"][0], "Maria (daughter) +55 51 0000-0000",
        "operators see all"
    );

    let mut phones = Vec::new();
    for id in ["V1", "V2", "A1"] {
        let mut c = server.connect(id).await;
        c.request(json!({"type": "availability", "status": "available"}), "on")
            .await;
        phones.push(c);
    }
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("door-1", "E1"), "1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");

    // V1 (paired with E1) is offered the job: the offer says where, not who.
    let (offer, _) = phones[0].recv_until("offer", |_| true).await;
    let text = offer.to_string();
    for secret in [
        "Lúcia",
        "Fictícia",
        "anticoagulants",
        "Jorge",
        "Maria",
        "E1",
    ] {
        assert!(!text.contains(secret), "an offer carries {secret}: {text}");
    }
    let (r, _) = phones[0]
        .request(
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "a",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (assigned, _) = phones[0].recv_until("assigned", |_| true).await;
    assert_eq!(assigned["elder_id"], "E1");
    assert_eq!(
        assigned["elder"]["name"], "Dona Lúcia Ferreira",
        "{assigned}"
    );
    assert_eq!(assigned["elder"]["keyholders"][0], "Seu Jorge, casa 14");
    let text = assigned.to_string();
    assert!(!text.contains("anticoagulants"), "{text}");
    assert!(!text.contains("Maria"), "{text}");

    // The ambulance crew is told the medical notes too, and never the family.
    let (amb, _) = phones[2]
        .recv_until("assigned", |a| a["role"] == "ambulance")
        .await;
    assert_eq!(
        amb["elder"]["medical_notes"], "anticoagulants; hip replaced 2019",
        "{amb}"
    );
    assert!(!amb.to_string().contains("Maria"), "{amb}");
    server.stop().await;
}

/// Device gateways and operators are managed the same way; each is created with its first
/// token (shown once), a new token revokes the old, and the last operator cannot be retired.
#[tokio::test]
async fn devices_and_operators_get_tokens_and_the_last_operator_stays() {
    let server = TestServer::start().await;
    let (s, gw2) = op(&server, "POST", "/v1/devices", Some(&json!({"id": "GW2"}))).await;
    assert_eq!(s, 201, "{gw2}");
    assert_eq!(gw2["has_token"], true, "{gw2}");
    assert!(gw2.get("token_sha256").is_none(), "{gw2}");
    let first = gw2["token"].as_str().expect("token shown once").to_string();
    let alert = |id: &str| json!({"alert_id": id, "kind": "fall", "elder_id": "E2", "detected_at": 1_700_000_000_000i64});
    let (s, acc) = server
        .http("POST", "/v1/alerts", Some(&first), Some(&alert("gw2-1")))
        .await;
    assert_eq!(s, 202, "{acc}");
    let (s, _) = op(&server, "GET", "/v1/devices/GW2", None).await;
    assert_eq!(s, 200);

    // A lost gateway: a new token; the old one is refused at once.
    let (s, issued) = op(&server, "POST", "/v1/devices/GW2/tokens", None).await;
    assert_eq!(s, 201, "{issued}");
    let second = issued["token"].as_str().unwrap().to_string();
    let (s, _) = server
        .http("POST", "/v1/alerts", Some(&first), Some(&alert("gw2-2")))
        .await;
    assert_eq!(s, 401);
    let (s, _) = server
        .http("POST", "/v1/alerts", Some(&second), Some(&alert("gw2-3")))
        .await;
    assert_eq!(s, 202);
    let (s, _) = op(&server, "DELETE", "/v1/devices/GW2", None).await;
    assert_eq!(s, 200);
    assert_eq!(server.upgrade_status(&second).await, 401);

    // Operators: OP3 joins and can open a console; OP2 leaves; OP1 cannot leave last.
    let (s, op3) = op(
        &server,
        "POST",
        "/v1/operators",
        Some(&json!({"id": "OP3"})),
    )
    .await;
    assert_eq!(s, 201, "{op3}");
    let t3 = op3["token"].as_str().unwrap().to_string();
    let mut console = server.connect_with("OP3", &t3).await;
    let (snap, _) = console.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot");
    let mut op2 = server.connect("OP2").await;
    for id in ["OP2", "OP3"] {
        let (s, body) = op(&server, "DELETE", &format!("/v1/operators/{id}"), None).await;
        assert_eq!(s, 200, "{body}");
    }
    assert_eq!(op2.closed_with().await, Some(4003));
    assert_eq!(console.closed_with().await, Some(4003));
    let (s, body) = op(&server, "DELETE", "/v1/operators/OP1", None).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["code"], "last_people_operator", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("last operator"),
        "{body}"
    );
    let (s, body) = op(
        &server,
        "POST",
        "/v1/operators",
        Some(&json!({"id": "OP4", "token_sha256": "ab"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = op(&server, "DELETE", "/v1/devices/GW404", None).await;
    assert_eq!(s, 404);
    server.stop().await;
}

/// A console request over the socket with OP1's session; the `people_result` or `error`.
async fn over_socket(console: &mut common::Client, msg: Value, id: &str) -> Value {
    let mut msg = msg;
    msg["type"] = json!("people");
    console.request(msg, id).await.0
}

/// The same operations as HTTP over the operator's WebSocket (`people` → `people_result`),
/// with the same refusals, and only for an operator with the `people` role.
#[tokio::test]
async fn people_over_the_socket_does_what_http_does() {
    let mut roster = common::roster();
    roster.operators[1].roles = Some(vec!["dispatch".into()]); // OP2: dispatch only
    let server = TestServer::start_with(
        roster,
        dispatch_server::Limits::default(),
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await;
    let mut console = server.connect("OP1").await;
    let r = over_socket(
        &mut console,
        json!({"op": "create", "entry": "responder", "body": volunteer("V9", 0.001)}),
        "c",
    )
    .await;
    assert_eq!(
        (r["type"].clone(), r["status"].clone()),
        (json!("people_result"), json!(201)),
        "{r}"
    );
    assert_eq!(r["body"]["has_token"], false, "{r}");
    let r = over_socket(
        &mut console,
        json!({"op": "issue_token", "entry": "responder", "entry_id": "V9"}),
        "t",
    )
    .await;
    assert_eq!(r["status"], 201, "{r}");
    let t = r["body"]["token"].as_str().expect("token").to_string();
    assert_eq!(server.upgrade_status(&t).await, 101);
    let r = over_socket(
        &mut console,
        json!({"op": "change", "entry": "responder", "entry_id": "V9", "body": {"skills": ["cleaning"]}}),
        "p",
    )
    .await;
    assert_eq!(
        (r["status"].clone(), r["body"]["skills"].clone()),
        (json!(200), json!(["cleaning"])),
        "{r}"
    );
    // What HTTP now reads is what the socket wrote.
    let (s, stored) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!((s, &stored), (200, &r["body"]));
    let r = over_socket(
        &mut console,
        json!({"op": "read", "entry": "responder", "entry_id": "V9"}),
        "r",
    )
    .await;
    assert_eq!(r["body"], stored, "{r}");

    // Refusals are error frames with HTTP's codes, naming what is wrong; nothing changes.
    for (msg, code, named) in [
        (
            json!({"op": "read", "entry": "elder", "entry_id": "E404"}),
            "unknown",
            "E404",
        ),
        (json!({"op": "read", "entry": "elder"}), "bad_field", "id"),
        (
            json!({"op": "change", "entry": "responder", "entry_id": "V9", "body": {"token_sha256": "00"}}),
            "bad_field",
            "token_sha256",
        ),
        (
            json!({"op": "create", "entry": "responder", "body": volunteer("V1", 0.0)}),
            "conflict",
            "V1",
        ),
        (
            json!({"op": "change", "entry": "elder", "entry_id": "E1", "body": {"paired_responders": ["V404"]}}),
            "unknown_responder",
            "V404",
        ),
        (
            json!({"op": "issue_token", "entry": "elder", "entry_id": "E1"}),
            "bad_field",
            "token",
        ),
        (
            json!({"op": "fly", "entry": "elder", "entry_id": "E1"}),
            "bad_field",
            "fly",
        ),
        (
            json!({"op": "create", "entry": "grid", "entry_id": "G8", "body": {"id": "G9"}}),
            "bad_field",
            "G9",
        ),
    ] {
        let r = over_socket(&mut console, msg.clone(), "x").await;
        assert_eq!(r["type"], "error", "{msg}: {r}");
        assert_eq!(r["code"], code, "{msg}: {r}");
        assert!(
            r["message"].as_str().unwrap_or("").contains(named),
            "{msg}: {r}"
        );
    }
    let (_, after) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(after, stored);
    let (_, e1) = op(&server, "GET", "/v1/elders/E1", None).await;
    assert_eq!(e1["paired_responders"], json!(["V1"]));

    // OP2 may dispatch but not manage people; a phone may do neither.
    let mut dispatcher = server.connect("OP2").await;
    let r = over_socket(
        &mut dispatcher,
        json!({"op": "retire", "entry": "responder", "entry_id": "V9"}),
        "d",
    )
    .await;
    assert_eq!(
        (r["type"].clone(), r["code"].clone()),
        (json!("error"), json!("missing_role")),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap_or("").contains("`people`"),
        "{r}"
    );
    let mut phone = server.connect("V1").await;
    let r = over_socket(
        &mut phone,
        json!({"op": "retire", "entry": "responder", "entry_id": "V9"}),
        "v",
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let (s, _) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(s, 200, "V9 is still there");
    // Retired over the socket: gone, and its token refused.
    let r = over_socket(
        &mut console,
        json!({"op": "retire", "entry": "responder", "entry_id": "V9"}),
        "del",
    )
    .await;
    assert_eq!(
        (r["status"].clone(), r["body"].clone()),
        (json!(200), json!({"retired": "V9"})),
        "{r}"
    );
    assert_eq!(server.upgrade_status(&t).await, 401);
    server.stop().await;
}

/// Every roster change and redemption reaches the operator stream as a numbered event that
/// names the entry and who made the change, and never carries the record (no token digest,
/// no elder's details).
#[tokio::test]
async fn roster_changes_and_redemptions_are_on_the_operator_stream() {
    let server = TestServer::start().await;
    let mut console = server.connect("OP2").await;
    console.request(json!({"type": "subscribe"}), "s").await;
    add_with_token(&server, "V9").await;
    let (s, _) = op(
        &server,
        "PATCH",
        "/v1/elders/E1",
        Some(&json!({"details": {"name": "Dona Lurdes"}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, r) = op(
        &server,
        "POST",
        "/v1/responders/V9/time-bank/redemptions",
        Some(&json!({"minutes": 30, "note": "cleaning for her mother", "override_negative": true})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let (s, _) = op(&server, "DELETE", "/v1/responders/V9", None).await;
    assert_eq!(s, 200);
    let mut seen = Vec::new();
    let mut seqs = Vec::new();
    while seen.len() < 5 {
        let e = console.recv().await;
        if e["type"] == "roster_changed" || e["type"] == "time_bank_redeemed" {
            seqs.push(e["seq"].as_u64().expect("numbered"));
            assert_eq!(
                e["by"].get("id").or(e["entry"].get("by")),
                Some(&json!("OP1")),
                "{e}"
            );
            let text = e.to_string();
            assert!(
                !text.contains("token_sha256") && !text.contains("Lurdes"),
                "{e}"
            );
            seen.push(if e["type"] == "roster_changed" {
                format!(
                    "{} {} {}",
                    e["entry"].as_str().unwrap(),
                    e["id"].as_str().unwrap(),
                    e["change"].as_str().unwrap()
                )
            } else {
                format!(
                    "redeemed {} {}",
                    e["responder_id"].as_str().unwrap(),
                    e["entry"]["balance_minutes"]
                )
            });
        }
    }
    assert_eq!(
        seen,
        vec![
            "responder V9 added",
            "responder V9 token_issued",
            "elder E1 changed",
            "redeemed V9 -30",
            "responder V9 retired",
        ]
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    server.stop().await;
}

/// A volunteer retired on the way to a fall is taken off it, their phone closed, and the
/// incident is offered to somebody else: the console sees `unassigned`, V1 gets the offer.
#[tokio::test]
async fn a_volunteer_retired_on_the_way_is_replaced_by_somebody_else() {
    let server = TestServer::start().await;
    let t = add_with_token(&server, "V9").await;
    let mut console = server.connect("OP1").await;
    console.request(json!({"type": "subscribe"}), "s").await;
    let mut phone = server.connect_with("V9", &t).await;
    phone
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("people-job", "E1"), "1").await;
    let (offer, _) = phone.recv_until("offer", |_| true).await;
    let (r, _) = phone
        .request(
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "a",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    phone.recv_until("assigned", |_| true).await;
    // V1 comes on duty while V9 is on the way.
    let mut v1 = server.connect("V1").await;
    v1.request(json!({"type": "availability", "status": "available"}), "on")
        .await;

    let (s, body) = op(&server, "DELETE", "/v1/responders/V9", None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(phone.closed_with().await, Some(4003));
    let (gone, _) = console
        .recv_until("unassigned", |e| e["responder_id"] == "V9")
        .await;
    assert_eq!(gone["incident_id"], acc["incident_id"], "{gone}");
    let (again, _) = v1.recv_until("offer", |_| true).await;
    assert_eq!(again["incident_id"], acc["incident_id"], "{again}");
    let (_, view) = op(
        &server,
        "GET",
        &format!("/v1/incidents/{}", acc["incident_id"]),
        None,
    )
    .await;
    assert_eq!(view["summary"]["community"], json!([]), "{view}");
    server.stop().await;
}

fn changes(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["entry"].as_str().unwrap(),
                c["id"].as_str().unwrap(),
                c["change"].as_str().unwrap()
            )
        })
        .collect()
}

/// A changed roster file reaches a running service only through an explicit import: a dry run
/// lists the differences and changes nothing; the import applies each as a journaled change
/// (seen on the operator stream), reports what the engine refused and why, and a bad file is
/// refused whole.
#[tokio::test]
async fn a_changed_roster_file_is_imported_explicitly_and_reports_its_differences() {
    let server = TestServer::start().await;
    let mut console = server.connect("OP2").await;
    console.request(json!({"type": "subscribe"}), "s").await;
    // E1 has an open incident: retiring E1 must be refused, and reported.
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("import-1", "E1"), "1").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");

    let mut file = common::roster();
    let mut v9 = file.responders[0].clone();
    v9.id = "V9".into();
    v9.token_sha256 = Some(common::digest("v9-token"));
    file.responders.push(v9);
    file.responders[0].token_sha256 = Some(common::digest("v1-new-token")); // V1's lost phone
    file.responders.retain(|r| r.id.as_str() != "V2"); // V2 left
    file.elders[1].care_level = 3; // E2
    file.elders.retain(|e| e.id.as_str() != "E1"); // E1 moved away, but has an open incident
    let body = serde_json::to_value(&file).unwrap();
    let want = vec![
        "responder V1 token_issued",
        "responder V9 added",
        "elder E2 changed",
        // Responders leave before elders (an elder's kin must be gone first).
        "responder V2 retired",
        "elder E1 retired",
    ];

    // A misspelt preview is refused, not taken for the real import.
    let (s, r) = op(
        &server,
        "POST",
        "/v1/roster/import?dryrun=true",
        Some(&body),
    )
    .await;
    assert_eq!(s, 400, "{r}");
    assert!(
        r["message"].as_str().unwrap_or("").contains("dryrun"),
        "{r}"
    );
    let (s, _) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(s, 404, "a refused import changes nothing");
    let (s, dry) = op(
        &server,
        "POST",
        "/v1/roster/import?dry_run=true",
        Some(&body),
    )
    .await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(changes(&dry["changes"]), want);
    let (s, _) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(s, 404, "a dry run changes nothing");
    assert_eq!(server.upgrade_status(&token("V1")).await, 101);

    let (s, done) = op(&server, "POST", "/v1/roster/import", Some(&body)).await;
    assert_eq!(s, 200, "{done}");
    let mut applied = want.clone();
    applied.retain(|c| *c != "elder E1 retired");
    assert_eq!(changes(&done["applied"]), applied, "{done}");
    assert_eq!(
        changes(&done["refused"]),
        vec!["elder E1 retired"],
        "{done}"
    );
    let why = done["refused"][0]["message"].as_str().unwrap_or("");
    assert!(why.contains("open incident"), "{done}");
    // The changes hold: V9 exists, V1's old token is refused and the new one works, V2 is gone.
    let (s, _) = op(&server, "GET", "/v1/responders/V9", None).await;
    assert_eq!(s, 200);
    assert_eq!(server.upgrade_status(&token("V1")).await, 401);
    assert_eq!(server.upgrade_status("v1-new-token").await, 101);
    let (s, _) = op(&server, "GET", "/v1/responders/V2", None).await;
    assert_eq!(s, 404);
    let (_, e2) = op(&server, "GET", "/v1/elders/E2", None).await;
    assert_eq!(e2["care_level"], 3);
    // The console saw each applied change, in order.
    let mut seen = Vec::new();
    while seen.len() < applied.len() {
        let e = console.recv().await;
        if e["type"] == "roster_changed" {
            seen.push(format!(
                "{} {} {}",
                e["entry"].as_str().unwrap(),
                e["id"].as_str().unwrap(),
                e["change"].as_str().unwrap()
            ));
        }
    }
    assert_eq!(seen, applied);
    // Importing the same file again changes nothing but what was refused.
    let (_, again) = op(
        &server,
        "POST",
        "/v1/roster/import?dry_run=true",
        Some(&body),
    )
    .await;
    assert_eq!(
        changes(&again["changes"]),
        vec!["elder E1 retired"],
        "{again}"
    );

    // A bad file is refused whole, naming the problem, and nothing changes.
    let mut bad = body.clone();
    bad["responders"][0]["grid_id"] = json!("G404");
    bad["grids"][0]["name"] = json!("Renamed");
    let (s, r) = op(&server, "POST", "/v1/roster/import", Some(&bad)).await;
    assert_eq!(s, 422, "{r}");
    assert!(r["message"].as_str().unwrap_or("").contains("G404"), "{r}");
    let mut unknown = body.clone();
    unknown["responders"][0]["colour"] = json!("red");
    let (s, r) = op(&server, "POST", "/v1/roster/import", Some(&unknown)).await;
    assert_eq!(s, 400, "{r}");
    assert!(
        r["message"].as_str().unwrap_or("").contains("colour"),
        "{r}"
    );
    let (_, g1) = op(&server, "GET", "/v1/grids/G1", None).await;
    assert_eq!(g1["name"], "Centro");
    // Only an operator with the `people` role may import.
    let (s, _) = server
        .http("POST", "/v1/roster/import", Some(&token("V1")), Some(&body))
        .await;
    assert_eq!(s, 401, "V1's old token no longer works at all");
    let (s, _) = server
        .http(
            "POST",
            "/v1/roster/import",
            Some(&token("GW1")),
            Some(&body),
        )
        .await;
    assert_eq!(s, 403);
    server.stop().await;
}
