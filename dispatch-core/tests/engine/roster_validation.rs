//! Roster validation: a bad roster is refused with a message naming the offending entry; a
//! good one indexes tokens for the server's auth lookup.

use crate::world::*;
use dispatch_core::engine::Engine;
use dispatch_core::geo::LatLon;
use dispatch_core::policy::PolicyConfig;
use dispatch_core::roster::{Principal, RosterError, RosterFile};

fn refuse(r: RosterFile) -> RosterError {
    match Engine::with_travel_times(straight(), r, PolicyConfig::default()) {
        Err(e) => e,
        Ok(_) => panic!("roster accepted"),
    }
}

#[test]
fn unknown_grid_is_refused_naming_the_entry() {
    let e = refuse(roster(
        vec![],
        vec![elder("E1", at(0.0, 0.0), "G9", 2, &[])],
    ));
    assert!(matches!(&e, RosterError::UnknownGrid { grid, .. } if grid.as_str() == "G9"));
    assert_eq!(e.to_string(), "elder E1: unknown grid G9");
    let mut w = volunteer("V1", at(0.0, 0.0));
    w.grid_id = Some(grid("G7"));
    assert_eq!(
        refuse(roster(vec![w], vec![])).to_string(),
        "responder V1: unknown grid G7"
    );
}

#[test]
fn unknown_paired_responder_is_refused() {
    let e = refuse(roster(
        vec![],
        vec![elder("E1", at(0.0, 0.0), "G1", 2, &["V404"])],
    ));
    assert_eq!(e.to_string(), "elder E1: unknown paired responder V404");
}

#[test]
fn duplicate_ids_are_refused() {
    let e = refuse(roster(
        vec![
            volunteer("V1", at(0.0, 0.0)),
            volunteer("V1", at(10.0, 0.0)),
        ],
        vec![],
    ));
    assert_eq!(e.to_string(), "duplicate id V1 (responder)");
    let e = refuse(roster(
        vec![],
        vec![
            elder("E1", at(0.0, 0.0), "G1", 2, &[]),
            elder("E1", at(0.0, 0.0), "G1", 2, &[]),
        ],
    ));
    assert!(matches!(e, RosterError::DuplicateId { what: "elder", .. }));
}

#[test]
fn off_map_positions_are_refused() {
    let e = refuse(roster(
        vec![volunteer("V1", LatLon::new(48.85, 2.35).unwrap())],
        vec![],
    ));
    assert!(
        matches!(&e, RosterError::OffMap { entry, .. } if entry == "responder V1"),
        "{e}"
    );
    let e = refuse(roster(
        vec![],
        vec![elder(
            "E1",
            LatLon {
                lat: -300.0,
                lon: 0.0,
            },
            "G1",
            2,
            &[],
        )],
    ));
    assert!(e.to_string().starts_with("elder E1:"), "{e}");
    let e = refuse(roster(
        vec![],
        vec![elder("E1", at(0.0, 0.0), "G1", 7, &[])],
    ));
    assert_eq!(e.to_string(), "elder E1: care_level 7 is not in 1..=5");
}

#[test]
fn token_digests_resolve_to_their_holder() {
    let mut v = volunteer("V1", at(0.0, 0.0));
    v.token_sha256 = Some(digest(3).to_uppercase());
    let e = Engine::with_travel_times(straight(), roster(vec![v], vec![]), PolicyConfig::default())
        .unwrap();
    let r = e.roster();
    assert_eq!(
        r.principal_for_digest(&digest(1)),
        Some(&Principal::Operator(op()))
    );
    assert_eq!(
        r.principal_for_digest(&digest(2)),
        Some(&Principal::Device(gw()))
    );
    assert_eq!(
        r.principal_for_digest(&digest(3)),
        Some(&Principal::Responder(rid("V1")))
    );
    assert_eq!(r.principal_for_digest(&digest(4)), None);
    let mut bad = volunteer("V2", at(0.0, 0.0));
    bad.token_sha256 = Some("xyz".into());
    assert_eq!(
        refuse(roster(vec![bad], vec![])).to_string(),
        "responder V2: token_sha256 is not 64 hex digits"
    );
}
