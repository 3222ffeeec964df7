//! Recovery at open: the newest valid snapshot, then every record after it. A torn tail is cut
//! and kept aside (`.torn`); a corrupt record with valid records after it is refused, naming
//! it, unless the operator asked to recover past it; a journal shorter than the durable-LSN
//! marker is refused.

use super::snapshot::*;
use super::storage::Storage;
use super::writer::Tail;
use super::*;
use anyhow::{bail, Context};
use dispatch_core::journal::{self, Corruption, ScanEnd, FILE_HEADER_LEN};
use std::path::Path;

/// Sets `bytes[offset..]` of `segment` aside in a `.torn` file next to it and cuts the segment.
pub(super) fn cut(
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

pub(super) fn describe(reason: &Corruption) -> String {
    reason.to_string()
}

/// Recovery: newest valid snapshot, then every record after it; damaged tails cut.
pub(super) fn recover(
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
