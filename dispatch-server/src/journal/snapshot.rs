//! The data directory's files: segment and snapshot names, atomic writes, snapshots, the
//! durable-LSN marker, and compaction of segments a snapshot made unnecessary into `archive/`.

use super::storage::Storage;
use super::*;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

pub fn segment_name(first_lsn: Lsn) -> String {
    format!("segment-{first_lsn:020}.log")
}

pub(super) fn snapshot_name(lsn: Lsn) -> String {
    format!("snapshot-{lsn:020}.snap")
}

pub(super) fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
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
pub(super) fn write_atomically(
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
pub(super) fn write_snapshot(
    st: &dyn Storage,
    dir: &Path,
    lsn: Lsn,
    state: &[u8],
) -> anyhow::Result<()> {
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
pub(super) fn read_snapshot(
    st: &dyn Storage,
    path: &Path,
    lsn: Lsn,
) -> Result<SnapshotFile, String> {
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
pub(super) fn write_marker(st: &dyn Storage, dir: &Path, lsn: Lsn) -> anyhow::Result<()> {
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
pub(super) fn check_marker(
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
pub(super) fn compact(st: &dyn Storage, dir: &Path, lsn: Lsn) -> anyhow::Result<()> {
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
        let name = snapshot_name(*old);
        if *old == 0 {
            // The seed is where the history starts (`replay_all`): archived, never removed.
            st.rename(&dir.join(&name), &archive.join(&name))
                .with_context(|| format!("archive the seed snapshot {name}"))?;
            moved = true;
        } else {
            st.remove(&dir.join(&name))
                .with_context(|| format!("remove old snapshot {old}"))?;
        }
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

/// Seeds an empty data directory with `state` as its snapshot at LSN 0, durably, so that the
/// directory holds its own starting point (the roster it began with) from the first record
/// on. Does nothing and returns `false` when the directory already holds a segment, a snapshot
/// or a marker: a directory that has started once is never seeded again.
pub fn seed<T: serde::Serialize>(st: &dyn Storage, dir: &Path, state: &T) -> anyhow::Result<bool> {
    st.create_dir_all(dir)
        .with_context(|| format!("create data dir {}", dir.display()))?;
    if !list_segments(st, dir)?.is_empty() {
        return Ok(false);
    }
    let names = st
        .list(dir)
        .with_context(|| format!("list {}", dir.display()))?;
    if names
        .iter()
        .any(|n| parse_numbered(n, "snapshot-", ".snap").is_some() || n == MARKER_FILE)
    {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(state).context("encoding the seed state")?;
    write_snapshot(st, dir, 0, &bytes)?;
    Ok(true)
}

/// The seed snapshot (LSN 0) of a directory, live or archived, if it was seeded.
pub(crate) fn read_seed(st: &dyn Storage, dir: &Path) -> Option<SnapshotFile> {
    [dir.to_path_buf(), dir.join(ARCHIVE_DIR)]
        .iter()
        .map(|d| d.join(snapshot_name(0)))
        .find_map(|path| read_snapshot(st, &path, 0).ok())
}

/// The newest valid snapshot of a directory, read only: the live ones newest first, else the
/// archived seed. A damaged one is skipped, as recovery skips it.
pub(crate) fn newest_snapshot(
    st: &dyn Storage,
    dir: &Path,
) -> anyhow::Result<Option<SnapshotFile>> {
    let names = st
        .list(dir)
        .with_context(|| format!("list {}", dir.display()))?;
    let mut lsns: Vec<Lsn> = names
        .iter()
        .filter_map(|n| parse_numbered(n, "snapshot-", ".snap"))
        .collect();
    lsns.sort_unstable_by(|a, b| b.cmp(a));
    Ok(lsns
        .into_iter()
        .find_map(|lsn| read_snapshot(st, &dir.join(snapshot_name(lsn)), lsn).ok())
        .or_else(|| read_seed(st, dir)))
}
