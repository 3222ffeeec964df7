//! The virtual clock (the quinn-proto test model): time jumps straight to the next wake-up,
//! the earliest of the engine's `poll_timeout()` and the world's next scheduled action, so an
//! eight-hour scenario runs in seconds and identically every time.

use dispatch_core::command::{Command, Reply};
use dispatch_core::error::CommandError;
use dispatch_core::event::EventRecord;
use dispatch_core::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use dispatch_core::sans_io::SansIo;

/// Whoever acts on the engine from outside: devices, responders, a replayed file.
pub trait World {
    /// When the next action is due, if any.
    fn next_at(&self) -> Option<Timestamp>;
    /// The command due at `now` (the earliest one), or `None` if the action turned out to be
    /// stale (for example a reply to an offer that was withdrawn meanwhile).
    fn pop_command(&mut self, now: Timestamp) -> Option<Command>;
    /// What the engine said to the last command (so the world can follow up on success).
    fn on_reply(&mut self, now: Timestamp, cmd: &Command, result: &Result<Reply, CommandError>);
    /// One event the engine emitted.
    fn on_event(&mut self, now: Timestamp, record: &EventRecord);
    /// The world has nothing left to wait for (no open incidents, no pending travel).
    fn is_quiet(&self) -> bool;
}

/// A time-ordered queue of actions; ties keep insertion order, so runs are deterministic.
#[derive(Debug)]
pub struct Agenda<A> {
    heap: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    slots: Vec<Option<A>>,
    free: Vec<usize>,
    seq: u64,
}

impl<A> Default for Agenda<A> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<A> Agenda<A> {
    pub fn push(&mut self, at: Timestamp, action: A) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(action);
                i
            }
            None => {
                self.slots.push(Some(action));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((at, self.seq, slot)));
        self.seq += 1;
    }

    pub fn next_at(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The earliest action if it is due at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, A)> {
        let Reverse((at, _, slot)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.free.push(slot);
        self.slots[slot].take().map(|a| (at, a))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// What a drive did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriveStats {
    pub commands: u64,
    pub refused: u64,
    pub timeouts: u64,
    pub events: u64,
    /// Where virtual time stopped.
    pub stopped_at: Timestamp,
}

/// Why a drive stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriveError {
    #[error(
        "the engine asked to be woken at {at} again and again without progress ({times} times)"
    )]
    TimerStuck { at: Timestamp, times: u32 },
}

/// Runs until nothing is due before `until`, or until `quiet_after` has passed and the world is
/// quiet. Events go to the world first, then to `observe` (the KPI collector).
pub fn drive<D: SansIo, W: World>(
    engine: &mut D,
    world: &mut W,
    start: Timestamp,
    quiet_after: Timestamp,
    until: Timestamp,
    mut observe: impl FnMut(&EventRecord),
) -> Result<DriveStats, DriveError> {
    let mut stats = DriveStats {
        stopped_at: start,
        ..DriveStats::default()
    };
    let mut now = start;
    let mut same_timer = (Timestamp(i64::MIN), 0u32);
    loop {
        if now >= quiet_after && world.is_quiet() {
            break;
        }
        let engine_at = engine.poll_timeout();
        let world_at = world.next_at();
        let next = match (engine_at, world_at) {
            (Some(e), Some(w)) => e.min(w),
            (Some(e), None) => e,
            (None, Some(w)) => w,
            (None, None) => break,
        };
        if next > until {
            break;
        }
        // A timer in the past fires now: virtual time never runs backwards.
        now = now.max(next);
        // Engine timers win ties, so an offer that expires at the very moment a reply is due
        // has expired (the conservative reading).
        if engine_at.is_some_and(|e| e <= now) {
            let at = engine_at.unwrap_or(now);
            if same_timer.0 == at {
                same_timer.1 += 1;
                if same_timer.1 > 10_000 {
                    return Err(DriveError::TimerStuck {
                        at,
                        times: same_timer.1,
                    });
                }
            } else {
                same_timer = (at, 1);
            }
            engine.handle_timeout(now);
            stats.timeouts += 1;
        } else if let Some(cmd) = world.pop_command(now) {
            let result = engine.handle_command(now, cmd.clone());
            stats.commands += 1;
            if result.is_err() {
                stats.refused += 1;
            }
            world.on_reply(now, &cmd, &result);
        }
        while let Some(record) = engine.poll_event() {
            stats.events += 1;
            world.on_event(now, &record);
            observe(&record);
        }
    }
    stats.stopped_at = now;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_core::event::Event;
    use dispatch_core::ids::ElderId;

    /// A stand-in that records what it was called with and wakes up at fixed times.
    struct Scripted {
        timers: Vec<Timestamp>,
        calls: Vec<(Timestamp, &'static str)>,
        out: Vec<EventRecord>,
    }

    impl SansIo for Scripted {
        fn handle_command(&mut self, now: Timestamp, _cmd: Command) -> Result<Reply, CommandError> {
            self.calls.push((now, "command"));
            self.out.push(EventRecord {
                seq: self.calls.len() as u64,
                at: now,
                event: Event::CheckedIn {
                    elder_id: ElderId::from("E1"),
                },
            });
            Ok(Reply::Done)
        }
        fn handle_timeout(&mut self, now: Timestamp) {
            self.calls.push((now, "timeout"));
            self.timers.retain(|t| *t > now);
        }
        fn poll_event(&mut self) -> Option<EventRecord> {
            self.out.pop()
        }
        fn poll_timeout(&self) -> Option<Timestamp> {
            self.timers.iter().min().copied()
        }
    }

    struct Checkins(Agenda<()>, usize);

    impl World for Checkins {
        fn next_at(&self) -> Option<Timestamp> {
            self.0.next_at()
        }
        fn pop_command(&mut self, now: Timestamp) -> Option<Command> {
            self.0.pop_due(now).map(|_| Command::CheckIn {
                elder_id: ElderId::from("E1"),
                device_id: dispatch_core::ids::DeviceId::from("GW1"),
            })
        }
        fn on_reply(&mut self, _: Timestamp, _: &Command, _: &Result<Reply, CommandError>) {}
        fn on_event(&mut self, _: Timestamp, _: &EventRecord) {
            self.1 += 1;
        }
        fn is_quiet(&self) -> bool {
            self.0.is_empty()
        }
    }

    #[test]
    fn time_jumps_to_the_earliest_wakeup_and_timers_win_ties() {
        let mut engine = Scripted {
            timers: vec![Timestamp(30), Timestamp(10), Timestamp(500)],
            calls: vec![],
            out: vec![],
        };
        let mut agenda = Agenda::default();
        agenda.push(Timestamp(20), ());
        agenda.push(Timestamp(10), ());
        let mut world = Checkins(agenda, 0);
        let mut seen = 0;
        let stats = drive(
            &mut engine,
            &mut world,
            Timestamp(0),
            Timestamp(40),
            Timestamp(100),
            |_| seen += 1,
        )
        .unwrap();
        assert_eq!(
            engine.calls,
            vec![
                (Timestamp(10), "timeout"),
                (Timestamp(10), "command"),
                (Timestamp(20), "command"),
                (Timestamp(30), "timeout")
            ]
        );
        // The 500 ms timer lies beyond `until`, so the run stops after the 30 ms one.
        assert_eq!((stats.commands, stats.timeouts, stats.events), (2, 2, 2));
        assert_eq!((seen, world.1), (2, 2));
    }

    #[test]
    fn the_run_stops_at_until_even_with_timers_pending() {
        let mut engine = Scripted {
            timers: vec![Timestamp(50), Timestamp(150)],
            calls: vec![],
            out: vec![],
        };
        let mut world = Checkins(Agenda::default(), 0);
        // Never quiet before 1000, so only `until` stops it.
        let stats = drive(
            &mut engine,
            &mut world,
            Timestamp(0),
            Timestamp(1000),
            Timestamp(100),
            |_| {},
        )
        .unwrap();
        assert_eq!(engine.calls, vec![(Timestamp(50), "timeout")]);
        assert_eq!(stats.stopped_at, Timestamp(50));
    }

    #[test]
    fn agenda_keeps_insertion_order_on_ties() {
        let mut a = Agenda::default();
        a.push(Timestamp(5), "b");
        a.push(Timestamp(1), "a");
        a.push(Timestamp(5), "c");
        assert_eq!(a.pop_due(Timestamp(0)), None);
        let order: Vec<&str> =
            std::iter::from_fn(|| a.pop_due(Timestamp(9)).map(|x| x.1)).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
        assert!(a.is_empty());
    }
}
