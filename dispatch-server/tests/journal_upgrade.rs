//! Upgrades: a data directory written by an earlier release (the committed fixtures under
//! `tests/fixtures/journal-v*`, real `dispatch serve` runs ending in a kill -9) starts under
//! this code with every acknowledged alert, assignment and people change present.

mod common;

use dispatch_core::engine::Engine;
use dispatch_core::event::Event;
use dispatch_core::ids::{AlertId, IncidentId, ResponderId};
use dispatch_core::incident::IncidentStatus;
use dispatch_core::journal::{self, Entry, Record};
use dispatch_core::road::RoadConfig;
use dispatch_core::roster::RosterFile;
use dispatch_server::journal::storage::DiskStorage;
use dispatch_server::journal::{read_marker, Journal, JournalOptions};
use dispatch_server::journal::{replay_all, restore_engine, ReplayStats};
use dispatch_server::serve_cmd::{load_roster, server_policy};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One committed fixture and the facts of how it was made (its README).
struct Fixture {
    /// Its directory under `tests/fixtures`, also the prefix of its roster's tokens.
    name: &'static str,
    /// The LSN of its newest snapshot: the records after it (the tail) are replayed.
    snapshot_lsn: u64,
    /// Whether the release that wrote it kept a durable-LSN marker.
    has_marker: bool,
    /// Open incidents with an acknowledged assignment when the server was killed.
    open_assignments: &'static [(u64, &'static str)],
    /// The decision version whose rules decided its records (1 and 2 decide alike).
    rules: u32,
}

/// The first release: record format 1, no decision version, no snapshot at a clean stop.
const V1: Fixture = Fixture {
    name: "journal-v1",
    snapshot_lsn: 26,
    has_marker: false,
    open_assignments: &[(3, "V4"), (5, "V1")],
    rules: 2,
};

/// Record format 2, decision version 2 (commit c5e7727): a snapshot at a clean stop, then a
/// tail with roster changes over HTTP, joins, a service request upgraded by a fall, and an
/// operator's assign and resolve.
const V2: Fixture = Fixture {
    name: "journal-v2",
    snapshot_lsn: 33,
    has_marker: true,
    open_assignments: &[(3, "V6"), (4, "V3"), (5, "V4")],
    rules: 2,
};

/// Decision version 5 (commit e6f90ab, the last before waves sized from acceptance): a tail in
/// which everyone of a first wave declined (incident 2; incident 1's declines are before the
/// snapshot), then a new emergency whose first wave version 5 sized at 3 (version 6 would ask
/// more after those declines).
const V5: Fixture = Fixture {
    name: "journal-v5",
    snapshot_lsn: 58,
    has_marker: true,
    open_assignments: &[(2, "V3"), (3, "V1")],
    rules: 5,
};

const FIXTURES: [&Fixture; 3] = [&V1, &V2, &V5];

impl Fixture {
    fn path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(self.name)
    }

    /// A copy of the data directory (recovery may cut or add files: never the original).
    fn copy_data(&self) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("temp dir");
        copy_dir(&self.path().join("data"), tmp.path());
        tmp
    }

    /// The live segment the kill -9 left: the first record after the newest snapshot.
    fn tail_segment(&self) -> String {
        format!("segment-{:020}.log", self.snapshot_lsn + 1)
    }

    fn acknowledged(&self) -> Acknowledged {
        let text = std::fs::read_to_string(self.path().join("acknowledged.json")).expect("read");
        serde_json::from_str(&text).expect("acknowledged.json parses")
    }

    fn roster(&self) -> RosterFile {
        load_roster(&self.path().join("roster.json")).expect("fixture roster")
    }

    fn operator_token(&self) -> String {
        format!("{}-fixture-OP1", self.name)
    }
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

/// What the old server acknowledged (`acknowledged.json`, written by the fixture's
/// `make.mjs`). Fields a fixture does not have are empty.
#[derive(Debug, Deserialize)]
struct Acknowledged {
    alerts: Vec<AckedAlert>,
    assignments: Vec<AckedAssignment>,
    #[serde(default)]
    resolved: Vec<AckedIncident>,
    #[serde(default)]
    roster_changes: Vec<RosterChange>,
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

#[derive(Debug, Deserialize)]
struct AckedIncident {
    incident_id: IncidentId,
}

/// A people change over HTTP; `token` is the one a token request answered (shown once).
#[derive(Debug, Deserialize)]
struct RosterChange {
    path: String,
    #[serde(default)]
    responder_id: Option<ResponderId>,
    #[serde(default)]
    token: Option<String>,
}

/// Opens and restores `dir` the way `dispatch serve` does (serve_cmd::open), on the real map.
fn start(dir: &Path, fx: &Fixture) -> anyhow::Result<(Journal, Engine, ReplayStats)> {
    let (journal, recovered) = Journal::open(dir, JournalOptions::default())?;
    let (engine, stats) = restore_engine(
        &recovered,
        common::roads(),
        fx.roster(),
        server_policy(RoadConfig::default().foot_kmh),
    )?;
    Ok((journal, engine, stats))
}

/// Every alert the old server acknowledged is in its incident, every accept or operator
/// assign it acknowledged is an assignment in that incident's timeline and summary, and every
/// incident it acknowledged resolving is resolved.
fn check_acknowledged(engine: &Engine, fx: &Fixture) {
    let acked = fx.acknowledged();
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
    for r in &acked.resolved {
        let incident = engine
            .incident(r.incident_id)
            .unwrap_or_else(|| panic!("incident {} is gone", r.incident_id));
        assert_eq!(
            incident.summary.status,
            IncidentStatus::Resolved,
            "incident {}",
            r.incident_id
        );
    }
}

/// The roster the old server ended with: the file's elders (their details included), and
/// every responder added over HTTP, holding the digest of the token it was given last (an
/// earlier token was revoked by the next one).
fn check_roster(engine: &Engine, fx: &Fixture) {
    for elder in &fx.roster().elders {
        assert_eq!(
            engine.roster().elder(&elder.id),
            Some(elder),
            "{}",
            elder.id
        );
    }
    // The token each responder was given last, by the request that gave it.
    let mut last_token = BTreeMap::new();
    for change in fx.acknowledged().roster_changes {
        if let (Some(id), Some(token)) = (change.responder_id, change.token) {
            last_token.insert(id, (token, change.path));
        }
    }
    for (id, (token, path)) in &last_token {
        let record = engine
            .roster()
            .responder(id)
            .unwrap_or_else(|| panic!("{id}, given a token by POST {path}, is gone"));
        assert_eq!(
            record.token_sha256.as_deref(),
            Some(common::digest(token).as_str()),
            "{id} holds another token than the one POST {path} issued last"
        );
        assert!(engine.responder(id).is_some(), "{id} is not live");
    }
}

fn starts_with_everything_acknowledged(fx: &Fixture) -> ReplayStats {
    let dir = fx.copy_data();
    let marker = read_marker(&DiskStorage, dir.path()).expect("a readable marker");
    assert_eq!(marker.is_some(), fx.has_marker, "{}: {marker:?}", fx.name);
    let (journal, engine, stats) =
        start(dir.path(), fx).unwrap_or_else(|e| panic!("the {} directory starts: {e:#}", fx.name));
    // The fixture's tail (after its newest snapshot) is replayed, not skipped.
    assert_eq!(stats.snapshot_lsn, fx.snapshot_lsn, "{stats:?}");
    check_acknowledged(&engine, fx);
    check_roster(&engine, fx);
    journal.close().expect("close");
    stats
}

#[test]
fn a_v1_data_directory_starts_with_every_acknowledged_alert_and_assignment() {
    let stats = starts_with_everything_acknowledged(&V1);
    assert!(stats.commands >= 10 && stats.verified >= 5, "{stats:?}");
}

/// The v2 tail holds people changes (a volunteer added, tokens issued), a duplicate, joins,
/// a service request upgraded by a fall, and an operator's assign and resolve.
#[test]
fn a_v2_data_directory_starts_with_every_acknowledged_alert_assignment_and_roster_change() {
    let stats = starts_with_everything_acknowledged(&V2);
    assert!(stats.commands >= 15 && stats.verified >= 8, "{stats:?}");
    let acked = V2.acknowledged();
    let tokens = acked.roster_changes.iter().filter(|c| c.token.is_some());
    assert!(tokens.count() >= 3, "{:?}", acked.roster_changes);
}

/// The upgraded directory serves (GET /v1/incidents/{id} shows the old assignments), and a
/// clean stop leaves a snapshot of everything: the next start replays no record at all.
async fn serves_and_a_clean_stop_leaves_nothing_to_replay(fx: &Fixture) {
    let dir = fx.copy_data();
    let (journal, engine, _) = start(dir.path(), fx).expect("starts");
    let config = dispatch_server::Config {
        roster: engine.roster().to_file(),
        engine: Box::new(engine),
        journal: Box::new(journal),
        limits: dispatch_server::Limits::default(),
        site: Default::default(),
    };
    let server = common::TestServer::start_config(config).await;
    let operator = fx.operator_token();
    assert!(!fx.open_assignments.is_empty());
    for &(incident, responder) in fx.open_assignments {
        let (status, body) = server
            .http(
                "GET",
                &format!("/v1/incidents/{incident}"),
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let timeline = body["timeline"].as_array().expect("timeline");
        assert!(
            timeline.iter().any(
                |e| e["event"]["type"] == "assigned" && e["event"]["responder_id"] == responder
            ),
            "{} incident {incident}: {body}",
            fx.name
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
        fx.roster(),
        server_policy(RoadConfig::default().foot_kmh),
    )
    .expect("restores from the snapshot alone");
    assert_eq!(stats.commands + stats.timeouts, 0, "{stats:?}");
    for &(incident, responder) in fx.open_assignments {
        let view = engine.incident(IncidentId(incident)).expect("still open");
        assert!(
            view.summary
                .community
                .contains(&ResponderId::from(responder)),
            "{view:?}"
        );
    }
    // (Not every acknowledged alert: serving forgets incidents closed more than 24 h ago, as
    // the fixture's are by now.)
    check_roster(&engine, fx);
    journal.close().expect("close");
}

#[tokio::test]
async fn an_upgraded_v1_directory_serves_and_a_clean_stop_leaves_nothing_to_replay() {
    serves_and_a_clean_stop_leaves_nothing_to_replay(&V1).await;
}

#[tokio::test]
async fn an_upgraded_v2_directory_serves_and_a_clean_stop_leaves_nothing_to_replay() {
    serves_and_a_clean_stop_leaves_nothing_to_replay(&V2).await;
}

/// The v5 tail replays as version 5 decided: incident 3's first wave asked the 3 people the
/// old server offered it, though under version 6 the declines before it would widen it.
#[test]
fn a_v5_data_directory_replays_its_waves_as_version_5_sized_them() {
    let stats = starts_with_everything_acknowledged(&V5);
    assert!(stats.commands >= 10 && stats.verified >= 8, "{stats:?}");
    let dir = V5.copy_data();
    let (journal, engine, _) = start(dir.path(), &V5).expect("starts");
    let acked: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(V5.path().join("acknowledged.json")).expect("read"),
    )
    .expect("json");
    let told: Vec<&str> = acked["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .filter(|o| o["incident_id"] == 3)
        .map(|o| o["responder_id"].as_str().expect("id"))
        .collect();
    assert_eq!(told.len(), 3, "the fixture's version-5 wave: {told:?}");
    let view = engine.incident(IncidentId(3)).expect("incident 3");
    let offered: Vec<String> = view
        .timeline
        .iter()
        .filter_map(|e| match &e.event {
            Event::OfferSent { responder_id, .. } => Some(responder_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(offered, told, "replayed as version 5 decided");
    journal.close().expect("close");
}

/// The audit replay (the whole history from the seed, `replay_all`) of a version-5 directory
/// reaches the state its snapshot + tail restore reaches. Regression: version 6 learnt from
/// the answers of records decided by version 5, which only the whole-history replay sees
/// (the version-5 snapshot holds no answers), so the two disagreed on everyone's record.
#[test]
fn replay_all_of_a_v5_directory_equals_its_restored_engine() {
    let dir = V5.copy_data();
    let (journal, engine, _) = start(dir.path(), &V5).expect("starts");
    journal.close().expect("close");
    let (full, stats) = replay_all(
        &DiskStorage,
        dir.path(),
        common::roads(),
        V5.roster(),
        server_policy(RoadConfig::default().foot_kmh),
    )
    .expect("the whole history replays");
    assert!(
        stats.snapshot_lsn < V5.snapshot_lsn,
        "from the seed: {stats:?}"
    );
    assert_eq!(full.save_state(), engine.save_state());
}

#[tokio::test]
async fn an_upgraded_v5_directory_serves_and_a_clean_stop_leaves_nothing_to_replay() {
    serves_and_a_clean_stop_leaves_nothing_to_replay(&V5).await;
}

/// Rewrites the live segment of a copy of the fixture: every Decisions record goes through
/// `edit` and is re-encoded (and re-checksummed) by the codec. Returns the directory.
fn rewritten(fx: &Fixture, edit: impl Fn(u64, &mut Record)) -> tempfile::TempDir {
    let dir = fx.copy_data();
    let path = dir.path().join(fx.tail_segment());
    let bytes = std::fs::read(&path).expect("read the tail segment");
    let scan = journal::scan(&bytes);
    assert_eq!(scan.end, journal::ScanEnd::Clean);
    let mut out = journal::file_header().to_vec();
    for (k, (_, mut record)) in scan.records.into_iter().enumerate() {
        if matches!(record.entry, Entry::Decisions { .. }) {
            edit(fx.snapshot_lsn + 1 + k as u64, &mut record);
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
    for fx in FIXTURES {
        // Reworded and labelled with the version whose rules decided the fixture, which is
        // older than today's.
        assert!(fx.rules < journal::DECISION_VERSION, "{}", fx.name);
        let dir = rewritten(fx, |_, r| reword(r, fx.rules));
        let (journal, engine, stats) = start(dir.path(), fx).expect("starts");
        assert!(
            stats.verified_ignoring_reasons >= 5,
            "{}: {stats:?}",
            fx.name
        );
        assert_eq!(
            stats.verified, stats.verified_ignoring_reasons,
            "{}: {stats:?}",
            fx.name
        );
        check_acknowledged(&engine, fx);
        journal.close().expect("close");
    }
}

#[test]
fn reworded_reasons_of_this_decision_version_refuse() {
    for fx in FIXTURES {
        let dir = rewritten(fx, |_, r| reword(r, journal::DECISION_VERSION));
        let err = start(dir.path(), fx).expect_err("strict within one version");
        let msg = format!("{err:#}");
        assert!(msg.contains("compared strictly"), "{}: {msg}", fx.name);
        assert!(
            msg.contains("reworded by a later release"),
            "{}: {msg}",
            fx.name
        );
    }
}

#[test]
fn a_structural_divergence_of_an_older_version_still_refuses_naming_the_record() {
    for fx in FIXTURES {
        // The first assignment in the tail has another ETA: a real divergence.
        let changed = std::cell::Cell::new(None);
        let dir = rewritten(fx, |lsn, r| {
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
        let err = start(dir.path(), fx).expect_err("diverged");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("replaying journal record {lsn}")),
            "{}: {msg}",
            fx.name
        );
        assert!(msg.contains("reason texts ignored"), "{}: {msg}", fx.name);
        assert!(msg.contains("\"type\":\"assigned\""), "{}: {msg}", fx.name);
    }
}

/// Once this code has opened a directory it has a marker at its last record, and a tail
/// segment cut to its header stops the start. (The first release wrote no marker, so this is
/// damage it could not see.)
#[test]
fn after_the_upgrade_a_segment_cut_to_its_header_refuses() {
    for fx in FIXTURES {
        let dir = fx.copy_data();
        let (journal, _, _) = start(dir.path(), fx).expect("starts");
        journal.close().expect("close");
        let marker = read_marker(&DiskStorage, dir.path())
            .expect("marker")
            .expect("written at open");
        let first = fx.snapshot_lsn + 1;
        let live = dir.path().join(fx.tail_segment());
        let bytes = std::fs::read(&live).expect("read");
        std::fs::write(&live, &bytes[..journal::FILE_HEADER_LEN]).expect("truncate");
        let msg = format!("{:#}", start(dir.path(), fx).expect_err("refuses"));
        assert!(
            msg.contains("journal incomplete")
                && msg.contains(&format!("records {first}..={marker} are missing"))
                && msg.contains(&fx.tail_segment()),
            "{}: {msg}",
            fx.name
        );
    }
}
