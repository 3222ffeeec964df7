//! Roads that change, through the engine on Porto Alegre: a closure laid by an operator
//! reroutes the next offer at once (equal to Dijkstra on the changed weights), holds only in
//! its window, is lifted by its timer or by an operator, survives a snapshot, and a bad
//! closure is refused changing nothing.

use crate::world::*;
use dispatch_core::closures::{ClosureEffect, RoadClosure};
use dispatch_core::command::Command;
use dispatch_core::engine::Engine;
use dispatch_core::error::CommandError;
use dispatch_core::event::Event;
use dispatch_core::geo::LatLon;
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::model::{Actor, TravelMode};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::{ClosureArea, Effect, Profile, ProfileOverlay, RoadConfig};
use dispatch_core::time::Timestamp;
use std::sync::Arc;

const HOUR: u64 = 3_600_000;

fn times() -> Arc<RoadTimes> {
    Arc::new(RoadTimes::new(
        porto_alegre_net(),
        RoadConfig::default().foot_kmh,
    ))
}

/// A grid worker by car 1.5 km from the elder, and the middle third of the road path
/// between them as a drawn line.
fn setup(times: Arc<RoadTimes>) -> (Sim, LatLon, LatLon, ClosureArea) {
    let (home, elder_home) = (at(1_200.0, 900.0), at(0.0, 0.0));
    let r = roster(
        vec![grid_worker("W1", TravelMode::Car, home, "G1")],
        vec![elder("E1", elder_home, "G1", 3, &[])],
    );
    let route = times.route(TravelMode::Car, home, elder_home).unwrap();
    let n = route.path.len();
    assert!(n > 6, "a path with a middle: {n} points");
    let area = ClosureArea::Line {
        points: route.path[n / 3..2 * n / 3].to_vec(),
        width_m: 10.0,
    };
    let sim = Sim::new(times, r, PolicyConfig::default());
    (sim, home, elder_home, area)
}

fn closure(id: &str, area: ClosureArea, from: Option<Timestamp>, to: Timestamp) -> RoadClosure {
    RoadClosure {
        closure_id: id.into(),
        area,
        effect: ClosureEffect::Closed,
        modes: vec![TravelMode::Car],
        starts_at: from,
        ends_at: to,
        reason: "road works".into(),
    }
}

fn close(c: RoadClosure) -> Command {
    Command::CloseRoad {
        by: Actor::Operator(op()),
        closure: c,
    }
}

/// The car time from `from` to `to` on Porto Alegre with `area` closed, by Dijkstra on the
/// changed weights, plus the same off-road legs the engine adds (read from times with no
/// closure laid).
fn oracle_ms(from: LatLon, to: LatLon, area: &ClosureArea) -> u64 {
    let net = porto_alegre_net();
    let g = net.profile(Profile::Car);
    let ov = ProfileOverlay::new(
        g.segments_in(area, net.projection())
            .into_iter()
            .map(|s| (s, Effect::Closed)),
    );
    let (f, t) = (g.snap(from).unwrap(), g.snap(to).unwrap());
    let off = self::times()
        .route(TravelMode::Car, from, to)
        .unwrap()
        .duration_ms
        - g.route(&f, &t).unwrap().duration_ms;
    g.route_dijkstra_with(&f, &t, &ov).unwrap().duration_ms + off
}

fn offer_eta_s(events: &[dispatch_core::event::EventRecord]) -> Option<u32> {
    events.iter().find_map(|e| match &e.event {
        Event::OfferSent { eta_s, .. } => Some(*eta_s),
        _ => None,
    })
}

#[test]
fn a_closure_reroutes_the_next_offer_exactly_and_lifts_when_its_window_ends() {
    let times = times();
    let (mut sim, home, elder_home, area) = setup(times.clone());
    let before = times.route(TravelMode::Car, home, elder_home).unwrap();
    let ends = sim.now.plus_ms(2 * HOUR);
    let ev = sim.ok(close(closure("works-1", area.clone(), None, ends)));
    let Event::RoadClosed {
        car_segments,
        foot_segments,
        ..
    } = &ev[0].event
    else {
        panic!("{ev:?}")
    };
    assert!(*car_segments > 0 && *foot_segments == 0, "cars only");

    // At once: the engine's own times go round it, exactly.
    let after = times.route(TravelMode::Car, home, elder_home).unwrap();
    let want = oracle_ms(home, elder_home, &area);
    assert_eq!(after.duration_ms, want);
    assert!(
        after.duration_ms > before.duration_ms,
        "the closure is on the way"
    );
    // Walking is not closed.
    assert_eq!(
        times.times_to(TravelMode::Foot, &[home], elder_home),
        RoadTimes::new(porto_alegre_net(), RoadConfig::default().foot_kmh).times_to(
            TravelMode::Foot,
            &[home],
            elder_home
        )
    );

    // The offer the next alert sends says so.
    sim.on_duty(&["W1"]);
    let ev = sim.ok(fall("a1", "E1"));
    assert_eq!(offer_eta_s(&ev), Some(((want + 500) / 1000) as u32));

    // Listed with its lines while it holds.
    let views = sim.engine.road_closures();
    assert_eq!(views.len(), 1);
    assert!(views[0].laid.holding && !views[0].lines.is_empty());

    // Its window ends: lifted by the engine, times as before.
    let ev = sim.advance(2 * HOUR + 1);
    assert!(ev.iter().any(|e| matches!(
        &e.event,
        Event::RoadReopened { closure_id, expired: true, by: Actor::Engine } if closure_id == "works-1"
    )));
    assert_eq!(
        times
            .route(TravelMode::Car, home, elder_home)
            .unwrap()
            .duration_ms,
        before.duration_ms
    );
    assert!(sim.engine.road_closures().is_empty());
}

#[test]
fn a_closure_waits_for_its_window_and_an_operator_may_lift_it_early() {
    let times = times();
    let (mut sim, home, elder_home, area) = setup(times.clone());
    let before = times.route(TravelMode::Car, home, elder_home).unwrap();
    let starts = sim.now.plus_ms(HOUR);
    let c = closure("works-2", area, Some(starts), starts.plus_ms(HOUR));
    sim.ok(close(c));
    assert!(!sim.engine.road_closures()[0].laid.holding);
    let car = |t: &RoadTimes| {
        t.route(TravelMode::Car, home, elder_home)
            .unwrap()
            .duration_ms
    };
    assert_eq!(car(&times), before.duration_ms, "not yet");
    sim.advance(HOUR);
    assert!(car(&times) > before.duration_ms, "now it holds");
    let ev = sim.ok(Command::ReopenRoad {
        by: Actor::Operator(op()),
        closure_id: "works-2".into(),
    });
    assert!(matches!(
        &ev[0].event,
        Event::RoadReopened { expired: false, .. }
    ));
    assert_eq!(car(&times), before.duration_ms);
    // Its timer went with it: nothing fires at the old end.
    assert!(sim.advance(2 * HOUR).is_empty());
}

#[test]
fn closures_survive_a_snapshot_and_a_new_engine_lays_them_again() {
    let times = times();
    let (mut sim, home, elder_home, area) = setup(times.clone());
    let slow = RoadClosure {
        effect: ClosureEffect::Slow { factor: 3.0 },
        modes: vec![TravelMode::Car, TravelMode::Foot],
        ..closure("flood", area, None, sim.now.plus_ms(HOUR))
    };
    sim.ok(close(slow));
    let laid = times.route(TravelMode::Car, home, elder_home).unwrap();
    let state = sim.engine.save_state();
    let json = serde_json::to_string(&state).unwrap();
    let fresh = self::times();
    let restored = Engine::restore_with_travel_times(
        fresh.clone(),
        PolicyConfig::default(),
        serde_json::from_str(&json).unwrap(),
    );
    assert_eq!(restored.road_closures(), sim.engine.road_closures());
    assert_eq!(
        fresh.route(TravelMode::Car, home, elder_home).unwrap(),
        laid,
        "the restored engine's times hold the slowdown"
    );
    // A snapshot from before road closures (no `closures` field) still loads.
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old.as_object_mut().unwrap().remove("closures");
    let e = Engine::restore_with_travel_times(
        self::times(),
        PolicyConfig::default(),
        serde_json::from_value(old).unwrap(),
    );
    assert!(e.road_closures().is_empty());
}

#[test]
fn a_bad_closure_is_refused_and_changes_nothing() {
    let times = times();
    let (mut sim, home, elder_home, area) = setup(times.clone());
    let before = times.route(TravelMode::Car, home, elder_home).unwrap();
    let seq = sim.engine.last_seq();
    let now = sim.now;
    let far = ClosureArea::Polygon {
        points: vec![
            LatLon::new(10.0, 10.0).unwrap(),
            LatLon::new(10.0, 10.01).unwrap(),
            LatLon::new(10.01, 10.0).unwrap(),
        ],
    };
    let bad = [
        closure("past", area.clone(), None, now),
        closure("bad id!", area.clone(), None, now.plus_ms(HOUR)),
        closure("nowhere", far, None, now.plus_ms(HOUR)),
        closure(
            "backwards",
            area.clone(),
            Some(now.plus_ms(2 * HOUR)),
            now.plus_ms(HOUR),
        ),
        RoadClosure {
            effect: ClosureEffect::Slow { factor: 0.5 },
            ..closure("faster", area.clone(), None, now.plus_ms(HOUR))
        },
        RoadClosure {
            modes: vec![],
            ..closure("nobody", area.clone(), None, now.plus_ms(HOUR))
        },
        closure("forever", area.clone(), None, now.plus_ms(91 * 24 * HOUR)),
        closure(
            "typo-year",
            area.clone(),
            Some(now.plus_ms(365 * 24 * HOUR)),
            now.plus_ms(366 * 24 * HOUR),
        ),
    ];
    for c in bad {
        let id = c.closure_id.clone();
        let r = sim.cmd(close(c));
        assert!(matches!(r, Err(CommandError::Invalid(_))), "{id}: {r:?}");
    }
    // Only operators (or the engine) lay closures.
    let r = sim.cmd(Command::CloseRoad {
        by: Actor::Responder(rid("W1")),
        closure: closure("mine", area, None, now.plus_ms(HOUR)),
    });
    assert!(r.is_err());
    let r = sim.cmd(Command::ReopenRoad {
        by: Actor::Operator(op()),
        closure_id: "never-laid".into(),
    });
    assert!(matches!(r, Err(CommandError::UnknownClosure(_))), "{r:?}");
    assert_eq!(sim.engine.last_seq(), seq, "no event");
    assert!(sim.engine.road_closures().is_empty());
    assert_eq!(
        times.route(TravelMode::Car, home, elder_home).unwrap(),
        before
    );
}

/// With no closure, ranking's times come from kept search spaces for a call of up to 64
/// responders and from one many-to-one sweep for more (or once the incident's sweep is
/// kept). Whichever way a time is read, it is the same, and the route's own time.
#[test]
fn ranking_times_are_the_same_from_search_spaces_and_from_a_sweep() {
    // A network of its own: a clone starts with empty caches, so no other test's sweeps
    // can be found or push this one's out.
    let net = Arc::new((*porto_alegre_net()).clone());
    let times = || Arc::new(RoadTimes::new(net.clone(), RoadConfig::default().foot_kmh));
    for (mode, profile) in [
        (TravelMode::Foot, Profile::Foot),
        (TravelMode::Car, Profile::Car),
    ] {
        let sources: Vec<LatLon> = (0..100)
            .map(|i| at(-900.0 + 19.0 * i as f64, 700.0 - 13.0 * (i % 9) as f64))
            .collect();
        let target = at(150.0, -220.0);
        let snapped = net.profile(profile).snap(target).unwrap();
        // Ten at a time while no sweep of the target is kept: spaces (searched, then kept).
        assert!(!net.profile(profile).has_sweep_to(&snapped));
        let mut spaced = Vec::new();
        for chunk in sources.chunks(10) {
            spaced.extend(times().times_to(mode, chunk, target));
        }
        assert!(!net.profile(profile).has_sweep_to(&snapped), "{mode:?}");
        // 100 sources at once: past the spaces' 64, so a sweep.
        let swept = times().times_to(mode, &sources, target);
        assert!(net.profile(profile).has_sweep_to(&snapped), "{mode:?}");
        assert_eq!(spaced, swept, "{mode:?}");
        for (i, &s) in sources.iter().enumerate().step_by(11) {
            let routed = times().route(mode, s, target).map(|r| r.duration_ms);
            assert_eq!(spaced[i], routed, "{mode:?} source {i}");
        }
        assert!(swept.iter().filter(|t| t.is_some()).count() >= 90);
    }
}
