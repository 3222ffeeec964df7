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
//!          Decisions (3): first seq u64 LE | last seq u64 LE
//!                         | decision version u32 LE (format 2 on; absent in 1) | events as JSON
//! ```
//!
//! Format 2 (this code writes it) adds the engine's [`DECISION_VERSION`] to every Decisions
//! record; format 1 (the first release) had none, and its Decisions count as decision
//! version 1. Both are read, record by record (a segment begun by one release is continued
//! by the next), and a record re-encodes in the format it was read in.
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
use crate::event::{Event, EventRecord};
use crate::sans_io::SansIo;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first six bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 6] = *b"DSPJNL";
/// The record format written by this code.
pub const FORMAT_VERSION: u8 = 2;
/// The oldest record format this code reads; anything outside
/// `OLDEST_FORMAT_VERSION..=FORMAT_VERSION` is refused as corrupt.
pub const OLDEST_FORMAT_VERSION: u8 = 1;

/// The version of the decisions the engine makes, written into every Decisions record.
///
/// **Bump it whenever the engine would decide differently or word a reason differently on
/// the same input**: a reason text, a ranking rule, an event's fields. Replay compares the
/// regenerated events with the journaled ones strictly (reasons included) only for records of
/// this same version; for records of another version it compares them with their free-text
/// reasons ignored, so a release that rewords a reason still starts on its predecessor's data
/// directory, and a real divergence (another responder, another ETA, another event) still
/// refuses, naming the record. Decision history: 1 = the first release (format 1, no version
/// in the records); 2 = the first that records it.
pub const DECISION_VERSION: u32 = 2;

fn readable(version: u8) -> bool {
    (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version)
}
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
    /// The record format it was written in ([`FORMAT_VERSION`] for new records; older for
    /// records read from an older journal, which re-encode byte for byte).
    #[serde(default = "current_format")]
    pub format: u8,
}

fn current_format() -> u8 {
    FORMAT_VERSION
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
        /// The [`DECISION_VERSION`] of the engine that decided them (1 in format 1).
        decision_version: u32,
        events: Vec<EventRecord>,
    },
}

impl Record {
    pub fn command(region: RegionId, now: Timestamp, command: Command) -> Record {
        Record {
            region,
            entry: Entry::Command { now, command },
            format: FORMAT_VERSION,
        }
    }

    pub fn timeout(region: RegionId, now: Timestamp) -> Record {
        Record {
            region,
            entry: Entry::Timeout { now },
            format: FORMAT_VERSION,
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
                decision_version: DECISION_VERSION,
                events,
            },
            format: FORMAT_VERSION,
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
    #[error("record format {format} cannot hold {what}")]
    Unrepresentable { format: u8, what: String },
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
    if !readable(record.format) {
        return Err(EncodeError::Unrepresentable {
            format: record.format,
            what: "anything (unknown format)".into(),
        });
    }
    if let Entry::Decisions {
        decision_version, ..
    } = &record.entry
    {
        if record.format == 1 && *decision_version != 1 {
            return Err(EncodeError::Unrepresentable {
                format: 1,
                what: format!("decision version {decision_version}"),
            });
        }
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    out.push(record.format);
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
            decision_version,
            events,
        } => {
            out.push(KIND_DECISIONS);
            out.extend_from_slice(&first_seq.to_le_bytes());
            out.extend_from_slice(&last_seq.to_le_bytes());
            if record.format >= 2 {
                out.extend_from_slice(&decision_version.to_le_bytes());
            }
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
    #[error("unsupported format version {0} (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})")]
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
    if !readable(buf[6]) {
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
    if !readable(version) {
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
            let (decision_version, json) = if version >= 2 {
                let v = read_u32(payload, 16).ok_or_else(short)?;
                (v, &payload[20..])
            } else {
                (1, &payload[16..])
            };
            let events: Vec<EventRecord> = serde_json::from_slice(json).map_err(json_err)?;
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
                decision_version,
                events,
            }
        }
        other => return Err(Corruption::BadKind(other)),
    };
    Ok(Record {
        region,
        entry,
        format: version,
    })
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
        Some(body) => readable(body[0]) && crc32fast::hash(body) == stored,
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
    #[error(
        "replay produced events {replayed} but the journal recorded {journaled} \
         (decision version {decision_version}, {compared}); first difference: {difference}"
    )]
    Diverged {
        journaled: String,
        replayed: String,
        /// The version that wrote the record.
        decision_version: u32,
        /// "compared strictly" or "compared with reason texts ignored".
        compared: &'static str,
        /// The first event that differs, both ways (shortened).
        difference: String,
    },
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
    /// Decisions records compared equal (strictly, or reasons aside for another version).
    pub verified: u64,
    /// Of those, records of another decision version, compared with reason texts ignored.
    pub verified_ignoring_reasons: u64,
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
            Entry::Decisions {
                events,
                decision_version,
                ..
            } => {
                if self.armed {
                    let strict = *decision_version == DECISION_VERSION;
                    let same = if strict {
                        &self.pending == events
                    } else {
                        self.pending.len() == events.len()
                            && self
                                .pending
                                .iter()
                                .zip(events)
                                .all(|(a, b)| same_ignoring_reasons(a, b))
                    };
                    if !same {
                        return Err(ReplayError::Diverged {
                            journaled: seq_range(events),
                            replayed: seq_range(&self.pending),
                            decision_version: *decision_version,
                            compared: if strict {
                                "compared strictly"
                            } else {
                                "compared with reason texts ignored"
                            },
                            difference: first_difference(events, &self.pending, strict),
                        });
                    }
                    self.verified += 1;
                    if !strict {
                        self.verified_ignoring_reasons += 1;
                    }
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

/// The free-text reason of an event, if it has one. `OfferWithdrawn`'s reason is a closed
/// enum, part of the decision, and stays compared. Exhaustive on purpose: a new event kind
/// must say whether it carries wording.
pub fn reason_text_mut(event: &mut Event) -> Option<&mut String> {
    use Event::*;
    match event {
        IncidentOpened { reason, .. }
        | OfferSent { reason, .. }
        | Assigned { reason, .. }
        | NoResponderAvailable { reason, .. }
        | Escalated { reason, .. }
        | IncidentResolved { reason, .. }
        | IncidentCancelled { reason, .. } => Some(reason),
        AlertJoined { .. }
        | OfferDeclined { .. }
        | OfferExpired { .. }
        | OfferWithdrawn { .. }
        | SlaBreached { .. }
        | ResponderArrived { .. }
        | ResponderMoved { .. }
        | ResponderAvailability { .. }
        | TimeBankCredited { .. }
        | CheckedIn { .. } => None,
    }
}

/// Equal in everything but free-text reasons: seq, time, kind and every other field.
fn same_ignoring_reasons(a: &EventRecord, b: &EventRecord) -> bool {
    if a.seq != b.seq || a.at != b.at {
        return false;
    }
    let (mut x, mut y) = (a.event.clone(), b.event.clone());
    if let Some(r) = reason_text_mut(&mut x) {
        r.clear();
    }
    if let Some(r) = reason_text_mut(&mut y) {
        r.clear();
    }
    x == y
}

fn first_difference(journaled: &[EventRecord], replayed: &[EventRecord], strict: bool) -> String {
    // An event as short JSON: routes shown by their length, at most 400 characters.
    let show = |e: Option<&EventRecord>| match e {
        None => "nothing".to_string(),
        Some(e) => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(route) = v.pointer_mut("/event/route") {
                let n = route.as_array().map_or(0, Vec::len);
                *route = serde_json::Value::String(format!("<{n} points>"));
            }
            let mut text = v.to_string();
            if text.len() > 400 {
                let mut cut = 400;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            text
        }
    };
    let n = journaled.len().max(replayed.len());
    let Some(i) = (0..n).find(|&i| match (journaled.get(i), replayed.get(i)) {
        (Some(a), Some(b)) => {
            if strict {
                a != b
            } else {
                !same_ignoring_reasons(a, b)
            }
        }
        _ => true,
    }) else {
        return "none".into();
    };
    let (a, b) = (journaled.get(i), replayed.get(i));
    if let (Some(a), Some(b)) = (a, b) {
        if same_ignoring_reasons(a, b) {
            let (mut x, mut y) = (a.event.clone(), b.event.clone());
            let reason = |e: &mut Event| reason_text_mut(e).map(|r| r.clone()).unwrap_or_default();
            return format!(
                "event {} of the record (seq {}) differs only in its reason: journaled {:?}, replayed {:?}",
                i + 1,
                a.seq,
                reason(&mut x),
                reason(&mut y)
            );
        }
    }
    format!(
        "event {} of the record: journaled {}, replayed {}",
        i + 1,
        show(a),
        show(b)
    )
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
}
