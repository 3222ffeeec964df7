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
//!
//! The room's files: this one holds the record types and format constants, [`codec`] the
//! framing (encode, decode, scan), [`replay`] the replayer that checks a journal against the
//! engine. The server's `journal/` module holds the write path, recovery, snapshots and disk.

use crate::command::Command;
use crate::error::CommandError;
use crate::event::{Event, EventRecord};
use crate::sans_io::SansIo;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

mod codec;
mod replay;
#[cfg(test)]
mod tests;

pub use codec::*;
pub use replay::*;

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
/// in the records); 2 = the first that records it; 3 = alerts keyed by (device, alert id),
/// one open incident per need rather than per elder, alerts the engine cannot dispatch kept
/// for the operators, surge waves of their own size, emergencies that ask again and take
/// responders from services next door (issue 12); 4 = run-time roster changes and time-bank
/// redemptions are events (`roster_changed`, `time_bank_redeemed`), and a responder retired
/// while assigned is taken off the incident (`unassigned`) instead of being refused (issue 15);
/// 5 = care levels steer the response by a built-in table (search width, familiarity margin,
/// SLA clocks, the ambulance's wait), and family members
/// are responders of their own kind (`kin`), offered their elder's emergencies first (issue
/// 12, gaps 10 and 11); 6 = an emergency's waves are sized from each responder's predicted
/// acceptance, learnt from their answers, to reach `acceptance_target`, under a daily cap of
/// emergency offers per volunteer (issue 17).
/// The earlier rules stay in `engine/legacy.rs` so that a crash tail of the previous release
/// replays as decided.
pub const DECISION_VERSION: u32 = 6;

/// The first decision version whose roster changes and redemptions emit events. Such a command
/// journaled with no Decisions record after it was decided by an earlier version (or crashed
/// before its events were durable, so nobody saw them): replay decides it by the rules just
/// before this one (`Replayer::apply_before`).
pub const ROSTER_EVENTS_SINCE: u32 = 4;

/// The first decision version that learns from answers: records who accepted or declined an
/// emergency offer and counts each volunteer's emergency offers per day (the waves' sizing and
/// the fairness cap). Records of earlier versions learn nothing on replay, as their engine did
/// not: a snapshot that version wrote holds no answers, so the whole-history replay and the
/// snapshot + tail replay must agree that there are none.
pub const ANSWERS_SINCE: u32 = 6;

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
