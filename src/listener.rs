//! The public listener's accept loop, in place of `axum::serve`, so that a hostile client cannot
//! hold the daemon's descriptors or memory. At most `max_connections` connections are open at
//! once: a slot is taken *before* `accept`, so at the cap the listener stops accepting and new
//! clients wait in the kernel's backlog (no accept-error loop). Each connection has one deadline
//! at a time, kept by a watchdog next to hyper: the whole request head within
//! `header_read_timeout` (from the accept, or from the first byte of a later request), the next
//! request on a kept-alive connection (or the write of a response) within `idle_timeout`. While a
//! request is being handled its own limits apply (the webhook's body deadline and body slots, see
//! `to_erp::webhook`). A connection past its deadline is dropped, which closes the socket. At
//! start the soft `RLIMIT_NOFILE` is raised to the hard limit and the connection cap is lowered
//! so that it plus [`RESERVED_DESCRIPTORS`] fits. With [`ConnectionLimits::reclaim_waiting`]
//! (the console, whose cap is small) a full listener does not wait: it closes the connection
//! that has waited longest without a request being handled (a half head first, then a half-sent
//! body, then an idle or streaming one) and accepts, so idle or slow clients cannot hold every
//! slot. Timeouts are counted in metrics and logged at debug only: their rate is the attacker's
//! choice; the cap and accept errors warn at most once a minute.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{ListenerTimeout, Metrics};

/// Descriptors kept out of the connection cap for everything else: the store, the inbox and
/// outbox files and directories, the admin socket, API connections, the runtime.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Below this soft descriptor limit (after trying to raise it) start-up warns.
pub const LOW_DESCRIPTOR_LIMIT: u64 = 4096;

/// The soft limit is never raised above this (Linux's default `fs.nr_open`).
const NOFILE_CEILING: u64 = 1 << 20;

/// hyper's per-connection read buffer cap (its default is about 400 KiB): a request head must
/// fit, body chunks are read in pieces of at most this size.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// The listen backlog: clients wait here while every connection slot is taken. std and mio
/// use 128, which a few hundred stalled clients overflow; then new SYNs are dropped and an
/// honest client's connect backs off for seconds to minutes. The kernel caps the value at
/// `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Pause after an accept error other than a connection reset (EMFILE, ENFILE, ENOBUFS, …).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// At the cap, a connection waiting for less than this is closed only when no older one waits.
const RECLAIM_GRACE: Duration = Duration::from_millis(250);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// The effective connection cap (see [`descriptor_budget`]).
    pub max_connections: usize,
    /// At the cap, close the longest-waiting connection (no request being handled) to make
    /// room, instead of leaving new clients in the backlog until a deadline frees a slot.
    pub reclaim_waiting: bool,
}

/// The descriptor limit at start and the connection cap derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The soft limit in force (after raising); `None` is unlimited.
    pub soft: Option<u64>,
    /// Descriptors kept for everything but connections.
    pub reserve: u64,
    /// The connection cap: `connections + reserve <= soft`.
    pub connections: usize,
}

impl DescriptorBudget {
    /// The cap for a soft limit and the configured `max_connections`. The reserve is
    /// [`RESERVED_DESCRIPTORS`], or half of a smaller limit; the cap is at least 1.
    pub fn for_limit(soft: Option<u64>, max_connections: usize) -> DescriptorBudget {
        let limit = soft.unwrap_or(u64::MAX);
        let reserve = RESERVED_DESCRIPTORS.min(limit / 2);
        let room = usize::try_from(limit - reserve).unwrap_or(usize::MAX);
        DescriptorBudget {
            soft,
            reserve,
            connections: max_connections.min(room).max(1),
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (what most servers do), derives the
/// connection cap from the result, and warns when the limit is low or the cap had to be
/// lowered.
pub fn descriptor_budget(max_connections: usize) -> DescriptorBudget {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let target = before.maximum.unwrap_or(u64::MAX).min(NOFILE_CEILING);
    if before.current.is_some_and(|soft| soft < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?before.current, hard = ?before.maximum, "Cannot raise the descriptor soft limit to the hard limit.");
        }
    }
    let soft = getrlimit(Resource::Nofile).current;
    let budget = DescriptorBudget::for_limit(soft, max_connections);
    if budget.connections < max_connections {
        tracing::warn!(
            soft_limit = ?soft,
            reserve = budget.reserve,
            configured = max_connections,
            max_connections = budget.connections,
            "Descriptor limit too low for server.max_connections: the connection cap is lowered; raise LimitNOFILE."
        );
    } else if soft.is_some_and(|s| s < LOW_DESCRIPTOR_LIMIT) {
        tracing::warn!(
            soft_limit = ?soft,
            max_connections = budget.connections,
            "Descriptor limit is low; raise LimitNOFILE (the unit sets 65536)."
        );
    }
    budget
}

/// Binds the listener with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting, lets requests
/// in progress finish, closes idle and half-sent connections, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    let connections = TaskTracker::new();
    let cap_log = Every::minute();
    let error_log = Every::minute();
    metrics.listener_cap(limits.max_connections);
    let reclaim = limits.reclaim_waiting.then_some(&*open);
    loop {
        // A slot is taken before the accept, so that at the cap new clients wait in the
        // backlog; when reclaiming, after it, so that a connection is closed only for a client
        // that is there.
        let early = match reclaim {
            None => match slot(&slots, limits, None, &metrics, &cap_log, &shutdown).await {
                Some(p) => Some(p),
                None => break,
            },
            Some(_) => None,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    metrics.listener_accept_error();
                    if let Some(suppressed) = error_log.ready() {
                        tracing::warn!(error = %e, suppressed, "Accepting a connection failed; pausing accepts briefly.");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let permit = match early {
            Some(p) => p,
            None => match slot(&slots, limits, reclaim, &metrics, &cap_log, &shutdown).await {
                Some(p) => p,
                None => break,
            },
        };
        let (app, metrics, stop) = (app.clone(), metrics.clone(), shutdown.clone());
        let clock = Arc::new(PhaseClock::new(limits));
        let close = CancellationToken::new();
        let entry = limits
            .reclaim_waiting
            .then(|| open.add(clock.clone(), close.clone()));
        connections.spawn(async move {
            let gauge = metrics.listener_open();
            connection(stream, peer, app, clock, &metrics, stop, close).await;
            drop(entry);
            drop(gauge);
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A connection slot: at once, or at the cap once one frees (after closing the longest-waiting
/// connection when `reclaim` is given); `None` at shutdown.
async fn slot(
    slots: &Arc<Semaphore>,
    limits: ConnectionLimits,
    reclaim: Option<&OpenConnections>,
    metrics: &Metrics,
    cap_log: &Every,
    shutdown: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(p) = slots.clone().try_acquire_owned() {
        return Some(p);
    }
    metrics.listener_cap_reached();
    let reclaimed = reclaim.is_some_and(OpenConnections::close_longest_waiting);
    if let Some(suppressed) = cap_log.ready() {
        if reclaimed {
            tracing::warn!(
                max_connections = limits.max_connections,
                suppressed,
                "Connection cap reached; the longest-waiting connections are closed to make room."
            );
        } else {
            tracing::warn!(
                max_connections = limits.max_connections,
                suppressed,
                "Connection cap reached; new clients wait in the backlog."
            );
        }
    }
    tokio::select! {
        p = slots.clone().acquire_owned() => Some(p.expect("the slot semaphore is never closed")),
        _ = shutdown.cancelled() => None,
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Drives one connection until it ends, its deadline passes, or shutdown closes it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    clock: Arc<PhaseClock>,
    metrics: &Metrics,
    shutdown: CancellationToken,
    close: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        clock: clock.clone(),
    });
    let service = Tracked {
        inner: TowerToHyperService::new(app),
        clock: clock.clone(),
        peer,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        // The watchdog below keeps the header and idle deadlines: hyper's own header timer
        // would also cut kept-alive connections at the header deadline.
        .header_read_timeout(None)
        .max_buf_size(MAX_BUF_BYTES)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "Connection ended with an error.");
                }
                return;
            }
            timeout = clock.expired() => {
                metrics.listener_timeout(timeout);
                tracing::debug!(peer = %peer, timeout = ?timeout, "Connection closed: deadline passed.");
                return;
            }
            _ = close.cancelled() => {
                tracing::debug!(peer = %peer, "Connection closed to make room at the connection cap.");
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                if !clock.busy() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// What a connection is waiting for, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request head: since the accept, or since the first byte of a later request.
    Head { since: Instant },
    /// The first byte of the next request on a kept-alive connection (or the client reading
    /// the last response).
    Idle { since: Instant },
    /// A request is being handled and its body is still arriving (the handler's own limits
    /// apply; at the cap it may be closed, see [`ConnectionLimits::reclaim_waiting`]).
    Receiving { since: Instant },
    /// A request is being handled; its own limits apply.
    Busy,
}

/// One connection's phase and deadline, shared by the socket wrapper, the service wrapper and
/// the watchdog.
struct PhaseClock {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when the phase changes (the deadline may move earlier).
    changed: tokio::sync::Notify,
    limits: ConnectionLimits,
}

impl PhaseClock {
    fn new(limits: ConnectionLimits) -> PhaseClock {
        PhaseClock {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            changed: tokio::sync::Notify::new(),
            limits,
        }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().expect("phase lock") = phase;
        self.changed.notify_one();
    }

    fn busy(&self) -> bool {
        matches!(
            *self.phase.lock().expect("phase lock"),
            Phase::Busy | Phase::Receiving { .. }
        )
    }

    /// The request's body has all arrived: the connection is busy, no longer waiting.
    fn body_done(&self) {
        let mut phase = self.phase.lock().expect("phase lock");
        if let Phase::Receiving { .. } = *phase {
            *phase = Phase::Busy;
        }
    }

    /// How long and on what the connection waits, as an order for closing at the cap (lowest
    /// first): a half head, then a half body, then an idle or streaming connection, oldest
    /// first in each; `None` while a request is being handled with its body in.
    fn waiting(&self) -> Option<(u8, Instant)> {
        match *self.phase.lock().expect("phase lock") {
            Phase::Head { since } => Some((0, since)),
            Phase::Receiving { since } => Some((1, since)),
            Phase::Idle { since } => Some((2, since)),
            Phase::Busy => None,
        }
    }

    /// Bytes arrived: an idle connection starts reading a request head.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().expect("phase lock");
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            self.changed.notify_one();
        }
    }

    /// The current deadline and what passing it means (`None` while busy).
    fn deadline(&self) -> Option<(Instant, ListenerTimeout)> {
        let l = self.limits;
        match *self.phase.lock().expect("phase lock") {
            Phase::Head { since } => Some((since + l.header_read_timeout, ListenerTimeout::Header)),
            Phase::Idle { since } => Some((since + l.idle_timeout, ListenerTimeout::Idle)),
            Phase::Busy | Phase::Receiving { .. } => None,
        }
    }

    /// Resolves once the deadline of the phase the connection is in has passed. A phase change
    /// wakes it (`notify_one` keeps the wake-up if it lands between the look and the wait).
    async fn expired(&self) -> ListenerTimeout {
        loop {
            match self.deadline() {
                Some((at, timeout)) if at <= Instant::now() => return timeout,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// The accepted socket, telling the clock when bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<PhaseClock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router, marking the connection busy while a request is handled and idle after.
struct Tracked {
    inner: TowerToHyperService<Router>,
    clock: Arc<PhaseClock>,
    /// The client's address, given to handlers as `ConnectInfo` (the console logs operators'
    /// actions with it).
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use hyper::body::Body as _;
        if req.body().is_end_stream() {
            self.clock.set(Phase::Busy);
        } else {
            self.clock.set(Phase::Receiving {
                since: Instant::now(),
            });
        }
        let clock = self.clock.clone();
        let mut req = req.map(|body| {
            Body::new(Arriving {
                inner: body,
                clock: self.clock.clone(),
            })
        });
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await;
            clock.set(Phase::Idle {
                since: Instant::now(),
            });
            response
        })
    }
}

/// A request body, telling the clock when it has all arrived.
struct Arriving {
    inner: Incoming,
    clock: Arc<PhaseClock>,
}

impl hyper::body::Body for Arriving {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None | Some(Err(_)))) || this.inner.is_end_stream() {
            this.clock.body_done();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections and how to close each, kept when
/// [`ConnectionLimits::reclaim_waiting`] is set.
#[derive(Default)]
struct OpenConnections {
    next: std::sync::atomic::AtomicU64,
    connections: Mutex<std::collections::HashMap<u64, (Arc<PhaseClock>, CancellationToken)>>,
}

impl OpenConnections {
    /// Registers a connection until the returned guard drops.
    fn add(self: &Arc<Self>, clock: Arc<PhaseClock>, close: CancellationToken) -> OpenEntry {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.connections
            .lock()
            .expect("open connections lock")
            .insert(id, (clock, close));
        OpenEntry {
            open: self.clone(),
            id,
        }
    }

    /// Closes the connection that has waited longest (see [`PhaseClock::waiting`]; one that began
    /// waiting within [`RECLAIM_GRACE`] only when there is no other); false when every
    /// connection has a request being handled.
    fn close_longest_waiting(&self) -> bool {
        let now = Instant::now();
        let mut connections = self.connections.lock().expect("open connections lock");
        let victim = connections
            .iter()
            .filter_map(|(id, (clock, _))| {
                let (rank, since) = clock.waiting()?;
                // A client that connected a moment ago has had no time to send its request.
                let fresh = now.duration_since(since) < RECLAIM_GRACE;
                Some(((fresh, rank, since), *id))
            })
            .min()
            .map(|(_, id)| id);
        match victim.and_then(|id| connections.remove(&id)) {
            Some((_, close)) => {
                close.cancel();
                true
            }
            None => false,
        }
    }
}

/// A connection's place in [`OpenConnections`], removed when the connection ends.
struct OpenEntry {
    open: Arc<OpenConnections>,
    id: u64,
}

impl Drop for OpenEntry {
    fn drop(&mut self) {
        self.open
            .connections
            .lock()
            .expect("open connections lock")
            .remove(&self.id);
    }
}

/// A gate for log lines whose rate an attacker could drive: open at most once a minute,
/// counting what it held back.
struct Every {
    period: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Every {
    fn minute() -> Every {
        Every {
            period: Duration::from_secs(60),
            last: Mutex::new(None),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged now.
    fn ready(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = Instant::now();
        let mut last = self.last.lock().expect("log gate lock");
        match *last {
            Some(t) if now.duration_since(t) < self.period => {
                self.suppressed.fetch_add(1, Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_reserve_fit_the_soft_limit() {
        let b = DescriptorBudget::for_limit(Some(1024), 512);
        assert_eq!((b.connections, b.reserve), (512, 256));
        let b = DescriptorBudget::for_limit(Some(1024), 4096);
        assert_eq!((b.connections, b.reserve), (768, 256));
        assert!(b.connections as u64 + b.reserve <= 1024);
        let b = DescriptorBudget::for_limit(Some(100), 512);
        assert_eq!((b.connections, b.reserve), (50, 50));
        let b = DescriptorBudget::for_limit(None, 512);
        assert_eq!(b.connections, 512);
        assert_eq!(DescriptorBudget::for_limit(Some(1), 512).connections, 1);
    }

    #[test]
    fn log_gate_opens_once_per_period() {
        let gate = Every::minute();
        assert_eq!(gate.ready(), Some(0));
        assert_eq!(gate.ready(), None);
        assert_eq!(gate.ready(), None);
        *gate.last.lock().unwrap() = Some(Instant::now() - Duration::from_secs(61));
        assert_eq!(gate.ready(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
            reclaim_waiting: false,
        };
        let clock = PhaseClock::new(limits);
        let start = Instant::now();
        assert_eq!(clock.expired().await, ListenerTimeout::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        clock.set(Phase::Idle {
            since: Instant::now(),
        });
        clock.bytes_read();
        assert!(matches!(*clock.phase.lock().unwrap(), Phase::Head { .. }));
        clock.set(Phase::Idle {
            since: Instant::now(),
        });
        let start = Instant::now();
        assert_eq!(clock.expired().await, ListenerTimeout::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        clock.set(Phase::Busy);
        let busy = tokio::time::timeout(Duration::from_secs(3600), clock.expired()).await;
        assert!(busy.is_err(), "a busy connection has no listener deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_phase_change_moves_a_pending_deadline_earlier() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(1),
            max_connections: 1,
            reclaim_waiting: false,
        };
        let clock = Arc::new(PhaseClock::new(limits));
        let start = Instant::now();
        let watchdog = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        // The watchdog is asleep on the 60 s head deadline when the request is served.
        tokio::task::yield_now().await;
        clock.set(Phase::Busy);
        clock.set(Phase::Idle {
            since: Instant::now(),
        });
        assert_eq!(watchdog.await.unwrap(), ListenerTimeout::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_a_half_head_goes_first_then_a_half_body_then_an_idle_one_never_a_busy_one()
    {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
            reclaim_waiting: true,
        };
        let open = Arc::new(OpenConnections::default());
        let conn = |phase: Phase| {
            let clock = Arc::new(PhaseClock::new(limits));
            clock.set(phase);
            let close = CancellationToken::new();
            (open.add(clock, close.clone()), close)
        };
        let t0 = Instant::now();
        let (_idle, idle) = conn(Phase::Idle { since: t0 });
        let (_busy, busy) = conn(Phase::Busy);
        let (_body, body) = conn(Phase::Receiving { since: t0 });
        tokio::time::advance(Duration::from_secs(1)).await;
        let (_head, head) = conn(Phase::Head {
            since: Instant::now() - Duration::from_millis(500),
        });
        let (_fresh, fresh) = conn(Phase::Head {
            since: Instant::now(),
        });
        // A client that connected a moment ago goes last: it has had no time to send.
        for (closed, name) in [(&head, "head"), (&body, "body"), (&idle, "idle")] {
            assert!(open.close_longest_waiting());
            assert!(closed.is_cancelled(), "{name}");
            assert!(!fresh.is_cancelled(), "before {name}");
        }
        assert!(open.close_longest_waiting());
        assert!(fresh.is_cancelled());
        assert!(!open.close_longest_waiting());
        assert!(!busy.is_cancelled());
    }
}
