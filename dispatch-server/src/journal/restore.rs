//! From the journal to a running engine and back: journaling one engine step, and rebuilding
//! the engine at start (snapshot + replay through the same `Engine` calls).
//!
//! The engine task (team server) calls [`journal_command`] after every accepted command and
//! [`journal_timeout`] after every `handle_timeout`, then releases the reply and the events
//! only once the returned LSN is durable. At start, [`restore_engine`] turns what
//! `Journal::open` found into the engine that was running, checking on the way that the
//! regenerated events equal the journaled ones.

use super::storage::Storage;
use super::*;
use anyhow::{bail, Context};
use dispatch_core::engine::{Engine, EngineState};
use dispatch_core::journal::{self, Replayer};
use dispatch_core::matching::{RoadTimes, TravelTimes};
use dispatch_core::policy::PolicyConfig;
use dispatch_core::road::RoadNetwork;
use dispatch_core::roster::RosterFile;
use std::path::Path;
use std::sync::Arc;

/// What replay did at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub snapshot_lsn: Lsn,
    pub commands: u64,
    pub timeouts: u64,
    /// Decisions records whose events replay regenerated identically (for records of another
    /// decision version: identically but for reason texts).
    pub verified: u64,
    /// Of those, records written by another decision version (an upgrade's journal tail).
    pub verified_ignoring_reasons: u64,
}

/// Rebuilds the engine: the snapshot's state (or a fresh engine from `roster`), then every
/// record after it through `handle_command` / `handle_timeout`. Regenerated events are
/// drained and compared with the journaled Decisions; a difference stops the start (reason
/// texts count only for records of this build's decision version: docs/durability.md,
/// "Upgrades").
pub fn restore_engine(
    recovered: &Recovered,
    roads: Arc<dyn TravelTimes>,
    roster: RosterFile,
    config: PolicyConfig,
) -> anyhow::Result<(Engine, ReplayStats)> {
    let (mut engine, snapshot_lsn) = match &recovered.snapshot {
        Some(s) => {
            let state: EngineState = serde_json::from_slice(&s.state).with_context(|| {
                format!(
                    "snapshot {} does not hold an engine state of this version",
                    s.path.display()
                )
            })?;
            (
                Engine::restore_with_travel_times(roads, config, state),
                s.lsn,
            )
        }
        None => (
            Engine::with_travel_times(roads, roster, config).context("roster refused")?,
            0,
        ),
    };
    // A snapshot keeps events decided but not yet released; their records are durable, so
    // they were released (or their socket died): drop them, replay regenerates what follows.
    while engine.poll_event().is_some() {}
    let mut replayer = Replayer::new();
    let records = &recovered.records;
    for (i, (lsn, record)) in records.iter().enumerate() {
        let next = records.get(i + 1).map(|(_, r)| r);
        replayer
            .apply_before(&mut engine, record, next)
            .with_context(|| format!("replaying journal record {lsn}"))?;
    }
    // Whatever the tail's versions, what comes next is decided by today's rules.
    engine.set_decision_version(journal::DECISION_VERSION);
    while engine.poll_event().is_some() {}
    let stats = ReplayStats {
        snapshot_lsn,
        commands: replayer.commands,
        timeouts: replayer.timeouts,
        verified: replayer.verified,
        verified_ignoring_reasons: replayer.verified_ignoring_reasons,
    };
    tracing::info!(
        ?stats,
        last_seq = engine.last_seq(),
        "engine restored from the journal"
    );
    Ok((engine, stats))
}

/// Everything `dispatch serve` needs at start: opens (and recovers) the journal in
/// `data_dir` and rebuilds the engine over the road network from it.
pub fn open_durable_engine(
    data_dir: &Path,
    opts: JournalOptions,
    roads: Arc<RoadNetwork>,
    roster: RosterFile,
    config: PolicyConfig,
) -> anyhow::Result<(Journal, Engine, ReplayStats)> {
    let (journal, recovered) = Journal::open(data_dir, opts)
        .with_context(|| format!("opening the journal in {}", data_dir.display()))?;
    let times = Arc::new(RoadTimes::new(roads, config.foot_profile_kmh));
    let (engine, stats) = restore_engine(&recovered, times, roster, config)?;
    Ok((journal, engine, stats))
}

/// Replays the whole history (archive + live segments) on a fresh engine, from the seed
/// snapshot when the directory was seeded (else from `roster`): the audit check that later
/// snapshots did not drift from the records. Read-only.
pub fn replay_all(
    st: &dyn Storage,
    dir: &Path,
    roads: Arc<dyn TravelTimes>,
    roster: RosterFile,
    config: PolicyConfig,
) -> anyhow::Result<(Engine, ReplayStats)> {
    let mut records = Vec::new();
    let mut next = 1;
    for (first, path, _) in list_segments(st, dir)? {
        if first != next {
            bail!(
                "history is incomplete: {} starts at record {first}, expected {next}",
                path.display()
            );
        }
        let bytes = st
            .read(&path)
            .with_context(|| format!("read {}", path.display()))?;
        let scan = journal::scan(&bytes);
        if let journal::ScanEnd::CorruptMiddle { offset, reason, .. } = &scan.end {
            bail!("{} is corrupt at byte {offset}: {reason}", path.display());
        }
        for (_, r) in scan.records {
            records.push((next, r));
            next += 1;
        }
    }
    let recovered = Recovered {
        snapshot: super::snapshot::read_seed(st, dir),
        last_lsn: next - 1,
        records,
        cuts: Vec::new(),
    };
    restore_engine(&recovered, roads, roster, config)
}

/// The roster a data directory holds now, read without writing and without the road network
/// (`dispatch roster export`): the newest valid snapshot's roster, then every journaled roster
/// change after it, from the archive and the live segments. `None` for a directory that has
/// neither a snapshot nor a seed (one written before seeding existed: its roster file is it).
pub fn current_roster(st: &dyn Storage, dir: &Path) -> anyhow::Result<Option<RosterFile>> {
    let Some(snapshot) = super::snapshot::newest_snapshot(st, dir)? else {
        return Ok(None);
    };
    let state: EngineState = serde_json::from_slice(&snapshot.state).with_context(|| {
        format!(
            "snapshot {} does not hold an engine state of this version",
            snapshot.path.display()
        )
    })?;
    let mut roster = dispatch_core::roster::Roster::from_file(state.roster, &|_| Ok(()))
        .with_context(|| format!("the roster in {}", snapshot.path.display()))?;
    for (first, path, _) in list_segments(st, dir)? {
        let bytes = st
            .read(&path)
            .with_context(|| format!("read {}", path.display()))?;
        let scan = journal::scan(&bytes);
        if let journal::ScanEnd::CorruptMiddle { offset, reason, .. } = &scan.end {
            bail!("{} is corrupt at byte {offset}: {reason}", path.display());
        }
        for (i, (_, record)) in scan.records.iter().enumerate() {
            let lsn = first + i as u64;
            if lsn <= snapshot.lsn {
                continue;
            }
            if let journal::Entry::Command { command, .. } = &record.entry {
                roster.replay_change(command).with_context(|| {
                    format!("journal record {lsn} in {} does not apply", path.display())
                })?;
            }
        }
    }
    Ok(Some(roster.to_file()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::storage::SimStorage;
    use dispatch_core::command::{Alert, Command, Reply};
    use dispatch_core::event::{Event, EventRecord};
    use dispatch_core::geo::LatLon;
    use dispatch_core::ids::{
        AlertId, DeviceId, ElderId, GridId, IncidentId, OfferId, OperatorId, ResponderId,
    };
    use dispatch_core::matching::StraightLine;
    use dispatch_core::model::{AlertKind, Availability, ResponderKind, ServiceKind, TravelMode};
    use dispatch_core::roster::{
        DeviceRecord, ElderRecord, GridRecord, OperatorRecord, ResponderRecord,
    };
    use dispatch_core::time::Timestamp;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use std::path::PathBuf;

    const ORIGIN: (f64, f64) = (-30.03, -51.22);

    fn at(dlat: f64, dlon: f64) -> LatLon {
        LatLon::new(ORIGIN.0 + dlat, ORIGIN.1 + dlon).expect("valid test position")
    }

    fn roads() -> Arc<dyn TravelTimes> {
        Arc::new(StraightLine::new(at(0.0, 0.0), 20_000.0))
    }

    fn roster() -> RosterFile {
        let responder = |id: &str, kind, travel_mode, home| ResponderRecord {
            kin_of: Vec::new(),
            id: ResponderId::from(id),
            kind,
            travel_mode,
            walk_kmh: None,
            home,
            grid_id: (kind == ResponderKind::GridWorker).then(|| GridId::from("g1")),
            skills: vec![],
            token_sha256: None,
        };
        RosterFile {
            regions: Vec::new(),
            grids: vec![GridRecord {
                id: GridId::from("g1"),
                name: "centro".into(),
            }],
            responders: vec![
                responder(
                    "v1",
                    ResponderKind::Volunteer,
                    TravelMode::Foot,
                    at(0.001, 0.001),
                ),
                responder(
                    "v2",
                    ResponderKind::Volunteer,
                    TravelMode::Car,
                    at(-0.01, 0.004),
                ),
                responder(
                    "v3",
                    ResponderKind::Volunteer,
                    TravelMode::Foot,
                    at(0.003, -0.002),
                ),
                responder(
                    "gw1",
                    ResponderKind::GridWorker,
                    TravelMode::Car,
                    at(0.0, 0.006),
                ),
                responder(
                    "amb1",
                    ResponderKind::Ambulance,
                    TravelMode::Car,
                    at(0.02, 0.02),
                ),
                responder(
                    "s1",
                    ResponderKind::ServiceStaff,
                    TravelMode::Car,
                    at(-0.005, -0.005),
                ),
            ],
            elders: (1..=4)
                .map(|i| ElderRecord {
                    id: ElderId::from(format!("e{i}")),
                    home: at(0.002 * i as f64, -0.001 * i as f64),
                    grid_id: GridId::from("g1"),
                    care_level: (i as u8) + 1,
                    paired_responders: if i == 1 {
                        vec![ResponderId::from("v1")]
                    } else {
                        vec![]
                    },
                    details: Default::default(),
                    care_plan: Vec::new(),
                    check_in_by: None,
                    family: vec![],
                })
                .collect(),
            operators: vec![OperatorRecord {
                id: OperatorId::from("op1"),
                token_sha256: "a".repeat(64),
                roles: None,
            }],
            devices: vec![DeviceRecord {
                id: DeviceId::from("d1"),
                token_sha256: "b".repeat(64),
            }],
        }
    }

    /// A live engine that journals like the server does.
    struct Live {
        engine: Engine,
        journal: Journal,
        now: Timestamp,
        offers: Vec<(OfferId, ResponderId)>,
        assigned: Vec<(IncidentId, ResponderId)>,
        alerts: u64,
        accepted: u64,
    }

    impl Live {
        fn drain(&mut self) -> Vec<EventRecord> {
            let mut out = vec![];
            while let Some(e) = self.engine.poll_event() {
                match &e.event {
                    Event::OfferSent {
                        offer_id,
                        responder_id,
                        ..
                    } => self.offers.push((*offer_id, responder_id.clone())),
                    Event::Assigned {
                        incident_id,
                        responder_id,
                        ..
                    } => self.assigned.push((*incident_id, responder_id.clone())),
                    _ => {}
                }
                out.push(e);
            }
            out
        }

        fn command(&mut self, cmd: Command) {
            if let Ok(reply) = self.engine.handle_command(self.now, cmd.clone()) {
                self.accepted += 1;
                if let Reply::AlertAccepted {
                    duplicate: true, ..
                } = reply
                {
                    assert_eq!(
                        self.engine.poll_event(),
                        None,
                        "a duplicate decides nothing"
                    );
                }
                let events = self.drain();
                journal_command(&self.journal, self.now, &cmd, &events).expect("journal");
                self.maybe_snapshot();
            } else {
                assert_eq!(
                    self.engine.poll_event(),
                    None,
                    "a refused command decides nothing"
                );
            }
        }

        fn advance(&mut self, ms: u64) {
            let until = self.now.plus_ms(ms);
            while let Some(t) = self.engine.poll_timeout().filter(|t| *t <= until) {
                self.now = t.max(self.now);
                self.engine.handle_timeout(self.now);
                let events = self.drain();
                journal_timeout(&self.journal, self.now, &events).expect("journal");
                self.maybe_snapshot();
            }
            self.now = until;
        }

        fn maybe_snapshot(&mut self) {
            if self.journal.snapshot_due() {
                self.journal
                    .snapshot(self.engine.save_state())
                    .expect("snapshot");
            }
        }

        fn step<R: Rng>(&mut self, rng: &mut R) {
            let pick = |rng: &mut R, n: usize| rng.random_range(0..n.max(1));
            let responders = ["v1", "v2", "v3", "gw1", "amb1", "s1"];
            match rng.random_range(0..100) {
                0..=19 => {
                    self.alerts += 1;
                    // Now and then a resend of an earlier alert id: a duplicate.
                    let n = if rng.random_bool(0.15) {
                        1 + pick(rng, self.alerts as usize) as u64
                    } else {
                        self.alerts
                    };
                    let help = rng.random_bool(0.3);
                    self.command(Command::Alert(Alert {
                        alert_id: AlertId::from(format!("a{n}")),
                        kind: if help {
                            AlertKind::Help
                        } else {
                            AlertKind::Fall
                        },
                        service: help.then(|| {
                            if rng.random_bool(0.5) {
                                ServiceKind::Rescue
                            } else {
                                ServiceKind::Meal
                            }
                        }),
                        elder_id: ElderId::from(format!("e{}", 1 + pick(rng, 4))),
                        position: None,
                        detected_at: self.now,
                        ambulance_requested: rng.random_bool(0.1),
                        scheduled_for: None,
                        device_id: DeviceId::from("d1"),
                    }));
                }
                20..=44 if !self.offers.is_empty() => {
                    let (offer_id, responder_id) =
                        self.offers[pick(rng, self.offers.len())].clone();
                    self.command(Command::answer_offer(
                        responder_id,
                        offer_id,
                        rng.random_bool(0.7),
                    ));
                }
                45..=59 if !self.assigned.is_empty() => {
                    let (incident_id, responder_id) =
                        self.assigned[pick(rng, self.assigned.len())].clone();
                    self.command(if rng.random_bool(0.5) {
                        Command::Arrived {
                            responder_id,
                            incident_id,
                        }
                    } else {
                        Command::Complete {
                            responder_id,
                            incident_id,
                        }
                    });
                }
                60..=67 => {
                    let responder_id = ResponderId::from(responders[pick(rng, responders.len())]);
                    let position = at(rng.random_range(-0.01..0.01), rng.random_range(-0.01..0.01));
                    self.command(Command::Location {
                        responder_id,
                        position,
                    });
                }
                68..=72 => {
                    let responder_id = ResponderId::from(responders[pick(rng, responders.len())]);
                    let status = if rng.random_bool(0.8) {
                        Availability::Available
                    } else {
                        Availability::OffDuty
                    };
                    self.command(Command::SetAvailability {
                        responder_id,
                        status,
                    });
                }
                73..=76 => {
                    let n = 1 + pick(rng, self.alerts as usize);
                    self.command(Command::CancelAlert {
                        alert_id: AlertId::from(format!("a{n}")),
                        device_id: DeviceId::from("d1"),
                    });
                }
                77..=79 => {
                    let elder_id = ElderId::from(format!("e{}", 1 + pick(rng, 4)));
                    self.command(Command::CheckIn {
                        elder_id,
                        device_id: DeviceId::from("d1"),
                    });
                }
                80..=82 if !self.assigned.is_empty() => {
                    let (incident_id, _) = self.assigned[pick(rng, self.assigned.len())].clone();
                    let operator_id = OperatorId::from("op1");
                    self.command(Command::Resolve {
                        operator_id,
                        incident_id,
                        note: "done".into(),
                    });
                }
                _ => self.advance(rng.random_range(0..90_000)),
            }
        }
    }

    fn run_live(
        st: &SimStorage,
        dir: &Path,
        seed: u64,
        steps: usize,
        snapshot_every: u64,
    ) -> (EngineState, Live) {
        let opts = JournalOptions {
            snapshot_every,
            ..JournalOptions::default()
        };
        let (journal, rec) = Journal::open_with(Arc::new(st.clone()), dir, opts).expect("open");
        assert_eq!(rec.last_lsn, 0);
        let engine = Engine::with_travel_times(
            roads(),
            roster(),
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh),
        )
        .expect("roster");
        let mut live = Live {
            engine,
            journal,
            now: Timestamp(1_700_000_000_000),
            offers: vec![],
            assigned: vec![],
            alerts: 0,
            accepted: 0,
        };
        // Everyone on duty first, so alerts lead to offers and assignments.
        for id in ["v1", "v2", "v3", "gw1", "amb1", "s1"] {
            live.command(Command::SetAvailability {
                responder_id: ResponderId::from(id),
                status: Availability::Available,
            });
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..steps {
            live.step(&mut rng);
        }
        (live.engine.save_state(), live)
    }

    /// Returns (decisions verified, offers sent, assignments) so callers can check the run did something.
    fn check_replay_equals_live(
        seed: u64,
        steps: usize,
        snapshot_every: u64,
    ) -> Result<(u64, usize, usize), TestCaseError> {
        let st = SimStorage::new();
        let dir = PathBuf::from("/data");
        let (live_state, live) = run_live(&st, &dir, seed, steps, snapshot_every);
        let Live {
            journal,
            accepted,
            offers,
            assigned,
            ..
        } = live;
        journal.close().expect("close");

        let opts = JournalOptions {
            snapshot_every,
            ..JournalOptions::default()
        };
        let (_j, rec) = Journal::open_with(Arc::new(st.clone()), &dir, opts).expect("reopen");
        let (engine, stats) = restore_engine(
            &rec,
            roads(),
            roster(),
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh),
        )
        .expect("restore");
        prop_assert_eq!(
            &engine.save_state(),
            &live_state,
            "snapshot + tail replay equals live"
        );

        let (full, full_stats) = replay_all(
            &st,
            &dir,
            roads(),
            roster(),
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh),
        )
        .expect("full replay");
        prop_assert_eq!(&full.save_state(), &live_state, "full replay equals live");
        prop_assert_eq!(
            full_stats.commands,
            accepted,
            "every accepted command was journaled once"
        );
        prop_assert!(full_stats.verified >= stats.verified);
        Ok((full_stats.verified, offers.len(), assigned.len()))
    }

    #[test]
    fn replay_equals_live_and_decisions_are_regenerated_identically() {
        for seed in 0..4 {
            let (verified, offers, assigned) =
                check_replay_equals_live(seed, 400, 0).expect("replay equals live");
            // The run must exercise dispatch, not only refusals.
            assert!(
                verified > 50 && offers > 10 && assigned > 2,
                "seed {seed}: {verified} {offers} {assigned}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Snapshots at any cadence: snapshot + tail == full replay == live.
        #[test]
        fn snapshot_plus_tail_equals_full_replay(seed in any::<u64>(), steps in 1usize..300, snapshot_every in 1u64..40) {
            check_replay_equals_live(seed, steps, snapshot_every)?;
        }
    }

    /// Cluster mode's standby (`cluster::log::Follower`) fed a live journal as the stream
    /// would hold it: batches of whole frames cut into messages at any byte, with a takeover
    /// (an unfinished group, then a fence) between two batches. Its engine equals the live one,
    /// and what it refuses (a gap in the sequence, an unknown kind, a damaged record) it names.
    #[test]
    fn a_standby_following_the_stream_equals_the_live_engine() {
        use crate::cluster::log::Follower;
        for seed in 0..3u64 {
            let st = SimStorage::new();
            let dir = PathBuf::from("/data");
            let (live_state, live) = run_live(&st, &dir, seed, 400, 0);
            live.journal.close().expect("close");
            let segment = st
                .contents(&dir.join(segment_name(1)))
                .expect("the journal's segment");
            let frames = &segment[journal::FILE_HEADER_LEN..];
            let mut at = 0;
            let mut ends = vec![];
            while at < frames.len() {
                at += super::super::writer::frame_len(&frames[at..]);
                ends.push(at);
            }
            assert!(
                ends.len() > 100,
                "seed {seed}: the run journaled too little"
            );
            let policy = crate::serve_cmd::server_policy(
                dispatch_core::road::RoadConfig::default().foot_kmh,
            );
            let fresh =
                || Engine::with_travel_times(roads(), roster(), policy.clone()).expect("roster");
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut follower = Follower::new(fresh(), 1);
            let mut seq = 1;
            let mut start = 0;
            let mut i = 0;
            let fence_after = ends.len() / 2;
            let mut fenced = false;
            while i < ends.len() {
                let take = rng.random_range(1..=20).min(ends.len() - i);
                let end = ends[i + take - 1];
                let batch = &frames[start..end];
                // Cut the batch into messages at arbitrary bytes; all but the last say "more".
                let mut cuts: Vec<usize> = (0..rng.random_range(0..4))
                    .map(|_| rng.random_range(0..=batch.len()))
                    .collect();
                cuts.push(batch.len());
                cuts.sort_unstable();
                let mut from = 0;
                for (k, &cut) in cuts.iter().enumerate() {
                    seq += 1;
                    let more = k + 1 < cuts.len();
                    follower
                        .apply(seq, Some("records"), more, &batch[from..cut])
                        .expect("apply");
                    from = cut;
                }
                start = end;
                i += take;
                if !fenced && i >= fence_after {
                    // An engine died in the middle of a group: its unfinished part is dropped
                    // at the next engine's fence (it was never acknowledged).
                    seq += 1;
                    follower
                        .apply(seq, Some("records"), true, &frames[..ends[3]])
                        .expect("a partial group");
                    seq += 1;
                    follower
                        .apply(seq, Some("fence"), false, &[])
                        .expect("fence");
                    fenced = true;
                }
            }
            assert_eq!(follower.applied, seq);
            let engine = follower.finish().expect("finish");
            assert_eq!(
                engine.save_state(),
                live_state,
                "seed {seed}: the standby's engine equals the live one"
            );
        }

        // What a follower refuses.
        let policy =
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh);
        let fresh =
            || Engine::with_travel_times(roads(), roster(), policy.clone()).expect("roster");
        let mut again = Follower::new(fresh(), 1);
        again.apply(2, Some("fence"), false, &[]).expect("a fence");
        again
            .apply(2, Some("fence"), false, &[])
            .expect("a message delivered again is skipped");
        assert_eq!(again.applied, 2);
        let gap = Follower::new(fresh(), 1).apply(3, Some("fence"), false, &[]);
        assert!(format!("{:#}", gap.expect_err("a gap")).contains("out of order"));
        let unknown = Follower::new(fresh(), 1).apply(2, Some("gossip"), false, &[]);
        assert!(format!("{:#}", unknown.expect_err("unknown kind")).contains("unknown kind"));
        let damaged = Follower::new(fresh(), 1).apply(
            2,
            Some("records"),
            false,
            &[9, 9, 9, 9, 1, 2, 3, 4, 5],
        );
        assert!(format!("{:#}", damaged.expect_err("damaged")).contains("damaged record"));
    }

    /// A location ping is one record (its `responder_moved` is implied and regenerated on
    /// replay); any other command with events is two (command, then its Decisions).
    #[test]
    fn a_location_ping_is_one_record_other_commands_two() {
        let st = SimStorage::new();
        let dir = PathBuf::from("/data");
        let (j, _) =
            Journal::open_with(Arc::new(st), &dir, JournalOptions::default()).expect("open");
        let mut e = Engine::with_travel_times(
            roads(),
            roster(),
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh),
        )
        .expect("roster");
        let now = Timestamp(1_700_000_000_000);
        let mut run = |cmd: Command| {
            e.handle_command(now, cmd.clone()).expect("accepted");
            let events: Vec<EventRecord> = std::iter::from_fn(|| e.poll_event()).collect();
            assert!(!events.is_empty());
            journal_command(&j, now, &cmd, &events).expect("journal")
        };
        let a = run(Command::SetAvailability {
            responder_id: ResponderId::from("v1"),
            status: Availability::Available,
        });
        let b = run(Command::Location {
            responder_id: ResponderId::from("v1"),
            position: at(0.001, 0.001),
        });
        let c = run(Command::SetAvailability {
            responder_id: ResponderId::from("v1"),
            status: Availability::OffDuty,
        });
        assert_eq!(b, a + 1, "the ping is one record");
        assert_eq!(c, b + 2, "availability is a command and its decisions");
    }

    #[test]
    fn a_tampered_decision_is_caught_on_replay() {
        let st = SimStorage::new();
        let dir = PathBuf::from("/data");
        let (_, live) = run_live(&st, &dir, 7, 200, 0);
        live.journal.close().expect("close");
        let (_j, mut rec) =
            Journal::open_with(Arc::new(st), &dir, JournalOptions::default()).expect("reopen");
        let decision = rec
            .records
            .iter_mut()
            .find_map(|(_, r)| match &mut r.entry {
                journal::Entry::Decisions { events, .. } => Some(events),
                _ => None,
            })
            .expect("the run decided something");
        decision[0].at = Timestamp(decision[0].at.0 + 1);
        let err = restore_engine(
            &rec,
            roads(),
            roster(),
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh),
        )
        .expect_err("diverged");
        assert!(
            format!("{err:#}").contains("replay produced events"),
            "{err:#}"
        );
    }

    /// A directory seeded with `roster()`: the engine that goes with it, its journal, and the
    /// policy the server runs.
    fn seeded(st: &SimStorage, dir: &std::path::Path) -> (Engine, Journal, PolicyConfig) {
        let policy =
            crate::serve_cmd::server_policy(dispatch_core::road::RoadConfig::default().foot_kmh);
        let e = Engine::with_travel_times(roads(), roster(), policy.clone()).expect("roster");
        assert!(crate::journal::seed(st, dir, &e.save_state()).expect("seed"));
        let (j, _) =
            Journal::open_with(Arc::new(st.clone()), dir, JournalOptions::default()).expect("open");
        (e, j, policy)
    }

    /// Regression (the roster file was the starting point of every restart without a
    /// snapshot): a responder removed from the file made the next start fail replaying the
    /// records that name them. A seeded directory restarts from its own roster whatever the
    /// file says now, and a directory is seeded once only.
    #[test]
    fn removing_a_responder_from_the_file_does_not_stop_a_restart() {
        let st = SimStorage::new();
        let dir = PathBuf::from("/data");
        let (mut e, j, policy) = seeded(&st, &dir);
        let now = Timestamp(1_700_000_000_000);
        let cmd = Command::SetAvailability {
            responder_id: ResponderId::from("v2"),
            status: Availability::Available,
        };
        e.handle_command(now, cmd.clone()).expect("accepted");
        let events: Vec<EventRecord> = std::iter::from_fn(|| e.poll_event()).collect();
        let lsn = journal_command(&j, now, &cmd, &events).expect("journal");
        j.wait_durable_blocking(lsn).expect("durable");
        j.close().expect("close");
        assert!(
            !crate::journal::seed(&st, &dir, &e.save_state()).expect("seed"),
            "a directory that started once is not seeded again"
        );

        let mut file = roster();
        file.responders.retain(|r| r.id.as_str() != "v2");
        let (_j, rec) =
            Journal::open_with(Arc::new(st), &dir, JournalOptions::default()).expect("reopen");
        assert_eq!(rec.snapshot.as_ref().map(|s| s.lsn), Some(0), "the seed");
        let (restored, _) = restore_engine(&rec, roads(), file, policy).expect("restarts");
        assert!(restored
            .roster()
            .responder(&ResponderId::from("v2"))
            .is_some());
        assert_eq!(restored.save_state(), e.save_state());
    }

    /// Snapshots taken later push the seed out of the live directory into `archive/`, where
    /// a whole-history replay starts from it (not from today's roster file).
    #[test]
    fn the_seed_is_archived_and_a_whole_replay_starts_from_it() {
        let st = SimStorage::new();
        let dir = PathBuf::from("/data");
        let (mut e, j, policy) = seeded(&st, &dir);
        let now = Timestamp(1_700_000_000_000);
        for (i, status) in [Availability::Available, Availability::OffDuty]
            .into_iter()
            .cycle()
            .take(4)
            .enumerate()
        {
            let cmd = Command::SetAvailability {
                responder_id: ResponderId::from("v2"),
                status,
            };
            e.handle_command(now.plus_ms(i as u64), cmd.clone())
                .expect("accepted");
            let events: Vec<EventRecord> = std::iter::from_fn(|| e.poll_event()).collect();
            journal_command(&j, now.plus_ms(i as u64), &cmd, &events).expect("journal");
            let lsn = j.snapshot(e.save_state()).expect("snapshot");
            j.wait_snapshot_blocking(lsn).expect("snapshot written");
        }
        j.close().expect("close");
        let seed = dir.join("archive/snapshot-00000000000000000000.snap");
        assert!(st.read(&seed).is_ok(), "the seed is archived");
        assert!(
            st.read(&dir.join(seed.file_name().unwrap())).is_err(),
            "and not live"
        );

        let mut file = roster();
        file.responders.retain(|r| r.id.as_str() != "v2");
        let (full, _) = replay_all(&st, &dir, roads(), file, policy).expect("whole replay");
        assert_eq!(full.save_state(), e.save_state());
    }

    /// One run-time roster edit, by index into small pools of ids (so edits collide).
    #[derive(Debug, Clone)]
    enum Edit {
        Responder(u8, (i8, i8)),
        RetireResponder(u8),
        Elder(u8, u8, Option<u8>),
        RetireElder(u8),
        Grid(u8),
        RetireGrid(u8),
        Operator(u8, u8),
        RetireOperator(u8),
        Device(u8, u8),
        RetireDevice(u8),
        Snapshot,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (0u8..6, (-5i8..5, -5i8..5)).prop_map(|(i, d)| Edit::Responder(i, d)),
            (0u8..6).prop_map(Edit::RetireResponder),
            (0u8..5, 0u8..3, proptest::option::of(0u8..6))
                .prop_map(|(i, g, p)| Edit::Elder(i, g, p)),
            (0u8..5).prop_map(Edit::RetireElder),
            (0u8..3).prop_map(Edit::Grid),
            (0u8..3).prop_map(Edit::RetireGrid),
            (0u8..3, 0u8..4).prop_map(|(i, t)| Edit::Operator(i, t)),
            (0u8..3).prop_map(Edit::RetireOperator),
            (0u8..3, 0u8..4).prop_map(|(i, t)| Edit::Device(i, t)),
            (0u8..3).prop_map(Edit::RetireDevice),
            Just(Edit::Snapshot),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(15), ..ProptestConfig::default() })]
        /// The roster rebuilt from a data directory without the road network (`dispatch
        /// roster export`) equals the engine's after any sequence of run-time edits, refused
        /// ones and snapshots included.
        #[test]
        fn the_exported_roster_equals_the_engines_after_any_edits(
            edits in proptest::collection::vec(edit(), 0..40)
        ) {
            let st = SimStorage::new();
            let dir = PathBuf::from("/data");
            let (mut e, j, _) = seeded(&st, &dir);
            let by = || dispatch_core::model::Actor::Operator(OperatorId::from("op1"));
            let now = Timestamp(1_700_000_000_000);
            for (i, ed) in edits.into_iter().enumerate() {
                let cmd = match ed {
                    Edit::Snapshot => {
                        j.snapshot(e.save_state()).expect("snapshot");
                        continue;
                    }
                    Edit::Responder(n, (dlat, dlon)) => Command::UpsertResponder {
                        by: by(),
                        responder: ResponderRecord {
                            kin_of: Vec::new(),
                            id: ResponderId::from(format!("r{n}")),
                            kind: ResponderKind::Volunteer,
                            travel_mode: TravelMode::Foot,
                            walk_kmh: None,
                            home: at(f64::from(dlat) * 0.001, f64::from(dlon) * 0.001),
                            grid_id: None,
                            skills: vec![],
                            token_sha256: Some(format!("{n:064x}")),
                        },
                    },
                    Edit::RetireResponder(n) => Command::RetireResponder {
                        by: by(),
                        responder_id: ResponderId::from(format!("r{n}")),
                    },
                    Edit::Elder(n, g, paired) => Command::UpsertElder {
                        by: by(),
                        elder: ElderRecord {
                            id: ElderId::from(format!("x{n}")),
                            home: at(0.001 * f64::from(n), 0.0),
                            grid_id: GridId::from(if g == 0 { "g1".to_string() } else { format!("h{g}") }),
                            care_level: 1 + n % 5,
                            paired_responders: paired.map(|p| ResponderId::from(format!("r{p}"))).into_iter().collect(),
                            details: Default::default(),
                            care_plan: Vec::new(),
                            check_in_by: None,
                            family: vec![],
                        },
                    },
                    Edit::RetireElder(n) => Command::RetireElder {
                        by: by(),
                        elder_id: ElderId::from(format!("x{n}")),
                    },
                    Edit::Grid(g) => Command::UpsertGrid {
                        by: by(),
                        grid: GridRecord { id: GridId::from(format!("h{g}")), name: format!("grid {g}") },
                    },
                    // Tokens drawn from a small pool, so that some collide (and are refused).
                    Edit::Operator(n, t) => Command::UpsertOperator {
                        by: by(),
                        operator: OperatorRecord {
                            id: OperatorId::from(format!("op{n}")),
                            token_sha256: format!("{:064x}", 0xc000 + u32::from(t)),
                            roles: None,
                        },
                    },
                    Edit::RetireOperator(n) => Command::RetireOperator {
                        by: by(),
                        operator_id: OperatorId::from(format!("op{n}")),
                    },
                    Edit::Device(n, t) => Command::UpsertDevice {
                        by: by(),
                        device: DeviceRecord {
                            id: DeviceId::from(format!("d{n}")),
                            token_sha256: format!("{:064x}", 0xc000 + u32::from(t)),
                        },
                    },
                    Edit::RetireDevice(n) => Command::RetireDevice {
                        by: by(),
                        device_id: DeviceId::from(format!("d{n}")),
                    },
                    Edit::RetireGrid(g) => Command::RetireGrid {
                        by: by(),
                        grid_id: GridId::from(format!("h{g}")),
                    },
                };
                let at_ms = now.plus_ms(i as u64);
                if e.handle_command(at_ms, cmd.clone()).is_ok() {
                    let events: Vec<EventRecord> = std::iter::from_fn(|| e.poll_event()).collect();
                    journal_command(&j, at_ms, &cmd, &events).expect("journal");
                } else {
                    prop_assert_eq!(e.poll_event(), None);
                }
            }
            j.close().expect("close");
            let exported = current_roster(&st, &dir).expect("reads").expect("seeded");
            let engine = e.roster().to_file();
            prop_assert!(exported.differences(&engine).is_empty(), "{:?}", exported.differences(&engine));
            prop_assert_eq!(exported, engine);
        }
    }
}
