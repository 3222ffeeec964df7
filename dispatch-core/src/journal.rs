//! The journal's record codec (versioned, length-prefixed, CRC32-checksummed) and replay.
//!
//! A journal segment is a file header followed by records:
//!
//! ```text
//! header : magic "DSPJNL" | format version u8 | reserved u8 (0)            8 bytes
//! record : body length u32 LE | crc32 of body u32 LE | body
//! body   : format version u8 | region u16 LE | kind u8 | payload
//! payload: Command   (1): now i64 LE | command as JSON
//!          Timeout   (2): now i64 LE
//!          Decisions (3): first seq u64 LE | last seq u64 LE | events as JSON
//! ```
//!
//! The framing is binary (so a reader can skip, checksum and resynchronise without parsing);
//! the commands and events inside are JSON, the same serde forms the rest of the system uses,
//! so a journal stays readable with a hex dump and a JSON pretty-printer.
//!
//! The decoder never panics, whatever the bytes, and tells apart a clean end, a torn tail (the
//! last record is incomplete: a crash in the middle of a write) and a corrupt record (bad
//! checksum, version or content), with its byte offset. [`scan`] then decides whether a
//! corruption is the tail (nothing valid after it: cut it) or in the middle (valid records
//! after it: the operator must decide).

use crate::command::Command;
use crate::error::CommandError;
use crate::event::EventRecord;
use crate::sans_io::SansIo;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first six bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 6] = *b"DSPJNL";
/// The record format written by this code; readers refuse any other.
pub const FORMAT_VERSION: u8 = 1;
/// Magic, version, one reserved byte.
pub const FILE_HEADER_LEN: usize = 8;
/// Length and checksum in front of every body.
pub const FRAME_HEADER_LEN: usize = 8;
/// Version, region, kind: the smallest body there is (a Timeout adds 8 more).
pub const MIN_BODY_LEN: usize = 4;
/// A bound on one body, so a corrupt length can neither make a reader allocate gigabytes nor
/// pass for a torn tail of a huge record. Decisions with many routes stay well under it.
pub const MAX_BODY_LEN: usize = 16 << 20;

const KIND_COMMAND: u8 = 1;
const KIND_TIMEOUT: u8 = 2;
const KIND_DECISIONS: u8 = 3;

/// The dispatch region a record belongs to (a single region for now: DESIGN §6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct RegionId(pub u16);

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "region{}", self.0)
    }
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub region: RegionId,
    pub entry: Entry,
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A command the engine accepted, with the `now` it was handled at.
    Command { now: Timestamp, command: Command },
    /// A `handle_timeout(now)` call that produced events.
    Timeout { now: Timestamp },
    /// The events the previous Command or Timeout caused: the audit trail. Replay regenerates
    /// them (state never comes from here) and can check they are the same.
    Decisions {
        first_seq: u64,
        last_seq: u64,
        events: Vec<EventRecord>,
    },
}

impl Record {
    pub fn command(region: RegionId, now: Timestamp, command: Command) -> Record {
        Record {
            region,
            entry: Entry::Command { now, command },
        }
    }

    pub fn timeout(region: RegionId, now: Timestamp) -> Record {
        Record {
            region,
            entry: Entry::Timeout { now },
        }
    }

    /// The audit record for `events`; `None` when there are none (nothing to journal).
    pub fn decisions(region: RegionId, events: Vec<EventRecord>) -> Option<Record> {
        let first_seq = events.first()?.seq;
        let last_seq = events.last()?.seq;
        Some(Record {
            region,
            entry: Entry::Decisions {
                first_seq,
                last_seq,
                events,
            },
        })
    }
}

/// Why an encode failed (only serde can fail, and only on a bug: our types always serialise).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot serialise the record payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("record body of {0} bytes exceeds the {MAX_BODY_LEN}-byte limit")]
    TooLarge(usize),
}

/// The segment file header.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..6].copy_from_slice(&SEGMENT_MAGIC);
    h[6] = FORMAT_VERSION;
    h
}

/// Appends the framed record to `out`.
pub fn encode_into(record: &Record, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&record.region.0.to_le_bytes());
    let written = match &record.entry {
        Entry::Command { now, command } => {
            out.push(KIND_COMMAND);
            out.extend_from_slice(&now.0.to_le_bytes());
            serde_json::to_writer(&mut *out, command)
        }
        Entry::Timeout { now } => {
            out.push(KIND_TIMEOUT);
            out.extend_from_slice(&now.0.to_le_bytes());
            Ok(())
        }
        Entry::Decisions {
            first_seq,
            last_seq,
            events,
        } => {
            out.push(KIND_DECISIONS);
            out.extend_from_slice(&first_seq.to_le_bytes());
            out.extend_from_slice(&last_seq.to_le_bytes());
            serde_json::to_writer(&mut *out, events)
        }
    };
    if let Err(e) = written {
        out.truncate(start);
        return Err(e.into());
    }
    let body_len = out.len() - start - FRAME_HEADER_LEN;
    if body_len > MAX_BODY_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLarge(body_len));
    }
    let crc = crc32fast::hash(&out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The framed record as a new buffer.
pub fn encode(record: &Record) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    encode_into(record, &mut out)?;
    Ok(out)
}

/// Why a record (or the file header) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("bad file header (not a dispatch journal segment)")]
    BadMagic,
    #[error("unsupported format version {0} (this build reads {FORMAT_VERSION})")]
    BadVersion(u8),
    #[error("record length {0} is out of range")]
    BadLength(u32),
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("unknown record kind {0}")]
    BadKind(u8),
    #[error("malformed payload: {0}")]
    BadPayload(String),
}

/// What is at a given offset of a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A valid record, and the offset of the next one.
    Record { record: Record, next_offset: usize },
    /// The buffer ends exactly here: a clean end.
    End,
    /// The bytes from here on are a prefix of a record that was never completely written.
    Torn { offset: usize },
    /// The record at `offset` is invalid.
    Corrupt { offset: usize, reason: Corruption },
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Checks the file header; `Torn { offset: 0 }` when the file is a strict prefix of one.
pub fn decode_header(buf: &[u8]) -> Decoded {
    let expected = file_header();
    if buf.len() < FILE_HEADER_LEN {
        return if expected.starts_with(buf) {
            Decoded::Torn { offset: 0 }
        } else {
            Decoded::Corrupt {
                offset: 0,
                reason: Corruption::BadMagic,
            }
        };
    }
    if buf[..6] != SEGMENT_MAGIC {
        return Decoded::Corrupt {
            offset: 0,
            reason: Corruption::BadMagic,
        };
    }
    if buf[6] != FORMAT_VERSION {
        return Decoded::Corrupt {
            offset: 0,
            reason: Corruption::BadVersion(buf[6]),
        };
    }
    // A valid header is followed by records; report where they start as an empty "record".
    Decoded::End
}

/// Decodes the record that starts at `offset` (after the file header).
pub fn decode_at(buf: &[u8], offset: usize) -> Decoded {
    let rest = match buf.get(offset..) {
        Some(r) => r,
        None => return Decoded::Torn { offset: buf.len() },
    };
    if rest.is_empty() {
        return Decoded::End;
    }
    let (Some(len), Some(stored)) = (read_u32(rest, 0), read_u32(rest, 4)) else {
        return Decoded::Torn { offset };
    };
    let body_len = len as usize;
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Decoded::Corrupt {
            offset,
            reason: Corruption::BadLength(len),
        };
    }
    let Some(body) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + body_len) else {
        return Decoded::Torn { offset };
    };
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Decoded::Corrupt {
            offset,
            reason: Corruption::BadChecksum { stored, computed },
        };
    }
    match decode_body(body) {
        Ok(record) => Decoded::Record {
            record,
            next_offset: offset + FRAME_HEADER_LEN + body_len,
        },
        Err(reason) => Decoded::Corrupt { offset, reason },
    }
}

/// Decodes a checksummed body. Checksums catch disk damage; this catches a body written by a
/// different (or buggy) writer.
pub fn decode_body(body: &[u8]) -> Result<Record, Corruption> {
    let short = || Corruption::BadPayload(format!("body of {} bytes is too short", body.len()));
    let version = *body.first().ok_or_else(short)?;
    if version != FORMAT_VERSION {
        return Err(Corruption::BadVersion(version));
    }
    let region = RegionId(u16::from_le_bytes(
        body.get(1..3)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    ));
    let kind = *body.get(3).ok_or_else(short)?;
    let payload = &body[MIN_BODY_LEN.min(body.len())..];
    let json_err = |e: serde_json::Error| Corruption::BadPayload(e.to_string());
    let entry = match kind {
        KIND_COMMAND => {
            let now = Timestamp(read_u64(payload, 0).ok_or_else(short)? as i64);
            let command = serde_json::from_slice(&payload[8..]).map_err(json_err)?;
            Entry::Command { now, command }
        }
        KIND_TIMEOUT => {
            let now = Timestamp(read_u64(payload, 0).ok_or_else(short)? as i64);
            if payload.len() != 8 {
                return Err(Corruption::BadPayload(format!(
                    "timeout payload of {} bytes, expected 8",
                    payload.len()
                )));
            }
            Entry::Timeout { now }
        }
        KIND_DECISIONS => {
            let first_seq = read_u64(payload, 0).ok_or_else(short)?;
            let last_seq = read_u64(payload, 8).ok_or_else(short)?;
            let events: Vec<EventRecord> =
                serde_json::from_slice(&payload[16..]).map_err(json_err)?;
            let (Some(first), Some(last)) = (events.first(), events.last()) else {
                return Err(Corruption::BadPayload("decisions without events".into()));
            };
            if first.seq != first_seq || last.seq != last_seq {
                return Err(Corruption::BadPayload(format!(
                    "decisions claim seq {first_seq}..={last_seq} but hold {}..={}",
                    first.seq, last.seq
                )));
            }
            Entry::Decisions {
                first_seq,
                last_seq,
                events,
            }
        }
        other => return Err(Corruption::BadKind(other)),
    };
    Ok(Record { region, entry })
}

/// Whether a checksummed record of our format starts at `offset`: used to tell a corrupt tail
/// from a corrupt record with valid records after it. The payload is not parsed: a matching
/// CRC32 over a plausible length is evidence enough that our writer put it there.
fn frame_is_valid(buf: &[u8], offset: usize) -> bool {
    let rest = &buf[offset..];
    let (Some(len), Some(stored)) = (read_u32(rest, 0), read_u32(rest, 4)) else {
        return false;
    };
    let body_len = len as usize;
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return false;
    }
    match rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + body_len) {
        Some(body) => body[0] == FORMAT_VERSION && crc32fast::hash(body) == stored,
        None => false,
    }
}

/// The first offset at or after `from` where a valid record frame starts.
pub fn next_valid_frame(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf
        .len()
        .saturating_sub(FRAME_HEADER_LEN + MIN_BODY_LEN - 1))
        .find(|&at| frame_is_valid(buf, at))
}

/// How a segment ends.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// The last record was cut short at `offset`; everything before is valid.
    TornTail { offset: usize },
    /// The record at `offset` is corrupt and nothing valid follows it.
    CorruptTail { offset: usize, reason: Corruption },
    /// The record at `offset` is corrupt but a valid record starts at `next_valid`: cutting
    /// here would drop records that were once durable, so an operator must decide.
    CorruptMiddle {
        offset: usize,
        reason: Corruption,
        next_valid: usize,
    },
}

impl ScanEnd {
    /// Where the valid prefix ends (the whole buffer when clean).
    pub fn valid_len(&self, buf_len: usize) -> usize {
        match self {
            ScanEnd::Clean => buf_len,
            ScanEnd::TornTail { offset }
            | ScanEnd::CorruptTail { offset, .. }
            | ScanEnd::CorruptMiddle { offset, .. } => *offset,
        }
    }
}

/// A whole segment, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Every valid record before the first problem, with its byte offset.
    pub records: Vec<(usize, Record)>,
    pub end: ScanEnd,
}

/// Decodes a whole segment (header included). Never panics.
pub fn scan(buf: &[u8]) -> Scan {
    let mut records = Vec::new();
    let problem = match decode_header(buf) {
        Decoded::End => {
            let mut offset = FILE_HEADER_LEN;
            loop {
                match decode_at(buf, offset) {
                    Decoded::Record {
                        record,
                        next_offset,
                    } => {
                        records.push((offset, record));
                        offset = next_offset;
                    }
                    other => break other,
                }
            }
        }
        other => other,
    };
    let end = match problem {
        Decoded::End | Decoded::Record { .. } => ScanEnd::Clean,
        // An incomplete record with a valid one after it is not a torn write but a damaged
        // length: treat it as the corruption it is.
        Decoded::Torn { offset } => match next_valid_frame(buf, offset.max(FILE_HEADER_LEN) + 1) {
            Some(next_valid) if offset >= FILE_HEADER_LEN => {
                let len = read_u32(buf, offset).unwrap_or(0);
                ScanEnd::CorruptMiddle {
                    offset,
                    reason: Corruption::BadLength(len),
                    next_valid,
                }
            }
            _ => ScanEnd::TornTail { offset },
        },
        Decoded::Corrupt { offset, reason } => {
            // Resynchronise past the header when the header itself is the problem.
            let from = if offset == 0 {
                FILE_HEADER_LEN.min(buf.len())
            } else {
                offset + 1
            };
            match next_valid_frame(buf, from) {
                Some(next_valid) => ScanEnd::CorruptMiddle {
                    offset,
                    reason,
                    next_valid,
                },
                None => ScanEnd::CorruptTail { offset, reason },
            }
        }
    };
    Scan { records, end }
}

/// Replay went somewhere live never went.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "journaled command at {now} was refused on replay ({error}); journal and engine disagree"
    )]
    Refused { now: Timestamp, error: CommandError },
    #[error("replay produced events {replayed} but the journal recorded {journaled}")]
    Diverged { journaled: String, replayed: String },
}

/// Feeds records to a [`SansIo`] engine and checks regenerated events against the journaled
/// Decisions.
#[derive(Debug, Default)]
pub struct Replayer {
    /// Events the last Command/Timeout regenerated, waiting for their Decisions record.
    pending: Vec<EventRecord>,
    /// Whether `pending` belongs to a record replayed in this run (a Decisions record right
    /// after a snapshot belongs to a command the snapshot already holds).
    armed: bool,
    /// Decisions records compared equal.
    pub verified: u64,
    pub commands: u64,
    pub timeouts: u64,
}

impl Replayer {
    pub fn new() -> Replayer {
        Replayer::default()
    }

    pub fn apply<T: SansIo>(&mut self, target: &mut T, record: &Record) -> Result<(), ReplayError> {
        match &record.entry {
            Entry::Command { now, command } => {
                self.pending.clear();
                target
                    .handle_command(*now, command.clone())
                    .map_err(|error| ReplayError::Refused { now: *now, error })?;
                self.commands += 1;
                self.drain(target);
            }
            Entry::Timeout { now } => {
                self.pending.clear();
                target.handle_timeout(*now);
                self.timeouts += 1;
                self.drain(target);
            }
            Entry::Decisions { events, .. } => {
                if self.armed {
                    if &self.pending != events {
                        return Err(ReplayError::Diverged {
                            journaled: seq_range(events),
                            replayed: seq_range(&self.pending),
                        });
                    }
                    self.verified += 1;
                }
                self.pending.clear();
                self.armed = false;
            }
        }
        Ok(())
    }

    fn drain<T: SansIo>(&mut self, target: &mut T) {
        while let Some(e) = target.poll_event() {
            self.pending.push(e);
        }
        self.armed = true;
    }
}

fn seq_range(events: &[EventRecord]) -> String {
    match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!("seq {}..={} ({} events)", a.seq, b.seq, events.len()),
        _ => "none".into(),
    }
}

#[cfg(test)]
mod tests {
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
        rec[FRAME_HEADER_LEN] = 2;
        let crc = crc32fast::hash(&rec[FRAME_HEADER_LEN..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        let mut buf = file_header().to_vec();
        buf.extend_from_slice(&rec);
        assert_eq!(
            decode_at(&buf, FILE_HEADER_LEN),
            Decoded::Corrupt {
                offset: FILE_HEADER_LEN,
                reason: Corruption::BadVersion(2)
            }
        );
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
}
