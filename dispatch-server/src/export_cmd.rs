//! `dispatch export --data-dir DIR`: every incident with its full timeline, as JSON lines.
//!
//! The timeline comes from the journal's Decisions records (the events each command caused,
//! with their reasons) in the archive and the live segments, so export needs neither the road
//! network nor a running engine, and it sees incidents that compaction took out of the live
//! journal. It only reads: a damaged record is reported and skipped, never cut.

use crate::journal::list_segments;
use crate::journal::storage::{DiskStorage, Storage};
use anyhow::Context;
use dispatch_core::event::EventRecord;
use dispatch_core::ids::IncidentId;
use dispatch_core::journal::{self, Decoded, Entry, FILE_HEADER_LEN};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The flags of `dispatch export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The server's data directory (journal segments, snapshots, archive/).
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// One output line.
#[derive(Debug, Serialize)]
struct IncidentLine<'a> {
    incident_id: IncidentId,
    /// When the first and last events of the timeline happened (ms since the epoch).
    opened_at: i64,
    last_event_at: i64,
    timeline: &'a [EventRecord],
}

/// What an export read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub segments: usize,
    pub records: u64,
    pub incidents: usize,
    /// Damaged spots skipped, as "file at byte N: reason".
    pub damaged: Vec<String>,
}

/// Runs the command, writing to stdout.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = export(&DiskStorage, &args.data_dir, &mut out)?;
    out.flush().context("write to stdout")?;
    for d in &summary.damaged {
        tracing::warn!(damage = %d, "export skipped a damaged journal record");
    }
    eprintln!(
        "exported {} incidents from {} records in {} segments{}",
        summary.incidents,
        summary.records,
        summary.segments,
        if summary.damaged.is_empty() {
            String::new()
        } else {
            format!(" ({} damaged spots skipped)", summary.damaged.len())
        }
    );
    Ok(())
}

/// Writes one JSON line per incident, ordered by incident id, with every event about it.
pub fn export(
    st: &dyn Storage,
    data_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<ExportSummary> {
    let segments = list_segments(st, data_dir)?;
    if segments.is_empty() {
        anyhow::bail!(
            "no journal segments in {} (is it a dispatch data directory?)",
            data_dir.display()
        );
    }
    let mut summary = ExportSummary {
        segments: segments.len(),
        ..ExportSummary::default()
    };
    let mut timelines: BTreeMap<IncidentId, Vec<EventRecord>> = BTreeMap::new();
    let mut last_seq = 0;
    for (_, path, _) in &segments {
        let bytes = st
            .read(path)
            .with_context(|| format!("read {}", path.display()))?;
        let mut offset = match journal::decode_header(&bytes) {
            Decoded::End => FILE_HEADER_LEN,
            other => {
                summary
                    .damaged
                    .push(format!("{} header: {other:?}", path.display()));
                FILE_HEADER_LEN
            }
        };
        loop {
            match journal::decode_at(&bytes, offset) {
                Decoded::Record {
                    record,
                    next_offset,
                } => {
                    summary.records += 1;
                    offset = next_offset;
                    if let Entry::Decisions { events, .. } = record.entry {
                        for e in events {
                            // The same events can appear twice only if segments overlap (an
                            // operator copied one back): keep the first.
                            if e.seq <= last_seq {
                                continue;
                            }
                            last_seq = e.seq;
                            if let Some(id) = e.event.incident_id() {
                                timelines.entry(id).or_default().push(e);
                            }
                        }
                    }
                }
                Decoded::End => break,
                Decoded::Torn { offset: at } => {
                    summary
                        .damaged
                        .push(format!("{} at byte {at}: torn tail", path.display()));
                    break;
                }
                Decoded::Corrupt { offset: at, reason } => {
                    summary
                        .damaged
                        .push(format!("{} at byte {at}: {reason}", path.display()));
                    match journal::next_valid_frame(&bytes, at + 1) {
                        Some(next) => offset = next,
                        None => break,
                    }
                }
            }
        }
    }
    summary.incidents = timelines.len();
    for (id, timeline) in &timelines {
        let line = IncidentLine {
            incident_id: *id,
            opened_at: timeline.first().map_or(0, |e| e.at.0),
            last_event_at: timeline.last().map_or(0, |e| e.at.0),
            timeline,
        };
        serde_json::to_writer(&mut *out, &line).context("write export line")?;
        out.write_all(b"\n").context("write export line")?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::storage::SimStorage;
    use crate::journal::{Journal, JournalOptions};
    use dispatch_core::event::Event;
    use dispatch_core::ids::{AlertId, ElderId};
    use dispatch_core::journal::{Record, RegionId};
    use dispatch_core::time::Timestamp;
    use std::sync::Arc;

    fn opened(seq: u64, incident: u64) -> EventRecord {
        EventRecord {
            seq,
            at: Timestamp(seq as i64 * 1000),
            event: Event::AlertJoined {
                incident_id: IncidentId(incident),
                alert_id: AlertId::from(format!("a{seq}")),
            },
        }
    }

    #[test]
    fn exports_every_incident_across_archive_and_live_segments() {
        let st = SimStorage::new();
        let dir = PathBuf::from("/d");
        let opts = JournalOptions {
            snapshot_every: 3,
            ..JournalOptions::default()
        };
        let (j, _) = Journal::open_with(Arc::new(st.clone()), &dir, opts).expect("open");
        let mut seq = 0;
        for step in 0..10u64 {
            seq += 1;
            let mut events = vec![opened(seq, step % 3)];
            seq += 1;
            events.push(EventRecord {
                seq,
                at: Timestamp(0),
                event: Event::CheckedIn {
                    elder_id: ElderId::from("e"),
                },
            });
            j.append(&Record::timeout(RegionId(0), Timestamp(step as i64)))
                .expect("append");
            let lsn = j
                .append(&Record::decisions(RegionId(0), events).expect("events"))
                .expect("append");
            if j.snapshot_due() {
                j.snapshot(step).expect("snapshot");
                j.wait_snapshot_blocking(lsn).expect("snapshot");
            }
        }
        j.close().expect("close");
        assert!(!st.list(&dir.join("archive")).expect("archive").is_empty());

        let mut out = Vec::new();
        let summary = export(&st, &dir, &mut out).expect("export");
        assert_eq!(summary.records, 20);
        assert_eq!(summary.incidents, 3);
        assert!(summary.damaged.is_empty());
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let lens: Vec<usize> = lines
            .iter()
            .map(|l| l["timeline"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(lens, vec![4, 3, 3], "steps 0,3,6,9 / 1,4,7 / 2,5,8");
        assert_eq!(lines[0]["incident_id"], 0);
        assert_eq!(lines[2]["timeline"][0]["seq"], 5);
    }
}
