//! The TCP listener and its limits (docs/limits.md):
//!
//! - a connection cap: a semaphore permit is taken *before* `accept` (the mini-redis way) and
//!   travels with the connection, so at most `max_connections` are open and the rest wait in
//!   the kernel's backlog. `serve_cmd` sizes the cap below the file-descriptor limit.
//! - connections that have not authenticated yet (no authenticated request, no upgrade) are
//!   tracked: at most `max_unauthenticated` in all and `per_ip` from one address. Past either
//!   bound the *oldest idle* such connection (one that never sent a byte; else the oldest)
//!   is shed. So a flood of idle connections costs the attacker its own oldest connections,
//!   never a new client that speaks at once (`/healthz`, a phone reconnecting), and never an
//!   established session (authenticated connections are not counted, and the other half of
//!   the cap stays theirs).
//! - a handshake timeout: an unauthenticated connection that sends nothing for
//!   `handshake_timeout` is closed (accept → first byte, slow headers, a slow upgrade).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The listener's bounds.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub max_unauthenticated: usize,
    pub per_ip: usize,
    pub handshake_timeout: Duration,
}

/// A listener that holds at most `limit` connections open.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    registry: Arc<Registry>,
    limits: ListenerLimits,
}

/// The connections not yet authenticated, oldest first.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    next: u64,
    conns: HashMap<u64, Arc<ConnShared>>,
    /// Ids (in age order) of connections that never sent a byte, and of the others.
    idle: BTreeSet<u64>,
    active: BTreeSet<u64>,
    /// The same, per address.
    per_ip: HashMap<IpAddr, (BTreeSet<u64>, BTreeSet<u64>)>,
}

impl RegistryInner {
    fn insert(&mut self, c: Arc<ConnShared>) {
        self.idle.insert(c.id);
        self.per_ip.entry(c.ip).or_default().0.insert(c.id);
        self.conns.insert(c.id, c);
    }

    fn remove(&mut self, id: u64) -> Option<Arc<ConnShared>> {
        let c = self.conns.remove(&id)?;
        self.idle.remove(&id);
        self.active.remove(&id);
        if let Some((idle, active)) = self.per_ip.get_mut(&c.ip) {
            idle.remove(&id);
            active.remove(&id);
            if idle.is_empty() && active.is_empty() {
                self.per_ip.remove(&c.ip);
            }
        }
        Some(c)
    }

    /// The connection sent its first byte: it is shed only after every idle one.
    fn mark_active(&mut self, id: u64, ip: IpAddr) {
        if self.idle.remove(&id) {
            self.active.insert(id);
            if let Some((idle, active)) = self.per_ip.get_mut(&ip) {
                idle.remove(&id);
                active.insert(id);
            }
        }
    }

    fn count(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).map_or(0, |(i, a)| i.len() + a.len())
    }

    /// Sheds the oldest idle connection (of `ip` if given), else the oldest.
    fn shed_one(&mut self, ip: Option<IpAddr>) {
        let oldest = |idle: &BTreeSet<u64>, active: &BTreeSet<u64>| {
            idle.first().or_else(|| active.first()).copied()
        };
        let id = match ip {
            Some(ip) => self.per_ip.get(&ip).and_then(|(i, a)| oldest(i, a)),
            None => oldest(&self.idle, &self.active),
        };
        if let Some(c) = id.and_then(|id| self.remove(id)) {
            c.shed.cancel();
            metrics::counter!("dispatch_connections_shed_total").increment(1);
        }
    }
}

impl Registry {
    /// How many connections are waiting to authenticate (all, and from `ip`).
    pub fn waiting(&self, ip: IpAddr) -> (usize, usize) {
        let r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (r.conns.len(), r.count(ip))
    }
}

/// What a connection shares with its handlers (through [`ConnInfo`]).
#[derive(Debug)]
struct ConnShared {
    id: u64,
    ip: IpAddr,
    /// Sent at least one byte.
    active: AtomicBool,
    authenticated: AtomicBool,
    shed: CancellationToken,
    registry: Arc<Registry>,
}

/// The handle handlers get (axum `ConnectInfo`): the peer, and a way to say "authenticated".
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub addr: SocketAddr,
    shared: Option<Arc<ConnShared>>,
}

impl ConnInfo {
    /// The connection carried an authenticated request or upgrade: it no longer counts as
    /// waiting, is never shed, and has no handshake timeout.
    pub fn authenticated(&self) {
        if let Some(s) = &self.shared {
            if !s.authenticated.swap(true, Ordering::Relaxed) {
                let mut r = s.registry.inner.lock().unwrap_or_else(|e| e.into_inner());
                r.remove(s.id);
            }
        }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, LimitedListener>>
    for ConnInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, LimitedListener>) -> ConnInfo {
        ConnInfo {
            addr: *stream.remote_addr(),
            shared: Some(stream.io().shared.clone()),
        }
    }
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limits: ListenerLimits) -> LimitedListener {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            registry: Arc::default(),
            limits,
        }
    }

    /// The registry of connections not yet authenticated (for tests and metrics).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    fn admit(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> LimitedStream {
        let _ = stream.set_nodelay(true);
        let ip = addr.ip();
        let shed = CancellationToken::new();
        let mut r = self
            .registry
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.next += 1;
        let shared = Arc::new(ConnShared {
            id: r.next,
            ip,
            active: AtomicBool::new(false),
            authenticated: AtomicBool::new(false),
            shed: shed.clone(),
            registry: self.registry.clone(),
        });
        r.insert(shared.clone());
        while r.count(ip) > self.limits.per_ip.max(1) {
            r.shed_one(Some(ip));
        }
        while r.conns.len() > self.limits.max_unauthenticated.max(1) {
            r.shed_one(None);
        }
        drop(r);
        let timeout = self.limits.handshake_timeout;
        LimitedStream {
            stream,
            _permit: permit,
            shed: Box::pin(shed.cancelled_owned()),
            timer: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            shared,
        }
    }
}

/// A connection and the permit it holds (released when the connection is dropped, including
/// after a WebSocket upgrade, which keeps this stream inside the upgraded connection).
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    shed: Pin<Box<WaitForCancellationFutureOwned>>,
    timer: Pin<Box<Sleep>>,
    timeout: Duration,
    shared: Arc<ConnShared>,
}

impl std::fmt::Debug for LimitedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitedStream")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        let mut r = self
            .shared
            .registry
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.remove(self.shared.id);
    }
}

impl LimitedStream {
    /// An error once the connection was shed or its handshake timed out.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.shed.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shed: too many connections waiting to authenticate",
            ));
        }
        if !self.shared.authenticated.load(Ordering::Relaxed)
            && self.timer.as_mut().poll(cx).is_ready()
        {
            metrics::counter!("dispatch_handshake_timeouts_total").increment(1);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timeout: nothing received in time",
            ));
        }
        Ok(())
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // The semaphore is never closed, so acquiring can only wait.
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                std::future::pending::<()>().await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => return (self.admit(stream, addr, permit), addr),
                Err(e) => {
                    // Out of file descriptors despite the reserve: back off, not spin.
                    tracing::warn!(error = %e, "accept failed");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if !self.shared.active.swap(true, Ordering::Relaxed) {
                let s = &self.shared;
                let mut reg = s.registry.inner.lock().unwrap_or_else(|e| e.into_inner());
                reg.mark_active(s.id, s.ip);
            }
            if !self.shared.authenticated.load(Ordering::Relaxed) {
                let deadline = Instant::now() + self.timeout;
                self.timer.as_mut().reset(deadline);
            }
        }
        r
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(reg: &Arc<Registry>, id: u64, ip: [u8; 4]) -> Arc<ConnShared> {
        Arc::new(ConnShared {
            id,
            ip: IpAddr::from(ip),
            active: AtomicBool::new(false),
            authenticated: AtomicBool::new(false),
            shed: CancellationToken::new(),
            registry: reg.clone(),
        })
    }

    #[test]
    fn the_oldest_idle_connection_of_the_address_goes_first_then_the_oldest_active() {
        let reg = Arc::new(Registry::default());
        let a = [10, 0, 0, 1];
        let b = [10, 0, 0, 2];
        let conns: Vec<_> = [(1, a), (2, b), (3, a), (4, a)]
            .into_iter()
            .map(|(id, ip)| conn(&reg, id, ip))
            .collect();
        let mut r = reg.inner.lock().unwrap();
        for c in &conns {
            r.insert(c.clone());
        }
        r.mark_active(1, IpAddr::from(a));
        assert_eq!(r.count(IpAddr::from(a)), 3);
        // Address a: 1 spoke, 3 and 4 are idle: 3 goes, then 4, then 1; b is untouched.
        for expected in [2, 1, 0] {
            r.shed_one(Some(IpAddr::from(a)));
            let shed: Vec<u64> = conns
                .iter()
                .filter(|c| c.shed.is_cancelled())
                .map(|c| c.id)
                .collect();
            assert_eq!(r.count(IpAddr::from(a)), expected, "{shed:?}");
        }
        assert!(conns[2].shed.is_cancelled() && conns[3].shed.is_cancelled());
        assert!(conns[0].shed.is_cancelled(), "the active one last");
        assert!(
            !conns[1].shed.is_cancelled(),
            "another address is untouched"
        );
        // Globally: only b's connection is left; removing it empties every index.
        assert!(r.remove(2).is_some());
        assert!(r.conns.is_empty() && r.per_ip.is_empty() && r.idle.is_empty());
    }
}
