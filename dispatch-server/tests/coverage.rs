//! Issue 17, live coverage over the wire: `GET /v1/coverage` follows responders going on and
//! off duty and elders added at run time, with the ranking's own ETAs; operators only; bad
//! queries refused; the shares exported to Prometheus.

mod common;

use common::*;
use dispatch_core::model::TravelMode;
use serde_json::{json, Value};
use std::time::Duration;

async fn coverage_server() -> TestServer {
    let limits = dispatch_server::Limits {
        coverage_period: Duration::from_millis(100),
        ..Default::default()
    };
    // PM1 manages people only; CM1 is a care manager.
    let mut r = roster();
    for (id, role) in [("PM1", "people"), ("CM1", "care")] {
        r.operators.push(dispatch_core::roster::OperatorRecord {
            roles: Some(vec![role.to_string()]),
            ..dispatch_core::roster::OperatorRecord::new(id, digest(&token(id)))
        });
    }
    TestServer::start_with(
        r,
        limits,
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await
}

async fn coverage(server: &TestServer, query: &str) -> Value {
    let (s, v) = server
        .http(
            "GET",
            &format!("/v1/coverage{query}"),
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Polls `?by=elder` until `elder`'s property `key` satisfies `ok` (bounded: 10 s).
async fn elder_until(
    server: &TestServer,
    elder: &str,
    key: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let (s, v) = server
            .http("GET", "/v1/coverage?by=elder", Some(&token("OP1")), None)
            .await;
        // 503 until the first update after start.
        assert!(
            s == 200 || (s == 503 && v["code"] == "unavailable"),
            "{s} {v}"
        );
        if let Some(f) = v["features"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["properties"]["elder_id"] == elder)
        {
            if ok(&f["properties"][key]) {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{elder}.{key} never as expected: {}",
        coverage(server, "?by=elder").await
    );
}

fn props<'a>(v: &'a Value, elder: &str) -> &'a Value {
    &v["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["elder_id"] == elder)
        .unwrap()["properties"]
}

/// The ranking's ETA from V1's home to E1's, in whole seconds rounded up.
fn v1_to_e1_s() -> u64 {
    let r = roster();
    let v1 = r.responders.iter().find(|x| x.id.as_str() == "V1").unwrap();
    let t = roads().times_to(TravelMode::Foot, &[v1.home], CENTRE)[0].unwrap();
    t.div_ceil(1000)
}

#[tokio::test]
async fn coverage_follows_duty_and_elders_with_the_rankings_etas() {
    let server = coverage_server().await;
    // Nobody on duty: nobody covered.
    let v = elder_until(&server, "E1", "community_eta_s", Value::is_null).await;
    assert_eq!(v["summary"]["overall"]["elders"], 2, "{v}");
    assert_eq!(v["summary"]["overall"]["within_900_s"], 0, "{v}");
    assert_eq!(v["summary"]["community_responders"], 0);

    // V1 on duty: E1 has V1's ETA, the ranking's own.
    let mut v1 = server.connect("V1").await;
    v1.request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    let v = elder_until(&server, "E1", "community_eta_s", |x| !x.is_null()).await;
    let e1 = props(&v, "E1");
    assert_eq!(e1["community_eta_s"].as_u64(), Some(v1_to_e1_s()), "{e1}");
    assert_eq!(e1["within_900_s"], true);
    assert_eq!(v["summary"]["community_responders"], 1);
    assert_eq!(v["summary"]["by_grid"]["G1"]["within_900_s"], 1, "{v}");

    // An ambulance on duty reaches both elders within 15 minutes by car.
    let mut a1 = server.connect("A1").await;
    a1.request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    let v = elder_until(&server, "E2", "ambulance_eta_s", |x| !x.is_null()).await;
    assert_eq!(v["summary"]["overall"]["within_900_s"], 2, "{v}");
    assert_eq!(v["summary"]["ambulances"], 1);

    // An elder added at run time is counted.
    let elder = json!({
        "id": "E9", "home": {"lat": CENTRE.lat + 0.001, "lon": CENTRE.lon},
        "grid_id": "G1", "care_level": 5
    });
    let (s, e) = server
        .http("POST", "/v1/elders", Some(&token("OP1")), Some(&elder))
        .await;
    assert_eq!(s, 201, "{e}");
    let v = elder_until(&server, "E9", "community_eta_s", |x| !x.is_null()).await;
    assert_eq!(v["summary"]["overall"]["elders"], 3);
    assert_eq!(v["summary"]["by_care_level"]["5"]["elders"], 1, "{v}");

    // V1 off duty: E1 is reached only by the ambulance.
    v1.request(json!({"type": "availability", "status": "off_duty"}), "off")
        .await;
    let v = elder_until(&server, "E1", "community_eta_s", Value::is_null).await;
    assert!(props(&v, "E1")["ambulance_eta_s"].as_u64().is_some());

    // Hexagons and grids add up to the same elders.
    let hex = coverage(&server, "?by=hex&hex_m=300").await;
    assert_eq!(hex["type"], "FeatureCollection");
    assert_eq!(hex["hex_m"], 300.0);
    let total: u64 = hex["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["geometry"]["type"], "Polygon");
            assert_eq!(f["geometry"]["coordinates"][0].as_array().unwrap().len(), 7);
            f["properties"]["elders"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(total, 3);
    let grids = coverage(&server, "?by=grid").await;
    let ids: Vec<&str> = grids["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["grid_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["G1", "G2"]);

    // The shares reach Prometheus.
    let (s, text) = server.http_text("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    assert!(
        text.contains("dispatch_coverage_share_ratio{")
            && text.contains("dispatch_coverage_update_seconds"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn coverage_is_for_operators_and_bad_queries_are_refused() {
    let server = coverage_server().await;
    let (s, _) = server.http("GET", "/v1/coverage", None, None).await;
    assert_eq!(s, 401);
    for who in ["V1", "GW1"] {
        let (s, v) = server
            .http("GET", "/v1/coverage", Some(&token(who)), None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (403, Some("forbidden")),
            "{who}: {v}"
        );
    }
    // A care manager may read it; an operator with neither role is told which would do.
    let mut ok = false;
    for _ in 0..100 {
        let (s, _) = server
            .http("GET", "/v1/coverage", Some(&token("CM1")), None)
            .await;
        assert!(s == 200 || s == 503, "{s}");
        if s == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a care manager never read coverage");
    let (s, v) = server
        .http("GET", "/v1/coverage", Some(&token("PM1")), None)
        .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("missing_role")), "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("`dispatch`") && m.contains("`care`"), "{m}");
    for (q, says) in [
        ("?by=street", "by"),
        ("?hex_m=5", "hex_m"),
        ("?hex_m=abc", "hex_m"),
        ("?by=grid&hex_m=300", "hex_m"),
        ("?elder=E1", "unknown query parameter"),
    ] {
        let (s, v) = server
            .http(
                "GET",
                &format!("/v1/coverage{q}"),
                Some(&token("OP1")),
                None,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (400, Some("bad_field")),
            "{q}: {v}"
        );
        assert!(v["message"].as_str().unwrap().contains(says), "{q}: {v}");
    }
    server.stop().await;
}
