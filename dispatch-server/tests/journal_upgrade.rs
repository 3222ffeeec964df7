//! Upgrades: a data directory written by an earlier release (the committed fixtures under
//! `tests/fixtures/journal-v*`, real `dispatch serve` runs ending in a kill -9) starts under
//! this code with every acknowledged alert and assignment present.

mod common;

use dispatch_core::engine::Engine;
use dispatch_core::event::Event;
use dispatch_core::ids::{AlertId, IncidentId, ResponderId};
use dispatch_core::journal::{self, Entry, Record};
use dispatch_core::road::RoadConfig;
use dispatch_core::roster::RosterFile;
use dispatch_server::journal::storage::DiskStorage;
use dispatch_server::journal::{read_marker, Journal, JournalOptions};
use dispatch_server::journal::{restore_engine, ReplayStats};
use dispatch_server::serve_cmd::{load_roster, server_policy};
use serde::Deserialize;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of the fixture's data directory (recovery may cut or add files: never the original).
fn copy_data(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    copy_dir(&fixture(name).join("data"), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[derive(Debug, Deserialize)]
struct Acknowledged {
    alerts: Vec<AckedAlert>,
    assignments: Vec<AckedAssignment>,
}

#[derive(Debug, Deserialize)]
struct AckedAlert {
    alert_id: AlertId,
    incident_id: IncidentId,
}

#[derive(Debug, Deserialize)]
struct AckedAssignment {
    incident_id: IncidentId,
    responder_id: ResponderId,
}

fn acknowledged(name: &str) -> Acknowledged {
    let text = std::fs::read_to_string(fixture(name).join("acknowledged.json")).expect("read");
    serde_json::from_str(&text).expect("acknowledged.json parses")
}

fn roster(name: &str) -> RosterFile {
    load_roster(&fixture(name).join("roster.json")).expect("fixture roster")
}

/// Opens and restores `dir` the way `dispatch serve` does (serve_cmd::open), on the real map.
fn start(dir: &Path, name: &str) -> anyhow::Result<(Journal, Engine, ReplayStats)> {
    let (journal, recovered) = Journal::open(dir, JournalOptions::default())?;
    let (engine, stats) = restore_engine(
        &recovered,
        common::roads(),
        roster(name),
        server_policy(RoadConfig::default().foot_kmh),
    )?;
    Ok((journal, engine, stats))
}

/// Every alert the old server acknowledged is in its incident, and every accept it
/// acknowledged is an assignment in that incident's timeline and summary.
fn check_acknowledged(engine: &Engine, name: &str) {
    let acked = acknowledged(name);
    assert!(!acked.alerts.is_empty() && !acked.assignments.is_empty());
    for a in &acked.alerts {
        let incident = engine.incident(a.incident_id).unwrap_or_else(|| {
            panic!("incident {} of alert {} is gone", a.incident_id, a.alert_id)
        });
        assert!(
            incident.alerts.iter().any(|r| r.alert_id == a.alert_id),
            "alert {} is not in incident {}: {:?}",
            a.alert_id,
            a.incident_id,
            incident.alerts
        );
    }
    for a in &acked.assignments {
        let incident = engine
            .incident(a.incident_id)
            .unwrap_or_else(|| panic!("incident {} is gone", a.incident_id));
        assert!(
            incident.timeline.iter().any(|e| matches!(&e.event,
                Event::Assigned { responder_id, .. } if *responder_id == a.responder_id)),
            "{} is not assigned in the timeline of incident {}",
            a.responder_id,
            a.incident_id
        );
        assert!(
            incident.summary.community.contains(&a.responder_id),
            "{} is not in incident {}'s community: {:?}",
            a.responder_id,
            a.incident_id,
            incident.summary.community
        );
    }
}

#[test]
fn a_v1_data_directory_starts_with_every_acknowledged_alert_and_assignment() {
    let dir = copy_data("journal-v1");
    // The first release wrote no durable-LSN marker: its directory starts without one.
    assert_eq!(
        read_marker(&DiskStorage, dir.path()).expect("no marker"),
        None
    );
    let (journal, engine, stats) =
        start(dir.path(), "journal-v1").expect("the v1 directory starts");
    // The fixture's tail (after its newest snapshot) is replayed, not skipped.
    assert_eq!(stats.snapshot_lsn, 26, "{stats:?}");
    assert!(stats.commands >= 10 && stats.verified >= 5, "{stats:?}");
    check_acknowledged(&engine, "journal-v1");
    journal.close().expect("close");
}

/// The upgraded directory serves (GET /v1/incidents/{id} shows the old assignments), and a
/// clean stop leaves a snapshot of everything: the next start replays no record at all.
#[tokio::test]
async fn an_upgraded_directory_serves_and_a_clean_stop_leaves_nothing_to_replay() {
    let dir = copy_data("journal-v1");
    let (journal, engine, _) = start(dir.path(), "journal-v1").expect("starts");
    let config = dispatch_server::Config {
        roster: engine.roster().to_file(),
        engine: Box::new(engine),
        journal: Box::new(journal),
        limits: dispatch_server::Limits::default(),
        site: Default::default(),
    };
    let server = common::TestServer::start_config(config).await;
    let operator = "journal-v1-fixture-OP1";
    // Incidents 3 and 5 are open emergencies with an acknowledged assignment.
    for (incident, responder) in [(3, "V4"), (5, "V1")] {
        let (status, body) = server
            .http(
                "GET",
                &format!("/v1/incidents/{incident}"),
                Some(operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let timeline = body["timeline"].as_array().expect("timeline");
        assert!(
            timeline.iter().any(
                |e| e["event"]["type"] == "assigned" && e["event"]["responder_id"] == responder
            ),
            "incident {incident}: {body}"
        );
    }
    server.stop().await;

    let (journal, recovered) =
        Journal::open(dir.path(), JournalOptions::default()).expect("reopen");
    let snapshot = recovered
        .snapshot
        .as_ref()
        .expect("a snapshot at the clean stop");
    assert_eq!(
        snapshot.lsn, recovered.last_lsn,
        "the snapshot holds every record"
    );
    assert!(
        recovered.records.is_empty(),
        "{:?}",
        recovered.records.len()
    );
    assert_eq!(
        read_marker(&DiskStorage, dir.path()).expect("marker"),
        Some(recovered.last_lsn),
        "the clean stop marked every record durable"
    );
    let (engine, stats) = restore_engine(
        &recovered,
        common::roads(),
        roster("journal-v1"),
        server_policy(RoadConfig::default().foot_kmh),
    )
    .expect("restores from the snapshot alone");
    assert_eq!(stats.commands + stats.timeouts, 0, "{stats:?}");
    for (incident, responder) in [(3, "V4"), (5, "V1")] {
        let view = engine.incident(IncidentId(incident)).expect("still open");
        assert!(
            view.summary
                .community
                .contains(&ResponderId::from(responder)),
            "{view:?}"
        );
    }
    journal.close().expect("close");
}

/// Rewrites the live segment of a copy of the fixture: every Decisions record goes through
/// `edit` and is re-encoded (and re-checksummed) by the codec. Returns the directory.
fn rewritten(edit: impl Fn(u64, &mut Record)) -> tempfile::TempDir {
    let dir = copy_data("journal-v1");
    let path = dir.path().join("segment-00000000000000000027.log");
    let bytes = std::fs::read(&path).expect("read the tail segment");
    let scan = journal::scan(&bytes);
    assert_eq!(scan.end, journal::ScanEnd::Clean);
    let mut out = journal::file_header().to_vec();
    for (k, (_, mut record)) in scan.records.into_iter().enumerate() {
        if matches!(record.entry, Entry::Decisions { .. }) {
            edit(27 + k as u64, &mut record);
        }
        journal::encode_into(&record, &mut out).expect("encodes");
    }
    std::fs::write(&path, out).expect("write");
    dir
}

fn reword(record: &mut Record, version: u32) {
    record.format = journal::FORMAT_VERSION;
    if let Entry::Decisions {
        decision_version,
        events,
        ..
    } = &mut record.entry
    {
        *decision_version = version;
        for e in events {
            if let Some(reason) = journal::reason_text_mut(&mut e.event) {
                *reason = format!("reworded by a later release: {reason}");
            }
        }
    }
}

#[test]
fn reworded_reasons_of_an_older_decision_version_replay() {
    let dir = rewritten(|_, r| reword(r, journal::DECISION_VERSION - 1));
    let (journal, engine, stats) = start(dir.path(), "journal-v1").expect("starts");
    assert!(stats.verified_ignoring_reasons >= 5, "{stats:?}");
    assert_eq!(stats.verified, stats.verified_ignoring_reasons, "{stats:?}");
    check_acknowledged(&engine, "journal-v1");
    journal.close().expect("close");
}

#[test]
fn reworded_reasons_of_this_decision_version_refuse() {
    let dir = rewritten(|_, r| reword(r, journal::DECISION_VERSION));
    let err = start(dir.path(), "journal-v1").expect_err("strict within one version");
    let msg = format!("{err:#}");
    assert!(msg.contains("compared strictly"), "{msg}");
    assert!(msg.contains("reworded by a later release"), "{msg}");
}

#[test]
fn a_structural_divergence_of_an_older_version_still_refuses_naming_the_record() {
    // The first assignment in the tail has another ETA: a real divergence.
    let changed = std::cell::Cell::new(None);
    let dir = rewritten(|lsn, r| {
        reword(r, journal::DECISION_VERSION - 1);
        if changed.get().is_some() {
            return;
        }
        if let Entry::Decisions { events, .. } = &mut r.entry {
            for e in events {
                if let Event::Assigned { eta_s, .. } = &mut e.event {
                    *eta_s += 60;
                    changed.set(Some(lsn));
                    return;
                }
            }
        }
    });
    let lsn = changed.get().expect("the tail holds an assignment");
    let err = start(dir.path(), "journal-v1").expect_err("diverged");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("replaying journal record {lsn}")),
        "{msg}"
    );
    assert!(msg.contains("reason texts ignored"), "{msg}");
    assert!(msg.contains("\"type\":\"assigned\""), "{msg}");
}

/// Once the new code has opened the directory it has a marker, and the damage the first
/// release could not see (the tail segment cut to its header) now stops the start.
#[test]
fn after_the_upgrade_a_segment_cut_to_its_header_refuses() {
    let dir = copy_data("journal-v1");
    let (journal, _, _) = start(dir.path(), "journal-v1").expect("starts");
    journal.close().expect("close");
    let marker = read_marker(&DiskStorage, dir.path())
        .expect("marker")
        .expect("written at open");
    let live = dir.path().join("segment-00000000000000000027.log");
    let bytes = std::fs::read(&live).expect("read");
    std::fs::write(&live, &bytes[..journal::FILE_HEADER_LEN]).expect("truncate");
    let msg = format!(
        "{:#}",
        start(dir.path(), "journal-v1").expect_err("refuses")
    );
    assert!(
        msg.contains("journal incomplete")
            && msg.contains(&format!("records 27..={marker} are missing"))
            && msg.contains("segment-00000000000000000027.log"),
        "{msg}"
    );
}
