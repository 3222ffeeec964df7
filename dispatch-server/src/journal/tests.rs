//! Tests of the journal file: group commit, fsync failure, power loss, damaged files, snapshots.

use crate::journal::storage::{FaultOp, SimStorage, Storage};
use crate::journal::{segment_name, Journal, JournalError, JournalOptions, Lsn, Recovered};
use dispatch_core::command::Command;
use dispatch_core::ids::{DeviceId, ElderId};
use dispatch_core::journal::{Entry, Record, RegionId};
use dispatch_core::time::Timestamp;
use proptest::prelude::*;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir() -> PathBuf {
    PathBuf::from("/data")
}

/// Record `i`: alternately a command and a timeout, each carrying `i` so a test can tell them apart.
fn record(i: u64) -> Record {
    let now = Timestamp(i as i64);
    if i % 2 == 0 {
        Record::timeout(RegionId(0), now)
    } else {
        Record::command(
            RegionId(0),
            now,
            Command::CheckIn {
                elder_id: ElderId::from(format!("elder-{i}")),
                device_id: DeviceId::from("d"),
            },
        )
    }
}

fn tag(r: &Record) -> u64 {
    match &r.entry {
        Entry::Command { now, .. } | Entry::Timeout { now } => now.0 as u64,
        Entry::Decisions { first_seq, .. } => *first_seq,
    }
}

fn open(st: &SimStorage, opts: JournalOptions) -> anyhow::Result<(Journal, Recovered)> {
    Journal::open_with(Arc::new(st.clone()), &dir(), opts)
}

/// The model state: the tags of every record applied, in order (snapshot + replay).
fn state_of(rec: &Recovered) -> Vec<u64> {
    let mut state: Vec<u64> = match &rec.snapshot {
        Some(s) => serde_json::from_slice(&s.state).expect("snapshot state is the test's Vec<u64>"),
        None => vec![],
    };
    state.extend(rec.records.iter().map(|(_, r)| tag(r)));
    state
}

/// Appends records 1..=n (record i gets LSN i), snapshotting whenever due.
fn fill(j: &Journal, n: u64) -> Vec<u64> {
    let mut applied = vec![];
    for i in 1..=n {
        let lsn = j.append(&record(i)).expect("append");
        assert_eq!(lsn, i);
        applied.push(i);
        if j.snapshot_due() {
            let at = j.snapshot(applied.clone()).expect("snapshot");
            // Snapshots asked for faster than they are written coalesce; wait so the layout
            // on disk is the same every run.
            j.wait_snapshot_blocking(at).expect("snapshot written");
        }
    }
    applied
}

#[test]
fn appended_records_come_back_after_reopen_on_a_real_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (j, rec) = Journal::open(tmp.path(), JournalOptions::default()).expect("open");
    assert_eq!(rec.last_lsn, 0);
    for i in 1..=50 {
        j.append(&record(i)).expect("append");
    }
    j.wait_durable_blocking(50).expect("durable");
    assert_eq!(j.durable().borrow().lsn, 50);
    drop(j);
    let (j, rec) = Journal::open(tmp.path(), JournalOptions::default()).expect("reopen");
    assert_eq!(rec.last_lsn, 50);
    assert_eq!(
        rec.records
            .iter()
            .map(|(l, r)| (*l, tag(r)))
            .collect::<Vec<_>>(),
        (1..=50).map(|i| (i, i)).collect::<Vec<_>>()
    );
    assert_eq!(j.append(&record(51)).expect("append"), 51);
}

#[tokio::test]
async fn wait_durable_resolves_once_the_writer_fsynced() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let lsn = j.append(&record(1)).expect("append");
    j.wait_durable(lsn).await.expect("durable");
    assert!(j.durable().borrow().lsn >= lsn);
}

#[test]
fn fsync_failure_is_final_and_never_reports_a_later_lsn() {
    for kind in [io::ErrorKind::Other, io::ErrorKind::StorageFull] {
        let st = SimStorage::new();
        let (j, _) = open(&st, JournalOptions::default()).expect("open");
        let ok = j.append(&record(1)).expect("append");
        j.wait_durable_blocking(ok)
            .expect("durable before the fault");
        st.fail(FaultOp::Sync, 0, kind);
        let doomed = j.append(&record(2)).expect("append only buffers");
        let err = j.wait_durable_blocking(doomed).expect_err("fsync failed");
        assert!(matches!(err, JournalError::Failed(_)), "{err}");
        let d = j.durable().borrow().clone();
        assert_eq!(d.lsn, ok, "no LSN after the failure is reported durable");
        assert!(
            d.failed.as_deref().is_some_and(|w| w.contains("fdatasync")),
            "{d:?}"
        );
        assert!(matches!(j.append(&record(3)), Err(JournalError::Failed(_))));
        assert!(matches!(
            j.snapshot(vec![1u64]),
            Err(JournalError::Failed(_))
        ));
        assert_eq!(j.durable().borrow().lsn, ok);
    }
}

#[test]
fn write_failure_also_fails_the_journal() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    st.fail(FaultOp::Write, 0, io::ErrorKind::StorageFull);
    let lsn = j.append(&record(1)).expect("append only buffers");
    assert!(j.wait_durable_blocking(lsn).is_err());
    assert_eq!(j.durable().borrow().lsn, 0);
    assert!(j.append(&record(2)).is_err());
}

#[test]
fn snapshots_archive_old_segments_and_restart_replays_only_the_tail() {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 10,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts.clone()).expect("open");
    let applied = fill(&j, 35);
    j.close().expect("close");
    let live = st.list(&dir()).expect("list");
    let archived = st.list(&dir().join("archive")).expect("list archive");
    assert_eq!(
        live.iter().filter(|n| n.ends_with(".log")).count(),
        1,
        "{live:?}"
    );
    assert!(live.contains(&segment_name(31)), "{live:?}");
    assert_eq!(
        live.iter().filter(|n| n.ends_with(".snap")).count(),
        2,
        "{live:?}"
    );
    assert_eq!(archived.len(), 3, "{archived:?}");

    let (_j, rec) = open(&st, opts.clone()).expect("reopen");
    assert_eq!(rec.snapshot.as_ref().map(|s| s.lsn), Some(30));
    assert_eq!(
        rec.records.len(),
        5,
        "only the tail after the snapshot is replayed"
    );
    assert_eq!(state_of(&rec), applied);
    drop(_j);

    // A damaged newest snapshot: fall back to the previous one and replay from the archive.
    let newest = dir().join("snapshot-00000000000000000030.snap");
    let mut bytes = st.contents(&newest).expect("snapshot exists");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    st.set_contents(&newest, bytes);
    let (_j, rec) = open(&st, opts).expect("reopen with a damaged snapshot");
    assert_eq!(rec.snapshot.as_ref().map(|s| s.lsn), Some(20));
    assert_eq!(state_of(&rec), applied);
}

#[test]
fn a_snapshot_is_due_by_time_once_anything_was_appended() {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 1_000,
        snapshot_after: Some(std::time::Duration::from_millis(5)),
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts).expect("open");
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(
        !j.snapshot_due(),
        "nothing appended: no snapshot however long it has been"
    );
    j.append(&record(1)).expect("append");
    assert!(j.snapshot_due(), "a record, and the time has gone by");
    let at = j.snapshot(vec![1u64]).expect("snapshot");
    j.wait_snapshot_blocking(at).expect("written");
    assert!(!j.snapshot_due(), "just taken, nothing since");
    j.append(&record(2)).expect("append");
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(j.snapshot_due());

    // With the time rule off, only the count decides.
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 2,
        snapshot_after: None,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts).expect("open");
    j.append(&record(1)).expect("append");
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(!j.snapshot_due());
    j.append(&record(2)).expect("append");
    assert!(j.snapshot_due());
}

/// Writes a small journal (one segment, no snapshot) and returns the disk as a power loss
/// right after the 6 records were durable leaves it (the marker says 0, as written at open:
/// no roll, no clean close), with the segment's path and bytes.
fn small_journal() -> (SimStorage, PathBuf, Vec<u8>) {
    let st = SimStorage::new();
    let (j, _) = open(
        &st,
        JournalOptions {
            snapshot_every: 0,
            ..JournalOptions::default()
        },
    )
    .expect("open");
    fill(&j, 6);
    j.wait_durable_blocking(6).expect("durable");
    let image = st.power_loss_image(None);
    j.close().expect("close");
    let seg = dir().join(segment_name(1));
    let bytes = image.contents(&seg).expect("segment");
    (image, seg, bytes)
}

/// The same 6 records, closed cleanly: the marker says 6.
fn small_journal_closed() -> (SimStorage, PathBuf, Vec<u8>) {
    let st = SimStorage::new();
    let (j, _) = open(
        &st,
        JournalOptions {
            snapshot_every: 0,
            ..JournalOptions::default()
        },
    )
    .expect("open");
    fill(&j, 6);
    j.close().expect("close");
    let seg = dir().join(segment_name(1));
    let bytes = st.contents(&seg).expect("segment");
    (st, seg, bytes)
}

fn torn_files(st: &SimStorage) -> Vec<String> {
    st.list(&dir())
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".torn"))
        .collect()
}

#[test]
fn truncation_at_every_byte_recovers_the_complete_prefix_and_keeps_the_rest_aside() {
    let (st, seg, bytes) = small_journal();
    let scan = dispatch_core::journal::scan(&bytes);
    let ends: Vec<usize> = scan
        .records
        .iter()
        .skip(1)
        .map(|(o, _)| *o)
        .chain([bytes.len()])
        .collect();
    for cut in 0..=bytes.len() {
        let st = st.power_loss_image(None);
        st.set_contents(&seg, bytes[..cut].to_vec());
        let (j, rec) =
            open(&st, JournalOptions::default()).unwrap_or_else(|e| panic!("cut at {cut}: {e:#}"));
        let complete = ends.iter().filter(|&&e| e <= cut).count() as u64;
        assert_eq!(
            state_of(&rec),
            (1..=complete).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        let clean = cut == 8 || ends.contains(&cut);
        assert_eq!(rec.cuts.is_empty(), clean, "cut at {cut}");
        assert_eq!(torn_files(&st).len(), usize::from(!clean), "cut at {cut}");
        // The journal goes on after the cut, and the next start sees the new record right after.
        let lsn = j.append(&record(100)).expect("append after recovery");
        assert_eq!(lsn, complete + 1);
        j.close().expect("close");
        let (_j, rec) = open(&st, JournalOptions::default()).expect("reopen");
        assert!(rec.cuts.is_empty(), "cut at {cut}: the tail was really cut");
        assert_eq!(rec.records.last().map(|(_, r)| tag(r)), Some(100));
    }
}

#[test]
fn a_flipped_bit_in_the_middle_stops_the_start_unless_the_operator_recovers_up_to_it() {
    let (st, seg, bytes) = small_journal();
    let offsets: Vec<usize> = dispatch_core::journal::scan(&bytes)
        .records
        .iter()
        .map(|(o, _)| *o)
        .collect();
    for (k, &at) in offsets.iter().enumerate() {
        for byte in [at + 1, at + 5, at + 9, at + 14] {
            let st = st.power_loss_image(None);
            let mut bad = bytes.clone();
            bad[byte] ^= 0x10;
            st.set_contents(&seg, bad);
            let last = k + 1 == offsets.len();
            match open(&st, JournalOptions::default()) {
                Ok((_j, rec)) => {
                    assert!(last, "record {k} byte {byte}: corruption with valid records after it must stop the start");
                    assert_eq!(state_of(&rec), (1..=k as u64).collect::<Vec<_>>());
                    assert_eq!(rec.cuts.len(), 1);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    assert!(
                        !last,
                        "byte {byte}: a corrupt tail is cut, not fatal: {msg}"
                    );
                    assert!(
                        msg.contains(&seg.display().to_string())
                            && msg.contains(&format!("byte {at}")),
                        "{msg}"
                    );
                    assert!(msg.contains("--recover-to-corruption"), "{msg}");
                    let opts = JournalOptions {
                        recover_past_corruption: true,
                        ..JournalOptions::default()
                    };
                    let (_j, rec) =
                        open(&st, opts).expect("operator recovers up to the corruption");
                    assert_eq!(
                        state_of(&rec),
                        (1..=k as u64).collect::<Vec<_>>(),
                        "no bad record applied"
                    );
                    assert_eq!(torn_files(&st).len(), 1);
                }
            }
        }
    }
}

#[test]
fn garbage_appended_is_cut_and_every_record_kept() {
    let (st, seg, mut bytes) = small_journal();
    bytes.extend_from_slice(&[0; 37]);
    bytes.extend_from_slice(b"not a record at all");
    st.set_contents(&seg, bytes);
    let (_j, rec) = open(&st, JournalOptions::default()).expect("open");
    assert_eq!(state_of(&rec), (1..=6).collect::<Vec<_>>());
    assert_eq!(rec.cuts.len(), 1);
    assert_eq!(rec.cuts[0].bytes, 37 + 19);
}

#[test]
fn a_gap_between_segments_stops_the_start() {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 4,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts.clone()).expect("open");
    fill(&j, 9);
    j.close().expect("close");
    // Lose the archived segment that the older snapshot would need, and damage the newer one.
    for name in st.list(&dir()).expect("list") {
        if name.ends_with(".snap") {
            st.set_contents(&dir().join(&name), b"garbage".to_vec());
        }
    }
    st.remove(&dir().join("archive").join(segment_name(1)))
        .expect("remove");
    let err = open(&st, opts).expect_err("records 1..4 are nowhere");
    assert!(format!("{err:#}").contains("gap"), "{err:#}");
}

fn check_power_loss(
    n: u64,
    crash_after: u64,
    tear: Option<usize>,
    snapshot_every: u64,
    wait_every: u64,
) -> Result<(), TestCaseError> {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts.clone()).expect("open");
    let mut applied = vec![];
    let mut image = None;
    let mut durable_at_crash = 0;
    for i in 1..=n {
        j.append(&record(i)).expect("append");
        applied.push(i);
        if j.snapshot_due() {
            j.snapshot(applied.clone()).expect("snapshot");
        }
        if wait_every > 0 && i % wait_every == 0 {
            j.wait_durable_blocking(i).expect("durable");
        }
        if i == crash_after {
            // Read what was promised *before* the power goes: every one of these must survive.
            durable_at_crash = j.durable().borrow().lsn;
            image = Some(st.power_loss_image(tear));
        }
    }
    drop(j);
    let image = image.unwrap_or_else(|| st.power_loss_image(tear));
    let (_j, rec) = open(&image, opts).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    let state = state_of(&rec);
    let durable = durable_at_crash as usize;
    prop_assert!(
        state.len() >= durable,
        "lost acknowledged records: {} < {durable}",
        state.len()
    );
    prop_assert_eq!(
        &state[..],
        &applied[..state.len()],
        "recovered records are exactly a prefix of what was appended"
    );
    prop_assert_eq!(rec.last_lsn as usize, state.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Power loss at a chosen moment, optionally tearing unsynced writes: every LSN reported
    /// durable is recovered, and nothing but a prefix of what was appended is.
    #[test]
    fn power_loss_recovers_exactly_a_prefix_covering_every_durable_lsn(
        n in 1u64..60,
        crash_frac in 0.0f64..1.0,
        tear in proptest::option::of(0usize..300),
        snapshot_every in prop_oneof![Just(0u64), 3u64..12],
        wait_every in 0u64..5,
    ) {
        let crash_after = 1 + ((n - 1) as f64 * crash_frac) as u64;
        check_power_loss(n, crash_after, tear, snapshot_every, wait_every)?;
    }
}

#[test]
fn lsn_and_path_helpers_agree() {
    assert_eq!(segment_name(42), "segment-00000000000000000042.log");
    assert_eq!(
        super::snapshot::parse_segment_name(&segment_name(42)),
        Some(42 as Lsn)
    );
    assert_eq!(super::snapshot::parse_segment_name("segment-42.log"), None);
    assert!(Path::new(&segment_name(1)).extension().is_some());
}

/// The byte offsets where each record of `bytes` ends (record boundaries after the header).
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    dispatch_core::journal::scan(bytes)
        .records
        .iter()
        .skip(1)
        .map(|(o, _)| *o)
        .chain([bytes.len()])
        .collect()
}

fn refusal(st: &SimStorage) -> String {
    match open(st, JournalOptions::default()) {
        Ok((_, rec)) => panic!("started with {} records", rec.last_lsn),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_clean_close_marks_every_record_durable_and_reopens() {
    let (st, _, _) = small_journal_closed();
    assert_eq!(
        crate::journal::read_marker(&st, &dir()).expect("marker"),
        Some(6)
    );
    let (_j, rec) = open(&st, JournalOptions::default()).expect("a clean directory starts");
    assert_eq!(state_of(&rec), (1..=6).collect::<Vec<_>>());
}

#[test]
fn a_segment_truncated_at_a_record_boundary_refuses_naming_the_files_and_lsns() {
    let (st, seg, bytes) = small_journal_closed();
    let ends = record_ends(&bytes);
    // Cut after record 3: a clean end to the decoder, three acknowledged records gone.
    st.set_contents(&seg, bytes[..ends[2]].to_vec());
    let msg = refusal(&st);
    for needed in [
        "journal incomplete",
        "durable-lsn.marker",
        "records up to 6",
        "ends at record 3",
        "records 4..=6 are missing",
        &seg.display().to_string(),
        "--recover-to-corruption",
    ] {
        assert!(msg.contains(needed), "{needed:?} not in: {msg}");
    }
    assert!(
        torn_files(&st).is_empty(),
        "a refused start changes nothing"
    );
    assert_eq!(st.contents(&seg).map(|b| b.len()), Some(ends[2]));
    // The operator may accept the loss.
    let opts = JournalOptions {
        recover_past_corruption: true,
        ..JournalOptions::default()
    };
    let (j, rec) = open(&st, opts).expect("the operator starts with what is left");
    assert_eq!(state_of(&rec), vec![1, 2, 3]);
    j.close().expect("close");
    let (_j, rec) = open(&st, JournalOptions::default()).expect("and from then on it starts");
    assert_eq!(rec.last_lsn, 3);
}

#[test]
fn a_segment_truncated_to_its_header_refuses() {
    let (st, seg, bytes) = small_journal_closed();
    st.set_contents(
        &seg,
        bytes[..dispatch_core::journal::FILE_HEADER_LEN].to_vec(),
    );
    let msg = refusal(&st);
    assert!(
        msg.contains("ends at record 0") && msg.contains("records 1..=6 are missing"),
        "{msg}"
    );
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
}

#[test]
fn the_only_segment_deleted_refuses() {
    let (st, seg, _) = small_journal_closed();
    st.remove(&seg).expect("delete the segment");
    let msg = refusal(&st);
    assert!(
        msg.contains("records 1..=6 are missing") && msg.contains("no segment holds"),
        "{msg}"
    );
    assert!(
        st.list(&dir())
            .expect("list")
            .iter()
            .all(|n| !n.starts_with("segment-")),
        "a refused start creates no segment"
    );
}

#[test]
fn a_directory_without_a_marker_starts_as_before() {
    // A data directory from before markers: the same damage cannot be told from a crash.
    let (st, seg, bytes) = small_journal_closed();
    st.remove(&dir().join(crate::journal::MARKER_FILE))
        .expect("no marker");
    let ends = record_ends(&bytes);
    st.set_contents(&seg, bytes[..ends[2]].to_vec());
    let (j, rec) = open(&st, JournalOptions::default()).expect("starts");
    assert_eq!(state_of(&rec), vec![1, 2, 3]);
    j.close().expect("close");
    // ... and from this start on, it has a marker.
    assert_eq!(
        crate::journal::read_marker(&st, &dir()).expect("marker"),
        Some(3)
    );
}

#[test]
fn a_damaged_marker_refuses_and_says_how_to_go_on() {
    let (st, _, _) = small_journal_closed();
    let marker = dir().join(crate::journal::MARKER_FILE);
    let mut bytes = st.contents(&marker).expect("marker");
    bytes[9] ^= 1;
    st.set_contents(&marker, bytes);
    let msg = refusal(&st);
    assert!(
        msg.contains("damaged") && msg.contains("durable-lsn.marker"),
        "{msg}"
    );
}

#[test]
fn segments_rolling_at_snapshots_move_the_marker() {
    let st = SimStorage::new();
    let (j, _) = open(
        &st,
        JournalOptions {
            snapshot_every: 5,
            ..JournalOptions::default()
        },
    )
    .expect("open");
    fill(&j, 12);
    // Not closed: the marker moved with the rolls alone (a crash now keeps that promise).
    let image = st.power_loss_image(None);
    let marker = crate::journal::read_marker(&image, &dir())
        .expect("marker")
        .expect("present");
    assert!(marker >= 10, "marker {marker}");
    // The live segment after the last roll, truncated to its header: the records after
    // the marker go (a crash can do that to unsynced bytes): the start goes on.
    let live = dir().join(segment_name(marker + 1));
    let header = image.contents(&live).expect("live segment");
    image.set_contents(
        &live,
        header[..dispatch_core::journal::FILE_HEADER_LEN].to_vec(),
    );
    let (_j, rec) = open(&image, JournalOptions::default()).expect("starts");
    assert_eq!(rec.last_lsn, marker);
    j.close().expect("close");
}

/// A snapshot state that notes the thread encoding it and holds the encoding until the test
/// opens its gate (at most 10 s: a test that never opens it fails, it does not hang).
struct Gated {
    tags: Vec<u64>,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    ran_on: Arc<std::sync::Mutex<Option<String>>>,
}

impl serde::Serialize for Gated {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        *self.ran_on.lock().expect("lock") = std::thread::current().name().map(str::to_string);
        let (open, changed) = &*self.gate;
        let (open, _) = changed
            .wait_timeout_while(
                open.lock().expect("lock"),
                std::time::Duration::from_secs(10),
                |open| !*open,
            )
            .expect("lock");
        if !*open {
            return Err(serde::ser::Error::custom("the test never opened the gate"));
        }
        self.tags.serialize(s)
    }
}

type Gate = Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>;

fn open_gate(gate: &Gate) {
    *gate.0.lock().expect("lock") = true;
    gate.1.notify_all();
}

/// Hands `j` a snapshot of `tags` whose encoding waits for the returned gate; the last value
/// is the name of the thread that encodes it, once it starts.
fn snapshot_gated(
    j: &Journal,
    tags: Vec<u64>,
) -> (Lsn, Gate, Arc<std::sync::Mutex<Option<String>>>) {
    let gate: Gate = Arc::default();
    let ran_on = Arc::new(std::sync::Mutex::new(None));
    let at = j
        .snapshot(Gated {
            tags,
            gate: gate.clone(),
            ran_on: ran_on.clone(),
        })
        .expect("handed over");
    (at, gate, ran_on)
}

/// Reopens the journal on `st` and checks it restarts from the snapshot at `at` to the
/// state `applied`; returns how many records it replayed after the snapshot.
fn restarts_from(st: &SimStorage, opts: JournalOptions, at: Lsn, applied: &[u64]) -> usize {
    let (_j, rec) = open(st, opts).expect("reopen");
    assert_eq!(rec.snapshot.as_ref().map(|s| s.lsn), Some(at));
    assert_eq!(state_of(&rec), applied);
    rec.records.len()
}

/// The engine's thread only hands the state over: it is encoded on the journal's snapshot
/// thread, and records appended meanwhile become durable without waiting for it; the
/// snapshot, written later, holds exactly the records up to its LSN, and a restart gives the
/// same state as everything applied.
#[test]
fn snapshot_state_is_encoded_off_the_callers_thread_while_records_go_on() {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 5,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts.clone()).expect("open");
    let applied = fill(&j, 4);
    let (at, gate, ran_on) = snapshot_gated(&j, applied.clone());
    assert_eq!(at, 4);
    let mut applied = applied;
    for i in 5..=12 {
        let lsn = j.append(&record(i)).expect("append");
        applied.push(i);
        assert!(!j.snapshot_due(), "one snapshot at a time");
        j.wait_durable_blocking(lsn)
            .expect("durable while the snapshot is still encoding");
    }
    assert_eq!(j.durable().borrow().snapshot_lsn, 0, "not written yet");
    open_gate(&gate);
    j.wait_snapshot_blocking(at).expect("written once encoded");
    assert_eq!(
        ran_on.lock().expect("lock").as_deref(),
        Some("journal-snapshot")
    );
    assert!(j.snapshot_due(), "8 records since the last snapshot");
    j.close().expect("close");
    assert!(
        st.list(&dir().join("archive"))
            .expect("list archive")
            .contains(&segment_name(1)),
        "the segment the snapshot holds is archived"
    );
    assert_eq!(
        restarts_from(&st, opts, 4, &applied),
        8,
        "the records after the cut are replayed"
    );
}

/// Closing waits for a snapshot still being encoded (the engine task's snapshot at a clean
/// stop must be on disk when the journal is closed).
#[test]
fn close_waits_for_a_snapshot_still_encoding() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let applied = fill(&j, 3);
    let (at, gate, _) = snapshot_gated(&j, applied.clone());
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            open_gate(&gate);
        })
    };
    let d = j.close().expect("close");
    opener.join().expect("opener");
    assert_eq!(d.snapshot_lsn, at, "{d:?}");
    assert_eq!(
        restarts_from(&st, JournalOptions::default(), at, &applied),
        0
    );
}

/// Hands `j` a snapshot whose state does not encode; its LSN.
fn snapshot_unencodable(j: &Journal) -> Lsn {
    // JSON has no keys but strings: serde_json refuses this map.
    let bad: std::collections::HashMap<Vec<u8>, u64> = [(vec![1u8], 1u64)].into();
    j.snapshot(bad).expect("handed over")
}

/// Waiting for the snapshot at `at`, which was not taken, ends with an error naming it.
fn waiting_says_skipped(j: &Journal, at: Lsn) {
    let err = j.wait_snapshot_blocking(at).expect_err("never written");
    assert!(
        matches!(err, JournalError::SnapshotSkipped(l) if l == at),
        "{err}"
    );
}

/// A state that fails to encode costs only that snapshot: the records stay durable, the
/// next snapshot is taken and written. Waiting for the skipped one says so, not for ever
/// (it did before: `wait_snapshot_blocking` waited for a snapshot that would never come).
#[test]
fn a_snapshot_that_does_not_encode_is_skipped_and_the_next_is_taken() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let applied = fill(&j, 3);
    let bad_at = snapshot_unencodable(&j);
    waiting_says_skipped(&j, bad_at);
    assert_eq!(j.durable().borrow().snapshot_skipped, bad_at);
    let lsn = j.append(&record(4)).expect("append");
    j.wait_durable_blocking(lsn).expect("durable");
    let mut applied = applied;
    applied.push(4);
    let at = j.snapshot(applied.clone()).expect("handed over");
    j.wait_snapshot_blocking(at)
        .expect("the next snapshot is written");
    j.close().expect("close");
    assert_eq!(
        restarts_from(&st, JournalOptions::default(), at, &applied),
        0
    );
}

/// A skipped snapshot right behind a written one does not make waiting for the written one
/// fail: the writer publishes what became of each in the order they were asked for (found
/// in review: the snapshot thread published the skip itself, which could overtake the
/// writer's publishing of the snapshot before it; this test did not catch that race in
/// runs, which is narrow, and checks the order as it stands).
#[test]
fn a_skipped_snapshot_does_not_fail_waiting_for_the_one_before_it() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let applied = fill(&j, 3);
    let (good_at, gate, _) = snapshot_gated(&j, applied.clone());
    j.append(&record(4)).expect("append");
    let bad_at = snapshot_unencodable(&j);
    assert!(bad_at > good_at);
    open_gate(&gate);
    j.wait_snapshot_blocking(good_at)
        .expect("the snapshot before the skipped one is written");
    waiting_says_skipped(&j, bad_at);
    let d = j.close().expect("close");
    assert_eq!((d.snapshot_lsn, d.snapshot_skipped), (good_at, bad_at));
}

/// What the cluster replica is told with a snapshot is where the replica was when the
/// records up to the snapshot's LSN were all replicated, not where it is when the snapshot
/// is written: a standby starting from it must replay the records replicated meanwhile
/// (regression: `replica_snapshot_position_is_the_cuts`).
#[test]
fn replica_snapshot_position_is_the_cuts() {
    #[derive(Default)]
    struct Counting {
        frames: std::sync::Mutex<u64>,
        told: std::sync::Mutex<Vec<(u64, Vec<u64>)>>,
    }
    impl crate::journal::Replica for Counting {
        fn replicate(&self, frames: &[u8]) -> anyhow::Result<()> {
            *self.frames.lock().expect("lock") += super::writer::count_frames(frames);
            Ok(())
        }
        fn position(&self) -> u64 {
            *self.frames.lock().expect("lock")
        }
        fn snapshot(&self, at: u64, state: &[u8]) {
            let state = serde_json::from_slice(state).expect("the test's Vec<u64>");
            self.told.lock().expect("lock").push((at, state));
        }
    }
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let replica = Arc::new(Counting::default());
    j.set_replica(replica.clone());
    let applied = fill(&j, 6);
    let (at, gate, _) = snapshot_gated(&j, applied.clone());
    for i in 7..=9 {
        let lsn = j.append(&record(i)).expect("append");
        j.wait_durable_blocking(lsn).expect("durable");
    }
    assert_eq!(crate::journal::Replica::position(&*replica), 9);
    open_gate(&gate);
    j.wait_snapshot_blocking(at).expect("written");
    j.close().expect("close");
    assert_eq!(*replica.told.lock().expect("lock"), vec![(6, applied)]);
}

/// The snapshot thread writes the snapshot file; a write that fails there fails the journal
/// as one of the writer's own would (a disk that refuses a write is not trusted with the
/// next record), and a power loss then keeps every record reported durable.
#[test]
fn a_snapshot_that_cannot_be_written_fails_the_journal() {
    let st = SimStorage::new();
    let (j, _) = open(&st, JournalOptions::default()).expect("open");
    let applied = fill(&j, 5);
    let (at, gate, _) = snapshot_gated(&j, applied.clone());
    // The cut first (its segment's header is a write too), then the fault.
    let cut = segment_name(at + 1);
    for _ in 0..500 {
        if st.list(&dir()).expect("list").contains(&cut) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        st.list(&dir()).expect("list").contains(&cut),
        "the cut was made"
    );
    st.fail(FaultOp::Write, 0, io::ErrorKind::StorageFull);
    open_gate(&gate);
    let err = j
        .wait_snapshot_blocking(at)
        .expect_err("the snapshot's write failed");
    assert!(matches!(err, JournalError::Failed(_)), "{err}");
    assert!(matches!(j.append(&record(6)), Err(JournalError::Failed(_))));
    let d = j.durable().borrow().clone();
    assert_eq!((d.lsn, d.snapshot_lsn), (5, 0), "{d:?}");
    drop(j);
    let (_j, rec) = open(&st.power_loss_image(None), JournalOptions::default())
        .expect("recover after the failure");
    assert!(rec.snapshot.is_none(), "no snapshot was written");
    assert_eq!(state_of(&rec), applied);
}

/// A snapshot asked for after every record, each record waited for: the writer, the cuts
/// and the snapshot thread keep step (a watchdog ends the test binary if a record is never
/// written), and a restart gives every record once. (It did not catch the lost wake-up that
/// `Shared::wake`'s comment describes, with notify_one put back: that race is too narrow.)
#[test]
fn a_snapshot_after_every_record_keeps_step_with_the_writer() {
    let st = SimStorage::new();
    let opts = JournalOptions {
        snapshot_every: 1,
        ..JournalOptions::default()
    };
    let (j, _) = open(&st, opts.clone()).expect("open");
    let (finished, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            eprintln!("a record appended was never written: the writer was not woken");
            std::process::abort();
        }
    });
    let mut applied = vec![];
    for i in 1..=2_000 {
        let lsn = j.append(&record(i)).expect("append");
        applied.push(i);
        if j.snapshot_due() {
            j.snapshot(applied.clone()).expect("snapshot");
        }
        j.wait_durable_blocking(lsn).expect("durable");
    }
    finished.send(()).expect("watchdog");
    watchdog.join().expect("watchdog");
    j.close().expect("close");
    let (_j, rec) = open(&st, opts).expect("reopen");
    assert_eq!(state_of(&rec), applied);
}
