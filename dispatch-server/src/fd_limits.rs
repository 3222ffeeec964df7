//! File descriptors: at start the soft `RLIMIT_NOFILE` is raised to the hard limit where the
//! system allows it, and the connection cap is sized below it, leaving `reserve` descriptors
//! for the journal, snapshots, the map and the runtime. Without this, idle connections reach
//! the process limit first and a segment rotation fails with EMFILE.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// What was found and decided, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft limit before and after raising it (`None`: unlimited).
    pub soft_before: Option<u64>,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// The connection cap in force: `min(requested, soft − reserve)`, at least 1.
    pub max_connections: usize,
}

/// Raises the soft limit to the hard one (best effort) and sizes the connection cap.
pub fn raise_and_size(requested: usize, reserve: usize) -> FdBudget {
    let before = getrlimit(Resource::Nofile);
    let mut soft = before.current;
    if before.current != before.maximum {
        let want = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, want) {
            Ok(()) => soft = getrlimit(Resource::Nofile).current,
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file soft limit"),
        }
    }
    let max_connections = cap(requested, soft, reserve);
    FdBudget {
        soft_before: before.current,
        soft,
        hard: before.maximum,
        max_connections,
    }
}

/// `min(requested, soft − reserve)`, at least 1.
pub fn cap(requested: usize, soft: Option<u64>, reserve: usize) -> usize {
    let room = soft.map_or(usize::MAX, |s| {
        usize::try_from(s)
            .unwrap_or(usize::MAX)
            .saturating_sub(reserve)
    });
    requested.min(room).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_limit_by_the_reserve() {
        assert_eq!(cap(20_000, Some(1024), 64), 960);
        assert_eq!(cap(100, Some(1024), 64), 100);
        assert_eq!(cap(100, None, 64), 100);
        assert_eq!(cap(100, Some(10), 64), 1);
    }

    #[test]
    fn raising_never_lowers_the_soft_limit() {
        let before = getrlimit(Resource::Nofile).current;
        let b = raise_and_size(1_000_000, 64);
        assert!(
            b.soft.unwrap_or(u64::MAX) >= before.unwrap_or(u64::MAX),
            "{b:?}"
        );
        assert!(b.max_connections <= 1_000_000);
    }
}
