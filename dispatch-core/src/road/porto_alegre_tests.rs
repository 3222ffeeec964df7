//! Tests on the real Porto Alegre extract: counts against `../shared/data/README.md`, and
//! exact routing against the Dijkstra oracle.

use super::*;
use std::sync::OnceLock;

/// The Porto Alegre network, built once for every test in this crate.
pub(crate) fn porto_alegre() -> &'static RoadNetwork {
    static NET: OnceLock<RoadNetwork> = OnceLock::new();
    NET.get_or_init(|| {
        let file = std::fs::File::open(crate::testdata::porto_alegre_pbf())
            .expect("../shared/data/porto_alegre.osm.pbf beside the checkout");
        RoadNetwork::from_pbf(std::io::BufReader::new(file), &RoadConfig::default()).unwrap()
    })
}

fn porto_alegre_elements() -> (Vec<OsmNode>, Vec<OsmWay>) {
    let file = std::fs::File::open(crate::testdata::porto_alegre_pbf()).unwrap();
    osm::read_pbf(std::io::BufReader::new(file)).unwrap()
}

fn tag<'a>(w: &'a OsmWay, key: &str) -> Option<&'a str> {
    w.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Our car profile drops `access`/`motor_vehicle`/`motorcar` = `no|private`, so it is the
/// README's "public only" row. Its one-way definition differs from ours on `oneway=-1`
/// (direction only) and on `oneway=no` motorways, and ours adds implied one-way
/// `motorway_link`; the extract has no `-1` and its motorway links are tagged one-way, so the
/// counts must agree exactly.
#[test]
fn car_graph_matches_the_readme_public_only_row() {
    let s = porto_alegre().stats().car;
    // 12,283 car-road ways, 1,054 of them closed to the public.
    assert_eq!(s.ways, 12_283 - 1_054);
    assert_eq!(
        (s.vertices_all, s.segments_all, s.arcs_all, s.vertices),
        (30_499, 35_797, 58_619, 29_820)
    );
    assert_eq!((s.segments_missing_node, s.segments_repeated_node), (0, 0));
    assert_eq!(porto_alegre().stats().nodes, 43_264);
}

/// The README's "all car roads" row, with the README's own definitions: no access filter, and
/// one-way on `oneway=yes|1|true|-1`, `junction=roundabout` or `highway=motorway` (not
/// `motorway_link`, and even on a motorway tagged `oneway=no`). Our configuration can express
/// all of that except "`oneway=no` on a motorway is still one-way", so the test first checks
/// that this extract has no such motorway.
#[test]
fn all_car_roads_match_the_readme_with_its_definitions() {
    let (nodes, ways) = porto_alegre_elements();
    assert!(!ways
        .iter()
        .any(|w| tag(w, "highway") == Some("motorway") && tag(w, "oneway") == Some("no")));
    let mut cfg = RoadConfig::default();
    cfg.car_closed_access.clear();
    cfg.car_implied_oneway = vec!["motorway".into()];
    let all = ImportedRoads::from_elements(&nodes, &ways, &cfg).unwrap();
    let s = all.stats().car;
    assert_eq!(s.ways, 12_283);
    assert_eq!(
        (s.vertices_all, s.segments_all, s.arcs_all, s.vertices),
        (32_701, 38_606, 63_443, 32_066)
    );
    // The README's car-road definition, counted straight from the tags.
    let classes = RoadConfig::default().car_class_kmh;
    let car_ways = ways
        .iter()
        .filter(|w| tag(w, "highway").is_some_and(|h| classes.contains_key(h)))
        .filter(|w| tag(w, "area") != Some("yes"))
        .count();
    assert_eq!(car_ways, 12_283);
}

/// The foot graph has no README row; it must at least contain every public car road that
/// walkers may use, and be symmetric.
#[test]
fn foot_graph_is_two_way_and_larger_than_the_car_graph() {
    let s = porto_alegre().stats().foot;
    assert_eq!(s.arcs_all, 2 * s.segments_all);
    assert!(s.vertices > porto_alegre().stats().car.vertices);
}
