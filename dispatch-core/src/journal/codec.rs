//! The framing: encode a record, decode one at an offset, scan a segment into its valid
//! records and how it ends (clean, torn tail, corrupt middle).

use super::*;

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
