//! `/metrics` counts what happened. Its own test binary: the Prometheus recorder is global to
//! a process, so only this test's server may touch it.

mod common;

use common::{fall, TestServer};
use serde_json::json;

/// The value of one sample line (`name{labels} value`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_what_the_test_did() {
    let server = TestServer::start().await;
    let mut op = server.connect("OP1").await;
    op.request(json!({"type": "subscribe"}), "s").await;
    let mut phones = Vec::new();
    for id in ["V1", "V2", "V3", "V4"] {
        let mut c = server.connect(id).await;
        c.request(json!({"type": "availability", "status": "available"}), "on")
            .await;
        phones.push(c);
    }
    let mut gw = server.connect("GW1").await;
    gw.request(fall("m1", "E1"), "1").await;
    gw.request(fall("m1", "E1"), "2").await; // a duplicate
    let (s, _) = server
        .http(
            "POST",
            "/v1/alerts",
            Some(&common::token("GW1")),
            Some(&fall("m2", "E2")),
        )
        .await;
    assert_eq!(s, 202);
    gw.send_text("nonsense".into()).await; // one bad frame
    assert_eq!(gw.recv().await["code"], "bad_json");

    // Take the first three offers the console sees; decline one, accept another.
    let mut offers = Vec::new();
    while offers.len() < 3 {
        let (e, _) = op.recv_until("offer_sent", |_| true).await;
        offers.push((
            e["responder_id"].as_str().unwrap().to_string(),
            e["offer_id"].as_u64().unwrap(),
        ));
    }
    let phone = |id: &str| {
        ["V1", "V2", "V3", "V4"]
            .iter()
            .position(|p| *p == id)
            .unwrap()
    };
    let (r, _) = phones[phone(&offers[0].0)]
        .request(json!({"type": "decline", "offer_id": offers[0].1}), "d")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let (r, _) = phones[phone(&offers[1].0)]
        .request(json!({"type": "accept", "offer_id": offers[1].1}), "a")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    // Read the console up to the community assignment so the counters include it.
    op.recv_until("assigned", |e| e["role"] == "community")
        .await;
    // Every offer of both incidents, from their timelines. Offers may still be going out
    // (a replacement for the decline, the second incident's next wave), so the counters are
    // read between two identical counts of the timelines (a fixed flaky failure: the
    // counters were read first and the timelines had three more offers by then).
    let offers_in_timelines = || async {
        let mut per_incident = Vec::new();
        for id in [1, 2] {
            let (_, inc) = server
                .http(
                    "GET",
                    &format!("/v1/incidents/{id}"),
                    Some(&common::token("OP1")),
                    None,
                )
                .await;
            per_incident.push(
                inc["timeline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["event"]["type"] == "offer_sent")
                    .count(),
            );
        }
        per_incident
    };
    let mut settled = None;
    for _ in 0..50 {
        let before = offers_in_timelines().await;
        let (s, text) = server.http_text("GET", "/metrics", None, None).await;
        assert_eq!(s, 200);
        if offers_in_timelines().await == before {
            settled = Some((before, text));
            break;
        }
    }
    let (per_incident, text) = settled.expect("offers stop changing within 50 reads");
    let offers_in_timelines: usize = per_incident.iter().sum();
    assert_eq!(
        sample(&text, r#"dispatch_alerts_received_total{via="ws"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"dispatch_alerts_received_total{via="http"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"dispatch_alerts_accepted_total{duplicate="false"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&text, r#"dispatch_alerts_accepted_total{duplicate="true"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, "dispatch_offers_total"),
        offers_in_timelines as f64
    );
    assert_eq!(sample(&text, "dispatch_offer_declines_total"), 1.0);
    // The server's own alert → first offer clock: one sample per new incident that got an
    // offer (the duplicate starts none), and the release wait of every step with events.
    let offered_incidents = per_incident.iter().filter(|&&n| n > 0).count();
    assert!(offered_incidents >= 1);
    assert_eq!(
        sample(&text, "dispatch_alert_to_offer_seconds_count"),
        offered_incidents as f64,
        "{text}"
    );
    assert!(sample(&text, "dispatch_release_wait_seconds_count") >= 1.0);
    assert_eq!(
        sample(&text, r#"dispatch_commands_accepted_total{kind="accept"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"dispatch_commands_accepted_total{kind="availability"}"#
        ),
        4.0
    );
    assert_eq!(
        sample(&text, r#"dispatch_frames_rejected_total{code="bad_json"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"dispatch_sessions_count{role="responder"}"#),
        4.0
    );
    assert_eq!(
        sample(&text, r#"dispatch_sessions_count{role="operator"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"dispatch_sessions_count{role="device"}"#),
        1.0
    );
    assert!(
        text.contains("dispatch_decision_latency_seconds_bucket"),
        "a histogram: {text}"
    );
    assert!(
        text.contains(r#"dispatch_queue_depth_items{queue="commands"}"#),
        "{text}"
    );
    server.stop().await;
}
