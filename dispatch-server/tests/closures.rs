//! Issue 18, roads that change, over the wire: a dispatcher lays a closure with
//! `POST /v1/closures`; consoles are told; the next offer's ETA goes round it, equal to
//! Dijkstra on the changed weights; it is drawn by `GET /v1/closures`, lifted by
//! `DELETE /v1/closures/{id}`, kept across a restart; bad requests change nothing.

mod common;

use common::*;
use dispatch_core::geo::LatLon;
use dispatch_core::model::{ResponderKind, TravelMode};
use dispatch_core::road::{ClosureArea, Effect, Profile, ProfileOverlay};
use serde_json::{json, Value};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The common roster with the volunteers replaced by one grid worker by car, W1, about
/// 1.6 km from E1.
fn car_roster() -> dispatch_core::roster::RosterFile {
    let mut r = roster();
    r.responders.retain(|x| !x.id.as_str().starts_with('V'));
    r.responders.push(responder(
        "W1",
        ResponderKind::GridWorker,
        TravelMode::Car,
        w1_home(),
    ));
    for e in &mut r.elders {
        e.paired_responders.clear();
    }
    // CM1 is a care manager only (may see closures, not lay them).
    r.operators.push(dispatch_core::roster::OperatorRecord {
        roles: Some(vec!["care".to_string()]),
        ..dispatch_core::roster::OperatorRecord::new("CM1", digest(&token("CM1")))
    });
    r
}

fn w1_home() -> LatLon {
    at(0.011, 0.009)
}

/// The middle third of W1's road path to E1, as a drawn line.
fn on_the_way() -> Vec<LatLon> {
    let route = roads().route(TravelMode::Car, w1_home(), CENTRE).unwrap();
    let n = route.path.len();
    assert!(n > 6, "{n} points");
    route.path[n / 3..2 * n / 3].to_vec()
}

fn body(id: &str, points: &[LatLon]) -> Value {
    json!({
        "closure_id": id,
        "area": {"type": "line", "points": points, "width_m": 10},
        "modes": ["car"],
        "ends_at": now_ms() + 3_600_000,
        "reason": "road works",
    })
}

/// W1's car time to E1 with the line closed: Dijkstra on the changed weights, plus the
/// off-road legs the engine adds.
fn oracle_s(points: &[LatLon]) -> u64 {
    let times = roads();
    let net = times.road_network().unwrap();
    let g = net.profile(Profile::Car);
    let area = ClosureArea::Line {
        points: points.to_vec(),
        width_m: 10.0,
    };
    let ov = ProfileOverlay::new(
        g.segments_in(&area, net.projection())
            .into_iter()
            .map(|s| (s, Effect::Closed)),
    );
    let (f, t) = (g.snap(w1_home()).unwrap(), g.snap(CENTRE).unwrap());
    let plain = times.route(TravelMode::Car, w1_home(), CENTRE).unwrap();
    let off = plain.duration_ms - g.route(&f, &t).unwrap().duration_ms;
    (g.route_dijkstra_with(&f, &t, &ov).unwrap().duration_ms + off + 500) / 1000
}

async fn closures(server: &TestServer, who: &str) -> Value {
    let (s, v) = server
        .http("GET", "/v1/closures", Some(&token(who)), None)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn a_closure_laid_over_http_reroutes_the_next_offer_and_is_lifted() {
    let server = TestServer::start_with(
        car_roster(),
        Default::default(),
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await;
    let mut op = server.connect("OP1").await;
    let (snap, _) = op.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot");

    let points = on_the_way();
    let (s, f) = server
        .http(
            "POST",
            "/v1/closures",
            Some(&token("OP1")),
            Some(&body("works-1", &points)),
        )
        .await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["id"], "works-1");
    assert_eq!(f["properties"]["holding"], true);
    assert_eq!(f["properties"]["foot_segments"], 0);
    let lines = f["geometry"]["coordinates"].as_array().unwrap();
    assert!(!lines.is_empty(), "{f}");
    assert_eq!(
        f["properties"]["car_segments"].as_u64().unwrap() as usize,
        lines.len(),
        "one line per car segment"
    );
    let (told, _) = op.recv_until("road_closed", |_| true).await;
    assert_eq!(told["closure"]["closure_id"], "works-1");
    assert_eq!(told["by"]["id"], "OP1");

    // A care manager sees it too.
    let list = closures(&server, "CM1").await;
    assert_eq!(list["type"], "FeatureCollection");
    assert_eq!(list["features"][0]["id"], "works-1");

    // The next offer to W1 goes round it, exactly.
    let mut w1 = server.connect("W1").await;
    let (r, _) = w1
        .request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let mut gw = server.connect("GW1").await;
    let (acc, _) = gw.request(fall("f1", "E1"), "a").await;
    assert_eq!(acc["type"], "alert_accepted", "{acc}");
    let (offer, _) = w1.recv_until("offer", |_| true).await;
    let want = oracle_s(&points);
    let before = (roads()
        .route(TravelMode::Car, w1_home(), CENTRE)
        .unwrap()
        .duration_ms
        + 500)
        / 1000;
    assert_eq!(offer["eta_s"].as_u64(), Some(want), "{offer}");
    assert!(
        want > before,
        "{want} s with the closure, {before} s without"
    );

    // Lifted: 204, consoles told, the list is empty.
    let (s, v) = server
        .http("DELETE", "/v1/closures/works-1", Some(&token("OP1")), None)
        .await;
    assert_eq!(s, 204, "{v}");
    let (told, _) = op.recv_until("road_reopened", |_| true).await;
    assert_eq!(told["closure_id"], "works-1");
    assert_eq!(told["expired"], false);
    assert_eq!(closures(&server, "OP1").await["features"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn bad_closure_requests_are_refused_and_change_nothing() {
    let server = TestServer::start_with(
        car_roster(),
        Default::default(),
        Box::new(dispatch_server::engine_task::VolatileJournal::default()),
    )
    .await;
    let points = on_the_way();
    let post = |who: &'static str, b: Value| {
        let server = &server;
        async move {
            server
                .http("POST", "/v1/closures", Some(&token(who)), Some(&b))
                .await
        }
    };
    let with = |k: &str, v: Value| {
        let mut b = body("x", &points);
        b[k] = v;
        b
    };
    let cases = [
        ("OP1", with("colour", json!("red")), 400, "bad_field"),
        (
            "OP1",
            with("area", json!({"type": "circle", "points": []})),
            400,
            "bad_field",
        ),
        ("OP1", with("ends_at", json!("tomorrow")), 400, "bad_field"),
        (
            "OP1",
            with("ends_at", json!(now_ms() - 1000)),
            422,
            "invalid",
        ),
        (
            "OP1",
            with(
                "area",
                json!({"type": "polygon", "points": [
                    {"lat": 10.0, "lon": 10.0}, {"lat": 10.0, "lon": 10.01}, {"lat": 10.01, "lon": 10.0}
                ]}),
            ),
            422,
            "invalid",
        ),
        (
            "OP1",
            with("effect", json!({"type": "slow", "factor": 0.5})),
            422,
            "invalid",
        ),
        (
            "OP1",
            with("closure_id", json!("no spaces")),
            422,
            "invalid",
        ),
        ("CM1", body("x", &points), 403, "missing_role"),
        ("W1", body("x", &points), 403, "forbidden"),
    ];
    for (who, b, status, code) in cases {
        let (s, v) = post(who, b.clone()).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{b}: {v}");
    }
    let (s, _) = server
        .http("POST", "/v1/closures", None, Some(&body("x", &points)))
        .await;
    assert_eq!(s, 401);
    let (s, v) = server
        .http_text(
            "POST",
            "/v1/closures",
            Some(&token("OP1")),
            Some(&json!({"closure_id": "big", "reason": "x".repeat(200_000)})),
        )
        .await;
    assert_eq!(s, 413, "{v}");
    let (s, v) = server
        .http("DELETE", "/v1/closures/nope", Some(&token("OP1")), None)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("unknown_closure")),
        "{v}"
    );
    assert_eq!(closures(&server, "OP1").await["features"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn a_closure_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(
        dir.path(),
        dispatch_core::testdata::porto_alegre_pbf(),
        write_roster(dir.path(), &car_roster()),
    );
    let server = serve_from(&args).await;
    let points = on_the_way();
    let mut b = body("flood", &points);
    b["effect"] = json!({"type": "slow", "factor": 2.5});
    b["modes"] = json!(["car", "foot"]);
    let (s, laid) = server
        .http("POST", "/v1/closures", Some(&token("OP1")), Some(&b))
        .await;
    assert_eq!(s, 201, "{laid}");
    server.stop().await;

    let server = serve_from(&args).await;
    let list = closures(&server, "OP1").await;
    assert_eq!(
        list["features"][0], laid,
        "the same closure, drawn the same"
    );
    assert_eq!(laid["properties"]["effect"]["factor"], 2.5);
    assert!(laid["properties"]["foot_segments"].as_u64().unwrap() > 0);
    server.stop().await;
}
