//! Issue 12 over the wire: a real `dispatch serve` on loopback, alerts posted over HTTP as a
//! gateway would, the operators' view read from their socket. A fall during a meal request is
//! its own emergency (defect 1); an alert for an unknown elder or off the map is kept for an
//! operator and the device is told why (defect 6); two gateways may use one alert id, and a
//! conflicting resend is named (defect 7). Each survives a restart.

mod common;

use common::*;
use serde_json::{json, Value};

fn help(alert_id: &str, elder: &str, service: &str) -> Value {
    json!({"alert_id": alert_id, "kind": "help", "service": service, "elder_id": elder, "detected_at": 1_700_000_000_000i64})
}

/// The operators' snapshot of open incidents, by id.
async fn open_incidents(server: &TestServer) -> Vec<Value> {
    let mut op = server.connect("OP1").await;
    let (snap, _) = op.request(json!({"type": "subscribe"}), "sub").await;
    snap["state"]["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("no incidents in {snap}"))
        .clone()
}

/// `GET /v1/incidents/{id}` as OP1, which must answer 200.
async fn incident_view(server: &TestServer, id: &Value) -> Value {
    let (s, view) = server
        .http(
            "GET",
            &format!("/v1/incidents/{id}"),
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{view}");
    view
}

fn find(incidents: &[Value], id: &Value) -> Value {
    incidents
        .iter()
        .find(|i| &i["id"] == id)
        .unwrap_or_else(|| panic!("incident {id} not among {incidents:?}"))
        .clone()
}

#[tokio::test]
async fn defect_1_a_fall_during_a_meal_request_is_its_own_emergency_over_the_wire() {
    let server = TestServer::start().await;
    let (s, meal) = server.post_alert("GW1", &help("m1", "E2", "meal")).await;
    assert_eq!(s, 202, "{meal}");
    let (s, f) = server.post_alert("GW1", &fall("f1", "E2")).await;
    assert_eq!(s, 202, "{f}");
    assert_ne!(f["incident_id"], meal["incident_id"], "{f}");
    assert!(f.get("merged").is_none(), "a new incident: {f}");
    let incidents = open_incidents(&server).await;
    let fall_view = find(&incidents, &f["incident_id"]);
    assert_eq!(
        (fall_view["plan"].as_str(), fall_view["priority"].as_u64()),
        (Some("emergency"), Some(4)),
        "{fall_view}"
    );
    let meal_view = find(&incidents, &meal["incident_id"]);
    assert_eq!(
        (meal_view["plan"].as_str(), meal_view["priority"].as_u64()),
        (Some("service"), Some(1)),
        "{meal_view}"
    );
    // A second fall press is the same need: it merges, and says so.
    let (s, again) = server.post_alert("GW1", &fall("f2", "E2")).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["incident_id"], f["incident_id"]);
    assert_eq!(again["merged"], true, "{again}");
    server.stop().await;
}

#[tokio::test]
async fn defect_6_and_7_alerts_the_engine_cannot_dispatch_reach_an_operator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &roster()),
    );
    let server = serve_from(&args).await;
    // Unknown elder: 422 naming what was wrong, and the incident the operators now have.
    let (s, unknown) = server.post_alert("GW1", &fall("u1", "E404")).await;
    assert_eq!(s, 422, "{unknown}");
    assert_eq!(unknown["code"], "unknown_elder", "{unknown}");
    let kept = unknown["incident_id"].clone();
    assert!(kept.is_u64(), "{unknown}");
    // Off the map (valid coordinates, far from any road of this map).
    let mut far = fall("o1", "E1");
    far["position"] = json!({"lat": -10.0, "lon": 10.0});
    let (s, off) = server.post_alert("GW1", &far).await;
    assert_eq!((s, off["code"].as_str()), (422, Some("off_map")), "{off}");
    // A second gateway may use GW1's alert id for its own elder.
    let (s, gw1) = server.post_alert("GW1", &fall("0001", "E1")).await;
    assert_eq!(s, 202, "{gw1}");
    let (s, gw2) = server
        .http(
            "POST",
            "/v1/devices",
            Some(&token("OP1")),
            Some(&json!({"id": "GW2"})),
        )
        .await;
    assert_eq!(s, 201, "{gw2}");
    let gw2_token = gw2["token"].as_str().expect("token").to_string();
    let (s, other) = server
        .http(
            "POST",
            "/v1/alerts",
            Some(&gw2_token),
            Some(&fall("0001", "E2")),
        )
        .await;
    assert_eq!(s, 202, "{other}");
    assert_eq!(other["duplicate"], false, "{other}");
    assert_ne!(other["incident_id"], gw1["incident_id"]);
    // GW1 resending 0001 for another elder: a named conflict, kept for an operator.
    let (s, conflict) = server.post_alert("GW1", &fall("0001", "E2")).await;
    assert_eq!(
        (s, conflict["code"].as_str()),
        (422, Some("alert_conflict")),
        "{conflict}"
    );
    let message = conflict["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("E1") && message.contains("E2"),
        "{message}"
    );
    let incidents = open_incidents(&server).await;
    for (id, code) in [
        (&kept, "unknown_elder"),
        (&off["incident_id"], "off_map"),
        (&conflict["incident_id"], "alert_conflict"),
    ] {
        let i = find(&incidents, id);
        assert_eq!(i["needs_operator"]["code"], code, "{i}");
        assert!(
            i["open_offers"].as_array().is_some_and(Vec::is_empty),
            "{i}"
        );
    }
    // Durable: after a restart the operators still see them, and a resend is a duplicate
    // answered the same way.
    server.stop().await;
    let server = serve_from(&args).await;
    let incidents = open_incidents(&server).await;
    assert_eq!(
        find(&incidents, &kept)["needs_operator"]["code"],
        "unknown_elder"
    );
    let (s, again) = server.post_alert("GW1", &fall("u1", "E404")).await;
    assert_eq!((s, &again["incident_id"]), (422, &kept), "{again}");
    // An operator closes it once handled.
    let mut op = server.connect("OP1").await;
    let (r, _) = op
        .request(
            json!({"type": "resolve", "incident_id": kept, "note": "phoned the gateway's owner"}),
            "r",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    server.stop().await;
}

/// Defect 5 over real sockets: a volunteer whose phone disconnected is not offered a fall once
/// the grace period (300 ms here) has passed; their phone back, they are asked when the other
/// declines; a phone holding an offer that reconnects and says `available` gets an `ack`.
#[tokio::test]
async fn defect_5_a_phone_that_is_gone_is_not_offered_over_the_wire() {
    let policy = dispatch_core::policy::PolicyConfig {
        presence_grace_ms: 300,
        ..dispatch_server::serve_cmd::server_policy(
            dispatch_core::road::RoadConfig::default().foot_kmh,
        )
    };
    let server = TestServer::start_policy(
        roster(),
        dispatch_server::Limits::default(),
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
        policy,
    )
    .await;
    let mut phones = Vec::new();
    for id in ["V1", "V2", "V3", "V4"] {
        let mut c = server.connect(id).await;
        let (r, _) = c
            .request(json!({"type": "availability", "status": "available"}), "on")
            .await;
        assert_eq!(r["type"], "ack", "{r}");
        phones.push((id, c));
    }
    // V1 (E1's paired volunteer, nearest) loses its connection.
    let (_, v1) = phones.remove(0);
    drop(v1);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (s, acc) = server.post_alert("GW1", &fall("f1", "E1")).await;
    assert_eq!(s, 202, "{acc}");
    let mut offered = Vec::new();
    for (id, c) in phones.iter_mut() {
        let (offer, _) = c.recv_until("offer", |_| true).await;
        assert_eq!(offer["incident_id"], acc["incident_id"]);
        offered.push((id.to_string(), offer["offer_id"].clone()));
    }
    let view = incident_view(&server, &acc["incident_id"]).await;
    let asked: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["event"]["type"] == "offer_sent")
        .filter_map(|e| e["event"]["responder_id"].as_str())
        .collect();
    assert!(
        !asked.contains(&"V1"),
        "a gone phone was offered: {asked:?}"
    );
    assert_eq!(asked.len(), 3, "{asked:?}");
    // V2 reconnects while holding its offer and says `available`: acknowledged, not refused.
    let mut v2 = server.connect("V2").await;
    let (r, _) = v2
        .request(
            json!({"type": "availability", "status": "available"}),
            "again",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    // V1's phone is back; everyone else declines: V1 is asked.
    let mut v1 = server.connect("V1").await;
    let (r, _) = v1
        .request(
            json!({"type": "availability", "status": "available"}),
            "back",
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    for (id, offer_id) in &offered {
        let phone = if id == "V2" {
            &mut v2
        } else {
            &mut phones.iter_mut().find(|(p, _)| p == id).expect("phone").1
        };
        let (r, _) = phone
            .request(json!({"type": "decline", "offer_id": offer_id}), "no")
            .await;
        assert_eq!(r["type"], "ack", "{r}");
    }
    let (offer, _) = v1.recv_until("offer", |_| true).await;
    assert_eq!(offer["incident_id"], acc["incident_id"], "{offer}");
    server.stop().await;
}

/// Gap 13: the rules are configuration. `dispatch serve --config FILE` (TOML) sets any
/// `PolicyConfig` key; an unknown key, a wrong type or a value out of range refuses to start,
/// naming the key; a good file's values are the engine's (a 10-second offer window here).
#[tokio::test]
async fn serve_reads_the_dispatch_rules_from_a_config_file_and_names_a_bad_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &roster()),
    );
    let config = dir.path().join("rules.toml");
    for (text, names) in [
        ("offer_expiry_msec = 10000\n", "offer_expiry_msec"),
        ("offer_expiry_ms = \"soon\"\n", "offer_expiry_ms"),
        (
            "offer_expiry_ms = 1000\n",
            "offer_expiry_ms: 1000 is outside",
        ),
        ("wave_sizes = []\n", "wave_sizes"),
        ("dispatch_batched = false\n", "dispatch_batched"),
        ("not toml at all [", "not TOML"),
    ] {
        std::fs::write(&config, text).expect("write");
        args.config = Some(config.clone());
        let err = format!(
            "{:#}",
            dispatch_server::serve_cmd::open(&args)
                .err()
                .expect("refused")
        );
        assert!(
            err.contains(names) && err.contains("rules.toml"),
            "{text}: {err}"
        );
        assert!(
            !args.data_dir.exists(),
            "a refused config touches nothing: {text}"
        );
    }
    std::fs::write(
        &config,
        "offer_expiry_ms = 10000\nwave_sizes = [2, 4]\nreask_after_decline_ms = 60000\n",
    )
    .expect("write");
    let server = serve_from(&args).await;
    let mut v2 = server.connect("V2").await;
    let (r, _) = v2
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (s, acc) = server.post_alert("GW1", &fall("f1", "E1")).await;
    assert_eq!(s, 202, "{acc}");
    let (offer, _) = v2.recv_until("offer", |_| true).await;
    let view = incident_view(&server, &acc["incident_id"]).await;
    let sent = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["event"]["type"] == "offer_sent")
        .expect("an offer")
        .clone();
    let window =
        offer["expires_at"].as_i64().expect("expires_at") - sent["at"].as_i64().expect("at");
    assert_eq!(window, 10_000, "{offer} / {sent}");
    server.stop().await;
}
