//! Tests of the roster's pure parts: how a roster file differs from the service's roster.

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
