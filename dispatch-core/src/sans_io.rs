//! The sans-IO calls of DESIGN §2.1 as one trait, so the server's engine task, the
//! simulator's virtual clock and journal replay drive an engine through exactly the same calls
//! (and tests can put a scripted stand-in in its place).

use crate::command::{Command, Reply};
use crate::engine::Engine;
use crate::error::CommandError;
use crate::event::EventRecord;
use crate::time::Timestamp;

/// Something driven by values: commands and timeouts in, numbered events out. Time is always
/// an argument.
pub trait SansIo {
    /// One command at `now`; an `Err` changes nothing.
    fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError>;
    /// Fire every timer due at or before `now`.
    fn handle_timeout(&mut self, now: Timestamp);
    /// The next event decided, in `seq` order.
    fn poll_event(&mut self) -> Option<EventRecord>;
    /// When `handle_timeout` next has work, if ever.
    fn poll_timeout(&self) -> Option<Timestamp>;
    /// Replay only: decide the next input by the rules of this decision version (the one
    /// that wrote its journaled decisions). Live engines decide by the current rules.
    fn set_decision_version(&mut self, _version: u32) {}
}

impl SansIo for Engine {
    fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Reply, CommandError> {
        Engine::handle_command(self, now, cmd)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        Engine::handle_timeout(self, now)
    }
    fn poll_event(&mut self) -> Option<EventRecord> {
        Engine::poll_event(self)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Engine::poll_timeout(self)
    }
    fn set_decision_version(&mut self, version: u32) {
        Engine::set_decision_version(self, version)
    }
}
