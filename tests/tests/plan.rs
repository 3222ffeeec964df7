//! `simulator plan` on the real Porto Alegre roads and population: the plan's recruits add
//! exactly the elders its greedy gains say, never lower coverage, and beat as many recruits
//! placed where people live; its recruits can be added to a run's roster.

use simulator::hexgrid::Hexgrid;
use simulator::plan::{add_recruits, make_plan, PlanParams};
use simulator::roads::Map;
use simulator::scenario::{generate, ScenarioParams};

#[test]
fn the_plan_adds_what_it_says_and_beats_recruiting_where_people_live() {
    let file = std::fs::File::open(dispatch_core::testdata::porto_alegre_pbf()).unwrap();
    let map = Map::from_pbf(std::io::BufReader::new(file)).unwrap();
    let text = std::fs::read_to_string(dispatch_core::testdata::porto_alegre_hexgrid()).unwrap();
    let grid = Hexgrid::parse(&text).unwrap();
    let params = ScenarioParams {
        seed: 3,
        elders: 800,
        volunteers: 150,
        ..ScenarioParams::default()
    };
    let scenario = generate(&grid, &params, &|p| map.snap_home(p)).unwrap();
    let foot_kmh = dispatch_core::road::RoadConfig::default().foot_kmh;
    let plan_with = |add: usize, miss_share: f64| {
        make_plan(
            map.net.clone(),
            foot_kmh,
            &scenario.roster,
            &grid,
            &PlanParams {
                add,
                walk_kmh: 4.2,
                seed: 3,
                weighted: false,
                miss_share,
            },
            &|p| map.snap_home(p),
        )
    };
    let plan = plan_with(12, 0.0).unwrap();
    // More recruits than places: refused, naming why.
    let too_many = plan_with(1_000_000, 0.5);
    assert!(
        matches!(&too_many, Err(simulator::plan::PlanError::Invalid(m)) if m.contains("candidate places")),
        "{too_many:?}"
    );
    assert_eq!(plan.recruits.len(), 12);
    assert_eq!(plan.random_recruits.len(), 12);
    assert_eq!(plan.before.elders, 800);
    // The greedy gains are exactly what the recruits add (same ETAs, same coverage).
    let gained: f64 = plan.recruits.iter().map(|r| r.gain).sum();
    assert_eq!(
        plan.after.elders_within_180_s - plan.before.elders_within_180_s,
        gained as u64,
        "{plan:?}"
    );
    // Each recruit adds no more than the one chosen before (greedy order).
    for w in plan.recruits.windows(2) {
        assert!(w[0].gain >= w[1].gain, "{:?}", plan.recruits);
    }
    assert!(plan.after.within_180_s > plan.before.within_180_s);
    assert!(plan.after.within_900_s >= plan.before.within_900_s);
    assert!(
        plan.after.within_180_s > plan.random_after.within_180_s,
        "plan {:?} vs naive {:?}",
        plan.after,
        plan.random_after
    );
    // The recruits join a roster the engine accepts.
    let mut roster = scenario.roster.clone();
    assert_eq!(add_recruits(&mut roster, &plan.recruits, 4.2), 12);
    dispatch_core::engine::Engine::new(
        map.net.clone(),
        roster,
        dispatch_core::policy::PolicyConfig::default(),
    )
    .expect("a roster with the recruits is valid");
    assert!(plan.to_markdown().contains("after (this plan)"));

    // Each responder missing half the time: the gains are the expected elders added.
    let robust = plan_with(12, 0.5).unwrap();
    let gained: f64 = robust.recruits.iter().map(|r| r.gain).sum();
    let expected =
        (robust.after.expected_within_180_s - robust.before.expected_within_180_s) * 800.0;
    assert!((gained - expected).abs() < 1e-6, "{gained} vs {expected}");
    assert!(robust.after.expected_within_180_s > robust.random_after.expected_within_180_s);
    let svg = plan.to_svg(&plan.after_points(map.net.clone(), foot_kmh, &scenario.roster));
    assert_eq!(svg.matches("fill=\"#f29900\"").count(), 12);
}
