//! The roster file's JSON Schema (`docs/roster.schema.json`) is derived from the same types
//! serde reads the file with, so the published schema and the server agree by construction.
//! These tests keep the published file equal to the derived one (re-bless with
//! `UPDATE_SCHEMA=1` after a change to the roster types), and check, case by case, that what
//! the schema refuses the server refuses too. What no schema can say (an unknown grid, a
//! duplicate id, a position off the map, a paired responder who does not exist) only the
//! server checks; `docs/deploy.md` says so.

use dispatch_core::geo::LatLon;
use dispatch_core::roster::{Roster, RosterFile};
use serde_json::{json, Value};
use std::path::PathBuf;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn derived() -> Value {
    serde_json::to_value(schemars::schema_for!(RosterFile)).expect("a schema is JSON")
}

fn anywhere(_: LatLon) -> Result<(), String> {
    Ok(())
}

/// What the server says of a roster text: `Ok` or its first error.
fn server(v: &Value) -> Result<(), String> {
    let file: RosterFile = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    Roster::from_file(file, &anywhere)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn the_published_schema_is_the_derived_one() {
    let path = docs().join("roster.schema.json");
    let want = serde_json::to_string_pretty(&derived()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not the schema of the roster types: run \
         UPDATE_SCHEMA=1 cargo test -p dispatch-core --test roster_schema and commit it",
        path.display()
    );
}

#[test]
fn the_example_rosters_are_valid_for_both() {
    let schema = jsonschema::validator_for(&derived()).expect("the schema compiles");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in [
        "docs/roster.example.json",
        "dispatch-server/tests/fixtures/journal-v1/roster.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
        assert_eq!(server(&v), Ok(()), "{file}");
    }
}

/// Changes a valid roster so that it breaks one rule.
type Breaker = Box<dyn Fn(&mut Value)>;

/// Each case breaks one rule the schema states; the server must refuse it as well.
#[test]
fn what_the_schema_refuses_the_server_refuses() {
    let schema = jsonschema::validator_for(&derived()).expect("the schema compiles");
    let digest = "ab".repeat(32);
    let good = json!({
        "grids": [{"id": "G1"}],
        "responders": [{"id": "V1", "kind": "volunteer", "travel_mode": "foot",
                        "home": {"lat": -30.0, "lon": -51.2}, "token_sha256": digest}],
        "elders": [{"id": "E1", "home": {"lat": -30.0, "lon": -51.2}, "grid_id": "G1",
                    "care_level": 3}],
        "operators": [{"id": "OP1", "token_sha256": digest}],
        "devices": [{"id": "GW1", "token_sha256": digest}]
    });
    assert!(schema.is_valid(&good));
    assert_eq!(server(&good), Ok(()));
    // Roles are optional; listed, they restrict.
    let mut restricted = good.clone();
    restricted["operators"][0]["roles"] = json!(["people", "care"]);
    assert!(schema.is_valid(&restricted));
    assert_eq!(server(&restricted), Ok(()));
    // A care plan is optional; a good one passes both.
    let mut planned = good.clone();
    planned["elders"][0]["care_plan"] = json!([{"id": "weekly-visit", "kind": "visit",
        "period": "week", "planned_responder": "V1",
        "window": {"from_day": 1, "to_day": 5, "from": "09:00", "to": "17:00"}}]);
    assert!(schema.is_valid(&planned));
    assert_eq!(server(&planned), Ok(()));
    // A check-in schedule is optional; a good one passes both.
    let mut scheduled = good.clone();
    scheduled["elders"][0]["check_in_by"] = json!("10:00");
    assert!(schema.is_valid(&scheduled));
    assert_eq!(server(&scheduled), Ok(()));
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "a check-in time that is not a time of day",
            Box::new(|v| v["elders"][0]["check_in_by"] = json!("24:30")),
        ),
        (
            "a check-in time without minutes",
            Box::new(|v| v["elders"][0]["check_in_by"] = json!("9")),
        ),
        (
            "a care-plan item with an unknown field",
            Box::new(|v| {
                v["elders"][0]["care_plan"] =
                    json!([{"id": "a", "kind": "visit", "period": "week", "every": 2}])
            }),
        ),
        (
            "a care-plan item id with a space",
            Box::new(|v| {
                v["elders"][0]["care_plan"] =
                    json!([{"id": "a b", "kind": "call", "period": "day"}])
            }),
        ),
        (
            "a care-plan window closing at 25:00",
            Box::new(|v| {
                v["elders"][0]["care_plan"] = json!([{"id": "a", "kind": "call", "period": "day",
                    "window": {"to": "25:00"}}])
            }),
        ),
        (
            "an unknown care-plan period",
            Box::new(|v| {
                v["elders"][0]["care_plan"] = json!([{"id": "a", "kind": "call", "period": "year"}])
            }),
        ),
        (
            "an unknown top-level key",
            Box::new(|v| v["shifts"] = json!([])),
        ),
        (
            "an unknown responder field",
            Box::new(|v| v["responders"][0]["age"] = json!(63)),
        ),
        (
            "an unknown kind",
            Box::new(|v| v["responders"][0]["kind"] = json!("doctor")),
        ),
        (
            "an unknown travel mode",
            Box::new(|v| v["responders"][0]["travel_mode"] = json!("boat")),
        ),
        (
            "care level 0",
            Box::new(|v| v["elders"][0]["care_level"] = json!(0)),
        ),
        (
            "care level 6",
            Box::new(|v| v["elders"][0]["care_level"] = json!(6)),
        ),
        (
            "a latitude of 95",
            Box::new(|v| v["elders"][0]["home"]["lat"] = json!(95.0)),
        ),
        (
            "a longitude of -181",
            Box::new(|v| v["responders"][0]["home"]["lon"] = json!(-181.0)),
        ),
        (
            "walking at 0 km/h",
            Box::new(|v| v["responders"][0]["walk_kmh"] = json!(0.0)),
        ),
        (
            "walking at 31 km/h",
            Box::new(|v| v["responders"][0]["walk_kmh"] = json!(31.0)),
        ),
        (
            "a short digest",
            Box::new(|v| v["operators"][0]["token_sha256"] = json!("abc")),
        ),
        (
            "a digest that is not hex",
            Box::new(|v| v["devices"][0]["token_sha256"] = json!("z".repeat(64))),
        ),
        (
            "an elder without a grid",
            Box::new(|v| {
                v["elders"][0].as_object_mut().unwrap().remove("grid_id");
            }),
        ),
        (
            "a responder without an id",
            Box::new(|v| {
                v["responders"][0].as_object_mut().unwrap().remove("id");
            }),
        ),
        (
            "an id that is a number",
            Box::new(|v| v["grids"][0]["id"] = json!(7)),
        ),
        (
            "an unknown operator role",
            Box::new(|v| v["operators"][0]["roles"] = json!(["people", "admin"])),
        ),
        (
            "an empty list of roles",
            Box::new(|v| v["operators"][0]["roles"] = json!([])),
        ),
        (
            "a role listed twice",
            Box::new(|v| v["operators"][0]["roles"] = json!(["people", "people"])),
        ),
        (
            "roles that are not a list",
            Box::new(|v| v["operators"][0]["roles"] = json!("people")),
        ),
    ];
    for (what, break_it) in cases {
        let mut v = good.clone();
        break_it(&mut v);
        assert!(!schema.is_valid(&v), "the schema accepts {what}");
        assert!(server(&v).is_err(), "the server accepts {what}");
    }
}
