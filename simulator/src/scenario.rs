//! Seeded scenario generation: who lives where (elders, volunteers, grid workers, ambulances,
//! grids, pairings) and which alerts arrive when, from the population hexgrid.
//!
//! Everything is drawn from one `ChaCha8Rng` seeded with `seed`, in a fixed order, so the same
//! seed and parameters give the same scenario byte for byte. Positions are snapped to roads
//! through a caller-supplied function (the road layer's `snap`), so this file needs no graph.

use crate::hexgrid::Hexgrid;
use dispatch_core::command::Alert;
use dispatch_core::geo::{haversine_m, LatLon, Projection};
use dispatch_core::ids::{AlertId, DeviceId, ElderId, GridId, OperatorId, ResponderId};
use dispatch_core::model::{AlertKind, ResponderKind, ServiceKind, TravelMode};
use dispatch_core::roster::{
    DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord, RosterFile,
};
use dispatch_core::time::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Virtual time starts at 2026-01-01T00:00:00Z (a fixed epoch so reports are reproducible).
pub const VIRTUAL_EPOCH: Timestamp = Timestamp(1_767_225_600_000);

/// The device gateway every generated alert of a virtual-time run comes through (the first of
/// `ScenarioParams::gateways`).
pub const GATEWAY_ID: &str = "GW1";
/// The single operator of a generated roster.
pub const OPERATOR_ID: &str = "OP1";

/// Care levels 1..=5, in percent of elders. Assumption (no age or needs data in the grid):
/// most people enrolled need little help, a tenth need the most (see docs/simulator.md).
pub const CARE_LEVEL_PERCENT: [u32; 5] = [30, 25, 20, 15, 10];

/// The services of `help` alerts other than rescue, with the skill the engine asks for.
pub const SERVICES: [(ServiceKind, &str); 5] = [
    (ServiceKind::Meal, "meal"),
    (ServiceKind::Medical, "medical_escort"),
    (ServiceKind::Shopping, "shopping"),
    (ServiceKind::Cleaning, "cleaning"),
    (ServiceKind::Mobility, "mobility"),
];

/// How many people, where, and how often things happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioParams {
    pub seed: u64,
    /// Length of the alert period (the run then drains open incidents).
    pub hours: f64,
    pub elders: usize,
    pub volunteers: usize,
    /// Ambulances, placed at hexagons with health facilities (at most one per hexagon).
    pub ambulances: usize,
    /// Grids are squares of this side (metres) in a local projection; each grid that has an
    /// elder or a volunteer gets one grid worker. 800 m is about seven H3 resolution-9 hexagons.
    pub grid_side_m: f64,
    /// Share of grid workers who drive (the rest walk).
    pub grid_worker_car_share: f64,
    /// A volunteer can be paired with an elder whose home is within this straight-line
    /// distance ("walking distance": about 10 min on foot once streets bend).
    pub pairing_radius_m: f64,
    /// Most elders a volunteer is paired with.
    pub max_pairings_per_volunteer: usize,
    /// Alert rates over the whole population, per hour (Poisson processes).
    pub falls_per_hour: f64,
    pub rescue_calls_per_hour: f64,
    pub service_calls_per_hour: f64,
    pub missed_check_ins_per_hour: f64,
    /// Share of falls whose device also asks for an ambulance.
    pub fall_ambulance_requested: f64,
    /// Share of emergencies the elder cancels ("I'm OK") 20–90 s after the alert.
    pub cancel_share: f64,
    /// Device gateways on the roster (`GW1`…). The server rate-limits each connection, so a
    /// load run at a high alert rate spreads its alerts over many gateways.
    pub gateways: usize,
}

impl Default for ScenarioParams {
    fn default() -> Self {
        ScenarioParams {
            seed: 1,
            hours: 8.0,
            elders: 4_000,
            volunteers: 1_600,
            ambulances: 12,
            grid_side_m: 800.0,
            grid_worker_car_share: 0.3,
            pairing_radius_m: 600.0,
            max_pairings_per_volunteer: 3,
            falls_per_hour: 6.0,
            rescue_calls_per_hour: 2.0,
            service_calls_per_hour: 4.0,
            missed_check_ins_per_hour: 2.0,
            fall_ambulance_requested: 0.1,
            cancel_share: 0.05,
            gateways: 50,
        }
    }
}

/// One alert at its virtual time, possibly followed by its cancellation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAlert {
    pub at: Timestamp,
    pub alert: Alert,
    /// When the elder presses "I'm OK", if they do.
    pub cancel_at: Option<Timestamp>,
}

/// A generated world: the roster and the alert schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub params: ScenarioParams,
    pub roster: RosterFile,
    /// Ascending by `at`.
    pub alerts: Vec<ScheduledAlert>,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Why a scenario could not be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("the hexgrid has no populated hexagon")]
    NoPopulation,
    #[error("the hexgrid has no hexagon with healthcare > 0, so no ambulance base")]
    NoHealthcare,
    #[error("could not place {what} on a road after {tries} tries (is the map the right city?)")]
    CannotSnap { what: String, tries: usize },
    #[error("invalid parameter: {0}")]
    Invalid(String),
}

/// Draws hexagons by weight (cumulative table + binary search).
pub(crate) struct WeightedIndex {
    cumulative: Vec<u64>,
}

impl WeightedIndex {
    pub(crate) fn new(weights: impl Iterator<Item = u64>) -> Option<WeightedIndex> {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .map(|w| {
                total += w;
                total
            })
            .collect();
        (total > 0).then_some(WeightedIndex { cumulative })
    }

    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// A uniformly random point within `radius_m` of `centre`.
pub(crate) fn point_near(rng: &mut ChaCha8Rng, centre: LatLon, radius_m: f64) -> LatLon {
    let r = radius_m * rng.random::<f64>().sqrt();
    let theta = rng.random::<f64>() * std::f64::consts::TAU;
    let p = Projection::new(centre);
    p.to_latlon([r * theta.cos(), r * theta.sin()])
}

/// An exponential inter-arrival time in ms for a Poisson process of `per_hour`.
fn exp_gap_ms(rng: &mut ChaCha8Rng, per_hour: f64) -> u64 {
    let u: f64 = rng.random::<f64>();
    let hours = -(1.0 - u).ln() / per_hour;
    (hours * 3_600_000.0).round().max(1.0) as u64
}

/// The radius within which a point is drawn around a hexagon centroid (its edge is ~174 m).
pub(crate) const HEXAGON_SPREAD_M: f64 = 170.0;
const SNAP_TRIES: usize = 20;

/// Generates a scenario. `snap` puts a position on the road network (`None`: off the map).
pub fn generate(
    grid: &Hexgrid,
    params: &ScenarioParams,
    snap: &dyn Fn(LatLon) -> Option<LatLon>,
) -> Result<Scenario, ScenarioError> {
    if !(params.hours > 0.0 && params.hours.is_finite()) {
        return Err(ScenarioError::Invalid(format!(
            "hours must be positive, got {}",
            params.hours
        )));
    }
    for (name, rate) in [
        ("falls_per_hour", params.falls_per_hour),
        ("rescue_calls_per_hour", params.rescue_calls_per_hour),
        ("service_calls_per_hour", params.service_calls_per_hour),
        (
            "missed_check_ins_per_hour",
            params.missed_check_ins_per_hour,
        ),
    ] {
        if !(rate >= 0.0 && rate.is_finite()) {
            return Err(ScenarioError::Invalid(format!(
                "{name} must be a non-negative rate, got {rate}"
            )));
        }
    }
    if params.elders == 0 {
        return Err(ScenarioError::Invalid(
            "a scenario needs at least one elder".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let hexes = &grid.hexagons;
    let by_population = WeightedIndex::new(hexes.iter().map(|h| u64::from(h.population)))
        .ok_or(ScenarioError::NoPopulation)?;
    let projection = Projection::new(hexes[0].centroid);
    let cell_of = |p: LatLon| {
        let [x, y] = projection.to_xy(p);
        (
            (x / params.grid_side_m).floor() as i64,
            (y / params.grid_side_m).floor() as i64,
        )
    };
    // Grid ids in a stable order: by cell over every populated hexagon.
    let cells: BTreeMap<(i64, i64), GridId> = {
        let mut cells: Vec<(i64, i64)> = hexes
            .iter()
            .filter(|h| h.population > 0)
            .map(|h| cell_of(h.centroid))
            .collect();
        cells.sort_unstable();
        cells.dedup();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, GridId::from(format!("G{:03}", i + 1))))
            .collect()
    };
    let place = |rng: &mut ChaCha8Rng, what: &str| -> Result<(LatLon, GridId), ScenarioError> {
        for _ in 0..SNAP_TRIES {
            let hex = &hexes[by_population.sample(rng)];
            let raw = point_near(rng, hex.centroid, HEXAGON_SPREAD_M);
            if let Some(p) = snap(raw) {
                return Ok((p, cells[&cell_of(hex.centroid)].clone()));
            }
        }
        Err(ScenarioError::CannotSnap {
            what: what.to_string(),
            tries: SNAP_TRIES,
        })
    };

    // Elders.
    let mut elders = Vec::with_capacity(params.elders);
    let care_total: u32 = CARE_LEVEL_PERCENT.iter().sum();
    for i in 0..params.elders {
        let id = format!("E{:05}", i + 1);
        let (home, grid_id) = place(&mut rng, &id)?;
        let mut x = rng.random_range(0..care_total);
        let mut care_level = 5;
        for (level, pct) in CARE_LEVEL_PERCENT.iter().enumerate() {
            if x < *pct {
                care_level = level as u8 + 1;
                break;
            }
            x -= pct;
        }
        elders.push(ElderRecord {
            id: ElderId::from(id),
            home,
            grid_id,
            care_level,
            paired_responders: Vec::new(),
            details: Default::default(),
            care_plan: Vec::new(),
            check_in_by: None,
            family: Vec::new(),
        });
    }

    // Volunteers: mostly over sixty, so slower than the foot profile's 4.5 km/h default.
    let mut responders = Vec::new();
    for i in 0..params.volunteers {
        let id = format!("V{:05}", i + 1);
        let (home, grid_id) = place(&mut rng, &id)?;
        let walk_kmh = (rng.random_range(3.5..=5.0f64) * 10.0).round() / 10.0;
        let mut skills = Vec::new();
        if rng.random_bool(0.5) {
            skills.push("first_aid".to_string());
        }
        for (_, skill) in SERVICES {
            if rng.random_bool(0.4) {
                skills.push(skill.to_string());
            }
        }
        responders.push(ResponderRecord {
            kin_of: Vec::new(),
            id: ResponderId::from(id),
            kind: ResponderKind::Volunteer,
            travel_mode: TravelMode::Foot,
            walk_kmh: Some(walk_kmh),
            home,
            grid_id: Some(grid_id),
            skills,
            token_sha256: None,
        });
    }

    // Grid workers: one per grid where anybody lives (an elder or a volunteer), living in
    // their grid (drawn by population among the grid's hexagons).
    let mut used_grids: Vec<GridId> = elders
        .iter()
        .map(|e| e.grid_id.clone())
        .chain(responders.iter().filter_map(|r| r.grid_id.clone()))
        .collect();
    used_grids.sort();
    used_grids.dedup();
    let grids: Vec<GridRecord> = used_grids
        .iter()
        .map(|g| GridRecord {
            id: g.clone(),
            name: format!("grid {g}"),
        })
        .collect();
    for (i, grid_id) in used_grids.iter().enumerate() {
        let id = format!("W{:04}", i + 1);
        let members: Vec<usize> = (0..hexes.len())
            .filter(|&h| {
                hexes[h].population > 0 && cells.get(&cell_of(hexes[h].centroid)) == Some(grid_id)
            })
            .collect();
        let weights = WeightedIndex::new(members.iter().map(|&h| u64::from(hexes[h].population)))
            .ok_or(ScenarioError::NoPopulation)?;
        let mut home = None;
        for _ in 0..SNAP_TRIES {
            let hex = &hexes[members[weights.sample(&mut rng)]];
            if let Some(p) = snap(point_near(&mut rng, hex.centroid, HEXAGON_SPREAD_M)) {
                home = Some(p);
                break;
            }
        }
        // A grid whose hexagons are mostly off the roads (an island, a park) still has somebody
        // placed in it, so the worker can live next door to them.
        let home = home.or_else(|| {
            elders
                .iter()
                .map(|e| (&e.grid_id, e.home))
                .chain(
                    responders
                        .iter()
                        .filter_map(|r| Some((r.grid_id.as_ref()?, r.home))),
                )
                .find(|(g, _)| *g == grid_id)
                .map(|(_, p)| p)
        });
        let home = home.ok_or(ScenarioError::CannotSnap {
            what: id.clone(),
            tries: SNAP_TRIES,
        })?;
        let drives = rng.random_bool(params.grid_worker_car_share.clamp(0.0, 1.0));
        responders.push(ResponderRecord {
            kin_of: Vec::new(),
            id: ResponderId::from(id),
            kind: ResponderKind::GridWorker,
            travel_mode: if drives {
                TravelMode::Car
            } else {
                TravelMode::Foot
            },
            walk_kmh: (!drives).then_some(5.0),
            home,
            grid_id: Some(grid_id.clone()),
            skills: vec!["first_aid".to_string()],
            token_sha256: None,
        });
    }

    // Ambulances at hexagons with health facilities, weighted by their count, at most one
    // per hexagon, based at the centroid snapped to a road.
    let mut bases: Vec<usize> = (0..hexes.len())
        .filter(|&h| hexes[h].healthcare > 0)
        .collect();
    if bases.is_empty() && params.ambulances > 0 {
        return Err(ScenarioError::NoHealthcare);
    }
    // A base whose centroid is far from any car road (a park, the waterfront) is skipped and
    // another drawn, so a scenario never fails for want of one odd hexagon.
    let mut placed = 0;
    while placed < params.ambulances && !bases.is_empty() {
        let weights = WeightedIndex::new(bases.iter().map(|&h| u64::from(hexes[h].healthcare)))
            .ok_or(ScenarioError::NoHealthcare)?;
        let hex = bases.remove(weights.sample(&mut rng));
        let Some(home) = snap(hexes[hex].centroid) else {
            continue;
        };
        placed += 1;
        responders.push(ResponderRecord {
            kin_of: Vec::new(),
            id: ResponderId::from(format!("A{placed:03}")),
            kind: ResponderKind::Ambulance,
            travel_mode: TravelMode::Car,
            walk_kmh: None,
            home,
            grid_id: None,
            skills: vec!["paramedic".to_string()],
            token_sha256: None,
        });
    }

    pair(
        &mut elders,
        &responders[..params.volunteers],
        params,
        &mut rng,
    );

    let mut roster = RosterFile {
        regions: Vec::new(),
        grids,
        responders,
        elders,
        operators: vec![OperatorRecord {
            id: OperatorId::from(OPERATOR_ID),
            token_sha256: String::new(),
            roles: None,
        }],
        devices: (1..=params.gateways.max(1))
            .map(|i| DeviceRecord {
                id: DeviceId::from(format!("GW{i}")),
                token_sha256: String::new(),
            })
            .collect(),
    };
    // Everybody gets a token digest (a roster without them is refused); `credentials::issue`
    // with the same seed hands out the matching tokens.
    crate::credentials::issue(&mut roster, params.seed);
    let start = VIRTUAL_EPOCH;
    let end = start.plus_ms((params.hours * 3_600_000.0).round() as u64);
    let alerts = alert_schedule(&roster.elders, params, start, end, &mut rng);
    Ok(Scenario {
        params: params.clone(),
        roster,
        alerts,
        start,
        end,
    })
}

/// Pairs each elder with one or two volunteers within walking distance, preferring the
/// volunteers with the fewest pairings, then the nearest ("60 helps 90" is one-to-few).
fn pair(
    elders: &mut [ElderRecord],
    volunteers: &[ResponderRecord],
    params: &ScenarioParams,
    rng: &mut ChaCha8Rng,
) {
    if volunteers.is_empty() {
        return;
    }
    // Bucket volunteers by square cells of the pairing radius so each elder scans 9 cells.
    let projection = Projection::new(volunteers[0].home);
    let side = params.pairing_radius_m.max(1.0);
    let key = |p: LatLon| {
        let [x, y] = projection.to_xy(p);
        ((x / side).floor() as i64, (y / side).floor() as i64)
    };
    let mut buckets: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (i, v) in volunteers.iter().enumerate() {
        buckets.entry(key(v.home)).or_default().push(i);
    }
    let mut pairings = vec![0usize; volunteers.len()];
    for elder in elders.iter_mut() {
        let want = if rng.random_bool(0.5) { 1 } else { 2 };
        let (cx, cy) = key(elder.home);
        let mut near: Vec<(usize, f64)> = Vec::new();
        for dx in -1..=1 {
            for dy in -1..=1 {
                for &v in buckets.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                    let d = haversine_m(elder.home, volunteers[v].home);
                    if d <= params.pairing_radius_m
                        && pairings[v] < params.max_pairings_per_volunteer
                    {
                        near.push((v, d));
                    }
                }
            }
        }
        near.sort_by(|a, b| {
            pairings[a.0]
                .cmp(&pairings[b.0])
                .then(a.1.total_cmp(&b.1))
                .then(a.0.cmp(&b.0))
        });
        for &(v, _) in near.iter().take(want) {
            pairings[v] += 1;
            elder.paired_responders.push(volunteers[v].id.clone());
        }
    }
}

/// Merges the four Poisson streams into one ascending schedule, alerts numbered `AL000001`…
/// in time order and all sent through [`GATEWAY_ID`]. Emergencies come from elders weighted
/// by care level, the rest from any elder. `simulator live` draws its wall-clock day from here
/// too, on the roster the server runs.
pub fn alert_schedule(
    elders: &[ElderRecord],
    params: &ScenarioParams,
    start: Timestamp,
    end: Timestamp,
    rng: &mut ChaCha8Rng,
) -> Vec<ScheduledAlert> {
    // Falls and rescue calls come more often from frailer people: weight by care level.
    let by_care =
        WeightedIndex::new(elders.iter().map(|e| u64::from(e.care_level))).expect("elders exist");
    let mut out = Vec::new();
    let streams = [
        (AlertKind::Fall, params.falls_per_hour),
        (AlertKind::Help, params.rescue_calls_per_hour),
        (AlertKind::Help, params.service_calls_per_hour),
        (AlertKind::CheckInMissed, params.missed_check_ins_per_hour),
    ];
    for (stream, (kind, rate)) in streams.into_iter().enumerate() {
        if rate <= 0.0 {
            continue;
        }
        let mut t = start;
        loop {
            t = t.plus_ms(exp_gap_ms(rng, rate));
            if t >= end {
                break;
            }
            let emergency = stream < 2;
            let elder = if emergency {
                &elders[by_care.sample(rng)]
            } else {
                &elders[rng.random_range(0..elders.len())]
            };
            let service = match stream {
                1 => Some(ServiceKind::Rescue),
                2 => Some(SERVICES[rng.random_range(0..SERVICES.len())].0),
                _ => None,
            };
            let ambulance_requested =
                stream == 0 && rng.random_bool(params.fall_ambulance_requested.clamp(0.0, 1.0));
            let cancel_at = (emergency && rng.random_bool(params.cancel_share.clamp(0.0, 1.0)))
                .then(|| t.plus_ms(rng.random_range(20_000..=90_000)));
            out.push(ScheduledAlert {
                at: t,
                alert: Alert {
                    alert_id: AlertId::from(String::new()),
                    kind,
                    service,
                    elder_id: elder.id.clone(),
                    position: Some(elder.home),
                    // A wearable detects about a second before the gateway forwards.
                    detected_at: Timestamp(t.0 - 1_000),
                    ambulance_requested,
                    scheduled_for: None,
                    device_id: DeviceId::from(GATEWAY_ID),
                },
                cancel_at,
            });
        }
    }
    // Stable order by time, then stream order; ids follow that order.
    out.sort_by_key(|a| a.at);
    for (i, a) in out.iter_mut().enumerate() {
        a.alert.alert_id = AlertId::from(format!("AL{:06}", i + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexgrid::Hexgrid;

    fn small_grid() -> Hexgrid {
        Hexgrid::parse(
            "id,lon,lat,population,schools,jobs,healthcare\n\
             a,-51.2200,-30.0300,500,0,0,1\n\
             b,-51.2180,-30.0300,300,0,0,0\n\
             c,-51.2000,-30.0450,200,0,0,2\n\
             d,-51.1900,-30.0500,0,0,10,0\n",
        )
        .unwrap()
    }

    fn params(seed: u64) -> ScenarioParams {
        ScenarioParams {
            seed,
            hours: 2.0,
            elders: 60,
            volunteers: 30,
            ambulances: 2,
            ..ScenarioParams::default()
        }
    }

    #[test]
    fn same_seed_same_scenario_different_seed_different() {
        let g = small_grid();
        let a = generate(&g, &params(7), &Some).unwrap();
        let b = generate(&g, &params(7), &Some).unwrap();
        let c = generate(&g, &params(8), &Some).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_ne!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&c).unwrap()
        );
    }

    #[test]
    fn people_live_near_populated_hexagons_and_pairs_are_within_walking_distance() {
        let g = small_grid();
        let s = generate(&g, &params(3), &Some).unwrap();
        let populated: Vec<LatLon> = g
            .hexagons
            .iter()
            .filter(|h| h.population > 0)
            .map(|h| h.centroid)
            .collect();
        for e in &s.roster.elders {
            assert!(
                populated
                    .iter()
                    .any(|c| haversine_m(*c, e.home) <= HEXAGON_SPREAD_M + 1.0),
                "{}",
                e.id
            );
            assert!((1..=5).contains(&e.care_level));
            assert!(e.paired_responders.len() <= 2);
            for v in &e.paired_responders {
                let r = s.roster.responders.iter().find(|r| &r.id == v).unwrap();
                assert!(haversine_m(r.home, e.home) <= s.params.pairing_radius_m);
            }
        }
        let ambulances: Vec<_> = s
            .roster
            .responders
            .iter()
            .filter(|r| r.kind == ResponderKind::Ambulance)
            .collect();
        assert_eq!(ambulances.len(), 2);
        // Both health hexagons (a and c) get one each, since at most one per hexagon.
        assert_ne!(ambulances[0].home, ambulances[1].home);
        // Every grid has its grid worker, and everybody's grid is on the roster.
        for r in &s.roster.responders {
            assert!(
                r.grid_id.is_none()
                    || s.roster
                        .grids
                        .iter()
                        .any(|g| Some(&g.id) == r.grid_id.as_ref())
            );
        }
        for grid in &s.roster.grids {
            assert!(s.roster.responders.iter().any(
                |r| r.kind == ResponderKind::GridWorker && r.grid_id.as_ref() == Some(&grid.id)
            ));
        }
        assert!(s.alerts.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(s.alerts.iter().all(|a| a.at >= s.start && a.at < s.end));
    }

    #[test]
    fn alert_counts_follow_the_rates() {
        let g = small_grid();
        let p = ScenarioParams {
            hours: 200.0,
            ..params(11)
        };
        let s = generate(&g, &p, &Some).unwrap();
        let falls = s
            .alerts
            .iter()
            .filter(|a| a.alert.kind == AlertKind::Fall)
            .count() as f64;
        // 6/h over 200 h: mean 1200, sd ~35; 5 sd either side.
        assert!((falls - 1200.0).abs() < 175.0, "{falls}");
    }

    #[test]
    fn an_unsnappable_map_is_an_error_not_a_panic() {
        let err = generate(&small_grid(), &params(1), &|_| None).unwrap_err();
        assert_eq!(
            err,
            ScenarioError::CannotSnap {
                what: "E00001".into(),
                tries: SNAP_TRIES
            }
        );
    }
}
