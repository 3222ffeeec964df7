//! A region's journal as a JetStream stream: creating it (replicated), the seed, appending
//! with fencing (the active engine's [`StreamReplica`]), and following it into a warm engine
//! ([`Follower`], the standby's).
//!
//! A stream message is one of three kinds (header `Dispatch-Kind`):
//!
//! - `seed`: the engine state the region began with (the roster), at sequence 1 on;
//! - `records`: whole journal frames (`dispatch_core::journal`'s format, no file header), as
//!   the active engine's writer thread fsynced them locally;
//! - `fence`: written by an engine taking the region over, with the sequence it read up to as
//!   the expected last sequence. Every append of the engine it replaced now fails.
//!
//! A payload over [`CHUNK`] bytes goes as several messages, every one but the last marked
//! `Dispatch-More: 1`; a follower joins them. A `fence` drops an unfinished group: the engine
//! that wrote it died before the group was whole, so nothing in it was acknowledged.

use crate::journal::Replica;
use anyhow::{anyhow, bail, Context};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use dispatch_core::engine::Engine;
use dispatch_core::journal::{self, Decoded, Record, RegionId, Replayer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KIND: &str = "Dispatch-Kind";
pub const MORE: &str = "Dispatch-More";
pub const NODE: &str = "Dispatch-Node";
/// Largest payload of one message: well under NATS's default `max_payload` (1 MiB).
pub const CHUNK: usize = 512 * 1024;

/// The stream holding region `r`'s journal.
pub fn stream_name(region: RegionId) -> String {
    format!("DISPATCH_R{}", region.0)
}

/// The subject its messages are published on.
pub fn subject(region: RegionId) -> String {
    format!("dispatch.r{}.log", region.0)
}

/// The stream a subject of ours belongs to (`dispatch.r<r>.log` → `DISPATCH_R<r>`).
fn stream_name_of(subject: &str) -> String {
    let region = subject
        .strip_prefix("dispatch.r")
        .and_then(|r| r.strip_suffix(".log"))
        .unwrap_or_default();
    format!("DISPATCH_R{region}")
}

/// Creates the region's stream (or finds it): file storage, `replicas` copies, a de-duplication
/// window of two minutes (a retried publish with the same message id is stored once). A fresh
/// cluster may not have elected its meta leader yet: retried for up to `wait`.
pub async fn ensure_stream(
    js: &jetstream::Context,
    region: RegionId,
    replicas: usize,
    wait: Duration,
) -> anyhow::Result<jetstream::stream::Stream> {
    let config = jetstream::stream::Config {
        name: stream_name(region),
        subjects: vec![subject(region)],
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        description: Some(format!("dispatch journal of region {}", region.0)),
        ..Default::default()
    };
    retry(wait, "creating the region's stream", || {
        let config = config.clone();
        async move { js.get_or_create_stream(config).await }
    })
    .await
}

/// Retries `op` until it succeeds or `wait` has passed (a cluster just started, a server
/// restarting).
pub async fn retry<T, E, F, Fut>(wait: Duration, what: &str, mut op: F) -> anyhow::Result<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + wait;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline => {
                tracing::info!(error = %e, "{what}: retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => bail!("{what}: {e}"),
        }
    }
}

/// Publishes one message with the expected last sequence `after`, awaiting the stream's
/// acknowledgement (stored on the replicas), retrying lost acknowledgements with the same
/// message id until `wait` has passed. `Ok(None)`: the stream's last sequence is not
/// `after` (another writer got there first).
async fn append_one(
    js: &jetstream::Context,
    subject: &str,
    msg: PublishMessage,
    id: &str,
    after: u64,
    wait: Duration,
) -> anyhow::Result<Option<u64>> {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = async {
            js.send_publish(
                subject.to_string(),
                msg.clone().message_id(id).expected_last_sequence(after),
            )
            .await?
            .await
        };
        match attempt.await {
            Ok(ack) if ack.sequence == after + 1 => return Ok(Some(ack.sequence)),
            Ok(ack) => bail!(
                "stream acknowledged sequence {} for a message expected at {}",
                ack.sequence,
                after + 1
            ),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                // Either another writer got there first (a fence), or this very message was
                // stored and its acknowledgement lost (the server may check the expected last
                // sequence before the de-duplication window): read what is at `after + 1`.
                let stored = js
                    .get_stream(stream_name_of(subject))
                    .await
                    .ok()
                    .map(|s| async move { s.get_raw_message(after + 1).await });
                let ours = match stored {
                    Some(read) => read.await.ok().is_some_and(|m| {
                        m.headers
                            .get(async_nats::header::NATS_MESSAGE_ID)
                            .is_some_and(|v| v.as_str() == id)
                    }),
                    None => false,
                };
                return Ok(ours.then_some(after + 1));
            }
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, after, "append to the region's stream: retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => bail!("append to the region's stream after sequence {after}: {e}"),
        }
    }
}

/// Appends `payload` as a group of `kind` messages after sequence `after`; the last
/// sequence written, or `None` when the stream had moved on (another engine's fence).
///
/// Every message is sent first and the acknowledgements awaited after, in order: one round
/// trip for a group, not one per message (a start-up burst's batch is megabytes). Each carries
/// its own expected last sequence, so the group is stored in order or not past the first
/// refusal. From the first message not acknowledged, it goes on one message at a time with
/// the same message ids (stored once if they were stored already).
pub async fn append(
    js: &jetstream::Context,
    region: RegionId,
    node: &str,
    kind: &str,
    payload: &[u8],
    after: u64,
    wait: Duration,
) -> anyhow::Result<Option<u64>> {
    let subject = subject(region);
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(CHUNK).collect()
    };
    let count = chunks.len();
    let message = |i: usize| {
        let mut msg = PublishMessage::build()
            .payload(chunks[i].to_vec().into())
            .header(KIND, kind)
            .header(NODE, node);
        if i + 1 < count {
            msg = msg.header(MORE, "1");
        }
        msg
    };
    // Unique per position and writer: a retry of this very message is de-duplicated, a
    // different writer's message at the same position is not mistaken for it.
    let id = |i: usize| format!("{node}-{kind}-{}", after + 1 + i as u64);

    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let sent = js
            .send_publish(
                subject.clone(),
                message(i)
                    .message_id(id(i))
                    .expected_last_sequence(after + i as u64),
            )
            .await;
        match sent {
            Ok(ack) => pending.push(ack),
            Err(_) => break,
        }
    }
    let mut last = after;
    let mut stored = 0;
    for ack in pending {
        match ack.await {
            Ok(ack) if ack.sequence == last + 1 => {
                last = ack.sequence;
                stored += 1;
            }
            Ok(ack) => bail!(
                "stream acknowledged sequence {} for a message expected at {}",
                ack.sequence,
                last + 1
            ),
            // Refused or unanswered: the careful path below tells a fence from our own
            // message stored with its answer lost.
            Err(_) => break,
        }
    }
    for i in stored..count {
        match append_one(js, &subject, message(i), &id(i), last, wait).await? {
            Some(seq) => last = seq,
            None if i == 0 => return Ok(None),
            None => bail!("the region's stream moved on in the middle of a {kind} group"),
        }
    }
    Ok(Some(last))
}

/// Writes the seed when the stream is empty (the first node to start; an append expecting an
/// empty stream, so two first nodes cannot both seed). `true` if this node wrote it.
pub async fn write_seed(
    js: &jetstream::Context,
    region: RegionId,
    node: &str,
    state: &[u8],
    wait: Duration,
) -> anyhow::Result<bool> {
    Ok(append(js, region, node, "seed", state, 0, wait)
        .await?
        .is_some())
}

/// Reads the seed (sequence 1 on): its bytes and the sequence of its last message. A message
/// of the seed not yet stored (another node writing it just now) is waited for up to `wait`.
pub async fn read_seed(
    stream: &jetstream::stream::Stream,
    wait: Duration,
) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut bytes = Vec::new();
    let mut seq = 1;
    loop {
        let m = retry(wait, &format!("reading the seed, message {seq}"), || {
            stream.get_raw_message(seq)
        })
        .await?;
        let header = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string());
        if header(KIND).as_deref() != Some("seed") {
            bail!("the region's stream does not begin with a seed (message {seq}): it was not written by dispatch, or was trimmed; see docs/cluster.md");
        }
        bytes.extend_from_slice(&m.payload);
        if header(MORE).is_none() {
            return Ok((bytes, seq));
        }
        seq += 1;
    }
}

/// The active engine's second home for its records: every batch the local writer fsynced is
/// appended to the region's stream after the last sequence this engine wrote. A failed append
/// fails the journal (nothing more is acknowledged): another engine fenced the stream, or
/// the cluster did not acknowledge within `wait`.
///
/// `replicate` runs on the journal's writer thread (not a runtime thread) and blocks it on
/// `runtime` until the cluster answered: it must never be called from inside the runtime.
pub struct StreamReplica {
    pub js: jetstream::Context,
    /// Where snapshots go (`None`: not kept in the cluster).
    pub snapshots: Option<jetstream::object_store::ObjectStore>,
    /// Uploads one at a time, in the order they were taken.
    pub uploading: Arc<tokio::sync::Mutex<()>>,
    /// The stream's creation time (ns since the epoch): a snapshot belongs to one history.
    pub stream_created_ns: i64,
    pub region: RegionId,
    pub node: String,
    pub runtime: tokio::runtime::Handle,
    /// How long one append retries a lost acknowledgement before the journal fails.
    pub wait: Duration,
    /// The last stream sequence this engine wrote (its fence, then its appends).
    pub last: Mutex<u64>,
}

impl Replica for StreamReplica {
    fn replicate(&self, frames: &[u8]) -> anyhow::Result<()> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let after = *last;
        let written = self.runtime.block_on(append(
            &self.js,
            self.region,
            &self.node,
            "records",
            frames,
            after,
            self.wait,
        ))?;
        match written {
            Some(seq) => {
                *last = seq;
                crate::metrics::cluster_appended(self.region, seq);
                super::set_applied(self.region, seq);
                Ok(())
            }
            None => Err(anyhow!(
                "fenced: another engine wrote to region {}'s stream after sequence {after}; \
                 this engine stepped down",
                self.region.0
            )),
        }
    }

    fn position(&self) -> u64 {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self, seq: u64, state: &[u8]) {
        let Some(store) = self.snapshots.clone() else {
            return;
        };
        // The state holds every record replicated up to the cut, and so the stream up to
        // `seq` (records replicated since are not in it: the snapshot was encoded meanwhile).
        let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER + state.len());
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&self.stream_created_ns.to_le_bytes());
        bytes.extend_from_slice(state);
        let (region, uploading) = (self.region, self.uploading.clone());
        self.runtime.spawn(async move {
            let _one = uploading.lock().await;
            match store.put(snapshot_name(region).as_str(), &mut bytes.as_slice()).await {
                Ok(_) => {
                    tracing::info!(region = region.0, seq, bytes = bytes.len(), "snapshot kept in the cluster");
                    crate::metrics::cluster_snapshot(region, seq);
                }
                Err(e) => tracing::warn!(error = %e, seq, "snapshot not kept in the cluster (a new standby replays more)"),
            }
        });
    }
}

/// The object-store bucket of the regions' snapshots.
pub const SNAPSHOT_BUCKET: &str = "dispatch_snapshots";

/// Bytes before the state in a snapshot object.
const SNAPSHOT_HEADER: usize = 16;

/// The object holding region `r`'s newest snapshot: the stream sequence it is at (u64 LE),
/// the creation time of the stream it belongs to (i64 LE, ns), then the engine state (JSON).
pub fn snapshot_name(region: RegionId) -> String {
    format!("region-{}", region.0)
}

/// The region's newest snapshot in the cluster, if any, and if it belongs to the stream created
/// at `stream_created_ns`: (stream sequence, state). Bounded by `wait`.
pub async fn read_snapshot(
    store: &jetstream::object_store::ObjectStore,
    region: RegionId,
    stream_created_ns: i64,
    wait: Duration,
) -> anyhow::Result<Option<(u64, Vec<u8>)>> {
    use jetstream::object_store::GetErrorKind;
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut object = match store.get(snapshot_name(region)).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("reading the region's snapshot"),
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .context("reading the region's snapshot")?;
        Ok(Some(bytes))
    };
    let Some(mut bytes) = tokio::time::timeout(wait, read)
        .await
        .context("reading the region's snapshot took too long")??
    else {
        return Ok(None);
    };
    if bytes.len() < SNAPSHOT_HEADER {
        bail!("the region's snapshot is {} bytes: damaged", bytes.len());
    }
    let word = |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().unwrap_or_default() };
    let seq = u64::from_le_bytes(word(0));
    let created = i64::from_le_bytes(word(8));
    if created != stream_created_ns {
        tracing::warn!(
            seq,
            "the cluster's snapshot belongs to another stream (one since deleted and created again): not used"
        );
        return Ok(None);
    }
    bytes.drain(..SNAPSHOT_HEADER);
    Ok(Some((seq, bytes)))
}

/// A warm engine following the region's stream: what a standby holds, ready to take over.
pub struct Follower {
    engine: Engine,
    replayer: Replayer,
    /// The last record read, applied once the next one shows whether it was decided by a
    /// Decisions record (`Replayer::apply_before`).
    held: Option<Record>,
    /// A group of messages not yet complete (`Dispatch-More`).
    partial: Vec<u8>,
    /// The sequence of the last stream message read (its records applied, but for the one
    /// held back and an unfinished group).
    pub applied: u64,
}

impl Follower {
    pub fn new(mut engine: Engine, applied: u64) -> Follower {
        // A snapshot keeps events decided but not yet released; their records are in the
        // stream, so they were released (or their socket died) (as `restore_engine`).
        while engine.poll_event().is_some() {}
        Follower {
            engine,
            replayer: Replayer::new(),
            held: None,
            partial: Vec::new(),
            applied,
        }
    }

    /// Applies stream message `seq`. Messages must come in order, each once.
    pub fn apply(
        &mut self,
        seq: u64,
        kind: Option<&str>,
        more: bool,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        if seq <= self.applied {
            // Delivered again (a consumer recreated after a server's failover): already read.
            return Ok(());
        }
        if seq != self.applied + 1 {
            bail!(
                "stream message {seq} out of order (expected {})",
                self.applied + 1
            );
        }
        self.applied = seq;
        match kind {
            Some("fence") => {
                if !self.partial.is_empty() {
                    tracing::warn!(
                        bytes = self.partial.len(),
                        "an unfinished group of records before a takeover is dropped (never acknowledged)"
                    );
                }
                self.partial.clear();
                Ok(())
            }
            Some("records") => {
                self.partial.extend_from_slice(payload);
                if more {
                    return Ok(());
                }
                let bytes = std::mem::take(&mut self.partial);
                let mut at = 0;
                loop {
                    match journal::decode_at(&bytes, at) {
                        Decoded::Record {
                            record,
                            next_offset,
                        } => {
                            self.push(record)
                                .with_context(|| format!("stream message {seq}"))?;
                            at = next_offset;
                        }
                        Decoded::End => return Ok(()),
                        other => bail!("stream message {seq} holds a damaged record: {other:?}"),
                    }
                }
            }
            other => bail!("stream message {seq} is of an unknown kind {other:?}"),
        }
    }

    fn push(&mut self, record: Record) -> anyhow::Result<()> {
        if let Some(prev) = self.held.take() {
            self.replayer
                .apply_before(&mut self.engine, &prev, Some(&record))
                .context("replaying a record from the stream")?;
            while self.engine.poll_event().is_some() {}
        }
        self.held = Some(record);
        Ok(())
    }

    /// The engine, with every record read applied: the takeover's starting point.
    pub fn finish(mut self) -> anyhow::Result<Engine> {
        if let Some(last) = self.held.take() {
            self.replayer
                .apply_before(&mut self.engine, &last, None)
                .context("replaying the stream's last record")?;
        }
        self.engine.set_decision_version(journal::DECISION_VERSION);
        while self.engine.poll_event().is_some() {}
        Ok(self.engine)
    }
}
