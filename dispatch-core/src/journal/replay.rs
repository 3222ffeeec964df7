//! Replay: feeds journaled records to an engine and checks the events it regenerates against
//! the journaled ones (strictly within one decision version, ignoring reason text across).

use super::*;

/// Replay went somewhere live never went.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "journaled command at {now} was refused on replay ({error}); journal and engine disagree"
    )]
    Refused { now: Timestamp, error: CommandError },
    #[error(
        "replay produced events {replayed} but the journal recorded {journaled} \
         (decision version {decision_version}, {compared}); first difference: {difference}"
    )]
    Diverged {
        journaled: String,
        replayed: String,
        /// The version that wrote the record.
        decision_version: u32,
        /// "compared strictly" or "compared with reason texts ignored".
        compared: &'static str,
        /// The first event that differs, both ways (shortened).
        difference: String,
    },
}

/// Feeds records to a [`SansIo`] engine and checks regenerated events against the journaled
/// Decisions.
#[derive(Debug, Default)]
pub struct Replayer {
    /// Events the last Command/Timeout regenerated, waiting for their Decisions record.
    pending: Vec<EventRecord>,
    /// Whether `pending` belongs to a record replayed in this run (a Decisions record right
    /// after a snapshot belongs to a command the snapshot already holds).
    armed: bool,
    /// Decisions records compared equal (strictly, or reasons aside for another version).
    pub verified: u64,
    /// Of those, records of another decision version, compared with reason texts ignored.
    pub verified_ignoring_reasons: u64,
    pub commands: u64,
    pub timeouts: u64,
    /// The decision version last set on the target (`None`: the target's own, the current).
    rules: Option<u32>,
}

impl Replayer {
    pub fn new() -> Replayer {
        Replayer::default()
    }

    pub fn apply<T: SansIo>(&mut self, target: &mut T, record: &Record) -> Result<(), ReplayError> {
        self.apply_before(target, record, None)
    }

    /// Like [`Replayer::apply`], knowing the record that follows: when it is the Decisions
    /// record of this input, the input is decided by the rules of the version that wrote it
    /// (a crash tail of the previous release replays by that release's rules, then this
    /// release's records by today's). Callers replaying a tail should use this.
    pub fn apply_before<T: SansIo>(
        &mut self,
        target: &mut T,
        record: &Record,
        next: Option<&Record>,
    ) -> Result<(), ReplayError> {
        let decided_by = match next {
            Some(Record {
                entry: Entry::Decisions {
                    decision_version, ..
                },
                ..
            }) => Some(*decision_version),
            _ => None,
        };
        if let Some(v) = decided_by {
            if matches!(record.entry, Entry::Command { .. } | Entry::Timeout { .. }) {
                target.set_decision_version(v);
                self.rules = Some(v);
            }
        }
        match &record.entry {
            Entry::Command { now, command } => {
                self.pending.clear();
                // A roster change with no events after it predates the events for roster
                // changes (see `ROSTER_EVENTS_SINCE`): decided as it was, without them.
                let silent = decided_by.is_none() && command.is_roster_change();
                if silent {
                    target.set_decision_version(ROSTER_EVENTS_SINCE - 1);
                }
                let done = target.handle_command(*now, command.clone());
                if silent {
                    target.set_decision_version(self.rules.unwrap_or(DECISION_VERSION));
                }
                done.map_err(|error| ReplayError::Refused { now: *now, error })?;
                self.commands += 1;
                self.drain(target);
            }
            Entry::Timeout { now } => {
                self.pending.clear();
                target.handle_timeout(*now);
                self.timeouts += 1;
                self.drain(target);
            }
            Entry::Decisions {
                events,
                decision_version,
                ..
            } => {
                if self.armed {
                    let strict = *decision_version == DECISION_VERSION;
                    let same = if strict {
                        &self.pending == events
                    } else {
                        self.pending.len() == events.len()
                            && self
                                .pending
                                .iter()
                                .zip(events)
                                .all(|(a, b)| same_ignoring_reasons(a, b))
                    };
                    if !same {
                        return Err(ReplayError::Diverged {
                            journaled: seq_range(events),
                            replayed: seq_range(&self.pending),
                            decision_version: *decision_version,
                            compared: if strict {
                                "compared strictly"
                            } else {
                                "compared with reason texts ignored"
                            },
                            difference: first_difference(events, &self.pending, strict),
                        });
                    }
                    self.verified += 1;
                    if !strict {
                        self.verified_ignoring_reasons += 1;
                    }
                }
                self.pending.clear();
                self.armed = false;
            }
        }
        Ok(())
    }

    fn drain<T: SansIo>(&mut self, target: &mut T) {
        while let Some(e) = target.poll_event() {
            self.pending.push(e);
        }
        self.armed = true;
    }
}

/// The free-text reason of an event, if it has one. `OfferWithdrawn`'s reason is a closed
/// enum, part of the decision, and stays compared. Exhaustive on purpose: a new event kind
/// must say whether it carries wording.
pub fn reason_text_mut(event: &mut Event) -> Option<&mut String> {
    use Event::*;
    match event {
        IncidentOpened { reason, .. }
        | OfferSent { reason, .. }
        | Assigned { reason, .. }
        | NoResponderAvailable { reason, .. }
        | Escalated { reason, .. }
        | IncidentResolved { reason, .. }
        | IncidentCancelled { reason, .. }
        | Unassigned { reason, .. } => Some(reason),
        AlertJoined { .. }
        | OfferDeclined { .. }
        | OfferExpired { .. }
        | OfferWithdrawn { .. }
        | SlaBreached { .. }
        | ResponderArrived { .. }
        | ResponderMoved { .. }
        | ResponderAvailability { .. }
        | TimeBankCredited { .. }
        | CheckedIn { .. }
        | RosterChanged { .. }
        | TimeBankRedeemed { .. }
        | RoadClosed { .. }
        | RoadReopened { .. }
        | CareVisitMissed { .. }
        | CareVisitDone { .. } => None,
    }
}

/// Equal in everything but free-text reasons: seq, time, kind and every other field.
fn same_ignoring_reasons(a: &EventRecord, b: &EventRecord) -> bool {
    if a.seq != b.seq || a.at != b.at {
        return false;
    }
    let (mut x, mut y) = (a.event.clone(), b.event.clone());
    if let Some(r) = reason_text_mut(&mut x) {
        r.clear();
    }
    if let Some(r) = reason_text_mut(&mut y) {
        r.clear();
    }
    x == y
}

fn first_difference(journaled: &[EventRecord], replayed: &[EventRecord], strict: bool) -> String {
    // An event as short JSON: routes shown by their length, at most 400 characters.
    let show = |e: Option<&EventRecord>| match e {
        None => "nothing".to_string(),
        Some(e) => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(route) = v.pointer_mut("/event/route") {
                let n = route.as_array().map_or(0, Vec::len);
                *route = serde_json::Value::String(format!("<{n} points>"));
            }
            let mut text = v.to_string();
            if text.len() > 400 {
                let mut cut = 400;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push('…');
            }
            text
        }
    };
    let n = journaled.len().max(replayed.len());
    let Some(i) = (0..n).find(|&i| match (journaled.get(i), replayed.get(i)) {
        (Some(a), Some(b)) => {
            if strict {
                a != b
            } else {
                !same_ignoring_reasons(a, b)
            }
        }
        _ => true,
    }) else {
        return "none".into();
    };
    let (a, b) = (journaled.get(i), replayed.get(i));
    if let (Some(a), Some(b)) = (a, b) {
        if same_ignoring_reasons(a, b) {
            let (mut x, mut y) = (a.event.clone(), b.event.clone());
            let reason = |e: &mut Event| reason_text_mut(e).map(|r| r.clone()).unwrap_or_default();
            return format!(
                "event {} of the record (seq {}) differs only in its reason: journaled {:?}, replayed {:?}",
                i + 1,
                a.seq,
                reason(&mut x),
                reason(&mut y)
            );
        }
    }
    format!(
        "event {} of the record: journaled {}, replayed {}",
        i + 1,
        show(a),
        show(b)
    )
}

fn seq_range(events: &[EventRecord]) -> String {
    match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!("seq {}..={} ({} events)", a.seq, b.seq, events.len()),
        _ => "none".into(),
    }
}
