//! The journal's view of a disk: a small trait over write / fsync / rename, the real
//! implementation, and a simulated disk that can lose power and fail on command.
//!
//! The journal never calls `std::fs` directly, so tests can inject EIO / ENOSPC on any write
//! or fsync and cut the power at any moment (keeping only what was fsynced, plus optionally a
//! torn prefix of what was not) without a real crash.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A file opened for appending.
pub trait StorageFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: returns only once everything written so far survives a power loss.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The directory operations the journal needs.
pub trait Storage: Send + Sync + 'static {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) directly in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates (or empties) `path` for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file to append to it.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Cuts `path` to `len` bytes and makes the cut durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskStorage;

struct DiskFile(File);

impl StorageFile for DiskFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Storage for DiskStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(DiskFile(retry_fd_exhaustion(|| {
            File::create(path)
        })?)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(DiskFile(retry_fd_exhaustion(|| {
            OpenOptions::new().append(true).open(path)
        })?)))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = retry_fd_exhaustion(|| OpenOptions::new().write(true).open(path))?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        retry_fd_exhaustion(|| File::open(dir))?.sync_all()
    }
}

/// Opening a file when the process (EMFILE) or the system (ENFILE) is out of descriptors is
/// transient: a flood of connections holds them, not the disk. Such an open is retried with
/// a doubling pause (1 ms to 250 ms, about 2 s in all) before the error is returned; any other
/// error is returned at once. Only opens are retried: a failed write or fsync stays final
/// (docs/durability.md). Issue 14.
pub fn retry_fd_exhaustion<T>(mut open: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    const TRIES: u32 = 14;
    let mut pause = std::time::Duration::from_millis(1);
    for _ in 1..TRIES {
        match open() {
            Err(e) if is_fd_exhaustion(&e) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(250));
            }
            other => return other,
        }
    }
    open()
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE))
}

/// Which operation a [`SimStorage`] fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    Write,
    Sync,
}

#[derive(Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    /// Bytes that survive a power loss.
    synced_len: usize,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<PathBuf, SimFile>,
    dirs: BTreeSet<PathBuf>,
    /// `(op, after, kind)`: the `after`-th next `op` (0 = the very next) fails with `kind`,
    /// and so does every one after it (a disk that failed stays failed).
    fault: Option<(FaultOp, u64, io::ErrorKind)>,
    writes: u64,
    syncs: u64,
}

/// An in-memory disk for tests: power loss keeps only fsynced bytes; faults on demand.
///
/// Simplification: renames, creations and removals are durable at once (real file systems
/// need the directory fsync the journal does anyway); file contents follow `sync_data`.
#[derive(Debug, Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panicking test thread must not hide the state from the others.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimState {
    fn check(&mut self, op: FaultOp) -> io::Result<()> {
        let count = match op {
            FaultOp::Write => &mut self.writes,
            FaultOp::Sync => &mut self.syncs,
        };
        let n = *count;
        *count += 1;
        match self.fault {
            Some((fop, after, kind)) if fop == op && n >= after => {
                Err(io::Error::new(kind, format!("injected {op:?} fault")))
            }
            _ => Ok(()),
        }
    }
}

impl SimStorage {
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// From now on, the `after`-th next `op` and every later one fail with `kind`.
    pub fn fail(&self, op: FaultOp, after: u64, kind: io::ErrorKind) {
        let mut s = lock(&self.state);
        let done = match op {
            FaultOp::Write => s.writes,
            FaultOp::Sync => s.syncs,
        };
        s.fault = Some((op, done + after, kind));
    }

    /// The disk as it would be found after a power loss right now: every file keeps its
    /// fsynced bytes plus, when `tear` is given, up to `tear` of its unsynced bytes (a write
    /// the disk had partly done). The running journal is untouched; the image is independent.
    pub fn power_loss_image(&self, tear: Option<usize>) -> SimStorage {
        let s = lock(&self.state);
        let mut files = BTreeMap::new();
        for (path, f) in &s.files {
            let keep = f.synced_len + tear.unwrap_or(0).min(f.data.len() - f.synced_len);
            files.insert(
                path.clone(),
                SimFile {
                    data: f.data[..keep].to_vec(),
                    synced_len: keep,
                },
            );
        }
        let state = SimState {
            files,
            dirs: s.dirs.clone(),
            ..SimState::default()
        };
        SimStorage {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The bytes of a file (for tests that damage them).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        lock(&self.state).files.get(path).map(|f| f.data.clone())
    }

    /// Replaces a file's bytes, durably (for tests that damage them).
    pub fn set_contents(&self, path: &Path, data: Vec<u8>) {
        let synced_len = data.len();
        lock(&self.state)
            .files
            .insert(path.to_path_buf(), SimFile { data, synced_len });
    }
}

struct SimHandle {
    state: Arc<Mutex<SimState>>,
    path: PathBuf,
}

impl StorageFile for SimHandle {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.check(FaultOp::Write)?;
        let f = s
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        f.data.extend_from_slice(buf);
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.check(FaultOp::Sync)?;
        let f = s
            .files
            .get_mut(&self.path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        f.synced_len = f.data.len();
        Ok(())
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = lock(&self.state);
        for a in dir.ancestors() {
            s.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = lock(&self.state);
        if !s.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            ));
        }
        Ok(s.files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            )
        })
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut s = lock(&self.state);
        s.check(FaultOp::Write)?;
        s.files.insert(path.to_path_buf(), SimFile::default());
        Ok(Box::new(SimHandle {
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        if !lock(&self.state).files.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file {}", path.display()),
            ));
        }
        Ok(Box::new(SimHandle {
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.check(FaultOp::Sync)?;
        let f = s
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        f.data.truncate(len as usize);
        f.synced_len = f.data.len();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = lock(&self.state);
        let f = s
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        s.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        lock(&self.state)
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        lock(&self.state).check(FaultOp::Sync)
    }
}

#[cfg(test)]
mod fd_exhaustion_tests {
    use super::*;

    fn os(errno: rustix::io::Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn emfile_and_enfile_are_retried_other_errors_are_not() {
        let mut calls = 0;
        let r = retry_fd_exhaustion(|| {
            calls += 1;
            match calls {
                1 => Err(os(rustix::io::Errno::MFILE)),
                2 => Err(os(rustix::io::Errno::NFILE)),
                _ => Ok(calls),
            }
        });
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: io::Result<()> = retry_fd_exhaustion(|| {
            calls += 1;
            Err(os(rustix::io::Errno::NOSPC))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "ENOSPC is not retried here");
        let mut calls = 0;
        let r: io::Result<()> = retry_fd_exhaustion(|| {
            calls += 1;
            Err(os(rustix::io::Errno::MFILE))
        });
        assert!(r.is_err(), "bounded: it gives up");
        assert_eq!(calls, 14);
    }
}
