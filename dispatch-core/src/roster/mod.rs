//! Who exists: grids, responders, elders, operators and devices, as loaded from the roster
//! file (DESIGN §5.1) and changed at run time.

use crate::geo::LatLon;
use crate::ids::{DeviceId, ElderId, GridId, OperatorId, ResponderId};
use crate::model::{ResponderKind, TravelMode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod details;
mod regions;
mod roles;
#[cfg(test)]
mod tests;

pub use details::{ElderDetails, MAX_DETAIL_BYTES, MAX_DETAIL_ITEMS};
pub use regions::{RegionMap, RegionRecord};
pub use roles::{OperatorRole, Rights, RightsTable};

/// The roster file, exactly as a deployment writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterFile {
    #[serde(default)]
    pub grids: Vec<GridRecord>,
    #[serde(default)]
    pub responders: Vec<ResponderRecord>,
    #[serde(default)]
    pub elders: Vec<ElderRecord>,
    #[serde(default)]
    pub operators: Vec<OperatorRecord>,
    #[serde(default)]
    pub devices: Vec<DeviceRecord>,
    /// Dispatch regions (cluster mode runs one engine per region; see `regions.rs`). Absent:
    /// one region, 0, holding everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionRecord>,
}

impl RosterFile {
    /// How `self` (a roster file) differs from `service` (the roster a running service holds,
    /// after its run-time changes), one line per entry: `responders/V9: only in the service`,
    /// `responders/V2: only in the file`, `responders/V1: differs in token_sha256`. Empty when
    /// they hold the same entries (in any order).
    pub fn differences(&self, service: &RosterFile) -> Vec<String> {
        fn by_id(
            v: &serde_json::Value,
        ) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let e = e.as_object()?;
                    Some((e.get("id")?.as_str()?.to_string(), e.clone()))
                })
                .collect()
        }
        let (Ok(file), Ok(live)) = (serde_json::to_value(self), serde_json::to_value(service))
        else {
            return vec!["the rosters cannot be compared".into()];
        };
        let mut out = Vec::new();
        for section in ["grids", "responders", "elders", "operators", "devices"] {
            let (a, b) = (by_id(&file[section]), by_id(&live[section]));
            for (id, ea) in &a {
                match b.get(id) {
                    None => out.push(format!("{section}/{id}: only in the file")),
                    Some(eb) if ea != eb => {
                        let mut keys: Vec<&str> = ea
                            .keys()
                            .chain(eb.keys())
                            .map(String::as_str)
                            .filter(|k| ea.get(*k) != eb.get(*k))
                            .collect();
                        keys.sort_unstable();
                        keys.dedup();
                        out.push(format!("{section}/{id}: differs in {}", keys.join(", ")));
                    }
                    Some(_) => {}
                }
            }
            for id in b.keys().filter(|id| !a.contains_key(*id)) {
                out.push(format!("{section}/{id}: only in the service"));
            }
        }
        out
    }
}

/// A roster entry, as far as telling what a change to it is goes.
pub trait Entry: Clone + PartialEq {
    /// The entry with its token digest taken out (itself, for entries without one).
    fn without_token(&self) -> Self {
        self.clone()
    }
}

impl Entry for GridRecord {}
impl Entry for ElderRecord {}
impl Entry for ResponderRecord {
    fn without_token(&self) -> Self {
        ResponderRecord {
            token_sha256: None,
            ..self.clone()
        }
    }
}
impl Entry for OperatorRecord {
    fn without_token(&self) -> Self {
        OperatorRecord {
            token_sha256: String::new(),
            ..self.clone()
        }
    }
}
impl Entry for DeviceRecord {
    fn without_token(&self) -> Self {
        DeviceRecord {
            token_sha256: String::new(),
            ..self.clone()
        }
    }
}

/// What storing `new` where `old` was is: `added`, `changed`, or `token_issued` when only the
/// token digest differs (a run-time change's event and an import's report both say it).
pub fn change_of<T: Entry>(old: Option<&T>, new: &T) -> crate::event::RosterChange {
    use crate::event::RosterChange;
    match old {
        None => RosterChange::Added,
        Some(o) if o != new && o.without_token() == new.without_token() => {
            RosterChange::TokenIssued
        }
        Some(_) => RosterChange::Changed,
    }
}

/// One change of an import: what it does to which entry, and the command that does it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportStep {
    pub entry: crate::event::RosterEntry,
    pub id: String,
    pub change: crate::event::RosterChange,
    pub command: crate::command::Command,
}

impl RosterFile {
    /// The commands that make `service` (the roster a running service holds) equal to `self`
    /// (a roster file), in an order each can be applied in: grids, responders, elders,
    /// operators and devices added or changed first, then what the file no longer holds
    /// retired (devices, operators, elders, responders, grids: nothing is retired while an
    /// entry still in the file names it). Entries equal in both are left alone.
    pub fn import_steps(&self, service: &RosterFile, by: &crate::model::Actor) -> Vec<ImportStep> {
        use crate::command::Command as C;
        use crate::event::{RosterChange, RosterEntry as E};
        fn upserts<T: Entry>(
            file: &[T],
            live: &[T],
            id: impl Fn(&T) -> String,
            mut step: impl FnMut(String, RosterChange, T),
        ) {
            let live: BTreeMap<String, &T> = live.iter().map(|t| (id(t), t)).collect();
            for t in file {
                let old = live.get(&id(t)).copied();
                if old != Some(t) {
                    step(id(t), change_of(old, t), t.clone());
                }
            }
        }
        fn gone<T>(file: &[T], live: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
            let kept: std::collections::BTreeSet<String> = file.iter().map(&id).collect();
            live.iter().map(id).filter(|i| !kept.contains(i)).collect()
        }
        let mut out = Vec::new();
        let mut push = |entry, id, change, command| {
            out.push(ImportStep {
                entry,
                id,
                change,
                command,
            })
        };
        upserts(
            &self.grids,
            &service.grids,
            |g| g.id.to_string(),
            |id, c, grid| {
                push(
                    E::Grid,
                    id,
                    c,
                    C::UpsertGrid {
                        by: by.clone(),
                        grid,
                    },
                )
            },
        );
        // Kin name elders and elders name responders: kin are added after the elders, and
        // everyone else before them.
        let (kin, others): (Vec<ResponderRecord>, Vec<ResponderRecord>) = self
            .responders
            .iter()
            .cloned()
            .partition(|r| r.kind == ResponderKind::Kin);
        let responder_step = |id, c, responder| {
            (
                E::Responder,
                id,
                c,
                C::UpsertResponder {
                    by: by.clone(),
                    responder,
                },
            )
        };
        let mut steps = Vec::new();
        upserts(
            &others,
            &service.responders,
            |r| r.id.to_string(),
            |id, c, r| steps.push(responder_step(id, c, r)),
        );
        upserts(
            &self.elders,
            &service.elders,
            |e| e.id.to_string(),
            |id, c, elder| {
                steps.push((
                    E::Elder,
                    id,
                    c,
                    C::UpsertElder {
                        by: by.clone(),
                        elder,
                    },
                ))
            },
        );
        upserts(
            &kin,
            &service.responders,
            |r| r.id.to_string(),
            |id, c, r| steps.push(responder_step(id, c, r)),
        );
        for (entry, id, c, command) in steps {
            push(entry, id, c, command);
        }
        upserts(
            &self.operators,
            &service.operators,
            |o| o.id.to_string(),
            |id, c, operator| {
                push(
                    E::Operator,
                    id,
                    c,
                    C::UpsertOperator {
                        by: by.clone(),
                        operator,
                    },
                )
            },
        );
        upserts(
            &self.devices,
            &service.devices,
            |d| d.id.to_string(),
            |id, c, device| {
                push(
                    E::Device,
                    id,
                    c,
                    C::UpsertDevice {
                        by: by.clone(),
                        device,
                    },
                )
            },
        );
        let retired = RosterChange::Retired;
        for id in gone(&self.devices, &service.devices, |d| d.id.to_string()) {
            let device_id = DeviceId::from(id.as_str());
            push(
                E::Device,
                id,
                retired,
                C::RetireDevice {
                    by: by.clone(),
                    device_id,
                },
            );
        }
        for id in gone(&self.operators, &service.operators, |o| o.id.to_string()) {
            let operator_id = OperatorId::from(id.as_str());
            push(
                E::Operator,
                id,
                retired,
                C::RetireOperator {
                    by: by.clone(),
                    operator_id,
                },
            );
        }
        // Responders go before elders: an elder's kin must be gone before the elder.
        for id in gone(&self.responders, &service.responders, |r| r.id.to_string()) {
            let responder_id = ResponderId::from(id.as_str());
            push(
                E::Responder,
                id,
                retired,
                C::RetireResponder {
                    by: by.clone(),
                    responder_id,
                },
            );
        }
        for id in gone(&self.elders, &service.elders, |e| e.id.to_string()) {
            let elder_id = ElderId::from(id.as_str());
            push(
                E::Elder,
                id,
                retired,
                C::RetireElder {
                    by: by.clone(),
                    elder_id,
                },
            );
        }
        for id in gone(&self.grids, &service.grids, |g| g.id.to_string()) {
            let grid_id = GridId::from(id.as_str());
            push(
                E::Grid,
                id,
                retired,
                C::RetireGrid {
                    by: by.clone(),
                    grid_id,
                },
            );
        }
        out
    }
}

/// A grid: the small area one grid worker knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridRecord {
    pub id: GridId,
    #[serde(default)]
    pub name: String,
}

/// A responder as the roster describes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponderRecord {
    pub id: ResponderId,
    pub kind: ResponderKind,
    pub travel_mode: TravelMode,
    /// Walking speed for `foot` responders; the foot profile's default (4.5 km/h) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 30))]
    pub walk_kmh: Option<f64>,
    /// Where they start the day (and where an ambulance's base is).
    pub home: LatLon,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_id: Option<GridId>,
    #[serde(default)]
    pub skills: Vec<String>,
    /// A `kin` responder's elders (at least one, each on the roster); empty for every other
    /// kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub kin_of: Vec<ElderId>,
    /// SHA-256 (hex) of the bearer token of this responder's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub token_sha256: Option<String>,
}

/// An older person living at home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElderRecord {
    pub id: ElderId,
    pub home: LatLon,
    pub grid_id: GridId,
    /// Five-star needs level, 1 (light) to 5 (most urgent, widest help).
    #[schemars(range(min = 1, max = 5))]
    pub care_level: u8,
    /// Volunteers paired with this person ("60 helps 90"); familiar, so preferred.
    #[serde(default)]
    pub paired_responders: Vec<ResponderId>,
    /// Kin to inform (names or contacts; never sent to responders).
    #[serde(default)]
    pub family: Vec<String>,
    /// Who the person is, for the operators who call them and, of it, what the assigned
    /// responder needs at the door (never in an offer; see `ElderDetails`).
    // Boxed: most commands carry no elder, and every command is as large as its largest.
    #[serde(default, skip_serializing_if = "ElderDetails::is_empty")]
    pub details: Box<ElderDetails>,
    /// Recurring visits, calls and services ("a visit a week by V12"): see `care_plan`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub care_plan: Vec<crate::care_plan::CarePlanItem>,
    /// The daily check-in is due by this local time ("HH:MM", the deployment's
    /// `utc_offset_s`): with none since local midnight by then, the engine opens the welfare
    /// visit itself (decision version 4 on). Absent: no schedule (a device may still send
    /// `check_in_missed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub check_in_by: Option<String>,
}

/// An operator who may connect a console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRecord {
    pub id: OperatorId,
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub token_sha256: String,
    /// What this operator may do: `dispatch` (the operator stream and incident actions),
    /// `people` (people management and tokens), `care` (the time bank). Absent: every right
    /// (rosters written before roles).
    // Kept as names, not an enum, so that a bad one is refused naming the entry and the field
    // (`Rights::of`) rather than by serde with a line and column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "items" = {"enum": ["dispatch", "people", "care"]},
        "minItems" = 1,
        "uniqueItems" = true
    ))]
    pub roles: Option<Vec<String>>,
}

impl OperatorRecord {
    /// An operator with every right (no `roles` field).
    pub fn new(id: impl Into<OperatorId>, token_sha256: impl Into<String>) -> OperatorRecord {
        OperatorRecord {
            id: id.into(),
            token_sha256: token_sha256.into(),
            roles: None,
        }
    }

    /// The rights its `roles` give, or the refusal naming the entry and the field.
    pub fn rights(&self) -> Result<Rights, RosterError> {
        Rights::of(self.roles.as_deref()).map_err(|detail| RosterError::Invalid {
            entry: format!("operator {}", self.id),
            detail,
        })
    }
}

/// A device gateway that may send alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub id: DeviceId,
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub token_sha256: String,
}

/// Why a roster (file or run-time change) was refused; each variant names the entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RosterError {
    #[error("{entry}: unknown grid {grid}")]
    UnknownGrid { entry: String, grid: GridId },
    #[error("{entry}: unknown paired responder {responder}")]
    UnknownPairedResponder {
        entry: String,
        responder: ResponderId,
    },
    #[error("duplicate id {id} ({what})")]
    DuplicateId { what: &'static str, id: String },
    #[error("{entry}: position {position} is off the map: {detail}")]
    OffMap {
        entry: String,
        position: LatLon,
        detail: String,
    },
    #[error("{entry}: {detail}")]
    Invalid { entry: String, detail: String },
    #[error("{entry}: still referenced by {by}")]
    InUse { entry: String, by: String },
    #[error("unknown {what} {id}")]
    Unknown { what: &'static str, id: String },
    /// Retiring or restricting this operator would leave nobody who may manage people.
    #[error(
        "operator {0} is the last operator with the `people` role: it cannot be retired or \
         lose that role (give another operator the `people` role first)"
    )]
    LastPeopleOperator(OperatorId),
}

/// Who a bearer token belongs to (the server's auth lookup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Principal {
    Operator(OperatorId),
    Responder(ResponderId),
    Device(DeviceId),
}

impl Principal {
    /// The roster id as text.
    pub fn id(&self) -> &str {
        match self {
            Principal::Operator(id) => id.as_str(),
            Principal::Responder(id) => id.as_str(),
            Principal::Device(id) => id.as_str(),
        }
    }
}

/// Token digest (SHA-256 hex, lower case) → who holds it: the roster's own index, shared.
/// The server authenticates against the table the engine's roster holds at that moment
/// ([`Roster::token_table`]); a change to the roster makes a new table (copy on write), so
/// a reader never sees one half-updated and there is no second index to keep in step.
pub type TokenTable = Arc<HashMap<String, Principal>>;

/// The roster's grids, shared the same way as [`TokenTable`] ([`Roster::grid_table`]).
pub type GridTable = Arc<BTreeMap<GridId, GridRecord>>;

/// The run-time roster: validated, indexed, changed by operators.
///
/// Maps are `BTreeMap`s so that anything iterating them (views, snapshots) is deterministic.
/// The token index is a `HashMap` because it is only ever looked up, never iterated.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    grids: GridTable,
    responders: BTreeMap<ResponderId, ResponderRecord>,
    elders: BTreeMap<ElderId, ElderRecord>,
    operators: BTreeMap<OperatorId, OperatorRecord>,
    devices: BTreeMap<DeviceId, DeviceRecord>,
    /// Grid workers by grid, for "the elder's own grid worker first".
    grid_workers: BTreeMap<GridId, Vec<ResponderId>>,
    /// Kin by elder, for "first to kin".
    kin: BTreeMap<ElderId, Vec<ResponderId>>,
    /// sha256 hex (lower case) → who holds that token.
    tokens: TokenTable,
    /// Each operator's rights (from its `roles`), shared like the token table.
    rights: RightsTable,
    /// The fastest walking speed in the roster, for admissible ETA lower bounds. Only grows.
    max_walk_kmh: f64,
}

/// Checks a position is on the map; the engine passes its road network's check.
pub type OnMap<'a> = &'a dyn Fn(LatLon) -> Result<(), String>;

fn check_position(entry: &str, p: LatLon, on_map: OnMap) -> Result<(), RosterError> {
    let p = p.validate().map_err(|e| RosterError::Invalid {
        entry: entry.to_string(),
        detail: e.to_string(),
    })?;
    on_map(p).map_err(|detail| RosterError::OffMap {
        entry: entry.to_string(),
        position: p,
        detail,
    })
}

fn check_digest(entry: &str, digest: &str) -> Result<(), RosterError> {
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RosterError::Invalid {
            entry: entry.to_string(),
            detail: "token_sha256 is not 64 hex digits".into(),
        })
    }
}

impl Roster {
    /// Validates and indexes a roster file. The first problem found is returned, naming the
    /// entry (unknown grid, unknown paired responder, duplicate id, position off the map).
    pub fn from_file(file: RosterFile, on_map: OnMap) -> Result<Roster, RosterError> {
        // The regions section is checked here so that every mode refuses a bad one; an engine
        // holds no regions (cluster mode gives each region's engine its slice).
        file.region_map()?;
        let mut r = Roster {
            max_walk_kmh: 4.5,
            ..Roster::default()
        };
        for g in file.grids {
            if r.grids.contains_key(&g.id) {
                return Err(RosterError::DuplicateId {
                    what: "grid",
                    id: g.id.to_string(),
                });
            }
            Arc::make_mut(&mut r.grids).insert(g.id.clone(), g);
        }
        for p in file.responders {
            if r.responders.contains_key(&p.id) {
                return Err(RosterError::DuplicateId {
                    what: "responder",
                    id: p.id.to_string(),
                });
            }
            r.check_responder(&p, on_map)?;
            r.insert_responder(p);
        }
        for e in file.elders {
            if r.elders.contains_key(&e.id) {
                return Err(RosterError::DuplicateId {
                    what: "elder",
                    id: e.id.to_string(),
                });
            }
            r.check_elder(&e, on_map)?;
            r.elders.insert(e.id.clone(), e);
        }
        // Kin name elders, which come after the responders in the file.
        for p in r.responders.values() {
            r.check_kin(p)?;
        }
        for o in file.operators {
            if r.operators.contains_key(&o.id) {
                return Err(RosterError::DuplicateId {
                    what: "operator",
                    id: o.id.to_string(),
                });
            }
            check_digest(&format!("operator {}", o.id), &o.token_sha256)?;
            let rights = o.rights()?;
            Arc::make_mut(&mut r.tokens).insert(
                o.token_sha256.to_ascii_lowercase(),
                Principal::Operator(o.id.clone()),
            );
            Arc::make_mut(&mut r.rights).insert(o.id.clone(), rights);
            r.operators.insert(o.id.clone(), o);
        }
        if !r.operators.is_empty() && r.people_operators().next().is_none() {
            return Err(RosterError::Invalid {
                entry: "operators".into(),
                detail: "no operator has the `people` role, so nobody could manage people: \
                         give one the role (or omit `roles` for every right)"
                    .into(),
            });
        }
        for d in file.devices {
            if r.devices.contains_key(&d.id) {
                return Err(RosterError::DuplicateId {
                    what: "device",
                    id: d.id.to_string(),
                });
            }
            check_digest(&format!("device {}", d.id), &d.token_sha256)?;
            Arc::make_mut(&mut r.tokens).insert(
                d.token_sha256.to_ascii_lowercase(),
                Principal::Device(d.id.clone()),
            );
            r.devices.insert(d.id.clone(), d);
        }
        Ok(r)
    }

    /// The roster as a file again (for snapshots and the operators' export).
    pub fn to_file(&self) -> RosterFile {
        RosterFile {
            grids: self.grids.values().cloned().collect(),
            responders: self.responders.values().cloned().collect(),
            elders: self.elders.values().cloned().collect(),
            operators: self.operators.values().cloned().collect(),
            devices: self.devices.values().cloned().collect(),
            regions: Vec::new(),
        }
    }

    /// Everything but `kin_of` (`check_kin`: a file's kin are checked once its elders are in).
    fn check_responder(&self, p: &ResponderRecord, on_map: OnMap) -> Result<(), RosterError> {
        let entry = format!("responder {}", p.id);
        check_position(&entry, p.home, on_map)?;
        if let Some(g) = &p.grid_id {
            if !self.grids.contains_key(g) {
                return Err(RosterError::UnknownGrid {
                    entry,
                    grid: g.clone(),
                });
            }
        }
        if let Some(w) = p.walk_kmh {
            if !(w.is_finite() && w > 0.0 && w <= 30.0) {
                return Err(RosterError::Invalid {
                    entry,
                    detail: format!("walk_kmh {w} is not in (0, 30]"),
                });
            }
        }
        if let Some(t) = &p.token_sha256 {
            check_digest(&entry, t)?;
            if let Some(holder) = self.tokens.get(&t.to_ascii_lowercase()) {
                if *holder != Principal::Responder(p.id.clone()) {
                    return Err(RosterError::Invalid {
                        entry,
                        detail: "token_sha256 already belongs to someone else".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A `kin` responder names one to eight known elders, once each; nobody else names any.
    fn check_kin(&self, p: &ResponderRecord) -> Result<(), RosterError> {
        let entry = format!("responder {}", p.id);
        let invalid = |detail: String| RosterError::Invalid {
            entry: entry.clone(),
            detail,
        };
        if p.kind != ResponderKind::Kin {
            return match p.kin_of.is_empty() {
                true => Ok(()),
                false => Err(invalid(
                    "kin_of is only for responders of kind `kin`".into(),
                )),
            };
        }
        if p.kin_of.is_empty() || p.kin_of.len() > 8 {
            return Err(invalid(
                "a `kin` responder names their elder(s) in kin_of (1 to 8)".into(),
            ));
        }
        for (i, e) in p.kin_of.iter().enumerate() {
            if p.kin_of[..i].contains(e) {
                return Err(invalid(format!("kin_of names elder {e} twice")));
            }
            if !self.elders.contains_key(e) {
                return Err(invalid(format!("kin_of names unknown elder {e}")));
            }
        }
        Ok(())
    }

    fn check_elder(&self, e: &ElderRecord, on_map: OnMap) -> Result<(), RosterError> {
        let entry = format!("elder {}", e.id);
        check_position(&entry, e.home, on_map)?;
        if !self.grids.contains_key(&e.grid_id) {
            return Err(RosterError::UnknownGrid {
                entry,
                grid: e.grid_id.clone(),
            });
        }
        if !(1..=5).contains(&e.care_level) {
            return Err(RosterError::Invalid {
                entry,
                detail: format!("care_level {} is not in 1..=5", e.care_level),
            });
        }
        if let Err(detail) = e.details.check(&e.family) {
            return Err(RosterError::Invalid { entry, detail });
        }
        for p in &e.paired_responders {
            if !self.responders.contains_key(p) {
                return Err(RosterError::UnknownPairedResponder {
                    entry,
                    responder: p.clone(),
                });
            }
        }
        if let Some(by) = &e.check_in_by {
            if crate::care_plan::parse_hhmm(by, false).is_none() {
                return Err(RosterError::Invalid {
                    entry,
                    detail: format!(
                        "check_in_by: {by:?} is not a time of day \"HH:MM\" (00:00 to 23:59)"
                    ),
                });
            }
        }
        crate::care_plan::check_plan(&e.care_plan, &|r| self.responders.contains_key(r))
            .map_err(|detail| RosterError::Invalid { entry, detail })
    }

    fn insert_responder(&mut self, p: ResponderRecord) {
        self.remove_responder_indexes(&p.id);
        if let Some(w) = p.walk_kmh {
            self.max_walk_kmh = self.max_walk_kmh.max(w);
        }
        if let Some(t) = &p.token_sha256 {
            Arc::make_mut(&mut self.tokens)
                .insert(t.to_ascii_lowercase(), Principal::Responder(p.id.clone()));
        }
        if p.kind == ResponderKind::GridWorker {
            if let Some(g) = &p.grid_id {
                let v = self.grid_workers.entry(g.clone()).or_default();
                v.push(p.id.clone());
                v.sort();
            }
        }
        for e in &p.kin_of {
            let v = self.kin.entry(e.clone()).or_default();
            v.push(p.id.clone());
            v.sort();
        }
        self.responders.insert(p.id.clone(), p);
    }

    fn remove_responder_indexes(&mut self, id: &ResponderId) {
        if let Some(old) = self.responders.get(id) {
            if let Some(t) = &old.token_sha256 {
                Arc::make_mut(&mut self.tokens).remove(&t.to_ascii_lowercase());
            }
            if let Some(g) = &old.grid_id {
                if let Some(v) = self.grid_workers.get_mut(g) {
                    v.retain(|x| x != id);
                }
            }
            for e in &old.kin_of {
                if let Some(v) = self.kin.get_mut(e) {
                    v.retain(|x| x != id);
                    if v.is_empty() {
                        self.kin.remove(e);
                    }
                }
            }
        }
    }

    /// Adds or replaces an operator (a new `token_sha256` revokes the old one). Refused if
    /// it would take the `people` role from the last operator who has it.
    pub fn upsert_operator(&mut self, o: OperatorRecord) -> Result<(), RosterError> {
        let who = Principal::Operator(o.id.clone());
        self.check_token(&format!("operator {}", o.id), &o.token_sha256, &who)?;
        let rights = o.rights()?;
        if !rights.has(OperatorRole::People) {
            self.check_not_last_people_operator(&o.id)?;
        }
        let old = self.operators.insert(o.id.clone(), o.clone());
        self.swap_token(old.map(|o| o.token_sha256), Some((&o.token_sha256, who)));
        if self.rights.get(&o.id) != Some(&rights) {
            Arc::make_mut(&mut self.rights).insert(o.id.clone(), rights);
        }
        Ok(())
    }

    /// Removes an operator and their token; never the last one with the `people` role
    /// (nobody could manage people any more, nor add an operator).
    pub fn retire_operator(&mut self, id: &OperatorId) -> Result<OperatorRecord, RosterError> {
        if !self.operators.contains_key(id) {
            return Err(RosterError::Unknown {
                what: "operator",
                id: id.to_string(),
            });
        }
        self.check_not_last_people_operator(id)?;
        let old = self.operators.remove(id).expect("checked above");
        Arc::make_mut(&mut self.rights).remove(id);
        self.swap_token(Some(old.token_sha256.clone()), None);
        Ok(old)
    }

    /// Operators who may manage people.
    fn people_operators(&self) -> impl Iterator<Item = &OperatorId> {
        self.rights
            .iter()
            .filter(|(_, r)| r.has(OperatorRole::People))
            .map(|(id, _)| id)
    }

    /// Refuses when `id` is the only operator with the `people` role.
    fn check_not_last_people_operator(&self, id: &OperatorId) -> Result<(), RosterError> {
        let mut people = self.people_operators();
        match (people.next(), people.next()) {
            (Some(only), None) if only == id => Err(RosterError::LastPeopleOperator(id.clone())),
            _ => Ok(()),
        }
    }

    /// Adds or replaces a device gateway (a new `token_sha256` revokes the old one).
    pub fn upsert_device(&mut self, d: DeviceRecord) -> Result<(), RosterError> {
        let who = Principal::Device(d.id.clone());
        self.check_token(&format!("device {}", d.id), &d.token_sha256, &who)?;
        let old = self.devices.insert(d.id.clone(), d.clone());
        self.swap_token(old.map(|d| d.token_sha256), Some((&d.token_sha256, who)));
        Ok(())
    }

    /// Removes a device gateway and its token.
    pub fn retire_device(&mut self, id: &DeviceId) -> Result<DeviceRecord, RosterError> {
        let old = self
            .devices
            .remove(id)
            .ok_or_else(|| RosterError::Unknown {
                what: "device",
                id: id.to_string(),
            })?;
        self.swap_token(Some(old.token_sha256.clone()), None);
        Ok(old)
    }

    /// Moves a holder's token in the index: `old` out, `new` in (digests kept lower case).
    fn swap_token(&mut self, old: Option<String>, new: Option<(&str, Principal)>) {
        let tokens = Arc::make_mut(&mut self.tokens);
        if let Some(o) = old {
            tokens.remove(&o.to_ascii_lowercase());
        }
        if let Some((n, who)) = new {
            tokens.insert(n.to_ascii_lowercase(), who);
        }
    }

    /// A well-formed digest that nobody but `who` holds.
    fn check_token(&self, entry: &str, digest: &str, who: &Principal) -> Result<(), RosterError> {
        check_digest(entry, digest)?;
        match self.tokens.get(&digest.to_ascii_lowercase()) {
            Some(holder) if holder != who => Err(RosterError::Invalid {
                entry: entry.to_string(),
                detail: "token_sha256 already belongs to someone else".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Applies a journaled roster change (`Command::Upsert*` / `Retire*`) to this roster, as
    /// the engine did when it accepted it (positions were checked then, so they are not
    /// checked again: no road network is needed). Other commands change nothing here.
    pub fn replay_change(&mut self, cmd: &crate::command::Command) -> Result<(), RosterError> {
        use crate::command::Command as C;
        let anywhere: OnMap = &|_| Ok(());
        match cmd {
            C::UpsertGrid { grid, .. } => self.upsert_grid(grid.clone()),
            C::UpsertResponder { responder, .. } => {
                self.upsert_responder(responder.clone(), anywhere)
            }
            C::RetireResponder { responder_id, .. } => {
                self.retire_responder(responder_id).map(drop)
            }
            C::UpsertElder { elder, .. } => self.upsert_elder(elder.clone(), anywhere),
            C::RetireElder { elder_id, .. } => self.retire_elder(elder_id).map(drop),
            C::RetireGrid { grid_id, .. } => self.retire_grid(grid_id).map(drop),
            C::UpsertOperator { operator, .. } => self.upsert_operator(operator.clone()),
            C::RetireOperator { operator_id, .. } => self.retire_operator(operator_id).map(drop),
            C::UpsertDevice { device, .. } => self.upsert_device(device.clone()),
            C::RetireDevice { device_id, .. } => self.retire_device(device_id).map(drop),
            _ => Ok(()),
        }
    }

    /// Checks an added or edited grid (always acceptable; here for symmetry and future rules).
    pub fn upsert_grid(&mut self, g: GridRecord) -> Result<(), RosterError> {
        Arc::make_mut(&mut self.grids).insert(g.id.clone(), g);
        Ok(())
    }

    /// Validates then adds or replaces a responder. Nothing changes on error.
    pub fn upsert_responder(
        &mut self,
        p: ResponderRecord,
        on_map: OnMap,
    ) -> Result<(), RosterError> {
        self.check_responder(&p, on_map)?;
        self.check_kin(&p)?;
        self.insert_responder(p);
        Ok(())
    }

    /// Validates then adds or replaces an elder. Nothing changes on error.
    pub fn upsert_elder(&mut self, e: ElderRecord, on_map: OnMap) -> Result<(), RosterError> {
        self.check_elder(&e, on_map)?;
        self.elders.insert(e.id.clone(), e);
        Ok(())
    }

    /// Checks a responder can be retired (pairings naming them are dropped by `retire_responder`).
    pub fn check_retire_responder(&self, id: &ResponderId) -> Result<(), RosterError> {
        if self.responders.contains_key(id) {
            Ok(())
        } else {
            Err(RosterError::Unknown {
                what: "responder",
                id: id.to_string(),
            })
        }
    }

    /// Removes a responder and every pairing that names them; care-plan items that planned
    /// them fall back to the elder's grid worker.
    pub fn retire_responder(&mut self, id: &ResponderId) -> Result<ResponderRecord, RosterError> {
        self.check_retire_responder(id)?;
        self.remove_responder_indexes(id);
        for e in self.elders.values_mut() {
            e.paired_responders.retain(|p| p != id);
            for item in &mut e.care_plan {
                if item.planned_responder.as_ref() == Some(id) {
                    item.planned_responder = None;
                }
            }
        }
        Ok(self.responders.remove(id).expect("checked above"))
    }

    /// Removes an elder; refused while a `kin` responder is bound to them (retire the kin, or
    /// bind them to nobody else first: a family member is on the roster for their elder).
    pub fn retire_elder(&mut self, id: &ElderId) -> Result<ElderRecord, RosterError> {
        if let Some(k) = self.kin_of_elder(id).first() {
            return Err(RosterError::InUse {
                entry: format!("elder {id}"),
                by: format!("responder {k} (kin)"),
            });
        }
        self.elders.remove(id).ok_or_else(|| RosterError::Unknown {
            what: "elder",
            id: id.to_string(),
        })
    }

    /// Removes a grid nobody belongs to any more.
    pub fn retire_grid(&mut self, id: &GridId) -> Result<GridRecord, RosterError> {
        if !self.grids.contains_key(id) {
            return Err(RosterError::Unknown {
                what: "grid",
                id: id.to_string(),
            });
        }
        let entry = format!("grid {id}");
        if let Some(e) = self.elders.values().find(|e| &e.grid_id == id) {
            return Err(RosterError::InUse {
                entry,
                by: format!("elder {}", e.id),
            });
        }
        if let Some(p) = self
            .responders
            .values()
            .find(|p| p.grid_id.as_ref() == Some(id))
        {
            return Err(RosterError::InUse {
                entry,
                by: format!("responder {}", p.id),
            });
        }
        self.grid_workers.remove(id);
        Ok(Arc::make_mut(&mut self.grids)
            .remove(id)
            .expect("checked above"))
    }

    pub fn grid(&self, id: &GridId) -> Option<&GridRecord> {
        self.grids.get(id)
    }
    pub fn responder(&self, id: &ResponderId) -> Option<&ResponderRecord> {
        self.responders.get(id)
    }
    pub fn elder(&self, id: &ElderId) -> Option<&ElderRecord> {
        self.elders.get(id)
    }
    pub fn operator(&self, id: &OperatorId) -> Option<&OperatorRecord> {
        self.operators.get(id)
    }
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceRecord> {
        self.devices.get(id)
    }
    pub fn grids(&self) -> impl Iterator<Item = &GridRecord> {
        self.grids.values()
    }
    pub fn responders(&self) -> impl Iterator<Item = &ResponderRecord> {
        self.responders.values()
    }
    pub fn elders(&self) -> impl Iterator<Item = &ElderRecord> {
        self.elders.values()
    }
    /// The grid workers of a grid, sorted by id.
    pub fn grid_workers(&self, grid: &GridId) -> &[ResponderId] {
        self.grid_workers
            .get(grid)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    /// Whether `responder` is kin of `elder`.
    pub fn is_kin(&self, elder: &ElderId, responder: &ResponderRecord) -> bool {
        responder.kind == ResponderKind::Kin && responder.kin_of.contains(elder)
    }
    /// The kin bound to an elder, sorted by id.
    pub fn kin_of_elder(&self, elder: &ElderId) -> &[ResponderId] {
        self.kin.get(elder).map(Vec::as_slice).unwrap_or(&[])
    }
    /// The token index as it is now (cheap: a shared pointer). See [`TokenTable`].
    /// The grids (shared; a new table after each change of a grid).
    pub fn grid_table(&self) -> GridTable {
        self.grids.clone()
    }

    pub fn token_table(&self) -> TokenTable {
        self.tokens.clone()
    }

    /// Each operator's rights as they are now (cheap: a shared pointer). See [`RightsTable`].
    pub fn rights_table(&self) -> RightsTable {
        self.rights.clone()
    }

    /// An operator's rights (`None`: no such operator).
    pub fn operator_rights(&self, id: &OperatorId) -> Option<Rights> {
        self.rights.get(id).copied()
    }
    /// Who holds the token with this SHA-256 digest (hex, any case). A hash-map lookup.
    pub fn principal_for_digest(&self, sha256_hex: &str) -> Option<&Principal> {
        if sha256_hex.bytes().any(|b| b.is_ascii_uppercase()) {
            self.tokens.get(&sha256_hex.to_ascii_lowercase())
        } else {
            self.tokens.get(sha256_hex)
        }
    }
    /// The fastest walking speed any responder has had (km/h), at least the default 4.5.
    pub fn max_walk_kmh(&self) -> f64 {
        self.max_walk_kmh
    }
    /// Whether `responder` is familiar to `elder`: paired with them, or their grid's worker.
    pub fn is_familiar(
        &self,
        elder: &ElderRecord,
        responder: &ResponderRecord,
    ) -> Option<&'static str> {
        if elder.paired_responders.contains(&responder.id) {
            Some("paired volunteer")
        } else if responder.kind == ResponderKind::GridWorker
            && responder.grid_id.as_ref() == Some(&elder.grid_id)
        {
            Some("own grid worker")
        } else {
            None
        }
    }
}
