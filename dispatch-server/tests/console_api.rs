//! What the web apps rely on, over real sockets: the encoded map (`GET /v1/map`), the web
//! files, and the console's reads (`candidates`, the snapshot's clocks, the incident's elder),
//! plus what only an assigned responder is told (`assigned.elder_id`).

mod common;

use common::{fall, token, TestServer};
use dispatch_core::geo::haversine_m;
use dispatch_core::road::{OsmNode, OsmWay, RoadConfig, RoadNetwork};
use dispatch_server::web::{encode_map, Site};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Decodes `GET /v1/map`'s body into (class, points in degrees) lines.
fn decode(map: &Value) -> Vec<(u64, Vec<(f64, f64)>)> {
    let scale = map["scale"].as_f64().expect("scale");
    map["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            let l = l.as_array().expect("a line is an array");
            let class = l[0].as_u64().expect("class");
            let (mut lat, mut lon) = (0i64, 0i64);
            let pts = l[1..]
                .chunks(2)
                .map(|c| {
                    lat += c[0].as_i64().expect("int");
                    lon += c[1].as_i64().expect("int");
                    (lat as f64 / scale, lon as f64 / scale)
                })
                .collect();
            (class, pts)
        })
        .collect()
}

fn node(id: i64, lat: f64, lon: f64) -> OsmNode {
    OsmNode { id, lat, lon }
}

fn way(id: i64, nodes: &[i64], tags: &[(&str, &str)]) -> OsmWay {
    OsmWay {
        id,
        nodes: nodes.to_vec(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A segment by its two ends in integer map units, lower end first.
type SegmentKey = ((i64, i64), (i64, i64));

/// Every kept segment comes back exactly once, with the class its speed and profile give.
#[test]
fn the_map_encodes_every_road_segment_once_with_its_class() {
    // A ring of residential streets (25 km/h) with a primary road (60 km/h) through it and a
    // footway off one corner.
    let nodes = vec![
        node(1, -30.000, -51.000),
        node(2, -30.000, -50.998),
        node(3, -30.002, -50.998),
        node(4, -30.002, -51.000),
        node(5, -30.001, -51.000),
        node(6, -30.001, -50.998),
        node(7, -30.003, -51.001),
    ];
    let ways = vec![
        way(10, &[1, 2, 6, 3, 4, 5, 1], &[("highway", "residential")]),
        way(11, &[5, 6], &[("highway", "primary"), ("maxspeed", "60")]),
        way(12, &[4, 7], &[("highway", "footway")]),
    ];
    let net = RoadNetwork::from_elements(&nodes, &ways, &RoadConfig::default()).unwrap();
    let map: Value = serde_json::from_slice(&encode_map(&net)).unwrap();
    assert_eq!(map["attribution"], "© OpenStreetMap contributors");
    let lines = decode(&map);
    let key = |a: (f64, f64), b: (f64, f64)| {
        let r = |p: (f64, f64)| ((p.0 * 1e5).round() as i64, (p.1 * 1e5).round() as i64);
        let (a, b) = (r(a), r(b));
        (a.min(b), a.max(b))
    };
    let mut got: Vec<(u64, SegmentKey)> = lines
        .iter()
        .flat_map(|(c, pts)| pts.windows(2).map(move |w| (*c, key(w[0], w[1]))))
        .collect();
    got.sort_unstable();
    let p = |id: i64| {
        let n = &nodes[(id - 1) as usize];
        (n.lat, n.lon)
    };
    let mut want: Vec<(u64, SegmentKey)> = [(1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (5, 1)]
        .iter()
        .map(|&(a, b)| (1, key(p(a), p(b))))
        .chain([(0, key(p(5), p(6))), (2, key(p(4), p(7)))])
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
    let bbox: Vec<f64> = serde_json::from_value(map["bbox"].clone()).unwrap();
    assert_eq!(bbox, vec![-30.003, -51.001, -30.0, -50.998]);
}

/// On the real map: many lines, every point inside the bbox, and the bbox is tight.
#[test]
fn the_real_map_decodes_inside_its_bbox() {
    let path = dispatch_core::testdata::porto_alegre_pbf();
    let file = std::fs::File::open(&path).unwrap();
    let net = RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default()).unwrap();
    let map: Value = serde_json::from_slice(&encode_map(&net)).unwrap();
    let lines = decode(&map);
    assert!(lines.len() > 1_000, "{} lines", lines.len());
    let bbox: Vec<f64> = serde_json::from_value(map["bbox"].clone()).unwrap();
    let (mut lo_lat, mut lo_lon, mut hi_lat, mut hi_lon) = (90.0f64, 180.0f64, -90.0f64, -180.0f64);
    let mut length_m = 0.0;
    for (class, pts) in &lines {
        assert!(*class <= 2);
        assert!(pts.len() >= 2);
        for w in pts.windows(2) {
            length_m += haversine_m(
                dispatch_core::geo::LatLon {
                    lat: w[0].0,
                    lon: w[0].1,
                },
                dispatch_core::geo::LatLon {
                    lat: w[1].0,
                    lon: w[1].1,
                },
            );
        }
        for &(lat, lon) in pts {
            lo_lat = lo_lat.min(lat);
            hi_lat = hi_lat.max(lat);
            lo_lon = lo_lon.min(lon);
            hi_lon = hi_lon.max(lon);
        }
    }
    let tol = 1e-5;
    assert!(
        (lo_lat - bbox[0]).abs() < tol && (lo_lon - bbox[1]).abs() < tol,
        "{bbox:?}"
    );
    assert!(
        (hi_lat - bbox[2]).abs() < tol && (hi_lon - bbox[3]).abs() < tol,
        "{bbox:?}"
    );
    // The car network of the largest SCC alone is ~1,700 km (shared/data/README.md); foot-only
    // ways add some: the drawing must hold at least the car roads.
    assert!(length_m > 1_400_000.0, "{length_m} m drawn");
}

#[tokio::test]
async fn web_files_are_served_from_web_only_and_the_map_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("console")).unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("console/index.html"),
        "<!doctype html><title>c</title>",
    )
    .unwrap();
    std::fs::write(dir.path().join("console/app.js"), "export const x = 1;").unwrap();
    std::fs::write(dir.path().join("tests/secret.mjs"), "SECRET-CONTENT").unwrap();
    let nodes = vec![node(1, -30.0, -51.0), node(2, -30.0, -50.999)];
    let ways = vec![way(1, &[1, 2], &[("highway", "residential")])];
    let net = RoadNetwork::from_elements(&nodes, &ways, &RoadConfig::default()).unwrap();
    let mut site = Site::new(&net);
    site.dir = Some(dir.path().to_path_buf());
    let app = dispatch_server::web::routes::<()>(site);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let get = |path: &str, extra: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n");
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.unwrap();
            let text = String::from_utf8_lossy(&out).into_owned();
            let status: u16 = text[9..12].parse().unwrap();
            (status, text)
        }
    };
    let (s, r) = get("/console/", "").await;
    assert_eq!(s, 200, "{r}");
    assert!(r.to_lowercase().contains("content-type: text/html"), "{r}");
    assert!(
        r.to_lowercase().contains("referrer-policy: no-referrer"),
        "{r}"
    );
    let (s, r) = get("/console/app.js", "").await;
    assert_eq!(s, 200, "{r}");
    assert!(
        r.to_lowercase().contains("content-type: text/javascript"),
        "{r}"
    );
    let (s, r) = get("/console", "").await;
    assert_eq!(s, 308, "{r}");
    assert!(r.to_lowercase().contains("location: /console/"), "{r}");
    for bad in [
        "/console/../tests/secret.mjs",
        "/console/%2e%2e/tests/secret.mjs",
        "/tests/secret.mjs",
        "/console/.hidden",
        "/console/nope.js",
    ] {
        let (s, r) = get(bad, "").await;
        assert!(s == 404 || s == 400, "{bad}: {r}");
        assert!(!r.contains("SECRET-CONTENT"), "{bad} leaked a file: {r}");
    }
    let (s, r) = get("/v1/map", "").await;
    assert_eq!(s, 200, "{r}");
    assert!(r.contains("© OpenStreetMap contributors"), "{r}");
    let (s, r) = get("/v1/map", "Accept-Encoding: gzip, deflate\r\n").await;
    assert_eq!(s, 200, "{r}");
    assert!(r.to_lowercase().contains("content-encoding: gzip"), "{r}");
    server.abort();
}

#[tokio::test]
async fn the_console_reads_clocks_candidates_and_the_elder() {
    let server = TestServer::start().await;
    let mut phones = Vec::new(); // kept open: on duty while the test runs
    for id in ["V1", "V2", "V3", "V4"] {
        let mut c = server.connect(id).await;
        let (r, _) = c
            .request(json!({"type": "availability", "status": "available"}), "on")
            .await;
        assert_eq!(r["type"], "ack", "{r}");
        phones.push(c);
    }
    let mut a1 = server.connect("A1").await;
    a1.request(json!({"type": "availability", "status": "available"}), "on")
        .await;
    // E2 is care level 2: no ambulance at once, so A1 stays a candidate.
    let (status, acc) = server.post_alert("GW1", &fall("f-e2", "E2")).await;
    assert_eq!(status, 202, "{acc}");
    let incident = acc["incident_id"].as_u64().unwrap();

    let mut op = server.connect("OP1").await;
    let (snap, _) = op.request(json!({"type": "subscribe"}), "s").await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let state = &snap["state"];
    assert_eq!(state["sla_ms"]["first_accept"], 30_000, "{state}");
    assert_eq!(state["sla_ms"]["community_on_scene"], 180_000);
    assert_eq!(state["sla_ms"]["ambulance_on_scene"], 660_000);
    let inc = state["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == incident)
        .expect("the incident is in the snapshot");
    assert_eq!(inc["care_level"], 2);
    let opened = inc["opened_at"].as_i64().unwrap();
    let clocks = inc["clocks"].as_array().expect("clocks");
    let slas: Vec<&str> = clocks.iter().filter_map(|c| c["sla"].as_str()).collect();
    assert_eq!(
        slas,
        ["first_accept", "community_on_scene"],
        "no ambulance clock yet: {inc}"
    );
    assert_eq!(clocks[0]["deadline"].as_i64(), Some(opened + 30_000));
    assert_eq!(clocks[1]["deadline"].as_i64(), Some(opened + 180_000));
    assert!(clocks
        .iter()
        .all(|c| c["met_at"].is_null() && c["breached"] == false));

    // Candidates: best ETA first, the ambulance among them, only people assign accepts.
    let (c, _) = op
        .request(
            json!({"type": "candidates", "incident_id": incident, "limit": 10}),
            "c",
        )
        .await;
    assert_eq!(c["type"], "candidates", "{c}");
    assert_eq!(c["incident_id"], incident);
    let list = c["candidates"].as_array().unwrap();
    assert!(!list.is_empty(), "{c}");
    let etas: Vec<u64> = list.iter().map(|x| x["eta_s"].as_u64().unwrap()).collect();
    assert!(etas.windows(2).all(|w| w[0] <= w[1]), "{etas:?}");
    let ids: BTreeSet<&str> = list
        .iter()
        .filter_map(|x| x["responder_id"].as_str())
        .collect();
    assert!(ids.contains("A1"), "{ids:?}");
    assert!(
        ids.iter()
            .all(|i| ["V1", "V2", "V3", "V4", "A1"].contains(i)),
        "{ids:?}"
    );
    let (c1, _) = op
        .request(
            json!({"type": "candidates", "incident_id": incident, "limit": 1}),
            "c1",
        )
        .await;
    assert_eq!(c1["candidates"].as_array().map(Vec::len), Some(1), "{c1}");
    // Assigning the ambulance from the list works, and it is no longer a candidate.
    let (ack, _) = op
        .request(
            json!({"type": "assign", "incident_id": incident, "responder_id": "A1"}),
            "as",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (c2, _) = op
        .request(json!({"type": "candidates", "incident_id": incident}), "c2")
        .await;
    assert!(
        c2["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["responder_id"] != "A1"),
        "{c2}"
    );
    // The assigned ambulance's phone learns whose door it is (an offer's exact fields, with
    // no elder id, are pinned by server.rs's whole-flow test).
    let (assigned, _) = a1.recv_until("assigned", |_| true).await;
    assert_eq!(assigned["elder_id"], "E2", "{assigned}");
    // Bad requests get clear errors and change nothing.
    let (e, _) = op
        .request(json!({"type": "candidates", "incident_id": 999_999}), "bad")
        .await;
    assert_eq!(e["code"], "unknown_incident", "{e}");
    let (e, _) = op.request(json!({"type": "candidates"}), "bad2").await;
    assert_eq!(e["code"], "bad_field", "{e}");
    let mut gw = server.connect("GW1").await;
    let (e, _) = gw
        .request(json!({"type": "candidates", "incident_id": incident}), "gw")
        .await;
    assert_eq!(e["code"], "forbidden", "{e}");

    // The incident's detail names the elder and their familiar people.
    let (status, view) = server
        .http(
            "GET",
            &format!("/v1/incidents/{incident}"),
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["elder"]["id"], "E2", "{view}");
    assert_eq!(view["elder"]["care_level"], 2);
    assert_eq!(view["elder"]["grid_id"], "G2");
    let clocks = view["summary"]["clocks"].as_array().unwrap();
    assert_eq!(
        clocks.len(),
        3,
        "the ambulance clock once assigned: {clocks:?}"
    );
    assert_eq!(clocks[2]["sla"], "ambulance_on_scene");
    server.stop().await;
}

#[tokio::test]
async fn a_time_bank_without_credit_is_zero_and_an_unknown_responder_404() {
    let server = TestServer::start().await;
    let (s, bank) = server
        .http(
            "GET",
            "/v1/responders/V4/time-bank",
            Some(&token("V4")),
            None,
        )
        .await;
    assert_eq!(s, 200, "{bank}");
    assert_eq!(bank["balance_minutes"], 0);
    assert_eq!(bank["history"], json!([]));
    let (s, e) = server
        .http(
            "GET",
            "/v1/responders/V999/time-bank",
            Some(&token("OP1")),
            None,
        )
        .await;
    assert_eq!(s, 404, "{e}");
    assert_eq!(e["code"], "unknown_responder");
    server.stop().await;
}

/// `GET /v1/whoami`: what the console asks before it connects. Before it, the console probed
/// `GET /v1/incidents/0`, whose expected `404` showed in every browser's console as a failed
/// request on every connect (found running the demo on another city's map).
#[tokio::test]
async fn whoami_names_the_token_holder_and_refuses_a_wrong_token() {
    let server = TestServer::start().await;
    let (s, me) = server
        .http("GET", "/v1/whoami", Some(&token("OP1")), None)
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        me,
        json!({"role": "operator", "id": "OP1", "roles": ["dispatch", "people", "care"]})
    );
    let (s, me) = server
        .http("GET", "/v1/whoami", Some(&token("V1")), None)
        .await;
    assert_eq!((s, me), (200, json!({"role": "responder", "id": "V1"})));
    let (s, me) = server
        .http("GET", "/v1/whoami", Some(&token("GW1")), None)
        .await;
    assert_eq!((s, me), (200, json!({"role": "device", "id": "GW1"})));
    // the query form browsers use for WebSockets works here too
    let (s, me) = server
        .http(
            "GET",
            &format!("/v1/whoami?access_token={}", token("OP2")),
            None,
            None,
        )
        .await;
    assert_eq!((s, me["id"].clone()), (200, json!("OP2")));
    for bad in [Some("not-a-token"), None] {
        let (s, e) = server.http("GET", "/v1/whoami", bad, None).await;
        assert_eq!(s, 401, "{e}");
        assert_eq!(e["code"], "unauthorized");
    }
    server.stop().await;
}
