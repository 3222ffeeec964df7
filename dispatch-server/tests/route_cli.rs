//! `dispatch route` end to end: the real binary on the real Porto Alegre map, its JSON lines
//! checked against the library, and every kind of bad input answered with a clear message
//! and a non-zero exit code.

use dispatch_core::geo::LatLon;
use dispatch_core::road::{Profile, RoadConfig, RoadNetwork};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn map() -> PathBuf {
    dispatch_core::testdata::porto_alegre_pbf()
}

fn network() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        let file = std::fs::File::open(map()).unwrap();
        RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default()).unwrap()
    })
}

fn dispatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .output()
        .expect("run the dispatch binary")
}

fn route(map: &Path, profile: &str, from: &str, to: &str) -> Output {
    let map = map.to_str().unwrap();
    dispatch(&[
        "route",
        "--map",
        map,
        "--profile",
        profile,
        "--from",
        from,
        "--to",
        to,
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure with a message containing `needle`, and no panic.
fn assert_fails(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The library's time for the same trip.
fn expected_ms(profile: Profile, from: (f64, f64), to: (f64, f64)) -> u64 {
    let g = network().profile(profile);
    let a = g.snap(LatLon::new(from.0, from.1).unwrap()).unwrap();
    let b = g.snap(LatLon::new(to.0, to.1).unwrap()).unwrap();
    g.route(&a, &b).unwrap().duration_ms
}

#[test]
fn one_route_per_profile_matches_the_library() {
    for (profile, name) in [(Profile::Car, "car"), (Profile::Foot, "foot")] {
        let o = route(&map(), name, "-30.03,-51.22", "-30.06, -51.18");
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout.clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ms = v["duration_ms"].as_u64().unwrap();
        assert_eq!(ms, expected_ms(profile, (-30.03, -51.22), (-30.06, -51.18)));
        assert!(v["distance_m"].as_f64().unwrap() > 4_000.0);
        let path = v["path"].as_array().unwrap();
        assert!(path.len() > 10);
        let first = path[0].as_array().unwrap();
        assert!((first[0].as_f64().unwrap() + 30.03).abs() < 0.01);
    }
}

#[test]
fn pairs_give_one_line_each_in_order_and_timings() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.csv");
    let trips = [
        ((-30.03, -51.22), (-30.06, -51.18)),
        ((-30.06, -51.18), (-30.03, -51.22)),
        ((-30.0277, -51.2287), (-30.0277, -51.2287)),
        ((-30.10, -51.20), (-30.00, -51.15)),
    ];
    let mut csv = String::from("from_lat,from_lon,to_lat,to_lon\n\n");
    for ((a, b), (c, d)) in trips {
        csv.push_str(&format!("{a},{b},{c},{d}\n\n"));
    }
    std::fs::write(&pairs, csv).unwrap();
    let o = dispatch(&[
        "route",
        "--map",
        map().to_str().unwrap(),
        "--profile",
        "car",
        "--pairs",
        pairs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), trips.len());
    for (line, (from, to)) in lines.iter().zip(trips) {
        assert_eq!(
            line["duration_ms"].as_u64().unwrap(),
            expected_ms(Profile::Car, from, to)
        );
    }
    assert_eq!(lines[2]["duration_ms"], 0);
    let err = stderr(&o);
    for word in ["build", "prepare", "p50", "p99"] {
        assert!(err.contains(word), "{err}");
    }
}

#[test]
fn a_missing_map_is_an_error() {
    let o = route(
        Path::new("/nonexistent/map.osm.pbf"),
        "car",
        "-30.03,-51.22",
        "-30.06,-51.18",
    );
    assert_fails(&o, "cannot open map /nonexistent/map.osm.pbf");
}

#[test]
fn a_file_that_is_not_pbf_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.osm.pbf");
    std::fs::write(&path, "just some text, not a map\n".repeat(20)).unwrap();
    let o = route(&path, "car", "-30.03,-51.22", "-30.06,-51.18");
    assert_fails(&o, "not a readable OSM PBF file");
}

#[test]
fn a_truncated_pbf_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.osm.pbf");
    let bytes = std::fs::read(map()).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let o = route(&path, "car", "-30.03,-51.22", "-30.06,-51.18");
    assert_fails(&o, "not a readable OSM PBF file");
}

#[test]
fn a_map_with_no_roads_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.osm.pbf");
    std::fs::write(&path, b"").unwrap();
    let o = route(&path, "car", "-30.03,-51.22", "-30.06,-51.18");
    assert_fails(&o, "no roads");
}

#[test]
fn bad_coordinates_are_errors() {
    let o = route(&map(), "car", "abc,-51.22", "-30.06,-51.18");
    assert_fails(&o, "--from \"abc,-51.22\"");
    assert_fails(&o, "not a number");
    let o = route(&map(), "car", "-30.03,-51.22", "-30.06");
    assert_fails(&o, "--to");
    let o = route(&map(), "car", "95,-51.22", "-30.06,-51.18");
    assert_fails(&o, "latitude 95");
    // A real position, but an ocean away from Porto Alegre.
    let o = route(&map(), "car", "0,0", "-30.06,-51.18");
    assert_fails(&o, "from the nearest car road");
}

#[test]
fn an_unknown_profile_is_an_error() {
    let o = route(&map(), "bike", "-30.03,-51.22", "-30.06,-51.18");
    assert_fails(&o, "unknown profile \"bike\"");
}

#[test]
fn a_malformed_pairs_line_is_reported_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.csv");
    let m = map();
    let run = |csv: &str| {
        std::fs::write(&pairs, csv).unwrap();
        let (m, p) = (m.to_str().unwrap(), pairs.to_str().unwrap());
        dispatch(&["route", "--map", m, "--profile", "foot", "--pairs", p])
    };
    let o = run("-30.03,-51.22,-30.06,-51.18\n\n-30.03,-51.22,-30.06\n");
    assert_fails(&o, "pairs.csv line 3");
    assert_fails(&o, "expected 4 comma-separated numbers");
    let o = run("-30.03,-51.22,-30.06,-51.18\n-30.03,x,-30.06,-51.18\n");
    assert_fails(&o, "pairs.csv line 2");
    let o = run("-30.03,-51.22,-30.06,-51.18\n-30.03,-51.22,10,10\n");
    assert_fails(&o, "pairs.csv line 2: to");
    let o = dispatch(&[
        "route",
        "--map",
        m.to_str().unwrap(),
        "--profile",
        "car",
        "--pairs",
        "/nonexistent.csv",
    ]);
    assert_fails(&o, "cannot read pairs file /nonexistent.csv");
}
