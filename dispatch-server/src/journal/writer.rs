//! The write path: `Journal` buffers appended records; a dedicated writer thread writes and
//! fsyncs everything appended while its previous fsync ran (group commit), then publishes the
//! durable LSN. `journal_command` / `journal_timeout` turn one engine step into records.

use super::recovery::recover;
use super::snapshot::*;
use super::storage::{DiskStorage, Storage, StorageFile};
use super::*;
use anyhow::Context;
use dispatch_core::command::Command;
use dispatch_core::event::{Event, EventRecord};
use dispatch_core::journal::{self, EncodeError, Record, RegionId, FRAME_HEADER_LEN};
use dispatch_core::time::Timestamp;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Where a snapshot was asked for: records up to `lsn` are the first `split_at` bytes of the
/// queue at the time. The writer starts a new segment there at once; the snapshot thread
/// writes the snapshot afterwards (serializing the state took the engine's thread 40–110 ms
/// on a busy day, benches/README.md, "What a snapshot costs the engine's thread").
struct Cut {
    lsn: Lsn,
    split_at: usize,
}

/// What became of a snapshot the snapshot thread took up.
enum Outcome {
    /// On disk: the writer archives behind it.
    Written(Lsn),
    /// Not taken: its state did not encode.
    Skipped(Lsn),
    /// Its file could not be written: the journal fails.
    Failed(String),
}

/// A snapshot's state to encode, off the engine's thread.
type EncodeJob = (
    Lsn,
    Box<dyn FnOnce() -> Result<Vec<u8>, serde_json::Error> + Send>,
);

pub(super) struct Queue {
    /// Encoded records not yet handed to the writer.
    buf: Vec<u8>,
    /// LSN of the last record in `buf` (or already written).
    last_lsn: Lsn,
    failed: Option<String>,
    closing: bool,
    /// Cuts asked for, in LSN order, not yet taken by the writer.
    cuts: Vec<Cut>,
    /// Cuts the writer made whose snapshots are not written yet, in LSN order, with the
    /// replica's position at each (the snapshot thread takes them).
    cuts_made: std::collections::VecDeque<(Lsn, Option<u64>)>,
    /// What became of each snapshot the snapshot thread took up, in LSN order, for the
    /// writer to act on and publish in that order.
    written: Vec<Outcome>,
    /// Snapshots asked for and not yet archived behind (or given up: their encoding failed,
    /// or the journal did first).
    in_flight: usize,
    /// Records appended since the last snapshot was asked for.
    since_snapshot: u64,
    /// When the last snapshot was asked for (or the journal opened).
    last_snapshot_at: std::time::Instant,
}

pub(super) struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer when something was appended or asked for, and the snapshot thread
    /// when a cut was made or the journal failed. Both may wait on it at once, so it is
    /// always notified to all: an append that woke only the snapshot thread (waiting for its
    /// cut) would leave its record unwritten and its caller waiting.
    wake: Condvar,
    durable: watch::Sender<Durability>,
    /// The same value as `durable`, for threads that wait without an async runtime.
    durable_mirror: Mutex<Durability>,
    durable_changed: Condvar,
    /// Where records also go before they count as durable (cluster mode: the region's
    /// JetStream stream); `None` in embedded mode.
    replica: Mutex<Option<Arc<dyn Replica>>>,
}

/// A second home for records: called by the writer thread with every batch of whole frames
/// after the local fsync and before the batch's LSNs are published as durable, so a reply
/// waits for both. An error is final, like a failed fsync (cluster mode: fenced by another
/// engine, or the cluster unreachable for longer than the lease).
pub trait Replica: Send + Sync {
    fn replicate(&self, frames: &[u8]) -> anyhow::Result<()>;
    /// A snapshot of the engine after the records up to its LSN (written locally just
    /// before); `at` is what [`Replica::position`] said when exactly those were replicated
    /// (more may have been since: the state was encoded meanwhile). Best effort: a replica
    /// that cannot keep it only makes a new follower replay more.
    fn snapshot(&self, _at: u64, _state: &[u8]) {}
    /// Where the replica is now, as [`Replica::snapshot`] wants to be told it.
    fn position(&self) -> u64 {
        0
    }
}

impl Shared {
    fn replica(&self) -> Option<Arc<dyn Replica>> {
        self.replica
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn publish(&self, d: Durability) {
        *self
            .durable_mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = d.clone();
        self.durable.send_replace(d);
        self.durable_changed.notify_all();
    }
}

pub(super) fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The journal of one data directory. Append from one task (the engine task); wait from any.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Snapshot states to encode, and the thread that encodes them.
    encode: Option<std::sync::mpsc::Sender<EncodeJob>>,
    encoder: Option<JoinHandle<()>>,
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
            snapshot_skipped: 0,
        };
        let (durable, _) = watch::channel(start.clone());
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buf: Vec::with_capacity(1 << 16),
                last_lsn,
                failed: None,
                closing: false,
                cuts: Vec::new(),
                cuts_made: std::collections::VecDeque::new(),
                written: Vec::new(),
                in_flight: 0,
                since_snapshot: last_lsn - base,
                last_snapshot_at: std::time::Instant::now(),
            }),
            wake: Condvar::new(),
            durable,
            durable_mirror: Mutex::new(start),
            durable_changed: Condvar::new(),
            replica: Mutex::new(None),
        });
        let writer = Writer {
            storage,
            dir: dir.to_path_buf(),
            file: tail.file,
            segment_first_lsn: tail.first_lsn,
            durable_lsn: last_lsn,
            snapshot_lsn: base,
            snapshot_skipped: 0,
            sync: opts.sync,
            shared: shared.clone(),
        };
        let (encode, jobs) = std::sync::mpsc::channel::<EncodeJob>();
        let (for_encoder, st, snap_dir) =
            (shared.clone(), writer.storage.clone(), dir.to_path_buf());
        let encoder = std::thread::Builder::new()
            .name("journal-snapshot".into())
            .spawn(move || encode_snapshots(&for_encoder, &*st, &snap_dir, jobs))
            .context("cannot start the journal snapshot thread")?;
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())
            .context("cannot start the journal writer thread")?;
        Ok((
            Journal {
                shared,
                writer: Some(handle),
                encode: Some(encode),
                encoder: Some(encoder),
                opts,
            },
            recovered,
        ))
    }

    /// From the next batch on, records count as durable only once `replica` holds them too.
    pub fn set_replica(&self, replica: Arc<dyn Replica>) {
        *self
            .shared
            .replica
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(replica);
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
        self.shared.wake.notify_all();
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
        self.wait_blocking(|d| (d.lsn >= lsn).then_some(Ok(())))
    }

    /// Blocks until a snapshot at or after `lsn` is on disk (tests and benchmarks); an
    /// error if, before one was, a snapshot at or after `lsn` was not taken (its state did
    /// not encode). The writer publishes both in the order the snapshots were asked for.
    pub fn wait_snapshot_blocking(&self, lsn: Lsn) -> Result<(), JournalError> {
        self.wait_blocking(|d| match d.snapshot_lsn >= lsn {
            true => Some(Ok(())),
            false => (d.snapshot_skipped >= lsn).then_some(Err(JournalError::SnapshotSkipped(lsn))),
        })
    }

    fn wait_blocking(
        &self,
        done: impl Fn(&Durability) -> Option<Result<(), JournalError>>,
    ) -> Result<(), JournalError> {
        let mut d = self
            .shared
            .durable_mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = done(&d) {
                return result;
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

    /// Whether enough records, or records and enough time (`snapshot_after`), have gone by
    /// since the last snapshot to take another, and the last one is written.
    pub fn snapshot_due(&self) -> bool {
        if self.opts.snapshot_every == 0 {
            return false;
        }
        let q = lock(&self.shared.queue);
        // One in flight at a time, whichever rule makes it due (the time rule ignored it).
        q.in_flight == 0
            && (q.since_snapshot >= self.opts.snapshot_every
                || (q.since_snapshot > 0
                    && self
                        .opts
                        .snapshot_after
                        .is_some_and(|after| q.last_snapshot_at.elapsed() >= after)))
    }

    /// Takes a snapshot of the state after every record appended so far, and returns its
    /// LSN at once: the state is encoded on the journal's own snapshot thread, and written
    /// after those records are durable; then older segments move to `archive/`. The caller
    /// must pass the state that includes exactly the records it appended. An encoding that
    /// fails is logged and the snapshot is not taken (the next start replays more); a write
    /// of it that fails fails the journal, as a record's would.
    pub fn snapshot<T: Serialize + Send + 'static>(&self, state: T) -> Result<Lsn, JournalError> {
        let mut q = lock(&self.shared.queue);
        if let Some(why) = &q.failed {
            return Err(JournalError::Failed(why.clone()));
        }
        let Some(encode) = &self.encode else {
            return Err(JournalError::Closed);
        };
        let lsn = q.last_lsn;
        let split_at = q.buf.len();
        q.cuts.push(Cut { lsn, split_at });
        q.in_flight += 1;
        q.since_snapshot = 0;
        q.last_snapshot_at = std::time::Instant::now();
        // Sent under the lock: the encoder cannot hand back this snapshot before its cut is
        // queued, nor out of order with another.
        let sent = encode.send((lsn, Box::new(move || serde_json::to_vec(&state))));
        if sent.is_err() {
            q.in_flight -= 1;
            return Err(JournalError::Closed);
        }
        drop(q);
        self.shared.wake.notify_all();
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
        // The writer stops once every snapshot asked for is written: the encoder runs on.
        if let Some(h) = self.writer.take() {
            if h.join().is_err() {
                tracing::error!("journal writer thread panicked");
            }
        }
        self.encode = None;
        if let Some(h) = self.encoder.take() {
            if h.join().is_err() {
                tracing::error!("journal snapshot thread panicked");
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

/// The segment recovery leaves open for appending, and the LSN of its first record.
pub(super) struct Tail {
    pub(super) file: Box<dyn StorageFile>,
    pub(super) first_lsn: Lsn,
}

pub(super) struct Writer {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    file: Box<dyn StorageFile>,
    segment_first_lsn: Lsn,
    durable_lsn: Lsn,
    snapshot_lsn: Lsn,
    /// The newest snapshot not taken, its state not encoding (0: none).
    snapshot_skipped: Lsn,
    sync: SyncMode,
    shared: Arc<Shared>,
}

/// The snapshot thread: encodes each state asked for, in order; once the writer made its
/// cut (the records up to its LSN are durable, the new segment started), writes it durably
/// and tells the replica, then hands it to the writer to archive behind. Both the encoding
/// and the file's write and fsync (about 130 ms of a 50 MB state) stay off the engine's and
/// the writer's threads. A failed encoding (or a panic in it) is logged and skipped; a
/// failed write fails the journal, as any write the writer makes does.
fn encode_snapshots(
    shared: &Shared,
    st: &dyn Storage,
    dir: &Path,
    jobs: std::sync::mpsc::Receiver<EncodeJob>,
) {
    // What became of each snapshot goes to the writer in order, so that it publishes a
    // skip after every snapshot asked for before it (and counts each out of `in_flight`).
    let hand_over = |outcome: Outcome| {
        lock(&shared.queue).written.push(outcome);
        shared.wake.notify_all();
    };
    for (lsn, encode) in jobs {
        let state = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode)) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                let e = JournalError::Encode(Arc::new(EncodeError::Payload(e)));
                tracing::warn!(error = %e, lsn, "journal snapshot not taken: its state did not encode");
                hand_over(Outcome::Skipped(lsn));
                continue;
            }
            Err(_) => {
                tracing::error!(
                    lsn,
                    "journal snapshot not taken: encoding its state panicked"
                );
                hand_over(Outcome::Skipped(lsn));
                continue;
            }
        };
        // Wait for the cut (the writer makes it once the records before it are durable).
        let replica_at = {
            let mut q = lock(&shared.queue);
            loop {
                // Cuts whose encoding failed are passed over.
                while q.cuts_made.front().is_some_and(|(l, _)| *l < lsn) {
                    q.cuts_made.pop_front();
                }
                if q.cuts_made.front().is_some_and(|(l, _)| *l == lsn) {
                    break q.cuts_made.pop_front().map(|(_, at)| at);
                }
                if q.failed.is_some() {
                    break None;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some(replica_at) = replica_at else {
            // The journal failed first: nothing more will be archived.
            lock(&shared.queue).in_flight -= 1;
            shared.wake.notify_all();
            continue;
        };
        let written = write_snapshot(st, dir, lsn, &state);
        if written.is_ok() {
            tracing::info!(lsn, bytes = state.len(), "snapshot written");
            if let (Some(r), Some(at)) = (shared.replica(), replica_at) {
                r.snapshot(at, &state);
            }
        }
        hand_over(match written {
            Ok(()) => Outcome::Written(lsn),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        });
    }
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(1 << 16);
        loop {
            let (last_lsn, cuts, written) = {
                let mut q = lock(&self.shared.queue);
                let idle =
                    |q: &Queue| q.buf.is_empty() && q.cuts.is_empty() && q.written.is_empty();
                // Closing waits for the snapshots still being encoded.
                while idle(&q) && !(q.closing && q.in_flight == 0) {
                    q = self.shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if idle(&q) {
                    drop(q);
                    // Closing, and everything is written: the next start must find it all.
                    if let Err(e) = write_marker(&*self.storage, &self.dir, self.durable_lsn) {
                        tracing::warn!(error = %format!("{e:#}"), "durable-LSN marker not updated at close");
                    }
                    return;
                }
                // Swap buffers so appends go on into the other while this one is written.
                std::mem::swap(&mut batch, &mut q.buf);
                (
                    q.last_lsn,
                    std::mem::take(&mut q.cuts),
                    std::mem::take(&mut q.written),
                )
            };
            let archived = written.len();
            let result = self.write_cut_batch(&batch, &cuts).and_then(|()| {
                written.into_iter().try_for_each(|w| match w {
                    Outcome::Written(lsn) => self.archive_behind(lsn),
                    Outcome::Skipped(lsn) => {
                        self.snapshot_skipped = lsn;
                        Ok(())
                    }
                    Outcome::Failed(why) => Err(anyhow::anyhow!(why)),
                })
            });
            if archived > 0 {
                lock(&self.shared.queue).in_flight -= archived;
            }
            // Publish even an empty batch: a snapshot alone changes `snapshot_lsn`.
            if result.is_ok() {
                self.publish(self.durable_lsn);
            }
            batch.clear();
            if let Err(e) = result {
                let why = format!("{e:#}");
                tracing::error!(error = %why, durable_lsn = self.durable_lsn, "journal write failed: no further record will be acknowledged");
                lock(&self.shared.queue).failed = Some(why.clone());
                // The snapshot thread may wait for a cut that will not come.
                self.shared.wake.notify_all();
                let snapshot_lsn = self.snapshot_lsn;
                self.shared.publish(Durability {
                    lsn: self.durable_lsn,
                    failed: Some(why),
                    snapshot_lsn,
                    snapshot_skipped: self.snapshot_skipped,
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
        let replica = self.shared.replica();
        match self.sync {
            SyncMode::Group => {
                let count = count_frames(bytes);
                self.file.write_all(bytes).context("journal write")?;
                self.file.sync_data().context("journal fdatasync")?;
                if let Some(r) = &replica {
                    r.replicate(bytes).context("journal replica")?;
                }
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
                    if let Some(r) = &replica {
                        r.replicate(&bytes[at..end]).context("journal replica")?;
                    }
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
            snapshot_skipped: self.snapshot_skipped,
        });
    }

    /// Writes a batch of records, starting a new segment at each cut.
    fn write_cut_batch(&mut self, batch: &[u8], cuts: &[Cut]) -> anyhow::Result<()> {
        let mut at = 0;
        for cut in cuts {
            self.write_records(&batch[at..cut.split_at])?;
            self.cut(cut.lsn)?;
            at = cut.split_at;
        }
        self.write_records(&batch[at..])
    }

    /// At a snapshot's LSN, once the records up to it are durable: a new segment first (so
    /// the journal always has a live tail); the snapshot follows when encoded
    /// ([`Self::write_snapshot`]), then the older segments move to the archive. A crash
    /// between any two steps recovers: records are never in no file, and recovery skips
    /// what a snapshot already holds.
    fn cut(&mut self, lsn: Lsn) -> anyhow::Result<()> {
        let st = &*self.storage;
        let first = lsn + 1;
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
        let at = self.shared.replica().map(|r| r.position());
        lock(&self.shared.queue).cuts_made.push_back((lsn, at));
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Once the snapshot at `lsn` is on disk: the segments it holds move to the archive.
    fn archive_behind(&mut self, lsn: Lsn) -> anyhow::Result<()> {
        let st = &*self.storage;
        self.snapshot_lsn = lsn;
        compact(st, &self.dir, lsn)?;
        write_marker(st, &self.dir, self.durable_lsn)?;
        tracing::info!(lsn, "older segments archived behind the snapshot");
        Ok(())
    }
}

pub(super) fn frame_len(bytes: &[u8]) -> usize {
    let len = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    (FRAME_HEADER_LEN + len as usize).min(bytes.len())
}

pub(super) fn count_frames(mut bytes: &[u8]) -> u64 {
    let mut n = 0;
    while !bytes.is_empty() {
        bytes = &bytes[frame_len(bytes)..];
        n += 1;
    }
    n
}

/// Journals an accepted command and the events it caused (drained from the engine, in
/// order). Returns the LSN whose durability releases the reply and the events.
pub fn journal_command(
    j: &Journal,
    now: Timestamp,
    command: &Command,
    events: &[EventRecord],
) -> Result<Lsn, JournalError> {
    let region = j.region();
    let lsn = j.append(&Record::command(region, now, command.clone()))?;
    // A location ping's only event (`responder_moved`) is the command restated: no incident
    // timeline holds it and replay regenerates it, so it gets no Decisions record. Pings are
    // most records by far; this halves what they cost the journal.
    let implied = matches!(command, Command::Location { .. })
        && events
            .iter()
            .all(|e| matches!(e.event, Event::ResponderMoved { .. }));
    if implied {
        return Ok(lsn);
    }
    match Record::decisions(region, events.to_vec()) {
        Some(d) => j.append(&d),
        None => Ok(lsn),
    }
}

/// Journals a `handle_timeout(now)` call. Every call is journaled, not only those that
/// produced events: a timer may change state silently, and replay must make the same calls.
pub fn journal_timeout(
    j: &Journal,
    now: Timestamp,
    events: &[EventRecord],
) -> Result<Lsn, JournalError> {
    let region = j.region();
    let lsn = j.append(&Record::timeout(region, now))?;
    match Record::decisions(region, events.to_vec()) {
        Some(d) => j.append(&d),
        None => Ok(lsn),
    }
}
