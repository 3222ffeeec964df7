//! The report of a run: `report.json` (machine-readable, byte-identical for the same seed) and
//! `summary.md` (the same numbers for people), plus one policy's run glue.

use crate::behaviour::{BehaviourParams, SimWorld};
use crate::kpi::{Distribution, KpiCollector, PolicyKpis};
use crate::scenario::{Scenario, ScenarioParams};
use crate::virtual_clock::{drive, DriveError, SansIo};
use dispatch_core::model::{AlertKind, ResponderKind, ServiceKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// After the last alert, open incidents get this long to finish before the run stops.
pub const DRAIN_MS: u64 = 2 * 3_600_000;

/// What one policy did on the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    #[serde(flatten)]
    pub kpis: PolicyKpis,
    /// Commands the simulated people sent, and those the engine refused (by error code).
    pub commands: u64,
    pub refusals: BTreeMap<String, u64>,
    pub events: u64,
    /// Virtual seconds from the scenario start to the end of the run.
    pub virtual_duration_s: f64,
}

/// One policy's run, with the raw response times kept for the charts.
#[derive(Debug, Clone)]
pub struct PolicyRun {
    pub report: PolicyReport,
    /// Seconds to the first community responder on scene, per emergency that got one.
    pub community_on_scene_s: Vec<f64>,
    /// Seconds to the first ambulance on scene, per incident that got one.
    pub ambulance_on_scene_s: Vec<f64>,
}

/// Drives `engine` through the whole scenario on the virtual clock and scores it.
pub fn run_policy<D: SansIo>(
    scenario: &Scenario,
    behaviour: &BehaviourParams,
    engine: &mut D,
) -> Result<PolicyRun, DriveError> {
    let mut world = SimWorld::new(scenario, behaviour);
    let mut kpis = KpiCollector::new(&scenario.roster);
    let until = scenario.end.plus_ms(DRAIN_MS);
    let stats = drive(
        engine,
        &mut world,
        scenario.start,
        scenario.end,
        until,
        |r| kpis.observe(r),
    )?;
    let (community, ambulance) = kpis.response_times();
    Ok(PolicyRun {
        report: PolicyReport {
            kpis: kpis.finish(),
            commands: stats.commands,
            refusals: world.refusals.clone(),
            events: stats.events,
            virtual_duration_s: stats.stopped_at.ms_since(scenario.start) as f64 / 1000.0,
        },
        community_on_scene_s: community,
        ambulance_on_scene_s: ambulance,
    })
}

/// The scenario as the report describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub params: ScenarioParams,
    pub map: String,
    pub population: String,
    pub grids: usize,
    pub elders: usize,
    pub elders_paired: usize,
    pub volunteers: usize,
    pub grid_workers: usize,
    pub ambulances: usize,
    pub alerts: BTreeMap<String, usize>,
}

impl ScenarioSummary {
    /// A replayed roster: no generator parameters, no alert schedule.
    pub fn from_roster(
        r: &dispatch_core::roster::RosterFile,
        map: &str,
        input: &str,
    ) -> ScenarioSummary {
        let count = |k: ResponderKind| r.responders.iter().filter(|x| x.kind == k).count();
        ScenarioSummary {
            params: ScenarioParams {
                elders: r.elders.len(),
                hours: 0.0,
                ..ScenarioParams::default()
            },
            map: map.to_string(),
            population: input.to_string(),
            grids: r.grids.len(),
            elders: r.elders.len(),
            elders_paired: r
                .elders
                .iter()
                .filter(|e| !e.paired_responders.is_empty())
                .count(),
            volunteers: count(ResponderKind::Volunteer),
            grid_workers: count(ResponderKind::GridWorker),
            ambulances: count(ResponderKind::Ambulance),
            alerts: BTreeMap::new(),
        }
    }

    pub fn new(s: &Scenario, map: &str, population: &str) -> ScenarioSummary {
        let mut alerts = BTreeMap::new();
        for a in &s.alerts {
            let name = match (a.alert.kind, a.alert.service) {
                (AlertKind::Fall, _) => "fall",
                (AlertKind::Help, Some(ServiceKind::Rescue) | None) => "help_rescue",
                (AlertKind::Help, _) => "help_service",
                (AlertKind::CheckInMissed, _) => "check_in_missed",
                (AlertKind::CarePlan, _) => "care_plan",
            };
            *alerts.entry(name.to_string()).or_default() += 1;
        }
        alerts.insert(
            "cancelled_by_elder".into(),
            s.alerts.iter().filter(|a| a.cancel_at.is_some()).count(),
        );
        ScenarioSummary {
            params: s.params.clone(),
            alerts,
            ..ScenarioSummary::from_roster(&s.roster, map, population)
        }
    }
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: ScenarioSummary,
    pub behaviour: BehaviourParams,
    /// By policy name (`engine`, `nearest_radius`, …).
    pub policies: BTreeMap<String, PolicyReport>,
}

impl Report {
    /// Pretty JSON with a trailing newline; the same report always gives the same bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report is plain data");
        s.push('\n');
        s
    }

    /// The readable summary.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.scenario;
        let p = &s.params;
        let _ = writeln!(md, "# Simulation summary\n");
        let _ = writeln!(
            md,
            "Map `{}`, population `{}`, seed {}, {} h of alerts (then up to {} h to drain).\n",
            s.map,
            s.population,
            p.seed,
            p.hours,
            DRAIN_MS / 3_600_000
        );
        let _ = writeln!(
            md,
            "{} elders ({} paired), {} volunteers, {} grid workers in {} grids, {} ambulances. Alerts: {}.\n",
            s.elders,
            s.elders_paired,
            s.volunteers,
            s.grid_workers,
            s.grids,
            s.ambulances,
            s.alerts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        );
        let names: Vec<&String> = self.policies.keys().collect();
        let _ = writeln!(
            md,
            "| metric | {} |",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(md, "| --- |{}", " --- |".repeat(names.len()));
        let mut row = |label: &str, f: &dyn Fn(&PolicyReport) -> String| {
            let cells: Vec<String> = names.iter().map(|n| f(&self.policies[*n])).collect();
            let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
        };
        row("incidents opened", &|r| r.kpis.incidents.opened.to_string());
        row("emergencies", &|r| r.kpis.incidents.emergencies.to_string());
        row("emergencies never accepted", &|r| {
            r.kpis.incidents.emergencies_never_accepted.to_string()
        });
        for (name, pick) in [
            (
                "first accept",
                (|r: &PolicyReport| &r.kpis.first_accept_s) as fn(&PolicyReport) -> &Distribution,
            ),
            ("community on scene", |r: &PolicyReport| {
                &r.kpis.community_on_scene_s
            }),
            ("ambulance on scene", |r: &PolicyReport| {
                &r.kpis.ambulance_on_scene_s
            }),
        ] {
            row(&format!("{name}: p50 / p90 / p99 (s)"), &|r| {
                let d = pick(r);
                format!("{} / {} / {}", secs(d.p50), secs(d.p90), secs(d.p99))
            });
            row(
                &format!(
                    "{name}: within {} (n)",
                    target(pick(&self.policies[names[0]]).target_s)
                ),
                &|r| {
                    let d = pick(r);
                    format!("{} ({})", share(d.within_target), d.count)
                },
            );
        }
        row("familiar assignments", &|r| {
            let f = &r.kpis.familiar_assignments;
            format!("{} of {}", share(f.share), f.community_assignments)
        });
        row("volunteer load max/mean, Gini", &|r| {
            let w = &r.kpis.volunteer_workload;
            format!(
                "{} , {:.2}",
                w.max_over_mean.map_or("-".into(), |v| format!("{v:.1}")),
                w.gini
            )
        });
        row("SLA breaches (accept / community / ambulance)", &|r| {
            let b = &r.kpis.sla_breaches;
            format!(
                "{} / {} / {}",
                b.first_accept, b.community_on_scene, b.ambulance_on_scene
            )
        });
        row("offers sent / declined / expired", &|r| {
            let o = &r.kpis.offers;
            format!("{} / {} / {}", o.sent, o.declined, o.expired)
        });
        row("time bank (credits, minutes)", &|r| {
            format!("{}, {}", r.kpis.time_bank.credits, r.kpis.time_bank.minutes)
        });
        row("engine refusals", &|r| {
            r.refusals.values().sum::<u64>().to_string()
        });
        let _ = writeln!(
            md,
            "\nPercentiles are nearest-rank over every incident the milestone applies to; an incident \
             that never reached it counts as infinitely late, so `-` means \"not reached by that share\"."
        );
        md
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn share(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1} %", v * 100.0))
}

fn target(s: f64) -> String {
    if s >= 60.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{s} s")
    }
}
