//! `simulator run` without the command line: the same scenario through every policy, each on
//! its own fresh `Engine`, scored and written out (report.json, summary.md, SVG charts).

use crate::behaviour::BehaviourParams;
use crate::chart::{ecdf_svg, Curve};
use crate::kpi::{AMBULANCE_ON_SCENE_TARGET_S, COMMUNITY_ON_SCENE_TARGET_S};
use crate::report::{run_policy, PolicyRun, Report, ScenarioSummary};
use crate::scenario::Scenario;
use anyhow::Context as _;
use dispatch_core::engine::Engine;
use dispatch_core::policy::{MatchingMode, PolicyConfig};
use dispatch_core::road::RoadNetwork;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The straight-line radius of the baseline ("what volunteer apps do today").
pub const BASELINE_RADIUS_M: f64 = 500.0;

/// The policies compared: ours, and the radius baseline ("the 3 nearest by straight line
/// within the radius, then the next 3": waves of 3) with everything else equal.
pub fn policies(radius_m: f64) -> Vec<(String, PolicyConfig)> {
    let ours = PolicyConfig::default();
    let baseline = PolicyConfig {
        matching: MatchingMode::NearestRadius {
            radius_m,
            replace: false,
        },
        wave_sizes: vec![3],
        ..PolicyConfig::default()
    };
    vec![
        ("engine".to_string(), ours),
        ("nearest_radius".to_string(), baseline),
    ]
}

/// The published baselines beside the radius rule (`simulator run --more-baselines`):
/// `everyone_800m`, every eligible responder within 800 m straight line asked at once (one
/// wave as large as the roster), then again as offers run out; `alert7_replace_1km`, the 7
/// nearest within 1 km, each decline or expiry replaced at once by the next nearest (GoodSAM
/// New Zealand, van den Berg et al., PLOS One 2026).
pub fn more_baselines(roster_size: usize) -> Vec<(String, PolicyConfig)> {
    vec![
        (
            "everyone_800m".to_string(),
            PolicyConfig {
                matching: MatchingMode::NearestRadius {
                    radius_m: 800.0,
                    replace: false,
                },
                wave_sizes: vec![roster_size.max(1) as u32],
                ..PolicyConfig::default()
            },
        ),
        (
            "alert7_replace_1km".to_string(),
            PolicyConfig {
                matching: MatchingMode::NearestRadius {
                    radius_m: 1000.0,
                    replace: true,
                },
                wave_sizes: vec![7],
                ..PolicyConfig::default()
            },
        ),
    ]
}

/// Runs `scenario` under each policy and builds the report.
pub fn run_all(
    scenario: &Scenario,
    behaviour: &BehaviourParams,
    roads: Arc<RoadNetwork>,
    policies: &[(String, PolicyConfig)],
    map: &str,
    population: &str,
) -> anyhow::Result<(Report, BTreeMap<String, PolicyRun>)> {
    let mut runs = BTreeMap::new();
    for (name, config) in policies {
        let mut engine = Engine::new(roads.clone(), scenario.roster.clone(), config.clone())
            .with_context(|| format!("the engine refused the generated roster (policy {name})"))?;
        let run = run_policy(scenario, behaviour, &mut engine)
            .with_context(|| format!("policy {name}"))?;
        runs.insert(name.clone(), run);
    }
    let report = Report {
        scenario: ScenarioSummary::new(scenario, map, population),
        behaviour: behaviour.clone(),
        policies: runs
            .iter()
            .map(|(k, v)| (k.clone(), v.report.clone()))
            .collect(),
    };
    Ok((report, runs))
}

/// Writes `report.json`, `summary.md`, `community_on_scene.svg` and `ambulance_on_scene.svg`.
pub fn write_outputs(
    dir: &Path,
    report: &Report,
    runs: &BTreeMap<String, PolicyRun>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("report.json");
    std::fs::write(&path, report.to_json())
        .with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join("summary.md");
    std::fs::write(&path, report.to_markdown())
        .with_context(|| format!("writing {}", path.display()))?;
    let community: Vec<Curve<'_>> = runs
        .iter()
        .map(|(name, r)| Curve {
            name,
            seconds: &r.community_on_scene_s,
            of: r.report.kpis.community_on_scene_s.count,
        })
        .collect();
    ecdf_svg(
        &dir.join("community_on_scene.svg"),
        "Emergencies: first community responder on scene",
        &community,
        COMMUNITY_ON_SCENE_TARGET_S,
    )?;
    let ambulance: Vec<Curve<'_>> = runs
        .iter()
        .map(|(name, r)| Curve {
            name,
            seconds: &r.ambulance_on_scene_s,
            of: r.report.kpis.ambulance_on_scene_s.count,
        })
        .collect();
    ecdf_svg(
        &dir.join("ambulance_on_scene.svg"),
        "Ambulance on scene",
        &ambulance,
        AMBULANCE_ON_SCENE_TARGET_S,
    )?;
    Ok(())
}
