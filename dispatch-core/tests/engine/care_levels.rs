//! Issue 12, gap 10: the five care levels steer an emergency's response (decision version 5):
//! waves, offer window, how wide the search goes, the familiarity margin and the SLA clocks,
//! from the built-in table (`CareLevelRule::builtin`) or a deployment's `care_levels`.
//! Straight-line roads: on foot, 1 m of straight line is about 1.04 s.

use crate::world::*;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::model::Sla;
use dispatch_core::policy::{CareLevelRule, PolicyConfig};

/// Six volunteers 100–600 m east of E1 (care level `level`), all on duty.
fn crowd(level: u8, config: PolicyConfig) -> Sim {
    let vs: Vec<_> = (1..=6)
        .map(|n| volunteer(&format!("V{n}"), at(100.0 * n as f64, 0.0)))
        .collect();
    let mut sim = Sim::new(
        straight(),
        roster(vs, vec![elder("E1", at(0.0, 0.0), "G1", level, &[])]),
        config,
    );
    sim.on_duty(&["V1", "V2", "V3", "V4", "V5", "V6"]);
    sim
}

fn expiries(ev: &[EventRecord]) -> Vec<i64> {
    ev.iter()
        .filter_map(|e| match &e.event {
            Event::OfferSent { expires_at, .. } => Some(expires_at.0 - e.at.0),
            _ => None,
        })
        .collect()
}

fn first_accept_breach(ev: &[EventRecord]) -> Option<i64> {
    ev.iter().find_map(|e| match &e.event {
        Event::SlaBreached {
            sla: Sla::FirstAccept,
            deadline,
            ..
        } => Some(deadline.0),
        _ => None,
    })
}

#[test]
fn a_level_5_fall_asks_more_people_at_once_and_sooner() {
    // Level 5: nobody accepts within 20 s, so the next wave goes while the first is still
    // open: 3 + 5 people asked at once by 20 s.
    let mut five = crowd(5, PolicyConfig::default());
    let t0 = five.now.0;
    five.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&five.events).len(), 3);
    let later = five.advance(20_000);
    assert_eq!(first_accept_breach(&later), Some(t0 + 20_000));
    assert_eq!(
        offered_to(&later).len(),
        3,
        "the rest of the crowd, at 20 s"
    );
    assert!(
        !later
            .iter()
            .any(|e| matches!(e.event, Event::OfferExpired { .. })),
        "the first wave is still open"
    );

    // Level 3: the general 30 s.
    let mut three = crowd(3, PolicyConfig::default());
    let t0 = three.now.0;
    three.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&three.events).len(), 3);
    assert!(expiries(&three.events).iter().all(|&ms| ms == 30_000));
    let quiet = three.advance(20_000);
    assert_eq!(first_accept_breach(&quiet), None);
    assert!(offered_to(&quiet).is_empty());
    assert_eq!(
        first_accept_breach(&three.advance(10_000)),
        Some(t0 + 30_000)
    );
}

#[test]
fn a_light_need_asks_nobody_beyond_its_search_width() {
    // V1 is 1.5 km away on foot: about 26 min, past level 1's 20-minute search.
    let far = || {
        let mut sim = Sim::new(
            straight(),
            roster(
                vec![volunteer("V1", at(1500.0, 0.0))],
                vec![
                    elder("E1", at(0.0, 0.0), "G1", 1, &[]),
                    elder("E4", at(0.0, 0.0), "G1", 4, &[]),
                ],
            ),
            PolicyConfig::default(),
        );
        sim.on_duty(&["V1"]);
        sim
    };
    let mut light = far();
    let ev = light.ok(fall("a1", "E1"));
    assert!(offered_to(&ev).is_empty(), "{ev:#?}");
    assert!(
        ev.iter().any(|e| matches!(&e.event,
            Event::NoResponderAvailable { reason, .. } if reason.contains("within 20 min by road (the care level 1 search)"))),
        "{ev:#?}"
    );
    let mut frail = far();
    let ev = frail.ok(fall("a1", "E4"));
    assert_eq!(offered_to(&ev), vec!["V1"], "level 4 has no search limit");
}

#[test]
fn the_familiarity_margin_narrows_as_the_care_level_rises() {
    // P1, paired with the elder, is about 42 s farther than the stranger S1.
    let run = |level: u8| {
        let mut sim = Sim::new(
            straight(),
            roster(
                vec![
                    volunteer("S1", at(100.0, 0.0)),
                    volunteer("P1", at(140.0, 0.0)),
                ],
                vec![elder("E1", at(0.0, 0.0), "G1", level, &["P1"])],
            ),
            PolicyConfig {
                wave_sizes: vec![1],
                acceptance_target: 0.0, // one at a time: the order is what is tested
                care_levels: vec![CareLevelRule {
                    level: 5,
                    wave_sizes: Some(vec![1]),
                    ..CareLevelRule::default()
                }],
                ..PolicyConfig::default()
            },
        );
        sim.on_duty(&["S1", "P1"]);
        let ev = sim.ok(fall("a1", "E1"));
        offered_to(&ev)
    };
    assert_eq!(run(3), vec!["P1"], "60 s margin: the familiar face");
    assert_eq!(run(4), vec!["P1"], "45 s margin: still the familiar face");
    assert_eq!(run(5), vec!["S1"], "30 s margin: the nearer stranger");
}

#[test]
fn a_deployment_overrides_a_level_field_by_field() {
    let config = PolicyConfig {
        acceptance_target: 0.0, // the level's wave as written, not widened
        care_levels: vec![CareLevelRule {
            level: 5,
            wave_sizes: Some(vec![2]),
            ..CareLevelRule::default()
        }],
        ..PolicyConfig::default()
    };
    let mut sim = crowd(5, config);
    let t0 = sim.now.0;
    sim.ok(fall("a1", "E1"));
    assert_eq!(offered_to(&sim.events).len(), 2, "the deployment's wave");
    assert!(expiries(&sim.events).iter().all(|&ms| ms == 30_000));
    assert_eq!(
        first_accept_breach(&sim.advance(20_000)),
        Some(t0 + 20_000),
        "the table's 20 s promise, not overridden"
    );
    let bad = PolicyConfig {
        care_levels: vec![CareLevelRule {
            level: 2,
            max_eta_ms: Some(1_000),
            ..CareLevelRule::default()
        }],
        ..PolicyConfig::default()
    };
    let err = bad.validate().unwrap_err();
    assert!(err.starts_with("care_levels.2.max_eta_ms"), "{err}");
}

#[test]
fn journals_of_version_4_replay_with_the_general_values() {
    let mut sim = crowd(5, PolicyConfig::default());
    sim.engine.set_decision_version(4);
    let t0 = sim.now.0;
    sim.ok(fall("a1", "E1"));
    assert_eq!(first_accept_breach(&sim.advance(20_000)), None);
    assert_eq!(first_accept_breach(&sim.advance(10_000)), Some(t0 + 30_000));
}
