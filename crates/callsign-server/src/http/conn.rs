//! The listener: accepts TCP connections (at most `http.max_connections` at once; further ones wait in the listen
//! backlog), completes TLS handshakes in each connection's own task, and serves HTTP/1.1 and HTTP/2 with hyper under
//! the connection limits of `[http]`:
//! - headers must arrive within `header_read_timeout_secs` (hyper's timer; on a kept-alive HTTP/1 connection it
//!   also runs while the next request is awaited, so answers advertise half of it in `Keep-Alive: timeout=N`, see
//!   `limits::keep_alive_hint`), so a slowloris client is cut off;
//! - a connection with no request in progress and no byte read or written for `idle_timeout_secs` is closed;
//! - on shutdown every connection finishes its requests in progress and closes; `serve` returns when all did.
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::PeerAddr;
use crate::config::HttpLimits;
use crate::metrics::Metrics;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` until `shutdown` resolves, then let connections finish and return.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Option<tokio_rustls::rustls::ServerConfig>,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(|cfg| TlsAcceptor::from(Arc::new(cfg)));
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    // HTTP/2 has no header timeout of its own: a client that stops answering pings is dropped.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(limits.idle_timeout_secs.clamp(1, 20)))
        .keep_alive_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_concurrent_streams(128);
    let builder = Arc::new(builder);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            builder: builder.clone(),
            router: router.clone(),
            addr: PeerAddr(addr),
            stop: stop_rx.clone(),
            idle: Duration::from_secs(limits.idle_timeout_secs),
            metrics: metrics.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            conn.run(tcp, acceptor).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it has closed.
    let _ = slots.acquire_many(max).await;
    Ok(())
}

struct Conn {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    addr: PeerAddr,
    stop: watch::Receiver<bool>,
    idle: Duration,
    metrics: Arc<Metrics>,
}

impl Conn {
    async fn run(self, tcp: TcpStream, acceptor: Option<TlsAcceptor>) {
        self.metrics.connections.inc();
        match acceptor {
            None => self.serve_io(tcp).await,
            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => self.serve_io(tls).await,
                Ok(Err(e)) => tracing::debug!(addr = %self.addr.0, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(addr = %self.addr.0, "TLS handshake timed out"),
            },
        }
        self.metrics.connections.dec();
    }

    async fn serve_io<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, io: I) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { inner: io, activity: activity.clone() });
        let (router, addr, requests) = (self.router.clone(), self.addr, activity.clone());
        let svc = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            let busy = requests.start_request();
            let router = router.clone();
            async move {
                let response = router.oneshot(req).await;
                drop(busy);
                response
            }
        });
        let conn = self.builder.serve_connection_with_upgrades(io, TowerToHyperService::new(svc));
        let mut conn = pin!(conn);
        let mut stop = self.stop.clone();
        let mut closing = false;
        if *stop.borrow() {
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(addr = %self.addr.0, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = stop.changed(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = activity.idle_for(self.idle), if !closing => {
                    tracing::debug!(addr = %self.addr.0, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    requests: Arc<AtomicUsize>,
}

/// A request in progress on a connection (it is not idle while one is).
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn new() -> Self {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0), requests: Arc::new(AtomicUsize::new(0)) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn start_request(&self) -> Busy {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(self.requests.clone())
    }

    /// Resolves once nothing has moved for `idle` while no request is in progress.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() < deadline {
                tokio::time::sleep_until(deadline).await;
                continue;
            }
            if self.requests.load(Ordering::SeqCst) > 0 {
                // A request is being handled (its response may take a while): look again later.
                tokio::time::sleep(idle).await;
                continue;
            }
            return;
        }
    }
}

/// The connection's I/O, noting every byte that moves.
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
