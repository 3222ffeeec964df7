//! Time as the engine sees it: integer milliseconds, always passed in, never read from a clock.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A moment, in milliseconds since the Unix epoch (UTC).
///
/// The core never reads a clock: every `handle_*` call is given `now`, so the server's wall
/// clock, the simulator's virtual clock and journal replay all drive the same code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The moment `ms` milliseconds after this one.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms.min(i64::MAX as u64) as i64))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub fn ms_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Timestamp(10).plus_ms(5), Timestamp(15));
        assert_eq!(Timestamp(i64::MAX - 1).plus_ms(10), Timestamp(i64::MAX));
        assert_eq!(Timestamp(20).ms_since(Timestamp(5)), 15);
        assert_eq!(Timestamp(5).ms_since(Timestamp(20)), 0);
    }
}
