//! The disk budget: free space in the data directory, checked by `/healthz` on every request
//! and every 10 s by a watcher that sets the `dispatch_disk_free_bytes` gauge and logs when
//! the space crosses the threshold (either way). Below the threshold the service still
//! serves (`/healthz` says `degraded`, 200); at zero the journal refuses what it cannot store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the watcher looks (the gauge and the crossing log line).
pub const WATCH_EVERY: Duration = Duration::from_secs(10);

/// Where to look and what is too little.
#[derive(Debug)]
pub struct DiskBudget {
    pub dir: PathBuf,
    /// Degraded below this many bytes available to the server.
    pub min_free_bytes: u64,
    /// Degraded below this percentage of the filesystem available.
    pub min_free_percent: f64,
    /// Whether the last check was below the threshold (for logging only the crossings).
    low: AtomicBool,
}

/// One look at the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DiskStatus {
    /// Bytes an unprivileged process may still write (`f_bavail`).
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// The threshold in force: the larger of the byte and the percentage bounds.
    pub min_free_bytes: u64,
    pub degraded: bool,
}

impl DiskBudget {
    pub fn new(dir: PathBuf, min_free_bytes: u64, min_free_percent: f64) -> DiskBudget {
        DiskBudget {
            dir,
            min_free_bytes,
            min_free_percent,
            low: AtomicBool::new(false),
        }
    }

    /// Looks now (one `statvfs`), updates the gauge and logs a crossing.
    pub fn check(&self) -> std::io::Result<DiskStatus> {
        let v = rustix::fs::statvfs(&self.dir).map_err(std::io::Error::from)?;
        let block = v.f_frsize.max(1);
        let free_bytes = v.f_bavail.saturating_mul(block);
        let total_bytes = v.f_blocks.saturating_mul(block);
        let by_percent = (total_bytes as f64 * self.min_free_percent / 100.0) as u64;
        let min_free_bytes = self.min_free_bytes.max(by_percent);
        let degraded = free_bytes < min_free_bytes;
        metrics::gauge!("dispatch_disk_free_bytes").set(free_bytes as f64);
        let was = self.low.swap(degraded, Ordering::Relaxed);
        if degraded && !was {
            tracing::warn!(
                dir = %self.dir.display(),
                free_bytes,
                min_free_bytes,
                "disk space low in the data dir: /healthz is degraded; free space before the \
                 journal fills it"
            );
        } else if !degraded && was {
            tracing::info!(dir = %self.dir.display(), free_bytes, "disk space back above the threshold");
        }
        Ok(DiskStatus {
            free_bytes,
            total_bytes,
            min_free_bytes,
            degraded,
        })
    }

    /// Checks every [`WATCH_EVERY`] until `stop`.
    pub fn watch(self: Arc<Self>, stop: CancellationToken) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.check() {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read free disk space");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(WATCH_EVERY) => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_above_the_free_space_is_degraded_and_zero_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let ok = DiskBudget::new(dir.path().into(), 0, 0.0).check().unwrap();
        assert!(!ok.degraded, "{ok:?}");
        assert!(ok.free_bytes <= ok.total_bytes, "{ok:?}");
        let low = DiskBudget::new(dir.path().into(), u64::MAX, 0.0)
            .check()
            .unwrap();
        assert!(low.degraded, "{low:?}");
        let pct = DiskBudget::new(dir.path().into(), 0, 100.0)
            .check()
            .unwrap();
        assert_eq!(pct.min_free_bytes, pct.total_bytes);
    }
}
