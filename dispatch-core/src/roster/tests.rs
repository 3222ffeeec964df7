//! Tests of the roster's pure parts: how a roster file differs from the service's roster;
//! operator roles (validation, the last operator who may manage people).

use super::*;

fn grid(id: &str, name: &str) -> GridRecord {
    GridRecord {
        id: GridId::from(id),
        name: name.into(),
    }
}

#[test]
fn differences_name_each_entry_and_field() {
    let file = RosterFile {
        grids: vec![grid("G1", "Centro"), grid("G2", "Norte")],
        ..RosterFile::default()
    };
    assert!(file.differences(&file).is_empty());
    let mut reordered = file.clone();
    reordered.grids.reverse();
    assert!(file.differences(&reordered).is_empty());
    let service = RosterFile {
        grids: vec![grid("G1", "Centro Histórico"), grid("G3", "Sul")],
        ..RosterFile::default()
    };
    assert_eq!(
        file.differences(&service),
        vec![
            "grids/G1: differs in name",
            "grids/G2: only in the file",
            "grids/G3: only in the service",
        ]
    );
}

fn operator(id: &str, n: u8, roles: Option<&[&str]>) -> OperatorRecord {
    OperatorRecord {
        roles: roles.map(|r| r.iter().map(|s| s.to_string()).collect()),
        ..OperatorRecord::new(id, format!("{n:02x}").repeat(32))
    }
}

fn with_operators(ops: Vec<OperatorRecord>) -> Result<Roster, RosterError> {
    let file = RosterFile {
        operators: ops,
        ..RosterFile::default()
    };
    Roster::from_file(file, &|_| Ok(()))
}

#[test]
fn an_operator_without_roles_has_every_right_and_roles_restrict() {
    let r = with_operators(vec![
        operator("OP1", 1, None),
        operator("OP2", 2, Some(&["dispatch"])),
    ])
    .unwrap();
    assert_eq!(r.operator_rights(&"OP1".into()), Some(Rights::ALL));
    let op2 = r.operator_rights(&"OP2".into()).unwrap();
    assert!(op2.has(OperatorRole::Dispatch) && !op2.has(OperatorRole::People));
    assert_eq!(r.rights_table().len(), 2);
    // The roles go back out exactly as they came in (export, snapshots).
    let back = r.to_file().operators;
    assert_eq!(back[0].roles, None);
    assert_eq!(back[1].roles, Some(vec!["dispatch".to_string()]));
    let json = serde_json::to_value(&back[0]).unwrap();
    assert!(json.get("roles").is_none(), "{json}");
}

#[test]
fn an_unknown_role_is_refused_naming_the_entry_and_field() {
    let e = with_operators(vec![
        operator("OP1", 1, None),
        operator("OP2", 2, Some(&["dispatch", "admin"])),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("operator OP2") && e.contains("roles") && e.contains("admin"),
        "{e}"
    );
    let mut r = with_operators(vec![operator("OP1", 1, None)]).unwrap();
    let e = r
        .upsert_operator(operator("OP3", 3, Some(&[])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("operator OP3") && e.contains("roles"), "{e}");
    assert!(r.operator(&"OP3".into()).is_none());
}

#[test]
fn a_roster_whose_operators_cannot_manage_people_is_refused() {
    let e = with_operators(vec![
        operator("OP1", 1, Some(&["dispatch"])),
        operator("OP2", 2, Some(&["care"])),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("operators") && e.contains("people"), "{e}");
    // No operator at all stays allowed (as before roles).
    assert!(with_operators(vec![]).is_ok());
}

#[test]
fn the_last_operator_with_people_rights_is_never_retired_nor_restricted() {
    let mut r = with_operators(vec![
        operator("OP1", 1, Some(&["people"])),
        operator("OP2", 2, Some(&["dispatch", "care"])),
    ])
    .unwrap();
    let last = RosterError::LastPeopleOperator("OP1".into());
    assert_eq!(r.retire_operator(&"OP1".into()), Err(last.clone()));
    assert_eq!(
        r.upsert_operator(operator("OP1", 1, Some(&["dispatch"]))),
        Err(last.clone())
    );
    assert!(r
        .operator_rights(&"OP1".into())
        .unwrap()
        .has(OperatorRole::People));
    // Operators without the role come and go freely.
    r.retire_operator(&"OP2".into()).unwrap();
    // Once another has the role, either may lose it.
    r.upsert_operator(operator("OP3", 3, None)).unwrap();
    r.upsert_operator(operator("OP1", 1, Some(&["care"])))
        .unwrap();
    assert_eq!(
        r.retire_operator(&"OP3".into()),
        Err(RosterError::LastPeopleOperator("OP3".into()))
    );
    r.upsert_operator(operator("OP1", 1, None)).unwrap();
    r.retire_operator(&"OP3".into()).unwrap();
    assert_eq!(
        r.retire_operator(&"OP1".into()),
        Err(RosterError::LastPeopleOperator("OP1".into()))
    );
}

/// A small random roster over a fixed universe of ids (each present or not, each field
/// drawn from a few values), valid by construction: OP1 (every right) and grid G1 always.
fn random_roster(seed: u64) -> RosterFile {
    let mut x = seed | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let digest = |id: &str, version: u64| {
        let n: u64 = id.bytes().map(u64::from).sum::<u64>() * 8 + version;
        format!("{n:064x}")
    };
    let home = |k: u64| LatLon {
        lat: -30.03 + k as f64 * 0.001,
        lon: -51.22,
    };
    let mut r = RosterFile::default();
    for (i, id) in ["G1", "G2", "G3"].iter().enumerate() {
        if i == 0 || next(2) == 0 {
            r.grids
                .push(grid(id, ["Centro", "Norte"][next(2) as usize]));
        }
    }
    let grids: Vec<GridId> = r.grids.iter().map(|g| g.id.clone()).collect();
    for id in ["V1", "V2", "V3", "V4", "V5"] {
        if next(3) == 0 {
            continue;
        }
        r.responders.push(ResponderRecord {
            kin_of: Vec::new(),
            id: id.into(),
            kind: ResponderKind::Volunteer,
            travel_mode: crate::model::TravelMode::Foot,
            walk_kmh: None,
            home: home(next(3)),
            grid_id: (next(2) == 0).then(|| grids[next(grids.len() as u64) as usize].clone()),
            skills: if next(2) == 0 {
                vec![]
            } else {
                vec!["cleaning".into()]
            },
            token_sha256: (next(3) > 0).then(|| digest(id, next(3))),
        });
    }
    let responders: Vec<ResponderId> = r.responders.iter().map(|p| p.id.clone()).collect();
    for id in ["E1", "E2", "E3"] {
        if next(3) == 0 {
            continue;
        }
        let paired = match responders.len() {
            0 => vec![],
            n => vec![responders[next(n as u64) as usize].clone()],
        };
        r.elders.push(ElderRecord {
            id: id.into(),
            home: home(next(3)),
            grid_id: grids[next(grids.len() as u64) as usize].clone(),
            care_level: 1 + next(5) as u8,
            paired_responders: if next(2) == 0 { vec![] } else { paired },
            family: vec![],
            details: Default::default(),
            care_plan: Vec::new(),
            check_in_by: None,
        });
    }
    // A family member bound to one of the elders (kin name elders, elders name responders:
    // an import must order its steps around both).
    if !r.elders.is_empty() && next(2) == 0 {
        let elder = r.elders[next(r.elders.len() as u64) as usize].id.clone();
        r.responders.push(ResponderRecord {
            kin_of: vec![elder],
            id: "K1".into(),
            kind: ResponderKind::Kin,
            travel_mode: crate::model::TravelMode::Foot,
            walk_kmh: None,
            home: home(next(3)),
            grid_id: None,
            skills: vec![],
            token_sha256: (next(2) == 0).then(|| digest("K1", next(3))),
        });
    }
    r.operators
        .push(OperatorRecord::new("OP1", digest("OP1", next(3))));
    if next(2) == 0 {
        r.operators.push(OperatorRecord {
            roles: Some(vec!["dispatch".into()]),
            ..OperatorRecord::new("OP2", digest("OP2", next(3)))
        });
    }
    for id in ["D1", "D2"] {
        if next(2) == 0 {
            r.devices.push(DeviceRecord {
                id: id.into(),
                token_sha256: digest(id, next(3)),
            });
        }
    }
    r
}

/// The same roster whatever the order of its entries.
fn sorted(mut r: RosterFile) -> RosterFile {
    r.grids.sort_by(|a, b| a.id.cmp(&b.id));
    r.responders.sort_by(|a, b| a.id.cmp(&b.id));
    r.elders.sort_by(|a, b| a.id.cmp(&b.id));
    r.operators.sort_by(|a, b| a.id.cmp(&b.id));
    r.devices.sort_by(|a, b| a.id.cmp(&b.id));
    r
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 500,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x1e9f),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// An import's steps, applied in order to the service's roster, each accepted by the
    /// roster's own rules, leave exactly the file's roster; a file equal to the service
    /// imports nothing; and each step is labelled with what it does.
    #[test]
    fn an_import_turns_the_service_roster_into_the_file(a in proptest::prelude::any::<u64>(), b in proptest::prelude::any::<u64>()) {
        let (file, service) = (random_roster(a), random_roster(b));
        let anywhere: OnMap = &|_| Ok(());
        let by = crate::model::Actor::Operator("OP1".into());
        let mut live = Roster::from_file(service.clone(), anywhere).expect("valid service roster");
        Roster::from_file(file.clone(), anywhere).expect("valid file");
        let steps = file.import_steps(&service, &by);
        for s in &steps {
            live.replay_change(&s.command)
                .unwrap_or_else(|e| panic!("{} {} {:?}: {e}", s.id, s.id, s.change));
            let exists = |f: &RosterFile| match s.entry {
                crate::event::RosterEntry::Grid => f.grids.iter().any(|g| g.id.as_str() == s.id),
                crate::event::RosterEntry::Responder => f.responders.iter().any(|g| g.id.as_str() == s.id),
                crate::event::RosterEntry::Elder => f.elders.iter().any(|g| g.id.as_str() == s.id),
                crate::event::RosterEntry::Operator => f.operators.iter().any(|g| g.id.as_str() == s.id),
                crate::event::RosterEntry::Device => f.devices.iter().any(|g| g.id.as_str() == s.id),
            };
            use crate::event::RosterChange::*;
            match s.change {
                Added => proptest::prop_assert!(exists(&file) && !exists(&service)),
                Changed | TokenIssued => proptest::prop_assert!(exists(&file) && exists(&service)),
                Retired => proptest::prop_assert!(!exists(&file) && exists(&service)),
            }
        }
        proptest::prop_assert_eq!(sorted(live.to_file()), sorted(file.clone()));
        proptest::prop_assert!(file.import_steps(&file, &by).is_empty());
    }
}
