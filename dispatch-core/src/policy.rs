//! The dispatch policy: every number of DESIGN §4 with its default, in one struct a
//! deployment can change, plus the plan each kind of alert gets (priority, who may be asked,
//! how long an offer stays open).

use crate::model::{AlertKind, ResponderKind, ServiceKind};
use serde::{Deserialize, Serialize};

/// How candidates are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum MatchingMode {
    /// Our rules: road ETA on each responder's own profile and speed, familiarity margin,
    /// joint assignment in surges.
    RoadEta,
    /// The baseline the simulator compares against: the nearest by straight line within
    /// `radius_m`, in waves of the same sizes; no familiarity, no joint assignment. Ambulance
    /// rules are unchanged. With `replace`, a wave's offers are kept open: each decline or
    /// expiry is replaced at once by the next nearest (GoodSAM New Zealand's "alert 7,
    /// replace each one who declines"); without it the next wave waits for the whole wave.
    NearestRadius {
        radius_m: f64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replace: bool,
    },
}

/// What an elder's care level changes in their emergencies' response (issue 12, gap 10).
/// A field left out keeps the built-in table's value for the level ([`CareLevelRule::builtin`],
/// decision version 5 on), or the general value where the table has none. `wave_sizes` and
/// `offer_expiry_ms` set in a config apply from decision version 3, the other fields and the
/// built-in table from version 5.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CareLevelRule {
    /// The care level (1..=5) this rule is for.
    pub level: u8,
    /// Offers per wave for this level's emergencies.
    pub wave_sizes: Option<Vec<u32>>,
    /// How long this level's emergency offers stay open.
    pub offer_expiry_ms: Option<u64>,
    /// How far by road the search goes: community responders with a longer ETA are not asked
    /// (the ambulance track covers them).
    pub max_eta_ms: Option<u64>,
    /// This level's familiarity margin (kin have their own, `PolicyConfig::kin_margin_ms`).
    pub familiarity_margin_ms: Option<u64>,
    /// This level's first-accept promise (breached: the next wave at once).
    pub sla_first_accept_ms: Option<u64>,
    /// This level's community on-scene promise (breached: an ambulance goes).
    pub sla_community_on_scene_ms: Option<u64>,
    /// An ambulance goes when no community responder accepted within this.
    pub ambulance_after_no_accept_ms: Option<u64>,
}

impl CareLevelRule {
    /// The built-in table (decision version 5 on; docs/deploy.md "Care levels"). The frailer
    /// the elder, the sooner the next wave (asked while the first is still open: more people
    /// at once, sooner) and the less a familiar face may cost in ETA; the lighter the need,
    /// the nearer the people asked, so that a light case does not take a volunteer from
    /// across town whom the next fall may need. Wider first waves and shorter offer windows
    /// for levels 4–5 were measured and left out: they used up the people the next emergency
    /// needed (docs/simulator.md, decision version 5).
    pub fn builtin(level: u8) -> CareLevelRule {
        const S: u64 = 1_000;
        let rule = CareLevelRule {
            level,
            ..CareLevelRule::default()
        };
        match level {
            1 | 2 => CareLevelRule {
                max_eta_ms: Some(20 * 60 * S),
                ..rule
            },
            3 => CareLevelRule {
                max_eta_ms: Some(30 * 60 * S),
                ambulance_after_no_accept_ms: Some(45 * S),
                ..rule
            },
            4 => CareLevelRule {
                familiarity_margin_ms: Some(45 * S),
                sla_first_accept_ms: Some(25 * S),
                ..rule
            },
            5 => CareLevelRule {
                familiarity_margin_ms: Some(30 * S),
                sla_first_accept_ms: Some(20 * S),
                sla_community_on_scene_ms: Some(150 * S),
                ..rule
            },
            _ => rule,
        }
    }
}

/// Every dispatch number, with DESIGN §4's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// Offers per wave: wave 1 asks `wave_sizes[0]`, wave 2 `wave_sizes[1]`, …; later waves
    /// repeat the last size ("the next wave, wider").
    pub wave_sizes: Vec<u32>,
    /// Decision version 6 (issue 17): an emergency's wave asks at least its `wave_sizes`
    /// entry, and more, nearest first, until the chance that someone accepts before the
    /// offers expire reaches this, each responder's chance predicted from their own answers
    /// (shrunk towards the engine-wide rate, `acceptance_prior_weight`). 0: fixed sizes.
    pub acceptance_target: f64,
    /// How many offers' worth of the engine-wide acceptance rate a responder's own record is
    /// weighed against: a newcomer is predicted as the average responder; after many more
    /// offers than this, their own record decides.
    pub acceptance_prior_weight: f64,
    /// The acceptance assumed before anyone has answered (the engine-wide rate starts here,
    /// with the weight of `acceptance_prior_weight` offers). At 0.6 and the default target, a
    /// new deployment's waves of two or more keep their configured sizes (two people reach
    /// 84 %, three 93.6 %) until the answers say otherwise; a wave of one widens to two.
    pub acceptance_prior: f64,
    /// Widening stops once the incident holds this many open offers: it bounds the people a
    /// wave adds beyond its configured size, not the configured size itself (a `wave_sizes`
    /// or care-level entry larger than this is asked in full), nor offers still open from an
    /// earlier wave when the next goes out.
    pub max_wave_size: u32,
    /// Emergency offers per volunteer per (UTC) day (decision version 6): the fairness cap
    /// that bounds how often larger waves ask the same people (alert fatigue).
    pub volunteer_daily_offer_cap: u32,
    /// How long an emergency offer stays open.
    pub offer_expiry_ms: u64,
    /// How long a service or welfare-visit offer stays open (the longer window).
    pub service_offer_expiry_ms: u64,
    /// A paired volunteer or the elder's own grid worker beats a stranger whose ETA is at most
    /// this much shorter.
    pub familiarity_margin_ms: u64,
    /// An ambulance goes in parallel when no community responder accepted within this.
    pub ambulance_after_no_accept_ms: u64,
    /// An ambulance goes at once for emergencies of elders at this care level or above.
    pub ambulance_min_care_level: u8,
    /// SLA: somebody accepts within this of the incident opening.
    pub sla_first_accept_ms: u64,
    /// SLA: a community responder is at the door within this of the incident opening.
    pub sla_community_on_scene_ms: u64,
    /// SLA: the ambulance is at the door within this of its dispatch.
    pub sla_ambulance_on_scene_ms: u64,
    /// SLA of services and welfare visits: somebody accepts within this of the job's offers
    /// going out (its opening, or a scheduled service's lead time); when breached, the next
    /// wave goes out at once.
    pub sla_job_accept_ms: u64,
    /// SLA of services and welfare visits: somebody is at the door within this of the job's
    /// offers going out (a scheduled service: by its requested time); when breached, the
    /// operators are asked to step in.
    pub sla_job_on_scene_ms: u64,
    /// A position older than this is stale: its responder is not offered.
    pub stale_position_ms: u64,
    /// Assignments per volunteer per (UTC) day.
    pub volunteer_daily_cap: u32,
    /// A volunteer rests this long after completing an emergency before being offered again.
    pub rest_after_emergency_ms: u64,
    /// Assignments per grid worker per (UTC) day (decision version 3 on).
    pub grid_worker_daily_cap: u32,
    /// A grid worker rests this long after an emergency they reached (0, the default: no
    /// rest; grid workers are staff on a shift whose breaks their employer sets, and a
    /// 10-minute rest made the simulator's 3-minute share worse on two of six seeds).
    pub grid_worker_rest_after_emergency_ms: u64,
    /// Assignments per member of service staff per (UTC) day.
    pub service_staff_daily_cap: u32,
    /// Service staff rest this long after a job they reached (0: no rest).
    pub service_staff_rest_after_job_ms: u64,
    /// When nobody could be asked, the incident is tried again after this.
    pub retry_ms: u64,
    /// An emergency that has asked everyone eligible asks again those who let its offer
    /// expire, once this long has passed since (issue 12: escalation must not run out of
    /// people in a sparse area).
    pub reask_after_expiry_ms: u64,
    /// … and then those who declined it, once this long has passed since their answer.
    pub reask_after_decline_ms: u64,
    /// A responder whose phone session closed is still offered jobs for this long (a
    /// reconnect: a tunnel, a lift), then not until the phone is back.
    pub presence_grace_ms: u64,
    /// A scheduled service is offered this long before its time.
    pub service_lead_ms: u64,
    /// The skill a responder needs for each service (services not listed need none).
    pub service_skills: Vec<(ServiceKind, String)>,
    /// Candidates per incident considered by joint assignment in a surge.
    pub surge_candidates: usize,
    /// At most this many waiting emergencies take part in one joint assignment (the most
    /// urgent, then oldest, then lowest id), and at most this many waiting incidents are woken
    /// when a responder becomes free; the rest are tried on later rounds and their retry
    /// timers. Bounds the cost of a command in a surge (DESIGN §4/§7).
    pub surge_max_incidents: usize,
    /// Positions farther than this from the map's centre are refused as off the map (a cheap
    /// check on every location update; alerts and roster entries are also snapped).
    pub map_radius_m: f64,
    /// The walking speed the road network's foot profile was built at
    /// (`RoadConfig::foot_kmh`); responders walking at `walk_kmh` scale from it.
    pub foot_profile_kmh: f64,
    pub matching: MatchingMode,
    /// Care levels that change an emergency's response (waves, offer window, search width,
    /// familiarity margin, SLA clocks), over the built-in table [`CareLevelRule::builtin`]:
    /// a field set here wins, a field left out keeps the table's. Empty by default (the
    /// table alone).
    pub care_levels: Vec<CareLevelRule>,
    /// A family member bound to the elder (`kin` responder) beats a stranger whose ETA is at
    /// most this much shorter (decision version 5 on): "first to kin, then to the nearest,
    /// then to the familiar".
    pub kin_margin_ms: u64,
    /// Batched dispatch (the server's mode): a command only records what needs a wave, and
    /// the waves of everything recorded since are sent by the next `handle_timeout`, which
    /// `poll_timeout` asks for at once. A burst of alerts then shares one dispatch round
    /// (one joint assignment) instead of paying one each. Off: every command dispatches
    /// before it returns (the simulator's and the tests' default). Journal replay must use
    /// the same setting as the live run; the server always turns it on.
    pub dispatch_batched: bool,
    /// A closed incident (with its alerts' duplicate keys and its offers) stays in memory
    /// this long after it closed, for `GET /v1/incidents/{id}` and resent alerts; then the
    /// engine forgets it, so memory and snapshots stay bounded. Its history stays in the
    /// journal (`dispatch export`).
    pub closed_retention_ms: u64,
    /// The deployment's local time, seconds ahead of UTC (Porto Alegre: -10800). A fixed
    /// offset, no daylight saving: care plans' days, weeks and months, and the compliance
    /// report's calendar week and month, are counted in it.
    pub utc_offset_s: i32,
    /// A care-plan occurrence nobody has reached this long after its window closed is
    /// missed (`care_visit_missed`) and its job cancelled.
    pub care_missed_grace_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            wave_sizes: vec![3, 5, 8],
            acceptance_target: 0.8,
            acceptance_prior_weight: 4.0,
            acceptance_prior: 0.6,
            max_wave_size: 10,
            volunteer_daily_offer_cap: 30,
            offer_expiry_ms: 30_000,
            service_offer_expiry_ms: 300_000,
            familiarity_margin_ms: 60_000,
            ambulance_after_no_accept_ms: 60_000,
            ambulance_min_care_level: 4,
            sla_first_accept_ms: 30_000,
            sla_community_on_scene_ms: 180_000,
            sla_ambulance_on_scene_ms: 660_000,
            sla_job_accept_ms: 10 * 60_000,
            sla_job_on_scene_ms: 60 * 60_000,
            stale_position_ms: 600_000,
            volunteer_daily_cap: 6,
            rest_after_emergency_ms: 30 * 60_000,
            grid_worker_daily_cap: 12,
            grid_worker_rest_after_emergency_ms: 0,
            service_staff_daily_cap: 10,
            service_staff_rest_after_job_ms: 5 * 60_000,
            retry_ms: 15_000,
            reask_after_expiry_ms: 30_000,
            reask_after_decline_ms: 120_000,
            presence_grace_ms: 20_000,
            service_lead_ms: 60 * 60_000,
            service_skills: vec![
                (ServiceKind::Meal, "meal".into()),
                (ServiceKind::Medical, "medical_escort".into()),
                (ServiceKind::Shopping, "shopping".into()),
                (ServiceKind::Cleaning, "cleaning".into()),
                (ServiceKind::Mobility, "mobility".into()),
            ],
            surge_candidates: 8,
            surge_max_incidents: 16,
            dispatch_batched: false,
            closed_retention_ms: 24 * 3_600_000,
            map_radius_m: 50_000.0,
            foot_profile_kmh: 4.5,
            matching: MatchingMode::RoadEta,
            care_levels: Vec::new(),
            kin_margin_ms: 120_000,
            utc_offset_s: 0,
            care_missed_grace_ms: 60 * 60_000,
        }
    }
}

/// What an alert turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// `fall`, or `help` + `rescue`: waves, SLAs, ambulance rules.
    Emergency,
    /// `help` + another service: skill required, longer windows, no ambulance.
    Service,
    /// `check_in_missed`: the elder's own grid worker first.
    WelfareVisit,
}

impl Plan {
    /// The plan for an alert; `None` for a `help` without a service, or a `care_plan` kind
    /// (the engine's own).
    pub fn of(kind: AlertKind, service: Option<ServiceKind>) -> Option<Plan> {
        match (kind, service) {
            (AlertKind::Fall, _) | (AlertKind::Help, Some(ServiceKind::Rescue)) => {
                Some(Plan::Emergency)
            }
            (AlertKind::Help, Some(_)) => Some(Plan::Service),
            (AlertKind::Help, None) => None,
            (AlertKind::CheckInMissed, _) => Some(Plan::WelfareVisit),
            // Opened by the engine from a care plan (`engine/care.rs`), never from an alert.
            (AlertKind::CarePlan, _) => None,
        }
    }

    /// 1 (lowest) to 5: emergencies rise with the care level (3, 4, 4, 5, 5 for levels 1–5),
    /// welfare visits are 2 and services 1. Joint assignment weighs ETAs by this.
    pub fn priority(self, care_level: u8) -> u8 {
        match self {
            Plan::Emergency => (3 + care_level / 2).min(5),
            Plan::WelfareVisit => 2,
            Plan::Service => 1,
        }
    }

    /// Who may be offered this kind of job (ambulances are never offered: they are assigned).
    pub fn offered_kinds(self) -> &'static [ResponderKind] {
        match self {
            Plan::Emergency => &[ResponderKind::Volunteer, ResponderKind::GridWorker],
            Plan::Service => &[
                ResponderKind::Volunteer,
                ResponderKind::GridWorker,
                ResponderKind::ServiceStaff,
            ],
            Plan::WelfareVisit => &[ResponderKind::GridWorker, ResponderKind::Volunteer],
        }
    }
}

impl PolicyConfig {
    /// Checks the numbers a deployment may set (`dispatch serve --config`); the error names
    /// the key and its allowed range. The defaults pass.
    pub fn validate(&self) -> Result<(), String> {
        if self.wave_sizes.is_empty() || self.wave_sizes.iter().any(|&w| !(1..=50).contains(&w)) {
            return Err(format!(
                "wave_sizes: {:?}: at least one wave, each asking 1 to 50 people",
                self.wave_sizes
            ));
        }
        const MIN: u64 = 60_000;
        const DAY: u64 = 86_400_000;
        if !(-14 * 3600..=14 * 3600).contains(&self.utc_offset_s) {
            return Err(format!(
                "utc_offset_s: {} is outside -50400..=50400",
                self.utc_offset_s
            ));
        }
        let ranges: [(&str, u64, u64, u64); 20] = [
            ("kin_margin_ms", self.kin_margin_ms, 0, 30 * MIN),
            ("sla_job_accept_ms", self.sla_job_accept_ms, 10_000, DAY),
            ("sla_job_on_scene_ms", self.sla_job_on_scene_ms, 60_000, DAY),
            (
                "care_missed_grace_ms",
                self.care_missed_grace_ms,
                0,
                7 * DAY,
            ),
            (
                "grid_worker_rest_after_emergency_ms",
                self.grid_worker_rest_after_emergency_ms,
                0,
                DAY,
            ),
            (
                "service_staff_rest_after_job_ms",
                self.service_staff_rest_after_job_ms,
                0,
                DAY,
            ),
            ("offer_expiry_ms", self.offer_expiry_ms, 5_000, 600_000),
            (
                "service_offer_expiry_ms",
                self.service_offer_expiry_ms,
                30_000,
                DAY,
            ),
            (
                "familiarity_margin_ms",
                self.familiarity_margin_ms,
                0,
                30 * MIN,
            ),
            (
                "ambulance_after_no_accept_ms",
                self.ambulance_after_no_accept_ms,
                0,
                60 * MIN,
            ),
            (
                "sla_first_accept_ms",
                self.sla_first_accept_ms,
                1_000,
                60 * MIN,
            ),
            (
                "sla_community_on_scene_ms",
                self.sla_community_on_scene_ms,
                10_000,
                4 * 60 * MIN,
            ),
            (
                "sla_ambulance_on_scene_ms",
                self.sla_ambulance_on_scene_ms,
                10_000,
                4 * 60 * MIN,
            ),
            ("stale_position_ms", self.stale_position_ms, 10_000, DAY),
            (
                "rest_after_emergency_ms",
                self.rest_after_emergency_ms,
                0,
                DAY,
            ),
            ("retry_ms", self.retry_ms, 1_000, 60 * MIN),
            ("reask_after_expiry_ms", self.reask_after_expiry_ms, 0, DAY),
            (
                "reask_after_decline_ms",
                self.reask_after_decline_ms,
                0,
                DAY,
            ),
            ("presence_grace_ms", self.presence_grace_ms, 0, 60 * MIN),
            (
                "closed_retention_ms",
                self.closed_retention_ms,
                MIN,
                30 * DAY,
            ),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{key}: {v} is outside {lo}..={hi}"));
            }
        }
        let counts = [
            (
                "grid_worker_daily_cap",
                self.grid_worker_daily_cap as usize,
                1,
                100,
            ),
            (
                "service_staff_daily_cap",
                self.service_staff_daily_cap as usize,
                1,
                100,
            ),
            (
                "volunteer_daily_cap",
                self.volunteer_daily_cap as usize,
                1,
                100,
            ),
            ("surge_candidates", self.surge_candidates, 1, 64),
            ("max_wave_size", self.max_wave_size as usize, 1, 50),
            (
                "volunteer_daily_offer_cap",
                self.volunteer_daily_offer_cap as usize,
                1,
                1_000,
            ),
            ("surge_max_incidents", self.surge_max_incidents, 1, 1_000),
        ];
        for (key, v, lo, hi) in counts {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{key}: {v} is outside {lo}..={hi}"));
            }
        }
        let shares = [
            (
                "acceptance_target",
                self.acceptance_target,
                0.0,
                0.99,
                " (0: fixed wave sizes)",
            ),
            ("acceptance_prior", self.acceptance_prior, 0.05, 0.95, ""),
            (
                "acceptance_prior_weight",
                self.acceptance_prior_weight,
                0.5,
                1_000.0,
                "",
            ),
        ];
        for (key, v, lo, hi, note) in shares {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{key}: {v} is outside {lo}..={hi}{note}"));
            }
        }
        if !(1..=6).contains(&self.ambulance_min_care_level) {
            return Err(format!(
                "ambulance_min_care_level: {} is outside 1..=6 (6: never at once)",
                self.ambulance_min_care_level
            ));
        }
        if !(self.map_radius_m > 0.0 && self.map_radius_m <= 500_000.0) {
            return Err(format!(
                "map_radius_m: {} is outside (0, 500000]",
                self.map_radius_m
            ));
        }
        let mut seen = [false; 6];
        for r in &self.care_levels {
            let l = r.level as usize;
            if !(1..=5).contains(&l) || std::mem::replace(&mut seen[l], true) {
                return Err(format!(
                    "care_levels: level {} is not 1..=5 or is listed twice",
                    r.level
                ));
            }
            if let Some(w) = &r.wave_sizes {
                if w.is_empty() || w.iter().any(|&n| !(1..=50).contains(&n)) {
                    return Err(format!(
                        "care_levels.{l}.wave_sizes: {w:?}: at least one wave, each asking 1 to 50 people"
                    ));
                }
            }
            let fields = [
                ("offer_expiry_ms", r.offer_expiry_ms, 5_000, 600_000),
                ("max_eta_ms", r.max_eta_ms, 60_000, 4 * 60 * MIN),
                (
                    "familiarity_margin_ms",
                    r.familiarity_margin_ms,
                    0,
                    30 * MIN,
                ),
                (
                    "sla_first_accept_ms",
                    r.sla_first_accept_ms,
                    1_000,
                    60 * MIN,
                ),
                (
                    "sla_community_on_scene_ms",
                    r.sla_community_on_scene_ms,
                    10_000,
                    4 * 60 * MIN,
                ),
                (
                    "ambulance_after_no_accept_ms",
                    r.ambulance_after_no_accept_ms,
                    0,
                    60 * MIN,
                ),
            ];
            for (key, v, lo, hi) in fields {
                if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                    return Err(format!("care_levels.{l}.{key}: {v} is outside {lo}..={hi}"));
                }
            }
        }
        if let MatchingMode::NearestRadius { radius_m, .. } = self.matching {
            if !(radius_m > 0.0 && radius_m <= 50_000.0) {
                return Err(format!(
                    "matching.radius_m: {radius_m} is outside (0, 50000]"
                ));
            }
        }
        Ok(())
    }

    /// The care level's rule, if the config has one.
    fn care_rule(&self, care_level: u8) -> Option<&CareLevelRule> {
        self.care_levels.iter().find(|r| r.level == care_level)
    }

    /// A field of an emergency's care-level rule under decision version `rules`: the config's
    /// (from version `since`), else the built-in table's (from version 5); `None` for other
    /// plans and earlier versions (the general value applies).
    fn care_field<T>(
        &self,
        plan: Plan,
        care_level: u8,
        rules: u32,
        since: u32,
        field: impl Fn(&CareLevelRule) -> Option<T>,
    ) -> Option<T> {
        if plan != Plan::Emergency || rules < since {
            return None;
        }
        self.care_rule(care_level)
            .and_then(&field)
            .or_else(|| (rules >= 5).then(|| field(&CareLevelRule::builtin(care_level)))?)
    }

    /// How far by road an emergency's search goes (`None`: no limit).
    pub fn max_eta_for(&self, plan: Plan, care_level: u8, rules: u32) -> Option<u64> {
        self.care_field(plan, care_level, rules, 5, |r| r.max_eta_ms)
    }

    /// The familiarity margin of an incident's ranking.
    pub fn familiarity_margin_for(&self, plan: Plan, care_level: u8, rules: u32) -> u64 {
        self.care_field(plan, care_level, rules, 5, |r| r.familiarity_margin_ms)
            .unwrap_or(self.familiarity_margin_ms)
    }

    /// An emergency's first-accept promise.
    pub fn sla_first_accept_for(&self, care_level: u8, rules: u32) -> u64 {
        self.care_field(Plan::Emergency, care_level, rules, 5, |r| {
            r.sla_first_accept_ms
        })
        .unwrap_or(self.sla_first_accept_ms)
    }

    /// An emergency's community on-scene promise.
    pub fn sla_community_on_scene_for(&self, care_level: u8, rules: u32) -> u64 {
        self.care_field(Plan::Emergency, care_level, rules, 5, |r| {
            r.sla_community_on_scene_ms
        })
        .unwrap_or(self.sla_community_on_scene_ms)
    }

    /// How long an emergency waits for a community accept before an ambulance goes.
    pub fn ambulance_after_for(&self, care_level: u8, rules: u32) -> u64 {
        self.care_field(Plan::Emergency, care_level, rules, 5, |r| {
            r.ambulance_after_no_accept_ms
        })
        .unwrap_or(self.ambulance_after_no_accept_ms)
    }

    /// Offers in wave `wave` of an emergency of an elder at `care_level` (decision version 3
    /// on; the general sizes otherwise, and for services and welfare visits).
    pub fn wave_size_for(&self, wave: u32, plan: Plan, care_level: u8, rules: u32) -> usize {
        let sizes = self.care_field(plan, care_level, rules, 3, |r| r.wave_sizes.clone());
        match sizes {
            Some(s) => {
                let i = (wave.max(1) - 1) as usize;
                s.get(i).or(s.last()).copied().unwrap_or(3).max(1) as usize
            }
            None => self.wave_size(wave),
        }
    }

    /// How long an offer stays open, for a plan and the elder's care level (decision version 3
    /// on for the care level).
    pub fn expiry_for(&self, plan: Plan, care_level: u8, rules: u32) -> u64 {
        let own = self.care_field(plan, care_level, rules, 3, |r| r.offer_expiry_ms);
        own.unwrap_or_else(|| self.expiry_ms(plan))
    }

    /// Offers in wave `wave` (1-based).
    pub fn wave_size(&self, wave: u32) -> usize {
        let i = (wave.max(1) - 1) as usize;
        self.wave_sizes
            .get(i)
            .or(self.wave_sizes.last())
            .copied()
            .unwrap_or(3)
            .max(1) as usize
    }

    /// The daily cap of assignments of a kind of responder (ambulances have none). Grid
    /// workers' and service staff's caps apply from decision version 3 (`rules`).
    pub fn daily_cap(&self, kind: ResponderKind, rules: u32) -> Option<u32> {
        match kind {
            ResponderKind::Volunteer => Some(self.volunteer_daily_cap),
            ResponderKind::GridWorker if rules >= 3 => Some(self.grid_worker_daily_cap),
            ResponderKind::ServiceStaff if rules >= 3 => Some(self.service_staff_daily_cap),
            _ => None,
        }
    }

    /// How long a responder of `kind` rests after leaving a job of `plan` they reached
    /// (`None`: no rest). Grid workers and service staff rest from decision version 3.
    pub fn rest_after(&self, kind: ResponderKind, plan: Plan, rules: u32) -> Option<u64> {
        let ms = match (kind, plan) {
            (ResponderKind::Volunteer, Plan::Emergency) => self.rest_after_emergency_ms,
            (ResponderKind::GridWorker, Plan::Emergency) if rules >= 3 => {
                self.grid_worker_rest_after_emergency_ms
            }
            (ResponderKind::ServiceStaff, _) if rules >= 3 => self.service_staff_rest_after_job_ms,
            _ => 0,
        };
        (ms > 0).then_some(ms)
    }

    /// The skill needed for a service, if any.
    pub fn skill_for(&self, service: ServiceKind) -> Option<&str> {
        self.service_skills
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, k)| k.as_str())
    }

    /// How long an offer of this plan stays open.
    pub fn expiry_ms(&self, plan: Plan) -> u64 {
        match plan {
            Plan::Emergency => self.offer_expiry_ms,
            Plan::Service | Plan::WelfareVisit => self.service_offer_expiry_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_design_section_4() {
        assert_eq!(Plan::of(AlertKind::Fall, None), Some(Plan::Emergency));
        assert_eq!(
            Plan::of(AlertKind::Help, Some(ServiceKind::Rescue)),
            Some(Plan::Emergency)
        );
        assert_eq!(
            Plan::of(AlertKind::Help, Some(ServiceKind::Meal)),
            Some(Plan::Service)
        );
        assert_eq!(Plan::of(AlertKind::Help, None), None);
        assert_eq!(
            Plan::of(AlertKind::CheckInMissed, None),
            Some(Plan::WelfareVisit)
        );
        let p: Vec<u8> = (1..=5).map(|l| Plan::Emergency.priority(l)).collect();
        assert_eq!(p, vec![3, 4, 4, 5, 5]);
    }

    #[test]
    fn waves_widen_then_repeat_the_last_size() {
        let c = PolicyConfig::default();
        let sizes: Vec<usize> = (1..=5).map(|w| c.wave_size(w)).collect();
        assert_eq!(sizes, vec![3, 5, 8, 8, 8]);
        assert_eq!(c.skill_for(ServiceKind::Medical), Some("medical_escort"));
        assert_eq!(c.skill_for(ServiceKind::Rescue), None);
    }

    #[test]
    fn validate_passes_the_defaults_and_names_the_key_it_refuses() {
        assert_eq!(PolicyConfig::default().validate(), Ok(()));
        let bad = [
            PolicyConfig {
                wave_sizes: vec![3, 0],
                ..PolicyConfig::default()
            },
            PolicyConfig {
                presence_grace_ms: 2 * 3_600_000,
                ..PolicyConfig::default()
            },
            PolicyConfig {
                ambulance_min_care_level: 0,
                ..PolicyConfig::default()
            },
            PolicyConfig {
                surge_candidates: 0,
                ..PolicyConfig::default()
            },
        ];
        let keys = [
            "wave_sizes",
            "presence_grace_ms",
            "ambulance_min_care_level",
            "surge_candidates",
        ];
        for (c, key) in bad.iter().zip(keys) {
            let e = c.validate().expect_err(key);
            assert!(e.starts_with(key), "{e}");
        }
    }

    #[test]
    fn a_care_level_rule_changes_only_its_emergencies() {
        let c = PolicyConfig {
            care_levels: vec![CareLevelRule {
                level: 5,
                wave_sizes: Some(vec![5, 8]),
                offer_expiry_ms: Some(25_000),
                ..CareLevelRule::default()
            }],
            ..PolicyConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
        let five: Vec<usize> = (1..=3)
            .map(|w| c.wave_size_for(w, Plan::Emergency, 5, 3))
            .collect();
        assert_eq!(five, vec![5, 8, 8]);
        assert_eq!(c.wave_size_for(1, Plan::Emergency, 4, 3), 3);
        assert_eq!(c.wave_size_for(1, Plan::Service, 5, 3), 3);
        assert_eq!(
            c.wave_size_for(1, Plan::Emergency, 5, 2),
            3,
            "not before version 3"
        );
        assert_eq!(c.expiry_for(Plan::Emergency, 5, 3), 25_000);
        assert_eq!(c.expiry_for(Plan::Emergency, 2, 3), 30_000);
        assert_eq!(c.expiry_for(Plan::WelfareVisit, 5, 3), 300_000);
        let twice = PolicyConfig {
            care_levels: vec![c.care_levels[0].clone(), c.care_levels[0].clone()],
            ..PolicyConfig::default()
        };
        assert!(twice.validate().unwrap_err().starts_with("care_levels"));
    }

    #[test]
    fn config_round_trips_through_json_and_fills_defaults() {
        let c: PolicyConfig = serde_json::from_str(r#"{"offer_expiry_ms": 10000}"#).unwrap();
        assert_eq!(c.offer_expiry_ms, 10_000);
        assert_eq!(c.familiarity_margin_ms, 60_000);
        let back: PolicyConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
