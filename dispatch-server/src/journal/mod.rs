//! The journal on disk: group commit, snapshots with compaction into `archive/`, recovery,
//! and the engine rebuilt from it. The record codec is `dispatch_core::journal`.
//!
//! The room's files, named for what they do:
//!
//! - [`writer`]: `Journal` (open, append, snapshot, close) and its writer thread (group
//!   commit, output commit's durable LSN); `journal_command` / `journal_timeout` turn one
//!   engine step into records.
//! - [`recovery`]: at open, the newest valid snapshot and every record after it; a torn tail
//!   cut and kept aside, a corrupt middle refused naming the record.
//! - [`snapshot`]: the data directory's files: names, snapshots, the durable-LSN marker,
//!   compaction into `archive/`.
//! - [`restore`]: what recovery found, replayed into the engine that was running.
//! - [`storage`]: the seam to the disk (`DiskStorage`, and `SimStorage` for power-loss and
//!   fault tests).
//!
//! Layout of a data directory:
//!
//! ```text
//! segment-<first lsn, 20 digits>.log     live journal segments (dispatch_core::journal format)
//! snapshot-<lsn, 20 digits>.snap          engine state after record <lsn> (newest two kept)
//! archive/segment-*.log                   segments a snapshot made unnecessary for restart,
//!                                         kept for audit and `dispatch export`
//! archive/snapshot-<0 × 20>.snap          the seed (LSN 0: the roster the directory began with)
//! *.torn                                  bytes recovery cut off a damaged tail, kept aside
//! durable-lsn.marker                      "records up to LSN n were durable" (checksummed)
//! ```
//!
//! Every record gets a log sequence number (LSN), 1, 2, 3, … across segments; a segment's name
//! is the LSN of its first record. `append` only buffers; a dedicated writer thread writes and
//! fsyncs everything appended while its previous fsync ran (group commit) and then publishes
//! the new durable LSN on a `watch` channel. The server releases a reply only once its LSN is
//! durable (output commit). A write or fsync error is final: the journal reports `failed`,
//! never publishes a later LSN and refuses appends, because after a failed fsync the kernel
//! may have dropped the dirty pages and nobody can say what is on disk.
//!
//! The marker file holds an LSN known durable: written at open (after recovery, once the tail
//! is fsynced), after every snapshot (when the segments roll) and at a clean close. A start
//! that finds the journal ending before it refuses: records that were durable are gone (a
//! segment truncated at a record boundary or to its header, or deleted), which the records
//! alone cannot show. A directory without a marker (written before markers existed) starts.

mod recovery;
mod restore;
mod snapshot;
pub mod storage;
#[cfg(test)]
mod tests;
mod writer;

pub use restore::{current_roster, open_durable_engine, replay_all, restore_engine, ReplayStats};
pub(crate) use snapshot::list_segments;
pub use snapshot::{read_marker, seed, segment_name};
pub use storage::{DiskStorage, FaultOp, SimStorage, Storage};
pub use writer::{journal_command, journal_timeout, Journal, Replica};

use dispatch_core::journal::{EncodeError, Record, RegionId};
use std::path::PathBuf;
use std::sync::Arc;

/// A log sequence number: the position of a record in the whole journal, from 1.
pub type Lsn = u64;

const ARCHIVE_DIR: &str = "archive";
const SNAPSHOT_MAGIC: [u8; 6] = *b"DSPSNP";
const SNAPSHOT_VERSION: u8 = 1;
/// Magic + version + reserved, lsn, state length, crc32 of the state.
const SNAPSHOT_HEADER_LEN: usize = 8 + 8 + 8 + 4;
/// Snapshots kept in the live directory: the newest, and one to fall back on if it is damaged.
const SNAPSHOTS_KEPT: usize = 2;
/// The durable-LSN marker: magic "DSPMRK", version, reserved, lsn u64 LE, crc32 of the first
/// 16 bytes u32 LE.
pub const MARKER_FILE: &str = "durable-lsn.marker";
const MARKER_MAGIC: [u8; 6] = *b"DSPMRK";
const MARKER_VERSION: u8 = 1;
const MARKER_LEN: usize = 20;

/// How the writer thread syncs. `PerRecord` exists to measure what group commit buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    #[default]
    Group,
    PerRecord,
}

#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// The region every record of this journal belongs to.
    pub region: RegionId,
    /// Records between snapshots (`snapshot_due`); 0 turns snapshots off.
    pub snapshot_every: u64,
    /// A snapshot is also due this long after the last one once any record was appended
    /// since (`None`: by record count only): a quiet day's journal tail stays short too, so a
    /// restart never replays more than this much time of records.
    pub snapshot_after: Option<std::time::Duration>,
    /// Start even if a record in the middle of the journal is corrupt, keeping the records
    /// before it and setting the rest aside (`.torn`). Off by default: an operator decides.
    pub recover_past_corruption: bool,
    pub sync: SyncMode,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            region: RegionId(0),
            snapshot_every: 100_000,
            snapshot_after: Some(std::time::Duration::from_secs(600)),
            recover_past_corruption: false,
            sync: SyncMode::Group,
        }
    }
}

/// What is on disk, published after every fsync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Durability {
    /// Every record up to and including this LSN is durable.
    pub lsn: Lsn,
    /// Set once a write or fsync failed; `lsn` never moves again.
    pub failed: Option<String>,
    /// The LSN of the newest snapshot on disk (0: none yet).
    pub snapshot_lsn: Lsn,
    /// The LSN of the newest snapshot asked for and not taken, its state not encoding (0:
    /// none): nothing waits for it.
    pub snapshot_skipped: Lsn,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal failed, nothing more can be made durable: {0}")]
    Failed(String),
    #[error("journal is closed")]
    Closed,
    #[error("the snapshot at LSN {0} was not taken: its state did not encode")]
    SnapshotSkipped(Lsn),
    #[error(transparent)]
    Encode(Arc<EncodeError>),
}

/// A snapshot found on disk at start.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// The state includes every record up to and including this LSN.
    pub lsn: Lsn,
    /// The engine state as the JSON `Journal::snapshot` wrote.
    pub state: Vec<u8>,
    pub path: PathBuf,
}

/// Bytes recovery cut off and set aside.
#[derive(Debug, Clone)]
pub struct Cut {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    pub kept_in: PathBuf,
    pub why: String,
}

/// What `Journal::open` found: the state to start from and the records to replay on it.
#[derive(Debug, Default)]
pub struct Recovered {
    pub snapshot: Option<SnapshotFile>,
    /// Records after the snapshot, in order, with their LSNs.
    pub records: Vec<(Lsn, Record)>,
    /// The last LSN on disk (the snapshot's when no record follows it).
    pub last_lsn: Lsn,
    pub cuts: Vec<Cut>,
}
