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
