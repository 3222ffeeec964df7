//! Dispatch regions: which grids, and so which elders and responders, each region's engine
//! holds (cluster mode runs one engine per region, docs/cluster.md; embedded mode runs one
//! engine for all of them and only checks the section).
//!
//! The roster's `regions` section lists each region's grids. A grid no region lists is in
//! region 0, and a roster without the section is one region, 0, so rosters written before
//! regions mean what they meant. Everybody else follows the grids:
//! - an elder is in their grid's region;
//! - a responder with a grid is in its region; one without (an ambulance, a city-wide team) is
//!   in the region that lists them under `responders`, else region 0;
//! - kin are in the region of the elders they are kin of (all of them in one region);
//! - operators and devices are credentials, not people to dispatch: every region has them.
//!
//! A region's engine offers only its own responders, so references across regions are refused
//! when the roster loads (an elder paired with a volunteer of another region, kin of elders in
//! two regions): two engines never offer the same person. Borrowing across a border is designed
//! in docs/cluster.md, "Cross-region help".

use super::{ResponderRecord, RosterError, RosterFile};
use crate::ids::{ElderId, GridId, ResponderId};
use crate::journal::RegionId;
use crate::model::ResponderKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// One region as the roster describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionRecord {
    /// The region's number: it names its stream, lease and snapshot in cluster mode, and
    /// `dispatch serve --region`.
    pub id: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The grids this region dispatches for (at least one).
    #[schemars(length(min = 1))]
    pub grids: Vec<GridId>,
    /// Responders without a grid (ambulances) this region dispatches; the others are in their
    /// grid's region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<ResponderId>,
}

/// Who is in which region, as a roster file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionMap {
    grids: HashMap<GridId, RegionId>,
    elders: HashMap<ElderId, RegionId>,
    responders: HashMap<ResponderId, RegionId>,
    regions: BTreeSet<RegionId>,
}

impl RegionMap {
    /// The regions, in order (region 0 among them when anything falls in it).
    pub fn regions(&self) -> impl Iterator<Item = RegionId> + '_ {
        self.regions.iter().copied()
    }

    pub fn contains(&self, region: RegionId) -> bool {
        self.regions.contains(&region)
    }

    pub fn of_grid(&self, id: &GridId) -> Option<RegionId> {
        self.grids.get(id).copied()
    }

    pub fn of_elder(&self, id: &ElderId) -> Option<RegionId> {
        self.elders.get(id).copied()
    }

    pub fn of_responder(&self, id: &ResponderId) -> Option<RegionId> {
        self.responders.get(id).copied()
    }
}

impl RosterFile {
    /// Who is in which region, or the refusal naming the entry: a region listing an unknown
    /// grid or responder, a grid or responder in two regions, a region id used twice, a
    /// region without grids, references across regions (see the module's comment).
    pub fn region_map(&self) -> Result<RegionMap, RosterError> {
        let invalid = |entry: String, detail: String| RosterError::Invalid { entry, detail };
        let mut map = RegionMap::default();
        let grid_known: BTreeSet<&GridId> = self.grids.iter().map(|g| &g.id).collect();
        let by_id: HashMap<&ResponderId, &ResponderRecord> =
            self.responders.iter().map(|r| (&r.id, r)).collect();
        let mut listed: HashMap<&ResponderId, RegionId> = HashMap::new();
        for r in &self.regions {
            let entry = format!("region {}", r.id);
            let id = RegionId(r.id);
            if !map.regions.insert(id) {
                return Err(RosterError::DuplicateId {
                    what: "region",
                    id: r.id.to_string(),
                });
            }
            if r.grids.is_empty() {
                return Err(invalid(entry, "lists no grids".into()));
            }
            for g in &r.grids {
                if !grid_known.contains(g) {
                    return Err(RosterError::UnknownGrid {
                        entry,
                        grid: g.clone(),
                    });
                }
                if let Some(other) = map.grids.insert(g.clone(), id) {
                    return Err(invalid(
                        entry,
                        format!("grid {g} is already in region {}", other.0),
                    ));
                }
            }
            for p in &r.responders {
                let Some(rec) = by_id.get(p) else {
                    return Err(invalid(entry, format!("unknown responder {p}")));
                };
                if rec.grid_id.is_some() || rec.kind == ResponderKind::Kin {
                    return Err(invalid(
                        entry,
                        format!(
                            "responder {p} is in the region of their {} (only responders \
                             without a grid are listed)",
                            if rec.kind == ResponderKind::Kin {
                                "elders"
                            } else {
                                "grid"
                            }
                        ),
                    ));
                }
                if let Some(other) = listed.insert(p, id) {
                    return Err(invalid(
                        entry,
                        format!("responder {p} is already in region {}", other.0),
                    ));
                }
            }
        }
        let default = RegionId(0);
        for g in &self.grids {
            map.grids.entry(g.id.clone()).or_insert(default);
        }
        for e in &self.elders {
            let Some(region) = map.grids.get(&e.grid_id).copied() else {
                return Err(RosterError::UnknownGrid {
                    entry: format!("elder {}", e.id),
                    grid: e.grid_id.clone(),
                });
            };
            map.elders.insert(e.id.clone(), region);
        }
        for p in &self.responders {
            let region = if p.kind == ResponderKind::Kin {
                let mut of = p.kin_of.iter().filter_map(|e| map.elders.get(e).copied());
                let first = of.next().unwrap_or(default);
                if let Some(other) = of.find(|r| *r != first) {
                    return Err(invalid(
                        format!("responder {}", p.id),
                        format!(
                            "kin of elders in regions {} and {}: kin are in their elders' region",
                            first.0, other.0
                        ),
                    ));
                }
                first
            } else if let Some(g) = &p.grid_id {
                match map.grids.get(g) {
                    Some(r) => *r,
                    None => {
                        return Err(RosterError::UnknownGrid {
                            entry: format!("responder {}", p.id),
                            grid: g.clone(),
                        })
                    }
                }
            } else {
                listed.get(&p.id).copied().unwrap_or(default)
            };
            map.responders.insert(p.id.clone(), region);
        }
        for e in &self.elders {
            let here = map.elders[&e.id];
            let planned = e
                .care_plan
                .iter()
                .filter_map(|i| i.planned_responder.as_ref());
            for p in planned {
                if let Some(there) = map.responders.get(p).filter(|r| **r != here) {
                    return Err(invalid(
                        format!("elder {}", e.id),
                        format!(
                            "care plan names responder {p} of region {}, the elder is in \
                             region {} (a region's engine holds only its own responders)",
                            there.0, here.0
                        ),
                    ));
                }
            }
            for p in &e.paired_responders {
                if let Some(there) = map.responders.get(p).filter(|r| **r != here) {
                    return Err(invalid(
                        format!("elder {}", e.id),
                        format!(
                            "paired responder {p} is in region {}, the elder in region {} \
                             (a region's engine offers only its own responders)",
                            there.0, here.0
                        ),
                    ));
                }
            }
        }
        let uses_default = self.regions.is_empty()
            || map.grids.values().any(|r| *r == default)
            || map.responders.values().any(|r| *r == default);
        if uses_default {
            map.regions.insert(default);
        }
        Ok(map)
    }

    /// What region `region`'s engine holds: its grids, elders and responders, and every
    /// operator and device; no `regions` section (an engine is one region).
    pub fn region_slice(&self, map: &RegionMap, region: RegionId) -> RosterFile {
        RosterFile {
            grids: self
                .grids
                .iter()
                .filter(|g| map.of_grid(&g.id) == Some(region))
                .cloned()
                .collect(),
            responders: self
                .responders
                .iter()
                .filter(|r| map.of_responder(&r.id) == Some(region))
                .cloned()
                .collect(),
            elders: self
                .elders
                .iter()
                .filter(|e| map.of_elder(&e.id) == Some(region))
                .cloned()
                .collect(),
            operators: self.operators.clone(),
            devices: self.devices.clone(),
            regions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ElderRecord, GridRecord, Roster};
    use super::*;
    use crate::geo::LatLon;
    use crate::model::TravelMode;

    fn grid(id: &str) -> GridRecord {
        GridRecord {
            id: id.into(),
            name: String::new(),
        }
    }

    fn elder(id: &str, grid: &str, paired: &[&str]) -> ElderRecord {
        ElderRecord {
            id: id.into(),
            home: LatLon::new(-30.03, -51.22).unwrap(),
            grid_id: grid.into(),
            care_level: 3,
            paired_responders: paired.iter().map(|p| ResponderId::from(*p)).collect(),
            family: Vec::new(),
            details: Default::default(),
            care_plan: Vec::new(),
            check_in_by: None,
        }
    }

    fn responder(
        id: &str,
        kind: ResponderKind,
        grid: Option<&str>,
        kin_of: &[&str],
    ) -> ResponderRecord {
        ResponderRecord {
            id: id.into(),
            kind,
            travel_mode: if kind == ResponderKind::Ambulance {
                TravelMode::Car
            } else {
                TravelMode::Foot
            },
            walk_kmh: None,
            home: LatLon::new(-30.03, -51.22).unwrap(),
            grid_id: grid.map(GridId::from),
            skills: Vec::new(),
            kin_of: kin_of.iter().map(|e| ElderId::from(*e)).collect(),
            token_sha256: None,
        }
    }

    fn region(id: u16, grids: &[&str], responders: &[&str]) -> RegionRecord {
        RegionRecord {
            id,
            name: format!("R{id}"),
            grids: grids.iter().map(|g| GridId::from(*g)).collect(),
            responders: responders.iter().map(|r| ResponderId::from(*r)).collect(),
        }
    }

    /// Three grids, two of them in regions 1 and 2, one left to region 0; an elder, a
    /// volunteer and kin in each of the named regions; two ambulances, one listed.
    fn roster() -> RosterFile {
        use ResponderKind::*;
        RosterFile {
            grids: vec![grid("G1"), grid("G2"), grid("G3")],
            elders: vec![
                elder("E1", "G1", &["V1"]),
                elder("E2", "G2", &["V2"]),
                elder("E3", "G3", &[]),
            ],
            responders: vec![
                responder("V1", Volunteer, Some("G1"), &[]),
                responder("V2", Volunteer, Some("G2"), &[]),
                responder("K2", Kin, None, &["E2"]),
                responder("A1", Ambulance, None, &[]),
                responder("A2", Ambulance, None, &[]),
            ],
            regions: vec![region(1, &["G1"], &["A1"]), region(2, &["G2"], &[])],
            ..RosterFile::default()
        }
    }

    #[test]
    fn a_roster_without_regions_is_one_region_holding_everything() {
        let mut file = roster();
        file.regions.clear();
        let map = file.region_map().unwrap();
        assert_eq!(map.regions().collect::<Vec<_>>(), vec![RegionId(0)]);
        let mut slice = file.region_slice(&map, RegionId(0));
        slice.regions = file.regions.clone();
        assert_eq!(slice, file);
    }

    #[test]
    fn people_follow_their_grids_and_every_one_is_in_exactly_one_slice() {
        let file = roster();
        let map = file.region_map().unwrap();
        assert_eq!(
            map.regions().collect::<Vec<_>>(),
            vec![RegionId(0), RegionId(1), RegionId(2)]
        );
        assert_eq!(map.of_elder(&"E2".into()), Some(RegionId(2)));
        assert_eq!(map.of_responder(&"K2".into()), Some(RegionId(2)));
        assert_eq!(map.of_responder(&"A1".into()), Some(RegionId(1)));
        assert_eq!(map.of_responder(&"A2".into()), Some(RegionId(0)));
        assert_eq!(map.of_grid(&"G3".into()), Some(RegionId(0)));
        let slices: Vec<RosterFile> = map.regions().map(|r| file.region_slice(&map, r)).collect();
        let mut elders: Vec<String> = slices
            .iter()
            .flat_map(|s| s.elders.iter().map(|e| e.id.to_string()))
            .collect();
        let mut responders: Vec<String> = slices
            .iter()
            .flat_map(|s| s.responders.iter().map(|r| r.id.to_string()))
            .collect();
        elders.sort();
        responders.sort();
        assert_eq!(elders, ["E1", "E2", "E3"]);
        assert_eq!(responders, ["A1", "A2", "K2", "V1", "V2"]);
        // The whole roster is one engine's in embedded mode, and each slice is a roster an
        // engine accepts on its own.
        Roster::from_file(file.clone(), &|_| Ok(())).unwrap();
        for s in slices {
            Roster::from_file(s, &|_| Ok(())).unwrap();
        }
    }

    #[test]
    fn a_roster_whose_regions_name_everything_has_no_region_0() {
        let mut file = roster();
        file.regions = vec![
            region(1, &["G1", "G3"], &["A1", "A2"]),
            region(2, &["G2"], &[]),
        ];
        let map = file.region_map().unwrap();
        assert_eq!(
            map.regions().collect::<Vec<_>>(),
            vec![RegionId(1), RegionId(2)]
        );
        assert!(!map.contains(RegionId(0)));
    }

    #[test]
    fn bad_regions_are_refused_naming_the_entry() {
        let refused = |change: &dyn Fn(&mut RosterFile)| {
            let mut file = roster();
            change(&mut file);
            file.region_map().unwrap_err().to_string()
        };
        assert_eq!(refused(&|f| f.regions[1].id = 1), "duplicate id 1 (region)");
        assert_eq!(
            refused(&|f| f.regions[1].grids.push("G9".into())),
            "region 2: unknown grid G9"
        );
        assert_eq!(
            refused(&|f| f.regions[1].grids.push("G1".into())),
            "region 2: grid G1 is already in region 1"
        );
        assert_eq!(
            refused(&|f| f.regions[1].grids.clear()),
            "region 2: lists no grids"
        );
        assert_eq!(
            refused(&|f| f.regions[1].responders.push("V9".into())),
            "region 2: unknown responder V9"
        );
        assert!(refused(&|f| f.regions[1].responders.push("V1".into()))
            .starts_with("region 2: responder V1 is in the region of their grid"));
        assert_eq!(
            refused(&|f| f.regions[1].responders.push("A1".into())),
            "region 2: responder A1 is already in region 1"
        );
        assert!(
            refused(&|f| f.elders[1].paired_responders.push("V1".into()))
                .starts_with("elder E2: paired responder V1 is in region 1, the elder in region 2")
        );
        assert!(refused(&|f| f.elders[1].care_plan.push(
            serde_json::from_value(serde_json::json!({
                "id": "visit", "kind": "visit", "period": "week", "planned_responder": "V1"
            }))
            .unwrap()
        ))
        .starts_with(
            "elder E2: care plan names responder V1 of region 1, the elder is in region 2"
        ));
        assert_eq!(
            refused(&|f| f.responders[2].kin_of.push("E1".into())),
            "responder K2: kin of elders in regions 2 and 1: kin are in their elders' region"
        );
    }
}
