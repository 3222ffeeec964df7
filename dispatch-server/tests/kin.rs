//! Issue 12, gap 11 over the wire: an elder's kin (`kind: kin`, `kin_of`) are told of every
//! incident of their elder and its outcome (`kin_update`: opened, who is coming, arrived,
//! resolved), of nobody else's, never a volunteer's identity; a kin's phone that reconnects
//! is told its elder's open incidents again.

mod common;

use common::*;
use dispatch_core::model::{ResponderKind, TravelMode};
use serde_json::{json, Value};

/// The test roster with K1, E1's daughter, 2 km away (not on duty: she is told, not asked).
fn with_kin() -> dispatch_core::roster::RosterFile {
    let mut r = roster();
    let mut k1 = responder("K1", ResponderKind::Kin, TravelMode::Foot, at(0.0, 0.02));
    k1.grid_id = None;
    k1.skills = Vec::new();
    k1.kin_of = vec!["E1".into()];
    r.responders.push(k1);
    r
}

async fn kin_update(k: &mut Client, stage: &str) -> Value {
    let (v, skipped) = k.recv_until("kin_update", |v| v["stage"] == stage).await;
    for s in &skipped {
        assert_eq!(
            s["type"], "kin_update",
            "kin are sent nothing else here: {s}"
        );
        assert_eq!(s["elder_id"], "E1", "{s}");
    }
    assert!(
        !v.to_string().contains("V1"),
        "a volunteer's id reaches kin: {v}"
    );
    v
}

/// A server with K1 (E1's daughter) connected and V1 connected and on duty.
async fn kin_and_volunteer_on_duty() -> (TestServer, Client, Client) {
    let server = TestServer::start_with(
        with_kin(),
        dispatch_server::Limits::default(),
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await;
    let k1 = server.connect("K1").await;
    let mut v1 = server.connect("V1").await;
    v1.request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    (server, k1, v1)
}

#[tokio::test]
async fn kin_are_told_each_step_of_their_elders_incident_and_nobody_elses() {
    let (server, mut k1, mut v1) = kin_and_volunteer_on_duty().await;

    // E2 (not hers) falls first: K1 hears nothing of it; E1's fall is the first she hears.
    let (s, other) = server.post_alert("GW1", &fall("f0", "E2")).await;
    assert_eq!(s, 202, "{other}");
    let (s, opened) = server.post_alert("GW1", &fall("f1", "E1")).await;
    assert_eq!(s, 202, "{opened}");
    let incident = opened["incident_id"].clone();
    let first = kin_update(&mut k1, "opened").await;
    assert_eq!(
        (
            &first["incident_id"],
            first["elder_id"].as_str(),
            first["kind"].as_str()
        ),
        (&incident, Some("E1"), Some("fall")),
        "{first}"
    );

    // V1 (paired, nearest) is offered E1's fall and accepts: K1 hears a volunteer is coming.
    let (offer, _) = v1
        .recv_until("offer", |o| o["incident_id"] == incident)
        .await;
    v1.request(
        json!({"type": "accept", "offer_id": offer["offer_id"]}),
        "acc",
    )
    .await;
    let coming = kin_update(&mut k1, "coming").await;
    assert_eq!(coming["responder_kind"], "volunteer", "{coming}");
    assert!(coming["eta_s"].as_u64().is_some(), "{coming}");

    // Her phone drops and comes back: she is told the open incident again.
    drop(k1);
    let mut k1 = server.connect("K1").await;
    let again = kin_update(&mut k1, "opened").await;
    assert_eq!(again["incident_id"], incident);
    let again = kin_update(&mut k1, "coming").await;
    assert_eq!(again["responder_kind"], "volunteer", "{again}");

    v1.request(json!({"type": "arrived", "incident_id": incident}), "arr")
        .await;
    let arrived = kin_update(&mut k1, "arrived").await;
    assert_eq!(arrived["responder_kind"], "volunteer", "{arrived}");

    let mut op = server.connect("OP1").await;
    let (ack, _) = op
        .request(
            json!({"type": "resolve", "incident_id": incident, "note": "up and well"}),
            "res",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let resolved = kin_update(&mut k1, "resolved").await;
    assert_eq!(resolved["incident_id"], incident);
    server.stop().await;
}

#[tokio::test]
async fn kin_are_told_when_the_person_coming_is_taken_off_the_job() {
    let (server, mut k1, mut v1) = kin_and_volunteer_on_duty().await;
    let (s, opened) = server.post_alert("GW1", &fall("f1", "E1")).await;
    assert_eq!(s, 202, "{opened}");
    let incident = opened["incident_id"].clone();
    let (offer, _) = v1
        .recv_until("offer", |o| o["incident_id"] == incident)
        .await;
    v1.request(
        json!({"type": "accept", "offer_id": offer["offer_id"]}),
        "acc",
    )
    .await;
    kin_update(&mut k1, "coming").await;
    // V1 leaves the programme while on the way: the card must not keep saying they come.
    let (s, body) = server
        .http("DELETE", "/v1/responders/V1", Some(&token("OP1")), None)
        .await;
    assert_eq!(s, 200, "{body}");
    let off = kin_update(&mut k1, "unassigned").await;
    assert_eq!(off["incident_id"], incident);
    assert!(off.get("responder_kind").is_none(), "{off}");
    server.stop().await;
}
