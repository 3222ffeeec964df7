//! Tests of the record codec and replay: round trips (property), the decoder on any bytes,
//! torn tails and corrupt middles told apart, and replay refusing a divergence.

use super::*;
use crate::event::Event;
use crate::ids::{AlertId, DeviceId, ElderId, IncidentId, ResponderId};
use crate::model::Availability;
use proptest::prelude::*;

fn sample_records() -> Vec<Record> {
    let r = RegionId(1);
    vec![
        Record::command(
            r,
            Timestamp(1_000),
            Command::CheckIn {
                elder_id: ElderId::from("e1"),
                device_id: DeviceId::from("d1"),
            },
        ),
        Record::decisions(
            r,
            vec![EventRecord {
                seq: 1,
                at: Timestamp(1_000),
                event: Event::CheckedIn {
                    elder_id: ElderId::from("e1"),
                },
            }],
        )
        .expect("one event"),
        Record::timeout(r, Timestamp(2_000)),
        Record::command(
            r,
            Timestamp(3_000),
            Command::SetAvailability {
                responder_id: ResponderId::from("r1"),
                status: Availability::Available,
            },
        ),
        Record::command(
            r,
            Timestamp(4_000),
            Command::CancelAlert {
                alert_id: AlertId::from("a1"),
                device_id: DeviceId::from("d1"),
            },
        ),
        Record::decisions(
            r,
            vec![
                EventRecord {
                    seq: 2,
                    at: Timestamp(4_000),
                    event: Event::AlertJoined {
                        incident_id: IncidentId(7),
                        alert_id: AlertId::from("a1"),
                    },
                },
                EventRecord {
                    seq: 3,
                    at: Timestamp(4_000),
                    event: Event::CheckedIn {
                        elder_id: ElderId::from("é\"\n"),
                    },
                },
            ],
        )
        .expect("two events"),
    ]
}

fn segment(records: &[Record]) -> Vec<u8> {
    let mut buf = file_header().to_vec();
    for r in records {
        encode_into(r, &mut buf).expect("encodes");
    }
    buf
}

#[test]
fn round_trips_every_kind() {
    let records = sample_records();
    let buf = segment(&records);
    let scan = scan(&buf);
    assert_eq!(scan.end, ScanEnd::Clean);
    let decoded: Vec<Record> = scan.records.into_iter().map(|(_, r)| r).collect();
    assert_eq!(decoded, records);
}

#[test]
fn empty_file_is_torn_and_header_only_is_clean() {
    assert_eq!(scan(&[]).end, ScanEnd::TornTail { offset: 0 });
    assert_eq!(
        scan(&file_header()[..3]).end,
        ScanEnd::TornTail { offset: 0 }
    );
    assert_eq!(scan(&file_header()).end, ScanEnd::Clean);
    assert!(matches!(
        scan(b"NOTJNL\x01\x00").end,
        ScanEnd::CorruptTail {
            offset: 0,
            reason: Corruption::BadMagic
        }
    ));
}

#[test]
fn every_truncation_keeps_exactly_the_complete_records() {
    let records = sample_records();
    let buf = segment(&records);
    let ends: Vec<usize> = scan(&buf)
        .records
        .iter()
        .map(|(o, _)| *o)
        .skip(1)
        .chain([buf.len()])
        .collect();
    for cut in 0..=buf.len() {
        let s = scan(&buf[..cut]);
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(s.records.len(), complete, "cut at {cut}");
        let at_boundary = cut == FILE_HEADER_LEN || ends.contains(&cut);
        if at_boundary {
            assert_eq!(s.end, ScanEnd::Clean, "cut at {cut}");
        } else {
            assert!(
                matches!(s.end, ScanEnd::TornTail { .. }),
                "cut at {cut}: {:?}",
                s.end
            );
        }
    }
}

#[test]
fn a_flipped_bit_is_reported_with_its_record_offset_and_never_applied() {
    let records = sample_records();
    let buf = segment(&records);
    let offsets: Vec<usize> = scan(&buf).records.iter().map(|(o, _)| *o).collect();
    for byte in FILE_HEADER_LEN..buf.len() {
        for bit in 0..8 {
            let mut bad = buf.clone();
            bad[byte] ^= 1 << bit;
            let s = scan(&bad);
            // The record holding the flipped byte and everything after it are not returned
            // as valid unless they are byte-identical to what was written.
            let hit = offsets
                .iter()
                .rposition(|&o| o <= byte)
                .expect("after header");
            assert_eq!(s.records.len(), hit, "byte {byte} bit {bit}");
            for (i, (_, r)) in s.records.iter().enumerate() {
                assert_eq!(r, &records[i]);
            }
            let last = hit == records.len() - 1;
            match &s.end {
                ScanEnd::CorruptMiddle {
                    offset, next_valid, ..
                } => {
                    assert_eq!(*offset, offsets[hit]);
                    assert_eq!(*next_valid, offsets[hit + 1], "byte {byte} bit {bit}");
                }
                ScanEnd::CorruptTail { offset, .. } | ScanEnd::TornTail { offset } => {
                    assert_eq!(*offset, offsets[hit]);
                    assert!(
                        last,
                        "byte {byte} bit {bit}: valid records follow: {:?}",
                        s.end
                    );
                }
                ScanEnd::Clean => panic!("byte {byte} bit {bit}: corruption not detected"),
            }
        }
    }
}

#[test]
fn zeroed_tail_and_garbage_are_a_corrupt_tail() {
    let records = sample_records();
    let mut buf = segment(&records);
    let good = buf.len();
    buf.extend_from_slice(&[0u8; 100]);
    let s = scan(&buf);
    assert_eq!(s.records.len(), records.len());
    assert!(matches!(s.end, ScanEnd::CorruptTail { offset, .. } if offset == good));
    buf.truncate(good);
    buf.extend_from_slice(b"\xff\xff\xff\x7fgarbage after the last record");
    let s = scan(&buf);
    assert_eq!(s.records.len(), records.len());
    assert_eq!(s.end.valid_len(buf.len()), good);
}

#[test]
fn a_different_version_is_corrupt_not_misread() {
    let mut rec = encode(&Record::timeout(RegionId(0), Timestamp(5))).expect("encodes");
    rec[FRAME_HEADER_LEN] = FORMAT_VERSION + 1;
    let crc = crc32fast::hash(&rec[FRAME_HEADER_LEN..]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    let mut buf = file_header().to_vec();
    buf.extend_from_slice(&rec);
    assert_eq!(
        decode_at(&buf, FILE_HEADER_LEN),
        Decoded::Corrupt {
            offset: FILE_HEADER_LEN,
            reason: Corruption::BadVersion(FORMAT_VERSION + 1)
        }
    );
}

/// A format-1 record (the first release: no decision version) reads as decision version
/// 1 and re-encodes to exactly its bytes; a format-1 segment header is accepted.
#[test]
fn format_1_records_are_read_and_reencoded_as_written() {
    let events = vec![EventRecord {
        seq: 4,
        at: Timestamp(7),
        event: Event::CheckedIn {
            elder_id: ElderId::from("e1"),
        },
    }];
    // Format 1 by hand: version 1, region, kind 3, first, last, JSON.
    let mut body = vec![1u8, 5, 0, KIND_DECISIONS];
    body.extend_from_slice(&4u64.to_le_bytes());
    body.extend_from_slice(&4u64.to_le_bytes());
    body.extend_from_slice(&serde_json::to_vec(&events).expect("json"));
    let mut seg = file_header().to_vec();
    seg[6] = 1;
    seg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    seg.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    seg.extend_from_slice(&body);
    let s = scan(&seg);
    assert_eq!(s.end, ScanEnd::Clean);
    let (_, record) = &s.records[0];
    assert_eq!(record.format, 1);
    assert_eq!(
        record.entry,
        Entry::Decisions {
            first_seq: 4,
            last_seq: 4,
            decision_version: 1,
            events
        }
    );
    assert_eq!(encode(record).expect("encodes"), seg[FILE_HEADER_LEN..]);
    // A format-1 record cannot claim another decision version.
    let mut newer = record.clone();
    if let Entry::Decisions {
        decision_version, ..
    } = &mut newer.entry
    {
        *decision_version = 2;
    }
    assert!(matches!(
        encode(&newer),
        Err(EncodeError::Unrepresentable { .. })
    ));
    newer.format = FORMAT_VERSION;
    let again = encode(&newer).expect("format 2 holds it");
    let mut buf = file_header().to_vec();
    buf.extend_from_slice(&again);
    assert_eq!(scan(&buf).records[0].1, newer);
}

struct Counter {
    total: i64,
    seq: u64,
    out: Vec<EventRecord>,
}

impl crate::sans_io::SansIo for Counter {
    fn handle_command(
        &mut self,
        now: Timestamp,
        command: Command,
    ) -> Result<crate::command::Reply, CommandError> {
        if let Command::Cancel { .. } = command {
            return Err(CommandError::Invalid("refused".into()));
        }
        self.total += now.0;
        self.seq += 1;
        self.out.push(EventRecord {
            seq: self.seq,
            at: now,
            event: Event::CheckedIn {
                elder_id: ElderId::from("x"),
            },
        });
        Ok(crate::command::Reply::Done)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        self.total -= now.0;
    }
    fn poll_event(&mut self) -> Option<EventRecord> {
        self.out.pop()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
}

#[test]
fn replayer_verifies_decisions_and_reports_divergence() {
    let check_in = Command::CheckIn {
        elder_id: ElderId::from("x"),
        device_id: DeviceId::from("d"),
    };
    let ev = |seq| EventRecord {
        seq,
        at: Timestamp(10),
        event: Event::CheckedIn {
            elder_id: ElderId::from("x"),
        },
    };
    let r = RegionId(0);
    let mut target = Counter {
        total: 0,
        seq: 0,
        out: vec![],
    };
    let mut rep = Replayer::new();
    // A Decisions record with nothing replayed before it (right after a snapshot) is skipped.
    rep.apply(
        &mut target,
        &Record::decisions(r, vec![ev(9)]).expect("event"),
    )
    .expect("skipped");
    rep.apply(
        &mut target,
        &Record::command(r, Timestamp(10), check_in.clone()),
    )
    .expect("accepted");
    rep.apply(
        &mut target,
        &Record::decisions(r, vec![ev(1)]).expect("event"),
    )
    .expect("matches");
    assert_eq!(rep.verified, 1);
    rep.apply(&mut target, &Record::command(r, Timestamp(10), check_in))
        .expect("accepted");
    let err = rep.apply(
        &mut target,
        &Record::decisions(r, vec![ev(5)]).expect("event"),
    );
    assert!(matches!(err, Err(ReplayError::Diverged { .. })), "{err:?}");
    let cancel = Command::Cancel {
        operator_id: crate::ids::OperatorId::from("o"),
        incident_id: IncidentId(1),
        reason: String::new(),
    };
    let err = rep.apply(&mut target, &Record::command(r, Timestamp(11), cancel));
    assert!(matches!(err, Err(ReplayError::Refused { .. })));
    assert_eq!(target.total, 20);
}

/// Emits one `escalated` event per command, with the reason it is told to word.
struct Wording {
    reason: &'static str,
    seq: u64,
    out: Vec<EventRecord>,
}

impl crate::sans_io::SansIo for Wording {
    fn handle_command(
        &mut self,
        now: Timestamp,
        _command: Command,
    ) -> Result<crate::command::Reply, CommandError> {
        self.seq += 1;
        self.out.push(EventRecord {
            seq: self.seq,
            at: now,
            event: Event::Escalated {
                incident_id: IncidentId(1),
                reason: self.reason.into(),
            },
        });
        Ok(crate::command::Reply::Done)
    }
    fn handle_timeout(&mut self, _now: Timestamp) {}
    fn poll_event(&mut self) -> Option<EventRecord> {
        self.out.pop()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
}

/// Reasons are compared only within one decision version; structure always is.
#[test]
fn reworded_reasons_replay_across_versions_and_divergence_still_refuses() {
    let r = RegionId(0);
    let cmd = Record::command(
        r,
        Timestamp(10),
        Command::CheckIn {
            elder_id: ElderId::from("x"),
            device_id: DeviceId::from("d"),
        },
    );
    let journaled = |reason: &str, incident: u64, version: u32| {
        let mut d = Record::decisions(
            r,
            vec![EventRecord {
                seq: 1,
                at: Timestamp(10),
                event: Event::Escalated {
                    incident_id: IncidentId(incident),
                    reason: reason.into(),
                },
            }],
        )
        .expect("event");
        if let Entry::Decisions {
            decision_version, ..
        } = &mut d.entry
        {
            *decision_version = version;
        }
        d
    };
    let replay = |decisions: &Record| {
        let mut target = Wording {
            reason: "new wording",
            seq: 0,
            out: vec![],
        };
        let mut rep = Replayer::new();
        rep.apply(&mut target, &cmd).expect("command");
        rep.apply(&mut target, decisions).map(|()| rep)
    };
    // The same version: strict, so a reworded reason is a divergence.
    let err = replay(&journaled("old wording", 1, DECISION_VERSION)).expect_err("strict");
    assert!(err.to_string().contains("compared strictly"), "{err}");
    assert!(err.to_string().contains("old wording"), "{err}");
    let ok = replay(&journaled("new wording", 1, DECISION_VERSION)).expect("same");
    assert_eq!((ok.verified, ok.verified_ignoring_reasons), (1, 0));
    // An older version: the reworded reason passes ...
    let ok = replay(&journaled("old wording", 1, DECISION_VERSION - 1)).expect("reworded");
    assert_eq!((ok.verified, ok.verified_ignoring_reasons), (1, 1));
    // ... and another incident does not.
    let err = replay(&journaled("old wording", 2, DECISION_VERSION - 1)).expect_err("diverged");
    assert!(err.to_string().contains("reason texts ignored"), "{err}");
    assert!(matches!(err, ReplayError::Diverged { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes at all: the scanner terminates, never panics, and whatever it returns
    /// as records re-encodes to exactly the bytes it read.
    #[test]
    fn scan_never_panics_and_returns_only_real_records(bytes in proptest::collection::vec(any::<u8>(), 0..512), with_header in any::<bool>()) {
        let mut buf = if with_header { file_header().to_vec() } else { vec![] };
        buf.extend_from_slice(&bytes);
        let s = scan(&buf);
        let valid = s.end.valid_len(buf.len());
        prop_assert!(valid <= buf.len());
        for (i, (offset, record)) in s.records.iter().enumerate() {
            let again = encode(record).expect("re-encodes");
            let end = s.records.get(i + 1).map_or(valid, |(o, _)| *o);
            prop_assert_eq!(&buf[*offset..end], &again[..]);
        }
    }

    /// Garbage after valid records never costs a valid record.
    #[test]
    fn garbage_appended_keeps_every_record(garbage in proptest::collection::vec(any::<u8>(), 1..256)) {
        let records = sample_records();
        let mut buf = segment(&records);
        buf.extend_from_slice(&garbage);
        let s = scan(&buf);
        prop_assert!(s.records.len() >= records.len());
        for (i, r) in records.iter().enumerate() {
            prop_assert_eq!(&s.records[i].1, r);
        }
    }
}
