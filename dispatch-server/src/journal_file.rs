//! The journal on disk: group commit, snapshots with compaction into `archive/`, and recovery.
//!
//! Layout of a data directory:
//!
//! ```text
//! segment-<first lsn, 20 digits>.log     live journal segments (dispatch_core::journal format)
//! snapshot-<lsn, 20 digits>.snap          engine state after record <lsn> (newest two kept)
//! archive/segment-*.log                   segments a snapshot made unnecessary for restart,
//!                                         kept for audit and `dispatch export`
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

use crate::journal_storage::{DiskStorage, Storage, StorageFile};
use anyhow::{bail, Context};
use dispatch_core::journal::{
    self, Corruption, EncodeError, Record, RegionId, ScanEnd, FILE_HEADER_LEN, FRAME_HEADER_LEN,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use tokio::sync::watch;

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
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal failed, nothing more can be made durable: {0}")]
    Failed(String),
    #[error("journal is closed")]
    Closed,
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

/// A snapshot waiting for the writer: records up to `lsn` are the first `split_at` bytes of
/// the queue at the time it was asked for.
struct PendingSnapshot {
    lsn: Lsn,
    state: Vec<u8>,
    split_at: usize,
}

struct Queue {
    /// Encoded records not yet handed to the writer.
    buf: Vec<u8>,
    /// LSN of the last record in `buf` (or already written).
    last_lsn: Lsn,
    failed: Option<String>,
    closing: bool,
    snapshot: Option<PendingSnapshot>,
    /// Records appended since the last snapshot was asked for.
    since_snapshot: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer when something was appended or asked for.
    wake: Condvar,
    durable: watch::Sender<Durability>,
    /// The same value as `durable`, for threads that wait without an async runtime.
    durable_mirror: Mutex<Durability>,
    durable_changed: Condvar,
}

impl Shared {
    fn publish(&self, d: Durability) {
        *self
            .durable_mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = d.clone();
        self.durable.send_replace(d);
        self.durable_changed.notify_all();
    }
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The journal of one data directory. Append from one task (the engine task); wait from any.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    opts: JournalOptions,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("durable", &*self.shared.durable.borrow())
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` on the real disk and recovers it.
    pub fn open(dir: &Path, opts: JournalOptions) -> anyhow::Result<(Journal, Recovered)> {
        Journal::open_with(Arc::new(DiskStorage), dir, opts)
    }

    /// Opens the journal on any storage (tests pass a `SimStorage`).
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: JournalOptions,
    ) -> anyhow::Result<(Journal, Recovered)> {
        let (recovered, mut tail) = recover(&*storage, dir, &opts)?;
        let last_lsn = recovered.last_lsn;
        // What recovery read may still be only in the page cache (after a kill -9): make it
        // durable before the marker says so.
        tail.file
            .sync_data()
            .context("fdatasync the journal tail after recovery")?;
        write_marker(&*storage, dir, last_lsn)?;
        let base = recovered.snapshot.as_ref().map_or(0, |s| s.lsn);
        let start = Durability {
            lsn: last_lsn,
            failed: None,
            snapshot_lsn: base,
        };
        let (durable, _) = watch::channel(start.clone());
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buf: Vec::with_capacity(1 << 16),
                last_lsn,
                failed: None,
                closing: false,
                snapshot: None,
                since_snapshot: last_lsn - base,
            }),
            wake: Condvar::new(),
            durable,
            durable_mirror: Mutex::new(start),
            durable_changed: Condvar::new(),
        });
        let writer = Writer {
            storage,
            dir: dir.to_path_buf(),
            file: tail.file,
            segment_first_lsn: tail.first_lsn,
            durable_lsn: last_lsn,
            snapshot_lsn: base,
            sync: opts.sync,
            shared: shared.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())
            .context("cannot start the journal writer thread")?;
        Ok((
            Journal {
                shared,
                writer: Some(handle),
                opts,
            },
            recovered,
        ))
    }

    /// The region this journal's records belong to.
    pub fn region(&self) -> RegionId {
        self.opts.region
    }

    /// Buffers `record` and returns its LSN; never waits for the disk.
    pub fn append(&self, record: &Record) -> Result<Lsn, JournalError> {
        let mut bytes = Vec::with_capacity(256);
        journal::encode_into(record, &mut bytes).map_err(|e| JournalError::Encode(Arc::new(e)))?;
        let mut q = lock(&self.shared.queue);
        if let Some(why) = &q.failed {
            return Err(JournalError::Failed(why.clone()));
        }
        if q.closing {
            return Err(JournalError::Closed);
        }
        q.buf.extend_from_slice(&bytes);
        q.last_lsn += 1;
        q.since_snapshot += 1;
        let lsn = q.last_lsn;
        drop(q);
        self.shared.wake.notify_one();
        Ok(lsn)
    }

    /// The durable LSN and failure state, updated after every fsync.
    pub fn durable(&self) -> watch::Receiver<Durability> {
        self.shared.durable.subscribe()
    }

    /// Waits until `lsn` is durable; an error if the journal failed first.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), JournalError> {
        let mut rx = self.durable();
        wait_for(&mut rx, lsn).await
    }

    /// Blocking form of `wait_durable`, for threads outside a runtime (benchmarks, tests).
    pub fn wait_durable_blocking(&self, lsn: Lsn) -> Result<(), JournalError> {
        self.wait_blocking(|d| d.lsn >= lsn)
    }

    /// Blocks until a snapshot at or after `lsn` is on disk (tests and benchmarks).
    pub fn wait_snapshot_blocking(&self, lsn: Lsn) -> Result<(), JournalError> {
        self.wait_blocking(|d| d.snapshot_lsn >= lsn)
    }

    fn wait_blocking(&self, done: impl Fn(&Durability) -> bool) -> Result<(), JournalError> {
        let mut d = self
            .shared
            .durable_mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        loop {
            if done(&d) {
                return Ok(());
            }
            if let Some(why) = &d.failed {
                return Err(JournalError::Failed(why.clone()));
            }
            d = self
                .shared
                .durable_changed
                .wait(d)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether enough records have been appended since the last snapshot to take another.
    pub fn snapshot_due(&self) -> bool {
        self.opts.snapshot_every > 0
            && lock(&self.shared.queue).since_snapshot >= self.opts.snapshot_every
    }

    /// Hands the writer a snapshot of the state after every record appended so far. It is
    /// written after those records are durable, then older segments move to `archive/`.
    /// The caller must pass the state that includes exactly the records it appended.
    pub fn snapshot<T: Serialize>(&self, state: &T) -> Result<Lsn, JournalError> {
        let state = serde_json::to_vec(state)
            .map_err(|e| JournalError::Encode(Arc::new(EncodeError::Payload(e))))?;
        let mut q = lock(&self.shared.queue);
        if let Some(why) = &q.failed {
            return Err(JournalError::Failed(why.clone()));
        }
        let lsn = q.last_lsn;
        // One pending snapshot at a time; a newer one simply replaces it.
        let split_at = q.buf.len();
        q.snapshot = Some(PendingSnapshot {
            lsn,
            state,
            split_at,
        });
        q.since_snapshot = 0;
        drop(q);
        self.shared.wake.notify_one();
        Ok(lsn)
    }

    /// Flushes what was appended and stops the writer.
    pub fn close(mut self) -> Result<Durability, JournalError> {
        self.stop();
        Ok(self.shared.durable.borrow().clone())
    }

    fn stop(&mut self) {
        lock(&self.shared.queue).closing = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.writer.take() {
            if h.join().is_err() {
                tracing::error!("journal writer thread panicked");
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_for(rx: &mut watch::Receiver<Durability>, lsn: Lsn) -> Result<(), JournalError> {
    let d = rx
        .wait_for(|d| d.lsn >= lsn || d.failed.is_some())
        .await
        .map_err(|_| JournalError::Closed)?;
    if d.lsn >= lsn {
        Ok(())
    } else {
        Err(JournalError::Failed(d.failed.clone().unwrap_or_default()))
    }
}

/// The segment recovery left open for appending.
struct Tail {
    file: Box<dyn StorageFile>,
    first_lsn: Lsn,
}

struct Writer {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    file: Box<dyn StorageFile>,
    segment_first_lsn: Lsn,
    durable_lsn: Lsn,
    snapshot_lsn: Lsn,
    sync: SyncMode,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(1 << 16);
        loop {
            let (last_lsn, snapshot) = {
                let mut q = lock(&self.shared.queue);
                while q.buf.is_empty() && q.snapshot.is_none() && !q.closing {
                    q = self.shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.buf.is_empty() && q.snapshot.is_none() {
                    drop(q);
                    // Closing, and everything is written: the next start must find it all.
                    if let Err(e) = write_marker(&*self.storage, &self.dir, self.durable_lsn) {
                        tracing::warn!(error = %format!("{e:#}"), "durable-LSN marker not updated at close");
                    }
                    return;
                }
                // Swap buffers so appends go on into the other while this one is written.
                std::mem::swap(&mut batch, &mut q.buf);
                (q.last_lsn, q.snapshot.take())
            };
            let result = match snapshot {
                Some(snap) => self
                    .write_records(&batch[..snap.split_at])
                    .and_then(|()| self.rotate(&snap))
                    .and_then(|()| self.write_records(&batch[snap.split_at..])),
                None => self.write_records(&batch),
            };
            // Publish even an empty batch: a snapshot alone changes `snapshot_lsn`.
            if result.is_ok() {
                self.publish(self.durable_lsn);
            }
            batch.clear();
            if let Err(e) = result {
                let why = format!("{e:#}");
                tracing::error!(error = %why, durable_lsn = self.durable_lsn, "journal write failed: no further record will be acknowledged");
                lock(&self.shared.queue).failed = Some(why.clone());
                let snapshot_lsn = self.snapshot_lsn;
                self.shared.publish(Durability {
                    lsn: self.durable_lsn,
                    failed: Some(why),
                    snapshot_lsn,
                });
                return;
            }
            debug_assert_eq!(self.durable_lsn, last_lsn);
        }
    }

    /// Writes and fsyncs whole frames, publishing each newly durable LSN.
    fn write_records(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self.sync {
            SyncMode::Group => {
                let count = count_frames(bytes);
                self.file.write_all(bytes).context("journal write")?;
                self.file.sync_data().context("journal fdatasync")?;
                self.publish(self.durable_lsn + count);
            }
            SyncMode::PerRecord => {
                let mut at = 0;
                while at < bytes.len() {
                    let end = at + frame_len(&bytes[at..]);
                    self.file
                        .write_all(&bytes[at..end])
                        .context("journal write")?;
                    self.file.sync_data().context("journal fdatasync")?;
                    self.publish(self.durable_lsn + 1);
                    at = end;
                }
            }
        }
        Ok(())
    }

    fn publish(&mut self, lsn: Lsn) {
        self.durable_lsn = lsn;
        self.shared.publish(Durability {
            lsn,
            failed: None,
            snapshot_lsn: self.snapshot_lsn,
        });
    }

    /// New segment first (so the journal always has a live tail), then the snapshot, then the
    /// older segments move to the archive. A crash between any two steps recovers: records
    /// are never in no file, and recovery skips what a snapshot already holds.
    fn rotate(&mut self, snap: &PendingSnapshot) -> anyhow::Result<()> {
        let st = &*self.storage;
        let first = snap.lsn + 1;
        let seg = self.dir.join(segment_name(first));
        if first != self.segment_first_lsn {
            let mut file = st
                .create(&seg)
                .with_context(|| format!("create {}", seg.display()))?;
            file.write_all(&journal::file_header())?;
            file.sync_data()
                .with_context(|| format!("fdatasync {}", seg.display()))?;
            st.sync_dir(&self.dir).context("fsync data dir")?;
            self.file = file;
            self.segment_first_lsn = first;
        }
        write_snapshot(st, &self.dir, snap.lsn, &snap.state)?;
        self.snapshot_lsn = snap.lsn;
        compact(st, &self.dir, snap.lsn)?;
        write_marker(st, &self.dir, self.durable_lsn)?;
        tracing::info!(
            lsn = snap.lsn,
            bytes = snap.state.len(),
            "snapshot written, older segments archived"
        );
        Ok(())
    }
}

fn frame_len(bytes: &[u8]) -> usize {
    let len = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    (FRAME_HEADER_LEN + len as usize).min(bytes.len())
}

fn count_frames(mut bytes: &[u8]) -> u64 {
    let mut n = 0;
    while !bytes.is_empty() {
        bytes = &bytes[frame_len(bytes)..];
        n += 1;
    }
    n
}

pub fn segment_name(first_lsn: Lsn) -> String {
    format!("segment-{first_lsn:020}.log")
}

fn snapshot_name(lsn: Lsn) -> String {
    format!("snapshot-{lsn:020}.snap")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

pub(crate) fn parse_segment_name(name: &str) -> Option<Lsn> {
    parse_numbered(name, "segment-", ".log")
}

/// Replaces `path` with `bytes` durably: write `tmp`, fsync it, rename it over `path`, fsync
/// the directory. A crash at any point leaves the old file or the new one, never a mix.
fn write_atomically(
    st: &dyn Storage,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut f = st
        .create(tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("write {}", tmp.display()))?;
    f.sync_data()
        .with_context(|| format!("fdatasync {}", tmp.display()))?;
    drop(f);
    st.rename(tmp, path)
        .with_context(|| format!("rename {} into place", tmp.display()))?;
    st.sync_dir(dir).context("fsync data dir")?;
    Ok(())
}

/// Writes a snapshot durably: temp file, fsync, rename, fsync the directory.
fn write_snapshot(st: &dyn Storage, dir: &Path, lsn: Lsn, state: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(snapshot_name(lsn));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(lsn)));
    let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_LEN + state.len());
    bytes.extend_from_slice(&SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&[SNAPSHOT_VERSION, 0]);
    bytes.extend_from_slice(&lsn.to_le_bytes());
    bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(state).to_le_bytes());
    bytes.extend_from_slice(state);
    write_atomically(st, dir, &tmp, &path, &bytes)
}

/// Reads and checks a snapshot file; `Err` names what is wrong with it.
fn read_snapshot(st: &dyn Storage, path: &Path, lsn: Lsn) -> Result<SnapshotFile, String> {
    let bytes = st.read(path).map_err(|e| e.to_string())?;
    let header = bytes
        .get(..SNAPSHOT_HEADER_LEN)
        .ok_or("shorter than its header")?;
    if header[..6] != SNAPSHOT_MAGIC || header[6] != SNAPSHOT_VERSION {
        return Err("bad magic or version".into());
    }
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    if u64_at(8) != lsn {
        return Err(format!("holds lsn {} but is named for {lsn}", u64_at(8)));
    }
    let state = &bytes[SNAPSHOT_HEADER_LEN..];
    if u64_at(16) != state.len() as u64 {
        return Err(format!(
            "state is {} bytes, header says {}",
            state.len(),
            u64_at(16)
        ));
    }
    let stored = u32::from_le_bytes(header[24..28].try_into().unwrap_or([0; 4]));
    if crc32fast::hash(state) != stored {
        return Err("checksum mismatch".into());
    }
    Ok(SnapshotFile {
        lsn,
        state: state.to_vec(),
        path: path.to_path_buf(),
    })
}

/// Records `lsn` as durable in the marker file: temp file, fsync, rename, fsync the directory.
fn write_marker(st: &dyn Storage, dir: &Path, lsn: Lsn) -> anyhow::Result<()> {
    let path = dir.join(MARKER_FILE);
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut bytes = Vec::with_capacity(MARKER_LEN);
    bytes.extend_from_slice(&MARKER_MAGIC);
    bytes.extend_from_slice(&[MARKER_VERSION, 0]);
    bytes.extend_from_slice(&lsn.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    write_atomically(st, dir, &tmp, &path, &bytes)
}

/// The LSN the marker file says was durable; `None` when there is no marker (a directory
/// from before markers, or a new one). A damaged marker is an error: it is written
/// atomically, so damage means the disk, and nothing else can vouch for the journal's end.
pub fn read_marker(st: &dyn Storage, dir: &Path) -> anyhow::Result<Option<Lsn>> {
    let path = dir.join(MARKER_FILE);
    let names = st
        .list(dir)
        .with_context(|| format!("list {}", dir.display()))?;
    if !names.iter().any(|n| n == MARKER_FILE) {
        return Ok(None);
    }
    let bytes = st
        .read(&path)
        .with_context(|| format!("read {}", path.display()))?;
    let valid = bytes.len() == MARKER_LEN
        && bytes[..6] == MARKER_MAGIC
        && bytes[6] == MARKER_VERSION
        && crc32fast::hash(&bytes[..16]).to_le_bytes()[..] == bytes[16..20];
    if !valid {
        bail!(
            "the durable-LSN marker {} is damaged ({} bytes); refusing to start. Check the disk; \
             to start without the check that the journal is complete, delete that file",
            path.display(),
            bytes.len()
        );
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    Ok(Some(u64::from_le_bytes(lsn)))
}

/// Refuses (or, when the operator chose to recover past damage, logs) a journal that ends at
/// `end` although the marker says records up to `marker` were durable.
fn check_marker(
    dir: &Path,
    marker: Option<Lsn>,
    end: Lsn,
    last_file: Option<(&Path, usize)>,
    opts: &JournalOptions,
) -> anyhow::Result<()> {
    let Some(marker) = marker.filter(|&m| m > end) else {
        return Ok(());
    };
    let file = match last_file {
        Some((path, len)) => format!("the last segment {} ends after {len} bytes", path.display()),
        None => format!("no segment holds the records after {end}"),
    };
    let why = format!(
        "journal incomplete: {} says records up to {marker} were durable, but the journal ends \
         at record {end} ({file}): records {}..={marker} are missing (a segment truncated or \
         deleted)",
        dir.join(MARKER_FILE).display(),
        end + 1
    );
    if opts.recover_past_corruption {
        tracing::error!(
            "{why}; starting anyway with the records that are left, as the operator chose"
        );
        return Ok(());
    }
    bail!(
        "{why}; refusing to start. Restore the missing segment from a backup, or pass \
         --recover-to-corruption to start with the {end} records that are left"
    )
}

/// After a snapshot at `lsn`: moves live segments that hold only records up to `lsn` into the
/// archive and drops snapshots older than the newest `SNAPSHOTS_KEPT`.
fn compact(st: &dyn Storage, dir: &Path, lsn: Lsn) -> anyhow::Result<()> {
    let archive = dir.join(ARCHIVE_DIR);
    let names = st.list(dir).context("list data dir")?;
    let mut segments: Vec<Lsn> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    segments.sort_unstable();
    // A segment can go once the next one starts at or before lsn + 1.
    let mut moved = false;
    for pair in segments.windows(2) {
        if pair[1] <= lsn + 1 {
            let name = segment_name(pair[0]);
            st.rename(&dir.join(&name), &archive.join(&name))
                .with_context(|| format!("archive {name}"))?;
            moved = true;
        }
    }
    let mut snaps: Vec<Lsn> = names
        .iter()
        .filter_map(|n| parse_numbered(n, "snapshot-", ".snap"))
        .collect();
    snaps.sort_unstable();
    let excess = snaps.len().saturating_sub(SNAPSHOTS_KEPT);
    for old in &snaps[..excess] {
        st.remove(&dir.join(snapshot_name(*old)))
            .with_context(|| format!("remove old snapshot {old}"))?;
    }
    if moved {
        st.sync_dir(&archive).context("fsync archive dir")?;
    }
    if moved || excess > 0 {
        st.sync_dir(dir).context("fsync data dir")?;
    }
    Ok(())
}

/// Every segment in the live directory and the archive, ordered by first LSN.
pub(crate) fn list_segments(
    st: &dyn Storage,
    dir: &Path,
) -> anyhow::Result<Vec<(Lsn, PathBuf, bool)>> {
    let mut all = Vec::new();
    for (sub, live) in [(dir.join(ARCHIVE_DIR), false), (dir.to_path_buf(), true)] {
        let names = match st.list(&sub) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("list {}", sub.display())),
        };
        for name in names {
            if let Some(first) = parse_segment_name(&name) {
                all.push((first, sub.join(name), live));
            }
        }
    }
    all.sort_by_key(|(first, _, live)| (*first, *live));
    // A crash between archiving and syncing cannot leave a segment in both places (rename
    // is atomic), but if an operator copies one back, prefer the live copy.
    all.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    Ok(all)
}

/// Sets `bytes[offset..]` of `segment` aside in a `.torn` file next to it and cuts the segment.
fn cut(
    st: &dyn Storage,
    segment: &Path,
    bytes: &[u8],
    offset: usize,
    why: String,
) -> anyhow::Result<Cut> {
    let kept_in = segment.with_extension(format!("log.{offset}.torn"));
    let mut f = st
        .create(&kept_in)
        .with_context(|| format!("create {}", kept_in.display()))?;
    f.write_all(&bytes[offset..])?;
    f.sync_data()
        .with_context(|| format!("fdatasync {}", kept_in.display()))?;
    drop(f);
    if offset < FILE_HEADER_LEN {
        // Not even the header survived: start the segment afresh.
        st.truncate(segment, 0)?;
        let mut f = st.open_append(segment)?;
        f.write_all(&journal::file_header())?;
        f.sync_data()?;
    } else {
        st.truncate(segment, offset as u64)
            .with_context(|| format!("truncate {}", segment.display()))?;
    }
    if let Some(parent) = segment.parent() {
        st.sync_dir(parent)?;
    }
    tracing::error!(
        segment = %segment.display(), offset, bytes = bytes.len() - offset, kept_in = %kept_in.display(), %why,
        "journal tail cut at the last good record; the cut bytes are kept aside"
    );
    Ok(Cut {
        segment: segment.to_path_buf(),
        offset: offset as u64,
        bytes: (bytes.len() - offset) as u64,
        kept_in,
        why,
    })
}

fn describe(reason: &Corruption) -> String {
    reason.to_string()
}

/// Recovery: newest valid snapshot, then every record after it; damaged tails cut.
fn recover(
    st: &dyn Storage,
    dir: &Path,
    opts: &JournalOptions,
) -> anyhow::Result<(Recovered, Tail)> {
    st.create_dir_all(&dir.join(ARCHIVE_DIR))
        .with_context(|| format!("create data dir {}", dir.display()))?;
    let names = st
        .list(dir)
        .with_context(|| format!("list {}", dir.display()))?;
    for tmp in names
        .iter()
        .filter(|n| n.ends_with(".snap.tmp") || *n == &format!("{MARKER_FILE}.tmp"))
    {
        // A snapshot interrupted before its rename: never valid, never needed.
        st.remove(&dir.join(tmp))
            .with_context(|| format!("remove {tmp}"))?;
    }

    let mut snaps: Vec<Lsn> = names
        .iter()
        .filter_map(|n| parse_numbered(n, "snapshot-", ".snap"))
        .collect();
    snaps.sort_unstable();
    let mut snapshot = None;
    for lsn in snaps.into_iter().rev() {
        let path = dir.join(snapshot_name(lsn));
        match read_snapshot(st, &path, lsn) {
            Ok(s) => {
                snapshot = Some(s);
                break;
            }
            Err(why) => {
                tracing::error!(snapshot = %path.display(), %why, "snapshot is damaged; falling back to an older one")
            }
        }
    }
    let base = snapshot.as_ref().map_or(0, |s| s.lsn);
    let marker = read_marker(st, dir)?;

    let segments = list_segments(st, dir)?;
    // Start at the last segment that begins at or before the first record we need.
    let start = segments
        .iter()
        .rposition(|(first, _, _)| *first <= base + 1);
    let mut recovered = Recovered {
        snapshot,
        records: Vec::new(),
        last_lsn: base,
        cuts: Vec::new(),
    };
    let Some(start) = start else {
        if let Some((first, path, _)) = segments.first() {
            bail!(
                "journal gap: the state on disk ends at record {base} but the oldest segment {} starts at {first}",
                path.display()
            );
        }
        // A fresh directory (or a snapshot with no segment after it), unless the marker knows
        // of records after `base`: then the segments holding them were deleted.
        check_marker(dir, marker, base, None, opts)?;
        let seg = dir.join(segment_name(base + 1));
        let mut file = st
            .create(&seg)
            .with_context(|| format!("create {}", seg.display()))?;
        file.write_all(&journal::file_header())?;
        file.sync_data()?;
        st.sync_dir(dir)?;
        return Ok((
            recovered,
            Tail {
                file,
                first_lsn: base + 1,
            },
        ));
    };

    let needed = &segments[start..];
    let mut expected_first = needed[0].0;
    let mut stop_after: Option<usize> = None;
    for (i, (first, path, live)) in needed.iter().enumerate() {
        if *first != expected_first {
            bail!(
                "journal gap: segment {} starts at record {first} but the previous segment ends at {}",
                path.display(),
                expected_first - 1
            );
        }
        let bytes = st
            .read(path)
            .with_context(|| format!("read {}", path.display()))?;
        let scan = journal::scan(&bytes);
        let count = scan.records.len() as u64;
        for (k, (_, record)) in scan.records.into_iter().enumerate() {
            let lsn = first + k as u64;
            if lsn > base {
                recovered.records.push((lsn, record));
            }
        }
        recovered.last_lsn = recovered.last_lsn.max(first + count - 1);
        expected_first = first + count;
        let is_last = i + 1 == needed.len();
        if is_last && !matches!(scan.end, ScanEnd::CorruptMiddle { .. }) {
            // Before any cut: a journal shorter than the marker is damage, not a crash.
            let valid = scan.end.valid_len(bytes.len());
            check_marker(dir, marker, recovered.last_lsn, Some((path, valid)), opts)?;
        }
        let where_ = |offset: usize| format!("{} at byte {offset}", path.display());
        match scan.end {
            ScanEnd::Clean => {}
            ScanEnd::TornTail { offset } | ScanEnd::CorruptTail { offset, .. } if is_last && *live => {
                let why = match &scan.end {
                    ScanEnd::CorruptTail { reason, .. } => format!("corrupt tail: {}", describe(reason)),
                    _ => "torn tail (incomplete last record)".into(),
                };
                recovered.cuts.push(cut(st, path, &bytes, offset, why)?);
            }
            ScanEnd::CorruptMiddle { offset, reason, next_valid } if !opts.recover_past_corruption => bail!(
                "journal corrupt in the middle: {} ({}), with valid records from byte {next_valid} on; \
                 refusing to start. Pass --recover-to-corruption to keep the {} records before it and set the rest aside",
                where_(offset),
                describe(&reason),
                recovered.records.len()
            ),
            ref end if !opts.recover_past_corruption => bail!(
                "journal segment {} is damaged ({end:?}) but later segments exist; refusing to start. \
                 Pass --recover-to-corruption to keep the records before it and set the rest aside",
                path.display()
            ),
            ref end => {
                if !*live {
                    bail!("archived segment {} is damaged ({end:?}); restore it from a backup", path.display());
                }
                let offset = end.valid_len(bytes.len());
                let why = format!("operator chose to recover up to corruption: {end:?}");
                recovered.cuts.push(cut(st, path, &bytes, offset, why)?);
                stop_after = Some(i);
                break;
            }
        }
    }
    if let Some(i) = stop_after {
        // Later segments hold records after the corruption: set them aside whole.
        for (_, path, _) in &needed[i + 1..] {
            let aside = path.with_extension("log.torn");
            st.rename(path, &aside)
                .with_context(|| format!("set aside {}", path.display()))?;
            tracing::error!(segment = %path.display(), kept_in = %aside.display(), "segment after the corruption set aside");
        }
        st.sync_dir(dir)?;
    }
    if recovered.last_lsn < base {
        bail!(
            "snapshot at record {base} is newer than the journal, which ends at {}",
            recovered.last_lsn
        );
    }
    let (tail_first, tail_path, tail_live) = &needed[stop_after.unwrap_or(needed.len() - 1)];
    let tail = if *tail_live {
        Tail {
            file: st
                .open_append(tail_path)
                .with_context(|| format!("open {}", tail_path.display()))?,
            first_lsn: *tail_first,
        }
    } else {
        // Only archived segments were found: open a fresh live one after them.
        let first = recovered.last_lsn + 1;
        let seg = dir.join(segment_name(first));
        let mut file = st.create(&seg)?;
        file.write_all(&journal::file_header())?;
        file.sync_data()?;
        st.sync_dir(dir)?;
        Tail {
            file,
            first_lsn: first,
        }
    };
    tracing::info!(
        snapshot_lsn = base,
        replay = recovered.records.len(),
        last_lsn = recovered.last_lsn,
        cuts = recovered.cuts.len(),
        "journal recovered"
    );
    Ok((recovered, tail))
}
