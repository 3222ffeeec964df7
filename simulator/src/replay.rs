//! `simulator replay`: a JSON-lines file of timed commands (alerts, responder moves, replies…)
//! fed through the same `SansIo` calls on the virtual clock, optionally paced to wall time.
//!
//! Format, one object per line (blank lines and lines starting with `#` are skipped):
//!
//! ```text
//! {"t_ms": 0,    "cmd": "location", "responder_id": "V00001", "position": {"lat": -30.03, "lon": -51.22}}
//! {"t_ms": 1500, "cmd": "alert", "alert_id": "a1", "kind": "fall", "service": null, "elder_id": "E00001",
//!  "position": null, "detected_at": 1767225601000, "device_id": "GW1"}
//! ```
//!
//! `t_ms` is milliseconds after the replay start (non-decreasing); the rest is a `Command` in
//! the journal's own serde form (`dispatch_core::command`), so any command can be replayed.

use crate::virtual_clock::{Agenda, SansIo, World};
use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::event::EventRecord;
use dispatch_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One line of a replay file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayLine {
    pub t_ms: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// Why a replay file could not be read. Lines count from 1.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("line {line}: t_ms {t_ms} goes back in time (previous line was at {previous})")]
    BackInTime {
        line: usize,
        t_ms: u64,
        previous: u64,
    },
}

/// Parses a whole replay file.
pub fn parse(text: &str) -> Result<Vec<ReplayLine>, ReplayError> {
    let mut out: Vec<ReplayLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let line: ReplayLine = serde_json::from_str(raw).map_err(|source| ReplayError::Json {
            line: i + 1,
            source,
        })?;
        if let Some(prev) = out.last() {
            if line.t_ms < prev.t_ms {
                return Err(ReplayError::BackInTime {
                    line: i + 1,
                    t_ms: line.t_ms,
                    previous: prev.t_ms,
                });
            }
        }
        out.push(line);
    }
    Ok(out)
}

/// The replayed file as a `World`: it only speaks, it does not react.
#[derive(Debug)]
pub struct ReplayWorld {
    agenda: Agenda<Command>,
    pub refusals: BTreeMap<String, u64>,
}

impl ReplayWorld {
    pub fn new(lines: Vec<ReplayLine>, start: Timestamp) -> ReplayWorld {
        let mut agenda = Agenda::default();
        for l in lines {
            agenda.push(start.plus_ms(l.t_ms), l.command);
        }
        ReplayWorld {
            agenda,
            refusals: BTreeMap::new(),
        }
    }
}

impl World for ReplayWorld {
    fn next_at(&self) -> Option<Timestamp> {
        self.agenda.next_at()
    }
    fn pop_command(&mut self, now: Timestamp) -> Option<Command> {
        self.agenda.pop_due(now).map(|(_, c)| c)
    }
    fn on_reply(&mut self, _now: Timestamp, _cmd: &Command, result: &Result<Reply, CommandError>) {
        if let Err(e) = result {
            *self.refusals.entry(e.code().to_string()).or_default() += 1;
        }
    }
    fn on_event(&mut self, _now: Timestamp, _record: &EventRecord) {}
    fn is_quiet(&self) -> bool {
        self.agenda.is_empty()
    }
}

/// Paces a dispatcher to wall time: virtual `now` waits until `start + (now - t0) / speed` of
/// wall time has passed. `speed` 1.0 is real time; larger is faster.
#[derive(Debug)]
pub struct Paced<D> {
    pub inner: D,
    t0: Timestamp,
    wall0: Instant,
    speed: f64,
}

impl<D> Paced<D> {
    pub fn new(inner: D, t0: Timestamp, speed: f64) -> Paced<D> {
        Paced {
            inner,
            t0,
            wall0: Instant::now(),
            speed,
        }
    }

    fn wait_for(&self, now: Timestamp) {
        let due = Duration::from_secs_f64(now.ms_since(self.t0) as f64 / 1000.0 / self.speed);
        if let Some(left) = due.checked_sub(self.wall0.elapsed()) {
            std::thread::sleep(left);
        }
    }
}

impl<D: SansIo> SansIo for Paced<D> {
    fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError> {
        self.wait_for(now);
        self.inner.handle_command(now, cmd)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        self.wait_for(now);
        self.inner.handle_timeout(now)
    }
    fn poll_event(&mut self) -> Option<EventRecord> {
        self.inner.poll_event()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// Records every command a dispatcher is given, as replay lines relative to `t0`, so a
/// simulated run can be written out and replayed (replay must reproduce it event for event).
#[derive(Debug)]
pub struct Recording<D> {
    pub inner: D,
    t0: Timestamp,
    pub lines: Vec<ReplayLine>,
}

impl<D> Recording<D> {
    pub fn new(inner: D, t0: Timestamp) -> Recording<D> {
        Recording {
            inner,
            t0,
            lines: Vec::new(),
        }
    }
}

impl<D: SansIo> SansIo for Recording<D> {
    fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError> {
        self.lines.push(ReplayLine {
            t_ms: now.ms_since(self.t0),
            command: cmd.clone(),
        });
        self.inner.handle_command(now, cmd)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        self.inner.handle_timeout(now)
    }
    fn poll_event(&mut self) -> Option<EventRecord> {
        self.inner.poll_event()
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.inner.poll_timeout()
    }
}

/// The JSON-lines text of `lines`.
pub fn to_jsonl(lines: &[ReplayLine]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&serde_json::to_string(l).expect("commands are plain data"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_names_bad_lines() {
        let text = r#"
# a comment
{"t_ms": 0, "cmd": "location", "responder_id": "V1", "position": {"lat": -30.03, "lon": -51.22}}
{"t_ms": 1500, "cmd": "check_in", "elder_id": "E1", "device_id": "GW1"}
"#;
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(matches!(lines[1].command, Command::CheckIn { .. }));
        let round = serde_json::to_string(&lines[0]).unwrap();
        assert_eq!(parse(&round).unwrap()[0], lines[0]);

        let err = parse("{\"t_ms\": 5, \"cmd\": \"check_in\", \"elder_id\": \"E1\", \"device_id\": \"GW1\"}\n{\"t_ms\": 1}")
            .unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        let err = parse(
            "{\"t_ms\": 5, \"cmd\": \"check_in\", \"elder_id\": \"E1\", \"device_id\": \"GW1\"}\n\
             {\"t_ms\": 4, \"cmd\": \"check_in\", \"elder_id\": \"E1\", \"device_id\": \"GW1\"}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: t_ms 4 goes back in time (previous line was at 5)"
        );
    }
}
